// dataset_jsonl.c — a JSONL manifest: one JSON object per line,
//   {"image": "path/to/img.jpg", "caption": "text", "id": 12, "negatives": ["text", ...]}
// ("id" and "negatives" optional, other fields ignored, blank lines skipped). Lines naming the
// same image path share one image; image ids are the running index of first appearance and
// caption ids are "id" or, when absent, the line number.
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

// One manifest line into images/captions. Returns CN_OK or CN_E_DATA naming FILE:LINE: field.
static int read_line(Dataset *ds, DsBuild *b, const char *line, size_t len, int lineno, PathMap *map,
                     RawImage **images, int *n_images, int *cap_images, int *first_bad_utf8) {
    const char *path = b->path;
    JsonPlace at = {.path = path, .jsonl = 1};
    snprintf(at.where, sizeof at.where, "%d", lineno);
    cJSON *obj = NULL;
    int rc = ds_parse_json(path, line, len, lineno, &obj);
    if (rc != CN_OK) return rc;
    if (!cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        return cn_fail(CN_E_DATA, "%s:%d: expected a JSON object", path, lineno);
    }
    char *image = NULL;
    int bad = 0, present = 0;
    int64_t id = 0;
    DsText cap = {0};
    if ((rc = ds_get_string(&at, obj, "image", 1, 1, 1, &image, NULL)) == CN_OK &&
        (rc = ds_get_string(&at, obj, "caption", 1, 0, 0, &cap.text, &bad)) == CN_OK &&
        (rc = ds_get_int(&at, obj, "id", 0, &id, &present)) == CN_OK)
        rc = read_negatives(&at, obj, &cap, &bad);
    cJSON_Delete(obj);
    if (rc != CN_OK) {
        free(image);
        ds_text_free(&cap);
        return rc;
    }
    if (bad && ds->n_invalid_utf8++ == 0) *first_bad_utf8 = lineno;
    // image ids are the running index of first appearance, so this is also the image's final index
    int im = map_get_or_add(map, images, n_images, cap_images, image, lineno);
    ds_build_caption(b, present ? id : lineno, im, im, lineno, &cap, 0);
    return CN_OK;
}

int dataset_load_jsonl(Dataset *ds, const char *manifest, const char *images_dir, int max_images) {
    memset(ds, 0, sizeof *ds);
    if (images_dir && images_dir[0]) {
        ds->image_root = strdupCheck(images_dir);
    } else {  // the manifest's folder
        const char *slash = strrchr(manifest, '/');
        size_t n = slash ? (size_t)(slash - manifest) + (slash == manifest) : 0;
        ds->image_root = mallocCheck(n + 2);
        snprintf(ds->image_root, n + 2, "%.*s", (int)n, n ? manifest : ".");
    }
    char *text = NULL;
    size_t len = 0;
    if (cn_read_file(manifest, &text, &len) != CN_OK) {
        dataset_free(ds);
        return CN_E_DATA;  // cn_read_file's message stands, as a data error
    }
    RawImage *images = NULL;
    DsBuild b = {.path = manifest, .jsonl = 1, .resident = 1};
    int n_images = 0, cap_images = 0, first_bad_utf8 = 0, rc = CN_OK;
    PathMap map = {0};
    int lineno = 0;
    for (size_t pos = 0; pos < len && rc == CN_OK;) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        lineno++;
        size_t blank = 0;
        while (blank < n && (line[blank] == ' ' || line[blank] == '\t' || line[blank] == '\r')) blank++;
        if (blank == n) continue;  // blank lines are allowed (e.g. a final empty line)
        rc = read_line(ds, &b, line, n, lineno, &map, &images, &n_images, &cap_images, &first_bad_utf8);
    }
    free(text);
    free(map.slots);
    if (rc == CN_OK && b.n_caps == 0) rc = cn_fail(CN_E_DATA, "%s: no captions (the manifest has no JSON lines)", manifest);
    if (rc != CN_OK) {
        for (int i = 0; i < n_images; i++) free(images[i].file_name);
        free(images);
        ds_build_free(&b);
        dataset_free(ds);
        return rc;
    }
    if (ds->n_invalid_utf8 && cn_rank() == 0)
        cn_warn("%s: %d line(s) with invalid UTF-8 in caption/negatives, kept with U+FFFD replacements (first: line %d)",
                manifest, ds->n_invalid_utf8, first_bad_utf8);
    ds_build_images(ds, &b, images, n_images);
    rc = ds_build_finish(ds, &b, max_images);
    if (rc != CN_OK) dataset_free(ds);
    return rc;
}
