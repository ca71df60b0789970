// model_infer.c — a CLIP architecture from tensor shapes, refined by the checkpoint's config file.
//
// Shapes decide every dimension (a config can only confirm them: a disagreement stops the load).
// What shapes cannot tell — the activation and the number of attention heads — comes from the
// config (open_clip_config.json: model_cfg.quick_gelu, vision_cfg.head_width, text_cfg.heads;
// HF config.json: hidden_act, num_attention_heads), else from OpenAI's conventions (QuickGELU,
// 64-wide heads), and the job may override both (ClipLoadOptions).
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "model_internal.h"

// Any inferred dimension above this is a corrupt header, not a model.
#define MAX_DIM (1 << 24)

void clip_shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

// The tensor `prefix``name`, which must exist with `ndim` dimensions (to infer from its shape).
static int need(const KeySpace *ks, const StTensor **out, int ndim, const char *prefix, const char *name) {
    char key[512];
    snprintf(key, sizeof key, "%s%s", prefix, name);
    const StTensor *t = safetensors_find(ks->st, key);
    if (!t) return cn_fail(CN_E_MODEL, "%s: missing tensor '%s' (needed to infer the architecture)", ks->st->path, key);
    if (t->ndim != ndim) {
        char s[128];
        clip_shape_str(s, sizeof s, t->ndim, t->shape);
        return cn_fail(CN_E_MODEL, "%s: tensor '%s' has shape %s, expected %d dimensions", ks->st->path, key, s, ndim);
    }
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] < 1 || t->shape[i] > MAX_DIM)
            return cn_fail(CN_E_MODEL, "%s: tensor '%s' has an implausible dimension %lld", ks->st->path, key,
                           (long long)t->shape[i]);
    *out = t;
    return CN_OK;
}

// Number of blocks under `prefix` (e.g. "visual.transformer.resblocks."): 1 + the largest index.
// Gaps are caught later, when the missing block's tensors are looked up.
static int count_blocks(const SafeTensors *st, const char *prefix, int *count) {
    size_t np = strlen(prefix);
    long best = -1;
    for (int i = 0; i < st->n; i++) {
        const char *k = st->tensors[i].name;
        if (strncmp(k, prefix, np) != 0 || k[np] < '0' || k[np] > '9') continue;
        char *end;
        long idx = strtol(k + np, &end, 10);
        if (*end != '.' || idx > st->n)  // a block has several tensors: its index is below the count
            return cn_fail(CN_E_MODEL, "%s: tensor '%s': bad block index", st->path, k);
        if (idx > best) best = idx;
    }
    if (best < 0) return cn_fail(CN_E_MODEL, "%s: no tensors named '%s<i>.*'", st->path, prefix);
    *count = (int)best + 1;
    return CN_OK;
}

int clip_detect_layout(const SafeTensors *st, KeySpace *ks) {
    ks->st = st;
    ks->text_prefix = "";
    int hf = safetensors_find(st, "text_model.embeddings.token_embedding.weight") ||
             safetensors_find(st, "vision_model.embeddings.patch_embedding.weight");
    int oc = safetensors_find(st, "token_embedding.weight") || safetensors_find(st, "text.token_embedding.weight") ||
             safetensors_find(st, "visual.conv1.weight");
    if (hf && oc) return cn_fail(CN_E_MODEL, "%s: mixes open_clip and HF transformers tensor names", st->path);
    if (!hf && !oc)
        return cn_fail(CN_E_MODEL, "%s: not a CLIP checkpoint: no 'token_embedding.weight', 'visual.conv1.weight' or "
                       "'text_model.embeddings.token_embedding.weight' among its %d tensors (first: '%s')",
                       st->path, st->n, st->n ? st->tensors[0].name : "");
    ks->layout = hf ? CLIP_LAYOUT_HF : CLIP_LAYOUT_OPEN_CLIP;
    if (oc && safetensors_find(st, "text.token_embedding.weight")) ks->text_prefix = "text.";  // CustomTextCLIP
    return CN_OK;
}

