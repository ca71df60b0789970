// test_dataset.c — COCO captions/instances and JSONL manifests: order, counts, dropped items and
// every error message (file, field, line). Golden numbers for coco-mini come from Python's json
// module: tests/reference/dataset_golden.py (its output is quoted next to each constant).
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clipneg/common.h"
#include "clipneg/dataset.h"
#include "../src/dataset_internal.h"  // ds_stream_read: a changed file is noticed
#include "test_check.h"

// A load must fail with `code` and a message containing `fragment`.
static void expect_error(int rc, int code, const char *fragment, int line) {
    if (rc != code || !strstr(cn_last_error(), fragment)) {
        fprintf(stderr, "FAIL test_dataset.c:%d: rc=%d (want %d), message '%s' lacks '%s'\n", line, rc, code,
                cn_last_error(), fragment);
        g_failures++;
    }
}
#define EXPECT_ERROR(call, code, fragment) expect_error((call), (code), (fragment), __LINE__)

static const char *DATA = "tests/data";

static char *data_path(const char *name) {
    static char buf[8][1024];
    static int k = 0;
    char *p = buf[k++ % 8];
    snprintf(p, 1024, "%s/%s", DATA, name);
    return p;
}

// ---- coco-mini against Python's json ------------------------------------------------------------

// Checksum of the caption order: sum over rows r of (r + 1) * caption_id mod 2^61 - 1.
static unsigned long long order_checksum(const Dataset *ds) {
    const unsigned long long m = (1ULL << 61) - 1;
    unsigned long long s = 0;
    for (int r = 0; r < ds->n_captions; r++)
        s = (s + (unsigned long long)(r + 1) * (unsigned long long)ds->captions[r].id % m) % m;
    return s;
}

static void test_coco_mini(const char *shared) {
    char caps[1024], inst[1024], imgs[1024];
    snprintf(caps, sizeof caps, "%s/data/coco-mini/annotations/captions_val2017.json", shared);
    snprintf(inst, sizeof inst, "%s/data/coco-mini/annotations/instances_val2017.json", shared);
    snprintf(imgs, sizeof imgs, "%s/data/coco-mini/val2017", shared);
    if (access(caps, R_OK) != 0) {
        printf("SKIP coco-mini part: %s not found (set CLIPNEG_SHARED)\n", caps);
        return;
    }
    Dataset ds;
    int rc = dataset_load_coco(&ds, caps, imgs, inst, 0);
    CHECK_INT(rc, CN_OK);
    if (rc != CN_OK) {
        fprintf(stderr, "  %s\n", cn_last_error());
        return;
    }
    // dataset_golden.py: images=79 captions=395 without_captions=0
    CHECK_INT(ds.n_images, 79);
    CHECK_INT(ds.n_captions, 395);
    CHECK_INT(ds.n_images_without_captions, 0);
    CHECK_INT(ds.n_captions_without_image, 0);
    CHECK_INT(ds.n_duplicate_ids, 0);
    CHECK_INT(ds.n_empty_captions, 0);
    CHECK_INT(ds.n_invalid_utf8, 0);
    // first_image=139 last_image=570448
    CHECK_INT(ds.images[0].id, 139);
    CHECK_INT(ds.images[78].id, 570448);
    for (int i = 1; i < ds.n_images; i++) CHECK(ds.images[i - 1].id < ds.images[i].id);
    // first_caption id=372891 text='A woman stands in the dining area at the table.'
    CHECK_INT(ds.captions[0].id, 372891);
    CHECK_STR(ds.captions[0].text, "A woman stands in the dining area at the table.");
    // last_caption id=178484 text='Shot of a person in a wooden boat on the shore of a beach.'
    CHECK_INT(ds.captions[394].id, 178484);
    CHECK_STR(ds.captions[394].text, "Shot of a person in a wooden boat on the shore of a beach.");
    // order_checksum=30910593546
    CHECK_INT(order_checksum(&ds), 30910593546LL);
    // Captions are contiguous per image and point back to it.
    int next = 0;
    for (int i = 0; i < ds.n_images; i++) {
        CHECK_INT(ds.images[i].first_caption, next);
        CHECK_INT(ds.images[i].n_captions, 5);
        for (int c = next; c < next + ds.images[i].n_captions; c++) CHECK_INT(ds.captions[c].image_index, i);
        next += ds.images[i].n_captions;
    }
    // categories=80 ids 1..90; image 139 categories [1, 62, 64, 67, 72, 78, 82, 84, 85, 86]
    CHECK_INT(ds.has_instances, 1);
    CHECK_INT(ds.n_categories, 80);
    CHECK_INT(ds.categories[0].id, 1);
    CHECK_STR(ds.categories[0].name, "person");
    CHECK_INT(ds.categories[79].id, 90);
    CHECK_STR(ds.categories[79].name, "toothbrush");
    CHECK_STR(ds.categories[79].supercategory, "indoor");
    static const int cats139[] = {1, 62, 64, 67, 72, 78, 82, 84, 85, 86};
    CHECK_INT(ds.images[0].n_categories, 10);
    for (int k = 0; k < 10 && k < ds.images[0].n_categories; k++) CHECK_INT(ds.images[0].categories[k], cats139[k]);
    // sum of per-image category counts=284
    int total = 0;
    for (int i = 0; i < ds.n_images; i++) total += ds.images[i].n_categories;
    CHECK_INT(total, 284);
    char *p = dataset_image_path(&ds, 0);
    char want[1100];
    snprintf(want, sizeof want, "%s/000000000139.jpg", imgs);
    CHECK_STR(p, want);
    CHECK(access(p, R_OK) == 0);
    free(p);
    dataset_free(&ds);

    // max_images=10: captions=50 checksum=467568423 last_image=92660
    rc = dataset_load_coco(&ds, caps, imgs, NULL, 10);
    CHECK_INT(rc, CN_OK);
    CHECK_INT(ds.n_images, 10);
    CHECK_INT(ds.n_captions, 50);
    CHECK_INT(ds.images[9].id, 92660);
    CHECK_INT(order_checksum(&ds), 467568423);
    CHECK_INT(ds.n_dropped_by_max_images, 345);
    CHECK_INT(ds.has_instances, 0);
    CHECK(ds.images[0].categories == NULL);
    dataset_free(&ds);
}

