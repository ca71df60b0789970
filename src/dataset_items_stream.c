// dataset_items_stream.c — the item manifest streamed (docs/items.md, "Memory"): one index pass
// parses and checks every line exactly as a resident reader would (same refusals, before any
// work), but keeps only an ItemKey per item, a file offset every DS_MARK_EVERY lines, the image
// paths and type names. Texts, boxes and ann_ids are read back from the file per window
// (items_get, items_stream_read), and the dataset the main phases evaluate reads each item's
// correct text back the same way (a streamed Dataset, as dataset_open_jsonl's).
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "items_internal.h"

// Index of `name` in list[0..*n), appended (copied) when new. (Images are few next to items: the
// replicated benchmarks reuse them.)
static int intern(char ***list, int *n, int *cap, const char *name) {
    for (int i = *n - 1; i >= 0; i--) // the latest first: items of one image are usually adjacent
        if (!strcmp((*list)[i], name)) return i;
    if (*n == *cap) *list = reallocCheck(*list, sizeof(char *) * (size_t)(*cap = 2 * *cap + 16));
    (*list)[*n] = strdupCheck(name);
    return (*n)++;
}

// A manifest line without its line break (a final '\r' dropped); 1 when it holds only blanks.
static int trim_line(const char *line, size_t *n) {
    if (*n > 0 && line[*n - 1] == '\r') (*n)--;
    for (size_t i = 0; i < *n; i++)
        if (line[i] != ' ' && line[i] != '\t') return 0;
    return 1;
}

static const char *correct_text(const Item *it) { return it->kind == ITEM_CHOICE ? it->texts[it->answer] : it->texts[0]; }

// ---- the index pass ------------------------------------------------------------------------------
typedef struct {
    ItemSet *s;
    ItemParser p;
    int cap_keys, cap_images, cap_types, cap_blank;
} Indexer;

static int index_line(Indexer *x, const char *line, size_t len, int lineno) {
    ItemSet *s = x->s;
    ItemStream *st = s->stream;
    Item it;
    char *image = NULL, *type = NULL;
    const char *deftype;
    int rc = items_parse_line(&x->p, line, len, lineno, &it, &image, &type, &deftype);
    if (rc) return rc;
    if (s->n_items == x->cap_keys) s->keys = reallocCheck(s->keys, sizeof *s->keys * (size_t)(x->cap_keys = 2 * x->cap_keys + 64));
    s->keys[s->n_items++] = (ItemKey){.line = lineno,
                                      .image = intern(&s->images, &s->n_images, &x->cap_images, image),
                                      .type = intern(&s->types, &s->n_types, &x->cap_types, type ? type : deftype),
                                      .n = (uint16_t)it.n, .answer = (uint8_t)it.answer, .kind = (uint8_t)it.kind};
    if (lineno / 8 >= x->cap_blank) {
        int cap = CN_MAX(2 * x->cap_blank, lineno / 8 + 64);
        st->blank = reallocCheck(st->blank, (size_t)cap);
        memset(st->blank + x->cap_blank, 0, (size_t)(cap - x->cap_blank));
        x->cap_blank = cap;
    }
    if (ds_is_blank(correct_text(&it))) st->blank[lineno / 8] |= (uint8_t)(1u << (lineno % 8));
    items_item_free(&it);
    free(image), free(type);
    return CN_OK;
}

// Every line once: keys, images, types, and a file offset every DS_MARK_EVERY lines.
static int index_lines(Indexer *x) {
    ItemStream *st = x->s->stream;
    JsonStream *js = &st->js;
    int rc = CN_OK, lineno = 1;
    for (;; lineno++) {
        ds_mark_line(js, lineno, &st->mark, &st->n_mark);
        if (js_line(js, 1) != 0) break;
        size_t n = js->val_len;
        if (trim_line(js->val, &n)) continue; // blank lines are allowed
        if ((rc = index_line(x, js->val, n, lineno)) != CN_OK) return rc;
    }
    st->n_where = lineno;
    return CN_OK;
}

