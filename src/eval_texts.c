// eval_texts.c — phase (a): text shards. For each text row t = c * V + v of the rank's shard:
// render variant v of caption c, tokenize (truncation flagged), encode the rendered rows in batches
// of run.text_batch (batch composition fixed by the shard, so identical on any rank count; the
// next batch is rendered and tokenised on a worker thread while the current one encodes),
// L2-normalise, and write /texts/{status,n_tokens,truncated} and /embeddings/text rows collectively.
// The rendered strings themselves were written by rank 0 when the file was created (h5out.h says
// why), from the same deterministic variant_render calls.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/encoder.h"
#include "eval_internal.h"
#include "clipneg/threadpool.h"

typedef struct {
    int64_t t0, n; // rows [t0, t0 + n)
    int8_t *status, *truncated;
    int32_t *n_tokens;
    float *emb; // [n, D], NaN rows for texts not rendered
} TextShard;

// ---- render + tokenise on a worker thread, one batch ahead of the encoder ----------------------------
// A batch is the next run.text_batch RENDERED rows of the shard (rows whose variant does not apply
// are skipped), exactly as when the whole shard was tokenised first: batch composition depends on
// the shard only, never on timing or the rank count.
typedef struct {
    Eval *e;
    TextShard *ts;
    int64_t next;     // next shard row to render (only the task touches it while it runs)
    int32_t *ids[2];  // [B, ctx] per slot
    int64_t *rows[2]; // [B] shard rows of the slot's batch
    int n[2];         // texts in the slot's batch
    int slot;         // slot the running task fills
    int rc;           // the task's failure (its message in err: cn_fail's buffer is per thread)
    double secs;      // time the tasks took
    char err[1024];
} TextPipe;

static void tokenize_task(void *arg) {
    TextPipe *tp = arg;
    Eval *e = tp->e;
    TextShard *ts = tp->ts;
    const double t0 = cn_now();
    const int V = e->vs.n, ctx = e->model.cfg.context_length, B = e->job.text_batch, s = tp->slot;
    int m = 0;
    for (; tp->next < ts->n && m < B; tp->next++) {
        const int64_t i = tp->next, t = ts->t0 + i;
        const int c = (int)(t / V), v = (int)(t % V);
        char *text = NULL;
        int st = variant_render(&e->vs.items[v], &e->ds, c, e->job.seed, &text);
        ts->status[i] = (int8_t)st;
        ts->truncated[i] = 0;
        ts->n_tokens[i] = 0;
        if (st != TEXT_OK) continue;
        int trunc = 0;
        int32_t *row = tp->ids[s] + (size_t)m * ctx;
        memset(row, 0, (size_t)ctx * sizeof(int32_t));
        int nt = tokenizer_encode(e->tok, text, ctx, row, &trunc);
        free(text);
        if (nt < 2 || nt > ctx) {
            tp->rc = cn_fail(CN_E_INTERNAL, "text row %lld (caption %d, variant %s): tokenizer returned %d ids",
                             (long long)t, c, e->vs.items[v].name, nt);
            snprintf(tp->err, sizeof tp->err, "%s", cn_last_error());
            break;
        }
        ts->n_tokens[i] = nt;
        ts->truncated[i] = (int8_t)(trunc != 0);
        tp->rows[s][m++] = i;
    }
    tp->n[s] = m;
    tp->secs += cn_now() - t0;
}

