// fuzz_safetensors.c — the safetensors header parser, the fp16/bf16 conversion, and the model loader
// (name mapping, architecture inference, shape checks) on arbitrary bytes.
#include <stdint.h>
#include <stdlib.h>

#include "clipneg/common.h"
#include "clipneg/model.h"
#include "clipneg/safetensors.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    SafeTensors st;
    if (safetensors_parse(&st, data, size, "fuzz.safetensors") == CN_OK) {
        for (int i = 0; i < st.n; i++) {
            const StTensor *t = &st.tensors[i];
            if (t->dtype != ST_OTHER && t->numel > 0 && t->numel < (1 << 20)) {
                float *buf = mallocCheck((size_t)t->numel * sizeof(float));
                safetensors_to_f32(t, buf);
                free(buf);
            }
        }
        safetensors_close(&st);
        // Only structurally valid files reach the loader's name/shape logic.
        const char *path = fuzz_write_temp("model.safetensors", data, size);
        ClipModel m;
        ClipLoadOptions opt = {.force_quick_gelu = -1};
        if (clip_model_load(&m, path, &opt) == CN_OK) clip_model_free(&m);
    }
    return 0;
}
