// eval_items.c — the item phase of `clipneg eval` with `[dataset] format = items` (docs/items.md):
// after the main phases, every item's candidates are scored: choice items compare K texts with
// their whole image (its embedding is read back from /embeddings/image, not recomputed), region
// items compare one text with K crops of their image (decoded, cropped, preprocessed like whole
// images and encoded here). Results go to /items in the same file.
//
// The machinery is the evaluator's: global item shards of run.image_shard items (plan.h), rounds
// with one collective write step each, the data flushed before the round's flags in
// /progress/item_shards, eval_round_* for signals, test hooks and progress lines. What is added
// here is only what the main schema's H5DsId table cannot express: the /items datasets (created by
// rank 0 with the file, eval_items_create.c) and a collective row read/write for them on the main
// file's handles.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/encoder.h"
#include "clipneg/image.h"
#include "clipneg/items.h"
#include "dataset_bench_internal.h"
#include "eval_internal.h"
#include "h5_internal.h"

// ---- the /items datasets (eval_internal.h) ------------------------------------------------------
const char *const IT_PATHS[IT_DYN_COUNT] = {"/items/status", "/items/sim", "/items/crop",
                                            "/items/embeddings/text", "/items/embeddings/image",
                                            "/progress/item_shards"};
const H5Kind IT_KINDS[IT_DYN_COUNT] = {H5K_I8, H5K_F32, H5K_I32, H5K_F32, H5K_F32, H5K_U8};

int eval_items_dims(const Eval *e, ItemDs id, hsize_t dims[3]) {
    const ItemSet *s = e->items;
    const hsize_t N = (hsize_t)s->n_items;
    switch (id) {
    case IT_STATUS: dims[0] = N; return 1;
    case IT_SIM: dims[0] = N, dims[1] = (hsize_t)s->k_max; return 2;
    case IT_CROP: dims[0] = N, dims[1] = (hsize_t)s->k_image, dims[2] = 4; return 3;
    case IT_EMB_TEXT: dims[0] = N * (hsize_t)s->k_text, dims[1] = (hsize_t)e->shape.dim; return e->shape.store_embeddings ? 2 : 0;
    case IT_EMB_IMAGE: dims[0] = N * (hsize_t)s->k_image, dims[1] = (hsize_t)e->shape.dim; return e->shape.store_embeddings ? 2 : 0;
    case IT_PROGRESS: dims[0] = (hsize_t)CN_CEIL_DIV((int64_t)N, e->shape.image_shard); return 1;
    default: return 0;
    }
}

// ---- collective I/O on the open parallel file ------------------------------------------------------
typedef struct {
    hid_t d[IT_DYN_COUNT]; // -1 when absent
} ItemHandles;

// Collective read of the whole-image embeddings of `rows` (ascending, distinct) into buf [n, D].
static int read_image_rows(H5Out *o, const int64_t *rows, int n, int64_t D, float *buf) {
    hid_t d = o->dset[DS_EMB_IMAGE], fs = H5Dget_space(d), ms = -1;
    herr_t st = fs < 0 ? -1 : H5Sselect_none(fs);
    for (int j = 0; j < n && st >= 0;) { // runs of consecutive rows: one hyperslab each
        int r = j;
        while (r + 1 < n && rows[r + 1] == rows[r] + 1) r++;
        hsize_t start[2] = {(hsize_t)rows[j], 0}, count[2] = {(hsize_t)(r - j + 1), (hsize_t)D};
        st = H5Sselect_hyperslab(fs, H5S_SELECT_OR, start, NULL, count, NULL);
        j = r + 1;
    }
    hsize_t mdims[2] = {(hsize_t)CN_MAX(n, 1), (hsize_t)D};
    if (st >= 0) ms = H5Screate_simple(2, mdims, NULL);
    if (ms >= 0 && n == 0) st = H5Sselect_none(ms);
    hid_t t = h5_type(H5K_F32);
    if (st >= 0 && ms >= 0) st = H5Dread(d, t, ms, fs, o->dxpl, buf);
    H5Tclose(t);
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    if (st < 0 || ms < 0) return cn_fail(CN_E_IO, "%s: cannot read %d rows of /embeddings/image", o->path, n);
    return eval_h5_check_collective(o, "/embeddings/image");
}

static void close_handles(ItemHandles *h) {
    for (int id = 0; id < IT_DYN_COUNT; id++)
        if (h->d[id] >= 0) H5Dclose(h->d[id]);
}

