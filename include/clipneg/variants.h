// variants.h — caption variants: templates rendered per caption (docs/variants.md).
// A variants file is INI; each section is one variant:
//     [this_is_not]
//     template = This is not {caption_lc}
//     polarity = negative            ; positive | negative | other
// Placeholders: {caption} (trimmed), {caption_lc} (first letter lowered, final period dropped),
// {swap} / {swap_lc} (caption with its main subject replaced by a COCO category of the same
// supercategory that is absent from the image), {subject} (the subject word found),
// {other} (the replacement category name), {negative} (JSONL negatives[0]).
#ifndef CLIPNEG_VARIANTS_H
#define CLIPNEG_VARIANTS_H

#include <stdint.h>

#include "clipneg/dataset.h"

typedef enum { POLARITY_POSITIVE = 0, POLARITY_NEGATIVE = 1, POLARITY_OTHER = 2 } Polarity;

typedef struct {
    char *name;
    char *template_text;
    Polarity polarity;
} Variant;

typedef struct {
    Variant *items;
    int n;
    char *path;
} VariantSet;

// Per rendered text status (stored in /texts/status).
enum {
    TEXT_OK = 0,
    TEXT_NO_SUBJECT = 1,    // {swap}/{subject}/{other} needed but no subject/replacement found: not rendered
    TEXT_EMPTY = 2,         // the caption is empty after trimming: not rendered
    TEXT_NO_NEGATIVE = 3,   // {negative} needed but the item has none
};

int variants_load(VariantSet *vs, const char *path);
void variants_free(VariantSet *vs);

// Render variant v for caption c. On TEXT_OK *out is a malloc'ed string; otherwise *out = NULL.
// Deterministic in (dataset, c, v, seed) and independent of which rank calls it.
int variant_render(const Variant *v, const Dataset *ds, int c, uint64_t seed, char **out);

// Subject detection used by {swap}: finds the caption's main subject among COCO category names
// and synonyms/plurals ("man", "women", "people" -> person; "puppy" -> dog, ...). Returns the
// category id (or -1) and the byte span [*start, *end) of the matched word(s) in `caption`.
int find_subject(const Dataset *ds, const char *caption, int *start, int *end);

#endif
