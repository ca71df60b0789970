// backend.c — picks and creates the encoder backend (include/clipneg/backend.h): the CPU reference
// (encoder_cpu.c, fp32 only) or, in builds with CLIPNEG_HAVE_CUDA, the CUDA backend on the GPU
// chosen by the rank's local rank on its node.
#define _POSIX_C_SOURCE 200809L
#include "clipneg/backend.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/encoder.h"
#include "clipneg/ops.h"
#ifdef CLIPNEG_HAVE_CUDA
#include "clipneg/cuda_backend.h"
#endif

// ---- CPU -------------------------------------------------------------------------------------------
static int cpu_encode_images(Backend *be, const float *pixels, int B, float *out) {
    return encode_images_cpu(be->model, pixels, B, out);
}
static int cpu_encode_texts(Backend *be, const int32_t *ids, int B, float *out) {
    return encode_texts_cpu(be->model, ids, B, out);
}
static int cpu_similarity(Backend *be, const float *img, int n_img, const float *txt, int n_txt, int D, float *out) {
    (void)be;
    if (n_img <= 0 || n_txt <= 0) return CN_OK;
    sgemm_rowmajor(1, n_img, n_txt, D, img, D, txt, D, 0.0f, out, n_txt); // out = img @ txt^T
    return CN_OK;
}
static void cpu_destroy(Backend *be) { (void)be; }

static int cpu_init(Backend *be, Precision prec) {
    if (prec == PREC_AUTO) prec = PREC_FP32;
    if (prec != PREC_FP32)
        return cn_fail(CN_E_CONFIG,
                       "[run] precision = %s: the cpu backend computes in fp32 only "
                       "(use precision = fp32, or backend = cuda on a GPU build)",
                       precision_name(prec));
    be->name = "cpu";
    be->precision = PREC_FP32;
    be->encode_images = cpu_encode_images;
    be->encode_texts = cpu_encode_texts;
    be->similarity = cpu_similarity;
    be->destroy = cpu_destroy;
    return CN_OK;
}

// ---- CUDA ------------------------------------------------------------------------------------------
#ifdef CLIPNEG_HAVE_CUDA
// The GPU of this rank. With one rank per GPU and every GPU visible, local rank k takes device k.
// When the launcher binds one GPU per task (CUDA_VISIBLE_DEVICES lists a single device, e.g. SLURM
// --gpus-per-task=1), each rank sees exactly that device as 0.
static int cuda_pick_device(int local_rank, int *device) {
    int n = clipneg_cuda_device_count();
    if (n <= 0)
        return cn_fail(CN_E_CONFIG,
                       "rank %d (local rank %d) has no GPU: 0 visible (CUDA_VISIBLE_DEVICES=%s); "
                       "use backend = cpu or run where GPUs are visible",
                       cn_rank(), local_rank,
                       getenv("CUDA_VISIBLE_DEVICES") ? getenv("CUDA_VISIBLE_DEVICES") : "unset");
    if (local_rank < n) {
        *device = local_rank;
        return CN_OK;
    }
    const char *vis = getenv("CUDA_VISIBLE_DEVICES");
    if (n == 1 && vis && vis[0] && !strchr(vis, ',')) {
        *device = 0;
        return CN_OK;
    }
    return cn_fail(CN_E_CONFIG,
                   "rank %d (local rank %d) has no GPU: %d visible on this node; start at most one "
                   "rank per GPU (e.g. --ntasks-per-node=%d)",
                   cn_rank(), local_rank, n, n);
}
#endif

int backend_create(Backend **out, BackendKind kind, Precision prec, const ClipModel *m, int local_rank) {
    *out = NULL;
    Backend *be = callocCheck(1, sizeof *be);
    be->model = m;
    int rc;
#ifdef CLIPNEG_HAVE_CUDA
    if (kind == BACKEND_AUTO) kind = clipneg_cuda_device_count() > 0 ? BACKEND_CUDA : BACKEND_CPU;
    if (kind == BACKEND_CUDA) {
        int device = 0;
        rc = cuda_pick_device(local_rank, &device);
        // auto: fp16 tensor-core GEMMs and attention (fp16 cosines match fp32 to ~2e-3, docs/cuda.md)
        if (rc == CN_OK) rc = cuda_backend_init(be, prec == PREC_AUTO ? PREC_FP16 : prec, m, device);
        if (rc == CN_OK && !be->name) be->name = "cuda";
    } else {
        rc = cpu_init(be, prec);
    }
#else
    (void)local_rank;
    if (kind == BACKEND_CUDA)
        rc = cn_fail(CN_E_CONFIG, "[run] backend = cuda but this build has no CUDA (rebuild with -DCLIPNEG_CUDA=ON "
                                  "on a machine with nvcc, or use backend = cpu/auto)");
    else
        rc = cpu_init(be, prec);
#endif
    if (rc != CN_OK) {
        free(be);
        return rc;
    }
    *out = be;
    return CN_OK;
}

void backend_destroy(Backend *be) {
    if (!be) return;
    if (be->destroy) be->destroy(be);
    free(be);
}

int backend_local_rank(void) {
    const char *env[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID", "PMI_LOCAL_RANK", NULL};
    for (int i = 0; env[i]; i++) {
        const char *v = getenv(env[i]);
        if (v && v[0]) return atoi(v);
    }
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (!init || fin) return 0;
    // no launcher variable: ranks that share memory are on one node; our rank among them
    MPI_Comm node;
    int local = 0;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_rank(node, &local);
        MPI_Comm_free(&node);
    }
    return local;
}
