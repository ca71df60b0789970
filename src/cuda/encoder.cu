// encoder.cu — the three CLIP towers on the device, step for step the CPU towers
// (encoder_vit.c, encoder_resnet.c, encoder_text.c, encoder_common.c) with the `_cuda` twins.
// Everything runs on one stream; activations come from the stream-ordered allocator
// (cudaMallocAsync / cudaFreeAsync, pool kept warm by the backend), so a buffer is released as soon
// as the last kernel that reads it has been enqueued, and nothing is sized by hand.
#include "cuda_common.cuh"
#include "encoder.cuh"
#include "ops.cuh"

template <typename T> static T *salloc(size_t n, cudaStream_t s) {
    void *p = nullptr;
    cudaCheck(cudaMallocAsync(&p, (n ? n : 1) * sizeof(T), s));
    return (T *)p;
}
static void sfree(void *p, cudaStream_t s) { cudaCheck(cudaFreeAsync(p, s)); }

// ---- pre-LN transformer (ViT and text): x [B*Tn, C] in place -------------------------------------------------
//   x = x + out_proj(attention(ln_1(x)));  x = x + c_proj(act(c_fc(ln_2(x))))
template <typename T>
static void transformer_forward(const DevBlock<T> *blocks, int L, T *x, int B, int Tn, int C, int NH, int M,
                                int causal, int quick_gelu, float eps, cudaStream_t s) {
    const int N = B * Tn;
    const long NC = (long)N * C;
    T *ln = salloc<T>((size_t)NC, s), *att = salloc<T>((size_t)NC, s);
    T *qkv = salloc<T>((size_t)NC * 3, s), *mlp = salloc<T>((size_t)N * M, s);
    for (int l = 0; l < L; l++) {
        const DevBlock<T> *b = &blocks[l];
        layernorm_forward_cuda(ln, x, b->ln_1_w, b->ln_1_b, N, C, eps, s);
        matmul_forward_cuda(qkv, ln, b->qkv_w, b->qkv_b, N, C, 3 * C, s);
        attention_forward_cuda(att, qkv, nullptr, B, Tn, C, NH, causal, s);
        matmul_forward_cuda(ln, att, b->out_w, b->out_b, N, C, C, s);
        residual_forward_cuda(x, x, ln, NC, s);
        layernorm_forward_cuda(ln, x, b->ln_2_w, b->ln_2_b, N, C, eps, s);
        matmul_forward_cuda(mlp, ln, b->fc_w, b->fc_b, N, C, M, s);
        if (quick_gelu)
            quick_gelu_forward_cuda(mlp, (long)N * M, s);
        else
            gelu_forward_cuda(mlp, (long)N * M, s);
        matmul_forward_cuda(ln, mlp, b->proj_w, b->proj_b, N, M, C, s);
        residual_forward_cuda(x, x, ln, NC, s);
    }
    sfree(ln, s);
    sfree(att, s);
    sfree(qkv, s);
    sfree(mlp, s);
}

// ---- ViT: pixels -> patches (im2patch + GEMM) -> [class; patches] + pos -> ln_pre -> blocks
//      -> ln_post(class token) -> @ vis_proj ---------------------------------------------------------------------
template <typename T> void vit_forward(const DevModel<T> *d, const float *pixels, int B, float *out, cudaStream_t s) {
    const ClipConfig *c = &d->cfg;
    const int R = c->image_size, P = c->patch_size, W = c->vision_width, D = c->embed_dim;
    const int G = R / P, G2 = G * G, L = G2 + 1, K = 3 * P * P;
    T *patches = salloc<T>((size_t)B * G2 * K, s);
    im2patch_forward_cuda(patches, pixels, B, 3, R, P, s);
    T *emb = salloc<T>((size_t)B * G2 * W, s);
    matmul_forward_cuda(emb, patches, d->patch_w, (const T *)nullptr, B * G2, K, W, s);
    sfree(patches, s);
    T *tok = salloc<T>((size_t)B * L * W, s);
    vit_embed_forward_cuda<T>(tok, emb, d->class_emb, d->vis_pos_emb, B, G2, W, s);
    sfree(emb, s);
    T *x = salloc<T>((size_t)B * L * W, s);
    layernorm_forward_cuda(x, tok, d->ln_pre_w, d->ln_pre_b, B * L, W, c->ln_eps, s);
    sfree(tok, s);
    transformer_forward<T>(d->vis_blocks, c->vision_layers, x, B, L, W, c->vision_heads, c->vision_mlp, 0,
                           c->quick_gelu, c->ln_eps, s);
    // ln_post is per token: only the class tokens need it.
    T *pooled = salloc<T>((size_t)B * W, s), *lnp = salloc<T>((size_t)B * W, s), *proj = salloc<T>((size_t)B * D, s);
    gather_rows_cuda<T>(pooled, x, nullptr, B, L, W, s);
    layernorm_forward_cuda(lnp, pooled, d->ln_post_w, d->ln_post_b, B, W, c->ln_eps, s);
    matmul_forward_nn_cuda(proj, lnp, d->vis_proj, B, W, D, s);
    convert_to_f32_cuda<T>(out, proj, (long)B * D, s);
    sfree(x, s);
    sfree(pooled, s);
    sfree(lnp, s);
    sfree(proj, s);
}

