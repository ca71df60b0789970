// fuzz_image.c — stb_image decoding behind our size/format checks, then preprocessing.
#include <stdint.h>
#include <stdlib.h>

#include "clipneg/common.h"
#include "clipneg/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    if (image_decode_rgb(data, size, "fuzz", &rgb, &w, &h) == CN_OK) {
        static float out[3 * 32 * 32];
        image_preprocess(rgb, w, h, 32, CLIP_MEAN, CLIP_STD, out);
        free(rgb);
    }
    return 0;
}
