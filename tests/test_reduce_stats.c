// test_reduce_stats.c — the numeric building blocks of `clipneg reduce` / `export-tsne`, checked
// against direct (brute-force, two-pass, closed-form) computations and published reference values.
// No MPI, no files: the end-to-end checks against numpy are tests/python/test_reduce.py.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/reduce.h"
#include "clipneg/tsne_export.h"
#include "test_check.h"

static uint64_t rng_state = 42;
static double urand(void) { return (double)(splitmix64_at(42, rng_state++) >> 11) / 9007199254740992.0; }

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// splitmix64: Vigna's reference generator seeded with 1234567 gives these first five outputs.
static void test_splitmix(void) {
    const uint64_t expect[5] = {6457827717110365317ULL, 3203168211198807973ULL, 9817491932198370423ULL,
                                4593380528125082431ULL, 16408922859458223821ULL};
    for (int j = 0; j < 5; j++)
        CHECK_MSG(splitmix64_at(1234567, (uint64_t)j) == expect[j], "splitmix64 draw %d", j);
    CHECK_MSG(bootstrap_key(0, 1, 2) == splitmix64_at(splitmix64_at(0, 1), 2), "bootstrap key formula");
}

// Welford + Chan merge in blocks == two-pass mean/variance; merging order changes only rounding.
static void test_moments(void) {
    enum { N = 10007 };
    double *x = malloc(sizeof(double) * N), sum = 0, ss = 0;
    for (int i = 0; i < N; i++) sum += (x[i] = 0.25 + 0.1 * (urand() - 0.5));
    double mean = sum / N;
    for (int i = 0; i < N; i++) ss += (x[i] - mean) * (x[i] - mean);
    double sd = sqrt(ss / (N - 1));
    Moments all, merged, blk;
    moments_init(&all);
    moments_init(&merged);
    for (int i = 0; i < N; i++) moments_add(&all, x[i]);
    for (int b = 0; b < N; b += 333) {
        moments_init(&blk);
        for (int i = b; i < b + 333 && i < N; i++) moments_add(&blk, x[i]);
        moments_merge(&merged, &blk);
    }
    CHECK_MSG(all.n == N && merged.n == N, "counts");
    CHECK_MSG(fabs(all.mean - mean) < 1e-13 * mean && fabs(merged.mean - mean) < 1e-13 * mean, "mean %.17g %.17g vs %.17g", all.mean,
          merged.mean, mean);
    CHECK_MSG(fabs(moments_std(&all) - sd) < 1e-13 * sd && fabs(moments_std(&merged) - sd) < 1e-13 * sd, "std");
    double mn = x[0], mx = x[0];
    for (int i = 1; i < N; i++) mn = fmin(mn, x[i]), mx = fmax(mx, x[i]);
    CHECK_MSG(merged.min == mn && merged.max == mx, "min/max");
    Moments one;
    moments_init(&one);
    moments_add(&one, 0.5);
    CHECK_MSG(isnan(moments_std(&one)), "std of one value is NaN (ddof = 1)");
    moments_init(&blk);
    moments_merge(&one, &blk);  // merging an empty block changes nothing
    CHECK_MSG(one.n == 1 && one.mean == 0.5, "empty merge");
    free(x);
}