// ---- ModifiedResNet -----------------------------------------------------------------------------------------
// conv (+ folded BN bias) over B images of cv->ic channels, H x H; the im2col scratch lives for one call.
template <typename T>
static void conv(T *out, const T *inp, const DevConv<T> *cv, int B, int H, int stride, int pad, cudaStream_t s) {
    const int Ho = (H + 2 * pad - cv->k) / stride + 1;
    const bool direct = cv->k == 1 && stride == 1 && pad == 0;
    T *col = direct ? nullptr : salloc<T>((size_t)cv->ic * cv->k * cv->k * Ho * Ho, s);
    conv2d_forward_cuda(out, inp, cv->w, cv->b, col, B, cv->ic, H, H, cv->oc, cv->k, stride, pad, s);
    if (col) sfree(col, s);
}

// x [B, IC, H, H] -> returns y [B, OC, H/s, H/s] (a new buffer; x is left to the caller).
template <typename T> static T *bottleneck_forward(const DevBottleneck<T> *bn, const T *x, int B, int H, cudaStream_t s) {
    const int st = bn->stride, Hs = H / st;
    const long n1 = (long)B * bn->conv1.oc * H * H, n2 = (long)B * bn->conv2.oc * H * H;
    const long n3 = (long)B * bn->conv3.oc * Hs * Hs;
    T *t1 = salloc<T>((size_t)n1, s), *t2 = salloc<T>((size_t)n2, s);
    conv(t1, x, &bn->conv1, B, H, 1, 0, s);
    relu_forward_cuda(t1, n1, s);
    conv(t2, t1, &bn->conv2, B, H, 1, 1, s);
    relu_forward_cuda(t2, n2, s);
    sfree(t1, s);
    const T *mid = t2;
    T *pooled = nullptr;
    if (st > 1) {
        pooled = salloc<T>((size_t)B * bn->conv2.oc * Hs * Hs, s);
        avgpool2d_forward_cuda(pooled, t2, B, bn->conv2.oc, H, H, st, s);
        mid = pooled;
    }
    T *y = salloc<T>((size_t)n3, s);
    conv(y, mid, &bn->conv3, B, Hs, 1, 0, s);
    sfree(t2, s);
    if (pooled) sfree(pooled, s);
    const T *identity = x;
    T *z = nullptr, *xp = nullptr;
    if (bn->down.w != nullptr) {
        const T *src = x;
        if (st > 1) {
            xp = salloc<T>((size_t)B * bn->down.ic * Hs * Hs, s);
            avgpool2d_forward_cuda(xp, x, B, bn->down.ic, H, H, st, s);
            src = xp;
        }
        z = salloc<T>((size_t)B * bn->down.oc * Hs * Hs, s);
        conv(z, src, &bn->down, B, Hs, 1, 0, s);
        identity = z;
    }
    residual_forward_cuda(y, y, identity, n3, s);
    relu_forward_cuda(y, n3, s);
    if (z) sfree(z, s);
    if (xp) sfree(xp, s);
    return y;
}

