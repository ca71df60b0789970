// test_backend.c — the backend choice of backend.c on the CPU: `precision = auto` resolves to fp32
// (and is what be->precision reports), reduced precisions are refused with a message, and
// Backend.similarity — the full-similarity tile GEMM the evaluator calls — equals double-precision
// dot products. The CUDA side of Backend.similarity is tests/test_cuda_similarity.cu.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/backend.h"
#include "clipneg/common.h"
#include "test_check.h"

// Shapes that are not multiples of any GEMM tile, and an empty one.
static void check_similarity(Backend *be, int n_img, int n_txt, int D) {
    float *img = malloc((size_t)(n_img * D + 1) * sizeof(float)), *txt = malloc((size_t)(n_txt * D + 1) * sizeof(float));
    float *out = malloc((size_t)(n_img * n_txt + 1) * sizeof(float));
    uint32_t s = 12345u + (uint32_t)(n_img * 31 + n_txt * 7 + D);
    for (int i = 0; i < n_img * D; i++) img[i] = (float)((s = s * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
    for (int i = 0; i < n_txt * D; i++) txt[i] = (float)((s = s * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
    CHECK_INT(be->similarity(be, img, n_img, txt, n_txt, D, out), CN_OK);
    double worst = 0;
    for (int i = 0; i < n_img; i++)
        for (int j = 0; j < n_txt; j++) {
            double ref = 0, mag = 0;
            for (int k = 0; k < D; k++) {
                ref += (double)img[i * D + k] * txt[j * D + k];
                mag += fabs((double)img[i * D + k] * txt[j * D + k]);
            }
            // fp32 accumulation over D terms: |error| <= D * 2^-24 * sum|a_k b_k| (a loose bound)
            double err = fabs(out[i * n_txt + j] - ref) / (D * 0x1p-24 * mag + 1e-30);
            if (err > worst) worst = err;
        }
    CHECK_MSG(worst <= 1.0, "similarity %dx%d (D=%d): error %.3g x the fp32 bound", n_img, n_txt, D, worst);
    free(img);
    free(txt);
    free(out);
}

int main(void) {
    ClipModel m;
    memset(&m, 0, sizeof m);
    Backend *be = NULL;

    CHECK_INT(backend_create(&be, BACKEND_CPU, PREC_AUTO, &m, 0), CN_OK);
    if (!be) return 1;
    CHECK_STR(be->name, "cpu");
    CHECK_INT(be->precision, PREC_FP32);
    CHECK_STR(precision_name(be->precision), "fp32");
    CHECK(be->similarity != NULL);
    check_similarity(be, 7, 13, 64);
    check_similarity(be, 33, 129, 96);
    check_similarity(be, 1, 1, 3);
    check_similarity(be, 0, 5, 8); // an empty shard: nothing to do, CN_OK
    backend_destroy(be);

    CHECK_STR(precision_name(PREC_AUTO), "auto");
    be = NULL;
    CHECK_INT(backend_create(&be, BACKEND_CPU, PREC_FP16, &m, 0), CN_E_CONFIG);
    CHECK(be == NULL);
    CHECK(strstr(cn_last_error(), "fp32 only") != NULL);

    if (g_failures) fprintf(stderr, "%d failures\n", g_failures);
    return g_failures ? 1 : 0;
}
