// eval_classify.c — the zero-shot classification phases of `clipneg eval` with
// `[dataset] format = classification` (docs/classification.md, include/clipneg/classify.h).
//
// After the main phases (which encode the images into /embeddings/image):
//   classes   global shards of classes: every class's prompts (templates, then negated templates)
//             are tokenized and encoded, L2-normalised, averaged per class and normalised again
//             (open_clip's build_zero_shot_classifier), into /classify/classifier[_negated] [C, D].
//             A shard holds whole classes (run.text_shard texts at most, one class at least), so a
//             class's vector does not depend on the rank count.
//   classify  global image shards: the whole classifier is read back by every rank (C x D floats),
//             the shard's image embeddings are read from /embeddings/image, and per image only the
//             top-5 classes, the true class's cosine, the tie count and the negation probe's answer
//             are kept: memory does not grow with the number of images.
// Same rounds, collective writes, progress flags and resume as the other phases (plan.h).
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/classify.h"
#include "clipneg/common.h"
#include "clipneg/encoder.h"
#include "eval_internal.h"
#include "h5_internal.h"

typedef enum {
    CL_W,          // /classify/classifier [C, D] float32
    CL_W_NEG,      // /classify/classifier_negated [C, D] float32
    CL_STATUS,     // [N] int8
    CL_TOPK,       // [N, K] int32 classes, best first (-1 fill)
    CL_TOPK_SIM,   // [N, K] float32 their cosines
    CL_LABEL_SIM,  // [N] float32 cosine with the true class
    CL_N_MAX,      // [N] int32 classes sharing the top cosine (1 = no tie)
    CL_NEG_TOP1,   // [N] int32 first maximum of the negated classifier
    CL_NEG_LABEL,  // [N] float32 cosine with the true class's negated prompts
    CL_PROG_CLASS, // /progress/class_shards
    CL_PROG_IMAGE, // /progress/classify_shards
    CL_COUNT
} ClsDs;

static const char *const CL_PATHS[CL_COUNT] = {
    "/classify/classifier", "/classify/classifier_negated", "/classify/status", "/classify/topk",
    "/classify/topk_sim",   "/classify/label_sim",          "/classify/n_max",  "/classify/negated_top1",
    "/classify/negated_label_sim", "/progress/class_shards", "/progress/classify_shards"};
static const H5Kind CL_KINDS[CL_COUNT] = {H5K_F32, H5K_F32, H5K_I8,  H5K_I32, H5K_F32, H5K_F32,
                                          H5K_I32, H5K_I32, H5K_F32, H5K_U8,  H5K_U8};

static int64_t class_shard(const Eval *e) {
    const ClassifySet *s = e->cls;
    return CN_MAX(1, e->job.text_shard / (s->n_templates + s->n_neg_templates));
}
static int top_k(const ClassifySet *s) { return CN_MIN(CLASSIFY_TOPK, s->n_classes); }

static int cl_dims(const Eval *e, ClsDs id, hsize_t dims[2]) {
    const ClassifySet *s = e->cls;
    const hsize_t N = (hsize_t)s->n_images, C = (hsize_t)s->n_classes;
    switch (id) {
    case CL_W:
    case CL_W_NEG: dims[0] = C, dims[1] = (hsize_t)e->shape.dim; return 2;
    case CL_TOPK:
    case CL_TOPK_SIM: dims[0] = N, dims[1] = (hsize_t)top_k(s); return 2;
    case CL_PROG_CLASS: dims[0] = (hsize_t)CN_CEIL_DIV((int64_t)C, class_shard(e)); return 1;
    case CL_PROG_IMAGE: dims[0] = (hsize_t)CN_CEIL_DIV((int64_t)N, e->shape.image_shard); return 1;
    default: dims[0] = N; return 1;
    }
}

