// dataset_internal.h — what dataset.c shares with the two readers (dataset_coco.c and
// dataset_jsonl.c): raw items as read from the file and the common ordering/dedup step. The item
// manifest (dataset_items.c) reuses the JSON helpers and ds_assemble.
#ifndef CLIPNEG_DATASET_INTERNAL_H
#define CLIPNEG_DATASET_INTERNAL_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "clipneg/dataset.h"

typedef struct {
    int64_t id;
    char *file_name;   // owned
    int where;         // COCO: index in "images"; JSONL: line number (for messages and stable order)
} RawImage;

// A caption's strings, held only by the resident readers (JSONL, items, the COCO tree fallback).
typedef struct {
    char *text;        // owned, valid UTF-8
    char **negatives;  // owned
    int n_negatives;
} DsText;

// The dataset under construction: images first (ds_build_images), then every caption as read
// (ds_build_caption), then ds_build_finish sorts, removes duplicate ids (first in file order
// kept), drops captions without an image and captions of images beyond max_images, and warns
// (rank 0) about what was counted. Per caption only a DsKey (16 bytes) is kept while reading; the
// strings too when the reader is resident (texts != NULL).
typedef struct {
    const char *path;
    int jsonl;                  // how items are named in messages ("line 12" vs "annotations[12]")
    int resident;               // keep the strings (ds->captions) or only the keys (streamed)
    int dup_images, first_dup_image;
    int64_t first_dup_image_id;
    DsKey *caps;                // image_index: index into ds->images, or -1 - k for orphan k
    int n_caps, cap_caps;
    int64_t *orphan_image_ids;  // image ids of captions whose image is not in the dataset
    int n_orphans, cap_orphans;
    DsText *texts;              // resident: strings by `where`
    int cap_texts;
    uint8_t *blank;             // streamed: bit per `where`, caption is empty or blanks only
    int cap_blank;
} DsBuild;

// Images by id, duplicates dropped and counted; ds->images holds every unique image until
// ds_build_finish applies max_images. Takes ownership of the file names; frees `images`.
void ds_build_images(Dataset *ds, DsBuild *b, RawImage *images, int n_images);
// Index of image `id` in ds->images (binary search), or -1.
int ds_image_find(const Dataset *ds, int64_t id);
// One caption as read. image_index >= 0: its image; < 0: image_id is not in the dataset (an orphan).
// text: its strings (resident readers, ownership taken) or NULL (streamed; `blank` then says
// whether the caption is empty).
void ds_build_caption(DsBuild *b, int64_t id, int image_index, int64_t image_id, int where, DsText *text, int blank);
// Returns CN_OK or CN_E_DATA (no captions left). Always frees the build state.
int ds_build_finish(Dataset *ds, DsBuild *b, int max_images);
void ds_build_free(DsBuild *b);
void ds_text_free(DsText *t);
// 1 when s is empty or only blanks (an empty caption: kept, its texts not rendered).
int ds_is_blank(const char *s);

// ---- streaming JSON (dataset_stream.c) -----------------------------------------------------------
// A JSON file read through a small buffer at any offset: the COCO index pass walks the top-level
// object and the arrays' elements without holding the document; each element is captured alone
// (a few hundred bytes) and handed to cJSON.
typedef struct {
    int fd;
    char *buf;
    size_t cap, pos, len;  // buf[pos..len) are the bytes at file offset base + pos
    int64_t base;
    char *val;             // the last captured value, NUL-terminated
    size_t val_len, val_cap;
} JsonStream;

