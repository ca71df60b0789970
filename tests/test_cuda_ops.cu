// test_cuda_ops.cu — every CUDA op against its CPU twin (ops.h) on fresh random inputs, in every
// element type: fp32, tf32 (GEMM-based ops), fp16, bf16. Helpers without a CPU twin are compared
// with plain host loops. Output buffers are poisoned with NaN (all bits set) before each run, so
// an element a kernel forgets to write shows up as non-finite and fails.
//
//   test_cuda_ops [--quick]      (--quick: small shapes, for compute-sanitizer)
//   test_cuda_ops --probe        exit 0 when a GPU is visible, 77 otherwise (used by ctest wrappers)
// Seed: CLIPNEG_TEST_SEED, else the clock (printed, so a failure can be replayed).
//
// Error measure: relative L2 error ||gpu - ref|| / ||ref||, and the largest elementwise error
// relative to max |ref| (which catches one wrong element among many). Inputs are rounded to the
// tested type first, so the CPU twin sees exactly the numbers the GPU sees; what remains is the
// kernel's own error:
//   fp32  1e-5  unit roundoff 6e-8; differences come from summation order and from the CUDA
//               expf/erff/sqrtf implementations (a few ulp), a wrong index/scale/mask gives >= 1e-2.
//   tf32  5e-3  the GEMM inputs are rounded to a 10-bit mantissa (2^-11 relative, 2^-10 if the
//               hardware truncates): normwise ~1e-3 for random data.
//   fp16  2e-3  one rounding of the output to fp16 (unit roundoff 2^-11 = 4.9e-4); composites that
//               round intermediates to fp16 (conv + bias, attention pooling) get 5e-3.
//   bf16  1.5e-2  the same with bf16's unit roundoff 2^-8 = 3.9e-3; composites 3e-2.
// The elementwise bound is 8x the normwise one (a single element may sit in a rounding tail).
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vector>

#include "cuda_common.cuh"
#include "ops.cuh"

#include "clipneg/cuda_backend.h"
extern "C" {
#include "clipneg/ops.h"
#include "cuda_test_gate.h"
}

typedef std::vector<float> Vec;

static int g_failures = 0, g_cases = 0, g_quick = 0;
static uint64_t g_rng;

