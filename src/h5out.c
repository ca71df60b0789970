// h5out.c — creating the evaluation file (rank 0, serial, atomic rename) and the collective
// parallel writer. See include/clipneg/h5out.h for why creation and strings are serial.
#define _POSIX_C_SOURCE 200809L
#include "clipneg/h5out.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "clipneg/common.h"
#include "h5_internal.h"

// ---- error reporting: HDF5's own reason, appended to ours --------------------------------------
// Set by every failed HDF5 call of this file. HDF5 1.10 cannot recover from a failed write: after a
// flush fails (disk full, file size limit) the file object is corrupt, and closing it — explicitly,
// at exit, or from the hook HDF5 hangs on MPI_Finalize — crashes. So once broken, handles are
// abandoned instead of closed, and `clipneg eval` leaves with _exit (see cmd_eval.c).
static int g_h5_broken = 0;

int h5out_broken(void) { return g_h5_broken; }

typedef struct {
    char text[512];
    int frames;
} H5Detail;

// The stack is walked from the innermost frame (the root cause: the system call's message, or the
// MPI error string) outward; keep the two innermost descriptions.
static herr_t walk_cb(unsigned n, const H5E_error2_t *err, void *data) {
    (void)n;
    H5Detail *d = data;
    if (!err->desc || !err->desc[0] || d->frames >= 2) return 0;
    char one[256];
    // sec2 writes "file write failed: time = ..., errno = 28, error message = 'No space left on
    // device', ..." (with a newline in the time): keep the message itself
    const char *em = strstr(err->desc, "error message = '");
    if (em) {
        em += strlen("error message = '");
        const char *end = strchr(em, '\'');
        snprintf(one, sizeof one, "%.*s", end ? (int)(end - em) : 200, em);
    } else {
        snprintf(one, sizeof one, "%s", err->desc);
    }
    for (char *c = one; *c; c++)
        if (*c == '\n') *c = ' ';
    size_t len = strlen(d->text);
    snprintf(d->text + len, sizeof d->text - len, "%s%s", d->frames ? "; " : "", one);
    d->frames++;
    return 0;
}

// Fail with "<what> (HDF5: <reason>)" (HDF5's own printing is turned off, see h5_quiet). Must be
// called right after the failing call: any later HDF5 call clears the error stack.
// Variadic on purpose: messages with long paths are cut at the buffer, never overflow it.
__attribute__((format(printf, 4, 5))) static int h5_fail(int code, const char *file, int line, const char *fmt, ...) {
    // The MPI-IO driver reports a short write as "file write failed" without the system's reason;
    // the failed pwrite's errno is still here, so name the usual causes (disk full, quota, ulimit -f).
    int err = errno;
    char what[1024];
    H5Detail detail = {"", 0};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, &detail);
    H5Eclear2(H5E_DEFAULT);
    if ((err == ENOSPC || err == EDQUOT || err == EFBIG) && !strstr(detail.text, strerror(err))) {
        size_t len = strlen(detail.text);
        snprintf(detail.text + len, sizeof detail.text - len, "%s%s", len ? "; " : "", strerror(err));
    }
    g_h5_broken = 1;
    return cn_fail(code, "%s (HDF5: %s) [%s:%d]", what, detail.text[0] ? detail.text : "unknown error", file, line);
}
// The h5Check of this file: on a negative HDF5 return, fail naming the file and the object.
#define H5TRY(expr, ...) \
    do { \
        if ((expr) < 0) return h5_fail(CN_E_IO, __FILE__, __LINE__, __VA_ARGS__); \
    } while (0)

