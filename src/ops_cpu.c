// ops_cpu.c — the layer functions of the CPU reference backend (see include/clipneg/ops.h).
//
// Plain fp32 loops, llm.c style: one function per layer, row-major tensors, PyTorch weight layouts.
// Matrix products go to OpenBLAS (cblas_sgemm); everything else is an OpenMP loop.
//
// Threading: OpenBLAS is kept single-threaded and GEMMs are threaded here over a fixed tile grid
// (sgemm_rowmajor), so results are bit-identical for any thread count; everything else is an
// OpenMP loop whose per-element arithmetic does not depend on how the loop is split.
#if defined(__GNUC__) && !defined(__clang__)
// Let GCC if-convert the float clamps of exp_fast so the activation and softmax loops vectorise
// (with trapping math it keeps them as branches). Nothing here reads the FP exception flags.
#pragma GCC optimize("no-trapping-math")
#endif
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/ops.h"

// ---- threads -------------------------------------------------------------------------------------

static int g_threads = 0; // 0: not chosen yet -> cn_threads()

void ops_set_threads(int n) {
    g_threads = n > 0 ? n : cn_threads();
#ifdef CLIPNEG_BENCH_PLAIN_SGEMM
    openblas_set_num_threads(g_threads); // benchmark-only build, see sgemm_rowmajor
#else
    // OpenBLAS always runs single-threaded: we thread GEMMs ourselves over a fixed tile grid
    // (sgemm_rowmajor below), so that results do not depend on the thread count.
    openblas_set_num_threads(1);
#endif
}

int ops_threads(void) {
    if (g_threads <= 0) ops_set_threads(0);
    return g_threads;
}

// ---- thread-count-independent GEMM -----------------------------------------------------------------
// OpenBLAS's own threading splits a product differently for different thread counts, and the
// results differ in the last bits (measured here: 1 vs 2 threads differ for 34x192x64 and for every
// transformer-sized product). The same job must give the same file on 1 or 4 ranks, and ranks on one
// node get fewer threads each. So we cut C into a FIXED grid of tiles (the grid depends only on the
// shape), compute each tile with one single-threaded sgemm call, and spread tiles over OpenMP
// threads: every element is computed by the same call whatever the thread count. Tiles are large
// (up to 256 x 512) so that re-packing the operands per tile costs a few percent, and the cuts are
// EVEN: a dimension is split into ceil(n / max) near-equal pieces, not into max-sized pieces plus a
// remainder. With remainders (M = 300: tiles of 256 and 44 rows) one thread idles at the barrier;
// perf on the text tower (chunk rows T * texts are arbitrary) showed ~40% of the CPU time in
// libgomp's wait loop. Row tiles are multiples of 4 and column tiles multiples of 16: OpenBLAS sees
// the row-major product transposed, and those are its Zen/Haswell sgemm micro-kernel's n and m.
#define SGEMM_TILE_M 256
#define SGEMM_TILE_N 512

// Piece size for splitting n into ceil(n / max) near-equal pieces, rounded up to a multiple of `unit`.
static int even_tile(int n, int max, int unit) {
    int pieces = CN_CEIL_DIV(n, max);
    return CN_CEIL_DIV(CN_CEIL_DIV(n, pieces), unit) * unit;
}

void sgemm_rowmajor(int trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta,
                    float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    int nt = ops_threads();
#ifdef CLIPNEG_BENCH_PLAIN_SGEMM
    // Only in bench/cpu's bench_towers_plain, never in the library: one multithreaded OpenBLAS call,
    // to measure what the fixed grid costs. Results then depend on the thread count.
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb, beta,
                C, ldc);
    (void)nt;
    return;
#endif
    int bm = even_tile(M, SGEMM_TILE_M, 4), bn = even_tile(N, SGEMM_TILE_N, 16);
    int tm = CN_CEIL_DIV(M, bm), tn = CN_CEIL_DIV(N, bn);
    int tiles = tm * tn;
    enum CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
#pragma omp parallel for num_threads(nt) if (tiles > 1 && nt > 1) schedule(dynamic, 1)
    for (int t = 0; t < tiles; t++) {
        int m0 = (t / tn) * bm, n0 = (t % tn) * bn;
        int mb = CN_MIN(bm, M - m0), nb = CN_MIN(bn, N - n0);
        const float *b0 = trans_b ? B + (size_t)n0 * ldb : B + n0;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, tb, mb, nb, K, 1.0f, A + (size_t)m0 * lda, lda, b0, ldb, beta,
                    C + (size_t)m0 * ldc + n0, ldc);
    }
}

