// tokenizer.h — CLIP byte-level BPE, equal to open_clip's SimpleTokenizer (default for OpenAI models).
#ifndef CLIPNEG_TOKENIZER_H
#define CLIPNEG_TOKENIZER_H

#include <stdint.h>

#define CLIP_SOT 49406
#define CLIP_EOT 49407
#define CLIP_CONTEXT 77

typedef struct ClipTokenizer ClipTokenizer;

// Load the vocabulary from open_clip's `bpe_simple_vocab_16e6.txt.gz` (gzip or plain text).
int tokenizer_load_bpe(ClipTokenizer **out, const char *path);
// Load from an HF model folder's vocab.json + merges.txt.
int tokenizer_load_hf(ClipTokenizer **out, const char *vocab_json, const char *merges_txt);
// Find vocabulary files: `explicit_path` if given (file or folder), else in model_dir
// (bpe_simple_vocab_16e6.txt.gz, or vocab.json + merges.txt), else $CLIPNEG_BPE.
// Error message lists every place looked at.
int tokenizer_load_auto(ClipTokenizer **out, const char *explicit_path, const char *model_dir);
void tokenizer_free(ClipTokenizer *t);

// Encode UTF-8 text into ids[context]: SOT, BPE tokens, EOT, then zeros. Invalid UTF-8 bytes are
// replaced by U+FFFD (as Python's bytes.decode(errors="replace")). If the text needs more than
// `context` ids it is truncated with EOT kept last and *truncated = 1 (never silent).
// Returns the number of ids before padding (SOT..EOT inclusive), so EOT is at index ret-1, or
// -CN_E_USAGE (message in cn_last_error) for NULL arguments or context < 2. `truncated` may be NULL.
// Thread-safe (no shared mutable state). What is implemented and the few known differences from
// open_clip: docs/tokenizer.md.
int tokenizer_encode(const ClipTokenizer *t, const char *text, int context, int32_t *ids, int *truncated);

// BPE tokens only (no SOT/EOT, no truncation). *ids is heap-allocated (free() it, also when the
// count is 0); returns count, or a negative CN_E_* code (and *ids = NULL) on NULL arguments.
int tokenizer_encode_raw(const ClipTokenizer *t, const char *text, int32_t **ids);

// The text of one id (e.g. "cat</w>") or NULL when out of range.
const char *tokenizer_token_str(const ClipTokenizer *t, int32_t id);

#endif
