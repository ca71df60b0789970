// model_names.c — which checkpoint tensor fills which ClipModel field, for both name layouts.
//
// open_clip / OpenAI names are the canonical ones (ClipModel mirrors them). HF transformers'
// CLIPModel differs in three ways handled here: other names (pre_layrnorm, sic), q/k/v as three
// Linear layers (stacked back into in_proj, q rows first), and projections as Linear weights
// [D, W] (transposed back to open_clip's [W, D]). Each lookup checks presence, dtype and the exact
// shape the inferred architecture needs, and marks the tensor used: a tensor bound twice is a bug
// here, a tensor never bound is an unknown tensor (model_load.c refuses both).
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "model_internal.h"

typedef struct {
    BindList *bl;
    ClipModel *m;
} Ctx;

static int64_t numel_of(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

// Look `key` up and check it has `ndim` dims of `shape`; mark it used.
static int take(Ctx *x, const char *key, int ndim, const int64_t *shape, const StTensor **out) {
    const char *file = x->bl->ks->st->path, *arch = x->bl->cfg->name;
    StTensor *t = safetensors_find(x->bl->ks->st, key);
    char want[128], have[128];
    clip_shape_str(want, sizeof want, ndim, shape);
    if (!t) return cn_fail(CN_E_MODEL, "%s: missing tensor '%s' (shape %s for %s)", file, key, want, arch);
    clip_shape_str(have, sizeof have, t->ndim, t->shape);
    if (t->dtype == ST_OTHER)
        return cn_fail(CN_E_MODEL, "%s: tensor '%s' has dtype %s; expected F32, F16 or BF16", file, key, t->dtype_str);
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same)
        return cn_fail(CN_E_MODEL, "%s: tensor '%s' has shape %s but %s needs %s", file, key, have, arch, want);
    if (t->used) return cn_fail(CN_E_INTERNAL, "%s: tensor '%s' bound twice (a loader bug)", file, key);
    t->used = 1;
    *out = t;
    return CN_OK;
}

