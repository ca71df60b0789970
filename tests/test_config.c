// test_config.c — the job file: every key parsed, defaults, ${VAR} expansion, relative paths,
// --set overrides, provenance text, and every refusal with its exact "FILE:LINE: [section] key"
// message. Job files are written into a temporary folder so that line numbers are exact.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clipneg/common.h"
#include "clipneg/config.h"
#include "test_check.h"

static char g_dir[64];  // temporary folder with model/, data/, out/, variants files

static void write_file(const char *name, const char *text) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *fp = fopenCheck(path, "wb");
    fputs(text, fp);
    fcloseCheck(fp);
}

static char *in_dir(const char *name) {
    static char buf[4][512];
    static int k = 0;
    char *p = buf[k++ % 4];
    snprintf(p, 512, "%s/%s", g_dir, name);
    return p;
}

static int load(JobConfig *job, const char *text, const char *const *overrides) {
    write_file("job.ini", text);
    return job_load(job, in_dir("job.ini"), overrides);
}

// Lines 1-7 of most jobs below; a test's own lines start at line 8.
#define BASE                               \
    "[model]\n"                  /* 1 */   \
    "path = model\n"             /* 2 */   \
    "[dataset]\n"                /* 3 */   \
    "captions = data/captions.json\n" /* 4 */ \
    "images = data/images\n"     /* 5 */   \
    "[variants]\n"               /* 6 */   \
    "file = variants.ini\n"      /* 7 */

typedef struct {
    const char *text;
    const char *overrides[3];
    const char *fragments[2];  // all must appear in the message ("{DIR}" = the temporary folder)
} ErrorCase;

