// eval_h5.c — the HDF5 helpers the extra phases of `clipneg eval` share (the item phase,
// eval_items.c, and the classification phases, eval_classify.c): creating their datasets and groups
// while rank 0 creates the file, opening them again on every rank with a shape check (a resumed
// file must be this run's), and collective reads/writes of whole rows. The main phases' datasets
// go through h5out.c's table instead; these are the ones it cannot express.
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>

#include "clipneg/common.h"
#include "eval_internal.h"
#include "h5_internal.h"

// ---- creation (rank 0, serial, inside h5out_create_begin .. commit) -------------------------------
#define H5OK(expr, what) \
    do { \
        if ((expr) < 0) { \
            rc = cn_fail(CN_E_IO, "%s: cannot %s", c->tmp_path, what); \
            goto done; \
        } \
    } while (0)

// Create a chunked (optionally deflated), early-allocated dataset of type t (borrowed), with fill
// value `fill` or none, and write `data` if given (later = 1: its rows come in blocks, eval_h5_write_rows).
static int create_write(H5Creating *c, const char *name, hid_t t, int rank, const hsize_t *dims, const void *fill,
                        const void *data, int later) {
    int rc = CN_OK;
    const int level = c->shape.compression;
    hid_t sp = H5Screate_simple(rank, dims, NULL), d = -1;
    hid_t dcpl = t < 0 ? -1 : h5_dcpl(rank, dims, H5Tis_variable_str(t) > 0 ? 16 : H5Tget_size(t), level, NULL);
    char what[256];
    snprintf(what, sizeof what, "create %s", name);
    H5OK(t < 0 || sp < 0 || dcpl < 0 ? -1 : 0, what);
    if (fill) {
        H5OK(H5Pset_fill_time(dcpl, H5D_FILL_TIME_ALLOC), what);
        H5OK(H5Pset_fill_value(dcpl, t, fill), what);
    } else if (!data && !later && !level) { // (filters need the chunks written: with compression the fill is)
        H5OK(H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER), what); // embeddings: /progress says what is valid
    }
    H5OK(d = H5Dcreate2(c->fid, name, t, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT), what);
    snprintf(what, sizeof what, "write %s", name);
    if (data) H5OK(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), what);
done:
    if (d >= 0) H5Dclose(d);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (sp >= 0) H5Sclose(sp);
    return rc;
}

// create_write with the type of a kind (H5K_F64 does not exist in h5out.h: -1 means float64).
// The file type of kind k (-1: float64, as given); the caller closes it.
static hid_t kind_type(int k) { return k < 0 ? H5Tcopy(H5T_IEEE_F64LE) : h5_type((H5Kind)k); }

static int create_kind(H5Creating *c, const char *name, int k, int rank, const hsize_t *dims, const void *fill,
                       const void *data, int later) {
    hid_t t = kind_type(k);
    int rc = create_write(c, name, t, rank, dims, fill, data, later);
    if (t >= 0) H5Tclose(t);
    return rc;
}

int eval_h5_create(H5Creating *c, const char *name, int k, int rank, const hsize_t *dims, const void *fill,
                       const void *data) {
    return create_kind(c, name, k, rank, dims, fill, data, 0);
}

int eval_h5_create_later(H5Creating *c, const char *name, int k, int rank, const hsize_t *dims) {
    return create_kind(c, name, k, rank, dims, NULL, NULL, 1);
}

int eval_h5_write_rows(H5Creating *c, const char *name, int k, int64_t row0, int64_t nr, const void *data) {
    int rc = CN_OK, rank = 0;
    hid_t t = kind_type(k), d = -1, fs = -1, ms = -1;
    hsize_t dims[3] = {0, 1, 1}, start[3] = {(hsize_t)row0, 0, 0};
    char what[256];
    snprintf(what, sizeof what, "write rows %lld..%lld of %s", (long long)row0, (long long)(row0 + nr), name);
    H5OK(t < 0 ? -1 : 0, what);
    H5OK(d = H5Dopen2(c->fid, name, H5P_DEFAULT), what);
    H5OK(fs = H5Dget_space(d), what);
    rank = H5Sget_simple_extent_ndims(fs);
    H5OK(rank < 1 || rank > 3 || H5Sget_simple_extent_dims(fs, dims, NULL) < 0 ? -1 : 0, what);
    dims[0] = (hsize_t)nr;
    H5OK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, dims, NULL), what);
    H5OK(ms = H5Screate_simple(rank, dims, NULL), what);
    H5OK(H5Dwrite(d, t, ms, fs, H5P_DEFAULT, data), what);
