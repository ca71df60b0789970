// model_upload.cu — copies a ClipModel's fp32 host parameters to the device once, converted to the
// backend's element type T (fp32 for fp32/tf32, __half for fp16, __nv_bfloat16 for bf16).
//
// The same walk over the parameters runs twice: a sizing pass (no device memory yet: it adds up
// the 256-byte aligned slot sizes and notes the first missing tensor), then the upload pass into
// one cudaMalloc. Conversion to fp16/bf16 happens on the device (fp32 staging buffer + a kernel),
// so the host never holds a second copy of the model.
#include <string.h>

#include <type_traits>

#include "cuda_common.cuh"
#include "encoder.cuh"
#include "ops.cuh"

constexpr size_t kStageElems = 16u << 20;  // fp32 staging buffer: 64 MiB

template <typename T> struct Uploader {
    char *base;           // NULL during the sizing pass
    size_t used;          // bytes handed out so far
    float *stage;         // device fp32 staging (T != float)
    const char *where;    // tower of the tensor being taken, for messages
    int layer;            // its block / bottleneck index, or -1
    char missing[160];    // the first required tensor that is NULL ("" when none)
};

static size_t align_up(size_t n) { return (n + 255) & ~(size_t)255; }

template <typename T> static void copy_convert(T *dst, const float *src, size_t n, float *stage) {
    if constexpr (std::is_same<T, float>::value) {
        (void)stage;
        cudaCheck(cudaMemcpy(dst, src, n * sizeof(float), cudaMemcpyHostToDevice));
    } else {
        // cudaMemcpy and the kernel share the legacy default stream, so the next chunk's copy into
        // `stage` waits for the previous conversion to finish.
        for (size_t i = 0; i < n; i += kStageElems) {
            const size_t c = n - i < kStageElems ? n - i : kStageElems;
            cudaCheck(cudaMemcpy(stage, src + i, c * sizeof(float), cudaMemcpyHostToDevice));
            convert_from_f32_cuda<T>(dst + i, stage, (long)c, 0);
        }
    }
}

template <typename T> static T *take(Uploader<T> *u, const float *src, size_t n, const char *name, bool required = true) {
    if (src == nullptr) {
        if (required && !u->missing[0]) {
            if (u->layer >= 0)
                snprintf(u->missing, sizeof u->missing, "%s[%d].%s", u->where, u->layer, name);
            else
                snprintf(u->missing, sizeof u->missing, "%s.%s", u->where, name);
        }
        return nullptr;
    }
    const size_t at = u->used;
    u->used += align_up(n * sizeof(T));
    if (u->base == nullptr) return nullptr;
    T *dst = (T *)(u->base + at);
    copy_convert<T>(dst, src, n, u->stage);
    return dst;
}

template <typename T>
static void walk_block(Uploader<T> *u, DevBlock<T> *d, const ClipBlock *b, size_t C, size_t M, const char *tower, int l) {
    u->where = tower;
    u->layer = l;
    d->ln_1_w = take(u, b->ln_1_w, C, "ln_1.weight");
    d->ln_1_b = take(u, b->ln_1_b, C, "ln_1.bias");
    d->qkv_w = take(u, b->qkv_w, 3 * C * C, "attn.in_proj_weight");
    d->qkv_b = take(u, b->qkv_b, 3 * C, "attn.in_proj_bias");
    d->out_w = take(u, b->out_w, C * C, "attn.out_proj.weight");
    d->out_b = take(u, b->out_b, C, "attn.out_proj.bias");
    d->ln_2_w = take(u, b->ln_2_w, C, "ln_2.weight");
    d->ln_2_b = take(u, b->ln_2_b, C, "ln_2.bias");
    d->fc_w = take(u, b->fc_w, M * C, "mlp.c_fc.weight");
    d->fc_b = take(u, b->fc_b, M, "mlp.c_fc.bias");
    d->proj_w = take(u, b->proj_w, C * M, "mlp.c_proj.weight");
    d->proj_b = take(u, b->proj_b, C, "mlp.c_proj.bias");
}

