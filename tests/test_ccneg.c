// test_ccneg.c — `[dataset] format = ccneg` (src/dataset_ccneg.c, through items_load_bench) on
// tests/fixtures/torch/ccneg_mini.pt, a torch.save file in CC-Neg's ccneg_preprocessed.pt layout,
// against ccneg_mini.expected.json: both written by tests/reference/make_torch_fixtures.py, whose
// expectation re-implements upstream's rule (the last N entries; commas removed from the negated
// caption) in Python. Also: last_n = 0 and the default 40,000 keep every entry of a 7-entry file,
// the first-maximum tie rule is set, and a wrong layout is refused naming the file.
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/config.h"
#include "clipneg/items.h"
#include "test_check.h"

#define DIR "tests/fixtures/torch/"

static JobConfig job_for(const char *path, const char *images, const char *prefix, int last_n) {
    JobConfig j;
    memset(&j, 0, sizeof j);
    j.dataset_kind = DATASET_CCNEG;
    j.dataset_path = (char *)path;
    j.images_dir = (char *)images;
    j.image_prefix = (char *)prefix;
    j.last_n = last_n;
    j.crop_expand = 1.0;
    return j;
}

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

    CHECK(items_format_is_bench(DATASET_CCNEG));
    ItemSet s;
    JobConfig j = job_for(DIR "ccneg_mini.pt", "/data/ccneg_images", prefix, last_n);
    int rc = items_load_bench(&s, &j);
    CHECK_MSG(rc == CN_OK, "ccneg: %s", cn_last_error());
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
        CHECK_STR(s.format, "ccneg");
        CHECK_INT(s.tie_first_max, 1);
        CHECK_INT(s.k_max, 2);
        CHECK_INT(s.k_text, 2);
        CHECK_INT(s.k_image, 1);
        printf("ccneg_mini.pt: %d items, %d images; item 0: '%s' / '%s'\n", s.n_items, s.n_images, s.items[0].texts[0],
               s.items[0].texts[1]);
        items_free(&s);
    }
    // last_n = 0 (all) and the default split (40,000) on a 7-entry file: all of it; no prefix:
    // absolute paths kept as written (missing: the image phase records them).
    for (int split = 0; split <= 40000; split += 40000) {
        j = job_for(DIR "ccneg_mini.pt", "/data/ccneg_images", NULL, split);
        rc = items_load_bench(&s, &j);
        CHECK_MSG(rc == CN_OK, "ccneg: %s", cn_last_error());
        if (rc == CN_OK) {
            CHECK_INT(s.n_items, 7);
            CHECK_INT(s.n_images, 6);
            CHECK_STR(s.images[0], "/workspace/datasets/cc3m/cc3m_subset_images_extracted_final/000000000.jpg");
            CHECK_INT(s.items[5].image, s.items[3].image); // one path, one image
            items_free(&s);
        }
    }
    // A checkpoint is not CC-Neg: refused with the file named.
    j = job_for(DIR "bare_f16.pt", "/data/ccneg_images", NULL, 40000);
    rc = items_load_bench(&s, &j);
    CHECK_MSG(rc == CN_E_DATA && strstr(cn_last_error(), "bare_f16.pt") && strstr(cn_last_error(), "image_paths"),
              "got %d: %s", rc, cn_last_error());
    printf("  refused: %s\n", cn_last_error());
    cJSON_Delete(exp);
    printf("%s\n", g_failures ? "FAILED" : "all ok");
    return g_failures ? 1 : 0;
}
