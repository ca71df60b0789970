// encoder_text.c — the CLIP text transformer on the CPU (open_clip encode_text).
//
//   ids [B,77] -> tok_emb[ids] + pos_emb -> L causal pre-LN blocks -> ln_final(EOT token)
//   -> @ txt_proj -> out [B, D]
//
// Why only the first few positions are computed: the output is taken at the EOT position e
// (argmax of the ids). Under the causal mask, the hidden state at position i depends only on
// tokens 0..i, in every layer (layernorm, the MLP and the projections are per token; attention
// of query i reads keys j <= i). So positions > e can never reach the pooled output and a
// sequence can be cut to e + 1 tokens without changing a single operation that feeds it.
// encode_texts_cpu sorts the batch by EOT position and runs chunks of similar length, each only
// up to its own longest EOT + 1; encode_texts_cpu_full runs all 77 positions (the reference).
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/encoder.h"
#include "clipneg/ops.h"
#include "encoder_common.h"

// Position of the first maximum of ids[0..n) (torch.argmax: the EOT, the largest id).
static int eot_position(const int32_t *ids, int n) {
    int best = 0;
    for (int t = 1; t < n; t++)
        if (ids[t] > ids[best]) best = t;
    return best;
}

typedef struct {
    int eot;   // EOT position of the text
    int index; // its row in the batch
} TextLength;

static int by_eot(const void *pa, const void *pb) {
    const TextLength *a = pa, *b = pb;
    if (a->eot != b->eot) return a->eot < b->eot ? -1 : 1;
    return a->index < b->index ? -1 : (a->index > b->index); // stable: batch order among equal lengths
}

// A chunk is computed up to its longest text, so mixing lengths pays for padding: on the coco-mini
// captions x 7 variants one length-sorted chunk per batch of 256 computes 1.9x the real tokens (1.6x
// for batches of 64). So a chunk is cut once its GEMMs have enough rows to run near peak
// (TEXT_GROUP_MIN_ROWS) and the next text is more than 25% longer than its shortest: 1.12x (1.18x).
// The cut depends only on the batch's lengths, never on threads or ranks.
#define TEXT_GROUP_MIN_ROWS 512

// How many of the length-sorted texts order[0..max_n) form the next chunk.
static int length_group(const int *eot, const int *order, int max_n) {
    int shortest = eot[order[0]] + 1;
    for (int i = 1; i < max_n; i++) {
        int next = eot[order[i]] + 1, longest = eot[order[i - 1]] + 1;
        if (4 * next > 5 * shortest && (long)i * longest >= TEXT_GROUP_MIN_ROWS) return i;
    }
    return max_n;
}

// Run texts order[0..n) (rows of ids) through the tower with T positions; rows of `out` by order.
// pool_rows: n ints of scratch. prune_last: compute the last block for the EOT rows only
// (encode_texts_cpu); the 77-token reference computes every row of every block.
static void text_chunk_forward(const ClipModel *m, const int32_t *ids, const int *order, const int *eot, int n, int T,
                               TransformerActs *a, int *pool_rows, float *pooled, float *out, int prune_last) {
    const ClipConfig *c = &m->cfg;
    int Wt = c->text_width, ctx = c->context_length, D = c->embed_dim;
    for (int i = 0; i < n; i++) {
        const int32_t *row = ids + (size_t)order[i] * ctx;
        for (int t = 0; t < T; t++) {
            const float *e = m->tok_emb + (size_t)row[t] * Wt;
            const float *pos = m->txt_pos_emb + (size_t)t * Wt;
            float *x = a->x + ((size_t)i * T + t) * Wt;
            for (int k = 0; k < Wt; k++) x[k] = e[k] + pos[k];
        }
    }
    for (int i = 0; i < n; i++) pool_rows[i] = eot[order[i]];
    if (prune_last) {
        transformer_forward(m->txt_blocks, c->text_layers, a, n, T, Wt, c->text_heads, c->text_mlp, 1, c->quick_gelu,
                            c->ln_eps, pool_rows, pooled);
    } else {
        transformer_forward(m->txt_blocks, c->text_layers, a, n, T, Wt, c->text_heads, c->text_mlp, 1, c->quick_gelu,
                            c->ln_eps, NULL, NULL);
        for (int i = 0; i < n; i++)
            memcpy(pooled + (size_t)i * Wt, a->x + ((size_t)i * T + pool_rows[i]) * Wt, (size_t)Wt * sizeof(float));
    }
    // ln_final is per token: apply it to the pooled EOT rows only.
    layernorm_forward(a->ln, pooled, m->ln_final_w, m->ln_final_b, n, Wt, c->ln_eps);
    matmul_forward_nn(pooled, a->ln, m->txt_proj, n, Wt, D); // pooled holds max(Wt, D) floats per text
    for (int i = 0; i < n; i++)
        memcpy(out + (size_t)order[i] * D, pooled + (size_t)i * D, (size_t)D * sizeof(float));
}

