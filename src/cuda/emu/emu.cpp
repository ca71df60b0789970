// emu.cpp — a CPU emulator of the CUDA runtime and of the cuBLASLt subset the backend uses, so the
// backend's own kernels and host code run (slowly) on a machine without a GPU: the CI machine.
// See docs/cuda.md "Emulated tests". What it checks: every index, mask, reduction, barrier and
// shuffle of our kernels, the row-major <-> column-major mapping of every GEMM call (the fake
// cublasLtMatmul is a plain reference GEMM that validates the layouts it is given), the host
// logic of the backend. What it cannot check: real GPU timing/concurrency (streams run in
// program order), cuBLASLt's own kernels and heuristics, memory-model subtleties.
//
// Execution: blocks run one after another; the threads of a block are fibers scheduled
// round-robin on one OS thread, so __syncthreads and the warp shuffles are real rendezvous points
// (a fiber waits until every live thread of its block / warp has arrived). __shared__ is `static`
// (one block at a time), dynamic shared memory is one poisoned buffer. Launch configurations are
// checked like the hardware would (block <= 1024 threads, grid.y/z <= 65535, <= 48 KiB dynamic
// shared memory). Device memory is host memory; cudaMallocAsync returns poisoned (NaN) memory.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>
#include "cuda_runtime.h"
#include "cublasLt.h"

dim3 threadIdx, blockIdx, blockDim, gridDim;

// ---- fibers: a minimal context switch -----------------------------------------------------------
// x86-64: save the callee-saved registers on the current stack, swap stack pointers, restore.
// (glibc's swapcontext also saves the signal mask: a system call per switch, 5x slower overall.)
// Elsewhere: ucontext.
#if defined(__x86_64__)
extern "C" void emu_switch(void **save_sp, void *next_sp);
asm(".text\n.globl emu_switch\n.type emu_switch,@function\nemu_switch:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n  ret\n"
    ".size emu_switch, .-emu_switch\n");
struct Context {
    void *sp;
};
static void ctx_switch(Context *from, Context *to) { emu_switch(&from->sp, to->sp); }
// A new fiber's stack, as if emu_switch had been called from `entry`: 6 registers, then the
// address `ret` jumps to, then a fake return address (keeps the ABI's 16-byte alignment at entry).
static void ctx_make(Context *c, char *stack, size_t size, void (*entry)()) {
    uintptr_t top = ((uintptr_t)(stack + size)) & ~(uintptr_t)15;
    void **sp = (void **)top;
    *--sp = nullptr;           // fake return address of entry()
    *--sp = (void *)entry;     // where `ret` goes
    for (int i = 0; i < 6; i++) *--sp = nullptr;  // rbp rbx r12 r13 r14 r15
    c->sp = sp;
}
#else
#include <ucontext.h>
struct Context {
    ucontext_t uc;
};
static void ctx_switch(Context *from, Context *to) { swapcontext(&from->uc, &to->uc); }
static void ctx_make(Context *c, char *stack, size_t size, void (*entry)()) {
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = stack;
    c->uc.uc_stack.ss_size = size;
    c->uc.uc_link = nullptr;
    makecontext(&c->uc, entry, 0);
}
#endif