done:
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    if (d >= 0) H5Dclose(d);
    if (t >= 0) H5Tclose(t);
    return rc;
}
#undef H5OK

int eval_h5_group(H5Creating *c, const char *name) {
    hid_t g = H5Gcreate2(c->fid, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return cn_fail(CN_E_IO, "%s: cannot create group %s", c->tmp_path, name);
    H5Gclose(g);
    return CN_OK;
}

// ---- on the open parallel file (every rank) ---------------------------------------------------------
int eval_h5_check_collective(H5Out *o, const char *name) {
    if (!o->check_collective) return CN_OK;
    H5D_mpio_actual_io_mode_t mode;
    uint32_t local_cause = 0, global_cause = 0;
    if (H5Pget_mpio_actual_io_mode(o->dxpl, &mode) < 0 ||
        H5Pget_mpio_no_collective_cause(o->dxpl, &local_cause, &global_cause) < 0)
        return cn_fail(CN_E_IO, "%s: %s: cannot query the I/O mode", o->path, name);
    if (mode == H5D_MPIO_NO_COLLECTIVE || global_cause != H5D_MPIO_COLLECTIVE)
        return cn_fail(CN_E_INTERNAL, "%s: transfer of %s was not collective (mode %d, cause 0x%x)", o->path, name,
                       (int)mode, (unsigned)global_cause);
    return CN_OK;
}

int eval_h5_rows(H5Out *o, hid_t d, const char *name, H5Kind k, int write, int64_t row0, int64_t nr, void *buf) {
    hid_t fs = H5Dget_space(d), ms = -1, t = h5_type(k);
    hsize_t dims[3] = {0, 1, 1};
    int rank = fs < 0 ? -1 : H5Sget_simple_extent_ndims(fs);
    if (rank < 1 || rank > 3 || H5Sget_simple_extent_dims(fs, dims, NULL) < 0) {
        if (fs >= 0) H5Sclose(fs);
        H5Tclose(t);
        return cn_fail(CN_E_IO, "%s: %s: cannot read its shape", o->path, name);
    }
    herr_t st;
    if (nr > 0) {
        hsize_t start[3] = {(hsize_t)row0, 0, 0}, count[3] = {(hsize_t)nr, dims[1], dims[2]};
        st = H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
        ms = H5Screate_simple(rank, count, NULL);
    } else {
        hsize_t one = 1;
        st = H5Sselect_none(fs);
        ms = H5Screate_simple(1, &one, NULL);
        if (ms >= 0 && st >= 0) st = H5Sselect_none(ms);
    }
    if (st >= 0 && ms >= 0) st = write ? H5Dwrite(d, t, ms, fs, o->dxpl, buf) : H5Dread(d, t, ms, fs, o->dxpl, buf);
    if (ms >= 0) H5Sclose(ms);
    H5Sclose(fs);
    H5Tclose(t);
    if (st < 0 || ms < 0)
        return cn_fail(CN_E_IO, "%s: cannot %s rows [%lld, %lld) of %s", o->path, write ? "write" : "read",
                       (long long)row0, (long long)(row0 + nr), name);
    return eval_h5_check_collective(o, name);
}

int eval_h5_open_shape(Eval *e, const char *name, int rank, const hsize_t *want, const char *writer, hid_t *d) {
    *d = H5Dopen2(e->out.fid, name, H5P_DEFAULT);
    if (*d < 0)
        return cn_fail(CN_E_RESUME, "%s: has no %s: it was not written by %s (use --fresh)", e->out_path, name, writer);
    hsize_t have[3] = {0, 1, 1};
    hid_t fs = H5Dget_space(*d);
    int frank = H5Sget_simple_extent_ndims(fs);
    H5Sget_simple_extent_dims(fs, have, NULL);
    H5Sclose(fs);
    int same = frank == rank;
    for (int j = 0; j < rank && same; j++) same = have[j] == want[j];
    if (!same)
        return cn_fail(CN_E_RESUME, "%s: %s has another shape than this run's (not written by %s? use --fresh)", e->out_path,
                       name, writer);
    return CN_OK;
}
