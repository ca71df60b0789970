// cmd_inspect_model.c — `clipneg inspect-model DIR|FILE`: load a checkpoint exactly as a job would
// and print the files used, the layout, every ClipConfig field and the tensor/parameter counts
// (stdout, one "key: value" per line, so scripts and tests can grep it).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/commands.h"
#include "clipneg/common.h"
#include "clipneg/model.h"
#include "cmd_internal.h"

static void usage(FILE *fp) {
    fprintf(fp, "usage: clipneg inspect-model DIR|FILE [options]\n"
                "  DIR: open_clip_model.safetensors (+ open_clip_config.json), model.safetensors (+ config.json),\n"
                "       or one PyTorch file\n"
                "  FILE: a .safetensors, or a PyTorch .pt/.pth/.bin/.pth.tar/.ckpt (torch.save or TorchScript)\n"
                "  the options override the config (as [model] quick_gelu etc. in a job):\n" MODEL_OPTIONS_USAGE);
}

int cmd_inspect_model(int argc, char **argv) {
    ClipLoadOptions opt = CLIP_LOAD_OPTIONS_DEFAULT;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int mo = model_option_arg(&opt, argc, argv, &i);
        if (mo == 1) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return CN_OK;
        }
        if (mo < 0 || a[0] == '-' || path) {
            fprintf(stderr, "clipneg inspect-model: bad argument '%s'\n", a);
            usage(stderr);
            return CN_E_USAGE;
        }
        path = a;
    }
    if (!path) {
        usage(stderr);
        return CN_E_USAGE;
    }

    ClipModel m;
    double t0 = cn_now();
    int rc = clip_model_load(&m, path, &opt);
    if (rc != CN_OK) {
        fprintf(stderr, "[clipneg] error: %s\n", cn_last_error());
        return rc;
    }
    const ClipConfig *c = &m.cfg;
    int vit = c->vision_kind == CLIP_VISION_VIT;
    printf("weights: %s\n", m.weights_path);
    printf("config: %s\n", m.config_path[0] ? m.config_path : "(none: OpenAI defaults)");
    printf("container: %s\n", m.source);
    printf("layout: %s\n", m.layout == CLIP_LAYOUT_HF ? "hf" : "open_clip");
    printf("name: %s\n", c->name);
    printf("vision_kind: %s\n", vit ? "vit" : "resnet");
    printf("image_size: %d\n", c->image_size);
    printf("embed_dim: %d\n", c->embed_dim);
    printf("patch_size: %d\n", c->patch_size);
    printf("vision_width: %d\n", c->vision_width);
    printf("vision_layers: %d\n", c->vision_layers);
    printf("vision_heads: %d\n", c->vision_heads);
    printf("resnet_layers: %d,%d,%d,%d\n", c->resnet_layers[0], c->resnet_layers[1], c->resnet_layers[2],
           c->resnet_layers[3]);
    printf("vision_mlp: %d\n", c->vision_mlp);
    printf("vocab_size: %d\n", c->vocab_size);
    printf("context_length: %d\n", c->context_length);
    printf("text_width: %d\n", c->text_width);
    printf("text_heads: %d\n", c->text_heads);
    printf("text_layers: %d\n", c->text_layers);
    printf("text_mlp: %d\n", c->text_mlp);
    printf("quick_gelu: %d\n", c->quick_gelu);
    printf("activation: %s (%s)\n", c->quick_gelu ? "QuickGELU" : "GELU", m.activation_why);
    printf("ln_eps: %g\n", c->ln_eps);
    printf("logit_scale: %g\n", c->logit_scale);
    printf("tensors: %d\n", m.n_tensors);
    printf("dtypes: %s\n", m.dtypes);
    printf("parameters: %zu (%.1f M, %.1f MB as fp32)\n", m.n_params, m.n_params / 1e6, m.n_params * 4 / 1e6);
    printf("load_seconds: %.3f\n", cn_now() - t0);
    clip_model_free(&m);
    return CN_OK;
}
