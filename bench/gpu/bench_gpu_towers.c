// bench_gpu_towers.c — clipneg's CUDA towers alone, for bench/gpu/run.py (never a unit test).
//
//   bench_gpu_towers MODEL_DIR PRECISION image BATCH REPEATS
//   bench_gpu_towers MODEL_DIR PRECISION text  BATCH REPEATS [TEXT_LEN]
//
// PRECISION: fp32 | tf32 | fp16 | bf16. Inputs are seeded random pixels / token ids (SOT, random body,
// EOT at TEXT_LEN - 1, default 77 = the whole context, what HF computes with max-length padding).
// One warm-up call, then REPEATS timed calls of the Backend interface (host buffers in and out, as
// the evaluator uses it: uploads, compute and the download are all inside the time).
// stdout, one JSON object:
//   {"kind": "image", "batch": B, "rates": [items/s per repeat], "gflop_per_item": F, "model": "..."}
// GFLOP per item counts 2 per multiply-add of every GEMM, convolution and attention product.
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
        fprintf(stderr, "usage: bench_gpu_towers MODEL_DIR fp32|tf32|fp16|bf16 image|text BATCH REPEATS [TEXT_LEN]\n");
        return CN_E_USAGE;
    }
    Precision prec;
    if (!strcmp(argv[2], "fp32")) prec = PREC_FP32;
    else if (!strcmp(argv[2], "tf32")) prec = PREC_TF32;
    else if (!strcmp(argv[2], "fp16")) prec = PREC_FP16;
    else if (!strcmp(argv[2], "bf16")) prec = PREC_BF16;
    else cn_die(CN_E_USAGE, "unknown precision '%s'", argv[2]);
    const int is_image = !strcmp(argv[3], "image"), B = atoi(argv[4]), reps = atoi(argv[5]);
    if (B <= 0 || reps <= 0) cn_die(CN_E_USAGE, "BATCH and REPEATS must be positive");
    if (clipneg_cuda_device_count() == 0) cn_die(CN_E_CONFIG, "no CUDA GPU visible");

    ClipModel m;
    ClipLoadOptions opt = {.force_quick_gelu = -1};
    if (clip_model_load(&m, argv[1], &opt) != CN_OK) cn_die(CN_E_MODEL, "%s", cn_last_error());
    const ClipConfig *c = &m.cfg;
    const int ctx = c->context_length;
    const int text_len = argc > 6 ? atoi(argv[6]) : ctx;
    if (text_len < 2 || text_len > ctx) cn_die(CN_E_USAGE, "TEXT_LEN must be in [2, %d]", ctx);

    Backend be = {0};
    be.model = &m;
    if (cuda_backend_init(&be, prec, &m, 0) != CN_OK) cn_die(CN_E_CONFIG, "%s", cn_last_error());

    float *out = mallocCheck((size_t)B * c->embed_dim * sizeof(float));
    float *pixels = NULL;
    int32_t *ids = NULL;
    double gflop;
    if (is_image) {
        const size_t n = (size_t)B * 3 * c->image_size * c->image_size;
        pixels = mallocCheck(n * sizeof(float));
        for (size_t i = 0; i < n; i++) pixels[i] = (float)((int)(next_u64() % 2001) - 1000) / 500.0f;
        gflop = image_flops(&m) / 1e9;
    } else {
        ids = callocCheck((size_t)B * ctx, sizeof(int32_t));
        const int vocab = c->vocab_size;
        for (int b = 0; b < B; b++) {
            int32_t *row = ids + (size_t)b * ctx;
            row[0] = vocab - 2;
            for (int t = 1; t < text_len - 1; t++) row[t] = 1 + (int32_t)(next_u64() % (uint64_t)(vocab - 3));
            row[text_len - 1] = vocab - 1;
        }
        gflop = text_flops(&m, text_len) / 1e9;
    }
    printf("{\"kind\": \"%s\", \"model\": \"%s\", \"precision\": \"%s\", \"batch\": %d, \"text_len\": %d, "
           "\"gflop_per_item\": %.4f, \"rates\": [",
           is_image ? "image" : "text", c->name, argv[2], B, is_image ? 0 : text_len, gflop);
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
