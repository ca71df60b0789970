// eval_images.c — phase (b): image shards. Images are decoded and preprocessed on a small thread
// pool (run.decode_threads) while the encoder works: batch k+1 decodes into one pixel buffer while
// batch k, in the other, is encoded. A missing or undecodable image is recorded (/images/status,
// /images/error, a NaN embedding row) and the run goes on; failed images are left out of their
// batch, which is deterministic because the failure is.
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clipneg/common.h"
#include "clipneg/encoder.h"
#include "clipneg/image.h"
#include "clipneg/threadpool.h"
#include "eval_internal.h"

// /images/status values (docs/hdf5-schema.md)
enum { IMG_PENDING = 0, IMG_OK = 1, IMG_MISSING = 2, IMG_DECODE_ERROR = 3, IMG_REFUSED = 4 };

typedef struct {
    const Dataset *ds;
    int R;
    int64_t row;   // image index
    float *pixels; // [3, R, R] slot in the batch buffer
    int status;
    double secs; // time this task took (the decode_busy stage)
    char error[512];
} DecodeTask;

// Runs on a pool thread: no MPI, no HDF5; cn_fail's buffer is thread-local.
static void decode_task(void *arg) {
    DecodeTask *t = arg;
    const double t0 = cn_now();
    char *path = dataset_image_path(t->ds, (int)t->row);
    struct stat st;
    t->error[0] = '\0';
    if (stat(path, &st) != 0) {
        t->status = IMG_MISSING;
        snprintf(t->error, sizeof t->error, "%s: missing image file: %s", path, strerror(errno));
    } else if (image_load_preprocess(path, t->R, t->pixels) != CN_OK) {
        // the decoder words its refusals (decompression bombs, oversized files) as "refusing ..."
        const char *msg = cn_last_error();
        t->status = strstr(msg, "refusing") ? IMG_REFUSED : IMG_DECODE_ERROR;
        snprintf(t->error, sizeof t->error, "%s", msg);
    } else {
        t->status = IMG_OK;
    }
    free(path);
    t->secs = cn_now() - t0;
}

typedef struct {
    int64_t i0, n;  // rows [i0, i0 + n)
    int8_t *status; // [n]
    float *emb;     // [n, D]
    int n_err;      // failures of this shard: rows and messages
    int64_t *err_rows;
    char (*err_msgs)[512];
} ImageShard;

typedef struct {
    ThreadPool *pool;
    float *pix[2];        // double buffer [B, 3, R, R]
    DecodeTask *tasks[2]; // [B]
    float *out;           // [B, D]
    int *keep;            // [B] batch positions of the decoded images
} ImagePipe;

static void submit_batch(Eval *e, ImagePipe *pp, int slot, int64_t row0, int nb) {
    const int R = e->model.cfg.image_size;
    for (int j = 0; j < nb; j++) {
        DecodeTask *t = &pp->tasks[slot][j];
        t->ds = &e->ds;
        t->R = R;
        t->row = row0 + j;
        t->pixels = pp->pix[slot] + (size_t)j * 3 * R * R;
        threadpool_submit(pp->pool, decode_task, t);
    }
}

// Decode + encode one shard (local work).
static int image_shard_compute(Eval *e, ImagePipe *pp, ImageShard *is) {
    const int R = e->model.cfg.image_size, D = (int)e->shape.dim, B = e->job.image_batch;
    const size_t img = (size_t)3 * R * R;
    const int64_t nb_total = CN_CEIL_DIV(is->n, (int64_t)B);
    for (int64_t k = 0; k < is->n * D; k++) is->emb[k] = NAN;
    is->n_err = 0;
    submit_batch(e, pp, 0, is->i0, (int)CN_MIN((int64_t)B, is->n));
    int rc = CN_OK;
    for (int64_t k = 0; k < nb_total; k++) {
        double ts = cn_now();
        threadpool_wait(pp->pool); // batch k decoded (and nothing else is in flight)
        ts = eval_stage_add(e, STAGE_DECODE, ts);
        if (rc != CN_OK) break;
        int slot = (int)(k & 1);
        int64_t row0 = is->i0 + k * B;
        int nb = (int)CN_MIN((int64_t)B, is->i0 + is->n - row0);
        if (k + 1 < nb_total) { // decode batch k+1 while we encode batch k
            int64_t next0 = row0 + B;
            submit_batch(e, pp, 1 - slot, next0, (int)CN_MIN((int64_t)B, is->i0 + is->n - next0));
        }
        // keep the decoded images, packed to the front of the buffer, in row order
        int m = 0, *rows = pp->keep;
        for (int j = 0; j < nb; j++) {
            DecodeTask *t = &pp->tasks[slot][j];
            e->decode_busy += t->secs;
            is->status[row0 + j - is->i0] = (int8_t)t->status;
            if (t->status != IMG_OK) {
                is->err_rows[is->n_err] = t->row;
                memcpy(is->err_msgs[is->n_err], t->error, sizeof t->error);
                is->n_err++;
                continue;
            }
            if (m != j) memmove(pp->pix[slot] + (size_t)m * img, pp->pix[slot] + (size_t)j * img, img * sizeof(float));
            rows[m++] = j;
        }
        if (m == 0) continue;
        ts = cn_now();
        rc = e->be->encode_images(e->be, pp->pix[slot], m, pp->out);
        eval_stage_add(e, STAGE_IMAGE_TOWER, ts);
        if (rc != CN_OK) continue; // wait for batch k+1's decoders before leaving
        l2_normalize_rows(pp->out, m, D);
        for (int j = 0; j < m; j++)
            memcpy(is->emb + (row0 + rows[j] - is->i0) * D, pp->out + (size_t)j * D, (size_t)D * sizeof(float));
    }
    double ts = cn_now();
    threadpool_wait(pp->pool);
    eval_stage_add(e, STAGE_DECODE, ts);
    return rc;
}

