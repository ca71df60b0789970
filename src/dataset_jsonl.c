// dataset_jsonl.c — a JSONL manifest: one JSON object per line,
//   {"image": "path/to/img.jpg", "caption": "text", "id": 12, "negatives": ["text", ...]}
// ("id" and "negatives" optional, other fields ignored, blank lines skipped). Lines naming the
// same image path share one image; image ids are the running index of first appearance and
// caption ids are "id" or, when absent, the line number. Streamed like COCO (dataset_stream.c): the
// index pass keeps a DsKey per line and a file offset every 8 lines; texts are read back per window.
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "dataset_internal.h"

// Open-addressing map from image path to its index in the RawImage array.
typedef struct {
    int *slots;  // -1 = empty
    int cap;     // power of two
} PathMap;

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void map_grow(PathMap *m, const RawImage *images) {
    int cap = m->cap ? 2 * m->cap : 64;
    int *slots = mallocCheck(sizeof(int) * (size_t)cap);
    for (int i = 0; i < cap; i++) slots[i] = -1;
    for (int i = 0; i < m->cap; i++) {
        if (m->slots[i] < 0) continue;
        uint64_t h = fnv1a(images[m->slots[i]].file_name);
        int j = (int)(h & (uint64_t)(cap - 1));
        while (slots[j] >= 0) j = (j + 1) & (cap - 1);
        slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots, m->cap = cap;
}

// Index of `path` among images[0..*n), adding it (taking ownership of path) if new.
static int map_get_or_add(PathMap *m, RawImage **images, int *n, int *cap, char *path, int line) {
    if (2 * (*n + 1) > m->cap) map_grow(m, *images);
    uint64_t h = fnv1a(path);
    int j = (int)(h & (uint64_t)(m->cap - 1));
    while (m->slots[j] >= 0) {
        if (!strcmp((*images)[m->slots[j]].file_name, path)) {
            free(path);
            return m->slots[j];
        }
        j = (j + 1) & (m->cap - 1);
    }
    if (*n == *cap) *images = reallocCheck(*images, sizeof **images * (size_t)(*cap = 2 * *cap + 16));
    RawImage *r = &(*images)[*n];
    r->id = *n, r->file_name = path, r->where = line;
    m->slots[j] = *n;
    return (*n)++;
}

static int read_negatives(const JsonPlace *at, const cJSON *obj, DsText *r, int *bad_utf8) {
    const cJSON *neg = cJSON_GetObjectItemCaseSensitive(obj, "negatives");
    if (!neg) return CN_OK;
    if (!cJSON_IsArray(neg)) return cn_fail(CN_E_DATA, "%s:%s: negatives: expected an array of strings", at->path, at->where);
    int n = cJSON_GetArraySize(neg), k = 0;
    r->negatives = callocCheck((size_t)n, sizeof(char *));
    const cJSON *item;
    cJSON_ArrayForEach(item, neg) {
        if (!cJSON_IsString(item))
            return cn_fail(CN_E_DATA, "%s:%s: negatives[%d]: expected a string", at->path, at->where, k);
        int bad = 0;
        r->negatives[k++] = utf8_sanitize(item->valuestring, strlen(item->valuestring), &bad);
        r->n_negatives = k;
        *bad_utf8 |= bad != 0;
    }
    return CN_OK;
}

// Parse one manifest line: its image path, caption id ("id", or the line number when absent) and
// strings. CN_OK or CN_E_DATA naming FILE:LINE: field (nothing left to free then).
static int parse_line(const char *path, const char *line, size_t len, int lineno, char **image, int64_t *id,
                      DsText *cap, int *bad) {
    JsonPlace at = {.path = path, .jsonl = 1};
    snprintf(at.where, sizeof at.where, "%d", lineno);
    cJSON *obj = NULL;
    *image = NULL;
    memset(cap, 0, sizeof *cap);
    *bad = 0;
    int rc = ds_parse_json(path, line, len, lineno, &obj);
    if (rc != CN_OK) return rc;
    if (!cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        return cn_fail(CN_E_DATA, "%s:%d: expected a JSON object", path, lineno);
    }
    int present = 0;
    if ((rc = ds_get_string(&at, obj, "image", 1, 1, 1, image, NULL)) == CN_OK &&
        (rc = ds_get_string(&at, obj, "caption", 1, 0, 0, &cap->text, bad)) == CN_OK &&
        (rc = ds_get_int(&at, obj, "id", 0, id, &present)) == CN_OK)
        rc = read_negatives(&at, obj, cap, bad);
    cJSON_Delete(obj);
    if (!present) *id = lineno;
    if (rc != CN_OK) {
        free(*image);
        *image = NULL;
        ds_text_free(cap);
    }
    return rc;
}

typedef struct {
    Dataset *ds;
    DsBuild b;
    DsStream *st;
    PathMap map;
    RawImage *images;
    int n_images, cap_images, first_bad_utf8;
} JsonlRead;

// The index pass over one line: the image (its path is kept: one per image), the caption's key and
// whether it is blank; the strings are read again when a rank needs them.
static int index_line(JsonlRead *r, const char *line, size_t len, int lineno) {
    char *image = NULL;
    int64_t id = 0;
    int bad = 0;
    DsText cap;
    int rc = parse_line(r->b.path, line, len, lineno, &image, &id, &cap, &bad);
    if (rc != CN_OK) return rc;
    if (bad && r->ds->n_invalid_utf8++ == 0) r->first_bad_utf8 = lineno;
    int blank = ds_is_blank(cap.text);
    ds_text_free(&cap);
    // image ids are the running index of first appearance, so this is also the image's final index
    int im = map_get_or_add(&r->map, &r->images, &r->n_images, &r->cap_images, image, lineno);
    ds_build_caption(&r->b, id, im, im, lineno, NULL, blank);
    return CN_OK;
}

int ds_jsonl_caption(const char *path, const char *line, size_t len, int lineno, const DsKey *key, DsCaption *d) {
    char *image = NULL;
    int64_t id = 0;
    int bad = 0;
    DsText cap;
    int rc = parse_line(path, line, len, lineno, &image, &id, &cap, &bad);
    free(image);
    if (rc == CN_OK && id != key->id) rc = CN_E_DATA;
    if (rc != CN_OK) {
        ds_text_free(&cap);
        return rc;
    }
    d->text = cap.text, d->negatives = cap.negatives, d->n_negatives = cap.n_negatives;
    return CN_OK;
}

// Every line once: keys, images and a file offset every DS_MARK_EVERY lines into r->st.
static int index_lines(JsonlRead *r) {
    DsStream *st = r->st;
    JsonStream *js = &st->js;
    int rc = CN_OK, lineno = 1;
    for (;; lineno++) {
        ds_mark_line(js, lineno, &st->mark, &st->n_mark);
        if (js_line(js, 1) != 0) break;
        const char *line = js->val;
        size_t n = js->val_len, blank = 0;
        while (blank < n && (line[blank] == ' ' || line[blank] == '\t' || line[blank] == '\r')) blank++;
        if (blank == n) continue;  // blank lines are allowed (e.g. a final empty line)
        if ((rc = index_line(r, line, n, lineno)) != CN_OK) return rc;
    }
    st->n_where = lineno;  // lines 1 .. lineno - 1
    return CN_OK;
}

static int load_jsonl(Dataset *ds, const char *manifest, const char *images_dir, int max_images, int resident) {
    memset(ds, 0, sizeof *ds);
    if (images_dir && images_dir[0]) {
        ds->image_root = strdupCheck(images_dir);
    } else {  // the manifest's folder
        const char *slash = strrchr(manifest, '/');
        size_t n = slash ? (size_t)(slash - manifest) + (slash == manifest) : 0;
        ds->image_root = mallocCheck(n + 2);
        snprintf(ds->image_root, n + 2, "%.*s", (int)n, n ? manifest : ".");
    }
    JsonlRead r = {.ds = ds, .b = {.path = manifest, .jsonl = 1}};
    r.st = callocCheck(1, sizeof *r.st);
    r.st->jsonl = 1;
    r.st->read_line = ds_jsonl_caption;
    int rc = js_open(&r.st->js, manifest);  // (its message stands, as a data error)
    if (rc == CN_OK) rc = index_lines(&r);
    free(r.map.slots);
    if (rc == CN_OK && r.b.n_caps == 0) rc = cn_fail(CN_E_DATA, "%s: no captions (the manifest has no JSON lines)", manifest);
    if (rc != CN_OK) {
        for (int i = 0; i < r.n_images; i++) free(r.images[i].file_name);
        free(r.images);
        ds_build_free(&r.b);
        ds_stream_free(r.st);
        dataset_free(ds);
        return CN_E_DATA;
    }
    if (ds->n_invalid_utf8 && cn_rank() == 0)
        cn_warn("%s: %d line(s) with invalid UTF-8 in caption/negatives, kept with U+FFFD replacements (first: line %d)",
                manifest, ds->n_invalid_utf8, r.first_bad_utf8);
    ds_build_images(ds, &r.b, r.images, r.n_images);
    r.st->path = strdupCheck(manifest);
    r.st->win = callocCheck(DS_WINDOW, sizeof *r.st->win);
    if ((rc = ds_build_finish(ds, &r.b, max_images)) != CN_OK) {
        ds_stream_free(r.st);
        dataset_free(ds);
        return rc;
    }
    ds->stream = r.st;
    if (resident) {  // every caption read once, then the file closed
        ds->captions = callocCheck((size_t)ds->n_captions + 1, sizeof *ds->captions);
        rc = ds_stream_read(ds->stream, ds->keys, ds->n_captions, ds->captions);
        ds_stream_free(ds->stream);
        ds->stream = NULL;
        if (rc != CN_OK) dataset_free(ds);
    }
    return rc;
}

int dataset_load_jsonl(Dataset *ds, const char *manifest, const char *images_dir, int max_images) {
    return load_jsonl(ds, manifest, images_dir, max_images, 1);
}

int dataset_open_jsonl(Dataset *ds, const char *manifest, const char *images_dir, int max_images) {
    return load_jsonl(ds, manifest, images_dir, max_images, 0);
}
