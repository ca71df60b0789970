// matmul.cu — every GEMM of the backend goes through one cuBLASLt call (lt_matmul), and the
// convolutions are im2col + that GEMM (no cuDNN dependency).
//
// Row-major to column-major: a row-major [R, C] matrix is the column-major [C, R] matrix with
// leading dimension C, so out[N,OC] = inp[N,C] @ W[OC,C]^T becomes, in cuBLAS terms,
// D(OC x N) = op(A)(OC x C) * B(C x N) with A = W viewed as (C x OC), op = transpose.
//
// Precision: fp16/bf16 tensors multiply with fp32 accumulation (CUBLAS_COMPUTE_32F, fp32 alpha and
// beta); fp32 tensors use CUBLAS_COMPUTE_32F, or CUBLAS_COMPUTE_32F_FAST_TF32 after
// cuda_ops_set_tf32(1). The bias is added by the cuBLASLt epilogue (fp32, before the one rounding
// to T); if no algorithm supports the epilogue for a shape, the GEMM runs plain and a kernel adds it.
#include <string.h>

#include "cuda_common.cuh"
#include "ops.cuh"

// ---- cuBLASLt state of the current device: handle, workspace, heuristic cache ------------------------------
// GEMMs share one workspace: they must not run concurrently on two streams. The backend issues all
// of its GEMMs on its compute stream, and every host-facing call synchronises before returning.
constexpr size_t kWorkspaceBytes = 32u << 20;
constexpr int kAlgoCacheSize = 512;

struct AlgoKey {
    int m, n, k, lda, ldb, ldd;
    int ta, tb, dtype, compute, bias;
    int align_a, align_b, align_d;
};
// One GEMM shape: its algorithm and its descriptors, created once and reused by every later call
// of that shape (a chunk of a tower calls the same few shapes again and again; creating and
// destroying four descriptors per GEMM was measurable host time). Only the bias pointer changes
// between calls: it is set on the cached operation descriptor each time.
struct AlgoEntry {
    AlgoKey key;
    cublasLtMatmulAlgo_t algo;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, ld;
};

static struct {
    int device = -1;
    cublasLtHandle_t handle = nullptr;
    void *workspace = nullptr;
    AlgoEntry cache[kAlgoCacheSize];
    int n_cached = 0;
} g_lt;
static int g_tf32 = 0;

extern "C" void cuda_ops_set_tf32(int on) { g_tf32 = on ? 1 : 0; }
extern "C" int cuda_ops_tf32(void) { return g_tf32; }

extern "C" void cuda_ops_release(void) {
    if (!g_lt.handle) return;
    int cur = 0;
    cudaCheck(cudaGetDevice(&cur));
    cudaCheck(cudaSetDevice(g_lt.device));
    cudaCheck(cudaDeviceSynchronize());  // no GEMM may still use the workspace
    for (int i = 0; i < g_lt.n_cached; i++) {
        AlgoEntry *e = &g_lt.cache[i];
        cublasCheck(cublasLtMatrixLayoutDestroy(e->la));
        cublasCheck(cublasLtMatrixLayoutDestroy(e->lb));
        cublasCheck(cublasLtMatrixLayoutDestroy(e->ld));
        cublasCheck(cublasLtMatmulDescDestroy(e->op));
    }
    cudaCheck(cudaFree(g_lt.workspace));
    cublasCheck(cublasLtDestroy(g_lt.handle));
    cudaCheck(cudaSetDevice(cur));
    g_lt.handle = nullptr;
    g_lt.workspace = nullptr;
    g_lt.device = -1;
    g_lt.n_cached = 0;
}

static void lt_ensure(void) {
    int dev = 0;
    cudaCheck(cudaGetDevice(&dev));
    if (g_lt.handle && g_lt.device == dev) return;
    cuda_ops_release();  // a different device than last time: start over there
    cublasCheck(cublasLtCreate(&g_lt.handle));
    cudaCheck(cudaMalloc(&g_lt.workspace, kWorkspaceBytes));
    g_lt.device = dev;
    g_lt.n_cached = 0;
}

