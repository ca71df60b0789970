// cmd_info.c — `clipneg info OUT.h5`: is the evaluation complete, which shards are done per phase,
// what failed (counts by status, the first few errors) and the provenance attributes.
// Exit status: 0 complete, 1 incomplete (a partial run: re-run `clipneg eval` to resume),
// 6 unreadable or not a clipneg eval file, 2 usage. Serial HDF5: no MPI needed.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/classify.h"
#include "clipneg/commands.h"
#include "clipneg/common.h"
#include "clipneg/h5out.h"

enum { INFO_INCOMPLETE = 1, MAX_ERRORS_SHOWN = 5 };

static void print_attr(hid_t fid, const char *name) {
    char *s = NULL;
    int64_t v;
    if (h5_attr_read_str(fid, name, &s) == CN_OK) {
        // multi-line values (job text, hashes) are indented under their name
        printf("  %-16s ", name);
        for (const char *p = s; *p; p++) {
            putchar(*p);
            if (*p == '\n' && p[1]) printf("  %-16s ", "");
        }
        if (!s[0] || s[strlen(s) - 1] != '\n') putchar('\n');
    } else if (h5_attr_read_int(fid, name, &v) == CN_OK) {
        printf("  %-16s %lld\n", name, (long long)v);
    } else {
        printf("  %-16s (missing)\n", name);
    }
    free(s);
}

// One row of a variable-length string dataset (malloc'ed, "" on failure).
static char *read_str_row(hid_t fid, const char *dset, int64_t row) {
    char *out = NULL, *v = NULL;
    hid_t d = H5Dopen2(fid, dset, H5P_DEFAULT);
    if (d >= 0) {
        hid_t fs = H5Dget_space(d), t = h5_str_type();
        hsize_t start = (hsize_t)row, one = 1;
        hid_t ms = H5Screate_simple(1, &one, NULL);
        if (H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &one, NULL) >= 0 &&
            H5Dread(d, t, ms, fs, H5P_DEFAULT, &v) >= 0) {
            out = strdupCheck(v ? v : "");
            H5Dvlen_reclaim(t, ms, H5P_DEFAULT, &v);
        }
        H5Sclose(ms);
        H5Tclose(t);
        H5Sclose(fs);
        H5Dclose(d);
    }
    return out ? out : strdupCheck("");
}

static int64_t count_flags(const uint8_t *f, int64_t n) {
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) k += f[i] != 0;
    return k;
}

// Item benchmarks (docs/items.md, docs/benchmarks.md): their shards and item statuses.
static void info_items(hid_t fid) {
    if (H5Lexists(fid, "/items", H5P_DEFAULT) <= 0 || H5Lexists(fid, "/progress/item_shards", H5P_DEFAULT) <= 0) return;
    hid_t d1 = H5Dopen2(fid, "/items/status", H5P_DEFAULT), d2 = H5Dopen2(fid, "/progress/item_shards", H5P_DEFAULT);
    hsize_t n = 0, ns = 0;
    if (d1 >= 0 && d2 >= 0) {
        hid_t s1 = H5Dget_space(d1), s2 = H5Dget_space(d2);
        H5Sget_simple_extent_dims(s1, &n, NULL);
        H5Sget_simple_extent_dims(s2, &ns, NULL);
        H5Sclose(s1), H5Sclose(s2);
    }
    if (d1 >= 0) H5Dclose(d1);
    if (d2 >= 0) H5Dclose(d2);
    int8_t *st = mallocCheck((size_t)n + 1);
    uint8_t *done = mallocCheck((size_t)ns + 1);
    int64_t count[4] = {0, 0, 0, 0};
    if (h5_read_all(fid, "/items/status", H5K_I8, st, (int64_t)n) == CN_OK &&
        h5_read_all(fid, "/progress/item_shards", H5K_U8, done, (int64_t)ns) == CN_OK) {
        for (hsize_t i = 0; i < n; i++) count[st[i] >= 0 && st[i] < 4 ? st[i] : 0]++;
        char *format = NULL, *rule = NULL;
        hid_t g = H5Gopen2(fid, "/items", H5P_DEFAULT);
        if (g >= 0) {
            h5_attr_read_str(g, "format", &format);
            h5_attr_read_str(g, "tie_rule", &rule);
            H5Gclose(g);
        }
        printf("items: %lld (%s, tie rule %s), shards done %lld/%lld; %lld ok, %lld image failed, %lld box outside, "
               "%lld pending\n", (long long)n, format ? format : "items", rule ? rule : "strict",
               (long long)count_flags(done, (int64_t)ns), (long long)ns, (long long)count[1], (long long)count[2],
               (long long)count[3], (long long)count[0]);
        free(format), free(rule);
    }
    free(st), free(done);
}