// ---- creation (rank 0, with the file) ---------------------------------------------------------------
// The coordinates of the /classify and progress axes (h5schema.c documents the datasets and attaches
// these at commit, so xarray opens /classify with named dims).
static int create_coords(const Eval *e, H5Creating *c) {
    const ClassifySet *s = e->cls;
    const int lv = e->shape.compression;
    int rc = h5_coord_copy(c->fid, "/classify/classnames", "/classify/class", lv);
    if (!rc) rc = h5_coord_copy(c->fid, "/classify/templates", "/classify/template", lv);
    if (!rc) rc = h5_coord_copy(c->fid, "/classify/negated_templates", "/classify/negated_template", lv);
    hid_t g = rc ? -1 : H5Gopen2(c->fid, "/classify", H5P_DEFAULT);
    if (!rc && g < 0) rc = cn_fail(CN_E_IO, "%s: cannot open /classify", c->tmp_path);
    if (!rc) rc = h5_coord_range(g, "image", s->n_images, H5P_DEFAULT, 1, lv);
    if (!rc) rc = h5_coord_range(g, "k", top_k(s), H5P_DEFAULT, 1, lv);
    if (!rc) rc = h5_coord_range(g, "dim", e->shape.dim, H5P_DEFAULT, 1, lv);
    if (g >= 0) H5Gclose(g);
    if (rc) return rc;
    hsize_t n_class_shards[2], n_image_shards[2];
    cl_dims(e, CL_PROG_CLASS, n_class_shards);
    cl_dims(e, CL_PROG_IMAGE, n_image_shards);
    g = H5Gopen2(c->fid, "/progress", H5P_DEFAULT);
    if (g < 0) return cn_fail(CN_E_IO, "%s: cannot open /progress", c->tmp_path);
    rc = h5_coord_range(g, "class_shard", (int64_t)n_class_shards[0], H5P_DEFAULT, 1, lv);
    if (!rc) rc = h5_coord_range(g, "classify_shard", (int64_t)n_image_shards[0], H5P_DEFAULT, 1, lv);
    H5Gclose(g);
    return rc;
}

int eval_classify_create(Eval *e, H5Creating *c) {
    const ClassifySet *s = e->cls;
    int rc = eval_h5_group(c, "/classify");
    hsize_t dc[1] = {(hsize_t)s->n_classes}, dt[1] = {(hsize_t)s->n_templates}, dn[1] = {(hsize_t)s->n_neg_templates};
    hsize_t di[1] = {(hsize_t)s->n_images};
    if (!rc) rc = eval_h5_create(c, "/classify/classnames", H5K_STR, 1, dc, NULL, s->classnames);
    if (!rc) rc = eval_h5_create(c, "/classify/templates", H5K_STR, 1, dt, NULL, s->templates);
    if (!rc) rc = eval_h5_create(c, "/classify/negated_templates", H5K_STR, 1, dn, NULL, s->neg_templates);
    if (!rc) rc = eval_h5_create(c, "/classify/label", H5K_I32, 1, di, NULL, s->labels);
    const int8_t pending = CLASSIFY_PENDING;
    const uint8_t zero = 0;
    const int32_t minus1 = -1;
    const float nan_f = NAN;
    for (int id = 0; id < CL_COUNT && rc == CN_OK; id++) {
        hsize_t dims[2];
        int rank = cl_dims(e, (ClsDs)id, dims);
        const void *fill = CL_KINDS[id] == H5K_F32 ? (const void *)&nan_f
                           : CL_KINDS[id] == H5K_I32 ? (const void *)&minus1
                           : id == CL_STATUS       ? (const void *)&pending
                                                   : (const void *)&zero;
        rc = eval_h5_create(c, CL_PATHS[id], CL_KINDS[id], rank, dims, fill, NULL);
    }
    if (rc) return rc;
    hid_t g = H5Gopen2(c->fid, "/classify", H5P_DEFAULT);
    if (g < 0) return cn_fail(CN_E_IO, "%s: cannot open /classify", c->tmp_path);
    rc = h5_attr_write_str(g, "source", s->source);
    if (!rc) rc = h5_attr_write_str(g, "source_kind", s->is_csv ? "csv" : "imagefolder");
    if (!rc) rc = h5_attr_write_str(g, "status_labels", "pending,ok,image failed");
    if (!rc) rc = h5_attr_write_str(g, "tie_rule", "first maximum: equal cosines go to the lower class index");
    if (!rc) rc = h5_attr_write_str(g, "classifier_rule", "per class: mean of the L2-normalised prompt embeddings, L2-normalised");
    if (!rc) rc = h5_attr_write_int(g, "class_shard", class_shard(e));
    if (!rc) rc = h5_attr_write_int(g, "top_k", top_k(s));
    H5Gclose(g);
    return rc ? rc : create_coords(e, c);
}

