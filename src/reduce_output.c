// reduce_output.c — where `clipneg reduce` puts its numbers: /stats in the evaluation file
// (collective), stats.json beside it, and the Table-1-style markdown table on stdout (rank 0).
// Layout and definitions: docs/hdf5-schema.md (/stats) and docs/reduce.md.
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/reduce.h"
#include "h5_internal.h"

static const char *POLARITY_NAMES[3] = {"positive", "negative", "other"};

// ---- /stats ------------------------------------------------------------------------------------

static int write_f64(hid_t g, const char *name, const double *x, int64_t n) {
    return rio_write(g, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, &n, x);
}
static int write_i64(hid_t g, const char *name, const int64_t *x, int64_t n) {
    return rio_write(g, name, H5T_NATIVE_INT64, H5T_STD_I64LE, 1, &n, x);
}
static int write_scalar(hid_t g, const char *name, double x) {
    return rio_write(g, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 0, NULL, &x);
}

int reduce_write_h5(const char *path, const ReduceResult *r) {
    hid_t file;
    int rc = rio_open(path, 1, &file);
    if (rc) return rc;
    const int64_t V = r->V;
    hid_t st = H5I_INVALID_HID, gv = H5I_INVALID_HID, gc = H5I_INVALID_HID, gr = H5I_INVALID_HID;
    if ((rc = rio_delete(file, "/stats"))) goto done;
    st = H5Gcreate2(file, "/stats", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    gv = st < 0 ? st : H5Gcreate2(st, "variants", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    gc = st < 0 ? st : H5Gcreate2(st, "contrast", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    gr = st < 0 ? st : H5Gcreate2(st, "retrieval", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (st < 0 || gv < 0 || gc < 0 || gr < 0) {
        rc = cn_fail(CN_E_IO, "%s: cannot create the /stats groups", path);
        goto done;
    }
    const struct { const char *name; const double *x; } vd[] = {
        {"mean", r->mean}, {"std", r->std}, {"min", r->min}, {"max", r->max}, {"q05", r->q05},
        {"q25", r->q25}, {"median", r->median}, {"q75", r->q75}, {"q95", r->q95}};
    for (size_t i = 0; i < sizeof vd / sizeof vd[0] && rc == CN_OK; i++) rc = write_f64(gv, vd[i].name, vd[i].x, V);
    if (rc == CN_OK) rc = write_i64(gv, "count", r->count, V);
    int64_t hd[2] = {V, REDUCE_HIST_BINS};
    if (rc == CN_OK) rc = rio_write(gv, "hist", H5T_NATIVE_INT64, H5T_STD_I64LE, 2, hd, r->hist);
    if (rc == CN_OK) {
        hid_t h = H5Dopen2(gv, "hist", H5P_DEFAULT);
        double edges[REDUCE_HIST_BINS + 1];
        for (int i = 0; i <= REDUCE_HIST_BINS; i++) edges[i] = -1.0 + 2.0 * i / REDUCE_HIST_BINS;
        rc = rio_write_attr_doubles(h, "edges", edges, REDUCE_HIST_BINS + 1);
        H5Dclose(h);
    }
    if (rc == CN_OK) rc = rio_write_attr_int(gv, "quantile_bins", REDUCE_FINE_BINS);

    const struct { const char *name; const int64_t *x; } ci[] = {
        {"n_pairs", r->n_pairs}, {"n_flips", r->n_flips}, {"n_wins", r->n_wins}, {"n_ties", r->n_ties}};
    for (size_t i = 0; i < sizeof ci / sizeof ci[0] && rc == CN_OK; i++) rc = write_i64(gc, ci[i].name, ci[i].x, V);
    const struct { const char *name; const double *x; } cd[] = {
        {"flip_share", r->flip_share}, {"neg_accuracy", r->neg_accuracy}, {"mean_diff", r->mean_diff},
        {"std_diff", r->std_diff}, {"cohens_d", r->cohens_d}, {"ci_low", r->ci_low}, {"ci_high", r->ci_high}};
    for (size_t i = 0; i < sizeof cd / sizeof cd[0] && rc == CN_OK; i++) rc = write_f64(gc, cd[i].name, cd[i].x, V);

    if (rc == CN_OK) rc = write_i64(gr, "t2i_n", r->t2i_n, V);
    if (rc == CN_OK) rc = write_f64(gr, "t2i_r1", r->t2i_r1, V);
    if (rc == CN_OK) rc = write_f64(gr, "t2i_r5", r->t2i_r5, V);
    if (rc == CN_OK) rc = write_f64(gr, "t2i_r10", r->t2i_r10, V);
    if (rc == CN_OK) rc = rio_write(gr, "i2t_n", H5T_NATIVE_INT64, H5T_STD_I64LE, 0, NULL, &r->i2t_n);
    if (rc == CN_OK) rc = write_scalar(gr, "i2t_r1", r->i2t_r1);
    if (rc == CN_OK) rc = write_scalar(gr, "i2t_r5", r->i2t_r5);
    if (rc == CN_OK) rc = write_scalar(gr, "i2t_r10", r->i2t_r10);
    if (rc == CN_OK) rc = rio_write_attr_string(gr, "source", r->retrieval_source ? r->retrieval_source : "none");

    if (rc == CN_OK) rc = rio_write_attr_string(st, "base_variant", r->base_name);
    if (rc == CN_OK) rc = rio_write_attr_int(st, "base_index", r->base);
    if (rc == CN_OK) rc = rio_write_attr_string(st, "base_source", r->base_source);
    if (rc == CN_OK) rc = rio_write_attr_int(st, "bootstrap", r->bootstrap);
    if (rc == CN_OK) rc = rio_write_attr_int(st, "seed", (int64_t)r->seed);
    if (rc == CN_OK) rc = rio_write_attr_string(st, "clipneg_version", CLIPNEG_VERSION " (" CLIPNEG_GIT_COMMIT ")");
    // the axes: variant names in every group, histogram bin centres; then descriptions and scales
    const char *const *names = (const char *const *)r->names;
    if (rc == CN_OK) rc = rio_coord_strings(gv, "variant", names, V);
    if (rc == CN_OK) rc = rio_coord_strings(gc, "variant", names, V);
    if (rc == CN_OK) rc = rio_coord_strings(gr, "variant", names, V);
    if (rc == CN_OK) {
        double centres[REDUCE_HIST_BINS];
        for (int i = 0; i < REDUCE_HIST_BINS; i++) centres[i] = -1.0 + (2.0 * i + 1.0) / REDUCE_HIST_BINS;
        rc = rio_coord_doubles(gv, "bin", centres, REDUCE_HIST_BINS);
    }
    if (rc == CN_OK) rc = h5_document(file, H5DOC_STATS, path);
done:
    if (gr >= 0) H5Gclose(gr);
    if (gc >= 0) H5Gclose(gc);
    if (gv >= 0) H5Gclose(gv);
    if (st >= 0) H5Gclose(st);
    if (H5Fclose(file) < 0 && rc == CN_OK) rc = cn_fail(CN_E_IO, "%s: closing after writing /stats failed", path);
    return rc;
}

// ---- stats.json ----------------------------------------------------------------------------------

static void add_num(cJSON *o, const char *k, double x) { cJSON_AddItemToObject(o, k, cJSON_CreateNumber(x)); }

int reduce_write_json(const char *path, const ReduceResult *r) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", "clipneg-stats");
    cJSON_AddStringToObject(root, "base_variant", r->base_name);
    cJSON_AddStringToObject(root, "base_source", r->base_source);
    add_num(root, "base_index", r->base);
    add_num(root, "bootstrap", r->bootstrap);
    if (r->seed < (1ULL << 53)) {
        add_num(root, "seed", (double)r->seed);
    } else {
        char s[32];
        snprintf(s, sizeof s, "%llu", (unsigned long long)r->seed);
        cJSON_AddStringToObject(root, "seed", s);
    }
    add_num(root, "n_images", (double)r->n_images);
    add_num(root, "n_captions", (double)r->n_captions);
    add_num(root, "hist_bins", REDUCE_HIST_BINS);
    add_num(root, "quantile_bins", REDUCE_FINE_BINS);
    cJSON_AddStringToObject(root, "retrieval_source", r->retrieval_source ? r->retrieval_source : "none");
    cJSON *vs = cJSON_AddArrayToObject(root, "variants");
    for (int v = 0; v < r->V; v++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", r->names[v]);
        cJSON_AddStringToObject(o, "polarity", POLARITY_NAMES[r->polarity[v]]);
        add_num(o, "count", (double)r->count[v]);
        const double vals[] = {r->mean[v], r->std[v], r->min[v], r->max[v], r->q05[v],
                               r->q25[v],  r->median[v], r->q75[v], r->q95[v]};
        const char *keys[] = {"mean", "std", "min", "max", "q05", "q25", "median", "q75", "q95"};
        for (int k = 0; k < 9; k++) add_num(o, keys[k], vals[k]);  // NaN prints as null
        cJSON *h = cJSON_AddArrayToObject(o, "hist");
        for (int b = 0; b < REDUCE_HIST_BINS; b++)
            cJSON_AddItemToArray(h, cJSON_CreateNumber((double)r->hist[(size_t)v * REDUCE_HIST_BINS + b]));
        if (r->n_pairs[v] >= 0) {
            cJSON *c = cJSON_AddObjectToObject(o, "contrast");
            add_num(c, "n_pairs", (double)r->n_pairs[v]);
            add_num(c, "n_flips", (double)r->n_flips[v]);
            add_num(c, "n_wins", (double)r->n_wins[v]);
            add_num(c, "n_ties", (double)r->n_ties[v]);
            add_num(c, "flip_share", r->flip_share[v]);
            add_num(c, "neg_accuracy", r->neg_accuracy[v]);
            add_num(c, "mean_diff", r->mean_diff[v]);
            add_num(c, "std_diff", r->std_diff[v]);
            add_num(c, "cohens_d", r->cohens_d[v]);
            add_num(c, "ci_low", r->ci_low[v]);
            add_num(c, "ci_high", r->ci_high[v]);
        } else {
            cJSON_AddNullToObject(o, "contrast");
        }
        cJSON *t = cJSON_AddObjectToObject(o, "t2i");
        add_num(t, "n", (double)r->t2i_n[v]);
        add_num(t, "r1", r->t2i_r1[v]);
        add_num(t, "r5", r->t2i_r5[v]);
        add_num(t, "r10", r->t2i_r10[v]);
        cJSON_AddItemToArray(vs, o);
    }
    cJSON *i2t = cJSON_AddObjectToObject(root, "i2t");
    add_num(i2t, "n", (double)r->i2t_n);
    add_num(i2t, "r1", r->i2t_r1);
    add_num(i2t, "r5", r->i2t_r5);
    add_num(i2t, "r10", r->i2t_r10);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    FILE *fp = fopen(path, "w");
    int rc = CN_OK;
    if (!fp) {
        rc = cn_fail(CN_E_IO, "%s: cannot create the JSON file", path);
    } else {
        if (fputs(text, fp) < 0 || fputc('\n', fp) < 0) rc = cn_fail(CN_E_IO, "%s: write failed", path);
        if (fclose(fp) != 0 && rc == CN_OK) rc = cn_fail(CN_E_IO, "%s: write failed (disk full?)", path);
    }
    cJSON_free(text);
    return rc;
}

// ---- the markdown table ----------------------------------------------------------------------------

static void pct3(char *buf, size_t n, double a, double b, double c) {
    if (isnan(a))
        snprintf(buf, n, "–");
    else
        snprintf(buf, n, "%.1f / %.1f / %.1f", 100 * a, 100 * b, 100 * c);
}

void reduce_print_table(FILE *fp, const ReduceResult *r) {
    fprintf(fp, "| variant | polarity | n | mean ± std | flips n/N (share) | neg. accuracy | "
                "mean diff [95%% CI] | d | t2i R@1/5/10 (%%) |\n");
    fprintf(fp, "|---|---|---:|---|---|---:|---|---:|---|\n");
    for (int v = 0; v < r->V; v++) {
        char ms[64], flips[64], acc[32], diff[96], d[32], ret[64];
        snprintf(ms, sizeof ms, "%.4f ± %.4f", r->mean[v], r->std[v]);
        if (r->n_pairs[v] >= 0) {
            snprintf(flips, sizeof flips, "%lld/%lld (%.1f%%)", (long long)r->n_flips[v], (long long)r->n_pairs[v],
                     100 * r->flip_share[v]);
            snprintf(acc, sizeof acc, "%.1f%%", 100 * r->neg_accuracy[v]);
            if (isnan(r->ci_low[v]))
                snprintf(diff, sizeof diff, "%+.4f", r->mean_diff[v]);
            else
                snprintf(diff, sizeof diff, "%+.4f [%+.4f, %+.4f]", r->mean_diff[v], r->ci_low[v], r->ci_high[v]);
            snprintf(d, sizeof d, "%.2f", r->cohens_d[v]);
        } else {
            const char *what = v == r->base ? "(base)" : "–";
            snprintf(flips, sizeof flips, "%s", what);
            snprintf(acc, sizeof acc, "–");
            snprintf(diff, sizeof diff, "–");
            snprintf(d, sizeof d, "–");
        }
        pct3(ret, sizeof ret, r->t2i_r1[v], r->t2i_r5[v], r->t2i_r10[v]);
        fprintf(fp, "| %s | %s | %lld | %s | %s | %s | %s | %s | %s |\n", r->names[v], POLARITY_NAMES[r->polarity[v]],
                (long long)r->count[v], ms, flips, acc, diff, d, ret);
    }
    char ret[64];
    pct3(ret, sizeof ret, r->i2t_r1, r->i2t_r5, r->i2t_r10);
    fprintf(fp, "\nimage→text R@1/5/10 (%%, base '%s', %lld images): %s. Retrieval from %s; bootstrap %d "
                "resamples, seed %llu.\n",
            r->base_name, (long long)r->i2t_n, ret, r->retrieval_source ? r->retrieval_source : "none", r->bootstrap,
            (unsigned long long)r->seed);
}