// Length of the 1-D dataset `name` (-1 when absent or unreadable).
static int64_t dset_len(hid_t fid, const char *name) {
    if (H5Lexists(fid, name, H5P_DEFAULT) <= 0) return -1;
    hid_t d = H5Dopen2(fid, name, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t sp = H5Dget_space(d);
    hsize_t n = 0;
    int ok = H5Sget_simple_extent_ndims(sp) == 1 && H5Sget_simple_extent_dims(sp, &n, NULL) >= 0;
    H5Sclose(sp);
    H5Dclose(d);
    return ok ? (int64_t)n : -1;
}

// Flags set in the progress dataset `name` of length n (-1 when unreadable).
static int64_t flags_done(hid_t fid, const char *name, int64_t n) {
    uint8_t *f = mallocCheck((size_t)n + 1);
    int64_t k = h5_read_all(fid, name, H5K_U8, f, n) == CN_OK ? count_flags(f, n) : -1;
    free(f);
    return k;
}

// Zero-shot classification (docs/classification.md): the classes and classify phases' shards and
// the image statuses.
static void info_classify(hid_t fid) {
    const int64_t n = dset_len(fid, "/classify/status"), nc = dset_len(fid, "/classify/classnames");
    const int64_t ncs = dset_len(fid, "/progress/class_shards"), nis = dset_len(fid, "/progress/classify_shards");
    if (n < 0 || nc < 0 || ncs < 0 || nis < 0) return;
    int8_t *st = mallocCheck((size_t)n + 1);
    int64_t count[3] = {0, 0, 0}; // by status; unknown values count as pending
    if (h5_read_all(fid, "/classify/status", H5K_I8, st, n) == CN_OK)
        for (int64_t i = 0; i < n; i++) count[st[i] >= 0 && st[i] <= CLASSIFY_IMAGE_FAILED ? st[i] : CLASSIFY_PENDING]++;
    free(st);
    printf("classification: %lld images, %lld classes; shards done: classes %lld/%lld, classify %lld/%lld; "
           "%lld ok, %lld image failed, %lld pending\n", (long long)n, (long long)nc,
           (long long)flags_done(fid, "/progress/class_shards", ncs), (long long)ncs,
           (long long)flags_done(fid, "/progress/classify_shards", nis), (long long)nis, (long long)count[CLASSIFY_OK],
           (long long)count[CLASSIFY_IMAGE_FAILED], (long long)count[CLASSIFY_PENDING]);
}

static int info_file(const char *path) {
    H5Existing ex;
    int rc = h5out_inspect(path, &ex);
    if (rc != CN_OK) {
        fprintf(stderr, "clipneg info: %s\n", cn_last_error());
        h5out_existing_free(&ex);
        return CN_E_IO;
    }
    hid_t fid = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (fid < 0) {
        fprintf(stderr, "clipneg info: %s: cannot open\n", path);
        h5out_existing_free(&ex);
        return CN_E_IO;
    }
    const H5Shape *sh = &ex.shape;
    int64_t n_text_done = count_flags(ex.text_done, ex.n_text_shards);
    int64_t n_img_done = count_flags(ex.image_done, ex.n_image_shards);
    int64_t n_sim_done = count_flags(ex.sim_done, ex.n_image_shards);
    printf("%s: %s\n", path, ex.complete ? "COMPLETE" : "INCOMPLETE (re-run the same `clipneg eval` to resume)");
    printf("shape: %lld images, %lld captions, %lld variants, %lld texts, D = %lld\n", (long long)sh->n_img,
           (long long)sh->n_cap, (long long)sh->n_var, (long long)sh->n_text, (long long)sh->dim);
    printf("embeddings: %s; full similarity: %s\n", sh->store_embeddings ? "stored" : "not stored",
           ex.has_full ? (sh->full_f16 ? "float16" : "float32") : "not stored");
    printf("shards done: texts %lld/%lld (of %lld rows), images %lld/%lld, similarity %lld/%lld (of %lld rows)\n",
           (long long)n_text_done, (long long)ex.n_text_shards, (long long)sh->text_shard, (long long)n_img_done,
           (long long)ex.n_image_shards, (long long)n_sim_done, (long long)ex.n_image_shards,
           (long long)sh->image_shard);
    info_items(fid);
    info_classify(fid);

    // the item phase ([dataset] format = items): its own shards
    int r_items;
    hsize_t d_items[2];
    int64_t n_item_shards = h5_dataset_len(fid, "/progress/item_shards", &r_items, d_items);
    if (n_item_shards >= 0) {
        uint8_t *f = callocCheck((size_t)n_item_shards + 1, 1);
        int64_t n_items = h5_dataset_len(fid, "/items/status", &r_items, d_items);
        if (h5_read_all(fid, "/progress/item_shards", H5K_U8, f, n_item_shards) == CN_OK)
            printf("items: shards done %lld/%lld (%lld items)\n", (long long)count_flags(f, n_item_shards),
                   (long long)n_item_shards, (long long)n_items);
        free(f);
    }

    // failures by status, then the first failed images with their messages
    char img_line[256], txt_line[256];
    if (h5_status_lines(fid, sh->n_img, sh->n_text, img_line, txt_line, sizeof img_line) != CN_OK) {
        fprintf(stderr, "clipneg info: %s: %s\n", path, cn_last_error());
        rc = CN_E_IO;
    } else {
        printf("%s\n%s\n", img_line, txt_line);
        int8_t *ist = mallocCheck((size_t)sh->n_img + 1);
        h5_read_all(fid, "/images/status", H5K_I8, ist, sh->n_img);
        int64_t shown = 0, n_failed = 0;
        for (int64_t i = 0; i < sh->n_img; i++) {
            if (ist[i] < 2) continue;
            n_failed++;
            if (shown == MAX_ERRORS_SHOWN) continue;
            char *name = read_str_row(fid, "/images/file_name", i), *err = read_str_row(fid, "/images/error", i);
            printf("  image %lld (%s): status %d: %s\n", (long long)i, name, ist[i], err[0] ? err : "(no message)");
            free(name);
            free(err);
            shown++;
        }
        if (n_failed > shown) printf("  ... and %lld more failed images\n", (long long)(n_failed - shown));
        free(ist);
    }

    printf("provenance:\n");
    static const char *const ATTRS[] = {
        "format",       "format_version", "clipneg_version", "git_commit", "model_path", "model_arch",
        "model_sha256", "base_variant",   "random_weights",  "backend",    "precision",  "ranks",
        "threads",      "start_time",     "end_time",        "job_sha256", "job_text",   NULL};
    for (int i = 0; ATTRS[i]; i++) print_attr(fid, ATTRS[i]);
    // what the dataset reader dropped or repaired (files written before these attributes lack them)
    static const char *const COUNTS[] = {"dataset_duplicate_ids", "dataset_captions_without_image",
                                         "dataset_invalid_utf8", "dataset_empty_captions",
                                         "dataset_images_without_captions", "dataset_dropped_by_max_images", NULL};
    int64_t v;
    if (h5_attr_read_int(fid, COUNTS[0], &v) == CN_OK) {
        printf("dataset:\n");
        for (int i = 0; COUNTS[i]; i++) print_attr(fid, COUNTS[i]);
    }
    int64_t rw = 0;
    if (h5_attr_read_int(fid, "random_weights", &rw) == CN_OK && rw)
        printf("WARNING: the model had RANDOM TEST WEIGHTS: the numbers in this file are meaningless\n");
    H5Fclose(fid);
    int complete = ex.complete;
    h5out_existing_free(&ex);
    if (rc != CN_OK) return rc;
    return complete ? CN_OK : INFO_INCOMPLETE;
}

int cmd_info(int argc, char **argv) {
    if (argc != 2 || argv[1][0] == '-') {
        int help = argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"));
        fprintf(
            help ? stdout : stderr,
            "usage: clipneg info OUT.h5\n"
            "exit status: 0 complete, 1 incomplete (resume with clipneg eval), 6 unreadable / not a clipneg file\n");
        return help ? CN_OK : CN_E_USAGE;
    }
    return info_file(argv[1]);
}