static int grid_of(const KeySpace *ks, const StTensor *pos, int *grid) {
    int64_t n = pos->shape[0] - 1;
    int g = (int)llround(sqrt((double)n));
    if (n < 1 || (int64_t)g * g != n)
        return cn_fail(CN_E_MODEL, "%s: tensor '%s' has %lld rows: not 1 + a square grid", ks->st->path, pos->name,
                       (long long)pos->shape[0]);
    *grid = g;
    return CN_OK;
}

static int infer_vision_openclip(const KeySpace *ks, ClipConfig *c) {
    const StTensor *t;
    int rc, grid = 0;
    if (safetensors_find(ks->st, "visual.attnpool.positional_embedding") ||
        safetensors_find(ks->st, "visual.layer1.0.conv1.weight")) {
        c->vision_kind = CLIP_VISION_RESNET;
        if ((rc = need(ks, &t, 4, "visual.", "layer1.0.conv1.weight"))) return rc;
        c->vision_width = (int)t->shape[0];
        for (int s = 0; s < 4; s++) {
            char prefix[32];
            snprintf(prefix, sizeof prefix, "visual.layer%d.", s + 1);
            if ((rc = count_blocks(ks->st, prefix, &c->resnet_layers[s]))) return rc;
        }
        if ((rc = need(ks, &t, 2, "visual.", "attnpool.positional_embedding"))) return rc;
        if ((rc = grid_of(ks, t, &grid))) return rc;
        c->image_size = 32 * grid;  // the ResNet downsamples by 32 before the attention pool
        if ((rc = need(ks, &t, 2, "visual.", "attnpool.c_proj.weight"))) return rc;
        c->embed_dim = (int)t->shape[0];
        return CN_OK;
    }
    c->vision_kind = CLIP_VISION_VIT;
    if ((rc = need(ks, &t, 4, "visual.", "conv1.weight"))) return rc;
    if (t->shape[1] != 3 || t->shape[2] != t->shape[3]) {
        char s[128];
        clip_shape_str(s, sizeof s, t->ndim, t->shape);
        return cn_fail(CN_E_MODEL, "%s: tensor 'visual.conv1.weight' has shape %s, expected [W, 3, P, P]",
                       ks->st->path, s);
    }
    c->vision_width = (int)t->shape[0];
    c->patch_size = (int)t->shape[2];
    if ((rc = need(ks, &t, 2, "visual.", "positional_embedding"))) return rc;
    if ((rc = grid_of(ks, t, &grid))) return rc;
    if ((int64_t)grid * c->patch_size > MAX_DIM)
        return cn_fail(CN_E_MODEL, "%s: implausible image size %d x %d", ks->st->path, grid, c->patch_size);
    c->image_size = grid * c->patch_size;
    if ((rc = count_blocks(ks->st, "visual.transformer.resblocks.", &c->vision_layers))) return rc;
    if ((rc = need(ks, &t, 2, "visual.", "transformer.resblocks.0.mlp.c_fc.weight"))) return rc;
    c->vision_mlp = (int)t->shape[0];
    if ((rc = need(ks, &t, 2, "visual.", "proj"))) return rc;
    c->embed_dim = (int)t->shape[1];
    return CN_OK;
}