// ---- small hand-written COCO files -----------------------------------------------------------------

static void test_coco_small(void) {
    Dataset ds;
    // coco_small.json by hand: images 30, 10, 20, 10 (duplicate), 40 (no captions); annotations
    // 105/101 (image 10), 201 (blank) and 202 (image 20), 301 (image 30), 101 again (duplicate),
    // 900/901 (images 99/98 do not exist).
    int rc = dataset_load_coco(&ds, data_path("coco_small.json"), "imgs", data_path("instances_small.json"), 0);
    CHECK_INT(rc, CN_OK);
    if (rc != CN_OK) {
        fprintf(stderr, "  %s\n", cn_last_error());
        return;
    }
    CHECK_INT(ds.n_images, 4);
    CHECK_INT(ds.images[0].id, 10);
    CHECK_STR(ds.images[0].file_name, "a.jpg");  // the first of the two id-10 entries
    CHECK_INT(ds.images[1].id, 20);
    CHECK_INT(ds.images[2].id, 30);
    CHECK_INT(ds.images[3].id, 40);
    CHECK_INT(ds.n_captions, 5);
    static const long long ids[] = {101, 105, 201, 202, 301};
    for (int i = 0; i < 5 && i < ds.n_captions; i++) CHECK_INT(ds.captions[i].id, ids[i]);
    CHECK_STR(ds.captions[0].text, "A cat sitting on a table.");  // not the later duplicate 101
    CHECK_INT(ds.images[0].first_caption, 0);
    CHECK_INT(ds.images[0].n_captions, 2);
    CHECK_INT(ds.images[1].first_caption, 2);
    CHECK_INT(ds.images[2].first_caption, 4);
    CHECK_INT(ds.images[3].n_captions, 0);
    CHECK_INT(ds.n_images_without_captions, 1);
    CHECK_INT(ds.n_captions_without_image, 2);
    CHECK_INT(ds.n_duplicate_ids, 2);  // one image id, one annotation id
    CHECK_INT(ds.n_empty_captions, 1);
    // instances_small.json: categories 18 dog, 17 cat, 63 couch, 24 zebra (sorted by id here);
    // image 10 shows dog twice and a couch, image 30 a zebra, image 77 is not in the captions.
    CHECK_INT(ds.n_categories, 4);
    CHECK_INT(ds.categories[0].id, 17);
    CHECK_INT(ds.categories[3].id, 63);
    CHECK_STR(ds.categories[3].supercategory, "furniture");
    CHECK_INT(ds.images[0].n_categories, 2);
    CHECK_INT(ds.images[0].categories[0], 18);
    CHECK_INT(ds.images[0].categories[1], 63);
    CHECK_INT(ds.images[1].n_categories, 0);
    CHECK(ds.images[1].categories != NULL);  // known to show nothing, unlike "unknown"
    CHECK_INT(ds.images[2].n_categories, 1);
    CHECK_INT(ds.images[2].categories[0], 24);
    char *p = dataset_image_path(&ds, 1);
    CHECK_STR(p, "imgs/b.jpg");
    free(p);
    dataset_free(&ds);

    // max_images = 2 keeps images 10 and 20 and their four captions.
    rc = dataset_load_coco(&ds, data_path("coco_small.json"), "imgs/", NULL, 2);
    CHECK_INT(rc, CN_OK);
    CHECK_INT(ds.n_images, 2);
    CHECK_INT(ds.n_captions, 4);
    CHECK_INT(ds.n_dropped_by_max_images, 1);
    p = dataset_image_path(&ds, 0);
    CHECK_STR(p, "imgs/a.jpg");
    free(p);
    dataset_free(&ds);
}

