// items.h — negation benchmarks that templates cannot produce (docs/items.md):
//   * choice items: one image, K candidate captions, one of them correct (NegBench-style multiple
//     choice; CC-Neg pairs are the K = 2 case "caption vs negated caption", answer 0);
//   * region items: one text, K boxes of one image (crops encoded as images of their own), one of
//     them the referent (NegRefCOCOg-style: Sim(T, P+) > Sim(T, P-) for every other instance P-).
// `[dataset] format = items` reads a JSONL manifest of such items (src/dataset_items.c); `clipneg eval`
// then runs the main phases on the induced dataset (the manifest's images, one caption per item:
// its correct text) and the item phase (src/eval_items.c) writes /items; `clipneg reduce` adds
// per-type accuracies in /stats/items (src/reduce_items.c).
#ifndef CLIPNEG_ITEMS_H
#define CLIPNEG_ITEMS_H

#include <stdint.h>
#include <stdio.h>

#include "clipneg/config.h"
#include "clipneg/dataset.h"

#define ITEMS_MAX_CANDIDATES 256 // texts of a choice item / boxes of a region item
#define ITEMS_MAX_TYPE_LEN 64    // bytes of a "type" name

typedef enum { ITEM_CHOICE = 0, ITEM_REGION = 1 } ItemKind;

typedef struct {
    ItemKind kind;
    int line;          // manifest line (1-based), for messages and /items/line
    int image;         // index into ItemSet.images (== row of /images)
    int type;          // index into ItemSet.types
    int n;             // candidates: texts (choice) or boxes (region), >= 2
    int answer;        // the correct candidate, 0 <= answer < n
    char **texts;      // choice: [n] candidate texts; region: [1] the referring expression
    double (*boxes)[4];// region: [n] COCO boxes x, y, w, h in pixels (w, h > 0); NULL for choice
    int64_t *ann_ids;  // region: [n] COCO annotation ids, -1 for explicit boxes; NULL for choice
} Item;

// What the index pass keeps per item (16 bytes): the texts and boxes stay in the manifest and are
// read back per window (items_get). Every ItemSet has one per item, resident or streamed.
typedef struct {
    int32_t line, image, type; // as Item
    uint16_t n;                // candidates (<= ITEMS_MAX_CANDIDATES)
    uint8_t answer;            // < n
    uint8_t kind;              // ItemKind
} ItemKey;

typedef struct ItemStream ItemStream; // a streamed manifest's file, offsets and item window (dataset_items_stream.c)

typedef struct {
    char *manifest;    // path as given
    char *image_root;  // folder image paths are relative to ([dataset] images, else the manifest's folder)
    char **images;     // [n_images] image paths as written in the manifest, in order of first appearance
    int n_images;
    char **types;      // [n_types] type names, in order of first appearance
    int n_types;
    ItemKey *keys;     // [n_items] in manifest order: kind, image, type, n, answer, line of each item
    Item *items;       // [n_items] the items themselves, held only by the published-benchmark readers
                       // (bounded files); NULL for a manifest, which is streamed: use items_get()
    ItemStream *stream;// a manifest: where texts and boxes are read back from (NULL when resident)
    int n_items;
    int k_max;         // max candidates of any item (columns of /items/sim)
    int k_text;        // max texts of any item (choice: n, region: 1)
    int k_image;       // max images of any item (choice: 1 whole image, region: n crops)
    int n_invalid_utf8;// texts whose ill-formed UTF-8 was replaced by U+FFFD (as dataset.h)
    // Set by the readers of published benchmarks (src/dataset_bench*.c, docs/benchmarks.md); zero
    // for a manifest: strict rule, crops grown by crop_expand.
    int tie_first_max; // 1: the first maximum wins (a tie at the top is correct when the answer comes
                       // first: NegBench MCQ, NegRefCOCOg); 0: sim[answer] must beat every other strictly
    int crop_pil_round;// region crops are PIL's Image.crop((x, y, x+w, y+h)) with rounded coordinates
    const char *format;// static name of the source format ("negbench-mcq", ...); NULL: "items"
} ItemSet;

