// h5read.c — reading an existing evaluation file serially: the resume check (what the file says
// about its job, model, shape and finished shards) and helpers for `clipneg info`.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/h5out.h"

int64_t h5_dataset_len(hid_t fid, const char *dset, int *rank, hsize_t dims[2]) {
    dims[0] = dims[1] = 0;
    if (rank) *rank = 0;
    if (H5Lexists(fid, dset, H5P_DEFAULT) <= 0) return -1;
    hid_t d = H5Dopen2(fid, dset, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t sp = H5Dget_space(d);
    int r = H5Sget_simple_extent_ndims(sp);
    if (r < 0 || r > 2)
        r = -1;
    else
        H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    H5Dclose(d);
    if (r < 0) return -1;
    if (rank) *rank = r;
    return r == 0 ? 1 : (int64_t)(dims[0] * (r == 2 ? dims[1] : 1));
}

int h5_read_all(hid_t fid, const char *dset, H5Kind k, void *buf, int64_t n) {
    int rank;
    hsize_t dims[2];
    int64_t len = h5_dataset_len(fid, dset, &rank, dims);
    if (len < 0) return cn_fail(CN_E_IO, "dataset %s is missing", dset);
    if (len != n)
        return cn_fail(CN_E_IO, "dataset %s has %lld elements, expected %lld", dset, (long long)len, (long long)n);
    if (n == 0) return CN_OK;
    hid_t d = H5Dopen2(fid, dset, H5P_DEFAULT), t = h5_type(k);
    herr_t e = (d >= 0 && t >= 0) ? H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) : -1;
    if (t >= 0) H5Tclose(t);
    if (d >= 0) H5Dclose(d);
    return e < 0 ? cn_fail(CN_E_IO, "dataset %s cannot be read", dset) : CN_OK;
}

// Rows [row0, row0 + n) of the 1-D dataset `dset` (whose length has been checked).
static int read_range(hid_t fid, const char *dset, H5Kind k, int64_t row0, int64_t n, void *buf) {
    hid_t d = H5Dopen2(fid, dset, H5P_DEFAULT), t = h5_type(k);
    hid_t fs = d >= 0 ? H5Dget_space(d) : -1;
    hsize_t start = (hsize_t)row0, count = (hsize_t)n;
    hid_t ms = H5Screate_simple(1, &count, NULL);
    herr_t e = (d >= 0 && t >= 0 && fs >= 0 && ms >= 0 &&
                H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL) >= 0)
                   ? H5Dread(d, t, ms, fs, H5P_DEFAULT, buf)
                   : -1;
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    if (t >= 0) H5Tclose(t);
    if (d >= 0) H5Dclose(d);
    return e < 0 ? cn_fail(CN_E_IO, "dataset %s cannot be read", dset) : CN_OK;
}

int h5_status_lines(hid_t fid, int64_t n_img, int64_t n_text, char *img_line, char *txt_line, size_t n) {
    enum { BLOCK = 1 << 16 };  // rows read at a time: memory stays flat for millions of texts
    int8_t *ist = mallocCheck((size_t)n_img + 1), *tst = mallocCheck(BLOCK), *trunc = mallocCheck(BLOCK);
    int64_t ic[5] = {0}, tc[5] = {0}, n_trunc = 0; // ic by image status; tc[0] pending, tc[s+1] text status s
    int rc = h5_read_all(fid, "/images/status", H5K_I8, ist, n_img);
    int rank;
    hsize_t dims[2];
    if (!rc && h5_dataset_len(fid, "/texts/status", &rank, dims) != n_text)
        rc = cn_fail(CN_E_IO, "dataset /texts/status is missing or has not %lld elements", (long long)n_text);
    if (!rc && h5_dataset_len(fid, "/texts/truncated", &rank, dims) != n_text)
        rc = cn_fail(CN_E_IO, "dataset /texts/truncated is missing or has not %lld elements", (long long)n_text);
    for (int64_t t0 = 0; t0 < n_text && !rc; t0 += BLOCK) {
        int64_t m = CN_MIN((int64_t)BLOCK, n_text - t0);
        if ((rc = read_range(fid, "/texts/status", H5K_I8, t0, m, tst))) break;
        if ((rc = read_range(fid, "/texts/truncated", H5K_I8, t0, m, trunc))) break;
        for (int64_t t = 0; t < m; t++) {
            tc[tst[t] >= 0 && tst[t] <= 3 ? tst[t] + 1 : 0]++;
            n_trunc += trunc[t] == 1;
        }
    }
    if (!rc) {
        for (int64_t i = 0; i < n_img; i++) ic[ist[i] >= 0 && ist[i] <= 4 ? ist[i] : 0]++;
        snprintf(img_line, n, "images: %lld ok, %lld missing file, %lld decode error, %lld refused, %lld pending",
                 (long long)ic[1], (long long)ic[2], (long long)ic[3], (long long)ic[4], (long long)ic[0]);
        snprintf(txt_line, n, "texts: %lld ok, %lld no subject, %lld empty caption, %lld no negative, %lld pending; "
                              "%lld truncated", (long long)tc[1], (long long)tc[2], (long long)tc[3], (long long)tc[4],
                 (long long)tc[0], (long long)n_trunc);
    }
    free(ist);
    free(tst);
    free(trunc);
    return rc;
}

