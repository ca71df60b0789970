// cmd_internal.h — what the cmd_*.c files share beyond include/clipneg/commands.h. Internal to src/.
//   cmd_encode_common.c: the command line and the printing of `clipneg encode-image` / `encode-text`,
//   and the model-loading options of every command that loads a model.
#ifndef CLIPNEG_CMD_INTERNAL_H
#define CLIPNEG_CMD_INTERNAL_H

#include "clipneg/model.h"

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