static void test_coco_errors(void) {
    Dataset ds;
    EXPECT_ERROR(dataset_load_coco(&ds, data_path("coco_bad_caption_type.json"), ".", NULL, 0), CN_E_DATA,
                 "coco_bad_caption_type.json: annotations[2].caption: expected a string, got a number");
    EXPECT_ERROR(dataset_load_coco(&ds, data_path("coco_bad_image_id.json"), ".", NULL, 0), CN_E_DATA,
                 "coco_bad_image_id.json: images[1].id: expected an integer, got 2.5");
    EXPECT_ERROR(dataset_load_coco(&ds, data_path("coco_bad_syntax.json"), ".", NULL, 0), CN_E_DATA,
                 "coco_bad_syntax.json:4:");
    CHECK(strstr(cn_last_error(), "invalid JSON") != NULL);
    EXPECT_ERROR(dataset_load_coco(&ds, data_path("coco_no_images.json"), ".", NULL, 0), CN_E_DATA,
                 "coco_no_images.json: images: missing (expected an array)");
    EXPECT_ERROR(dataset_load_coco(&ds, data_path("does_not_exist.json"), ".", NULL, 0), CN_E_DATA,
                 "does_not_exist.json: cannot open");
    EXPECT_ERROR(dataset_load_coco(&ds, data_path("coco_small.json"), ".", data_path("instances_bad_category.json"), 0),
                 CN_E_DATA, "instances_bad_category.json: annotations[1].category_id: 5 is not in \"categories\"");
    EXPECT_ERROR(dataset_load_coco(&ds, data_path("manifest_ok.jsonl"), ".", NULL, 0), CN_E_DATA,
                 "manifest_ok.jsonl:2:1: invalid JSON");  // a JSONL file is not one JSON document
    CHECK_INT(ds.n_images, 0);  // failed loads leave nothing behind
}

