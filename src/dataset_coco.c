// dataset_coco.c — COCO captions JSON exactly as COCO ships it ("images" [{id, file_name}],
// "annotations" [{id, image_id, caption}]) and, optionally, the instances JSON ("categories",
// "annotations" [{image_id, category_id}]) that tells which categories each image shows.
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "dataset_internal.h"

static const cJSON *get_array(const char *path, const cJSON *root, const char *key, int *rc) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!a) *rc = cn_fail(CN_E_DATA, "%s: %s: missing (expected an array)", path, key);
    else if (!cJSON_IsArray(a)) *rc = cn_fail(CN_E_DATA, "%s: %s: expected an array", path, key);
    return a;
}

static int load_json_file(const char *path, int blank_segmentation, cJSON **root) {
    char *text = NULL;
    size_t len = 0;
    *root = NULL;
    if (cn_read_file(path, &text, &len) != CN_OK) return CN_E_DATA;  // its message stands, as a data error
    if (blank_segmentation) ds_blank_values(text, len, "segmentation");
    int rc = ds_parse_json(path, text, len, 0, root);
    free(text);
    if (rc == CN_OK && !cJSON_IsObject(*root)) {
        cJSON_Delete(*root);
        *root = NULL;
        rc = cn_fail(CN_E_DATA, "%s: expected a JSON object at the top", path);
    }
    return rc;
}

// ---- captions: one element of "images" / "annotations" -------------------------------------------
// Shared by the streaming index pass and the whole-tree fallback, so both give the same messages.

static int read_image(const char *path, const cJSON *item, int idx, RawImage *r) {
    JsonPlace at = {.path = path};
    snprintf(at.where, sizeof at.where, "images[%d]", idx);
    r->where = idx;
    if (!cJSON_IsObject(item)) return cn_fail(CN_E_DATA, "%s: %s: expected an object", path, at.where);
    int rc = ds_get_int(&at, item, "id", 1, &r->id, NULL);
    if (rc == CN_OK) rc = ds_get_string(&at, item, "file_name", 1, 1, 1, &r->file_name, NULL);
    return rc;
}

typedef struct {
    Dataset *ds;
    DsBuild b;
    int first_bad_utf8;
} CocoRead;

static int read_annotation(CocoRead *cr, const cJSON *item, int idx) {
    const char *path = cr->b.path;
    JsonPlace at = {.path = path};
    snprintf(at.where, sizeof at.where, "annotations[%d]", idx);
    if (!cJSON_IsObject(item)) return cn_fail(CN_E_DATA, "%s: %s: expected an object", path, at.where);
    int64_t id, image_id;
    int rc, bad = 0;
    DsText t = {0};
    if ((rc = ds_get_int(&at, item, "id", 1, &id, NULL)) != CN_OK) return rc;
    if ((rc = ds_get_int(&at, item, "image_id", 1, &image_id, NULL)) != CN_OK) return rc;
    if ((rc = ds_get_string(&at, item, "caption", 1, 0, 0, &t.text, &bad)) != CN_OK) return rc;
    if (bad && cr->ds->n_invalid_utf8++ == 0) cr->first_bad_utf8 = idx;
    int blank = ds_is_blank(t.text);
    if (!cr->b.resident) free(t.text), t.text = NULL;  // streamed: read again when a rank needs it
    ds_build_caption(&cr->b, id, ds_image_find(cr->ds, image_id), image_id, idx, &t, blank);
    return CN_OK;
}

static int finish_captions(CocoRead *cr, int max_images) {
    if (cr->ds->n_invalid_utf8 && cn_rank() == 0)
        cn_warn("%s: %d caption(s) with invalid UTF-8, kept with U+FFFD replacements (first: annotations[%d])",
                cr->b.path, cr->ds->n_invalid_utf8, cr->first_bad_utf8);
    return ds_build_finish(cr->ds, &cr->b, max_images);
}

// The whole document as one cJSON tree: the fallback for what the streaming pass does not take
// (invalid JSON, whose message needs the line and column, or an unusual but valid layout).
static int read_captions_tree(CocoRead *cr, int max_images) {
    const char *path = cr->b.path;
    cJSON *root = NULL;
    int rc = load_json_file(path, 0, &root);
    const cJSON *images = rc == CN_OK ? get_array(path, root, "images", &rc) : NULL;
    const cJSON *anns = rc == CN_OK ? get_array(path, root, "annotations", &rc) : NULL;
    if (rc != CN_OK) {
        cJSON_Delete(root);
        return rc;
    }
    int n_images = cJSON_GetArraySize(images), ni = 0, idx = 0;
    RawImage *ri = callocCheck((size_t)n_images + 1, sizeof *ri);
    const cJSON *item;
    cJSON_ArrayForEach(item, images) {
        if ((rc = read_image(path, item, idx++, &ri[ni])) != CN_OK) break;
        ni++;
    }
    if (rc != CN_OK) {
        free(ri[ni].file_name);
        for (int i = 0; i < ni; i++) free(ri[i].file_name);
        free(ri);
        cJSON_Delete(root);
        return rc;
    }
    ds_build_images(cr->ds, &cr->b, ri, ni);
    idx = 0;
    cJSON_ArrayForEach(item, anns) {
        if ((rc = read_annotation(cr, item, idx++)) != CN_OK) break;
    }
    cJSON_Delete(root);
    if (rc != CN_OK) return rc;
    return finish_captions(cr, max_images);
}

