// test_ops.c — every CPU op against PyTorch/open_clip goldens (tests/fixtures/ops/*.bin, made by
// tests/reference/make_op_fixtures.py in float64 from float32 inputs). Prints max |diff| per case.
//
// Error measure: max over elements of |c - ref| / (1 + |ref|) (absolute for values below 1,
// relative above). Tolerances: fp32 has a unit roundoff of 6e-8; the ops here sum at most a few
// hundred terms, so a correct fp32 result is within ~1e-6 of the exact value. 1e-5 leaves room for
// summation-order differences but catches any wrong index, scale or mask (those give errors ~0.1-1).
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/ops.h"

#define TOL 1e-5

// ---- fixture reader ------------------------------------------------------------------------------

#define MAX_TENSORS 32
typedef struct {
    char name[64];
    int ndim;
    int dims[8];
    long n;
    float *data;
} Tensor;
typedef struct {
    Tensor t[MAX_TENSORS];
    int n;
    char path[1024];
} Fixture;

static int g_failures = 0;

static void load_fixture(Fixture *fx, const char *name) {
    const char *src = getenv("CLIPNEG_SOURCE_DIR");
    snprintf(fx->path, sizeof fx->path, "%s/tests/fixtures/ops/%s.bin", src ? src : ".", name);
    FILE *fp = fopenCheck(fx->path, "rb");
    char magic[8];
    freadCheck(magic, 1, 8, fp);
    if (memcmp(magic, "CNOPFIX1", 8) != 0) {
        fprintf(stderr, "%s: bad magic\n", fx->path);
        exit(1);
    }
    uint32_t n;
    freadCheck(&n, 4, 1, fp);
    if (n > MAX_TENSORS) exit(1);
    fx->n = (int)n;
    for (int i = 0; i < fx->n; i++) {
        Tensor *t = &fx->t[i];
        uint16_t len;
        freadCheck(&len, 2, 1, fp);
        if (len >= sizeof t->name) exit(1);
        freadCheck(t->name, 1, len, fp);
        t->name[len] = '\0';
        uint8_t nd;
        freadCheck(&nd, 1, 1, fp);
        if (nd > 8) exit(1);
        t->ndim = nd;
        t->n = 1;
        for (int d = 0; d < nd; d++) {
            uint32_t v;
            freadCheck(&v, 4, 1, fp);
            t->dims[d] = (int)v;
            t->n *= v;
        }
        t->data = mallocCheck((size_t)t->n * sizeof(float));
        freadCheck(t->data, sizeof(float), (size_t)t->n, fp);
    }
    fcloseCheck(fp);
}

static float *get(Fixture *fx, const char *name) {
    for (int i = 0; i < fx->n; i++)
        if (!strcmp(fx->t[i].name, name)) return fx->t[i].data;
    fprintf(stderr, "%s: no tensor '%s'\n", fx->path, name);
    exit(1);
}

static long count(Fixture *fx, const char *name) {
    for (int i = 0; i < fx->n; i++)
        if (!strcmp(fx->t[i].name, name)) return fx->t[i].n;
    fprintf(stderr, "%s: no tensor '%s'\n", fx->path, name);
    exit(1);
}

static int param(Fixture *fx, int i) { return (int)get(fx, "params")[i]; }

static void free_fixture(Fixture *fx) {
    for (int i = 0; i < fx->n; i++) free(fx->t[i].data);
}

// ---- comparison ----------------------------------------------------------------------------------

static void check(const char *what, const float *got, const float *ref, long n, double tol) {
    double worst = 0.0, worst_abs = 0.0;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        double e = d / (1.0 + fabs((double)ref[i]));
        if (!(e <= worst)) worst = e; // NaN-safe: a NaN becomes the worst
        if (d > worst_abs) worst_abs = d;
    }
    int ok = worst <= tol;
    printf("%-28s n=%-6ld max|diff|=%.3e  max rel=%.3e  tol=%.0e  %s\n", what, n, worst_abs, worst, tol,
           ok ? "ok" : "FAIL");
    if (!ok) g_failures++;
}

// ---- cases ---------------------------------------------------------------------------------------

static void test_layernorm(void) {
    Fixture fx;
    load_fixture(&fx, "layernorm");
    int N = param(&fx, 0), C = param(&fx, 1);
    float *out = mallocCheck((size_t)N * C * sizeof(float));
    layernorm_forward(out, get(&fx, "inp"), get(&fx, "w"), get(&fx, "b"), N, C, 1e-5f);
    check("layernorm", out, get(&fx, "out"), (long)N * C, TOL);
    free(out);
    free_fixture(&fx);
}

