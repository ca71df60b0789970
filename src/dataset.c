// dataset.c — what both dataset readers share: the deterministic order (images by id, captions by
// (image id, caption id)), duplicate/orphan accounting, the public accessors. JSON field checks and
// UTF-8 repair: dataset_json.c. The formats themselves: dataset_coco.c, dataset_jsonl.c; what is
// counted or dropped is documented in docs/datasets.md.
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "dataset_internal.h"

// ---- ordering and accounting --------------------------------------------------------------------------

static int cmp_raw_image(const void *a, const void *b) {
    const RawImage *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return (x->where > y->where) - (x->where < y->where);
}

static int cmp_key_id(const DsKey *x, const DsKey *y) {
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return (x->where > y->where) - (x->where < y->where);
}

static int cmp_key_order(const DsKey *x, const DsKey *y) {
    if (x->image_index != y->image_index) return x->image_index < y->image_index ? -1 : 1;
    return cmp_key_id(x, y);
}

// In-place heapsort: glibc's qsort allocates a copy of the whole array (merge sort), which for
// millions of captions would double the peak memory this file exists to keep small. Every
// comparator here is a total order (ties broken by `where`), so stability does not matter.
static void sift_down(DsKey *a, size_t root, size_t n, int (*cmp)(const DsKey *, const DsKey *)) {
    for (size_t child; (child = 2 * root + 1) < n; root = child) {
        if (child + 1 < n && cmp(&a[child], &a[child + 1]) < 0) child++;
        if (cmp(&a[root], &a[child]) >= 0) return;
        DsKey t = a[root];
        a[root] = a[child], a[child] = t;
    }
}

static void sort_keys(DsKey *a, size_t n, int (*cmp)(const DsKey *, const DsKey *)) {
    for (size_t i = n / 2; i-- > 0;) sift_down(a, i, n, cmp);
    for (size_t end = n; end-- > 1;) {
        DsKey t = a[0];
        a[0] = a[end], a[end] = t;
        sift_down(a, 0, end, cmp);
    }
}

static void item_name(char *buf, size_t n, int jsonl, const char *array, int where) {
    if (jsonl) snprintf(buf, n, "line %d", where);
    else snprintf(buf, n, "%s[%d]", array, where);
}

int ds_is_blank(const char *t) {
    while (*t == ' ' || *t == '\t' || *t == '\n' || *t == '\r') t++;
    return !*t;
}

void ds_text_free(DsText *t) {
    free(t->text);
    for (int k = 0; k < t->n_negatives; k++) free(t->negatives[k]);
    free(t->negatives);
    memset(t, 0, sizeof *t);
}

void ds_build_images(Dataset *ds, DsBuild *b, RawImage *images, int n_images) {
    // By id; a repeated id keeps its first occurrence in the file.
    qsort(images, (size_t)n_images, sizeof *images, cmp_raw_image);
    ds->images = callocCheck((size_t)n_images + 1, sizeof *ds->images);
    ds->n_images = 0;
    b->first_dup_image = -1;
    for (int i = 0; i < n_images; i++) {
        if (ds->n_images > 0 && ds->images[ds->n_images - 1].id == images[i].id) {
            if (b->dup_images++ == 0 || images[i].where < b->first_dup_image)
                b->first_dup_image = images[i].where, b->first_dup_image_id = images[i].id;
            free(images[i].file_name);
            continue;
        }
        DsImage *d = &ds->images[ds->n_images++];
        d->id = images[i].id;
        d->file_name = images[i].file_name;
    }
    free(images);
}