// ---- handles ----------------------------------------------------------------------------------------
typedef struct {
    hid_t d[CL_COUNT];
} ClsHandles;

static void close_handles(ClsHandles *h) {
    for (int id = 0; id < CL_COUNT; id++)
        if (h->d[id] >= 0) H5Dclose(h->d[id]);
}

static int open_handles(Eval *e, ClsHandles *h) {
    int rc = CN_OK;
    for (int id = 0; id < CL_COUNT; id++) h->d[id] = -1;
    for (int id = 0; id < CL_COUNT && rc == CN_OK; id++) {
        hsize_t want[2] = {0, 1};
        int rank = cl_dims(e, (ClsDs)id, want);
        rc = eval_h5_open_shape(e, CL_PATHS[id], rank, want, "a classification job with these classes and images",
                                &h->d[id]);
    }
    return rc;
}

static int rw(Eval *e, ClsHandles *h, ClsDs id, int write, int64_t row0, int64_t n, void *buf) {
    return eval_h5_rows(&e->out, h->d[id], CL_PATHS[id], CL_KINDS[id], write, row0, n, buf);
}

// One round of a phase: its flags set by every rank that had a shard, then the bookkeeping.
static int mark_round(Eval *e, ClsHandles *h, ClsDs prog, const ShardPlan *plan, int64_t r, int64_t sidx,
                      uint8_t *done) {
    eval_round_mid(e);
    uint8_t one = 1;
    int rc = eval_agree(rw(e, h, prog, 1, sidx, sidx >= 0, &one));
    if (rc) return rc;
    for (int k = 0; k < e->nranks; k++) {
        int64_t sk = plan_shard(plan, r, k);
        if (sk >= 0) done[sk] = 1;
    }
    eval_round_end(e, plan_rows_done(plan, done));
    return CN_OK;
}

// ---- phase 1: the classifiers ---------------------------------------------------------------------
// Classes [c0, c0 + n): every prompt encoded and normalised; w/wneg [n, D] get the class vectors.
static int build_classes(Eval *e, int64_t c0, int64_t n, float *w, float *wneg) {
    const ClassifySet *s = e->cls;
    const int ctx = e->model.cfg.context_length, D = (int)e->shape.dim, B = e->job.text_batch;
    const int T = s->n_templates, TN = s->n_neg_templates, P = T + TN;
    const int64_t m = n * P;
    int32_t *ids = callocCheck((size_t)(m * ctx + 1), sizeof(int32_t));
    int rc = CN_OK;
    for (int64_t j = 0; j < m && rc == CN_OK; j++) {
        const int64_t c = c0 + j / P;
        const int t = (int)(j % P);
        char *text = classify_prompt(t < T ? s->templates[t] : s->neg_templates[t - T], s->classnames[c]);
        int nid = tokenizer_encode(e->tok, text, ctx, ids + j * ctx, NULL);
        if (nid < 2 || nid > ctx) rc = cn_fail(CN_E_INTERNAL, "class %lld: '%s': the tokenizer returned %d ids", (long long)c, text, nid);
        free(text);
    }
    double *sum = callocCheck((size_t)(n * 2 * D), sizeof(double)); // [n][2][D]: templates, negated templates
    float *out = mallocCheck(sizeof(float) * (size_t)B * D);
    for (int64_t b0 = 0; b0 < m && rc == CN_OK; b0 += B) {
        int nb = (int)CN_MIN((int64_t)B, m - b0);
        if ((rc = e->be->encode_texts(e->be, ids + b0 * ctx, nb, out))) break;
        l2_normalize_rows(out, nb, D);
        for (int j = 0; j < nb; j++) {
            const int64_t k = (b0 + j) / P, neg = (b0 + j) % P >= T;
            double *acc = sum + (k * 2 + neg) * D;
            for (int d = 0; d < D; d++) acc[d] += out[(size_t)j * D + d];
        }
    }
    for (int64_t k = 0; k < n && rc == CN_OK; k++)
        for (int neg = 0; neg < 2; neg++) {
            const double *acc = sum + (k * 2 + neg) * D;
            const int cnt = neg ? TN : T;
            double nrm = 0;
            for (int d = 0; d < D; d++) nrm += (acc[d] / cnt) * (acc[d] / cnt);
            nrm = sqrt(nrm);
            float *dst = (neg ? wneg : w) + k * D;
            for (int d = 0; d < D; d++) dst[d] = (float)(acc[d] / cnt / nrm);
        }
    free(sum);
    free(out);
    free(ids);
    return rc;
}

