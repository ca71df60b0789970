// model_load.c — clip_model_load: find the files, infer, bind, convert to fp32, fold BatchNorms.
//
// Order matters for the error messages and for memory: everything that can be wrong with a
// checkpoint (layout, shapes, config, missing/unknown tensors, dtypes) is found while only the
// header is read; the single fp32 allocation happens after that, so a corrupt header can never
// ask for an absurd amount of memory.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clipneg/common.h"
#include "clipneg/torchfile.h"
#include "model_internal.h"

#define BN_EPS 1e-5  // nn.BatchNorm2d default, used by every ModifiedResNet CLIP

static int is_file(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

// PyTorch checkpoints, by name: read by torchfile.c (a data-only pickle reader).
static int is_torch_name(const char *p) {
    static const char *ext[] = {".pt", ".pth", ".bin", ".ckpt", ".pth.tar", ".tar"};
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (ends_with(p, ext[i])) return 1;
    return 0;
}

static void join(char *out, size_t n, const char *dir, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

// The files in `dir` that `match`: how many, and the path of the first (in `weights`).
static int scan_dir(const char *dir, int (*match)(const char *), char *weights, size_t n, int *count, char *names,
                    size_t n2) {
    DIR *d = opendir(dir);
    if (!d) return cn_fail(CN_E_MODEL, "%s: cannot read folder: %s", dir, strerror(errno));
    *count = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!match(e->d_name)) continue;
        if (*count == 0) join(weights, n, dir, e->d_name);
        size_t k = strlen(names);
        if (*count < 3 && k < n2) snprintf(names + k, n2 - k, "%s'%s'", *count ? ", " : "", e->d_name);
        (*count)++;
    }
    closedir(d);
    return CN_OK;
}

static int is_safetensors_name(const char *p) { return ends_with(p, ".safetensors"); }

// Which config goes with a weights file in `dir`: the standard pair's, or open_clip_config.json
// beside a PyTorch file (then its activation wins over the QuickGELU default).
static void config_beside(const char *weights, char *config, size_t n) {
    const char *slash = strrchr(weights, '/');
    const char *base = slash ? slash + 1 : weights;
    int dir_len = slash ? (int)(slash - weights) : 1;
    const char *dir = slash ? weights : ".";
    config[0] = '\0';
    if (!strcmp(base, "model.safetensors")) snprintf(config, n, "%.*s/config.json", dir_len, dir);
    else if (!strcmp(base, "open_clip_model.safetensors") || is_torch_name(base))
        snprintf(config, n, "%.*s/open_clip_config.json", dir_len, dir);
    if (config[0] && !is_file(config) && is_torch_name(base))  // HF's pytorch_model.bin + config.json
        snprintf(config, n, "%.*s/config.json", dir_len, dir);
    if (config[0] && !is_file(config)) config[0] = '\0';
}

// DIR or FILE -> the weights file and its config ("" when none).
static int resolve_paths(const char *path, char *weights, char *config, size_t n) {
    struct stat sb;
    config[0] = '\0';
    if (stat(path, &sb) != 0) return cn_fail(CN_E_MODEL, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        static const char *pairs[2][2] = {{"open_clip_model.safetensors", "open_clip_config.json"},
                                          {"model.safetensors", "config.json"}};
        for (int i = 0; i < 2; i++) {
            join(weights, n, path, pairs[i][0]);
            if (!is_file(weights)) continue;
            join(config, n, path, pairs[i][1]);
            if (!is_file(config)) config[0] = '\0';
            return CN_OK;
        }
        join(weights, n, path, "model.safetensors.index.json");
        if (is_file(weights))
            return cn_fail(CN_E_MODEL, "%s: a sharded checkpoint (model.safetensors.index.json) is not supported; "
                           "merge the shards into one model.safetensors", path);
        int count = 0, rc;
        char names[512] = "";
        if ((rc = scan_dir(path, is_safetensors_name, weights, n, &count, names, sizeof names))) return rc;
        static const char *torch_names[] = {"open_clip_pytorch_model.bin", "pytorch_model.bin"};  // hub copies
        for (size_t i = 0; i < sizeof torch_names / sizeof torch_names[0] && count == 0; i++) {
            join(weights, n, path, torch_names[i]);
            if (is_file(weights)) {
                config_beside(weights, config, n);
                return CN_OK;
            }
        }
        if (count == 0 && (rc = scan_dir(path, is_torch_name, weights, n, &count, names, sizeof names))) return rc;
        if (count == 1) {  // a lone, otherwise named file
            config_beside(weights, config, n);
            return CN_OK;
        }
        if (count > 1)
            return cn_fail(CN_E_MODEL, "%s: %d checkpoint files (%s%s) and none has a standard name; give the "
                           "file to use", path, count, names, count > 3 ? ", ..." : "");
        return cn_fail(CN_E_MODEL, "%s: no checkpoint found: expected open_clip_model.safetensors "
                       "(+ open_clip_config.json), model.safetensors (+ config.json), or one PyTorch file "
                       "(.pt, .pth, .bin, .pth.tar, .ckpt)", path);
    }
    snprintf(weights, n, "%s", path);
    // A file with a standard name (or a PyTorch file) takes the config beside it; any other stands alone.
    config_beside(weights, config, n);
    return CN_OK;
}