// Render + tokenize + encode one shard. Local work only (no MPI, no HDF5). The tokeniser thread
// fills one slot while the encoder works on the other.
static int text_shard_compute(Eval *e, ThreadPool *pool, TextShard *ts) {
    const int D = (int)e->shape.dim, ctx = e->model.cfg.context_length, B = e->job.text_batch;
    for (int64_t k = 0; k < ts->n * D; k++) ts->emb[k] = NAN;
    TextPipe tp = {.e = e, .ts = ts};
    for (int k = 0; k < 2; k++) {
        tp.ids[k] = mallocCheck((size_t)B * ctx * sizeof(int32_t));
        tp.rows[k] = mallocCheck((size_t)B * sizeof(int64_t));
    }
    float *out = mallocCheck((size_t)B * D * sizeof(float));
    threadpool_submit(pool, tokenize_task, &tp);
    int rc = CN_OK;
    for (int k = 0;; k ^= 1) {
        double t0 = cn_now();
        threadpool_wait(pool); // slot k is filled
        t0 = eval_stage_add(e, STAGE_TOKENIZE, t0);
        if (tp.rc != CN_OK) {
            rc = cn_fail(tp.rc, "%s", tp.err);
            break;
        }
        const int nb = tp.n[k];
        if (nb == 0) break; // the shard is done
        tp.slot = k ^ 1;
        threadpool_submit(pool, tokenize_task, &tp); // the next batch, while this one encodes
        rc = e->be->encode_texts(e->be, tp.ids[k], nb, out);
        eval_stage_add(e, STAGE_TEXT_TOWER, t0);
        if (rc != CN_OK) break;
        l2_normalize_rows(out, nb, D);
        for (int j = 0; j < nb; j++)
            memcpy(ts->emb + tp.rows[k][j] * D, out + (size_t)j * D, (size_t)D * sizeof(float));
    }
    threadpool_wait(pool); // nothing may touch tp after we return
    for (int k = 0; k < 2; k++) {
        free(tp.ids[k]);
        free(tp.rows[k]);
    }
    free(out);
    return rc;
}

int eval_texts(Eval *e) {
    const ShardPlan *p = &e->text_plan;
    const int64_t D = e->shape.dim, S = p->shard_size;
    progress_begin(&e->prog, "texts", p->n_items, plan_rows_done(p, e->text_done));
    TextShard ts;
    ts.status = mallocCheck((size_t)S);
    ts.truncated = mallocCheck((size_t)S);
    ts.n_tokens = mallocCheck((size_t)S * sizeof(int32_t));
    ts.emb = mallocCheck((size_t)(S * D) * sizeof(float));
    ThreadPool *pool = threadpool_create(1); // the tokeniser thread (never calls MPI or HDF5)
    int rc = CN_OK;
    for (int64_t r = 0; r < p->n_rounds && rc == CN_OK; r++) {
        if (plan_round_done(p, r, e->text_done)) continue;
        if ((rc = eval_round_begin(e, "texts", r))) break;
        int64_t s = plan_shard(p, r, e->rank), t1 = 0;
        if (s >= 0 && e->text_done[s]) s = -1; // done by an earlier run: select none
        plan_shard_rows(p, s, &ts.t0, &t1);
        ts.n = t1 - ts.t0;
        int local = ts.n > 0 ? text_shard_compute(e, pool, &ts) : CN_OK;
        double t0 = cn_now();
        if ((rc = eval_agree(local))) break;
        H5Out *o = &e->out;
        int w = h5out_write_rows(o, DS_TXT_STATUS, ts.t0, ts.n, ts.status);
        w = eval_keep_first(w, h5out_write_rows(o, DS_TXT_N_TOKENS, ts.t0, ts.n, ts.n_tokens));
        w = eval_keep_first(w, h5out_write_rows(o, DS_TXT_TRUNCATED, ts.t0, ts.n, ts.truncated));
        w = eval_keep_first(w, h5out_write_rows(o, DS_EMB_TEXT, ts.t0, ts.n, ts.emb));
        // the data reaches the file before the flags that say it is there
        w = eval_keep_first(w, h5out_flush(o));
        if ((rc = eval_agree(w))) break;
        eval_round_mid(e);
        // no flush after the flags: the next round's flush (or the close) syncs them, and a flag
        // lost in a node crash only means its shard is recomputed
        if ((rc = eval_agree(h5out_mark_done(o, DS_PROG_TEXT, s)))) break;
        eval_stage_add(e, STAGE_IO, t0);
        for (int k = 0; k < e->nranks; k++) {
            int64_t sk = plan_shard(p, r, k);
            if (sk >= 0) e->text_done[sk] = 1;
        }
        eval_round_end(e, plan_rows_done(p, e->text_done));
    }
    threadpool_destroy(pool);
    free(ts.status);
    free(ts.truncated);
    free(ts.n_tokens);
    free(ts.emb);
    if (rc == CN_OK) progress_end(&e->prog);
    return rc;
}