// Invalid UTF-8 in a caption is kept with U+FFFD; in a file name it is refused.
static void test_invalid_utf8(void) {
    char dir[] = "/tmp/clipneg_test_dataset_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/bad_utf8.json", dir);
    FILE *fp = fopenCheck(path, "wb");
    fputs("{\"images\": [{\"id\": 1, \"file_name\": \"x.jpg\"}],\n \"annotations\": [\n"
          "  {\"id\": 1, \"image_id\": 1, \"caption\": \"caf\xe9 \xe2\x82\xac ok\"},\n"
          "  {\"id\": 2, \"image_id\": 1, \"caption\": \"fine \xf0\x9f\x98\x80\"}]}\n",
          fp);
    fcloseCheck(fp);
    Dataset ds;
    CHECK_INT(dataset_load_coco(&ds, path, dir, NULL, 0), CN_OK);
    CHECK_INT(ds.n_invalid_utf8, 1);
    CHECK_STR(ds.captions[0].text, "caf\xef\xbf\xbd \xe2\x82\xac ok");
    CHECK_STR(ds.captions[1].text, "fine \xf0\x9f\x98\x80");
    dataset_free(&ds);
    fp = fopenCheck(path, "wb");
    fputs("{\"images\": [{\"id\": 1, \"file_name\": \"x\xff.jpg\"}], \"annotations\": []}", fp);
    fcloseCheck(fp);
    EXPECT_ERROR(dataset_load_coco(&ds, path, dir, NULL, 0), CN_E_DATA, "images[0].file_name: not valid UTF-8");
    // No captions at all is refused: there would be nothing to evaluate.
    fp = fopenCheck(path, "wb");
    fputs("{\"images\": [{\"id\": 1, \"file_name\": \"x.jpg\"}], \"annotations\": []}", fp);
    fcloseCheck(fp);
    EXPECT_ERROR(dataset_load_coco(&ds, path, dir, NULL, 0), CN_E_DATA, "no captions left to evaluate");
    remove(path);
    rmdir(dir);
}

