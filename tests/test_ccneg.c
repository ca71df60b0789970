// test_ccneg.c — ccneg_load (src/dataset_ccneg.c) on tests/fixtures/torch/ccneg_mini.pt, a torch.save
// file in CC-Neg's ccneg_preprocessed.pt layout, against ccneg_mini.expected.json: both written by
// tests/reference/make_torch_fixtures.py, whose expectation re-implements upstream's rule (the last
// N entries; commas removed from the negated caption) in Python. Also: the default split keeps
// every entry of a file shorter than 40,000, and a wrong layout is refused naming the file.
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/items.h"
#include "test_check.h"

#define DIR "tests/fixtures/torch/"

int main(void) {
    char *text = NULL;
    if (cn_read_file(DIR "ccneg_mini.expected.json", &text, NULL) != CN_OK) {
        fprintf(stderr, "%s\n", cn_last_error());
        return 1;
    }
    cJSON *exp = cJSON_Parse(text);
    free(text);
    int last_n = cJSON_GetObjectItem(exp, "last_n")->valueint;
    const char *prefix = cJSON_GetObjectItem(exp, "strip_prefix")->valuestring;
    const cJSON *images = cJSON_GetObjectItem(exp, "images"), *items = cJSON_GetObjectItem(exp, "items");

    ItemSet s;
    int rc = ccneg_load(&s, DIR "ccneg_mini.pt", "/data/ccneg_images", prefix, last_n);
    CHECK_MSG(rc == CN_OK, "ccneg_load: %s", cn_last_error());
    if (rc == CN_OK) {
        CHECK_INT(s.n_items, cJSON_GetArraySize(items));
        CHECK_INT(s.n_images, cJSON_GetArraySize(images));
        for (int i = 0; i < s.n_images && i < cJSON_GetArraySize(images); i++)
            CHECK_STR(s.images[i], cJSON_GetArrayItem(images, i)->valuestring);
        for (int i = 0; i < s.n_items && i < cJSON_GetArraySize(items); i++) {
            const Item *it = &s.items[i];
            const cJSON *e = cJSON_GetArrayItem(items, i);
            CHECK_INT(it->kind, ITEM_CHOICE);
            CHECK_INT(it->n, 2);
            CHECK_INT(it->answer, 0);
            CHECK_INT(it->line, cJSON_GetObjectItem(e, "entry")->valueint);
            CHECK_STR(s.images[it->image], cJSON_GetObjectItem(e, "image")->valuestring);
            CHECK_STR(it->texts[0], cJSON_GetObjectItem(e, "caption")->valuestring);
            CHECK_STR(it->texts[1], cJSON_GetObjectItem(e, "negated")->valuestring);
            CHECK_STR(s.types[it->type], "ccneg");
        }
        CHECK_STR(s.image_root, "/data/ccneg_images");
        CHECK_INT(s.k_max, 2);
        CHECK_INT(s.k_text, 2);
        CHECK_INT(s.k_image, 1);
        printf("ccneg_mini.pt: %d items, %d images; item 0: '%s' / '%s'\n", s.n_items, s.n_images, s.items[0].texts[0],
               s.items[0].texts[1]);
        items_free(&s);
    }
    // Default split (40,000) on a 7-entry file: all of it; no strip prefix: absolute paths kept.
    rc = ccneg_load(&s, DIR "ccneg_mini.pt", NULL, NULL, 0);
    CHECK_MSG(rc == CN_OK, "ccneg_load: %s", cn_last_error());
    if (rc == CN_OK) {
        CHECK_INT(s.n_items, 7);
        CHECK_INT(s.n_images, 6);
        CHECK(s.images[0][0] == '/');
        CHECK_STR(s.image_root, "tests/fixtures/torch");
        items_free(&s);
    }
    // A checkpoint is not CC-Neg: refused with the file named.
    rc = ccneg_load(&s, DIR "bare_f16.pt", NULL, NULL, 0);
    CHECK_MSG(rc == CN_E_DATA && strstr(cn_last_error(), "bare_f16.pt") && strstr(cn_last_error(), "image_paths"),
              "got %d: %s", rc, cn_last_error());
    printf("  refused: %s\n", cn_last_error());
    cJSON_Delete(exp);
    printf("%s\n", g_failures ? "FAILED" : "all ok");
    return g_failures ? 1 : 0;
}