template <typename T> static void walk_conv(Uploader<T> *u, DevConv<T> *d, const ClipConv *c, const char *name) {
    d->oc = c->oc;
    d->ic = c->ic;
    d->k = c->k;
    d->w = take(u, c->w, (size_t)c->oc * c->ic * c->k * c->k, name);
    d->b = take(u, c->b, (size_t)c->oc, name, false);  // folded BatchNorm bias; a plain conv may have none
}

template <typename T> static void walk(Uploader<T> *u, DevModel<T> *d, const ClipModel *m) {
    const ClipConfig *c = &d->cfg;
    const size_t D = c->embed_dim;
    if (d->has_vision && c->vision_kind == CLIP_VISION_VIT) {
        const size_t W = c->vision_width, P = c->patch_size, G = c->image_size / c->patch_size, M = c->vision_mlp;
        u->where = "visual";
        u->layer = -1;
        d->patch_w = take(u, m->patch_w, W * 3 * P * P, "conv1.weight");
        d->class_emb = take(u, m->class_emb, W, "class_embedding");
        d->vis_pos_emb = take(u, m->vis_pos_emb, (G * G + 1) * W, "positional_embedding");
        d->ln_pre_w = take(u, m->ln_pre_w, W, "ln_pre.weight");
        d->ln_pre_b = take(u, m->ln_pre_b, W, "ln_pre.bias");
        d->ln_post_w = take(u, m->ln_post_w, W, "ln_post.weight");
        d->ln_post_b = take(u, m->ln_post_b, W, "ln_post.bias");
        d->vis_proj = take(u, m->vis_proj, W * D, "proj");
        for (int l = 0; l < c->vision_layers; l++)
            walk_block(u, &d->vis_blocks[l], &m->vis_blocks[l], W, M, "visual.transformer.resblocks", l);
    } else if (d->has_vision) {
        u->where = "visual.stem";
        for (int i = 0; i < 3; i++) {
            u->layer = i;
            walk_conv(u, &d->stem[i], &m->stem[i], "conv");
        }
        u->where = "visual.bottleneck";
        for (int i = 0; i < d->n_bottlenecks; i++) {
            const ClipBottleneck *mb = &m->bottlenecks[i];
            DevBottleneck<T> *db = &d->bottlenecks[i];
            u->layer = i;
            db->stride = mb->stride;
            walk_conv(u, &db->conv1, &mb->conv1, "conv1");
            walk_conv(u, &db->conv2, &mb->conv2, "conv2");
            walk_conv(u, &db->conv3, &mb->conv3, "conv3");
            if (mb->down.w != nullptr) walk_conv(u, &db->down, &mb->down, "downsample");
        }
        const size_t E = 32 * (size_t)c->vision_width, Hf = c->image_size / 32;
        u->where = "visual.attnpool";
        u->layer = -1;
        d->ap_pos_emb = take(u, m->ap_pos_emb, (Hf * Hf + 1) * E, "positional_embedding");
        d->ap_q_w = take(u, m->ap_q_w, E * E, "q_proj.weight");
        d->ap_q_b = take(u, m->ap_q_b, E, "q_proj.bias");
        d->ap_k_w = take(u, m->ap_k_w, E * E, "k_proj.weight");
        d->ap_k_b = take(u, m->ap_k_b, E, "k_proj.bias");
        d->ap_v_w = take(u, m->ap_v_w, E * E, "v_proj.weight");
        d->ap_v_b = take(u, m->ap_v_b, E, "v_proj.bias");
        d->ap_c_w = take(u, m->ap_c_w, D * E, "c_proj.weight");
        d->ap_c_b = take(u, m->ap_c_b, D, "c_proj.bias");
    }
    if (d->has_text) {
        const size_t Wt = c->text_width, M = c->text_mlp;
        u->where = "text";
        u->layer = -1;
        d->tok_emb = take(u, m->tok_emb, (size_t)c->vocab_size * Wt, "token_embedding.weight");
        d->txt_pos_emb = take(u, m->txt_pos_emb, (size_t)c->context_length * Wt, "positional_embedding");
        d->ln_final_w = take(u, m->ln_final_w, Wt, "ln_final.weight");
        d->ln_final_b = take(u, m->ln_final_b, Wt, "ln_final.bias");
        d->txt_proj = take(u, m->txt_proj, Wt * D, "text_projection");
        for (int l = 0; l < c->text_layers; l++)
            walk_block(u, &d->txt_blocks[l], &m->txt_blocks[l], Wt, M, "transformer.resblocks", l);
    }
}

