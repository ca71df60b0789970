// encoder_vit.c — the CLIP vision transformer on the CPU (open_clip VisionTransformer, pool 'tok').
//
//   pixels [B,3,R,R] -> patches (conv P x P, stride P, no bias, as one GEMM over all patches)
//   -> [class_emb; patches] + pos_emb -> ln_pre -> L pre-LN blocks -> ln_post(class token)
//   -> @ vis_proj -> out [B, D]
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/ops.h"
#include "encoder_common.h"

// Tokens of one chunk: patch embeddings + class token + positional embedding, then ln_pre, into a->x.
static void vit_embed(const ClipModel *m, const float *pixels, int B, float *patches, TransformerActs *a) {
    const ClipConfig *c = &m->cfg;
    int W = c->vision_width, P = c->patch_size, G = c->image_size / P, G2 = G * G, T = G2 + 1;
    im2patch_forward(patches, pixels, B, 3, c->image_size, P);
    float *emb = a->qkv; // [B*G2, W], qkv is free before the first block (3*B*T*W floats)
    matmul_forward(emb, patches, m->patch_w, NULL, B * G2, 3 * P * P, W);
    // Assemble the pre-LN tokens in a->ln, then ln_pre into the residual stream a->x.
    for (int b = 0; b < B; b++) {
        float *tok = a->ln + (size_t)b * T * W;
        for (int i = 0; i < W; i++) tok[i] = m->class_emb[i] + m->vis_pos_emb[i];
        for (int p = 0; p < G2; p++) {
            const float *e = emb + ((size_t)b * G2 + p) * W;
            const float *pos = m->vis_pos_emb + (size_t)(p + 1) * W;
            float *t = tok + (size_t)(p + 1) * W;
            for (int i = 0; i < W; i++) t[i] = e[i] + pos[i];
        }
    }
    layernorm_forward(a->x, a->ln, m->ln_pre_w, m->ln_pre_b, B * T, W, c->ln_eps);
}

int vit_encode_images(const ClipModel *m, const float *pixels, int B, float *out) {
    const ClipConfig *c = &m->cfg;
    int R = c->image_size, W = c->vision_width, P = c->patch_size, D = c->embed_dim;
    int NH = c->vision_heads, M = c->vision_mlp, L = c->vision_layers;
    if (P <= 0 || R < P || NH <= 0 || W % NH != 0)
        return cn_fail(CN_E_MODEL, "vision transformer: bad shape (R=%d P=%d W=%d heads=%d)", R, P, W, NH);
    int G = R / P, G2 = G * G, T = G2 + 1;
    long patch_floats = (long)G2 * 3 * P * P;
    long per_image = (transformer_floats_per_seq(T, W, M) + patch_floats) * (long)sizeof(float);
    int chunk = encoder_chunk_items(per_image, B);

    TransformerActs a;
    transformer_acts_alloc(&a, chunk, T, W, M, NH);
    float *patches = mallocCheck((size_t)chunk * patch_floats * sizeof(float));
    float *pooled = mallocCheck((size_t)chunk * W * sizeof(float));
    int *cls_row = callocCheck((size_t)chunk, sizeof(int)); // the class token is row 0 of each image
    for (int b0 = 0; b0 < B; b0 += chunk) {
        int nb = CN_MIN(chunk, B - b0);
        vit_embed(m, pixels + (size_t)b0 * 3 * R * R, nb, patches, &a);
        // Only the class token is read out: the last block runs for it alone, and ln_post (per
        // token) is applied to it alone.
        transformer_forward(m->vis_blocks, L, &a, nb, T, W, NH, M, 0, c->quick_gelu, c->ln_eps, cls_row, pooled);
        layernorm_forward(a.ln, pooled, m->ln_post_w, m->ln_post_b, nb, W, c->ln_eps);
        matmul_forward_nn(out + (size_t)b0 * D, a.ln, m->vis_proj, nb, W, D);
    }
    free(cls_row);
    free(pooled);
    free(patches);
    transformer_acts_free(&a);
    return CN_OK;
}
