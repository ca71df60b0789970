// test_encoders.c — the CPU towers against open_clip, given open_clip's own pixels and tokens.
//
//   test_encoders                    every committed tiny fixture tests/fixtures/models/<name>/
//                                    (open_clip layout ViT + ResNet, HF layout ViT): raw embeddings
//                                    within 1e-4 of open_clip's encode_image / encode_text.
//   test_encoders --full DIR         one full-size folder written by make_fixtures.py --full
//                                    (tests/reference/check_fullsize.py): L2-normalised embeddings,
//                                    max |diff| <= 1e-4 and cosine >= 0.99999.
//   test_encoders --bench DIR NI NT  throughput of the towers on NI images / NT texts (the
//                                    fixture's inputs repeated); prints images/s and texts/s.
//
// The goldens (expected.safetensors) come from open_clip run on the weights as stored (see
// tests/reference/make_fixtures.py), never from clipneg.
//
// Tolerances. Tiny fixtures: 1e-4 absolute on raw embeddings of magnitude ~0.1-3: fp32 through
// 2-4 layers accumulates ~1e-6 relative error; a real bug (a wrong activation, head split, mask or
// transposition) moves embeddings by >1e-2.
// Image-dependent part: with randomly initialised ResNets the trunk's features are tiny next to
// the attention pool's positional embedding and biases, so all images map to nearly the same
// vector (rn-tiny: spread 6e-5 on values ~0.3) and an absolute 1e-4 would pass a broken trunk.
// So the embeddings minus their batch mean are also compared, relative to the reference spread:
// <= 1e-2 (fp32 noise of ~6e-8 on both sides is already ~1e-3 of a 6e-5 spread, measured 9.8e-4;
// a wrong trunk gives ~1).
// Causal trimming: trimmed and 77-token runs do the same operations for every row that reaches
// the output, but OpenBLAS rounds a row differently depending on where it falls in the GEMM's
// row blocks (rows in a partial 12-row tail block use another kernel: ~1 ulp per GEMM, measured),
// so the two runs agree to fp32 rounding, not bit for bit: 1e-6 on the L2-normalised embeddings.
// Full size: 1e-4 on unit vectors over 12-32 layers (fp32 error grows with depth, measured
// ~1e-6..1e-5); cosine >= 0.99999 catches any systematic drift.
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clipneg/common.h"
#include "clipneg/encoder.h"
#include "clipneg/model.h"
#include "clipneg/ops.h"
#include "clipneg/safetensors.h"

#define TOL_TINY 1e-4
#define TOL_TRIM 1e-6
#define TOL_FULL 1e-4
#define COS_FULL 0.99999
#define TOL_SPREAD 1e-2

static int g_failures = 0;

typedef struct {
    float *pixels, *image_embeds, *text_embeds;
    int32_t *tokens;
    int n_images, n_texts, R, D, ctx;
} Expected;

static float *tensor_f32(const SafeTensors *st, const char *name, const StTensor **out_t) {
    const StTensor *t = safetensors_find(st, name);
    if (t == NULL) {
        fprintf(stderr, "%s: no tensor '%s'\n", st->path, name);
        exit(1);
    }
    float *d = mallocCheck((size_t)t->numel * sizeof(float));
    if (safetensors_to_f32(t, d) != CN_OK) {
        fprintf(stderr, "%s\n", cn_last_error());
        exit(1);
    }
    if (out_t) *out_t = t;
    return d;
}

static void load_expected(Expected *e, const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    SafeTensors st;
    if (safetensors_open(&st, path) != CN_OK) {
        fprintf(stderr, "%s\n", cn_last_error());
        exit(1);
    }
    const StTensor *tp, *ti, *tt;
    e->pixels = tensor_f32(&st, "pixels", &tp);
    e->image_embeds = tensor_f32(&st, "image_embeds", &ti);
    e->text_embeds = tensor_f32(&st, "text_embeds", &tt);
    e->n_images = (int)tp->shape[0];
    e->R = (int)tp->shape[2];
    e->D = (int)ti->shape[1];
    const StTensor *tk = safetensors_find(&st, "tokens");
    if (tk == NULL || tk->ndim != 2) {
        fprintf(stderr, "%s: no 2-D tensor 'tokens'\n", path);
        exit(1);
    }
    e->n_texts = (int)tk->shape[0];
    e->ctx = (int)tk->shape[1];
    e->tokens = mallocCheck((size_t)tk->numel * sizeof(int32_t));
    if (safetensors_to_i32(tk, e->tokens) != CN_OK) {
        fprintf(stderr, "%s\n", cn_last_error());
        exit(1);
    }
    safetensors_close(&st);
}