// Open /items on every rank; the file must have this run's shapes (else it belongs to another manifest).
static int open_handles(Eval *e, ItemHandles *h) {
    int rc = CN_OK;
    for (int id = 0; id < IT_DYN_COUNT; id++) h->d[id] = -1;
    for (int id = 0; id < IT_DYN_COUNT && rc == CN_OK; id++) {
        hsize_t want[3] = {0, 1, 1};
        int rank = eval_items_dims(e, (ItemDs)id, want);
        if (rank > 0) rc = eval_h5_open_shape(e, IT_PATHS[id], rank, want, "an items job with this manifest", &h->d[id]);
    }
    return rc;
}

// ---- one shard -------------------------------------------------------------------------------------
typedef struct {
    int64_t i0, n;   // items [i0, i0 + n)
    int8_t *status;  // [n]
    float *sim;      // [n, K]
    int32_t *crop;   // [n, KI, 4]
    float *temb;     // [n * KT, D]
    float *iemb;     // [n * KI, D]
    int64_t *img_rows; // distinct whole-image rows of the shard's choice items (ascending)
    int n_img_rows;
    float *img_emb;  // [n_img_rows, D]
} ItemShard;

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void collect_image_rows(const ItemSet *s, ItemShard *sh) {
    int m = 0;
    for (int64_t i = 0; i < sh->n; i++)
        if (s->keys[sh->i0 + i].kind == ITEM_CHOICE) sh->img_rows[m++] = s->keys[sh->i0 + i].image;
    qsort(sh->img_rows, (size_t)m, sizeof(int64_t), cmp_i64);
    int u = 0;
    for (int j = 0; j < m; j++)
        if (u == 0 || sh->img_rows[u - 1] != sh->img_rows[j]) sh->img_rows[u++] = sh->img_rows[j];
    sh->n_img_rows = u;
}

// Tokenize and encode every text of the shard (batches of run.text_batch), normalised, into temb.
// A text repeated within an item is encoded once and copied: the same text must score the same (a
// tie), which a batched encoder does not promise for two rows of a batch (their sums may round
// differently).
static int encode_texts(Eval *e, ItemShard *sh) {
    const ItemSet *s = e->items;
    const int ctx = e->model.cfg.context_length, D = (int)e->shape.dim, KT = s->k_text, B = e->job.text_batch;
    int64_t total = 0;
    for (int64_t i = 0; i < sh->n; i++) {
        const ItemKey *it = &s->keys[sh->i0 + i];
        total += it->kind == ITEM_CHOICE ? it->n : 1;
    }
    int32_t *ids = callocCheck((size_t)(total * ctx + 1), sizeof(int32_t));
    int64_t *dest = mallocCheck(sizeof(int64_t) * (size_t)(total + 1)); // row of temb for each text
    int64_t *copy_to = mallocCheck(sizeof(int64_t) * (size_t)(2 * total + 1)), n_copy = 0; // pairs (to, from)
    int64_t m = 0;
    int rc = CN_OK;
    for (int64_t i = 0; i < sh->n && rc == CN_OK; i++) {
        const Item *it = items_get(s, (int)(sh->i0 + i)); // (valid until the next items_get)
        int nt = it->kind == ITEM_CHOICE ? it->n : 1;
        for (int k = 0; k < nt; k++) {
            int same = -1;
            for (int j = 0; j < k && same < 0; j++)
                if (!strcmp(it->texts[j], it->texts[k])) same = j;
            if (same >= 0) {
                copy_to[2 * n_copy] = i * KT + k, copy_to[2 * n_copy + 1] = i * KT + same;
                n_copy++;
                continue;
            }
            int nid = tokenizer_encode(e->tok, it->texts[k], ctx, ids + m * ctx, NULL);
            if (nid < 2 || nid > ctx) {
                rc = cn_fail(CN_E_INTERNAL, "%s:%d: text %d: the tokenizer returned %d ids", s->manifest, it->line, k, nid);
                break;
            }
            dest[m++] = i * KT + k;
        }
    }
    float *out = mallocCheck(sizeof(float) * (size_t)B * D);
    for (int64_t b0 = 0; b0 < m && rc == CN_OK; b0 += B) {
        int nb = (int)CN_MIN((int64_t)B, m - b0);
        if ((rc = e->be->encode_texts(e->be, ids + b0 * ctx, nb, out))) break;
        l2_normalize_rows(out, nb, D);
        for (int j = 0; j < nb; j++) memcpy(sh->temb + dest[b0 + j] * D, out + (size_t)j * D, sizeof(float) * D);
    }
    for (int64_t c = 0; c < n_copy && rc == CN_OK; c++)
        memcpy(sh->temb + copy_to[2 * c] * D, sh->temb + copy_to[2 * c + 1] * D, sizeof(float) * D);
    free(copy_to);
    free(out);
    free(ids);
    free(dest);
    return rc;
}

