// cuda_test_gate.h — how every GPU test starts: `--probe` only answers whether a GPU is visible
// (exit 0, or 77; the ctest wrappers for mpiexec and compute-sanitizer use it), and without a GPU
// the test prints why and exits 77, which ctest reports as skipped, never as passed.
#pragma once
#include <stdio.h>
#include <string.h>

#include "clipneg/cuda_backend.h"

// -1: a GPU is visible, run the test; otherwise the exit code main() must return.
static inline int cuda_test_gate(int argc, char **argv) {
    const int n_gpus = clipneg_cuda_device_count();
    if (argc > 1 && !strcmp(argv[1], "--probe")) return n_gpus > 0 ? 0 : 77;
    if (n_gpus == 0) {
        printf("SKIPPED: no CUDA GPU visible\n");
        return 77;
    }
    return -1;
}
