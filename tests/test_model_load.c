// test_model_load.c — the checkpoint loader against the committed fixtures
// (tests/fixtures/models/*, written by tests/reference/make_fixtures.py with open_clip/transformers):
//   * each fixture in each layout gives the architecture the fixture script recorded (from the
//     open_clip config, independently of clipneg) in expected.safetensors' __metadata__;
//   * the open_clip and HF layouts of the same weights give byte-identical parameters;
//   * ClipModel fields hold the tensors their open_clip names say (a table written here);
//   * BatchNorm folding matches torch's fuse_conv_bn_weights;
//   * a single file, a lone file in a folder and the job overrides behave as documented;
//   * broken copies built here in a temp folder (truncated, swapped shape, wrong dtype, missing or
//     unknown tensor, NaN, contradicting config, pickles) fail with a message naming the problem.
// `test_model_load --full DIR` instead checks a make_fixtures.py --full model (label fullsize).
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clipneg/common.h"
#include "clipneg/model.h"
#include "clipneg/safetensors.h"
#include "test_check.h"

#define FIX "tests/fixtures/models/"
static const ClipLoadOptions DEFAULTS = CLIP_LOAD_OPTIONS_DEFAULT;

// ---- expected architecture from the fixture metadata -------------------------------------------

static long meta_long(const SafeTensors *st, const char *key) {
    const char *v = safetensors_metadata(st, key);
    if (!v) {
        fprintf(stderr, "FAIL: %s lacks metadata '%s'\n", st->path, key);
        g_failures++;
        return -1;
    }
    return strtol(v, NULL, 10);
}

static void check_config(const char *dir, const ClipModel *m) {
    char path[512];
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    SafeTensors st;
    if (safetensors_open(&st, path) != CN_OK) {
        CHECK_MSG(0, "%s", cn_last_error());
        return;
    }
    const ClipConfig *c = &m->cfg;
    const char *kind = safetensors_metadata(&st, "vision_kind");
    CHECK_MSG(kind && !strcmp(kind, c->vision_kind == CLIP_VISION_VIT ? "vit" : "resnet"), "%s: vision_kind", dir);
    const char *layout = safetensors_metadata(&st, "layout");
    CHECK_MSG(layout && !strcmp(layout, m->layout == CLIP_LAYOUT_HF ? "hf" : "open_clip"), "%s: layout", dir);
    struct {
        const char *key;
        long have;
    } f[] = {{"image_size", c->image_size},         {"embed_dim", c->embed_dim},
             {"patch_size", c->patch_size},         {"vision_width", c->vision_width},
             {"vision_layers", c->vision_layers},   {"vision_heads", c->vision_heads},
             {"vision_mlp", c->vision_mlp},         {"vocab_size", c->vocab_size},
             {"context_length", c->context_length}, {"text_width", c->text_width},
             {"text_heads", c->text_heads},         {"text_layers", c->text_layers},
             {"text_mlp", c->text_mlp},             {"quick_gelu", c->quick_gelu},
             {"n_params", (long)m->n_params},       {"n_tensors", m->n_tensors}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        long want = meta_long(&st, f[i].key);
        CHECK_MSG(want == f[i].have, "%s: %s = %ld, the fixture says %ld", dir, f[i].key, f[i].have, want);
    }
    char rl[64];
    snprintf(rl, sizeof rl, "%d,%d,%d,%d", c->resnet_layers[0], c->resnet_layers[1], c->resnet_layers[2],
             c->resnet_layers[3]);
    const char *want_rl = safetensors_metadata(&st, "resnet_layers");
    CHECK_MSG(want_rl && !strcmp(want_rl, rl), "%s: resnet_layers %s vs %s", dir, rl, want_rl ? want_rl : "?");
    const char *eps = safetensors_metadata(&st, "ln_eps");
    CHECK_MSG(eps && fabs(strtod(eps, NULL) - c->ln_eps) < 1e-12, "%s: ln_eps %g", dir, c->ln_eps);
    // exp() of the stored float32 log-scale, in float here and in torch: equal up to 1 ulp.
    const char *ls = safetensors_metadata(&st, "logit_scale");
    CHECK_MSG(ls && fabs(strtod(ls, NULL) - c->logit_scale) <= 2e-6 * c->logit_scale, "%s: logit_scale %.9g vs %s", dir,
          c->logit_scale, ls ? ls : "?");
    const char *name = safetensors_metadata(&st, "name");  // only --full models name a seed shape
    if (name) CHECK_MSG(!strcmp(name, c->name), "%s: name '%s', expected '%s'", dir, c->name, name);
    safetensors_close(&st);
}

