// reduce_items.c — `clipneg reduce` for files with /items (docs/items.md): per item type, how
// often the correct candidate scores strictly highest (ties count as wrong), the mean margin
// sim[answer] - max(other candidates), chance level, and for two-candidate items (CC-Neg) the
// "original over negation" accuracy. Results go to /stats/items, to stats.json under "items" and
// to a markdown table.
//
// Every rank reads /items/{type,answer,n_candidates,sim} and computes the same numbers in the same
// order: item files are small (N x K floats; 1M items x 5 candidates = 20 MB), and this keeps the
// results bitwise independent of the rank count without a reduction. Writes are collective.
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/items.h"
#include "clipneg/reduce.h"
#include "h5_internal.h"

void reduce_items_free(ItemStats *st) {
    for (int r = 0; st->labels && r < st->n_rows; r++) free(st->labels[r]);
    void *p[] = {st->labels, st->n, st->n_valid, st->n_correct, st->n_ties, st->pair_n, st->pair_correct,
                 st->accuracy, st->mean_margin, st->chance, st->pair_accuracy};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
    memset(st, 0, sizeof *st);
}

static void stats_alloc(ItemStats *st, int rows) {
    st->n_rows = rows;
    st->labels = callocCheck((size_t)rows, sizeof(char *));
    int64_t **ints[] = {&st->n, &st->n_valid, &st->n_correct, &st->n_ties, &st->pair_n, &st->pair_correct};
    double **dbls[] = {&st->accuracy, &st->mean_margin, &st->chance, &st->pair_accuracy};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) *ints[i] = callocCheck((size_t)rows, sizeof(int64_t));
    for (size_t i = 0; i < sizeof dbls / sizeof dbls[0]; i++) *dbls[i] = callocCheck((size_t)rows, sizeof(double));
}

// One item into row r: sims [n] of which `answer` is correct.
static void add_item(ItemStats *st, int r, const float *sim, int n, int answer, double *margin_sum, double *chance_sum) {
    // first_max: argmax's choice (the first maximum) is the answer: nothing before it reaches it
    int first_max_ok = 1;
    for (int k = 0; k < answer; k++) first_max_ok &= sim[k] < sim[answer];
    st->n[r]++;
    for (int k = 0; k < n; k++)
        if (!isfinite(sim[k])) return;
    float best_other = -INFINITY;
    for (int k = 0; k < n; k++)
        if (k != answer && sim[k] > best_other) best_other = sim[k];
    st->n_valid[r]++;
    int correct = st->first_max ? first_max_ok && sim[answer] >= best_other : sim[answer] > best_other;
    st->n_correct[r] += correct;
    st->n_ties[r] += sim[answer] == best_other;
    margin_sum[r] += (double)sim[answer] - (double)best_other;
    chance_sum[r] += 1.0 / n;
    if (n == 2) {
        st->pair_n[r]++;
        st->pair_correct[r] += correct;
    }
}

static int read_i32(hid_t f, const char *path, int64_t n, int32_t *out) {
    return rio_read(f, path, H5T_NATIVE_INT32, 0, n, 0, 1, out);
}

