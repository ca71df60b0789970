// reduce_io.c — the small HDF5 layer of `clipneg reduce` and `clipneg export-tsne`: open through
// MPI-IO, read hyperslabs/strings/attributes with messages that name the dataset, and write the
// result groups collectively (every rank creates, rank 0 alone contributes data).
// Parallel HDF5 cannot write variable-length *datasets*, so results hold numbers only; strings go
// into attributes (metadata, written collectively with identical values on every rank).
#include <cjson/cJSON.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clipneg/common.h"
#include "clipneg/reduce.h"
#include "h5_internal.h"

// H5Dvlen_reclaim was renamed H5Treclaim in HDF5 1.12 (the old name needs deprecated symbols).
#if H5_VERSION_GE(1, 12, 0)
#define VLEN_RECLAIM H5Treclaim
#else
#define VLEN_RECLAIM H5Dvlen_reclaim
#endif

static const char *g_path = "";  // file name for messages (the last file opened)

int rio_open(const char *path, int writable, hid_t *file) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);  // we report errors ourselves, naming the dataset
    h5_limit_free_lists();
    g_path = path;
    *file = H5I_INVALID_HID;
    if (access(path, writable ? (R_OK | W_OK) : R_OK) != 0)
        return cn_fail(CN_E_IO, "%s: cannot open (%s)", path,
                       access(path, F_OK) != 0 ? "no such file" : "permission denied");
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL);
    hid_t f = H5Fopen(path, writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f < 0) return cn_fail(CN_E_DATA, "%s: not an HDF5 file, or it is open for writing elsewhere", path);
    *file = f;
    return CN_OK;
}

int rio_exists(hid_t file, const char *path) {
    char buf[512];
    size_t len = strlen(path);
    if (len >= sizeof buf) return 0;
    memcpy(buf, path, len + 1);
    // H5Lexists fails (rather than answering 0) when an intermediate group is missing: walk down.
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char saved = buf[i];
        buf[i] = '\0';
        htri_t e = H5Lexists(file, buf, H5P_DEFAULT);
        buf[i] = saved;
        if (e <= 0) return 0;
    }
    return 1;
}

int rio_shape(hid_t file, const char *path, int *rank, int64_t dims[2]) {
    if (!rio_exists(file, path)) return cn_fail(CN_E_DATA, "%s: missing dataset %s", g_path, path);
    hid_t d = H5Dopen2(file, path, H5P_DEFAULT);
    if (d < 0) return cn_fail(CN_E_DATA, "%s: %s is not a dataset", g_path, path);
    hid_t s = H5Dget_space(d);
    int nd = H5Sget_simple_extent_ndims(s);
    hsize_t h[2] = {0, 1};
    int rc = CN_OK;
    if (nd < 1 || nd > 2)
        rc = cn_fail(CN_E_DATA, "%s: %s has %d dimensions, expected 1 or 2", g_path, path, nd);
    else
        H5Sget_simple_extent_dims(s, h, NULL);
    H5Sclose(s);
    H5Dclose(d);
    *rank = nd;
    dims[0] = (int64_t)h[0];
    dims[1] = nd == 2 ? (int64_t)h[1] : 1;
    return rc;
}

enum { RIO_READ_ROWS = 16384 };  // rows per H5Dread (see rio_read)

