// image_resize.c — CLIP preprocessing, bit-faithful to open_clip 2.24's `preprocess` for OpenAI
// models on an RGB image:
//   torchvision 0.14 Resize(R, BICUBIC)  shorter side -> R, longer -> int(R * long / short),
//                                        done by PIL 9.4 Image.resize (antialiased bicubic)
//   CenterCrop(R)                        offsets int(round((size - R) / 2.0)), Python's
//                                        round-half-to-even
//   _convert_to_rgb, ToTensor, Normalize  x / 255 (float32), then (x - mean) / std (float32)
//
// The resampler is a re-implementation of Pillow's ImagingResample for 8-bit images
// (src/libImaging/Resample.c): separable convolution, horizontal pass first, each pass with
// coefficients from the bicubic kernel (a = -0.5) stretched by the downscale factor so it
// averages (antialiases), normalised to sum 1 in double, rounded to fixed point with
// PRECISION_BITS = 22 fraction bits, accumulated in int32 starting from 0.5 and clipped to
// 0..255 after each pass (the intermediate image is 8-bit, like PIL's). The coefficient
// arithmetic is copied operation for operation, so on the same RGB8 input the output equals
// PIL's byte for byte (tests/python/test_preprocess_pil.py checks this on PNG copies of coco-mini).
//
// Speed: only the R x R window that CenterCrop keeps is computed. Every output pixel depends only
// on its own coefficients, so this is exactly PIL's result for those pixels, at a fraction of
// the work for non-square images (and bounded work for extreme aspect ratios).
#include "clipneg/image.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"

// The coefficients must round like PIL's (built for baseline x86-64, which has no FMA): no fused
// multiply-add. GCC in ISO C mode (-std=c11, CMAKE_C_EXTENSIONS OFF) already uses
// -ffp-contract=off; clang contracts within expressions unless told not to.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

const float CLIP_MEAN[3] = {0.48145466f, 0.4578275f, 0.40821073f};
const float CLIP_STD[3] = {0.26862954f, 0.26130258f, 0.27577711f};

// PIL: "8 bits for result. Filter can have negative areas. [...] two extra bits for overflow".
#define PRECISION_BITS (32 - 8 - 2)
#define BICUBIC_SUPPORT 2.0

