// device.cu — CUDA device discovery and the failure paths of the *Check wrappers.
#include <stdarg.h>
#include <stdio.h>

#include "cuda_common.cuh"

#include "clipneg/cuda_backend.h"

extern "C" int clipneg_cuda_device_count(void) {
    int n = 0;
    // No driver, no device, or a driver too old for this runtime: all mean "no GPU" here.
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();  // clear the sticky-free error so later calls start clean
        return 0;
    }
    return n;
}

void cuda_check_failed(const char *lib, const char *msg, const char *expr, const char *file, int line) {
    cn_die(CN_E_INTERNAL, "%s:%d: %s error: %s (in %s)", file, line, lib, msg ? msg : "?", expr);
}

void cuda_assert_failed(const char *cond, const char *file, int line, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cn_die(CN_E_INTERNAL, "%s:%d: CUDA backend: %s (failed: %s)", file, line, msg, cond);
}
