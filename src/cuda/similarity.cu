// similarity.cu — the text-embedding table on the GPU, its all-gather across ranks (NCCL, or MPI
// on host buffers in builds without NCCL), and image x text similarity tiles (one fp32 GEMM).
//
// All-gather with uneven shares: NCCL's all-gather moves equal counts, so every rank pads its rows
// to the largest share (max over ranks, from an MPI_Allreduce), sends its global row numbers
// alongside (-1 for padding), and a scatter kernel drops every received row into its place.
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_common.cuh"
#include "ops.cuh"

#include "clipneg/cuda_backend.h"

#ifdef CLIPNEG_HAVE_NCCL
#include <nccl.h>
#define ncclCheck(call)                                                                          \
    do {                                                                                         \
        ncclResult_t r_ = (call);                                                                \
        if (r_ != ncclSuccess) cuda_check_failed("NCCL", ncclGetErrorString(r_), #call, __FILE__, __LINE__); \
    } while (0)
#endif

#define mpiCheck(call)                                                                           \
    do {                                                                                         \
        int e_ = (call);                                                                         \
        if (e_ != MPI_SUCCESS) cuda_check_failed("MPI", "call failed", #call, __FILE__, __LINE__); \
    } while (0)

struct CudaComm {
    MPI_Comm comm;
    int rank, nranks, device;
    int use_nccl;
#ifdef CLIPNEG_HAVE_NCCL
    ncclComm_t nccl;
#endif
};

struct CudaTextTable {
    int device;
    int64_t n;
    int D;
    float *rows;          // device [n, D]
    cudaStream_t stream;
};

// ---- communicator -------------------------------------------------------------------------------------------
// NCCL needs one GPU per rank: true when two ranks of `comm` sit on the same device of one node.
static int ranks_share_a_gpu(const CudaComm *c) {
    enum { kKey = MPI_MAX_PROCESSOR_NAME + 64 };
    char key[kKey];
    memset(key, 0, sizeof key);
    int len = 0;
    mpiCheck(MPI_Get_processor_name(key, &len));
    cudaCheck(cudaDeviceGetPCIBusId(key + MPI_MAX_PROCESSOR_NAME, 64, c->device));
    char *all = (char *)mallocCheck((size_t)kKey * c->nranks);
    mpiCheck(MPI_Allgather(key, kKey, MPI_CHAR, all, kKey, MPI_CHAR, c->comm));
    int shared = 0;
    for (int i = 0; i < c->nranks && !shared; i++)
        for (int j = i + 1; j < c->nranks && !shared; j++) shared = !memcmp(all + (size_t)i * kKey, all + (size_t)j * kKey, kKey);
    free(all);
    return shared;
}

extern "C" int cuda_comm_create(CudaComm **out, MPI_Comm comm, int device) {
    *out = nullptr;
    CudaComm *c = (CudaComm *)callocCheck(1, sizeof(CudaComm));
    c->comm = comm;
    c->device = device;
    mpiCheck(MPI_Comm_rank(comm, &c->rank));
    mpiCheck(MPI_Comm_size(comm, &c->nranks));
    cudaCheck(cudaSetDevice(device));
#ifdef CLIPNEG_HAVE_NCCL
    // CLIPNEG_CUDA_NCCL=0 forces the MPI path (the same on every rank: it is the job's environment).
    const char *env = getenv("CLIPNEG_CUDA_NCCL");
    int want = !(env && !strcmp(env, "0"));
    if (want && ranks_share_a_gpu(c)) {
        if (c->rank == 0) cn_warn("two ranks share one GPU: NCCL cannot run like that, the text all-gather goes through MPI");
        want = 0;
    }
    if (want) {
        // Rank 0 makes the id, MPI carries it to everyone, then every rank joins on its own GPU.
        ncclUniqueId id;
        memset(&id, 0, sizeof id);
        if (c->rank == 0) ncclCheck(ncclGetUniqueId(&id));
        mpiCheck(MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, comm));
        ncclCheck(ncclCommInitRank(&c->nccl, c->nranks, id, c->rank));
        c->use_nccl = 1;
    }
#else
    (void)ranks_share_a_gpu;
#endif
    *out = c;
    return CN_OK;
}

extern "C" void cuda_comm_destroy(CudaComm *c) {
    if (!c) return;
#ifdef CLIPNEG_HAVE_NCCL
    if (c->use_nccl) ncclCheck(ncclCommDestroy(c->nccl));
#endif
    free(c);
}

extern "C" int cuda_comm_uses_nccl(const CudaComm *c) { return c && c->use_nccl; }

// ---- table ----------------------------------------------------------------------------------------------------
extern "C" int cuda_text_table_create(CudaTextTable **out, int device, int64_t n_total, int D) {
    *out = nullptr;
    if (n_total < 0 || D <= 0) return cn_fail(CN_E_INTERNAL, "cuda text table: bad shape [%lld, %d]", (long long)n_total, D);
    cudaCheck(cudaSetDevice(device));
    CudaTextTable *t = (CudaTextTable *)callocCheck(1, sizeof(CudaTextTable));
    t->device = device;
    t->n = n_total;
    t->D = D;
    const size_t bytes = (size_t)(n_total ? n_total : 1) * D * sizeof(float);
    cudaError_t err = cudaMalloc((void **)&t->rows, bytes);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        free(t);
        return cn_fail(CN_E_CONFIG, "cuda text table: cannot allocate %.1f MiB for [%lld, %d]: %s", bytes / 1048576.0,
                       (long long)n_total, D, cudaGetErrorString(err));
    }
    cudaCheck(cudaStreamCreateWithFlags(&t->stream, cudaStreamNonBlocking));
    fill_nan_cuda<float>(t->rows, (long)n_total * D, t->stream);
    cudaCheck(cudaStreamSynchronize(t->stream));
    *out = t;
    return CN_OK;
}

