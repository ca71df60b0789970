// dataset_bench_json.c — the JSON benchmarks as published (docs/benchmarks.md):
//   negrefcocog      NegRefCOCOg.json: [{"image", "phrase", "ref_bbox", "bbox_list"}], one region item
//                    each; crops as upstream's image.crop((x, y, x + w, y + h)), first maximum wins;
//   valse-existence  existence.json: {id: {"image_file", "caption", "foil", "mturk": {"caption"}}},
//                    items with mturk.caption >= 2; caption vs foil, strict >;
//   sugarcrepe       a folder of the seven {split}.json: {"0": {"filename", "caption",
//                    "negative_caption"}}; one type per split, strict >.
// Messages name the file and the item ("NegRefCOCOg.json: item 12: ref_bbox: ...").
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stb_image.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clipneg/common.h"
#include "dataset_bench_internal.h"
#include "dataset_internal.h"

static int load_json(const char *path, cJSON **root) {
    char *text = NULL;
    size_t len = 0;
    if (cn_read_file(path, &text, &len) != CN_OK) return cn_fail(CN_E_DATA, "%s", cn_last_error());
    int rc = ds_parse_json(path, text, len, 0, root);
    free(text);
    return rc;
}

// The benchmark file parsed, and the builder begun on it.
static int open_json(BenchBuilder *b, ItemSet *s, const JobConfig *job, cJSON **root) {
    int rc = load_json(job->dataset_path, root);
    if (rc == CN_OK) bench_begin(b, s, job, job->dataset_path);
    return rc;
}

// A non-empty string field of an item; `where` names the item in messages.
static int get_str(const char *path, const char *where, const cJSON *obj, const char *key, const char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return cn_fail(CN_E_DATA, "%s: %s: %s: expected a non-empty string", path, where, key);
    *out = v->valuestring;
    return CN_OK;
}

// ---- NegRefCOCOg -----------------------------------------------------------------------------------
int bench_crop_window_round(const double box[4], int W, int H, int32_t win[4]) {
    // PIL 9.4 Image._crop: x0, y0, x1, y1 = map(int, map(round, box)); rint() is round-half-even too
    double c[4] = {rint(box[0]), rint(box[1]), rint(box[0] + box[2]), rint(box[1] + box[3])};
    if (!(c[0] >= 0 && c[1] >= 0 && c[2] <= W && c[3] <= H && c[2] > c[0] && c[3] > c[1])) {
        win[0] = win[1] = win[2] = win[3] = 0;
        return -1;
    }
    for (int j = 0; j < 4; j++) win[j] = (int32_t)c[j];
    return 0;
}

static int get_box(const char *path, const char *where, const char *name, const cJSON *v, double box[4]) {
    int ok = cJSON_IsArray(v) && cJSON_GetArraySize(v) == 4;
    for (int j = 0; ok && j < 4; j++) {
        const cJSON *x = cJSON_GetArrayItem(v, j);
        ok = cJSON_IsNumber(x) && isfinite(x->valuedouble);
        if (ok) box[j] = x->valuedouble;
    }
    if (!ok) return cn_fail(CN_E_DATA, "%s: %s: %s: expected [x, y, w, h] (4 numbers)", path, where, name);
    if (!(box[2] > 0 && box[3] > 0)) return cn_fail(CN_E_DATA, "%s: %s: %s: width and height must be > 0", path, where, name);
    return CN_OK;
}

// Upstream crops without clamping (PIL pads outside pixels with black): a box that leaves its image
// is a broken file, refused here. Images that are missing are checked by nobody: recorded later.
static int check_boxes_inside(const ItemSet *s, const JobConfig *job) {
    int *wh = mallocCheck(sizeof(int) * 2 * (size_t)(s->n_images + 1));
    for (int i = 0; i < 2 * s->n_images; i++) wh[i] = -2; // not looked at yet
    int rc = CN_OK;
    for (int i = 0; i < s->n_items && rc == CN_OK; i++) {
        const Item *it = &s->items[i];
        int *d = wh + 2 * it->image;
        if (d[0] == -2) {
            const char *f = s->images[it->image];
            size_t n = strlen(job->images_dir) + strlen(f) + 2;
            char *full = mallocCheck(n);
            snprintf(full, n, "%s/%s", f[0] == '/' ? "" : job->images_dir, f);
            int c = 0;
            if (!stbi_info(f[0] == '/' ? f : full, &d[0], &d[1], &c)) d[0] = d[1] = -1;
            free(full);
        }
        if (d[0] < 0) continue;
        for (int k = 0; k < it->n; k++) {
            int32_t win[4];
            if (bench_crop_window_round(it->boxes[k], d[0], d[1], win))
                rc = cn_fail(CN_E_DATA, "%s: item %d: bbox_list[%d]: [%g, %g, %g, %g] is not inside %s (%d x %d)",
                             s->manifest, it->line - 1, k, it->boxes[k][0], it->boxes[k][1], it->boxes[k][2],
                             it->boxes[k][3], s->images[it->image], d[0], d[1]);
        }
    }
    free(wh);
    return rc;
}

