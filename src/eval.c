// eval.c — `clipneg eval`: setup on every rank, provenance, the run summary, then the three phases
// over the output file (see src/eval_internal.h for the map of the eval_*.c files).
//
// Setup is checked step by step across ranks (eval_agree after each step), so a bad job file, a
// missing model or a rank without a GPU stops every rank before any work, with the message of the
// lowest failing rank, and no output file is created or touched.
#define _POSIX_C_SOURCE 200809L
#include "eval_internal.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clipneg/common.h"
#include "clipneg/ops.h"
#include "clipneg/sha256.h"
#include "dataset_bench_internal.h"
#include "h5_internal.h"

// ---- random test models ----------------------------------------------------------------------------
// A random-initialised model is marked by any of: a file RANDOM_WEIGHTS in its folder, the key
// "clipneg_random_weights": true (or "1") in its config JSON, or the same key in the safetensors
// __metadata__. Such a run is flagged loudly and in the file's `random_weights` attribute.
static int text_has_marker(const char *text) {
    const char *key = "clipneg_random_weights";
    for (const char *p = strstr(text, key); p; p = strstr(p + 1, key)) {
        const char *q = p + strlen(key);
        while (*q == '"' || *q == ' ' || *q == '\t') q++;
        if (*q != ':') continue;
        q++;
        while (*q == '"' || *q == ' ' || *q == '\t') q++;
        if (!strncmp(q, "true", 4) || *q == '1') return 1;
    }
    return 0;
}

static int safetensors_header_has_marker(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return 0;
    uint8_t len8[8];
    int found = 0;
    if (fread(len8, 1, 8, fp) == 8) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = n << 8 | len8[i];
        if (n > 0 && n < (100u << 20)) { // the loader validates the header; here we only peek
            char *h = mallocCheck((size_t)n + 1);
            if (fread(h, 1, (size_t)n, fp) == n) {
                h[n] = '\0';
                found = text_has_marker(h);
            }
            free(h);
        }
    }
    fclose(fp);
    return found;
}

static int detect_random_weights(const ClipModel *m) {
    char marker[4200];
    struct stat st;
    snprintf(marker, sizeof marker, "%s/RANDOM_WEIGHTS", m->model_dir[0] ? m->model_dir : ".");
    if (stat(marker, &st) == 0) return 1;
    if (m->config_path[0]) {
        char *text = NULL;
        if (cn_read_file(m->config_path, &text, NULL) == CN_OK && text_has_marker(text)) {
            free(text);
            return 1;
        }
        free(text);
    }
    // PyTorch files carry no header metadata to look in (m->source names the container).
    return !strcmp(m->source, "safetensors") && safetensors_header_has_marker(m->weights_path);
}

// "weights-file=sha256\nconfig-file=sha256" (rank 0 hashes, every rank receives it).
static int model_hash(Eval *e) {
    int rc = CN_OK;
    char buf[1024] = "";
    if (e->rank == 0) {
        const char *files[2] = {e->model.weights_path, e->model.config_path};
        size_t len = 0;
        for (int i = 0; i < 2 && rc == CN_OK; i++) {
            if (!files[i][0]) continue;
            char hex[65];
            if ((rc = sha256_file_hex(files[i], hex))) break;
            const char *base = strrchr(files[i], '/');
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s=%s", len ? "\n" : "", base ? base + 1 : files[i],
                                    hex);
        }
    }
    if ((rc = eval_agree(rc))) return rc;
    MPI_Bcast(buf, sizeof buf, MPI_CHAR, 0, MPI_COMM_WORLD);
    e->model_sha256 = strdupCheck(buf);
    return CN_OK;
}

