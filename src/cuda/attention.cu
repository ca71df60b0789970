// attention.cu — fused multi-head self-attention: scores, softmax and the product with V in one
// kernel, never materialising the T x T probabilities in global memory (the CPU twin keeps them in
// `scratch`). Two kernels, chosen per call by attention_launch:
//
// * attention_mma_kernel (fp16/bf16, head size 32 or 64, C % 8 == 0: every CLIP tower) — tensor
//   cores through the portable WMMA API (16x16x16 tiles, fp32 accumulation). One block of 4 warps
//   per (64 query rows, head, batch item); each warp owns 16 query rows. Keys and values stream
//   through shared memory in tiles of 32. Two passes over the keys instead of the online-softmax
//   rescaling: pass 1 computes each row's max m and sum l of e^(s - m); pass 2 recomputes the
//   scores, writes p = e^(s - m) / l (rounded to T, as flash attention does) and accumulates p V in
//   the tensor-core accumulators, which never need rescaling. The extra Q K^T costs 1.5x the
//   attention FLOPs but keeps the accumulators opaque (WMMA's fragment layout is unspecified).
//   Scores, max and sums are fp32; the 1/sqrt(hs) scale is applied in fp32.
// * attention_kernel (fp32/tf32, and any other shape) — scalar fp32 flash attention: one block per
//   (16 query rows, head, batch item), 4 warps of 4 rows; keys/values in shared tiles of 32, one key
//   per lane, and every row keeps an online softmax (running max m, running sum l, unnormalised
//   output acc):
//     m' = max(m, max_j s_j);  l' = l e^(m - m') + sum_j e^(s_j - m');  acc' = acc e^(m - m') + sum_j e^(s_j - m') v_j
//   out = acc / l at the end. Head size <= 128 (each lane holds up to 4 output columns).
// Measured on an H100 (bench/gpu): the scalar kernel alone took 56% of the ViT-B/32 text tower
// and 78% of the ViT-L/14 image tower in fp16, which is why the tensor-core path exists.
#include <math.h>
#include <mma.h>
#include <type_traits>

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


// ---- tensor-core path ---------------------------------------------------------------------------------
constexpr int kMmaWarps = 4;
constexpr int kMmaQTile = 16 * kMmaWarps;  // query rows per block (16 per warp)
constexpr int kMmaKTile = 32;              // keys per shared tile
constexpr int kMmaSld = kMmaKTile + 4;     // fp32 score tile row stride (a multiple of 4, as WMMA wants)
constexpr int kMmaPld = kMmaKTile + 8;     // T probability tile row stride (a multiple of 8)

template <typename T> struct HasMma : std::false_type {};
template <> struct HasMma<__half> : std::true_type {};
template <> struct HasMma<__nv_bfloat16> : std::true_type {};

// rows [r0, r0 + n) of one part (q, k or v) of one head into a shared [n][HS + 8] tile; rows at or
// past Tn are zeros (a NaN there would survive p = 0 in p V).
template <typename T, int HS>
__device__ __forceinline__ void load_rows(T (*dst)[HS + 8], const T *part, long C3, int r0, int n, int Tn) {
    constexpr int kVecs = HS / 8;  // 16-byte vectors per row
    for (int idx = threadIdx.x; idx < n * kVecs; idx += blockDim.x) {
        const int r = idx / kVecs, v = idx % kVecs, row = r0 + r;
        copy16(&dst[r][v * 8], row < Tn ? part + row * C3 + v * 8 : nullptr);
    }
}

template <typename T> using QFrag = nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, T, nvcuda::wmma::row_major>;

// S (16 x kMmaKTile, fp32, in s_w) = Q (this warp's 16 rows, held in registers) K^T (the shared key tile).
template <typename T, int HS>
__device__ __forceinline__ void mma_scores(float *s_w, const QFrag<T> *q, T (*k_s)[HS + 8]) {
    using namespace nvcuda;
#pragma unroll
    for (int n = 0; n < kMmaKTile / 16; n++) {
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
        wmma::fill_fragment(acc, 0.0f);
#pragma unroll
        for (int kk = 0; kk < HS / 16; kk++) {
            wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> b;  // K^T: K's rows are B's columns
            wmma::load_matrix_sync(b, &k_s[n * 16][kk * 16], HS + 8);
            wmma::mma_sync(acc, q[kk], b, acc);
        }
        wmma::store_matrix_sync(s_w + n * 16, acc, kMmaSld, wmma::mem_row_major);
    }
}

