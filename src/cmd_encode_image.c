// cmd_encode_image.c — `clipneg encode-image --model DIR [--format json|csv] [--raw] IMG...`
// Decodes and preprocesses each image like open_clip (image_decode.c, image_resize.c), runs the CPU
// image tower and prints one embedding per image (L2-normalised unless --raw). A debugging aid:
// compare by hand with open_clip's model.encode_image(preprocess(Image.open(IMG))).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/commands.h"
#include "clipneg/common.h"
#include "clipneg/encoder.h"
#include "clipneg/image.h"
#include "clipneg/model.h"
#include "cmd_internal.h"

#define IMAGE_BATCH 16  // images decoded and encoded at a time (bounds the pixel buffer)

static void usage(void) {
    fprintf(stderr, "usage: clipneg encode-image --model DIR|FILE [--format json|csv] [--raw] IMG...\n"
                    "  --model   CLIP checkpoint: folder, .safetensors, or PyTorch .pt/.pth/.bin\n"
                    "  --format  json (default) or csv\n"
                    "  --raw     print the embeddings before L2 normalisation\n" MODEL_OPTIONS_USAGE);
}

int cmd_encode_image(int argc, char **argv) {
    EncodeArgs args;
    int prc = encode_args_parse(&args, argc, argv, "encode-image", 0, usage);
    if (prc != CN_OK || args.help_only) {
        encode_args_free(&args);
        return prc;
    }
    const char *model_path = args.model;
    const char **inputs = args.inputs;
    const EmbedFormat fmt = args.fmt;
    const int raw = args.raw, n_in = args.n_in;

    ClipModel m;
    if (clip_model_load(&m, model_path, &args.load) != CN_OK) {
        fprintf(stderr, "clipneg encode-image: %s\n", cn_last_error());
        encode_args_free(&args);
        return CN_E_MODEL;
    }
    int R = m.cfg.image_size, D = m.cfg.embed_dim;
    float *pixels = mallocCheck((size_t)IMAGE_BATCH * 3 * R * R * sizeof(float));
    float *emb = mallocCheck((size_t)n_in * D * sizeof(float));
    int rc = CN_OK;
    for (int s = 0; s < n_in && rc == CN_OK; s += IMAGE_BATCH) {
        int nb = CN_MIN(IMAGE_BATCH, n_in - s);
        for (int i = 0; i < nb && rc == CN_OK; i++) {
            if (image_load_preprocess(inputs[s + i], R, pixels + (size_t)i * 3 * R * R) != CN_OK) {
                fprintf(stderr, "clipneg encode-image: %s\n", cn_last_error());
                rc = CN_E_IMAGE;
            }
        }
        if (rc == CN_OK && encode_images_cpu(&m, pixels, nb, emb + (size_t)s * D) != CN_OK) {
            fprintf(stderr, "clipneg encode-image: %s\n", cn_last_error());
            rc = CN_E_INTERNAL;
        }
    }
    if (rc == CN_OK) {
        if (!raw) l2_normalize_rows(emb, n_in, D);
        embed_print(fmt, m.cfg.name, !raw, inputs, emb, n_in, D);
    }
    free(emb);
    free(pixels);
    clip_model_free(&m);
    encode_args_free(&args);
    return rc;
}
