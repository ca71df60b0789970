// backend.h — one encoder API over the CPU reference and the CUDA backend.
// The evaluator only talks to a Backend; inputs and outputs are HOST buffers in both cases
// (the CUDA backend copies through pinned staging buffers and overlaps copies with compute).
#ifndef CLIPNEG_BACKEND_H
#define CLIPNEG_BACKEND_H

#include <stdint.h>

#include "clipneg/config.h"
#include "clipneg/model.h"

typedef struct Backend Backend;
struct Backend {
    const char *name;   // "cpu" or "cuda"
    Precision precision; // what the backend computes in (PREC_AUTO resolved: fp16 on cuda, fp32 on cpu)
    const ClipModel *model;
    void *impl;         // backend state
    // pixels [B,3,R,R] -> out [B,D] (not normalised)
    int (*encode_images)(Backend *be, const float *pixels, int B, float *out);
    // ids [B,context] -> out [B,D] (not normalised); runs only to the batch's longest EOT
    int (*encode_texts)(Backend *be, const int32_t *ids, int B, float *out);
    // Similarity block: out[i * n_txt + j] = dot(img[i,:], txt[j,:]) for img [n_img, D] and
    // txt [n_txt, D], all host buffers. CPU: sgemm; CUDA: an fp32 GEMM on the GPU (no TF32).
    // NaN inputs may or may not propagate: callers set NaN rows/columns themselves.
    int (*similarity)(Backend *be, const float *img, int n_img, const float *txt, int n_txt, int D, float *out);
    void (*destroy)(Backend *be);
};

// kind AUTO picks CUDA when this build has it and the rank sees a GPU, else CPU.
// local_rank selects the GPU (from OMPI_COMM_WORLD_LOCAL_RANK / SLURM_LOCALID).
// CN_OK, or CN_E_CONFIG with a clear message (e.g. "backend = cuda but this build has no CUDA",
// "rank 3 (local rank 3) has no GPU: 2 visible"), or CN_E_CONFIG for a precision the backend lacks.
// prec PREC_AUTO becomes fp16 on the CUDA backend and fp32 on the CPU backend (be->precision).
int backend_create(Backend **out, BackendKind kind, Precision prec, const ClipModel *m, int local_rank);
void backend_destroy(Backend *be);
// Precision names: precision_name (config.h); the HDF5 provenance records the resolved
// be->precision, never "auto".
// The launcher's local rank (OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID, MPI_COMM_TYPE_SHARED split), 0 without.
int backend_local_rank(void);

#endif