// qkv [B, Tn, 3C], out [B, Tn, C], head size HS; see the file comment.
template <typename T, int HS>
__global__ void __launch_bounds__(kMmaWarps * 32)
attention_mma_kernel(T *out, const T *qkv, int Tn, int C, int causal, float scale) {
    using namespace nvcuda;
    __shared__ __align__(32) T q_s[kMmaQTile][HS + 8];
    __shared__ __align__(32) T k_s[kMmaKTile][HS + 8];
    __shared__ __align__(32) T v_s[kMmaKTile][HS + 8];
    __shared__ __align__(32) float s_s[kMmaWarps][16 * kMmaSld];
    __shared__ __align__(32) T p_s[kMmaWarps][16 * kMmaPld];
    const int h = blockIdx.y, q0 = blockIdx.x * kMmaQTile;
    const long b = blockIdx.z, C3 = 3L * C;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const T *seq = qkv + b * Tn * C3 + (long)h * HS;
    float *s_w = s_s[warp];
    T *p_w = p_s[warp];
    // Softmax bookkeeping: lanes 2r and 2r+1 share row r of the warp's 16, 16 key columns each.
    const int r = lane / 2, c0 = (lane % 2) * (kMmaKTile / 2), i = q0 + warp * 16 + r;
    const int q_last = min(q0 + kMmaQTile, Tn) - 1;
    const int kv_end = causal ? q_last + 1 : Tn;  // keys any row of this block can see

    load_rows<T, HS>(q_s, seq, C3, q0, kMmaQTile, Tn);
    __syncthreads();
    QFrag<T> q[HS / 16];  // this warp's 16 query rows, loaded once for both passes
#pragma unroll
    for (int kk = 0; kk < HS / 16; kk++) wmma::load_matrix_sync(q[kk], &q_s[warp * 16][kk * 16], HS + 8);
    float m = -INFINITY, l = 0.0f;
    // pass 1: row max and sum of e^(s - max)
    for (int k0 = 0; k0 < kv_end; k0 += kMmaKTile) {
        __syncthreads();  // k_s no longer read by any warp (previous tile)
        load_rows<T, HS>(k_s, seq + C, C3, k0, kMmaKTile, Tn);
        __syncthreads();
        mma_scores<T, HS>(s_w, q, k_s);
        __syncwarp();
        float sv[kMmaKTile / 2], tmax = -INFINITY;
#pragma unroll
        for (int c = 0; c < kMmaKTile / 2; c++) {
            const int key = k0 + c0 + c;
            const bool ok = i < Tn && key < Tn && (!causal || key <= i);
            sv[c] = ok ? s_w[r * kMmaSld + c0 + c] * scale : -INFINITY;
            tmax = fmaxf(tmax, sv[c]);
        }
        tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
        const float m_new = fmaxf(m, tmax);
        float part = 0.0f;
        if (m_new != -INFINITY) {
#pragma unroll
            for (int c = 0; c < kMmaKTile / 2; c++) part += expf(sv[c] - m_new);  // e^-inf = 0 for masked keys
        }
        part += __shfl_xor_sync(0xffffffffu, part, 1);
        if (m_new != -INFINITY) {
            l = (m == -INFINITY ? 0.0f : l * expf(m - m_new)) + part;
            m = m_new;
        }
        __syncwarp();  // s_w is rewritten by the next tile
    }
    // Every valid row saw key 0 (causal or not), so l > 0 there; rows past Tn get p = 0.
    const float inv_l = i < Tn ? 1.0f / l : 0.0f;
    if (!(i < Tn)) m = 0.0f;

    // pass 2: p = e^(s - m) / l, out += p V
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> o[HS / 16];
#pragma unroll
    for (int n = 0; n < HS / 16; n++) wmma::fill_fragment(o[n], 0.0f);
    for (int k0 = 0; k0 < kv_end; k0 += kMmaKTile) {
        __syncthreads();
        load_rows<T, HS>(k_s, seq + C, C3, k0, kMmaKTile, Tn);
        load_rows<T, HS>(v_s, seq + 2 * C, C3, k0, kMmaKTile, Tn);
        __syncthreads();
        mma_scores<T, HS>(s_w, q, k_s);
        __syncwarp();
#pragma unroll
        for (int c = 0; c < kMmaKTile / 2; c++) {
            const int key = k0 + c0 + c;
            const bool ok = i < Tn && key < Tn && (!causal || key <= i);
            const float p = ok ? expf(s_w[r * kMmaSld + c0 + c] * scale - m) * inv_l : 0.0f;
            p_w[r * kMmaPld + c0 + c] = from_f<T>(p);
        }
        __syncwarp();
        for (int kk = 0; kk < kMmaKTile / 16; kk++) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
            wmma::load_matrix_sync(a, p_w + kk * 16, kMmaPld);
#pragma unroll
            for (int n = 0; n < HS / 16; n++) {
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> bv;
                wmma::load_matrix_sync(bv, &v_s[kk * 16][n * 16], HS + 8);
                wmma::mma_sync(o[n], a, bv, o[n]);
            }
        }
        __syncwarp();  // p_w and s_w are rewritten by the next tile
    }

    // out: through s_w (16 x 32 fp32 = two accumulators at a time), rounded to T