static const ErrorCase ERRORS[] = {
    {BASE "[run]\nbacth = 3\n", {NULL}, {"job.ini:9: [run] bacth: unknown key (known: backend, precision, image_batch"}},
    {BASE "[modle]\npath = x\n", {NULL}, {"job.ini:8: [modle]: unknown section (known: model, dataset"}},
    {BASE "[run]\nseed = 1\nseed = 2\n", {NULL}, {"job.ini:10: [run] seed: duplicate key (first at line 9)"}},
    {BASE "[model]\n", {NULL}, {"job.ini:8: [model]: duplicate section (first at line 1)"}},
    {"stray = 1\n" BASE, {NULL}, {"job.ini:1: stray: key outside any [section]"}},
    {BASE "[run]\nimage_batch = -4\n", {NULL}, {"job.ini:9: [run] image_batch: must be >= 1 (got -4)"}},
    {BASE "[run]\ntext_batch = 3.5\n", {NULL}, {"job.ini:9: [run] text_batch: expected an integer, got '3.5'"}},
    {BASE "[run]\ntile_texts = 12abc\n", {NULL}, {"job.ini:9: [run] tile_texts: expected an integer, got '12abc'"}},
    {BASE "[run]\nthreads = 99999999999999999999\n", {NULL}, {"job.ini:9: [run] threads: expected an integer"}},
    {BASE "[run]\ndecode_threads = 0\n", {NULL}, {"job.ini:9: [run] decode_threads: must be >= 1 (got 0)"}},
    {BASE "max_images = -1\n", {NULL}, {"job.ini:8: [variants] max_images: unknown key (known: file, base_variant)"}},
    {"[dataset]\nmax_images = -1\n", {NULL}, {"job.ini:2: [dataset] max_images: must be >= 0 (got -1)"}},
    {BASE "[run]\nbackend = gpu\n", {NULL}, {"job.ini:9: [run] backend: expected one of auto, cpu, cuda, got 'gpu'"}},
    {BASE "[run]\nprecision = fp64\n", {NULL},
     {"job.ini:9: [run] precision: expected one of auto, fp32, tf32, fp16, bf16, got 'fp64'"}},
    {BASE "[output]\nfull_dtype = int8\n", {NULL},
     {"job.ini:9: [output] full_dtype: expected one of float16, float32, got 'int8'"}},
    {BASE "[output]\nembeddings = maybe\n", {NULL}, {"job.ini:9: [output] embeddings: expected true or false"}},
    {"[model]\npath = model\nquick_gelu = sometimes\n", {NULL},
     {"job.ini:3: [model] quick_gelu: expected one of auto, true, false"}},
    {BASE "[run]\nbackend = cpu\nprecision = fp16\n", {NULL},
     {"job.ini:10: [run] precision: the cpu backend computes in fp32 only"}},
    {BASE "[run]\nbackend = cpu\nprecision = tf32\n", {NULL},
     {"job.ini:10: [run] precision: the cpu backend computes in fp32 only"}},
    {BASE "[run]\nseed = -1\n", {NULL}, {"job.ini:9: [run] seed: expected an integer in [0, 2^64), got '-1'"}},
    {BASE "[run]\nseed = ${CLIPNEG_TEST_SURELY_UNSET}\n", {NULL},
     {"job.ini:9: [run] seed: environment variable CLIPNEG_TEST_SURELY_UNSET is not set"}},
    {BASE "[run]\nseed = ${CLIPNEG_TEST_SURELY_UNSET\n", {NULL}, {"job.ini:9: [run] seed: unterminated ${"}},
    {BASE "[run]\nthis line has no equals sign\n", {NULL}, {"job.ini:9: syntax error"}},
    {BASE "[run\nseed = 1\n", {NULL}, {"job.ini:8: syntax error"}},
    {BASE "[run] seed = 1\n", {NULL}, {"job.ini:8: text after the [section] header"}},
    {"[model]\ntokenizer = model\n[dataset]\ncaptions = data/captions.json\nimages = data/images\n"
     "[variants]\nfile = variants.ini\n",
     {NULL}, {"job.ini:1: [model] path: required key missing"}},
    {"[dataset]\ncaptions = data/captions.json\nimages = data/images\n[variants]\nfile = variants.ini\n", {NULL},
     {"job.ini: [model] path: required key missing (no [model] section)"}},
    {"[model]\npath = model\n[dataset]\nimages = data/images\n[variants]\nfile = variants.ini\n", {NULL},
     {"job.ini:3: [dataset] captions: required key missing (format = coco)"}},
    {"[model]\npath = model\n[dataset]\nformat = jsonl\n[variants]\nfile = variants.ini\n", {NULL},
     {"job.ini:3: [dataset] manifest: required key missing (format = jsonl)"}},
    {"[model]\npath = model\n[dataset]\ncaptions = data/captions.json\nimages = data/images\n", {NULL},
     {"job.ini: [variants] file: required key missing (no [variants] section)"}},
    // ccneg is a published benchmark file: path and images required; last_n >= 0
    {"[model]\npath = model\n[dataset]\nformat = ccneg\nimages = data/images\n[variants]\nfile = variants.ini\n",
     {NULL}, {"job.ini:3: [dataset] path: required key missing (format = ccneg)"}},
    {BASE, {"dataset.last_n=-1", NULL}, {"dataset.last_n: must be >= 0 (got -1)"}},
    {"[model]\npath = model\n[dataset]\ncaptions = data/nope.json\n", {NULL},
     {"job.ini:4: [dataset] captions: '{DIR}/data/nope.json' does not exist"}},
    {"[model]\npath = model\n[dataset]\ncaptions = data\n", {NULL}, {"job.ini:4: [dataset] captions: '{DIR}/data' is not a file"}},
    {"[model]\npath = model\n[dataset]\nimages = data/captions.json\n", {NULL},
     {"job.ini:4: [dataset] images: '{DIR}/data/captions.json' is not a folder"}},
    {"[model]\npath = no-such-model\n", {NULL}, {"job.ini:2: [model] path: '{DIR}/no-such-model' does not exist"}},
    {BASE "[output]\npath = nodir/x.h5\n", {NULL}, {"job.ini:9: [output] path: cannot create '{DIR}/nodir/x.h5'", "/nodir' does not exist"}},
    {BASE "[output]\npath = out\n", {NULL}, {"job.ini:9: [output] path: '{DIR}/out' is a folder"}},
    {BASE "[output]\npath = xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
          "xxxxxxxxxxxxxxxx.h5\n",
     {NULL}, {"job.ini:9: line too long"}},
    {BASE "base_variant = nope\n", {NULL}, {"job.ini:8: [variants] base_variant: no variant named 'nope' in {DIR}/variants.ini"}},
    {BASE "base_variant = neg\n", {NULL}, {"job.ini:8: [variants] base_variant: variant 'neg' is not positive"}},
    {"[model]\npath = model\n[dataset]\ncaptions = data/captions.json\nimages = data/images\n[variants]\n"
     "file = bad_variants.ini\n",
     {NULL}, {"bad_variants.ini:3: [x] template: unknown placeholder {foo}"}},
    // --set overrides are validated the same way and named as such.
    {BASE, {"run.image_batch=0", NULL}, {"--set run.image_batch: must be >= 1 (got 0)"}},
    {BASE, {"run.nokey=1", NULL}, {"--set run.nokey: unknown key (known: backend"}},
    {BASE, {"nosuch.key=1", NULL}, {"--set nosuch.key: unknown section"}},
    {BASE, {"oops", NULL}, {"--set oops: expected section.key=value"}},
    {BASE, {"run.backend=tpu", NULL}, {"--set run.backend: expected one of auto, cpu, cuda, got 'tpu'"}},
    {BASE, {"dataset.captions=relative/nope.json", NULL},
     {"--set dataset.captions: 'relative/nope.json' does not exist"}},
    {BASE, {"run.seed=${CLIPNEG_TEST_SURELY_UNSET}", NULL},
     {"--set run.seed: environment variable CLIPNEG_TEST_SURELY_UNSET is not set"}},
};

