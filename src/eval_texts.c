// eval_texts.c — phase (a): text shards. For each text row t = c * V + v of the rank's shard:
// render variant v of caption c, tokenize (truncation flagged), encode the rendered rows in batches
// of run.text_batch (batch composition fixed by the shard, so identical on any rank count),
// L2-normalise, and write /texts/{status,n_tokens,truncated} and /embeddings/text rows collectively.
// The rendered strings themselves were written by rank 0 when the file was created (h5out.h says
// why), from the same deterministic variant_render calls.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/encoder.h"
#include "eval_internal.h"

typedef struct {
    int64_t t0, n; // rows [t0, t0 + n)
    int8_t *status, *truncated;
    int32_t *n_tokens;
    float *emb; // [n, D], NaN rows for texts not rendered
} TextShard;

// Render + tokenize + encode one shard. Local work only (no MPI, no HDF5).
static int text_shard_compute(Eval *e, TextShard *ts) {
    const int V = e->vs.n, D = (int)e->shape.dim, ctx = e->model.cfg.context_length;
    const int64_t n = ts->n;
    int32_t *ids = callocCheck((size_t)(n * ctx + 1), sizeof(int32_t));
    int64_t *rows = mallocCheck((size_t)(n + 1) * sizeof(int64_t)); // shard rows that were rendered
    int64_t n_ok = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t t = ts->t0 + i;
        int c = (int)(t / V), v = (int)(t % V);
        char *text = NULL;
        int st = variant_render(&e->vs.items[v], &e->ds, c, e->job.seed, &text);
        ts->status[i] = (int8_t)st;
        ts->truncated[i] = 0;
        ts->n_tokens[i] = 0;
        if (st != TEXT_OK) continue;
        int trunc = 0;
        int nt = tokenizer_encode(e->tok, text, ctx, ids + n_ok * ctx, &trunc);
        free(text);
        if (nt < 2 || nt > ctx) {
            free(ids);
            free(rows);
            return cn_fail(CN_E_INTERNAL, "text row %lld (caption %d, variant %s): tokenizer returned %d ids",
                           (long long)t, c, e->vs.items[v].name, nt);
        }
        ts->n_tokens[i] = nt;
        ts->truncated[i] = (int8_t)(trunc != 0);
        rows[n_ok++] = i;
    }
    for (int64_t k = 0; k < n * D; k++) ts->emb[k] = NAN;
    const int B = e->job.text_batch;
    float *out = mallocCheck((size_t)B * D * sizeof(float));
    int rc = CN_OK;
    for (int64_t b0 = 0; b0 < n_ok && rc == CN_OK; b0 += B) {
        int nb = (int)CN_MIN((int64_t)B, n_ok - b0);
        rc = e->be->encode_texts(e->be, ids + b0 * ctx, nb, out);
        if (rc != CN_OK) break;
        l2_normalize_rows(out, nb, D);
        for (int k = 0; k < nb; k++) memcpy(ts->emb + rows[b0 + k] * D, out + (size_t)k * D, (size_t)D * sizeof(float));
    }
    free(out);
    free(ids);
    free(rows);
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
    int rc = CN_OK;
    for (int64_t r = 0; r < p->n_rounds && rc == CN_OK; r++) {
        if (plan_round_done(p, r, e->text_done)) continue;
        if ((rc = eval_round_begin(e, "texts", r))) break;
        int64_t s = plan_shard(p, r, e->rank), t1 = 0;
        if (s >= 0 && e->text_done[s]) s = -1; // done by an earlier run: select none
        plan_shard_rows(p, s, &ts.t0, &t1);
        ts.n = t1 - ts.t0;
        int local = ts.n > 0 ? text_shard_compute(e, &ts) : CN_OK;
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
        for (int k = 0; k < e->nranks; k++) {
            int64_t sk = plan_shard(p, r, k);
            if (sk >= 0) e->text_done[sk] = 1;
        }
        eval_round_end(e, plan_rows_done(p, e->text_done));
    }
    free(ts.status);
    free(ts.truncated);
    free(ts.n_tokens);
    free(ts.emb);
    if (rc == CN_OK) progress_end(&e->prog);
    return rc;
}
