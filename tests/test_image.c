// test_image.c — decoding odd, bad and hostile images; preprocessing against open_clip.
// Expected pixels come from PIL 9.4 / open_clip 2.24 (tests/reference/make_image_fixtures.py
// wrote tests/fixtures/images/*.ppm and *.r32.f32); clipneg never wrote any of them.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/image.h"
#include "test_check.h"

static char g_dir[4096];

static const char *fixture(const char *name) {
    static _Thread_local char path[4352];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    return path;
}

static uint8_t *read_all(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    *len = fread(b, 1, (size_t)n, fp);
    fclose(fp);
    return b;
}

// Binary PPM (P6, maxval 255) as PIL writes it.
static uint8_t *read_ppm(const char *path, int *w, int *h) {
    size_t len = 0;
    uint8_t *b = read_all(path, &len);
    if (!b) return NULL;
    int maxval = 0, off = 0;
    if (sscanf((const char *)b, "P6 %d %d %d%n", w, h, &maxval, &off) != 3 || maxval != 255) {
        free(b);
        return NULL;
    }
    off++; // the single whitespace after maxval
    size_t n = (size_t)*w * *h * 3;
    if ((size_t)off + n > len) {
        free(b);
        return NULL;
    }
    uint8_t *px = malloc(n);
    memcpy(px, b + off, n);
    free(b);
    return px;
}

// ---- 1. files that must be refused: exact status and the reason in the message ----------------
static void test_refused(void) {
    static const struct {
        const char *file, *substr;
    } cases[] = {
        {"empty.jpg", "empty file (0 bytes)"},
        {"truncated.jpg", "truncated JPEG: no end-of-image marker"},
        {"no_eoi.jpg", "truncated JPEG"},
        {"truncated.png", "truncated PNG: chunk 'IDAT'"},
        {"not_an_image.jpg", "not a JPEG or PNG file"},
        {"anim.gif", "unsupported image format GIF"},
        {"gray16.png", "16-bit grayscale"},
        {"bomb_30000.png", "refusing 30000x30000 image: 900000000 pixels exceeds IMAGE_MAX_PIXELS"},
        {"bomb_30000.jpg", "refusing 30000x30000 image: 900000000 pixels exceeds IMAGE_MAX_PIXELS"},
        {"zbomb.png", "zlib decompression bomb"},
        {"cmyk_noadobe.jpg", "without an Adobe APP14 marker"},
        {"jfif_rgb_ids.jpg", "ambiguous colour space"},
        {"no_dht.jpg", "Huffman table DC0 that the file does not define"},
        {"does_not_exist.jpg", "cannot open image: No such file or directory"},
        {".", "not a regular file"}, // the fixtures directory itself
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = fixture(cases[i].file);
        uint8_t *rgb = (uint8_t *)1;
        int w = -1, h = -1;
        cn_clear_error();
        double t0 = cn_now();
        int rc = image_load_rgb(path, &rgb, &w, &h);
        double dt = cn_now() - t0;
        const char *msg = cn_last_error();
        CHECK_MSG(rc == CN_E_IMAGE, "%s: status %d, want CN_E_IMAGE (%d); message: %s", cases[i].file, rc, CN_E_IMAGE, msg);
        CHECK_MSG(strstr(msg, cases[i].substr) != NULL, "%s: message '%s' lacks '%s'", cases[i].file, msg, cases[i].substr);
        CHECK_MSG(strstr(msg, path) == msg, "%s: message '%s' does not start with the file name", cases[i].file, msg);
        CHECK_MSG(rgb == NULL && w == 0 && h == 0, "%s: outputs not cleared on failure", cases[i].file);
        // The bombs are refused from their headers: no 2.7 GB allocation, no 900 Mpx decode.
        if (strstr(cases[i].file, "bomb")) CHECK_MSG(dt < 0.5, "%s: refusing took %.3f s", cases[i].file, dt);
    }
    printf("refused: %zu cases\n", sizeof cases / sizeof cases[0]);
}