static void test_hist_and_quantiles(void) {
    CHECK_MSG(hist_bin(-1.0, 400) == 0 && hist_bin(1.0, 400) == 399 && hist_bin(-1.5, 400) == 0 && hist_bin(7, 400) == 399,
          "edges clamp");
    CHECK_MSG(hist_bin(0.0, 400) == 200 && hist_bin(-0.00390625, 400) == 199 && hist_bin(0.0078125, 400) == 201, "bins around 0");
    // quantiles from a 20000-bin histogram are within half a bin (5e-5) of numpy's linear quantile
    enum { N = 5001 };
    double *x = malloc(sizeof(double) * N);
    int64_t *h = calloc(REDUCE_FINE_BINS, sizeof(int64_t));
    for (int i = 0; i < N; i++) {
        x[i] = 0.3 * sin(i * 0.37) + 0.05 * urand();
        h[hist_bin(x[i], REDUCE_FINE_BINS)]++;
    }
    qsort(x, N, sizeof(double), cmp_d);
    const double qs[] = {0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0};
    for (int k = 0; k < 7; k++) {
        double exact = quantile_sorted(x, N, qs[k]);
        double approx = hist_quantile(h, REDUCE_FINE_BINS, N, qs[k], x[0], x[N - 1]);
        CHECK_MSG(fabs(exact - approx) <= 5e-5 + 1e-12, "q%.2f: hist %.6f exact %.6f", qs[k], approx, exact);
    }
    CHECK_MSG(quantile_sorted(x, N, 0.0) == x[0] && quantile_sorted(x, N, 1.0) == x[N - 1], "quantile ends");
    const double four[4] = {1, 2, 3, 4};  // numpy.quantile([1,2,3,4], [.25,.5,.9]) = 1.75, 2.5, 3.7
    CHECK_MSG(fabs(quantile_sorted(four, 4, 0.25) - 1.75) < 1e-15 && fabs(quantile_sorted(four, 4, 0.5) - 2.5) < 1e-15 &&
              fabs(quantile_sorted(four, 4, 0.9) - 3.7) < 1e-15,
          "numpy linear quantile");
    CHECK_MSG(isnan(quantile_sorted(four, 0, 0.5)) && isnan(hist_quantile(h, REDUCE_FINE_BINS, 0, 0.5, 0, 0)), "empty -> NaN");
    free(x);
    free(h);
}

static void test_contrast(void) {
    ContrastCounts cc;
    contrast_init(&cc);
    const float base[] = {0.3f, 0.2f, 0.25f, NAN, 0.1f};
    const float neg[] = {0.31f, 0.1f, 0.25f, 0.2f, NAN};
    for (int i = 0; i < 5; i++) contrast_add(&cc, base[i], neg[i]);
    CHECK_MSG(cc.n_pairs == 3 && cc.n_flips == 1 && cc.n_wins == 1 && cc.n_ties == 1, "flips/wins/ties %lld %lld %lld",
          (long long)cc.n_flips, (long long)cc.n_wins, (long long)cc.n_ties);
    double d[3] = {(double)0.31f - 0.3f, (double)0.1f - 0.2f, 0.0};
    double m = (d[0] + d[1] + d[2]) / 3, s = 0;
    for (int i = 0; i < 3; i++) s += (d[i] - m) * (d[i] - m);
    CHECK_MSG(fabs(contrast_cohens_d(&cc) - m / sqrt(s / 2)) < 1e-12, "Cohen's d_z");
    // bootstrap: deterministic, centred on the mean, about +-1.96 standard errors wide
    enum { N = 2000 };
    double *x = malloc(sizeof(double) * N), mean = 0, var = 0;
    for (int i = 0; i < N; i++) mean += (x[i] = urand() - 0.3);
    mean /= N;
    for (int i = 0; i < N; i++) var += (x[i] - mean) * (x[i] - mean);
    double se = sqrt(var / (N - 1) / N), lo, hi, lo2, hi2;
    bootstrap_ci(x, N, 1000, 7, 3, &lo, &hi);
    bootstrap_ci(x, N, 1000, 7, 3, &lo2, &hi2);
    CHECK_MSG(lo == lo2 && hi == hi2, "bootstrap deterministic");
    CHECK_MSG(lo < mean && mean < hi && fabs((hi - lo) / (2 * 1.96 * se) - 1) < 0.15, "CI [%g, %g] mean %g se %g", lo, hi,
          mean, se);
    bootstrap_ci(x, N, 1000, 8, 3, &lo2, &hi2);
    CHECK_MSG(lo != lo2, "another seed, another CI");
    free(x);
}