static void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static int make_groups(hid_t fid, const char *const *groups, const char *file) {
    for (int i = 0; groups[i]; i++) {
        hid_t g;
        H5TRY(g = H5Gcreate2(fid, groups[i], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "%s: cannot create group %s", file,
              groups[i]);
        H5Gclose(g);
    }
    return CN_OK;
}

// Fill values: what a pending row reads as (status 0 "pending" for images, -1 for texts, NaN sims).
static const void *fill_value(H5DsId id, H5Kind k) {
    static const int8_t minus_one = -1;
    static const float nan_f = NAN;
    if (id == DS_TXT_STATUS) return &minus_one;
    if (id == DS_SIM_PAIRED && k == H5K_F32) return &nan_f;
    return NULL;
}

// Chunks along the writers' blocks: a text shard's rows, an image shard's rows (x a tile of texts for
// /similarity/full). NULL (the default ~1 MiB chunks) for the caption-indexed and small datasets.
static const hsize_t *chunk_hint(H5DsId id, const H5Shape *sh, hsize_t hint[2]) {
    hint[0] = hint[1] = 0;
    switch (id) {
    case DS_TXT_STATUS:
    case DS_TXT_N_TOKENS:
    case DS_TXT_TRUNCATED:
    case DS_EMB_TEXT: hint[0] = (hsize_t)sh->text_shard; return hint;
    case DS_IMG_STATUS:
    case DS_EMB_IMAGE: hint[0] = (hsize_t)sh->image_shard; return hint;
    case DS_SIM_FULL:
        hint[0] = (hsize_t)sh->image_shard;
        hint[1] = (hsize_t)(sh->tile_texts > 0 ? sh->tile_texts : 0);
        return hint;
    default: return NULL;
    }
}

static int create_dataset(hid_t fid, const char *file, H5DsId id, const H5Shape *sh) {
    hsize_t dims[2];
    int rank = h5ds_dims(id, sh, dims);
    if (rank == 0) return CN_OK;
    H5Kind k = h5ds_kind(id, sh);
    const char *name = h5ds_path(id);
    hid_t t = h5_type(k), sp = H5Screate_simple(rank, dims, NULL);
    // Chunked (optionally deflated) + early allocation: every chunk exists from the start, so the
    // parallel writers change no structure for uncompressed data and a killed run leaves a valid file
    // (compressed chunks move when rewritten: see docs/hdf5-schema.md, "Compression").
    hsize_t hint[2];
    const hsize_t *hp = chunk_hint(id, sh, hint);
    hid_t dcpl = t < 0 ? -1 : h5_dcpl(rank, dims, k == H5K_STR ? 16 : H5Tget_size(t), sh->compression, hp);
    if (t < 0 || sp < 0 || dcpl < 0)
        return h5_fail(CN_E_IO, __FILE__, __LINE__, "%s: %s: cannot make a type/space/layout", file, name);
    int big = (id == DS_EMB_IMAGE || id == DS_EMB_TEXT || id == DS_SIM_FULL);
    if (big) {
        // Never write a fill for the big matrices (GBs at creation); /progress says what is valid.
        // (Filters need chunks that exist: with compression the fill is written, compressed.)
        if (!sh->compression) H5TRY(H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER), "%s: %s: fill time", file, name);
    } else if (k != H5K_STR) {
        H5TRY(H5Pset_fill_time(dcpl, H5D_FILL_TIME_ALLOC), "%s: %s: fill time", file, name);
        const void *fv = fill_value(id, k);
        if (fv) H5TRY(H5Pset_fill_value(dcpl, t, fv), "%s: %s: fill value", file, name);
    }
    hid_t d;
    H5TRY(d = H5Dcreate2(fid, name, t, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT), "%s: cannot create dataset %s", file, name);
    if (id == DS_VAR_POLARITY) {
        int rc = h5_attr_write_str(d, "labels", "positive,negative,other");
        if (rc) return cn_fail(rc, "%s: %s: cannot write attribute 'labels'", file, name);
    }
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Tclose(t);
    return CN_OK;
}

void h5out_scratch_path(const char *path, char *out, size_t n) { snprintf(out, n, "%s.embeddings-scratch", path); }

// Prefix the pending message with the file name (copied first: cn_fail writes the same buffer).
static int fail_prefixed(int code, const char *prefix) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", cn_last_error());
    return cn_fail(code, "%s: %s", prefix, msg);
}
#define ATTR(call, file) \
    do { \
        int rc_ = (call); \
        if (rc_) return fail_prefixed(rc_, (file)); \
    } while (0)

static int write_root_attrs(hid_t fid, const char *file, const H5Provenance *pv) {
    ATTR(h5_attr_write_str(fid, "format", "clipneg-eval"), file);
    ATTR(h5_attr_write_int(fid, "format_version", H5OUT_FORMAT_VERSION), file);
    ATTR(h5_attr_write_str(fid, "clipneg_version", CLIPNEG_VERSION), file);
    ATTR(h5_attr_write_str(fid, "git_commit", CLIPNEG_GIT_COMMIT), file);
    ATTR(h5_attr_write_str(fid, "job_text", pv->job_text), file);
    ATTR(h5_attr_write_str(fid, "job_sha256", pv->job_sha256), file);
    ATTR(h5_attr_write_str(fid, "variants_text", pv->variants_text), file);
    ATTR(h5_attr_write_str(fid, "model_path", pv->model_path), file);
    ATTR(h5_attr_write_str(fid, "model_arch", pv->model_arch), file);
    ATTR(h5_attr_write_str(fid, "model_sha256", pv->model_sha256), file);
    ATTR(h5_attr_write_str(fid, "base_variant", pv->base_variant), file);
    ATTR(h5_attr_write_int(fid, "random_weights", pv->random_weights), file);
    ATTR(h5_attr_write_str(fid, "backend", pv->backend), file);
    ATTR(h5_attr_write_str(fid, "precision", pv->precision), file);
    ATTR(h5_attr_write_int(fid, "ranks", pv->ranks), file);
    ATTR(h5_attr_write_int(fid, "threads", pv->threads), file);
    ATTR(h5_attr_write_str(fid, "start_time", pv->start_time), file);
    ATTR(h5_attr_write_str(fid, "end_time", ""), file);
    ATTR(h5_attr_write_int(fid, "complete", 0), file);
    return CN_OK;
}