// ---- captions: the streaming index pass -----------------------------------------------------------
typedef enum { SCAN_OK = 0, SCAN_FALLBACK = 1, SCAN_ERROR = 2 } ScanStatus;

// The captured js->val as cJSON, or NULL when it does not parse (or holds \u0000).
// (ds_parse_json also refuses \u0000 and trailing bytes; its message is dropped: the tree path
// then reports the problem with its line and column in the whole file)
static cJSON *parse_value(JsonStream *js, const char *path) {
    cJSON *v = NULL;
    return ds_parse_json(path, js->val, js->val_len, 0, &v) == CN_OK ? v : NULL;
}

typedef struct {
    CocoRead *cr;
    RawImage *images;
    int n_images, cap_images;
    int64_t anns_at;   // offset of the "annotations" '[' (-1: not seen)
    int n_anns;
    DsStream *st;      // pass 2: where the element marks go
} Scan;

// Walk one array's elements: parse each alone; kind 0 = images (read), 1 = annotations pass 1 (count,
// check the JSON), 2 = annotations pass 2 (read, mark offsets).
static ScanStatus scan_array(JsonStream *js, Scan *sc, int kind) {
    if (!js_expect(js, '[')) return SCAN_FALLBACK;
    js_skip_ws(js);
    if (js_peek(js) == ']') {
        js->pos++;
        return SCAN_OK;
    }
    for (int idx = 0;; idx++) {
        js_skip_ws(js);
        if (kind == 2 && idx >= sc->st->n_where) return SCAN_FALLBACK;  // more than pass 1 counted
        if (kind == 2 && idx % DS_MARK_EVERY == 0) sc->st->mark[idx / DS_MARK_EVERY] = js_offset(js);
        if (js_value(js, 1) != 0) return SCAN_FALLBACK;
        cJSON *item = parse_value(js, sc->cr->b.path);
        if (!item) return SCAN_FALLBACK;
        int rc = CN_OK;
        if (kind == 0) {
            if (sc->n_images == sc->cap_images)
                sc->images = reallocCheck(sc->images, sizeof *sc->images * (size_t)(sc->cap_images = 2 * sc->cap_images + 64));
            memset(&sc->images[sc->n_images], 0, sizeof *sc->images);
            rc = read_image(sc->cr->b.path, item, idx, &sc->images[sc->n_images]);
            if (rc == CN_OK) sc->n_images++;
            else free(sc->images[sc->n_images].file_name);
        } else if (kind == 1) {
            sc->n_anns++;
        } else {
            rc = read_annotation(sc->cr, item, idx);
        }
        cJSON_Delete(item);
        if (rc != CN_OK) return SCAN_ERROR;
        int next = js_array_next(js);
        if (next < 0) return SCAN_FALLBACK;
        if (next == 0) return SCAN_OK;
    }
}

// Pass 1 over the top-level object: read "images", check and count "annotations" (its elements are
// read in pass 2, once the images are known), check every other value. Syntax problems anywhere go
// to the fallback before any field is judged, as a whole-document parse would.
static ScanStatus scan_top(JsonStream *js, Scan *sc) {
    int seen_images = 0;
    if (!js_expect(js, '{')) return SCAN_FALLBACK;
    if (js_expect(js, '}')) return SCAN_FALLBACK;  // no "images": the tree path says so
    ScanStatus field_error = SCAN_OK;
    char saved[1024] = "";
    for (;;) {
        js_skip_ws(js);
        if (js_value(js, 1) != 0 || js->val_len < 2 || js->val[0] != '"' || strchr(js->val, '\\'))
            return SCAN_FALLBACK;  // keys with escapes: leave them to cJSON
        char key[32];
        snprintf(key, sizeof key, "%.*s", (int)CN_MIN(js->val_len - 2, sizeof key - 1), js->val + 1);
        if (js->val_len - 2 >= sizeof key) key[0] = '\0';
        if (!js_expect(js, ':')) return SCAN_FALLBACK;
        js_skip_ws(js);
        ScanStatus s;
        if (!strcmp(key, "images") && !seen_images) {
            seen_images = 1;
            s = js_peek(js) == '[' ? scan_array(js, sc, 0) : SCAN_FALLBACK;
        } else if (!strcmp(key, "annotations") && sc->anns_at < 0) {
            sc->anns_at = js_offset(js);
            s = js_peek(js) == '[' ? scan_array(js, sc, 1) : SCAN_FALLBACK;
        } else {
            cJSON *v = js_value(js, 1) == 0 ? parse_value(js, sc->cr->b.path) : NULL;
            s = v ? SCAN_OK : SCAN_FALLBACK;
            cJSON_Delete(v);
        }
        if (s == SCAN_FALLBACK) return s;
        if (s == SCAN_ERROR && field_error == SCAN_OK) {  // judged after the whole syntax is known good
            field_error = s;
            snprintf(saved, sizeof saved, "%s", cn_last_error());
        }
        int next = js_expect(js, ',') ? 1 : js_expect(js, '}') ? 0 : -1;
        if (next < 0) return SCAN_FALLBACK;
        if (next == 0) break;
    }
    js_skip_ws(js);
    if (js_peek(js) >= 0 || !seen_images || sc->anns_at < 0) return SCAN_FALLBACK;
    if (field_error != SCAN_OK) cn_fail(CN_E_DATA, "%s", saved);
    return field_error;
}