// Largest power of two (<= 256) dividing the address: the heuristic must only propose kernels that
// are valid for the pointers we pass (sub-tensors of a batch are not always 256-byte aligned).
static int alignment_of(const void *p) {
    uintptr_t u = (uintptr_t)p;
    int a = 256;
    while (a > 1 && (u % (uintptr_t)a) != 0) a >>= 1;
    return a;
}

static const AlgoEntry *cache_find(const AlgoKey *k) {
    for (int i = 0; i < g_lt.n_cached; i++)
        if (!memcmp(&g_lt.cache[i].key, k, sizeof *k)) return &g_lt.cache[i];
    return nullptr;
}

// Adds bias[i] to row i of the column-major D (m x n, leading dimension ldd): the epilogue fallback.
template <typename T> __global__ void add_bias_colmajor_kernel(T *d, const T *bias, int m, int n, int ldd) {
    const long total = (long)m * n;
    for (long idx = blockIdx.x * (long)blockDim.x + threadIdx.x; idx < total; idx += (long)gridDim.x * blockDim.x) {
        const int i = (int)(idx % m);
        const long j = idx / m;
        T *e = d + j * ldd + i;
        *e = from_f<T>(to_f(*e) + to_f(bias[i]));
    }
}

// Column-major D(m x n) = op(A)(m x k) * op(B)(k x n) (+ bias[m] broadcast along the columns).
// A is stored (ta ? k x m : m x k) with leading dimension lda, B (tb ? n x k : k x n) with ldb.
template <typename T>
static void lt_matmul(T *d, const T *a, const T *b, const T *bias, int m, int n, int k, bool ta, bool tb,
                      int lda, int ldb, int ldd, cudaStream_t stream) {
    cudaAssert(m >= 0 && n >= 0 && k > 0, "matmul: m=%d n=%d k=%d", m, n, k);
    if (m == 0 || n == 0) return;
    lt_ensure();
    const cudaDataType_t dt = CudaType<T>::value;
    const cublasComputeType_t compute =
        (dt == CUDA_R_32F && g_tf32) ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;

    AlgoKey key;
    memset(&key, 0, sizeof key);  // padding bytes too: the key is compared with memcmp
    key.m = m; key.n = n; key.k = k; key.lda = lda; key.ldb = ldb; key.ldd = ldd;
    key.ta = ta; key.tb = tb; key.dtype = (int)dt; key.compute = (int)compute; key.bias = bias != nullptr;
    key.align_a = alignment_of(a); key.align_b = alignment_of(b); key.align_d = alignment_of(d);

    const AlgoEntry *cached = cache_find(&key);
    if (cached) {
        if (bias)
            cublasCheck(cublasLtMatmulDescSetAttribute(cached->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
        const float alpha = 1.0f, beta = 0.0f;
        cublasCheck(cublasLtMatmul(g_lt.handle, cached->op, &alpha, a, cached->la, b, cached->lb, &beta, d, cached->ld, d,
                                   cached->ld, &cached->algo, g_lt.workspace, kWorkspaceBytes, stream));
        return;
    }

    cublasLtMatmulDesc_t op;
    cublasCheck(cublasLtMatmulDescCreate(&op, compute, CUDA_R_32F));
    const cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasCheck(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
    cublasCheck(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
    const cublasLtEpilogue_t epi = bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
    cublasCheck(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    if (bias) cublasCheck(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));

    cublasLtMatrixLayout_t la, lb, ld;
    cublasCheck(cublasLtMatrixLayoutCreate(&la, dt, ta ? k : m, ta ? m : k, lda));
    cublasCheck(cublasLtMatrixLayoutCreate(&lb, dt, tb ? n : k, tb ? k : n, ldb));
    cublasCheck(cublasLtMatrixLayoutCreate(&ld, dt, m, n, ldd));

    cublasLtMatmulAlgo_t algo;
    bool found = false, keep = false;
    {
        cublasLtMatmulPreference_t pref;
        cublasCheck(cublasLtMatmulPreferenceCreate(&pref));
        const size_t ws = kWorkspaceBytes;
        cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
        const uint32_t al_a = key.align_a, al_b = key.align_b, al_d = key.align_d;
        cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a, sizeof al_a));
        cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b, sizeof al_b));
        cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_d, sizeof al_d));
        cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_d, sizeof al_d));
        cublasLtMatmulHeuristicResult_t res;
        int n_res = 0;
        cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(g_lt.handle, op, la, lb, ld, ld, pref, 1, &res, &n_res);
        cublasCheck(cublasLtMatmulPreferenceDestroy(pref));
        if (st == CUBLAS_STATUS_SUCCESS && n_res > 0) {
            algo = res.algo;
            found = true;
            if (g_lt.n_cached < kAlgoCacheSize) {  // the descriptors now belong to the cache
                g_lt.cache[g_lt.n_cached++] = AlgoEntry{key, algo, op, la, lb, ld};
                keep = true;
            }
        } else if (st != CUBLAS_STATUS_SUCCESS && st != CUBLAS_STATUS_NOT_SUPPORTED) {
            cublasCheck(st);
        }
    }

    if (found) {
        const float alpha = 1.0f, beta = 0.0f;
        cublasCheck(cublasLtMatmul(g_lt.handle, op, &alpha, a, la, b, lb, &beta, d, ld, d, ld, &algo, g_lt.workspace,
                                   kWorkspaceBytes, stream));
    }
    if (!keep) {
        cublasCheck(cublasLtMatrixLayoutDestroy(la));
        cublasCheck(cublasLtMatrixLayoutDestroy(lb));
        cublasCheck(cublasLtMatrixLayoutDestroy(ld));
        cublasCheck(cublasLtMatmulDescDestroy(op));
    }
    if (found) return;

    // No algorithm for this shape: with a bias epilogue, retry plain and add the bias ourselves.
    cudaAssert(bias != nullptr, "cuBLASLt has no %s GEMM algorithm for m=%d n=%d k=%d (lda=%d ldb=%d ldd=%d, ta=%d tb=%d)",
               CudaType<T>::name, m, n, k, lda, ldb, ldd, (int)ta, (int)tb);
    lt_matmul<T>(d, a, b, nullptr, m, n, k, ta, tb, lda, ldb, ldd, stream);
    add_bias_colmajor_kernel<T><<<grid_for((long)m * n, kThreads), kThreads, 0, stream>>>(d, bias, m, n, ldd);
    cudaLaunchCheck();
}

