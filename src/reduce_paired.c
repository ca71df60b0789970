// reduce_paired.c — everything `clipneg reduce` derives from /similarity/paired [N_cap, V]:
// per-variant moments, histograms and quantiles, and each negative variant's contrast with the base.
//
// Parallel plan (result independent of the rank count):
//   captions are cut into fixed global blocks of `block_rows`; each rank takes a contiguous run of
//   blocks and computes one partial state per block; the per-block states are all-gathered (a copy,
//   no arithmetic) and every rank merges them in block order. Histograms are integer counts
//   (summed exactly in any order). The bootstrap sees the differences in caption order.
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/reduce.h"

// One block's partial state per variant, flattened to doubles for the all-gather.
enum { S_N, S_MEAN, S_M2, S_MIN, S_MAX, C_PAIRS, C_FLIPS, C_WINS, C_TIES, C_N, C_MEAN, C_M2, C_MIN, C_MAX, STATE_LEN };

static void pack(double *s, const Moments *m, const ContrastCounts *cc) {
    s[S_N] = (double)m->n, s[S_MEAN] = m->mean, s[S_M2] = m->m2, s[S_MIN] = m->min, s[S_MAX] = m->max;
    s[C_PAIRS] = (double)cc->n_pairs, s[C_FLIPS] = (double)cc->n_flips, s[C_WINS] = (double)cc->n_wins;
    s[C_TIES] = (double)cc->n_ties;
    s[C_N] = (double)cc->diff.n, s[C_MEAN] = cc->diff.mean, s[C_M2] = cc->diff.m2;
    s[C_MIN] = cc->diff.min, s[C_MAX] = cc->diff.max;
}

static void unpack(const double *s, Moments *m, ContrastCounts *cc) {
    m->n = (int64_t)s[S_N], m->mean = s[S_MEAN], m->m2 = s[S_M2], m->min = s[S_MIN], m->max = s[S_MAX];
    cc->n_pairs = (int64_t)s[C_PAIRS], cc->n_flips = (int64_t)s[C_FLIPS], cc->n_wins = (int64_t)s[C_WINS];
    cc->n_ties = (int64_t)s[C_TIES];
    cc->diff.n = (int64_t)s[C_N], cc->diff.mean = s[C_MEAN], cc->diff.m2 = s[C_M2];
    cc->diff.min = s[C_MIN], cc->diff.max = s[C_MAX];
}

// One negative variant's paired differences (neg - base, as doubles: exact for float32 inputs), in
// caption order, over all captions: the bootstrap's input. Every rank reads them from the file
// itself, one variant at a time, so a rank holds 8 bytes per caption for one variant (not for all
// of them, plus a gathered copy); the values and their order are those of the rank-order gather
// this replaces, so the resamples are unchanged.
static int read_diffs(hid_t file, int64_t n_cap, int64_t block, int V, int base, int v, float *rows,
                      double **out, int64_t *n_out) {
    double *d = mallocCheck(sizeof(double) * (size_t)(n_cap > 0 ? n_cap : 1));
    int64_t n = 0;
    int rc = CN_OK;
    ContrastCounts scratch;  // (contrast_add says which pairs count: both values present)
    contrast_init(&scratch);
    for (int64_t r0 = 0; r0 < n_cap && rc == CN_OK; r0 += block) {
        int64_t nr = CN_MIN(block, n_cap - r0);
        rc = rio_read(file, "/similarity/paired", H5T_NATIVE_FLOAT, r0, nr, 0, V, rows);
        for (int64_t i = 0; rc == CN_OK && i < nr; i++)
            if (contrast_add(&scratch, rows[i * V + base], rows[i * V + v]))
                d[n++] = (double)rows[i * V + v] - (double)rows[i * V + base];
    }
    *out = d, *n_out = n;
    return rc;
}

// A negative variant compared with the base (the positive caption).
static int is_contrast(const ReduceResult *r, int v) { return r->base >= 0 && r->polarity[v] == 1 && v != r->base; }