int items_load(ItemSet *s, const char *manifest, const char *images_dir, const char *instances_json, int max_images) {
    memset(s, 0, sizeof *s);
    ItemStream *st = callocCheck(1, sizeof *st);
    st->js.fd = -1;
    s->stream = st;
    int rc = CN_OK;
    if (instances_json && instances_json[0]) {
        st->inst = callocCheck(1, sizeof *st->inst);
        if ((rc = items_instances_load(st->inst, instances_json))) {
            free(st->inst);
            st->inst = NULL;
            items_free(s);
            return rc;
        }
        st->inst_path = strdupCheck(instances_json);
    }
    s->manifest = strdupCheck(manifest);
    if (images_dir && images_dir[0]) {
        s->image_root = strdupCheck(images_dir);
    } else {
        const char *slash = strrchr(manifest, '/');
        size_t n = slash ? (size_t)(slash - manifest) + (slash == manifest) : 0;
        s->image_root = mallocCheck(n + 2);
        snprintf(s->image_root, n + 2, "%.*s", (int)n, n ? manifest : ".");
    }
    Indexer x = {.s = s, .p = {.path = s->manifest, .inst = st->inst, .inst_path = st->inst_path}};
    rc = js_open(&st->js, manifest); // (its message stands, as a data error)
    if (rc == CN_OK) rc = index_lines(&x);
    s->n_invalid_utf8 = x.p.n_invalid_utf8;
    if (rc == CN_OK && s->n_items == 0) rc = cn_fail(CN_E_DATA, "%s: no items (the manifest is empty)", manifest);
    if (rc) {
        items_free(s);
        return CN_E_DATA;
    }
    st->win = callocCheck(ITEMS_WINDOW, sizeof *st->win);
    items_set_shape(s, max_images);
    return CN_OK;
}

// ---- reading items back --------------------------------------------------------------------------
static int changed(const ItemSet *s, int line) {
    return cn_fail(CN_E_DATA, "%s:%d: no longer matches the index made when the run started (the file was changed during the run?)",
                   s->manifest, line);
}

// Position js at the start of line `w`, js being at the start of line *at (-1: unknown). 0 ok.
static int seek_line(ItemStream *st, int w, int *at) {
    if (*at < 0 || w < *at || w / DS_MARK_EVERY != *at / DS_MARK_EVERY) {
        js_seek(&st->js, st->mark[w / DS_MARK_EVERY]);
        *at = CN_MAX(1, w / DS_MARK_EVERY * DS_MARK_EVERY);
    }
    for (; *at < w; (*at)++)
        if (js_line(&st->js, 0) != 0) return -1;
    return 0;
}

int items_stream_read(const ItemSet *s, int i0, int n, Item *out) {
    ItemStream *st = s->stream;
    JsonStream *js = &st->js;
    js->pos = js->len = 0; // read the file afresh, never bytes buffered by an earlier call
    ItemParser p = {.path = s->manifest, .inst = st->inst, .inst_path = st->inst_path};
    int at = -1, rc = CN_OK, i = 0;
    for (; i < n && rc == CN_OK; i++) {
        const ItemKey *k = &s->keys[i0 + i];
        char *image = NULL, *type = NULL;
        const char *deftype;
        memset(&out[i], 0, sizeof out[i]);
        if (k->line < 1 || k->line >= st->n_where || seek_line(st, k->line, &at) != 0 || js_line(js, 1) != 0) {
            rc = changed(s, k->line);
            break;
        }
        at = k->line + 1;
        size_t len = js->val_len;
        if (trim_line(js->val, &len) || items_parse_line(&p, js->val, len, k->line, &out[i], &image, &type, &deftype) != CN_OK) {
            rc = changed(s, k->line);
            break;
        }
        Item *it = &out[i];
        it->image = k->image, it->type = k->type;
        if (it->n != k->n || it->answer != k->answer || (int)it->kind != k->kind || strcmp(image, s->images[k->image]) ||
            strcmp(type ? type : deftype, s->types[k->type]))
            rc = changed(s, k->line);
        free(image), free(type);
    }
    if (rc != CN_OK)
        for (int j = 0; j < i; j++) items_item_free(&out[j]);
    return rc;
}

void items_stream_free(ItemStream *st) {
    if (!st) return;
    js_close(&st->js);
    for (int i = 0; i < st->w1 - st->w0; i++) items_item_free(&st->win[i]);
    free(st->win);
    free(st->mark);
    free(st->blank);
    if (st->inst) items_instances_free(st->inst);
    free(st->inst);
    free(st->inst_path);
    free(st);
}