static int load_ok(ClipModel *m, const char *path, const ClipLoadOptions *opt) {
    int rc = clip_model_load(m, path, opt);
    CHECK_MSG(rc == CN_OK, "loading %s: %s", path, cn_last_error());
    return rc == CN_OK;
}

// ---- field <-> tensor name table (written here, independently of src/model_names.c) ------------

typedef struct {
    const float *field;
    const char *name;
} Named;

static void check_named(const char *file, const Named *t, int n) {
    SafeTensors st;
    if (safetensors_open(&st, file) != CN_OK) {
        CHECK_MSG(0, "%s", cn_last_error());
        return;
    }
    for (int i = 0; i < n; i++) {
        StTensor *s = safetensors_find(&st, t[i].name);
        CHECK_MSG(s != NULL, "%s: no tensor %s", file, t[i].name);
        if (!s) continue;
        float *v = mallocCheck((size_t)s->numel * sizeof(float));
        CHECK_MSG(safetensors_to_f32(s, v) == CN_OK, "%s", cn_last_error());
        CHECK_MSG(t[i].field && memcmp(v, t[i].field, (size_t)s->numel * sizeof(float)) == 0,
              "ClipModel field for '%s' does not hold that tensor", t[i].name);
        free(v);
    }
    safetensors_close(&st);
}