int rio_read(hid_t file, const char *path, hid_t memtype, int64_t r0, int64_t nr, int64_t c0, int64_t nc,
             void *out) {
    int nd;
    int64_t dims[2];
    int rc = rio_shape(file, path, &nd, dims);
    if (rc) return rc;
    if (r0 < 0 || nr < 0 || r0 + nr > dims[0] || c0 < 0 || nc < 0 || c0 + nc > dims[1])
        return cn_fail(CN_E_DATA, "%s: %s has shape [%lld, %lld], cannot read rows [%lld, %lld) cols [%lld, %lld)",
                       g_path, path, (long long)dims[0], (long long)dims[1], (long long)r0,
                       (long long)(r0 + nr), (long long)c0, (long long)(c0 + nc));
    if (nr == 0 || nc == 0) return CN_OK;
    hid_t d = H5Dopen2(file, path, H5P_DEFAULT);
    hid_t fs = H5Dget_space(d);
    size_t row_bytes = H5Tget_size(memtype) * (size_t)nc;
    herr_t e = 0;
    // In blocks of rows: one H5Dread keeps a record (a few KB) per chunk it touches until it returns,
    // so reading a whole per-text array of a big run at once would cost memory per caption.
    for (int64_t b0 = 0; b0 < nr && e >= 0; b0 += RIO_READ_ROWS) {
        hsize_t start[2] = {(hsize_t)(r0 + b0), (hsize_t)c0}, count[2] = {(hsize_t)CN_MIN(RIO_READ_ROWS, nr - b0), (hsize_t)nc};
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
        hid_t ms = H5Screate_simple(nd, count, NULL);
        e = H5Dread(d, memtype, ms, fs, H5P_DEFAULT, (char *)out + (size_t)b0 * row_bytes);
        H5Sclose(ms);
    }
    H5Sclose(fs);
    H5Dclose(d);
    if (e < 0) return cn_fail(CN_E_DATA, "%s: reading %s failed (wrong type or damaged file)", g_path, path);
    return CN_OK;
}

int rio_read_strings(hid_t file, const char *path, char ***out, int64_t *n) {
    int nd;
    int64_t dims[2];
    *out = NULL;
    *n = 0;
    int rc = rio_shape(file, path, &nd, dims);
    if (rc) return rc;
    if (nd != 1) return cn_fail(CN_E_DATA, "%s: %s should be a 1-D string dataset", g_path, path);
    hid_t d = H5Dopen2(file, path, H5P_DEFAULT);
    hid_t ft = H5Dget_type(d);
    if (H5Tget_class(ft) != H5T_STRING) {
        H5Tclose(ft);
        H5Dclose(d);
        return cn_fail(CN_E_DATA, "%s: %s is not a string dataset", g_path, path);
    }
    char **s = callocCheck((size_t)dims[0], sizeof(char *));
    hid_t mt = H5Tcopy(H5T_C_S1);
    herr_t e;
    if (H5Tis_variable_str(ft) > 0) {
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5T_CSET_UTF8);
        char **raw = callocCheck((size_t)dims[0], sizeof(char *));
        e = H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw);
        if (e >= 0) {
            for (int64_t i = 0; i < dims[0]; i++) s[i] = strdupCheck(raw[i] ? raw[i] : "");
            hid_t sp = H5Dget_space(d);
            VLEN_RECLAIM(mt, sp, H5P_DEFAULT, raw);
            H5Sclose(sp);
        }
        free(raw);
    } else {
        size_t sz = H5Tget_size(ft) + 1;
        H5Tset_size(mt, sz);
        H5Tset_strpad(mt, H5T_STR_NULLTERM);
        char *raw = callocCheck((size_t)dims[0], sz);
        e = H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw);
        if (e >= 0)
            for (int64_t i = 0; i < dims[0]; i++) s[i] = strdupCheck(raw + (size_t)i * sz);
        free(raw);
    }
    H5Tclose(mt);
    H5Tclose(ft);
    H5Dclose(d);
    if (e < 0) {
        rio_free_strings(s, dims[0]);
        return cn_fail(CN_E_DATA, "%s: reading strings of %s failed", g_path, path);
    }
    *out = s;
    *n = dims[0];
    return CN_OK;
}

void rio_free_strings(char **s, int64_t n) {
    if (!s) return;
    for (int64_t i = 0; i < n; i++) free(s[i]);
    free(s);
}

// Opens attribute `name` of `obj`; 0 when missing, <0 when obj is missing.
static hid_t open_attr(hid_t file, const char *obj, const char *name, int *found) {
    *found = 0;
    if (strcmp(obj, "/") != 0 && !rio_exists(file, obj)) return H5I_INVALID_HID;
    if (H5Aexists_by_name(file, obj, name, H5P_DEFAULT) <= 0) return H5I_INVALID_HID;
    *found = 1;
    return H5Aopen_by_name(file, obj, name, H5P_DEFAULT, H5P_DEFAULT);
}