// Keys' cubic with a = -0.5, as PIL's bicubic_filter.
static double bicubic_filter(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

// PIL's clip8 table lookup: clip(in >> PRECISION_BITS) to 0..255 (negative sums give 0).
static inline uint8_t clip8(int32_t in) {
    if (in < 0) return 0;
    int32_t v = in >> PRECISION_BITS;
    return v > 255 ? 255 : (uint8_t)v;
}

// Fixed-point filter taps for output samples [out0, out0 + n) of one axis (in_size -> out_size).
typedef struct {
    int ksize;     // taps reserved per output sample
    int *first;    // [n] first input index used
    int *count;    // [n] number of input samples used
    int32_t *k;    // [n, ksize] coefficients, PRECISION_BITS fraction bits
} Taps;

// precompute_coeffs + normalize_coeffs_8bpc from Pillow, with box = (0, in_size).
static void taps_build(Taps *t, int in_size, int out_size, int out0, int n) {
    double scale = (double)((float)in_size - 0.0f) / out_size; // PIL: (double)(in1 - in0) / outSize, box in float
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = BICUBIC_SUPPORT * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    t->ksize = ksize;
    t->first = mallocCheck((size_t)n * sizeof(int));
    t->count = mallocCheck((size_t)n * sizeof(int));
    t->k = callocCheck((size_t)n * ksize, sizeof(int32_t));
    double *w = mallocCheck((size_t)ksize * sizeof(double));
    for (int i = 0; i < n; i++) {
        int xx = out0 + i;
        double center = 0.0 + (xx + 0.5) * scale;
        double ww = 0.0;
        double ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5); // PIL: "Round the value" (truncation toward 0)
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            w[x] = bicubic_filter((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        int32_t *k = t->k + (size_t)i * ksize;
        for (int x = 0; x < xmax; x++) {
            double v = ww != 0.0 ? w[x] / ww : w[x];
            double scaled = v * (1 << PRECISION_BITS);
            k[x] = v < 0 ? (int32_t)(-0.5 + scaled) : (int32_t)(0.5 + scaled);
        }
        t->first[i] = xmin;
        t->count[i] = xmax;
    }
    free(w);
}

static void taps_free(Taps *t) {
    free(t->first);
    free(t->count);
    free(t->k);
}

// Horizontal pass: rows [row0, row0 + nrows) of src (w wide) -> tmp [nrows, cw, 3], PIL's loop.
// It is ~85% of the resize time. Tried and dropped: running it on a transposed strip like the
// vertical pass (the byte transposes cost more than they save: 2.3 vs 1.8 ms for 640x480 -> 224)
// and SSE4.1 4-byte pixel loads (1.3 ms, but x86-only code for ~8% of decode + preprocess time).
static void resample_horizontal(const uint8_t *src, int w, int row0, int nrows, const Taps *t, int cw, uint8_t *tmp) {
    for (int r = 0; r < nrows; r++) {
        const uint8_t *in = src + ((size_t)(row0 + r) * w) * 3;
        uint8_t *out = tmp + (size_t)r * cw * 3;
        for (int xx = 0; xx < cw; xx++) {
            const int32_t *k = t->k + (size_t)xx * t->ksize;
            const uint8_t *p = in + (size_t)t->first[xx] * 3;
            int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int x = 0; x < t->count[xx]; x++) {
                s0 += p[3 * x + 0] * k[x];
                s1 += p[3 * x + 1] * k[x];
                s2 += p[3 * x + 2] * k[x];
            }
            out[3 * xx + 0] = clip8(s0);
            out[3 * xx + 1] = clip8(s1);
            out[3 * xx + 2] = clip8(s2);
        }
    }
}

// Vertical pass: tmp [*, cw, 3] whose row 0 is source row `row0` -> out [ch, cw, 3]. Each output
// row is a weighted sum of whole input rows, so the inner loop is a contiguous, vectorisable
// update; integer sums do not depend on the order of the terms, so this equals PIL's loop.
static void resample_vertical(const uint8_t *tmp, int cw, int row0, const Taps *t, int ch, uint8_t *out) {
    size_t n = (size_t)cw * 3;
    int32_t *acc = mallocCheck(n * sizeof(int32_t));
    for (int yy = 0; yy < ch; yy++) {
        for (size_t i = 0; i < n; i++) acc[i] = 1 << (PRECISION_BITS - 1);
        const int32_t *k = t->k + (size_t)yy * t->ksize;
        for (int j = 0; j < t->count[yy]; j++) {
            const uint8_t *row = tmp + (size_t)(t->first[yy] - row0 + j) * n;
            int32_t kj = k[j];
            for (size_t i = 0; i < n; i++) acc[i] += row[i] * kj;
        }
        uint8_t *dst = out + (size_t)yy * n;
        for (size_t i = 0; i < n; i++) dst[i] = clip8(acc[i]);
    }
    free(acc);
}

int image_resize_bicubic_region(const uint8_t *rgb, int w, int h, int new_w, int new_h, int x0, int y0, int cw, int ch,
                                uint8_t *out) {
    if (w <= 0 || h <= 0 || new_w <= 0 || new_h <= 0 || cw <= 0 || ch <= 0 || x0 < 0 || y0 < 0 || x0 > new_w - cw ||
        y0 > new_h - ch)
        return cn_fail(CN_E_INTERNAL, "image_resize_bicubic_region: bad geometry %dx%d -> %dx%d, window %dx%d at (%d,%d)", w, h,
                       new_w, new_h, cw, ch, x0, y0);
    // PIL skips a pass whose size does not change (need_horizontal / need_vertical).
    int need_h = new_w != w, need_v = new_h != h;
    Taps tv = {0}, th = {0};
    int row0 = y0, nrows = ch; // source rows the vertical pass reads
    if (need_v) {
        taps_build(&tv, h, new_h, y0, ch);
        row0 = tv.first[0];
        nrows = tv.first[ch - 1] + tv.count[ch - 1] - row0;
    }
    uint8_t *tmp = mallocCheck((size_t)nrows * cw * 3);
    if (need_h) {
        taps_build(&th, w, new_w, x0, cw);
        resample_horizontal(rgb, w, row0, nrows, &th, cw, tmp);
        taps_free(&th);
    } else {
        for (int r = 0; r < nrows; r++)
            memcpy(tmp + (size_t)r * cw * 3, rgb + ((size_t)(row0 + r) * w + x0) * 3, (size_t)cw * 3);
    }
    if (need_v) {
        resample_vertical(tmp, cw, row0, &tv, ch, out);
        taps_free(&tv);
    } else {
        memcpy(out, tmp, (size_t)ch * cw * 3);
    }
    free(tmp);
    return CN_OK;
}

int image_resize_bicubic(const uint8_t *rgb, int w, int h, int new_w, int new_h, uint8_t *out) {
    return image_resize_bicubic_region(rgb, w, h, new_w, new_h, 0, 0, new_w, new_h, out);
}

int image_resize_dims(int w, int h, int R, int *new_w, int *new_h) {
    if (w <= 0 || h <= 0 || R <= 0) return cn_fail(CN_E_IMAGE, "resize: bad sizes %dx%d -> %d", w, h, R);
    int shorter = w <= h ? w : h, longer = w <= h ? h : w;
    // Python: int(R * long / short): exact integer product, correctly rounded true division, truncation.
    double q = (double)((int64_t)R * longer) / (double)shorter;
    if (q >= (double)INT_MAX)
        return cn_fail(CN_E_IMAGE, "resize: %dx%d at size %d gives a side of %.0f pixels (aspect ratio too extreme)", w, h, R, q);
    int new_long = (int)q;
    *new_w = w <= h ? R : new_long;
    *new_h = w <= h ? new_long : R;
    return CN_OK;
}

// torchvision center_crop: int(round((size - R) / 2.0)) with Python's round half to even.
static int center_crop_offset(int size, int R) {
    int d = size - R;
    if (d % 2 == 0) return d / 2;
    int k = d / 2; // (size - R) / 2.0 == k + 0.5
    return k % 2 == 0 ? k : k + 1;
}

int image_resize_crop_rgb8(const uint8_t *rgb, int w, int h, int R, uint8_t *out) {
    if (R <= 0 || R > IMAGE_MAX_SIZE) return cn_fail(CN_E_CONFIG, "preprocess: image size %d out of range 1..%d", R, IMAGE_MAX_SIZE);
    int new_w = 0, new_h = 0, rc;
    if ((rc = image_resize_dims(w, h, R, &new_w, &new_h)) != CN_OK) return rc;
    // The shorter side becomes R and the longer one int(R * long / short) >= R, so CenterCrop
    // never pads here (torchvision would pad with 0 if it did).
    return image_resize_bicubic_region(rgb, w, h, new_w, new_h, center_crop_offset(new_w, R), center_crop_offset(new_h, R), R, R, out);
}

void image_normalize(const uint8_t *hwc, int npix, const float mean[3], const float std[3], float *chw) {
    // ToTensor: float32(v) / 255; Normalize: (x - mean) / std, all in float32 as torch does it.
    // Only 256 inputs per channel, so a table gives the same floats for the price of a load.
    float lut[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) {
            float x = (float)v / 255.0f;
            lut[c][v] = (x - mean[c]) / std[c];
        }
    for (int c = 0; c < 3; c++) {
        float *o = chw + (size_t)c * npix;
        for (int p = 0; p < npix; p++) o[p] = lut[c][hwc[(size_t)p * 3 + c]];
    }
}

int image_preprocess(const uint8_t *rgb, int w, int h, int R, const float mean[3], const float std[3], float *out) {
    if (R <= 0 || R > IMAGE_MAX_SIZE) return cn_fail(CN_E_CONFIG, "preprocess: image size %d out of range 1..%d", R, IMAGE_MAX_SIZE);
    uint8_t *crop = mallocCheck((size_t)R * R * 3);
    int rc = image_resize_crop_rgb8(rgb, w, h, R, crop);
    if (rc == CN_OK) image_normalize(crop, R * R, mean, std, out);
    free(crop);
    return rc;
}

int image_load_preprocess(const char *path, int R, float *out) {
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    int rc = image_load_rgb(path, &rgb, &w, &h);
    if (rc != CN_OK) return rc;
    rc = image_preprocess(rgb, w, h, R, CLIP_MEAN, CLIP_STD, out);
    free(rgb);
    return rc;
}
