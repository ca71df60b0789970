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

typedef struct {
    int64_t id;
    int64_t image_id;
    char *text;        // owned, valid UTF-8
    char **negatives;  // owned
    int n_negatives;
    int where;         // COCO: index in "annotations"; JSONL: line number
} RawCaption;

// Sorts, removes duplicate ids (first in file order kept), drops captions without an image and
// captions of images beyond max_images, fills ds (taking ownership of every string) and warns
// (rank 0) about what was counted. Frees the raw arrays. jsonl selects how items are named in
// messages ("line 12" vs "annotations[12]"). Returns CN_OK or CN_E_DATA (no captions left).
int ds_assemble(Dataset *ds, const char *path, int jsonl, RawImage *images, int n_images, RawCaption *captions,
                int n_captions, int max_images);

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