static int negref_item(BenchBuilder *b, const char *path, int idx, const cJSON *o) {
    char where[32];
    snprintf(where, sizeof where, "item %d", idx);
    if (!cJSON_IsObject(o)) return cn_fail(CN_E_DATA, "%s: %s: expected an object", path, where);
    const char *image = NULL, *phrase = NULL;
    int rc;
    if ((rc = get_str(path, where, o, "image", &image)) || (rc = get_str(path, where, o, "phrase", &phrase))) return rc;
    double ref[4];
    if ((rc = get_box(path, where, "ref_bbox", cJSON_GetObjectItemCaseSensitive(o, "ref_bbox"), ref))) return rc;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(o, "bbox_list");
    int n = cJSON_IsArray(list) ? cJSON_GetArraySize(list) : -1;
    if (n < 1 || n > ITEMS_MAX_CANDIDATES)
        return cn_fail(CN_E_DATA, "%s: %s: bbox_list: expected 1..%d boxes", path, where, ITEMS_MAX_CANDIDATES);
    Item it = {.kind = ITEM_REGION, .line = idx + 1, .n = n, .answer = -1};
    it.boxes = callocCheck((size_t)n, sizeof *it.boxes);
    it.ann_ids = mallocCheck(sizeof(int64_t) * (size_t)n);
    for (int k = 0; k < n && rc == CN_OK; k++) {
        char name[32];
        snprintf(name, sizeof name, "bbox_list[%d]", k);
        rc = get_box(path, where, name, cJSON_GetArrayItem(list, k), it.boxes[k]);
        it.ann_ids[k] = -1;
        // upstream: correct when the chosen box equals ref_bbox; the first equal box is the answer
        if (rc == CN_OK && it.answer < 0 && !memcmp(it.boxes[k], ref, sizeof ref)) it.answer = k;
    }
    if (rc == CN_OK && it.answer < 0) rc = cn_fail(CN_E_DATA, "%s: %s: ref_bbox: not one of bbox_list", path, where);
    if (rc) {
        free(it.boxes), free(it.ann_ids);
        return rc;
    }
    int bad = 0;
    it.texts = callocCheck(1, sizeof(char *));
    it.texts[0] = utf8_sanitize(phrase, strlen(phrase), &bad);
    b->s->n_invalid_utf8 += bad > 0;
    it.image = bench_image(b, image);
    it.type = bench_type(b, "negrefcocog");
    bench_add(b, &it);
    return CN_OK;
}

int bench_load_negrefcocog(ItemSet *s, const JobConfig *job) {
    const char *path = job->dataset_path;
    cJSON *root = NULL;
    BenchBuilder b;
    int rc = open_json(&b, s, job, &root);
    if (rc) return rc;
    s->tie_first_max = 1;                   // argmax over the boxes: the first maximum is chosen
    s->crop_pil_round = job->crop_expand == 1.0; // upstream crops the box as is (PIL's rounding)
    s->format = "negrefcocog";
    if (!cJSON_IsArray(root)) rc = cn_fail(CN_E_DATA, "%s: expected a JSON list of items (NegRefCOCOg.json)", path);
    int idx = 0;
    const cJSON *o;
    if (rc == CN_OK) cJSON_ArrayForEach(o, root) {
        if ((rc = negref_item(&b, path, idx++, o))) break;
    }
    cJSON_Delete(root);
    rc = bench_end(&b, rc);
    if (rc == CN_OK && s->crop_pil_round && (rc = check_boxes_inside(s, job))) items_free(s);
    return rc;
}

// ---- two-caption items (VALSE, SugarCrepe) ---------------------------------------------------------
static int pair_item(BenchBuilder *b, const char *path, const char *where, int line, const cJSON *o, const char *img_key,
                     const char *pos_key, const char *neg_key, const char *type) {
    const char *image = NULL, *t[2] = {NULL, NULL};
    int rc;
    if ((rc = get_str(path, where, o, img_key, &image)) || (rc = get_str(path, where, o, pos_key, &t[0])) ||
        (rc = get_str(path, where, o, neg_key, &t[1])))
        return rc;
    Item it;
    bench_choice(&it, line, t, 2, 0, &b->s->n_invalid_utf8);
    it.image = bench_image(b, image);
    it.type = bench_type(b, type);
    bench_add(b, &it);
    return CN_OK;
}