// With compression a rewritten chunk moves; never reusing freed space (file-space strategy NONE)
// keeps the chunk versions the last flushed index points to intact, so a killed run's file still
// reads what was flushed. -1 on failure (HDF5's error stack intact for h5_fail).
static hid_t create_file(const char *p, int compression) {
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    if (fcpl < 0) return -1;
    // Rank 0 writes every string of the run here (millions of rendered texts): HDF5's metadata
    // cache, which holds the global heap of those strings, would grow adaptively to 32 MB and
    // leave that much behind in the process. 2 MB, fixed, writes as fast (docs/performance.md).
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5AC_cache_config_t mdc = {.version = H5AC__CURR_CACHE_CONFIG_VERSION};
    if (fapl >= 0 && H5Pget_mdc_config(fapl, &mdc) >= 0) {
        mdc.set_initial_size = 1;
        mdc.initial_size = mdc.min_size = 1 << 20;
        mdc.max_size = 2 << 20;
        mdc.incr_mode = H5C_incr__off;
        mdc.flash_incr_mode = H5C_flash_incr__off;
        mdc.decr_mode = H5C_decr__off;
        H5Pset_mdc_config(fapl, &mdc);
    }
    // The 1.10 file format: chunked datasets of fixed size get a fixed-array chunk index instead
    // of a version-1 B-tree. The B-tree nodes of the per-text datasets (one chunk per text shard,
    // ~5,400 chunks each at 2.8M texts) stayed in memory as the writers looked chunks up: +12 MiB
    // per rank at 1000x coco-mini (docs/performance.md). Readers need HDF5 >= 1.10 (h5py and
    // h5netcdf wheels of the last years, HDFView >= 3): docs/hdf5-schema.md.
    hid_t f = -1;
    if (fapl < 0 || H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110) < 0) {
        return -1; // left open: see below
    }
    if (!compression || H5Pset_file_space_strategy(fcpl, H5F_FSPACE_STRATEGY_NONE, 0, 1) >= 0)
        f = H5Fcreate(p, H5F_ACC_TRUNC, fcpl, fapl);
    if (f >= 0) H5Pclose(fapl), H5Pclose(fcpl); // on failure left open: any API call would clear the error stack h5_fail reads
    return f;
}

int h5out_create_begin(H5Creating *c, const char *path, const H5Shape *sh, const H5Provenance *pv) {
    h5_quiet();
    memset(c, 0, sizeof *c);
    c->fid = c->emb_fid = -1;
    c->shape = *sh;
    snprintf(c->path, sizeof c->path, "%s", path);
    snprintf(c->tmp_path, sizeof c->tmp_path, "%s.creating", path);
    const char *file = c->path;
    int rc = h5_compression_check(sh->compression);
    if (rc) return rc;
    H5TRY(c->fid = create_file(c->tmp_path, sh->compression), "cannot create output %s", c->tmp_path);
    static const char *const groups[] = {"/images",     "/captions",   "/variants", "/texts",
                                         "/embeddings", "/similarity", "/progress", NULL};
    static const char *const main_groups_no_emb[] = {"/images",     "/captions", "/variants", "/texts",
                                                     "/similarity", "/progress", NULL};
    rc = make_groups(c->fid, sh->store_embeddings ? groups : main_groups_no_emb, file);
    if (rc) return rc;
    c->emb_fid = c->fid;
    if (!sh->store_embeddings) {
        h5out_scratch_path(path, c->emb_path, sizeof c->emb_path);
        snprintf(c->emb_tmp_path, sizeof c->emb_tmp_path, "%s.creating", c->emb_path);
        H5TRY(c->emb_fid = create_file(c->emb_tmp_path, sh->compression),
              "cannot create the embeddings scratch file %s", c->emb_tmp_path);
        static const char *const emb_groups[] = {"/embeddings", NULL};
        if ((rc = make_groups(c->emb_fid, emb_groups, c->emb_path))) return rc;
    }
    for (int id = 0; id < DS_COUNT; id++) {
        hid_t f = h5ds_in_emb_file(id) ? c->emb_fid : c->fid;
        if ((rc = create_dataset(f, h5ds_in_emb_file(id) && !sh->store_embeddings ? c->emb_path : file, id, sh)))
            return rc;
    }
    if ((rc = write_root_attrs(c->fid, file, pv))) return rc;
    hid_t g;
    H5TRY(g = H5Gopen2(c->fid, "/progress", H5P_DEFAULT), "%s: /progress", file);
    ATTR(h5_attr_write_int(g, "text_shard", sh->text_shard), file);
    ATTR(h5_attr_write_int(g, "image_shard", sh->image_shard), file);
    // additive to the schema: what the resume check needs to rebuild the shape without /embeddings
    ATTR(h5_attr_write_int(g, "embedding_dim", sh->dim), file);
    ATTR(h5_attr_write_int(g, "embeddings_in_file", sh->store_embeddings), file);
    ATTR(h5_attr_write_int(g, "compression", sh->compression), file);
    H5Gclose(g);
    return CN_OK;
}

