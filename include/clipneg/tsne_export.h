// tsne_export.h — `clipneg export-tsne`: a seeded, stratified sample of image and text embeddings,
// reduced to K dimensions by a distributed PCA, written to /tsne for the analysis package's t-SNE
// plot (docs/reduce.md, "export-tsne"; layout in docs/hdf5-schema.md).
//
// PCA: mean and covariance in float64 over fixed global blocks of sampled rows, merged in block
// order (so the rank count does not change the result), eigenvectors from LAPACK's dsyevd, each
// component's sign fixed so that its largest-|loading| entry is positive.
#ifndef CLIPNEG_TSNE_EXPORT_H
#define CLIPNEG_TSNE_EXPORT_H

#include <stdint.h>

#define TSNE_DEFAULT_POINTS 5000
#define TSNE_DEFAULT_PCA 50
#define TSNE_BLOCK_ROWS 1024

// Kinds of points (/tsne/kind)
enum { TSNE_IMAGE = 0, TSNE_POSITIVE = 1, TSNE_NEGATIVE = 2, TSNE_OTHER = 3, TSNE_KINDS = 4 };

typedef struct {
    const char *path;      // the evaluation file (needs /embeddings), opened read-write via MPI-IO
    int64_t max_points;    // total points (default 5000); 0 = every valid row
    int pca;               // K; 0 = min(50, D, points)
    const char *variants;  // comma-separated variant names; NULL = base + every negative variant
    const char *base;      // base variant override for the default selection (NULL = provenance)
    uint64_t seed;         // sampling seed (default 0)
    int block_rows;        // sampled rows per global block (0 = TSNE_BLOCK_ROWS)
} TsneOptions;

void tsne_options_default(TsneOptions *o);
// Collective over MPI_COMM_WORLD. Returns CN_OK or a CN_E_* code (message in cn_last_error()).
int tsne_export_run(const TsneOptions *o);

// ---- sampling (pure; tested directly) ------------------------------------------------------------
// Equal share per kind: kinds with fewer rows than their share give the rest to the others (water
// filling in order of availability). quota[k] <= avail[k]; sum = min(max_points, sum avail).
// max_points == 0 takes everything.
void tsne_quotas(const int64_t avail[TSNE_KINDS], int64_t max_points, int64_t quota[TSNE_KINDS]);
// k distinct indices of [0, n), ascending, chosen uniformly by a partial Fisher-Yates shuffle
// driven by splitmix64_at(key, j).
void tsne_sample(int64_t n, int64_t k, uint64_t key, int64_t *out);

// ---- PCA pieces (tsne_pca.c) ------------------------------------------------------------------
// C += Xc^T Xc over n centred rows of length D (upper triangle, row-major D x D); the sum over rows
// is taken in row order for every entry, whatever the thread count.
void pca_accumulate(const double *Xc, int64_t n, int D, double *C);
// Top-K eigenpairs of the symmetric D x D matrix C (upper triangle used; destroyed): components
// [K x D] row-major, descending eigenvalues, signs fixed (largest |loading| positive).
// Returns CN_OK or CN_E_INTERNAL when LAPACK fails.
int pca_top_k(double *C, int D, int K, double *components, double *eigenvalues);
// Sign convention alone (exposed for tests): flips row k when its largest-|x| entry is negative
// (the first such entry on ties).
void pca_fix_signs(double *components, int K, int D);

#endif
