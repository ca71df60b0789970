// items_internal.h — what the item manifest's parser (dataset_items.c) shares with its streamed
// reader (dataset_items_stream.c): the COCO instances table that "ann_id" items take their boxes
// from, the parse of one manifest line, and the stream that reads lines back per window.
#ifndef CLIPNEG_ITEMS_INTERNAL_H
#define CLIPNEG_ITEMS_INTERNAL_H

#include <stdint.h>

#include "clipneg/items.h"
#include "dataset_internal.h"

// ---- COCO instances: the boxes "ann_id" refers to (per annotation: bounded by the instances file) --
typedef struct {
    int64_t id, image_id;
    int category, iscrowd;
    double bbox[4];
} InstAnn;

typedef struct {
    InstAnn *anns;       // sorted by id
    int n_anns;
    int64_t *img_ids;    // image ids and their file names
    char **img_files;
    int n_imgs;
} Instances;

int items_instances_load(Instances *in, const char *path); // CN_OK or CN_E_DATA naming the field
void items_instances_free(Instances *in);

// ---- one manifest line -------------------------------------------------------------------------
typedef struct {
    const char *path;      // the manifest (messages)
    const Instances *inst; // NULL without an instances file ("ann_id" refused)
    const char *inst_path;
    int n_invalid_utf8;    // texts repaired so far (counted by the index pass)
} ItemParser;

// Parse and check line `lineno` (len bytes, no line break) into *it (texts, boxes, ann_ids; kind,
// n, answer, line set; image and type NOT set), *image and *type (malloc'ed; *type NULL when the
// line has none). CN_OK or CN_E_DATA "FILE:LINE: field: reason"; nothing left to free on failure.
int items_parse_line(ItemParser *p, const char *line, size_t len, int lineno, Item *it, char **image, char **type,
                     const char **deftype);
void items_item_free(Item *it);

// ---- the streamed manifest (dataset_items_stream.c) ---------------------------------------------
enum { ITEMS_WINDOW = 256 }; // items read back at a time (items_get)

struct ItemStream {
    JsonStream js;
    int64_t *mark;       // file offset of line max(1, 8k) (DS_MARK_EVERY, as the JSONL reader)
    int n_mark;
    int n_where;         // lines + 1 (line numbers count from 1)
    uint8_t *blank;      // bit per line: the item's correct text is blank (the induced dataset counts them)
    Instances *inst;     // "ann_id" boxes; NULL without an instances file
    char *inst_path;
    int w0, w1;          // the window: items [w0, w1) in win
    Item *win;
};

// Read items [i0, i0 + n) (ascending keys) back into out[0..n). CN_OK or CN_E_DATA when the file no
// longer matches the index.
int items_stream_read(const ItemSet *s, int i0, int n, Item *out);
void items_stream_free(ItemStream *st);

#endif
