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

static int read_captions(Dataset *ds, const char *path, const cJSON *root, int max_images) {
    int rc = CN_OK;
    const cJSON *images = get_array(path, root, "images", &rc);
    if (rc != CN_OK) return rc;
    const cJSON *anns = get_array(path, root, "annotations", &rc);
    if (rc != CN_OK) return rc;
    int n_images = cJSON_GetArraySize(images), n_anns = cJSON_GetArraySize(anns);
    RawImage *ri = callocCheck((size_t)n_images, sizeof *ri);
    RawCaption *rcap = callocCheck((size_t)n_anns, sizeof *rcap);
    int ni = 0, nc = 0, first_bad_utf8 = -1;
    JsonPlace at = {.path = path};
    const cJSON *item;
    int idx = 0;
    cJSON_ArrayForEach(item, images) {
        snprintf(at.where, sizeof at.where, "images[%d]", idx);
        RawImage *r = &ri[ni];
        r->where = idx++;
        if (!cJSON_IsObject(item)) { rc = cn_fail(CN_E_DATA, "%s: %s: expected an object", path, at.where); break; }
        if ((rc = ds_get_int(&at, item, "id", 1, &r->id, NULL)) != CN_OK) break;
        if ((rc = ds_get_string(&at, item, "file_name", 1, 1, 1, &r->file_name, NULL)) != CN_OK) break;
        ni++;
    }
    idx = 0;
    cJSON_ArrayForEach(item, anns) {
        if (rc != CN_OK) break;
        snprintf(at.where, sizeof at.where, "annotations[%d]", idx);
        RawCaption *r = &rcap[nc];
        r->where = idx++;
        if (!cJSON_IsObject(item)) { rc = cn_fail(CN_E_DATA, "%s: %s: expected an object", path, at.where); break; }
        if ((rc = ds_get_int(&at, item, "id", 1, &r->id, NULL)) != CN_OK) break;
        if ((rc = ds_get_int(&at, item, "image_id", 1, &r->image_id, NULL)) != CN_OK) break;
        int bad = 0;
        if ((rc = ds_get_string(&at, item, "caption", 1, 0, 0, &r->text, &bad)) != CN_OK) break;
        if (bad && ds->n_invalid_utf8++ == 0) first_bad_utf8 = r->where;
        nc++;
    }
    if (rc != CN_OK) {
        for (int i = 0; i < ni; i++) free(ri[i].file_name);
        for (int i = 0; i < nc; i++) free(rcap[i].text);
        free(ri);
        free(rcap);
        return rc;
    }
    if (ds->n_invalid_utf8 && cn_rank() == 0)
        cn_warn("%s: %d caption(s) with invalid UTF-8, kept with U+FFFD replacements (first: annotations[%d])", path,
                ds->n_invalid_utf8, first_bad_utf8);
    return ds_assemble(ds, path, 0, ri, ni, rcap, nc, max_images);
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

static int find_image(const Dataset *ds, int64_t id) {
    int lo = 0, hi = ds->n_images;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (ds->images[mid].id < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < ds->n_images && ds->images[lo].id == id ? lo : -1;
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
            int im = find_image(ds, image_id);
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

int dataset_load_coco(Dataset *ds, const char *captions_json, const char *images_dir, const char *instances_json,
                      int max_images) {
    memset(ds, 0, sizeof *ds);
    ds->image_root = strdupCheck(images_dir ? images_dir : "");
    cJSON *root = NULL;
    int rc = load_json_file(captions_json, 0, &root);
    if (rc == CN_OK) rc = read_captions(ds, captions_json, root, max_images);
    cJSON_Delete(root);
    if (rc == CN_OK && instances_json && instances_json[0]) rc = read_instances(ds, instances_json);
    if (rc != CN_OK) dataset_free(ds);
    return rc;
}