static int infer_vision_hf(const KeySpace *ks, ClipConfig *c) {
    const StTensor *t;
    int rc, grid = 0;
    c->vision_kind = CLIP_VISION_VIT;  // transformers has no ModifiedResNet CLIP
    if ((rc = need(ks, &t, 4, "vision_model.", "embeddings.patch_embedding.weight"))) return rc;
    if (t->shape[1] != 3 || t->shape[2] != t->shape[3]) {
        char s[128];
        clip_shape_str(s, sizeof s, t->ndim, t->shape);
        return cn_fail(CN_E_MODEL, "%s: tensor '%s' has shape %s, expected [W, 3, P, P]", ks->st->path, t->name, s);
    }
    c->vision_width = (int)t->shape[0];
    c->patch_size = (int)t->shape[2];
    if ((rc = need(ks, &t, 2, "vision_model.", "embeddings.position_embedding.weight"))) return rc;
    if ((rc = grid_of(ks, t, &grid))) return rc;
    if ((int64_t)grid * c->patch_size > MAX_DIM)
        return cn_fail(CN_E_MODEL, "%s: implausible image size %d x %d", ks->st->path, grid, c->patch_size);
    c->image_size = grid * c->patch_size;
    if ((rc = count_blocks(ks->st, "vision_model.encoder.layers.", &c->vision_layers))) return rc;
    if ((rc = need(ks, &t, 2, "vision_model.", "encoder.layers.0.mlp.fc1.weight"))) return rc;
    c->vision_mlp = (int)t->shape[0];
    if ((rc = need(ks, &t, 2, "", "visual_projection.weight"))) return rc;  // Linear: [D, W]
    c->embed_dim = (int)t->shape[0];
    return CN_OK;
}

static int infer_text(const KeySpace *ks, ClipConfig *c) {
    const StTensor *t;
    int rc, hf = ks->layout == CLIP_LAYOUT_HF, proj_dim;
    const char *p = hf ? "text_model." : ks->text_prefix;
    char blocks[64];
    if ((rc = need(ks, &t, 2, p, hf ? "embeddings.token_embedding.weight" : "token_embedding.weight"))) return rc;
    c->vocab_size = (int)t->shape[0];
    c->text_width = (int)t->shape[1];
    if ((rc = need(ks, &t, 2, p, hf ? "embeddings.position_embedding.weight" : "positional_embedding"))) return rc;
    c->context_length = (int)t->shape[0];
    snprintf(blocks, sizeof blocks, "%s%s", p, hf ? "encoder.layers." : "transformer.resblocks.");
    if ((rc = count_blocks(ks->st, blocks, &c->text_layers))) return rc;
    if ((rc = need(ks, &t, 2, p, hf ? "encoder.layers.0.mlp.fc1.weight" : "transformer.resblocks.0.mlp.c_fc.weight")))
        return rc;
    c->text_mlp = (int)t->shape[0];
    if (hf) {
        if ((rc = need(ks, &t, 2, "", "text_projection.weight"))) return rc;
        proj_dim = (int)t->shape[0];
    } else {
        if ((rc = need(ks, &t, 2, p, "text_projection"))) return rc;
        proj_dim = (int)t->shape[1];
    }
    if (proj_dim != c->embed_dim)
        return cn_fail(CN_E_MODEL, "%s: text projection '%s' maps to %d dimensions but the image tower ('%s') to %d",
                       ks->st->path, t->name, proj_dim,
                       hf ? "visual_projection.weight"
                          : c->vision_kind == CLIP_VISION_VIT ? "visual.proj" : "visual.attnpool.c_proj.weight",
                       c->embed_dim);
    return CN_OK;
}

int clip_infer_shapes(const KeySpace *ks, ClipConfig *c) {
    memset(c, 0, sizeof *c);
    c->quick_gelu = -1;
    c->ln_eps = 1e-5f;
    c->logit_scale = 1.0f;
    int rc = ks->layout == CLIP_LAYOUT_HF ? infer_vision_hf(ks, c) : infer_vision_openclip(ks, c);
    if (rc == CN_OK) rc = infer_text(ks, c);
    return rc;
}

// ---- config files ---------------------------------------------------------------------------

typedef struct {
    const char *path;
    ClipConfig *c;
} Cfg;

static const cJSON *item(const cJSON *o, const char *key) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsNull(v) ? NULL : v;
}

// A declared dimension must equal what the shapes say (absent/null: nothing to check).
static int check_dim(const Cfg *g, const cJSON *o, const char *section, const char *key, int have) {
    const cJSON *v = item(o, key);
    if (!v) return CN_OK;
    if (!cJSON_IsNumber(v)) return cn_fail(CN_E_MODEL, "%s: %s.%s is not a number", g->path, section, key);
    if (v->valuedouble != (double)have)
        return cn_fail(CN_E_MODEL, "%s: %s.%s = %g but the checkpoint's tensor shapes give %d", g->path, section, key,
                       v->valuedouble, have);
    return CN_OK;
}

