// reduce_contrast.c — negative variant vs positive base, caption by caption: flips, negation
// accuracy, the paired difference and its bootstrap confidence interval (docs/reduce.md).
#include <math.h>
#include <stdlib.h>

#include "clipneg/common.h"
#include "clipneg/reduce.h"

void contrast_init(ContrastCounts *cc) {
    cc->n_pairs = cc->n_flips = cc->n_wins = cc->n_ties = 0;
    moments_init(&cc->diff);
}

int contrast_add(ContrastCounts *cc, float base, float neg) {
    if (isnan(base) || isnan(neg)) return 0;
    cc->n_pairs++;
    // Compare the stored float32 values themselves: exact, no rounding of a difference involved.
    if (neg > base)
        cc->n_flips++;
    else if (base > neg)
        cc->n_wins++;
    else
        cc->n_ties++;
    moments_add(&cc->diff, (double)neg - (double)base);
    return 1;
}

double contrast_cohens_d(const ContrastCounts *cc) {
    double sd = moments_std(&cc->diff);
    if (isnan(sd) || sd == 0.0) return NAN;
    return cc->diff.mean / sd;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void bootstrap_ci(const double *x, int64_t n, int n_resamples, uint64_t seed, int variant, double *lo,
                  double *hi) {
    *lo = *hi = NAN;
    if (n <= 0 || n_resamples <= 0) return;
    double *means = callocCheck((size_t)n_resamples, sizeof(double));
    int64_t r0, r1;
    split_range(n_resamples, cn_rank(), cn_nranks(), &r0, &r1);
    for (int64_t r = r0; r < r1; r++) means[r] = bootstrap_resample_mean(x, n, bootstrap_key(seed, variant, r));
    allgather_items(means, n_resamples, 1);
    qsort(means, (size_t)n_resamples, sizeof(double), cmp_double);
    *lo = quantile_sorted(means, n_resamples, 0.025);
    *hi = quantile_sorted(means, n_resamples, 0.975);
    free(means);
}