// The coordinates of the main file's axes (docs/hdf5-schema.md, "Axes"): copies of the id and name
// datasets under the axis name, index ranges, and hard links in /similarity to the coordinates of
// /captions, /variants, /images and /texts (a hard link is the same object: no copy, and HDF5 and
// h5netcdf name the axis after the link's last component, identical in both places).
static int create_coords(H5Creating *c) {
    const H5Shape *sh = &c->shape;
    hid_t f = c->fid;
    const int lv = sh->compression;
    int rc;
    if ((rc = h5_coord_copy(f, "/images/id", "/images/image", lv)) ||
        (rc = h5_coord_copy(f, "/captions/id", "/captions/caption", lv)) ||
        (rc = h5_coord_copy(f, "/variants/name", "/variants/variant", lv)))
        return fail_prefixed(rc, c->path);
    hid_t g;
    H5TRY(g = H5Gopen2(f, "/progress", H5P_DEFAULT), "%s: /progress", c->path);
    rc = h5_coord_range(g, "text_shard", CN_CEIL_DIV(sh->n_text, sh->text_shard), H5P_DEFAULT, 1, lv);
    if (!rc) rc = h5_coord_range(g, "image_shard", CN_CEIL_DIV(sh->n_img, sh->image_shard), H5P_DEFAULT, 1, lv);
    H5Gclose(g);
    if (!rc && sh->store_embeddings) {
        H5TRY(g = H5Gopen2(f, "/embeddings", H5P_DEFAULT), "%s: /embeddings", c->path);
        rc = h5_coord_range(g, "image_row", sh->n_img, H5P_DEFAULT, 1, lv);
        if (!rc) rc = h5_coord_range(g, "text_row", sh->n_text, H5P_DEFAULT, 1, lv);
        if (!rc) rc = h5_coord_range(g, "dim", sh->dim, H5P_DEFAULT, 1, lv);
        H5Gclose(g);
    }
    if (rc) return fail_prefixed(rc, c->path);
    static const char *const links[][2] = {{"/captions/caption", "/similarity/caption"},
                                           {"/variants/variant", "/similarity/variant"},
                                           {"/images/image", "/similarity/image"},
                                           {"/texts/text", "/similarity/text"}};
    for (int i = 0; i < (sh->full_similarity ? 4 : 2); i++)
        H5TRY(H5Lcreate_hard(f, links[i][0], f, links[i][1], H5P_DEFAULT, H5P_DEFAULT), "%s: cannot link %s to %s",
              c->path, links[i][1], links[i][0]);
    return CN_OK;
}

