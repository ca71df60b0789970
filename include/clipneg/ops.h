// ops.h — the layer functions of the CPU reference backend (ops_cpu.c), llm.c style.
// Each has a CUDA twin in src/cuda/ops.cu with the same name plus the suffix `_cuda`, the same
// argument order (device pointers, plus a trailing cudaStream_t), and a test comparing the two.
// All tensors are row-major fp32; Linear weights use the PyTorch layout [out, in].
#ifndef CLIPNEG_OPS_H
#define CLIPNEG_OPS_H

// out[N,C] = layernorm(inp[N,C]) * w + b   (biased variance, eps inside the sqrt, like PyTorch)
void layernorm_forward(float *out, const float *inp, const float *w, const float *b, int N, int C, float eps);

// out[N,OC] = inp[N,C] @ weight[OC,C]^T (+ bias[OC] when bias != NULL)      (OpenBLAS sgemm)
void matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int C, int OC);

// out[N,OC] = inp[N,C] @ weight[C,OC]  (projection matrices stored [in, out], e.g. visual.proj)
void matmul_forward_nn(float *out, const float *inp, const float *weight, int N, int C, int OC);

// In place activations over n values.
void quick_gelu_forward(float *x, long n);  // x * sigmoid(1.702 x)
void gelu_forward(float *x, long n);        // 0.5 x (1 + erf(x / sqrt 2))   (exact, as nn.GELU())

// out[n] = a[n] + b[n]   (out may alias a)
void residual_forward(float *out, const float *a, const float *b, long n);

// Multi-head self-attention core. qkv: [B, T, 3C] (q | k | v along the last axis, heads of
// size C/NH contiguous inside each). out: [B, T, C]. causal != 0 masks j > i.
// scratch: at least B * NH * T * T floats (attention probabilities).
void attention_forward(float *out, const float *qkv, float *scratch, int B, int T, int C, int NH, int causal);

// 2-D convolution, NCHW, square kernel K, stride S, zero padding P.
// inp [B, IC, H, W] -> out [B, OC, Ho, Wo], Ho = (H + 2P - K)/S + 1.  weight [OC, IC, K, K], bias [OC] or NULL.
// scratch: at least IC*K*K*Ho*Wo floats (im2col of one image).
void conv2d_forward(float *out, const float *inp, const float *weight, const float *bias, float *scratch,
                    int B, int IC, int H, int W, int OC, int K, int S, int P);

// out[n] = max(x[n], 0), in place
void relu_forward(float *x, long n);

// Average pool, kernel = stride = k, no padding (as nn.AvgPool2d(k) in ModifiedResNet).
// inp [B, C, H, W] -> out [B, C, H/k, W/k]
void avgpool2d_forward(float *out, const float *inp, int B, int C, int H, int W, int k);

// ---- added by the CPU encoders (no CUDA twin required yet) -------------------------------------

// ViT patch extraction: a conv with kernel = stride = P and no padding, rewritten as GEMM rows.
// img [B, C, R, R] -> out [B * G * G, C * P * P], G = R / P (a remainder is dropped, as the conv
// does). Patches in raster order; each row ordered (c, ky, kx) like the conv weight [W, C, P, P],
// so matmul_forward(tokens, out, patch_w, NULL, B*G*G, C*P*P, W) is the patch embedding.
void im2patch_forward(float *out, const float *img, int B, int C, int R, int P);

// Attention over a single query per sequence (ModifiedResNet's attention pooling).
// q [B, C], k and v [B, T, C] (heads of size C/NH contiguous), out [B, C]; no mask.
void attention_query_forward(float *out, const float *q, const float *k, const float *v, int B, int T, int C,
                             int NH);

// Attention for ONE query row per sequence, read from the packed qkv [B, T, 3C] (layout as in
// attention_forward): out[b] = attention output of query row[b] of sequence b, out [B, C].
// With causal != 0 that query sees keys 0..row[b]. Used for the last transformer block, where
// only the pooled token (class token / EOT) reaches the output.
void attention_pooled_forward(float *out, const float *qkv, const int *row, int B, int T, int C, int NH, int causal);

// open_clip's AttentionPool2d: tokens = [mean over HW; the HW positions] + pos_emb, multi-head
// attention with only the mean token as query, then c_proj.
// inp [B, C, HW] (NCHW flattened), pos_emb [HW+1, C], q/k/v weights [C, C] + biases [C],
// c_w [OD, C], c_b [OD]; out [B, OD].
// scratch: at least attnpool_scratch_floats(B, C, HW) floats.
long attnpool_scratch_floats(int B, int C, int HW);
void attnpool_forward(float *out, const float *inp, const float *pos_emb, const float *q_w, const float *q_b,
                      const float *k_w, const float *k_b, const float *v_w, const float *v_b, const float *c_w,
                      const float *c_b, float *scratch, int B, int C, int HW, int NH, int OD);

// Threads for the OpenMP loops of the ops and for OpenBLAS (default cn_threads()); the two never
// run at the same time: GEMMs are called from serial code only, so the pools do not oversubscribe.
// Row-major C[M,N] = A[M,K] @ op(B) + beta*C with op(B) = B[K,N] (trans_b = 0) or B[N,K]^T (trans_b = 1).
// Threaded over a fixed tile grid: bit-identical results for any thread count (see ops_cpu.c).
void sgemm_rowmajor(int trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta,
                    float *C, int ldc);
void ops_set_threads(int n);
int ops_threads(void);

#endif
