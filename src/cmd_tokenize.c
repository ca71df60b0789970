// cmd_tokenize.c — `clipneg tokenize [--vocab PATH] [--context N] [--pad] [TEXT...]`
// Prints the CLIP token ids of each TEXT on its own stdout line (SOT ... EOT, space separated; with
// --pad the zero padding up to the context too). A text that did not fit is reported on stderr as
// "# truncated: text K". Without TEXT arguments, every line of stdin is one text.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/commands.h"
#include "clipneg/common.h"
#include "clipneg/tokenizer.h"

static void tokenize_usage(FILE *fp) {
    fprintf(fp, "usage: clipneg tokenize [--vocab PATH] [--context N] [--pad] [TEXT...]\n"
                "  --vocab PATH   bpe_simple_vocab_16e6.txt.gz, an HF vocab.json (merges.txt beside it),\n"
                "                 or a folder holding either (default: $CLIPNEG_BPE)\n"
                "  --context N    ids per text, SOT and EOT included (default %d)\n"
                "  --pad          also print the zero padding up to N\n"
                "Prints one line of ids per TEXT (or per stdin line when no TEXT is given);\n"
                "'# truncated: text K' goes to stderr for a text cut to fit N.\n",
                CLIP_CONTEXT);
}

static int tokenize_one(const ClipTokenizer *tok, const char *text, int context, int pad, int32_t *ids, long index) {
    int truncated = 0;
    int n = tokenizer_encode(tok, text, context, ids, &truncated);
    if (n < 0) {
        cn_warn("text %ld: %s", index, cn_last_error());
        return -n;
    }
    int shown = pad ? context : n;
    for (int i = 0; i < shown; i++) printf(i ? " %d" : "%d", ids[i]);
    printf("\n");
    if (truncated) {
        fflush(stdout);
        fprintf(stderr, "# truncated: text %ld\n", index);
    }
    return CN_OK;
}

int cmd_tokenize(int argc, char **argv) {
    const char *vocab = NULL;
    int context = CLIP_CONTEXT, pad = 0, first_text = argc;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            tokenize_usage(stdout);
            return CN_OK;
        } else if (!strcmp(argv[i], "--vocab") && i + 1 < argc) {
            vocab = argv[++i];
        } else if (!strcmp(argv[i], "--context") && i + 1 < argc) {
            char *end = NULL;
            long v = strtol(argv[++i], &end, 10);
            if (!*argv[i] || *end || v < 2 || v > 1000000) {
                fprintf(stderr, "clipneg tokenize: --context must be an integer in [2, 1000000], got '%s'\n", argv[i]);
                return CN_E_USAGE;
            }
            context = (int)v;
        } else if (!strcmp(argv[i], "--pad")) {
            pad = 1;
        } else if (!strcmp(argv[i], "--")) {
            first_text = i + 1;
            break;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            fprintf(stderr, "clipneg tokenize: unknown or incomplete option '%s'\n", argv[i]);
            tokenize_usage(stderr);
            return CN_E_USAGE;
        } else {
            first_text = i;
            break;
        }
    }
    ClipTokenizer *tok = NULL;
    int rc = tokenizer_load_auto(&tok, vocab, NULL);
    if (rc) {
        fprintf(stderr, "clipneg tokenize: %s\n", cn_last_error());
        return rc;
    }
    int32_t *ids = mallocCheck((size_t)context * sizeof(int32_t));
    if (first_text < argc) {
        for (int i = first_text; i < argc && rc == CN_OK; i++) rc = tokenize_one(tok, argv[i], context, pad, ids, i - first_text);
    } else {
        size_t cap = 0;
        char *line = NULL;
        long index = 0;
        for (;;) { // getline is POSIX, not C11: read with fgets into a growing buffer
            size_t len = 0;
            int got = 0;
            for (;;) {
                if (cap - len < 4096) line = reallocCheck(line, cap = cap * 2 + 8192);
                if (!fgets(line + len, (int)(cap - len), stdin)) break;
                got = 1;
                len += strlen(line + len);
                if (len && line[len - 1] == '\n') break;
            }
            if (!got) break;
            if (len && line[len - 1] == '\n') line[--len] = 0;
            if (len && line[len - 1] == '\r') line[--len] = 0;
            if ((rc = tokenize_one(tok, line, context, pad, ids, index++))) break;
        }
        free(line);
    }
    free(ids);
    tokenizer_free(tok);
    return rc;
}
