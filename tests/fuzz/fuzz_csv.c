// fuzz_csv.c — the RFC-4180 CSV reader (src/dataset_csv.c) on arbitrary bytes, then the NegBench MCQ
// and retrieval readers on the same bytes behind a valid header. Oracles: every record's line
// numbers increase and stay within the input's lines; every field lies in the input's bytes (its
// length is at most the input's); re-quoting the fields (RFC 4180) and reading them again gives the
// same records; bad data is CN_E_DATA with a message, never anything else.
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/dataset_bench_internal.h"
#include "clipneg/common.h"
#include "fuzz_util.h"

// Fields written back quoted ("" for "), records ended by \n.
static char *requote(CsvReader *r, const char *text, size_t len, size_t *out_len, int *n_records) {
    size_t cap = 2 * len + 64, n = 0;
    char *out = malloc(cap);
    csv_init(r, text, len);
    *n_records = 0;
    while (csv_next(r) == 1) {
        (*n_records)++;
        for (int i = 0; i < r->n_fields; i++) {
            size_t fl = strlen(r->fields[i]);
            if (n + 2 * fl + 8 > cap) out = realloc(out, cap = 2 * cap + 2 * fl + 8);
            if (i) out[n++] = ',';
            out[n++] = '"';
            for (size_t k = 0; k < fl; k++) {
                if (r->fields[i][k] == '"') out[n++] = '"';
                out[n++] = r->fields[i][k];
            }
            out[n++] = '"';
        }
        out[n++] = '\n';
    }
    csv_free(r);
    *out_len = n;
    return out;
}

static void same_records(const char *a, size_t la, const char *b, size_t lb) {
    CsvReader x, y;
    csv_init(&x, a, la);
    csv_init(&y, b, lb);
    for (;;) {
        int rx = csv_next(&x), ry = csv_next(&y);
        if (rx != ry) abort();
        if (rx != 1) break;
        if (x.n_fields != y.n_fields) abort();
        for (int i = 0; i < x.n_fields; i++)
            if (strcmp(x.fields[i], y.fields[i])) abort();
    }
    csv_free(&x);
    csv_free(&y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    size_t lines = 1;
    for (size_t i = 0; i < size; i++) lines += data[i] == '\n' || data[i] == '\r';
    CsvReader r;
    csv_init(&r, text, size);
    int rc, last = 0;
    while ((rc = csv_next(&r)) == 1) {
        if (r.line <= last || (size_t)r.line > lines || r.n_fields < 1) abort();
        last = r.line;
        for (int i = 0; i < r.n_fields; i++)
            if (strlen(r.fields[i]) > size) abort();
    }
    if (rc == -1 && !r.error) abort();
    csv_free(&r);
    if (rc == 0 && !memchr(data, '\0', size)) { // NULs end C strings: the round trip cannot hold them
        size_t n = 0;
        int recs = 0;
        char *q = requote(&r, text, size, &n, &recs);
        same_records(text, size, q, n);
        free(q);
    }
    // the readers: header + the input as the data rows
    static const char *const headers[2] = {
        "image_path,correct_answer,caption_0,caption_1,caption_2,caption_3,correct_answer_template\n",
        "positive_objects,negative_objects,filepath,image_id,captions\n"};
    for (int k = 0; k < 2; k++) {
        size_t hl = strlen(headers[k]);
        uint8_t *buf = malloc(hl + size + 1);
        memcpy(buf, headers[k], hl);
        memcpy(buf + hl, data, size);
        const char *path = fuzz_write_temp(k ? "ret.csv" : "mcq.csv", buf, hl + size);
        free(buf);
        JobConfig job;
        memset(&job, 0, sizeof job);
        job.dataset_path = (char *)path;
        job.images_dir = (char *)"/nonexistent";
        job.crop_expand = 1.0;
        if (k == 0) {
            ItemSet s;
            job.dataset_kind = DATASET_NEGBENCH_MCQ;
            rc = items_load_bench(&s, &job);
            if (rc == CN_OK) {
                for (int i = 0; i < s.n_items; i++)
                    if (s.items[i].n != 4 || s.items[i].answer < 0 || s.items[i].answer > 3 || s.items[i].image >= s.n_images) abort();
                items_free(&s);
            }
        } else {
            Dataset ds;
            job.dataset_kind = DATASET_NEGBENCH_RETRIEVAL;
            rc = bench_load_negbench_retrieval(&ds, &job);
            if (rc == CN_OK) dataset_free(&ds);
        }
        if (rc != CN_OK && (rc != CN_E_DATA || !cn_last_error()[0])) abort();
    }
    return 0;
}
