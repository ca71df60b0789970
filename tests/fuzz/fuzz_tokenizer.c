// fuzz_tokenizer.c — text cleaning (UTF-8 repair, HTML unescape, normalisation), the split regex and
// BPE on arbitrary bytes. Needs the CLIP vocabulary (CLIPNEG_BPE, or $CLIPNEG_SHARED/data/clip-bpe).
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
        fprintf(stderr, "fuzz_tokenizer: cannot load the BPE vocabulary (%s)\n", cn_last_error());
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = fuzz_cstr(data, size);
    int32_t ids[CLIP_CONTEXT];
    int truncated = 0;
    int n = tokenizer_encode(tok, text, CLIP_CONTEXT, ids, &truncated);
    if (n < 2 || n > CLIP_CONTEXT || ids[0] != CLIP_SOT || ids[n - 1] != CLIP_EOT) abort();
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] > CLIP_EOT) abort();
    free(text);
    return 0;
}
