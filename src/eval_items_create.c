// eval_items_create.c — the /items group of `clipneg eval` with `[dataset] format = items`
// (docs/items.md), created by rank 0 with the file (serial, inside h5out_create_begin .. commit): what
// the manifest fixes (texts, boxes, answers, ... written in blocks of items read back from the
// manifest), the per-round datasets at their final size with their fill values, attributes and
// coordinates. The item phase itself is eval_items.c.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/items.h"
#include "eval_internal.h"
#include "h5_internal.h"

// ---- creation (rank 0, serial, inside h5out_create_begin .. commit) -------------------------------
static int attr_double(H5Creating *c, hid_t obj, const char *name, double v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = sp < 0 ? -1 : H5Acreate2(obj, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a < 0 || H5Awrite(a, H5T_NATIVE_DOUBLE, &v) < 0 ? cn_fail(CN_E_IO, "%s: cannot write the attribute %s", c->tmp_path, name)
                                                               : CN_OK;
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    return rc;
}

static int create_attrs(H5Creating *c, const Eval *e) {
    const ItemSet *s = e->items;
    hid_t g = H5Gopen2(c->fid, "/items", H5P_DEFAULT);
    if (g < 0) return cn_fail(CN_E_IO, "%s: cannot open /items", c->tmp_path);
    int rc = h5_attr_write_str(g, "kind_labels", "choice,region");
    if (!rc) rc = h5_attr_write_str(g, "status_labels", "pending,ok,image failed,box outside the image");
    if (!rc) rc = h5_attr_write_str(g, "manifest", s->manifest);
    if (!rc) rc = h5_attr_write_int(g, "item_shard", e->shape.image_shard);
    if (!rc) rc = h5_attr_write_int(g, "k_text", s->k_text);
    if (!rc) rc = h5_attr_write_int(g, "k_image", s->k_image);
    if (!rc) rc = h5_attr_write_int(g, "embeddings_in_file", e->shape.store_embeddings);
    if (!rc) rc = h5_attr_write_str(g, "format", s->format ? s->format : "items");
    if (!rc) rc = h5_attr_write_str(g, "tie_rule", s->tie_first_max ? "first_max" : "strict");
    if (!rc) rc = h5_attr_write_int(g, "crop_pil_round", s->crop_pil_round);
    if (!rc) rc = attr_double(c, g, "crop_expand", e->job.crop_expand);
    H5Gclose(g);
    return rc;
}

// The coordinates of the /items axes (h5schema.c documents them and attaches them at commit).
static int create_coords(const Eval *e, H5Creating *c) {
    const ItemSet *s = e->items;
    const int lv = e->shape.compression;
    static const char *const box_fields[] = {"x", "y", "w", "h"}, *const crop_fields[] = {"x0", "y0", "x1", "y1"};
    hid_t g = H5Gopen2(c->fid, "/items", H5P_DEFAULT);
    if (g < 0) return cn_fail(CN_E_IO, "%s: cannot open /items", c->tmp_path);
    int rc = h5_coord_range(g, "item", s->n_items, H5P_DEFAULT, 1, lv);
    if (!rc) rc = h5_coord_range(g, "candidate", s->k_max, H5P_DEFAULT, 1, lv);
    if (!rc) rc = h5_coord_range(g, "text_candidate", s->k_text, H5P_DEFAULT, 1, lv);
    if (!rc) rc = h5_coord_range(g, "image_candidate", s->k_image, H5P_DEFAULT, 1, lv);
    if (!rc) rc = h5_coord_strings(g, "box_field", box_fields, 4, H5P_DEFAULT, 1);
    if (!rc) rc = h5_coord_strings(g, "crop_field", crop_fields, 4, H5P_DEFAULT, 1);
    H5Gclose(g);
    if (!rc) rc = h5_coord_copy(c->fid, "/items/type_names", "/items/item_type", lv);
    if (!rc && e->shape.store_embeddings) {
        g = H5Gopen2(c->fid, "/items/embeddings", H5P_DEFAULT);
        rc = g < 0 ? cn_fail(CN_E_IO, "%s: cannot open /items/embeddings", c->tmp_path) : CN_OK;
        if (!rc) rc = h5_coord_range(g, "text_row", s->n_items * s->k_text, H5P_DEFAULT, 1, lv);
        if (!rc) rc = h5_coord_range(g, "image_row", s->n_items * s->k_image, H5P_DEFAULT, 1, lv);
        if (!rc) rc = h5_coord_range(g, "dim", e->shape.dim, H5P_DEFAULT, 1, lv);
        if (g >= 0) H5Gclose(g);
    }
    if (!rc) {
        g = H5Gopen2(c->fid, "/progress", H5P_DEFAULT);
        rc = h5_coord_range(g, "item_shard", CN_CEIL_DIV(s->n_items, e->shape.image_shard), H5P_DEFAULT, 1, lv);
        H5Gclose(g);
    }
    return rc;
}

// The per-item datasets a manifest fixes, written in blocks of CREATE_BLOCK items (the items read
// back per window: nothing of size N x candidates is held). Columns k >= an item's candidates hold
// "" (text), NaN (box), -1 (ann_id, truncated).
enum { CREATE_BLOCK = 256 };
static const struct {
    const char *name;
    int kind, cols; // H5Kind (-1: float64); cols: 0 one value per item, 'T' k_text, 'I' k_image, 'B' k_image x 4
} FIXED[] = {{"/items/type", H5K_I32, 0},         {"/items/kind", H5K_I8, 0},       {"/items/image_index", H5K_I32, 0},
             {"/items/line", H5K_I32, 0},         {"/items/answer", H5K_I32, 0},    {"/items/n_candidates", H5K_I32, 0},
             {"/items/text", H5K_STR, 'T'},       {"/items/box", -1, 'B'},          {"/items/ann_id", H5K_I64, 'I'},
             {"/items/truncated", H5K_I8, 'T'}};
enum { F_TYPE, F_KIND, F_IMAGE, F_LINE, F_ANSWER, F_NCAND, F_TEXT, F_BOX, F_ANN, F_TRUNC, F_COUNT };

static int create_fixed(Eval *e, H5Creating *c) {
    const ItemSet *s = e->items;
    const int64_t N = s->n_items, KT = s->k_text, KI = s->k_image, B = CREATE_BLOCK;
    int rc = CN_OK;
    for (int f = 0; f < F_COUNT && rc == CN_OK; f++) {
        hsize_t dims[3] = {(hsize_t)N, (hsize_t)(FIXED[f].cols == 'T' ? KT : KI), 4};
        rc = eval_h5_create_later(c, FIXED[f].name, FIXED[f].kind, FIXED[f].cols == 0 ? 1 : FIXED[f].cols == 'B' ? 3 : 2, dims);
    }
    int32_t *i32[F_NCAND + 1];
    for (int f = 0; f <= F_NCAND; f++) i32[f] = mallocCheck(sizeof(int32_t) * (size_t)B);
    int8_t *kind = mallocCheck((size_t)B), *trunc = mallocCheck((size_t)(B * KT));
    const char **texts = mallocCheck(sizeof(char *) * (size_t)(B * KT));
    char **copies = mallocCheck(sizeof(char *) * (size_t)(B * KT)); // texts[j], or NULL for ""
    double *boxes = mallocCheck(sizeof(double) * (size_t)(B * KI * 4));
    int64_t *ann = mallocCheck(sizeof(int64_t) * (size_t)(B * KI));
    int32_t *ids = mallocCheck(sizeof(int32_t) * (size_t)e->model.cfg.context_length);
    for (int64_t i0 = 0; i0 < N && rc == CN_OK; i0 += B) {
        const int64_t nb = CN_MIN(B, N - i0);
        for (int64_t i = 0; i < nb; i++) {
            const ItemKey *key = &s->keys[i0 + i];
            i32[F_TYPE][i] = key->type, i32[F_IMAGE][i] = key->image, i32[F_LINE][i] = key->line;
            i32[F_ANSWER][i] = key->answer, i32[F_NCAND][i] = key->n;
            kind[i] = (int8_t)key->kind;
        }
        for (int64_t i = 0; i < nb; i++) {
            const Item *it = items_get(s, (int)(i0 + i)); // (valid until the next items_get: texts copied)
            int nt = it->kind == ITEM_CHOICE ? it->n : 1;
            for (int64_t k = 0; k < KT; k++) {
                // a candidate text longer than the context (77 tokens) is cut by the tokenizer, as
                // open_clip does: flagged per text (1), 0 when whole, -1 where an item has no text k
                int cut = 0;
                if (k < nt) tokenizer_encode(e->tok, it->texts[k], e->model.cfg.context_length, ids, &cut);
                trunc[i * KT + k] = (int8_t)(k < nt ? cut != 0 : -1);
                copies[i * KT + k] = k < nt ? strdupCheck(it->texts[k]) : NULL;
            }
            for (int64_t k = 0; k < KI; k++) {
                int have = it->kind == ITEM_REGION && k < it->n;
                for (int j = 0; j < 4; j++) boxes[(i * KI + k) * 4 + j] = have ? it->boxes[k][j] : NAN;
                ann[i * KI + k] = have ? it->ann_ids[k] : -1;
            }
        }
        for (int64_t j = 0; j < nb * KT; j++) texts[j] = copies[j] ? copies[j] : "";
        const void *data[F_COUNT] = {i32[F_TYPE], kind, i32[F_IMAGE], i32[F_LINE], i32[F_ANSWER], i32[F_NCAND], texts, boxes, ann, trunc};
        for (int f = 0; f < F_COUNT && rc == CN_OK; f++) rc = eval_h5_write_rows(c, FIXED[f].name, FIXED[f].kind, i0, nb, data[f]);
        for (int64_t j = 0; j < nb * KT; j++) free(copies[j]);
    }
    for (int f = 0; f <= F_NCAND; f++) free(i32[f]);
    free(kind), free(trunc), free(texts), free(copies), free(boxes), free(ann), free(ids);
    return rc;
}

// What the manifest fixes is written now (strings cannot go through MPI-IO later, h5out.h says
// why); the rest is created at its final size with its fill value.
int eval_items_create(Eval *e, H5Creating *c) {
    const ItemSet *s = e->items;
    int rc = eval_h5_group(c, "/items");
    if (!rc && e->shape.store_embeddings) rc = eval_h5_group(c, "/items/embeddings");
    if (rc) return rc;
    hsize_t dt[1] = {(hsize_t)s->n_types};
    rc = eval_h5_create(c, "/items/type_names", H5K_STR, 1, dt, NULL, s->types);
    if (!rc) rc = create_fixed(e, c);
    const int8_t st_fill = ITEM_PENDING;
    const uint8_t zero8 = 0;
    const int32_t minus1 = -1;
    const float nan_f = NAN;
    for (int id = 0; id < IT_DYN_COUNT && rc == CN_OK; id++) {
        hsize_t dims[3];
        int rank = eval_items_dims(e, (ItemDs)id, dims);
        if (rank == 0) continue;
        const void *fill = id == IT_STATUS     ? (const void *)&st_fill
                           : id == IT_SIM      ? (const void *)&nan_f
                           : id == IT_CROP     ? (const void *)&minus1
                           : id == IT_PROGRESS ? (const void *)&zero8
                                               : NULL;
        rc = eval_h5_create(c, IT_PATHS[id], IT_KINDS[id], rank, dims, fill, NULL);
    }
    if (!rc) rc = create_attrs(c, e);
    if (!rc) rc = create_coords(e, c);
    return rc;
}
