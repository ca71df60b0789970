// attnpool.cu — ModifiedResNet's attention pooling (open_clip AttentionPool2d): tokens = [mean over
// the HW positions; the positions] + pos_emb, multi-head attention with the mean token as the only
// query, then c_proj. The same steps, buffers and order as the CPU attnpool_forward.
#include <math.h>

#include "cuda_common.cuh"
#include "ops.cuh"

constexpr int kQueryThreads = 128;
constexpr int kQueryMaxT = 8192;  // keys per sequence: the scores live in shared memory (32 KiB)

// Reduce v over the block (max or sum); every thread gets the result. `red` holds one float per warp.
static __device__ float block_reduce(float v, bool is_max, float *red) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = blockDim.x / 32;
    v = is_max ? warp_max(v) : warp_sum(v);
    __syncthreads();  // `red` may still be read by a previous reduction
    if (lane == 0) red[warp] = v;
    __syncthreads();
    float r = red[0];
    for (int w = 1; w < n_warps; w++) r = is_max ? fmaxf(r, red[w]) : r + red[w];
    return r;
}

// One block per (head h, item b): scores s_j = q.k_j / sqrt(hs) (one warp per key), softmax over
// the Tn keys, out = sum_j p_j v_j (one thread per output column).
template <typename T>
__global__ void __launch_bounds__(kQueryThreads)
attention_query_kernel(T *out, const T *q, const T *k, const T *v, int Tn, int C, int NH, float scale) {
    extern __shared__ float probs[];  // [Tn]
    __shared__ float red[kQueryThreads / 32];
    const int hs = C / NH, h = blockIdx.x;
    const long b = blockIdx.y;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = blockDim.x / 32;
    const T *qh = q + b * C + h * hs;
    const T *kb = k + b * Tn * C + h * hs;
    const T *vb = v + b * Tn * C + h * hs;

    for (int j = warp; j < Tn; j += n_warps) {
        float dot = 0.0f;
        for (int d = lane; d < hs; d += 32) dot += to_f(qh[d]) * to_f(kb[(long)j * C + d]);
        dot = warp_sum(dot);
        if (lane == 0) probs[j] = dot * scale;
    }
    __syncthreads();
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < Tn; j += blockDim.x) mx = fmaxf(mx, probs[j]);
    mx = block_reduce(mx, true, red);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < Tn; j += blockDim.x) {
        const float e = expf(probs[j] - mx);
        probs[j] = e;
        sum += e;
    }
    sum = block_reduce(sum, false, red);  // its __syncthreads also publishes probs[]
    const float inv = 1.0f / sum;
    for (int d = threadIdx.x; d < hs; d += blockDim.x) {
        float acc = 0.0f;
        for (int j = 0; j < Tn; j++) acc += probs[j] * to_f(vb[(long)j * C + d]);
        out[b * C + h * hs + d] = from_f<T>(acc * inv);
    }
}

template <typename T>
static void attention_query_launch(T *out, const T *q, const T *k, const T *v, int B, int Tn, int C, int NH, cudaStream_t s) {
    cudaAssert(B >= 0 && Tn > 0 && NH > 0 && C % NH == 0, "attention_query: B=%d T=%d C=%d NH=%d", B, Tn, C, NH);
    cudaAssert(Tn <= kQueryMaxT, "attention_query: %d keys > %d", Tn, kQueryMaxT);
    cudaAssert(B <= 65535, "attention_query: batch %d over the grid limit", B);
    if (B == 0) return;
    dim3 grid((unsigned)NH, (unsigned)B);
    // probs[] rounded up to whole 16-byte words: nvcc vectorises the p.v loop's shared reads (up to
    // 12 bytes at a time), and compute-sanitizer's memcheck flagged those reads past a [Tn] array
    // on an H100 (Tn = 2, the 1x1 ResNet grid of the tests).
    const size_t smem = (size_t)CN_CEIL_DIV(Tn, 4) * 4 * sizeof(float);
    attention_query_kernel<T><<<grid, kQueryThreads, smem, s>>>(out, q, k, v, Tn, C, NH, 1.0f / sqrtf((float)(C / NH)));
    cudaLaunchCheck();
}

extern "C" long attnpool_scratch_floats_cuda(int B, int C, int HW) {
    const long T = HW + 1;
    return 3L * B * T * C + 2L * B * C;  // tokens, k, v [B,T,C]; q, attended [B,C]
}

template <typename T>
static void attnpool_launch(T *out, const T *inp, const T *pos_emb, const T *q_w, const T *q_b, const T *k_w,
                            const T *k_b, const T *v_w, const T *v_b, const T *c_w, const T *c_b, T *scratch, int B,
                            int C, int HW, int NH, int OD, cudaStream_t s) {
    const int Tn = HW + 1;
    T *tokens = scratch;                     // [B, Tn, C]
    T *k = tokens + (size_t)B * Tn * C;      // [B, Tn, C]
    T *v = k + (size_t)B * Tn * C;           // [B, Tn, C]
    T *q = v + (size_t)B * Tn * C;           // [B, C]   projection of the mean token
    T *attended = q + (size_t)B * C;         // [B, C]
    attnpool_tokens_cuda<T>(tokens, inp, pos_emb, B, C, HW, s);
    matmul_forward_cuda(k, tokens, k_w, k_b, B * Tn, C, C, s);
    matmul_forward_cuda(v, tokens, v_w, v_b, B * Tn, C, C, s);
    gather_rows_cuda<T>(attended, tokens, nullptr, B, Tn, C, s);  // the mean tokens
    matmul_forward_cuda(q, attended, q_w, q_b, B, C, C, s);
    attention_query_launch<T>(attended, q, k, v, B, Tn, C, NH, s);
    matmul_forward_cuda(out, attended, c_w, c_b, B, C, OD, s);
}

#define CN_DEFINE_ATTNPOOL_TWINS(T)                                                                            \
    void attention_query_forward_cuda(T *out, const T *q, const T *k, const T *v, int B, int Tn, int C, int NH,   \
                                      cudaStream_t s) {                                                         \
        attention_query_launch<T>(out, q, k, v, B, Tn, C, NH, s);                                               \
    }                                                                                                           \
    void attnpool_forward_cuda(T *out, const T *inp, const T *pos_emb, const T *q_w, const T *q_b, const T *k_w,  \
                               const T *k_b, const T *v_w, const T *v_b, const T *c_w, const T *c_b, T *scratch,  \
                               int B, int C, int HW, int NH, int OD, cudaStream_t s) {                          \
        attnpool_launch<T>(out, inp, pos_emb, q_w, q_b, k_w, k_b, v_w, v_b, c_w, c_b, scratch, B, C, HW, NH, OD, s); \
    }

extern "C" {
CN_DEFINE_ATTNPOOL_TWINS(float)
}
CN_DEFINE_ATTNPOOL_TWINS(__half)
CN_DEFINE_ATTNPOOL_TWINS(__nv_bfloat16)
