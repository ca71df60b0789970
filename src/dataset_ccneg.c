// dataset_ccneg.c — CC-Neg as published: `ccneg_preprocessed.pt` (CoN-CLIP, ccneg_dataset/README.md),
// read with the data-only PyTorch reader into the item set of `[dataset] format = items` (items.h):
// one choice item per entry, K = 2 (the true caption, then its negation), answer 0, type "ccneg".
//
// Layout (a torch.save dict): "image_paths": [str], "annotations": [{"json": {"caption": str, ...},
// "sop_data": {"negative-prompt": str, ...}}, ...], same length. As upstream's evaluation
// (src/configs/__init__.py, src/data/evaluation_datasets.py CCNegEvalDataset): the LAST 40,000
// entries are the test split, and commas are removed from the negated caption.
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/dataset.h"
#include "clipneg/items.h"
#include "clipneg/torchfile.h"

#define CCNEG_TEST_SPLIT 40000

typedef struct {
    const char *path;
    int entry;  // index into the file's lists
} PathRef;

static int cmp_ref(const void *a, const void *b) {
    const PathRef *x = a, *y = b;
    int c = strcmp(x->path, y->path);
    return c ? c : (x->entry > y->entry) - (x->entry < y->entry);
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

// Item i's image index: images numbered by first appearance, duplicates shared (sort, not a
// quadratic search: the full file has 228k entries).
static void assign_images(ItemSet *s, PathRef *refs, int n) {
    qsort(refs, (size_t)n, sizeof *refs, cmp_ref);
    int *first = mallocCheck(sizeof(int) * (size_t)n + 1);  // per entry: the first entry of its path
    int n_unique = 0;
    for (int i = 0; i < n; i++) {
        int new_path = i == 0 || strcmp(refs[i].path, refs[i - 1].path);
        n_unique += new_path;
        first[refs[i].entry] = new_path ? refs[i].entry : first[refs[i - 1].entry];
    }
    int *firsts = mallocCheck(sizeof(int) * (size_t)n_unique + 1), k = 0;
    for (int e = 0; e < n; e++)
        if (first[e] == e) firsts[k++] = e;  // ascending: order of first appearance
    qsort(firsts, (size_t)k, sizeof(int), cmp_int);
    s->images = callocCheck((size_t)k + 1, sizeof(char *));
    s->n_images = k;
    int *index_of = mallocCheck(sizeof(int) * (size_t)n + 1);
    for (int j = 0; j < k; j++) index_of[firsts[j]] = j;
    for (int i = 0; i < n; i++) {
        if (first[refs[i].entry] == refs[i].entry) s->images[index_of[refs[i].entry]] = strdupCheck(refs[i].path);
        s->items[refs[i].entry].image = index_of[first[refs[i].entry]];
    }
    free(first);
    free(firsts);
    free(index_of);
}

static char *without_commas(const char *t) {
    char *o = mallocCheck(strlen(t) + 1), *w = o;
    for (; *t; t++)
        if (*t != ',') *w++ = *t;
    *w = '\0';
    return o;
}

static int fail_field(const char *path, int entry, const char *field, const TorchValue *v) {
    return cn_fail(CN_E_DATA, "%s: entry %d: %s: expected a str, found %s", path, entry, field, torchvalue_kind(v));
}

int ccneg_load(ItemSet *s, const char *pt_path, const char *images_dir, const char *strip_prefix, int last_n) {
    memset(s, 0, sizeof *s);
    TorchData *td;
    int rc = torchdata_open(&td, pt_path);
    if (rc != CN_OK) return rc;
    const TorchValue *root = torchdata_root(td), *paths = torchvalue_get(root, "image_paths"),
                     *anns = torchvalue_get(root, "annotations");
    int n = torchvalue_len(paths);
    if (n < 0 || torchvalue_len(anns) < 0)
        rc = cn_fail(CN_E_DATA, "%s: expected a dict with lists \"image_paths\" and \"annotations\" (found %s and %s)",
                     pt_path, torchvalue_kind(paths), torchvalue_kind(anns));
    else if (torchvalue_len(anns) != n)
        rc = cn_fail(CN_E_DATA, "%s: %d image_paths but %d annotations", pt_path, n, torchvalue_len(anns));
    else if (n == 0)
        rc = cn_fail(CN_E_DATA, "%s: no entries", pt_path);
    if (rc != CN_OK) {
        torchdata_close(td);
        return rc;
    }
    int keep = CN_MIN(n, last_n > 0 ? last_n : CCNEG_TEST_SPLIT), start = n - keep;
    size_t strip = strip_prefix ? strlen(strip_prefix) : 0;
    s->items = callocCheck((size_t)keep, sizeof(Item));
    PathRef *refs = mallocCheck(sizeof(PathRef) * (size_t)keep);
    for (int i = 0; i < keep && rc == CN_OK; i++) {
        int e = start + i;
        const TorchValue *a = torchvalue_index(anns, e), *pv = torchvalue_index(paths, e);
        const TorchValue *cv = torchvalue_get(torchvalue_get(a, "json"), "caption");
        const TorchValue *nv = torchvalue_get(torchvalue_get(a, "sop_data"), "negative-prompt");
        const char *p = torchvalue_str(pv), *cap = torchvalue_str(cv), *neg = torchvalue_str(nv);
        if (!p) rc = fail_field(pt_path, e, "image_paths[i]", pv);
        else if (!cap) rc = fail_field(pt_path, e, "annotations[i][\"json\"][\"caption\"]", cv);
        else if (!neg) rc = fail_field(pt_path, e, "annotations[i][\"sop_data\"][\"negative-prompt\"]", nv);
        else if (!p[0]) rc = cn_fail(CN_E_DATA, "%s: entry %d: empty image path", pt_path, e);
        if (rc != CN_OK) break;
        refs[i].path = strip && !strncmp(p, strip_prefix, strip) ? p + strip : p;
        refs[i].entry = i;
        Item *it = &s->items[i];
        it->kind = ITEM_CHOICE;
        it->line = e + 1;  // the entry, 1-based, where a manifest would give its line
        it->n = 2;
        it->answer = 0;
        it->texts = callocCheck(2, sizeof(char *));
        char *nc = without_commas(neg);
        it->texts[0] = utf8_sanitize(cap, strlen(cap), &s->n_invalid_utf8);
        it->texts[1] = utf8_sanitize(nc, strlen(nc), &s->n_invalid_utf8);
        free(nc);
        s->n_items++;
    }
    if (rc == CN_OK) {
        assign_images(s, refs, keep);
        s->types = callocCheck(1, sizeof(char *));
        s->types[0] = strdupCheck("ccneg");
        s->n_types = 1;
        s->manifest = strdupCheck(pt_path);
        if (images_dir && images_dir[0]) {
            s->image_root = strdupCheck(images_dir);
        } else {
            const char *slash = strrchr(pt_path, '/');
            size_t k = slash ? (size_t)(slash - pt_path) + (slash == pt_path) : 0;
            s->image_root = mallocCheck(k + 2);
            snprintf(s->image_root, k + 2, "%.*s", (int)k, k ? pt_path : ".");
        }
        s->k_max = s->k_text = 2;
        s->k_image = 1;
    }
    free(refs);
    torchdata_close(td);
    if (rc != CN_OK) items_free(s);
    return rc;
}