// ---- random numbers (splitmix64 + Box-Muller) --------------------------------------------------------------
static uint64_t next_u64(void) {
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double uniform(void) { return (next_u64() >> 11) * (1.0 / 9007199254740992.0); }
static int rand_int(int lo, int hi) { return lo + (int)(next_u64() % (uint64_t)(hi - lo + 1)); }
static float normal(void) {
    double u1 = uniform(), u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
static Vec randn(size_t n, float scale = 1.0f, float shift = 0.0f) {
    Vec v(n);
    for (auto &x : v) x = normal() * scale + shift;
    return v;
}
template <size_t N> static int pick(const int (&choices)[N]) { return choices[next_u64() % N]; }

// ---- element types on the host ---------------------------------------------------------------------------------
template <typename T> struct Ty;
template <> struct Ty<float> {
    static float to(float x) { return x; }
    static float from(float x) { return x; }
};
template <> struct Ty<__half> {
    static __half to(float x) { return __float2half_rn(x); }
    static float from(__half x) { return __half2float(x); }
};
template <> struct Ty<__nv_bfloat16> {
    static __nv_bfloat16 to(float x) { return __float2bfloat16_rn(x); }
    static float from(__nv_bfloat16 x) { return __bfloat162float(x); }
};

// Round in place to what T can hold (so the CPU reference sees the GPU's inputs).
template <typename T> static void round_to(Vec &v) {
    for (auto &x : v) x = Ty<T>::from(Ty<T>::to(x));
}

// Device buffer of n T's, freed at scope end.
template <typename T> struct Dev {
    T *p = nullptr;
    size_t n = 0;
    explicit Dev(size_t count) : n(count) { cudaCheck(cudaMalloc(&p, (count ? count : 1) * sizeof(T))); poison(); }
    explicit Dev(const Vec &v) : Dev(v.size()) { upload(v); }
    ~Dev() { cudaFree(p); }
    Dev(const Dev &) = delete;
    Dev &operator=(const Dev &) = delete;
    void poison() { cudaCheck(cudaMemset(p, 0xff, (n ? n : 1) * sizeof(T))); }  // all-ones bits: NaN in every type
    void upload(const Vec &v) {
        std::vector<T> h(v.size());
        for (size_t i = 0; i < v.size(); i++) h[i] = Ty<T>::to(v[i]);
        cudaCheck(cudaMemcpy(p, h.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
    }
    Vec download() const {
        std::vector<T> h(n);
        cudaCheck(cudaDeviceSynchronize());
        cudaCheck(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
        Vec v(n);
        for (size_t i = 0; i < n; i++) v[i] = Ty<T>::from(h[i]);
        return v;
    }
};

// ---- comparison ------------------------------------------------------------------------------------------------
struct Bounds {
    const char *prec;
    double single, composite;
};
static const Bounds kF32 = {"fp32", 1e-5, 2e-5}, kTF32 = {"tf32", 5e-3, 5e-3}, kF16 = {"fp16", 2e-3, 5e-3},
                    kBF16 = {"bf16", 1.5e-2, 3e-2};
template <typename T> static Bounds bounds_of(void);
template <> Bounds bounds_of<float>(void) { return cuda_ops_tf32() ? kTF32 : kF32; }
template <> Bounds bounds_of<__half>(void) { return kF16; }
template <> Bounds bounds_of<__nv_bfloat16>(void) { return kBF16; }

static void check(const char *op, const char *prec, const char *shape, const Vec &gpu, const Vec &ref, double bound) {
    g_cases++;
    double num = 0, den = 0, maxerr = 0, maxref = 0;
    long nonfinite = 0;
    for (size_t i = 0; i < ref.size(); i++) {
        if (!isfinite(gpu[i])) {
            nonfinite++;
            continue;
        }
        const double d = (double)gpu[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
        maxerr = fmax(maxerr, fabs(d));
        maxref = fmax(maxref, fabs((double)ref[i]));
    }
    const double rel = sqrt(num) / fmax(sqrt(den), 1e-30), relmax = maxerr / fmax(maxref, 1e-30);
    const bool ok = gpu.size() == ref.size() && nonfinite == 0 && rel <= bound && relmax <= 8 * bound;
    if (!ok) g_failures++;
    printf("%s %-16s %-5s %-34s rel_l2=%.2e max_rel=%.2e bound=%.1e%s\n", ok ? "ok  " : "FAIL", op, prec, shape, rel,
           relmax, bound, nonfinite ? " (non-finite outputs: unwritten or overflow)" : "");
}

// ---- the twins -----------------------------------------------------------------------------------------------------
template <typename T> static void test_layernorm(void) {
    // up to 1024 the kernel keeps a row in registers; 1280 takes its uncached loop
    const int sizes[] = {7, 64, 96, 512, 768, 1024, 1280};
    const int N = rand_int(1, g_quick ? 20 : 300), C = pick(sizes);
    Vec x = randn((size_t)N * C, 2.0f, 0.5f), w = randn(C, 0.5f, 1.0f), b = randn(C, 0.2f);
    round_to<T>(x), round_to<T>(w), round_to<T>(b);
    Vec ref((size_t)N * C);
    layernorm_forward(ref.data(), x.data(), w.data(), b.data(), N, C, 1e-5f);
    Dev<T> dx(x), dw(w), db(b), dout(ref.size());
    layernorm_forward_cuda(dout.p, dx.p, dw.p, db.p, N, C, 1e-5f, 0);
    char shape[64];
    snprintf(shape, sizeof shape, "N=%d C=%d", N, C);
    check("layernorm", bounds_of<T>().prec, shape, dout.download(), ref, bounds_of<T>().single);
    layernorm_forward_cuda(dx.p, dx.p, dw.p, db.p, N, C, 1e-5f, 0);  // in place (out aliases inp)
    check("layernorm/alias", bounds_of<T>().prec, shape, dx.download(), ref, bounds_of<T>().single);
}

template <typename T> static void test_matmul(void) {
    const int cs[] = {3, 16, 17, 64, 768, 1024}, ocs[] = {1, 5, 24, 96, 1000};
    const int N = rand_int(1, g_quick ? 16 : 300), C = pick(cs), OC = pick(ocs);
    Vec x = randn((size_t)N * C), w = randn((size_t)OC * C, 1.0f / sqrtf((float)C)), b = randn(OC, 0.5f);
    round_to<T>(x), round_to<T>(w), round_to<T>(b);
    char shape[64];
    snprintf(shape, sizeof shape, "N=%d C=%d OC=%d", N, C, OC);
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        Vec ref((size_t)N * OC);
        matmul_forward(ref.data(), x.data(), w.data(), with_bias ? b.data() : nullptr, N, C, OC);
        Dev<T> dx(x), dw(w), db(b), dout(ref.size());
        matmul_forward_cuda(dout.p, dx.p, dw.p, with_bias ? (const T *)db.p : (const T *)nullptr, N, C, OC, 0);
        check(with_bias ? "matmul+bias" : "matmul", bounds_of<T>().prec, shape, dout.download(), ref, bounds_of<T>().single);
    }
    // the [in, out] orientation (projections)
    Vec wnn = randn((size_t)C * OC, 1.0f / sqrtf((float)C));
    round_to<T>(wnn);
    Vec ref((size_t)N * OC);
    matmul_forward_nn(ref.data(), x.data(), wnn.data(), N, C, OC);
    Dev<T> dx(x), dw(wnn), dout(ref.size());
    matmul_forward_nn_cuda(dout.p, dx.p, dw.p, N, C, OC, 0);
    check("matmul_nn", bounds_of<T>().prec, shape, dout.download(), ref, bounds_of<T>().single);
}

template <typename T> static void test_elementwise(void) {
    const long n = rand_int(1, g_quick ? 5000 : 200000);
    char shape[64];
    snprintf(shape, sizeof shape, "n=%ld", n);
    Vec x = randn((size_t)n, 3.0f), y = randn((size_t)n);
    round_to<T>(x), round_to<T>(y);
    {
        Vec ref = x;
        quick_gelu_forward(ref.data(), n);
        Dev<T> d(x);
        quick_gelu_forward_cuda(d.p, n, 0);
        check("quick_gelu", bounds_of<T>().prec, shape, d.download(), ref, bounds_of<T>().single);
    }
    {
        Vec ref = x;
        gelu_forward(ref.data(), n);
        Dev<T> d(x);
        gelu_forward_cuda(d.p, n, 0);
        check("gelu", bounds_of<T>().prec, shape, d.download(), ref, bounds_of<T>().single);
    }
    {
        Vec ref = x;
        relu_forward(ref.data(), n);
        Dev<T> d(x);
        relu_forward_cuda(d.p, n, 0);
        check("relu", bounds_of<T>().prec, shape, d.download(), ref, bounds_of<T>().single);
    }
    {
        Vec ref((size_t)n);
        residual_forward(ref.data(), x.data(), y.data(), n);
        Dev<T> da(x), db(y), dout((size_t)n);
        residual_forward_cuda(dout.p, da.p, db.p, n, 0);
        check("residual", bounds_of<T>().prec, shape, dout.download(), ref, bounds_of<T>().single);
        residual_forward_cuda(da.p, da.p, db.p, n, 0);  // out aliases a, as the towers use it
        check("residual/alias", bounds_of<T>().prec, shape, da.download(), ref, bounds_of<T>().single);
    }
    if (n > 1) {  // pointers off the 16-byte grid: the scalar loops of the vectorised kernels
        Vec ref(x.begin() + 1, x.end()), ref2((size_t)n - 1);
        quick_gelu_forward(ref.data(), n - 1);
        residual_forward(ref2.data(), x.data() + 1, y.data() + 1, n - 1);
        Dev<T> d(x), dy(y);
        quick_gelu_forward_cuda(d.p + 1, n - 1, 0);
        Vec got = d.download();
        check("quick_gelu/unaligned", bounds_of<T>().prec, shape, Vec(got.begin() + 1, got.end()), ref, bounds_of<T>().single);
        Dev<T> dx(x);
        residual_forward_cuda(dx.p + 1, dx.p + 1, dy.p + 1, n - 1, 0);
        got = dx.download();
        check("residual/unaligned", bounds_of<T>().prec, shape, Vec(got.begin() + 1, got.end()), ref2, bounds_of<T>().single);
    }
}

template <typename T> static void test_attention_shape(int B, int Tn, int NH, int hs, int causal) {
    const int C = hs * NH;
    Vec qkv = randn((size_t)B * Tn * 3 * C, 1.5f);
    round_to<T>(qkv);
    Vec ref((size_t)B * Tn * C), scratch((size_t)B * NH * Tn * Tn);
    attention_forward(ref.data(), qkv.data(), scratch.data(), B, Tn, C, NH, causal);
    Dev<T> dqkv(qkv), dout(ref.size());
    attention_forward_cuda(dout.p, dqkv.p, nullptr, B, Tn, C, NH, causal, 0);
    char shape[64];
    snprintf(shape, sizeof shape, "B=%d T=%d NH=%d hs=%d", B, Tn, NH, hs);
    check(causal ? "attention/causal" : "attention", bounds_of<T>().prec, shape, dout.download(), ref, bounds_of<T>().single);
}

template <typename T> static void test_attention(int causal) {
    const int ts[] = {1, 7, 33, 50, 77, 145, 197, 257}, hss[] = {8, 16, 32, 64, 80, 128};
    int Tn = pick(ts), hs = pick(hss), NH = rand_int(1, 4), B = rand_int(1, 3);
    if (!g_quick && next_u64() % 4 == 0) Tn = 577, hs = 64, NH = 1, B = 1;  // ViT-L/14@336 length
    if (g_quick) Tn = CN_MIN(Tn, 77);
    test_attention_shape<T>(B, Tn, NH, hs, causal);
}

// The shapes of the fp16/bf16 tensor-core kernel (head size 32 or 64, C % 8 == 0), every time:
// partial query tiles (64 rows) and key tiles (32), a single token, several heads, the CLIP lengths.
template <typename T> static void test_attention_mma_shapes(void) {
    const int ts[] = {1, 5, 31, 32, 33, 50, 64, 65, 77, 197};
    for (int causal = 0; causal < 2; causal++)
        for (int t : ts) test_attention_shape<T>(2, t, (t % 2) ? 3 : 2, (t % 3) ? 64 : 32, causal);
    if (!g_quick) {
        test_attention_shape<T>(1, 577, 2, 64, 0);  // ViT-L/14@336
        test_attention_shape<T>(1, 257, 16, 64, 0); // ViT-L/14, all its heads
    }
}

struct ConvCase {
    int IC, H, OC, K, S, P;
};
template <typename T> static void test_conv2d(void) {
    const ConvCase cases[] = {{3, 23, 8, 3, 2, 1},  {8, 12, 16, 1, 1, 0},  {5, 9, 7, 3, 1, 1},
                              {4, 10, 6, 1, 2, 0},  {3, 32, 16, 16, 16, 0}, {16, 14, 32, 3, 1, 1}};
    const ConvCase cc = cases[next_u64() % (sizeof cases / sizeof cases[0])];
    const int B = rand_int(1, 3), Ho = (cc.H + 2 * cc.P - cc.K) / cc.S + 1;
    Vec x = randn((size_t)B * cc.IC * cc.H * cc.H), w = randn((size_t)cc.OC * cc.IC * cc.K * cc.K, 1.0f / sqrtf((float)cc.IC * cc.K * cc.K));
    Vec b = randn(cc.OC, 0.5f);
    round_to<T>(x), round_to<T>(w), round_to<T>(b);
    const size_t col = (size_t)cc.IC * cc.K * cc.K * Ho * Ho;
    Vec ref((size_t)B * cc.OC * Ho * Ho), scratch(col);
    conv2d_forward(ref.data(), x.data(), w.data(), b.data(), scratch.data(), B, cc.IC, cc.H, cc.H, cc.OC, cc.K, cc.S, cc.P);
    Dev<T> dx(x), dw(w), db(b), dscr(col), dout(ref.size());
    conv2d_forward_cuda(dout.p, dx.p, dw.p, db.p, dscr.p, B, cc.IC, cc.H, cc.H, cc.OC, cc.K, cc.S, cc.P, 0);
    char shape[64];
    snprintf(shape, sizeof shape, "B=%d IC=%d H=%d OC=%d K=%d S=%d P=%d", B, cc.IC, cc.H, cc.OC, cc.K, cc.S, cc.P);
    check("conv2d", bounds_of<T>().prec, shape, dout.download(), ref, bounds_of<T>().composite);
}

template <typename T> static void test_avgpool(void) {
    const int B = rand_int(1, 3), C = rand_int(1, 40), H = rand_int(2, 30), k = rand_int(1, CN_MIN(3, H));
    Vec x = randn((size_t)B * C * H * H);
    round_to<T>(x);
    Vec ref((size_t)B * C * (H / k) * (H / k));
    avgpool2d_forward(ref.data(), x.data(), B, C, H, H, k);
    Dev<T> dx(x), dout(ref.size());
    avgpool2d_forward_cuda(dout.p, dx.p, B, C, H, H, k, 0);
    char shape[64];
    snprintf(shape, sizeof shape, "B=%d C=%d H=%d k=%d", B, C, H, k);
    check("avgpool2d", bounds_of<T>().prec, shape, dout.download(), ref, bounds_of<T>().single);
}

template <typename T> static void test_im2patch(void) {
    const int ps[] = {4, 8, 14, 16};
    const int B = rand_int(1, 3), C = 3, P = pick(ps), R = P * rand_int(1, 5) + rand_int(0, P - 1);  // remainder dropped
    const int G = R / P;
    Vec img = randn((size_t)B * C * R * R);  // pixels stay fp32 in every precision
    Vec ref((size_t)B * G * G * C * P * P);
    im2patch_forward(ref.data(), img.data(), B, C, R, P);
    Dev<float> dimg(img);
    Dev<T> dout(ref.size());
    im2patch_forward_cuda(dout.p, dimg.p, B, C, R, P, 0);
    char shape[64];
    snprintf(shape, sizeof shape, "B=%d R=%d P=%d", B, R, P);
    check("im2patch", bounds_of<T>().prec, shape, dout.download(), ref, bounds_of<T>().single);
}

template <typename T> static void test_attnpool(void) {
    const int hss[] = {16, 32, 64};
    const int B = rand_int(1, 3), NH = rand_int(1, 4), hs = pick(hss), C = NH * hs;
    const int Hf = rand_int(1, g_quick ? 3 : 7), HW = Hf * Hf, Tn = HW + 1, OD = rand_int(1, 48);
    const float s = 1.0f / sqrtf((float)C);
    Vec x = randn((size_t)B * C * HW), pos = randn((size_t)Tn * C, 0.3f);
    Vec qw = randn((size_t)C * C, s), kw = randn((size_t)C * C, s), vw = randn((size_t)C * C, s), cw = randn((size_t)OD * C, s);
    Vec qb = randn(C, 0.1f), kb = randn(C, 0.1f), vb = randn(C, 0.1f), cb = randn(OD, 0.1f);
    for (Vec *v : {&x, &pos, &qw, &kw, &vw, &cw, &qb, &kb, &vb, &cb}) round_to<T>(*v);
    Vec ref((size_t)B * OD), scratch((size_t)attnpool_scratch_floats(B, C, HW));
    attnpool_forward(ref.data(), x.data(), pos.data(), qw.data(), qb.data(), kw.data(), kb.data(), vw.data(), vb.data(),
                     cw.data(), cb.data(), scratch.data(), B, C, HW, NH, OD);
    Dev<T> dx(x), dpos(pos), dqw(qw), dkw(kw), dvw(vw), dcw(cw), dqb(qb), dkb(kb), dvb(vb), dcb(cb);
    Dev<T> dscr((size_t)attnpool_scratch_floats_cuda(B, C, HW)), dout(ref.size());
    attnpool_forward_cuda(dout.p, dx.p, dpos.p, dqw.p, dqb.p, dkw.p, dkb.p, dvw.p, dvb.p, dcw.p, dcb.p, dscr.p, B, C, HW,
                          NH, OD, 0);
    char shape[64];
    snprintf(shape, sizeof shape, "B=%d C=%d HW=%d NH=%d OD=%d", B, C, HW, NH, OD);
    check("attnpool", bounds_of<T>().prec, shape, dout.download(), ref, bounds_of<T>().composite);

    // the single-query attention alone
    Vec q = randn((size_t)B * C), k = randn((size_t)B * Tn * C), v = randn((size_t)B * Tn * C);
    round_to<T>(q), round_to<T>(k), round_to<T>(v);
    Vec ref_q((size_t)B * C);
    attention_query_forward(ref_q.data(), q.data(), k.data(), v.data(), B, Tn, C, NH);
    Dev<T> dq(q), dk(k), dv(v), dqo(ref_q.size());
    attention_query_forward_cuda(dqo.p, dq.p, dk.p, dv.p, B, Tn, C, NH, 0);
    check("attention_query", bounds_of<T>().prec, shape, dqo.download(), ref_q, bounds_of<T>().single);
}

// ---- helpers without a CPU twin, against host loops ---------------------------------------------------------------
template <typename T> static void test_helpers(void) {
    const Bounds bd = bounds_of<T>();
    const int ws[] = {8, 16, 64, 768};
    const int B = rand_int(1, 4), W = pick(ws), G2 = rand_int(1, 50), Tn = rand_int(1, 77);
    char shape[64];
    snprintf(shape, sizeof shape, "B=%d W=%d G2=%d T=%d", B, W, G2, Tn);
    {  // ViT tokens: [class; patches] + pos
        Vec tok = randn((size_t)B * G2 * W), cls = randn(W), pos = randn((size_t)(G2 + 1) * W);
        round_to<T>(tok), round_to<T>(cls), round_to<T>(pos);
        Vec ref((size_t)B * (G2 + 1) * W);
        for (int b = 0; b < B; b++)
            for (int t = 0; t <= G2; t++)
                for (int c = 0; c < W; c++)
                    ref[((size_t)b * (G2 + 1) + t) * W + c] =
                        (t == 0 ? cls[c] : tok[((size_t)b * G2 + t - 1) * W + c]) + pos[(size_t)t * W + c];
        Dev<T> dt(tok), dc(cls), dp(pos), dout(ref.size());
        vit_embed_forward_cuda<T>(dout.p, dt.p, dc.p, dp.p, B, G2, W, 0);
        check("vit_embed", bd.prec, shape, dout.download(), ref, bd.single);
    }
    {  // text embedding + gather at EOT
        const int vocab = 1000;
        Vec emb = randn((size_t)vocab * W), pos = randn((size_t)Tn * W);
        round_to<T>(emb), round_to<T>(pos);
        std::vector<int32_t> ids((size_t)B * Tn), eot(B);
        for (auto &i : ids) i = rand_int(0, vocab - 1);
        for (auto &e : eot) e = rand_int(0, Tn - 1);
        Vec ref((size_t)B * Tn * W), ref_g((size_t)B * W), ref_g0((size_t)B * W);
        for (size_t r = 0; r < (size_t)B * Tn; r++)
            for (int c = 0; c < W; c++) ref[r * W + c] = emb[(size_t)ids[r] * W + c] + pos[(r % Tn) * W + c];
        for (int b = 0; b < B; b++)
            for (int c = 0; c < W; c++) {
                ref_g[(size_t)b * W + c] = Ty<T>::from(Ty<T>::to(ref[((size_t)b * Tn + eot[b]) * W + c]));
                ref_g0[(size_t)b * W + c] = Ty<T>::from(Ty<T>::to(ref[((size_t)b * Tn) * W + c]));
            }
        Dev<T> de(emb), dp(pos), dx(ref.size()), dg((size_t)B * W), dg0((size_t)B * W);
        int32_t *dids, *deot;
        cudaCheck(cudaMalloc(&dids, ids.size() * sizeof(int32_t)));
        cudaCheck(cudaMalloc(&deot, eot.size() * sizeof(int32_t)));
        cudaCheck(cudaMemcpy(dids, ids.data(), ids.size() * sizeof(int32_t), cudaMemcpyHostToDevice));
        cudaCheck(cudaMemcpy(deot, eot.data(), eot.size() * sizeof(int32_t), cudaMemcpyHostToDevice));
        text_embed_forward_cuda<T>(dx.p, dids, de.p, dp.p, B, Tn, W, 0);
        gather_rows_cuda<T>(dg.p, dx.p, deot, B, Tn, W, 0);
        gather_rows_cuda<T>(dg0.p, dx.p, nullptr, B, Tn, W, 0);
        check("text_embed", bd.prec, shape, dx.download(), ref, bd.single);
        check("gather_rows/eot", bd.prec, shape, dg.download(), ref_g, bd.single);
        check("gather_rows/0", bd.prec, shape, dg0.download(), ref_g0, bd.single);
        cudaCheck(cudaFree(dids));
        cudaCheck(cudaFree(deot));
    }
    {  // attention-pool tokens: [mean; positions] + pos, from NCHW
        const int E = W, HW = rand_int(1, 50);
        Vec x = randn((size_t)B * E * HW), pos = randn((size_t)(HW + 1) * E);
        round_to<T>(x), round_to<T>(pos);
        Vec ref((size_t)B * (HW + 1) * E);
        for (int b = 0; b < B; b++)
            for (int e = 0; e < E; e++) {
                double s = 0;
                for (int p = 0; p < HW; p++) {
                    const float v = x[((size_t)b * E + e) * HW + p];
                    s += v;
                    ref[((size_t)b * (HW + 1) + 1 + p) * E + e] = v + pos[(size_t)(1 + p) * E + e];
                }
                ref[(size_t)b * (HW + 1) * E + e] = (float)(s / HW) + pos[e];
            }
        Dev<T> dx(x), dp(pos), dout(ref.size());
        attnpool_tokens_cuda<T>(dout.p, dx.p, dp.p, B, E, HW, 0);
        check("attnpool_tokens", bd.prec, shape, dout.download(), ref, bd.single);
    }
    {  // conversions and NaN fill
        Vec x = randn((size_t)B * W * 7, 10.0f);
        Dev<float> dx(x);
        Dev<T> dt(x.size());
        Dev<float> back(x.size());
        convert_from_f32_cuda<T>(dt.p, dx.p, (long)x.size(), 0);
        convert_to_f32_cuda<T>(back.p, dt.p, (long)x.size(), 0);
        Vec ref = x;
        round_to<T>(ref);
        check("convert", bd.prec, shape, back.download(), ref, bd.single);
        fill_nan_cuda<T>(dt.p, (long)x.size(), 0);
        Vec nan = dt.download();
        long not_nan = 0;
        for (float v : nan) not_nan += !isnan(v);
        g_cases++;
        if (not_nan) g_failures++;
        printf("%s fill_nan         %-5s %ld of %zu values not NaN\n", not_nan ? "FAIL" : "ok  ", bd.prec, not_nan, nan.size());
    }
}

template <typename T> static void run_all(int reps) {
    for (int r = 0; r < reps; r++) {
        test_layernorm<T>();
        test_matmul<T>();
        test_elementwise<T>();
        test_attention<T>(0);
        test_attention<T>(1);
        if (r == 0) test_attention_mma_shapes<T>();
        test_conv2d<T>();
        test_avgpool<T>();
        test_im2patch<T>();
        test_attnpool<T>();
        test_helpers<T>();
    }
}

int main(int argc, char **argv) {
    const int gate = cuda_test_gate(argc, argv);
    if (gate >= 0) return gate;
    g_quick = argc > 1 && !strcmp(argv[1], "--quick");
    const char *seed = getenv("CLIPNEG_TEST_SEED");
    g_rng = seed ? strtoull(seed, nullptr, 10) : (uint64_t)time(nullptr);
    printf("seed %llu (replay with CLIPNEG_TEST_SEED=%llu)%s\n", (unsigned long long)g_rng, (unsigned long long)g_rng,
           g_quick ? ", quick shapes" : "");
    cudaCheck(cudaSetDevice(0));
    const int reps = g_quick ? 1 : 3;
    cuda_ops_set_tf32(0);
    run_all<float>(reps);
    run_all<__half>(reps);
    run_all<__nv_bfloat16>(reps);
    cuda_ops_set_tf32(1);  // the GEMM-based ops again, on TF32 tensor cores
    for (int r = 0; r < reps; r++) {
        test_matmul<float>();
        test_conv2d<float>();
        test_attnpool<float>();
    }
    cuda_ops_set_tf32(0);
    cuda_ops_release();
    cudaCheck(cudaDeviceSynchronize());
    printf("%d of %d cases failed\n", g_failures, g_cases);
    return g_failures ? 1 : 0;
}
