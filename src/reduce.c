// reduce.c — `clipneg reduce` driver: check the file, read the variants, choose the base variant,
// then run the paired statistics (reduce_paired.c) and the retrieval pass (reduce_retrieval.c).
// Writing the results lives in reduce_output.c.
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/reduce.h"

void reduce_options_default(ReduceOptions *o) {
    memset(o, 0, sizeof *o);
    o->bootstrap = 1000;
    o->seed = 0;
    o->print_table = 1;
}

// The job's `[variants] base_variant = NAME` from the stored job text (NULL when absent).
static char *base_from_job_text(const char *job) {
    char section[64] = "";
    const char *p = job;
    while (p && *p) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char line[1024];
        if (len >= sizeof line) len = sizeof line - 1;
        memcpy(line, p, len);
        line[len] = '\0';
        p = end ? end + 1 : NULL;
        char *s = line;
        while (isspace((unsigned char)*s)) s++;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (close) {
                *close = '\0';
                snprintf(section, sizeof section, "%s", s + 1);
            }
            continue;
        }
        if (strcmp(section, "variants") != 0 || strncmp(s, "base_variant", 12) != 0) continue;
        char *eq = s + 12;
        while (isspace((unsigned char)*eq)) eq++;
        if (*eq != '=') continue;
        char *v = eq + 1;
        v[strcspn(v, ";#")] = '\0';  // inline comments, as inih strips them
        while (isspace((unsigned char)*v)) v++;
        size_t n = strlen(v);
        while (n > 0 && isspace((unsigned char)v[n - 1])) v[--n] = '\0';
        if (n > 0) return strdupCheck(v);
    }
    return NULL;
}

static int find_name(char **names, int V, const char *name) {
    for (int v = 0; v < V; v++)
        if (strcmp(names[v], name) == 0) return v;
    return -1;
}

int reduce_find_base(hid_t file, const char *path, const char *option, char **names, const int8_t *polarity,
                     int V, int *base, char **source) {
    char *name = NULL;
    const char *src = "option";
    *base = -1;
    *source = NULL;
    if (option) {
        name = strdupCheck(option);
    } else {
        src = "provenance";
        int found = rio_attr_string(file, "/", "base_variant", &name);
        if (found < 0) return -found;
        if (!found) {
            char *job = NULL;
            found = rio_attr_string(file, "/", "job_text", &job);
            if (found < 0) return -found;
            if (job) name = base_from_job_text(job);
            free(job);
        }
    }
    if (name) {
        *base = find_name(names, V, name);
        if (*base < 0) {
            int rc = cn_fail(option ? CN_E_USAGE : CN_E_DATA,
                             "%s: base variant '%s' (from %s) is not one of the file's variants", path, name, src);
            free(name);
            return rc;
        }
        free(name);
    } else {
        src = "first positive";
        for (int v = 0; v < V && *base < 0; v++)
            if (polarity[v] == 0) *base = v;
    }
    if (*base >= 0 && polarity[*base] != 0) cn_log("warning: base variant '%s' is not a positive variant", names[*base]);
    if (*base < 0) cn_log("warning: %s has no positive variant: no contrasts, no image->text retrieval", path);
    *source = strdupCheck(src);
    return CN_OK;
}

static int choose_base(hid_t file, const ReduceOptions *o, ReduceResult *r) {
    int rc = reduce_find_base(file, o->path, o->base, r->names, r->polarity, r->V, &r->base, &r->base_source);
    if (rc) return rc;
    r->base_name = strdupCheck(r->base >= 0 ? r->names[r->base] : "");
    return CN_OK;
}

