// h5_internal.h — what makes the output files self-describing (src/h5schema.c): the layout of a
// dataset (chunked, optionally deflated), coordinate datasets, HDF5 dimension scales, and the
// description/units of every dataset (docs/hdf5-schema.md has the same tables for readers).
//
// Parallel HDF5: creating datasets and attributes and attaching dimension scales are metadata
// operations; in a collective context (reduce, export-tsne) EVERY rank calls these functions with
// the same arguments, and `writer` says which rank contributes the coordinate values (the others
// join the collective write with nothing selected, as rio_write does).
#ifndef CLIPNEG_H5_INTERNAL_H
#define CLIPNEG_H5_INTERNAL_H

#include <hdf5.h>
#include <stdint.h>

// The oldest HDF5 that writes deflated datasets collectively through MPI-IO (parallel filtered
// writes arrived in 1.10.2). Below it `[output] compression` > 0 is refused before any work.
#define CN_H5_FILTER_MAJOR 1
#define CN_H5_FILTER_MINOR 10
#define CN_H5_FILTER_RELEASE 2

// CN_OK when `level` (0..9) can be used with this HDF5 (0 always can), else CN_E_CONFIG naming the
// version found and the one needed.
int h5_compression_check(int level);
// HDF5 keeps freed blocks on free lists for reuse, by default up to 16 MB per kind: memory that
// grows with the number of reads and writes (so with the caption count: eval's writes, reduce's and
// export-tsne's chunked reads) and is never given back. Small lists cost nothing measurable; the
// per-rank memory must stay flat (docs/performance.md). Called once before the file work.
void h5_limit_free_lists(void);

// Dataset creation properties: chunked when every dim is > 0, with shuffle + deflate `level` when
// level > 0; contiguous for empty datasets or when level < 0. Chunks: `hint` (per axis, 0 = whole
// axis; rows cut by their smallest factors while a chunk exceeds 16 MiB; NULL: about 1 MiB, whole
// rows where they fit) — the blocks the writers write, so that a
// compressed chunk is written once rather than recompressed by every round. Early allocation (the
// parallel writers never change the file's structure for uncompressed data). Caller closes; -1 on
// failure.
hid_t h5_dcpl(int rank, const hsize_t *dims, size_t elem_size, int level, const hsize_t *hint);

// A 1-D coordinate dataset loc/name = values[0..n) of `type` (memory type == file type), made a
// dimension scale named `name`. `dxpl`: H5P_DEFAULT (serial) or a collective transfer list.
int h5_coord(hid_t loc, const char *name, hid_t type, int64_t n, const void *values, hid_t dxpl, int writer,
             int level);
// The coordinate 0, 1, ..., n-1 (int64), written in blocks (bounded memory).
int h5_coord_range(hid_t loc, const char *name, int64_t n, hid_t dxpl, int writer, int level);
// Fixed-length UTF-8 strings (writable through MPI-IO, unlike variable-length ones), with the
// attribute _Encoding = "utf-8" so xarray decodes them to str.
int h5_coord_strings(hid_t loc, const char *name, const char *const *strs, int64_t n, hid_t dxpl, int writer);
// Serial only: a copy of the 1-D dataset `src` (numbers or variable-length strings) as coordinate
// `dst`, block by block.
int h5_coord_copy(hid_t fid, const char *src, const char *dst, int level);

// Which documentation table h5_document applies.
typedef enum {
    H5DOC_EVAL,      // the groups `clipneg eval` creates (/images ... /progress)
    H5DOC_ITEMS,     // /items, /items/embeddings (item jobs)
    H5DOC_STATS,     // /stats/variants, /stats/contrast, /stats/retrieval
    H5DOC_STATS_ITEMS, // /stats/items
    H5DOC_TSNE,      // /tsne
    H5DOC_CLASSIFY,  // /classify (classification jobs; the progress flags are in H5DOC_EVAL's /progress)
    H5DOC_STATS_CLASSIFY, // /stats/classify
} H5DocSet;

// For every dataset of the table that exists: description and units attributes, and its axes
// attached to the coordinate datasets named in the table (found in the same group; they become
// dimension scales first). Groups that do not exist are skipped. `file` names the file in messages.
int h5_document(hid_t fid, H5DocSet set, const char *file);

#endif
