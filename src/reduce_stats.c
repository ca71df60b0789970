// reduce_stats.c — the numeric building blocks of `clipneg reduce`: moments with a parallel merge,
// histograms over [-1, 1], quantiles, and the counter-based random numbers of the bootstrap.
// Pure functions (no MPI, no HDF5) so tests can check them directly; definitions in docs/reduce.md.
#include <math.h>
#include <stdint.h>

#include "clipneg/reduce.h"

// ---- moments -----------------------------------------------------------------------------------

void moments_init(Moments *m) {
    m->n = 0;
    m->mean = 0.0;
    m->m2 = 0.0;
    m->min = INFINITY;
    m->max = -INFINITY;
}

// Welford's update: numerically stable for long runs of values close to each other (cosines).
void moments_add(Moments *m, double x) {
    m->n += 1;
    double d = x - m->mean;
    m->mean += d / (double)m->n;
    m->m2 += d * (x - m->mean);
    if (x < m->min) m->min = x;
    if (x > m->max) m->max = x;
}

// Chan, Golub & LeVeque's pairwise merge. Not associative in floating point, which is why callers
// merge fixed global blocks in block order instead of whatever order ranks happen to finish in.
void moments_merge(Moments *a, const Moments *b) {
    if (b->n == 0) return;
    if (a->n == 0) {
        *a = *b;
        return;
    }
    double na = (double)a->n, nb = (double)b->n, n = na + nb;
    double delta = b->mean - a->mean;
    a->mean += delta * (nb / n);
    a->m2 += b->m2 + delta * delta * (na * nb / n);
    a->n += b->n;
    if (b->min < a->min) a->min = b->min;
    if (b->max > a->max) a->max = b->max;
}

double moments_std(const Moments *m) {
    if (m->n < 2) return NAN;
    double var = m->m2 / (double)(m->n - 1);
    return var > 0.0 ? sqrt(var) : 0.0;
}

// ---- histograms and quantiles --------------------------------------------------------------------

int hist_bin(double x, int nbins) {
    // ((x + 1) * 0.5) is exact; one rounding in the multiply by nbins (numpy reproduces it bit for bit).
    double y = ((x + 1.0) * 0.5) * (double)nbins;
    if (!(y >= 0.0)) return 0;  // below -1 (NaN never reaches here: callers skip it)
    if (y >= (double)nbins) return nbins - 1;
    return (int)y;
}

// Centre of the bin holding order statistic k (0-based) of a histogram, clamped to [lo, hi].
static double order_stat_from_hist(const int64_t *hist, int nbins, int64_t k, double lo, double hi) {
    int64_t cum = 0;
    int b = 0;
    for (; b < nbins; b++) {
        cum += hist[b];
        if (cum > k) break;
    }
    if (b == nbins) b = nbins - 1;
    double width = 2.0 / (double)nbins;
    double centre = -1.0 + ((double)b + 0.5) * width;
    if (centre < lo) centre = lo;
    if (centre > hi) centre = hi;
    return centre;
}

// numpy's _lerp: a + (b-a) t, computed from the nearer end for accuracy.
static double lerp(double a, double b, double t) {
    double diff = b - a;
    return t >= 0.5 ? b - diff * (1.0 - t) : a + diff * t;
}

double hist_quantile(const int64_t *hist, int nbins, int64_t n, double q, double lo, double hi) {
    if (n <= 0) return NAN;
    double h = (double)(n - 1) * q;
    int64_t i = (int64_t)floor(h);
    if (i < 0) i = 0;
    if (i > n - 1) i = n - 1;
    double t = h - (double)i;
    double a = order_stat_from_hist(hist, nbins, i, lo, hi);
    if (i + 1 > n - 1) return a;
    double b = order_stat_from_hist(hist, nbins, i + 1, lo, hi);
    return lerp(a, b, t);
}

double quantile_sorted(const double *sorted, int64_t n, double q) {
    if (n <= 0) return NAN;
    double h = (double)(n - 1) * q;
    int64_t i = (int64_t)floor(h);
    if (i < 0) i = 0;
    if (i >= n - 1) return sorted[n - 1];
    return lerp(sorted[i], sorted[i + 1], h - (double)i);
}

// ---- splitmix64 --------------------------------------------------------------------------------

#define GOLDEN_GAMMA 0x9E3779B97F4A7C15ULL

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

// Counter-based: draw j needs no state, so any rank can produce any resample's draws.
uint64_t splitmix64_at(uint64_t key, uint64_t j) { return mix64(key + (j + 1) * GOLDEN_GAMMA); }

uint64_t bootstrap_key(uint64_t seed, int variant, int64_t resample) {
    return splitmix64_at(splitmix64_at(seed, (uint64_t)variant), (uint64_t)resample);
}

double bootstrap_resample_mean(const double *x, int64_t n, uint64_t key) {
    if (n <= 0) return NAN;
    double sum = 0.0;
    // Modulo bias is at most n / 2^64: irrelevant for any caption count.
    for (int64_t j = 0; j < n; j++) sum += x[splitmix64_at(key, (uint64_t)j) % (uint64_t)n];
    return sum / (double)n;
}
