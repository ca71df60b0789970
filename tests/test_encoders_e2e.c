// test_encoders_e2e.c — JPEG to embedding: the fixture images decoded and preprocessed by clipneg
// (image_decode.c, image_resize.c: stb_image + PIL-faithful bicubic resize + crop + normalise), then
// the CPU image tower, against open_clip's encode_image on open_clip's own PIL preprocessing
// (expected.safetensors).
//
// Pass: cosine >= 0.999 per image. Why not tighter: here two pipelines meet, and the decoders
// differ (stb_image vs libjpeg's IDCT round differently by a grey level here and there), so pixels
// differ by up to a few 1e-2 after normalisation; the encoder itself is held to 1e-4 on identical
// pixels by test_encoders.c. Measured: min cosine 0.9999999 over the 18 fixture images.
// Skips (77) while image_load_preprocess cannot read the images (the image pipeline is another
// component; this test only proves the two fit together).
//
// Part two, the commands: `clipneg encode-image --raw` on the fixture JPEGs (cosine >= 0.999, as
// above) and `clipneg encode-text --raw` on the fixture captions (tokenizer + text tower: max |diff|
// <= 1e-4 vs open_clip, the tiny-fixture tolerance of test_encoders.c; the ids must be open_clip's
// exactly for that), and the default output is L2-normalised (|norm - 1| <= 1e-6).
#define _DEFAULT_SOURCE
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clipneg/common.h"
#include "clipneg/encoder.h"
#include "clipneg/image.h"
#include "clipneg/model.h"
#include "clipneg/safetensors.h"

#define MIN_COSINE 0.999

static const char *FIXTURES[] = {"vit-tiny-openclip", "vit-tiny-hf", "rn-tiny-openclip"};

static double cosine(const float *a, const float *b, int D) {
    double ab = 0, aa = 0, bb = 0;
    for (int d = 0; d < D; d++) {
        ab += (double)a[d] * b[d];
        aa += (double)a[d] * a[d];
        bb += (double)b[d] * b[d];
    }
    return ab / sqrt(aa * bb);
}

// Returns the number of failed checks, or -1 for "skip".
static int check_fixture(const char *src, const char *shared, const char *name) {
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/models/%s", src, name);
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    SafeTensors st;
    if (safetensors_open(&st, path) != CN_OK) {
        printf("%s\n", cn_last_error());
        return 1;
    }
    const char *images_json = safetensors_metadata(&st, "images");
    const StTensor *te = safetensors_find(&st, "image_embeds");
    cJSON *list = images_json ? cJSON_Parse(images_json) : NULL;
    if (list == NULL || !cJSON_IsArray(list) || te == NULL || te->ndim != 2) {
        printf("%s: no image list / image_embeds in the fixture\n", path);
        cJSON_Delete(list);
        safetensors_close(&st);
        return 1;
    }
    int n = cJSON_GetArraySize(list), D = (int)te->shape[1];
    float *ref = mallocCheck((size_t)te->numel * sizeof(float));
    safetensors_to_f32(te, ref);

    ClipModel m;
    ClipLoadOptions opt;
    memset(&opt, 0, sizeof opt);
    opt.force_quick_gelu = -1;
    if (clip_model_load(&m, dir, &opt) != CN_OK) {
        printf("%s: %s\n", name, cn_last_error());
        free(ref);
        cJSON_Delete(list);
        safetensors_close(&st);
        return 1;
    }
    int R = m.cfg.image_size, failures = 0;
    float *pixels = mallocCheck((size_t)n * 3 * R * R * sizeof(float));
    float *emb = mallocCheck((size_t)n * D * sizeof(float));
    for (int i = 0; i < n && failures >= 0; i++) {
        const char *file = cJSON_GetStringValue(cJSON_GetArrayItem(list, i));
        snprintf(path, sizeof path, "%s/data/coco-mini/val2017/%s", shared, file ? file : "?");
        if (image_load_preprocess(path, R, pixels + (size_t)i * 3 * R * R) != CN_OK) {
            printf("SKIP: image_load_preprocess(%s) failed: %s\n", path, cn_last_error());
            failures = -1;
        }
    }
    if (failures == 0) {
        if (encode_images_cpu(&m, pixels, n, emb) != CN_OK) {
            printf("%s: encode_images_cpu: %s\n", name, cn_last_error());
            failures = 1;
        } else {
            double worst = 1.0;
            for (int i = 0; i < n; i++) {
                double c = cosine(emb + (size_t)i * D, ref + (size_t)i * D, D);
                if (!(c >= worst)) worst = c;
                if (!(c >= MIN_COSINE)) failures++;
            }
            printf("%-20s %d images (R=%d)  min cosine vs open_clip = %.7f  (min %.3f)  %s\n", name, n, R, worst,
                   MIN_COSINE, failures ? "FAIL" : "ok");
        }
    }
    free(emb);
    free(pixels);
    clip_model_free(&m);
    free(ref);
    cJSON_Delete(list);
    safetensors_close(&st);
    return failures;
}

