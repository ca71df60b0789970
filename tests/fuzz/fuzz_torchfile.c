// fuzz_torchfile.c — the PyTorch reader (zip central directory + ZIP64, the data-only pickle VM,
// TorchScript module walk, wrapper / prefix detection, tensor bounds) on arbitrary bytes, then the
// model loader on whatever it accepts. Seeds: micro torch.save / TorchScript files written by torch
// (tests/reference/make_torch_fixtures.py --corpus). The first byte picks the options: bit 0 sets
// state_key "state_dict", bit 1 strip_prefix "module.", so the job-key paths are fuzzed too (the
// byte is also part of the file: a zip's first byte is 'P' = 0x50, bits 0 and 1 clear).
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/model.h"
#include "clipneg/ops.h"
#include "clipneg/safetensors.h"
#include "clipneg/torchfile.h"
#include "fuzz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    ops_set_threads(1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    TorchFileOptions opt = {NULL, NULL};
    if (size && (data[0] & 1)) opt.state_key = "state_dict";
    if (size && (data[0] & 2)) opt.strip_prefix = "module.";
    SafeTensors st;
    TorchFileInfo info;
    if (torchfile_parse(&st, &info, data, size, "fuzz.pt", &opt) != CN_OK) {
        if (cn_last_error()[0] == '\0') abort();  // every refusal says why
        return 0;
    }
    if (st.n <= 0 || !info.kind[0] || !info.wrapper[0]) abort();
    for (int i = 0; i < st.n; i++) {
        const StTensor *t = &st.tensors[i];
        // sorted, unique, inside the buffer
        if (safetensors_find(&st, t->name) != t) abort();
        if (t->begin > t->end || t->end > size || t->data != data + t->begin) abort();
        if (t->numel <= 0 || t->numel >= (1 << 20)) continue;
        if (t->dtype != ST_OTHER) {
            float *buf = mallocCheck((size_t)t->numel * sizeof(float));
            if (safetensors_to_f32(t, buf) != CN_OK) abort();
            free(buf);
        }
    }
    safetensors_close(&st);
    const char *path = fuzz_write_temp("model.pt", data, size);
    ClipModel m;
    ClipLoadOptions lo = CLIP_LOAD_OPTIONS_DEFAULT;
    lo.vision_heads = 2;
    lo.text_heads = 2;
    lo.state_key = opt.state_key;
    lo.strip_prefix = opt.strip_prefix;
    if (clip_model_load(&m, path, &lo) == CN_OK) {
        if (m.n_params == 0 || !m.memory) abort();
        clip_model_free(&m);
    }
    return 0;
}
