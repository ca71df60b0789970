// ops.cu — elementwise, layernorm and pooling kernels, plus the small data-movement helpers of
// the towers. One thread per output element, grid-stride loops, fp32 arithmetic on T storage:
// simple enough to read at a glance. Attention lives in attention.cu, GEMMs and convolutions in
// matmul.cu.
#include <math.h>

#include "cuda_common.cuh"
#include "ops.cuh"

// ---- elementwise -----------------------------------------------------------------------------------------
// The activations and the residual add are memory-bound: each thread moves 16 bytes at a time
// (8 fp16/bf16 or 4 fp32 values); the < 16-byte tail and unaligned pointers take the scalar loop.
// On an H100 the one-value-per-thread version of QuickGELU alone took 16% of the fp16 text tower.
struct QuickGeluOp {
    __device__ float operator()(float v) const { return v / (1.0f + expf(-1.702f * v)); }  // v * sigmoid(1.702 v)
};
struct GeluOp {
    __device__ float operator()(float v) const { return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f)); }  // exact erf GELU
};
struct ReluOp {
    __device__ float operator()(float v) const { return v > 0.0f ? v : 0.0f; }
};

template <typename T, typename Op> __global__ void unary_kernel(T *x, long n, int vectorised) {
    constexpr int V = 16 / sizeof(T);
    const long tid = blockIdx.x * (long)blockDim.x + threadIdx.x, stride = (long)gridDim.x * blockDim.x;
    const long nv = vectorised ? n / V : 0;
    for (long i = tid; i < nv; i += stride) {
        __align__(16) T v[V];
        copy16(v, x + i * V);
#pragma unroll
        for (int j = 0; j < V; j++) v[j] = from_f<T>(Op()(to_f(v[j])));
        copy16(x + i * V, v);
    }
    for (long i = nv * V + tid; i < n; i += stride) x[i] = from_f<T>(Op()(to_f(x[i])));
}

template <typename T> __global__ void residual_kernel(T *out, const T *a, const T *b, long n, int vectorised) {
    constexpr int V = 16 / sizeof(T);
    const long tid = blockIdx.x * (long)blockDim.x + threadIdx.x, stride = (long)gridDim.x * blockDim.x;
    const long nv = vectorised ? n / V : 0;
    for (long i = tid; i < nv; i += stride) {
        __align__(16) T va[V];
        __align__(16) T vb[V];
        copy16(va, a + i * V);
        copy16(vb, b + i * V);
#pragma unroll
        for (int j = 0; j < V; j++) va[j] = from_f<T>(to_f(va[j]) + to_f(vb[j]));
        copy16(out + i * V, va);
    }
    for (long i = nv * V + tid; i < n; i += stride) out[i] = from_f<T>(to_f(a[i]) + to_f(b[i]));
}

static inline int aligned16(const void *p) { return ((uintptr_t)p % 16) == 0; }

template <typename T, typename Op> static void unary_launch(T *x, long n, cudaStream_t s) {
    cudaAssert(n >= 0, "elementwise: n=%ld", n);
    if (n == 0) return;
    const int vec = aligned16(x);
    unary_kernel<T, Op><<<grid_for(vec ? CN_CEIL_DIV(n, 16 / (long)sizeof(T)) : n, kThreads), kThreads, 0, s>>>(x, n, vec);
    cudaLaunchCheck();
}
template <typename T> static void residual_launch(T *out, const T *a, const T *b, long n, cudaStream_t s) {
    cudaAssert(n >= 0, "residual: n=%ld", n);
    if (n == 0) return;
    const int vec = aligned16(out) && aligned16(a) && aligned16(b);
    residual_kernel<T><<<grid_for(vec ? CN_CEIL_DIV(n, 16 / (long)sizeof(T)) : n, kThreads), kThreads, 0, s>>>(out, a, b, n, vec);
    cudaLaunchCheck();
}

// ---- layernorm: one warp per row, two passes over the row (mean, then centred variance) -------------------
// Biased variance with eps inside the square root, as torch.nn.LayerNorm. out may alias inp: every
// lane reads and writes only its own columns, and all reads of a column precede its write. Rows up
// to 1024 wide (every CLIP width) are read from memory once and kept in registers.
constexpr int kLnWarps = 8;

constexpr int kLnCache = 32;  // values per lane kept in registers: rows up to 1024 wide are read once

