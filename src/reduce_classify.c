// reduce_classify.c — `clipneg reduce` for files with /classify (docs/classification.md): zero-shot
// top-1 and top-5 accuracy, the images whose top cosine is shared by several classes (ties; the
// first maximum — the lower class index — is the prediction, as in the eval phase), and the
// negation probe: how often the classifier built from negated prompts ("a photo of no {c}.") still
// picks the image's own class. Results go to /stats/classify, "classify" in stats.json and a table.
//
// Every rank reads the per-image results (N x (K + 4) small numbers) and computes the same counts.
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/classify.h"
#include "clipneg/common.h"
#include "clipneg/reduce.h"
#include "h5_internal.h"

int reduce_classify_compute(const char *path, ClassifyStats *st, int *present) {
    memset(st, 0, sizeof *st);
    *present = 0;
    hid_t f;
    int rc = rio_open(path, 0, &f);
    if (rc) return rc;
    if (!rio_exists(f, "/classify/topk")) {
        H5Fclose(f);
        return CN_OK;
    }
    *present = 1;
    int nd = 0;
    int64_t dims[2] = {0, 0}, dc[2] = {0, 0};
    int32_t *label = NULL, *topk = NULL, *neg = NULL;
    int8_t *status = NULL;
    if ((rc = rio_shape(f, "/classify/topk", &nd, dims)) || (rc = rio_shape(f, "/classify/classnames", &nd, dc))) goto done;
    const int64_t N = dims[0], K = dims[1];
    st->n_classes = dc[0];
    label = mallocCheck(sizeof(int32_t) * (size_t)(N + 1));
    neg = mallocCheck(sizeof(int32_t) * (size_t)(N + 1));
    topk = mallocCheck(sizeof(int32_t) * (size_t)(N * K + 1));
    status = mallocCheck((size_t)N + 1);
    int32_t *n_max = mallocCheck(sizeof(int32_t) * (size_t)(N + 1));
    if ((rc = rio_read(f, "/classify/label", H5T_NATIVE_INT32, 0, N, 0, 1, label)) ||
        (rc = rio_read(f, "/classify/negated_top1", H5T_NATIVE_INT32, 0, N, 0, 1, neg)) ||
        (rc = rio_read(f, "/classify/n_max", H5T_NATIVE_INT32, 0, N, 0, 1, n_max)) ||
        (rc = rio_read(f, "/classify/status", H5T_NATIVE_INT8, 0, N, 0, 1, status)) ||
        (rc = rio_read(f, "/classify/topk", H5T_NATIVE_INT32, 0, N, 0, K, topk))) {
        free(n_max);
        goto done;
    }
    st->n = N;
    for (int64_t i = 0; i < N; i++) {
        if (status[i] != CLASSIFY_OK) continue;
        st->n_valid++;
        st->top1 += topk[i * K] == label[i];
        for (int64_t k = 0; k < K; k++)
            if (topk[i * K + k] == label[i]) st->top5++;
        st->ties += n_max[i] > 1;
        st->negated_top1 += neg[i] == label[i];
    }
    free(n_max);
    double v = (double)st->n_valid;
    st->acc_top1 = v > 0 ? st->top1 / v : NAN;
    st->acc_top5 = v > 0 ? st->top5 / v : NAN;
    st->acc_negated_top1 = v > 0 ? st->negated_top1 / v : NAN;
    st->chance = st->n_classes > 0 ? 1.0 / (double)st->n_classes : NAN;
done:
    free(label), free(topk), free(neg), free(status);
    H5Fclose(f);
    return rc;
}

