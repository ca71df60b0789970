// test_bench.c — the readers of published benchmark files (docs/benchmarks.md): the RFC-4180 CSV
// reader and the Python list-literal reader against what pandas / ast.literal_eval return for the
// same bytes (the expected values below were printed by pandas 2 and Python 3.11 on these inputs),
// every reader on tests/data/bench/ (the published layouts), and the refusals with FILE:LINE or
// FILE: item and the field. Runs from the repository root (ctest's working directory).
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/dataset_bench_internal.h"
#include "clipneg/common.h"
#include "test_check.h"

static const char *D = "tests/data/bench";

// ---- CSV -----------------------------------------------------------------------------------------
// Records of `text`, fields joined with '|' and records with '/', as one string.
static char *csv_all(const char *text, int *rc_out, int *lines) {
    CsvReader r;
    csv_init(&r, text, strlen(text));
    static char out[4096];
    out[0] = 0;
    int rc, k = 0;
    while ((rc = csv_next(&r)) == 1) {
        if (out[0]) strcat(out, "/");
        for (int i = 0; i < r.n_fields; i++) {
            if (i) strcat(out, "|");
            strcat(out, r.fields[i]);
        }
        if (lines) lines[k++] = r.line;
    }
    *rc_out = rc;
    csv_free(&r);
    return out;
}

static void test_csv(void) {
    int rc, lines[8];
    CHECK_STR(csv_all("a,b,c\n1,2,3\n", &rc, NULL), "a|b|c/1|2|3");
    CHECK_INT(rc, 0);
    // pandas: doubled quotes, commas and line breaks inside quotes, CRLF, text after a closing quote
    CHECK_STR(csv_all("x,y\r\n\"a \"\"b\"\", c\",\"d\ne\"\r\n\"f\" g,h\"i\n", &rc, lines), "x|y/a \"b\", c|d\ne/f g|h\"i");
    CHECK_INT(lines[0], 1);
    CHECK_INT(lines[1], 2);
    CHECK_INT(lines[2], 4);
    CHECK_STR(csv_all("\xEF\xBB\xBFh\n\n\nv\n,\n", &rc, lines), "h/v/|"); // BOM, blank lines skipped
    CHECK_INT(lines[1], 4);
    CHECK_STR(csv_all("a,\"\"\n\"\",b", &rc, NULL), "a|/|b"); // empty quoted fields, no final newline
    CHECK_STR(csv_all("a\rb\r\n", &rc, NULL), "a/b");        // lone CR ends a record (pandas' C parser)
    csv_all("a,\"open\nb\n", &rc, NULL);
    CHECK_INT(rc, -1);
}

// ---- Python list literals --------------------------------------------------------------------------
static void expect_list(const char *lit, int n, const char *const *want, int line) {
    char **out = NULL, err[256] = "";
    int got = 0;
    int rc = pylit_str_list(lit, strlen(lit), &out, &got, err, sizeof err);
    CHECK_MSG(rc == 0 && got == n, "line %d: %s -> rc %d, %d strings (%s)", line, lit, rc, got, err);
    for (int i = 0; rc == 0 && i < n && i < got; i++)
        CHECK_MSG(!strcmp(out[i], want[i]), "line %d: [%d] = '%s', expected '%s'", line, i, out[i], want[i]);
    pylit_free(out, got);
}
#define LIST(lit, ...)                                                                       \
    do {                                                                                     \
        const char *const _w[] = {__VA_ARGS__};                                              \
        expect_list(lit, (int)(sizeof _w / sizeof _w[0]), _w, __LINE__);                     \
    } while (0)

static void expect_bad(const char *lit, const char *fragment) {
    char **out = NULL, err[256] = "";
    int n = 0;
    int rc = pylit_str_list(lit, strlen(lit), &out, &n, err, sizeof err);
    CHECK_MSG(rc == -1 && strstr(err, fragment), "%s: rc %d, err '%s' lacks '%s'", lit, rc, err, fragment);
    CHECK(out == NULL && n == 0);
}

static void test_pylit(void) {
    LIST("['a', \"b\"]", "a", "b");
    LIST("[ 'a, b' ,\n \"it's\" , ]", "a, b", "it's");                    // nested comma, trailing comma
    LIST("['\\'q\\'', \"\\\"d\\\"\", '\\\\']", "'q'", "\"d\"", "\\");   // escaped quotes, backslash
    LIST("['\\x41\\u00e9\\U0001F600\\101\\n\\t']", "A\xC3\xA9\xF0\x9F\x98\x80" "A\n\t");
    LIST("['a\\,b', '\\d']", "a\\,b", "\\d");                              // unknown escapes stay
    LIST("['a' \"b\"  'c', u'd', r'\\n']", "abc", "d", "\\n");             // concatenation, prefixes
    LIST("['\\ud800']", "\xEF\xBF\xBD");                                   // lone surrogate -> U+FFFD
    LIST("['caf\xC3\xA9']", "caf\xC3\xA9");                                // raw UTF-8 bytes kept
    expect_list("[]", 0, NULL, __LINE__);
    expect_bad("['a', 1]", "expected a string literal");
    expect_bad("['a'", "expected ',' or ']'");
    expect_bad("['a] ", "not closed");
    expect_bad("'a'", "expected a Python list");
    expect_bad("['a'] x", "text after");
    expect_bad("['\\x4']", "hex digits");
    expect_bad("[b'a']", "not plain strings");
    expect_bad("['a\\x00b']", "NUL");
    expect_bad("[__import__('os')]", "expected a string literal"); // never evaluated
}

