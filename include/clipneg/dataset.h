// dataset.h — what to evaluate: images and their captions, in a deterministic order
// (images by id, captions by (image id, annotation id)), from COCO JSON or a JSONL manifest.
#ifndef CLIPNEG_DATASET_H
#define CLIPNEG_DATASET_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t id;
    char *file_name;        // relative to Dataset.image_root (or absolute)
    int first_caption;      // captions of this image are [first_caption, first_caption + n_captions)
    int n_captions;
    int *categories;        // COCO category ids present (instances JSON), sorted, unique; NULL if unknown
    int n_categories;
} DsImage;

typedef struct {
    int64_t id;
    int image_index;        // index into Dataset.images
    char *text;
    char **negatives;       // JSONL "negatives": extra negative captions (may be empty)
    int n_negatives;
} DsCaption;

// What the index pass keeps per caption (16 bytes; the text stays in the file, see DsStream).
typedef struct {
    int64_t id;
    int32_t image_index;    // index into Dataset.images
    int32_t where;          // COCO: index in "annotations"; JSONL: line number (messages, file position)
} DsKey;

typedef struct DsStream DsStream; // a streamed dataset's file, offsets and caption window (dataset_stream.c)

typedef struct {
    int id;
    char *name;             // "person", "dining table", ...
    char *supercategory;    // "animal", "vehicle", ...
} DsCategory;

typedef struct {
    char *image_root;
    DsImage *images;        // sorted by id
    int n_images;
    DsCaption *captions;    // sorted by (image id, caption id); contiguous per image. NULL when streamed:
                            // use dataset_caption(), which works for both
    DsKey *keys;            // [n_captions] id / image / file position of each caption, same order
    int n_captions;
    DsStream *stream;       // streamed (dataset_open_coco/_jsonl): where caption texts are read from on demand
    DsCategory *categories; // from instances JSON, sorted by id (empty if none)
    int n_categories;
    int has_instances;
    // What did not make it, counted and reported (never silently dropped):
    int n_images_without_captions;   // kept as images (retrieval distractors)
    int n_captions_without_image;    // dropped: their image id is not in "images"
    int n_duplicate_ids;             // duplicate image or caption ids (first kept)
    int n_empty_captions;            // kept, flagged at render time
    int n_invalid_utf8;              // captions/negatives with bytes that are not UTF-8: kept, each bad
                                     // sequence replaced by U+FFFD (as Python's decode(errors="replace"))
    int n_dropped_by_max_images;     // captions of images beyond max_images (left out on purpose)
} Dataset;

// COCO captions JSON as COCO ships it; instances_json may be NULL. CN_OK or CN_E_DATA with
// "FILE: field: reason" (e.g. "captions_val2017.json: annotations[12].caption: expected a string").
int dataset_load_coco(Dataset *ds, const char *captions_json, const char *images_dir,
                      const char *instances_json, int max_images);
// The same dataset, streamed: one index pass keeps 16 bytes per caption (DsKey) and a file offset
// every 8 annotations, never the texts; dataset_caption() reads a window of captions back from the
// file when asked. Same order, counts, messages and texts as dataset_load_coco (which is this plus
// reading every caption once). For captions sets too big to hold on every rank (docs/datasets.md).
int dataset_open_coco(Dataset *ds, const char *captions_json, const char *images_dir, const char *instances_json,
                      int max_images);
// Caption c (0 <= c < n_captions). Resident: &captions[c]. Streamed: from a window of captions
// read from the file around c; the pointer stays valid until a caption outside the window is
// asked for. Never fails on a checked file; a file changed under a running job stops the job.
const DsCaption *dataset_caption(const Dataset *ds, int c);
int64_t dataset_caption_id(const Dataset *ds, int c);
int dataset_caption_image(const Dataset *ds, int c);
// JSONL: one object per line {"image": path, "caption": text, "id"?: int, "negatives"?: [text...]}.
// Lines with the same image share one image entry. Errors name "FILE:LINE: field".
// images_dir may be NULL: image paths are then relative to the manifest's folder.
int dataset_load_jsonl(Dataset *ds, const char *manifest, const char *images_dir, int max_images);
// The same manifest, streamed as dataset_open_coco: a DsKey per line and an offset every 8 lines are
// kept; captions and negatives are read back through dataset_caption().
int dataset_open_jsonl(Dataset *ds, const char *manifest, const char *images_dir, int max_images);
void dataset_free(Dataset *ds);
// Full path of image i (malloc'ed).
char *dataset_image_path(const Dataset *ds, int i);

// Copy of s (n bytes) with every ill-formed UTF-8 sequence replaced by U+FFFD, the same
// "maximal subpart" rule as Python's bytes.decode("utf-8", errors="replace"). *n_bad (may be NULL)
// receives the number of replacements.
char *utf8_sanitize(const char *s, size_t n, int *n_bad);

#endif