namespace emu {
struct Fiber { Context ctx; bool done; };
static std::vector<Fiber> fibers;
static std::vector<char *> stacks;
static Context sched;
static int cur;
static void (*g_body)(void *);
static void *g_ctx;
static unsigned block_gen, block_count, warp_gen[32], warp_count[32];
static float warp_vals[32][32];
static std::vector<char> dyn;
static const size_t kStack = 128 * 1024;
long g_launches = 0, g_switches = 0;

static void fiber_main() {
    g_body(g_ctx);
    fibers[cur].done = true;
    ctx_switch(&fibers[cur].ctx, &sched);
    abort();  // a finished fiber is never resumed
}
static void yield_() { g_switches++; ctx_switch(&fibers[cur].ctx, &sched); }
static unsigned live_block() { unsigned n = 0; for (auto &f : fibers) n += !f.done; return n; }
static unsigned live_warp(int w) {
    unsigned n = 0;
    for (int i = w * 32; i < (int)fibers.size() && i < w * 32 + 32; i++) n += !fibers[i].done;
    return n;
}
void block_barrier() {
    unsigned g = block_gen;
    if (++block_count >= live_block()) { block_count = 0; block_gen++; return; }
    while (block_gen == g) {
        yield_();
        if (block_gen == g && block_count >= live_block()) { block_count = 0; block_gen++; }
    }
}
static void warp_barrier(int w) {
    unsigned g = warp_gen[w];
    if (++warp_count[w] >= live_warp(w)) { warp_count[w] = 0; warp_gen[w]++; return; }
    while (warp_gen[w] == g) {
        yield_();
        if (warp_gen[w] == g && warp_count[w] >= live_warp(w)) { warp_count[w] = 0; warp_gen[w]++; }
    }
}
void warp_exchange(float v, float *out) {
    const int w = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (live_warp(w) != 32) { fprintf(stderr, "EMU: shuffle in a partial warp (%u live)\n", live_warp(w)); abort(); }
    warp_vals[w][lane] = v;
    warp_barrier(w);
    memcpy(out, warp_vals[w], sizeof warp_vals[w]);
    warp_barrier(w);
}
void warp_sync() { warp_barrier(threadIdx.x / 32); }
void *dyn_smem() { return dyn.data(); }
void run_grid(dim3 grid, dim3 block, size_t smem, void (*body)(void *), void *ctx) {
    g_launches++;
    if (block.y != 1 || block.z != 1 || block.x == 0 || block.x > 1024 || block.x % 32) { fprintf(stderr, "EMU: bad block %u %u %u\n", block.x, block.y, block.z); abort(); }
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535) { fprintf(stderr, "EMU: bad grid %u %u %u\n", grid.x, grid.y, grid.z); abort(); }
    if (smem > 48 * 1024) { fprintf(stderr, "EMU: dynamic smem %zu\n", smem); abort(); }
    dyn.assign(smem + 16, (char)0xff);  // poisoned: NaN floats if read before written
    gridDim = grid; blockDim = block; g_body = body; g_ctx = ctx;
    const int n = block.x;
    while ((int)stacks.size() < n) stacks.push_back((char *)malloc(kStack));
    fibers.assign(n, Fiber());
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                blockIdx = dim3(x, y, z);
                block_gen = block_count = 0;
                memset(warp_gen, 0, sizeof warp_gen); memset(warp_count, 0, sizeof warp_count);
                for (int i = 0; i < n; i++) {
                    ctx_make(&fibers[i].ctx, stacks[i], kStack, fiber_main);
                    fibers[i].done = false;
                }
                bool any = true;
                while (any) {
                    any = false;
                    for (int i = 0; i < n; i++) {
                        if (fibers[i].done) continue;
                        cur = i;
                        threadIdx = dim3(i, 0, 0);
                        ctx_switch(&sched, &fibers[i].ctx);
                        any = true;
                    }
                }
            }
}
}  // namespace emu