// bytes.decode("utf-8", errors="replace") from dataset_golden.py.
static void test_utf8_sanitize(void) {
    static const struct {
        const char *in, *out;
        int bad;
    } V[] = {
        {"ok \xe2\x82\xac", "ok \xe2\x82\xac", 0},
        {"a\xff" "b", "a\xef\xbf\xbd" "b", 1},
        {"\xe0\x80x", "\xef\xbf\xbd\xef\xbf\xbdx", 2},
        {"\xe2\x82", "\xef\xbf\xbd", 1},
        {"\xed\xa0\x80z", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz", 3},
        {"\xf0\x9f\x98\x80!", "\xf0\x9f\x98\x80!", 0},
        {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd", 2},
        {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 4},
    };
    for (size_t i = 0; i < sizeof V / sizeof V[0]; i++) {
        int bad = -1;
        char *out = utf8_sanitize(V[i].in, strlen(V[i].in), &bad);
        CHECK_STR(out, V[i].out);
        CHECK_INT(bad, V[i].bad);
        free(out);
    }
}

// ---- JSONL manifests ------------------------------------------------------------------------------------

static void test_jsonl(void) {
    Dataset ds;
    // manifest_ok.jsonl by hand: line 1 b.jpg (no id -> 1, two negatives), line 2 a.jpg id 7,
    // line 3 blank, line 4 b.jpg id 2, line 5 c.jpg (no id -> 5).
    int rc = dataset_load_jsonl(&ds, data_path("manifest_ok.jsonl"), NULL, 0);
    CHECK_INT(rc, CN_OK);
    if (rc != CN_OK) {
        fprintf(stderr, "  %s\n", cn_last_error());
        return;
    }
    CHECK_INT(ds.n_images, 3);
    CHECK_INT(ds.images[0].id, 0);
    CHECK_STR(ds.images[0].file_name, "imgs/b.jpg");
    CHECK_STR(ds.images[1].file_name, "imgs/a.jpg");
    CHECK_STR(ds.images[2].file_name, "imgs/c.jpg");
    CHECK_INT(ds.n_captions, 4);
    static const long long ids[] = {1, 2, 7, 5};
    static const int img[] = {0, 0, 1, 2};
    for (int i = 0; i < 4 && i < ds.n_captions; i++) {
        CHECK_INT(ds.captions[i].id, ids[i]);
        CHECK_INT(ds.captions[i].image_index, img[i]);
    }
    CHECK_STR(ds.captions[1].text, "A brown dog lying down.");
    CHECK_INT(ds.captions[0].n_negatives, 2);
    CHECK_STR(ds.captions[0].negatives[1], "No dog on a couch.");
    CHECK_INT(ds.captions[1].n_negatives, 0);
    CHECK_INT(ds.images[0].n_captions, 2);
    CHECK_INT(ds.has_instances, 0);
    char *p = dataset_image_path(&ds, 2);
    CHECK_STR(p, "tests/data/imgs/c.jpg");  // relative to the manifest's folder
    free(p);
    dataset_free(&ds);

    CHECK_INT(dataset_load_jsonl(&ds, data_path("manifest_ok.jsonl"), "/data/images", 2), CN_OK);
    CHECK_INT(ds.n_images, 2);
    CHECK_INT(ds.n_captions, 3);
    CHECK_INT(ds.n_dropped_by_max_images, 1);
    p = dataset_image_path(&ds, 1);
    CHECK_STR(p, "/data/images/imgs/a.jpg");
    free(p);
    dataset_free(&ds);

    EXPECT_ERROR(dataset_load_jsonl(&ds, data_path("manifest_bad_caption.jsonl"), NULL, 0), CN_E_DATA,
                 "manifest_bad_caption.jsonl:3: caption: expected a string, got an array");
    EXPECT_ERROR(dataset_load_jsonl(&ds, data_path("manifest_bad_json.jsonl"), NULL, 0), CN_E_DATA,
                 "manifest_bad_json.jsonl:2: invalid JSON (column");
    EXPECT_ERROR(dataset_load_jsonl(&ds, data_path("manifest_bad_negative.jsonl"), NULL, 0), CN_E_DATA,
                 "manifest_bad_negative.jsonl:1: negatives[1]: expected a string");
    EXPECT_ERROR(dataset_load_jsonl(&ds, data_path("manifest_no_image.jsonl"), NULL, 0), CN_E_DATA,
                 "manifest_no_image.jsonl:2: image: missing");
    EXPECT_ERROR(dataset_load_jsonl(&ds, data_path("manifest_bad_id.jsonl"), NULL, 0), CN_E_DATA,
                 "manifest_bad_id.jsonl:1: id: expected an integer, got a string");
    EXPECT_ERROR(dataset_load_jsonl(&ds, data_path("manifest_not_object.jsonl"), NULL, 0), CN_E_DATA,
                 "manifest_not_object.jsonl:1: expected a JSON object");
    EXPECT_ERROR(dataset_load_jsonl(&ds, data_path("nope.jsonl"), NULL, 0), CN_E_DATA, "nope.jsonl: cannot open");
}

// An escaped NUL would silently cut a caption short in cJSON: refused. An escaped backslash
// followed by "u0000" is ordinary text.
static void test_escaped_nul(void) {
    char dir[] = "/tmp/clipneg_test_nul_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/m.jsonl", dir);
    FILE *fp = fopenCheck(path, "wb");
    fputs("{\"image\": \"a.jpg\", \"caption\": \"a \\\\u0000 b\"}\n"
          "{\"image\": \"a.jpg\", \"caption\": \"cut\\u0000 here\"}\n",
          fp);
    fcloseCheck(fp);
    Dataset ds;
    EXPECT_ERROR(dataset_load_jsonl(&ds, path, NULL, 0), CN_E_DATA, "m.jsonl:2: \\u0000 in a string is not supported");
    fp = fopenCheck(path, "wb");
    fputs("{\"image\": \"a.jpg\", \"caption\": \"a \\\\u0000 b\"}\n", fp);
    fcloseCheck(fp);
    CHECK_INT(dataset_load_jsonl(&ds, path, NULL, 0), CN_OK);
    CHECK_STR(ds.captions[0].text, "a \\u0000 b");
    dataset_free(&ds);
    remove(path);
    rmdir(dir);
}

// Duplicate caption ids in a manifest: first kept, counted.
static void test_jsonl_duplicates(void) {
    char dir[] = "/tmp/clipneg_test_jsonl_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/m.jsonl", dir);
    FILE *fp = fopenCheck(path, "wb");
    fputs("{\"image\": \"a.jpg\", \"caption\": \"first\", \"id\": 3}\r\n"
          "{\"image\": \"b.jpg\", \"caption\": \"second\", \"id\": 3}\r\n"
          "{\"image\": \"a.jpg\", \"caption\": \"third\", \"id\": 1}",  // CRLF, no final newline
          fp);
    fcloseCheck(fp);
    Dataset ds;
    CHECK_INT(dataset_load_jsonl(&ds, path, NULL, 0), CN_OK);
    CHECK_INT(ds.n_duplicate_ids, 1);
    CHECK_INT(ds.n_images, 2);
    CHECK_INT(ds.n_images_without_captions, 1);  // b.jpg: its only caption had a taken id
    CHECK_INT(ds.n_captions, 2);
    CHECK_STR(ds.captions[0].text, "third");     // image a.jpg, ids 1 then 3
    CHECK_STR(ds.captions[1].text, "first");
    dataset_free(&ds);
    remove(path);
    rmdir(dir);
}

