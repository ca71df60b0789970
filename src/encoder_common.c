// encoder_common.c — the transformer stack shared by the ViT and text towers, and the chunk
// budget every CPU tower sizes its batches by. The entry points are in encoder_cpu.c (images)
// and encoder_text.c (texts).
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/encoder.h"
#include "clipneg/ops.h"
#include "encoder_common.h"

long transformer_floats_per_seq(int T, int C, int M) {
    // x, ln, att: C each; qkv: 3C; mlp: M  (per token)
    return (long)T * (6L * C + M);
}

void transformer_acts_alloc(TransformerActs *a, int B, int T, int C, int M, int NH) {
    long per_seq_scores = (long)NH * T * T;
    long seqs = ENCODER_SCORES_BYTES / (long)sizeof(float) / per_seq_scores;
    a->seqs_per_attention = (int)CN_MAX(1, CN_MIN(seqs, (long)B));
    size_t rows = (size_t)B * T;
    size_t total = rows * (6 * (size_t)C + M) + (size_t)a->seqs_per_attention * per_seq_scores +
                   (size_t)B * (3 * (size_t)C + M);
    a->memory = mallocCheck(total * sizeof(float));
    float *p = a->memory;
    a->x = p;      p += rows * C;
    a->ln = p;     p += rows * C;
    a->qkv = p;    p += rows * 3 * C;
    a->att = p;    p += rows * C;
    a->mlp = p;    p += rows * M;
    a->scores = p; p += (size_t)a->seqs_per_attention * per_seq_scores;
    a->row_att = p; p += (size_t)B * C;
    a->row_h = p;   p += (size_t)B * C;
    a->row_ln = p;  p += (size_t)B * C;
    a->row_mlp = p;
}

void transformer_acts_free(TransformerActs *a) {
    free(a->memory);
    a->memory = NULL;
}

static void activation_forward(float *x, long n, int quick_gelu) {
    if (quick_gelu)
        quick_gelu_forward(x, n);
    else
        gelu_forward(x, n);
}

// One pre-LN residual block on a->x [B*T, C].
static void block_forward(const ClipBlock *blk, TransformerActs *a, int B, int T, int C, int NH, int M, int causal,
                          int quick_gelu, float eps) {
    int N = B * T;
    long NC = (long)N * C;
    // attention branch
    layernorm_forward(a->ln, a->x, blk->ln_1_w, blk->ln_1_b, N, C, eps);
    matmul_forward(a->qkv, a->ln, blk->qkv_w, blk->qkv_b, N, C, 3 * C);
    for (int b0 = 0; b0 < B; b0 += a->seqs_per_attention) {
        int nb = CN_MIN(a->seqs_per_attention, B - b0);
        attention_forward(a->att + (size_t)b0 * T * C, a->qkv + (size_t)b0 * T * 3 * C, a->scores, nb, T, C, NH,
                          causal);
    }
    matmul_forward(a->ln, a->att, blk->out_w, blk->out_b, N, C, C);
    residual_forward(a->x, a->x, a->ln, NC);
    // MLP branch
    layernorm_forward(a->ln, a->x, blk->ln_2_w, blk->ln_2_b, N, C, eps);
    matmul_forward(a->mlp, a->ln, blk->fc_w, blk->fc_b, N, C, M);
    activation_forward(a->mlp, (long)N * M, quick_gelu);
    matmul_forward(a->ln, a->mlp, blk->proj_w, blk->proj_b, N, M, C);
    residual_forward(a->x, a->x, a->ln, NC);
}

// The last block for one row per sequence (pool[b]); writes those rows' outputs to pooled [B, C].
static void block_forward_pooled(const ClipBlock *blk, TransformerActs *a, const int *pool, float *pooled, int B,
                                 int T, int C, int NH, int M, int causal, int quick_gelu, float eps) {
    int N = B * T;
    // Every row still provides keys and values to the pooled query.
    layernorm_forward(a->ln, a->x, blk->ln_1_w, blk->ln_1_b, N, C, eps);
    matmul_forward(a->qkv, a->ln, blk->qkv_w, blk->qkv_b, N, C, 3 * C);
    attention_pooled_forward(a->row_att, a->qkv, pool, B, T, C, NH, causal);
    matmul_forward(a->row_h, a->row_att, blk->out_w, blk->out_b, B, C, C);
    for (int b = 0; b < B; b++) {
        const float *x = a->x + ((size_t)b * T + pool[b]) * C;
        residual_forward(pooled + (size_t)b * C, x, a->row_h + (size_t)b * C, C);
    }
    layernorm_forward(a->row_ln, pooled, blk->ln_2_w, blk->ln_2_b, B, C, eps);
    matmul_forward(a->row_mlp, a->row_ln, blk->fc_w, blk->fc_b, B, C, M);
    activation_forward(a->row_mlp, (long)B * M, quick_gelu);
    matmul_forward(a->row_h, a->row_mlp, blk->proj_w, blk->proj_b, B, M, C);
    residual_forward(pooled, pooled, a->row_h, (long)B * C);
}

void transformer_forward(const ClipBlock *blocks, int L, TransformerActs *a, int B, int T, int C, int NH, int M,
                         int causal, int quick_gelu, float eps, const int *pool, float *pooled) {
    int full = pool == NULL ? L : L - 1;
    for (int l = 0; l < full; l++) block_forward(&blocks[l], a, B, T, C, NH, M, causal, quick_gelu, eps);
    if (pool != NULL && L > 0) block_forward_pooled(&blocks[L - 1], a, pool, pooled, B, T, C, NH, M, causal, quick_gelu, eps);
    if (pool != NULL && L == 0)
        for (int b = 0; b < B; b++)
            memcpy(pooled + (size_t)b * C, a->x + ((size_t)b * T + pool[b]) * C, (size_t)C * sizeof(float));
}

static long g_chunk_bytes = ENCODER_CHUNK_BYTES;

void encoder_cpu_set_chunk_bytes(long bytes) { g_chunk_bytes = bytes > 0 ? bytes : ENCODER_CHUNK_BYTES; }

int encoder_chunk_items(long bytes_per_item, int B) {
    long n = g_chunk_bytes / (bytes_per_item > 0 ? bytes_per_item : 1);
    return (int)CN_MAX(1, CN_MIN(n, (long)B));
}