template <typename T> void dev_model_free(DevModel<T> *d) {
    if (d->memory) cudaCheck(cudaFree(d->memory));
    free(d->vis_blocks);
    free(d->bottlenecks);
    free(d->txt_blocks);
    memset(d, 0, sizeof *d);
}

template <typename T> int dev_model_upload(DevModel<T> *d, const ClipModel *m) {
    memset(d, 0, sizeof *d);
    d->cfg = m->cfg;
    const ClipConfig *c = &m->cfg;
    if (c->vision_kind == CLIP_VISION_RESNET) {
        d->has_vision = m->bottlenecks != nullptr;
        for (int s = 0; s < 4; s++) d->n_bottlenecks += c->resnet_layers[s];
        if (d->has_vision) d->bottlenecks = (DevBottleneck<T> *)callocCheck((size_t)d->n_bottlenecks + 1, sizeof(DevBottleneck<T>));
    } else {
        d->has_vision = m->patch_w != nullptr && m->vis_blocks != nullptr;
        if (d->has_vision) d->vis_blocks = (DevBlock<T> *)callocCheck((size_t)c->vision_layers + 1, sizeof(DevBlock<T>));
    }
    d->has_text = m->tok_emb != nullptr && m->txt_blocks != nullptr && m->txt_proj != nullptr;
    if (d->has_text) d->txt_blocks = (DevBlock<T> *)callocCheck((size_t)c->text_layers + 1, sizeof(DevBlock<T>));

    Uploader<T> u;
    memset(&u, 0, sizeof u);
    walk(&u, d, m);  // sizing pass
    if (u.missing[0]) {
        dev_model_free(d);
        return cn_fail(CN_E_MODEL, "cuda backend: the model has no tensor %s", u.missing);
    }
    cudaError_t err = cudaMalloc(&d->memory, u.used ? u.used : 256);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        d->memory = nullptr;
        dev_model_free(d);
        return cn_fail(CN_E_CONFIG, "cuda backend: cannot allocate %.1f MiB for the %s parameters: %s",
                       u.used / 1048576.0, CudaType<T>::name, cudaGetErrorString(err));
    }
    d->bytes = u.used;
    float *stage = nullptr;
    if (!std::is_same<T, float>::value) cudaCheck(cudaMalloc(&stage, kStageElems * sizeof(float)));
    memset(&u, 0, sizeof u);
    u.base = (char *)d->memory;
    u.stage = stage;
    walk(&u, d, m);  // upload pass: same walk, same offsets
    cudaCheck(cudaDeviceSynchronize());
    if (stage) cudaCheck(cudaFree(stage));
    return CN_OK;
}

template int dev_model_upload<float>(DevModel<float> *, const ClipModel *);
template int dev_model_upload<__half>(DevModel<__half> *, const ClipModel *);
template int dev_model_upload<__nv_bfloat16>(DevModel<__nv_bfloat16> *, const ClipModel *);
template void dev_model_free<float>(DevModel<float> *);
template void dev_model_free<__half>(DevModel<__half> *);
template void dev_model_free<__nv_bfloat16>(DevModel<__nv_bfloat16> *);
