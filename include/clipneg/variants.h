// variants.h — caption variants: templates rendered per caption (docs/variants.md).
// A variants file is INI; each section is one variant:
//     [this_is_not]
//     template = This is not {caption_lc}
//     polarity = negative            ; positive | negative | other
// Placeholders: {caption} (trimmed), {caption_lc} (first letter lowered, final period dropped),
// {swap} / {swap_lc} (caption with its main subject replaced by a COCO category of the same
// supercategory that is absent from the image), {subject} (the subject word found),
// {other} (the replacement category name), {a_other} (the replacement with its article:
// "an elephant", "a pair of skis"), {negative} (JSONL negatives[0]). "{{" and "}}" are literal braces.
#ifndef CLIPNEG_VARIANTS_H
#define CLIPNEG_VARIANTS_H

#include <stdint.h>

#include "clipneg/dataset.h"

typedef enum { POLARITY_POSITIVE = 0, POLARITY_NEGATIVE = 1, POLARITY_OTHER = 2 } Polarity;

// Placeholders a template uses (Variant.uses bits).
enum {
    VAR_USES_CAPTION = 1 << 0,     // {caption}
    VAR_USES_CAPTION_LC = 1 << 1,  // {caption_lc}
    VAR_USES_SWAP = 1 << 2,        // {swap}
    VAR_USES_SWAP_LC = 1 << 3,     // {swap_lc}
    VAR_USES_SUBJECT = 1 << 4,     // {subject}
    VAR_USES_OTHER = 1 << 5,       // {other}
    VAR_USES_A_OTHER = 1 << 6,     // {a_other}
    VAR_USES_NEGATIVE = 1 << 7,    // {negative}
};

typedef struct {
    char *name;
    char *template_text;
    Polarity polarity;
    char *description;      // optional, "" when not given
    unsigned uses;          // VAR_USES_* bits found in the template
    int line;               // line of the [name] header in the variants file
} Variant;

typedef struct {
    Variant *items;
    int n;
    char *path;
    char *text;             // the variants file's full text (provenance: root attribute variants_text)
} VariantSet;

// Per rendered text status (stored in /texts/status).
enum {
    TEXT_OK = 0,
    TEXT_NO_SUBJECT = 1,    // {swap}/{subject}/{other} needed but no subject/replacement found: not rendered
    TEXT_EMPTY = 2,         // the caption is empty after trimming: not rendered
    TEXT_NO_NEGATIVE = 3,   // {negative} needed but the item has none
};

// Load and validate a variants file: unknown keys/placeholders, a missing template, bad polarity
// or names are CN_E_CONFIG "FILE:LINE: [name] key: reason". On failure *vs is left empty.
int variants_load(VariantSet *vs, const char *path);
void variants_free(VariantSet *vs);
// Index of the variant called `name`, or -1.
int variants_find(const VariantSet *vs, const char *name);
const char *polarity_name(Polarity p);  // "positive", "negative", "other"

// Render variant v for caption c. On TEXT_OK *out is a malloc'ed string; otherwise *out = NULL.
// Deterministic in (dataset, c, v, seed) and independent of which rank calls it.
int variant_render(const Variant *v, const Dataset *ds, int c, uint64_t seed, char **out);

// Subject detection used by {swap}: finds the caption's main subject among COCO category names
// and synonyms/plurals ("man", "women", "people" -> person; "puppy" -> dog, ...). Returns the
// category id (or -1) and the byte span [*start, *end) of the matched word(s) in `caption`.
int find_subject(const Dataset *ds, const char *caption, int *start, int *end);

// The subject swap of caption c (src/variants_subject.c), shared by {swap}, {swap_lc}, {other}, {a_other}.
// The replacement is a category of the subject's supercategory that is absent from the image
// (instances JSON), picked by splitmix64(seed ^ splitmix64(caption id)) % (number of candidates)
// among the candidates in category-id order. status = TEXT_OK or TEXT_NO_SUBJECT (no subject,
// no image categories known, or no absent category in the supercategory).
typedef struct {
    int status;
    int subject_category;   // category id of the subject (-1: none found)
    int other_category;     // replacement category id (-1: none)
    int start, end;         // byte span of the subject in `caption` as passed
    char *swapped;          // the caption with the subject replaced (and a/an fixed); NULL unless OK
    char *other;            // replacement category name ("elephant")
    char *a_other;          // replacement with article ("an elephant", "a pair of skis")
} SubjectSwap;
int subject_swap(const Dataset *ds, int c, const char *caption, uint64_t seed, SubjectSwap *out);
void subject_swap_free(SubjectSwap *s);
uint64_t splitmix64(uint64_t x);
// Consistency of variants_subject.c's built-in tables (every synonym names a known category, none twice,
// each found whole by find_subject). Returns the number of problems (the first in cn_last_error()).
int subject_tables_check(void);

#endif