static int phase_classes(Eval *e, ClsHandles *h) {
    const ClassifySet *s = e->cls;
    const int64_t D = e->shape.dim;
    ShardPlan plan;
    plan_init(&plan, s->n_classes, class_shard(e), e->nranks);
    uint8_t *done = callocCheck((size_t)plan.n_shards + 1, 1);
    int rc = eval_agree(rw(e, h, CL_PROG_CLASS, 0, 0, plan.n_shards, done));
    float *w = mallocCheck(sizeof(float) * (size_t)(plan.shard_size * D));
    float *wn = mallocCheck(sizeof(float) * (size_t)(plan.shard_size * D));
    if (rc == CN_OK) progress_begin(&e->prog, "classes", plan.n_items, plan_rows_done(&plan, done));
    for (int64_t r = 0; r < plan.n_rounds && rc == CN_OK; r++) {
        if (plan_round_done(&plan, r, done)) continue;
        if ((rc = eval_round_begin(e, "classes", r))) break;
        int64_t sidx = plan_shard(&plan, r, e->rank), c0 = 0, c1 = 0;
        if (sidx >= 0 && done[sidx]) sidx = -1;
        plan_shard_rows(&plan, sidx, &c0, &c1);
        if ((rc = eval_agree(c1 > c0 ? build_classes(e, c0, c1 - c0, w, wn) : CN_OK))) break;
        int wr = rw(e, h, CL_W, 1, c0, c1 - c0, w);
        wr = eval_keep_first(wr, rw(e, h, CL_W_NEG, 1, c0, c1 - c0, wn));
        wr = eval_keep_first(wr, h5out_flush(&e->out)); // the data reaches the file before the flags
        if ((rc = eval_agree(wr))) break;
        rc = mark_round(e, h, CL_PROG_CLASS, &plan, r, sidx, done);
    }
    if (rc == CN_OK) progress_end(&e->prog);
    free(w);
    free(wn);
    free(done);
    return rc;
}

// ---- phase 2: predictions -------------------------------------------------------------------------
typedef struct {
    int64_t i0, n;
    float *emb;                                // [n, D]
    int8_t *status;                            // [n]
    int32_t *topk, *n_max, *neg_top1;          // [n, K], [n], [n]
    float *topk_sim, *label_sim, *neg_label;   // [n, K], [n], [n]
    float *logits;                             // [C] scratch
} ClsShard;

static void cosines(const float *v, const float *W, int64_t C, int64_t D, float *out) {
    for (int64_t c = 0; c < C; c++) {
        double acc = 0; // double accumulation: the order of D terms is fixed, so are the results
        for (int64_t d = 0; d < D; d++) acc += (double)v[d] * W[c * D + d];
        out[c] = (float)acc;
    }
}