static int serial_write(hid_t fid, const char *file, H5DsId id, const H5Shape *sh, int64_t row0, int64_t n,
                        const void *buf) {
    hsize_t dims[2];
    int rank = h5ds_dims(id, sh, dims);
    if (rank == 0 || row0 < 0 || (hsize_t)(row0 + n) > dims[0])
        return cn_fail(CN_E_INTERNAL, "%s: %s: rows [%lld, %lld) outside [0, %llu)", file, h5ds_path(id),
                       (long long)row0, (long long)(row0 + n), (unsigned long long)dims[0]);
    if (n == 0) return CN_OK;
    hid_t d, fs, ms, t = h5_type(h5ds_kind(id, sh));
    H5TRY(d = H5Dopen2(fid, h5ds_path(id), H5P_DEFAULT), "%s: cannot open %s", file, h5ds_path(id));
    hsize_t start[2] = {(hsize_t)row0, 0}, count[2] = {(hsize_t)n, dims[1]};
    H5TRY(fs = H5Dget_space(d), "%s: %s: space", file, h5ds_path(id));
    H5TRY(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL), "%s: %s: select rows", file,
          h5ds_path(id));
    H5TRY(ms = H5Screate_simple(rank, count, NULL), "%s: %s: memory space", file, h5ds_path(id));
    H5TRY(H5Dwrite(d, t, ms, fs, H5P_DEFAULT, buf), "%s: cannot write rows [%lld, %lld) of %s", file, (long long)row0,
          (long long)(row0 + n), h5ds_path(id));
    H5Sclose(ms);
    H5Sclose(fs);
    H5Tclose(t);
    H5Dclose(d);
    return CN_OK;
}

int h5c_write_rows(H5Creating *c, H5DsId id, int64_t row0, int64_t n, const void *buf) {
    return serial_write(h5ds_in_emb_file(id) ? c->emb_fid : c->fid, c->path, id, &c->shape, row0, n, buf);
}

int h5c_write_strings(H5Creating *c, H5DsId id, int64_t row0, int64_t n, const char *const *strs) {
    return serial_write(c->fid, c->path, id, &c->shape, row0, n, strs);
}

int h5out_create_commit(H5Creating *c) {
    // every dataset exists now (items included): coordinates, dimension scales, descriptions
    int rc = create_coords(c);
    if (!rc) rc = h5_document(c->fid, H5DOC_EVAL, c->path);
    if (!rc) rc = h5_document(c->fid, H5DOC_ITEMS, c->path);
    if (!rc) rc = h5_document(c->fid, H5DOC_CLASSIFY, c->path);
    if (rc) return rc;
    int two = c->emb_fid != c->fid;
    if (two && c->emb_fid >= 0) H5TRY(H5Fclose(c->emb_fid), "cannot close %s", c->emb_tmp_path);
    if (c->fid >= 0) H5TRY(H5Fclose(c->fid), "cannot close %s", c->tmp_path);
    c->fid = c->emb_fid = -1;
    if (two && rename(c->emb_tmp_path, c->emb_path) != 0)
        return cn_fail(CN_E_IO, "cannot rename %s to %s: %s", c->emb_tmp_path, c->emb_path, strerror(errno));
    if (rename(c->tmp_path, c->path) != 0)
        return cn_fail(CN_E_IO, "cannot rename %s to %s: %s", c->tmp_path, c->path, strerror(errno));
    return CN_OK;
}

void h5out_create_abort(H5Creating *c) {
    if (!g_h5_broken) { // else abandoned: closing a file whose write failed crashes HDF5 1.10
        if (c->emb_fid >= 0 && c->emb_fid != c->fid) H5Fclose(c->emb_fid);
        if (c->fid >= 0) H5Fclose(c->fid);
    }
    c->fid = c->emb_fid = -1;
    if (c->tmp_path[0]) unlink(c->tmp_path);
    if (c->emb_tmp_path[0]) unlink(c->emb_tmp_path);
}

// ---- parallel writer -------------------------------------------------------------------------------
// Rank 0's status (and message) to every rank, for steps only rank 0 performs.
static int bcast_status(MPI_Comm comm, int rank, int rc) {
    MPI_Bcast(&rc, 1, MPI_INT, 0, comm);
    if (rc == CN_OK) return CN_OK;
    char msg[1024];
    if (rank == 0) snprintf(msg, sizeof msg, "%s", cn_last_error());
    MPI_Bcast(msg, sizeof msg, MPI_CHAR, 0, comm);
    return cn_fail(rc, "%s", msg);
}

// Agree on the worst status of all ranks (collective steps where any rank may fail).
static int agree(MPI_Comm comm, int rc) {
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, comm);
    if (worst != CN_OK && rc == CN_OK) return cn_fail(worst, "another rank failed in an HDF5 step (see its message)");
    return worst;
}

