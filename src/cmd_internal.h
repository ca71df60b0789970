// cmd_internal.h — what the cmd_*.c files share beyond include/clipneg/commands.h. Internal to src/.
//   cmd_encode_common.c: the command line and the printing of `clipneg encode-image` / `encode-text`.
#ifndef CLIPNEG_CMD_INTERNAL_H
#define CLIPNEG_CMD_INTERNAL_H

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
} EncodeArgs;
int encode_args_parse(EncodeArgs *a, int argc, char **argv, const char *cmd, int with_vocab, void (*usage)(void));
void encode_args_free(EncodeArgs *a);

#endif