// Positive integer `key` (or `def` when absent) into *out.
static int get_int(const Cfg *g, const cJSON *o, const char *section, const char *key, int def, int *out) {
    const cJSON *v = item(o, key);
    if (!v) {
        *out = def;
        return CN_OK;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > MAX_DIM || v->valuedouble != (int)v->valuedouble)
        return cn_fail(CN_E_MODEL, "%s: %s.%s is not a positive integer", g->path, section, key);
    *out = (int)v->valuedouble;
    return CN_OK;
}

// open_clip features this loader does not implement: refuse rather than compute something else.
static int refuse_features(const Cfg *g, const cJSON *o, const char *section, const char *pool_ok) {
    static const char *flags[] = {"attentional_pool", "no_ln_pre", "final_ln_after_pool", "embed_cls",
                                  "no_causal_mask", "proj_bias"};
    static const char *present[] = {"timm_model_name", "hf_model_name", "ls_init_value", "act_kwargs"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (cJSON_IsTrue(item(o, flags[i])))
            return cn_fail(CN_E_MODEL, "%s: %s.%s = true is not supported by clipneg", g->path, section, flags[i]);
    for (size_t i = 0; i < sizeof present / sizeof present[0]; i++)
        if (item(o, present[i]))
            return cn_fail(CN_E_MODEL, "%s: %s.%s is not supported by clipneg", g->path, section, present[i]);
    const cJSON *pool = item(o, "pool_type");
    if (pool && (!cJSON_IsString(pool) || strcmp(pool->valuestring, pool_ok) != 0))
        return cn_fail(CN_E_MODEL, "%s: %s.pool_type must be \"%s\"", g->path, section, pool_ok);
    const cJSON *pe = item(o, "pos_embed_type");
    if (pe && (!cJSON_IsString(pe) || strcmp(pe->valuestring, "learnable") != 0))
        return cn_fail(CN_E_MODEL, "%s: %s.pos_embed_type must be \"learnable\"", g->path, section);
    const cJSON *eps = item(item(o, "norm_kwargs"), "eps");
    if (eps) {
        if (!cJSON_IsNumber(eps) || !(eps->valuedouble > 0))
            return cn_fail(CN_E_MODEL, "%s: %s.norm_kwargs.eps is not a positive number", g->path, section);
        g->c->ln_eps = (float)eps->valuedouble;
    }
    return CN_OK;
}

// open_clip: mlp_width = int(width * mlp_ratio).
static int mlp_matches(const cJSON *ratio, int width, int mlp) {
    if (!cJSON_IsNumber(ratio)) return 0;
    double w = width * ratio->valuedouble;
    return w >= 0 && w < MAX_DIM && (int)w == mlp;
}

static int apply_openclip(const Cfg *g, const cJSON *mc, int *act, int *vh, int *th) {
    ClipConfig *c = g->c;
    int rc;
    if ((rc = check_dim(g, mc, "model_cfg", "embed_dim", c->embed_dim))) return rc;
    if (item(mc, "init_logit_bias"))
        return cn_fail(CN_E_MODEL, "%s: model_cfg.init_logit_bias (SigLIP-style) is not supported", g->path);
    const cJSON *qg = item(mc, "quick_gelu");
    if (qg && !cJSON_IsBool(qg)) return cn_fail(CN_E_MODEL, "%s: model_cfg.quick_gelu is not true/false", g->path);
    c->quick_gelu = cJSON_IsTrue(qg);  // open_clip: absent means nn.GELU
    *act = 1;

    const cJSON *v = item(mc, "vision_cfg"), *t = item(mc, "text_cfg");
    int head_width = 64, text_heads = 8;
    if ((rc = refuse_features(g, v, "vision_cfg", "tok"))) return rc;
    if ((rc = get_int(g, v, "vision_cfg", "head_width", 64, &head_width))) return rc;
    if ((rc = check_dim(g, v, "vision_cfg", "width", c->vision_width))) return rc;
    const cJSON *size = item(v, "image_size");
    if (cJSON_IsArray(size) && cJSON_GetArraySize(size) == 2) {  // [H, W]: square only
        for (const cJSON *x = size->child; x; x = x->next)
            if (!cJSON_IsNumber(x) || x->valuedouble != c->image_size)
                return cn_fail(CN_E_MODEL, "%s: vision_cfg.image_size does not match the %d x %d the shapes give",
                               g->path, c->image_size, c->image_size);
    } else if ((rc = check_dim(g, v, "vision_cfg", "image_size", c->image_size))) {
        return rc;
    }
    const cJSON *layers = item(v, "layers");
    if (c->vision_kind == CLIP_VISION_RESNET) {
        if (layers) {
            int k = 0;
            for (const cJSON *x = cJSON_IsArray(layers) ? layers->child : NULL; x; x = x->next, k++)
                if (k >= 4 || !cJSON_IsNumber(x) || x->valuedouble != c->resnet_layers[k]) k = 99;
            if (k != 4)
                return cn_fail(CN_E_MODEL, "%s: vision_cfg.layers does not match the ResNet stages in the checkpoint "
                               "(%d, %d, %d, %d)", g->path, c->resnet_layers[0], c->resnet_layers[1],
                               c->resnet_layers[2], c->resnet_layers[3]);
        }
        if ((32 * c->vision_width) % head_width != 0)
            return cn_fail(CN_E_MODEL, "%s: vision_cfg.head_width %d does not divide the attention-pool width %d",
                           g->path, head_width, 32 * c->vision_width);
        c->vision_heads = 32 * c->vision_width / head_width;
    } else {
        if ((rc = check_dim(g, v, "vision_cfg", "layers", c->vision_layers))) return rc;
        if ((rc = check_dim(g, v, "vision_cfg", "patch_size", c->patch_size))) return rc;
        const cJSON *r = item(v, "mlp_ratio");
        if (r && !mlp_matches(r, c->vision_width, c->vision_mlp))
            return cn_fail(CN_E_MODEL, "%s: vision_cfg.mlp_ratio does not match the MLP width %d in the checkpoint",
                           g->path, c->vision_mlp);
        if (c->vision_width % head_width != 0)
            return cn_fail(CN_E_MODEL, "%s: vision_cfg.head_width %d does not divide the width %d", g->path,
                           head_width, c->vision_width);
        c->vision_heads = c->vision_width / head_width;
    }
    *vh = 1;

    float vision_eps = c->ln_eps;
    c->ln_eps = 1e-5f;
    if ((rc = refuse_features(g, t, "text_cfg", "argmax"))) return rc;
    if (c->ln_eps != vision_eps)
        return cn_fail(CN_E_MODEL, "%s: vision and text LayerNorm eps differ (%g, %g)", g->path, vision_eps, c->ln_eps);
    if ((rc = get_int(g, t, "text_cfg", "heads", 8, &text_heads))) return rc;  // CLIPTextCfg default
    c->text_heads = text_heads;
    *th = 1;
    if ((rc = check_dim(g, t, "text_cfg", "width", c->text_width))) return rc;
    if ((rc = check_dim(g, t, "text_cfg", "layers", c->text_layers))) return rc;
    if ((rc = check_dim(g, t, "text_cfg", "context_length", c->context_length))) return rc;
    if ((rc = check_dim(g, t, "text_cfg", "vocab_size", c->vocab_size))) return rc;
    const cJSON *r = item(t, "mlp_ratio");
    if (r && !mlp_matches(r, c->text_width, c->text_mlp))
        return cn_fail(CN_E_MODEL, "%s: text_cfg.mlp_ratio does not match the MLP width %d in the checkpoint", g->path,
                       c->text_mlp);
    return CN_OK;
}

// HF hidden_act -> quick_gelu flag (transformers' CLIP default is "quick_gelu").
static int hf_act(const Cfg *g, const cJSON *o, const char *section, int *out) {
    const cJSON *a = item(o, "hidden_act");
    if (!a) {
        *out = 1;
        return CN_OK;
    }
    if (cJSON_IsString(a) && !strcmp(a->valuestring, "quick_gelu")) *out = 1;
    else if (cJSON_IsString(a) && !strcmp(a->valuestring, "gelu")) *out = 0;
    else
        return cn_fail(CN_E_MODEL, "%s: %s.hidden_act %s%s%s is not supported (quick_gelu or gelu)", g->path, section,
                       cJSON_IsString(a) ? "\"" : "", cJSON_IsString(a) ? a->valuestring : "(not a string)",
                       cJSON_IsString(a) ? "\"" : "");
    return CN_OK;
}

static int apply_hf(const Cfg *g, const cJSON *root, int force_act, int *act, int *vh, int *th) {
    ClipConfig *c = g->c;
    int rc;
    const cJSON *t = item(root, "text_config"), *v = item(root, "vision_config");
    if (!t) t = item(root, "text_config_dict");  // configs written by old transformers versions
    if (!v) v = item(root, "vision_config_dict");
    if (c->vision_kind != CLIP_VISION_VIT)
        return cn_fail(CN_E_MODEL, "%s: an HF CLIP config, but the checkpoint holds a ResNet", g->path);
    if ((rc = check_dim(g, root, "config", "projection_dim", c->embed_dim))) return rc;
    if ((rc = check_dim(g, t, "text_config", "hidden_size", c->text_width))) return rc;
    if ((rc = check_dim(g, t, "text_config", "num_hidden_layers", c->text_layers))) return rc;
    if ((rc = check_dim(g, t, "text_config", "intermediate_size", c->text_mlp))) return rc;
    if ((rc = check_dim(g, t, "text_config", "max_position_embeddings", c->context_length))) return rc;
    if ((rc = check_dim(g, t, "text_config", "vocab_size", c->vocab_size))) return rc;
    if ((rc = check_dim(g, v, "vision_config", "hidden_size", c->vision_width))) return rc;
    if ((rc = check_dim(g, v, "vision_config", "num_hidden_layers", c->vision_layers))) return rc;
    if ((rc = check_dim(g, v, "vision_config", "intermediate_size", c->vision_mlp))) return rc;
    if ((rc = check_dim(g, v, "vision_config", "image_size", c->image_size))) return rc;
    if ((rc = check_dim(g, v, "vision_config", "patch_size", c->patch_size))) return rc;
    int ta, va;
    if ((rc = hf_act(g, t, "text_config", &ta)) || (rc = hf_act(g, v, "vision_config", &va))) return rc;
    if (ta != va && force_act < 0)
        return cn_fail(CN_E_MODEL, "%s: text (%s) and vision (%s) activations differ; clipneg uses one for both "
                       "(set [model] quick_gelu in the job to choose)", g->path, ta ? "quick_gelu" : "gelu",
                       va ? "quick_gelu" : "gelu");
    c->quick_gelu = ta;
    *act = 1;
    if ((rc = get_int(g, t, "text_config", "num_attention_heads", 8, &c->text_heads))) return rc;
    if ((rc = get_int(g, v, "vision_config", "num_attention_heads", 12, &c->vision_heads))) return rc;
    *vh = *th = 1;
    const cJSON *te = item(t, "layer_norm_eps"), *ve = item(v, "layer_norm_eps");
    double e_t = cJSON_IsNumber(te) ? te->valuedouble : 1e-5, e_v = cJSON_IsNumber(ve) ? ve->valuedouble : 1e-5;
    if (e_t != e_v || !(e_t > 0))
        return cn_fail(CN_E_MODEL, "%s: layer_norm_eps must be positive and equal in both towers (%g, %g)", g->path,
                       e_t, e_v);
    c->ln_eps = (float)e_t;
    return CN_OK;
}

int clip_apply_config_file(ClipConfig *c, const char *path, const ClipLoadOptions *opt, int *found_act,
                           int *found_vh, int *found_th) {
    char *text = NULL;
    size_t len = 0;
    int rc = cn_read_file(path, &text, &len);
    if (rc != CN_OK) return cn_fail(CN_E_MODEL, "%s", cn_last_error());
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root || !cJSON_IsObject(root)) {
        long at = end ? (long)(end - text) : -1;
        cJSON_Delete(root);
        free(text);
        return cn_fail(CN_E_MODEL, "%s: not a JSON object (error near byte %ld)", path, at);
    }
    Cfg g = {path, c};
    const cJSON *mc = item(root, "model_cfg");
    int force_act = opt ? opt->force_quick_gelu : -1;
    if (mc) rc = apply_openclip(&g, mc, found_act, found_vh, found_th);  // HF hub open_clip_config.json
    else if (item(root, "vision_cfg") || item(root, "text_cfg"))          // a bare open_clip model config
        rc = apply_openclip(&g, root, found_act, found_vh, found_th);
    else if (item(root, "text_config") || item(root, "vision_config") || item(root, "text_config_dict"))
        rc = apply_hf(&g, root, force_act, found_act, found_vh, found_th);
    else
        rc = cn_fail(CN_E_MODEL, "%s: neither an open_clip config (model_cfg) nor an HF CLIP config (text_config)",
                     path);
    cJSON_Delete(root);
    free(text);
    return rc;
}

