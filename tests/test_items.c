// test_items.c — the item manifest (choice / CC-Neg pairs / region items), its refusals with
// FILE:LINE messages, the dataset it induces, the crop geometry, and crop pixels against PIL +
// open_clip (golden data: tests/reference/items_crops.py -> tests/fixtures/items/crops_r32.*).
// Runs from the repository root (ctest sets the working directory); coco-mini via CLIPNEG_SHARED.
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clipneg/common.h"
#include "clipneg/config.h"
#include "clipneg/image.h"
#include "clipneg/items.h"
#include "test_check.h"

static const char *D = "tests/data/items";
static char *dpath(const char *name) {
    static char buf[8][1024];
    static int k = 0;
    char *p = buf[k++ % 8];
    snprintf(p, 1024, "%s/%s", D, name);
    return p;
}

// A manifest must be refused with CN_E_DATA and a message holding every fragment (NULL-terminated).
static void expect_refused(const char *file, const char *instances, const char *f1, const char *f2, int line) {
    ItemSet s;
    int rc = items_load(&s, dpath(file), NULL, instances ? dpath(instances) : NULL, 0);
    const char *msg = cn_last_error();
    if (rc != CN_E_DATA || !strstr(msg, f1) || (f2 && !strstr(msg, f2))) {
        fprintf(stderr, "FAIL test_items.c:%d: %s: rc=%d, message '%s' lacks '%s' / '%s'\n", line, file, rc, msg, f1,
                f2 ? f2 : "");
        g_failures++;
    }
    if (rc == CN_OK) items_free(&s);
    CHECK(s.n_items == 0 && s.items == NULL); // left empty on failure
}
#define REFUSED(file, inst, f1, f2) expect_refused(file, inst, f1, f2, __LINE__)

static void test_ok_manifest(void) {
    ItemSet s;
    int rc = items_load(&s, dpath("ok.jsonl"), "/imgs", NULL, 0);
    if (rc == CN_OK) {
        fprintf(stderr, "FAIL: ok.jsonl has an ann_id line but no instances file: must be refused\n");
        g_failures++;
        items_free(&s);
    }
    CHECK(strstr(cn_last_error(), "ok.jsonl:6: ann_id: needs a COCO instances file") != NULL);

    // the same lines without the ann_id one: a manifest cut to lines 1-5 and 7
    char tmp[] = "/tmp/test_items_XXXXXX";
    int fd = mkstemp(tmp);
    CHECK(fd >= 0);
    FILE *in = fopen(dpath("ok.jsonl"), "r"), *out = fdopen(fd, "w");
    char line[4096];
    int n = 0;
    while (in && out && fgets(line, sizeof line, in))
        if (++n != 6) fputs(line, out);
    if (in) fclose(in);
    if (out) fclose(out);
    rc = items_load(&s, tmp, "/imgs", NULL, 0);
    CHECK_INT(rc, CN_OK);
    if (rc == CN_OK) {
        CHECK_INT(s.n_items, 5);
        CHECK_INT(s.n_images, 3); // 370208, 453302, 482585 in order of first appearance
        CHECK_STR(s.images[0], "000000370208.jpg");
        CHECK_STR(s.images[2], "000000482585.jpg");
        CHECK_INT(s.n_types, 4); // hybrid, ccneg, region, negation
        CHECK_STR(s.types[0], "hybrid");
        CHECK_STR(s.types[1], "ccneg");
        CHECK_STR(s.types[2], "region");
        CHECK_STR(s.types[3], "negation");
        CHECK_INT(s.k_max, 3);
        CHECK_INT(s.k_text, 3);
        CHECK_INT(s.k_image, 2);
        const Item *a = items_get(&s, 0), *b = items_get(&s, 1), *c = items_get(&s, 2), *r = items_get(&s, 3), *m = items_get(&s, 4);
        CHECK_INT(a->kind, ITEM_CHOICE);
        CHECK_INT(a->n, 3);
        CHECK_INT(a->answer, 0);
        CHECK_INT(a->line, 1);
        CHECK_STR(a->texts[2], "This image does not feature a bicycle.");
        CHECK_INT(b->n, 2); // caption + negated: answer 0, type ccneg by default
        CHECK_INT(b->answer, 0);
        CHECK_INT(b->type, 1);
        CHECK_STR(b->texts[1], "a kitchen with a microwave and a toaster but no refrigerator");
        CHECK_INT(c->line, 4); // the blank line 3 is skipped but counted
        CHECK_INT(c->image, 0);
        CHECK_INT(c->type, 1); // explicit "ccneg" = the default name: one type
        CHECK_INT(r->kind, ITEM_REGION);
        CHECK_INT(r->n, 2);
        CHECK_INT(r->answer, 1);
        CHECK(r->boxes[0][0] == 22.5 && r->boxes[1][3] == 147.4);
        CHECK_INT(r->ann_ids[1], -1);
        CHECK_STR(r->texts[0], "the train that is not green");
        CHECK_INT(m->type, 3);
        CHECK_INT(m->answer, 1);

        // the induced dataset: one caption per item (its correct text), images by first appearance
        Dataset ds;
        CHECK_INT(items_to_dataset(&s, &ds), CN_OK);
        CHECK_INT(ds.n_images, 3);
        CHECK_INT(ds.n_captions, 5);
        CHECK_STR(ds.images[1].file_name, "000000453302.jpg");
        CHECK_INT(ds.images[0].n_captions, 2); // items 0 and 2
        CHECK_STR(dataset_caption(&ds, 0)->text, "This image features a bicycle, but not a car.");
        CHECK_STR(dataset_caption(&ds, 1)->text, "A bike parked in front of a parking meter.");
        CHECK_INT(dataset_caption(&ds, 1)->id, 2); // caption id = item index
        CHECK_STR(dataset_caption(&ds, 2)->text, "a kitchen with a refrigerator a microwave and a toaster");
        CHECK_STR(dataset_caption(&ds, 3)->text, "This image does not feature a person."); // answer 1 of item 4
        CHECK_STR(dataset_caption(&ds, 4)->text, "the train that is not green");
        char *p = dataset_image_path(&ds, 2);
        CHECK_STR(p, "/imgs/000000482585.jpg");
        free(p);
        dataset_free(&ds);
        items_free(&s);
    }
    // max_images = 1: only the items of the first image
    rc = items_load(&s, tmp, NULL, NULL, 1);
    CHECK_INT(rc, CN_OK);
    if (rc == CN_OK) {
        CHECK_INT(s.n_items, 2);
        CHECK_INT(s.n_images, 1);
        CHECK_INT(items_get(&s, 1)->line, 4);
        items_free(&s);
    }
    remove(tmp);
}