// Below this many floats an OpenMP region costs more than it saves.
#define OMP_MIN_WORK 32768L

// ---- normalisation and products ----------------------------------------------------------------

void layernorm_forward(float *out, const float *inp, const float *w, const float *b, int N, int C, float eps) {
    int nt = ops_threads();
#pragma omp parallel for num_threads(nt) if ((long)N * C > OMP_MIN_WORK) schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        // Two passes in double: mean first, then the biased variance around it. Exact enough
        // that the result does not depend on the residual stream's offset (values ~100 in late
        // ViT layers), as PyTorch's Welford loop does not either.
        double sum = 0.0;
#pragma omp simd reduction(+ : sum)
        for (int c = 0; c < C; c++) sum += x[c];
        double mean = sum / C;
        double var = 0.0;
#pragma omp simd reduction(+ : var)
        for (int c = 0; c < C; c++) {
            double d = x[c] - mean;
            var += d * d;
        }
        var /= C;
        float rstd = (float)(1.0 / sqrt(var + (double)eps));
        float m = (float)mean;
        for (int c = 0; c < C; c++) o[c] = (x[c] - m) * rstd * w[c] + b[c];
    }
}

void matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int C, int OC) {
    ops_threads(); // make sure OpenBLAS got its thread count
    float beta = 0.0f;
    if (bias != NULL) {
        // Start from the bias and let sgemm accumulate onto it (beta = 1): saves a pass.
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, bias, (size_t)OC * sizeof(float));
        beta = 1.0f;
    }
    sgemm_rowmajor(1, N, OC, C, inp, C, weight, C, beta, out, OC);
}

void matmul_forward_nn(float *out, const float *inp, const float *weight, int N, int C, int OC) {
    ops_threads();
    sgemm_rowmajor(0, N, OC, C, inp, C, weight, OC, 0.0f, out, OC);
}

// ---- exp ---------------------------------------------------------------------------------------

// expf for the activation and softmax loops, written so the compiler can vectorise it (glibc's
// expf is a scalar call). Cephes' method: x = n ln2 + r with |r| <= ln2/2, e^r by a degree-6
// polynomial, 2^n by building the exponent bits. Max relative error 8.3e-8 (~1.4 ulp) over
// [-87, 88], measured against exp() in double; inputs outside are clamped (e^-87 ~ 1.6e-38, the
// smallest normal float; e^88 ~ 1.7e38), so the result is never inf for finite x; NaN stays NaN.
static inline float exp_fast(float in) {
    float x = in > -87.0f ? in : -87.0f; // written so that a NaN becomes -87: no undefined int cast
    x = x < 88.0f ? x : 88.0f;
    const float shifter = 12582912.0f; // 1.5 * 2^23: adding and subtracting it rounds to an integer
    float n = (x * 1.44269504088896341f + shifter) - shifter;
    float r = x - n * 0.693359375f; // ln 2 = 0.693359375 - 2.12194440e-4, the first part exact in float
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return in == in ? p * scale : in;
}

// ---- pointwise -----------------------------------------------------------------------------------

void quick_gelu_forward(float *x, long n) {
    int nt = ops_threads();
#pragma omp parallel for simd num_threads(nt) if (n > OMP_MIN_WORK) schedule(static)
    for (long i = 0; i < n; i++) x[i] = x[i] / (1.0f + exp_fast(-1.702f * x[i]));
}

void gelu_forward(float *x, long n) {
    int nt = ops_threads();
    const float inv_sqrt2 = 0.70710678118654752f;
#pragma omp parallel for num_threads(nt) if (n > OMP_MIN_WORK) schedule(static)
    for (long i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * inv_sqrt2));
}