// Crops waiting for the encoder: [nb] preprocessed crops and the row of iemb each one fills.
typedef struct {
    float *pix, *out;
    int64_t *dest;
    int nb;
} CropBatch;

static int crop_flush(Eval *e, CropBatch *cb, float *iemb) {
    const int D = (int)e->shape.dim;
    if (cb->nb == 0) return CN_OK;
    int rc = e->be->encode_images(e->be, cb->pix, cb->nb, cb->out);
    if (rc == CN_OK) {
        l2_normalize_rows(cb->out, cb->nb, D);
        for (int j = 0; j < cb->nb; j++) memcpy(iemb + cb->dest[j] * D, cb->out + (size_t)j * D, sizeof(float) * D);
    }
    cb->nb = 0;
    return rc;
}

// Decode each region item's image (the last one is kept: items of one image are usually adjacent),
// crop its boxes, preprocess each crop like a whole image (image_preprocess: resize the shorter
// side to R, centre crop, normalise), encode in batches of run.image_batch into iemb.
static int encode_crops(Eval *e, ItemShard *sh) {
    const ItemSet *s = e->items;
    const int R = e->model.cfg.image_size, KI = s->k_image, B = e->job.image_batch;
    const size_t img = (size_t)3 * R * R;
    CropBatch cb = {.pix = mallocCheck(sizeof(float) * img * B),
                    .out = mallocCheck(sizeof(float) * (size_t)B * e->shape.dim),
                    .dest = mallocCheck(sizeof(int64_t) * (size_t)B)};
    uint8_t *rgb = NULL;
    int W = 0, H = 0, cached = -1, rc = CN_OK;
    int64_t *copies = mallocCheck(sizeof(int64_t) * (size_t)(2 * sh->n * KI + 1)), n_copy = 0; // pairs (to, from)
    for (int64_t i = 0; i < sh->n && rc == CN_OK; i++) {
        if (s->keys[sh->i0 + i].kind != ITEM_REGION) continue;
        const Item *it = items_get(s, (int)(sh->i0 + i)); // (valid until the next items_get)
        if (it->image != cached) {
            free(rgb);
            rgb = NULL;
            cached = it->image;
            char *path = dataset_image_path(&e->ds, it->image);
            if (image_load_rgb(path, &rgb, &W, &H) != CN_OK) {
                cn_warn("item at %s:%d: %s", s->manifest, it->line, cn_last_error());
                rgb = NULL;
            }
            free(path);
        }
        if (!rgb) {
            sh->status[i] = ITEM_IMAGE_FAILED;
            continue;
        }
        for (int k = 0; k < it->n && rc == CN_OK; k++) {
            int32_t *win = sh->crop + (i * KI + k) * 4;
            int bad = s->crop_pil_round ? bench_crop_window_round(it->boxes[k], W, H, win)
                                        : items_crop_window(it->boxes[k], e->job.crop_expand, W, H, win);
            if (bad) {
                win[0] = win[1] = win[2] = win[3] = -1;
                sh->status[i] = ITEM_BOX_OUTSIDE;
                continue;
            }
            int same = -1; // a window repeated within the item is encoded once (equal crops tie; encode_texts)
            for (int j = 0; j < k && same < 0; j++)
                if (!memcmp(sh->crop + (i * KI + j) * 4, win, 4 * sizeof(int32_t))) same = j;
            if (same >= 0) {
                copies[2 * n_copy] = i * KI + k, copies[2 * n_copy + 1] = i * KI + same;
                n_copy++;
                continue;
            }
            uint8_t *crop = items_crop_rgb(rgb, W, H, win);
            rc = image_preprocess(crop, win[2] - win[0], win[3] - win[1], R, CLIP_MEAN, CLIP_STD, cb.pix + (size_t)cb.nb * img);
            free(crop);
            if (rc) break;
            cb.dest[cb.nb++] = i * KI + k;
            if (cb.nb == B) rc = crop_flush(e, &cb, sh->iemb);
        }
    }
    if (rc == CN_OK) rc = crop_flush(e, &cb, sh->iemb);
    const int64_t D = e->shape.dim;
    for (int64_t c = 0; c < n_copy && rc == CN_OK; c++)
        memcpy(sh->iemb + copies[2 * c] * D, sh->iemb + copies[2 * c + 1] * D, sizeof(float) * (size_t)D);
    free(copies);
    free(rgb);
    free(cb.pix);
    free(cb.out);
    free(cb.dest);
    return rc;
}