// ---- streamed datasets (dataset_open_coco) ----------------------------------------------------------

// dataset_open_coco == dataset_load_coco (check_same_dataset below).
static void check_same_dataset(Dataset *a, Dataset *b);

static void check_streamed_equals_resident(const char *caps, const char *inst, int max_images) {
    Dataset a, b;
    int ra = dataset_load_coco(&a, caps, "imgs", inst, max_images);
    int rb = dataset_open_coco(&b, caps, "imgs", inst, max_images);
    CHECK_INT(ra, CN_OK);
    CHECK_INT(rb, CN_OK);
    if (ra == CN_OK && rb == CN_OK) check_same_dataset(&a, &b);
    if (ra == CN_OK) dataset_free(&a);
    if (rb == CN_OK) dataset_free(&b);
}

// b (streamed) equals a (resident) field by field, negatives included; b's captions are read back
// forwards, backwards and in jumps, so the window is re-read many times.
static void check_same_dataset(Dataset *a, Dataset *b) {
    CHECK(b->captions == NULL);  // the index holds no caption text, only keys
    CHECK(b->stream != NULL);
    CHECK_INT(b->n_captions, a->n_captions);
    CHECK_INT(b->n_images, a->n_images);
    CHECK_INT(b->n_duplicate_ids, a->n_duplicate_ids);
    CHECK_INT(b->n_captions_without_image, a->n_captions_without_image);
    CHECK_INT(b->n_empty_captions, a->n_empty_captions);
    CHECK_INT(b->n_invalid_utf8, a->n_invalid_utf8);
    CHECK_INT(b->n_dropped_by_max_images, a->n_dropped_by_max_images);
    for (int i = 0; i < a->n_images && i < b->n_images; i++) {
        CHECK_INT(b->images[i].id, a->images[i].id);
        CHECK_STR(b->images[i].file_name, a->images[i].file_name);
        CHECK_INT(b->images[i].first_caption, a->images[i].first_caption);
        CHECK_INT(b->images[i].n_captions, a->images[i].n_captions);
        CHECK_INT(b->images[i].n_categories, a->images[i].n_categories);
    }
    int n = a->n_captions < b->n_captions ? a->n_captions : b->n_captions, bad = 0;
    for (int pass = 0; pass < 3; pass++)
        for (int k = 0; k < (pass == 2 ? 100 : n); k++) {
            int c = pass == 0 ? k : pass == 1 ? n - 1 - k : (int)((long long)k * 7919 % n);
            const DsCaption *x = &a->captions[c], *y = dataset_caption(b, c);
            int same = y->id == x->id && y->image_index == x->image_index && !strcmp(y->text, x->text) &&
                       dataset_caption_id(b, c) == x->id && dataset_caption_image(b, c) == x->image_index &&
                       y->n_negatives == x->n_negatives;
            for (int j = 0; same && j < x->n_negatives; j++) same = !strcmp(y->negatives[j], x->negatives[j]);
            bad += !same;
        }
    CHECK_INT(bad, 0);
}

static void write_text(const char *path, const char *text) {
    FILE *fp = fopenCheck(path, "wb");
    fputs(text, fp);
    fcloseCheck(fp);
}