static int open_handles(H5Out *o) {
    h5_quiet();
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5TRY(H5Pset_fapl_mpio(fapl, o->comm, MPI_INFO_NULL), "%s: MPI-IO driver", o->path);
    // metadata reads/writes collective: every rank opens the same objects in the same order
    H5TRY(H5Pset_all_coll_metadata_ops(fapl, 1), "%s: collective metadata", o->path);
    H5TRY(H5Pset_coll_metadata_write(fapl, 1), "%s: collective metadata", o->path);
    H5TRY(o->fid = H5Fopen(o->path, H5F_ACC_RDWR, fapl), "cannot open %s for parallel writing", o->path);
    o->emb_fid = o->fid;
    if (!o->shape.store_embeddings)
        H5TRY(o->emb_fid = H5Fopen(o->emb_path, H5F_ACC_RDWR, fapl), "cannot open the embeddings scratch file %s",
              o->emb_path);
    H5Pclose(fapl);
    for (int id = 0; id < DS_COUNT; id++) {
        o->dset[id] = -1;
        hsize_t dims[2];
        // strings are never written through MPI-IO (HDF5 refuses): no handle needed
        if (h5ds_dims(id, &o->shape, dims) == 0 || h5ds_kind(id, &o->shape) == H5K_STR) continue;
        hid_t f = h5ds_in_emb_file(id) ? o->emb_fid : o->fid;
        H5TRY(o->dset[id] = H5Dopen2(f, h5ds_path(id), H5P_DEFAULT), "%s: cannot open dataset %s", o->path,
              h5ds_path(id));
    }
    return CN_OK;
}

static int close_handles(H5Out *o) {
    // collective: if any rank's HDF5 state is broken, every rank abandons its handles (a collective
    // close that one rank skips would hang the others)
    int broken = g_h5_broken, any = 0;
    MPI_Allreduce(&broken, &any, 1, MPI_INT, MPI_MAX, o->comm);
    int rc = CN_OK;
    for (int id = 0; id < DS_COUNT; id++) {
        if (!any && o->dset[id] >= 0 && H5Dclose(o->dset[id]) < 0)
            rc = h5_fail(CN_E_IO, __FILE__, __LINE__, "%s: cannot close %s", o->path, h5ds_path(id));
        o->dset[id] = -1;
    }
    if (!any && o->emb_fid >= 0 && o->emb_fid != o->fid && H5Fclose(o->emb_fid) < 0)
        rc = h5_fail(CN_E_IO, __FILE__, __LINE__, "cannot close %s", o->emb_path);
    if (!any && o->fid >= 0 && H5Fclose(o->fid) < 0)
        rc = h5_fail(CN_E_IO, __FILE__, __LINE__, "cannot close %s", o->path);
    o->fid = o->emb_fid = -1;
    if (any) g_h5_broken = 1;
    return rc;
}

int h5out_open(H5Out *o, const char *path, const H5Shape *sh, MPI_Comm comm) {
    memset(o, 0, sizeof *o);
    o->comm = comm;
    MPI_Comm_rank(comm, &o->rank);
    MPI_Comm_size(comm, &o->nranks);
    o->shape = *sh;
    o->fid = o->emb_fid = o->dxpl = -1;
    for (int i = 0; i < DS_COUNT; i++) o->dset[i] = -1;
    snprintf(o->path, sizeof o->path, "%s", path);
    h5out_scratch_path(path, o->emb_path, sizeof o->emb_path);
    const char *chk = getenv("CLIPNEG_H5_CHECK_COLLECTIVE");
    o->check_collective = chk && atoi(chk) > 0;
    int rc = open_handles(o);
    if (rc == CN_OK) {
        o->dxpl = H5Pcreate(H5P_DATASET_XFER);
        if (o->dxpl < 0 || H5Pset_dxpl_mpio(o->dxpl, H5FD_MPIO_COLLECTIVE) < 0)
            rc = h5_fail(CN_E_IO, __FILE__, __LINE__, "%s: collective transfer property", o->path);
    }
    return agree(comm, rc);
}

// Why a write may have failed, when the MPI-IO driver only says "file write failed": a full
// filesystem or the file size limit (ulimit -f). "" when neither applies.
static void write_diagnosis(const char *path, int write, char *out, size_t n) {
    out[0] = '\0';
    if (!write) return;
    struct statvfs fs;
    if (statvfs(path, &fs) == 0 && (unsigned long long)fs.f_bavail * fs.f_frsize < (1ull << 20)) {
        snprintf(out, n, ": No space left on device (%llu bytes free on its filesystem)",
                 (unsigned long long)fs.f_bavail * fs.f_frsize);
        return;
    }
    struct rlimit rl;
    struct stat st;
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && stat(path, &st) == 0 &&
        (unsigned long long)st.st_size + (1ull << 20) >= (unsigned long long)rl.rlim_cur)
        snprintf(out, n, ": File too large (the file size limit, ulimit -f, is %llu bytes)",
                 (unsigned long long)rl.rlim_cur);
}

