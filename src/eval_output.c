// eval_output.c — the output file before the phases run: probe that it can be written (before the
// model is even loaded), then on rank 0 either create it (every dataset at its final size, the
// strings known up front) or check that an existing partial file belongs to this very job and
// model, and hand the finished-shard flags to every rank.
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clipneg/common.h"
#include "eval_internal.h"

enum { OUT_NEW = 0, OUT_RESUME = 1, OUT_COMPLETE = 2 };

// Rank 0, before the slow setup steps: can the output be created (or, if it exists, read and written)?
int eval_output_probe(const char *path) {
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return cn_fail(CN_E_IO, "output %s is a folder", path);
        if (access(path, R_OK | W_OK) != 0)
            return cn_fail(CN_E_IO, "output %s exists but cannot be read and written: %s", path, strerror(errno));
        return CN_OK;
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.creating", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return cn_fail(CN_E_IO, "cannot create output %s: %s", path, strerror(errno));
    close(fd);
    unlink(tmp);
    return CN_OK;
}

// ---- creation --------------------------------------------------------------------------------------
enum { CAPTION_BLOCK = 512 }; // captions written per step (their texts are held only that long)

static int write_static(Eval *e, H5Creating *c) {
    const Dataset *ds = &e->ds;
    const int64_t NI = ds->n_images, NC = ds->n_captions, V = e->vs.n;
    int rc;
    // images
    const int64_t rows = CN_MAX(CN_MAX(NI, (int64_t)CAPTION_BLOCK), V);
    int64_t *ids = mallocCheck((size_t)(rows + 1) * sizeof(int64_t));
    int32_t *i32a = mallocCheck((size_t)(rows + 1) * sizeof(int32_t));
    int32_t *i32b = mallocCheck((size_t)(NI + 1) * sizeof(int32_t));
    const char **strs = mallocCheck((size_t)(rows + 1) * sizeof(char *));
    for (int64_t i = 0; i < NI; i++) {
        ids[i] = ds->images[i].id;
        i32a[i] = ds->images[i].first_caption;
        i32b[i] = ds->images[i].n_captions;
        strs[i] = ds->images[i].file_name;
    }
    if ((rc = h5c_write_rows(c, DS_IMG_ID, 0, NI, ids)) || (rc = h5c_write_rows(c, DS_IMG_FIRST_CAP, 0, NI, i32a)) ||
        (rc = h5c_write_rows(c, DS_IMG_N_CAP, 0, NI, i32b)) || (rc = h5c_write_strings(c, DS_IMG_FILE, 0, NI, strs)))
        goto done;
    for (int64_t i = 0; i < NI; i++) strs[i] = ""; // explicit "" (not a NULL string) until an error is known
    if ((rc = h5c_write_strings(c, DS_IMG_ERROR, 0, NI, strs))) goto done;
    // captions, in blocks (a streamed dataset reads their texts from the file as they are written)
    for (int64_t k0 = 0; k0 < NC && !rc; k0 += CAPTION_BLOCK) {
        int64_t n = CN_MIN((int64_t)CAPTION_BLOCK, NC - k0);
        for (int64_t k = 0; k < n; k++) {
            ids[k] = dataset_caption_id(ds, (int)(k0 + k));
            i32a[k] = dataset_caption_image(ds, (int)(k0 + k));
        }
        if ((rc = h5c_write_rows(c, DS_CAP_ID, k0, n, ids)) || (rc = h5c_write_rows(c, DS_CAP_IMAGE, k0, n, i32a))) break;
        for (int64_t k = 0; k < n; k++) strs[k] = strdupCheck(dataset_caption(ds, (int)(k0 + k))->text);
        rc = h5c_write_strings(c, DS_CAP_TEXT, k0, n, strs);
        for (int64_t k = 0; k < n; k++) free((char *)strs[k]);
    }
    if (rc) goto done;
    // variants
    int8_t *pol = mallocCheck((size_t)V + 1);
    for (int64_t v = 0; v < V; v++) pol[v] = (int8_t)e->vs.items[v].polarity;
    for (int64_t v = 0; v < V; v++) strs[v] = e->vs.items[v].name;
    rc = h5c_write_strings(c, DS_VAR_NAME, 0, V, strs);
    for (int64_t v = 0; v < V; v++) strs[v] = e->vs.items[v].template_text;
    if (!rc) rc = h5c_write_strings(c, DS_VAR_TEMPLATE, 0, V, strs);
    if (!rc) rc = h5c_write_rows(c, DS_VAR_POLARITY, 0, V, pol);
    free(pol);
done:
    free(ids);
    free(i32a);
    free(i32b);
    free(strs);
    return rc;
}