// Local work of one shard (the whole-image rows were read collectively before): texts, crops,
// then sim[i, k] = text . image in double (unit vectors: the cosine); NaN when a side failed.
static int item_shard_compute(Eval *e, ItemShard *sh) {
    const ItemSet *s = e->items;
    const int64_t D = e->shape.dim, KT = s->k_text, KI = s->k_image, K = s->k_max;
    for (int64_t j = 0; j < sh->n * KT * D; j++) sh->temb[j] = NAN;
    for (int64_t j = 0; j < sh->n * KI * D; j++) sh->iemb[j] = NAN;
    for (int64_t j = 0; j < sh->n * K; j++) sh->sim[j] = NAN;
    for (int64_t j = 0; j < sh->n * KI * 4; j++) sh->crop[j] = -1;
    for (int64_t i = 0; i < sh->n; i++) sh->status[i] = ITEM_OK;
    int rc = encode_texts(e, sh);
    if (rc == CN_OK) rc = encode_crops(e, sh);
    if (rc) return rc;
    for (int64_t i = 0; i < sh->n; i++) {
        const ItemKey *it = &s->keys[sh->i0 + i];
        if (it->kind == ITEM_CHOICE) { // the whole image: its row among the shard's distinct images
            const int64_t *hit = bsearch(&(int64_t){it->image}, sh->img_rows, (size_t)sh->n_img_rows, sizeof(int64_t), cmp_i64);
            memcpy(sh->iemb + i * KI * D, sh->img_emb + (hit - sh->img_rows) * D, sizeof(float) * (size_t)D);
            if (!isfinite(sh->iemb[i * KI * D])) sh->status[i] = ITEM_IMAGE_FAILED; // NaN row: /images/status says why
        }
        for (int k = 0; k < it->n; k++) {
            const float *t = sh->temb + (i * KT + (it->kind == ITEM_CHOICE ? k : 0)) * D;
            const float *v = sh->iemb + (i * KI + (it->kind == ITEM_REGION ? k : 0)) * D;
            double acc = 0;
            for (int64_t d = 0; d < D; d++) acc += (double)t[d] * v[d];
            sh->sim[i * K + k] = (float)acc;
        }
    }
    return CN_OK;
}

static void shard_alloc(ItemShard *sh, const Eval *e, int64_t S) {
    const ItemSet *s = e->items;
    const int64_t D = e->shape.dim;
    sh->status = mallocCheck((size_t)S);
    sh->sim = mallocCheck(sizeof(float) * (size_t)(S * s->k_max));
    sh->crop = mallocCheck(sizeof(int32_t) * (size_t)(S * s->k_image * 4));
    sh->temb = mallocCheck(sizeof(float) * (size_t)(S * s->k_text * D));
    sh->iemb = mallocCheck(sizeof(float) * (size_t)(S * s->k_image * D));
    sh->img_rows = mallocCheck(sizeof(int64_t) * (size_t)S);
    sh->img_emb = mallocCheck(sizeof(float) * (size_t)(S * D));
}

static void shard_free(ItemShard *sh) {
    free(sh->status), free(sh->sim), free(sh->crop), free(sh->temb), free(sh->iemb), free(sh->img_rows), free(sh->img_emb);
}