// ---- 2. odd but valid files: pixels against PIL's convert("RGB") ------------------------------
static void test_decoded_pixels(void) {
    // PNG decoding is lossless, and every conversion PIL applies (palette lookup, gray -> RGB,
    // alpha dropped, 16 -> 8 bit by the high byte, 1/2/4-bit gray scaled x255/x85/x17) is exact
    // in stb too: tolerance 0.
    // JPEG: stb's IDCT, chroma upsampling and YCbCr->RGB round differently from libjpeg-turbo's
    // (PIL): measured max 2 / mean 0.075 levels on these fixtures and max 3 / mean 0.013 on the
    // 159 coco-mini images; limits 4 (max) and 0.25 (mean) catch a real colour or geometry bug,
    // which moves pixels by tens of levels.
    static const struct {
        const char *file;
        int max_diff;
        double max_mean;
    } cases[] = {
        {"rgb.png", 0, 0},      {"rgba.png", 0, 0},       {"la.png", 0, 0},         {"gray.png", 0, 0},
        {"pal8_trns.png", 0, 0}, {"pal4.png", 0, 0},      {"gray4.png", 0, 0},      {"gray1.png", 0, 0},
        {"rgb16.png", 0, 0},    {"rgba16.png", 0, 0},     {"interlaced.png", 0, 0}, {"no_iend.png", 0, 0},
        {"tall.png", 0, 0},     {"tiny.png", 0, 0},       {"down.png", 0, 0},       {"gray.jpg", 4, 0.25},
        {"cmyk.jpg", 4, 0.25},
        {"progressive420.jpg", 4, 0.25}, {"rgb444.jpg", 4, 0.25},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char ppm[256];
        snprintf(ppm, sizeof ppm, "%s.ppm", cases[i].file);
        int ew = 0, eh = 0, w = 0, h = 0;
        uint8_t *want = read_ppm(fixture(ppm), &ew, &eh);
        CHECK_MSG(want != NULL, "cannot read %s", ppm);
        if (!want) continue;
        uint8_t *got = NULL;
        int rc = image_load_rgb(fixture(cases[i].file), &got, &w, &h);
        CHECK_MSG(rc == CN_OK, "%s: status %d: %s", cases[i].file, rc, cn_last_error());
        CHECK_MSG(w == ew && h == eh, "%s: %dx%d, PIL %dx%d", cases[i].file, w, h, ew, eh);
        if (rc == CN_OK && w == ew && h == eh) {
            int maxd = 0;
            double sum = 0;
            size_t n = (size_t)w * h * 3;
            for (size_t k = 0; k < n; k++) {
                int d = abs((int)got[k] - (int)want[k]);
                maxd = d > maxd ? d : maxd;
                sum += d;
            }
            printf("decode %-20s %3dx%-3d max |diff| %d, mean %.4f levels\n", cases[i].file, w, h, maxd, sum / n);
            CHECK_MSG(maxd <= cases[i].max_diff, "%s: max |diff| %d > %d", cases[i].file, maxd, cases[i].max_diff);
            CHECK_MSG(sum / n <= cases[i].max_mean, "%s: mean |diff| %.4f > %.4f", cases[i].file, sum / n, cases[i].max_mean);
        }
        free(got);
        free(want);
    }
}

