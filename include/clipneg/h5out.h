// h5out.h — the evaluation's HDF5 file (contract: docs/hdf5-schema.md).
//
// Who writes what, and why it is split this way:
//  * Rank 0 CREATES the file serially (sec2 driver) under a temporary name, with every dataset at its
//    final size (contiguous, early allocation), every attribute, and every string known up front
//    (file names, captions, variants, rendered texts), then renames it into place. A killed run
//    therefore never leaves a structurally broken file, and the rename makes creation atomic.
//    Strings go in here because HDF5 1.10 cannot write variable-length data through the MPI-IO
//    driver at all ("Parallel IO does not support writing VL ... datatypes yet").
//  * ALL ranks then open it with MPI-IO and write numeric rows COLLECTIVELY, one call per dataset per
//    round; a rank with nothing to write selects none. Memory and file types are identical (our own
//    IEEE half type for float16), so no conversion silently turns collective I/O into independent.
//  * The rare strings born during the run (image decode errors) are written by rank 0 in a short
//    serial section (parallel close -> serial write -> parallel reopen), see h5out_write_strings_serial.
//  * `complete` = 1 is written last, serially, after the parallel file is closed.
// Every HDF5 call is checked; failures name the file and the dataset (h5Check-style).
#ifndef CLIPNEG_H5OUT_H
#define CLIPNEG_H5OUT_H

#include <hdf5.h>
#include <mpi.h>
#include <stdint.h>

// The schema's version (root attribute format_version): 2 added the axes (dimension scales and their
// coordinate datasets), description/units attributes and chunked, optionally deflated datasets.
#define H5OUT_FORMAT_VERSION 2

// Every dataset of the schema, by id (table in h5util.c).
typedef enum {
    DS_IMG_ID,
    DS_IMG_FILE,
    DS_IMG_STATUS,
    DS_IMG_ERROR,
    DS_IMG_FIRST_CAP,
    DS_IMG_N_CAP,
    DS_CAP_ID,
    DS_CAP_IMAGE,
    DS_CAP_TEXT,
    DS_VAR_NAME,
    DS_VAR_TEMPLATE,
    DS_VAR_POLARITY,
    DS_TXT_TEXT,
    DS_TXT_STATUS,
    DS_TXT_N_TOKENS,
    DS_TXT_TRUNCATED,
    DS_EMB_IMAGE,
    DS_EMB_TEXT,
    DS_SIM_PAIRED,
    DS_SIM_FULL,
    DS_PROG_TEXT,
    DS_PROG_IMAGE,
    DS_PROG_SIM,
    DS_COUNT
} H5DsId;

typedef enum { H5K_I8, H5K_U8, H5K_I32, H5K_I64, H5K_F32, H5K_F16, H5K_STR } H5Kind;

// What fixes the shape of every dataset.
typedef struct {
    int64_t n_img, n_cap, n_var, n_text; // n_text = n_cap * n_var
    int64_t dim;                         // D
    int64_t text_shard, image_shard;     // rows per global shard
    int store_embeddings;                // /embeddings in the output (0: in a scratch file, deleted at the end)
    int full_similarity;                 // /similarity/full present
    int full_f16;                        // ... as float16 (else float32)
    int compression;                     // deflate level 0..9 of the chunked datasets (0: chunked, not compressed)
    int64_t tile_texts;                  // columns per write of /similarity/full (its chunk width)
} H5Shape;

// Root attributes written at creation (strings are borrowed).
typedef struct {
    const char *job_text, *job_sha256, *variants_text;
    const char *model_path, *model_arch, *model_sha256;
    const char *base_variant; // the job's base variant (reduce's default for flips/accuracy)
    int random_weights;
    const char *backend, *precision;
    int ranks, threads; // MPI ranks, compute threads per rank
    const char *start_time;
} H5Provenance;

// ---- schema helpers (h5util.c) -------------------------------------------------------------------
const char *h5ds_path(H5DsId id); // "/images/status", ...
H5Kind h5ds_kind(H5DsId id, const H5Shape *sh);
// Dataset dims for this shape (rank 1 or 2); returns the rank, 0 when the dataset is absent.
int h5ds_dims(H5DsId id, const H5Shape *sh, hsize_t dims[2]);
// 1 when the dataset lives in the embeddings file (scratch when !store_embeddings).
int h5ds_in_emb_file(H5DsId id);
// The HDF5 type of a kind (memory type == file type; caller closes it).
hid_t h5_type(H5Kind k);
hid_t h5_half_type(void);     // IEEE binary16, little-endian (h5py reads it as numpy float16)
hid_t h5_str_type(void);      // variable-length UTF-8 string
void utc_now_iso(char buf[32]); // "2026-11-22T06:11:29Z"

// Attribute helpers (serial handles; they fail with the attribute name in the message).
int h5_attr_write_str(hid_t obj, const char *name, const char *value);
int h5_attr_write_int(hid_t obj, const char *name, int64_t value);
// Read back; *out is malloc'ed. CN_E_IO when missing or of another type.
int h5_attr_read_str(hid_t obj, const char *name, char **out);
int h5_attr_read_int(hid_t obj, const char *name, int64_t *out);

