// cmd_encode_text.c — `clipneg encode-text --model DIR [--format json|csv] [--raw] [--vocab PATH] TEXT...`
// Tokenizes each text with CLIP BPE (tokenizer.c), runs the CPU text tower and prints one embedding
// per text (L2-normalised unless --raw). Compare by hand with open_clip's
// model.encode_text(open_clip.tokenize([TEXT])).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/commands.h"
#include "clipneg/common.h"
#include "clipneg/encoder.h"
#include "clipneg/model.h"
#include "clipneg/tokenizer.h"
#include "cmd_internal.h"

static void usage(void) {
    fprintf(stderr, "usage: clipneg encode-text --model DIR|FILE [--format json|csv] [--raw] [--vocab PATH] TEXT...\n"
                    "  --model   CLIP checkpoint: folder, .safetensors, or PyTorch .pt/.pth/.bin\n"
                    "  --format  json (default) or csv\n"
                    "  --raw     print the embeddings before L2 normalisation\n"
                    "  --vocab   bpe_simple_vocab_16e6.txt.gz or a folder with vocab.json + merges.txt\n"
                    "            (default: the model folder, then $CLIPNEG_BPE)\n"
                    "  --        everything after is a text, even if it starts with '-'\n" MODEL_OPTIONS_USAGE);
}

int cmd_encode_text(int argc, char **argv) {
    EncodeArgs args;
    int prc = encode_args_parse(&args, argc, argv, "encode-text", 1, usage);
    if (prc != CN_OK || args.help_only) {
        encode_args_free(&args);
        return prc;
    }
    const char *model_path = args.model, *vocab = args.vocab;
    const char **inputs = args.inputs;
    const EmbedFormat fmt = args.fmt;
    const int raw = args.raw, n_in = args.n_in;

    ClipModel m;
    if (clip_model_load(&m, model_path, &args.load) != CN_OK) {
        fprintf(stderr, "clipneg encode-text: %s\n", cn_last_error());
        encode_args_free(&args);
        return CN_E_MODEL;
    }
    ClipTokenizer *tok = NULL;
    if (tokenizer_load_auto(&tok, vocab, m.model_dir) != CN_OK) {
        fprintf(stderr, "clipneg encode-text: %s\n", cn_last_error());
        clip_model_free(&m);
        encode_args_free(&args);
        return CN_E_MODEL;
    }
    int ctx = m.cfg.context_length, D = m.cfg.embed_dim;
    int32_t *ids = mallocCheck((size_t)n_in * ctx * sizeof(int32_t));
    for (int i = 0; i < n_in; i++) {
        int truncated = 0;
        if (tokenizer_encode(tok, inputs[i], ctx, ids + (size_t)i * ctx, &truncated) < 0) {
            fprintf(stderr, "clipneg encode-text: text %d: %s\n", i + 1, cn_last_error());
            free(ids);
            tokenizer_free(tok);
            clip_model_free(&m);
            encode_args_free(&args);
            return CN_E_DATA;
        }
        if (truncated) cn_warn("text %d is longer than %d tokens: truncated (EOT kept last)", i + 1, ctx);
    }
    float *emb = mallocCheck((size_t)n_in * D * sizeof(float));
    int rc = CN_OK;
    if (encode_texts_cpu(&m, ids, n_in, emb) != CN_OK) {
        fprintf(stderr, "clipneg encode-text: %s\n", cn_last_error());
        rc = CN_E_DATA;
    } else {
        if (!raw) l2_normalize_rows(emb, n_in, D);
        embed_print(fmt, m.cfg.name, !raw, inputs, emb, n_in, D);
    }
    free(emb);
    free(ids);
    tokenizer_free(tok);
    clip_model_free(&m);
    encode_args_free(&args);
    return rc;
}
