// encoder.cuh — the CLIP towers on the device: the parameters (DevModel, one allocation of T
// carved like ClipModel's host memory) and the three forward passes. Internal to src/cuda/.
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "clipneg/model.h"
}

template <typename T> struct DevBlock {  // one pre-LN transformer block, shapes as ClipBlock
    T *ln_1_w, *ln_1_b, *qkv_w, *qkv_b, *out_w, *out_b, *ln_2_w, *ln_2_b, *fc_w, *fc_b, *proj_w, *proj_b;
};
template <typename T> struct DevConv {  // conv + folded BatchNorm: w [oc, ic, k, k], b [oc] or NULL
    T *w, *b;
    int oc, ic, k;
};
template <typename T> struct DevBottleneck {
    DevConv<T> conv1, conv2, conv3, down;  // down.w == NULL: identity shortcut
    int stride;
};

template <typename T> struct DevModel {
    ClipConfig cfg;
    int has_vision, has_text;
    // ViT
    T *patch_w, *class_emb, *vis_pos_emb, *ln_pre_w, *ln_pre_b, *ln_post_w, *ln_post_b, *vis_proj;
    DevBlock<T> *vis_blocks;        // host array [vision_layers] of device pointers
    // ModifiedResNet
    DevConv<T> stem[3];
    DevBottleneck<T> *bottlenecks;  // host array [n_bottlenecks]
    int n_bottlenecks;
    T *ap_pos_emb, *ap_q_w, *ap_q_b, *ap_k_w, *ap_k_b, *ap_v_w, *ap_v_b, *ap_c_w, *ap_c_b;
    // text
    T *tok_emb, *txt_pos_emb, *ln_final_w, *ln_final_b, *txt_proj;
    DevBlock<T> *txt_blocks;        // host array [text_layers]
    // storage
    void *memory;                   // the one device allocation every pointer above points into
    size_t bytes;
};

// Upload (and convert to T) every parameter of m. CN_OK, or CN_E_MODEL (a tensor the towers need
// is missing) / CN_E_CONFIG (out of device memory) with a message. On failure nothing stays allocated.
template <typename T> int dev_model_upload(DevModel<T> *d, const ClipModel *m);
template <typename T> void dev_model_free(DevModel<T> *d);

// Forward passes on `stream`, inputs and outputs in device memory; out [B, D] fp32, not normalised.
// pixels [B, 3, R, R] fp32. ids [B, Tn] token ids already checked against the vocabulary, eot [B]
// the pooling positions (< Tn). Activations come from the stream-ordered allocator.
template <typename T> void vit_forward(const DevModel<T> *d, const float *pixels, int B, float *out, cudaStream_t stream);
template <typename T> void resnet_forward(const DevModel<T> *d, const float *pixels, int B, float *out, cudaStream_t stream);
template <typename T>
void text_forward(const DevModel<T> *d, const int32_t *ids, const int32_t *eot, int B, int Tn, float *out,
                  cudaStream_t stream);