// ---- setup -----------------------------------------------------------------------------------------
static int load_inputs(Eval *e) {
    const EvalOptions *opt = &e->opt;
    int local_rank = backend_local_rank(); // collective when no launcher variable is set: every rank, first
    int rc = job_load(&e->job, opt->job_path, opt->overrides);
    e->have_job = rc == CN_OK;
    if ((rc = eval_agree(rc))) return rc;
    const char *out = opt->output ? opt->output : e->job.output_path;
    if (!out || !out[0])
        rc = cn_fail(CN_E_CONFIG, "%s: no output file: set [output] path in the job or pass --output PATH",
                     opt->job_path);
    else
        snprintf(e->out_path, sizeof e->out_path, "%s", out);
    if (rc == CN_OK && e->rank == 0) rc = eval_output_probe(e->out_path);
    if (rc == CN_OK) rc = h5_compression_check(e->job.compression); // before any work
    if (rc == CN_OK && e->rank == 0) rc = eval_lock_take(e->out_path, &e->lock_fd);
    if ((rc = eval_agree(rc))) return rc;

    const JobConfig *j = &e->job;
    if (j->dataset_kind == DATASET_COCO)
        rc = dataset_open_coco(&e->ds, j->captions_json, j->images_dir, j->instances_json, j->max_images);
    else if (j->dataset_kind == DATASET_ITEMS || items_format_is_bench(j->dataset_kind)) // items hook
        rc = eval_items_load(e); // the item manifest or benchmark file, and the dataset it induces
    else if (j->dataset_kind == DATASET_NEGBENCH_RETRIEVAL) // a published CSV as the main dataset
        rc = bench_load_negbench_retrieval(&e->ds, j);
    else if (j->dataset_kind == DATASET_CLASSIFY) // classification hook: labelled images, classes, templates
        rc = eval_classify_load(e);
    else
        rc = dataset_open_jsonl(&e->ds, j->manifest, j->images_dir, j->max_images);
    e->have_ds = rc == CN_OK;
    if (rc == CN_OK && (e->ds.n_images == 0 || e->ds.n_captions == 0))
        rc =
            cn_fail(CN_E_DATA, "%s: the dataset has %d images and %d captions: nothing to evaluate",
                    j->dataset_kind == DATASET_COCO ? j->captions_json : j->dataset_path ? j->dataset_path : j->manifest,
                    e->ds.n_images, e->ds.n_captions);
    if ((rc = eval_agree(rc))) return rc;

    rc = variants_load(&e->vs, j->variants_file);
    e->have_vs = rc == CN_OK;
    if (rc == CN_OK && e->vs.n == 0) rc = cn_fail(CN_E_CONFIG, "%s: no variants", j->variants_file);
    if (rc == CN_OK) rc = cn_read_file(j->variants_file, &e->variants_text, NULL);
    if ((rc = eval_agree(rc))) return rc;

    ClipLoadOptions lo = {.force_quick_gelu = j->quick_gelu, .state_key = j->state_key, .strip_prefix = j->strip_prefix};
    rc = clip_model_load(&e->model, j->model_path, &lo);
    e->have_model = rc == CN_OK;
    if ((rc = eval_agree(rc))) return rc;
    rc = tokenizer_load_auto(&e->tok, j->tokenizer_path, e->model.model_dir);
    if ((rc = eval_agree(rc))) return rc;
    rc = backend_create(&e->be, j->backend, j->precision, &e->model, local_rank);
    if ((rc = eval_agree(rc))) return rc;
    ops_set_threads(j->threads);
    e->threads = ops_threads();

    // provenance: the job text already carries the --set overrides as comments (config.c)
    e->job_text_full = strdupCheck(j->job_text ? j->job_text : "");
    Sha256 h;
    uint8_t d[32];
    sha256_init(&h);
    sha256_update(&h, e->job_text_full, strlen(e->job_text_full));
    sha256_update(&h, "\n", 1);
    sha256_update(&h, e->variants_text, strlen(e->variants_text));
    if (e->cls) eval_classify_hash(e, &h); // classification hook: classes, templates, labelled images
    sha256_final(&h, d);
    sha256_hex(d, e->job_sha256);
    e->random_weights = detect_random_weights(&e->model);
    return model_hash(e);
}

static void print_summary(const Eval *e) {
    if (e->rank != 0) return;
    const Dataset *ds = &e->ds;
    char arch[512];
    clip_config_describe(&e->model.cfg, arch, sizeof arch);
    cn_log("clipneg %s (%s) eval %s", CLIPNEG_VERSION, CLIPNEG_GIT_COMMIT, e->opt.job_path);
    cn_log("run: %d ranks x %d threads, %d decode threads per rank, backend %s (%s)", e->nranks, e->threads,
           e->job.decode_threads, e->be->name, precision_name(e->be->precision));
    cn_log("dataset: %d images (%d without captions, kept), %d captions; dropped: %d captions without image, "
           "%d duplicate ids; %d empty captions (flagged per text)",
           ds->n_images, ds->n_images_without_captions, ds->n_captions, ds->n_captions_without_image,
           ds->n_duplicate_ids, ds->n_empty_captions);
    cn_log("variants: %d from %s -> %lld texts; text shards %lld x %d, image shards %lld x %d", e->vs.n, e->vs.path,
           (long long)e->shape.n_text, (long long)e->text_plan.n_shards, e->job.text_shard,
           (long long)e->image_plan.n_shards, e->job.image_shard);
    cn_log("model: %s (D=%d) from %s", arch, e->model.cfg.embed_dim, e->job.model_path);
    if (e->shape.full_similarity)
        cn_log("full similarity: %lld x %lld %s (%.1f MB), tiles of %d texts", (long long)e->shape.n_img,
               (long long)e->shape.n_text, e->shape.full_f16 ? "float16" : "float32",
               (double)e->shape.n_img * e->shape.n_text * (e->shape.full_f16 ? 2 : 4) / 1e6, e->job.tile_texts);
    if (e->random_weights) {
        fprintf(stderr,
                "[clipneg] ##################################################################\n"
                "[clipneg] ## WARNING: %s holds RANDOM TEST WEIGHTS\n"
                "[clipneg] ## (marker: RANDOM_WEIGHTS / clipneg_random_weights). Every number of this\n"
                "[clipneg] ## run is meaningless; the file gets the attribute random_weights = 1.\n"
                "[clipneg] ##################################################################\n",
                e->job.model_path);
    }
}