// Every tensor is either bound or a known buffer; list what is not.
static int check_all_used(const SafeTensors *st, const ClipConfig *c, int *n_used) {
    int unknown = 0, used = 0;
    const StTensor *first = NULL;
    for (int i = 0; i < st->n; i++) {
        const StTensor *t = &st->tensors[i];
        if (t->used) used++;
        else if (!clip_name_ignorable(t->name) && unknown++ == 0) first = t;
    }
    *n_used = used;
    if (!unknown) return CN_OK;
    char s[128];
    clip_shape_str(s, sizeof s, first->ndim, first->shape);
    char more[64] = "";
    if (unknown > 1) snprintf(more, sizeof more, " and %d more", unknown - 1);
    return cn_fail(CN_E_MODEL, "%s: unknown tensor '%s' (shape %s)%s: not part of a %s CLIP (%s layout)", st->path,
                   first->name, s, more, c->name,
                   safetensors_find(st, "text_model.embeddings.token_embedding.weight") ? "HF" : "open_clip");
}

// Convert one binding's source(s) into its destination.
static int convert(const Binding *b, float *scratch) {
    int rc = CN_OK;
    switch (b->kind) {
    case BIND_COPY:
        rc = safetensors_to_f32(b->src[0], *b->dst);
        break;
    case BIND_TRANSPOSE: {  // src [B, A] -> dst [A, B]
        int64_t A = b->shape[0], B = b->shape[1];
        rc = safetensors_to_f32(b->src[0], scratch);
        for (int64_t i = 0; i < B && rc == CN_OK; i++)
            for (int64_t j = 0; j < A; j++) (*b->dst)[j * B + i] = scratch[i * A + j];
        break;
    }
    case BIND_CONCAT3:
        for (int k = 0; k < 3 && rc == CN_OK; k++) rc = safetensors_to_f32(b->src[k], *b->dst + k * (b->numel / 3));
        break;
    case BIND_COMPUTED:
        memset(*b->dst, 0, (size_t)b->numel * sizeof(float));
        break;
    }
    return rc;
}

// conv(x) then BatchNorm(eval) == conv with w' = w * s, b' = beta - mean * s, s = gamma / sqrt(var + eps).
static int fold_bn(const BnFold *f, const char *file) {
    ClipConv *cv = f->conv;
    int oc = cv->oc;
    size_t per = (size_t)cv->ic * cv->k * cv->k;
    float *p = mallocCheck(4 * (size_t)oc * sizeof(float));
    float *gamma = p, *beta = p + oc, *mean = p + 2 * oc, *var = p + 3 * oc;
    int rc = CN_OK;
    if ((rc = safetensors_to_f32(f->weight, gamma)) || (rc = safetensors_to_f32(f->bias, beta)) ||
        (rc = safetensors_to_f32(f->mean, mean)) || (rc = safetensors_to_f32(f->var, var))) {
        free(p);
        return rc;
    }
    for (int o = 0; o < oc; o++) {
        if (!(var[o] + BN_EPS > 0))
            rc = cn_fail(CN_E_MODEL, "%s: tensor '%s'[%d] = %g: a variance must be >= 0", file, f->var->name, o,
                         var[o]);
        double s = gamma[o] / sqrt((double)var[o] + BN_EPS);
        for (size_t i = 0; i < per; i++) cv->w[o * per + i] = (float)(cv->w[o * per + i] * s);
        cv->b[o] = (float)(beta[o] - mean[o] * s);
    }
    free(p);
    return rc;
}

// NaN/Inf in a checkpoint would silently poison every output: refuse it, naming the tensor.
static int check_finite(const Binding *b, const char *file) {
    const float *x = *b->dst;
    for (int64_t i = 0; i < b->numel; i++) {
        if (isfinite(x[i])) continue;
        const StTensor *src = b->kind == BIND_CONCAT3 ? b->src[i / (b->numel / 3)] : b->src[0];
        return cn_fail(CN_E_MODEL, "%s: tensor '%s' holds a non-finite value (%g) near element %lld", file,
                       src ? src->name : "(a folded BatchNorm)", x[i], (long long)i);
    }
    return CN_OK;
}