// ---- 3. preprocessing against open_clip's preprocess (PNG: decoding is exact) ------------------
static void test_preprocess_vs_open_clip(void) {
    // rgb.png 61x47 -> 41x32, crop x offset round(4.5) = 4 (half to even); tall.png 23x71 -> 32x98,
    // y offset 33; tiny.png 5x3 -> 53x32 (upsampling), x offset round(10.5) = 10; rgba.png: alpha dropped;
    // down.png 150x110 -> 43x32 (x3.4 downscale: wide kernels with negative lobes).
    static const char *files[] = {"rgb.png", "tall.png", "tiny.png", "rgba.png", "down.png"};
    const int R = 32, n = 3 * R * R;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char ref[256];
        snprintf(ref, sizeof ref, "%s.r32.f32", files[i]);
        size_t len = 0;
        float *want = (float *)read_all(fixture(ref), &len);
        CHECK_MSG(want && len == (size_t)n * sizeof(float), "%s: missing or wrong size (%zu bytes)", ref, len);
        if (!want || len != (size_t)n * sizeof(float)) {
            free(want);
            continue;
        }
        float *got = malloc((size_t)n * sizeof(float));
        int rc = image_load_preprocess(fixture(files[i]), R, got);
        CHECK_MSG(rc == CN_OK, "%s: %s", files[i], cn_last_error());
        // The 8-bit stage must be identical to PIL's: recover PIL's bytes from the reference
        // tensor (v = round((x * std + mean) * 255), exact since x came from v / 255) and compare.
        uint8_t *rgb = NULL, *crop = malloc((size_t)R * R * 3);
        int w = 0, h = 0, bytes_off = 0;
        if (image_load_rgb(fixture(files[i]), &rgb, &w, &h) == CN_OK && image_resize_crop_rgb8(rgb, w, h, R, crop) == CN_OK) {
            for (int c = 0; c < 3; c++)
                for (int p = 0; p < R * R; p++) {
                    int v = (int)lrint(((double)want[c * R * R + p] * CLIP_STD[c] + CLIP_MEAN[c]) * 255.0);
                    bytes_off += v != crop[p * 3 + c];
                }
        } else {
            bytes_off = -1;
        }
        double maxd = 0;
        for (int k = 0; k < n; k++) maxd = fmax(maxd, fabs((double)got[k] - want[k]));
        printf("preprocess %-10s R=%d: %d bytes differ from PIL's crop, max |diff| %.3g vs open_clip\n", files[i], R, bytes_off, maxd);
        CHECK_MSG(bytes_off == 0, "%s: %d resized bytes differ from PIL", files[i], bytes_off);
        // Same float32 operations as torch ((v / 255 - mean) / std): measured 0; 1e-6 leaves room
        // only for a different rounding of the mean/std constants, not for any pixel change
        // (one 8-bit level is 1 / 255 / 0.27 = 0.0146 here).
        CHECK_MSG(maxd <= 1e-6, "%s: max |diff| %.3g vs open_clip", files[i], maxd);
        free(rgb);
        free(crop);
        free(got);
        free(want);
    }
}