// /texts/text: every rendered string, in chunks of one text shard (bounded memory). These are the
// same deterministic variant_render calls the text phase makes; "" where a text is not rendered.
static int write_texts(Eval *e, H5Creating *c) {
    const int64_t N = e->shape.n_text, S = e->shape.text_shard, V = e->vs.n;
    char **texts = callocCheck((size_t)S, sizeof(char *));
    int rc = CN_OK;
    for (int64_t t0 = 0; t0 < N && rc == CN_OK; t0 += S) {
        int64_t n = CN_MIN(S, N - t0);
        for (int64_t i = 0; i < n; i++) {
            int64_t t = t0 + i;
            char *s = NULL;
            if (variant_render(&e->vs.items[t % V], &e->ds, (int)(t / V), e->job.seed, &s) != TEXT_OK || !s) {
                free(s);
                s = strdupCheck("");
            }
            texts[i] = s;
        }
        rc = h5c_write_strings(c, DS_TXT_TEXT, t0, n, (const char *const *)texts);
        for (int64_t i = 0; i < n; i++) free(texts[i]);
    }
    free(texts);
    return rc;
}

// What the dataset reader dropped, repaired or flagged (printed at the start of the run), kept as
// root attributes so that a file says it too (`clipneg info` shows them; docs/datasets.md).
static int write_dataset_counts(const Dataset *ds, H5Creating *c) {
    const struct {
        const char *name;
        int value;
    } counts[] = {{"dataset_duplicate_ids", ds->n_duplicate_ids},
                  {"dataset_captions_without_image", ds->n_captions_without_image},
                  {"dataset_invalid_utf8", ds->n_invalid_utf8},
                  {"dataset_empty_captions", ds->n_empty_captions},
                  {"dataset_images_without_captions", ds->n_images_without_captions},
                  {"dataset_dropped_by_max_images", ds->n_dropped_by_max_images}};
    int rc = CN_OK;
    for (size_t i = 0; i < sizeof counts / sizeof counts[0] && !rc; i++)
        rc = h5_attr_write_int(c->fid, counts[i].name, counts[i].value);
    return rc;
}

static int create_output(Eval *e) {
    char now[32];
    utc_now_iso(now);
    char arch[512];
    clip_config_describe(&e->model.cfg, arch, sizeof arch);
    H5Provenance pv = {.job_text = e->job_text_full,
                       .job_sha256 = e->job_sha256,
                       .variants_text = e->variants_text,
                       .model_path = e->job.model_path,
                       .model_arch = arch,
                       .model_sha256 = e->model_sha256,
                       .random_weights = e->random_weights,
                       .backend = e->be->name,
                       .base_variant = e->job.base_variant,
                       .precision = precision_name(e->be->precision),
                       .ranks = e->nranks,
                       .threads = e->threads,
                       .start_time = now};
    H5Creating c;
    int rc = h5out_create_begin(&c, e->out_path, &e->shape, &pv);
    if (!rc) rc = write_dataset_counts(&e->ds, &c);
    if (!rc) rc = write_static(e, &c);
    if (!rc) rc = write_texts(e, &c);
    if (!rc && e->items) rc = eval_items_create(e, &c); // items hook: /items (docs/items.md)
    if (!rc && e->cls) rc = eval_classify_create(e, &c); // classification hook: /classify
    if (!rc) rc = h5out_create_commit(&c);
    if (rc) h5out_create_abort(&c);
    return rc;
}

// ---- resume check ------------------------------------------------------------------------------------
static void short_hash(const char *h, char *out, size_t n) {
    snprintf(out, n, "%.12s%s", h ? h : "?", h && strlen(h) > 12 ? "..." : "");
}