int rio_attr_string(hid_t file, const char *obj, const char *name, char **out) {
    int found;
    *out = NULL;
    hid_t a = open_attr(file, obj, name, &found);
    if (!found) return 0;
    hid_t ft = H5Aget_type(a);
    int rc = 1;
    if (H5Tget_class(ft) != H5T_STRING) {
        rc = -cn_fail(CN_E_DATA, "%s: attribute %s of %s is not a string", g_path, name, obj);
    } else if (H5Tis_variable_str(ft) > 0) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5T_CSET_UTF8);
        char *raw = NULL;
        if (H5Aread(a, mt, &raw) < 0) {
            rc = -cn_fail(CN_E_DATA, "%s: cannot read attribute %s of %s", g_path, name, obj);
        } else {
            *out = strdupCheck(raw ? raw : "");
            hid_t sp = H5Aget_space(a);
            VLEN_RECLAIM(mt, sp, H5P_DEFAULT, &raw);
            H5Sclose(sp);
        }
        H5Tclose(mt);
    } else {
        size_t sz = H5Tget_size(ft) + 1;
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, sz);
        H5Tset_strpad(mt, H5T_STR_NULLTERM);
        char *raw = callocCheck(sz, 1);
        if (H5Aread(a, mt, raw) < 0)
            rc = -cn_fail(CN_E_DATA, "%s: cannot read attribute %s of %s", g_path, name, obj);
        else
            *out = strdupCheck(raw);
        free(raw);
        H5Tclose(mt);
    }
    H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

int rio_attr_int(hid_t file, const char *obj, const char *name, int64_t *out) {
    int found;
    hid_t a = open_attr(file, obj, name, &found);
    if (!found) return 0;
    hid_t ft = H5Aget_type(a);
    int rc = 1;
    if (H5Tget_class(ft) != H5T_INTEGER || H5Aread(a, H5T_NATIVE_INT64, out) < 0)
        rc = -cn_fail(CN_E_DATA, "%s: attribute %s of %s is not an integer", g_path, name, obj);
    H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

// ---- writers -----------------------------------------------------------------------------------

int rio_write(hid_t loc, const char *name, hid_t memtype, hid_t filetype, int rank, const int64_t *dims,
              const void *data) {
    hsize_t h[2] = {0, 0};
    for (int i = 0; i < rank; i++) h[i] = (hsize_t)dims[i];
    hid_t fs = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, h, NULL);
    hid_t d = H5Dcreate2(loc, name, filetype, fs, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0) {
        H5Sclose(fs);
        return cn_fail(CN_E_IO, "%s: cannot create dataset %s", g_path, name);
    }
    hid_t ms = H5Scopy(fs);
    if (cn_rank() != 0) {  // one writer; the others join the collective call with nothing selected
        H5Sselect_none(fs);
        H5Sselect_none(ms);
    }
    hid_t xfer = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(xfer, H5FD_MPIO_COLLECTIVE);
    herr_t e = H5Dwrite(d, memtype, ms, fs, xfer, data);
    H5Pclose(xfer);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(d);
    if (e < 0) return cn_fail(CN_E_IO, "%s: writing dataset %s failed (disk full?)", g_path, name);
    return CN_OK;
}

static int write_attr(hid_t loc, const char *name, hid_t type, hid_t space, const void *data) {
    if (H5Aexists(loc, name) > 0) H5Adelete(loc, name);
    hid_t a = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = a < 0 ? -1 : H5Awrite(a, type, data);
    if (a >= 0) H5Aclose(a);
    if (e < 0) return cn_fail(CN_E_IO, "%s: cannot write attribute %s", g_path, name);
    return CN_OK;
}

int rio_write_attr_string(hid_t loc, const char *name, const char *value) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t s = H5Screate(H5S_SCALAR);
    int rc = write_attr(loc, name, t, s, &value);
    H5Sclose(s);
    H5Tclose(t);
    return rc;
}

int rio_write_attr_int(hid_t loc, const char *name, int64_t value) {
    hid_t s = H5Screate(H5S_SCALAR);
    int rc = write_attr(loc, name, H5T_NATIVE_INT64, s, &value);
    H5Sclose(s);
    return rc;
}

