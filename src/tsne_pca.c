// tsne_pca.c — the numeric core of `clipneg export-tsne`: covariance accumulation and the
// eigen-decomposition (LAPACK dsyevd from OpenBLAS).
//
// Debian's OpenBLAS exports LAPACK's Fortran symbols but no LAPACKE C wrappers (no lapacke.h), so
// dsyevd_ is declared here with the Fortran calling convention: every argument by pointer, column-
// major storage, and the hidden lengths of the two CHARACTER arguments passed last (gfortran ABI).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/tsne_export.h"

extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
                    double *work, const int *lwork, int *iwork, const int *liwork, int *info, size_t jobz_len,
                    size_t uplo_len);

#define ITILE 32  // rows of C updated together: their slice of each input row stays in L1

void pca_accumulate(const double *Xc, int64_t n, int D, double *C) {
    int ntiles = CN_CEIL_DIV(D, ITILE);
#pragma omp parallel for schedule(dynamic, 1) num_threads(cn_threads())
    for (int tile = 0; tile < ntiles; tile++) {
        int i0 = tile * ITILE, i1 = CN_MIN(D, i0 + ITILE);
        for (int64_t r = 0; r < n; r++) {
            const double *x = Xc + (size_t)r * D;
            for (int i = i0; i < i1; i++) {
                double xi = x[i];
                double *ci = C + (size_t)i * D;
                for (int j = i; j < D; j++) ci[j] += xi * x[j];
            }
        }
    }
}

void pca_fix_signs(double *components, int K, int D) {
    for (int k = 0; k < K; k++) {
        double *c = components + (size_t)k * D;
        int best = 0;
        for (int d = 1; d < D; d++)
            if (fabs(c[d]) > fabs(c[best])) best = d;
        if (c[best] < 0)
            for (int d = 0; d < D; d++) c[d] = -c[d];
    }
}

int pca_top_k(double *C, int D, int K, double *components, double *eigenvalues) {
    // Row-major upper triangle == column-major lower triangle: pass uplo = 'L'.
    double *w = mallocCheck(sizeof(double) * (size_t)D);
    int n = D, lda = D, info = 0, lwork = -1, liwork = -1, iwork_query = 0;
    double work_query = 0;
    dsyevd_("V", "L", &n, C, &lda, w, &work_query, &lwork, &iwork_query, &liwork, &info, 1, 1);
    if (info != 0) {
        free(w);
        return cn_fail(CN_E_INTERNAL, "LAPACK dsyevd workspace query failed (info=%d)", info);
    }
    lwork = (int)work_query + 1;
    liwork = iwork_query + 1;
    double *work = mallocCheck(sizeof(double) * (size_t)lwork);
    int *iwork = mallocCheck(sizeof(int) * (size_t)liwork);
    dsyevd_("V", "L", &n, C, &lda, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work);
    free(iwork);
    if (info != 0) {
        free(w);
        return cn_fail(CN_E_INTERNAL, "LAPACK dsyevd failed to converge (info=%d)", info);
    }
    // Eigenvalues come ascending; column j of the column-major result (= row j in memory) is
    // eigenvector j. Take the last K, largest first.
    for (int k = 0; k < K; k++) {
        int j = D - 1 - k;
        eigenvalues[k] = w[j];
        memcpy(components + (size_t)k * D, C + (size_t)j * D, sizeof(double) * (size_t)D);
    }
    free(w);
    pca_fix_signs(components, K, D);
    return CN_OK;
}