// What differs between the file and this run, as one readable list ("" when nothing).
static void describe_mismatch(const Eval *e, const H5Existing *ex, char *msg, size_t n) {
    msg[0] = '\0';
    size_t len = 0;
#define ADD(...) \
    do { \
        if (len < n) len += (size_t)snprintf(msg + len, n - len, __VA_ARGS__); \
    } while (0)
    char a[32], b[32];
    if (ex->version != H5OUT_FORMAT_VERSION)
        ADD("; format_version differs (file %d, this clipneg writes %d)", ex->version, H5OUT_FORMAT_VERSION);
    if (strcmp(ex->job_sha256, e->job_sha256) != 0) {
        short_hash(ex->job_sha256, a, sizeof a);
        short_hash(e->job_sha256, b, sizeof b);
        ADD("; job_sha256 differs (file %s, this run %s: the job file, its --set overrides or the variants file "
            "changed%s)",
            a, b, e->cls ? ", or the class names, templates or labelled images" : "");
    }
    if (strcmp(ex->model_sha256, e->model_sha256) != 0)
        ADD("; model_sha256 differs (file '%s', this run '%s')", ex->model_sha256, e->model_sha256);
    const H5Shape *f = &ex->shape, *r = &e->shape;
#define SAME(field, label) \
    if (f->field != r->field) \
    ADD("; %s differs (file %lld, this run %lld)", label, (long long)f->field, (long long)r->field)
    SAME(n_img, "image count");
    SAME(n_cap, "caption count");
    SAME(n_var, "variant count");
    SAME(dim, "embedding size");
    SAME(text_shard, "run.text_shard");
    SAME(image_shard, "run.image_shard");
    SAME(store_embeddings, "output.embeddings");
    SAME(full_similarity, "output.full_similarity");
    if (f->full_similarity && r->full_similarity) SAME(full_f16, "output.full_dtype (1 = float16)");
#undef SAME
    // precision = auto resolves per machine: a file begun in fp16 on a GPU must not be finished in
    // fp32 on a CPU (or the other way round), which the job hash alone cannot see
    char *prec = NULL;
    hid_t fid = H5Fopen(e->out_path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (fid >= 0 && h5_attr_read_str(fid, "precision", &prec) == CN_OK && strcmp(prec, precision_name(e->be->precision)))
        ADD("; precision differs (file %s, this run %s: [run] precision = auto picks fp16 on a GPU, fp32 on the CPU)",
            prec, precision_name(e->be->precision));
    free(prec);
    if (fid >= 0) H5Fclose(fid);
#undef ADD
}

// Rank 0: decide NEW / RESUME / COMPLETE, creating or checking the file. Fills e->*_done on RESUME.
static int prepare_rank0(Eval *e, int *state) {
    struct stat st;
    char scratch[4200];
    h5out_scratch_path(e->out_path, scratch, sizeof scratch);
    int exists = stat(e->out_path, &st) == 0;
    if (exists && !e->opt.fresh) {
        H5Existing ex;
        int rc = h5out_inspect(e->out_path, &ex);
        if (rc) {
            h5out_existing_free(&ex);
            return rc;
        }
        char diff[2048];
        describe_mismatch(e, &ex, diff, sizeof diff);
        if (diff[0]) {
            h5out_existing_free(&ex);
            return cn_fail(CN_E_RESUME,
                           "%s belongs to another run, refusing to resume it: %s. Use --fresh to "
                           "overwrite it, or choose another --output",
                           e->out_path, diff + 2);
        }
        if (ex.complete) {
            h5out_existing_free(&ex);
            *state = OUT_COMPLETE;
            return CN_OK;
        }
        if (!e->shape.store_embeddings && access(scratch, R_OK | W_OK) != 0) {
            h5out_existing_free(&ex);
            return cn_fail(CN_E_RESUME,
                           "%s is partial but its embeddings scratch file %s is missing; re-run with "
                           "--fresh",
                           e->out_path, scratch);
        }
        memcpy(e->text_done, ex.text_done, (size_t)e->text_plan.n_shards);
        memcpy(e->image_done, ex.image_done, (size_t)e->image_plan.n_shards);
        memcpy(e->sim_done, ex.sim_done, (size_t)e->image_plan.n_shards);
        h5out_existing_free(&ex);
        *state = OUT_RESUME;
        return CN_OK;
    }
    if (exists) cn_log("--fresh: overwriting %s", e->out_path);
    unlink(scratch); // a stale scratch file of an earlier run is never reused
    *state = OUT_NEW;
    return create_output(e);
}

static long long count_done(const uint8_t *done, int64_t n) {
    long long k = 0;
    for (int64_t i = 0; i < n; i++) k += done[i] != 0;
    return k;
}

int eval_output_prepare(Eval *e, int *complete) {
    int state = OUT_NEW, rc = CN_OK;
    if (e->rank == 0) rc = prepare_rank0(e, &state);
    rc = eval_agree(rc);
    if (rc) return rc;
    MPI_Bcast(&state, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Bcast(e->text_done, (int)e->text_plan.n_shards, MPI_UINT8_T, 0, MPI_COMM_WORLD);
    MPI_Bcast(e->image_done, (int)e->image_plan.n_shards, MPI_UINT8_T, 0, MPI_COMM_WORLD);
    MPI_Bcast(e->sim_done, (int)e->image_plan.n_shards, MPI_UINT8_T, 0, MPI_COMM_WORLD);
    *complete = state == OUT_COMPLETE;
    if (state == OUT_NEW) cn_log("output: %s (new)", e->out_path);
    if (state == OUT_RESUME)
        cn_log("output: %s (resuming: text shards %lld/%lld, image shards %lld/%lld, similarity shards %lld/%lld done)",
               e->out_path, count_done(e->text_done, e->text_plan.n_shards), (long long)e->text_plan.n_shards,
               count_done(e->image_done, e->image_plan.n_shards), (long long)e->image_plan.n_shards,
               count_done(e->sim_done, e->image_plan.n_shards), (long long)e->image_plan.n_shards);
    return CN_OK;
}