static void test_matmul(void) {
    Fixture fx;
    load_fixture(&fx, "matmul");
    int N = param(&fx, 0), C = param(&fx, 1), OC = param(&fx, 2);
    float *out = mallocCheck((size_t)N * OC * sizeof(float));
    matmul_forward(out, get(&fx, "inp"), get(&fx, "weight"), get(&fx, "bias"), N, C, OC);
    check("matmul (bias)", out, get(&fx, "out_bias"), (long)N * OC, TOL);
    matmul_forward(out, get(&fx, "inp"), get(&fx, "weight"), NULL, N, C, OC);
    check("matmul (no bias)", out, get(&fx, "out_nobias"), (long)N * OC, TOL);
    matmul_forward_nn(out, get(&fx, "inp"), get(&fx, "weight_nn"), N, C, OC);
    check("matmul_nn", out, get(&fx, "out_nn"), (long)N * OC, TOL);
    free(out);
    free_fixture(&fx);
}

static void test_activations(void) {
    Fixture fx;
    load_fixture(&fx, "activations");
    long n = count(&fx, "inp");
    float *x = mallocCheck((size_t)n * sizeof(float));
    memcpy(x, get(&fx, "inp"), (size_t)n * sizeof(float));
    gelu_forward(x, n);
    check("gelu (erf)", x, get(&fx, "gelu"), n, TOL);
    memcpy(x, get(&fx, "inp"), (size_t)n * sizeof(float));
    quick_gelu_forward(x, n);
    check("quick_gelu", x, get(&fx, "quick_gelu"), n, TOL);
    // A NaN must stay NaN (never turned into a plausible number by the clamps of the fast exp).
    float nan_in[2] = {NAN, -NAN};
    quick_gelu_forward(nan_in, 2);
    int nan_ok = isnan(nan_in[0]) && isnan(nan_in[1]);
    printf("%-28s %s\n", "quick_gelu(NaN) is NaN", nan_ok ? "ok" : "FAIL");
    if (!nan_ok) g_failures++;
    // relu and residual have no golden file: their exact answers are computed here.
    const float *in = get(&fx, "inp");
    float *ref = mallocCheck((size_t)n * sizeof(float));
    memcpy(x, in, (size_t)n * sizeof(float));
    relu_forward(x, n);
    for (long i = 0; i < n; i++) ref[i] = in[i] > 0 ? in[i] : 0;
    check("relu", x, ref, n, 0.0);
    residual_forward(x, in, in, n);
    for (long i = 0; i < n; i++) ref[i] = in[i] + in[i];
    check("residual", x, ref, n, 0.0);
    free(ref);
    free(x);
    free_fixture(&fx);
}

static void test_attention(void) {
    Fixture fx;
    load_fixture(&fx, "attention");
    int B = param(&fx, 0), T = param(&fx, 1), C = param(&fx, 2), NH = param(&fx, 3);
    float *out = mallocCheck((size_t)B * T * C * sizeof(float));
    float *scratch = mallocCheck((size_t)B * NH * T * T * sizeof(float));
    attention_forward(out, get(&fx, "qkv"), scratch, B, T, C, NH, 0);
    check("attention", out, get(&fx, "out"), (long)B * T * C, TOL);
    attention_forward(out, get(&fx, "qkv"), scratch, B, T, C, NH, 1);
    check("attention (causal)", out, get(&fx, "out_causal"), (long)B * T * C, TOL);
    // The probabilities left in scratch: rows sum to 1, masked entries exactly 0.
    double worst_row = 0.0, masked = 0.0;
    for (int r = 0; r < B * NH * T; r++) {
        int i = r % T;
        double s = 0.0;
        for (int j = 0; j < T; j++) {
            s += scratch[(size_t)r * T + j];
            if (j > i) masked += fabs(scratch[(size_t)r * T + j]);
        }
        if (fabs(s - 1.0) > worst_row) worst_row = fabs(s - 1.0);
    }
    printf("%-28s max|rowsum-1|=%.2e  masked mass=%.1e  %s\n", "attention probs", worst_row, masked,
           (worst_row < 1e-5 && masked == 0.0) ? "ok" : "FAIL");
    if (!(worst_row < 1e-5 && masked == 0.0)) g_failures++;
    // One query row per sequence from the packed qkv == that row of the full attention.
    int rows[2] = {T - 1, 3};
    float *pooled = mallocCheck((size_t)2 * C * sizeof(float)), *ref_rows = mallocCheck((size_t)2 * C * sizeof(float));
    for (int causal = 0; causal < 2 && B == 2; causal++) {
        const float *gold = get(&fx, causal ? "out_causal" : "out");
        for (int b = 0; b < 2; b++)
            memcpy(ref_rows + (size_t)b * C, gold + ((size_t)b * T + rows[b]) * C, (size_t)C * sizeof(float));
        attention_pooled_forward(pooled, get(&fx, "qkv"), rows, 2, T, C, NH, causal);
        check(causal ? "attention_pooled (causal)" : "attention_pooled", pooled, ref_rows, 2L * C, TOL);
    }
    free(ref_rows);
    free(pooled);
    // Thread count must not change the result (each (b, h) is computed by one thread).
    float *one = mallocCheck((size_t)B * T * C * sizeof(float));
    int nt = ops_threads();
    ops_set_threads(1);
    attention_forward(one, get(&fx, "qkv"), scratch, B, T, C, NH, 1);
    ops_set_threads(nt);
    check("attention 1 thread == N", one, out, (long)B * T * C, 0.0);
    free(one);
    free(scratch);
    free(out);
    free_fixture(&fx);
}

