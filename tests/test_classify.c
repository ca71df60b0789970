// test_classify.c — the pieces of zero-shot classification that need no model (include/clipneg/
// classify.h): the first-maximum top-k and its tie count, prompt rendering, the text-file reader,
// the CSV reader (quotes, columns by name, labels by index or name, refusals with FILE:LINE) and the
// ImageFolder reader (sorted classes and files, extensions, class names from a file), and the
// shipped ImageNet files. The end-to-end numbers are tested against open_clip in
// tests/python/test_classify.py.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clipneg/classify.h"
#include "clipneg/common.h"
#include "clipneg/config.h"
#include "test_check.h"

static char g_dir[64];

static const char *put(const char *name, const char *text) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
    return path;
}

static char *path_of(const char *name) {
    char *p = malloc(256);
    snprintf(p, 256, "%s/%s", g_dir, name);
    return p;
}

static void test_topk(void) {
    const float x[6] = {0.1f, 0.5f, NAN, 0.5f, -1.0f, 0.3f};
    int32_t idx[6];
    CHECK_INT(classify_topk(x, 6, 5, idx), 2); // two classes share the maximum
    const int32_t want[5] = {1, 3, 5, 0, 4};   // ties: lower index first; NaN never ranked
    for (int k = 0; k < 5; k++) CHECK_INT(idx[k], want[k]);
    CHECK_INT(classify_topk(x, 6, 1, idx), 2);
    CHECK_INT(idx[0], 1);
    const float y[3] = {NAN, 0.2f, NAN};
    CHECK_INT(classify_topk(y, 3, 3, idx), 1);
    CHECK_INT(idx[0], 1);
    CHECK_INT(idx[1], -1); // fewer numbers than k: -1 padding
    const float z[2] = {NAN, NAN};
    CHECK_INT(classify_topk(z, 2, 1, idx), 0);
    CHECK_INT(idx[0], -1);
}

static void test_prompt(void) {
    char *p = classify_prompt("a {c} next to a {c}.", "great white shark");
    CHECK_STR(p, "a great white shark next to a great white shark.");
    free(p);
    p = classify_prompt("{c}", "");
    CHECK_STR(p, "");
    free(p);
}