static void test_ann_items(void) {
    ItemSet s;
    int rc = items_load(&s, dpath("ann.jsonl"), NULL, dpath("instances_tiny.json"), 0);
    CHECK_INT(rc, CN_OK);
    if (rc != CN_OK) {
        fprintf(stderr, "  %s\n", cn_last_error());
        return;
    }
    // dog instances of image 1 without the crowd one (11), by id: 10, 12, 15
    const Item *a = items_get(&s, 0), *b = items_get(&s, 1);
    CHECK_INT(a->kind, ITEM_REGION);
    CHECK_INT(a->n, 3);
    CHECK_INT(a->ann_ids[0], 10);
    CHECK_INT(a->ann_ids[1], 12);
    CHECK_INT(a->ann_ids[2], 15);
    CHECK_INT(a->answer, 1);
    CHECK(a->boxes[1][0] == 50 && a->boxes[1][1] == 30 && a->boxes[1][2] == 30 && a->boxes[1][3] == 40);
    CHECK_INT(b->answer, 2);
    CHECK_STR(s.types[a->type], "region");
    CHECK_STR(s.types[b->type], "ref");
    CHECK_INT(s.k_image, 3);
    CHECK_INT(s.k_text, 1);
    CHECK_STR(s.image_root, "tests/data/items"); // the manifest's folder
    items_free(&s);
}