static int write_h5(const char *path, const ClassifyStats *st) {
    hid_t f;
    int rc = rio_open(path, 1, &f);
    if (rc) return rc;
    hid_t g = -1;
    if ((rc = rio_delete(f, "/stats/classify"))) goto done;
    g = rio_exists(f, "/stats") ? H5Gcreate2(f, "/stats/classify", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
    if (g < 0) {
        rc = cn_fail(CN_E_IO, "%s: cannot create /stats/classify", path);
        goto done;
    }
    // scalars (rank 0), like /stats/retrieval's i2t_*: xarray shows them without a dimension
    const struct { const char *name; const int64_t *x; } ci[] = {
        {"n", &st->n}, {"n_valid", &st->n_valid}, {"n_classes", &st->n_classes}, {"top1", &st->top1},
        {"top5", &st->top5}, {"ties", &st->ties}, {"negated_top1", &st->negated_top1}};
    for (size_t i = 0; i < sizeof ci / sizeof ci[0] && rc == CN_OK; i++)
        rc = rio_write(g, ci[i].name, H5T_NATIVE_INT64, H5T_STD_I64LE, 0, NULL, ci[i].x);
    const struct { const char *name; const double *x; } cd[] = {{"accuracy_top1", &st->acc_top1},
                                                                 {"accuracy_top5", &st->acc_top5},
                                                                 {"accuracy_negated_top1", &st->acc_negated_top1},
                                                                 {"chance", &st->chance}};
    for (size_t i = 0; i < sizeof cd / sizeof cd[0] && rc == CN_OK; i++)
        rc = rio_write(g, cd[i].name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 0, NULL, cd[i].x);
    if (rc == CN_OK) rc = rio_write_attr_string(g, "tie_rule", "first maximum (lower class index); ties = images whose top cosine is shared");
    if (rc == CN_OK) rc = h5_document(f, H5DOC_STATS_CLASSIFY, path); // description and units of every dataset
done:
    if (g >= 0) H5Gclose(g);
    if (H5Fclose(f) < 0 && rc == CN_OK) rc = cn_fail(CN_E_IO, "%s: closing after writing /stats/classify failed", path);
    return rc;
}

static cJSON *num(double x) { return isfinite(x) ? cJSON_CreateNumber(x) : cJSON_CreateNull(); }

static int add_json(const char *json_path, const ClassifyStats *st) {
    cJSON *o = cJSON_CreateObject();
    const struct { const char *name; int64_t v; } ci[] = {{"n", st->n}, {"n_valid", st->n_valid}, {"n_classes", st->n_classes},
                                                         {"top1", st->top1}, {"top5", st->top5}, {"ties", st->ties},
                                                         {"negated_top1", st->negated_top1}};
    for (size_t i = 0; i < sizeof ci / sizeof ci[0]; i++) cJSON_AddItemToObject(o, ci[i].name, cJSON_CreateNumber((double)ci[i].v));
    cJSON_AddItemToObject(o, "accuracy_top1", num(st->acc_top1));
    cJSON_AddItemToObject(o, "accuracy_top5", num(st->acc_top5));
    cJSON_AddItemToObject(o, "accuracy_negated_top1", num(st->acc_negated_top1));
    cJSON_AddItemToObject(o, "chance", num(st->chance));
    return rio_json_set(json_path, "classify", o);
}

static void pct(char *buf, size_t n, double x) {
    if (isfinite(x)) snprintf(buf, n, "%.1f%%", 100 * x);
    else snprintf(buf, n, "-");
}

void reduce_classify_print_table(FILE *fp, const ClassifyStats *st) {
    char a1[32], a5[32], an[32], ch[32];
    pct(a1, sizeof a1, st->acc_top1);
    pct(a5, sizeof a5, st->acc_top5);
    pct(an, sizeof an, st->acc_negated_top1);
    pct(ch, sizeof ch, st->chance);
    fprintf(fp, "\n| zero-shot | images | valid | classes | top-1 | top-5 | ties | negated prompts: top-1 | chance |\n");
    fprintf(fp, "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    fprintf(fp, "| classification | %lld | %lld | %lld | %s | %s | %lld | %s | %s |\n", (long long)st->n,
            (long long)st->n_valid, (long long)st->n_classes, a1, a5, (long long)st->ties, an, ch);
    fprintf(fp, "\nTop-1: the first maximum of the cosines with the class vectors is the image's class (ties go to the "
                "lower class index). Negated prompts: the same with the classifier of negated templates; a model that "
                "reads \"no\" should fall to chance or below there.\n");
}

int reduce_classify(const char *path, const char *json_path, int print_table) {
    ClassifyStats st;
    int present = 0;
    int rc = reduce_classify_compute(path, &st, &present);
    if (rc || !present) return rc;
    rc = write_h5(path, &st);
    if (rc == CN_OK && cn_rank() == 0) {
        rc = add_json(json_path, &st);
        if (rc == CN_OK && print_table) reduce_classify_print_table(stdout, &st);
    }
    return rc;
}