static void test_conv2d(int i) {
    Fixture fx;
    char name[32], label[64];
    snprintf(name, sizeof name, "conv2d_%d", i);
    load_fixture(&fx, name);
    int B = param(&fx, 0), IC = param(&fx, 1), H = param(&fx, 2), OC = param(&fx, 3);
    int K = param(&fx, 4), S = param(&fx, 5), P = param(&fx, 6), has_bias = param(&fx, 7);
    int Ho = (H + 2 * P - K) / S + 1;
    long n = (long)B * OC * Ho * Ho;
    if (n != count(&fx, "out")) {
        printf("%s: output size %ld, golden %ld  FAIL\n", name, n, count(&fx, "out"));
        g_failures++;
        free_fixture(&fx);
        return;
    }
    float *out = mallocCheck((size_t)n * sizeof(float));
    float *scratch = mallocCheck((size_t)IC * K * K * Ho * Ho * sizeof(float));
    conv2d_forward(out, get(&fx, "inp"), get(&fx, "weight"), has_bias ? get(&fx, "bias") : NULL, scratch, B, IC, H,
                   H, OC, K, S, P);
    snprintf(label, sizeof label, "conv2d K%d S%d P%d%s", K, S, P, has_bias ? " +bias" : "");
    check(label, out, get(&fx, "out"), n, TOL);
    free(scratch);
    free(out);
    free_fixture(&fx);
}

static void test_avgpool(int i) {
    Fixture fx;
    char name[32], label[64];
    snprintf(name, sizeof name, "avgpool_%d", i);
    load_fixture(&fx, name);
    int B = param(&fx, 0), C = param(&fx, 1), H = param(&fx, 2), k = param(&fx, 3);
    long n = (long)B * C * (H / k) * (H / k);
    float *out = mallocCheck((size_t)n * sizeof(float));
    avgpool2d_forward(out, get(&fx, "inp"), B, C, H, H, k);
    snprintf(label, sizeof label, "avgpool H%d k%d", H, k);
    if (n != count(&fx, "out")) {
        printf("%s: size mismatch FAIL\n", label);
        g_failures++;
    } else {
        check(label, out, get(&fx, "out"), n, TOL);
    }
    free(out);
    free_fixture(&fx);
}

static void test_patch_embed(void) {
    Fixture fx;
    load_fixture(&fx, "patch_embed");
    int B = param(&fx, 0), R = param(&fx, 1), P = param(&fx, 2), W = param(&fx, 3);
    int G = R / P;
    float *patches = mallocCheck((size_t)B * G * G * 3 * P * P * sizeof(float));
    float *out = mallocCheck((size_t)B * G * G * W * sizeof(float));
    im2patch_forward(patches, get(&fx, "img"), B, 3, R, P);
    matmul_forward(out, patches, get(&fx, "weight"), NULL, B * G * G, 3 * P * P, W);
    check("im2patch + matmul (R%P!=0)", out, get(&fx, "out"), (long)B * G * G * W, TOL);
    free(out);
    free(patches);
    free_fixture(&fx);
}

static void test_attnpool(void) {
    Fixture fx;
    load_fixture(&fx, "attnpool");
    int B = param(&fx, 0), E = param(&fx, 1), HW = param(&fx, 2), NH = param(&fx, 3), OD = param(&fx, 4);
    float *out = mallocCheck((size_t)B * OD * sizeof(float));
    float *scratch = mallocCheck((size_t)attnpool_scratch_floats(B, E, HW) * sizeof(float));
    attnpool_forward(out, get(&fx, "inp"), get(&fx, "pos_emb"), get(&fx, "q_w"), get(&fx, "q_b"), get(&fx, "k_w"),
                     get(&fx, "k_b"), get(&fx, "v_w"), get(&fx, "v_b"), get(&fx, "c_w"), get(&fx, "c_b"), scratch, B,
                     E, HW, NH, OD);
    check("attnpool (open_clip module)", out, get(&fx, "out"), (long)B * OD, TOL);
    free(scratch);
    free(out);
    free_fixture(&fx);
}

int main(void) {
    printf("ops: %d threads\n", ops_threads());
    test_layernorm();
    test_matmul();
    test_activations();
    test_attention();
    for (int i = 0; i < 4; i++) test_conv2d(i);
    for (int i = 0; i < 3; i++) test_avgpool(i);
    test_patch_embed();
    test_attnpool();
    if (g_failures) {
        printf("%d op check(s) FAILED\n", g_failures);
        return 1;
    }
    printf("all op checks passed\n");
    return 0;
}