// ---- creation (rank 0 only, serial) --------------------------------------------------------------
typedef struct {
    hid_t fid, emb_fid; // main file and embeddings file (== fid when store_embeddings)
    char tmp_path[4200], path[4096];
    char emb_tmp_path[4300], emb_path[4200];
    H5Shape shape;
} H5Creating;

// Create `path`.creating (+ scratch), all datasets and attributes; rows are written with
// h5c_write_* below, then h5out_create_commit closes and renames into place.
int h5out_create_begin(H5Creating *c, const char *path, const H5Shape *sh, const H5Provenance *pv);
// Rows [row0, row0+n) of a numeric 1-D/2-D dataset (full rows), or of a string dataset.
int h5c_write_rows(H5Creating *c, H5DsId id, int64_t row0, int64_t n, const void *buf);
int h5c_write_strings(H5Creating *c, H5DsId id, int64_t row0, int64_t n, const char *const *strs);
int h5out_create_commit(H5Creating *c);
void h5out_create_abort(H5Creating *c); // close and remove the temporary files
// The scratch file beside an output that keeps the embeddings when output.embeddings = false.
void h5out_scratch_path(const char *path, char *out, size_t n);

// ---- the parallel writer (all ranks, collective) -----------------------------------------------
typedef struct {
    MPI_Comm comm;
    int rank, nranks;
    char path[4096], emb_path[4200];
    H5Shape shape;
    hid_t fid, emb_fid;
    hid_t dset[DS_COUNT]; // -1 when absent
    hid_t dxpl;           // collective transfer
    int check_collective; // CLIPNEG_H5_CHECK_COLLECTIVE=1: fail when HDF5 did not do collective I/O
} H5Out;

// Collective open of an existing file (created by h5out_create_*). CN_OK or CN_E_IO (message set).
int h5out_open(H5Out *o, const char *path, const H5Shape *sh, MPI_Comm comm);
// Collective write/read of rows [row0, row0+n) (full rows; n = 0: this rank takes part, selects none).
int h5out_write_rows(H5Out *o, H5DsId id, int64_t row0, int64_t n, const void *buf);
int h5out_read_rows(H5Out *o, H5DsId id, int64_t row0, int64_t n, void *buf);
// Collective write of the block rows [row0, row0+nr) x cols [col0, col0+nc) of a 2-D dataset.
int h5out_write_block(H5Out *o, H5DsId id, int64_t row0, int64_t nr, int64_t col0, int64_t nc, const void *buf);
// Collective: set progress flag `shard` (-1: none from this rank) of a /progress dataset.
int h5out_mark_done(H5Out *o, H5DsId id, int64_t shard);
int h5out_flush(H5Out *o); // collective H5Fflush of both files
int h5out_close(H5Out *o); // collective
// Collective: rank 0 writes strings (rows[i] <- strs[i], i < n; other ranks pass n = 0) in a serial
// section: the parallel handles are closed, rank 0 writes with the sec2 driver, all reopen.
// Used for the few strings only known mid-run (image errors).
int h5out_write_strings_serial(H5Out *o, H5DsId id, const int64_t *rows, const char *const *strs, int n);
// Collective: close, then rank 0 writes the closing attributes (`ranks`, `threads`, `end_time`,
// `backend`, `precision`) and finally `complete` = 1; the scratch embeddings file is removed.
int h5out_finish(H5Out *o, int ranks, int threads, const char *backend, const char *precision);

// 1 once an HDF5 call of the writer failed in this process. HDF5 1.10 cannot close a file whose
// write failed (it crashes, also at exit and in its MPI_Finalize hook), so from then on handles are
// abandoned, and the process must end with _exit (cmd_eval.c does).
int h5out_broken(void);

// ---- reading an existing file (serial; resume check and `clipneg info`) -------------------------
typedef struct {
    int ok_format; // format == "clipneg-eval", format_version 1 or 2
    int version;   // format_version
    int complete;
    char *job_sha256, *model_sha256;
    H5Shape shape;                              // as found in the file
    int has_full;                               // /similarity/full present (its dtype in shape.full_f16)
    uint8_t *text_done, *image_done, *sim_done; // [n_shards] progress flags (malloc'ed)
    int64_t n_text_shards, n_image_shards;
} H5Existing;

// CN_OK, or CN_E_IO / CN_E_RESUME with a message saying what is unreadable or missing.
int h5out_inspect(const char *path, H5Existing *ex);
void h5out_existing_free(H5Existing *ex);
// Read a whole 1-D numeric dataset of a serial handle into buf (n elements of kind k).
int h5_read_all(hid_t fid, const char *dset, H5Kind k, void *buf, int64_t n);
// What failed, in numbers, from /images/status and /texts/{status,truncated} of a serial handle:
// "images: 7 ok, 1 missing file, 2 decode error, 1 refused, 0 pending" and
// "texts: 60 ok, 24 no subject, 14 empty caption, 0 no negative, 0 pending; 5 truncated"
// (the wording `clipneg info` and the end of `clipneg eval` share). CN_OK or CN_E_IO.
int h5_status_lines(hid_t fid, int64_t n_img, int64_t n_text, char *img_line, char *txt_line, size_t n);
// Element count of a dataset (product of dims), -1 when absent.
int64_t h5_dataset_len(hid_t fid, const char *dset, int *rank, hsize_t dims[2]);

#endif