static int load_weights(ClipModel *m, BindList *bl, const char *file) {
    size_t total = 0, largest = 0;
    for (int i = 0; i < bl->n; i++) {
        total += (size_t)bl->b[i].numel;
        if (bl->b[i].kind == BIND_TRANSPOSE && (size_t)bl->b[i].numel > largest) largest = (size_t)bl->b[i].numel;
    }
    m->memory = mallocCheck(total * sizeof(float));
    m->n_params = total;
    size_t off = 0;
    for (int i = 0; i < bl->n; i++) {
        *bl->b[i].dst = m->memory + off;
        off += (size_t)bl->b[i].numel;
    }
    float *scratch = largest ? mallocCheck(largest * sizeof(float)) : NULL;
    int rc = CN_OK;
    for (int i = 0; i < bl->n && rc == CN_OK; i++) rc = convert(&bl->b[i], scratch);
    free(scratch);
    for (int i = 0; i < bl->n_bn && rc == CN_OK; i++) rc = fold_bn(&bl->bn[i], file);
    for (int i = 0; i < bl->n && rc == CN_OK; i++) rc = check_finite(&bl->b[i], file);
    if (rc != CN_OK) return rc;
    float raw;
    if ((rc = safetensors_to_f32(bl->logit_scale, &raw))) return rc;
    m->cfg.logit_scale = expf(raw);
    if (!isfinite(m->cfg.logit_scale))
        return cn_fail(CN_E_MODEL, "%s: logit_scale = %g: exp() is not finite", file, raw);
    return CN_OK;
}

// "F16 x 150, F32 x 2": how many tensors of each stored dtype, in order of first appearance.
static void summarize_dtypes(const SafeTensors *st, char *buf, size_t n) {
    const char *seen[16];
    int count[16], k = 0;
    for (int i = 0; i < st->n; i++) {
        int j = 0;
        while (j < k && strcmp(seen[j], st->tensors[i].dtype_str)) j++;
        if (j == k && k < 16) seen[k] = st->tensors[i].dtype_str, count[k++] = 0;
        if (j < k) count[j]++;
    }
    buf[0] = '\0';
    for (int j = 0, w = 0; j < k && (size_t)w < n; j++) {
        int r = snprintf(buf + w, n - (size_t)w, "%s%s x %d", j ? ", " : "", seen[j], count[j]);
        if (r < 0) break;
        w += r;
    }
}

int clip_model_load(ClipModel *m, const char *path, const ClipLoadOptions *opt) {
    memset(m, 0, sizeof *m);
    char weights[4096], config[4096];
    int rc = resolve_paths(path, weights, config, sizeof weights);
    if (rc != CN_OK) return rc;
    SafeTensors st;
    int torch = is_torch_name(weights) || torchfile_sniff(weights);
    if (torch) {
        TorchFileOptions to = {opt ? opt->state_key : NULL, opt ? opt->strip_prefix : NULL};
        TorchFileInfo info;
        if ((rc = torchfile_open(&st, &info, weights, &to)) != CN_OK) return rc;
        snprintf(m->source, sizeof m->source, "%s, %s%s%s", info.kind, info.wrapper,
                 info.prefix[0] ? ", prefix stripped: " : "", info.prefix);
        if (info.n_dropped)
            snprintf(m->source + strlen(m->source), sizeof m->source - strlen(m->source),
                     " (%d tensors outside it left out)", info.n_dropped);
    } else {
        if ((rc = safetensors_open(&st, weights)) != CN_OK) return rc;
        snprintf(m->source, sizeof m->source, "safetensors");
    }
    KeySpace ks;
    BindList bl = {0};
    int found_act = 0, found_vh = 0, found_th = 0;
    if ((rc = clip_detect_layout(&st, &ks)) || (rc = clip_infer_shapes(&ks, &m->cfg))) goto fail;
    if (config[0] && (rc = clip_apply_config_file(&m->cfg, config, opt, &found_act, &found_vh, &found_th))) goto fail;
    if ((rc = clip_finish_config(&m->cfg, opt, found_act, found_vh, found_th, weights))) goto fail;
    snprintf(m->activation_why, sizeof m->activation_why, "%s",
             opt && opt->force_quick_gelu >= 0 ? "forced by the job / command line"
             : found_act ? "from the config file"
             : torch ? "PyTorch file with no config beside it: OpenAI CLIP and its fine-tunes use QuickGELU"
                     : "no config: OpenAI's default");
    if ((rc = clip_bind_all(m, &ks, &bl))) goto fail;
    if ((rc = check_all_used(&st, &m->cfg, &m->n_tensors))) goto fail;
    if ((rc = load_weights(m, &bl, weights))) goto fail;
    m->layout = ks.layout;
    summarize_dtypes(&st, m->dtypes, sizeof m->dtypes);
    snprintf(m->weights_path, sizeof m->weights_path, "%s", weights);
    snprintf(m->config_path, sizeof m->config_path, "%s", config);
    snprintf(m->model_dir, sizeof m->model_dir, "%s", weights);
    char *slash = strrchr(m->model_dir, '/');
    if (slash) *slash = '\0';
    else snprintf(m->model_dir, sizeof m->model_dir, ".");
    clip_bind_free(&bl);
    safetensors_close(&st);
    if (torch) cn_log("%s: %s; activation %s (%s)", weights, m->source, m->cfg.quick_gelu ? "QuickGELU" : "GELU",
                      m->activation_why);
    return CN_OK;
fail:
    clip_bind_free(&bl);
    safetensors_close(&st);
    clip_model_free(m);
    return rc;
}

void clip_model_free(ClipModel *m) {
    free(m->memory);
    free(m->vis_blocks);
    free(m->txt_blocks);
    free(m->bottlenecks);
    memset(m, 0, sizeof *m);
}