// Run argv (no shell: captions hold quotes), return its stdout (malloc'ed) or NULL on failure.
static char *run_capture(char *const argv[]) {
    int fd[2];
    if (pipe(fd) != 0) return NULL;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fd[1]);
    size_t cap = 1 << 16, n = 0;
    char *buf = mallocCheck(cap);
    for (;;) {
        if (n + 1 >= cap) buf = reallocCheck(buf, cap *= 2);
        ssize_t got = read(fd[0], buf + n, cap - n - 1);
        if (got <= 0) break;
        n += (size_t)got;
    }
    buf[n] = '\0';
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        printf("  %s %s exited with %d\n", argv[0], argv[1], WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        free(buf);
        return NULL;
    }
    return buf;
}

// The "embeddings" of a command's JSON output as [n, D] floats (malloc'ed), NULL if malformed.
static float *parse_embeddings(const char *json, int n, int D) {
    cJSON *root = cJSON_Parse(json);
    cJSON *list = cJSON_GetObjectItem(root, "embeddings");
    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) != n) {
        cJSON_Delete(root);
        return NULL;
    }
    float *out = mallocCheck((size_t)n * D * sizeof(float));
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_GetObjectItem(cJSON_GetArrayItem(list, i), "embedding");
        if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != D) {
            free(out);
            cJSON_Delete(root);
            return NULL;
        }
        for (int d = 0; d < D; d++) out[(size_t)i * D + d] = (float)cJSON_GetNumberValue(cJSON_GetArrayItem(e, d));
    }
    cJSON_Delete(root);
    return out;
}

