// bench_gpu_towers.c — clipneg's CUDA towers alone, for bench/gpu/run.py (never a unit test).
//
//   bench_gpu_towers MODEL_DIR PRECISION image BATCH REPEATS [d2d]
//   bench_gpu_towers MODEL_DIR PRECISION text  BATCH REPEATS [TEXT_LEN | ids=FILE] [d2d]
//
// PRECISION: fp32 | tf32 | fp16 | bf16. Inputs are seeded random pixels / token ids (SOT, random body,
// EOT at TEXT_LEN - 1, default 77 = the whole context, what HF computes with max-length padding),
// or ids=FILE: rows of `context` little-endian int32 ids (real tokenised captions, bench/gpu/run.py
// writes them), taken in order and cycled to BATCH rows.
// One warm-up call, then REPEATS timed calls. Default (h2h): the Backend interface, host buffers in
// and out as the evaluator uses it (uploads, compute and the download inside the time). d2d: the
// input uploaded once and the output left on the device (cuda_backend_time_d2d).
// stdout, one JSON object:
//   {"kind": "image", "batch": B, "rates": [items/s per repeat], "gflop_per_item": F, "model": "...",
//    "transfer": "h2h" | "d2d", "tokens_mean": mean EOT + 1 of the texts}
// GFLOP per item counts 2 per multiply-add of every GEMM, convolution and attention product (texts:
// at each text's own length, which is what clipneg computes).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/cuda_backend.h"
#include "clipneg/model.h"

static double transformer_flops(int T, int C, int M, int L) {
    const double t = T, c = C, m = M;
    // qkv, out proj, fc, proj GEMMs + scores and attention-weighted values (full T x T, also for
    // the causal text tower: the same convention as bench/cpu/run.py)
    return L * (2 * t * c * 3 * c + 2 * t * c * c + 2 * 2 * t * c * m + 2 * 2 * t * t * c);
}

static double conv_flops(const ClipConv *cv, int H, int stride, int pad, int *Ho) {
    *Ho = (H + 2 * pad - cv->k) / stride + 1;
    return 2.0 * (*Ho) * (*Ho) * cv->oc * (double)cv->ic * cv->k * cv->k;
}

static double image_flops(const ClipModel *m) {
    const ClipConfig *c = &m->cfg;
    if (c->vision_kind == CLIP_VISION_VIT) {
        const int G = c->image_size / c->patch_size, T = G * G + 1, W = c->vision_width;
        return 2.0 * G * G * 3 * c->patch_size * c->patch_size * W + transformer_flops(T, W, c->vision_mlp, c->vision_layers) +
               2.0 * W * c->embed_dim;
    }
    double f = 0;
    int H = c->image_size, Ho;
    f += conv_flops(&m->stem[0], H, 2, 1, &Ho);
    H = Ho;
    f += conv_flops(&m->stem[1], H, 1, 1, &Ho);
    f += conv_flops(&m->stem[2], H, 1, 1, &Ho);
    H /= 2;
    int nb = 0;
    for (int s = 0; s < 4; s++) nb += c->resnet_layers[s];
    for (int i = 0; i < nb; i++) {
        const ClipBottleneck *bn = &m->bottlenecks[i];
        const int Hs = H / bn->stride;
        f += conv_flops(&bn->conv1, H, 1, 0, &Ho) + conv_flops(&bn->conv2, H, 1, 1, &Ho) + conv_flops(&bn->conv3, Hs, 1, 0, &Ho);
        if (bn->down.w) f += conv_flops(&bn->down, Hs, 1, 0, &Ho);
        H = Hs;
    }
    const double E = 32.0 * c->vision_width, T = H * H + 1;
    return f + 2 * 2 * T * E * E + 2 * E * E + 2 * 2 * T * E + 2 * E * c->embed_dim;  // k, v, q, attention, c_proj
}

static double text_flops(const ClipModel *m, int T) {
    const ClipConfig *c = &m->cfg;
    return transformer_flops(T, c->text_width, c->text_mlp, c->text_layers) + 2.0 * c->text_width * c->embed_dim;
}