// Brute force: candidates strictly above own < k.
static int brute_hit(const float *v, int n, float own, int k) {
    int above = 0;
    for (int i = 0; i < n; i++) above += v[i] > own;
    return above < k;
}

static void test_topk(void) {
    for (int trial = 0; trial < 200; trial++) {
        int n = 1 + (int)(urand() * 40);
        float v[64];
        for (int i = 0; i < n; i++) v[i] = (float)((int)(urand() * 12)) / 8.0f;  // many ties
        int own_i = (int)(urand() * n);
        TopK a, b, c;
        topk_init(&a);
        topk_init(&b);
        topk_init(&c);
        for (int i = 0; i < n; i++) {
            topk_push(&a, v[i]);
            topk_push(i % 3 ? &b : &c, v[i]);  // split in two parts, pushed in another grouping
        }
        topk_push(&a, NAN);  // ignored
        a.own = b.own = v[own_i];
        topk_merge(&c, &b);
        CHECK_MSG(c.n == a.n && memcmp(c.top, a.top, sizeof(float) * (size_t)a.n) == 0, "merge == sequential");
        for (int k = 1; k <= REDUCE_MAX_K; k++) {
            CHECK_MSG(topk_hit(&a, k) == brute_hit(v, n, v[own_i], k), "hit@%d trial %d", k, trial);
            CHECK_MSG(topk_hit(&c, k) == brute_hit(v, n, v[own_i], k), "merged hit@%d trial %d", k, trial);
        }
    }
    TopK t;
    topk_init(&t);
    topk_push(&t, 0.5f);
    CHECK_MSG(topk_hit(&t, 1) == 0, "no own similarity: not a query");
}

static void test_similarity_tile(void) {
    enum { I = 37, T = 45, D = 29 };
    float *A = malloc(sizeof(float) * I * D), *B = malloc(sizeof(float) * T * D), *S = malloc(sizeof(float) * I * T);
    for (int i = 0; i < I * D; i++) A[i] = (float)(urand() - 0.5);
    for (int i = 0; i < T * D; i++) B[i] = (float)(urand() - 0.5);
    A[5 * D + 3] = NAN;
    similarity_tile(A, I, B, T, D, S);
    double worst = 0;
    for (int i = 0; i < I; i++)
        for (int t = 0; t < T; t++) {
            double ref = 0;
            for (int d = 0; d < D; d++) ref += (double)A[i * D + d] * B[t * D + d];
            if (i == 5)
                CHECK_MSG(isnan(S[i * T + t]), "NaN row propagates");
            else
                worst = fmax(worst, fabs(S[i * T + t] - ref));
        }
    CHECK_MSG(worst < 1e-5, "tile vs float64 dot: max |diff| %g", worst);
    // the same pair gives the same float whatever tile it sits in
    float one;
    similarity_tile(A + 7 * D, 1, B + 11 * D, 1, D, &one);
    CHECK_MSG(one == S[7 * T + 11], "position independent");
    free(A);
    free(B);
    free(S);
}

