// cuda_runtime.h — FAKE CUDA runtime, C++ side, for the CPU emulator (src/cuda/emu/emu.cpp):
// kernel qualifiers, builtin variables, warp shuffles, __syncthreads and kernel launches.
#pragma once
#include <math.h>
#include <string.h>
#include <algorithm>
#include <type_traits>
#include "cuda_runtime_api.h"
#include "cuda_fp16.h"
#include "cuda_bf16.h"
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
extern dim3 threadIdx, blockIdx, blockDim, gridDim;
using std::min;
using std::max;
namespace emu {
void block_barrier();
void warp_sync();  // the calling lane's warp meets (every live lane must call it)
void warp_exchange(float v, float *out_all);  // every lane deposits v, gets all 32 lanes' values
void *dyn_smem();
void run_grid(dim3 grid, dim3 block, size_t smem, void (*body)(void *), void *ctx);
template <typename K> struct Call {
    K k;
    static void tramp(void *p) { (*(Call *)p).k(); }
};
struct Launch {
    dim3 g, b;
    size_t sm;
    Launch(dim3 g_, dim3 b_, size_t sm_ = 0, cudaStream_t = nullptr) : g(g_), b(b_), sm(sm_) {}
    template <typename F, typename... A> void go(F f, A... a) {
        auto lam = [&]() { f(a...); };
        Call<decltype(lam)> c{lam};
        run_grid(g, b, sm, &Call<decltype(lam)>::tramp, &c);
    }
};
}  // namespace emu
inline void __syncthreads() { emu::block_barrier(); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu::warp_sync(); }
inline float __shfl_xor_sync(unsigned, float v, int o) {
    float all[32];
    emu::warp_exchange(v, all);
    return all[(threadIdx.x % 32) ^ o];
}
inline float __shfl_sync(unsigned, float v, int src) {
    float all[32];
    emu::warp_exchange(v, all);
    return all[src];
}
inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
template <class T> inline cudaError_t cudaMalloc(T **p, size_t n) { return cudaMalloc((void **)p, n); }
template <class T> inline cudaError_t cudaMallocHost(T **p, size_t n) { return cudaMallocHost((void **)p, n); }
template <class T> inline cudaError_t cudaMallocAsync(T **p, size_t n, cudaStream_t s) { return cudaMallocAsync((void **)p, n, s); }