// ---- defaults, overrides, names -------------------------------------------------------------

typedef struct {
    const char *name;
    ClipVisionKind kind;
    int image_size, embed_dim, patch_size, vision_width, vision_layers, resnet_layers[4], text_width;
} Seed;

// OpenAI's released shapes (open_clip model_configs), all with a 12-layer text tower of width
// `text_width`, 77 positions and 49408 tokens, 64-wide heads.
static const Seed SEEDS[] = {
    {"RN50", CLIP_VISION_RESNET, 224, 1024, 0, 64, 0, {3, 4, 6, 3}, 512},
    {"RN101", CLIP_VISION_RESNET, 224, 512, 0, 64, 0, {3, 4, 23, 3}, 512},
    {"RN50x4", CLIP_VISION_RESNET, 288, 640, 0, 80, 0, {4, 6, 10, 6}, 640},
    {"RN50x16", CLIP_VISION_RESNET, 384, 768, 0, 96, 0, {6, 8, 18, 8}, 768},
    {"RN50x64", CLIP_VISION_RESNET, 448, 1024, 0, 128, 0, {3, 15, 36, 10}, 1024},
    {"ViT-B/32", CLIP_VISION_VIT, 224, 512, 32, 768, 12, {0, 0, 0, 0}, 512},
    {"ViT-B/16", CLIP_VISION_VIT, 224, 512, 16, 768, 12, {0, 0, 0, 0}, 512},
    {"ViT-L/14", CLIP_VISION_VIT, 224, 768, 14, 1024, 24, {0, 0, 0, 0}, 768},
    {"ViT-L/14@336px", CLIP_VISION_VIT, 336, 768, 14, 1024, 24, {0, 0, 0, 0}, 768},
};

