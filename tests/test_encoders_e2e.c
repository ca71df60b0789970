// test_encoders_e2e.c — JPEG to embedding: the fixture images decoded and preprocessed by clipneg
// (image.c: stb_image + PIL-faithful bicubic resize + crop + normalise), then the CPU image tower,
// against open_clip's encode_image on open_clip's own PIL preprocessing (expected.safetensors).
//
// Pass: cosine >= 0.999 per image. Why not tighter: here two pipelines meet, and the decoders
// differ (stb_image vs libjpeg's IDCT round differently by a grey level here and there), so pixels
// differ by up to a few 1e-2 after normalisation; the encoder itself is held to 1e-4 on identical
// pixels by test_encoders.c. Measured: min cosine 0.9999999 over the 18 fixture images.
// Skips (77) while image_load_preprocess cannot read the images (the image pipeline is another
// component; this test only proves the two fit together).
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    if (failures) {
        printf("%d end-to-end check(s) FAILED\n", failures);
        return 1;
    }
    printf("all end-to-end checks passed\n");
    return 0;
}