static void free_expected(Expected *e) {
    free(e->pixels);
    free(e->image_embeds);
    free(e->text_embeds);
    free(e->tokens);
}

static double max_abs_diff(const float *a, const float *b, long n) {
    double worst = 0.0;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= worst)) worst = d; // a NaN wins
    }
    return worst;
}

static double min_cosine(const float *a, const float *b, int n, int D) {
    double worst = 1.0;
    for (int i = 0; i < n; i++) {
        double ab = 0, aa = 0, bb = 0;
        for (int d = 0; d < D; d++) {
            ab += (double)a[(size_t)i * D + d] * b[(size_t)i * D + d];
            aa += (double)a[(size_t)i * D + d] * a[(size_t)i * D + d];
            bb += (double)b[(size_t)i * D + d] * b[(size_t)i * D + d];
        }
        double c = ab / sqrt(aa * bb);
        if (!(c >= worst)) worst = c;
    }
    return worst;
}

// Embeddings minus their batch mean (the image-dependent part), compared relative to the
// reference's largest centred value.
static double centred_rel_diff(const float *got, const float *ref, int n, int D) {
    double worst = 0.0, scale = 0.0;
    for (int d = 0; d < D; d++) {
        double mg = 0, mr = 0;
        for (int i = 0; i < n; i++) {
            mg += got[(size_t)i * D + d];
            mr += ref[(size_t)i * D + d];
        }
        mg /= n;
        mr /= n;
        for (int i = 0; i < n; i++) {
            double cg = got[(size_t)i * D + d] - mg, cr = ref[(size_t)i * D + d] - mr;
            double e = fabs(cg - cr);
            if (!(e <= worst)) worst = e;
            if (fabs(cr) > scale) scale = fabs(cr);
        }
    }
    return scale > 0 ? worst / scale : worst;
}

// max |diff| of the L2-normalised rows (copies; inputs untouched)
static double normalised_diff(const float *a, const float *b, int n, int D) {
    float *na = mallocCheck((size_t)n * D * sizeof(float)), *nb = mallocCheck((size_t)n * D * sizeof(float));
    memcpy(na, a, (size_t)n * D * sizeof(float));
    memcpy(nb, b, (size_t)n * D * sizeof(float));
    l2_normalize_rows(na, n, D);
    l2_normalize_rows(nb, n, D);
    double d = max_abs_diff(na, nb, (long)n * D);
    free(na);
    free(nb);
    return d;
}

static void report(const char *fixture, const char *what, double diff, double tol) {
    int ok = diff <= tol;
    printf("  %-22s %-34s max|diff| = %.3e  (tol %.0e)  %s\n", fixture, what, diff, tol, ok ? "ok" : "FAIL");
    if (!ok) g_failures++;
}

static int load_model(ClipModel *m, const char *dir) {
    ClipLoadOptions opt;
    memset(&opt, 0, sizeof opt);
    opt.force_quick_gelu = -1;
    if (clip_model_load(m, dir, &opt) != CN_OK) {
        printf("  %s: model load FAILED: %s\n", dir, cn_last_error());
        g_failures++;
        return 0;
    }
    return 1;
}

// ---- tiny fixtures (committed) -----------------------------------------------------------------