template <typename T>
__global__ void layernorm_kernel(T *out, const T *inp, const T *w, const T *b, int N, int C, float eps) {
    const long row = (long)blockIdx.x * kLnWarps + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (row >= N) return;  // whole warp leaves together: the shuffles below stay full-warp
    const T *x = inp + row * C;
    T *y = out + row * C;
    const bool cached = C <= 32 * kLnCache;  // uniform over the grid
    float v[kLnCache];
    float sum = 0.0f;
    if (cached) {
#pragma unroll
        for (int k = 0; k < kLnCache; k++) {
            const int c = lane + 32 * k;
            v[k] = c < C ? to_f(x[c]) : 0.0f;
            sum += v[k];
        }
    } else {
        for (int c = lane; c < C; c += 32) sum += to_f(x[c]);
    }
    const float mean = warp_sum(sum) / (float)C;
    float sq = 0.0f;
    if (cached) {
#pragma unroll
        for (int k = 0; k < kLnCache; k++) {
            const float d = lane + 32 * k < C ? v[k] - mean : 0.0f;
            sq += d * d;
        }
    } else {
        for (int c = lane; c < C; c += 32) {
            float d = to_f(x[c]) - mean;
            sq += d * d;
        }
    }
    const float rstd = 1.0f / sqrtf(warp_sum(sq) / (float)C + eps);
    if (cached) {
#pragma unroll
        for (int k = 0; k < kLnCache; k++) {
            const int c = lane + 32 * k;
            if (c < C) y[c] = from_f<T>((v[k] - mean) * rstd * to_f(w[c]) + to_f(b[c]));
        }
    } else {
        for (int c = lane; c < C; c += 32) y[c] = from_f<T>((to_f(x[c]) - mean) * rstd * to_f(w[c]) + to_f(b[c]));
    }
}

// ---- average pool, NCHW, kernel = stride = k, no padding (floor of H/k, W/k as nn.AvgPool2d) ----------------
template <typename T> __global__ void avgpool_kernel(T *out, const T *inp, int B, int C, int H, int W, int k) {
    const int Ho = H / k, Wo = W / k;
    const long n = (long)B * C * Ho * Wo;
    const float inv = 1.0f / (float)(k * k);
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        const int ox = (int)(i % Wo), oy = (int)((i / Wo) % Ho);
        const long plane = i / ((long)Ho * Wo);  // b * C + c
        const T *src = inp + plane * H * W + (long)(oy * k) * W + ox * k;
        float s = 0.0f;
        for (int dy = 0; dy < k; dy++)
            for (int dx = 0; dx < k; dx++) s += to_f(src[(long)dy * W + dx]);
        out[i] = from_f<T>(s * inv);
    }
}

// ---- launchers (typed), then the public twins --------------------------------------------------------------
template <typename T> static void layernorm_launch(T *out, const T *inp, const T *w, const T *b, int N, int C, float eps, cudaStream_t s) {
    cudaAssert(N >= 0 && C > 0, "layernorm: N=%d C=%d", N, C);
    if (N == 0) return;
    layernorm_kernel<T><<<(unsigned)CN_CEIL_DIV(N, kLnWarps), kLnWarps * 32, 0, s>>>(out, inp, w, b, N, C, eps);
    cudaLaunchCheck();
}

#define CN_ELEMENTWISE_LAUNCH(kernel, n, s, ...)                              \
    do {                                                                       \
        cudaAssert((n) >= 0, #kernel ": n=%ld", (long)(n));                   \
        if ((n) == 0) break;                                                   \
        kernel<<<grid_for((n), kThreads), kThreads, 0, (s)>>>(__VA_ARGS__);    \
        cudaLaunchCheck();                                                     \
    } while (0)

template <typename T> static void avgpool_launch(T *out, const T *inp, int B, int C, int H, int W, int k, cudaStream_t s) {
    cudaAssert(k >= 1 && H >= k && W >= k && B >= 0 && C >= 0, "avgpool: B=%d C=%d H=%d W=%d k=%d", B, C, H, W, k);
    const long n = (long)B * C * (H / k) * (W / k);
    CN_ELEMENTWISE_LAUNCH(avgpool_kernel<T>, n, s, out, inp, B, C, H, W, k);
}

#define CN_DEFINE_ELEMENTWISE_TWINS(T)                                                                          \
    void layernorm_forward_cuda(T *out, const T *inp, const T *w, const T *b, int N, int C, float eps,            \
                                cudaStream_t s) {                                                               \
        layernorm_launch<T>(out, inp, w, b, N, C, eps, s);                                                      \
    }                                                                                                           \
    void quick_gelu_forward_cuda(T *x, long n, cudaStream_t s) { unary_launch<T, QuickGeluOp>(x, n, s); }       \
    void gelu_forward_cuda(T *x, long n, cudaStream_t s) { unary_launch<T, GeluOp>(x, n, s); }                  \
    void relu_forward_cuda(T *x, long n, cudaStream_t s) { unary_launch<T, ReluOp>(x, n, s); }                  \
    void residual_forward_cuda(T *out, const T *a, const T *b, long n, cudaStream_t s) {                         \
        residual_launch<T>(out, a, b, n, s);                                                                    \
    }                                                                                                           \
    void avgpool2d_forward_cuda(T *out, const T *inp, int B, int C, int H, int W, int k, cudaStream_t s) {       \
        avgpool_launch<T>(out, inp, B, C, H, W, k, s);                                                          \
    }

extern "C" {
CN_DEFINE_ELEMENTWISE_TWINS(float)
}
CN_DEFINE_ELEMENTWISE_TWINS(__half)
CN_DEFINE_ELEMENTWISE_TWINS(__nv_bfloat16)

// ---- helpers without a CPU twin ---------------------------------------------------------------------------
template <typename T> __global__ void from_f32_kernel(T *out, const float *in, long n) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        out[i] = from_f<T>(in[i]);
}
template <typename T> __global__ void to_f32_kernel(float *out, const T *in, long n) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        out[i] = to_f(in[i]);
}
template <typename T> __global__ void fill_nan_kernel(T *x, long n) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        x[i] = from_f<T>(__int_as_float(0x7fc00000));  // quiet NaN
}