// ---- the twins --------------------------------------------------------------------------------------------
// out[N,OC] = inp[N,C] @ W[OC,C]^T + bias: D(OC x N) = (W as C x OC)^T * (inp as C x N).
template <typename T>
static void matmul_launch(T *out, const T *inp, const T *weight, const T *bias, int N, int C, int OC, cudaStream_t s) {
    lt_matmul<T>(out, weight, inp, bias, OC, N, C, true, false, C, C, OC, s);
}
// out[N,OC] = inp[N,C] @ W[C,OC]: D(OC x N) = (W as OC x C) * (inp as C x N).
template <typename T> static void matmul_nn_launch(T *out, const T *inp, const T *weight, int N, int C, int OC, cudaStream_t s) {
    lt_matmul<T>(out, weight, inp, nullptr, OC, N, C, false, false, OC, C, OC, s);
}

// im2col of one image: col[(ic*K + ky)*K + kx, oy*Wo + ox] = inp[ic, oy*S - P + ky, ox*S - P + kx] (0 outside).
template <typename T>
__global__ void im2col_kernel(T *col, const T *inp, int IC, int H, int W, int K, int S, int P, int Ho, int Wo) {
    const long hw = (long)Ho * Wo, n = (long)IC * K * K * hw;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        const long p = i % hw, r = i / hw;
        const int kx = (int)(r % K), ky = (int)((r / K) % K), ic = (int)(r / ((long)K * K));
        const int oy = (int)(p / Wo), ox = (int)(p % Wo);
        const int y = oy * S - P + ky, x = ox * S - P + kx;
        col[i] = (y >= 0 && y < H && x >= 0 && x < W) ? inp[((long)ic * H + y) * W + x] : from_f<T>(0.0f);
    }
}