static void name_config(ClipConfig *c) {
    for (size_t i = 0; i < sizeof SEEDS / sizeof SEEDS[0]; i++) {
        const Seed *s = &SEEDS[i];
        int vit = s->kind == CLIP_VISION_VIT;
        if (c->vision_kind != s->kind || c->image_size != s->image_size || c->embed_dim != s->embed_dim ||
            c->vision_width != s->vision_width || c->text_width != s->text_width || c->text_layers != 12 ||
            c->context_length != 77 || c->vocab_size != 49408 || c->text_heads != s->text_width / 64 ||
            c->text_mlp != 4 * s->text_width)
            continue;
        if (vit && (c->patch_size != s->patch_size || c->vision_layers != s->vision_layers ||
                    c->vision_heads != s->vision_width / 64 || c->vision_mlp != 4 * s->vision_width))
            continue;
        if (!vit && (memcmp(c->resnet_layers, s->resnet_layers, sizeof s->resnet_layers) != 0 ||
                     c->vision_heads != 32 * s->vision_width / 64))
            continue;
        snprintf(c->name, sizeof c->name, "%s", s->name);
        return;
    }
    if (c->vision_kind == CLIP_VISION_VIT)
        snprintf(c->name, sizeof c->name, "ViT-W%d-L%d-P%d-R%d", c->vision_width, c->vision_layers, c->patch_size,
                 c->image_size);
    else
        snprintf(c->name, sizeof c->name, "RN-W%d-L%d.%d.%d.%d-R%d", c->vision_width, c->resnet_layers[0],
                 c->resnet_layers[1], c->resnet_layers[2], c->resnet_layers[3], c->image_size);
}