// ViT patch extraction, the CPU's im2patch_forward: out[(b*G + gy)*G + gx, (c*P + ky)*P + kx] = img[b, c, gy*P + ky, gx*P + kx].
template <typename T> __global__ void im2patch_kernel(T *out, const float *img, int B, int C, int R, int P) {
    const int G = R / P, cols = C * P * P;
    const long n = (long)B * G * G * cols;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        const int col = (int)(i % cols);
        const long row = i / cols;  // (b * G + gy) * G + gx
        const long b = row / ((long)G * G);
        const int p = (int)(row % ((long)G * G));
        const int gy = p / G, gx = p % G;
        const int c = col / (P * P), ky = (col / P) % P, kx = col % P;
        out[i] = from_f<T>(img[((b * C + c) * R + gy * P + ky) * R + gx * P + kx]);
    }
}

template <typename T>
__global__ void vit_embed_kernel(T *x, const T *patch_tok, const T *class_emb, const T *pos, int B, int G2, int W) {
    const int L = G2 + 1;
    const long n = (long)B * L * W;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        const int c = (int)(i % W), t = (int)((i / W) % L);
        const long b = i / ((long)L * W);
        const float v = t == 0 ? to_f(class_emb[c]) : to_f(patch_tok[(b * G2 + t - 1) * W + c]);
        x[i] = from_f<T>(v + to_f(pos[(long)t * W + c]));
    }
}

template <typename T>
__global__ void text_embed_kernel(T *x, const int32_t *ids, const T *tok_emb, const T *pos, int B, int Tn, int W) {
    const long n = (long)B * Tn * W;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        const int c = (int)(i % W);
        const long bt = i / W;  // b * Tn + t
        const int t = (int)(bt % Tn);
        x[i] = from_f<T>(to_f(tok_emb[(long)ids[bt] * W + c]) + to_f(pos[(long)t * W + c]));
    }
}

template <typename T> __global__ void gather_rows_kernel(T *out, const T *x, const int32_t *pos, int B, int Tn, int C) {
    const long n = (long)B * C;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        const long b = i / C;
        const int c = (int)(i % C), t = pos ? pos[b] : 0;
        out[i] = x[(b * Tn + t) * C + c];
    }
}

// One thread per (b, e): the mean over HW positions in a fixed order, then the HW copies.
template <typename T> __global__ void attnpool_tokens_kernel(T *tok, const T *x, const T *pos, int B, int E, int HW) {
    const long n = (long)B * E;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        const long b = i / E;
        const int e = (int)(i % E);
        const T *src = x + i * HW;  // x[b, e, :]
        T *dst = tok + b * (long)(HW + 1) * E + e;
        float sum = 0.0f;
        for (int p = 0; p < HW; p++) {
            const float v = to_f(src[p]);
            sum += v;
            dst[(long)(1 + p) * E] = from_f<T>(v + to_f(pos[(long)(1 + p) * E + e]));
        }
        dst[0] = from_f<T>(sum / (float)HW + to_f(pos[e]));
    }
}

