// encoder.h — the batched CLIP towers. The CPU reference (encoder_cpu.c) is the source of truth;
// the CUDA backend (cuda/encoder.cu) implements the same calls and is tested against it.
#ifndef CLIPNEG_ENCODER_H
#define CLIPNEG_ENCODER_H

#include <stdint.h>

#include "clipneg/model.h"

// pixels: [B, 3, R, R] preprocessed (normalised) images, CHW. out: [B, D], NOT normalised.
int encode_images_cpu(const ClipModel *m, const float *pixels, int B, float *out);

// ids: [B, context] token ids as produced by tokenizer_encode (SOT ... EOT 0 0 ...).
// out: [B, D], NOT normalised. Pools at argmax(ids) (the EOT position), like open_clip.
// The batch is computed only up to its longest EOT position + 1: tokens after EOT cannot
// influence the pooled output under the causal mask.
int encode_texts_cpu(const ClipModel *m, const int32_t *ids, int B, float *out);
// Same, but always computing all `context` positions (the 77-token reference, for tests).
int encode_texts_cpu_full(const ClipModel *m, const int32_t *ids, int B, float *out);

// In place L2 normalisation of rows: x[i,:] /= max(||x[i,:]||, 1e-12). Explicit, separate step.
void l2_normalize_rows(float *x, int B, int D);

// Activations are bounded: a batch runs in chunks whose buffers fit in `bytes` (default 256 MiB;
// 0 restores the default). Results do not depend on it beyond fp32 rounding; tests set it tiny
// to exercise the chunk loops.
void encoder_cpu_set_chunk_bytes(long bytes);

#endif