static uint64_t g_rng = 12345;
static uint64_t next_u64(void) {
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: bench_gpu_towers MODEL_DIR fp32|tf32|fp16|bf16 image|text BATCH REPEATS [TEXT_LEN | ids=FILE] [d2d]\n");
        return CN_E_USAGE;
    }
    Precision prec;
    if (!strcmp(argv[2], "fp32")) prec = PREC_FP32;
    else if (!strcmp(argv[2], "tf32")) prec = PREC_TF32;
    else if (!strcmp(argv[2], "fp16")) prec = PREC_FP16;
    else if (!strcmp(argv[2], "bf16")) prec = PREC_BF16;
    else cn_die(CN_E_USAGE, "unknown precision '%s'", argv[2]);
    const int is_image = !strcmp(argv[3], "image"), B = atoi(argv[4]);
    int reps = atoi(argv[5]);
    if (B <= 0 || reps <= 0) cn_die(CN_E_USAGE, "BATCH and REPEATS must be positive");
    int d2d = 0, text_len_arg = 0;
    const char *ids_file = NULL;
    for (int i = 6; i < argc; i++) {
        if (!strcmp(argv[i], "d2d")) d2d = 1;
        else if (!strncmp(argv[i], "ids=", 4)) ids_file = argv[i] + 4;
        else if ((text_len_arg = atoi(argv[i])) <= 0) cn_die(CN_E_USAGE, "unknown argument '%s'", argv[i]);
    }
    if (clipneg_cuda_device_count() == 0) cn_die(CN_E_CONFIG, "no CUDA GPU visible");

    ClipModel m;
    ClipLoadOptions opt = {.force_quick_gelu = -1};
    if (clip_model_load(&m, argv[1], &opt) != CN_OK) cn_die(CN_E_MODEL, "%s", cn_last_error());
    const ClipConfig *c = &m.cfg;
    const int ctx = c->context_length;
    const int text_len = text_len_arg ? text_len_arg : ctx;
    if (text_len < 2 || text_len > ctx) cn_die(CN_E_USAGE, "TEXT_LEN must be in [2, %d]", ctx);

    Backend be = {0};
    be.model = &m;
    if (cuda_backend_init(&be, prec, &m, 0) != CN_OK) cn_die(CN_E_CONFIG, "%s", cn_last_error());

    float *out = mallocCheck((size_t)B * c->embed_dim * sizeof(float));
    float *pixels = NULL;
    int32_t *ids = NULL;
    double gflop, tokens_mean = 0;
    if (is_image) {
        const size_t n = (size_t)B * 3 * c->image_size * c->image_size;
        pixels = mallocCheck(n * sizeof(float));
        for (size_t i = 0; i < n; i++) pixels[i] = (float)((int)(next_u64() % 2001) - 1000) / 500.0f;
        gflop = image_flops(&m) / 1e9;
    } else {
        ids = callocCheck((size_t)B * ctx, sizeof(int32_t));
        const int vocab = c->vocab_size;
        if (ids_file) {
            void *raw = NULL;
            size_t len = 0;
            if (cn_read_file(ids_file, (char **)&raw, &len) != CN_OK) cn_die(CN_E_IO, "%s", cn_last_error());
            const size_t row_bytes = (size_t)ctx * sizeof(int32_t), n_rows = len / row_bytes;
            if (n_rows == 0 || len % row_bytes) cn_die(CN_E_DATA, "%s: %zu bytes is not rows of %d int32 ids", ids_file, len, ctx);
            for (int b = 0; b < B; b++) memcpy(ids + (size_t)b * ctx, (char *)raw + (size_t)(b % n_rows) * row_bytes, row_bytes);
            free(raw);
        } else {
            for (int b = 0; b < B; b++) {
                int32_t *row = ids + (size_t)b * ctx;
                row[0] = vocab - 2;
                for (int t = 1; t < text_len - 1; t++) row[t] = 1 + (int32_t)(next_u64() % (uint64_t)(vocab - 3));
                row[text_len - 1] = vocab - 1;
            }
        }
        gflop = 0;
        for (int b = 0; b < B; b++) {  // each text at its own length: EOT (the largest id) + 1
            const int32_t *row = ids + (size_t)b * ctx;
            int eot = 0;
            for (int t = 1; t < ctx; t++)
                if (row[t] > row[eot]) eot = t;
            if (row[eot] >= vocab) cn_die(CN_E_DATA, "text %d: token id %d outside the vocabulary", b, (int)row[eot]);
            gflop += text_flops(&m, eot + 1) / 1e9 / B;
            tokens_mean += (eot + 1.0) / B;
        }
    }
    printf("{\"kind\": \"%s\", \"model\": \"%s\", \"precision\": \"%s\", \"batch\": %d, \"text_len\": %d, "
           "\"tokens_mean\": %.2f, \"transfer\": \"%s\", \"gflop_per_item\": %.4f, \"rates\": [",
           is_image ? "image" : "text", c->name, argv[2], B, is_image ? 0 : text_len, tokens_mean, d2d ? "d2d" : "h2h", gflop);
    if (d2d) {
        double *secs = mallocCheck((size_t)reps * sizeof(double));
        const int rc = cuda_backend_time_d2d(&be, is_image, is_image ? (const void *)pixels : (const void *)ids, B, reps, secs);
        if (rc != CN_OK) cn_die(rc, "%s", cn_last_error());
        for (int r = 0; r < reps; r++) printf("%s%.3f", r ? ", " : "", B / secs[r]);
        free(secs);
        reps = 0;  // the h2h loop below runs its warm-up call only: `out` gets a checksum
    }
    for (int r = 0; r < reps + 1; r++) {
        const double t0 = cn_now();
        const int rc = is_image ? be.encode_images(&be, pixels, B, out) : be.encode_texts(&be, ids, B, out);
        const double dt = cn_now() - t0;
        if (rc != CN_OK) cn_die(rc, "%s", cn_last_error());
        if (r > 0) printf("%s%.3f", r > 1 ? ", " : "", B / dt);  // the first call warms up (pool, heuristics)
    }
    double checksum = 0;
    for (long i = 0; i < (long)B * c->embed_dim; i++) checksum += out[i];
    printf("], \"checksum\": %.6f}\n", checksum);
    be.destroy(&be);
    free(out);
    free(pixels);
    free(ids);
    clip_model_free(&m);
    return 0;
}
