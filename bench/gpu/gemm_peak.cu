// gemm_peak.cu — the GPU's achievable dense GEMM throughput through clipneg's own cuBLASLt path
// (matmul_forward_cuda), the yardstick for bench/gpu/run.py's "% of peak". Never a unit test.
//
//   gemm_peak [fp16|bf16|tf32|fp32]     (default fp16: fp16 inputs, fp32 accumulation)
//
// Square GEMMs of 4096, 8192 and 12288, 3 warm-up + 20 timed runs each (CUDA events); prints one
// line per size and `peak_tflops X` (the best size) last.
#include <stdio.h>
#include <string.h>

#include "cuda_common.cuh"
#include "ops.cuh"

#include "clipneg/cuda_backend.h"

template <typename T> static double run(int n, cudaStream_t s) {
    T *a, *b, *c;
    const size_t bytes = (size_t)n * n * sizeof(T);
    cudaCheck(cudaMalloc(&a, bytes));
    cudaCheck(cudaMalloc(&b, bytes));
    cudaCheck(cudaMalloc(&c, bytes));
    // small values so nothing overflows in fp16; the contents do not change the speed
    cudaCheck(cudaMemset(a, 0x11, bytes));
    cudaCheck(cudaMemset(b, 0x11, bytes));
    for (int i = 0; i < 3; i++) matmul_forward_cuda(c, a, b, (const T *)nullptr, n, n, n, s);
    cudaEvent_t e0, e1;
    cudaCheck(cudaEventCreate(&e0));
    cudaCheck(cudaEventCreate(&e1));
    const int reps = 20;
    cudaCheck(cudaEventRecord(e0, s));
    for (int i = 0; i < reps; i++) matmul_forward_cuda(c, a, b, (const T *)nullptr, n, n, n, s);
    cudaCheck(cudaEventRecord(e1, s));
    cudaCheck(cudaEventSynchronize(e1));
    float ms = 0;
    cudaCheck(cudaEventElapsedTime(&ms, e0, e1));
    cudaCheck(cudaEventDestroy(e0));
    cudaCheck(cudaEventDestroy(e1));
    cudaCheck(cudaFree(a));
    cudaCheck(cudaFree(b));
    cudaCheck(cudaFree(c));
    return 2.0 * n * (double)n * n * reps / (ms * 1e-3) / 1e12;
}

int main(int argc, char **argv) {
    const char *dt = argc > 1 ? argv[1] : "fp16";
    if (clipneg_cuda_device_count() == 0) {
        fprintf(stderr, "gemm_peak: no CUDA GPU visible\n");
        return 1;
    }
    cudaCheck(cudaSetDevice(0));
    cudaDeviceProp prop;
    cudaCheck(cudaGetDeviceProperties(&prop, 0));
    printf("device %s (sm_%d%d), dtype %s\n", prop.name, prop.major, prop.minor, dt);
    cudaStream_t s;
    cudaCheck(cudaStreamCreate(&s));
    cuda_ops_set_tf32(!strcmp(dt, "tf32"));
    double best = 0;
    const int sizes[] = {4096, 8192, 12288};
    for (int n : sizes) {
        double tf;
        if (!strcmp(dt, "fp16")) tf = run<__half>(n, s);
        else if (!strcmp(dt, "bf16")) tf = run<__nv_bfloat16>(n, s);
        else if (!strcmp(dt, "tf32") || !strcmp(dt, "fp32")) tf = run<float>(n, s);
        else {
            fprintf(stderr, "gemm_peak: unknown dtype '%s'\n", dt);
            return 2;
        }
        printf("%d x %d x %d: %.1f TFLOP/s\n", n, n, n, tf);
        if (tf > best) best = tf;
    }
    printf("peak_tflops %.1f\n", best);
    cudaCheck(cudaStreamDestroy(s));
    cuda_ops_release();
    return 0;
}