extern "C" void cuda_text_table_destroy(CudaTextTable *t) {
    if (!t) return;
    cudaCheck(cudaSetDevice(t->device));
    cudaCheck(cudaStreamSynchronize(t->stream));
    cudaCheck(cudaFree(t->rows));
    cudaCheck(cudaStreamDestroy(t->stream));
    free(t);
}

// table[idx[r], :] = rows[r, :] for every received row r with idx[r] >= 0 (padding has -1).
__global__ void scatter_rows_kernel(float *table, const float *rows, const int64_t *idx, long n_rows, int D) {
    const long n = n_rows * D;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        const long r = i / D;
        const int64_t dst = idx[r];
        if (dst >= 0) table[dst * D + (i % D)] = rows[i];
    }
}

static void upload_and_scatter(CudaTextTable *t, const float *rows, const int64_t *idx, long n_rows) {
    if (n_rows == 0) return;
    float *d_rows;
    int64_t *d_idx;
    cudaCheck(cudaMallocAsync((void **)&d_rows, (size_t)n_rows * t->D * sizeof(float), t->stream));
    cudaCheck(cudaMallocAsync((void **)&d_idx, (size_t)n_rows * sizeof(int64_t), t->stream));
    cudaCheck(cudaMemcpyAsync(d_rows, rows, (size_t)n_rows * t->D * sizeof(float), cudaMemcpyHostToDevice, t->stream));
    cudaCheck(cudaMemcpyAsync(d_idx, idx, (size_t)n_rows * sizeof(int64_t), cudaMemcpyHostToDevice, t->stream));
    scatter_rows_kernel<<<grid_for(n_rows * t->D, kThreads), kThreads, 0, t->stream>>>(t->rows, d_rows, d_idx, n_rows, t->D);
    cudaLaunchCheck();
    cudaCheck(cudaFreeAsync(d_rows, t->stream));
    cudaCheck(cudaFreeAsync(d_idx, t->stream));
    cudaCheck(cudaStreamSynchronize(t->stream));  // the host buffers may go away after we return
}