static void test_vit(void) {
    ClipModel oc, hf;
    if (!load_ok(&oc, FIX "vit-tiny-openclip", &DEFAULTS)) return;
    check_config(FIX "vit-tiny-openclip", &oc);
    CHECK_MSG(oc.layout == CLIP_LAYOUT_OPEN_CLIP, "layout");
    const ClipBlock *v1 = &oc.vis_blocks[1], *t0 = &oc.txt_blocks[0];
    Named names[] = {
        {oc.patch_w, "visual.conv1.weight"}, {oc.class_emb, "visual.class_embedding"},
        {oc.vis_pos_emb, "visual.positional_embedding"}, {oc.ln_pre_w, "visual.ln_pre.weight"},
        {oc.ln_pre_b, "visual.ln_pre.bias"}, {v1->ln_1_w, "visual.transformer.resblocks.1.ln_1.weight"},
        {v1->ln_1_b, "visual.transformer.resblocks.1.ln_1.bias"},
        {v1->qkv_w, "visual.transformer.resblocks.1.attn.in_proj_weight"},
        {v1->qkv_b, "visual.transformer.resblocks.1.attn.in_proj_bias"},
        {v1->out_w, "visual.transformer.resblocks.1.attn.out_proj.weight"},
        {v1->out_b, "visual.transformer.resblocks.1.attn.out_proj.bias"},
        {v1->ln_2_w, "visual.transformer.resblocks.1.ln_2.weight"},
        {v1->ln_2_b, "visual.transformer.resblocks.1.ln_2.bias"},
        {v1->fc_w, "visual.transformer.resblocks.1.mlp.c_fc.weight"},
        {v1->fc_b, "visual.transformer.resblocks.1.mlp.c_fc.bias"},
        {v1->proj_w, "visual.transformer.resblocks.1.mlp.c_proj.weight"},
        {v1->proj_b, "visual.transformer.resblocks.1.mlp.c_proj.bias"}, {oc.ln_post_w, "visual.ln_post.weight"},
        {oc.ln_post_b, "visual.ln_post.bias"}, {oc.vis_proj, "visual.proj"}, {oc.tok_emb, "token_embedding.weight"},
        {oc.txt_pos_emb, "positional_embedding"}, {t0->qkv_w, "transformer.resblocks.0.attn.in_proj_weight"},
        {t0->ln_2_w, "transformer.resblocks.0.ln_2.weight"}, {t0->proj_w, "transformer.resblocks.0.mlp.c_proj.weight"},
        {oc.ln_final_w, "ln_final.weight"}, {oc.ln_final_b, "ln_final.bias"}, {oc.txt_proj, "text_projection"},
    };
    check_named(oc.weights_path, names, (int)(sizeof names / sizeof names[0]));

    if (load_ok(&hf, FIX "vit-tiny-hf", &DEFAULTS)) {
        check_config(FIX "vit-tiny-hf", &hf);
        CHECK_MSG(hf.layout == CLIP_LAYOUT_HF, "HF layout not detected");
        CHECK_MSG(hf.n_params == oc.n_params, "n_params %zu vs %zu", hf.n_params, oc.n_params);
        // Same weights, two layouts: every parameter byte-identical (q/k/v fused, projections transposed).
        CHECK_MSG(hf.n_params == oc.n_params && memcmp(hf.memory, oc.memory, oc.n_params * sizeof(float)) == 0,
              "open_clip and HF layouts give different parameters");
        CHECK_MSG(hf.cfg.logit_scale == oc.cfg.logit_scale, "logit_scale differs between layouts");
        CHECK_MSG(!strcmp(hf.cfg.name, oc.cfg.name), "name differs: %s vs %s", hf.cfg.name, oc.cfg.name);
        clip_model_free(&hf);
    }

    // The weights file itself (standard name): the config beside it is used, same result.
    ClipModel f;
    if (load_ok(&f, FIX "vit-tiny-openclip/open_clip_model.safetensors", NULL)) {
        CHECK_MSG(f.config_path[0] && f.cfg.vision_heads == 2 && f.cfg.quick_gelu == 0, "file load ignored its config");
        CHECK_MSG(f.n_params == oc.n_params && !memcmp(f.memory, oc.memory, oc.n_params * 4), "file load differs");
        clip_model_free(&f);
    }
    // The job's overrides win over the config.
    ClipLoadOptions o = {.force_quick_gelu = 1, .vision_heads = 4, .text_heads = 1};
    if (load_ok(&f, FIX "vit-tiny-openclip", &o)) {
        CHECK_MSG(f.cfg.quick_gelu == 1 && f.cfg.vision_heads == 4 && f.cfg.text_heads == 1, "overrides ignored");
        clip_model_free(&f);
    }
    o = (ClipLoadOptions){.force_quick_gelu = -1, .vision_heads = 3};
    CHECK_MSG(clip_model_load(&f, FIX "vit-tiny-openclip", &o) == CN_E_MODEL &&
              strstr(cn_last_error(), "3 vision heads do not divide the vision width 64"),
          "impossible head override: %s", cn_last_error());
    char desc[512];
    clip_config_describe(&oc.cfg, desc, sizeof desc);
    CHECK_MSG(strstr(desc, "ViT-W64-L2-P8-R32") && strstr(desc, "vision_heads=2") && strstr(desc, "activation=gelu"),
          "describe: %s", desc);
    clip_model_free(&oc);
}

