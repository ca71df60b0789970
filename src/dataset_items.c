// dataset_items.c — the item manifest (`[dataset] format = items`, docs/items.md): choice items
// (multiple choice, CC-Neg pairs) and region items (boxes from a COCO instances file or the
// manifest), the dataset the main phases evaluate, and the crop geometry shared with the item phase.
// Every refusal names FILE:LINE and the field, like the JSONL dataset reader whose helpers
// (dataset_internal.h) this file reuses. The manifest is indexed and read back per window by
// dataset_items_stream.c, which parses each line with items_parse_line.
#include "clipneg/items.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "items_internal.h"

// ---- COCO instances: the boxes "ann_id" refers to ---------------------------------------------
static int cmp_ann(const void *a, const void *b) {
    const InstAnn *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

void items_instances_free(Instances *in) {
    for (int i = 0; i < in->n_imgs; i++) free(in->img_files[i]);
    free(in->img_files);
    free(in->img_ids);
    free(in->anns);
    memset(in, 0, sizeof *in);
}

int items_instances_load(Instances *in, const char *path) {
    memset(in, 0, sizeof *in);
    char *text = NULL;
    size_t len = 0;
    if (cn_read_file(path, &text, &len) != CN_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", cn_last_error());
        return cn_fail(CN_E_DATA, "%s", msg);
    }
    ds_blank_values(text, len, "segmentation"); // never read: keeps a 42 MB file cheap to parse
    cJSON *root = NULL;
    int rc = ds_parse_json(path, text, len, 0, &root);
    free(text);
    if (rc) return rc;
    const cJSON *images = cJSON_GetObjectItemCaseSensitive(root, "images");
    const cJSON *anns = cJSON_GetObjectItemCaseSensitive(root, "annotations");
    if (!cJSON_IsArray(images) || !cJSON_IsArray(anns)) {
        cJSON_Delete(root);
        return cn_fail(CN_E_DATA, "%s: expected arrays \"images\" and \"annotations\" (a COCO instances file)", path);
    }
    JsonPlace at = {.path = path, .jsonl = 0};
    in->img_ids = mallocCheck(sizeof(int64_t) * (size_t)(cJSON_GetArraySize(images) + 1));
    in->img_files = callocCheck((size_t)cJSON_GetArraySize(images) + 1, sizeof(char *));
    const cJSON *it;
    cJSON_ArrayForEach(it, images) {
        snprintf(at.where, sizeof at.where, "images[%d]", in->n_imgs);
        if ((rc = ds_get_int(&at, it, "id", 1, &in->img_ids[in->n_imgs], NULL)) ||
            (rc = ds_get_string(&at, it, "file_name", 1, 1, 1, &in->img_files[in->n_imgs], NULL)))
            break;
        in->n_imgs++;
    }
    in->anns = callocCheck((size_t)cJSON_GetArraySize(anns) + 1, sizeof(InstAnn));
    int k = 0;
    cJSON_ArrayForEach(it, anns) {
        if (rc) break;
        InstAnn *a = &in->anns[in->n_anns];
        snprintf(at.where, sizeof at.where, "annotations[%d]", k++);
        int64_t cat = 0, crowd = 0;
        if ((rc = ds_get_int(&at, it, "id", 1, &a->id, NULL)) || (rc = ds_get_int(&at, it, "image_id", 1, &a->image_id, NULL)) ||
            (rc = ds_get_int(&at, it, "category_id", 1, &cat, NULL)) || (rc = ds_get_int(&at, it, "iscrowd", 0, &crowd, NULL)))
            break;
        const cJSON *bb = cJSON_GetObjectItemCaseSensitive(it, "bbox");
        int nb = cJSON_IsArray(bb) ? cJSON_GetArraySize(bb) : -1;
        for (int j = 0; j < 4 && nb == 4; j++) {
            const cJSON *v = cJSON_GetArrayItem(bb, j);
            if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) nb = -1;
            else a->bbox[j] = v->valuedouble;
        }
        if (nb != 4) {
            rc = cn_fail(CN_E_DATA, "%s: %s.bbox: expected [x, y, w, h] (4 numbers)", path, at.where);
            break;
        }
        a->category = (int)cat;
        a->iscrowd = crowd != 0;
        in->n_anns++;
    }
    cJSON_Delete(root);
    if (rc) {
        items_instances_free(in);
        return rc;
    }
    qsort(in->anns, (size_t)in->n_anns, sizeof(InstAnn), cmp_ann);
    return CN_OK;
}

