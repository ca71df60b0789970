// ops.cuh — the CUDA layer functions in every element type, for the encoder and the GPU tests.
//
//  * The twins of ops.h: the fp32 versions are the C-linkage functions of clipneg/ops_cuda.h; the
//    __half and __nv_bfloat16 versions below are C++ overloads of the same names. All of them store
//    tensors as T and do their arithmetic in fp32 (GEMMs: fp32 accumulation in cuBLASLt).
//  * Helpers the towers need that have no CPU twin in ops.h (token embedding, row gather,
//    attention-pool tokens, conversions). The CPU towers do these inline; the GPU test compares
//    each with a host loop.
// Every function only enqueues work on `stream`.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "clipneg/ops_cuda.h"

#define CN_DECLARE_TYPED_TWINS(T)                                                                          \
    void layernorm_forward_cuda(T *out, const T *inp, const T *w, const T *b, int N, int C, float eps,       \
                                cudaStream_t stream);                                                      \
    void matmul_forward_cuda(T *out, const T *inp, const T *weight, const T *bias, int N, int C, int OC,     \
                             cudaStream_t stream);                                                         \
    void matmul_forward_nn_cuda(T *out, const T *inp, const T *weight, int N, int C, int OC, cudaStream_t stream); \
    void quick_gelu_forward_cuda(T *x, long n, cudaStream_t stream);                                       \
    void gelu_forward_cuda(T *x, long n, cudaStream_t stream);                                             \
    void residual_forward_cuda(T *out, const T *a, const T *b, long n, cudaStream_t stream);               \
    void attention_forward_cuda(T *out, const T *qkv, float *scratch, int B, int Tq, int C, int NH, int causal, \
                                cudaStream_t stream);                                                      \
    void conv2d_forward_cuda(T *out, const T *inp, const T *weight, const T *bias, T *scratch, int B, int IC, \
                             int H, int W, int OC, int K, int S, int P, cudaStream_t stream);              \
    void relu_forward_cuda(T *x, long n, cudaStream_t stream);                                             \
    void avgpool2d_forward_cuda(T *out, const T *inp, int B, int C, int H, int W, int k, cudaStream_t stream);     \
    void im2patch_forward_cuda(T *out, const float *img, int B, int C, int R, int P, cudaStream_t stream);          \
    void attention_query_forward_cuda(T *out, const T *q, const T *k, const T *v, int B, int Tn, int C, int NH,      \
                                      cudaStream_t stream);                                                      \
    void attnpool_forward_cuda(T *out, const T *inp, const T *pos_emb, const T *q_w, const T *q_b, const T *k_w,     \
                               const T *k_b, const T *v_w, const T *v_b, const T *c_w, const T *c_b, T *scratch,   \
                               int B, int C, int HW, int NH, int OD, cudaStream_t stream);

CN_DECLARE_TYPED_TWINS(__half)
CN_DECLARE_TYPED_TWINS(__nv_bfloat16)
#undef CN_DECLARE_TYPED_TWINS

// ---- helpers without a CPU twin (instantiated for float, __half, __nv_bfloat16) ---------------------

// out[i] = (T)in[i] (round to nearest even)  /  out[i] = (float)in[i]
template <typename T> void convert_from_f32_cuda(T *out, const float *in, long n, cudaStream_t stream);
template <typename T> void convert_to_f32_cuda(float *out, const T *in, long n, cudaStream_t stream);

// ViT token assembly: x[b, 0, :] = class_emb + pos[0]; x[b, 1 + p, :] = patch_tok[b * G2 + p, :] + pos[1 + p].
// x: [B, G2 + 1, W], patch_tok: [B * G2, W], pos: [G2 + 1, W].
template <typename T>
void vit_embed_forward_cuda(T *x, const T *patch_tok, const T *class_emb, const T *pos, int B, int G2, int W,
                            cudaStream_t stream);

// Text embedding: x[b, t, :] = tok_emb[ids[b * Tn + t], :] + pos[t, :]. ids must lie in [0, vocab)
// (the caller checks on the host). x: [B, Tn, W].
template <typename T>
void text_embed_forward_cuda(T *x, const int32_t *ids, const T *tok_emb, const T *pos, int B, int Tn, int W,
                             cudaStream_t stream);

// out[b, :] = x[b, pos[b], :] for x [B, Tn, C]; pos == NULL takes row 0 (class token / pooled query).
template <typename T>
void gather_rows_cuda(T *out, const T *x, const int32_t *pos, int B, int Tn, int C, cudaStream_t stream);

// ModifiedResNet attention-pool input: x [B, E, HW] (NCHW) -> tok [B, HW + 1, E] with
// tok[b, 0, :] = mean over the HW positions, tok[b, 1 + p, :] = x[b, :, p], then + pos [HW + 1, E].
template <typename T>
void attnpool_tokens_cuda(T *tok, const T *x, const T *pos, int B, int E, int HW, cudaStream_t stream);

// Fill n elements with NaN (poisoning buffers in tests, "not rendered" rows in the text table).
template <typename T> void fill_nan_cuda(T *x, long n, cudaStream_t stream);