// Length of a 1-D dataset, or a failure naming it.
static int len1(hid_t fid, const char *path, const char *dset, int64_t *n) {
    int rank;
    hsize_t dims[2];
    *n = h5_dataset_len(fid, dset, &rank, dims);
    if (*n < 0 || rank != 1) return cn_fail(CN_E_RESUME, "%s: dataset %s is missing or not 1-D", path, dset);
    return CN_OK;
}

static int read_flags(hid_t fid, const char *path, const char *dset, uint8_t **out, int64_t *n) {
    int rc = len1(fid, path, dset, n);
    if (rc) return rc;
    *out = callocCheck((size_t)*n + 1, 1);
    if (h5_read_all(fid, dset, H5K_U8, *out, *n)) return cn_fail(CN_E_RESUME, "%s: %s cannot be read", path, dset);
    return CN_OK;
}

static int inspect_open(const char *path, H5Existing *ex, hid_t fid) {
    char *fmt = NULL;
    int64_t ver = 0, v = 0;
    if (h5_attr_read_str(fid, "format", &fmt) || strcmp(fmt, "clipneg-eval") != 0 ||
        h5_attr_read_int(fid, "format_version", &ver) || ver < 1 || ver > H5OUT_FORMAT_VERSION) {
        free(fmt);
        return cn_fail(CN_E_RESUME,
                       "%s is not a clipneg eval output (format/format_version attributes), refusing to touch it",
                       path);
    }
    free(fmt);
    ex->ok_format = 1;
    ex->version = (int)ver;
    if (h5_attr_read_int(fid, "complete", &v)) return cn_fail(CN_E_RESUME, "%s: attribute 'complete' is missing", path);
    ex->complete = v == 1;
    if (h5_attr_read_str(fid, "job_sha256", &ex->job_sha256) ||
        h5_attr_read_str(fid, "model_sha256", &ex->model_sha256))
        return cn_fail(CN_E_RESUME, "%s: attribute job_sha256/model_sha256 is missing", path);
    H5Shape *sh = &ex->shape;
    int rc;
    if ((rc = len1(fid, path, "/images/status", &sh->n_img)) || (rc = len1(fid, path, "/captions/id", &sh->n_cap)) ||
        (rc = len1(fid, path, "/variants/name", &sh->n_var)) || (rc = len1(fid, path, "/texts/status", &sh->n_text)))
        return rc;
    hid_t g = H5Gopen2(fid, "/progress", H5P_DEFAULT);
    if (g < 0) return cn_fail(CN_E_RESUME, "%s: group /progress is missing", path);
    int64_t emb_in_file = 1;
    rc = h5_attr_read_int(g, "text_shard", &sh->text_shard) || h5_attr_read_int(g, "image_shard", &sh->image_shard) ||
         h5_attr_read_int(g, "embedding_dim", &sh->dim) || h5_attr_read_int(g, "embeddings_in_file", &emb_in_file);
    H5Gclose(g);
    if (rc) return cn_fail(CN_E_RESUME, "%s: /progress attributes text_shard/image_shard/embedding_dim missing", path);
    sh->store_embeddings = (int)emb_in_file;
    int rank;
    hsize_t dims[2];
    ex->has_full = h5_dataset_len(fid, "/similarity/full", &rank, dims) >= 0;
    sh->full_similarity = ex->has_full;
    if (ex->has_full) {
        hid_t d = H5Dopen2(fid, "/similarity/full", H5P_DEFAULT), t = H5Dget_type(d);
        sh->full_f16 = H5Tget_size(t) == 2;
        H5Tclose(t);
        H5Dclose(d);
    }
    if ((rc = read_flags(fid, path, "/progress/text_shards", &ex->text_done, &ex->n_text_shards))) return rc;
    int64_t n_sim;
    if ((rc = read_flags(fid, path, "/progress/image_shards", &ex->image_done, &ex->n_image_shards))) return rc;
    if ((rc = read_flags(fid, path, "/progress/sim_shards", &ex->sim_done, &n_sim))) return rc;
    if (n_sim != ex->n_image_shards)
        return cn_fail(CN_E_RESUME, "%s: /progress/sim_shards and image_shards differ in length", path);
    return CN_OK;
}

int h5out_inspect(const char *path, H5Existing *ex) {
    memset(ex, 0, sizeof *ex);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t fid = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (fid < 0)
        return cn_fail(CN_E_IO, "%s exists but is not a readable HDF5 file (use --fresh to overwrite it)", path);
    int rc = inspect_open(path, ex, fid);
    H5Fclose(fid);
    return rc;
}

void h5out_existing_free(H5Existing *ex) {
    free(ex->job_sha256);
    free(ex->model_sha256);
    free(ex->text_done);
    free(ex->image_done);
    free(ex->sim_done);
    memset(ex, 0, sizeof *ex);
}