// ---- 4. geometry rules ----------------------------------------------------------------------------
static void test_geometry(void) {
    static const struct {
        int w, h, R, nw, nh;
    } cases[] = {
        {640, 480, 224, 298, 224}, // int(224 * 640 / 480) = int(298.67)
        {480, 640, 224, 224, 298}, {640, 427, 224, 335, 224}, {500, 333, 336, 504, 336},
        {224, 224, 224, 224, 224}, {5, 3, 32, 53, 32},        {1, 1000, 224, 224, 224000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int nw = 0, nh = 0;
        int rc = image_resize_dims(cases[i].w, cases[i].h, cases[i].R, &nw, &nh);
        CHECK_MSG(rc == CN_OK && nw == cases[i].nw && nh == cases[i].nh, "resize_dims(%d,%d,%d) = %dx%d, want %dx%d", cases[i].w,
              cases[i].h, cases[i].R, nw, nh, cases[i].nw, cases[i].nh);
    }
    // Same size: torchvision/PIL do not resample at all, so pixels pass through unchanged.
    uint8_t img[16 * 16 * 3], out[16 * 16 * 3];
    for (int i = 0; i < 16 * 16 * 3; i++) img[i] = (uint8_t)(i * 37 + 11);
    CHECK_MSG(image_resize_crop_rgb8(img, 16, 16, 16, out) == CN_OK && !memcmp(img, out, sizeof img), "16x16 at R=16 changed pixels");
    // Shorter side already R and int(R * long / short) == long: no resampling, only CenterCrop,
    // whose offset is round((long - R) / 2) half to even: 19 -> round(1.5) = 2, 20 -> 2, 21 -> round(2.5) = 2, 23 -> round(3.5) = 4.
    static const int longs[] = {19, 20, 21, 23}, tops[] = {2, 2, 2, 4};
    for (int i = 0; i < 4; i++) {
        uint8_t tall[16 * 23 * 3], win[16 * 16 * 3];
        for (int k = 0; k < 16 * longs[i] * 3; k++) tall[k] = (uint8_t)(k * 13 + 5);
        int rc = image_resize_crop_rgb8(tall, 16, longs[i], 16, win);
        CHECK_MSG(rc == CN_OK && !memcmp(win, tall + (size_t)tops[i] * 16 * 3, sizeof win), "16x%d at R=16: crop is not rows %d..%d",
              longs[i], tops[i], tops[i] + 15);
        uint8_t wide[23 * 16 * 3], wwin[16 * 16 * 3];
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < longs[i]; x++) memcpy(wide + ((size_t)y * longs[i] + x) * 3, tall + ((size_t)x * 16 + y) * 3, 3);
        rc = image_resize_crop_rgb8(wide, longs[i], 16, 16, wwin);
        int same = rc == CN_OK;
        for (int y = 0; y < 16 && same; y++)
            for (int x = 0; x < 16; x++) same &= !memcmp(wwin + ((size_t)y * 16 + x) * 3, wide + ((size_t)y * longs[i] + x + tops[i]) * 3, 3);
        CHECK_MSG(same, "%dx16 at R=16: crop is not columns %d..%d", longs[i], tops[i], tops[i] + 15);
    }
    float t[3 * 4 * 4];
    CHECK_MSG(image_preprocess(img, 16, 16, 0, CLIP_MEAN, CLIP_STD, t) == CN_E_CONFIG, "R=0 accepted");
    CHECK_MSG(image_preprocess(img, 0, 16, 4, CLIP_MEAN, CLIP_STD, t) != CN_OK, "width 0 accepted");
    // A flat image stays flat (coefficients sum to 1 in fixed point, up to PIL's rounding).
    memset(img, 200, sizeof img);
    uint8_t small[5 * 5 * 3];
    CHECK_MSG(image_resize_crop_rgb8(img, 16, 16, 5, small) == CN_OK, "flat resize failed");
    int flat = 1;
    for (size_t i = 0; i < sizeof small; i++) flat &= small[i] == 200;
    CHECK_MSG(flat, "a flat 200 image did not stay 200 after resizing to 5x5");
    // Extreme aspect ratio: only the crop window is computed, so this is quick and bounded.
    int W = 1, H = 200000;
    uint8_t *col = malloc((size_t)W * H * 3);
    for (int i = 0; i < W * H * 3; i++) col[i] = (uint8_t)(i / 3 % 251);
    float *tt = malloc(sizeof(float) * 3 * 224 * 224);
    double t0 = cn_now();
    int rc = image_preprocess(col, W, H, 224, CLIP_MEAN, CLIP_STD, tt);
    CHECK_MSG(rc == CN_OK, "1x200000 image: %s", cn_last_error());
    CHECK_MSG(cn_now() - t0 < 2.0, "1x200000 image took %.2f s", cn_now() - t0);
    free(col);
    free(tt);
}

