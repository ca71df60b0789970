// reduce.h — `clipneg reduce`: global statistics of an evaluation file, written to /stats.
// Every statistic, its definition and its tie rule is documented in docs/reduce.md.
//
// Determinism: work is cut into fixed global blocks (rows of /similarity/paired, tiles of
// texts/images) whose size does not depend on the rank count; every floating-point merge is done
// in block order, so 1 rank and N ranks write bit-identical /stats.
//
// The file has four parts:
//   * stats primitives (reduce_stats.c): Welford/Chan moments, the fine histogram and its quantiles,
//   * contrasts (reduce_contrast.c): paired flips, Cohen's d, the seeded bootstrap,
//   * retrieval (reduce_retrieval.c): streamed top-k, R@k without holding N_img x N_text,
//   * the run (reduce.c, reduce_output.c) and the small HDF5 helpers shared with export-tsne
//     (reduce_io.c).
#ifndef CLIPNEG_REDUCE_H
#define CLIPNEG_REDUCE_H

#include <hdf5.h>
#include <stdint.h>

// ---- constants ---------------------------------------------------------------------------------
#define REDUCE_HIST_BINS 400      // stored histogram: 400 bins over [-1, 1] (width 0.005)
#define REDUCE_FINE_BINS 20000    // quantile histogram: 20000 bins over [-1, 1] (width 1e-4)
#define REDUCE_MAX_K 10           // retrieval keeps the 10 largest similarities per query
#define REDUCE_BLOCK_ROWS 4096    // captions per global block (stats, contrasts)
#define REDUCE_TILE_TEXTS 2048    // texts per retrieval tile
#define REDUCE_TILE_IMAGES 1024   // images per retrieval tile

// ---- moments (Welford per element, Chan et al. to merge two partial states) ---------------------
typedef struct {
    int64_t n;    // values added
    double mean;  // running mean
    double m2;    // sum of squared deviations from the mean
    double min;   // +inf when n == 0
    double max;   // -inf when n == 0
} Moments;

void moments_init(Moments *m);
void moments_add(Moments *m, double x);
// a <- a merged with b (Chan, Golub, LeVeque 1979). Merging in a fixed order gives fixed results.
void moments_merge(Moments *a, const Moments *b);
// Sample standard deviation (ddof = 1); NaN when n < 2.
double moments_std(const Moments *m);

// ---- histograms over [-1, 1] -----------------------------------------------------------------
// Bin of x among `nbins` equal bins over [-1, 1]: floor((x + 1) * nbins / 2), clamped to
// [0, nbins-1] (so 1.0 and anything above lands in the last bin, anything below -1 in the first).
int hist_bin(double x, int nbins);
// Quantile q in [0, 1] from a histogram holding n values, numpy's default ("linear") definition:
// position h = (n-1) q between order statistics x_(floor h) and x_(ceil h); each order statistic
// is replaced by the centre of the bin that holds it, clamped to [lo, hi] (the exact min/max).
// Error <= half a bin width (5e-5 for 20000 bins) for values inside [-1, 1]. NaN when n == 0.
double hist_quantile(const int64_t *hist, int nbins, int64_t n, double q, double lo, double hi);
// numpy-style linear quantile of an ascending array (bootstrap percentiles). NaN when n == 0.
double quantile_sorted(const double *sorted, int64_t n, double q);

// ---- contrasts: negative variant vs positive base, one caption at a time ------------------------
typedef struct {
    int64_t n_pairs;  // captions where both similarities are valid (not NaN)
    int64_t n_flips;  // sim(neg) > sim(base): the negation scores higher than the caption
    int64_t n_wins;   // sim(base) > sim(neg): "negation accuracy" numerator
    int64_t n_ties;   // equal (counted in neither)
    Moments diff;     // of sim(neg) - sim(base), in float64
} ContrastCounts;

void contrast_init(ContrastCounts *cc);
// Adds one caption; ignored when either value is NaN. Returns 1 when it was a valid pair.
int contrast_add(ContrastCounts *cc, float base, float neg);
// Cohen's d for paired samples (d_z): mean(diff) / sd(diff), sd with ddof = 1. NaN when undefined.
double contrast_cohens_d(const ContrastCounts *cc);