static void test_resnet(void) {
    ClipModel m;
    if (!load_ok(&m, FIX "rn-tiny-openclip", &DEFAULTS)) return;
    check_config(FIX "rn-tiny-openclip", &m);
    CHECK_MSG(m.vis_blocks == NULL && m.patch_w == NULL, "ViT fields set for a ResNet");
    Named names[] = {
        {m.ap_pos_emb, "visual.attnpool.positional_embedding"}, {m.ap_q_w, "visual.attnpool.q_proj.weight"},
        {m.ap_q_b, "visual.attnpool.q_proj.bias"}, {m.ap_k_w, "visual.attnpool.k_proj.weight"},
        {m.ap_k_b, "visual.attnpool.k_proj.bias"}, {m.ap_v_w, "visual.attnpool.v_proj.weight"},
        {m.ap_v_b, "visual.attnpool.v_proj.bias"}, {m.ap_c_w, "visual.attnpool.c_proj.weight"},
        {m.ap_c_b, "visual.attnpool.c_proj.bias"}, {m.tok_emb, "token_embedding.weight"},
        {m.txt_blocks[1].fc_b, "transformer.resblocks.1.mlp.c_fc.bias"},
    };
    check_named(m.weights_path, names, (int)(sizeof names / sizeof names[0]));
    // Stem: 3 -> w/2 (stride 2), w/2 -> w/2, w/2 -> w. Stages (1,1,1,1): every first block downsamples.
    CHECK_MSG(m.stem[0].oc == 4 && m.stem[0].ic == 3 && m.stem[0].k == 3 && m.stem[2].oc == 8, "stem shapes");
    int strides[4] = {1, 2, 2, 2}, planes[4] = {8, 16, 32, 64};
    for (int i = 0; i < 4; i++) {
        const ClipBottleneck *b = &m.bottlenecks[i];
        CHECK_MSG(b->stride == strides[i] && b->down.w != NULL && b->conv2.k == 3 && b->conv1.oc == planes[i] &&
                  b->conv3.oc == 4 * planes[i] && b->down.oc == 4 * planes[i],
              "bottleneck %d: stride %d oc %d/%d", i, b->stride, b->conv1.oc, b->conv3.oc);
    }
    // BatchNorm folding vs torch.nn.utils.fusion.fuse_conv_bn_weights (float32 there, double here:
    // a few float32 roundings apart, so 2e-6 relative to the values' scale).
    SafeTensors ex;
    char path[256];
    snprintf(path, sizeof path, "%s/expected.safetensors", FIX "rn-tiny-openclip");
    if (safetensors_open(&ex, path) == CN_OK) {
        struct {
            const char *name;
            const ClipConv *conv;
        } convs[] = {{"visual.conv1", &m.stem[0]}, {"visual.layer2.0.downsample.0", &m.bottlenecks[1].down}};
        for (int c = 0; c < 2; c++) {
            for (int wb = 0; wb < 2; wb++) {
                char key[128];
                snprintf(key, sizeof key, "folded/%s.%s", convs[c].name, wb ? "bias" : "weight");
                StTensor *t = safetensors_find(&ex, key);
                CHECK_MSG(t != NULL, "%s missing", key);
                if (!t) continue;
                float *ref = mallocCheck((size_t)t->numel * sizeof(float));
                safetensors_to_f32(t, ref);
                const float *have = wb ? convs[c].conv->b : convs[c].conv->w;
                double worst = 0;
                for (int64_t i = 0; i < t->numel; i++) {
                    double d = fabs(have[i] - ref[i]) / (1.0 + fabs(ref[i]));
                    if (d > worst) worst = d;
                }
                CHECK_MSG(worst <= 2e-6, "%s: max relative |folded - torch| = %.3g", key, worst);
                printf("  %-45s max rel diff vs torch fuse_conv_bn_weights: %.2e\n", key, worst);
                free(ref);
            }
        }
        safetensors_close(&ex);
    } else {
        CHECK_MSG(0, "%s", cn_last_error());
    }
    clip_model_free(&m);
}

// ---- broken copies ----------------------------------------------------------------------------

static char g_tmp[256];
static char g_made[64][512];
static int g_n_made = 0;

static const char *tmp_path(const char *rel) {
    char *p = g_made[g_n_made++];
    snprintf(p, 512, "%s/%s", g_tmp, rel);
    return p;
}

static const char *tmp_dir(const char *rel) {
    const char *p = tmp_path(rel);
    mkdir(p, 0700);
    return p;
}

typedef struct {
    cJSON *root;
    uint8_t *data;
    size_t n;
} Ckpt;

