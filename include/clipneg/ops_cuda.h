// ops_cuda.h — the CUDA twins of the CPU layer functions in ops.h (src/cuda/ops*.cu).
//
// Each twin keeps the CPU name plus the suffix `_cuda`, the same argument order with DEVICE
// pointers, and a trailing cudaStream_t; it only enqueues work on that stream (no host sync).
// These fp32 entry points have C linkage. The reduced-precision overloads (__half,
// __nv_bfloat16 tensors, fp32 arithmetic inside) are C++ overloads of the same names, declared in
// src/cuda/ops.cuh for the encoder and the GPU tests.
//
// Only CUDA code and the GPU tests include this header: the C core stays free of CUDA headers
// (it talks to the backend through cuda_backend.h).
#ifndef CLIPNEG_OPS_CUDA_H
#define CLIPNEG_OPS_CUDA_H

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

// GEMM math mode of the fp32 twins below: 0 = true fp32 (CUBLAS_COMPUTE_32F, the default),
// 1 = TF32 tensor cores (CUBLAS_COMPUTE_32F_FAST_TF32). Process-wide; the backend sets it once.
void cuda_ops_set_tf32(int on);
int cuda_ops_tf32(void);
// Free the cuBLASLt handle and workspace of the current device (they are created on first use).
void cuda_ops_release(void);

// out[N,C] = layernorm(inp[N,C]) * w + b. out may alias inp.
void layernorm_forward_cuda(float *out, const float *inp, const float *w, const float *b, int N, int C, float eps,
                            cudaStream_t stream);
// out[N,OC] = inp[N,C] @ weight[OC,C]^T (+ bias[OC], fused into the cuBLASLt epilogue)
void matmul_forward_cuda(float *out, const float *inp, const float *weight, const float *bias, int N, int C, int OC,
                         cudaStream_t stream);
// out[N,OC] = inp[N,C] @ weight[C,OC]
void matmul_forward_nn_cuda(float *out, const float *inp, const float *weight, int N, int C, int OC,
                            cudaStream_t stream);
void quick_gelu_forward_cuda(float *x, long n, cudaStream_t stream);
void gelu_forward_cuda(float *x, long n, cudaStream_t stream);
void residual_forward_cuda(float *out, const float *a, const float *b, long n, cudaStream_t stream);
// Fused attention (scores, softmax and the product with V in one kernel, online softmax):
// `scratch` is not used on the GPU (pass NULL); it stays for the CPU argument order.
// Head size C/NH must be <= 128.
void attention_forward_cuda(float *out, const float *qkv, float *scratch, int B, int T, int C, int NH, int causal,
                            cudaStream_t stream);
// im2col + cuBLASLt GEMM, one image at a time. scratch: IC*K*K*Ho*Wo elements (as on the CPU);
// unused (may be NULL) for 1x1 stride-1 unpadded convolutions, which multiply the input directly.
void conv2d_forward_cuda(float *out, const float *inp, const float *weight, const float *bias, float *scratch,
                         int B, int IC, int H, int W, int OC, int K, int S, int P, cudaStream_t stream);
void relu_forward_cuda(float *x, long n, cudaStream_t stream);
void avgpool2d_forward_cuda(float *out, const float *inp, int B, int C, int H, int W, int k, cudaStream_t stream);

// ViT patch extraction: img [B, C, R, R] -> out [B*G*G, C*P*P], G = R/P (img is fp32 in every
// precision: the pixels come from the host as fp32).
void im2patch_forward_cuda(float *out, const float *img, int B, int C, int R, int P, cudaStream_t stream);
// One query per sequence: q [B, C], k and v [B, T, C], out [B, C]; one block per (head, item).
void attention_query_forward_cuda(float *out, const float *q, const float *k, const float *v, int B, int T, int C,
                                  int NH, cudaStream_t stream);
// open_clip's AttentionPool2d, the same steps as the CPU attnpool_forward. scratch: at least
// attnpool_scratch_floats_cuda(B, C, HW) elements of the tensor type.
long attnpool_scratch_floats_cuda(int B, int C, int HW);
void attnpool_forward_cuda(float *out, const float *inp, const float *pos_emb, const float *q_w, const float *q_b,
                           const float *k_w, const float *k_b, const float *v_w, const float *v_b, const float *c_w,
                           const float *c_b, float *scratch, int B, int C, int HW, int NH, int OD,
                           cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