// ---- deterministic random numbers (splitmix64: counter-based, easy to reproduce in numpy) -------
// Draw j (0-based) of the stream keyed by `key`: z = mix(key + (j+1) * 0x9E3779B97F4A7C15).
uint64_t splitmix64_at(uint64_t key, uint64_t j);
// Key of bootstrap resample r of variant v under `seed` (docs/reduce.md gives the formula).
uint64_t bootstrap_key(uint64_t seed, int variant, int64_t resample);
// Mean of one bootstrap resample: n draws x[splitmix64_at(key, j) % n], summed in draw order.
double bootstrap_resample_mean(const double *x, int64_t n, uint64_t key);
// Percentile 95 % CI of mean(x): n_resamples resample means (split over the ranks of
// MPI_COMM_WORLD, each a pure function of (seed, variant, r)), sorted, quantiles 0.025 / 0.975.
// Collective; every rank passes the same x. Result independent of the rank count.
void bootstrap_ci(const double *x, int64_t n, int n_resamples, uint64_t seed, int variant, double *lo,
                  double *hi);

// ---- retrieval: running top-k of similarities (a multiset: the order of updates never matters) ---
typedef struct {
    float top[REDUCE_MAX_K]; // the largest values seen, descending
    int32_t n;               // how many of top[] are filled
    float own;               // the query's own item (best own caption for i2t); -inf until seen
} TopK;

void topk_init(TopK *t);
void topk_push(TopK *t, float v);            // NaN is ignored
void topk_merge(TopK *a, const TopK *b);     // a <- top-k of the union, own = max
// Hit at k (k <= REDUCE_MAX_K): fewer than k candidates are strictly more similar than `own`
// (ties count as hits). Returns 0 when own was never seen.
int topk_hit(const TopK *t, int k);

// Cosine similarities of a tile: S[i*T + t] = dot(A[i], B[t]) for I rows of A and T rows of B
// (both row-major, length D), float32 with a fixed 8-lane accumulation order (deterministic,
// independent of threads and tile position). Rows holding NaN give NaN.
void similarity_tile(const float *A, int I, const float *B, int T, int D, float *S);

// ---- the reduce run ----------------------------------------------------------------------------
typedef struct {
    const char *path;        // the evaluation file (opened read-write through MPI-IO)
    const char *base;        // base variant name; NULL = provenance (job's base_variant) or 1st positive
    int bootstrap;           // resamples (default 1000); 0 disables the CI
    uint64_t seed;           // bootstrap seed (default 0)
    const char *json_path;   // NULL = "<path without .h5>.stats.json" beside the file
    int allow_incomplete;    // reduce a file whose `complete` attribute is not 1 (warns)
    int block_rows;          // captions per global block (0 = REDUCE_BLOCK_ROWS)
    int tile_texts;          // retrieval tile sizes (0 = defaults)
    int tile_images;
    int print_table;         // markdown table on stdout (rank 0)
} ReduceOptions;

typedef struct {
    int V;
    char **names;            // [V]
    int8_t *polarity;        // [V]
    int base;                // index of the base variant
    char *base_name;
    char *base_source;       // "option", "provenance" or "first positive"
    int bootstrap;
    uint64_t seed;
    int64_t n_captions, n_images;
    int complete;            // the file's `complete` attribute (1 = every shard done)
    // per variant, [V]
    int64_t *count;
    double *mean, *std, *min, *max, *q05, *q25, *median, *q75, *q95;
    int64_t *hist;           // [V * REDUCE_HIST_BINS]
    // contrast vs base, [V]; counts are -1 and floats NaN for variants that are not negative
    int64_t *n_pairs, *n_flips, *n_wins, *n_ties;
    double *flip_share, *neg_accuracy, *mean_diff, *std_diff, *cohens_d, *ci_low, *ci_high;
    // retrieval
    char *retrieval_source;  // "full", "embeddings" or "none"
    int64_t *t2i_n;          // [V] queries (texts with a valid own similarity)
    double *t2i_r1, *t2i_r5, *t2i_r10; // [V]
    int64_t i2t_n;           // image queries (valid image with >= 1 valid base caption)
    double i2t_r1, i2t_r5, i2t_r10;
} ReduceResult;