static int ckpt_read(Ckpt *c, const char *path) {
    char *buf;
    size_t len;
    if (cn_read_file(path, &buf, &len) != CN_OK || len < 8) return 0;
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) h = (h << 8) | (uint8_t)buf[i];
    c->root = cJSON_ParseWithLength(buf + 8, h);
    c->n = len - 8 - h;
    c->data = mallocCheck(c->n + 64);
    memcpy(c->data, buf + 8 + h, c->n);
    free(buf);
    return c->root != NULL;
}

static void ckpt_write(const Ckpt *c, const char *path) {
    char *h = cJSON_PrintUnformatted(c->root);
    FILE *fp = fopenCheck(path, "wb");
    uint64_t n = strlen(h);
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)(n >> (8 * i));
    fwriteCheck(len, 1, 8, fp);
    fwriteCheck(h, 1, n, fp);
    fwriteCheck(c->data, 1, c->n, fp);
    fcloseCheck(fp);
    free(h);
}

static void ckpt_free(Ckpt *c) {
    cJSON_Delete(c->root);
    free(c->data);
}

// Write an edited copy of fixture `fixture`'s weights into a new temp folder `name` (with the
// fixture's config beside it) and expect loading it to fail with all `needles` in the message.
typedef void (*EditFn)(Ckpt *c);
static void expect_broken(const char *fixture, const char *name, EditFn edit, const char *n1, const char *n2) {
    int hf = strstr(fixture, "-hf") != NULL;
    const char *wname = hf ? "model.safetensors" : "open_clip_model.safetensors";
    const char *cname = hf ? "config.json" : "open_clip_config.json";
    char src[512], cfg_src[512], rel[256];
    snprintf(src, sizeof src, "%s%s/%s", FIX, fixture, wname);
    snprintf(cfg_src, sizeof cfg_src, "%s%s/%s", FIX, fixture, cname);
    const char *dir = tmp_dir(name);
    snprintf(rel, sizeof rel, "%s/%s", name, cname);
    char *cfg_abs = realpath(cfg_src, NULL);
    CHECK_MSG(cfg_abs && symlink(cfg_abs, tmp_path(rel)) == 0, "symlink config");
    free(cfg_abs);
    snprintf(rel, sizeof rel, "%s/%s", name, wname);
    const char *dst = tmp_path(rel);
    Ckpt c;
    CHECK_MSG(ckpt_read(&c, src), "reading %s", src);
    edit(&c);
    ckpt_write(&c, dst);
    ckpt_free(&c);
    ClipModel m;
    int rc = clip_model_load(&m, dir, &DEFAULTS);
    const char *e = cn_last_error();
    CHECK_MSG(rc == CN_E_MODEL, "%s: expected CN_E_MODEL, got %d", name, rc);
    CHECK_MSG(strstr(e, dst) != NULL, "%s: message does not name the file: %s", name, e);
    CHECK_MSG(strstr(e, n1) != NULL && (!n2 || strstr(e, n2) != NULL), "%s: message '%s' lacks '%s'%s%s", name, e, n1,
          n2 ? " / " : "", n2 ? n2 : "");
    printf("  %-16s -> %s\n", name, e);
    if (rc == CN_OK) clip_model_free(&m);
}

static cJSON *entry(Ckpt *c, const char *name) { return cJSON_GetObjectItemCaseSensitive(c->root, name); }