extern "C" int cuda_text_table_allgather(CudaTextTable *t, CudaComm *c, const float *rows, const int64_t *idx, int n_local) {
    // Check the indices first, and agree on the verdict, so that no rank is left in a collective.
    int bad = n_local < 0 || (n_local > 0 && (!rows || !idx));
    int64_t bad_idx = 0;
    for (int i = 0; !bad && i < n_local; i++)
        if (idx[i] < 0 || idx[i] >= t->n) {
            bad = 1;
            bad_idx = idx[i];
        }
    int any_bad = bad;
    if (c) mpiCheck(MPI_Allreduce(&bad, &any_bad, 1, MPI_INT, MPI_MAX, c->comm));
    if (any_bad)
        return bad ? cn_fail(CN_E_INTERNAL, "cuda text table: row index %lld outside [0, %lld) (or %d rows)",
                             (long long)bad_idx, (long long)t->n, n_local)
                   : cn_fail(CN_E_INTERNAL, "cuda text table: another rank passed a bad row index");
    cudaCheck(cudaSetDevice(t->device));
    if (!c || c->nranks == 1) {
        upload_and_scatter(t, rows, idx, n_local);
        return CN_OK;
    }

    int max_local = 0;
    mpiCheck(MPI_Allreduce(&n_local, &max_local, 1, MPI_INT, MPI_MAX, c->comm));
    if (max_local == 0) return CN_OK;
    const int D = t->D;
    const long total = (long)c->nranks * max_local;
    // This rank's share, padded to max_local rows (padding rows: idx -1, values never read).
    float *send_rows = (float *)callocCheck((size_t)max_local * D, sizeof(float));
    int64_t *send_idx = (int64_t *)mallocCheck((size_t)max_local * sizeof(int64_t));
    if (n_local > 0) memcpy(send_rows, rows, (size_t)n_local * D * sizeof(float));
    for (int i = 0; i < max_local; i++) send_idx[i] = i < n_local ? idx[i] : -1;

#ifdef CLIPNEG_HAVE_NCCL
    if (c->use_nccl) {
        float *d_send, *d_recv;
        int64_t *d_send_idx, *d_recv_idx;
        cudaStream_t s = t->stream;
        cudaCheck(cudaMallocAsync((void **)&d_send, (size_t)max_local * D * sizeof(float), s));
        cudaCheck(cudaMallocAsync((void **)&d_recv, (size_t)total * D * sizeof(float), s));
        cudaCheck(cudaMallocAsync((void **)&d_send_idx, (size_t)max_local * sizeof(int64_t), s));
        cudaCheck(cudaMallocAsync((void **)&d_recv_idx, (size_t)total * sizeof(int64_t), s));
        cudaCheck(cudaMemcpyAsync(d_send, send_rows, (size_t)max_local * D * sizeof(float), cudaMemcpyHostToDevice, s));
        cudaCheck(cudaMemcpyAsync(d_send_idx, send_idx, (size_t)max_local * sizeof(int64_t), cudaMemcpyHostToDevice, s));
        ncclCheck(ncclGroupStart());
        ncclCheck(ncclAllGather(d_send, d_recv, (size_t)max_local * D, ncclFloat32, c->nccl, s));
        ncclCheck(ncclAllGather(d_send_idx, d_recv_idx, (size_t)max_local, ncclInt64, c->nccl, s));
        ncclCheck(ncclGroupEnd());
        scatter_rows_kernel<<<grid_for(total * D, kThreads), kThreads, 0, s>>>(t->rows, d_recv, d_recv_idx, total, D);
        cudaLaunchCheck();
        cudaCheck(cudaFreeAsync(d_send, s));
        cudaCheck(cudaFreeAsync(d_recv, s));
        cudaCheck(cudaFreeAsync(d_send_idx, s));
        cudaCheck(cudaFreeAsync(d_recv_idx, s));
        cudaCheck(cudaStreamSynchronize(s));
        free(send_rows);
        free(send_idx);
        return CN_OK;
    }
#endif
    // MPI on host buffers: the same padded exchange, then one upload of everything received.
    if ((long)max_local * D > INT_MAX) {
        free(send_rows);
        free(send_idx);
        return cn_fail(CN_E_INTERNAL, "cuda text table: %d rows x %d floats per rank exceed one MPI message", max_local, D);
    }
    float *recv_rows = (float *)mallocCheck((size_t)total * D * sizeof(float));
    int64_t *recv_idx = (int64_t *)mallocCheck((size_t)total * sizeof(int64_t));
    mpiCheck(MPI_Allgather(send_rows, max_local * D, MPI_FLOAT, recv_rows, max_local * D, MPI_FLOAT, c->comm));
    mpiCheck(MPI_Allgather(send_idx, max_local, MPI_INT64_T, recv_idx, max_local, MPI_INT64_T, c->comm));
    upload_and_scatter(t, recv_rows, recv_idx, total);
    free(recv_rows);
    free(recv_idx);
    free(send_rows);
    free(send_idx);
    return CN_OK;
}

