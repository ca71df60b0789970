// encoder_common.h — pieces shared by the CPU towers (encoder_vit.c, encoder_resnet.c,
// encoder_text.c). Internal to src/: the public API is include/clipneg/encoder.h.
#ifndef CLIPNEG_ENCODER_COMMON_H
#define CLIPNEG_ENCODER_COMMON_H

#include <stddef.h>

#include "clipneg/model.h"

// Activations are bounded per call: a batch is run in chunks whose buffers fit in this many
// bytes (a larger batch does not make the GEMMs faster once they have a few hundred rows).
// Adjustable with encoder_cpu_set_chunk_bytes() (encoder.h).
#define ENCODER_CHUNK_BYTES (256L << 20)
// The T x T attention probabilities of a chunk are computed a few sequences at a time.
#define ENCODER_SCORES_BYTES (64L << 20)

// Activations of a pre-LN transformer run over `rows` = B*T tokens; one allocation.
typedef struct {
    float *x;       // [rows, C]  residual stream
    float *ln;      // [rows, C]  layernorm output / projection output before the residual add
    float *qkv;     // [rows, 3C]
    float *att;     // [rows, C]  attention output (heads concatenated)
    float *mlp;     // [rows, M]
    float *scores;  // [seqs_per_attention * NH * T * T]  attention probabilities
    // the pooled last block (one row per sequence):
    float *row_att; // [B, C]  attention output of the pooled row
    float *row_h;   // [B, C]  projection output before the residual add
    float *row_ln;  // [B, C]
    float *row_mlp; // [B, M]
    int seqs_per_attention; // sequences per attention_forward call (bounded by ENCODER_SCORES_BYTES)
    float *memory;
} TransformerActs;

// Floats of activations per sequence of T tokens (for choosing a chunk size).
long transformer_floats_per_seq(int T, int C, int M);
// Allocate for up to B sequences of up to T tokens.
void transformer_acts_alloc(TransformerActs *a, int B, int T, int C, int M, int NH);
void transformer_acts_free(TransformerActs *a);

// a->x [B, T, C] through `L` pre-LN residual blocks:
//   x = x + out_proj(attention(ln_1(x)));  x = x + c_proj(act(c_fc(ln_2(x))))
// pool == NULL: every row of every block is computed, a->x holds the final states.
// pool != NULL: only row pool[b] of each sequence is read out afterwards, so the LAST block is
// computed for that row alone (its keys/values still come from every row): its out_proj and MLP
// shrink from B*T rows to B rows. The final states of those rows go to pooled [B, C]; a->x is
// then left at the input of the last block.
void transformer_forward(const ClipBlock *blocks, int L, TransformerActs *a, int B, int T, int C, int NH, int M,
                         int causal, int quick_gelu, float eps, const int *pool, float *pooled);

// Items per chunk so that `bytes_per_item` * chunk <= the chunk budget (at least 1, at most B).
int encoder_chunk_items(long bytes_per_item, int B);

// The towers (called by encode_images_cpu after its argument checks).
int vit_encode_images(const ClipModel *m, const float *pixels, int B, float *out);
int resnet_encode_images(const ClipModel *m, const float *pixels, int B, float *out);

// ---- shared by `clipneg encode-image` / `encode-text` (encoder_print.c) -------------------------

typedef enum { EMBED_FORMAT_JSON = 0, EMBED_FORMAT_CSV = 1 } EmbedFormat;
// Parse "json" / "csv"; CN_OK or CN_E_USAGE (message set).
int embed_format_parse(const char *s, EmbedFormat *fmt);
// Print n embeddings [n, D] labelled by inputs[i] to stdout (%.9g: floats round-trip exactly).
void embed_print(EmbedFormat fmt, const char *model_name, int normalized, const char *const *inputs,
                 const float *emb, int n, int D);

// The command line both commands share: --model, --format, --raw, -h/--help, `--`, inputs; and
// --vocab when `with_vocab`. On CN_E_USAGE the message and usage() are printed; help_only is set
// (and CN_OK returned) for -h/--help after usage() was printed. encode_args_free releases inputs.
typedef struct {
    const char *model, *vocab;
    EmbedFormat fmt;
    int raw, help_only, n_in;
    const char **inputs;  // n_in pointers into argv
    ClipLoadOptions load; // --quick-gelu/--gelu/--vision-heads/--text-heads/--state-key/--strip-prefix
} EncodeArgs;
// The model-loading options every model command shares, at argv[*i]: --quick-gelu [0|1], --gelu,
// --vision-heads N, --text-heads N, --state-key KEY, --strip-prefix P. Returns 1 (consumed; *i
// moved past the value), 0 (not one of these), -1 (a bad or missing value).
int model_option_arg(ClipLoadOptions *o, int argc, char **argv, int *i);
#define MODEL_OPTIONS_USAGE                                                                                  \
    "  --quick-gelu [1|0], --gelu   force the activation (default: the config; QuickGELU without one)\n"     \
    "  --vision-heads N, --text-heads N   head counts when no config says them\n"                            \
    "  --state-key KEY, --strip-prefix P   PyTorch files: where the weights are (default: detected)\n"
int encode_args_parse(EncodeArgs *a, int argc, char **argv, const char *cmd, int with_vocab, void (*usage)(void));
void encode_args_free(EncodeArgs *a);

#endif