static void test_refusals(void) {
    REFUSED("bad_missing_answer.jsonl", NULL, "bad_missing_answer.jsonl:1: answer: missing", NULL);
    REFUSED("bad_answer_range.jsonl", NULL, "bad_answer_range.jsonl:2: answer: 3 is out of range", "3 candidates");
    REFUSED("bad_empty_candidates.jsonl", NULL, "bad_empty_candidates.jsonl:2: candidates: 0 given", NULL);
    REFUSED("bad_unknown_ann.jsonl", "instances_tiny.json", "bad_unknown_ann.jsonl:1: ann_id: unknown annotation id 999",
            "instances_tiny.json");
    REFUSED("bad_only_instance.jsonl", "instances_tiny.json", "bad_only_instance.jsonl:1: ann_id:", "only instance");
    REFUSED("bad_wrong_image.jsonl", "instances_tiny.json", "bad_wrong_image.jsonl:1: ann_id: annotation 12 belongs to image 1",
            NULL);
    REFUSED("bad_crowd.jsonl", "instances_tiny.json", "bad_crowd.jsonl:1: ann_id:", "crowd");
    REFUSED("bad_two_shapes.jsonl", NULL, "bad_two_shapes.jsonl:1: expected exactly one of", NULL);
    REFUSED("bad_box.jsonl", NULL, "bad_box.jsonl:1: boxes[1]: width and height must be > 0", NULL);
    REFUSED("bad_empty_text.jsonl", NULL, "bad_empty_text.jsonl:1: candidates[1]: expected a non-empty string", NULL);
    REFUSED("bad_type.jsonl", NULL, "bad_type.jsonl:1: type:", "comma");
    REFUSED("bad_pair_missing.jsonl", NULL, "bad_pair_missing.jsonl:1: negated", NULL);
    REFUSED("ann.jsonl", NULL, "ann.jsonl:1: ann_id: needs a COCO instances file", NULL);
    REFUSED("no_such_manifest.jsonl", NULL, "no_such_manifest.jsonl", NULL);
}

static void test_crop_window(void) {
    int32_t w[4];
    const double box[4] = {10.5, 20.25, 30, 40};
    CHECK_INT(items_crop_window(box, 1.0, 100, 100, w), 0);
    CHECK(w[0] == 10 && w[1] == 20 && w[2] == 41 && w[3] == 61); // floor / ceil of the box edges
    CHECK_INT(items_crop_window(box, 2.0, 100, 100, w), 0);      // centre (25.5, 40.25), half sizes 30, 40
    CHECK(w[0] == 0 && w[1] == 0 && w[2] == 56 && w[3] == 81);   // clamped at 0 (-4.5 and 0.25 -> 0)
    CHECK_INT(items_crop_window(box, 3.0, 60, 70, w), 0);
    CHECK(w[2] == 60 && w[3] == 70); // clamped at the image size
    const double outside[4] = {120, 5, 10, 10};
    CHECK_INT(items_crop_window(outside, 1.0, 100, 100, w), -1);
    // crop copy: a 4x3 image with distinct bytes, window [1, 3) x [1, 3)
    uint8_t rgb[3 * 4 * 3];
    for (int i = 0; i < (int)sizeof rgb; i++) rgb[i] = (uint8_t)i;
    const int32_t win[4] = {1, 1, 3, 3};
    uint8_t *c = items_crop_rgb(rgb, 4, 3, win);
    CHECK(c[0] == rgb[(1 * 4 + 1) * 3] && c[3 * 2] == rgb[(2 * 4 + 1) * 3] && c[3 * 4 - 1] == rgb[(2 * 4 + 2) * 3 + 2]);
    free(c);
}