// One collective read or write of a (rows x cols) block; nr == 0 selects none.
static int rw_block(H5Out *o, H5DsId id, int write, int64_t row0, int64_t nr, int64_t col0, int64_t nc, void *buf) {
    hid_t d = o->dset[id];
    hsize_t dims[2];
    int rank = h5ds_dims(id, &o->shape, dims);
    if (d < 0 || rank == 0) return cn_fail(CN_E_INTERNAL, "%s: dataset %s is not open", o->path, h5ds_path(id));
    if (rank == 1) {
        col0 = 0;
        nc = 1;
        dims[1] = 1;
    }
    if (nr > 0 && (row0 < 0 || col0 < 0 || (hsize_t)(row0 + nr) > dims[0] || (hsize_t)(col0 + nc) > dims[1]))
        return cn_fail(CN_E_INTERNAL, "%s: %s: block [%lld+%lld, %lld+%lld) outside [%llu, %llu]", o->path,
                       h5ds_path(id), (long long)row0, (long long)nr, (long long)col0, (long long)nc,
                       (unsigned long long)dims[0], (unsigned long long)dims[1]);
    hid_t fs, ms, t = h5_type(h5ds_kind(id, &o->shape));
    H5TRY(fs = H5Dget_space(d), "%s: %s: space", o->path, h5ds_path(id));
    if (nr > 0 && nc > 0) {
        hsize_t start[2] = {(hsize_t)row0, (hsize_t)col0}, count[2] = {(hsize_t)nr, (hsize_t)nc};
        H5TRY(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL), "%s: %s: select", o->path,
              h5ds_path(id));
        H5TRY(ms = H5Screate_simple(rank, count, NULL), "%s: %s: memory space", o->path, h5ds_path(id));
    } else { // this rank has nothing in this step but still joins the collective call
        hsize_t one = 1;
        H5TRY(H5Sselect_none(fs), "%s: %s: select none", o->path, h5ds_path(id));
        H5TRY(ms = H5Screate_simple(1, &one, NULL), "%s: %s: memory space", o->path, h5ds_path(id));
        H5TRY(H5Sselect_none(ms), "%s: %s: select none", o->path, h5ds_path(id));
    }
    herr_t e = write ? H5Dwrite(d, t, ms, fs, o->dxpl, buf) : H5Dread(d, t, ms, fs, o->dxpl, buf);
    int rc = CN_OK;
    if (e < 0) { // before the closes below, which clear HDF5's error stack
        char why[300];
        const char *file = h5ds_in_emb_file(id) && !o->shape.store_embeddings ? o->emb_path : o->path;
        write_diagnosis(file, write, why, sizeof why);
        rc = h5_fail(CN_E_IO, __FILE__, __LINE__, "%s: cannot %s rows [%lld, %lld) of %s%s", o->path,
                     write ? "write" : "read", (long long)row0, (long long)(row0 + nr), h5ds_path(id), why);
    }
    H5Sclose(ms);
    H5Sclose(fs);
    H5Tclose(t);
    if (rc) return rc;
    if (o->check_collective) {
        // Verify HDF5 really did collective I/O (a type conversion or filter silently disables it).
        H5D_mpio_actual_io_mode_t mode;
        uint32_t local_cause = 0, global_cause = 0;
        H5TRY(H5Pget_mpio_actual_io_mode(o->dxpl, &mode), "%s: io mode", h5ds_path(id));
        H5TRY(H5Pget_mpio_no_collective_cause(o->dxpl, &local_cause, &global_cause), "%s: io cause", h5ds_path(id));
        if (mode == H5D_MPIO_NO_COLLECTIVE || global_cause != H5D_MPIO_COLLECTIVE)
            return cn_fail(CN_E_INTERNAL, "%s: %s of %s was not collective (mode %d, cause 0x%x)", o->path,
                           write ? "write" : "read", h5ds_path(id), (int)mode, (unsigned)global_cause);
    }
    return CN_OK;
}

int h5out_write_rows(H5Out *o, H5DsId id, int64_t row0, int64_t n, const void *buf) {
    hsize_t dims[2];
    int rank = h5ds_dims(id, &o->shape, dims);
    return rw_block(o, id, 1, row0, n, 0, rank == 2 ? (int64_t)dims[1] : 1, (void *)buf);
}

int h5out_read_rows(H5Out *o, H5DsId id, int64_t row0, int64_t n, void *buf) {
    hsize_t dims[2];
    int rank = h5ds_dims(id, &o->shape, dims);
    return rw_block(o, id, 0, row0, n, 0, rank == 2 ? (int64_t)dims[1] : 1, buf);
}