static void test_csv(void) {
    put("classes.txt", "# comment\ncat\n\ndog\r\nbig, \"red\" bus\n");
    put("t.txt", "a photo of a {c}.\n");
    const char *csv = put("ok.csv", "\xEF\xBB\xBFid,label,image\n1,dog,a.jpg\n2,0,\"dir/b, c.jpg\"\n3,\"big, \"\"red\"\" bus\",/abs/d.jpg\n");
    char *classes = path_of("classes.txt"), *tmpl = path_of("t.txt"), *csv_path = strdup(csv);
    ClassifySet s;
    ClassifyFiles f = {.path = csv_path, .classnames = classes, .templates = tmpl};
    CHECK_INT(classify_load(&s, &f), CN_OK);
    CHECK_INT(s.n_classes, 3);
    CHECK_STR(s.classnames[2], "big, \"red\" bus");
    CHECK_INT(s.n_images, 3);
    CHECK_STR(s.images[1], "dir/b, c.jpg");
    CHECK_INT(s.labels[0], 1);
    CHECK_INT(s.labels[1], 0);
    CHECK_INT(s.labels[2], 2);
    CHECK_INT(s.lines[2], 4);
    CHECK_STR(s.image_root, g_dir); // the CSV's folder
    CHECK_INT(s.n_neg_templates, 1);
    CHECK_STR(s.neg_templates[0], CLASSIFY_DEFAULT_NEGATED);
    Dataset ds;
    CHECK_INT(classify_to_dataset(&s, &ds), CN_OK);
    CHECK_INT(ds.n_images, 3);
    CHECK_STR(ds.captions[0].text, "a photo of a dog.");
    char *p2 = dataset_image_path(&ds, 2);
    CHECK_STR(p2, "/abs/d.jpg");
    free(p2);
    dataset_free(&ds);
    classify_free(&s);
    f.max_images = 2;
    CHECK_INT(classify_load(&s, &f), CN_OK);
    CHECK_INT(s.n_images, 2);
    classify_free(&s);
    f.max_images = 0;

    // records as pandas reads them: a quoted field spans lines; '#' lines are skipped whole (a quote
    // in one opens nothing); a path that is not under the image folder as written is found by its
    // file name alone (the benchmark readers' rule, bench_resolve_image)
    char *imgs = path_of("imgs");
    mkdir(imgs, 0755);
    put("imgs/e.jpg", "x");
    put("imgs/f g.jpg", "x");
    put("ok2.csv", "# a comment with a \"quote\nimage,label\n\"data/x/e.jpg\",1\n# \"\n\"f g.jpg\",\"d\nog\"\n\"mis\nsing.jpg\",0\n");
    char *csv2 = path_of("ok2.csv");
    ClassifyFiles f2 = {.path = csv2, .images_dir = imgs, .classnames = classes, .templates = tmpl};
    put("classes.txt", "cat\ndog\nd\n");
    CHECK_INT(classify_load(&s, &f2), CN_E_DATA); // "d\nog" is no class name
    CHECK(strstr(cn_last_error(), "ok2.csv:5: label: 'd\nog' is neither") != NULL);
    put("ok2.csv", "# a comment with a \"quote\nimage,label\n\"data/x/e.jpg\",1\n# \"\n\"f g.jpg\",\"d\"\n\"mis\nsing.jpg\",0\n");
    CHECK_INT(classify_load(&s, &f2), CN_OK);
    CHECK_INT(s.n_images, 3);
    CHECK_STR(s.images[0], "e.jpg"); // data/x/e.jpg is not under imgs: its file name is
    CHECK_STR(s.images[1], "f g.jpg");
    CHECK_STR(s.images[2], "mis\nsing.jpg"); // missing: kept as written (the image phase records it)
    CHECK_INT(s.lines[0], 3);
    CHECK_INT(s.lines[1], 5);
    CHECK_INT(s.lines[2], 6);
    CHECK_INT(s.labels[1], 2);
    CHECK_STR(s.image_root, imgs);
    classify_free(&s);
    put("classes.txt", "# comment\ncat\n\ndog\r\nbig, \"red\" bus\n");
    free(csv2), free(imgs);

    struct { const char *text, *msg; } bad[] = {
        {"image,label\na.jpg\n", "bad.csv:2: label: missing (the row has 1 columns, the header 2)"},
        {"image,label\na.jpg,3\n", "bad.csv:2: label: 3 is out of range (3 classes, 0..2)"},
        {"image,label\na.jpg,-1\n", "bad.csv:2: label: '-1' is neither a class index nor a class name"},
        {"image,label\na.jpg,Dog\n", "bad.csv:2: label: 'Dog' is neither"},
        {"img,label\na.jpg,1\n", "bad.csv:1: header: expected the columns 'image' and 'label'"},
        {"image,label\n\"a.jpg,1\n", "bad.csv:2: unterminated quote"},
        {"image,label\n,1\n", "bad.csv:2: image: empty"},
        {"image,label\n", "bad.csv: no rows after the header"},
        {"image,label\na.jpg,\xff\n", "bad.csv:2: CSV: not valid UTF-8"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        put("bad.csv", bad[i].text);
        char *b = path_of("bad.csv");
        ClassifyFiles fb = {.path = b, .classnames = classes, .templates = tmpl};
        CHECK_INT(classify_load(&s, &fb), CN_E_DATA);
        if (!strstr(cn_last_error(), bad[i].msg)) {
            fprintf(stderr, "FAIL case %zu: '%s' lacks '%s'\n", i, cn_last_error(), bad[i].msg);
            g_failures++;
        }
        free(b);
    }
    // a name two classes carry must be given as an index
    put("dup.txt", "missile\ncat\nmissile\n");
    put("bad.csv", "image,label\na.jpg,2\nb.jpg,missile\n");
    char *dup = path_of("dup.txt"), *b = path_of("bad.csv");
    ClassifyFiles fd = {.path = b, .classnames = dup, .templates = tmpl};
    CHECK_INT(classify_load(&s, &fd), CN_E_DATA);
    CHECK(strstr(cn_last_error(), "bad.csv:3: label: 'missile' names classes 0 and 2: use the class index") != NULL);
    // a CSV needs class names; templates need {c}
    ClassifyFiles fn = {.path = csv_path, .templates = tmpl};
    CHECK_INT(classify_load(&s, &fn), CN_E_DATA);
    CHECK(strstr(cn_last_error(), "a CSV needs [dataset] classnames") != NULL);
    put("t2.txt", "# x\na photo of a {c}.\nno slot\n");
    char *t2 = path_of("t2.txt");
    ClassifyFiles ft = {.path = csv_path, .classnames = classes, .templates = t2};
    CHECK_INT(classify_load(&s, &ft), CN_E_DATA);
    CHECK(strstr(cn_last_error(), "t2.txt:3: templates: 'no slot' has no {c}") != NULL);
    put("t3.txt", "# only comments\n\n");
    char *t3 = path_of("t3.txt");
    ClassifyFiles fe = {.path = csv_path, .classnames = classes, .templates = t3};
    CHECK_INT(classify_load(&s, &fe), CN_E_DATA);
    CHECK(strstr(cn_last_error(), "t3.txt: templates: the file has no entries") != NULL);
    free(dup), free(b), free(t2), free(t3), free(classes), free(tmpl), free(csv_path);
}

static void mk(const char *rel) {
    char p[256];
    snprintf(p, sizeof p, "%s/%s", g_dir, rel);
    mkdir(p, 0755);
}

static void test_image_folder(void) {
    mk("tree");
    mk("tree/zebra");
    mk("tree/ant");
    mk("tree/ant/nested"); // not read
    mk("tree/.hidden");
    put("tree/zebra/2.JPG", "x");
    put("tree/zebra/10.png", "x");
    put("tree/zebra/notes.txt", "x"); // not an image
    put("tree/ant/a.jpeg", "x");
    put("tree/ant/nested/n.jpg", "x");
    put("tree/loose.jpg", "x"); // a file at the top is not a class
    put("t.txt", "a {c}\n");
    char *tree = path_of("tree"), *tmpl = path_of("t.txt");
    ClassifySet s;
    ClassifyFiles f = {.path = tree, .templates = tmpl};
    CHECK_INT(classify_load(&s, &f), CN_OK);
    CHECK_INT(s.is_csv, 0);
    CHECK_INT(s.n_classes, 2);
    CHECK_STR(s.classnames[0], "ant");
    CHECK_STR(s.classnames[1], "zebra");
    CHECK_INT(s.n_images, 3);
    CHECK_STR(s.images[0], "ant/a.jpeg");
    CHECK_STR(s.images[1], "zebra/10.png"); // byte order, as Python's sorted()
    CHECK_STR(s.images[2], "zebra/2.JPG");
    CHECK_INT(s.labels[0], 0);
    CHECK_INT(s.labels[2], 1);
    classify_free(&s);
    put("names.txt", "formicidae\nequus quagga\n");
    char *names = path_of("names.txt");
    f.classnames = names;
    CHECK_INT(classify_load(&s, &f), CN_OK);
    CHECK_STR(s.classnames[1], "equus quagga");
    CHECK_STR(s.images[2], "zebra/2.JPG"); // folders keep their names on disk
    classify_free(&s);
    put("names.txt", "one\n");
    CHECK_INT(classify_load(&s, &f), CN_E_DATA);
    CHECK(strstr(cn_last_error(), "names.txt: classnames: 1 class names for 2 class folders") != NULL);
    free(tree), free(tmpl), free(names);
}

// The files shipped in jobs/classification/ load as open_clip has them: 1000 classes, 80 templates.
static void test_shipped_files(void) {
    const char *root = getenv("CLIPNEG_SOURCE_DIR");
    char cls[512], tmpl[512], neg[512];
    snprintf(cls, sizeof cls, "%s/jobs/classification/imagenet_classnames.txt", root ? root : ".");
    snprintf(tmpl, sizeof tmpl, "%s/jobs/classification/openai_templates.txt", root ? root : ".");
    snprintf(neg, sizeof neg, "%s/jobs/classification/openai_templates_negated.txt", root ? root : ".");
    char **v = NULL;
    int *ln = NULL, n = 0;
    if (access(cls, R_OK) != 0) {
        fprintf(stderr, "note: %s not found (set CLIPNEG_SOURCE_DIR): shipped files not checked\n", cls);
        return;
    }
    CHECK_INT(classify_read_lines(cls, "classnames", &v, &ln, &n), CN_OK);
    CHECK_INT(n, 1000);
    CHECK_STR(v[0], "tench");
    CHECK_STR(v[999], "toilet paper");
    for (int i = 0; i < n; i++) free(v[i]);
    free(v), free(ln);
    CHECK_INT(classify_read_lines(tmpl, "templates", &v, &ln, &n), CN_OK);
    CHECK_INT(n, 80);
    CHECK_STR(v[0], "a bad photo of a {c}.");
    for (int i = 0; i < n; i++) free(v[i]);
    free(v), free(ln);
    CHECK_INT(classify_read_lines(neg, "negated_templates", &v, &ln, &n), CN_OK);
    CHECK_INT(n, 24);
    for (int i = 0; i < n; i++) {
        CHECK(strstr(v[i], "no {c}") != NULL);
        free(v[i]);
    }
    free(v), free(ln);
}

// The job keys: format = classification needs path and templates; the others are optional.
static void test_job_keys(void) {
    put("v.ini", "[caption]\ntemplate = {caption}\npolarity = positive\n");
    put("t.txt", "a {c}\n");
    mk("m");
    struct { const char *dataset, *msg; } cases[] = {
        {"format = classification\ntemplates = t.txt\n", "[dataset] path: required key missing (format = classification)"},
        {"format = classification\npath = m\n", "[dataset] templates: required key missing (format = classification)"},
        {"format = classification\npath = m\ntemplates = t.txt\nnegated_templates = nothere.txt\n",
         "[dataset] negated_templates"},
        {"format = classification\npath = m\ntemplates = t.txt\nclassnames = t.txt\n", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[512];
        snprintf(text, sizeof text, "[model]\npath = m\n[dataset]\n%s[variants]\nfile = v.ini\n", cases[i].dataset);
        put("job.ini", text);
        char *job_path = path_of("job.ini");
        JobConfig job;
        int rc = job_load(&job, job_path, NULL);
        if (!cases[i].msg) {
            CHECK_INT(rc, CN_OK);
            if (rc == CN_OK) {
                CHECK_INT(job.dataset_kind, DATASET_CLASSIFY);
                CHECK(job.dataset_path && strstr(job.dataset_path, "/m"));
                CHECK(job.templates && job.classnames && !job.negated_templates);
                job_free(&job);
            }
        } else {
            CHECK_INT(rc, CN_E_CONFIG);
            if (!strstr(cn_last_error(), cases[i].msg)) {
                fprintf(stderr, "FAIL job case %zu: '%s' lacks '%s'\n", i, cn_last_error(), cases[i].msg);
                g_failures++;
            }
        }
        free(job_path);
    }
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/test_classify_XXXXXX");
    if (!mkdtemp(g_dir)) return 1;
    test_topk();
    test_prompt();
    test_csv();
    test_image_folder();
    test_shipped_files();
    test_job_keys();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", g_dir);
    if (g_failures) fprintf(stderr, "%d failure(s)\n", g_failures);
    return g_failures ? 1 : 0;
}