static int encode_texts(const ClipModel *m, const int32_t *ids, int B, float *out, int trim) {
    if (m == NULL || m->memory == NULL) return cn_fail(CN_E_INTERNAL, "encode_texts_cpu: no model loaded");
    if (B < 0) return cn_fail(CN_E_INTERNAL, "encode_texts_cpu: negative batch size %d", B);
    if (B == 0) return CN_OK;
    if (ids == NULL || out == NULL) return cn_fail(CN_E_INTERNAL, "encode_texts_cpu: NULL buffer");
    const ClipConfig *c = &m->cfg;
    if (m->tok_emb == NULL || m->txt_blocks == NULL || m->txt_proj == NULL)
        return cn_fail(CN_E_MODEL, "encode_texts_cpu: model has no text tower");
    int ctx = c->context_length, Wt = c->text_width, NH = c->text_heads, M = c->text_mlp, D = c->embed_dim;
    if (ctx <= 0 || NH <= 0 || Wt % NH != 0)
        return cn_fail(CN_E_MODEL, "text transformer: bad shape (context=%d width=%d heads=%d)", ctx, Wt, NH);
    for (long i = 0; i < (long)B * ctx; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            return cn_fail(CN_E_DATA, "encode_texts_cpu: text %ld, position %ld: token id %d outside the vocabulary [0, %d)",
                           i / ctx, i % ctx, (int)ids[i], c->vocab_size);

    int *eot = mallocCheck((size_t)B * sizeof(int));
    int *order = mallocCheck((size_t)B * sizeof(int));
    for (int b = 0; b < B; b++) {
        eot[b] = eot_position(ids + (size_t)b * ctx, ctx);
        order[b] = b;
    }
    if (trim) {
        TextLength *len = mallocCheck((size_t)B * sizeof(TextLength));
        for (int b = 0; b < B; b++) len[b] = (TextLength){eot[b], b};
        qsort(len, (size_t)B, sizeof(TextLength), by_eot);
        for (int b = 0; b < B; b++) order[b] = len[b].index;
        free(len);
    }
    long per_text = (transformer_floats_per_seq(ctx, Wt, M) + Wt) * (long)sizeof(float);
    int chunk = encoder_chunk_items(per_text, B);
    TransformerActs a;
    transformer_acts_alloc(&a, chunk, ctx, Wt, M, NH);
    float *pooled = mallocCheck((size_t)chunk * (Wt > D ? Wt : D) * sizeof(float));
    int *pool_rows = mallocCheck((size_t)chunk * sizeof(int));
    for (int s = 0, n = 0; s < B; s += n) {
        n = trim ? length_group(eot, order + s, CN_MIN(chunk, B - s)) : CN_MIN(chunk, B - s);
        // Sorted ascending: the chunk's last text has its longest EOT.
        int T = trim ? eot[order[s + n - 1]] + 1 : ctx;
        text_chunk_forward(m, ids, order + s, eot, n, T, &a, pool_rows, pooled, out, trim);
    }
    free(pool_rows);
    free(pooled);
    transformer_acts_free(&a);
    free(order);
    free(eot);
    return CN_OK;
}

int encode_texts_cpu(const ClipModel *m, const int32_t *ids, int B, float *out) {
    return encode_texts(m, ids, B, out, 1);
}

int encode_texts_cpu_full(const ClipModel *m, const int32_t *ids, int B, float *out) {
    return encode_texts(m, ids, B, out, 0);
}
