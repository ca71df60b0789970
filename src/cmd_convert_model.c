// cmd_convert_model.c — `clipneg convert-model IN OUT.safetensors`: write a checkpoint once as
// open_clip-layout safetensors + open_clip_config.json (beside OUT), for users who want the plain
// mmap load on every rank instead of reading a PyTorch file each time.
//
// IN is loaded exactly as a job would (so it must be a valid CLIP: every check runs first); then
// the tensors are copied byte for byte in their stored dtype (no rounding), without the buffers
// OpenAI's TorchScript archives add (input_resolution, context_length, vocab_size, attn_mask), and
// the config records what was inferred or forced (heads, activation) so the result needs no options.
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/commands.h"
#include "clipneg/common.h"
#include "clipneg/model.h"
#include "clipneg/safetensors.h"
#include "clipneg/torchfile.h"
#include "cmd_internal.h"
#include "model_internal.h"

static void usage(FILE *fp) {
    fprintf(fp, "usage: clipneg convert-model IN OUT.safetensors [options]\n"
                "  IN: anything inspect-model reads (PyTorch .pt/.pth/.bin/.pth.tar/.ckpt, TorchScript, .safetensors)\n"
                "  writes OUT (open_clip names, stored dtypes) and open_clip_config.json beside it;\n"
                "  name OUT open_clip_model.safetensors so that a folder load pairs the two\n" MODEL_OPTIONS_USAGE);
}

static int skip_tensor(const char *name) {
    size_t n = strlen(name);
    return clip_name_ignorable(name) && !(n > 20 && !strcmp(name + n - 20, ".num_batches_tracked"));
}

static cJSON *shape_json(const StTensor *t) {
    cJSON *a = cJSON_CreateArray();
    for (int d = 0; d < t->ndim; d++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)t->shape[d]));
    return a;
}

static int write_safetensors(const SafeTensors *st, const char *out, const char *source) {
    cJSON *h = cJSON_CreateObject(), *meta = cJSON_AddObjectToObject(h, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    cJSON_AddStringToObject(meta, "converted_from", source);
    size_t off = 0;
    for (int i = 0; i < st->n; i++) {
        const StTensor *t = &st->tensors[i];
        if (skip_tensor(t->name)) continue;
        size_t nb = t->end - t->begin;
        cJSON *e = cJSON_AddObjectToObject(h, t->name), *of = cJSON_CreateArray();
        cJSON_AddStringToObject(e, "dtype", t->dtype_str);
        cJSON_AddItemToObject(e, "shape", shape_json(t));
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(off + nb)));
        cJSON_AddItemToObject(e, "data_offsets", of);
        off += nb;
    }
    char *json = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    size_t hl = strlen(json), pad = (8 - hl % 8) % 8;  // data section 8-byte aligned, as the reference writer
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        free(json);
        return cn_fail(CN_E_IO, "%s: cannot create", tmp);
    }
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)(hl + pad) >> (8 * i));
    fwriteCheck(len, 1, 8, fp);
    fwriteCheck(json, 1, hl, fp);
    fwriteCheck("        ", 1, pad, fp);
    free(json);
    for (int i = 0; i < st->n; i++)
        if (!skip_tensor(st->tensors[i].name))
            fwriteCheck(st->tensors[i].data, 1, st->tensors[i].end - st->tensors[i].begin, fp);
    fcloseCheck(fp);
    if (rename(tmp, out) != 0) return cn_fail(CN_E_IO, "%s: cannot rename to %s", tmp, out);
    return CN_OK;
}