// ---- runtime ----------------------------------------------------------------------------------
extern "C" {
cudaError_t cudaGetDeviceCount(int *n) { const char *e = getenv("EMU_GPUS"); *n = e ? atoi(e) : 1; return 0; }
cudaError_t cudaSetDevice(int) { return 0; }
cudaError_t cudaGetDevice(int *d) { *d = 0; return 0; }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int) { memset(p, 0, sizeof *p); strcpy(p->name, "CPU emulator"); p->major = 9; return 0; }
cudaError_t cudaDeviceSynchronize(void) { return 0; }
cudaError_t cudaGetLastError(void) { return 0; }
const char *cudaGetErrorString(cudaError_t e) { return e ? "emulated error" : "no error"; }
cudaError_t cudaMalloc(void **p, size_t n) { *p = aligned_alloc(256, (n + 255) / 256 * 256); return *p ? 0 : 2; }
cudaError_t cudaFree(void *p) { free(p); return 0; }
cudaError_t cudaMallocHost(void **p, size_t n) { return cudaMalloc(p, n); }
cudaError_t cudaFreeHost(void *p) { free(p); return 0; }
cudaError_t cudaMallocAsync(void **p, size_t n, cudaStream_t) {
    cudaError_t e = cudaMalloc(p, n);
    if (!e) memset(*p, 0xff, n);  // poisoned like a reused pool block
    return e;
}
cudaError_t cudaFreeAsync(void *p, cudaStream_t) { free(p); return 0; }
cudaError_t cudaMemcpy(void *d, const void *s, size_t n, enum cudaMemcpyKind) { memmove(d, s, n); return 0; }
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, enum cudaMemcpyKind k, cudaStream_t) { return cudaMemcpy(d, s, n, k); }
cudaError_t cudaMemset(void *p, int v, size_t n) { memset(p, v, n); return 0; }
cudaError_t cudaStreamCreate(cudaStream_t *s) { *s = (cudaStream_t)malloc(8); return 0; }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) { return cudaStreamCreate(s); }
cudaError_t cudaStreamDestroy(cudaStream_t s) { free(s); return 0; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return 0; }
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned) { return 0; }
cudaError_t cudaEventCreate(cudaEvent_t *e) { *e = (cudaEvent_t)malloc(8); return 0; }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned) { return cudaEventCreate(e); }
cudaError_t cudaEventDestroy(cudaEvent_t e) { free(e); return 0; }
cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return 0; }
cudaError_t cudaEventSynchronize(cudaEvent_t) { return 0; }
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t, cudaEvent_t) { *ms = 1; return 0; }
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t *p, int) { *p = nullptr; return 0; }
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t, enum cudaMemPoolAttr, void *) { return 0; }
cudaError_t cudaDeviceGetPCIBusId(char *b, int n, int d) { snprintf(b, n, "0000:%02d:00.0", d); return 0; }