static void test_errors(void) {
    for (size_t i = 0; i < sizeof ERRORS / sizeof ERRORS[0]; i++) {
        JobConfig job;
        const ErrorCase *e = &ERRORS[i];
        int rc = load(&job, e->text, e->overrides[0] ? e->overrides : NULL);
        const char *msg = cn_last_error();
        int ok = 1;
        for (int f = 0; f < 2 && e->fragments[f]; f++) {
            // Substitute the temporary folder into the expected fragment.
            char want[1024];
            const char *at = strstr(e->fragments[f], "{DIR}");
            if (at) snprintf(want, sizeof want, "%.*s%s%s", (int)(at - e->fragments[f]), e->fragments[f], g_dir, at + 5);
            else snprintf(want, sizeof want, "%s", e->fragments[f]);
            if (!strstr(msg, want)) {
                fprintf(stderr, "FAIL error case %zu: message '%s' lacks '%s'\n", i, msg, want);
                ok = 0;
            }
        }
        // An output path that cannot be created is an I/O error (exit 6); everything else is a job error.
        int want_rc = strstr(e->fragments[0], "[output] path:") ? CN_E_IO : CN_E_CONFIG;
        if (rc != want_rc) {
            fprintf(stderr, "FAIL error case %zu: rc = %d, expected %d\n", i, rc, want_rc);
            ok = 0;
        }
        if (!ok) g_failures++;
        CHECK(job.job_path == NULL && job.model_path == NULL);  // nothing left to free after a failure
    }
    JobConfig job;
    CHECK_INT(job_load(&job, in_dir("no-such-job.ini"), NULL), CN_E_CONFIG);
    CHECK(strstr(cn_last_error(), "no-such-job.ini: cannot open") != NULL);
}