static int write_config(const ClipConfig *c, const char *path) {
    cJSON *root = cJSON_CreateObject(), *mc = cJSON_AddObjectToObject(root, "model_cfg");
    cJSON_AddNumberToObject(mc, "embed_dim", c->embed_dim);
    cJSON_AddBoolToObject(mc, "quick_gelu", c->quick_gelu);
    cJSON *v = cJSON_AddObjectToObject(mc, "vision_cfg");
    cJSON_AddNumberToObject(v, "image_size", c->image_size);
    cJSON_AddNumberToObject(v, "width", c->vision_width);
    if (c->vision_kind == CLIP_VISION_RESNET) {
        cJSON *l = cJSON_AddArrayToObject(v, "layers");
        for (int i = 0; i < 4; i++) cJSON_AddItemToArray(l, cJSON_CreateNumber(c->resnet_layers[i]));
        cJSON_AddNumberToObject(v, "head_width", 32 * c->vision_width / c->vision_heads);
    } else {
        cJSON_AddNumberToObject(v, "layers", c->vision_layers);
        cJSON_AddNumberToObject(v, "patch_size", c->patch_size);
        cJSON_AddNumberToObject(v, "head_width", c->vision_width / c->vision_heads);
        cJSON_AddNumberToObject(v, "mlp_ratio", (double)c->vision_mlp / c->vision_width);
    }
    cJSON *t = cJSON_AddObjectToObject(mc, "text_cfg");
    cJSON_AddNumberToObject(t, "context_length", c->context_length);
    cJSON_AddNumberToObject(t, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(t, "width", c->text_width);
    cJSON_AddNumberToObject(t, "heads", c->text_heads);
    cJSON_AddNumberToObject(t, "layers", c->text_layers);
    cJSON_AddNumberToObject(t, "mlp_ratio", (double)c->text_mlp / c->text_width);
    cJSON *pc = cJSON_AddObjectToObject(root, "preprocess_cfg");  // OpenAI's normalisation
    const double mean[3] = {0.48145466, 0.4578275, 0.40821073}, std[3] = {0.26862954, 0.26130258, 0.27577711};
    cJSON_AddItemToObject(pc, "mean", cJSON_CreateDoubleArray(mean, 3));
    cJSON_AddItemToObject(pc, "std", cJSON_CreateDoubleArray(std, 3));
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        free(s);
        return cn_fail(CN_E_IO, "%s: cannot create", path);
    }
    fwriteCheck(s, 1, strlen(s), fp);
    fwriteCheck("\n", 1, 1, fp);
    fcloseCheck(fp);
    free(s);
    return CN_OK;
}

int cmd_convert_model(int argc, char **argv) {
    ClipLoadOptions opt = CLIP_LOAD_OPTIONS_DEFAULT;
    const char *in = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        int mo = model_option_arg(&opt, argc, argv, &i);
        if (mo == 1) continue;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return CN_OK;
        }
        if (mo < 0 || argv[i][0] == '-' || (in && out)) {
            fprintf(stderr, "clipneg convert-model: bad argument '%s'\n", argv[i]);
            usage(stderr);
            return CN_E_USAGE;
        }
        if (!in) in = argv[i];
        else out = argv[i];
    }
    if (!in || !out) {
        usage(stderr);
        return CN_E_USAGE;
    }
    ClipModel m;
    int rc = clip_model_load(&m, in, &opt);
    if (rc != CN_OK) {
        fprintf(stderr, "[clipneg] error: %s\n", cn_last_error());
        return rc;
    }
    if (m.layout != CLIP_LAYOUT_OPEN_CLIP) {
        fprintf(stderr, "[clipneg] error: %s: HF-layout checkpoints are read as they are; convert-model writes only "
                "OpenAI/open_clip-named weights\n", m.weights_path);
        clip_model_free(&m);
        return CN_E_MODEL;
    }
    SafeTensors st;
    TorchFileOptions to = {opt.state_key, opt.strip_prefix};
    rc = strcmp(m.source, "safetensors") ? torchfile_open(&st, NULL, m.weights_path, &to)
                                         : safetensors_open(&st, m.weights_path);
    char cfg_path[4200];
    const char *slash = strrchr(out, '/');
    snprintf(cfg_path, sizeof cfg_path, "%.*s%sopen_clip_config.json", slash ? (int)(slash - out) : 0, out,
             slash ? "/" : "");
    if (rc == CN_OK) {
        rc = write_safetensors(&st, out, m.weights_path);
        if (rc == CN_OK) rc = write_config(&m.cfg, cfg_path);
        safetensors_close(&st);
    }
    if (rc == CN_OK)
        printf("wrote %s (%s, %d tensors) and %s (%s, %s)\n", out, m.dtypes, m.n_tensors, cfg_path, m.cfg.name,
               m.cfg.quick_gelu ? "QuickGELU" : "GELU");
    else fprintf(stderr, "[clipneg] error: %s\n", cn_last_error());
    clip_model_free(&m);
    return rc;
}