void residual_forward(float *out, const float *a, const float *b, long n) {
    int nt = ops_threads();
#pragma omp parallel for simd num_threads(nt) if (n > OMP_MIN_WORK) schedule(static)
    for (long i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void relu_forward(float *x, long n) {
    int nt = ops_threads();
#pragma omp parallel for simd num_threads(nt) if (n > OMP_MIN_WORK) schedule(static)
    for (long i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

// ---- attention -------------------------------------------------------------------------------------

// The keys and values of one head, rows 0..n, copied out of strided rows (row j of the head starts
// at k + j*ld and v + j*ld) into two small contiguous blocks: kt [hs, ldk] transposed, vh [n, hs].
static void gather_head(float *kt, float *vh, const float *k, const float *v, size_t ld, int n, int ldk, int hs) {
    for (int j = 0; j < n; j++) {
        const float *kj = k + (size_t)j * ld, *vj = v + (size_t)j * ld;
        for (int d = 0; d < hs; d++) kt[(size_t)d * ldk + j] = kj[d];
        memcpy(vh + (size_t)j * hs, vj, (size_t)hs * sizeof(float));
    }
}

// Scores of one query row against n keys stored transposed (kt[d * ldk + j]), scaled:
// p[j] = scale * sum_d q[d] kt[d, j]. The inner loop runs along j, so it vectorises without a
// horizontal reduction.
static void query_scores(float *p, const float *q, const float *kt, int ldk, int n, int hs, float scale) {
    for (int j = 0; j < n; j++) p[j] = 0.0f;
    for (int d = 0; d < hs; d++) {
        float qd = q[d] * scale; // PyTorch scales q before the product too
        const float *krow = kt + (size_t)d * ldk;
#pragma omp simd
        for (int j = 0; j < n; j++) p[j] += qd * krow[j];
    }
}

// In place softmax over p[0..n).
static void softmax_row(float *p, int n) {
    float maxv = -INFINITY;
    for (int j = 0; j < n; j++) maxv = p[j] > maxv ? p[j] : maxv;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < n; j++) {
        p[j] = exp_fast(p[j] - maxv);
        sum += p[j];
    }
    float inv = 1.0f / sum;
#pragma omp simd
    for (int j = 0; j < n; j++) p[j] *= inv;
}

// out[d] = sum_j p[j] * v[j, d] for rows v[j] of length hs (contiguous).
static void weighted_values(float *out, const float *p, const float *v, int n, int hs) {
    for (int d = 0; d < hs; d++) out[d] = 0.0f;
    for (int j = 0; j < n; j++) {
        float pj = p[j];
        const float *vj = v + (size_t)j * hs;
#pragma omp simd
        for (int d = 0; d < hs; d++) out[d] += pj * vj[d];
    }
}

void attention_forward(float *out, const float *qkv, float *scratch, int B, int T, int C, int NH, int causal) {
    int hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
    long C3 = 3L * C;
    int nt = ops_threads();
    // One task per (sequence, head). Its keys and values are first copied out of the strided qkv
    // rows into two small contiguous blocks (keys transposed), ~2 T hs floats that stay in L2.
#pragma omp parallel num_threads(nt)
    {
        float *kt = mallocCheck((size_t)hs * T * sizeof(float)); // [hs, T]
        float *v = mallocCheck((size_t)T * hs * sizeof(float));  // [T, hs]
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < NH; h++) {
                const float *base = qkv + (size_t)b * T * C3 + (size_t)h * hs;
                gather_head(kt, v, base + C, base + 2 * C, (size_t)C3, T, T, hs);
                float *probs = scratch + ((size_t)b * NH + h) * T * T;
                for (int i = 0; i < T; i++) {
                    // Under the causal mask query i sees keys 0..i only; masked keys get probability
                    // exactly 0 in PyTorch too (exp(-inf)), so skipping them changes nothing.
                    int n_keys = causal ? i + 1 : T;
                    float *p = probs + (size_t)i * T;
                    query_scores(p, base + (size_t)i * C3, kt, T, n_keys, hs, scale);
                    softmax_row(p, n_keys);
                    for (int j = n_keys; j < T; j++) p[j] = 0.0f;
                    weighted_values(out + ((size_t)b * T + i) * C + (size_t)h * hs, p, v, n_keys, hs);
                }
            }
        }
        free(v);
        free(kt);
    }
}

void attention_query_forward(float *out, const float *q, const float *k, const float *v, int B, int T, int C,
                             int NH) {
    int hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
    int nt = ops_threads();
#pragma omp parallel num_threads(nt)
    {
        float *kt = mallocCheck((size_t)hs * T * sizeof(float)); // [hs, T] keys of one head, transposed
        float *vh = mallocCheck((size_t)T * hs * sizeof(float)); // [T, hs] values of one head
        float *p = mallocCheck((size_t)T * sizeof(float));
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < NH; h++) {
                size_t off = (size_t)b * T * C + (size_t)h * hs;
                gather_head(kt, vh, k + off, v + off, (size_t)C, T, T, hs);
                query_scores(p, q + (size_t)b * C + (size_t)h * hs, kt, T, T, hs, scale);
                softmax_row(p, T);
                weighted_values(out + (size_t)b * C + (size_t)h * hs, p, vh, T, hs);
            }
        }
        free(p);
        free(vh);
        free(kt);
    }
}