#pragma unroll
    for (int n = 0; n < HS / 16; n += 2) {
        wmma::store_matrix_sync(s_w, o[n], kMmaSld, wmma::mem_row_major);
        wmma::store_matrix_sync(s_w + 16, o[n + 1], kMmaSld, wmma::mem_row_major);
        __syncwarp();
        if (i < Tn) {
            T *dst = out + (b * Tn + i) * C + (long)h * HS + n * 16 + c0;
#pragma unroll
            for (int c = 0; c < kMmaKTile / 2; c++) dst[c] = from_f<T>(s_w[r * kMmaSld + c0 + c]);
        }
        __syncwarp();
    }
}

template <typename T>
static void attention_launch(T *out, const T *qkv, int B, int Tn, int C, int NH, int causal, cudaStream_t s) {
    cudaAssert(B >= 0 && Tn > 0 && NH > 0 && C % NH == 0, "attention: B=%d T=%d C=%d NH=%d", B, Tn, C, NH);
    cudaAssert(C / NH <= kAttMaxHs, "attention: head size %d > %d", C / NH, kAttMaxHs);
    cudaAssert(B <= 65535 && NH <= 65535, "attention: grid B=%d NH=%d over the 65535 limit", B, NH);
    if (B == 0) return;
    const int hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
    if constexpr (HasMma<T>::value) {
        // 16-byte loads need C % 8 == 0 and an aligned qkv; CLIP's heads are 64 wide.
        if ((hs == 64 || hs == 32) && C % 8 == 0 && (uintptr_t)qkv % 16 == 0) {
            dim3 grid((unsigned)CN_CEIL_DIV(Tn, kMmaQTile), (unsigned)NH, (unsigned)B);
            if (hs == 64)
                attention_mma_kernel<T, 64><<<grid, kMmaWarps * 32, 0, s>>>(out, qkv, Tn, C, causal, scale);
            else
                attention_mma_kernel<T, 32><<<grid, kMmaWarps * 32, 0, s>>>(out, qkv, Tn, C, causal, scale);
            cudaLaunchCheck();
            return;
        }
    }
    dim3 grid((unsigned)CN_CEIL_DIV(Tn, kAttQTile), (unsigned)NH, (unsigned)B);
    attention_kernel<T><<<grid, kAttWarps * 32, 0, s>>>(out, qkv, Tn, C, NH, causal, scale);
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
