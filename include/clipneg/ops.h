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

#endif
