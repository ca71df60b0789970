// cmd_preprocess.c — `clipneg preprocess`: run the image pipeline (src/image_*.c) on files and
// print a summary or write the raw result, to compare with open_clip or inspect one image.
//
//   clipneg preprocess --size R [--stage tensor|crop|decode] [--threads N] [-o OUT] IMG...
//
// Stages (what is written with -o, images concatenated in argument order, little-endian):
//   tensor  [N, 3, R, R] float32   open_clip's preprocess(img): the model input (default)
//   crop    [N, R, R, 3] uint8     after Resize + CenterCrop, before ToTensor/Normalize
//   decode  per image [H, W, 3] uint8 (sizes vary: one "W H path" line per image on stdout)
// Without -o, one summary line per image goes to stdout (shape, min/max/mean per channel).
// If any image fails, every failure is reported, nothing is written, and the exit code is 8.
// Images are processed on a thread pool (default: cn_threads()); the timing goes to stderr.
#define _POSIX_C_SOURCE 200809L // stat
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clipneg/commands.h"
#include "clipneg/common.h"
#include "clipneg/image.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "clipneg preprocess writes raw little-endian floats: big-endian hosts are not supported"
#endif

enum { STAGE_TENSOR, STAGE_CROP, STAGE_DECODE };

typedef struct {
    uint8_t *bytes; // result of the stage (float tensor stored as bytes)
    size_t nbytes;
    int w, h;       // decoded size
    int rc;
    char err[512];
} Result;

static void usage(void) {
    fprintf(stderr, "usage: clipneg preprocess --size R [--stage tensor|crop|decode] [--threads N] [-o OUT] IMG...\n"
                    "  tensor: [N,3,R,R] float32 (open_clip preprocess), crop: [N,R,R,3] uint8, decode: [H,W,3] uint8 per image\n");
}

// Decode + the requested stage for one image; thread-safe (no shared state).
static void run_one(const char *path, int stage, int R, Result *res) {
    memset(res, 0, sizeof *res);
    uint8_t *rgb = NULL;
    res->rc = image_load_rgb(path, &rgb, &res->w, &res->h);
    if (res->rc == CN_OK) {
        if (stage == STAGE_DECODE) {
            res->bytes = rgb;
            res->nbytes = (size_t)res->w * res->h * 3;
            return;
        }
        uint8_t *crop = mallocCheck((size_t)R * R * 3);
        res->rc = image_resize_crop_rgb8(rgb, res->w, res->h, R, crop);
        free(rgb);
        if (res->rc == CN_OK && stage == STAGE_CROP) {
            res->bytes = crop;
            res->nbytes = (size_t)R * R * 3;
            return;
        }
        if (res->rc == CN_OK) {
            float *t = mallocCheck((size_t)3 * R * R * sizeof(float));
            image_normalize(crop, R * R, CLIP_MEAN, CLIP_STD, t);
            res->bytes = (uint8_t *)t;
            res->nbytes = (size_t)3 * R * R * sizeof(float);
        }
        free(crop);
    }
    if (res->rc != CN_OK) snprintf(res->err, sizeof res->err, "%s", cn_last_error());
}

static void print_summary(const char *path, int stage, int R, const Result *res) {
    double mn[3] = {1e30, 1e30, 1e30}, mx[3] = {-1e30, -1e30, -1e30}, sum[3] = {0, 0, 0};
    size_t npix;
    if (stage == STAGE_TENSOR) {
        npix = (size_t)R * R;
        const float *t = (const float *)res->bytes;
        for (int c = 0; c < 3; c++)
            for (size_t p = 0; p < npix; p++) {
                double v = t[c * npix + p];
                mn[c] = v < mn[c] ? v : mn[c];
                mx[c] = v > mx[c] ? v : mx[c];
                sum[c] += v;
            }
        printf("%s: [3,%d,%d] float32 (from %dx%d)", path, R, R, res->w, res->h);
    } else {
        npix = res->nbytes / 3;
        for (size_t p = 0; p < npix; p++)
            for (int c = 0; c < 3; c++) {
                double v = res->bytes[p * 3 + c];
                mn[c] = v < mn[c] ? v : mn[c];
                mx[c] = v > mx[c] ? v : mx[c];
                sum[c] += v;
            }
        if (stage == STAGE_CROP) printf("%s: [%d,%d,3] uint8 (from %dx%d)", path, R, R, res->w, res->h);
        else printf("%s: [%d,%d,3] uint8", path, res->h, res->w);
    }
    static const char *names[3] = {"R", "G", "B"};
    for (int c = 0; c < 3; c++) printf("  %s min %.6g max %.6g mean %.6g", names[c], mn[c], mx[c], sum[c] / (double)npix);
    printf("\n");
}