static void edit_swap_shape(Ckpt *c) {
    cJSON *e = entry(c, "visual.transformer.resblocks.1.mlp.c_proj.weight");
    cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    double a = cJSON_GetArrayItem(shape, 0)->valuedouble, b = cJSON_GetArrayItem(shape, 1)->valuedouble;
    cJSON_SetNumberValue(cJSON_GetArrayItem(shape, 0), b);
    cJSON_SetNumberValue(cJSON_GetArrayItem(shape, 1), a);
}
static void edit_dtype(Ckpt *c) {
    cJSON_ReplaceItemInObject(entry(c, "ln_final.weight"), "dtype", cJSON_CreateString("I32"));
}
static void edit_missing(Ckpt *c) { cJSON_DeleteItemFromObject(c->root, "visual.ln_post.bias"); }
static void edit_missing_hf(Ckpt *c) {
    cJSON_DeleteItemFromObject(c->root, "vision_model.encoder.layers.1.self_attn.k_proj.bias");
}
static void edit_missing_bn(Ckpt *c) { cJSON_DeleteItemFromObject(c->root, "visual.layer3.0.bn2.running_var"); }
static void edit_unknown(Ckpt *c) {
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "dtype", "F32");
    cJSON *shape = cJSON_AddArrayToObject(e, "shape");
    cJSON_AddItemToArray(shape, cJSON_CreateNumber(1));
    cJSON *off = cJSON_AddArrayToObject(e, "data_offsets");
    cJSON_AddItemToArray(off, cJSON_CreateNumber((double)c->n));
    cJSON_AddItemToArray(off, cJSON_CreateNumber((double)c->n + 4));
    cJSON_AddItemToObject(c->root, "visual.extra_head.weight", e);
    memset(c->data + c->n, 0, 4);
    c->n += 4;
}
static void edit_nan(Ckpt *c) {
    cJSON *off = cJSON_GetObjectItemCaseSensitive(entry(c, "visual.ln_post.weight"), "data_offsets");
    size_t at = (size_t)cJSON_GetArrayItem(off, 0)->valuedouble + 4 * 5;
    float nan = NAN;
    memcpy(c->data + at, &nan, 4);
}
static void edit_truncate(Ckpt *c) { c->n -= 1000; }
static void edit_swap_proj(Ckpt *c) {
    cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry(c, "visual_projection.weight"), "shape");
    double a = cJSON_GetArrayItem(shape, 0)->valuedouble, b = cJSON_GetArrayItem(shape, 1)->valuedouble;
    cJSON_SetNumberValue(cJSON_GetArrayItem(shape, 0), b);
    cJSON_SetNumberValue(cJSON_GetArrayItem(shape, 1), a);
}

// open_clip's CustomTextCLIP keeps the text tower under "text.": same model, other names.
static void edit_custom_text(Ckpt *c) {
    static const char *text_keys[] = {"token_embedding", "positional_embedding", "transformer.", "ln_final",
                                      "text_projection"};
    cJSON *renamed = cJSON_CreateObject();
    while (c->root->child) {
        cJSON *e = cJSON_DetachItemViaPointer(c->root, c->root->child);
        int text = 0;
        for (size_t i = 0; i < sizeof text_keys / sizeof text_keys[0]; i++)
            text |= !strncmp(e->string, text_keys[i], strlen(text_keys[i]));
        char name[512];
        snprintf(name, sizeof name, "%s%s", text ? "text." : "", e->string);
        cJSON_AddItemToObject(renamed, name, e);
    }
    cJSON_Delete(c->root);
    c->root = renamed;
}

static void test_custom_text(const ClipModel *ref) {
    char rel[64] = "custom-text/open_clip_model.safetensors";
    tmp_dir("custom-text");
    const char *dst = tmp_path(rel);
    Ckpt c;
    CHECK_MSG(ckpt_read(&c, FIX "vit-tiny-openclip/open_clip_model.safetensors"), "read");
    edit_custom_text(&c);
    CHECK_MSG(cJSON_GetObjectItemCaseSensitive(c.root, "text.token_embedding.weight") != NULL, "rename");
    ckpt_write(&c, dst);
    ckpt_free(&c);
    ClipModel m;
    ClipLoadOptions o = {.force_quick_gelu = 0, .vision_heads = 2, .text_heads = 2};
    if (load_ok(&m, dst, &o)) {
        CHECK_MSG(m.n_params == ref->n_params && !memcmp(m.memory, ref->memory, m.n_params * 4),
              "CustomTextCLIP names give different parameters");
        clip_model_free(&m);
    }
}

static void write_text(const char *path, const char *text) {
    FILE *fp = fopenCheck(path, "wb");
    fwriteCheck(text, 1, strlen(text), fp);
    fcloseCheck(fp);
}