static Binding *push(Ctx *x, float **dst, BindKind kind, int ndim, const int64_t *shape) {
    BindList *bl = x->bl;
    if (bl->n == bl->cap) {
        bl->cap = bl->cap ? 2 * bl->cap : 256;
        bl->b = reallocCheck(bl->b, (size_t)bl->cap * sizeof(Binding));
    }
    Binding *b = &bl->b[bl->n++];
    memset(b, 0, sizeof *b);
    b->dst = dst;
    b->kind = kind;
    b->ndim = ndim;
    memcpy(b->shape, shape, (size_t)ndim * sizeof(int64_t));
    b->numel = numel_of(ndim, shape);
    return b;
}

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define NDIM(...) ((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
// bind(ctx, &field, "name", dims...): one tensor, same shape.
#define bind(x, dst, key, ...) bind_one(x, dst, BIND_COPY, key, NDIM(__VA_ARGS__), SHAPE(__VA_ARGS__))

static int bind_one(Ctx *x, float **dst, BindKind kind, const char *key, int ndim, const int64_t *shape) {
    Binding *b = push(x, dst, kind, ndim, shape);
    if (kind == BIND_TRANSPOSE) {  // stored [b, a] for destination [a, b]
        int64_t t[2] = {shape[1], shape[0]};
        return take(x, key, 2, t, &b->src[0]);
    }
    return take(x, key, ndim, shape, &b->src[0]);
}

// Destination [3C, ...] from three tensors [C, ...] (q, k, v in that order).
static int bind_qkv(Ctx *x, float **dst, const char *prefix, const char *suffix, int ndim, const int64_t *shape) {
    Binding *b = push(x, dst, BIND_CONCAT3, ndim, shape);
    int64_t part[2] = {shape[0] / 3, ndim > 1 ? shape[1] : 0};
    static const char *qkv[3] = {"q_proj", "k_proj", "v_proj"};
    for (int i = 0; i < 3; i++) {
        char key[1024];
        snprintf(key, sizeof key, "%s%s.%s", prefix, qkv[i], suffix);
        int rc = take(x, key, ndim, part, &b->src[i]);
        if (rc) return rc;
    }
    return CN_OK;
}

static const char *fmt(char *buf, size_t n, const char *f, ...) __attribute__((format(printf, 3, 4)));
static const char *fmt(char *buf, size_t n, const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, n, f, ap);
    va_end(ap);
    return buf;
}
#define K(...) fmt(key, sizeof key, __VA_ARGS__)

// One pre-LN transformer block of width C, MLP width M, whose names start with `p`.
static int bind_block(Ctx *x, ClipBlock *blk, const char *p, int64_t C, int64_t M) {
    char key[512];
    int rc;
    if (x->bl->ks->layout == CLIP_LAYOUT_HF) {
        char attn[512];
        snprintf(attn, sizeof attn, "%sself_attn.", p);
        if ((rc = bind(x, &blk->ln_1_w, K("%slayer_norm1.weight", p), C)) ||
            (rc = bind(x, &blk->ln_1_b, K("%slayer_norm1.bias", p), C)) ||
            (rc = bind_qkv(x, &blk->qkv_w, attn, "weight", 2, SHAPE(3 * C, C))) ||
            (rc = bind_qkv(x, &blk->qkv_b, attn, "bias", 1, SHAPE(3 * C))) ||
            (rc = bind(x, &blk->out_w, K("%sself_attn.out_proj.weight", p), C, C)) ||
            (rc = bind(x, &blk->out_b, K("%sself_attn.out_proj.bias", p), C)) ||
            (rc = bind(x, &blk->ln_2_w, K("%slayer_norm2.weight", p), C)) ||
            (rc = bind(x, &blk->ln_2_b, K("%slayer_norm2.bias", p), C)) ||
            (rc = bind(x, &blk->fc_w, K("%smlp.fc1.weight", p), M, C)) ||
            (rc = bind(x, &blk->fc_b, K("%smlp.fc1.bias", p), M)) ||
            (rc = bind(x, &blk->proj_w, K("%smlp.fc2.weight", p), C, M)) ||
            (rc = bind(x, &blk->proj_b, K("%smlp.fc2.bias", p), C)))
            return rc;
        return CN_OK;
    }
    if ((rc = bind(x, &blk->ln_1_w, K("%sln_1.weight", p), C)) ||
        (rc = bind(x, &blk->ln_1_b, K("%sln_1.bias", p), C)) ||
        (rc = bind(x, &blk->qkv_w, K("%sattn.in_proj_weight", p), 3 * C, C)) ||
        (rc = bind(x, &blk->qkv_b, K("%sattn.in_proj_bias", p), 3 * C)) ||
        (rc = bind(x, &blk->out_w, K("%sattn.out_proj.weight", p), C, C)) ||
        (rc = bind(x, &blk->out_b, K("%sattn.out_proj.bias", p), C)) ||
        (rc = bind(x, &blk->ln_2_w, K("%sln_2.weight", p), C)) ||
        (rc = bind(x, &blk->ln_2_b, K("%sln_2.bias", p), C)) ||
        (rc = bind(x, &blk->fc_w, K("%smlp.c_fc.weight", p), M, C)) ||
        (rc = bind(x, &blk->fc_b, K("%smlp.c_fc.bias", p), M)) ||
        (rc = bind(x, &blk->proj_w, K("%smlp.c_proj.weight", p), C, M)) ||
        (rc = bind(x, &blk->proj_b, K("%smlp.c_proj.bias", p), C)))
        return rc;
    return CN_OK;
}

static int bind_vit(Ctx *x) {
    ClipModel *m = x->m;
    const ClipConfig *c = &m->cfg;
    int64_t W = c->vision_width, P = c->patch_size, G = c->image_size / c->patch_size, D = c->embed_dim;
    int hf = x->bl->ks->layout == CLIP_LAYOUT_HF;
    char key[512];
    int rc;
    m->vis_blocks = callocCheck((size_t)c->vision_layers, sizeof(ClipBlock));
    if ((rc = bind(x, &m->patch_w, hf ? "vision_model.embeddings.patch_embedding.weight" : "visual.conv1.weight", W, 3,
                   P, P)) ||
        (rc = bind(x, &m->class_emb, hf ? "vision_model.embeddings.class_embedding" : "visual.class_embedding", W)) ||
        (rc = bind(x, &m->vis_pos_emb,
                   hf ? "vision_model.embeddings.position_embedding.weight" : "visual.positional_embedding", G * G + 1,
                   W)) ||
        (rc = bind(x, &m->ln_pre_w, hf ? "vision_model.pre_layrnorm.weight" : "visual.ln_pre.weight", W)) ||
        (rc = bind(x, &m->ln_pre_b, hf ? "vision_model.pre_layrnorm.bias" : "visual.ln_pre.bias", W)))
        return rc;
    for (int i = 0; i < c->vision_layers; i++)
        if ((rc = bind_block(x, &m->vis_blocks[i],
                             hf ? K("vision_model.encoder.layers.%d.", i) : K("visual.transformer.resblocks.%d.", i),
                             W, c->vision_mlp)))
            return rc;
    if ((rc = bind(x, &m->ln_post_w, hf ? "vision_model.post_layernorm.weight" : "visual.ln_post.weight", W)) ||
        (rc = bind(x, &m->ln_post_b, hf ? "vision_model.post_layernorm.bias" : "visual.ln_post.bias", W)))
        return rc;
    if (hf) return bind_one(x, &m->vis_proj, BIND_TRANSPOSE, "visual_projection.weight", 2, SHAPE(W, D));
    return bind(x, &m->vis_proj, "visual.proj", W, D);
}

// conv weight `conv_key` [oc, ic, k, k] followed by BatchNorm `bn_prefix`{weight,bias,running_*}.
static int bind_conv_bn(Ctx *x, ClipConv *conv, const char *conv_key, const char *bn_prefix, int oc, int ic, int k) {
    char key[512];
    int rc;
    conv->oc = oc;
    conv->ic = ic;
    conv->k = k;
    if ((rc = bind(x, &conv->w, conv_key, oc, ic, k, k))) return rc;
    push(x, &conv->b, BIND_COMPUTED, 1, SHAPE(oc));
    BindList *bl = x->bl;
    if (bl->n_bn == bl->cap_bn) {
        bl->cap_bn = bl->cap_bn ? 2 * bl->cap_bn : 64;
        bl->bn = reallocCheck(bl->bn, (size_t)bl->cap_bn * sizeof(BnFold));
    }
    BnFold *f = &bl->bn[bl->n_bn++];
    memset(f, 0, sizeof *f);
    f->conv = conv;
    const int64_t *s = SHAPE(oc);
    if ((rc = take(x, K("%s.weight", bn_prefix), 1, s, &f->weight)) ||
        (rc = take(x, K("%s.bias", bn_prefix), 1, s, &f->bias)) ||
        (rc = take(x, K("%s.running_mean", bn_prefix), 1, s, &f->mean)) ||
        (rc = take(x, K("%s.running_var", bn_prefix), 1, s, &f->var)))
        return rc;
    return CN_OK;
}

static int bind_resnet(Ctx *x) {
    ClipModel *m = x->m;
    const ClipConfig *c = &m->cfg;
    int w = c->vision_width, E = 32 * w, S = c->image_size / 32, rc;
    char conv[512], bn[512];
    if ((rc = bind_conv_bn(x, &m->stem[0], "visual.conv1.weight", "visual.bn1", w / 2, 3, 3)) ||
        (rc = bind_conv_bn(x, &m->stem[1], "visual.conv2.weight", "visual.bn2", w / 2, w / 2, 3)) ||
        (rc = bind_conv_bn(x, &m->stem[2], "visual.conv3.weight", "visual.bn3", w, w / 2, 3)))
        return rc;
    int total = c->resnet_layers[0] + c->resnet_layers[1] + c->resnet_layers[2] + c->resnet_layers[3];
    m->bottlenecks = callocCheck((size_t)total, sizeof(ClipBottleneck));
    int inplanes = w, j = 0;
    for (int s = 0; s < 4; s++) {
        int planes = w << s;
        for (int i = 0; i < c->resnet_layers[s]; i++, j++) {
            ClipBottleneck *b = &m->bottlenecks[j];
            b->stride = (s > 0 && i == 0) ? 2 : 1;
            for (int k = 0; k < 3; k++) {  // conv1 1x1, conv2 3x3, conv3 1x1 (x4 channels)
                int oc = k == 2 ? 4 * planes : planes, ic = k == 0 ? inplanes : planes, ks = k == 1 ? 3 : 1;
                ClipConv *cv = k == 0 ? &b->conv1 : k == 1 ? &b->conv2 : &b->conv3;
                snprintf(conv, sizeof conv, "visual.layer%d.%d.conv%d.weight", s + 1, i, k + 1);
                snprintf(bn, sizeof bn, "visual.layer%d.%d.bn%d", s + 1, i, k + 1);
                if ((rc = bind_conv_bn(x, cv, conv, bn, oc, ic, ks))) return rc;
            }
            if (b->stride > 1 || inplanes != 4 * planes) {  // open_clip's Bottleneck rule for a downsample
                snprintf(conv, sizeof conv, "visual.layer%d.%d.downsample.0.weight", s + 1, i);
                snprintf(bn, sizeof bn, "visual.layer%d.%d.downsample.1", s + 1, i);
                if ((rc = bind_conv_bn(x, &b->down, conv, bn, 4 * planes, inplanes, 1))) return rc;
            }
            inplanes = 4 * planes;
        }
    }
    if ((rc = bind(x, &m->ap_pos_emb, "visual.attnpool.positional_embedding", S * S + 1, E)) ||
        (rc = bind(x, &m->ap_q_w, "visual.attnpool.q_proj.weight", E, E)) ||
        (rc = bind(x, &m->ap_q_b, "visual.attnpool.q_proj.bias", E)) ||
        (rc = bind(x, &m->ap_k_w, "visual.attnpool.k_proj.weight", E, E)) ||
        (rc = bind(x, &m->ap_k_b, "visual.attnpool.k_proj.bias", E)) ||
        (rc = bind(x, &m->ap_v_w, "visual.attnpool.v_proj.weight", E, E)) ||
        (rc = bind(x, &m->ap_v_b, "visual.attnpool.v_proj.bias", E)) ||
        (rc = bind(x, &m->ap_c_w, "visual.attnpool.c_proj.weight", c->embed_dim, E)) ||
        (rc = bind(x, &m->ap_c_b, "visual.attnpool.c_proj.bias", c->embed_dim)))
        return rc;
    return CN_OK;
}

static int bind_text(Ctx *x) {
    ClipModel *m = x->m;
    const ClipConfig *c = &m->cfg;
    int64_t Wt = c->text_width;
    int hf = x->bl->ks->layout == CLIP_LAYOUT_HF;
    const char *p = x->bl->ks->text_prefix;
    char key[512];
    int rc;
    m->txt_blocks = callocCheck((size_t)c->text_layers, sizeof(ClipBlock));
    if (hf) {
        if ((rc = bind(x, &m->tok_emb, "text_model.embeddings.token_embedding.weight", c->vocab_size, Wt)) ||
            (rc = bind(x, &m->txt_pos_emb, "text_model.embeddings.position_embedding.weight", c->context_length, Wt)))
            return rc;
    } else if ((rc = bind(x, &m->tok_emb, K("%stoken_embedding.weight", p), c->vocab_size, Wt)) ||
               (rc = bind(x, &m->txt_pos_emb, K("%spositional_embedding", p), c->context_length, Wt))) {
        return rc;
    }
    for (int i = 0; i < c->text_layers; i++)
        if ((rc = bind_block(x, &m->txt_blocks[i],
                             hf ? K("text_model.encoder.layers.%d.", i) : K("%stransformer.resblocks.%d.", p, i), Wt,
                             c->text_mlp)))
            return rc;
    if (hf) {
        if ((rc = bind(x, &m->ln_final_w, "text_model.final_layer_norm.weight", Wt)) ||
            (rc = bind(x, &m->ln_final_b, "text_model.final_layer_norm.bias", Wt)))
            return rc;
        return bind_one(x, &m->txt_proj, BIND_TRANSPOSE, "text_projection.weight", 2, SHAPE(Wt, c->embed_dim));
    }
    if ((rc = bind(x, &m->ln_final_w, K("%sln_final.weight", p), Wt)) ||
        (rc = bind(x, &m->ln_final_b, K("%sln_final.bias", p), Wt)))
        return rc;
    return bind(x, &m->txt_proj, K("%stext_projection", p), Wt, c->embed_dim);
}

// logit_scale: a scalar, stored as [] or [1].
static int bind_logit_scale(Ctx *x) {
    StTensor *t = safetensors_find(x->bl->ks->st, "logit_scale");
    if (!t) return cn_fail(CN_E_MODEL, "%s: missing tensor 'logit_scale'", x->bl->ks->st->path);
    return take(x, "logit_scale", t->ndim == 0 ? 0 : 1, SHAPE(1), &x->bl->logit_scale);
}

int clip_bind_all(ClipModel *m, const KeySpace *ks, BindList *bl) {
    memset(bl, 0, sizeof *bl);
    bl->ks = ks;
    bl->cfg = &m->cfg;
    Ctx x = {bl, m};
    int rc = m->cfg.vision_kind == CLIP_VISION_VIT ? bind_vit(&x) : bind_resnet(&x);
    if (rc == CN_OK) rc = bind_text(&x);
    if (rc == CN_OK) rc = bind_logit_scale(&x);
    return rc;
}

void clip_bind_free(BindList *bl) {
    free(bl->b);
    free(bl->bn);
    memset(bl, 0, sizeof *bl);
}

// Buffers and bookkeeping entries some checkpoints carry that hold no parameters.
int clip_name_ignorable(const char *name) {
    static const char *exact[] = {"attn_mask", "text.attn_mask", "visual.attn_mask", "input_resolution",
                                  "context_length", "vocab_size", "text_model.embeddings.position_ids",
                                  "vision_model.embeddings.position_ids"};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (!strcmp(name, exact[i])) return 1;
    size_t n = strlen(name), s = strlen(".num_batches_tracked");  // BatchNorm training counter
    return n > s && !strcmp(name + n - s, ".num_batches_tracked");
}