// Crops against PIL.crop + open_clip's eval transform at R = 32 (tests/reference/items_crops.py).
// Tolerance 0.05 normalised units: the JPEG decoders differ (stb vs libjpeg-turbo, up to 3 levels
// = 3 / 255 / 0.2686 = 0.0438, docs/images.md); resize and crop are byte-exact to PIL.
static void test_crop_pixels(void) {
    const char *shared = getenv("CLIPNEG_SHARED");
    char list[1024];
    snprintf(list, sizeof list, "%s/data/coco-mini/val2017", shared ? shared : "../shared");
    FILE *ft = fopen("tests/fixtures/items/crops_r32.txt", "r"), *fb = fopen("tests/fixtures/items/crops_r32.f32", "rb");
    if (!ft || !fb) {
        fprintf(stderr, "FAIL: tests/fixtures/items/crops_r32.* missing\n");
        g_failures++;
        if (ft) fclose(ft);
        if (fb) fclose(fb);
        return;
    }
    const int R = 32, n = 3 * R * R;
    float *want = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n);
    char fname[256];
    double box[4], expand;
    int32_t ref[4];
    int cases = 0;
    double worst = 0;
    while (fscanf(ft, "%255s %lf %lf %lf %lf %lf %d %d %d %d", fname, &box[0], &box[1], &box[2], &box[3], &expand, &ref[0],
                  &ref[1], &ref[2], &ref[3]) == 10) {
        CHECK(fread(want, sizeof(float), n, fb) == (size_t)n);
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", list, fname);
        uint8_t *rgb = NULL;
        int W = 0, H = 0;
        if (image_load_rgb(path, &rgb, &W, &H) != CN_OK) {
            fprintf(stderr, "SKIP-LIKE FAIL: %s\n", cn_last_error());
            g_failures++;
            break;
        }
        int32_t win[4];
        CHECK_INT(items_crop_window(box, expand, W, H, win), 0);
        CHECK(win[0] == ref[0] && win[1] == ref[1] && win[2] == ref[2] && win[3] == ref[3]);
        uint8_t *crop = items_crop_rgb(rgb, W, H, win);
        CHECK_INT(image_preprocess(crop, win[2] - win[0], win[3] - win[1], R, CLIP_MEAN, CLIP_STD, got), CN_OK);
        double m = 0;
        for (int i = 0; i < n; i++) m = fmax(m, fabs((double)got[i] - want[i]));
        printf("crop %s [%d %d %d %d] (expand %.1f): max |diff| %.4f\n", fname, win[0], win[1], win[2], win[3], expand, m);
        worst = fmax(worst, m);
        free(crop);
        free(rgb);
        cases++;
    }
    CHECK_INT(cases, 6);
    CHECK(worst <= 0.05);
    free(want);
    free(got);
    fclose(ft);
    fclose(fb);
}

// The job-file keys of the item mode: format = items needs a manifest; crop_expand in [1, 10].
static int load_job(const char *dataset_lines, JobConfig *job) {
    char cwd[2048], path[] = "/tmp/test_items_job_XXXXXX";
    if (!getcwd(cwd, sizeof cwd)) return -1;
    int fd = mkstemp(path);
    FILE *fp = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!fp) return -1;
    fprintf(fp, "[model]\npath = %s/tests/fixtures/models/vit-tiny-openclip\n[dataset]\nformat = items\n%s"
                "[variants]\nfile = %s/jobs/variants/seed7.ini\n",
            cwd, dataset_lines, cwd);
    fclose(fp);
    int rc = job_load(job, path, NULL);
    remove(path);
    return rc;
}

static void test_job_keys(void) {
    JobConfig job;
    char lines[4096], cwd[2048];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK_INT(load_job("", &job), CN_E_CONFIG);
    CHECK(strstr(cn_last_error(), "[dataset] manifest: required key missing (format = items)") != NULL);
    snprintf(lines, sizeof lines, "manifest = %s/tests/data/items/ok.jsonl\n", cwd);
    CHECK_INT(load_job(lines, &job), CN_OK);
    CHECK_INT(job.dataset_kind, DATASET_ITEMS);
    CHECK(job.crop_expand == 1.0); // the default: the box itself
    job_free(&job);
    snprintf(lines, sizeof lines, "manifest = %s/tests/data/items/ok.jsonl\ncrop_expand = 1.25\n", cwd);
    CHECK_INT(load_job(lines, &job), CN_OK);
    CHECK(job.crop_expand == 1.25);
    job_free(&job);
    snprintf(lines, sizeof lines, "manifest = %s/tests/data/items/ok.jsonl\ncrop_expand = 0.5\n", cwd);
    CHECK_INT(load_job(lines, &job), CN_E_CONFIG);
    CHECK(strstr(cn_last_error(), ":6: [dataset] crop_expand: must be in [1, 10] (got 0.5)") != NULL);
    snprintf(lines, sizeof lines, "manifest = %s/tests/data/items/ok.jsonl\ncrop_expand = wide\n", cwd);
    CHECK_INT(load_job(lines, &job), CN_E_CONFIG);
    CHECK(strstr(cn_last_error(), "[dataset] crop_expand: expected a number, got 'wide'") != NULL);
}

int main(void) {
    test_job_keys();
    test_ok_manifest();
    test_ann_items();
    test_refusals();
    test_crop_window();
    test_crop_pixels();
    if (g_failures) {
        fprintf(stderr, "%d failure(s)\n", g_failures);
        return 1;
    }
    printf("items: all checks passed\n");
    return 0;
}