// ---- the phase ---------------------------------------------------------------------------------------
int eval_items(Eval *e) {
    const ItemSet *s = e->items;
    H5Out *o = &e->out;
    ShardPlan plan;
    plan_init(&plan, s->n_items, e->shape.image_shard, e->nranks);
    ItemHandles h;
    int rc = eval_agree(open_handles(e, &h));
    uint8_t *done = callocCheck((size_t)plan.n_shards + 1, 1);
    // resume: the flags of earlier runs, read by every rank (a few bytes)
    if (rc == CN_OK) rc = eval_agree(eval_h5_rows(o, h.d[IT_PROGRESS], IT_PATHS[IT_PROGRESS], H5K_U8, 0, 0, plan.n_shards, done));
    ItemShard sh;
    shard_alloc(&sh, e, plan.shard_size);
    if (rc == CN_OK) progress_begin(&e->prog, "items", plan.n_items, plan_rows_done(&plan, done));
    const int64_t KT = s->k_text, KI = s->k_image;
    for (int64_t r = 0; r < plan.n_rounds && rc == CN_OK; r++) {
        if (plan_round_done(&plan, r, done)) continue;
        if ((rc = eval_round_begin(e, "items", r))) break;
        int64_t sidx = plan_shard(&plan, r, e->rank), i1 = 0;
        if (sidx >= 0 && done[sidx]) sidx = -1; // done by an earlier run: select none
        plan_shard_rows(&plan, sidx, &sh.i0, &i1);
        sh.n = i1 - sh.i0;
        collect_image_rows(s, &sh);
        if ((rc = eval_agree(read_image_rows(o, sh.img_rows, sh.n_img_rows, e->shape.dim, sh.img_emb)))) break;
        if ((rc = eval_agree(sh.n > 0 ? item_shard_compute(e, &sh) : CN_OK))) break;
        int w = eval_h5_rows(o, h.d[IT_STATUS], IT_PATHS[IT_STATUS], H5K_I8, 1, sh.i0, sh.n, sh.status);
        w = eval_keep_first(w, eval_h5_rows(o, h.d[IT_SIM], IT_PATHS[IT_SIM], H5K_F32, 1, sh.i0, sh.n, sh.sim));
        w = eval_keep_first(w, eval_h5_rows(o, h.d[IT_CROP], IT_PATHS[IT_CROP], H5K_I32, 1, sh.i0, sh.n, sh.crop));
        if (h.d[IT_EMB_TEXT] >= 0)
            w = eval_keep_first(w, eval_h5_rows(o, h.d[IT_EMB_TEXT], IT_PATHS[IT_EMB_TEXT], H5K_F32, 1, sh.i0 * KT, sh.n * KT, sh.temb));
        if (h.d[IT_EMB_IMAGE] >= 0)
            w = eval_keep_first(w, eval_h5_rows(o, h.d[IT_EMB_IMAGE], IT_PATHS[IT_EMB_IMAGE], H5K_F32, 1, sh.i0 * KI, sh.n * KI, sh.iemb));
        w = eval_keep_first(w, h5out_flush(o)); // the data reaches the file before the flags
        if ((rc = eval_agree(w))) break;
        eval_round_mid(e);
        uint8_t one = 1;
        if ((rc = eval_agree(eval_h5_rows(o, h.d[IT_PROGRESS], IT_PATHS[IT_PROGRESS], H5K_U8, 1, sidx, sidx >= 0, &one)))) break;
        for (int k = 0; k < e->nranks; k++) {
            int64_t sk = plan_shard(&plan, r, k);
            if (sk >= 0) done[sk] = 1;
        }
        eval_round_end(e, plan_rows_done(&plan, done));
    }
    shard_free(&sh);
    free(done);
    close_handles(&h); // before the file is closed (parallel HDF5 refuses to close with open objects)
    if (rc == CN_OK) progress_end(&e->prog);
    return rc;
}

// `[dataset] format = items` (eval.c's dataset step): the manifest's items and the dataset the main
// phases evaluate (items.h). e->items stays allocated (maybe empty) for eval_free.
int eval_items_load(Eval *e) {
    const JobConfig *j = &e->job;
    e->items = callocCheck(1, sizeof(ItemSet));
    int rc = j->dataset_kind == DATASET_ITEMS ? items_load(e->items, j->manifest, j->images_dir, j->instances_json, j->max_images)
                                              : items_load_bench(e->items, j);
    if (rc == CN_OK) rc = items_to_dataset(e->items, &e->ds);
    if (rc == CN_OK) {
        const ItemSet *s = e->items;
        int n_region = 0;
        for (int i = 0; i < s->n_items; i++) n_region += s->keys[i].kind == ITEM_REGION;
        cn_log("items: %d from %s (%d choice, %d region; %d types; up to %d candidates), %d images, crop_expand %.2f",
               s->n_items, s->manifest, s->n_items - n_region, n_region, s->n_types, s->k_max, s->n_images,
               j->crop_expand);
    }
    return rc;
}