int bench_load_valse(ItemSet *s, const JobConfig *job) {
    const char *path = job->dataset_path;
    cJSON *root = NULL;
    BenchBuilder b;
    int rc = open_json(&b, s, job, &root);
    if (rc) return rc;
    s->format = "valse-existence"; // strict: caption > foil (a tie is wrong)
    if (!cJSON_IsObject(root)) rc = cn_fail(CN_E_DATA, "%s: expected a JSON object keyed by item id (existence.json)", path);
    int line = 0;
    const cJSON *o;
    if (rc == CN_OK) cJSON_ArrayForEach(o, root) {
        char where[96];
        snprintf(where, sizeof where, "item \"%.60s\"", o->string);
        line++;
        if (!cJSON_IsObject(o)) {
            rc = cn_fail(CN_E_DATA, "%s: %s: expected an object", path, where);
            break;
        }
        const cJSON *mt = cJSON_GetObjectItemCaseSensitive(o, "mturk");
        const cJSON *votes = cJSON_IsObject(mt) ? cJSON_GetObjectItemCaseSensitive(mt, "caption") : NULL;
        if (!cJSON_IsNumber(votes)) {
            rc = cn_fail(CN_E_DATA, "%s: %s: mturk.caption: expected a number (annotators who judged the caption valid)",
                         path, where);
            break;
        }
        if (votes->valuedouble < 2) continue; // upstream's filter: valid items only
        if ((rc = pair_item(&b, path, where, line, o, "image_file", "caption", "foil", "existence"))) break;
    }
    cJSON_Delete(root);
    return bench_end(&b, rc);
}

static const char *const SUGARCREPE_SPLITS[] = {"add_att",     "add_obj",  "replace_att", "replace_obj",
                                                "replace_rel", "swap_att", "swap_obj"};

static int sugarcrepe_file(BenchBuilder *b, const char *file, const char *split) {
    cJSON *root = NULL;
    int rc = load_json(file, &root);
    if (rc) return rc;
    if (!cJSON_IsObject(root)) rc = cn_fail(CN_E_DATA, "%s: expected a JSON object {\"0\": {...}, ...}", file);
    int line = 0;
    const cJSON *o;
    if (rc == CN_OK) cJSON_ArrayForEach(o, root) {
        char where[96];
        snprintf(where, sizeof where, "item \"%.60s\"", o->string);
        if (!cJSON_IsObject(o)) {
            rc = cn_fail(CN_E_DATA, "%s: %s: expected an object", file, where);
            break;
        }
        if ((rc = pair_item(b, file, where, ++line, o, "filename", "caption", "negative_caption", split))) break;
    }
    cJSON_Delete(root);
    return rc;
}

// path = the folder of the seven files (those present are read, in upstream's order), or one file.
int bench_load_sugarcrepe(ItemSet *s, const JobConfig *job) {
    const char *path = job->dataset_path;
    struct stat st;
    BenchBuilder b;
    bench_begin(&b, s, job, path);
    s->format = "sugarcrepe"; // strict: caption > negative_caption
    int rc = CN_OK, found = 0;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        for (size_t i = 0; i < sizeof SUGARCREPE_SPLITS / sizeof SUGARCREPE_SPLITS[0] && rc == CN_OK; i++) {
            char file[4096];
            snprintf(file, sizeof file, "%s/%s.json", path, SUGARCREPE_SPLITS[i]);
            if (stat(file, &st) != 0) continue;
            found++;
            rc = sugarcrepe_file(&b, file, SUGARCREPE_SPLITS[i]);
        }
        if (rc == CN_OK && !found)
            rc = cn_fail(CN_E_DATA, "%s: none of add_att.json ... swap_obj.json (the SugarCrepe data folder)", path);
        else if (rc == CN_OK && found < 7 && cn_rank() == 0)
            cn_warn("%s: %d of the 7 SugarCrepe splits found; the overall accuracy covers those only", path, found);
    } else { // one split file: its name without .json names the split
        const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        char split[ITEMS_MAX_TYPE_LEN + 1];
        snprintf(split, sizeof split, "%.*s", (int)(strcspn(base, ".")), base);
        rc = sugarcrepe_file(&b, path, split[0] && strcmp(split, "all") ? split : "sugarcrepe");
    }
    return bench_end(&b, rc);
}