const Item *items_get(const ItemSet *s, int i) {
    if (i < 0 || i >= s->n_items) cn_die(CN_E_INTERNAL, "items_get: %d not in [0, %d)", i, s->n_items);
    if (s->items) return &s->items[i];
    ItemStream *st = s->stream;
    if (i < st->w0 || i >= st->w1) { // the phases walk items in ascending order: a window from i on
        for (int k = 0; k < st->w1 - st->w0; k++) items_item_free(&st->win[k]);
        st->w0 = st->w1 = 0;
        int n = CN_MIN(ITEMS_WINDOW, s->n_items - i);
        if (items_stream_read(s, i, n, st->win) != CN_OK) cn_die(CN_E_DATA, "%s", cn_last_error());
        st->w0 = i, st->w1 = i + n;
    }
    return &st->win[i - st->w0];
}

void items_free(ItemSet *s) {
    if (!s) return;
    for (int i = 0; s->items && i < s->n_items; i++) items_item_free(&s->items[i]);
    for (int i = 0; i < s->n_images; i++) free(s->images[i]);
    for (int i = 0; i < s->n_types; i++) free(s->types[i]);
    items_stream_free(s->stream);
    free(s->keys);
    free(s->items);
    free(s->images);
    free(s->types);
    free(s->manifest);
    free(s->image_root);
    memset(s, 0, sizeof *s);
}

// ---- the induced dataset -------------------------------------------------------------------------
// The correct text of the item on line `lineno` (the dataset's caption, read back through
// dataset_caption): "candidates"[answer], "caption" or "text", repaired as the index pass did.
// The line was checked by the index pass; anything else now means it changed.
static int item_caption(const char *path, const char *line, size_t len, int lineno, const DsKey *key, DsCaption *d) {
    (void)key;
    trim_line(line, &len);
    cJSON *obj = NULL;
    if (ds_parse_json(path, line, len, lineno, &obj) != CN_OK) return CN_E_DATA;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(obj, "candidates");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, "answer");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "caption");
    if (!v) v = cJSON_GetObjectItemCaseSensitive(obj, "text");
    if (c) v = cJSON_IsNumber(a) ? cJSON_GetArrayItem(c, a->valueint) : NULL;
    int rc = cJSON_IsString(v) ? CN_OK : CN_E_DATA;
    if (rc == CN_OK) d->text = utf8_sanitize(v->valuestring, strlen(v->valuestring), NULL);
    cJSON_Delete(obj);
    return rc;
}

int items_to_dataset(const ItemSet *s, Dataset *ds) {
    memset(ds, 0, sizeof *ds);
    ds->image_root = strdupCheck(s->image_root);
    RawImage *images = callocCheck((size_t)s->n_images + 1, sizeof(RawImage));
    for (int i = 0; i < s->n_images; i++) images[i] = (RawImage){.id = i, .file_name = strdupCheck(s->images[i]), .where = i};
    const ItemStream *ist = s->stream;
    DsBuild b = {.path = s->manifest, .jsonl = 1, .resident = s->items != NULL};
    ds_build_images(ds, &b, images, s->n_images); // ids 0..n-1: image index = id
    for (int i = 0; i < s->n_items; i++) {
        const ItemKey *k = &s->keys[i];
        if (b.resident) { // where = the item index: unique (benchmark folders such as SugarCrepe's restart `line` per file)
            DsText t = {.text = strdupCheck(correct_text(&s->items[i]))};
            ds_build_caption(&b, i, k->image, k->image, i, &t, 0);
        } else { // where = the manifest line, read back from there
            ds_build_caption(&b, i, k->image, k->image, k->line, NULL, (ist->blank[k->line / 8] >> (k->line % 8)) & 1);
        }
    }
    int rc = ds_build_finish(ds, &b, 0);
    if (rc == CN_OK && !s->items) {
        DsStream *st = callocCheck(1, sizeof *st);
        st->path = strdupCheck(s->manifest);
        st->jsonl = 1;
        st->read_line = item_caption;
        st->n_where = ist->n_where;
        st->n_mark = ist->n_where / DS_MARK_EVERY + 1;
        st->mark = mallocCheck(sizeof *st->mark * (size_t)st->n_mark);
        memcpy(st->mark, ist->mark, sizeof *st->mark * (size_t)st->n_mark);
        st->win = callocCheck(DS_WINDOW, sizeof *st->win);
        ds->stream = st;
        rc = js_open(&st->js, s->manifest);
    }
    if (rc) dataset_free(ds);
    return rc;
}