static void classify_shard(const Eval *e, const float *W, const float *Wn, ClsShard *sh) {
    const ClassifySet *s = e->cls;
    const int64_t C = s->n_classes, D = e->shape.dim, K = top_k(s);
    for (int64_t i = 0; i < sh->n; i++) {
        const float *v = sh->emb + i * D;
        const int32_t label = s->labels[sh->i0 + i];
        int32_t *tk = sh->topk + i * K;
        float *ts = sh->topk_sim + i * K;
        for (int64_t k = 0; k < K; k++) tk[k] = -1, ts[k] = NAN;
        sh->label_sim[i] = sh->neg_label[i] = NAN;
        sh->n_max[i] = sh->neg_top1[i] = -1;
        if (!isfinite(v[0])) { // NaN row: the image failed (/images/status says why)
            sh->status[i] = CLASSIFY_IMAGE_FAILED;
            continue;
        }
        sh->status[i] = CLASSIFY_OK;
        cosines(v, W, C, D, sh->logits);
        sh->n_max[i] = classify_topk(sh->logits, (int)C, (int)K, tk);
        for (int64_t k = 0; k < K; k++) ts[k] = tk[k] >= 0 ? sh->logits[tk[k]] : NAN;
        sh->label_sim[i] = sh->logits[label];
        cosines(v, Wn, C, D, sh->logits);
        classify_topk(sh->logits, (int)C, 1, sh->neg_top1 + i);
        sh->neg_label[i] = sh->logits[label];
    }
}

static int phase_predict(Eval *e, ClsHandles *h) {
    const ClassifySet *s = e->cls;
    const int64_t C = s->n_classes, D = e->shape.dim, K = top_k(s);
    ShardPlan plan;
    plan_init(&plan, s->n_images, e->shape.image_shard, e->nranks);
    uint8_t *done = callocCheck((size_t)plan.n_shards + 1, 1);
    float *W = mallocCheck(sizeof(float) * (size_t)(C * D)), *Wn = mallocCheck(sizeof(float) * (size_t)(C * D));
    int rc = eval_agree(rw(e, h, CL_PROG_IMAGE, 0, 0, plan.n_shards, done));
    if (rc == CN_OK) { // every rank reads the whole classifier (C x D: 2 MB for ImageNet at D = 512)
        int r2 = rw(e, h, CL_W, 0, 0, C, W);
        rc = eval_agree(eval_keep_first(r2, rw(e, h, CL_W_NEG, 0, 0, C, Wn)));
    }
    const int64_t S = plan.shard_size;
    ClsShard sh = {.emb = mallocCheck(sizeof(float) * (size_t)(S * D)), .status = mallocCheck((size_t)S),
                   .topk = mallocCheck(sizeof(int32_t) * (size_t)(S * K)), .n_max = mallocCheck(sizeof(int32_t) * (size_t)S),
                   .neg_top1 = mallocCheck(sizeof(int32_t) * (size_t)S),
                   .topk_sim = mallocCheck(sizeof(float) * (size_t)(S * K)), .label_sim = mallocCheck(sizeof(float) * (size_t)S),
                   .neg_label = mallocCheck(sizeof(float) * (size_t)S), .logits = mallocCheck(sizeof(float) * (size_t)C)};
    if (rc == CN_OK) progress_begin(&e->prog, "classify", plan.n_items, plan_rows_done(&plan, done));
    for (int64_t r = 0; r < plan.n_rounds && rc == CN_OK; r++) {
        if (plan_round_done(&plan, r, done)) continue;
        if ((rc = eval_round_begin(e, "classify", r))) break;
        int64_t sidx = plan_shard(&plan, r, e->rank), i1 = 0;
        if (sidx >= 0 && done[sidx]) sidx = -1;
        plan_shard_rows(&plan, sidx, &sh.i0, &i1);
        sh.n = i1 - sh.i0;
        if ((rc = eval_agree(h5out_read_rows(&e->out, DS_EMB_IMAGE, sh.i0, sh.n, sh.emb)))) break;
        classify_shard(e, W, Wn, &sh);
        int w = rw(e, h, CL_STATUS, 1, sh.i0, sh.n, sh.status);
        w = eval_keep_first(w, rw(e, h, CL_TOPK, 1, sh.i0, sh.n, sh.topk));
        w = eval_keep_first(w, rw(e, h, CL_TOPK_SIM, 1, sh.i0, sh.n, sh.topk_sim));
        w = eval_keep_first(w, rw(e, h, CL_LABEL_SIM, 1, sh.i0, sh.n, sh.label_sim));
        w = eval_keep_first(w, rw(e, h, CL_N_MAX, 1, sh.i0, sh.n, sh.n_max));
        w = eval_keep_first(w, rw(e, h, CL_NEG_TOP1, 1, sh.i0, sh.n, sh.neg_top1));
        w = eval_keep_first(w, rw(e, h, CL_NEG_LABEL, 1, sh.i0, sh.n, sh.neg_label));
        w = eval_keep_first(w, h5out_flush(&e->out));
        if ((rc = eval_agree(w))) break;
        rc = mark_round(e, h, CL_PROG_IMAGE, &plan, r, sidx, done);
    }
    if (rc == CN_OK) progress_end(&e->prog);
    free(sh.emb), free(sh.status), free(sh.topk), free(sh.n_max), free(sh.neg_top1), free(sh.topk_sim);
    free(sh.label_sim), free(sh.neg_label), free(sh.logits);
    free(W), free(Wn), free(done);
    return rc;
}

