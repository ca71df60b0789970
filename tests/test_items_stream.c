// test_items_stream.c — the streamed item manifest (src/dataset_items_stream.c): a generated
// manifest of 1000 items over several read-back windows, with blank and blank-only lines, CRLF
// line ends and ill-formed UTF-8, read back through items_get in order, backwards and at random,
// and through the induced dataset's dataset_caption; every field is compared with what the
// generator wrote (the expected repairs are Python's bytes.decode("utf-8", errors="replace"):
// b"\xff" -> U+FFFD, b"\xe2\x82 " -> U+FFFD + " "). A file changed under the index is refused.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clipneg/common.h"
#include "clipneg/items.h"
#include "../src/items_internal.h"  // items_stream_read: a changed file is noticed
#include "test_check.h"

enum { N = 1000 };

typedef struct {
    int line, kind, n, answer, image, bad_utf8;
    char texts[5][96]; // as expected after repair
    double box[5][4];
} Want;

static Want W[N];
static int g_bad_expected;

// Item i: choice (n = 2 + i % 4), pair or region (explicit boxes), on image i / 3 % 7.
static void write_manifest(const char *path) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    int line = 0;
    for (int i = 0; i < N; i++) {
        if (i % 37 == 5) fputs("\n", f), line++;          // an empty line: skipped, counted
        if (i % 53 == 7) fputs("  \t \r\n", f), line++;   // blanks only (and a CR): skipped, counted
        Want *w = &W[i];
        w->line = ++line;
        w->image = i / 3 % 7;
        int shape = i % 5 == 4 ? 2 : i % 5 == 3 ? 1 : 0;
        const char *bad = "", *bad_fixed = "";
        if (i % 11 == 0) bad = " \xff", bad_fixed = " \xef\xbf\xbd";     // a lone invalid byte
        if (i % 11 == 6) bad = " \xe2\x82 x", bad_fixed = " \xef\xbf\xbd x"; // a cut 3-byte sequence
        w->bad_utf8 = bad[0] != 0;
        g_bad_expected += w->bad_utf8;
        fprintf(f, "{\"image\": \"img%d.jpg\", ", w->image);
        if (shape == 0) {
            w->kind = ITEM_CHOICE, w->n = 2 + i % 4, w->answer = i % w->n;
            fputs("\"candidates\": [", f);
            for (int k = 0; k < w->n; k++) {
                fprintf(f, "%s\"item %d cand %d%s\"", k ? ", " : "", i, k, k == 1 ? bad : "");
                snprintf(w->texts[k], sizeof w->texts[k], "item %d cand %d%s", i, k, k == 1 ? bad_fixed : "");
            }
            fprintf(f, "], \"answer\": %d", w->answer);
        } else if (shape == 1) {
            w->kind = ITEM_CHOICE, w->n = 2, w->answer = 0;
            fprintf(f, "\"caption\": \"cap %d\", \"negated\": \"neg %d%s\"", i, i, bad);
            snprintf(w->texts[0], sizeof w->texts[0], "cap %d", i);
            snprintf(w->texts[1], sizeof w->texts[1], "neg %d%s", i, bad_fixed);
        } else {
            w->kind = ITEM_REGION, w->n = 2 + i % 3, w->answer = i % w->n;
            fprintf(f, "\"text\": \"region %d%s\", \"boxes\": [", i, bad);
            snprintf(w->texts[0], sizeof w->texts[0], "region %d%s", i, bad_fixed);
            for (int k = 0; k < w->n; k++) {
                double b[4] = {i + 0.5, k + 0.25, 10 + k, 20 + i % 9};
                memcpy(w->box[k], b, sizeof b);
                fprintf(f, "%s[%.2f, %.2f, %.0f, %.0f]", k ? ", " : "", b[0], b[1], b[2], b[3]);
            }
            fprintf(f, "], \"answer\": %d", w->answer);
        }
        fputs(i % 4 == 1 ? "}\r\n" : "}\n", f);
    }
    fputs("   \n", f); // a blank last line
    fclose(f);
}