static void check_tiny(const char *dir, const char *name) {
    ClipModel m;
    if (!load_model(&m, dir)) return;
    Expected e;
    load_expected(&e, dir);
    if (e.R != m.cfg.image_size || e.D != m.cfg.embed_dim || e.ctx != m.cfg.context_length) {
        printf("  %s: fixture shapes (R=%d D=%d ctx=%d) != model (R=%d D=%d ctx=%d)  FAIL\n", name, e.R, e.D, e.ctx,
               m.cfg.image_size, m.cfg.embed_dim, m.cfg.context_length);
        g_failures++;
        free_expected(&e);
        clip_model_free(&m);
        return;
    }
    printf("%s: %s, %d images, %d texts\n", name, m.cfg.name, e.n_images, e.n_texts);
    long ni = (long)e.n_images * e.D, nt = (long)e.n_texts * e.D;
    float *img = mallocCheck((size_t)ni * sizeof(float));
    float *txt = mallocCheck((size_t)nt * sizeof(float));
    float *txt_full = mallocCheck((size_t)nt * sizeof(float));

    if (encode_images_cpu(&m, e.pixels, e.n_images, img) != CN_OK) {
        printf("  encode_images_cpu FAILED: %s\n", cn_last_error());
        g_failures++;
    } else {
        report(name, "image embeds vs open_clip", max_abs_diff(img, e.image_embeds, ni), TOL_TINY);
        report(name, "image-dependent part (relative)", centred_rel_diff(img, e.image_embeds, e.n_images, e.D),
               TOL_SPREAD);
    }
    if (encode_texts_cpu(&m, e.tokens, e.n_texts, txt) != CN_OK ||
        encode_texts_cpu_full(&m, e.tokens, e.n_texts, txt_full) != CN_OK) {
        printf("  encode_texts_cpu FAILED: %s\n", cn_last_error());
        g_failures++;
    } else {
        report(name, "text embeds vs open_clip (trimmed)", max_abs_diff(txt, e.text_embeds, nt), TOL_TINY);
        report(name, "text embeds vs open_clip (77 tok)", max_abs_diff(txt_full, e.text_embeds, nt), TOL_TINY);
        printf("  %-22s %-34s max|diff| = %.3e  (raw, not a check)\n", name, "trimmed vs 77-token run",
               max_abs_diff(txt, txt_full, nt));
        report(name, "trimmed vs 77-token (L2-normalised)", normalised_diff(txt, txt_full, e.n_texts, e.D), TOL_TRIM);
    }

    // One item per chunk: exercises the chunk offsets (and, for text, per-text trimming).
    encoder_cpu_set_chunk_bytes(1);
    if (encode_images_cpu(&m, e.pixels, e.n_images, img) == CN_OK)
        report(name, "image embeds, 1 per chunk", max_abs_diff(img, e.image_embeds, ni), TOL_TINY);
    else g_failures++;
    if (encode_texts_cpu(&m, e.tokens, e.n_texts, txt) == CN_OK)
        report(name, "text embeds, 1 per chunk", max_abs_diff(txt, e.text_embeds, nt), TOL_TINY);
    else g_failures++;
    encoder_cpu_set_chunk_bytes(0);

    // Bad ids are refused with a message, never read out of bounds.
    int32_t saved = e.tokens[3];
    e.tokens[3] = m.cfg.vocab_size;
    int rc = encode_texts_cpu(&m, e.tokens, e.n_texts, txt);
    int ok = rc == CN_E_DATA && strstr(cn_last_error(), "vocabulary") != NULL;
    printf("  %-22s %-34s rc=%d \"%s\"  %s\n", name, "out-of-vocabulary id refused", rc, cn_last_error(),
           ok ? "ok" : "FAIL");
    if (!ok) g_failures++;
    e.tokens[3] = saved;
    // An empty batch is a no-op.
    if (encode_images_cpu(&m, e.pixels, 0, img) != CN_OK || encode_texts_cpu(&m, e.tokens, 0, txt) != CN_OK) {
        printf("  empty batch FAILED\n");
        g_failures++;
    }

    free(txt_full);
    free(txt);
    free(img);
    free_expected(&e);
    clip_model_free(&m);
}