extern "C" int cuda_text_table_upload(CudaTextTable *t, int64_t t0, const float *rows, int n) {
    if (t0 < 0 || n < 0 || t0 + n > t->n || (n > 0 && !rows))
        return cn_fail(CN_E_INTERNAL, "cuda text table: upload of rows [%lld, %lld) outside [0, %lld)", (long long)t0,
                       (long long)(t0 + n), (long long)t->n);
    if (n == 0) return CN_OK;
    cudaCheck(cudaSetDevice(t->device));
    cudaCheck(cudaMemcpyAsync(t->rows + t0 * t->D, rows, (size_t)n * t->D * sizeof(float), cudaMemcpyHostToDevice, t->stream));
    cudaCheck(cudaStreamSynchronize(t->stream));  // rows may go away after we return
    return CN_OK;
}

extern "C" int cuda_text_table_read(CudaTextTable *t, int64_t t0, int n, float *out) {
    if (t0 < 0 || n < 0 || t0 + n > t->n)
        return cn_fail(CN_E_INTERNAL, "cuda text table: rows [%lld, %lld) outside [0, %lld)", (long long)t0,
                       (long long)(t0 + n), (long long)t->n);
    if (n == 0) return CN_OK;
    cudaCheck(cudaSetDevice(t->device));
    cudaCheck(cudaMemcpyAsync(out, t->rows + t0 * t->D, (size_t)n * t->D * sizeof(float), cudaMemcpyDeviceToHost, t->stream));
    cudaCheck(cudaStreamSynchronize(t->stream));
    return CN_OK;
}

// ---- similarity tiles -----------------------------------------------------------------------------------------
extern "C" int cuda_similarity_tile(CudaTextTable *t, const float *img, int n_img, int64_t t0, int n_txt, float *out) {
    if (t0 < 0 || n_txt < 0 || n_img < 0 || t0 + n_txt > t->n)
        return cn_fail(CN_E_INTERNAL, "cuda similarity tile: texts [%lld, %lld) outside [0, %lld) (or %d images)",
                       (long long)t0, (long long)(t0 + n_txt), (long long)t->n, n_img);
    if (n_img == 0 || n_txt == 0) return CN_OK;
    cudaCheck(cudaSetDevice(t->device));
    const int D = t->D;
    cudaStream_t s = t->stream;
    float *d_img, *d_out;
    cudaCheck(cudaMallocAsync((void **)&d_img, (size_t)n_img * D * sizeof(float), s));
    cudaCheck(cudaMallocAsync((void **)&d_out, (size_t)n_img * n_txt * sizeof(float), s));
    cudaCheck(cudaMemcpyAsync(d_img, img, (size_t)n_img * D * sizeof(float), cudaMemcpyHostToDevice, s));
    // out[i, j] = img[i,:] . table[t0 + j,:]: matmul_forward with the table rows as the "weight".
    // True fp32 GEMM whatever mode an encoder backend set (similarities are stored as results).
    const int tf32 = cuda_ops_tf32();
    cuda_ops_set_tf32(0);
    matmul_forward_cuda(d_out, d_img, t->rows + t0 * D, nullptr, n_img, D, n_txt, s);
    cuda_ops_set_tf32(tf32);
    cudaCheck(cudaMemcpyAsync(out, d_out, (size_t)n_img * n_txt * sizeof(float), cudaMemcpyDeviceToHost, s));
    cudaCheck(cudaFreeAsync(d_img, s));
    cudaCheck(cudaFreeAsync(d_out, s));
    cudaCheck(cudaStreamSynchronize(s));
    return CN_OK;
}