static const InstAnn *instances_find(const Instances *in, int64_t id) {
    InstAnn key = {.id = id};
    return bsearch(&key, in->anns, (size_t)in->n_anns, sizeof(InstAnn), cmp_ann);
}

static const char *instances_file(const Instances *in, int64_t image_id) {
    for (int i = 0; i < in->n_imgs; i++)
        if (in->img_ids[i] == image_id) return in->img_files[i];
    return NULL;
}

// ---- one manifest line ---------------------------------------------------------------------------
void items_item_free(Item *it) {
    int nt = it->kind == ITEM_CHOICE ? it->n : 1;
    for (int k = 0; it->texts && k < nt; k++) free(it->texts[k]);
    free(it->texts);
    free(it->boxes);
    free(it->ann_ids);
    memset(it, 0, sizeof *it);
}

static int get_text(ItemParser *L, const JsonPlace *at, const cJSON *obj, const char *key, char **out) {
    int bad = 0, rc = ds_get_string(at, obj, key, 1, 0, 1, out, &bad);
    if (rc == CN_OK && bad) L->n_invalid_utf8++;
    return rc;
}

// "answer": required integer in [0, n).
static int get_answer(const JsonPlace *at, const cJSON *obj, int n, int *answer) {
    int64_t a = 0;
    int rc = ds_get_int(at, obj, "answer", 1, &a, NULL);
    if (rc) return rc;
    if (a < 0 || a >= n)
        return cn_fail(CN_E_DATA, "%s:%s: answer: %lld is out of range (the item has %d candidates, 0..%d)", at->path,
                       at->where, (long long)a, n, n - 1);
    *answer = (int)a;
    return CN_OK;
}

static int read_candidates(ItemParser *L, const JsonPlace *at, const cJSON *obj, Item *it) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(obj, "candidates");
    if (!cJSON_IsArray(c)) return cn_fail(CN_E_DATA, "%s:%s: candidates: expected an array of strings", at->path, at->where);
    int n = cJSON_GetArraySize(c);
    if (n < 2 || n > ITEMS_MAX_CANDIDATES)
        return cn_fail(CN_E_DATA, "%s:%s: candidates: %d given (need 2..%d: one correct caption and its foils)", at->path,
                       at->where, n, ITEMS_MAX_CANDIDATES);
    it->texts = callocCheck((size_t)n, sizeof(char *));
    it->n = n;
    const cJSON *v;
    int k = 0;
    cJSON_ArrayForEach(v, c) {
        if (!cJSON_IsString(v) || !v->valuestring[0])
            return cn_fail(CN_E_DATA, "%s:%s: candidates[%d]: expected a non-empty string", at->path, at->where, k);
        int bad = 0;
        it->texts[k++] = utf8_sanitize(v->valuestring, strlen(v->valuestring), &bad);
        if (bad) L->n_invalid_utf8++;
    }
    return get_answer(at, obj, n, &it->answer);
}