static int run_tiny(void) {
    const char *src = getenv("CLIPNEG_SOURCE_DIR");
    char root[4096];
    snprintf(root, sizeof root, "%s/tests/fixtures/models", src ? src : ".");
    DIR *d = opendir(root);
    if (d == NULL) {
        printf("no fixture folder %s\n", root);
        return 1;
    }
    // Sorted for a stable output order.
    char names[64][256];
    int n = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL && n < 64) {
        if (ent->d_name[0] == '.') continue;
        char p[4400];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s/expected.safetensors", root, ent->d_name);
        if (stat(p, &sb) != 0) continue;
        snprintf(names[n++], sizeof names[0], "%s", ent->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    if (n < 3) {
        printf("expected at least 3 model fixtures (open_clip ViT, HF ViT, open_clip ResNet), found %d\n", n);
        g_failures++;
    }
    printf("CPU encoders, %d threads\n", ops_threads());
    for (int i = 0; i < n; i++) {
        char p[4400];
        snprintf(p, sizeof p, "%s/%s", root, names[i]);
        check_tiny(p, names[i]);
    }
    return 0;
}

// ---- full-size (check_fullsize.py) -------------------------------------------------------------

static void check_full(const char *dir) {
    double t0 = cn_now();
    ClipModel m;
    if (!load_model(&m, dir)) return;
    double t_load = cn_now() - t0;
    Expected e;
    load_expected(&e, dir);
    printf("%s: %s (%.0fM params), %d images, %d texts, load %.2f s\n", dir, m.cfg.name, m.n_params / 1e6,
           e.n_images, e.n_texts, t_load);
    long ni = (long)e.n_images * e.D, nt = (long)e.n_texts * e.D;
    float *img = mallocCheck((size_t)ni * sizeof(float));
    float *txt = mallocCheck((size_t)nt * sizeof(float));
    float *txt_full = mallocCheck((size_t)nt * sizeof(float));
    t0 = cn_now();
    int rc_i = encode_images_cpu(&m, e.pixels, e.n_images, img);
    double t_img = cn_now() - t0;
    t0 = cn_now();
    int rc_t = encode_texts_cpu(&m, e.tokens, e.n_texts, txt);
    double t_txt = cn_now() - t0;
    int rc_f = encode_texts_cpu_full(&m, e.tokens, e.n_texts, txt_full);
    if (rc_i != CN_OK || rc_t != CN_OK || rc_f != CN_OK) {
        printf("  encode FAILED: %s\n", cn_last_error());
        g_failures++;
    } else {
        report(m.cfg.name, "trimmed vs 77-token (L2-normalised)", normalised_diff(txt, txt_full, e.n_texts, e.D),
               TOL_TRIM);
        report(m.cfg.name, "image-dependent part (relative)", centred_rel_diff(img, e.image_embeds, e.n_images, e.D),
               TOL_SPREAD);
        l2_normalize_rows(img, e.n_images, e.D);
        l2_normalize_rows(txt, e.n_texts, e.D);
        l2_normalize_rows(e.image_embeds, e.n_images, e.D);
        l2_normalize_rows(e.text_embeds, e.n_texts, e.D);
        report(m.cfg.name, "image embeds (L2-normalised)", max_abs_diff(img, e.image_embeds, ni), TOL_FULL);
        report(m.cfg.name, "text embeds (L2-normalised)", max_abs_diff(txt, e.text_embeds, nt), TOL_FULL);
        double ci = min_cosine(img, e.image_embeds, e.n_images, e.D);
        double ct = min_cosine(txt, e.text_embeds, e.n_texts, e.D);
        int ok = ci >= COS_FULL && ct >= COS_FULL;
        printf("  %-22s %-34s image %.8f text %.8f  (min %.5f)  %s\n", m.cfg.name, "min cosine", ci, ct, COS_FULL,
               ok ? "ok" : "FAIL");
        if (!ok) g_failures++;
        printf("  time: %d images %.3f s, %d texts %.3f s\n", e.n_images, t_img, e.n_texts, t_txt);
    }
    free(txt_full);
    free(txt);
    free(img);
    free_expected(&e);
    clip_model_free(&m);
}

static void bench(const char *dir, int n_img, int n_txt) {
    ClipModel m;
    if (!load_model(&m, dir)) return;
    Expected e;
    load_expected(&e, dir);
    int R = e.R, D = e.D, ctx = e.ctx;
    size_t img_sz = (size_t)3 * R * R;
    float *pixels = mallocCheck((size_t)n_img * img_sz * sizeof(float));
    int32_t *ids = mallocCheck((size_t)n_txt * ctx * sizeof(int32_t));
    for (int i = 0; i < n_img; i++) memcpy(pixels + i * img_sz, e.pixels + (i % e.n_images) * img_sz, img_sz * sizeof(float));
    for (int i = 0; i < n_txt; i++)
        memcpy(ids + (size_t)i * ctx, e.tokens + (size_t)(i % e.n_texts) * ctx, (size_t)ctx * sizeof(int32_t));
    float *out = mallocCheck((size_t)(n_img > n_txt ? n_img : n_txt) * D * sizeof(float));
    printf("bench %s (%s), %d threads\n", dir, m.cfg.name, ops_threads());
    if (n_img > 0) {
        double t0 = cn_now();
        if (encode_images_cpu(&m, pixels, n_img, out) != CN_OK) g_failures++;
        double t = cn_now() - t0;
        printf("  images: %d in %.3f s = %.2f images/s\n", n_img, t, n_img / t);
    }
    if (n_txt > 0) {
        double t0 = cn_now();
        if (encode_texts_cpu(&m, ids, n_txt, out) != CN_OK) g_failures++;
        double t = cn_now() - t0;
        t0 = cn_now();
        if (encode_texts_cpu_full(&m, ids, n_txt, out) != CN_OK) g_failures++;
        double tf = cn_now() - t0;
        printf("  texts:  %d in %.3f s = %.1f texts/s (77-token run: %.1f texts/s)\n", n_txt, t, n_txt / t, n_txt / tf);
    }
    free(out);
    free(ids);
    free(pixels);
    free_expected(&e);
    clip_model_free(&m);
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--full")) {
        check_full(argv[2]);
    } else if (argc == 5 && !strcmp(argv[1], "--bench")) {
        bench(argv[2], atoi(argv[3]), atoi(argv[4]));
    } else if (argc == 1) {
        if (run_tiny() != 0) return 1;
    } else {
        fprintf(stderr, "usage: test_encoders [--full DIR | --bench DIR N_IMAGES N_TEXTS]\n");
        return 2;
    }
    if (g_failures) {
        printf("%d encoder check(s) FAILED\n", g_failures);
        return 1;
    }
    printf("all encoder checks passed\n");
    return 0;
}