int reduce_items_compute(const char *path, ItemStats *st, int *present) {
    memset(st, 0, sizeof *st);
    *present = 0;
    hid_t f;
    int rc = rio_open(path, 0, &f);
    if (rc) return rc;
    if (!rio_exists(f, "/items/sim")) {
        H5Fclose(f);
        return CN_OK;
    }
    *present = 1;
    char **names = NULL;
    int64_t T = 0, dims[2] = {0, 0};
    int nd = 0;
    int32_t *type = NULL, *answer = NULL, *ncand = NULL;
    float *sim = NULL;
    if ((rc = rio_read_strings(f, "/items/type_names", &names, &T)) || (rc = rio_shape(f, "/items/sim", &nd, dims)))
        goto done;
    const int64_t N = dims[0], K = nd == 2 ? dims[1] : 1;
    type = mallocCheck(sizeof(int32_t) * (size_t)(N + 1));
    answer = mallocCheck(sizeof(int32_t) * (size_t)(N + 1));
    ncand = mallocCheck(sizeof(int32_t) * (size_t)(N + 1));
    sim = mallocCheck(sizeof(float) * (size_t)(N * K + 1));
    if ((rc = read_i32(f, "/items/type", N, type)) || (rc = read_i32(f, "/items/answer", N, answer)) ||
        (rc = read_i32(f, "/items/n_candidates", N, ncand)) ||
        (rc = rio_read(f, "/items/sim", H5T_NATIVE_FLOAT, 0, N, 0, K, sim)))
        goto done;
    stats_alloc(st, (int)T + 1);
    char *rule = NULL;
    if (rio_attr_string(f, "/items", "tie_rule", &rule) < 0) {
        rc = CN_E_DATA;
        goto done;
    }
    st->first_max = rule && !strcmp(rule, "first_max"); // files without the attribute: strict, as before
    free(rule);
    for (int64_t t = 0; t < T; t++) st->labels[t] = strdupCheck(names[t]);
    st->labels[T] = strdupCheck("all");
    double *margin = callocCheck((size_t)T + 1, sizeof(double)), *chance = callocCheck((size_t)T + 1, sizeof(double));
    for (int64_t i = 0; i < N && rc == CN_OK; i++) {
        if (type[i] < 0 || type[i] >= T || ncand[i] < 1 || ncand[i] > K || answer[i] < 0 || answer[i] >= ncand[i]) {
            rc = cn_fail(CN_E_DATA, "%s: item %lld: type %d, answer %d, n_candidates %d are inconsistent (K = %lld)", path,
                         (long long)i, type[i], answer[i], ncand[i], (long long)K);
            break;
        }
        add_item(st, type[i], sim + i * K, ncand[i], answer[i], margin, chance);
        add_item(st, (int)T, sim + i * K, ncand[i], answer[i], margin, chance);
    }
    for (int r = 0; r < st->n_rows; r++) {
        double v = (double)st->n_valid[r];
        st->accuracy[r] = v > 0 ? st->n_correct[r] / v : NAN;
        st->mean_margin[r] = v > 0 ? margin[r] / v : NAN;
        st->chance[r] = v > 0 ? chance[r] / v : NAN;
        st->pair_accuracy[r] = st->pair_n[r] > 0 ? (double)st->pair_correct[r] / (double)st->pair_n[r] : NAN;
    }
    free(margin);
    free(chance);
done:
    rio_free_strings(names, T);
    free(type), free(answer), free(ncand), free(sim);
    H5Fclose(f);
    if (rc) reduce_items_free(st);
    return rc;
}

int reduce_items_write_h5(const char *path, const ItemStats *st) {
    hid_t f;
    int rc = rio_open(path, 1, &f);
    if (rc) return rc;
    hid_t g = H5I_INVALID_HID;
    if ((rc = rio_delete(f, "/stats/items"))) goto done;
    g = rio_exists(f, "/stats") ? H5Gcreate2(f, "/stats/items", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
    if (g < 0) {
        rc = cn_fail(CN_E_IO, "%s: cannot create /stats/items", path);
        goto done;
    }
    const int64_t n = st->n_rows;
    const struct { const char *name; const int64_t *x; } ci[] = {
        {"n", st->n}, {"n_valid", st->n_valid}, {"n_correct", st->n_correct}, {"n_ties", st->n_ties},
        {"pair_n", st->pair_n}, {"pair_correct", st->pair_correct}};
    for (size_t i = 0; i < sizeof ci / sizeof ci[0] && rc == CN_OK; i++)
        rc = rio_write(g, ci[i].name, H5T_NATIVE_INT64, H5T_STD_I64LE, 1, &n, ci[i].x);
    const struct { const char *name; const double *x; } cd[] = {{"accuracy", st->accuracy},
                                                                 {"mean_margin", st->mean_margin},
                                                                 {"chance", st->chance},
                                                                 {"pair_accuracy", st->pair_accuracy}};
    for (size_t i = 0; i < sizeof cd / sizeof cd[0] && rc == CN_OK; i++)
        rc = rio_write(g, cd[i].name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, &n, cd[i].x);
    // names as one attribute (parallel HDF5 writes no variable-length datasets): "mcq,ccneg,all"
    size_t len = 1;
    for (int r = 0; r < st->n_rows; r++) len += strlen(st->labels[r]) + 1;
    char *labels = callocCheck(len, 1);
    for (int r = 0; r < st->n_rows; r++) {
        if (r) strcat(labels, ",");
        strcat(labels, st->labels[r]);
    }
    if (rc == CN_OK) rc = rio_write_attr_string(g, "labels", labels);
    if (rc == CN_OK) rc = rio_write_attr_string(g, "tie_rule", st->first_max ? "first_max" : "strict");
    free(labels);
    if (rc == CN_OK) rc = rio_coord_strings(g, "item_type", (const char *const *)st->labels, n);
    if (rc == CN_OK) rc = h5_document(f, H5DOC_STATS_ITEMS, path);
done:
    if (g >= 0) H5Gclose(g);
    if (H5Fclose(f) < 0 && rc == CN_OK) rc = cn_fail(CN_E_IO, "%s: closing after writing /stats/items failed", path);
    return rc;
}

static cJSON *num_array(const double *x, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, isfinite(x[i]) ? cJSON_CreateNumber(x[i]) : cJSON_CreateNull());
    return a;
}

