// cuda_common.cuh — what every CUDA file of the backend shares: the *Check wrappers (llm.c style:
// print file:line and the library's own error string, then end all ranks through cn_die), the
// element types and their fp32 conversions, and launch-size helpers that refuse impossible grids.
#pragma once

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "clipneg/common.h"
}

// ---- checks ---------------------------------------------------------------------------------------
[[noreturn]] void cuda_check_failed(const char *lib, const char *msg, const char *expr, const char *file, int line);

#define cudaCheck(call)                                                                          \
    do {                                                                                         \
        cudaError_t err_ = (call);                                                               \
        if (err_ != cudaSuccess)                                                                 \
            cuda_check_failed("CUDA", cudaGetErrorString(err_), #call, __FILE__, __LINE__);      \
    } while (0)

#define cublasCheck(call)                                                                        \
    do {                                                                                         \
        cublasStatus_t st_ = (call);                                                             \
        if (st_ != CUBLAS_STATUS_SUCCESS)                                                        \
            cuda_check_failed("cuBLASLt", cublasLtGetStatusString(st_), #call, __FILE__, __LINE__); \
    } while (0)

// After every kernel launch: catches bad launch configurations at the launch site.
#define cudaLaunchCheck() cudaCheck(cudaGetLastError())

// A condition that only a bug can break (sizes the caller promised); aborts with file:line.
#define cudaAssert(cond, ...)                                                                    \
    do {                                                                                         \
        if (!(cond)) cuda_assert_failed(#cond, __FILE__, __LINE__, __VA_ARGS__);                 \
    } while (0)
[[noreturn]] void cuda_assert_failed(const char *cond, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

// ---- launch helpers ---------------------------------------------------------------------------------
constexpr int kThreads = 256;           // block size of the elementwise kernels

// Blocks for n elements at `per_block` elements per block, capped: kernels use grid-stride loops,
// so a cap never drops work. n <= 0 gives 0 (the caller skips the launch).
inline unsigned grid_for(long n, int per_block) {
    if (n <= 0) return 0;
    long blocks = (n + per_block - 1) / per_block;
    return (unsigned)(blocks < 65536L * 16 ? blocks : 65536L * 16);
}

// ---- element types ------------------------------------------------------------------------------------
// Activations and parameters are stored as T (float, __half or __nv_bfloat16); arithmetic is fp32.
__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T> __device__ __forceinline__ T from_f(float x);
template <> __device__ __forceinline__ float from_f<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_f<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

template <typename T> struct CudaType;
template <> struct CudaType<float> { static constexpr cudaDataType_t value = CUDA_R_32F; static constexpr const char *name = "fp32"; };
template <> struct CudaType<__half> { static constexpr cudaDataType_t value = CUDA_R_16F; static constexpr const char *name = "fp16"; };
template <> struct CudaType<__nv_bfloat16> { static constexpr cudaDataType_t value = CUDA_R_16BF; static constexpr const char *name = "bf16"; };

// ---- 16-byte vector moves -------------------------------------------------------------------------------
// 16 bytes (8 fp16/bf16 or 4 fp32 values) in one vector load and store; zeros when src is null.
// Both pointers must be 16-byte aligned.
__device__ __forceinline__ void copy16(void *dst, const void *src) {
#ifdef __CUDACC__
    *(uint4 *)dst = src ? *(const uint4 *)src : make_uint4(0u, 0u, 0u, 0u);
#else  // the CPU emulator (src/cuda/emu): no vector types, and memcpy keeps g++'s aliasing rules
    if (src) memcpy(dst, src, 16); else memset(dst, 0, 16);
#endif
}

// ---- warp reductions ------------------------------------------------------------------------------------
__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
