// fuzz_dataset.h — the oracle of the dataset fuzz targets: what every successfully loaded Dataset
// must satisfy (include/clipneg/dataset.h), and rendering every variant of every caption over it.
// A violation abort()s, which libFuzzer reports as a crash with the reproducer.
#ifndef CLIPNEG_FUZZ_DATASET_H
#define CLIPNEG_FUZZ_DATASET_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/dataset.h"
#include "clipneg/variants.h"
#include "fuzz_util.h"

// Strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF): what utf8_sanitize promises to produce.
static inline int fuzz_utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        int n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
        if (n < 0) return 0;
        uint32_t cp = n == 0 ? c : n == 1 ? (c & 0x1F) : n == 2 ? (c & 0x0F) : (c & 0x07);
        for (int k = 1; k <= n; k++) {
            if ((p[k] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (p[k] & 0x3F);
        }
        static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        p += n + 1;
    }
    return 1;
}

static inline void fuzz_check_dataset(const Dataset *ds) {
    if (ds->n_images < 0 || ds->n_captions <= 0) abort(); // "no caption left" is an error, not a dataset
    int next_caption = 0;
    for (int i = 0; i < ds->n_images; i++) {
        const DsImage *im = &ds->images[i];
        if (i > 0 && im->id <= ds->images[i - 1].id) abort(); // sorted by id, ids unique
        if (!im->file_name || !im->file_name[0] || !fuzz_utf8_valid(im->file_name)) abort();
        if (im->n_captions < 0 || (im->n_captions > 0 && im->first_caption != next_caption)) abort();
        next_caption += im->n_captions;
        for (int k = 1; k < im->n_categories; k++)
            if (im->categories[k] <= im->categories[k - 1]) abort(); // sorted, unique
    }
    if (next_caption != ds->n_captions) abort(); // captions are contiguous per image, none lost
    for (int c = 0; c < ds->n_captions; c++) {
        const DsCaption *cap = &ds->captions[c];
        if (cap->image_index < 0 || cap->image_index >= ds->n_images) abort();
        const DsImage *im = &ds->images[cap->image_index];
        if (c < im->first_caption || c >= im->first_caption + im->n_captions) abort();
        if (!cap->text || !fuzz_utf8_valid(cap->text)) abort();
        for (int k = 0; k < cap->n_negatives; k++)
            if (!cap->negatives[k] || !fuzz_utf8_valid(cap->negatives[k])) abort();
    }
}

// Every placeholder the renderer knows, positive and negative, once.
static const char FUZZ_VARIANTS[] =
    "[caption]\ntemplate = {caption}\npolarity = positive\n"
    "[this_is_not]\ntemplate = This is not {caption_lc}\npolarity = negative\n"
    "[swap]\ntemplate = There is {swap_lc}; {swap}\npolarity = negative\n"
    "[other]\ntemplate = {subject} is not {a_other} ({other}) {{x}}\npolarity = other\n"
    "[neg]\ntemplate = {negative}\npolarity = negative\n";

// Render every variant of the first captions (bounded: rendering is the cheap part to check, not
// the point of the target) and check the results are valid UTF-8 with no status out of range.
static inline void fuzz_render_all(const Dataset *ds) {
    static VariantSet vs;
    static int loaded;
    if (!loaded) {
        const char *p = fuzz_write_temp("fuzz-variants.ini", (const unsigned char *)FUZZ_VARIANTS,
                                        sizeof FUZZ_VARIANTS - 1);
        if (variants_load(&vs, p) != CN_OK) abort();
        loaded = 1;
    }
    int n = ds->n_captions < 64 ? ds->n_captions : 64;
    for (int c = 0; c < n; c++)
        for (int v = 0; v < vs.n; v++) {
            char *out = NULL;
            int st = variant_render(&vs.items[v], ds, c, (uint64_t)c * 7919u, &out);
            if (st < TEXT_OK || st > TEXT_NO_NEGATIVE) abort();
            if ((st == TEXT_OK) != (out != NULL)) abort();
            if (out && !fuzz_utf8_valid(out)) abort();
            free(out);
        }
}

// The oracle of one load: a loaded dataset is checked, rendered and freed; a refused one must be
// CN_E_DATA with a message, nothing else.
static inline void fuzz_check_load(Dataset *ds, int rc) {
    if (rc == CN_OK) {
        fuzz_check_dataset(ds);
        fuzz_render_all(ds);
        dataset_free(ds);
    } else if (rc != CN_E_DATA || !cn_last_error()[0]) {
        abort();
    }
}

#endif