int rio_write_attr_doubles(hid_t loc, const char *name, const double *values, int64_t n) {
    hsize_t h = (hsize_t)n;
    hid_t s = H5Screate_simple(1, &h, NULL);
    int rc = write_attr(loc, name, H5T_NATIVE_DOUBLE, s, values);
    H5Sclose(s);
    return rc;
}

// ---- coordinates of the result groups (collective: every rank calls, rank 0 writes the values) ----

static hid_t collective_dxpl(void) {
    hid_t x = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(x, H5FD_MPIO_COLLECTIVE);
    return x;
}

static int coord_done(int rc, hid_t x, const char *name) {
    H5Pclose(x);
    return rc ? cn_fail(rc, "%s: %s", g_path, name) : CN_OK;
}

int rio_coord_strings(hid_t loc, const char *name, const char *const *strs, int64_t n) {
    hid_t x = collective_dxpl();
    return coord_done(h5_coord_strings(loc, name, strs, n, x, cn_rank() == 0), x, name);
}

int rio_coord_range(hid_t loc, const char *name, int64_t n) {
    hid_t x = collective_dxpl();
    return coord_done(h5_coord_range(loc, name, n, x, cn_rank() == 0, -1), x, name);
}

int rio_coord_doubles(hid_t loc, const char *name, const double *v, int64_t n) {
    hid_t x = collective_dxpl();
    return coord_done(h5_coord(loc, name, H5T_NATIVE_DOUBLE, n, v, x, cn_rank() == 0, -1), x, name);
}

int rio_delete(hid_t file, const char *path) {
    if (!rio_exists(file, path)) return CN_OK;
    if (H5Ldelete(file, path, H5P_DEFAULT) < 0) return cn_fail(CN_E_IO, "%s: cannot delete %s", g_path, path);
    return CN_OK;
}

// ---- work splitting --------------------------------------------------------------------------

void split_range(int64_t n, int rank, int nranks, int64_t *lo, int64_t *hi) {
    int64_t base = n / nranks, extra = n % nranks;
    *lo = rank * base + (rank < extra ? rank : extra);
    *hi = *lo + base + (rank < extra ? 1 : 0);
}

void allgather_items(double *buf, int64_t n_items, int stride) {
    int nranks = cn_nranks();
    if (nranks == 1) return;
    int *counts = mallocCheck(sizeof(int) * (size_t)nranks), *displs = mallocCheck(sizeof(int) * (size_t)nranks);
    for (int r = 0; r < nranks; r++) {
        int64_t lo, hi;
        split_range(n_items, r, nranks, &lo, &hi);
        if ((hi - lo) * stride > 2147483647LL || lo * stride > 2147483647LL)
            cn_die(CN_E_INTERNAL, "allgather_items: %lld items of %d doubles exceed MPI's int counts",
                   (long long)n_items, stride);
        counts[r] = (int)((hi - lo) * stride);
        displs[r] = (int)(lo * stride);
    }
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_DOUBLE, MPI_COMM_WORLD);
    free(counts);
    free(displs);
}

int rio_json_set(const char *json_path, const char *key, cJSON *value) {
    char *text = NULL;
    if (cn_read_file(json_path, &text, NULL) != CN_OK) {
        cJSON_Delete(value);
        return CN_E_IO;
    }
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        cJSON_Delete(value);
        return cn_fail(CN_E_IO, "%s: not the JSON object `clipneg reduce` wrote", json_path);
    }
    cJSON_DeleteItemFromObjectCaseSensitive(root, key);
    cJSON_AddItemToObject(root, key, value);
    char *out = cJSON_Print(root);
    cJSON_Delete(root);
    FILE *fp = fopen(json_path, "w");
    int rc = CN_OK;
    if (!fp || fputs(out, fp) < 0 || fputc('\n', fp) < 0) rc = cn_fail(CN_E_IO, "%s: cannot write", json_path);
    if (fp && fclose(fp) != 0 && rc == CN_OK) rc = cn_fail(CN_E_IO, "%s: cannot write", json_path);
    free(out);
    return rc;
}