void attention_pooled_forward(float *out, const float *qkv, const int *row, int B, int T, int C, int NH, int causal) {
    int hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
    long C3 = 3L * C;
    int nt = ops_threads();
#pragma omp parallel num_threads(nt)
    {
        float *kt = mallocCheck((size_t)hs * T * sizeof(float)); // [hs, T]
        float *v = mallocCheck((size_t)T * hs * sizeof(float));  // [T, hs]
        float *p = mallocCheck((size_t)T * sizeof(float));
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < NH; h++) {
                const float *base = qkv + (size_t)b * T * C3 + (size_t)h * hs;
                int n_keys = causal ? row[b] + 1 : T;
                gather_head(kt, v, base + C, base + 2 * C, (size_t)C3, n_keys, T, hs);
                query_scores(p, base + (size_t)row[b] * C3, kt, T, n_keys, hs, scale);
                softmax_row(p, n_keys);
                weighted_values(out + (size_t)b * C + (size_t)h * hs, p, v, n_keys, hs);
            }
        }
        free(p);
        free(v);
        free(kt);
    }
}

// ---- convolutions and pooling --------------------------------------------------------------------

// im2col of one image: col[(ic*K + ky)*K + kx, oy*Wo + ox] = inp[ic, oy*S - P + ky, ox*S - P + kx]
// (zero outside the image), so that out[OC, Ho*Wo] = weight[OC, IC*K*K] @ col.
static void im2col(float *col, const float *inp, int IC, int H, int W, int K, int S, int P, int Ho, int Wo) {
    int nt = ops_threads();
    long work = (long)IC * K * K * Ho * Wo;
#pragma omp parallel for num_threads(nt) if (work > OMP_MIN_WORK) schedule(static)
    for (int ic = 0; ic < IC; ic++) {
        const float *plane = inp + (size_t)ic * H * W;
        for (int ky = 0; ky < K; ky++) {
            for (int kx = 0; kx < K; kx++) {
                float *row = col + (((size_t)ic * K + ky) * K + kx) * Ho * Wo;
                // Output columns whose input x = ox*S - P + kx falls inside [0, W): [ox0, ox1).
                int ox0 = kx >= P ? 0 : (P - kx + S - 1) / S;
                int ox1 = W - 1 + P - kx < 0 ? 0 : (W - 1 + P - kx) / S + 1;
                if (ox1 > Wo) ox1 = Wo;
                if (ox1 < ox0) ox1 = ox0;
                for (int oy = 0; oy < Ho; oy++) {
                    int y = oy * S - P + ky;
                    float *dst = row + (size_t)oy * Wo;
                    if (y < 0 || y >= H) {
                        memset(dst, 0, (size_t)Wo * sizeof(float));
                        continue;
                    }
                    const float *src = plane + (size_t)y * W - P + kx; // src[ox*S] = inp[y, ox*S - P + kx]
                    for (int ox = 0; ox < ox0; ox++) dst[ox] = 0.0f;
                    if (S == 1) {
                        memcpy(dst + ox0, src + ox0, (size_t)(ox1 - ox0) * sizeof(float));
                    } else {
                        for (int ox = ox0; ox < ox1; ox++) dst[ox] = src[(size_t)ox * S];
                    }
                    for (int ox = ox1; ox < Wo; ox++) dst[ox] = 0.0f;
                }
            }
        }
    }
}

void conv2d_forward(float *out, const float *inp, const float *weight, const float *bias, float *scratch, int B,
                    int IC, int H, int W, int OC, int K, int S, int P) {
    ops_threads();
    int Ho = (H + 2 * P - K) / S + 1, Wo = (W + 2 * P - K) / S + 1;
    long HWo = (long)Ho * Wo, KK = (long)IC * K * K;
    // A 1x1, stride 1, unpadded conv is already a GEMM on the NCHW image: no im2col copy.
    int direct = (K == 1 && S == 1 && P == 0);
    for (int b = 0; b < B; b++) {
        const float *img = inp + (size_t)b * IC * H * W;
        float *o = out + (size_t)b * OC * HWo;
        const float *col = img;
        if (!direct) {
            im2col(scratch, img, IC, H, W, K, S, P, Ho, Wo);
            col = scratch;
        }
        float beta = 0.0f;
        if (bias != NULL) {
            for (int oc = 0; oc < OC; oc++) {
                float bv = bias[oc];
                float *dst = o + (size_t)oc * HWo;
                for (long i = 0; i < HWo; i++) dst[i] = bv;
            }
            beta = 1.0f;
        }
        sgemm_rowmajor(0, OC, (int)HWo, (int)KK, weight, (int)KK, col, (int)HWo, beta, o, (int)HWo);
    }
}

