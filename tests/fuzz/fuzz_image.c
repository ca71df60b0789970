// fuzz_image.c — the container checks (JPEG marker walk, PNG chunk walk, bomb and zlib-bomb limits),
// stb_image decoding behind them, then Resize + CenterCrop + Normalize. Oracle: CN_OK with a sane
// size and finite pixels, or CN_E_IMAGE with a message (include/clipneg/image.h); never anything else.
// The crop size comes from the input length (8, 16 or 24), so the resampler sees several scales.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "clipneg/common.h"
#include "clipneg/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    int rc = image_decode_rgb(data, size, "fuzz", &rgb, &w, &h);
    if (rc != CN_OK) {
        if (rc != CN_E_IMAGE || !cn_last_error()[0] || rgb) abort();
        return 0;
    }
    if (!rgb || w < 1 || h < 1 || (long long)w * h > IMAGE_MAX_PIXELS) abort();
    static float out[3 * 24 * 24];
    const int R = 8 * (1 + (int)(size % 3));
    rc = image_preprocess(rgb, w, h, R, CLIP_MEAN, CLIP_STD, out);
    free(rgb);
    if (rc == CN_E_IMAGE && cn_last_error()[0]) return 0; // e.g. an aspect ratio too extreme to resize
    if (rc != CN_OK) abort();
    for (int i = 0; i < 3 * R * R; i++)
        if (!isfinite(out[i]) || fabsf(out[i]) > 3.0f) abort(); // (v/255 - mean)/std lies in [-1.8, 2.2]
    return 0;
}