static void expect_fail(const char *path, const ClipLoadOptions *o, const char *needle) {
    ClipModel m;
    int rc = clip_model_load(&m, path, o);
    CHECK_MSG(rc == CN_E_MODEL && strstr(cn_last_error(), needle), "%s: expected failure with '%s', got %d: %s", path,
          needle, rc, cn_last_error());
    printf("  %-16s -> %s\n", strrchr(path, '/') ? strrchr(path, '/') + 1 : path, cn_last_error());
    if (rc == CN_OK) clip_model_free(&m);
}

static void test_broken(void) {
    snprintf(g_tmp, sizeof g_tmp, "%s/clipneg-model-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(g_tmp)) {
        CHECK_MSG(0, "mkdtemp failed");
        return;
    }
    printf("broken checkpoints (in %s):\n", g_tmp);
    expect_broken("vit-tiny-openclip", "truncated", edit_truncate, "outside the data section", NULL);
    expect_broken("vit-tiny-openclip", "swapped-shape", edit_swap_shape,
                  "'visual.transformer.resblocks.1.mlp.c_proj.weight' has shape [256, 64]", "needs [64, 256]");
    expect_broken("vit-tiny-openclip", "wrong-dtype", edit_dtype, "'ln_final.weight' has dtype I32", NULL);
    expect_broken("vit-tiny-openclip", "missing", edit_missing, "missing tensor 'visual.ln_post.bias'", NULL);
    expect_broken("vit-tiny-openclip", "unknown", edit_unknown, "unknown tensor 'visual.extra_head.weight'", NULL);
    expect_broken("vit-tiny-openclip", "nan", edit_nan, "'visual.ln_post.weight' holds a non-finite value", NULL);
    expect_broken("vit-tiny-hf", "hf-missing", edit_missing_hf,
                  "missing tensor 'vision_model.encoder.layers.1.self_attn.k_proj.bias'", NULL);
    expect_broken("vit-tiny-hf", "hf-swapped-proj", edit_swap_proj, "visual_projection.weight", "text_projection");
    expect_broken("rn-tiny-openclip", "rn-missing-bn", edit_missing_bn,
                  "missing tensor 'visual.layer3.0.bn2.running_var'", NULL);

    char abs_w[4096];
    CHECK_MSG(realpath(FIX "vit-tiny-openclip/open_clip_model.safetensors", abs_w) != NULL, "realpath");
    // A config that contradicts the shapes.
    const char *d = tmp_dir("bad-config");
    CHECK_MSG(symlink(abs_w, tmp_path("bad-config/open_clip_model.safetensors")) == 0, "symlink");
    write_text(tmp_path("bad-config/open_clip_config.json"),
               "{\"model_cfg\": {\"embed_dim\": 24, \"vision_cfg\": {\"width\": 128, \"layers\": 2}}}");
    expect_fail(d, &DEFAULTS, "vision_cfg.width = 128 but the checkpoint's tensor shapes give 64");
    // An HF config with an activation clipneg does not implement.
    d = tmp_dir("bad-act");
    char abs_hf[4096];
    CHECK_MSG(realpath(FIX "vit-tiny-hf/model.safetensors", abs_hf) != NULL, "realpath");
    CHECK_MSG(symlink(abs_hf, tmp_path("bad-act/model.safetensors")) == 0, "symlink");
    write_text(tmp_path("bad-act/config.json"), "{\"text_config\": {\"hidden_act\": \"gelu_new\"}}");
    expect_fail(d, &DEFAULTS, "hidden_act \"gelu_new\" is not supported");
    // A lone, otherwise named file: no config, OpenAI defaults -> 16-wide text cannot get 64-wide heads ...
    d = tmp_dir("bare");
    const char *bare = tmp_path("bare/tiny.safetensors");
    CHECK_MSG(symlink(abs_w, bare) == 0, "symlink");
    expect_fail(bare, &DEFAULTS, "cannot infer the text attention heads");
    // ... unless the job gives them; then the same parameters as the folder with its config.
    ClipModel a, b;
    ClipLoadOptions o = {.force_quick_gelu = 0, .vision_heads = 2, .text_heads = 2};
    if (load_ok(&a, d, &o)) {  // the folder: its only .safetensors is used
        CHECK_MSG(!strcmp(a.weights_path, bare) && a.config_path[0] == '\0', "lone file: %s", a.weights_path);
        if (load_ok(&b, FIX "vit-tiny-openclip", &DEFAULTS)) {
            CHECK_MSG(a.n_params == b.n_params && !memcmp(a.memory, b.memory, a.n_params * 4) &&
                      !memcmp(&a.cfg, &b.cfg, sizeof a.cfg),
                  "bare file + options differs from folder + config");
            clip_model_free(&b);
        }
        clip_model_free(&a);
    }
    o.force_quick_gelu = -1;
    if (load_ok(&a, bare, &o)) {
        CHECK_MSG(a.cfg.quick_gelu == 1, "no config: QuickGELU (OpenAI) expected");
        clip_model_free(&a);
    }
    if (load_ok(&a, FIX "vit-tiny-openclip", &DEFAULTS)) {
        test_custom_text(&a);
        clip_model_free(&a);
    }
    // Broken PyTorch files go to the PyTorch reader (tests/python/test_torchfile.py has the rest).
    d = tmp_dir("pickle");
    write_text(tmp_path("pickle/pytorch_model.bin"), "PK\003\004 not really a zip");
    expect_fail(d, &DEFAULTS, "no zip end-of-central-directory record");
    write_text(tmp_path("pickle/model.pt"), "x");
    expect_fail(g_made[g_n_made - 1], &DEFAULTS, "not a PyTorch checkpoint");
    write_text(tmp_path("pickle/zip.safetensors"), "PK\003\004 a torch.save zip renamed");
    expect_fail(g_made[g_n_made - 1], &DEFAULTS, "no zip end-of-central-directory record");
    d = tmp_dir("empty");
    expect_fail(d, &DEFAULTS, "no checkpoint found");
    d = tmp_dir("two");
    CHECK_MSG(symlink(abs_w, tmp_path("two/a.safetensors")) == 0 && symlink(abs_w, tmp_path("two/b.safetensors")) == 0,
          "symlinks");
    expect_fail(d, &DEFAULTS, "give the file to use");
    expect_fail("/nonexistent/model", &DEFAULTS, "/nonexistent/model");
    // Not a CLIP at all: the expected-outputs file.
    expect_fail(FIX "vit-tiny-openclip/expected.safetensors", &DEFAULTS, "not a CLIP checkpoint");

    for (int i = g_n_made - 1; i >= 0; i--)
        if (unlink(g_made[i]) != 0) rmdir(g_made[i]);
    rmdir(g_tmp);
}

