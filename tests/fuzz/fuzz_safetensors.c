// fuzz_safetensors.c — the safetensors header parser, the fp16/bf16/int conversions, and the model
// loader (name mapping for the open_clip and HF layouts, architecture inference, shape checks,
// BatchNorm folding) on arbitrary bytes. Seeds: micro CLIPs in every layout and dtype
// (tests/fuzz/make_corpus.py), 8 wide with 2 heads: no config travels with a single file, so the
// heads are given as load options, as a user would with inspect-model --vision-heads/--text-heads.
// A model that loads and is small is also run through both CPU encoders (one image, one text):
// whatever architecture the loader accepts, the towers must run it without a sanitizer report.
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/encoder.h"
#include "clipneg/model.h"
#include "clipneg/ops.h"
#include "clipneg/safetensors.h"
#include "fuzz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    ops_set_threads(1); // one input at a time; no thread pool per call
    return 0;
}

// Both towers on a constant image and a short text. Bounded: micro models only (the seeds are
// 8 wide); anything bigger is the loader's business, not worth the time per input.
static void run_encoders(const ClipModel *m) {
    const ClipConfig *c = &m->cfg;
    if (m->n_params > (1u << 18) || c->image_size > 64 || c->context_length > 77 || c->vocab_size < 3) return;
    int R = c->image_size, T = c->context_length, D = c->embed_dim;
    float *pix = mallocCheck((size_t)3 * R * R * sizeof(float)), *out = mallocCheck((size_t)D * sizeof(float));
    for (int i = 0; i < 3 * R * R; i++) pix[i] = (float)(i % 7) * 0.25f - 0.75f;
    (void)encode_images_cpu(m, pix, 1, out);
    int32_t *ids = callocCheck((size_t)T, sizeof(int32_t));
    ids[0] = 1;
    if (T > 2) ids[1] = 2;
    ids[T > 2 ? 2 : 1] = c->vocab_size - 1; // the largest id plays EOT (the pooled position)
    (void)encode_texts_cpu(m, ids, 1, out);
    free(ids);
    free(pix);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    SafeTensors st;
    if (safetensors_parse(&st, data, size, "fuzz.safetensors") != CN_OK) return 0;
    for (int i = 0; i < st.n; i++) {
        const StTensor *t = &st.tensors[i];
        // the lookup must find every tensor the parser listed (sorted, names unique)
        if (safetensors_find(&st, t->name) != t) abort();
        if (t->numel <= 0 || t->numel >= (1 << 20)) continue;
        if (t->dtype != ST_OTHER) {
            float *buf = mallocCheck((size_t)t->numel * sizeof(float));
            if (safetensors_to_f32(t, buf) != CN_OK) abort(); // F32/F16/BF16 always convert
            free(buf);
        } else {
            int32_t *buf = mallocCheck((size_t)t->numel * sizeof(int32_t));
            (void)safetensors_to_i32(t, buf); // I32/I64 convert, others are refused: either is fine
            free(buf);
        }
    }
    for (int i = 0; i < st.n_meta; i++)
        if (safetensors_metadata(&st, st.meta_keys[i]) == NULL) abort();
    safetensors_close(&st);
    // Only structurally valid files reach the loader's name/shape logic.
    const char *path = fuzz_write_temp("model.safetensors", data, size);
    ClipModel m;
    ClipLoadOptions opt = CLIP_LOAD_OPTIONS_DEFAULT;
    opt.vision_heads = 2;
    opt.text_heads = 2;
    if (clip_model_load(&m, path, &opt) == CN_OK) {
        if (m.n_params == 0 || !m.memory) abort();
        run_encoders(&m);
        clip_model_free(&m);
    }
    return 0;
}