static cJSON *int_array(const int64_t *x, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)x[i]));
    return a;
}

int reduce_items_add_json(const char *json_path, const ItemStats *st) {
    cJSON *o = cJSON_CreateObject();
    cJSON *labels = cJSON_CreateArray();
    for (int r = 0; r < st->n_rows; r++) cJSON_AddItemToArray(labels, cJSON_CreateString(st->labels[r]));
    cJSON_AddItemToObject(o, "labels", labels);
    const int n = st->n_rows;
    cJSON_AddItemToObject(o, "tie_rule", cJSON_CreateString(st->first_max ? "first_max" : "strict"));
    cJSON_AddItemToObject(o, "n", int_array(st->n, n));
    cJSON_AddItemToObject(o, "n_valid", int_array(st->n_valid, n));
    cJSON_AddItemToObject(o, "n_correct", int_array(st->n_correct, n));
    cJSON_AddItemToObject(o, "n_ties", int_array(st->n_ties, n));
    cJSON_AddItemToObject(o, "pair_n", int_array(st->pair_n, n));
    cJSON_AddItemToObject(o, "pair_correct", int_array(st->pair_correct, n));
    cJSON_AddItemToObject(o, "accuracy", num_array(st->accuracy, n));
    cJSON_AddItemToObject(o, "mean_margin", num_array(st->mean_margin, n));
    cJSON_AddItemToObject(o, "chance", num_array(st->chance, n));
    cJSON_AddItemToObject(o, "pair_accuracy", num_array(st->pair_accuracy, n));
    return rio_json_set(json_path, "items", o);
}

static void pct(char *buf, size_t n, double x) {
    if (isfinite(x)) snprintf(buf, n, "%.1f%%", 100 * x);
    else snprintf(buf, n, "-");
}

void reduce_items_print_table(FILE *fp, const ItemStats *st) {
    fprintf(fp, "\n| item type | items | valid | accuracy | ties | mean margin | chance | 2-candidate items (CC-Neg: original > negation) |\n");
    fprintf(fp, "|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int r = 0; r < st->n_rows; r++) {
        char acc[32], ch[32], pa[48], mm[32];
        pct(acc, sizeof acc, st->accuracy[r]);
        pct(ch, sizeof ch, st->chance[r]);
        if (st->pair_n[r] > 0) {
            char p[32];
            pct(p, sizeof p, st->pair_accuracy[r]);
            snprintf(pa, sizeof pa, "%s of %lld", p, (long long)st->pair_n[r]);
        } else {
            snprintf(pa, sizeof pa, "-");
        }
        if (isfinite(st->mean_margin[r])) snprintf(mm, sizeof mm, "%+.4f", st->mean_margin[r]);
        else snprintf(mm, sizeof mm, "-");
        fprintf(fp, "| %s | %lld | %lld | %s | %lld | %s | %s | %s |\n", st->labels[r], (long long)st->n[r],
                (long long)st->n_valid[r], acc, (long long)st->n_ties[r], mm, ch, pa);
    }
    if (st->first_max)
        fprintf(fp, "\nAccuracy: the correct candidate is the first maximum among the item's candidates (argmax: a "
                    "tie counts as correct when the answer comes first), over valid items (every similarity a number).\n");
    else
        fprintf(fp, "\nAccuracy: the correct candidate scores strictly highest among the item's candidates (ties count "
                    "as wrong), over valid items (every similarity a number).\n");
}

int reduce_items(const char *path, const char *json_path, int print_table) {
    ItemStats st;
    int present = 0;
    int rc = reduce_items_compute(path, &st, &present);
    if (rc || !present) return rc;
    rc = reduce_items_write_h5(path, &st);
    if (rc == CN_OK && cn_rank() == 0) {
        rc = reduce_items_add_json(json_path, &st);
        if (rc == CN_OK && print_table) reduce_items_print_table(stdout, &st);
    }
    reduce_items_free(&st);
    return rc;
}