static int read_metadata(hid_t file, const ReduceOptions *o, ReduceResult *r) {
    char *format = NULL;
    int found = rio_attr_string(file, "/", "format", &format);
    if (found < 0) return -found;
    int bad = !found || strcmp(format, "clipneg-eval") != 0;
    free(format);
    if (bad) return cn_fail(CN_E_DATA, "%s: not a clipneg evaluation file (root attribute format != clipneg-eval)", o->path);
    int64_t complete = 0;
    found = rio_attr_int(file, "/", "complete", &complete);
    if (found < 0) return -found;
    r->complete = complete == 1;
    if (complete != 1) {
        if (!o->allow_incomplete)
            return cn_fail(CN_E_DATA, "%s: the evaluation is not complete (attribute complete != 1): resume "
                                      "`clipneg eval`, or pass --allow-incomplete to reduce what is there",
                           o->path);
        cn_log("warning: %s is incomplete: statistics cover only the finished shards (pending rows of "
               "/similarity/paired are NaN); no retrieval metrics", o->path);
    }
    int64_t n;
    int rc = rio_read_strings(file, "/variants/name", &r->names, &n);
    if (rc) return rc;
    r->V = (int)n;
    if (n < 1) return cn_fail(CN_E_DATA, "%s: /variants/name is empty", o->path);
    int nd;
    int64_t dims[2];
    if ((rc = rio_shape(file, "/variants/polarity", &nd, dims))) return rc;
    if (nd != 1 || dims[0] != n)
        return cn_fail(CN_E_DATA, "%s: /variants/polarity has %lld entries, /variants/name %lld", o->path,
                       (long long)dims[0], (long long)n);
    r->polarity = mallocCheck((size_t)n);
    if ((rc = rio_read(file, "/variants/polarity", H5T_NATIVE_INT8, 0, n, 0, 1, r->polarity))) return rc;
    for (int v = 0; v < r->V; v++)
        if (r->polarity[v] < 0 || r->polarity[v] > 2)
            return cn_fail(CN_E_DATA, "%s: /variants/polarity[%d] = %d (expected 0, 1 or 2)", o->path, v,
                           r->polarity[v]);
    if ((rc = rio_shape(file, "/captions/image_index", &nd, dims))) return rc;
    r->n_captions = dims[0];
    if ((rc = rio_shape(file, "/images/id", &nd, dims))) return rc;
    r->n_images = dims[0];
    return CN_OK;
}

static void alloc_result(ReduceResult *r) {
    size_t V = (size_t)r->V;
    int64_t **ints[] = {&r->count, &r->n_pairs, &r->n_flips, &r->n_wins, &r->n_ties, &r->t2i_n};
    double **dbls[] = {&r->mean, &r->std, &r->min, &r->max, &r->q05, &r->q25, &r->median, &r->q75,
                       &r->q95, &r->flip_share, &r->neg_accuracy, &r->mean_diff, &r->std_diff,
                       &r->cohens_d, &r->ci_low, &r->ci_high, &r->t2i_r1, &r->t2i_r5, &r->t2i_r10};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) *ints[i] = callocCheck(V, sizeof(int64_t));
    for (size_t i = 0; i < sizeof dbls / sizeof dbls[0]; i++) *dbls[i] = callocCheck(V, sizeof(double));
    r->hist = callocCheck(V * REDUCE_HIST_BINS, sizeof(int64_t));
}

int reduce_compute(const ReduceOptions *o, ReduceResult *r) {
    memset(r, 0, sizeof *r);
    r->bootstrap = o->bootstrap;
    r->seed = o->seed;
    hid_t file;
    int rc = rio_open(o->path, 0, &file);
    if (rc) return rc;
    double t0 = cn_now();
    if ((rc = read_metadata(file, o, r)) == CN_OK && (rc = choose_base(file, o, r)) == CN_OK) {
        alloc_result(r);
        cn_log("reduce %s: %lld images, %lld captions, %d variants, base '%s' (%s), %d ranks", o->path,
               (long long)r->n_images, (long long)r->n_captions, r->V, r->base_name, r->base_source,
               cn_nranks());
        rc = reduce_paired_stats(file, o, r);
        double t1 = cn_now();
        if (rc == CN_OK) rc = reduce_retrieval(file, o, r);
        cn_log("paired statistics %.2f s, retrieval (%s) %.2f s", t1 - t0,
               r->retrieval_source ? r->retrieval_source : "-", cn_now() - t1);
    }
    H5Fclose(file);
    return rc;
}

void reduce_result_free(ReduceResult *r) {
    rio_free_strings(r->names, r->V);
    void *ptrs[] = {r->polarity, r->base_name, r->base_source, r->count, r->mean, r->std, r->min, r->max,
                    r->q05, r->q25, r->median, r->q75, r->q95, r->hist, r->n_pairs, r->n_flips, r->n_wins,
                    r->n_ties, r->flip_share, r->neg_accuracy, r->mean_diff, r->std_diff, r->cohens_d,
                    r->ci_low, r->ci_high, r->retrieval_source, r->t2i_n, r->t2i_r1, r->t2i_r5, r->t2i_r10};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) free(ptrs[i]);
    memset(r, 0, sizeof *r);
}