static void test_tsne_pieces(void) {
    int64_t q[TSNE_KINDS];
    const int64_t a1[TSNE_KINDS] = {79, 395, 1633, 0};
    tsne_quotas(a1, 1500, q);
    CHECK_MSG(q[0] == 79 && q[1] == 395 && q[2] == 1026 && q[3] == 0, "water filling %lld %lld %lld", (long long)q[0],
          (long long)q[1], (long long)q[2]);
    const int64_t a2[TSNE_KINDS] = {5000, 25000, 100000, 0};
    tsne_quotas(a2, 5000, q);
    CHECK_MSG(q[0] == 1667 && q[1] == 1667 && q[2] == 1666, "equal shares %lld %lld %lld", (long long)q[0],
          (long long)q[1], (long long)q[2]);
    tsne_quotas(a2, 0, q);
    CHECK_MSG(q[0] == 5000 && q[1] == 25000 && q[2] == 100000, "0 = all");
    int64_t pick[50];
    tsne_sample(1000, 50, 99, pick);
    for (int i = 1; i < 50; i++) CHECK_MSG(pick[i] > pick[i - 1] && pick[i] < 1000, "sorted, distinct, in range");
    // The stored-swaps shuffle picks exactly what the textbook array version picks (the sample, and
    // so /tsne, must not change with the implementation): reference written out here.
    for (int t = 0; t < 4; t++) {
        const int64_t n = t == 0 ? 1000 : t == 1 ? 7 : t == 2 ? 100000 : 5000, k = t == 0 ? 50 : t == 1 ? 6 : t == 2 ? 3000 : 4999;
        int64_t *a = malloc(sizeof(int64_t) * (size_t)n), *ref = malloc(sizeof(int64_t) * (size_t)k);
        int64_t *got = malloc(sizeof(int64_t) * (size_t)k);
        for (int64_t i = 0; i < n; i++) a[i] = i;
        for (int64_t j = 0; j < k; j++) {
            int64_t r = j + (int64_t)(splitmix64_at(1234 + (uint64_t)t, (uint64_t)j) % (uint64_t)(n - j));
            int64_t x = a[j];
            a[j] = a[r], a[r] = x;
        }
        for (int64_t j = 0; j < k; j++) ref[j] = a[j];
        for (int64_t j = 1; j < k; j++)  // insertion sort: the reference stays independent of qsort
            for (int64_t i = j; i > 0 && ref[i] < ref[i - 1]; i--) {
                int64_t x = ref[i];
                ref[i] = ref[i - 1], ref[i - 1] = x;
            }
        tsne_sample(n, k, 1234 + (uint64_t)t, got);
        int same = 1;
        for (int64_t j = 0; j < k; j++) same &= got[j] == ref[j];
        CHECK_MSG(same, "tsne_sample == array Fisher-Yates (n %lld, k %lld)", (long long)n, (long long)k);
        free(a), free(ref), free(got);
    }
    // PCA: eigenpairs of a symmetric matrix with known spectrum, signs by the largest loading
    enum { D = 4 };
    double C[D * D] = {4, 1, 0, 0, 1, 4, 0, 0, 0, 0, 2, 0, 0, 0, 0, -1};  // eigenvalues 5, 3, 2, -1
    double comp[2 * D], ev[2];
    CHECK_MSG(pca_top_k(C, D, 2, comp, ev) == 0, "dsyevd");
    CHECK_MSG(fabs(ev[0] - 5) < 1e-12 && fabs(ev[1] - 3) < 1e-12, "eigenvalues %g %g", ev[0], ev[1]);
    double r = sqrt(0.5);
    CHECK_MSG(fabs(comp[0] - r) < 1e-12 && fabs(comp[1] - r) < 1e-12 && fabs(comp[2]) < 1e-12, "first component");
    CHECK_MSG(fabs(fabs(comp[D]) - r) < 1e-12 && fabs(comp[D] + comp[D + 1]) < 1e-12, "second component");
    for (int k = 0; k < 2; k++) {  // sign rule: the largest |loading| is positive (ties: either, by rounding)
        double big = 0;
        for (int d = 0; d < D; d++) big = fmax(big, comp[k * D + d]);
        for (int d = 0; d < D; d++) CHECK_MSG(-comp[k * D + d] < big + 1e-12, "component %d sign", k);
    }
    double Xc[3 * 2] = {1, 2, -1, 0, 0, -2}, acc[4] = {0, 0, 0, 0};
    pca_accumulate(Xc, 3, 2, acc);
    CHECK_MSG(acc[0] == 2 && acc[1] == 2 && acc[3] == 8 && acc[2] == 0, "X^T X upper triangle");
}

int main(void) {
    test_splitmix();
    test_moments();
    test_hist_and_quantiles();
    test_contrast();
    test_topk();
    test_similarity_tile();
    test_tsne_pieces();
    if (g_failures) {
        fprintf(stderr, "%d check(s) failed\n", g_failures);
        return 1;
    }
    printf("reduce_stats: all checks passed\n");
    return 0;
}