int reduce_paired_stats(hid_t file, const ReduceOptions *o, ReduceResult *r) {
    const int V = r->V, base = r->base;
    int nd;
    int64_t dims[2];
    int rc = rio_shape(file, "/similarity/paired", &nd, dims);
    if (rc) return rc;
    if (nd != 2 || dims[1] != V || dims[0] != r->n_captions)
        return cn_fail(CN_E_DATA, "%s: /similarity/paired has shape [%lld, %lld], expected [N_cap=%lld, V=%d]",
                       o->path, (long long)dims[0], (long long)dims[1], (long long)r->n_captions, V);
    const int64_t n_cap = dims[0];
    const int64_t block = o->block_rows > 0 ? o->block_rows : REDUCE_BLOCK_ROWS;
    const int64_t n_blocks = CN_CEIL_DIV(n_cap, block);
    int64_t b0, b1;
    split_range(n_blocks, cn_rank(), cn_nranks(), &b0, &b1);

    double *states = callocCheck((size_t)(n_blocks > 0 ? n_blocks : 1) * (size_t)V, STATE_LEN * sizeof(double));
    int64_t *fine = callocCheck((size_t)V * REDUCE_FINE_BINS, sizeof(int64_t));
    int64_t *coarse = callocCheck((size_t)V * REDUCE_HIST_BINS, sizeof(int64_t));
    float *rows = mallocCheck(sizeof(float) * (size_t)(block * V));

    for (int64_t b = b0; b < b1 && rc == CN_OK; b++) {
        int64_t r0 = b * block, nr = CN_MIN(block, n_cap - r0);
        rc = rio_read(file, "/similarity/paired", H5T_NATIVE_FLOAT, r0, nr, 0, V, rows);
        if (rc) break;
        for (int v = 0; v < V; v++) {
            Moments m;
            ContrastCounts cc;
            moments_init(&m);
            contrast_init(&cc);
            int64_t *fv = fine + (size_t)v * REDUCE_FINE_BINS, *hv = coarse + (size_t)v * REDUCE_HIST_BINS;
            for (int64_t i = 0; i < nr; i++) {
                float s = rows[i * V + v];
                if (isnan(s)) continue;
                moments_add(&m, s);
                fv[hist_bin(s, REDUCE_FINE_BINS)]++;
                hv[hist_bin(s, REDUCE_HIST_BINS)]++;
                if (is_contrast(r, v)) contrast_add(&cc, rows[i * V + base], s);
            }
            pack(states + ((size_t)b * V + v) * STATE_LEN, &m, &cc);
        }
    }
    // A read error on one rank must stop every rank before the collectives below.
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (worst != CN_OK) {
        if (rc == CN_OK) rc = cn_fail(worst, "another rank failed reading /similarity/paired");
        goto done;
    }
    allgather_items(states, n_blocks, V * STATE_LEN);
    MPI_Allreduce(MPI_IN_PLACE, fine, V * REDUCE_FINE_BINS, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, coarse, V * REDUCE_HIST_BINS, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    memcpy(r->hist, coarse, sizeof(int64_t) * (size_t)V * REDUCE_HIST_BINS);

    for (int v = 0; v < V; v++) {
        Moments m;
        ContrastCounts cc;
        moments_init(&m);
        contrast_init(&cc);
        for (int64_t b = 0; b < n_blocks; b++) {  // fixed order: block 0, 1, 2, ...
            Moments mb;
            ContrastCounts cb;
            unpack(states + ((size_t)b * V + v) * STATE_LEN, &mb, &cb);
            moments_merge(&m, &mb);
            cc.n_pairs += cb.n_pairs, cc.n_flips += cb.n_flips, cc.n_wins += cb.n_wins, cc.n_ties += cb.n_ties;
            moments_merge(&cc.diff, &cb.diff);
        }
        r->count[v] = m.n;
        r->mean[v] = m.n > 0 ? m.mean : NAN;
        r->std[v] = moments_std(&m);
        r->min[v] = m.n > 0 ? m.min : NAN;
        r->max[v] = m.n > 0 ? m.max : NAN;
        const int64_t *fv = fine + (size_t)v * REDUCE_FINE_BINS;
        // Quantiles come from bins over [-1, 1]; a value far outside means the similarities are not
        // cosines, and the quantiles would be wrong: leave them NaN and say so.
        int in_range = m.n == 0 || (m.min >= -1.001 && m.max <= 1.001);
        if (!in_range)
            cn_log("warning: variant '%s' has similarities in [%g, %g], outside [-1, 1]: quantiles left NaN",
                   r->names[v], m.min, m.max);
        double *q[5] = {&r->q05[v], &r->q25[v], &r->median[v], &r->q75[v], &r->q95[v]};
        const double qs[5] = {0.05, 0.25, 0.5, 0.75, 0.95};
        for (int k = 0; k < 5; k++)
            *q[k] = in_range ? hist_quantile(fv, REDUCE_FINE_BINS, m.n, qs[k], m.min, m.max) : NAN;

        if (!(is_contrast(r, v))) {  // not a negative variant (or the base itself): no contrast
            r->n_pairs[v] = r->n_flips[v] = r->n_wins[v] = r->n_ties[v] = -1;
            r->flip_share[v] = r->neg_accuracy[v] = r->mean_diff[v] = r->std_diff[v] = NAN;
            r->cohens_d[v] = r->ci_low[v] = r->ci_high[v] = NAN;
            continue;
        }
        double np = (double)cc.n_pairs;
        r->n_pairs[v] = cc.n_pairs, r->n_flips[v] = cc.n_flips, r->n_wins[v] = cc.n_wins, r->n_ties[v] = cc.n_ties;
        r->flip_share[v] = cc.n_pairs > 0 ? (double)cc.n_flips / np : NAN;
        r->neg_accuracy[v] = cc.n_pairs > 0 ? (double)cc.n_wins / np : NAN;
        r->mean_diff[v] = cc.n_pairs > 0 ? cc.diff.mean : NAN;
        r->std_diff[v] = moments_std(&cc.diff);
        r->cohens_d[v] = contrast_cohens_d(&cc);
        int64_t n_all;
        double *all;
        rc = read_diffs(file, n_cap, block, V, base, v, rows, &all, &n_all);
        MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);  // (bootstrap_ci is collective)
        if (worst != CN_OK) {
            free(all);
            if (rc == CN_OK) rc = cn_fail(worst, "another rank failed reading /similarity/paired");
            goto done;
        }
        if (n_all != cc.n_pairs) cn_die(CN_E_INTERNAL, "bootstrap input has %lld pairs, counted %lld",
                                        (long long)n_all, (long long)cc.n_pairs);
        bootstrap_ci(all, n_all, o->bootstrap, o->seed, v, &r->ci_low[v], &r->ci_high[v]);
        free(all);
    }
done:
    free(rows);
    free(states);
    free(fine);
    free(coarse);
    return rc;
}
