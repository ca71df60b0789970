// dataset_bench.c — the negation benchmarks as published (docs/benchmarks.md): the item-set
// builder the readers share (images looked up once by path, through a hash), the image path
// lookup, and NegBench's two CSV kinds (the format table is in dataset_bench_formats.c). The JSON benchmarks are in dataset_bench_json.c.
//
// Every reader turns the file into the item machinery's ItemSet (items.h) unchanged in meaning:
// same items in file order, same candidates in the file's order, the benchmark's own tie rule.
// NegBench retrieval is not an item benchmark: it becomes the main dataset (images + captions) whose
// text -> image R@k `clipneg reduce` already computes.
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clipneg/common.h"
#include "dataset_bench_internal.h"
#include "dataset_internal.h"

// ---- image paths -------------------------------------------------------------------------------------
static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = mallocCheck(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

char *bench_resolve_image(const char *images_dir, const char *prefix, const char *written) {
    const char *p = written;
    if (prefix && prefix[0] && !strncmp(p, prefix, strlen(prefix))) p += strlen(prefix);
    const char *base = strrchr(p, '/') ? strrchr(p, '/') + 1 : p;
    if (p[0] == '/') { // absolute: as written if it is there, else its file name in images_dir
        if (is_file(p) || !images_dir) return strdupCheck(p);
    } else {
        char *full = images_dir ? join(images_dir, p) : strdupCheck(p);
        int ok = is_file(full);
        free(full);
        if (ok || !images_dir) return strdupCheck(p);
    }
    char *full = join(images_dir, base);
    int ok = base[0] && is_file(full);
    free(full);
    return strdupCheck(ok ? base : p); // missing: kept as written, the image phase records it
}

// ---- the builder -------------------------------------------------------------------------------------
struct BenchImages {
    char **keys; // written paths, open addressing
    int *index;
    size_t cap;
};

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull; // FNV-1a
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

void bench_begin(BenchBuilder *b, ItemSet *s, const JobConfig *job, const char *source) {
    memset(b, 0, sizeof *b);
    memset(s, 0, sizeof *s);
    b->s = s;
    b->job = job;
    b->index = callocCheck(1, sizeof(BenchImages));
    s->manifest = strdupCheck(source);
    s->image_root = strdupCheck(job->images_dir ? job->images_dir : ".");
}

int bench_image(BenchBuilder *b, const char *written) {
    BenchImages *h = b->index;
    ItemSet *s = b->s;
    if (2 * (size_t)(s->n_images + 1) > h->cap) { // grow and rehash at half load
        size_t cap = h->cap ? 2 * h->cap : 1024;
        char **keys = callocCheck(cap, sizeof(char *));
        int *index = mallocCheck(sizeof(int) * cap);
        for (size_t i = 0; i < h->cap; i++) {
            if (!h->keys[i]) continue;
            size_t j = hash_str(h->keys[i]) & (cap - 1);
            while (keys[j]) j = (j + 1) & (cap - 1);
            keys[j] = h->keys[i], index[j] = h->index[i];
        }
        free(h->keys), free(h->index);
        h->keys = keys, h->index = index, h->cap = cap;
    }
    size_t j = hash_str(written) & (h->cap - 1);
    while (h->keys[j]) {
        if (!strcmp(h->keys[j], written)) return h->index[j];
        j = (j + 1) & (h->cap - 1);
    }
    if (s->n_images == b->cap_images)
        s->images = reallocCheck(s->images, sizeof(char *) * (size_t)(b->cap_images = 2 * b->cap_images + 64));
    s->images[s->n_images] = bench_resolve_image(b->job->images_dir, b->job->image_prefix, written);
    h->keys[j] = strdupCheck(written);
    h->index[j] = s->n_images;
    return s->n_images++;
}

int bench_type(BenchBuilder *b, const char *name) {
    ItemSet *s = b->s;
    for (int i = 0; i < s->n_types; i++) // few types: a list is enough
        if (!strcmp(s->types[i], name)) return i;
    if (s->n_types == b->cap_types) s->types = reallocCheck(s->types, sizeof(char *) * (size_t)(b->cap_types = 2 * b->cap_types + 8));
    s->types[s->n_types] = strdupCheck(name);
    return s->n_types++;
}

void bench_add(BenchBuilder *b, const Item *it) {
    ItemSet *s = b->s;
    if (s->n_items == b->cap_items) s->items = reallocCheck(s->items, sizeof(Item) * (size_t)(b->cap_items = 2 * b->cap_items + 64));
    s->items[s->n_items++] = *it;
}

void bench_choice(Item *it, int line, const char *const *texts, int n, int answer, int *n_bad_utf8) {
    memset(it, 0, sizeof *it);
    it->kind = ITEM_CHOICE;
    it->line = line;
    it->n = n;
    it->answer = answer;
    it->texts = callocCheck((size_t)n, sizeof(char *));
    for (int k = 0; k < n; k++) {
        int bad = 0;
        it->texts[k] = utf8_sanitize(texts[k], strlen(texts[k]), &bad);
        *n_bad_utf8 += bad > 0;
    }
}

int bench_end(BenchBuilder *b, int rc) {
    BenchImages *h = b->index;
    for (size_t i = 0; i < h->cap; i++) free(h->keys[i]);
    free(h->keys), free(h->index), free(h);
    b->index = NULL;
    ItemSet *s = b->s;
    if (rc == CN_OK && s->n_items == 0) rc = cn_fail(CN_E_DATA, "%s: no items", s->manifest);
    if (rc) {
        items_free(s);
        return rc;
    }
    items_set_shape(s, b->job->max_images);
    return CN_OK;
}

// ---- NegBench CSVs -----------------------------------------------------------------------------------
// The header's column index of each wanted name (-1 when absent and optional).
static int csv_columns(const char *path, CsvReader *r, const char *const *names, int n, const int *required, int *col) {
    int got = csv_next(r);
    if (got < 0) return cn_fail(CN_E_DATA, "%s:%d: %s", path, r->next_line, r->error);
    if (got == 0) return cn_fail(CN_E_DATA, "%s: empty file (expected a CSV header)", path);
    for (int j = 0; j < n; j++) {
        col[j] = -1;
        for (int i = 0; i < r->n_fields; i++)
            if (!strcmp(r->fields[i], names[j])) col[j] = i;
        if (col[j] < 0 && required[j])
            return cn_fail(CN_E_DATA, "%s:%d: %s: no such column in the header", path, r->line, names[j]);
    }
    return CN_OK;
}

// The next data row, with exactly as many fields as the header (pandas refuses other counts).
static int csv_row(const char *path, CsvReader *r, int n_header, const char *const *names, const int *col, int n) {
    int got = csv_next(r);
    if (got <= 0) return got < 0 ? -cn_fail(CN_E_DATA, "%s:%d: %s", path, r->next_line, r->error) : 0;
    if (r->n_fields < n_header) {
        for (int j = 0; j < n; j++)
            if (col[j] >= r->n_fields)
                return -cn_fail(CN_E_DATA, "%s:%d: %s: missing (the row has %d fields, the header %d)", path, r->line,
                                names[j], r->n_fields, n_header);
    }
    if (r->n_fields != n_header)
        return -cn_fail(CN_E_DATA, "%s:%d: the row has %d fields, the header %d", path, r->line, r->n_fields, n_header);
    return 1;
}

enum { MCQ_IMAGE, MCQ_ANSWER, MCQ_C0, MCQ_C1, MCQ_C2, MCQ_C3, MCQ_TYPE, MCQ_NCOL };
static const char *const MCQ_NAMES[MCQ_NCOL] = {"image_path", "correct_answer", "caption_0", "caption_1",
                                                "caption_2", "caption_3", "correct_answer_template"};

int bench_load_negbench_mcq(ItemSet *s, const JobConfig *job) {
    const char *path = job->dataset_path;
    char *text = NULL;
    size_t len = 0;
    if (cn_read_file(path, &text, &len) != CN_OK) return cn_fail(CN_E_DATA, "%s", cn_last_error());
    BenchBuilder b;
    bench_begin(&b, s, job, path);
    s->tie_first_max = 1; // mcq.py: argmax over the four, the first maximum wins
    s->format = "negbench-mcq";
    CsvReader r;
    csv_init(&r, text, len);
    static const int req[MCQ_NCOL] = {1, 1, 1, 1, 1, 1, 1};
    int col[MCQ_NCOL], rc = csv_columns(path, &r, MCQ_NAMES, MCQ_NCOL, req, col), n_header = r.n_fields;
    while (rc == CN_OK) {
        int got = csv_row(path, &r, n_header, MCQ_NAMES, col, MCQ_NCOL);
        if (got <= 0) {
            rc = -got;
            break;
        }
        const char *f[MCQ_NCOL];
        for (int j = 0; j < MCQ_NCOL; j++) f[j] = r.fields[col[j]];
        char *end = NULL;
        long a = strtol(f[MCQ_ANSWER], &end, 10);
        if (!f[MCQ_ANSWER][0] || *end || a < 0 || a > 3) {
            rc = cn_fail(CN_E_DATA, "%s:%d: correct_answer: '%s' is not 0, 1, 2 or 3", path, r.line, f[MCQ_ANSWER]);
            break;
        }
        for (int j = 0; j < MCQ_NCOL && rc == CN_OK; j++)
            if (!f[j][0]) rc = cn_fail(CN_E_DATA, "%s:%d: %s: empty (pandas would read NaN)", path, r.line, MCQ_NAMES[j]);
        if (rc == CN_OK && (strlen(f[MCQ_TYPE]) > ITEMS_MAX_TYPE_LEN || strpbrk(f[MCQ_TYPE], ",\n\r") || !strcmp(f[MCQ_TYPE], "all")))
            rc = cn_fail(CN_E_DATA, "%s:%d: correct_answer_template: '%.80s' cannot name a question type (a comma, a "
                         "line break, 'all' or longer than %d bytes)", path, r.line, f[MCQ_TYPE], ITEMS_MAX_TYPE_LEN);
        if (rc) break;
        Item it;
        bench_choice(&it, r.line, f + MCQ_C0, 4, (int)a, &s->n_invalid_utf8);
        it.image = bench_image(&b, f[MCQ_IMAGE]);
        it.type = bench_type(&b, f[MCQ_TYPE]);
        bench_add(&b, &it);
    }
    csv_free(&r);
    free(text);
    return bench_end(&b, rc);
}

enum { RET_PATH, RET_CAPTIONS, RET_POS, RET_NEG, RET_NCOL };
static const char *const RET_NAMES[RET_NCOL] = {"filepath", "captions", "positive_objects", "negative_objects"};

// A list-literal column: parsed (so a broken one stops the run), returned when out != NULL.
static int list_field(const char *path, int line, const char *name, const char *v, char ***out, int *n) {
    char err[256], **list = NULL;
    int cnt = 0;
    if (pylit_str_list(v, strlen(v), &list, &cnt, err, sizeof err))
        return cn_fail(CN_E_DATA, "%s:%d: %s: not a Python list of strings: %s", path, line, name, err);
    if (out) *out = list, *n = cnt;
    else pylit_free(list, cnt);
    return CN_OK;
}

int bench_load_negbench_retrieval(Dataset *ds, const JobConfig *job) {
    const char *path = job->dataset_path;
    char *text = NULL;
    size_t len = 0;
    memset(ds, 0, sizeof *ds);
    if (cn_read_file(path, &text, &len) != CN_OK) return cn_fail(CN_E_DATA, "%s", cn_last_error());
    CsvReader r;
    csv_init(&r, text, len);
    static const int req[RET_NCOL] = {1, 1, 0, 0};
    int col[RET_NCOL], rc = csv_columns(path, &r, RET_NAMES, RET_NCOL, req, col), n_header = r.n_fields;
    RawImage *images = NULL;
    // resident build: the captions' strings are kept (a retrieval CSV is small); `where` is the
    // caption's index (a row holds several), ids are that index too
    DsBuild b = {.path = path, .jsonl = 1, .resident = 1};
    int n_img = 0, n_cap = 0, cap_img = 0;
    while (rc == CN_OK) {
        int got = csv_row(path, &r, n_header, RET_NAMES, col, RET_NCOL);
        if (got <= 0) {
            rc = -got;
            break;
        }
        char **list = NULL;
        int n = 0;
        if (!r.fields[col[RET_PATH]][0]) rc = cn_fail(CN_E_DATA, "%s:%d: filepath: empty", path, r.line);
        for (int j = RET_POS; j <= RET_NEG && rc == CN_OK; j++)
            if (col[j] >= 0) rc = list_field(path, r.line, RET_NAMES[j], r.fields[col[j]], NULL, NULL);
        if (rc == CN_OK) rc = list_field(path, r.line, "captions", r.fields[col[RET_CAPTIONS]], &list, &n);
        if (rc) break;
        // one image per row, as upstream's dataset indexes rows (a repeated file is another image)
        if (n_img == cap_img) images = reallocCheck(images, sizeof(RawImage) * (size_t)(cap_img = 2 * cap_img + 64));
        char *file = bench_resolve_image(job->images_dir, job->image_prefix, r.fields[col[RET_PATH]]);
        images[n_img] = (RawImage){.id = n_img, .file_name = file, .where = r.line};
        for (int k = 0; k < n; k++) {
            int bad = 0;
            DsText cap = {.text = utf8_sanitize(list[k], strlen(list[k]), &bad)};
            ds->n_invalid_utf8 += bad > 0;
            ds_build_caption(&b, n_cap, n_img, n_img, n_cap, &cap, ds_is_blank(cap.text));
            n_cap++;
        }
        n_img++;
        pylit_free(list, n);
    }
    csv_free(&r);
    free(text);
    if (rc == CN_OK && n_cap == 0) rc = cn_fail(CN_E_DATA, "%s: no captions", path);
    if (rc) {
        for (int i = 0; i < n_img; i++) free(images[i].file_name);
        free(images);
        ds_build_free(&b);
        return rc;
    }
    if (ds->n_invalid_utf8 && cn_rank() == 0)
        cn_warn("%s: %d caption(s) with invalid UTF-8, kept with U+FFFD replacements", path, ds->n_invalid_utf8);
    ds->image_root = strdupCheck(job->images_dir ? job->images_dir : ".");
    ds_build_images(ds, &b, images, n_img);
    rc = ds_build_finish(ds, &b, job->max_images);
    if (rc != CN_OK) dataset_free(ds);
    return rc;
}