int js_open(JsonStream *js, const char *path);  // CN_OK or CN_E_DATA "FILE: cannot open: ..."
void js_close(JsonStream *js);
void js_seek(JsonStream *js, int64_t off);
int64_t js_offset(const JsonStream *js);
int js_peek(JsonStream *js);                    // next byte or -1 at the end (I/O errors stop the job)
void js_skip_ws(JsonStream *js);
int js_expect(JsonStream *js, char c);          // skip blanks, consume c: 1, else 0 (nothing consumed)
// Capture the next value's bytes into js->val (bracket/string matching only, cJSON checks it).
// capture = 0 only skips it. 0 ok, -1 malformed or cut short.
int js_value(JsonStream *js, int capture);
// Inside an array, after an element: skip the ',' (1: another element follows) or the ']' (0: the
// array ended); -1 for anything else.
int js_array_next(JsonStream *js);
// Capture the bytes up to the next '\n' (consumed, not captured) or the end of the file into js->val
// (capture = 0 only skips them). 0 ok, -1 nothing left.
int js_line(JsonStream *js, int capture);

// Streamed captions: where the annotation elements (COCO) or lines (JSONL) are in the file, and the
// caption window.
struct DsStream {
    char *path;
    int jsonl;              // 0: `where` indexes "annotations" from 0; 1: `where` is a JSONL line number (from 1)
    // JSONL: one line read back (ds_jsonl_caption; set by the reader so that this file does not call it)
    int (*read_line)(const char *path, const char *line, size_t len, int lineno, const DsKey *key, DsCaption *d);
    JsonStream js;
    int64_t *mark;          // file offset of element 8k (k = where / 8; JSONL: of line max(1, 8k))
    int n_mark;
    int n_where;            // elements in the file (JSONL: lines + 1, line numbers being 1-based)
    int c0, c1;             // the window: captions [c0, c1) in win
    DsCaption *win;
};
enum { DS_MARK_EVERY = 8, DS_WINDOW = 512 };
// A line-by-line index pass (JSONL captions, item manifests), js at the start of line `lineno`:
// records its offset in (*mark)[lineno / DS_MARK_EVERY] when it starts a group (line 1, 8, 16, ...).
void ds_mark_line(const JsonStream *js, int lineno, int64_t **mark, int *n_mark);
// Fill win[i] (text from the annotation element at where[i]) for n keys (any order). CN_OK or
// CN_E_DATA when the file no longer matches the index.
int ds_stream_read(DsStream *st, const DsKey *keys, int n, DsCaption *win);
void ds_stream_free(DsStream *st);
// One JSONL line read back for a streamed dataset (dataset_jsonl.c): the caption and negatives of
// `key` into d; not CN_OK when the line no longer matches the index (the caller says so).
int ds_jsonl_caption(const char *path, const char *line, size_t len, int lineno, const DsKey *key, DsCaption *d);
// Free a caption's strings and zero it.
void ds_caption_clear(DsCaption *c);

// Parse JSON text; on error CN_E_DATA "FILE:LINE:COL: invalid JSON", or for one JSONL line
// (jsonl_line > 0) "FILE:LINE: invalid JSON (column COL)".
int ds_parse_json(const char *path, const char *text, size_t len, int jsonl_line, cJSON **root);

// Field readers: 0 ok, else CN_E_DATA with "FILE: <where>.<key>: reason".
// `where` is e.g. "annotations[12]" or "12" for a JSONL line (then the message is "FILE:12: key: ...").
typedef struct {
    const char *path;
    char where[64];
    int jsonl;
} JsonPlace;
int ds_get_int(const JsonPlace *at, const cJSON *obj, const char *key, int required, int64_t *out, int *present);
// A string field; *out is a sanitized copy (invalid UTF-8 replaced, counted in *n_bad) or, with
// strict = 1, invalid UTF-8 is an error (paths). Empty strings are allowed unless nonempty = 1.
int ds_get_string(const JsonPlace *at, const cJSON *obj, const char *key, int required, int strict, int nonempty,
                  char **out, int *n_bad);
// "FILE: annotations[12]: " / "FILE:12: " prefix for other messages.
void ds_place_prefix(const JsonPlace *at, char *buf, size_t n);

// For big instances files: overwrite the values of `key` ("segmentation") with blanks so that
// cJSON does not build millions of nodes we never read. Positions (line:col) do not change.
void ds_blank_values(char *text, size_t len, const char *key);

#endif
