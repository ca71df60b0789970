// eval_similarity.c — phase (c): similarities per image shard.
//
// Paired: the captions of the shard's images are contiguous rows [c0, c1) of /captions, so their
// texts are the contiguous rows [c0 V, c1 V) of /embeddings/text; each rank reads its own images'
// and texts' embeddings back from the file (collective read) and takes dot products (embeddings are
// L2-normalised, so dot = cosine), accumulated in double.
//
// Full (output.full_similarity): the [shard x N_text] block is computed tile by tile over
// run.tile_texts texts. Every rank needs every tile, so each rank reads a disjoint slice of the
// tile's rows from the file (collective read) and MPI_Allgatherv assembles the whole tile on every
// rank; then each rank multiplies its shard's images by the tile (Backend.similarity: sgemm on the
// CPU backend, an fp32 GEMM on the GPU with the CUDA backend) and all ranks write their
// blocks in one collective call. Memory per rank is therefore
//     image_shard x D  +  tile_texts x D  +  image_shard x tile_texts   floats,
// independent of N_text and N_img; no rank ever holds N_text x D or N_img x N_text.
// NaN rows/columns (failed images, texts not rendered) are set explicitly, not left to BLAS.
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/half.h"
#include "clipneg/ops.h"
#include "eval_internal.h"

// Caption rows [*c0, *c1) of images [i0, i1) (contiguous by construction of the dataset).
static int shard_captions(const Dataset *ds, int64_t i0, int64_t i1, int64_t *c0, int64_t *c1) {
    *c0 = *c1 = 0;
    int first = 1;
    for (int64_t i = i0; i < i1; i++) {
        const DsImage *im = &ds->images[i];
        if (im->n_captions == 0) continue;
        if (first) *c0 = *c1 = im->first_caption;
        if (im->first_caption != *c1)
            return cn_fail(CN_E_INTERNAL, "captions of image %lld are not contiguous with the previous image's",
                           (long long)i);
        *c1 = im->first_caption + im->n_captions;
        first = 0;
    }
    return CN_OK;
}

// Paired cosines are computed for at most this many captions at a time: an image shard's captions
// grow with the captions per image (millions of LLM-written negations of a few images), the
// buffers must not.
enum { PAIRED_CHUNK = 256 };

typedef struct {
    int64_t i0, n_img, c0, n_cap; // image rows [i0, i0+n_img), caption rows [c0, c0+n_cap)
    float *img;                   // [image_shard, D]
    float *txt;                   // [PAIRED_CHUNK * V, D]: the texts of captions [c0 + k0, c0 + k1)
    float *paired;                // [PAIRED_CHUNK, V]
} SimShard;

// Paired cosines of the shard's captions [k0, k1) (relative to c0; their texts are in ss->txt).
static void paired_compute(const Eval *e, SimShard *ss, int64_t k0, int64_t k1) {
    const int V = e->vs.n, D = (int)e->shape.dim;
    for (int64_t c = 0; c < k1 - k0; c++) {
        int64_t i = dataset_caption_image(&e->ds, (int)(ss->c0 + k0 + c)) - ss->i0;
        const float *a = ss->img + i * D;
        for (int v = 0; v < V; v++) {
            const float *b = ss->txt + (c * V + v) * D;
            double dot = 0;
            for (int k = 0; k < D; k++) dot += (double)a[k] * b[k];
            ss->paired[c * V + v] = (float)dot; // NaN stays NaN (failed image / text not rendered)
        }
    }
}

// The full block of this round: tile by tile, all ranks together (collective).
static int full_round(Eval *e, const SimShard *ss) {
    const int P = e->nranks, D = (int)e->shape.dim;
    const int64_t N = e->shape.n_text, T = CN_MIN((int64_t)e->job.tile_texts, N);
    const int f16 = e->shape.full_f16;
    float *tile = mallocCheck((size_t)(T * D) * sizeof(float));
    float *block = mallocCheck((size_t)(ss->n_img * T + 1) * sizeof(float));
    uint16_t *half = f16 ? mallocCheck((size_t)(ss->n_img * T + 1) * sizeof(uint16_t)) : NULL;
    int *counts = mallocCheck((size_t)P * sizeof(int)), *displs = mallocCheck((size_t)P * sizeof(int));
    uint8_t *img_nan = mallocCheck((size_t)ss->n_img + 1), *txt_nan = mallocCheck((size_t)T);
    for (int64_t i = 0; i < ss->n_img; i++) img_nan[i] = isnan(ss->img[i * D]);
    int rc = CN_OK;
    for (int64_t t0 = 0; t0 < N && rc == CN_OK; t0 += T) {
        const int64_t t1 = CN_MIN(t0 + T, N), nt = t1 - t0;
        int64_t b, en;
        plan_split(t0, t1, P, e->rank, &b, &en);
        double ts = cn_now();
        // my slice of the tile from the file, straight into its place in the tile buffer
        if ((rc = eval_agree(h5out_read_rows(&e->out, DS_EMB_TEXT, b, en - b, tile + (b - t0) * D)))) break;
        for (int k = 0; k < P; k++) {
            int64_t kb, ke;
            plan_split(t0, t1, P, k, &kb, &ke);
            counts[k] = (int)((ke - kb) * D);
            displs[k] = (int)((kb - t0) * D);
        }
        MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, tile, counts, displs, MPI_FLOAT, MPI_COMM_WORLD);
        ts = eval_stage_add(e, STAGE_IO, ts);
        int local = CN_OK;
        if (ss->n_img > 0) {
            for (int64_t t = 0; t < nt; t++) txt_nan[t] = isnan(tile[t * D]);
            // block[n_img, nt] = img[n_img, D] @ tile[nt, D]^T: on the GPU with the CUDA backend
            local = e->be->similarity(e->be, ss->img, (int)ss->n_img, tile, (int)nt, D, block);
            for (int64_t i = 0; i < ss->n_img && local == CN_OK; i++)
                for (int64_t t = 0; t < nt; t++)
                    if (img_nan[i] || txt_nan[t]) block[i * nt + t] = NAN;
            if (f16 && local == CN_OK)
                for (int64_t k = 0; k < ss->n_img * nt; k++) half[k] = f32_to_f16(block[k]);
        }
        ts = eval_stage_add(e, STAGE_SIMILARITY, ts);
        if ((rc = eval_agree(local))) break;
        rc = eval_agree(
            h5out_write_block(&e->out, DS_SIM_FULL, ss->i0, ss->n_img, t0, nt, f16 ? (void *)half : (void *)block));
        eval_stage_add(e, STAGE_IO, ts);
    }
    free(tile);
    free(block);
    free(half);
    free(counts);
    free(displs);
    free(img_nan);
    free(txt_nan);
    return rc;
}