void avgpool2d_forward(float *out, const float *inp, int B, int C, int H, int W, int k) {
    int Ho = H / k, Wo = W / k; // floor, as nn.AvgPool2d(k) (ceil_mode=False)
    float inv = 1.0f / (float)(k * k);
    int nt = ops_threads();
    long planes = (long)B * C;
#pragma omp parallel for num_threads(nt) if (planes * H * W > OMP_MIN_WORK) schedule(static)
    for (long pc = 0; pc < planes; pc++) {
        const float *src = inp + (size_t)pc * H * W;
        float *dst = out + (size_t)pc * Ho * Wo;
        for (int oy = 0; oy < Ho; oy++) {
            for (int ox = 0; ox < Wo; ox++) {
                float s = 0.0f;
                for (int dy = 0; dy < k; dy++) {
                    const float *r = src + (size_t)(oy * k + dy) * W + (size_t)ox * k;
                    for (int dx = 0; dx < k; dx++) s += r[dx];
                }
                dst[(size_t)oy * Wo + ox] = s * inv;
            }
        }
    }
}

void im2patch_forward(float *out, const float *img, int B, int C, int R, int P) {
    int G = R / P;
    long row_len = (long)C * P * P;
    int nt = ops_threads();
#pragma omp parallel for collapse(2) num_threads(nt) if ((long)B * G * G * row_len > OMP_MIN_WORK) schedule(static)
    for (int b = 0; b < B; b++) {
        for (int gy = 0; gy < G; gy++) {
            for (int gx = 0; gx < G; gx++) {
                float *row = out + (((size_t)b * G + gy) * G + gx) * row_len;
                for (int c = 0; c < C; c++) {
                    for (int ky = 0; ky < P; ky++) {
                        const float *src = img + (((size_t)b * C + c) * R + (size_t)gy * P + ky) * R + (size_t)gx * P;
                        memcpy(row + ((size_t)c * P + ky) * P, src, (size_t)P * sizeof(float));
                    }
                }
            }
        }
    }
}

// ---- ModifiedResNet attention pooling ----------------------------------------------------------

long attnpool_scratch_floats(int B, int C, int HW) {
    long T = HW + 1;
    return 3L * B * T * C + 2L * B * C; // tokens, k, v [B,T,C]; q, attended [B,C]
}

void attnpool_forward(float *out, const float *inp, const float *pos_emb, const float *q_w, const float *q_b,
                      const float *k_w, const float *k_b, const float *v_w, const float *v_b, const float *c_w,
                      const float *c_b, float *scratch, int B, int C, int HW, int NH, int OD) {
    int T = HW + 1;
    float *tokens = scratch;                    // [B, T, C]
    float *k = tokens + (size_t)B * T * C;      // [B, T, C]
    float *v = k + (size_t)B * T * C;           // [B, T, C]
    float *q = v + (size_t)B * T * C;           // [B, C]   projection of the mean token
    float *attended = q + (size_t)B * C;        // [B, C]
    int nt = ops_threads();
    // NCHW -> tokens: row 0 the spatial mean, rows 1..HW the positions; + positional embedding.
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int b = 0; b < B; b++) {
        const float *x = inp + (size_t)b * C * HW;
        float *tok = tokens + (size_t)b * T * C;
        for (int c = 0; c < C; c++) {
            const float *plane = x + (size_t)c * HW;
            float s = 0.0f;
            for (int p = 0; p < HW; p++) {
                s += plane[p];
                tok[(size_t)(p + 1) * C + c] = plane[p] + pos_emb[(size_t)(p + 1) * C + c];
            }
            tok[c] = s / (float)HW + pos_emb[c];
        }
    }
    // Keys and values for every token; the query only for the mean token (the only output used).
    matmul_forward(k, tokens, k_w, k_b, B * T, C, C);
    matmul_forward(v, tokens, v_w, v_b, B * T, C, C);
    for (int b = 0; b < B; b++) memcpy(attended + (size_t)b * C, tokens + (size_t)b * T * C, (size_t)C * sizeof(float));
    matmul_forward(q, attended, q_w, q_b, B, C, C);
    attention_query_forward(attended, q, k, v, B, T, C, NH);
    matmul_forward(out, attended, c_w, c_b, B, C, OD);
}