static void test_full_job(void) {
    setenv("CLIPNEG_TEST_DATA", "data", 1);
    setenv("CLIPNEG_TEST_EMPTY", "", 1);
    unsetenv("CLIPNEG_TEST_SURELY_UNSET");
    const char *text =
        "\xEF\xBB\xBF; every key once (a UTF-8 BOM first, as some editors write it)\n"
        "[model]\n"
        "  path = model            ; indented keys are plain keys, not continuation lines\n"
        "tokenizer = ${CLIPNEG_TEST_DATA}/captions.json\n"
        "quick_gelu = true\n"
        "[ dataset ]\n"
        "format = coco\n"
        "captions = ${CLIPNEG_TEST_DATA}/captions.json\n"
        "instances = ${CLIPNEG_TEST_EMPTY:-}\n"
        "images = ${CLIPNEG_TEST_SURELY_UNSET:-${CLIPNEG_TEST_DATA}/images}\n"
        "max_images = 10\n"
        "[variants]\n"
        "file = variants.ini\n"
        "base_variant = pos2\n"
        "[output]\n"
        "path = out/r.h5\n"
        "embeddings = no\n"
        "full_similarity = ON\n"
        "full_dtype = float32\n"
        "[run]\n"
        "backend = CUDA\n"
        "precision = bf16\n"
        "image_batch = 8\n"
        "text_batch = 64\n"
        "image_shard = 16\n"
        "text_shard = 128\n"
        "tile_texts = 1024\n"
        "seed = 18446744073709551615\n"
        "threads = 3\n"
        "decode_threads = 4\n";
    JobConfig job;
    int rc = load(&job, text, NULL);
    CHECK_INT(rc, CN_OK);
    if (rc != CN_OK) {
        fprintf(stderr, "  %s\n", cn_last_error());
        return;
    }
    CHECK_STR(job.job_path, in_dir("job.ini"));
    CHECK_STR(job.job_text, text);
    CHECK_STR(job.model_path, in_dir("model"));
    CHECK_STR(job.tokenizer_path, in_dir("data/captions.json"));
    CHECK_INT(job.quick_gelu, 1);
    CHECK_INT(job.dataset_kind, DATASET_COCO);
    CHECK_STR(job.captions_json, in_dir("data/captions.json"));
    CHECK(job.instances_json == NULL);  // empty value = not given
    CHECK_STR(job.images_dir, in_dir("data/images"));
    CHECK(job.manifest == NULL);
    CHECK_INT(job.max_images, 10);
    CHECK_STR(job.variants_file, in_dir("variants.ini"));
    CHECK_STR(job.base_variant, "pos2");
    CHECK_STR(job.output_path, in_dir("out/r.h5"));
    CHECK_INT(job.store_embeddings, 0);
    CHECK_INT(job.full_similarity, 1);
    CHECK_INT(job.full_dtype_f16, 0);
    CHECK_INT(job.backend, BACKEND_CUDA);
    CHECK_INT(job.precision, PREC_BF16);
    CHECK_INT(job.image_batch, 8);
    CHECK_INT(job.text_batch, 64);
    CHECK_INT(job.image_shard, 16);
    CHECK_INT(job.text_shard, 128);
    CHECK_INT(job.tile_texts, 1024);
    CHECK(job.seed == 18446744073709551615ULL);
    CHECK_INT(job.threads, 3);
    CHECK_INT(job.decode_threads, 4);
    job_free(&job);
    job_free(&job);  // safe twice
}

static void test_defaults_and_overrides(void) {
    JobConfig job;
    const char *const ov[] = {"run.seed=7", "output.path = x.h5", "run.seed=9", "dataset.max_images=2", NULL};
    int rc = load(&job, BASE "[run]\nseed = 5 ; inline comment\n", ov);
    CHECK_INT(rc, CN_OK);
    if (rc != CN_OK) {
        fprintf(stderr, "  %s\n", cn_last_error());
        return;
    }
    CHECK(job.seed == 9);                // the file says 5, a later --set wins over an earlier one
    CHECK_STR(job.output_path, "x.h5"); // --set paths are relative to the current directory
    CHECK_INT(job.max_images, 2);
    CHECK_STR(job.base_variant, "caption");  // default: the first positive variant
    CHECK(job.tokenizer_path == NULL && job.instances_json == NULL && job.manifest == NULL);
    CHECK_INT(job.quick_gelu, -1);
    CHECK_INT(job.store_embeddings, 1);
    CHECK_INT(job.full_similarity, 0);
    CHECK_INT(job.full_dtype_f16, 1);
    CHECK_INT(job.backend, BACKEND_AUTO);
    CHECK_INT(job.precision, PREC_AUTO);  // fp16 on cuda, fp32 on cpu (backend_create)
    CHECK_INT(job.image_batch, 32);
    CHECK_INT(job.text_batch, 256);
    CHECK_INT(job.image_shard, 64);
    CHECK_INT(job.text_shard, 512);
    CHECK_INT(job.tile_texts, 4096);
    CHECK_INT(job.threads, 0);
    CHECK_INT(job.decode_threads, 2);
    // Provenance: the file, then the overrides as comments.
    CHECK(strncmp(job.job_text, BASE "[run]\nseed = 5 ; inline comment\n", strlen(BASE) + 10) == 0);
    CHECK(strstr(job.job_text, "\n; --set run.seed=7\n; --set output.path = x.h5\n; --set run.seed=9\n"
                               "; --set dataset.max_images=2\n") != NULL);
    job_free(&job);

    // JSONL: no images folder needed (image paths are relative to the manifest).
    rc = load(&job, "[model]\npath = model\n[dataset]\nformat = jsonl\nmanifest = data/m.jsonl\n"
                    "[variants]\nfile = variants.ini\n", NULL);
    CHECK_INT(rc, CN_OK);
    CHECK_INT(job.dataset_kind, DATASET_JSONL);
    CHECK_STR(job.manifest, in_dir("data/m.jsonl"));
    CHECK(job.images_dir == NULL);
    CHECK_INT(job.last_n, 40000); // CC-Neg's split by default
    job_free(&job);

    // CC-Neg: the format name maps to DATASET_CCNEG; last_n as given.
    rc = load(&job, "[model]\npath = model\n[dataset]\nformat = ccneg\npath = data/m.jsonl\nimages = data/images\n"
                    "image_prefix = /workspace/datasets/cc3m/\nlast_n = 9\n[variants]\nfile = variants.ini\n", NULL);
    CHECK_MSG(rc == CN_OK, "%s", cn_last_error());
    CHECK_INT(job.dataset_kind, DATASET_CCNEG);
    CHECK_INT(job.last_n, 9);
    CHECK_STR(job.image_prefix, "/workspace/datasets/cc3m/");
    job_free(&job);
}