// ---- 5. corrupt inputs never crash (run under ASan/UBSan in CI) --------------------------------
static void test_corruptions(void) {
    static const char *files[] = {"rgb444.jpg", "progressive420.jpg", "rgb.png", "interlaced.png", "pal4.png"};
    int ok = 0, refused = 0;
    uint32_t seed = 12345;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t len = 0;
        uint8_t *orig = read_all(fixture(files[f]), &len);
        CHECK_MSG(orig != NULL, "cannot read %s", files[f]);
        if (!orig) continue;
        uint8_t *buf = malloc(len);
        // Every prefix (truncation at every byte) and 300 random multi-byte corruptions.
        for (size_t it = 0; it < len + 300; it++) {
            int mutate = it >= len;
            size_t n = mutate ? len : it;
            memcpy(buf, orig, n);
            if (mutate)
                for (int k = 0; k < 1 + (int)(seed % 4); k++) {
                    seed = seed * 1664525u + 1013904223u;
                    buf[seed % len] = (uint8_t)(seed >> 24);
                }
            uint8_t *rgb = NULL;
            int w = 0, h = 0;
            int rc = image_decode_rgb(buf, n, files[f], &rgb, &w, &h);
            CHECK_MSG(rc == CN_OK || rc == CN_E_IMAGE, "%s (%s %zu): status %d: %s", files[f], mutate ? "mutant" : "prefix", n, rc,
                  cn_last_error());
            if (rc == CN_OK) {
                ok++;
                CHECK_MSG(rgb && w > 0 && h > 0 && (int64_t)w * h <= IMAGE_MAX_PIXELS, "%s: OK without pixels", files[f]);
                if (!mutate) CHECK_MSG(n == len || strstr(files[f], ".png"), "%s: prefix of %zu bytes decoded", files[f], n);
            } else {
                refused++;
                CHECK_MSG(cn_last_error()[0] != '\0', "%s: refused without a message", files[f]);
            }
            free(rgb);
        }
        free(buf);
        free(orig);
    }
    printf("corruptions: %d decoded, %d refused, none crashed\n", ok, refused);
}

// ---- 6. concurrent decoding gives the serial result, and per-thread error messages -----------
static void test_threads(void) {
    static const char *files[] = {"rgb444.jpg", "cmyk.jpg", "rgb.png", "pal4.png", "truncated.jpg", "zbomb.png", "gray.jpg", "la.png"};
    enum { NF = sizeof files / sizeof files[0], REPS = 8 };
    uint64_t serial[NF];
    int serial_rc[NF];
    for (int i = 0; i < NF; i++) {
        uint8_t *rgb = NULL;
        int w = 0, h = 0;
        serial_rc[i] = image_load_rgb(fixture(files[i]), &rgb, &w, &h);
        uint64_t hsh = 1469598103934665603ull;
        for (size_t k = 0; rgb && k < (size_t)w * h * 3; k++) hsh = (hsh ^ rgb[k]) * 1099511628211ull;
        serial[i] = hsh;
        free(rgb);
    }
    int mismatches = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(4) reduction(+ : mismatches)
    for (int j = 0; j < NF * REPS; j++) {
        int i = j % NF;
        uint8_t *rgb = NULL;
        int w = 0, h = 0;
        int rc = image_load_rgb(fixture(files[i]), &rgb, &w, &h);
        uint64_t hsh = 1469598103934665603ull;
        for (size_t k = 0; rgb && k < (size_t)w * h * 3; k++) hsh = (hsh ^ rgb[k]) * 1099511628211ull;
        if (rc != serial_rc[i] || hsh != serial[i]) mismatches++;
        if (rc != CN_OK && !strstr(cn_last_error(), files[i])) mismatches++; // message of this thread's file
        free(rgb);
    }
    CHECK_MSG(mismatches == 0, "%d concurrent decodes differ from the serial ones", mismatches);
}

int main(void) {
    const char *src = getenv("CLIPNEG_SOURCE_DIR");
    snprintf(g_dir, sizeof g_dir, "%s/tests/fixtures/images", src ? src : ".");
    size_t len = 0;
    uint8_t *manifest = read_all(fixture("MANIFEST.txt"), &len);
    if (!manifest) {
        fprintf(stderr, "fixtures not found in %s (set CLIPNEG_SOURCE_DIR)\n", g_dir);
        return 1;
    }
    free(manifest);
    test_refused();
    test_decoded_pixels();
    test_preprocess_vs_open_clip();
    test_geometry();
    test_corruptions();
    test_threads();
    if (g_failures) {
        fprintf(stderr, "%d check(s) failed\n", g_failures);
        return 1;
    }
    printf("all image checks passed\n");
    return 0;
}