int eval_classify(Eval *e) {
    ClsHandles h;
    int rc = eval_agree(open_handles(e, &h));
    if (rc == CN_OK) rc = phase_classes(e, &h);
    if (rc == CN_OK) rc = phase_predict(e, &h);
    close_handles(&h); // before the file is closed (parallel HDF5 refuses to close with open objects)
    return rc;
}

static void hash_strings(Sha256 *h, const char *tag, char *const *v, int n) {
    sha256_update(h, tag, strlen(tag) + 1);
    for (int i = 0; i < n; i++) sha256_update(h, v[i], strlen(v[i]) + 1); // NUL-separated: no ambiguity
}

void eval_classify_hash(const Eval *e, Sha256 *h) {
    const ClassifySet *s = e->cls;
    hash_strings(h, "classnames", s->classnames, s->n_classes);
    hash_strings(h, "templates", s->templates, s->n_templates);
    hash_strings(h, "negated_templates", s->neg_templates, s->n_neg_templates);
    hash_strings(h, "images", s->images, s->n_images);
    sha256_update(h, s->labels, sizeof(int32_t) * (size_t)s->n_images);
}

// `[dataset] format = classification` (eval.c's dataset step): the labelled images, classes and
// templates, and the dataset they induce. e->cls stays allocated (maybe empty) for eval_free.
int eval_classify_load(Eval *e) {
    const JobConfig *j = &e->job;
    e->cls = callocCheck(1, sizeof(ClassifySet));
    ClassifyFiles f = {.path = j->dataset_path, .images_dir = j->images_dir, .classnames = j->classnames,
                       .templates = j->templates, .neg_templates = j->negated_templates, .max_images = j->max_images};
    int rc = classify_load(e->cls, &f);
    if (rc == CN_OK) rc = classify_to_dataset(e->cls, &e->ds);
    if (rc == CN_OK) {
        const ClassifySet *s = e->cls;
        cn_log("classification: %d images (%s %s), %d classes x %d templates + %d negated templates; %lld classes per shard",
               s->n_images, s->is_csv ? "CSV" : "ImageFolder", s->source, s->n_classes, s->n_templates,
               s->n_neg_templates, (long long)class_shard(e));
    }
    return rc;
}