// The fuzz seed (an open_clip micro ViT, no config): loads once its head counts are given.
static void test_fuzz_seed(void) {
    ClipModel m;
    ClipLoadOptions o = {.force_quick_gelu = -1, .vision_heads = 2, .text_heads = 2};
    if (load_ok(&m, "tests/fuzz/corpus/safetensors/micro_vit.safetensors", &o)) {
        CHECK_MSG(m.cfg.vision_width == 8 && m.cfg.patch_size == 4 && m.cfg.image_size == 8 && m.cfg.vision_layers == 1 &&
                  m.cfg.vocab_size == 10 && m.cfg.context_length == 8 && m.cfg.embed_dim == 4,
              "micro_vit config");
        clip_model_free(&m);
    }
}

static int run_full(const char *dir) {
    ClipModel m;
    double t0 = cn_now();
    if (!load_ok(&m, dir, &DEFAULTS)) return 1;
    printf("%s: %s, %zu parameters, loaded in %.2f s\n", dir, m.cfg.name, m.n_params, cn_now() - t0);
    check_config(dir, &m);
    clip_model_free(&m);
    return g_failures ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--full")) return run_full(argv[2]);
    test_vit();
    test_resnet();
    test_broken();
    test_fuzz_seed();
    if (g_failures) {
        fprintf(stderr, "%d check(s) failed\n", g_failures);
        return 1;
    }
    printf("model_load: all checks passed\n");
    return 0;
}