static void check_item(const ItemSet *s, int i) {
    const Item *it = items_get(s, i);
    const Want *w = &W[i];
    if (it->line != w->line || (int)it->kind != w->kind || it->n != w->n || it->answer != w->answer) {
        fprintf(stderr, "FAIL: item %d: line %d kind %d n %d answer %d, want %d %d %d %d\n", i, it->line, it->kind, it->n,
                it->answer, w->line, w->kind, w->n, w->answer);
        g_failures++;
        return;
    }
    char img[32];
    snprintf(img, sizeof img, "img%d.jpg", w->image);
    CHECK_STR(s->images[it->image], img);
    int nt = w->kind == ITEM_CHOICE ? w->n : 1;
    for (int k = 0; k < nt; k++) CHECK_STR(it->texts[k], w->texts[k]);
    if (w->kind == ITEM_REGION)
        for (int k = 0; k < w->n; k++) {
            CHECK(!memcmp(it->boxes[k], w->box[k], sizeof w->box[k]));
            CHECK_INT(it->ann_ids[k], -1);
        }
    else
        CHECK(it->boxes == NULL && it->ann_ids == NULL);
}

static void test_windows(const char *path) {
    ItemSet s;
    int rc = items_load(&s, path, "/imgs", NULL, 0);
    CHECK_INT(rc, CN_OK);
    if (rc != CN_OK) {
        fprintf(stderr, "  %s\n", cn_last_error());
        return;
    }
    CHECK_INT(s.n_items, N);
    CHECK(s.items == NULL && s.stream != NULL); // streamed: nothing but keys held
    CHECK_INT(s.n_images, 7);
    CHECK_INT(s.n_types, 3); // mcq, ccneg, region (defaults, in order of first appearance)
    CHECK_INT(s.n_invalid_utf8, g_bad_expected);
    CHECK_INT(s.k_text, 5);
    CHECK_INT(s.k_image, 4);
    for (int i = 0; i < N; i++) check_item(&s, i);          // forwards: one window after the other
    for (int i = N - 1; i >= 0; i -= 3) check_item(&s, i);  // backwards: a window per step
    srand(7);
    for (int j = 0; j < 300; j++) check_item(&s, rand() % N); // anywhere
    // several items of one window at once (the pointers stay valid inside it)
    const Item *a = items_get(&s, 0), *b = items_get(&s, 100), *c = items_get(&s, 255);
    CHECK_STR(a->texts[0], W[0].texts[0]);
    CHECK_STR(b->texts[0], W[100].texts[0]);
    CHECK_STR(c->texts[0], W[255].texts[0]);

    // the induced dataset: caption id = item index, text = its correct candidate, read back
    Dataset ds;
    CHECK_INT(items_to_dataset(&s, &ds), CN_OK);
    CHECK_INT(ds.n_captions, N);
    CHECK(ds.captions == NULL && ds.stream != NULL);
    for (int c = 0; c < ds.n_captions; c++) {
        int i = (int)dataset_caption_id(&ds, c);
        CHECK(i >= 0 && i < N);
        if (i < 0 || i >= N) break;
        const Want *w = &W[i];
        CHECK_STR(dataset_caption(&ds, c)->text, w->kind == ITEM_CHOICE ? w->texts[w->answer] : w->texts[0]);
        CHECK_INT(dataset_caption_image(&ds, c), w->image);
    }
    dataset_free(&ds);

    // the file changed under the index: refused, naming the line
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (f) {
        fputs("{\"image\": \"img9.jpg\"", f); // line 1 now names another image
        fclose(f);
    }
    Item out[2];
    CHECK_INT(items_stream_read(&s, 0, 2, out), CN_E_DATA);
    CHECK(strstr(cn_last_error(), ":1: no longer matches the index") != NULL);
    items_free(&s);
}

static void test_max_images(const char *path) {
    ItemSet s;
    int rc = items_load(&s, path, NULL, NULL, 2); // images img0, img1: items 0..5, 21..26, ...
    CHECK_INT(rc, CN_OK);
    if (rc != CN_OK) return;
    int m = 0;
    for (int i = 0; i < N; i++) {
        if (W[i].image >= 2) continue;
        if (m >= s.n_items) break;
        const Item *it = items_get(&s, m++);
        CHECK_INT(it->line, W[i].line);
        CHECK_STR(it->texts[0], W[i].texts[0]);
    }
    CHECK_INT(m, s.n_items);
    items_free(&s);
}

int main(void) {
    char path[] = "/tmp/test_items_stream_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    write_manifest(path);
    test_max_images(path);
    test_windows(path); // (last: it overwrites line 1)
    remove(path);
    if (g_failures) {
        fprintf(stderr, "items_stream: %d check(s) failed\n", g_failures);
        return 1;
    }
    printf("items_stream: all checks passed\n");
    return 0;
}