static int read_boxes(const JsonPlace *at, const cJSON *obj, Item *it) {
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(obj, "boxes");
    int n = cJSON_IsArray(b) ? cJSON_GetArraySize(b) : -1;
    if (n < 0) return cn_fail(CN_E_DATA, "%s:%s: boxes: expected an array of [x, y, w, h]", at->path, at->where);
    if (n < 2 || n > ITEMS_MAX_CANDIDATES)
        return cn_fail(CN_E_DATA, "%s:%s: boxes: %d given (need 2..%d: the referent and other regions)", at->path,
                       at->where, n, ITEMS_MAX_CANDIDATES);
    it->n = n;
    it->boxes = callocCheck((size_t)n, sizeof *it->boxes);
    it->ann_ids = mallocCheck(sizeof(int64_t) * (size_t)n);
    for (int k = 0; k < n; k++) {
        const cJSON *bx = cJSON_GetArrayItem(b, k);
        int ok = cJSON_IsArray(bx) && cJSON_GetArraySize(bx) == 4;
        for (int j = 0; ok && j < 4; j++) {
            const cJSON *v = cJSON_GetArrayItem(bx, j);
            ok = cJSON_IsNumber(v) && isfinite(v->valuedouble);
            if (ok) it->boxes[k][j] = v->valuedouble;
        }
        if (!ok) return cn_fail(CN_E_DATA, "%s:%s: boxes[%d]: expected [x, y, w, h] (4 numbers)", at->path, at->where, k);
        if (!(it->boxes[k][2] > 0 && it->boxes[k][3] > 0))
            return cn_fail(CN_E_DATA, "%s:%s: boxes[%d]: width and height must be > 0", at->path, at->where, k);
        it->ann_ids[k] = -1;
    }
    return get_answer(at, obj, n, &it->answer);
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

// The referent A and every other non-crowd instance of A's category in A's image, by id.
static int read_ann(ItemParser *L, const JsonPlace *at, const cJSON *obj, const char *image, Item *it) {
    int64_t id = 0;
    int rc = ds_get_int(at, obj, "ann_id", 1, &id, NULL);
    if (rc) return rc;
    if (cJSON_GetObjectItemCaseSensitive(obj, "answer") || cJSON_GetObjectItemCaseSensitive(obj, "boxes"))
        return cn_fail(CN_E_DATA, "%s:%s: ann_id: give either \"ann_id\" or \"boxes\" + \"answer\", not both", at->path,
                       at->where);
    if (!L->inst)
        return cn_fail(CN_E_DATA, "%s:%s: ann_id: needs a COCO instances file ([dataset] instances)", at->path, at->where);
    const InstAnn *a = instances_find(L->inst, id);
    if (!a)
        return cn_fail(CN_E_DATA, "%s:%s: ann_id: unknown annotation id %lld (not in %s)", at->path, at->where,
                       (long long)id, L->inst_path);
    if (a->iscrowd)
        return cn_fail(CN_E_DATA, "%s:%s: ann_id: annotation %lld is a crowd region (iscrowd = 1), not one instance",
                       at->path, at->where, (long long)id);
    const char *file = instances_file(L->inst, a->image_id);
    if (!file || strcmp(base_name(file), base_name(image)) != 0)
        return cn_fail(CN_E_DATA, "%s:%s: ann_id: annotation %lld belongs to image %lld ('%s'), not to '%s'", at->path,
                       at->where, (long long)id, (long long)a->image_id, file ? file : "?", image);
    int n = 0;
    for (int i = 0; i < L->inst->n_anns; i++) {
        const InstAnn *b = &L->inst->anns[i];
        n += b->image_id == a->image_id && b->category == a->category && !b->iscrowd;
    }
    if (n < 2)
        return cn_fail(CN_E_DATA,
                       "%s:%s: ann_id: annotation %lld is the only instance of category %d in image %lld: no other "
                       "region to compare against",
                       at->path, at->where, (long long)id, a->category, (long long)a->image_id);
    if (n > ITEMS_MAX_CANDIDATES)
        return cn_fail(CN_E_DATA, "%s:%s: ann_id: %d instances of category %d in image %lld (at most %d)", at->path,
                       at->where, n, a->category, (long long)a->image_id, ITEMS_MAX_CANDIDATES);
    it->n = n;
    it->boxes = callocCheck((size_t)n, sizeof *it->boxes);
    it->ann_ids = mallocCheck(sizeof(int64_t) * (size_t)n);
    int k = 0;
    for (int i = 0; i < L->inst->n_anns; i++) { // sorted by id: the candidates' order is fixed
        const InstAnn *b = &L->inst->anns[i];
        if (b->image_id != a->image_id || b->category != a->category || b->iscrowd) continue;
        if (b->id == a->id) it->answer = k;
        memcpy(it->boxes[k], b->bbox, sizeof b->bbox);
        it->ann_ids[k++] = b->id;
    }
    for (k = 0; k < n; k++)
        if (!(it->boxes[k][2] > 0 && it->boxes[k][3] > 0))
            return cn_fail(CN_E_DATA, "%s:%s: ann_id: annotation %lld has an empty bbox in %s", at->path, at->where,
                           (long long)it->ann_ids[k], L->inst_path);
    return CN_OK;
}

// Which of the four shapes a line has; refuses mixtures.
static int read_item(ItemParser *L, const JsonPlace *at, const cJSON *obj, const char *image, Item *it,
                     const char **deftype) {
    int has_cands = cJSON_GetObjectItemCaseSensitive(obj, "candidates") != NULL;
    int has_pair = cJSON_GetObjectItemCaseSensitive(obj, "caption") || cJSON_GetObjectItemCaseSensitive(obj, "negated");
    int has_text = cJSON_GetObjectItemCaseSensitive(obj, "text") != NULL;
    if (has_cands + has_pair + has_text != 1)
        return cn_fail(CN_E_DATA,
                       "%s:%s: expected exactly one of \"candidates\" (multiple choice), \"caption\" + \"negated\" "
                       "(pair) or \"text\" (region item)",
                       at->path, at->where);
    int rc;
    if (has_cands) {
        it->kind = ITEM_CHOICE;
        *deftype = "mcq";
        return read_candidates(L, at, obj, it);
    }
    if (has_pair) {
        it->kind = ITEM_CHOICE;
        *deftype = "ccneg";
        if (cJSON_GetObjectItemCaseSensitive(obj, "answer"))
            return cn_fail(CN_E_DATA, "%s:%s: answer: not used with \"caption\" + \"negated\" (the caption is the answer)",
                           at->path, at->where);
        it->n = 2;
        it->answer = 0;
        it->texts = callocCheck(2, sizeof(char *));
        if ((rc = get_text(L, at, obj, "caption", &it->texts[0]))) return rc;
        return get_text(L, at, obj, "negated", &it->texts[1]);
    }
    it->kind = ITEM_REGION;
    *deftype = "region";
    it->texts = callocCheck(1, sizeof(char *));
    if ((rc = get_text(L, at, obj, "text", &it->texts[0]))) return rc;
    if (cJSON_GetObjectItemCaseSensitive(obj, "ann_id")) return read_ann(L, at, obj, image, it);
    if (!cJSON_GetObjectItemCaseSensitive(obj, "boxes"))
        return cn_fail(CN_E_DATA, "%s:%s: a region item needs \"ann_id\" or \"boxes\" + \"answer\"", at->path, at->where);
    return read_boxes(at, obj, it);
}

int items_parse_line(ItemParser *p, const char *line, size_t len, int lineno, Item *it, char **image, char **type,
                     const char **deftype) {
    const char *path = p->path;
    JsonPlace at = {.path = path, .jsonl = 1};
    snprintf(at.where, sizeof at.where, "%d", lineno);
    memset(it, 0, sizeof *it);
    it->line = lineno;
    *image = *type = NULL;
    *deftype = "mcq";
    cJSON *obj = NULL;
    int rc = ds_parse_json(path, line, len, lineno, &obj);
    if (rc) return rc;
    if (!cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        return cn_fail(CN_E_DATA, "%s:%d: expected a JSON object", path, lineno);
    }
    if ((rc = ds_get_string(&at, obj, "image", 1, 1, 1, image, NULL)) == CN_OK &&
        (rc = read_item(p, &at, obj, *image, it, deftype)) == CN_OK)
        rc = ds_get_string(&at, obj, "type", 0, 1, 1, type, NULL);
    cJSON_Delete(obj);
    if (rc == CN_OK && *type && strlen(*type) > ITEMS_MAX_TYPE_LEN)
        rc = cn_fail(CN_E_DATA, "%s:%d: type: longer than %d bytes", path, lineno, ITEMS_MAX_TYPE_LEN);
    if (rc == CN_OK && *type && (strpbrk(*type, ",\n\r") || !strcmp(*type, "all")))
        rc = cn_fail(CN_E_DATA, "%s:%d: type: '%s' is reserved or has a comma/line break (names are listed comma-separated)",
                     path, lineno, *type);
    if (rc != CN_OK) {
        items_item_free(it);
        free(*image), free(*type);
        *image = *type = NULL;
    }
    return rc;
}

// Keep the items of the first `max_images` images (images are numbered by first appearance).
static void keep_first_images(ItemSet *s, int max_images) {
    if (max_images <= 0 || max_images >= s->n_images) return;
    int m = 0;
    for (int i = 0; i < s->n_items; i++) {
        if (s->keys[i].image < max_images) {
            if (s->items) s->items[m] = s->items[i];
            s->keys[m++] = s->keys[i];
        } else if (s->items) {
            items_item_free(&s->items[i]);
        }
    }
    s->n_items = m;
    for (int i = max_images; i < s->n_images; i++) free(s->images[i]);
    s->n_images = max_images;
}

void items_set_shape(ItemSet *s, int max_images) {
    if (s->items && !s->keys) { // a resident reader: the keys of its items
        s->keys = mallocCheck(sizeof *s->keys * (size_t)(s->n_items + 1));
        for (int i = 0; i < s->n_items; i++) {
            const Item *it = &s->items[i];
            s->keys[i] = (ItemKey){.line = it->line, .image = it->image, .type = it->type, .n = (uint16_t)it->n,
                                   .answer = (uint8_t)it->answer, .kind = (uint8_t)it->kind};
        }
    }
    keep_first_images(s, max_images);
    s->k_max = s->k_text = s->k_image = 1;
    for (int i = 0; i < s->n_items; i++) {
        const ItemKey *k = &s->keys[i];
        s->k_max = CN_MAX(s->k_max, k->n);
        if (k->kind == ITEM_CHOICE) s->k_text = CN_MAX(s->k_text, k->n);
        else s->k_image = CN_MAX(s->k_image, k->n);
    }
    if (s->n_invalid_utf8 && cn_rank() == 0)
        cn_warn("%s: %d text(s) with invalid UTF-8, kept with U+FFFD replacements", s->manifest, s->n_invalid_utf8);
}

// ---- crops -------------------------------------------------------------------------------------
int items_crop_window(const double box[4], double expand, int W, int H, int32_t win[4]) {
    double cx = box[0] + box[2] / 2, cy = box[1] + box[3] / 2;
    double hw = box[2] * expand / 2, hh = box[3] * expand / 2;
    double x0 = floor(cx - hw), y0 = floor(cy - hh), x1 = ceil(cx + hw), y1 = ceil(cy + hh);
    x0 = CN_MAX(x0, 0.0), y0 = CN_MAX(y0, 0.0);
    x1 = CN_MIN(x1, (double)W), y1 = CN_MIN(y1, (double)H);
    if (!(x1 > x0 && y1 > y0)) {
        win[0] = win[1] = win[2] = win[3] = 0;
        return -1;
    }
    win[0] = (int32_t)x0, win[1] = (int32_t)y0, win[2] = (int32_t)x1, win[3] = (int32_t)y1;
    return 0;
}

uint8_t *items_crop_rgb(const uint8_t *rgb, int W, int H, const int32_t win[4]) {
    (void)H;
    int cw = win[2] - win[0], ch = win[3] - win[1];
    uint8_t *out = mallocCheck((size_t)cw * ch * 3);
    for (int y = 0; y < ch; y++)
        memcpy(out + (size_t)y * cw * 3, rgb + ((size_t)(win[1] + y) * W + win[0]) * 3, (size_t)cw * 3);
    return out;
}