int cmd_preprocess(int argc, char **argv) {
    int R = 0, stage = STAGE_TENSOR, threads = cn_threads();
    const char *out_path = NULL;
    int first_img = argc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "--size") || !strcmp(a, "-s")) && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v <= 0 || v > IMAGE_MAX_SIZE) {
                fprintf(stderr, "clipneg preprocess: --size must be an integer in 1..%d, got '%s'\n", IMAGE_MAX_SIZE, argv[i]);
                return CN_E_USAGE;
            }
            R = (int)v;
        } else if (!strcmp(a, "--stage") && i + 1 < argc) {
            const char *s = argv[++i];
            if (!strcmp(s, "tensor")) stage = STAGE_TENSOR;
            else if (!strcmp(s, "crop")) stage = STAGE_CROP;
            else if (!strcmp(s, "decode")) stage = STAGE_DECODE;
            else {
                fprintf(stderr, "clipneg preprocess: --stage must be tensor, crop or decode, got '%s'\n", s);
                return CN_E_USAGE;
            }
        } else if (!strcmp(a, "--threads") && i + 1 < argc) {
            threads = atoi(argv[++i]);
            if (threads < 1) {
                fprintf(stderr, "clipneg preprocess: --threads must be >= 1\n");
                return CN_E_USAGE;
            }
        } else if (!strcmp(a, "-o") && i + 1 < argc) {
            out_path = argv[++i];
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return CN_OK;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "clipneg preprocess: unknown or incomplete option '%s'\n", a);
            usage();
            return CN_E_USAGE;
        } else {
            first_img = i;
            break;
        }
    }
    int n = argc - first_img;
    if (n <= 0 || (R == 0 && stage != STAGE_DECODE)) {
        usage();
        return CN_E_USAGE;
    }
    char **paths = argv + first_img;

    // Process in chunks so memory stays bounded however many images are given, then write in order.
    int chunk = threads * 8 < 64 ? 64 : threads * 8;
    Result *res = callocCheck((size_t)chunk, sizeof(Result));
    FILE *out = NULL;
    if (out_path && !(out = fopen(out_path, "wb"))) {
        cn_warn("cannot create '%s': %s", out_path, strerror(errno));
        free(res);
        return CN_E_IO;
    }
    int failed = 0;
    double t0 = cn_now();
    for (int base = 0; base < n; base += chunk) {
        int m = n - base < chunk ? n - base : chunk;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
        for (int i = 0; i < m; i++) run_one(paths[base + i], stage, R, &res[i]);
        for (int i = 0; i < m; i++) {
            const char *p = paths[base + i];
            if (res[i].rc != CN_OK) {
                fprintf(stderr, "[clipneg] error: %s\n", res[i].err);
                failed++;
            } else if (out && !failed) {
                fwriteCheck(res[i].bytes, 1, res[i].nbytes, out);
                if (stage == STAGE_DECODE) printf("%d %d %s\n", res[i].w, res[i].h, p);
            } else if (!out) {
                print_summary(p, stage, R, &res[i]);
            }
            free(res[i].bytes);
        }
    }
    double dt = cn_now() - t0;
    free(res);
    cn_log("preprocess: %d image(s) in %.3f s (%.1f images/s, %d thread(s), stage %s)", n, dt, n / (dt > 0 ? dt : 1e-9), threads,
           stage == STAGE_TENSOR ? "tensor" : stage == STAGE_CROP ? "crop" : "decode");
    if (out) {
        fcloseCheck(out);
        struct stat st; // a failure must not leave a partial file (but never remove /dev/null & co.)
        if (failed && stat(out_path, &st) == 0 && S_ISREG(st.st_mode)) remove(out_path);
    }
    if (failed) {
        cn_warn("%d of %d image(s) failed%s", failed, n, out_path ? "; nothing written" : "");
        return CN_E_IMAGE;
    }
    return CN_OK;
}
