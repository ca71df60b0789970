// cuda_backend.h — entry points of the CUDA backend (src/cuda/), called by backend.c only when the
// build has CUDA (CLIPNEG_HAVE_CUDA). Plain C linkage so the C core can call them; no CUDA types
// cross this boundary (all pointers here are HOST pointers). Design and tolerances: docs/cuda.md.
#ifndef CLIPNEG_CUDA_BACKEND_H
#define CLIPNEG_CUDA_BACKEND_H

#include <stdint.h>

#if defined(__cplusplus) && !defined(OMPI_SKIP_MPICXX)
#define OMPI_SKIP_MPICXX 1   // nvcc sees this header as C++: keep OpenMPI's C++ bindings out
#endif
#if defined(__cplusplus) && !defined(MPICH_SKIP_MPICXX)
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#ifdef __cplusplus
extern "C" {  // the C headers below have no guards of their own
#endif

#include "clipneg/backend.h"

// Number of visible CUDA devices (0 when the driver/runtime finds none; never fails).
int clipneg_cuda_device_count(void);

// Fill *be with the CUDA implementation on device `device`: uploads the model once (parameters
// converted to fp16/bf16 for those precisions, kept fp32 for fp32/tf32), creates the streams and
// the cuBLASLt state. be->encode_* take and return host buffers; be->destroy(be) frees the device
// side and be->impl (not `be` itself). CN_OK, or CN_E_CONFIG with a message (no such device,
// compute capability < 8.0, head size > 128, out of device memory, ...).
int cuda_backend_init(Backend *be, Precision prec, const ClipModel *m, int device);

// Pipeline chunks of the backend (host logic, exposed for the tests). `rows` is the GEMM row budget
// of a chunk (8192, or CLIPNEG_CUDA_CHUNK_ROWS). Images per chunk for a batch of B images of model c:
// a ViT chunk holds at most `rows` tokens (and 128 MiB of fp32 pixels), the batch split evenly
// over the chunks it needs; modified ResNets take 16. Texts: len[B] = tokens each text runs to
// (EOT + 1), ascending; fills starts[0..n] with the first text of every chunk (starts[n] = B; room
// for B + 1) and returns n: every chunk has texts x its longest len <= rows (or is one text) and
// at most 2048 texts.
int cuda_image_chunk(const ClipConfig *c, int B, long rows);
int cuda_text_chunks(const int32_t *len, int B, long rows, int32_t *starts);

// Benchmark hook (bench/gpu/bench_gpu_towers "d2d"): the input (pixels [B,3,R,R] or ids [B,context],
// host) is uploaded once, then secs[r] = wall time of call r of the tower on device-resident input,
// chunked as encode_* does, output left on the device; one warm-up call first. Texts are packed to
// the batch's longest EOT + 1. CN_OK, or CN_E_MODEL when the model lacks that tower.
int cuda_backend_time_d2d(Backend *be, int is_image, const void *host_in, int B, int reps, double *secs);

// ---- text-embedding table and similarity tiles on the GPU ---------------------------------------
// The evaluator L2-normalises embeddings on the host, gathers every rank's text rows into one
// device table per rank, and asks for image x text tiles of dot products (= cosines).

// Communicator for the all-gather. With NCCL (CLIPNEG_HAVE_NCCL builds): rank 0 makes the
// ncclUniqueId, MPI_Bcast shares it over `comm`, ncclCommInitRank on `device`. Without NCCL the
// same calls go through MPI_Allgather on host buffers. Collective over `comm`.
typedef struct CudaComm CudaComm;
int cuda_comm_create(CudaComm **out, MPI_Comm comm, int device);
void cuda_comm_destroy(CudaComm *c);
int cuda_comm_uses_nccl(const CudaComm *c);   // 1 when the all-gather runs through NCCL

// A [n_total, D] fp32 table in device memory, every row NaN until it is filled (so texts that were
// never rendered give NaN similarities, as the HDF5 schema wants).
typedef struct CudaTextTable CudaTextTable;
int cuda_text_table_create(CudaTextTable **out, int device, int64_t n_total, int D);
void cuda_text_table_destroy(CudaTextTable *t);

// Collective over c's communicator: every rank passes its n_local rows[n_local, D] (host) and
// their global row numbers idx[n_local] (each in [0, n_total), no duplicates across ranks);
// afterwards every rank's table holds the rows of all ranks. n_local may be 0. c == NULL: this
// rank's rows only (single-rank runs). CN_OK, or CN_E_INTERNAL for an index out of range.
int cuda_text_table_allgather(CudaTextTable *t, CudaComm *c, const float *rows, const int64_t *idx, int n_local);

// Overwrite table rows [t0, t0 + n) with rows[n, D] (host) on this rank only (no communication):
// Backend.similarity stages each tile's texts this way. CN_E_INTERNAL when outside the table.
int cuda_text_table_upload(CudaTextTable *t, int64_t t0, const float *rows, int n);

// Copy table rows [t0, t0 + n) back to the host: out[n, D].
int cuda_text_table_read(CudaTextTable *t, int64_t t0, int n, float *out);

// out[i * n_txt + j] = dot(img[i,:], table[t0 + j,:]) for i < n_img, j < n_txt. img and out are
// host buffers; the product is an fp32 cuBLASLt GEMM (CUBLAS_COMPUTE_32F, no TF32), so NaN rows
// give NaN entries. CN_OK, or CN_E_INTERNAL when [t0, t0 + n_txt) is outside the table.
int cuda_similarity_tile(CudaTextTable *t, const float *img, int n_img, int64_t t0, int n_txt, float *out);

#ifdef __cplusplus
}
#endif

#endif