static void test_streamed(const char *shared) {
    char caps[1024], inst[1024];
    snprintf(caps, sizeof caps, "%s/data/coco-mini/annotations/captions_val2017.json", shared);
    snprintf(inst, sizeof inst, "%s/data/coco-mini/annotations/instances_val2017.json", shared);
    if (access(caps, R_OK) == 0) {
        check_streamed_equals_resident(caps, inst, 0);
        check_streamed_equals_resident(caps, NULL, 10);
    }
    check_streamed_equals_resident(data_path("coco_small.json"), data_path("instances_small.json"), 0);
    check_streamed_equals_resident(data_path("coco_small.json"), NULL, 2);

    // Layouts the index pass must take as they are: "annotations" before "images", brackets and
    // escaped quotes inside strings, nested values to skip, a later repeated key (the first counts,
    // as in cJSON), empty and blank captions, no spaces at all.
    char dir[] = "/tmp/clipneg_test_stream_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/layout.json", dir);
    write_text(path, "{\"info\":{\"a\":[1,{\"b\":\"]}\"}],\"c\":null},\"annotations\":[{\"id\":3,\"image_id\":2,"
                     "\"caption\":\"say \\\"[hi]\\\" {x}\"},{\"id\":1,\"image_id\":2,\"caption\":\"\"},{\"id\":2,"
                     "\"image_id\":9,\"caption\":\"orphan\"},{\"id\":1,\"image_id\":1,\"caption\":\"dup\"},{\"id\":4,"
                     "\"image_id\":1,\"caption\":\" \\u00e9t\\u00e9 \\ud83d\\ude00\"}],\"images\":[{\"id\":2,"
                     "\"file_name\":\"b.jpg\"},{\"id\":1,\"file_name\":\"a.jpg\"}],\"annotations\":[]}");
    Dataset ds;
    CHECK_INT(dataset_open_coco(&ds, path, dir, NULL, 0), CN_OK);
    if (ds.n_captions == 3) {
        CHECK_INT(ds.n_duplicate_ids, 1);
        CHECK_INT(ds.n_captions_without_image, 1);
        CHECK_INT(ds.n_empty_captions, 1);
        CHECK_STR(dataset_caption(&ds, 0)->text, " \xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80");  // image 1: id 4
        CHECK_STR(dataset_caption(&ds, 1)->text, "");                                       // image 2: id 1
        CHECK_STR(dataset_caption(&ds, 2)->text, "say \"[hi]\" {x}");                       // image 2: id 3
    } else {
        CHECK_INT(ds.n_captions, 3);
    }
    dataset_free(&ds);
    check_streamed_equals_resident(path, NULL, 0);
    // Many annotations (several offset marks and windows), spread over the images in file order.
    FILE *fp = fopenCheck(path, "wb");
    fputs("{\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\"}, {\"id\": 2, \"file_name\": \"b.jpg\"}],\n"
          " \"annotations\": [\n", fp);
    for (int i = 0; i < 3000; i++)
        fprintf(fp, "%s  {\"image_id\": %d, \"id\": %d, \"caption\": \"caption number %d\"}", i ? ",\n" : "",
                1 + (i * 7) % 2, (i * 7919) % 3000, i);
    fputs("\n]}\n", fp);
    fcloseCheck(fp);
    check_streamed_equals_resident(path, NULL, 0);
    // A key with an escape is left to the whole-document parse: same result, held in memory.
    write_text(path, "{\"imag\\u0065s\": [{\"id\": 1, \"file_name\": \"a.jpg\"}], \"annotations\": "
                     "[{\"id\": 1, \"image_id\": 1, \"caption\": \"x\"}]}");
    CHECK_INT(dataset_open_coco(&ds, path, dir, NULL, 0), CN_OK);
    CHECK_INT(ds.n_captions, 1);
    if (ds.n_captions == 1) CHECK_STR(dataset_caption(&ds, 0)->text, "x");
    dataset_free(&ds);
    // A caption changed after the index was made is noticed (the job would stop), not misread.
    write_text(path, "{\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\"}], \"annotations\": "
                     "[{\"id\": 1, \"image_id\": 1, \"caption\": \"x\"}]}");
    CHECK_INT(dataset_open_coco(&ds, path, dir, NULL, 0), CN_OK);
    write_text(path, "{\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\"}], \"annotations\": "
                     "[{\"id\": 7, \"image_id\": 1, \"caption\": \"x\"}]}");
    DsCaption one;
    CHECK_INT(ds_stream_read(ds.stream, ds.keys, 1, &one), CN_E_DATA);
    CHECK(strstr(cn_last_error(), "annotations[0] no longer matches the index") != NULL);
    dataset_free(&ds);
    remove(path);
    rmdir(dir);
}