// ---- readers ---------------------------------------------------------------------------------------
static JobConfig job_for(DatasetKind kind, const char *path, const char *images) {
    JobConfig j;
    memset(&j, 0, sizeof j);
    j.dataset_kind = kind;
    j.dataset_path = (char *)path;
    j.images_dir = (char *)images;
    j.crop_expand = 1.0;
    return j;
}

static char g_tmp[256];
static const char *tmp_file(const char *name, const char *content) {
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", g_tmp, name);
    FILE *f = fopen(p, "wb");
    fputs(content, f);
    fclose(f);
    return p;
}

static void expect_refused(DatasetKind kind, const char *path, const char *fragment, int line) {
    JobConfig j = job_for(kind, path, g_tmp);
    ItemSet s;
    Dataset ds;
    int rc = kind == DATASET_NEGBENCH_RETRIEVAL ? bench_load_negbench_retrieval(&ds, &j) : items_load_bench(&s, &j);
    CHECK_MSG(rc == CN_E_DATA && strstr(cn_last_error(), fragment), "line %d: rc %d, '%s' lacks '%s'", line, rc,
              cn_last_error(), fragment);
    if (rc == CN_OK) kind == DATASET_NEGBENCH_RETRIEVAL ? dataset_free(&ds) : items_free(&s);
}
#define REFUSED(kind, name, content, fragment) expect_refused(kind, tmp_file(name, content), fragment, __LINE__)