// out[b, oc, p] += bias[oc] over [B, OC, HW] (NCHW): the GEMM below produces channel rows, so the
// cuBLASLt bias epilogue (which broadcasts along the other axis) does not apply.
template <typename T> __global__ void add_channel_bias_kernel(T *out, const T *bias, long n, int OC, long hw) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        out[i] = from_f<T>(to_f(out[i]) + to_f(bias[(i / hw) % OC]));
}

// Per image b: out_b[OC, Ho*Wo] = W[OC, IC*K*K] @ col[IC*K*K, Ho*Wo]. In column-major terms
// D(HoWo x OC) = (col as HoWo x ICKK) * (W as ICKK x OC), which is out_b in NCHW order.
template <typename T>
static void conv2d_launch(T *out, const T *inp, const T *weight, const T *bias, T *scratch, int B, int IC, int H,
                          int W, int OC, int K, int S, int P, cudaStream_t s) {
    cudaAssert(B >= 0 && IC > 0 && OC > 0 && K > 0 && S > 0 && P >= 0, "conv2d: B=%d IC=%d OC=%d K=%d S=%d P=%d",
               B, IC, OC, K, S, P);
    const int Ho = (H + 2 * P - K) / S + 1, Wo = (W + 2 * P - K) / S + 1;
    cudaAssert(H + 2 * P >= K && W + 2 * P >= K, "conv2d: %dx%d input smaller than the %dx%d kernel", H, W, K, K);
    const long hw = (long)Ho * Wo, ickk = (long)IC * K * K;
    cudaAssert(hw <= 2147483647L && ickk <= 2147483647L, "conv2d: GEMM dimensions overflow int");
    const bool direct = K == 1 && S == 1 && P == 0;  // the input image already is its im2col
    cudaAssert(direct || scratch != nullptr, "conv2d: scratch is NULL");
    for (int b = 0; b < B; b++) {
        const T *img = inp + (long)b * IC * H * W;
        const T *col = img;
        if (!direct) {
            im2col_kernel<T><<<grid_for(ickk * hw, kThreads), kThreads, 0, s>>>(scratch, img, IC, H, W, K, S, P, Ho, Wo);
            cudaLaunchCheck();
            col = scratch;
        }
        lt_matmul<T>(out + (long)b * OC * hw, col, weight, nullptr, (int)hw, OC, (int)ickk, false, false, (int)hw,
                     (int)ickk, (int)hw, s);
    }
    if (bias && B > 0) {
        const long n = (long)B * OC * hw;
        add_channel_bias_kernel<T><<<grid_for(n, kThreads), kThreads, 0, s>>>(out, bias, n, OC, hw);
        cudaLaunchCheck();
    }
}

#define CN_DEFINE_GEMM_TWINS(T)                                                                               \
    void matmul_forward_cuda(T *out, const T *inp, const T *weight, const T *bias, int N, int C, int OC,         \
                             cudaStream_t s) {                                                                 \
        matmul_launch<T>(out, inp, weight, bias, N, C, OC, s);                                                 \
    }                                                                                                          \
    void matmul_forward_nn_cuda(T *out, const T *inp, const T *weight, int N, int C, int OC, cudaStream_t s) {  \
        matmul_nn_launch<T>(out, inp, weight, N, C, OC, s);                                                    \
    }                                                                                                          \
    void conv2d_forward_cuda(T *out, const T *inp, const T *weight, const T *bias, T *scratch, int B, int IC,   \
                             int H, int W, int OC, int K, int S, int P, cudaStream_t s) {                      \
        conv2d_launch<T>(out, inp, weight, bias, scratch, B, IC, H, W, OC, K, S, P, s);                        \
    }

extern "C" {
CN_DEFINE_GEMM_TWINS(float)
}
CN_DEFINE_GEMM_TWINS(__half)
CN_DEFINE_GEMM_TWINS(__nv_bfloat16)
