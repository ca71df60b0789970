// fuzz_items.c — the item manifest (`[dataset] format = items`, docs/items.md) on arbitrary bytes:
// the index pass (items_load), every item read back through the streamed windows (items_get, in an
// order that leaves and re-enters windows), and the induced dataset (items_to_dataset) whose
// captions are read back from the same file. First byte: bit 0 = with a fixed COCO instances file
// (so "ann_id" items get through), bits 1..3 = max_images (0 = all); the rest is the manifest.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/dataset.h"
#include "clipneg/items.h"
#include "fuzz_dataset.h"
#include "fuzz_util.h"

// Two images, a category with three instances in image 7 (one crowd) and two in image 8.
static const char INSTANCES[] =
    "{\"images\": [{\"id\": 7, \"file_name\": \"a.jpg\"}, {\"id\": 8, \"file_name\": \"b.jpg\"}],"
    " \"annotations\": ["
    "{\"id\": 1, \"image_id\": 7, \"category_id\": 3, \"iscrowd\": 0, \"bbox\": [1, 2, 30, 40]},"
    "{\"id\": 2, \"image_id\": 7, \"category_id\": 3, \"iscrowd\": 0, \"bbox\": [5.5, 6, 7, 8]},"
    "{\"id\": 4, \"image_id\": 7, \"category_id\": 3, \"iscrowd\": 1, \"bbox\": [0, 0, 9, 9]},"
    "{\"id\": 5, \"image_id\": 8, \"category_id\": 3, \"iscrowd\": 0, \"bbox\": [0, 0, 2, 2]},"
    "{\"id\": 6, \"image_id\": 8, \"category_id\": 3, \"iscrowd\": 0, \"bbox\": [1, 1, 0.5, 3]}]}";

// One item as items.h promises it, checked against its 16-byte key.
static void check_item(const ItemSet *s, int i) {
    const Item *it = items_get(s, i);
    const ItemKey *k = &s->keys[i];
    if (!it || it->line != k->line || it->image != k->image || it->type != k->type || it->n != k->n ||
        it->answer != k->answer || (int)it->kind != k->kind)
        abort();
    if (it->n < 2 || it->n > ITEMS_MAX_CANDIDATES || it->answer < 0 || it->answer >= it->n) abort();
    if (it->image < 0 || it->image >= s->n_images || it->type < 0 || it->type >= s->n_types) abort();
    if (i > 0 && it->line <= s->keys[i - 1].line) abort(); // manifest order, one item per line
    int nt = it->kind == ITEM_CHOICE ? it->n : 1;
    if (nt > s->k_text || it->n > s->k_max) abort();
    for (int t = 0; t < nt; t++)
        if (!it->texts || !it->texts[t] || !fuzz_utf8_valid(it->texts[t])) abort();
    if (it->kind == ITEM_REGION) {
        if (!it->boxes || !it->ann_ids || it->n > s->k_image) abort();
        for (int b = 0; b < it->n; b++)
            if (!isfinite(it->boxes[b][0]) || !isfinite(it->boxes[b][1]) || !(it->boxes[b][2] > 0) ||
                !(it->boxes[b][3] > 0))
                abort();
    } else if (it->kind != ITEM_CHOICE) {
        abort();
    }
}

// The induced dataset: one caption per item, its text the item's correct text, read back from the file.
static void check_dataset(const ItemSet *s, Dataset *ds) {
    if (ds->n_captions != s->n_items || ds->n_images != s->n_images) abort();
    for (int c = ds->n_captions - 1; c >= 0; c--) { // backwards: a new window for almost every caption
        const DsCaption *cap = dataset_caption(ds, c);
        int64_t id = dataset_caption_id(ds, c);
        if (!cap || !cap->text || id < 0 || id >= s->n_items) abort();
        char *text = strdup(cap->text); // items_get below may move the caption window's file reads
        const Item *it = items_get(s, (int)id);
        const char *want = it->texts[it->kind == ITEM_CHOICE ? it->answer : 0];
        if (strcmp(text, want) != 0 || dataset_caption_image(ds, c) != it->image) abort();
        free(text);
    }
    fuzz_render_all(ds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *inst = NULL;
    if (data[0] & 1) inst = strdup(fuzz_write_temp("instances.json", (const unsigned char *)INSTANCES, sizeof INSTANCES - 1));
    int max_images = (data[0] >> 1) & 7;
    const char *path = fuzz_write_temp("items.jsonl", data + 1, size - 1);
    ItemSet s;
    int rc = items_load(&s, path, "/nonexistent", inst, max_images);
    if (rc != CN_OK) {
        if (rc != CN_E_DATA || !cn_last_error()[0] || s.n_items != 0) abort();
    } else {
        if (s.n_items <= 0) abort();
        // forwards, then every 37th from the end (leaves and re-enters windows of 256)
        for (int i = 0; i < s.n_items; i++) check_item(&s, i);
        for (int i = s.n_items - 1; i >= 0; i -= 37) check_item(&s, i);
        Dataset ds;
        if (items_to_dataset(&s, &ds) != CN_OK) abort(); // every loaded item set induces a dataset
        check_dataset(&s, &ds);
        dataset_free(&ds);
    }
    items_free(&s);
    free((char *)inst);
    return 0;
}