// OpenAI convention: 64-wide heads. `what` names the tower for the message.
static int default_heads(int width, const char *what, const char *file, int *heads) {
    if (width % 64 != 0)
        return cn_fail(CN_E_MODEL, "%s: cannot infer the %s attention heads: width %d is not a multiple of 64 "
                       "(OpenAI's head width) and no config gives them; put open_clip_config.json or config.json "
                       "beside the weights, or pass the heads as load options (inspect-model --%s-heads)",
                       file, what, width, what);
    *heads = width / 64;
    return CN_OK;
}

int clip_finish_config(ClipConfig *c, const ClipLoadOptions *opt, int found_act, int found_vh, int found_th,
                       const char *file) {
    int rc;
    int pool_width = c->vision_kind == CLIP_VISION_RESNET ? 32 * c->vision_width : c->vision_width;
    // The job's overrides first, then the config's values, then OpenAI's conventions.
    if (opt && opt->force_quick_gelu >= 0) c->quick_gelu = opt->force_quick_gelu ? 1 : 0;
    else if (!found_act) c->quick_gelu = 1;  // OpenAI's weights were trained with QuickGELU
    if (opt && opt->vision_heads > 0) c->vision_heads = opt->vision_heads;
    else if (!found_vh && (rc = default_heads(pool_width, "vision", file, &c->vision_heads))) return rc;
    if (opt && opt->text_heads > 0) c->text_heads = opt->text_heads;
    else if (!found_th && (rc = default_heads(c->text_width, "text", file, &c->text_heads))) return rc;
    if (c->vision_heads < 1 || pool_width % c->vision_heads != 0)
        return cn_fail(CN_E_MODEL, "%s: %d vision heads do not divide the %s width %d", file, c->vision_heads,
                       c->vision_kind == CLIP_VISION_RESNET ? "attention-pool" : "vision", pool_width);
    if (c->text_heads < 1 || c->text_width % c->text_heads != 0)
        return cn_fail(CN_E_MODEL, "%s: %d text heads do not divide the text width %d", file, c->text_heads,
                       c->text_width);
    name_config(c);
    return CN_OK;
}