int h5out_write_block(H5Out *o, H5DsId id, int64_t row0, int64_t nr, int64_t col0, int64_t nc, const void *buf) {
    return rw_block(o, id, 1, row0, nc > 0 ? nr : 0, col0, nc, (void *)buf);
}

int h5out_mark_done(H5Out *o, H5DsId id, int64_t shard) {
    uint8_t one = 1;
    return rw_block(o, id, 1, shard, shard >= 0 ? 1 : 0, 0, 1, &one);
}

int h5out_flush(H5Out *o) {
    int rc = CN_OK;
    if (o->emb_fid != o->fid && H5Fflush(o->emb_fid, H5F_SCOPE_GLOBAL) < 0)
        rc = h5_fail(CN_E_IO, __FILE__, __LINE__, "cannot flush %s", o->emb_path);
    if (H5Fflush(o->fid, H5F_SCOPE_GLOBAL) < 0) rc = h5_fail(CN_E_IO, __FILE__, __LINE__, "cannot flush %s", o->path);
    return rc;
}

int h5out_close(H5Out *o) {
    int rc = close_handles(o);
    if (o->dxpl >= 0) H5Pclose(o->dxpl);
    o->dxpl = -1;
    return rc;
}

// Rank 0 alone, serial driver: rows[i] <- strs[i].
static int write_strings_rank0(const char *path, H5DsId id, const int64_t *rows, const char *const *strs, int n) {
    hid_t fid, d, fs, ms, t = h5_str_type();
    H5TRY(fid = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT), "cannot open %s to write strings", path);
    H5TRY(d = H5Dopen2(fid, h5ds_path(id), H5P_DEFAULT), "%s: cannot open %s", path, h5ds_path(id));
    H5TRY(fs = H5Dget_space(d), "%s: %s: space", path, h5ds_path(id));
    hsize_t one = 1;
    H5TRY(ms = H5Screate_simple(1, &one, NULL), "%s: memory space", path);
    for (int i = 0; i < n; i++) {
        hsize_t start = (hsize_t)rows[i];
        H5TRY(H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &one, NULL), "%s: %s: row %lld", path,
              h5ds_path(id), (long long)rows[i]);
        H5TRY(H5Dwrite(d, t, ms, fs, H5P_DEFAULT, &strs[i]), "%s: cannot write row %lld of %s", path,
              (long long)rows[i], h5ds_path(id));
    }
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(d);
    H5Tclose(t);
    H5TRY(H5Fclose(fid), "cannot close %s", path);
    return CN_OK;
}

int h5out_write_strings_serial(H5Out *o, H5DsId id, const int64_t *rows, const char *const *strs, int n) {
    int rc = agree(o->comm, close_handles(o));
    if (rc) return rc;
    if (o->rank == 0) rc = write_strings_rank0(o->path, id, rows, strs, n);
    rc = bcast_status(o->comm, o->rank, rc);
    if (rc) return rc;
    return agree(o->comm, open_handles(o));
}

static int finish_rank0(const H5Out *o, int ranks, int threads, const char *backend, const char *precision) {
    hid_t fid;
    char now[32];
    utc_now_iso(now);
    H5TRY(fid = H5Fopen(o->path, H5F_ACC_RDWR, H5P_DEFAULT), "cannot reopen %s to finish it", o->path);
    ATTR(h5_attr_write_int(fid, "ranks", ranks), o->path);
    ATTR(h5_attr_write_int(fid, "threads", threads), o->path);
    ATTR(h5_attr_write_str(fid, "end_time", now), o->path);
    ATTR(h5_attr_write_str(fid, "backend", backend), o->path);
    ATTR(h5_attr_write_str(fid, "precision", precision), o->path);
    // everything else reaches the disk before the marker that says the file is complete
    H5TRY(H5Fflush(fid, H5F_SCOPE_GLOBAL), "cannot flush %s", o->path);
    ATTR(h5_attr_write_int(fid, "complete", 1), o->path);
    H5TRY(H5Fclose(fid), "cannot close %s", o->path);
    if (!o->shape.store_embeddings && unlink(o->emb_path) != 0 && errno != ENOENT)
        cn_warn("could not remove the embeddings scratch file %s: %s", o->emb_path, strerror(errno));
    return CN_OK;
}

int h5out_finish(H5Out *o, int ranks, int threads, const char *backend, const char *precision) {
    int rc = agree(o->comm, h5out_close(o));
    if (rc) return rc;
    MPI_Barrier(o->comm); // every rank's handles are closed before rank 0 reopens serially
    if (o->rank == 0) rc = finish_rank0(o, ranks, threads, backend, precision);
    return bcast_status(o->comm, o->rank, rc);
}