void reduce_options_default(ReduceOptions *o);
// Collective over MPI_COMM_WORLD: every rank gets the full result. Returns CN_OK or a CN_E_* code
// (same on every rank) with cn_last_error() set.
int reduce_compute(const ReduceOptions *o, ReduceResult *r);
// Collective: replace /stats in the file with r.
int reduce_write_h5(const char *path, const ReduceResult *r);
// Rank 0 only: stats.json and the markdown table.
int reduce_write_json(const char *path, const ReduceResult *r);
void reduce_print_table(FILE *fp, const ReduceResult *r);
void reduce_result_free(ReduceResult *r);

// Base variant: `option` (--base), else the file's provenance (root attribute `base_variant`, else
// `[variants] base_variant` in the stored job text), else the first positive variant; *base = -1
// when there is none. *source is "option", "provenance" or "first positive" (malloc'ed).
int reduce_find_base(hid_t file, const char *path, const char *option, char **names, const int8_t *polarity,
                     int V, int *base, char **source);
// The steps of reduce_compute (collective; `file` opened with rio_open, r's variant fields set):
int reduce_paired_stats(hid_t file, const ReduceOptions *o, ReduceResult *r); // moments, hist, contrasts
int reduce_retrieval(hid_t file, const ReduceOptions *o, ReduceResult *r);    // R@k

// ---- HDF5 helpers shared by reduce and export-tsne (reduce_io.c) -------------------------------
// All return CN_OK or CN_E_DATA / CN_E_IO with a message naming the file's dataset.
// Open with the MPI-IO driver on MPI_COMM_WORLD (collective). HDF5's own error stack is silenced.
int rio_open(const char *path, int writable, hid_t *file);
int rio_exists(hid_t file, const char *path);  // 1 when every component of path exists
// Shape of a dataset (rank <= 2; dims[1] = 1 for 1-D).
int rio_shape(hid_t file, const char *path, int *rank, int64_t dims[2]);
// Rows [r0, r0+nr) x columns [c0, c0+nc) of a 1-D (c0 = 0, nc = 1) or 2-D dataset, converted
// to the memory type (H5T_NATIVE_FLOAT, _INT32, _INT8, _DOUBLE, _INT64). Independent I/O.
int rio_read(hid_t file, const char *path, hid_t memtype, int64_t r0, int64_t nr, int64_t c0, int64_t nc,
             void *out);
// A whole 1-D string dataset (variable or fixed length) as n malloc'ed strings.
int rio_read_strings(hid_t file, const char *path, char ***out, int64_t *n);
void rio_free_strings(char **s, int64_t n);
// Attributes of an object (`obj` = "/" for the root). 1 found, 0 missing, <0 unreadable (message set).
int rio_attr_string(hid_t file, const char *obj, const char *name, char **out);
int rio_attr_int(hid_t file, const char *obj, const char *name, int64_t *out);
// Writers (collective: every rank calls with the same shape; only rank 0's data is written).
int rio_write(hid_t loc, const char *name, hid_t memtype, hid_t filetype, int rank, const int64_t *dims,
              const void *data);
int rio_write_attr_string(hid_t loc, const char *name, const char *value);
int rio_write_attr_int(hid_t loc, const char *name, int64_t value);
int rio_write_attr_doubles(hid_t loc, const char *name, const double *values, int64_t n);
// Delete a group/dataset if it exists (collective).
int rio_delete(hid_t file, const char *path);
// Coordinate datasets (HDF5 dimension scales) of a result group, collective like rio_write; the
// axes are attached by h5_document (src/h5_internal.h). Strings are fixed-length (MPI-IO writes no
// variable-length data).
int rio_coord_strings(hid_t loc, const char *name, const char *const *strs, int64_t n);
int rio_coord_range(hid_t loc, const char *name, int64_t n);
int rio_coord_doubles(hid_t loc, const char *name, const double *v, int64_t n);
// Replace the member `key` of the JSON object in json_path (written by `clipneg reduce`) with
// `value` (taken over, freed here in every case) and rewrite the file. CN_OK or CN_E_IO.
struct cJSON;
int rio_json_set(const char *json_path, const char *key, struct cJSON *value);

// ---- work splitting --------------------------------------------------------------------------
// Contiguous share of `n` items for `rank` of `nranks`: [*lo, *hi).
void split_range(int64_t n, int rank, int nranks, int64_t *lo, int64_t *hi);
// Every rank filled items [lo, hi) (split_range of n_items) of buf (stride doubles per item);
// afterwards every rank holds all items. No arithmetic: results are exact.
void allgather_items(double *buf, int64_t n_items, int stride);

#endif