// clipneg encode-image / encode-text on one fixture. Returns failed checks.
static int check_commands(const char *bin, const char *src, const char *shared, const char *name) {
    char dir[4096], path[4200], vocab[4200];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/models/%s", src, name);
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    snprintf(vocab, sizeof vocab, "%s/data/clip-bpe/bpe_simple_vocab_16e6.txt.gz", shared);
    SafeTensors st;
    if (safetensors_open(&st, path) != CN_OK) return 1;
    cJSON *images = cJSON_Parse(safetensors_metadata(&st, "images") ? safetensors_metadata(&st, "images") : "");
    cJSON *texts = cJSON_Parse(safetensors_metadata(&st, "texts") ? safetensors_metadata(&st, "texts") : "");
    const StTensor *ti = safetensors_find(&st, "image_embeds"), *tt = safetensors_find(&st, "text_embeds");
    int failures = 0;
    if (!cJSON_IsArray(images) || !cJSON_IsArray(texts) || !ti || !tt) {
        printf("%s: fixture lacks images/texts metadata\n", name);
        failures = 1;
        goto done;
    }
    int D = (int)ti->shape[1], ni = cJSON_GetArraySize(images), nt = cJSON_GetArraySize(texts);
    float *ref_i = mallocCheck((size_t)ti->numel * sizeof(float)), *ref_t = mallocCheck((size_t)tt->numel * sizeof(float));
    safetensors_to_f32(ti, ref_i);
    safetensors_to_f32(tt, ref_t);

    // encode-image --raw IMG...
    char **argv = callocCheck((size_t)(ni + nt + 16), sizeof(char *));
    char **paths = callocCheck((size_t)ni, sizeof(char *));
    int a = 0;
    argv[a++] = (char *)bin;
    argv[a++] = "encode-image";
    argv[a++] = "--model";
    argv[a++] = dir;
    argv[a++] = "--raw";
    for (int i = 0; i < ni; i++) {
        paths[i] = mallocCheck(4200);
        snprintf(paths[i], 4200, "%s/data/coco-mini/val2017/%s", shared, cJSON_GetStringValue(cJSON_GetArrayItem(images, i)));
        argv[a++] = paths[i];
    }
    argv[a] = NULL;
    char *outp = run_capture(argv);
    float *got = outp ? parse_embeddings(outp, ni, D) : NULL;
    if (got == NULL) {
        printf("%-20s clipneg encode-image: no usable output  FAIL\n", name);
        failures++;
    } else {
        double worst = 1.0;
        for (int i = 0; i < ni; i++) {
            double c = cosine(got + (size_t)i * D, ref_i + (size_t)i * D, D);
            if (!(c >= worst)) worst = c;
        }
        int ok = worst >= MIN_COSINE;
        printf("%-20s clipneg encode-image --raw: min cosine %.7f  %s\n", name, worst, ok ? "ok" : "FAIL");
        failures += !ok;
    }
    free(got);
    free(outp);

    // encode-text --raw -- TEXT...   and the normalised default
    for (int normalised = 0; normalised < 2; normalised++) {
        a = 0;
        argv[a++] = (char *)bin;
        argv[a++] = "encode-text";
        argv[a++] = "--model";
        argv[a++] = dir;
        argv[a++] = "--vocab";
        argv[a++] = vocab;
        if (!normalised) argv[a++] = "--raw";
        argv[a++] = "--";
        for (int i = 0; i < nt; i++) argv[a++] = (char *)cJSON_GetStringValue(cJSON_GetArrayItem(texts, i));
        argv[a] = NULL;
        outp = run_capture(argv);
        got = outp ? parse_embeddings(outp, nt, D) : NULL;
        if (got == NULL) {
            printf("%-20s clipneg encode-text: no usable output  FAIL\n", name);
            failures++;
        } else if (!normalised) {
            double worst = 0.0;
            int worst_i = 0;
            for (int i = 0; i < nt; i++)
                for (int d = 0; d < D; d++) {
                    double e = fabs((double)got[(size_t)i * D + d] - ref_t[(size_t)i * D + d]);
                    if (!(e <= worst)) worst = e, worst_i = i;
                }
            int ok = worst <= 1e-4;
            printf("%-20s clipneg encode-text --raw: %d texts, max|diff| %.3e (worst text %d)  %s\n", name, nt, worst,
                   worst_i, ok ? "ok" : "FAIL");
            failures += !ok;
        } else {
            double worst = 0.0;
            for (int i = 0; i < nt; i++) {
                double ss = 0;
                for (int d = 0; d < D; d++) ss += (double)got[(size_t)i * D + d] * got[(size_t)i * D + d];
                if (fabs(sqrt(ss) - 1.0) > worst) worst = fabs(sqrt(ss) - 1.0);
            }
            int ok = worst <= 1e-6;
            printf("%-20s clipneg encode-text: max |norm - 1| %.1e  %s\n", name, worst, ok ? "ok" : "FAIL");
            failures += !ok;
        }
        free(got);
        free(outp);
    }
    for (int i = 0; i < ni; i++) free(paths[i]);
    free(paths);
    free(argv);
    free(ref_t);
    free(ref_i);
done:
    cJSON_Delete(images);
    cJSON_Delete(texts);
    safetensors_close(&st);
    return failures;
}

int main(void) {
    const char *src = getenv("CLIPNEG_SOURCE_DIR"), *shared = getenv("CLIPNEG_SHARED");
    if (!src) src = ".";
    if (!shared) shared = "../shared";
    int failures = 0;
    for (size_t f = 0; f < sizeof FIXTURES / sizeof FIXTURES[0]; f++) {
        int r = check_fixture(src, shared, FIXTURES[f]);
        if (r < 0) return 77;
        failures += r;
    }
    const char *bin = getenv("CLIPNEG_BIN");
    if (bin == NULL || access(bin, X_OK) != 0) {
        printf("commands not checked: CLIPNEG_BIN is not an executable (run through ctest)\n");
    } else {
        for (size_t f = 0; f < sizeof FIXTURES / sizeof FIXTURES[0]; f++) failures += check_commands(bin, src, shared, FIXTURES[f]);
    }
    if (failures) {
        printf("%d end-to-end check(s) FAILED\n", failures);
        return 1;
    }
    printf("all end-to-end checks passed\n");
    return 0;
}