// The committed examples in tests/data (paths relative to that folder).
static void test_committed_files(void) {
    JobConfig job;
    int rc = job_load(&job, "tests/data/job_ok.ini", NULL);
    CHECK_INT(rc, CN_OK);
    if (rc != CN_OK) fprintf(stderr, "  %s\n", cn_last_error());
    CHECK_STR(job.captions_json, "tests/data/coco_small.json");
    CHECK_STR(job.manifest, "tests/data/manifest_ok.jsonl");
    CHECK_STR(job.variants_file, "tests/data/../../jobs/variants/seed7.ini");
    CHECK_STR(job.base_variant, "caption");
    job_free(&job);
    CHECK_INT(job_load(&job, "tests/data/job_bad_value.ini", NULL), CN_E_CONFIG);
    CHECK(strstr(cn_last_error(), "tests/data/job_bad_value.ini:14: [run] image_batch: must be >= 1 (got -32)"));
    CHECK_INT(job_load(&job, "tests/data/job_unknown_key.ini", NULL), CN_E_CONFIG);
    CHECK(strstr(cn_last_error(), "tests/data/job_unknown_key.ini:9: [dataset] caption: unknown key"));
}

int main(void) {
    const char *src = getenv("CLIPNEG_SOURCE_DIR");
    if (src && chdir(src) != 0) {
        fprintf(stderr, "cannot chdir to %s\n", src);
        return 1;
    }
    snprintf(g_dir, sizeof g_dir, "/tmp/clipneg_test_config_XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    const char *dirs[] = {"model", "data", "data/images", "out"};
    for (int i = 0; i < 4; i++) mkdir(in_dir(dirs[i]), 0755);
    write_file("data/captions.json", "{}\n");
    write_file("data/m.jsonl", "\n");
    write_file("variants.ini", "[caption]\ntemplate = {caption}\n[neg]\ntemplate = not {caption_lc}\n"
                               "polarity = negative\n[pos2]\ntemplate = This is {caption_lc}\n");
    write_file("bad_variants.ini", "; line 1\n[x]\ntemplate = a {foo} b\n");

    test_errors();
    test_full_job();
    test_defaults_and_overrides();
    test_committed_files();

    const char *files[] = {"job.ini", "data/captions.json", "data/m.jsonl", "variants.ini", "bad_variants.ini"};
    for (int i = 0; i < 5; i++) remove(in_dir(files[i]));
    const char *rm[] = {"data/images", "data", "model", "out"};
    for (int i = 0; i < 4; i++) rmdir(in_dir(rm[i]));
    rmdir(g_dir);
    if (g_failures) {
        fprintf(stderr, "%d check(s) failed\n", g_failures);
        return 1;
    }
    printf("test_config: all checks passed\n");
    return 0;
}