//   stem: conv3x3 s2 -> relu -> conv3x3 -> relu -> conv3x3 -> relu -> avgpool 2; 4 stages of bottlenecks;
//   attention pooling -> out [B, D]
template <typename T> void resnet_forward(const DevModel<T> *d, const float *pixels, int B, float *out, cudaStream_t s) {
    const ClipConfig *c = &d->cfg;
    const int R = c->image_size, D = c->embed_dim, E = 32 * c->vision_width;
    T *img = salloc<T>((size_t)B * 3 * R * R, s);
    convert_from_f32_cuda<T>(img, pixels, (long)B * 3 * R * R, s);
    int H = (R + 2 - 3) / 2 + 1;
    const DevConv<T> *st = d->stem;
    T *a = salloc<T>((size_t)B * st[0].oc * H * H, s);
    conv(a, img, &st[0], B, R, 2, 1, s);
    relu_forward_cuda(a, (long)B * st[0].oc * H * H, s);
    sfree(img, s);
    T *b = salloc<T>((size_t)B * st[1].oc * H * H, s);
    conv(b, a, &st[1], B, H, 1, 1, s);
    relu_forward_cuda(b, (long)B * st[1].oc * H * H, s);
    sfree(a, s);
    a = salloc<T>((size_t)B * st[2].oc * H * H, s);
    conv(a, b, &st[2], B, H, 1, 1, s);
    relu_forward_cuda(a, (long)B * st[2].oc * H * H, s);
    sfree(b, s);
    T *x = salloc<T>((size_t)B * st[2].oc * (H / 2) * (H / 2), s);
    avgpool2d_forward_cuda(x, a, B, st[2].oc, H, H, 2, s);
    sfree(a, s);
    H /= 2;
    for (int i = 0; i < d->n_bottlenecks; i++) {
        T *y = bottleneck_forward<T>(&d->bottlenecks[i], x, B, H, s);
        sfree(x, s);
        x = y;
        H /= d->bottlenecks[i].stride;
    }
    const int HW = H * H;
    T *scratch = salloc<T>((size_t)attnpool_scratch_floats_cuda(B, E, HW), s), *pooled = salloc<T>((size_t)B * D, s);
    attnpool_forward_cuda(pooled, x, d->ap_pos_emb, d->ap_q_w, d->ap_q_b, d->ap_k_w, d->ap_k_b, d->ap_v_w, d->ap_v_b,
                          d->ap_c_w, d->ap_c_b, scratch, B, E, HW, c->vision_heads, D, s);
    convert_to_f32_cuda<T>(out, pooled, (long)B * D, s);
    sfree(x, s);
    sfree(scratch, s);
    sfree(pooled, s);
}

// ---- text: tok_emb[ids] + pos -> causal blocks -> ln_final(EOT token) -> @ txt_proj ---------------------------
template <typename T>
void text_forward(const DevModel<T> *d, const int32_t *ids, const int32_t *eot, int B, int Tn, float *out, cudaStream_t s) {
    const ClipConfig *c = &d->cfg;
    const int Wt = c->text_width, D = c->embed_dim;
    T *x = salloc<T>((size_t)B * Tn * Wt, s);
    text_embed_forward_cuda<T>(x, ids, d->tok_emb, d->txt_pos_emb, B, Tn, Wt, s);
    transformer_forward<T>(d->txt_blocks, c->text_layers, x, B, Tn, Wt, c->text_heads, c->text_mlp, 1, c->quick_gelu,
                           c->ln_eps, s);
    T *pooled = salloc<T>((size_t)B * Wt, s), *lnp = salloc<T>((size_t)B * Wt, s), *proj = salloc<T>((size_t)B * D, s);
    gather_rows_cuda<T>(pooled, x, eot, B, Tn, Wt, s);
    layernorm_forward_cuda(lnp, pooled, d->ln_final_w, d->ln_final_b, B, Wt, c->ln_eps, s);
    matmul_forward_nn_cuda(proj, lnp, d->txt_proj, B, Wt, D, s);
    convert_to_f32_cuda<T>(out, proj, (long)B * D, s);
    sfree(x, s);
    sfree(pooled, s);
    sfree(lnp, s);
    sfree(proj, s);
}

#define CN_INSTANTIATE_TOWERS(T)                                                                          \
    template void vit_forward<T>(const DevModel<T> *, const float *, int, float *, cudaStream_t);          \
    template void resnet_forward<T>(const DevModel<T> *, const float *, int, float *, cudaStream_t);       \
    template void text_forward<T>(const DevModel<T> *, const int32_t *, const int32_t *, int, int, float *, \
                                  cudaStream_t);
CN_INSTANTIATE_TOWERS(float)
CN_INSTANTIATE_TOWERS(__half)
CN_INSTANTIATE_TOWERS(__nv_bfloat16)
