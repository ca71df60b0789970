// device.cu — CUDA device discovery (placeholder; the backend lands with the CUDA issue).
#include <cuda_runtime.h>

extern "C" int clipneg_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
    return n;
}