// Index a manifest (one JSON object per line, blank lines skipped): every line is parsed and checked
// once, but only an ItemKey per item, a file offset every 8 lines, the image paths and type names
// are kept; items_get() reads an item's texts and boxes back from the file. Lines are:
//   {"image": P, "candidates": [T0, T1, ...], "answer": k, "type"?: S}          choice (default type "mcq")
//   {"image": P, "caption": T, "negated": T', "type"?: S}                       choice, K = 2, answer 0 ("ccneg")
//   {"image": P, "text": T, "ann_id": A, "type"?: S}                            region (default type "region"):
//        the boxes are A and every other non-crowd instance of A's category in A's image (needs instances_json)
//   {"image": P, "text": T, "boxes": [[x,y,w,h], ...], "answer": k, "type"?: S} region, explicit boxes
// images_dir may be NULL (paths relative to the manifest's folder); instances_json may be NULL
// (then "ann_id" is refused). max_images > 0 keeps only the items of the first N images.
// CN_OK or CN_E_DATA with "FILE:LINE: field: reason"; on failure *s is left empty.
int items_load(ItemSet *s, const char *manifest, const char *images_dir, const char *instances_json, int max_images);
void items_free(ItemSet *s);
// After the items are in: fills keys from resident items, keeps the items of the first max_images
// images (0: all), sets k_max, k_text, k_image and warns (rank 0) about repaired UTF-8.
void items_set_shape(ItemSet *s, int max_images);
// Item i (0 <= i < n_items). Resident: &items[i]. Streamed: from a window of 256 items read back
// from the manifest starting at i (texts repaired, ann_id boxes looked up, exactly as the index pass saw
// them); the pointer stays valid until an item outside the window is asked for. A manifest changed
// under a running job stops the job (as dataset_caption).
const Item *items_get(const ItemSet *s, int i);

// Item benchmarks read from their published files (`[dataset] format = negbench-mcq, negrefcocog,
// valse-existence, sugarcrepe, ccneg`; src/dataset_bench.c, docs/benchmarks.md): 1 when `dataset_kind` is
// one of them. items_load_bench reads job->dataset_path (+ images, image_prefix) into s.
int items_format_is_bench(int dataset_kind);
int items_load_bench(ItemSet *s, const JobConfig *job);

// The dataset the main phases evaluate: the manifest's images (ids 0, 1, ... in order of first
// appearance) and one caption per item (id = item index; text = the correct candidate of a choice
// item, the text of a region item), so the job's variants also run on the items' true captions.
// Streamed (texts read back through dataset_caption) when s is; resident for the benchmark readers.
int items_to_dataset(const ItemSet *s, Dataset *ds);

// Crop window of a COCO box (x, y, w, h) grown about its centre by `expand` (>= 1), in integer
// pixels [x0, x1) x [y0, y1): x0 = floor(cx - w*expand/2), x1 = ceil(cx + w*expand/2) (same for y),
// clamped to the W x H image. Returns 0, or -1 when nothing of the box lies inside the image.
int items_crop_window(const double box[4], double expand, int W, int H, int32_t win[4]);
// Copy of the window [x0, x1) x [y0, y1) of an RGB8 image [H, W, 3] (as PIL's Image.crop); malloc'ed.
uint8_t *items_crop_rgb(const uint8_t *rgb, int W, int H, const int32_t win[4]);

// ---- statistics (src/reduce_items.c; definitions in docs/items.md) --------------------------------
// Per item type (row t = /items/type_names[t]) and a last row "all": an item is VALID when every
// candidate similarity is a number; CORRECT when sim[answer] is strictly greater than every other
// candidate's (a tie at the top counts as wrong, and is counted in n_ties) or, under the tie rule
// "first_max", when the answer is the first maximum (argmax's choice). Ties are counted either way. pair_* restrict to
// two-candidate items (CC-Neg's "original over negation" accuracy).
typedef struct {
    int n_rows;                     // types + 1
    int first_max;                  // the tie rule of /items (attribute tie_rule = "first_max")
    char **labels;                  // [n_rows] type names, then "all"
    int64_t *n, *n_valid, *n_correct, *n_ties, *pair_n, *pair_correct;
    double *accuracy, *mean_margin, *chance, *pair_accuracy;
} ItemStats;

// Collective over MPI_COMM_WORLD. *present = 0 (and nothing computed) when the file has no /items.
int reduce_items_compute(const char *path, ItemStats *st, int *present);
int reduce_items_write_h5(const char *path, const ItemStats *st); // collective: /stats/items
int reduce_items_add_json(const char *json_path, const ItemStats *st); // rank 0: adds "items" to stats.json
void reduce_items_print_table(FILE *fp, const ItemStats *st);
void reduce_items_free(ItemStats *st);
// All of the above for `clipneg reduce` (after /stats and stats.json are written): a no-op for a
// file without /items. Collective; rank 0 writes the JSON and prints the table when print_table.
int reduce_items(const char *path, const char *json_path, int print_table);

#endif