int ds_image_find(const Dataset *ds, int64_t id) {
    int lo = 0, hi = ds->n_images;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (ds->images[mid].id < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < ds->n_images && ds->images[lo].id == id ? lo : -1;
}

void ds_build_caption(DsBuild *b, int64_t id, int image_index, int64_t image_id, int where, DsText *text, int blank) {
    if (b->n_caps == b->cap_caps) b->caps = reallocCheck(b->caps, sizeof *b->caps * (size_t)(b->cap_caps = 2 * b->cap_caps + 64));
    if (image_index < 0) {
        if (b->n_orphans == b->cap_orphans)
            b->orphan_image_ids = reallocCheck(b->orphan_image_ids, sizeof(int64_t) * (size_t)(b->cap_orphans = 2 * b->cap_orphans + 16));
        b->orphan_image_ids[b->n_orphans] = image_id;
        image_index = -1 - b->n_orphans++;
    }
    b->caps[b->n_caps++] = (DsKey){.id = id, .image_index = image_index, .where = where};
    if (where >= b->cap_texts && b->resident) {
        int cap = CN_MAX(2 * b->cap_texts + 64, where + 1);
        b->texts = reallocCheck(b->texts, sizeof *b->texts * (size_t)cap);
        memset(b->texts + b->cap_texts, 0, sizeof *b->texts * (size_t)(cap - b->cap_texts));
        b->cap_texts = cap;
    }
    if (b->resident) {
        ds_text_free(&b->texts[where]);  // (only if a reader repeated a `where`)
        b->texts[where] = *text;
        memset(text, 0, sizeof *text);
    } else {
        if (where / 8 >= b->cap_blank) {
            int cap = CN_MAX(2 * b->cap_blank + 64, where / 8 + 1);
            b->blank = reallocCheck(b->blank, (size_t)cap);
            memset(b->blank + b->cap_blank, 0, (size_t)(cap - b->cap_blank));
            b->cap_blank = cap;
        }
        if (blank) b->blank[where / 8] |= (uint8_t)(1u << (where % 8));
    }
}

void ds_build_free(DsBuild *b) {
    for (int i = 0; i < b->cap_texts; i++) ds_text_free(&b->texts[i]);
    free(b->texts);
    free(b->caps);
    free(b->orphan_image_ids);
    free(b->blank);
    memset(b, 0, sizeof *b);
}

int ds_build_finish(Dataset *ds, DsBuild *b, int max_images) {
    char name[64];
    const char *path = b->path;
    int n_img = ds->n_images, n_read = b->n_caps;
    int n_keep_img = (max_images > 0 && max_images < n_img) ? max_images : n_img;
    DsKey *caps = b->caps;

    // Captions: a repeated caption id keeps its first occurrence.
    sort_keys(caps, (size_t)b->n_caps, cmp_key_id);
    int n_cap = 0, dup_captions = 0, first_dup_cap = -1, orphans = 0, first_orphan = -1;
    int64_t first_dup_cap_id = 0, first_orphan_image = 0;
    for (int i = 0; i < b->n_caps; i++) {
        DsKey c = caps[i];
        if (i > 0 && caps[i - 1].id == c.id) {
            // (caps[i-1] is unchanged: kept keys are written at n_cap - 1 <= i - 1, i.e. onto themselves)
            if (dup_captions++ == 0 || c.where < first_dup_cap) first_dup_cap = c.where, first_dup_cap_id = c.id;
            continue;
        }
        if (c.image_index < 0) {
            if (orphans++ == 0 || c.where < first_orphan)
                first_orphan = c.where, first_orphan_image = b->orphan_image_ids[-1 - c.image_index];
            continue;
        }
        if (c.image_index >= n_keep_img) {
            ds->n_dropped_by_max_images++;
            continue;
        }
        caps[n_cap++] = c;
    }
    sort_keys(caps, (size_t)n_cap, cmp_key_order);
    ds->keys = reallocCheck(caps, sizeof *caps * (size_t)(n_cap + 1));
    b->caps = NULL;
    ds->n_captions = n_cap;

    for (int i = n_keep_img; i < n_img; i++) free(ds->images[i].file_name);
    ds->n_images = n_keep_img;
    if (b->resident) ds->captions = callocCheck((size_t)n_cap + 1, sizeof *ds->captions);
    for (int i = 0; i < n_cap; i++) {
        const DsKey *k = &ds->keys[i];
        DsImage *img = &ds->images[k->image_index];
        if (img->n_captions++ == 0) img->first_caption = i;
        int blank;
        if (b->resident) {
            DsCaption *d = &ds->captions[i];
            DsText *t = &b->texts[k->where];
            d->id = k->id, d->image_index = k->image_index;
            d->text = t->text, d->negatives = t->negatives, d->n_negatives = t->n_negatives;
            memset(t, 0, sizeof *t);
            blank = ds_is_blank(d->text);
        } else {
            blank = (b->blank[k->where / 8] >> (k->where % 8)) & 1;
        }
        ds->n_empty_captions += blank;
    }
    for (int i = 0; i < n_keep_img; i++)
        if (ds->images[i].n_captions == 0) ds->n_images_without_captions++;
    ds->n_duplicate_ids += b->dup_images + dup_captions;
    ds->n_captions_without_image += orphans;

    // A dataset warning is the same on every rank: say it once.
    if (cn_rank() == 0) {
        if (b->dup_images) {
            item_name(name, sizeof name, b->jsonl, "images", b->first_dup_image);
            cn_warn("%s: %d duplicate image id(s), first kept (first: %s, id %lld)", path, b->dup_images, name,
                    (long long)b->first_dup_image_id);
        }
        if (dup_captions) {
            item_name(name, sizeof name, b->jsonl, "annotations", first_dup_cap);
            cn_warn("%s: %d duplicate caption id(s), first kept (first: %s, id %lld)", path, dup_captions, name,
                    (long long)first_dup_cap_id);
        }
        if (orphans) {
            item_name(name, sizeof name, b->jsonl, "annotations", first_orphan);
            cn_warn("%s: %d caption(s) refer to an image id not in \"images\", dropped (first: %s, image_id %lld)",
                    path, orphans, name, (long long)first_orphan_image);
        }
        if (ds->n_empty_captions) cn_warn("%s: %d empty caption(s), kept (their texts are not rendered)", path,
                                          ds->n_empty_captions);
    }
    ds_build_free(b);
    if (ds->n_captions == 0)
        return cn_fail(CN_E_DATA, "%s: no captions left to evaluate (%d read, %d without image, %d duplicate)", path,
                       n_read, orphans, dup_captions);
    return CN_OK;
}

// ---- public helpers ------------------------------------------------------------------------------------

void dataset_free(Dataset *ds) {
    if (!ds) return;
    for (int i = 0; i < ds->n_images; i++) {
        free(ds->images[i].file_name);
        free(ds->images[i].categories);
    }
    for (int i = 0; ds->captions && i < ds->n_captions; i++) ds_caption_clear(&ds->captions[i]);
    if (ds->stream) ds_stream_free(ds->stream);
    free(ds->keys);
    for (int i = 0; i < ds->n_categories; i++) {
        free(ds->categories[i].name);
        free(ds->categories[i].supercategory);
    }
    free(ds->images);
    free(ds->captions);
    free(ds->categories);
    free(ds->image_root);
    memset(ds, 0, sizeof *ds);
}

char *dataset_image_path(const Dataset *ds, int i) {
    const char *f = ds->images[i].file_name;
    const char *root = ds->image_root ? ds->image_root : "";
    if (f[0] == '/' || !root[0]) return strdupCheck(f);
    size_t n = strlen(root) + strlen(f) + 2;
    char *p = mallocCheck(n);
    snprintf(p, n, "%s%s%s", root, root[strlen(root) - 1] == '/' ? "" : "/", f);
    return p;
}

const DsCaption *dataset_caption(const Dataset *ds, int c) {
    if (c < 0 || c >= ds->n_captions) cn_die(CN_E_INTERNAL, "dataset_caption: %d not in [0, %d)", c, ds->n_captions);
    if (ds->captions) return &ds->captions[c];
    DsStream *st = ds->stream;
    if (c < st->c0 || c >= st->c1) {
        // The phases walk captions in ascending order: read a window from c on (or up to c when
        // walking backwards).
        int c0 = c < st->c0 ? CN_MAX(0, c - DS_WINDOW + 1) : c;
        int n = CN_MIN(DS_WINDOW, ds->n_captions - c0);
        for (int i = 0; i < st->c1 - st->c0; i++) ds_caption_clear(&st->win[i]);
        st->c0 = st->c1 = 0;
        if (ds_stream_read(st, ds->keys + c0, n, st->win) != CN_OK) cn_die(CN_E_DATA, "%s", cn_last_error());
        st->c0 = c0, st->c1 = c0 + n;
    }
    return &st->win[c - st->c0];
}

int64_t dataset_caption_id(const Dataset *ds, int c) { return ds->keys ? ds->keys[c].id : ds->captions[c].id; }

int dataset_caption_image(const Dataset *ds, int c) {
    return ds->keys ? ds->keys[c].image_index : ds->captions[c].image_index;
}
