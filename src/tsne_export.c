// tsne_export.c — `clipneg export-tsne`: sample image and text embeddings (equal share per kind,
// seeded), project them onto the top-K principal components and write /tsne.
//
// Parallel plan (result independent of the rank count):
//   the sample (a list of source rows) is computed identically on every rank; it is cut into fixed
//   global blocks of `block_rows` points; each rank reads and centres the rows of a contiguous run
//   of blocks. Block sums -> mean (all-gathered, summed in block order); block covariances ->
//   chained from rank 0 to the last rank, each adding its blocks in order, so the total is
//   ((C_0 + C_1) + C_2) + ... for any rank count. Rank 0 solves the eigenproblem and broadcasts.
#define _POSIX_C_SOURCE 200809L // strtok_r
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/reduce.h"
#include "clipneg/tsne_export.h"
#include "h5_internal.h"

void tsne_options_default(TsneOptions *o) {
    memset(o, 0, sizeof *o);
    o->max_points = TSNE_DEFAULT_POINTS;
    o->pca = 0;  // = TSNE_DEFAULT_PCA, or less when the embeddings are smaller
}

// ---- sampling ------------------------------------------------------------------------------------

void tsne_quotas(const int64_t avail[TSNE_KINDS], int64_t max_points, int64_t quota[TSNE_KINDS]) {
    int order[TSNE_KINDS], left = 0;
    int64_t total = 0;
    for (int k = 0; k < TSNE_KINDS; k++) {
        quota[k] = 0;
        total += avail[k];
        if (avail[k] > 0) order[left++] = k;
    }
    int64_t remaining = (max_points <= 0 || max_points > total) ? total : max_points;
    // ascending availability (stable: ties keep kind order), so small kinds pass on their surplus
    for (int i = 1; i < left; i++)
        for (int j = i; j > 0 && avail[order[j]] < avail[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int i = 0; i < left; i++) {
        int k = order[i];
        int64_t share = CN_CEIL_DIV(remaining, (int64_t)(left - i));
        quota[k] = CN_MIN(avail[k], share);
        remaining -= quota[k];
    }
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

// The partial Fisher-Yates shuffle of [0, n) without the n-entry array (millions of texts): only
// positions a swap moved are stored, in an open-addressing map of at most 2k entries. Step j swaps
// positions j and r >= j, and no later step touches position j again, so the value it places
// there is the j-th pick: the same picks, in the same order, as the array version.
typedef struct {
    int64_t *pos, *val;  // pos -1 = empty
    size_t mask;
} SwapMap;

static int64_t *swap_slot(SwapMap *m, int64_t pos) {
    size_t h = (size_t)splitmix64_at(0, (uint64_t)pos) & m->mask;
    while (m->pos[h] >= 0 && m->pos[h] != pos) h = (h + 1) & m->mask;
    if (m->pos[h] < 0) m->pos[h] = pos, m->val[h] = pos;  // untouched position: holds itself
    return &m->val[h];
}

void tsne_sample(int64_t n, int64_t k, uint64_t key, int64_t *out) {
    if (k >= n) {
        for (int64_t i = 0; i < n; i++) out[i] = i;
        return;
    }
    SwapMap m;
    size_t cap = 64;
    while (cap < 4 * (size_t)k) cap *= 2;  // load <= 1/2
    m.mask = cap - 1;
    m.pos = mallocCheck(sizeof(int64_t) * cap);
    m.val = mallocCheck(sizeof(int64_t) * cap);
    for (size_t i = 0; i < cap; i++) m.pos[i] = -1;
    for (int64_t j = 0; j < k; j++) {
        int64_t r = j + (int64_t)(splitmix64_at(key, (uint64_t)j) % (uint64_t)(n - j));
        int64_t *aj = swap_slot(&m, j), vj = *aj;
        int64_t *ar = swap_slot(&m, r);  // (after aj: a new entry never moves an old one)
        out[j] = *ar;
        *ar = vj;
        *swap_slot(&m, j) = out[j];
    }
    free(m.pos);
    free(m.val);
    qsort(out, (size_t)k, sizeof(int64_t), cmp_i64);
}

// ---- the sample -----------------------------------------------------------------------------------

typedef struct {
    int64_t n;                 // points
    int64_t *row;              // row of /embeddings/image (kind 0) or /embeddings/text
    int8_t *kind;
    int32_t *variant, *image_index, *caption_index;
    int64_t avail[TSNE_KINDS], quota[TSNE_KINDS];
    char *variant_list;        // the chosen variants, comma-separated (for the attribute)
} Sample;

static void sample_free(Sample *s) {
    free(s->row);
    free(s->kind);
    free(s->variant);
    free(s->image_index);
    free(s->caption_index);
    free(s->variant_list);
}

// chosen[v] = 1 for the variants whose texts join the sample.
static int choose_variants(hid_t file, const TsneOptions *o, char **names, const int8_t *pol, int V, int8_t *chosen) {
    memset(chosen, 0, (size_t)V);
    if (!o->variants) {
        int base;
        char *source = NULL;
        int rc = reduce_find_base(file, o->path, o->base, names, pol, V, &base, &source);
        free(source);
        if (rc) return rc;
        if (base >= 0) chosen[base] = 1;
        for (int v = 0; v < V; v++)
            if (pol[v] == 1) chosen[v] = 1;
        return CN_OK;
    }
    char *list = strdupCheck(o->variants), *save = NULL;
    int rc = CN_OK;
    for (char *tok = strtok_r(list, ",", &save); tok && rc == CN_OK; tok = strtok_r(NULL, ",", &save)) {
        int v = 0;
        while (v < V && strcmp(names[v], tok) != 0) v++;
        if (v == V) rc = cn_fail(CN_E_USAGE, "--variants: '%s' is not one of the file's variants", tok);
        else chosen[v] = 1;
    }
    free(list);
    return rc;
}

// In a file whose run has not finished, embedding rows of shards not flagged in /progress are
// undefined (no fill value): mark them unusable (status -2) whatever their status says.
static int mask_unfinished(hid_t file, const char *path, int8_t *img_status, int64_t n_img, int8_t *txt_status,
                           int64_t n_text) {
    int64_t complete = 0;
    int found = rio_attr_int(file, "/", "complete", &complete);
    if (found < 0) return -found;
    if (complete == 1) return CN_OK;
    const struct { const char *flags, *size_attr; int8_t *status; int64_t n; } parts[2] = {
        {"/progress/image_shards", "image_shard", img_status, n_img},
        {"/progress/text_shards", "text_shard", txt_status, n_text}};
    for (int k = 0; k < 2; k++) {
        int64_t shard = 0, nd_dims[2];
        int nd, rc;
        if (rio_attr_int(file, "/progress", parts[k].size_attr, &shard) != 1 || shard < 1)
            return cn_fail(CN_E_DATA, "%s: incomplete file without /progress attribute %s", path, parts[k].size_attr);
        if ((rc = rio_shape(file, parts[k].flags, &nd, nd_dims))) return rc;
        if (nd_dims[0] != CN_CEIL_DIV(parts[k].n, shard))
            return cn_fail(CN_E_DATA, "%s: %s has %lld flags, expected %lld", path, parts[k].flags,
                           (long long)nd_dims[0], (long long)CN_CEIL_DIV(parts[k].n, shard));
        uint8_t *done = mallocCheck((size_t)nd_dims[0] + 1);
        if ((rc = rio_read(file, parts[k].flags, H5T_NATIVE_UINT8, 0, nd_dims[0], 0, 1, done))) {
            free(done);
            return rc;
        }
        for (int64_t i = 0; i < parts[k].n; i++)
            if (done[i / shard] != 1) parts[k].status[i] = -2;
        free(done);
    }
    cn_log("warning: %s is incomplete: only rows of finished shards are sampled", path);
    return CN_OK;
}

static int build_sample(hid_t file, const TsneOptions *o, Sample *s) {
    memset(s, 0, sizeof *s);
    char **names = NULL;
    int64_t V = 0, n_img = 0, n_cap = 0, n_text;
    int nd, rc;
    int64_t dims[2];
    if ((rc = rio_read_strings(file, "/variants/name", &names, &V))) return rc;
    int8_t *pol = mallocCheck((size_t)V + 1), *chosen = mallocCheck((size_t)V + 1);
    int8_t *img_status = NULL, *txt_status = NULL;
    int32_t *image_index = NULL;
    if ((rc = rio_read(file, "/variants/polarity", H5T_NATIVE_INT8, 0, V, 0, 1, pol))) goto done;
    if ((rc = choose_variants(file, o, names, pol, (int)V, chosen))) goto done;
    if ((rc = rio_shape(file, "/images/status", &nd, dims))) goto done;
    n_img = dims[0];
    if ((rc = rio_shape(file, "/captions/image_index", &nd, dims))) goto done;
    n_cap = dims[0];
    n_text = n_cap * V;
    img_status = mallocCheck((size_t)n_img + 1);
    txt_status = mallocCheck((size_t)n_text + 1);
    image_index = mallocCheck(sizeof(int32_t) * (size_t)(n_cap + 1));
    if ((rc = rio_read(file, "/images/status", H5T_NATIVE_INT8, 0, n_img, 0, 1, img_status))) goto done;
    if ((rc = rio_read(file, "/texts/status", H5T_NATIVE_INT8, 0, n_text, 0, 1, txt_status))) goto done;
    if ((rc = rio_read(file, "/captions/image_index", H5T_NATIVE_INT32, 0, n_cap, 0, 1, image_index))) goto done;
    if ((rc = mask_unfinished(file, o->path, img_status, n_img, txt_status, n_text))) goto done;

    // candidates per kind: images with status 1 (ok), chosen texts with status 0 (ok)
    for (int64_t i = 0; i < n_img; i++) s->avail[TSNE_IMAGE] += img_status[i] == 1;
    for (int64_t t = 0; t < n_text; t++) {
        int v = (int)(t % V);
        if (chosen[v] && txt_status[t] == 0) s->avail[pol[v] == 0 ? TSNE_POSITIVE : pol[v] == 1 ? TSNE_NEGATIVE : TSNE_OTHER]++;
    }
    tsne_quotas(s->avail, o->max_points, s->quota);
    for (int k = 0; k < TSNE_KINDS; k++) s->n += s->quota[k];
    s->row = mallocCheck(sizeof(int64_t) * (size_t)(s->n + 1));
    s->kind = mallocCheck((size_t)s->n + 1);
    s->variant = mallocCheck(sizeof(int32_t) * (size_t)(s->n + 1));
    s->image_index = mallocCheck(sizeof(int32_t) * (size_t)(s->n + 1));
    s->caption_index = mallocCheck(sizeof(int32_t) * (size_t)(s->n + 1));
    int64_t max_quota = CN_MAX(CN_MAX(s->quota[0], s->quota[1]), CN_MAX(s->quota[2], s->quota[3]));
    int64_t *pick = mallocCheck(sizeof(int64_t) * (size_t)(max_quota + 1));
    int64_t p = 0;
    for (int k = 0; k < TSNE_KINDS; k++) {
        // pick: ascending ranks among this kind's candidates; the candidates are walked in row order
        // (never listed: 8 bytes per text) and the picked ranks taken as they come
        tsne_sample(s->avail[k], s->quota[k], splitmix64_at(o->seed, (uint64_t)k), pick);
        int64_t n_rows = k == TSNE_IMAGE ? n_img : n_text, nc = 0, j = 0;
        for (int64_t row = 0; row < n_rows && j < s->quota[k]; row++) {
            int v = (int)(row % V);
            int kind = pol[v] == 0 ? TSNE_POSITIVE : pol[v] == 1 ? TSNE_NEGATIVE : TSNE_OTHER;
            int is_cand = k == TSNE_IMAGE ? img_status[row] == 1 : chosen[v] && txt_status[row] == 0 && kind == k;
            if (!is_cand || nc++ != pick[j]) continue;
            j++;
            s->row[p] = row;
            s->kind[p] = (int8_t)k;
            s->variant[p] = k == TSNE_IMAGE ? -1 : (int32_t)(row % V);
            s->caption_index[p] = k == TSNE_IMAGE ? -1 : (int32_t)(row / V);
            s->image_index[p] = k == TSNE_IMAGE ? (int32_t)row : image_index[row / V];
            p++;
        }
    }
    free(pick);
    size_t len = 1;
    for (int v = 0; v < V; v++) len += chosen[v] ? strlen(names[v]) + 1 : 0;
    s->variant_list = callocCheck(len, 1);
    for (int v = 0; v < V; v++)
        if (chosen[v]) {
            if (s->variant_list[0]) strcat(s->variant_list, ",");
            strcat(s->variant_list, names[v]);
        }
done:
    rio_free_strings(names, V);
    free(pol);
    free(chosen);
    free(img_status);
    free(txt_status);
    free(image_index);
    return rc;
}

// Rows [p0, p1) of the sample into X (float64, D per row), reading runs of consecutive source rows
// with one hyperslab each. Non-finite values in a row marked ok are a damaged file: refused.
static int read_points(hid_t file, const char *path, const Sample *s, int64_t p0, int64_t p1, int64_t D, double *X) {
    float *buf = mallocCheck(sizeof(float) * (size_t)(1024 * D));
    int rc = CN_OK;
    for (int64_t p = p0; p < p1 && rc == CN_OK;) {
        int64_t q = p + 1;
        while (q < p1 && q - p < 1024 && s->kind[q] == s->kind[p] && s->row[q] == s->row[q - 1] + 1) q++;
        const char *dset = s->kind[p] == TSNE_IMAGE ? "/embeddings/image" : "/embeddings/text";
        if ((rc = rio_read(file, dset, H5T_NATIVE_FLOAT, s->row[p], q - p, 0, D, buf))) break;
        for (int64_t i = 0; i < (q - p) * D; i++) {
            if (!isfinite(buf[i])) {
                rc = cn_fail(CN_E_DATA, "%s: row %lld of %s is not finite although its status says ok", path,
                             (long long)s->row[p + i / D], dset);
                break;
            }
            X[(size_t)(p - p0) * D + i] = buf[i];
        }
        p = q;
    }
    free(buf);
    return rc;
}

// ---- PCA over the sample ----------------------------------------------------------------------------

// Sum of the per-block covariances in block order: each rank adds its blocks to the running total it
// receives from the previous rank and passes it on; the last rank's total goes to rank 0.
static void chain_blocks(double *total, double **blocks, int64_t n_mine, int64_t len) {
    int rank = cn_rank(), nranks = cn_nranks();
    if (rank > 0) MPI_Recv(total, (int)len, MPI_DOUBLE, rank - 1, 17, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    for (int64_t b = 0; b < n_mine; b++)
        for (int64_t i = 0; i < len; i++) total[i] += blocks[b][i];
    if (nranks == 1) return;
    if (rank < nranks - 1) MPI_Send(total, (int)len, MPI_DOUBLE, rank + 1, 17, MPI_COMM_WORLD);
    if (rank == nranks - 1) MPI_Send(total, (int)len, MPI_DOUBLE, 0, 18, MPI_COMM_WORLD);
    if (rank == 0) MPI_Recv(total, (int)len, MPI_DOUBLE, nranks - 1, 18, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
}

typedef struct {
    int64_t D;
    int K;
    double *mean;        // [D]
    double *components;  // [K x D]
    double *eigenvalues; // [K]
    double total_var;    // trace of the covariance
    float *X;            // [local points x K]
} Pca;

static int run_pca(hid_t file, const TsneOptions *o, const Sample *s, int64_t p0, int64_t p1, int64_t block, Pca *pca) {
    const int64_t D = pca->D, n_local = p1 - p0, n_blocks = CN_CEIL_DIV(s->n, block);
    const int K = pca->K;
    double *X = mallocCheck(sizeof(double) * (size_t)(n_local * D + 1));
    int rc = read_points(file, o->path, s, p0, p1, D, X);
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (worst != CN_OK) {
        free(X);
        return rc ? rc : cn_fail(worst, "another rank failed reading embeddings");
    }
    // mean: per-block sums, gathered, added in block order
    double *sums = callocCheck((size_t)(n_blocks * D + 1), sizeof(double));
    for (int64_t p = p0; p < p1; p++)
        for (int64_t d = 0; d < D; d++) sums[(size_t)(p / block) * D + d] += X[(size_t)(p - p0) * D + d];
    allgather_items(sums, n_blocks, (int)D);
    for (int64_t d = 0; d < D; d++) pca->mean[d] = 0.0;
    for (int64_t b = 0; b < n_blocks; b++)
        for (int64_t d = 0; d < D; d++) pca->mean[d] += sums[(size_t)b * D + d];
    for (int64_t d = 0; d < D; d++) pca->mean[d] /= (double)s->n;
    free(sums);
    for (int64_t i = 0; i < n_local; i++)
        for (int64_t d = 0; d < D; d++) X[(size_t)i * D + d] -= pca->mean[d];

    // covariance: one D x D partial per block; rank 0 adds its own straight into the total
    const int64_t len = D * D;
    double *total = callocCheck((size_t)len, sizeof(double));
    int64_t b_first = CN_CEIL_DIV(p0, block), b_end = CN_CEIL_DIV(p1, block), n_mine = b_end - b_first;
    double **blocks = callocCheck((size_t)(n_mine + 1), sizeof(double *));
    double *scratch = cn_rank() == 0 ? callocCheck((size_t)len, sizeof(double)) : NULL;
    for (int64_t b = b_first; b < b_end; b++) {
        int64_t r0 = b * block, r1 = CN_MIN(s->n, r0 + block);
        double *Cb = scratch ? scratch : callocCheck((size_t)len, sizeof(double));
        if (scratch) memset(scratch, 0, sizeof(double) * (size_t)len);
        pca_accumulate(X + (size_t)(r0 - p0) * D, r1 - r0, (int)D, Cb);
        if (scratch)
            for (int64_t i = 0; i < len; i++) total[i] += Cb[i];
        else
            blocks[b - b_first] = Cb;
    }
    chain_blocks(total, blocks, scratch ? 0 : n_mine, len);
    for (int64_t b = 0; b < n_mine; b++) free(blocks[b]);
    free(blocks);
    free(scratch);

    double params[1] = {0};
    if (cn_rank() == 0) {
        for (int64_t i = 0; i < len; i++) total[i] /= (double)(s->n - 1);  // sample covariance (ddof = 1)
        for (int64_t d = 0; d < D; d++) params[0] += total[d * D + d];
        rc = pca_top_k(total, (int)D, K, pca->components, pca->eigenvalues);
    }
    MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    free(total);
    if (rc != CN_OK) {
        free(X);
        return cn_rank() == 0 ? rc : cn_fail(rc, "PCA failed on rank 0");
    }
    MPI_Bcast(params, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    MPI_Bcast(pca->components, (int)(K * D), MPI_DOUBLE, 0, MPI_COMM_WORLD);
    MPI_Bcast(pca->eigenvalues, K, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    pca->total_var = params[0];
    // projections of this rank's points
    for (int64_t i = 0; i < n_local; i++)
        for (int k = 0; k < K; k++) {
            const double *x = X + (size_t)i * D, *c = pca->components + (size_t)k * D;
            double acc = 0.0;
            for (int64_t d = 0; d < D; d++) acc += x[d] * c[d];
            pca->X[(size_t)i * K + k] = (float)acc;
        }
    free(X);
    return CN_OK;
}

// ---- /tsne ---------------------------------------------------------------------------------------

static int write_tsne(hid_t file, const TsneOptions *o, const Sample *s, const Pca *pca, int64_t p0, int64_t p1) {
    int rc = rio_delete(file, "/tsne");
    if (rc) return rc;
    hid_t g = H5Gcreate2(file, "/tsne", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return cn_fail(CN_E_IO, "%s: cannot create /tsne", o->path);
    const int64_t K = pca->K, n = s->n;
    // X [N, K]: every rank writes its own rows in one collective call
    hsize_t dims[2] = {(hsize_t)n, (hsize_t)K}, start[2] = {(hsize_t)p0, 0}, count[2] = {(hsize_t)(p1 - p0), (hsize_t)K};
    hid_t fs = H5Screate_simple(2, dims, NULL);
    hid_t d = H5Dcreate2(g, "X", H5T_IEEE_F32LE, fs, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t ms = H5Screate_simple(2, count[0] > 0 ? count : dims, NULL);
    if (p1 > p0) {
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    } else {
        H5Sselect_none(fs);
        H5Sselect_none(ms);
    }
    hid_t xfer = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(xfer, H5FD_MPIO_COLLECTIVE);
    herr_t e = d < 0 ? -1 : H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, xfer, pca->X);
    H5Pclose(xfer);
    H5Sclose(ms);
    H5Sclose(fs);
    if (d >= 0) H5Dclose(d);
    if (e < 0) rc = cn_fail(CN_E_IO, "%s: writing /tsne/X failed (disk full?)", o->path);

    double *ratio = mallocCheck(sizeof(double) * (size_t)K);
    for (int64_t k = 0; k < K; k++) ratio[k] = pca->total_var > 0 ? pca->eigenvalues[k] / pca->total_var : NAN;
    int64_t kd[2] = {K, pca->D};
    if (rc == CN_OK) rc = rio_write(g, "kind", H5T_NATIVE_INT8, H5T_STD_I8LE, 1, &n, s->kind);
    if (rc == CN_OK) rc = rio_write(g, "variant", H5T_NATIVE_INT32, H5T_STD_I32LE, 1, &n, s->variant);
    if (rc == CN_OK) rc = rio_write(g, "image_index", H5T_NATIVE_INT32, H5T_STD_I32LE, 1, &n, s->image_index);
    if (rc == CN_OK) rc = rio_write(g, "caption_index", H5T_NATIVE_INT32, H5T_STD_I32LE, 1, &n, s->caption_index);
    if (rc == CN_OK) rc = rio_write(g, "explained_variance", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, &K, pca->eigenvalues);
    if (rc == CN_OK) rc = rio_write(g, "explained_variance_ratio", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, &K, ratio);
    if (rc == CN_OK) rc = rio_write(g, "components", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 2, kd, pca->components);
    if (rc == CN_OK) rc = rio_write(g, "mean", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, &pca->D, pca->mean);
    int64_t nk = TSNE_KINDS;
    if (rc == CN_OK) rc = rio_write(g, "n_available", H5T_NATIVE_INT64, H5T_STD_I64LE, 1, &nk, s->avail);
    if (rc == CN_OK) rc = rio_write_attr_string(g, "variants", s->variant_list);
    if (rc == CN_OK) rc = rio_write_attr_string(g, "kind_labels", "image,positive,negative,other");
    if (rc == CN_OK) rc = rio_write_attr_string(g, "sampling", "equal share per kind, seeded (docs/reduce.md)");
    if (rc == CN_OK) rc = rio_write_attr_int(g, "seed", (int64_t)o->seed);
    if (rc == CN_OK) rc = rio_write_attr_int(g, "max_points", o->max_points);
    if (rc == CN_OK) rc = rio_write_attr_int(g, "pca", K);
    if (rc == CN_OK) rc = rio_write_attr_doubles(g, "total_variance", &pca->total_var, 1);
    static const char *const kind_names[TSNE_KINDS] = {"image", "positive", "negative", "other"};
    if (rc == CN_OK) rc = rio_coord_range(g, "point", n);
    if (rc == CN_OK) rc = rio_coord_range(g, "component", K);
    if (rc == CN_OK) rc = rio_coord_range(g, "dim", pca->D);
    if (rc == CN_OK) rc = rio_coord_strings(g, "kind_name", kind_names, TSNE_KINDS);
    if (rc == CN_OK) rc = h5_document(file, H5DOC_TSNE, o->path);
    free(ratio);
    H5Gclose(g);
    return rc;
}

int tsne_export_run(const TsneOptions *o) {
    hid_t file;
    int rc = rio_open(o->path, 1, &file);
    if (rc) return rc;
    Sample s;
    Pca pca;
    memset(&s, 0, sizeof s);
    memset(&pca, 0, sizeof pca);
    char *format = NULL;
    int found = rio_attr_string(file, "/", "format", &format);
    if (found < 0) rc = -found;
    else if (!found || strcmp(format, "clipneg-eval") != 0)
        rc = cn_fail(CN_E_DATA, "%s: not a clipneg evaluation file (root attribute format != clipneg-eval)", o->path);
    free(format);
    int nd;
    int64_t di[2], dt[2];
    if (rc == CN_OK && (!rio_exists(file, "/embeddings/image") || !rio_exists(file, "/embeddings/text")))
        rc = cn_fail(CN_E_DATA, "%s: no /embeddings (the job ran with output.embeddings = false): nothing to export",
                     o->path);
    if (rc == CN_OK) rc = rio_shape(file, "/embeddings/image", &nd, di);
    if (rc == CN_OK) rc = rio_shape(file, "/embeddings/text", &nd, dt);
    if (rc == CN_OK && di[1] != dt[1])
        rc = cn_fail(CN_E_DATA, "%s: image embeddings have %lld dimensions, text embeddings %lld", o->path,
                     (long long)di[1], (long long)dt[1]);
    if (rc == CN_OK) rc = build_sample(file, o, &s);
    // The default K (50) shrinks to what the data allows; an explicit --pca K must fit.
    int K = o->pca > 0 ? o->pca : (int)CN_MIN(CN_MIN((int64_t)TSNE_DEFAULT_PCA, di[1]), CN_MAX(s.n, 1));
    if (rc == CN_OK && o->pca <= 0 && K < TSNE_DEFAULT_PCA)
        cn_log("PCA to %d dimensions (default %d > embedding size %lld or points %lld)", K, TSNE_DEFAULT_PCA,
               (long long)di[1], (long long)s.n);
    if (rc == CN_OK && (K < 1 || K > di[1] || K > s.n))
        rc = cn_fail(K > di[1] ? CN_E_USAGE : CN_E_DATA,
                     "%s: --pca %d must be between 1 and min(embedding size %lld, sampled points %lld)", o->path,
                     K, (long long)di[1], (long long)s.n);
    if (rc == CN_OK && s.n < 2) rc = cn_fail(CN_E_DATA, "%s: fewer than 2 valid points to export", o->path);
    if (rc == CN_OK) {
        const int64_t block = o->block_rows > 0 ? o->block_rows : TSNE_BLOCK_ROWS;
        int64_t b0, b1;
        split_range(CN_CEIL_DIV(s.n, block), cn_rank(), cn_nranks(), &b0, &b1);
        int64_t p0 = CN_MIN(b0 * block, s.n), p1 = CN_MIN(b1 * block, s.n);
        pca.D = di[1];
        pca.K = K;
        pca.mean = mallocCheck(sizeof(double) * (size_t)pca.D);
        pca.components = mallocCheck(sizeof(double) * (size_t)(pca.K * pca.D));
        pca.eigenvalues = mallocCheck(sizeof(double) * (size_t)pca.K);
        pca.X = mallocCheck(sizeof(float) * (size_t)((p1 - p0) * pca.K + 1));
        cn_log("export-tsne %s: %lld points (images %lld/%lld, positive %lld/%lld, negative %lld/%lld, other "
               "%lld/%lld), D=%lld -> K=%d, variants %s, %d ranks",
               o->path, (long long)s.n, (long long)s.quota[0], (long long)s.avail[0], (long long)s.quota[1],
               (long long)s.avail[1], (long long)s.quota[2], (long long)s.avail[2], (long long)s.quota[3],
               (long long)s.avail[3], (long long)pca.D, pca.K, s.variant_list, cn_nranks());
        double t0 = cn_now();
        rc = run_pca(file, o, &s, p0, p1, block, &pca);
        if (rc == CN_OK) rc = write_tsne(file, o, &s, &pca, p0, p1);
        if (rc == CN_OK) {
            double explained = 0.0;
            for (int k = 0; k < pca.K; k++) explained += pca.eigenvalues[k];
            cn_log("PCA %.2f s; the top %d components explain %.1f%% of the variance", cn_now() - t0, pca.K,
                   pca.total_var > 0 ? 100.0 * explained / pca.total_var : 0.0);
        }
    }
    if (H5Fclose(file) < 0 && rc == CN_OK) rc = cn_fail(CN_E_IO, "%s: closing after writing /tsne failed", o->path);
    sample_free(&s);
    free(pca.mean);
    free(pca.components);
    free(pca.eigenvalues);
    free(pca.X);
    return rc;
}