void clip_config_describe(const ClipConfig *c, char *buf, size_t n) {
    int k;
    if (c->vision_kind == CLIP_VISION_VIT)
        k = snprintf(buf, n, "%s: ViT image_size=%d patch_size=%d vision_width=%d vision_layers=%d vision_heads=%d "
                     "vision_mlp=%d", c->name, c->image_size, c->patch_size, c->vision_width, c->vision_layers,
                     c->vision_heads, c->vision_mlp);
    else
        k = snprintf(buf, n, "%s: ModifiedResNet image_size=%d vision_width=%d resnet_layers=%d,%d,%d,%d "
                     "vision_heads=%d", c->name, c->image_size, c->vision_width, c->resnet_layers[0],
                     c->resnet_layers[1], c->resnet_layers[2], c->resnet_layers[3], c->vision_heads);
    if (k < 0 || (size_t)k >= n) return;
    snprintf(buf + k, n - (size_t)k, "; text vocab_size=%d context_length=%d text_width=%d text_layers=%d "
             "text_heads=%d text_mlp=%d; embed_dim=%d activation=%s ln_eps=%g logit_scale=%g", c->vocab_size,
             c->context_length, c->text_width, c->text_layers, c->text_heads, c->text_mlp, c->embed_dim,
             c->quick_gelu ? "quick_gelu" : "gelu", c->ln_eps, c->logit_scale);
}