// Rank 0 receives every rank's failures of this round (row + message) and writes the messages in a
// serial section; a no-op round when nobody failed (decided collectively).
static int write_round_errors(Eval *e, const ImageShard *is) {
    int n_local = is->n_err, n_total = 0;
    MPI_Allreduce(&n_local, &n_total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (n_total == 0) return CN_OK;
    const int P = e->nranks, MSG = 512;
    int *counts = callocCheck((size_t)P, sizeof(int)), *displs = callocCheck((size_t)P, sizeof(int));
    MPI_Gather(&n_local, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD);
    for (int k = 1; k < P; k++) displs[k] = displs[k - 1] + counts[k - 1];
    int64_t *rows = mallocCheck((size_t)n_total * sizeof(int64_t));
    char *msgs = mallocCheck((size_t)n_total * MSG);
    MPI_Gatherv(is->err_rows, n_local, MPI_INT64_T, rows, counts, displs, MPI_INT64_T, 0, MPI_COMM_WORLD);
    for (int k = 0; k < P; k++) {
        counts[k] *= MSG;
        displs[k] *= MSG;
    }
    MPI_Gatherv(is->err_msgs, n_local * MSG, MPI_CHAR, msgs, counts, displs, MPI_CHAR, 0, MPI_COMM_WORLD);
    const char **strs = mallocCheck((size_t)n_total * sizeof(char *));
    for (int i = 0; i < n_total; i++) {
        msgs[(size_t)i * MSG + MSG - 1] = '\0';
        strs[i] = msgs + (size_t)i * MSG;
        if (e->rank == 0) cn_warn("image %lld: %s", (long long)rows[i], strs[i]);
    }
    int rc = h5out_write_strings_serial(&e->out, DS_IMG_ERROR, rows, strs, e->rank == 0 ? n_total : 0);
    free(strs);
    free(msgs);
    free(rows);
    free(counts);
    free(displs);
    return rc;
}

int eval_images(Eval *e) {
    const ShardPlan *p = &e->image_plan;
    const int R = e->model.cfg.image_size, D = (int)e->shape.dim, B = e->job.image_batch;
    const int64_t S = p->shard_size;
    progress_begin(&e->prog, "images", p->n_items, plan_rows_done(p, e->image_done));
    ImagePipe pp;
    pp.pool = threadpool_create(e->job.decode_threads);
    for (int k = 0; k < 2; k++) {
        pp.pix[k] = mallocCheck((size_t)B * 3 * R * R * sizeof(float));
        pp.tasks[k] = callocCheck((size_t)B, sizeof(DecodeTask));
    }
    pp.out = mallocCheck((size_t)B * D * sizeof(float));
    pp.keep = mallocCheck((size_t)B * sizeof(int));
    ImageShard is;
    is.status = mallocCheck((size_t)S);
    is.emb = mallocCheck((size_t)(S * D) * sizeof(float));
    is.err_rows = mallocCheck((size_t)S * sizeof(int64_t));
    is.err_msgs = mallocCheck((size_t)S * 512);
    int rc = CN_OK;
    for (int64_t r = 0; r < p->n_rounds && rc == CN_OK; r++) {
        if (plan_round_done(p, r, e->image_done)) continue;
        if ((rc = eval_round_begin(e, "images", r))) break;
        int64_t s = plan_shard(p, r, e->rank), i1 = 0;
        if (s >= 0 && e->image_done[s]) s = -1;
        plan_shard_rows(p, s, &is.i0, &i1);
        is.n = i1 - is.i0;
        is.n_err = 0;
        int local = is.n > 0 ? image_shard_compute(e, &pp, &is) : CN_OK;
        double ts = cn_now();
        if ((rc = eval_agree(local))) break;
        H5Out *o = &e->out;
        int w = h5out_write_rows(o, DS_IMG_STATUS, is.i0, is.n, is.status);
        w = eval_keep_first(w, h5out_write_rows(o, DS_EMB_IMAGE, is.i0, is.n, is.emb));
        // error messages (serial section: closes, so syncs, and reopens the file) before the flags;
        // a round without failures flushes instead (one sync either way, never two)
        int n_err = 0;
        MPI_Allreduce(&is.n_err, &n_err, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
        if (n_err == 0) w = eval_keep_first(w, h5out_flush(o));
        if ((rc = eval_agree(w))) break;
        if (n_err > 0 && (rc = eval_agree(write_round_errors(e, &is)))) break;
        eval_round_mid(e);
        if ((rc = eval_agree(h5out_mark_done(o, DS_PROG_IMAGE, s)))) break;
        eval_stage_add(e, STAGE_IO, ts);
        for (int k = 0; k < e->nranks; k++) {
            int64_t sk = plan_shard(p, r, k);
            if (sk >= 0) e->image_done[sk] = 1;
        }
        eval_round_end(e, plan_rows_done(p, e->image_done));
    }
    threadpool_destroy(pp.pool);
    for (int k = 0; k < 2; k++) {
        free(pp.pix[k]);
        free(pp.tasks[k]);
    }
    free(pp.out);
    free(pp.keep);
    free(is.status);
    free(is.emb);
    free(is.err_rows);
    free(is.err_msgs);
    if (rc == CN_OK) progress_end(&e->prog);
    return rc;
}