int eval_similarity(Eval *e) {
    const ShardPlan *p = &e->image_plan;
    const int V = e->vs.n, D = (int)e->shape.dim;
    if ((int64_t)e->job.tile_texts * D > 1000000000LL)
        return cn_fail(CN_E_CONFIG, "[run] tile_texts = %d: tile_texts x D must stay below 1e9 floats",
                       e->job.tile_texts);
    progress_begin(&e->prog, "similarity", p->n_items, plan_rows_done(p, e->sim_done));
    SimShard ss = {0};
    ss.img = mallocCheck((size_t)(p->shard_size * D) * sizeof(float));
    ss.txt = mallocCheck((size_t)PAIRED_CHUNK * V * D * sizeof(float));
    ss.paired = mallocCheck((size_t)PAIRED_CHUNK * V * sizeof(float));
    int rc = CN_OK;
    for (int64_t r = 0; r < p->n_rounds && rc == CN_OK; r++) {
        if (plan_round_done(p, r, e->sim_done)) continue;
        if ((rc = eval_round_begin(e, "similarity", r))) break;
        int64_t s = plan_shard(p, r, e->rank), i1 = 0, c1 = 0;
        if (s >= 0 && e->sim_done[s]) s = -1;
        plan_shard_rows(p, s, &ss.i0, &i1);
        ss.n_img = i1 - ss.i0;
        int local = shard_captions(&e->ds, ss.i0, i1, &ss.c0, &c1);
        ss.n_cap = c1 - ss.c0;
        if ((rc = eval_agree(local))) break;
        H5Out *o = &e->out;
        double ts = cn_now();
        if ((rc = eval_agree(h5out_read_rows(o, DS_EMB_IMAGE, ss.i0, ss.n_img, ss.img)))) break;
        ts = eval_stage_add(e, STAGE_IO, ts);
        // the reads and writes are collective: every rank makes as many chunk steps as the busiest
        long long chunks = CN_CEIL_DIV(ss.n_cap, (int64_t)PAIRED_CHUNK);
        MPI_Allreduce(MPI_IN_PLACE, &chunks, 1, MPI_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
        for (long long k = 0; k < chunks && rc == CN_OK; k++) {
            int64_t k0 = CN_MIN(k * PAIRED_CHUNK, ss.n_cap), k1 = CN_MIN(k0 + PAIRED_CHUNK, ss.n_cap);
            int w = h5out_read_rows(o, DS_EMB_TEXT, (ss.c0 + k0) * V, (k1 - k0) * V, ss.txt);
            if ((rc = eval_agree(w))) break;
            ts = eval_stage_add(e, STAGE_IO, ts);
            paired_compute(e, &ss, k0, k1);
            ts = eval_stage_add(e, STAGE_SIMILARITY, ts);
            rc = eval_agree(h5out_write_rows(o, DS_SIM_PAIRED, ss.c0 + k0, k1 - k0, ss.paired));
            ts = eval_stage_add(e, STAGE_IO, ts);
        }
        if (rc) break;
        if (e->shape.full_similarity && (rc = full_round(e, &ss))) break;
        ts = cn_now();
        if ((rc = eval_agree(h5out_flush(o)))) break;
        eval_round_mid(e);
        if ((rc = eval_agree(h5out_mark_done(o, DS_PROG_SIM, s)))) break;
        eval_stage_add(e, STAGE_IO, ts);
        for (int k = 0; k < e->nranks; k++) {
            int64_t sk = plan_shard(p, r, k);
            if (sk >= 0) e->sim_done[sk] = 1;
        }
        eval_round_end(e, plan_rows_done(p, e->sim_done));
    }
    free(ss.img);
    free(ss.txt);
    free(ss.paired);
    if (rc == CN_OK) progress_end(&e->prog);
    return rc;
}