static int read_captions_stream(CocoRead *cr, int max_images) {
    const char *path = cr->b.path;
    Scan sc = {.cr = cr, .anns_at = -1};
    DsStream *st = callocCheck(1, sizeof *st);
    int rc = js_open(&st->js, path);
    if (rc != CN_OK) {
        free(st);
        return CN_E_DATA;  // js_open's message stands
    }
    ScanStatus s = scan_top(&st->js, &sc);
    if (s == SCAN_OK) {
        ds_build_images(cr->ds, &cr->b, sc.images, sc.n_images);
        sc.images = NULL;
        st->n_where = sc.n_anns;
        st->n_mark = sc.n_anns / DS_MARK_EVERY + 1;
        st->mark = callocCheck((size_t)st->n_mark, sizeof *st->mark);
        sc.st = st;
        js_seek(&st->js, sc.anns_at);
        s = scan_array(&st->js, &sc, 2);
        if (s == SCAN_FALLBACK)  // the file changed between the passes: say so rather than guess
            s = SCAN_ERROR, cn_fail(CN_E_DATA, "%s: changed while it was being read", path);
    }
    for (int i = 0; i < sc.n_images; i++) free(sc.images ? sc.images[i].file_name : NULL);
    free(sc.images);
    if (s != SCAN_OK) {
        ds_stream_free(st);
        ds_build_free(&cr->b);
        if (s == SCAN_ERROR) return CN_E_DATA;
        cr->b = (DsBuild){.path = path, .resident = 1};  // (no images were taken: pass 1 did not finish)
        return read_captions_tree(cr, max_images);
    }
    st->path = strdupCheck(path);
    st->win = callocCheck(DS_WINDOW, sizeof *st->win);
    if ((rc = finish_captions(cr, max_images)) != CN_OK) {
        ds_stream_free(st);
        return rc;
    }
    cr->ds->stream = st;
    return CN_OK;
}

