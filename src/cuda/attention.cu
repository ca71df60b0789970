// attention.cu — fused multi-head self-attention: scores, softmax and the product with V in one
// kernel, never materialising the T x T probabilities (the CPU twin keeps them in `scratch`).
//
// One block per (query tile of 16 rows, head, batch item); 4 warps, each owning 4 query rows.
// Keys/values stream through shared memory in tiles of 32 — one key per lane — and every row keeps
// an online softmax (running max m, running sum l, unnormalised output acc), the flash-attention
// recurrence written for readability rather than speed:
//     m' = max(m, max_j s_j);  l' = l e^(m - m') + sum_j e^(s_j - m');  acc' = acc e^(m - m') + sum_j e^(s_j - m') v_j
// out = acc / l at the end. Head size <= 128 (each lane holds up to 4 output columns).
#include <math.h>

#include "cuda_common.cuh"
#include "ops.cuh"

constexpr int kAttWarps = 4;
constexpr int kAttRows = 4;                     // query rows per warp
constexpr int kAttQTile = kAttWarps * kAttRows; // query rows per block
constexpr int kAttKTile = 32;                   // keys per shared tile (one per lane)
constexpr int kAttMaxHs = 128;                  // largest head size supported
constexpr int kAttSlots = kAttMaxHs / 32;       // output columns per lane

// qkv [B, Tn, 3C]: q | k | v along the last axis, head h at columns h*hs .. h*hs+hs-1 of each part.
// out [B, Tn, C]. causal: row i sees keys j <= i.
template <typename T>
__global__ void __launch_bounds__(kAttWarps * 32)
attention_kernel(T *out, const T *qkv, int Tn, int C, int NH, int causal, float scale) {
    __shared__ float q_s[kAttQTile][kAttMaxHs];
    __shared__ float k_s[kAttKTile][kAttMaxHs + 1];  // +1: lane-per-key reads hit 32 different banks
    __shared__ float v_s[kAttKTile][kAttMaxHs];
    const int hs = C / NH;
    const int h = blockIdx.y, q0 = blockIdx.x * kAttQTile;
    const long b = blockIdx.z;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const long C3 = 3L * C;
    const T *seq = qkv + b * Tn * C3;

    // The query tile, pre-multiplied by 1/sqrt(hs); rows past the end are zeros (never used).
    for (int idx = threadIdx.x; idx < kAttQTile * hs; idx += blockDim.x) {
        const int r = idx / hs, d = idx % hs, i = q0 + r;
        q_s[r][d] = i < Tn ? to_f(seq[i * C3 + h * hs + d]) * scale : 0.0f;
    }

    float m[kAttRows], l[kAttRows], acc[kAttRows][kAttSlots];
#pragma unroll
    for (int rr = 0; rr < kAttRows; rr++) {
        m[rr] = -INFINITY;
        l[rr] = 0.0f;
#pragma unroll
        for (int c = 0; c < kAttSlots; c++) acc[rr][c] = 0.0f;
    }

    const int q_last = min(q0 + kAttQTile, Tn) - 1;  // last valid query row of this block
    const int kv_end = causal ? q_last + 1 : Tn;     // keys any row of this block can see
    for (int k0 = 0; k0 < kv_end; k0 += kAttKTile) {
        __syncthreads();  // the previous tile is fully consumed (and q_s is written, the first time)
        for (int idx = threadIdx.x; idx < kAttKTile * hs; idx += blockDim.x) {
            const int j = idx / hs, d = idx % hs, key = k0 + j;
            const bool in = key < Tn;
            k_s[j][d] = in ? to_f(seq[key * C3 + C + h * hs + d]) : 0.0f;
            v_s[j][d] = in ? to_f(seq[key * C3 + 2 * C + h * hs + d]) : 0.0f;
        }
        __syncthreads();
        const int n_keys = min(kAttKTile, Tn - k0);
#pragma unroll
        for (int rr = 0; rr < kAttRows; rr++) {
            const int r = warp * kAttRows + rr, i = q0 + r;
            if (i >= Tn) break;  // warp-uniform: i depends on the warp only
            const int key = k0 + lane;
            const bool valid = key < Tn && (!causal || key <= i);
            float s = -INFINITY;
            if (valid) {
                float dot = 0.0f;
                for (int d = 0; d < hs; d++) dot += q_s[r][d] * k_s[lane][d];
                s = dot;
            }
            const float tile_max = warp_max(s);
            if (tile_max == -INFINITY) continue;  // every key of this tile is masked for row i (warp-uniform)
            const float m_new = fmaxf(m[rr], tile_max);
            const float corr = expf(m[rr] - m_new);  // 0 on the first visible tile (m = -inf)
            const float p = valid ? expf(s - m_new) : 0.0f;
            l[rr] = l[rr] * corr + warp_sum(p);
#pragma unroll
            for (int c = 0; c < kAttSlots; c++) acc[rr][c] *= corr;
            for (int j = 0; j < n_keys; j++) {
                const float pj = __shfl_sync(0xffffffffu, p, j);
#pragma unroll
                for (int c = 0; c < kAttSlots; c++) {
                    const int d = lane + 32 * c;
                    if (d < hs) acc[rr][c] += pj * v_s[j][d];
                }
            }
            m[rr] = m_new;
        }
    }

    // Every valid row saw key 0 (causal or not), so l > 0.
#pragma unroll
    for (int rr = 0; rr < kAttRows; rr++) {
        const int i = q0 + warp * kAttRows + rr;
        if (i >= Tn) break;
        const float inv = 1.0f / l[rr];
        T *o = out + (b * Tn + i) * C + h * hs;
#pragma unroll
        for (int c = 0; c < kAttSlots; c++) {
            const int d = lane + 32 * c;
            if (d < hs) o[d] = from_f<T>(acc[rr][c] * inv);
        }
    }
}

template <typename T>
static void attention_launch(T *out, const T *qkv, int B, int Tn, int C, int NH, int causal, cudaStream_t s) {
    cudaAssert(B >= 0 && Tn > 0 && NH > 0 && C % NH == 0, "attention: B=%d T=%d C=%d NH=%d", B, Tn, C, NH);
    cudaAssert(C / NH <= kAttMaxHs, "attention: head size %d > %d", C / NH, kAttMaxHs);
    cudaAssert(B <= 65535 && NH <= 65535, "attention: grid B=%d NH=%d over the 65535 limit", B, NH);
    if (B == 0) return;
    dim3 grid((unsigned)CN_CEIL_DIV(Tn, kAttQTile), (unsigned)NH, (unsigned)B);
    attention_kernel<T><<<grid, kAttWarps * 32, 0, s>>>(out, qkv, Tn, C, NH, causal, 1.0f / sqrtf((float)(C / NH)));
    cudaLaunchCheck();
}

#define CN_DEFINE_ATTENTION_TWIN(T)                                                                      \
    void attention_forward_cuda(T *out, const T *qkv, float *scratch, int B, int Tn, int C, int NH, int causal, \
                                cudaStream_t s) {                                                        \
        (void)scratch; /* the probabilities never leave registers on the GPU */                          \
        attention_launch<T>(out, qkv, B, Tn, C, NH, causal, s);                                          \
    }

extern "C" {
CN_DEFINE_ATTENTION_TWIN(float)
}
CN_DEFINE_ATTENTION_TWIN(__half)
CN_DEFINE_ATTENTION_TWIN(__nv_bfloat16)