// ---- cuBLASLt ---------------------------------------------------------------------------------
struct FakeDesc { int compute; int ta, tb, epi; const void *bias; };
struct FakeLayout { cudaDataType_t t; uint64_t rows, cols; int64_t ld; };
struct FakePref { int x; };
const char *cublasLtGetStatusString(cublasStatus_t s) { return s ? "fake cublas error" : "ok"; }
cublasStatus_t cublasLtCreate(cublasLtHandle_t *h) { *h = (cublasLtHandle_t)malloc(8); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) { free(h); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t c, cudaDataType_t s) {
    if (s != CUDA_R_32F) return CUBLAS_STATUS_INVALID_VALUE;
    *d = new FakeDesc{(int)c, 0, 0, CUBLASLT_EPILOGUE_DEFAULT, nullptr}; return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) { delete d; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, const void *v, size_t n) {
    switch (a) {
    case CUBLASLT_MATMUL_DESC_TRANSA: if (n != sizeof(int)) return CUBLAS_STATUS_INVALID_VALUE; memcpy(&d->ta, v, 4); break;
    case CUBLASLT_MATMUL_DESC_TRANSB: if (n != sizeof(int)) return CUBLAS_STATUS_INVALID_VALUE; memcpy(&d->tb, v, 4); break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE: if (n != sizeof(int)) return CUBLAS_STATUS_INVALID_VALUE; memcpy(&d->epi, v, 4); break;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: if (n != sizeof(void *)) return CUBLAS_STATUS_INVALID_VALUE; memcpy(&d->bias, v, sizeof(void *)); break;
    default: return CUBLAS_STATUS_INVALID_VALUE;
    }
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType_t t, uint64_t rows, uint64_t cols, int64_t ld) {
    if (ld < (int64_t)rows || ld < 1) { fprintf(stderr, "FAKE cublasLt: ld %ld < rows %lu\n", (long)ld, (unsigned long)rows); return CUBLAS_STATUS_INVALID_VALUE; }
    *l = new FakeLayout{t, rows, cols, ld}; return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) { delete l; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p) { *p = new FakePref{0}; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) { delete p; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t, cublasLtMatmulPreferenceAttributes_t a, const void *, size_t n) {
    if (a == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES && n != 8) return CUBLAS_STATUS_INVALID_VALUE;
    if (a != CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES && n != 4) return CUBLAS_STATUS_INVALID_VALUE;
    return CUBLAS_STATUS_SUCCESS;
}
static int g_no_bias_algo = -1;
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t, cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
    cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, cublasLtMatmulPreference_t, int, cublasLtMatmulHeuristicResult_t *r, int *n) {
    if (g_no_bias_algo < 0) g_no_bias_algo = getenv("EMU_NO_BIAS_ALGO") != nullptr;
    memset(r, 0, sizeof *r);
    if (g_no_bias_algo && d->epi == CUBLASLT_EPILOGUE_BIAS) { *n = 0; return CUBLAS_STATUS_NOT_SUPPORTED; }
    *n = 1; return CUBLAS_STATUS_SUCCESS;
}
static float ld_el(const void *p, cudaDataType_t t, int64_t i) {
    if (t == CUDA_R_32F) return ((const float *)p)[i];
    if (t == CUDA_R_16F) return __half2float(((const __half *)p)[i]);
    return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
}
static void st_el(void *p, cudaDataType_t t, int64_t i, float v) {
    if (t == CUDA_R_32F) ((float *)p)[i] = v;
    else if (t == CUDA_R_16F) ((__half *)p)[i] = __float2half_rn(v);
    else ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v);
}
static float tf32(float x) {  // round to a 10-bit mantissa (emulates TF32 inputs)
    uint32_t u; memcpy(&u, &x, 4); u += 0xfffu + ((u >> 13) & 1u); u &= ~0x1fffu; memcpy(&x, &u, 4); return x;
}
cublasStatus_t cublasLtMatmul(cublasLtHandle_t, cublasLtMatmulDesc_t d, const void *alpha, const void *A, cublasLtMatrixLayout_t la,
    const void *B, cublasLtMatrixLayout_t lb, const void *beta, const void *, cublasLtMatrixLayout_t, void *D, cublasLtMatrixLayout_t ld,
    const cublasLtMatmulAlgo_t *, void *, size_t, cudaStream_t) {
    const int64_t m = ld->rows, n = ld->cols;
    const int64_t k = d->ta ? la->rows : la->cols;
    if ((d->ta ? la->cols : la->rows) != (uint64_t)m || (d->tb ? lb->rows : lb->cols) != (uint64_t)n || (d->tb ? lb->cols : lb->rows) != (uint64_t)k) {
        fprintf(stderr, "FAKE cublasLt: shape mismatch m=%ld n=%ld k=%ld A %lux%lu B %lux%lu ta=%d tb=%d\n", (long)m, (long)n, (long)k,
                (unsigned long)la->rows, (unsigned long)la->cols, (unsigned long)lb->rows, (unsigned long)lb->cols, d->ta, d->tb);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (la->t != ld->t || lb->t != ld->t) return CUBLAS_STATUS_NOT_SUPPORTED;
    const float al = *(const float *)alpha, be = *(const float *)beta;
    if (be != 0.0f) return CUBLAS_STATUS_NOT_SUPPORTED;
    const bool t32 = d->compute == CUBLAS_COMPUTE_32F_FAST_TF32;
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < m; i++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++) {
                float a = d->ta ? ld_el(A, la->t, p + i * la->ld) : ld_el(A, la->t, i + p * la->ld);
                float b = d->tb ? ld_el(B, lb->t, j + p * lb->ld) : ld_el(B, lb->t, p + j * lb->ld);
                if (t32) a = tf32(a), b = tf32(b);
                s += (double)a * b;
            }
            float v = al * (float)s;
            if (d->epi == CUBLASLT_EPILOGUE_BIAS) v += ld_el(d->bias, ld->t, i);
            st_el(D, ld->t, i + j * ld->ld, v);
        }
    return CUBLAS_STATUS_SUCCESS;
}
}  // extern "C"