static int cmp_category(const void *a, const void *b) {
    const DsCategory *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

static int cmp_pair(const void *a, const void *b) {
    const int *x = a, *y = b;
    if (x[0] != y[0]) return x[0] < y[0] ? -1 : 1;
    return (x[1] > y[1]) - (x[1] < y[1]);
}

static int find_category(const Dataset *ds, int64_t id) {
    int lo = 0, hi = ds->n_categories;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (ds->categories[mid].id < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < ds->n_categories && ds->categories[lo].id == id ? lo : -1;
}

static int read_categories(Dataset *ds, const char *path, const cJSON *cats) {
    int n = cJSON_GetArraySize(cats), idx = 0, rc = CN_OK;
    ds->categories = callocCheck((size_t)n, sizeof *ds->categories);
    JsonPlace at = {.path = path};
    const cJSON *item;
    cJSON_ArrayForEach(item, cats) {
        snprintf(at.where, sizeof at.where, "categories[%d]", idx);
        if (!cJSON_IsObject(item)) return cn_fail(CN_E_DATA, "%s: %s: expected an object", path, at.where);
        int64_t id;
        char *name = NULL, *super = NULL;
        if ((rc = ds_get_int(&at, item, "id", 1, &id, NULL)) != CN_OK) return rc;
        if (id < 0 || id > 1000000) return cn_fail(CN_E_DATA, "%s: %s.id: out of range (%lld)", path, at.where, (long long)id);
        if ((rc = ds_get_string(&at, item, "name", 1, 1, 1, &name, NULL)) != CN_OK) return rc;
        if ((rc = ds_get_string(&at, item, "supercategory", 1, 1, 0, &super, NULL)) != CN_OK) {
            free(name);
            return rc;
        }
        DsCategory *c = &ds->categories[ds->n_categories++];
        c->id = (int)id, c->name = name, c->supercategory = super;
        idx++;
    }
    qsort(ds->categories, (size_t)ds->n_categories, sizeof *ds->categories, cmp_category);
    for (int i = 1; i < ds->n_categories; i++)
        if (ds->categories[i].id == ds->categories[i - 1].id)
            return cn_fail(CN_E_DATA, "%s: categories: duplicate id %d", path, ds->categories[i].id);
    return CN_OK;
}

// Which categories each image shows; every image gets an array (maybe empty) once this succeeds.
static int read_instances(Dataset *ds, const char *path) {
    cJSON *root = NULL;
    int rc = load_json_file(path, 1, &root);
    if (rc != CN_OK) return rc;
    const cJSON *cats = get_array(path, root, "categories", &rc);
    const cJSON *anns = rc == CN_OK ? get_array(path, root, "annotations", &rc) : NULL;
    if (rc == CN_OK) rc = read_categories(ds, path, cats);
    int n_anns = anns ? cJSON_GetArraySize(anns) : 0, n_pairs = 0, idx = 0;
    int *pairs = mallocCheck(2 * sizeof(int) * (size_t)(n_anns + 1));  // (image index, category id)
    JsonPlace at = {.path = path};
    const cJSON *item;
    if (rc == CN_OK) {
        cJSON_ArrayForEach(item, anns) {
            snprintf(at.where, sizeof at.where, "annotations[%d]", idx++);
            if (!cJSON_IsObject(item)) { rc = cn_fail(CN_E_DATA, "%s: %s: expected an object", path, at.where); break; }
            int64_t image_id, category_id;
            if ((rc = ds_get_int(&at, item, "image_id", 1, &image_id, NULL)) != CN_OK) break;
            if ((rc = ds_get_int(&at, item, "category_id", 1, &category_id, NULL)) != CN_OK) break;
            if (find_category(ds, category_id) < 0) {
                rc = cn_fail(CN_E_DATA, "%s: %s.category_id: %lld is not in \"categories\"", path, at.where,
                             (long long)category_id);
                break;
            }
            int im = ds_image_find(ds, image_id);
            if (im < 0) continue;  // an image we do not evaluate
            pairs[2 * n_pairs] = im, pairs[2 * n_pairs + 1] = (int)category_id;
            n_pairs++;
        }
    }
    cJSON_Delete(root);
    if (rc == CN_OK) {
        qsort(pairs, (size_t)n_pairs, 2 * sizeof(int), cmp_pair);
        for (int i = 0; i < ds->n_images; i++) ds->images[i].categories = mallocCheck(sizeof(int));
        for (int i = 0; i < n_pairs; i++) {
            DsImage *img = &ds->images[pairs[2 * i]];
            int cat = pairs[2 * i + 1];
            if (img->n_categories > 0 && img->categories[img->n_categories - 1] == cat) continue;
            img->categories = reallocCheck(img->categories, sizeof(int) * (size_t)(img->n_categories + 1));
            img->categories[img->n_categories++] = cat;
        }
        ds->has_instances = 1;
    }
    free(pairs);
    return rc;
}

static int load_coco(Dataset *ds, const char *captions_json, const char *images_dir, const char *instances_json,
                     int max_images, int resident) {
    memset(ds, 0, sizeof *ds);
    ds->image_root = strdupCheck(images_dir ? images_dir : "");
    CocoRead cr = {.ds = ds, .b = {.path = captions_json}};
    int rc = read_captions_stream(&cr, max_images);
    ds_build_free(&cr.b);  // (already freed unless a reader stopped on an error)
    if (rc == CN_OK && resident && ds->stream) {  // every caption read once, then the file closed
        ds->captions = callocCheck((size_t)ds->n_captions + 1, sizeof *ds->captions);
        rc = ds_stream_read(ds->stream, ds->keys, ds->n_captions, ds->captions);
        ds_stream_free(ds->stream);
        ds->stream = NULL;
    }
    if (rc == CN_OK && instances_json && instances_json[0]) rc = read_instances(ds, instances_json);
    if (rc != CN_OK) dataset_free(ds);
    return rc;
}

int dataset_load_coco(Dataset *ds, const char *captions_json, const char *images_dir, const char *instances_json,
                      int max_images) {
    return load_coco(ds, captions_json, images_dir, instances_json, max_images, 1);
}

int dataset_open_coco(Dataset *ds, const char *captions_json, const char *images_dir, const char *instances_json,
                      int max_images) {
    return load_coco(ds, captions_json, images_dir, instances_json, max_images, 0);
}