// ---- streamed JSONL manifests (dataset_open_jsonl) ---------------------------------------------------

static void check_jsonl_streamed_equals_resident(const char *path, int max_images) {
    Dataset a, b;
    int ra = dataset_load_jsonl(&a, path, NULL, max_images);
    int rb = dataset_open_jsonl(&b, path, NULL, max_images);
    CHECK_INT(ra, CN_OK);
    CHECK_INT(rb, CN_OK);
    if (ra == CN_OK && rb == CN_OK) check_same_dataset(&a, &b);
    if (ra == CN_OK) dataset_free(&a);
    if (rb == CN_OK) dataset_free(&b);
}

static void test_jsonl_streamed(void) {
    check_jsonl_streamed_equals_resident(data_path("manifest_ok.jsonl"), 0);
    check_jsonl_streamed_equals_resident(data_path("manifest_ok.jsonl"), 1);
    char dir[] = "/tmp/clipneg_test_jsonl_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/m.jsonl", dir);
    // Many lines (several marks and windows): blank lines, lines without "id" (the line number),
    // repeated ids, long lines (past the 8 KiB read buffer), negatives, no final newline.
    FILE *fp = fopenCheck(path, "wb");
    for (int i = 0; i < 3000; i++) {
        if (i % 97 == 5) fputs("   \n", fp);
        fprintf(fp, "{\"image\": \"im%d.jpg\", \"caption\": \"caption %d", (i * 13) % 41, i);
        if (i % 501 == 0) for (int k = 0; k < 1200; k++) fputs(" long", fp);
        fputs("\"", fp);
        if (i % 3) fprintf(fp, ", \"id\": %d", (i * 7919) % 2500 + 10000);
        if (i % 4 == 1) fprintf(fp, ", \"negatives\": [\"no %d\", \"\"]", i);
        fputs(i == 2999 ? "}" : "}\n", fp);
    }
    fcloseCheck(fp);
    check_jsonl_streamed_equals_resident(path, 0);
    check_jsonl_streamed_equals_resident(path, 7);
    // A line changed after the index was made is noticed, not misread.
    write_text(path, "{\"image\": \"a.jpg\", \"caption\": \"x\", \"id\": 1}\n");
    Dataset ds;
    CHECK_INT(dataset_open_jsonl(&ds, path, NULL, 0), CN_OK);
    write_text(path, "{\"image\": \"a.jpg\", \"caption\": \"x\", \"id\": 2}\n");
    DsCaption one;
    CHECK_INT(ds_stream_read(ds.stream, ds.keys, 1, &one), CN_E_DATA);
    CHECK(strstr(cn_last_error(), "m.jsonl:1: no longer matches the index") != NULL);
    dataset_free(&ds);
    remove(path);
    rmdir(dir);
}

int main(void) {
    const char *src = getenv("CLIPNEG_SOURCE_DIR");
    if (src && chdir(src) != 0) {
        fprintf(stderr, "cannot chdir to %s\n", src);
        return 1;
    }
    const char *shared = getenv("CLIPNEG_SHARED");
    test_coco_mini(shared ? shared : "../shared");
    test_coco_small();
    test_coco_errors();
    test_invalid_utf8();
    test_utf8_sanitize();
    test_jsonl();
    test_jsonl_duplicates();
    test_escaped_nul();
    test_streamed(shared ? shared : "../shared");
    test_jsonl_streamed();
    if (g_failures) {
        fprintf(stderr, "%d check(s) failed\n", g_failures);
        return 1;
    }
    printf("test_dataset: all checks passed\n");
    return 0;
}
