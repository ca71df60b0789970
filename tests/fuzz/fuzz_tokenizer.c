// fuzz_tokenizer.c — text cleaning (UTF-8 repair, ftfy-style fixes, HTML unescape, normalisation),
// the split regex and BPE on arbitrary bytes. Oracle: the include/clipneg/tokenizer.h contract —
// SOT first, EOT last, ids in range, zero padding, and tokenizer_encode agreeing with
// tokenizer_encode_raw (the same tokens, truncated to the context with EOT kept, and flagged).
// Needs the CLIP vocabulary (CLIPNEG_BPE, or $CLIPNEG_SHARED/data/clip-bpe).
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "clipneg/common.h"
#include "clipneg/tokenizer.h"
#include "fuzz_util.h"

static ClipTokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    char path[4096];
    const char *bpe = getenv("CLIPNEG_BPE");
    const char *shared = getenv("CLIPNEG_SHARED");
    if (!bpe && shared) {
        snprintf(path, sizeof path, "%s/data/clip-bpe/bpe_simple_vocab_16e6.txt.gz", shared);
        bpe = path;
    }
    if (!bpe || tokenizer_load_bpe(&tok, bpe) != CN_OK) {
        fprintf(stderr, "fuzz_tokenizer: cannot load the BPE vocabulary (%s)\n", bpe ? cn_last_error() : "set CLIPNEG_BPE");
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = fuzz_cstr(data, size);
    int32_t ids[CLIP_CONTEXT];
    int truncated = -1;
    int n = tokenizer_encode(tok, text, CLIP_CONTEXT, ids, &truncated);
    if (n < 2 || n > CLIP_CONTEXT || ids[0] != CLIP_SOT || ids[n - 1] != CLIP_EOT) abort();
    if (truncated != 0 && truncated != 1) abort();
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] > CLIP_EOT) abort();
    for (int i = n; i < CLIP_CONTEXT; i++)
        if (ids[i] != 0) abort();
    int32_t *raw = NULL;
    int m = tokenizer_encode_raw(tok, text, &raw);
    if (m < 0 || (m > 0 && !raw)) abort();
    if (truncated != (m + 2 > CLIP_CONTEXT)) abort();
    if (n != (truncated ? CLIP_CONTEXT : m + 2)) abort();
    for (int i = 1; i < n - 1; i++)
        if (ids[i] != raw[i - 1]) abort();
    // SOT/EOT may appear inside: the text can spell "<start_of_text>" / "<end_of_text>", which
    // open_clip's SimpleTokenizer (and so clipneg, docs/tokenizer.md) turns into those very ids.
    for (int i = 0; i < m; i++)
        if (raw[i] < 0 || raw[i] > CLIP_EOT || !tokenizer_token_str(tok, raw[i])) abort();
    free(raw);
    // a short context truncates the same way
    int32_t small[4];
    int ts = -1, k = tokenizer_encode(tok, text, 4, small, &ts);
    if (k < 2 || k > 4 || small[0] != CLIP_SOT || small[k - 1] != CLIP_EOT || ts != (m + 2 > 4)) abort();
    free(text);
    return 0;
}