template <typename T> void convert_from_f32_cuda(T *out, const float *in, long n, cudaStream_t s) {
    CN_ELEMENTWISE_LAUNCH(from_f32_kernel<T>, n, s, out, in, n);
}
template <typename T> void convert_to_f32_cuda(float *out, const T *in, long n, cudaStream_t s) {
    CN_ELEMENTWISE_LAUNCH(to_f32_kernel<T>, n, s, out, in, n);
}
template <typename T> void fill_nan_cuda(T *x, long n, cudaStream_t s) { CN_ELEMENTWISE_LAUNCH(fill_nan_kernel<T>, n, s, x, n); }

template <typename T> static void im2patch_launch(T *out, const float *img, int B, int C, int R, int P, cudaStream_t s) {
    cudaAssert(P >= 1 && R >= P && B >= 0 && C > 0, "im2patch: B=%d C=%d R=%d P=%d", B, C, R, P);
    const long n = (long)B * (R / P) * (R / P) * C * P * P;
    CN_ELEMENTWISE_LAUNCH(im2patch_kernel<T>, n, s, out, img, B, C, R, P);
}
extern "C" void im2patch_forward_cuda(float *out, const float *img, int B, int C, int R, int P, cudaStream_t s) {
    im2patch_launch<float>(out, img, B, C, R, P, s);
}
void im2patch_forward_cuda(__half *out, const float *img, int B, int C, int R, int P, cudaStream_t s) {
    im2patch_launch<__half>(out, img, B, C, R, P, s);
}
void im2patch_forward_cuda(__nv_bfloat16 *out, const float *img, int B, int C, int R, int P, cudaStream_t s) {
    im2patch_launch<__nv_bfloat16>(out, img, B, C, R, P, s);
}
template <typename T>
void vit_embed_forward_cuda(T *x, const T *patch_tok, const T *class_emb, const T *pos, int B, int G2, int W, cudaStream_t s) {
    cudaAssert(B >= 0 && G2 >= 0 && W > 0, "vit_embed: B=%d G2=%d W=%d", B, G2, W);
    const long n = (long)B * (G2 + 1) * W;
    CN_ELEMENTWISE_LAUNCH(vit_embed_kernel<T>, n, s, x, patch_tok, class_emb, pos, B, G2, W);
}
template <typename T>
void text_embed_forward_cuda(T *x, const int32_t *ids, const T *tok_emb, const T *pos, int B, int Tn, int W, cudaStream_t s) {
    cudaAssert(B >= 0 && Tn > 0 && W > 0, "text_embed: B=%d T=%d W=%d", B, Tn, W);
    const long n = (long)B * Tn * W;
    CN_ELEMENTWISE_LAUNCH(text_embed_kernel<T>, n, s, x, ids, tok_emb, pos, B, Tn, W);
}
template <typename T> void gather_rows_cuda(T *out, const T *x, const int32_t *pos, int B, int Tn, int C, cudaStream_t s) {
    cudaAssert(B >= 0 && Tn > 0 && C > 0, "gather_rows: B=%d T=%d C=%d", B, Tn, C);
    const long n = (long)B * C;
    CN_ELEMENTWISE_LAUNCH(gather_rows_kernel<T>, n, s, out, x, pos, B, Tn, C);
}
template <typename T> void attnpool_tokens_cuda(T *tok, const T *x, const T *pos, int B, int E, int HW, cudaStream_t s) {
    cudaAssert(B >= 0 && E > 0 && HW > 0, "attnpool_tokens: B=%d E=%d HW=%d", B, E, HW);
    const long n = (long)B * E;
    CN_ELEMENTWISE_LAUNCH(attnpool_tokens_kernel<T>, n, s, tok, x, pos, B, E, HW);
}

#define CN_INSTANTIATE_HELPERS(T)                                                                              \
    template void convert_from_f32_cuda<T>(T *, const float *, long, cudaStream_t);                            \
    template void convert_to_f32_cuda<T>(float *, const T *, long, cudaStream_t);                              \
    template void fill_nan_cuda<T>(T *, long, cudaStream_t);                                                   \
    template void vit_embed_forward_cuda<T>(T *, const T *, const T *, const T *, int, int, int, cudaStream_t); \
    template void text_embed_forward_cuda<T>(T *, const int32_t *, const T *, const T *, int, int, int, cudaStream_t); \
    template void gather_rows_cuda<T>(T *, const T *, const int32_t *, int, int, int, cudaStream_t);           \
    template void attnpool_tokens_cuda<T>(T *, const T *, const T *, int, int, int, cudaStream_t);

CN_INSTANTIATE_HELPERS(float)
CN_INSTANTIATE_HELPERS(__half)
CN_INSTANTIATE_HELPERS(__nv_bfloat16)