static void eval_free(Eval *e) {
    if (e->be) backend_destroy(e->be);
    if (e->tok) tokenizer_free(e->tok);
    if (e->have_model) clip_model_free(&e->model);
    if (e->have_vs) variants_free(&e->vs);
    if (e->have_ds) dataset_free(&e->ds);
    if (e->have_job) job_free(&e->job);
    if (e->items) items_free(e->items); // items hook
    free(e->items);
    if (e->cls) classify_free(e->cls); // classification hook
    free(e->cls);
    free(e->job_text_full);
    free(e->variants_text);
    free(e->model_sha256);
    free(e->text_done);
    free(e->image_done);
    free(e->sim_done);
    eval_lock_release(e->out_path, e->lock_fd);
}

// What failed, in numbers, from the finished file (so a resumed run counts the earlier runs' too).
static void print_failures(const Eval *e) {
    hid_t fid = H5Fopen(e->out_path, H5F_ACC_RDONLY, H5P_DEFAULT);
    char img[256], txt[256];
    if (fid >= 0 && h5_status_lines(fid, e->shape.n_img, e->shape.n_text, img, txt, sizeof img) == CN_OK) {
        cn_log("%s", img);
        cn_log("%s", txt);
    }
    if (fid >= 0) H5Fclose(fid);
}

// ---- the run -----------------------------------------------------------------------------------------
static int run_phases(Eval *e) {
    int rc = eval_agree(h5out_open(&e->out, e->out_path, &e->shape, MPI_COMM_WORLD));
    if (rc) return rc;
    double t0 = cn_now();
    rc = eval_texts(e);
    if (rc == CN_OK) rc = eval_images(e);
    if (rc == CN_OK) rc = eval_similarity(e);
    if (rc == CN_OK && e->items) rc = eval_items(e); // items hook: the item phase (docs/items.md)
    if (rc == CN_OK && e->cls) rc = eval_classify(e); // classification hook (docs/classification.md)
    if (rc != CN_OK) {
        // every rank left at the same round (eval_agree), so the collective close is safe
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", cn_last_error());
        h5out_close(&e->out);
        return cn_fail(rc, "%s", msg);
    }
    double tf = cn_now();
    if ((rc = h5out_finish(&e->out, e->nranks, e->threads, e->be->name, precision_name(e->be->precision)))) return rc;
    eval_stage_add(e, STAGE_IO, tf);
    cn_log("done: %s complete in %.1f s", e->out_path, cn_now() - t0);
    eval_stages_report(e, cn_now() - t0);
    if (e->rank == 0) print_failures(e);
    return CN_OK;
}

int eval_run(const EvalOptions *opt) {
    Eval *e = callocCheck(1, sizeof *e);
    e->opt = *opt;
    e->rank = cn_rank();
    e->nranks = cn_nranks();
    e->lock_fd = -1;
    eval_signals_install();
    eval_test_hooks_read(e);
    h5_limit_free_lists();
    int rc = load_inputs(e);
    if (rc == CN_OK) {
        H5Shape *sh = &e->shape;
        sh->n_img = e->ds.n_images;
        sh->n_cap = e->ds.n_captions;
        sh->n_var = e->vs.n;
        sh->n_text = sh->n_cap * sh->n_var;
        sh->dim = e->model.cfg.embed_dim;
        sh->text_shard = e->job.text_shard;
        sh->image_shard = e->job.image_shard;
        sh->store_embeddings = e->job.store_embeddings;
        sh->full_similarity = e->job.full_similarity;
        sh->full_f16 = e->job.full_dtype_f16;
        sh->compression = e->job.compression;
        sh->tile_texts = e->job.tile_texts;
        plan_init(&e->text_plan, sh->n_text, sh->text_shard, e->nranks);
        plan_init(&e->image_plan, sh->n_img, sh->image_shard, e->nranks);
        e->text_done = callocCheck((size_t)e->text_plan.n_shards + 1, 1);
        e->image_done = callocCheck((size_t)e->image_plan.n_shards + 1, 1);
        e->sim_done = callocCheck((size_t)e->image_plan.n_shards + 1, 1);
        print_summary(e);
        int complete = 0;
        rc = eval_output_prepare(e, &complete);
        if (rc == CN_OK && complete)
            cn_log("%s is already complete: nothing to do (use --fresh to recompute it)", e->out_path);
        else if (rc == CN_OK)
            rc = run_phases(e);
    }
    eval_free(e);
    free(e);
    return rc;
}