static void test_readers(void) {
    const char *coco = getenv("CLIPNEG_SHARED") ? getenv("CLIPNEG_SHARED") : "../shared";
    char images[512], path[512];
    snprintf(images, sizeof images, "%s/data/coco-mini/val2017", coco);

    snprintf(path, sizeof path, "%s/COCO_val_mcq_llama3.1_rephrased.csv", D);
    JobConfig j = job_for(DATASET_NEGBENCH_MCQ, path, images);
    ItemSet s;
    CHECK_INT(items_load_bench(&s, &j), CN_OK);
    CHECK_INT(s.n_items, 10);
    CHECK_INT(s.tie_first_max, 1);
    CHECK_INT(s.items[1].answer, 2);
    CHECK_STR(s.items[1].texts[0], "A \"cozy\" room with no dog, only people.");
    CHECK_STR(s.items[2].texts[0], "A cat sleeps on the bed.\nNo dog is visible.");
    CHECK_STR(s.items[3].texts[0], "A bear without vultures");
    CHECK_INT(s.items[3].line, 6);  // the quoted line break of the third row moves the fourth to line 6
    CHECK_STR(s.images[0], "000000397133.jpg");                         // found by its file name alone
    CHECK_STR(s.images[s.items[9].image], "data/coco/images/val2017/000000999999.jpg"); // missing: as written
    CHECK_STR(s.types[s.items[0].type], "hybrid");
    items_free(&s);

    snprintf(path, sizeof path, "%s/COCO_val_negated_retrieval_llama3.1_rephrased_affneg_true.csv", D);
    j = job_for(DATASET_NEGBENCH_RETRIEVAL, path, images);
    Dataset ds;
    CHECK_INT(bench_load_negbench_retrieval(&ds, &j), CN_OK);
    CHECK_INT(ds.n_images, 8);
    CHECK_INT(ds.n_captions, 15);
    CHECK_STR(ds.captions[3].text, "A room with a table\\, chairs and no dog.");
    CHECK_STR(ds.captions[5].text, "A dog on a bed - no cat");
    CHECK_STR(ds.captions[8].text, "Birds around a bear, and no \"people\".");
    CHECK_STR(ds.images[1].file_name, "000000000139.jpg");
    dataset_free(&ds);

    snprintf(path, sizeof path, "%s/sugarcrepe", D);
    j = job_for(DATASET_SUGARCREPE, path, images);
    CHECK_INT(items_load_bench(&s, &j), CN_OK);
    CHECK_INT(s.n_items, 9);
    CHECK_INT(s.n_types, 7);
    CHECK_STR(s.types[0], "add_att");
    CHECK_INT(s.tie_first_max, 0);
    items_free(&s);

    snprintf(path, sizeof path, "%s/existence.json", D);
    j = job_for(DATASET_VALSE_EXISTENCE, path, images);
    CHECK_INT(items_load_bench(&s, &j), CN_OK);
    CHECK_INT(s.n_items, 4); // 107948_2 has mturk.caption = 1
    CHECK_STR(s.items[1].texts[1], "There are cats.");
    items_free(&s);

    // PIL's rounding: half to even
    int32_t win[4];
    const double box[4] = {50.5, 213.5, 218, 94.5};
    CHECK_INT(bench_crop_window_round(box, 640, 480, win), 0);
    CHECK_INT(win[0], 50);
    CHECK_INT(win[1], 214);
    CHECK_INT(win[2], 268);
    CHECK_INT(win[3], 308);
    const double out[4] = {600, 10, 40.6, 10};
    CHECK_INT(bench_crop_window_round(out, 640, 480, win), -1);

    // refusals: before any work, FILE:LINE or FILE: item, and the field
    const char *hdr = "image_path,correct_answer,caption_0,caption_1,caption_2,caption_3,correct_answer_template\n";
    char buf[1024];
    snprintf(buf, sizeof buf, "%sa.jpg,0,x,y,z,w,positive\na.jpg,1,x,y,z\n", hdr);
    REFUSED(DATASET_NEGBENCH_MCQ, "m1.csv", buf, "m1.csv:3: caption_3: missing");
    snprintf(buf, sizeof buf, "%sa.jpg,4,x,y,z,w,positive\n", hdr);
    REFUSED(DATASET_NEGBENCH_MCQ, "m2.csv", buf, "m2.csv:2: correct_answer: '4'");
    REFUSED(DATASET_NEGBENCH_MCQ, "m3.csv", "image_path,correct_answer\na.jpg,0\n", "m3.csv:1: caption_0: no such column");
    snprintf(buf, sizeof buf, "%sa.jpg,0,\"x,y,z,w,positive\n", hdr);
    REFUSED(DATASET_NEGBENCH_MCQ, "m4.csv", buf, "not closed");
    REFUSED(DATASET_NEGBENCH_RETRIEVAL, "r1.csv", "filepath,captions\na.jpg,\"['ok']\"\nb.jpg,\"['x', oops]\"\n",
            "r1.csv:3: captions: not a Python list of strings: expected a string literal (column 7)");
    REFUSED(DATASET_NEGBENCH_RETRIEVAL, "r2.csv", "filepath,captions,negative_objects\na.jpg,\"['ok']\",['x'\n",
            "r2.csv:2: negative_objects: not a Python list");
    REFUSED(DATASET_NEGREFCOCOG, "n1.json", "{\"image\": \"a.jpg\"}", "n1.json: expected a JSON list");
    REFUSED(DATASET_NEGREFCOCOG, "n2.json",
            "[{\"image\": \"a.jpg\", \"phrase\": \"p\", \"ref_bbox\": [1, 2, 3, 4], \"bbox_list\": [[0, 0, 5, 5]]}]",
            "n2.json: item 0: ref_bbox: not one of bbox_list");
    REFUSED(DATASET_NEGREFCOCOG, "n3.json",
            "[{\"image\": \"a.jpg\", \"phrase\": \"p\", \"ref_bbox\": [1, 2, 3], \"bbox_list\": [[1, 2, 3]]}]",
            "n3.json: item 0: ref_bbox: expected [x, y, w, h]");
    char link[600], target[600];
    snprintf(link, sizeof link, "%s/COCO_train2014_000000000001.jpg", g_tmp);
    snprintf(target, sizeof target, "%s/000000000139.jpg", images); // 640 x 426
    if (realpath(target, buf) && symlink(buf, link) == 0) {
        REFUSED(DATASET_NEGREFCOCOG, "n4.json",
                "[{\"image\": \"COCO_train2014_000000000001.jpg\", \"phrase\": \"p\", \"ref_bbox\": [600, 10, 40.6, 10],"
                " \"bbox_list\": [[600, 10, 40.6, 10], [0, 0, 5, 5]]}]",
                "n4.json: item 0: bbox_list[0]: [600, 10, 40.6, 10] is not inside COCO_train2014_000000000001.jpg (640 x 426)");
        unlink(link);
    }
    REFUSED(DATASET_VALSE_EXISTENCE, "v1.json", "[1, 2]", "v1.json: expected a JSON object keyed by item id");
    REFUSED(DATASET_VALSE_EXISTENCE, "v2.json", "{\"7\": {\"image_file\": \"a.jpg\", \"caption\": \"c\", \"foil\": \"f\"}}",
            "v2.json: item \"7\": mturk.caption: expected a number");
    REFUSED(DATASET_VALSE_EXISTENCE, "v3.json", "{\"7\": {\"image_file\": \"a.jpg\", \"caption\": \"c\", \"mturk\": {\"caption\": 3}}}",
            "v3.json: item \"7\": foil: expected a non-empty string");
    REFUSED(DATASET_SUGARCREPE, "add_obj.json", "{\"0\": {\"filename\": \"a.jpg\", \"caption\": \"c\"}}",
            "add_obj.json: item \"0\": negative_caption: expected a non-empty string");
    REFUSED(DATASET_SUGARCREPE, "swap_obj.json", "[]", "swap_obj.json: expected a JSON object");
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/clipneg_test_bench_XXXXXX");
    if (!mkdtemp(g_tmp)) return 2;
    test_csv();
    test_pylit();
    test_readers();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);
    if (g_failures) fprintf(stderr, "%d check(s) failed\n", g_failures);
    return g_failures ? 1 : 0;
}
