// torchfile.c — PyTorch checkpoint -> SafeTensors table (see include/clipneg/torchfile.h).
//
// A torch.save / torch.jit.save file is a zip: <prefix>/data.pkl (the object graph), <prefix>/data/<key>
// (one raw storage per key), <prefix>/byteorder ("little" when absent), and for TorchScript
// <prefix>/constants.pkl. data.pkl goes through the data-only pickle VM (torchfile_pickle.c); then:
//   1. find the weights: TorchScript (or a pickled nn.Module) -> walk the module attribute dicts to
//      dotted names; a dict -> itself when it holds tensors, else its `state_dict` / `model` entry, or
//      the one entry that is a dict of tensors (the job's state_key overrides; several candidates and
//      no preferred name stop with the list);
//   2. strip a prefix every name shares (module., clip_model., model.) or the job's strip_prefix;
//   3. check each tensor: contiguous, its storage in the archive and big enough, dtype known.
#define _GNU_SOURCE
#include "clipneg/torchfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "clipneg/common.h"
#include "torchfile_internal.h"

#define MAX_DEPTH 64   // module nesting (OpenAI ViT-L: 5 levels)
#define MAX_NAME 1024

typedef struct {
    char *name;
    const PValue *t;
} Named;

typedef struct {
    Named *v;
    int n, cap;
    const char *file;
} NamedList;

static void named_add(NamedList *l, const char *prefix, const char *key, const PValue *t) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->v = reallocCheck(l->v, (size_t)l->cap * sizeof(Named));
    }
    size_t n = strlen(prefix) + strlen(key) + 1;
    char *s = mallocCheck(n);
    snprintf(s, n, "%s%s", prefix, key);
    l->v[l->n].name = s;
    l->v[l->n++].t = t;
}

static void named_free(NamedList *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i].name);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int count_tensors(const PValue *d) {
    int k = 0;
    if (d && d->kind == PV_DICT)
        for (int i = 0; i + 1 < d->n; i += 2) k += d->items[i]->kind == PV_STR && d->items[i + 1]->kind == PV_TENSOR;
    return k;
}

// A module object's attributes: TorchScript keeps them in the BUILD state dict; a pickled
// nn.Module keeps its tensors in _parameters/_buffers and its children in _modules.
static int walk_module(NamedList *l, const PValue *obj, const char *prefix, int depth) {
    if (depth > MAX_DEPTH) return cn_fail(CN_E_MODEL, "%s: modules nested deeper than %d at '%s'", l->file,
                                          MAX_DEPTH, prefix);
    const PValue *st = obj->state;
    if (!st || st->kind != PV_DICT) return CN_OK;
    const PValue *mods = tf_dict_get(st, "_modules");
    const PValue *groups[3] = {st, NULL, NULL};
    if (mods && mods->kind == PV_DICT) {
        groups[0] = tf_dict_get(st, "_parameters");
        groups[1] = tf_dict_get(st, "_buffers");
        groups[2] = mods;
    }
    for (int g = 0; g < 3; g++) {
        const PValue *d = groups[g];
        if (!d || d->kind != PV_DICT) continue;
        for (int i = 0; i + 1 < d->n; i += 2) {
            const PValue *k = d->items[i], *v = d->items[i + 1];
            if (k->kind != PV_STR) continue;
            if (v->kind == PV_TENSOR) {
                // OpenAI's blocks carry their causal mask as a plain attribute: not a weight.
                if (strcmp(k->s, "attn_mask") != 0) named_add(l, prefix, k->s, v);
            } else if (v->kind == PV_OBJECT) {
                if (strlen(prefix) + k->slen + 2 > MAX_NAME)
                    return cn_fail(CN_E_MODEL, "%s: module path longer than %d characters", l->file, MAX_NAME);
                char sub[MAX_NAME + 2];
                snprintf(sub, sizeof sub, "%s%s.", prefix, k->s);
                int rc = walk_module(l, v, sub, depth + 1);
                if (rc) return rc;
            }
        }
    }
    return CN_OK;
}

static void dict_tensors(NamedList *l, const PValue *d) {
    for (int i = 0; i + 1 < d->n; i += 2)
        if (d->items[i]->kind == PV_STR && d->items[i + 1]->kind == PV_TENSOR)
            named_add(l, "", d->items[i]->s, d->items[i + 1]);
}

// "'state_dict' (302 tensors), 'optimizer' (dict, 0 tensors), ..." for the error messages.
static void describe_entries(const PValue *root, char *buf, size_t n) {
    buf[0] = '\0';
    size_t k = 0;
    for (int i = 0; i + 1 < root->n && k + 80 < n; i += 2) {
        const PValue *key = root->items[i], *v = root->items[i + 1];
        if (key->kind != PV_STR) continue;
        int w = snprintf(buf + k, n - k, "%s'%.60s' (%s, %d tensors)", k ? ", " : "", key->s, torchvalue_kind(v),
                         count_tensors(v));
        if (w > 0) k += (size_t)w;
    }
    if (!k) snprintf(buf, n, "(no string keys)");
}

static int select_weights(NamedList *l, const PValue *root, const TorchFileOptions *opt, TorchFileInfo *info) {
    char list[768];
    if (root->kind == PV_OBJECT) {
        snprintf(info->wrapper, sizeof info->wrapper, "module attributes of %s",
                 root->cls && root->cls->kind == PV_GLOBAL ? root->cls->s : "an object");
        return walk_module(l, root, "", 0);
    }
    if (root->kind != PV_DICT)
        return cn_fail(CN_E_MODEL, "%s: the checkpoint holds a %s, not a dict of tensors or a module", l->file,
                       torchvalue_kind(root));
    if (opt && opt->state_key && opt->state_key[0]) {
        const PValue *d = tf_dict_get(root, opt->state_key);
        if (count_tensors(d) == 0) {
            describe_entries(root, list, sizeof list);
            return cn_fail(CN_E_MODEL, "%s: state_key '%s' %s; top-level entries: %s", l->file, opt->state_key,
                           d ? "is not a dict of tensors" : "is not in the checkpoint", list);
        }
        snprintf(info->wrapper, sizeof info->wrapper, "key '%s' (state_key)", opt->state_key);
        dict_tensors(l, d);
        return CN_OK;
    }
    if (count_tensors(root) > 0) {
        snprintf(info->wrapper, sizeof info->wrapper, "bare state dict");
        dict_tensors(l, root);
        return CN_OK;
    }
    // Entries that are dicts of tensors; the conventional names win over any others.
    static const char *preferred[] = {"state_dict", "model", "model_state_dict", "module"};
    const PValue *pick = NULL, *only = NULL;
    const char *pick_name = NULL, *only_name = NULL;
    int n_cand = 0;
    for (size_t p = 0; p < sizeof preferred / sizeof preferred[0] && !pick; p++)
        if (count_tensors(tf_dict_get(root, preferred[p]))) pick = tf_dict_get(root, pick_name = preferred[p]);
    for (int i = 0; i + 1 < root->n; i += 2)
        if (root->items[i]->kind == PV_STR && count_tensors(root->items[i + 1])) {
            n_cand++;
            only = root->items[i + 1];
            only_name = root->items[i]->s;
        }
    if (!pick && n_cand == 1) {
        pick = only;
        pick_name = only_name;
    }
    if (!pick) {
        describe_entries(root, list, sizeof list);
        return cn_fail(CN_E_MODEL, "%s: cannot tell which entry holds the weights (%s); set [model] state_key "
                       "(inspect-model --state-key). Top-level entries: %s", l->file,
                       n_cand ? "several dicts of tensors" : "no dict of tensors", list);
    }
    snprintf(info->wrapper, sizeof info->wrapper, "key '%s'", pick_name);
    dict_tensors(l, pick);
    return CN_OK;
}

static int all_start_with(const NamedList *l, const char *p) {
    size_t k = strlen(p);
    for (int i = 0; i < l->n; i++)
        if (strncmp(l->v[i].name, p, k) != 0) return 0;
    return l->n > 0;
}

static void strip(NamedList *l, const char *p) {
    size_t k = strlen(p);
    int w = 0;
    for (int i = 0; i < l->n; i++) {
        if (strncmp(l->v[i].name, p, k) != 0) {
            free(l->v[i].name);
            continue;
        }
        memmove(l->v[i].name, l->v[i].name + k, strlen(l->v[i].name + k) + 1);
        l->v[w++] = l->v[i];
    }
    l->n = w;
}

static int strip_prefixes(NamedList *l, const TorchFileOptions *opt, TorchFileInfo *info) {
    if (opt && opt->strip_prefix && opt->strip_prefix[0]) {
        int before = l->n;
        strip(l, opt->strip_prefix);
        if (l->n == 0)
            return cn_fail(CN_E_MODEL, "%s: no tensor name starts with strip_prefix '%s'", l->file, opt->strip_prefix);
        info->n_dropped = before - l->n;
        snprintf(info->prefix, sizeof info->prefix, "%s", opt->strip_prefix);
        return CN_OK;
    }
    static const char *known[] = {"module.", "clip_model.", "model."};
    for (int again = 1; again;) {
        again = 0;
        for (size_t p = 0; p < sizeof known / sizeof known[0]; p++)
            if (all_start_with(l, known[p])) {
                strip(l, known[p]);
                size_t k = strlen(info->prefix);
                snprintf(info->prefix + k, sizeof info->prefix - k, "%s", known[p]);
                again = 1;
            }
    }
    return CN_OK;
}

static int cmp_tensor(const void *a, const void *b) {
    return strcmp(((const StTensor *)a)->name, ((const StTensor *)b)->name);
}

// One named tensor -> an StTensor pointing into the mapping, after every check.
static int make_tensor(StTensor *out, const Named *nt, const TfZip *z, const char *top, const char *file) {
    const PValue *t = nt->t, *s = t->storage;
    size_t item = tf_dtype_size(t->dtype);
    int64_t numel = 1, expect = 1;
    for (int d = 0; d < t->ndim; d++) numel *= t->shape[d];
    for (int d = t->ndim - 1; d >= 0 && numel > 0; d--) {
        if (t->shape[d] != 1 && t->stride[d] != expect) {
            char sh[128], sd[128];
            int k1 = 0, k2 = 0;
            for (int j = 0; j < t->ndim; j++) {
                k1 += snprintf(sh + k1, sizeof sh - (size_t)k1, "%s%lld", j ? ", " : "", (long long)t->shape[j]);
                k2 += snprintf(sd + k2, sizeof sd - (size_t)k2, "%s%lld", j ? ", " : "", (long long)t->stride[j]);
            }
            return cn_fail(CN_E_MODEL, "%s: tensor '%s' is a non-contiguous view (shape [%s], stride [%s]); save "
                           "it with .contiguous() or convert the file with torch", file, nt->name, sh, sd);
        }
        expect *= t->shape[d];
    }
    char entry[1200];
    snprintf(entry, sizeof entry, "%s/data/%s", top, s->s);
    const TfZipEntry *e = tf_zip_find(z, entry);
    if (!e) return cn_fail(CN_E_MODEL, "%s: tensor '%s': storage '%s' is not in the archive", file, nt->name, s->s);
    int rc = tf_zip_stored(z, e);
    if (rc) return rc;
    if ((uint64_t)s->i > e->size / item)
        return cn_fail(CN_E_MODEL, "%s: tensor '%s': storage '%s' claims %lld elements of %zu bytes but the entry "
                       "holds %zu bytes", file, nt->name, s->s, (long long)s->i, item, e->size);
    out->name = strdupCheck(nt->name);
    out->dtype = tf_dtype_kind(t->dtype);
    snprintf(out->dtype_str, sizeof out->dtype_str, "%s", tf_dtype_st(t->dtype));
    out->ndim = t->ndim;
    memcpy(out->shape, t->shape, sizeof out->shape);
    out->numel = numel;
    out->begin = e->offset + (size_t)t->i * item;
    out->end = out->begin + (size_t)numel * item;
    return CN_OK;
}

static int build(SafeTensors *st, TorchFileInfo *info, const TfZip *z, const TorchFileOptions *opt) {
    const char *file = st->path;
    char top[512], name[1100];
    int rc = tf_zip_top(z, top, sizeof top);
    if (rc) return rc;
    snprintf(name, sizeof name, "%s/byteorder", top);
    const TfZipEntry *bo = tf_zip_find(z, name);
    if (bo && (rc = tf_zip_stored(z, bo))) return rc;
    if (bo && !(bo->size == 6 && !memcmp(st->map + bo->offset, "little", 6)))
        return cn_fail(CN_E_MODEL, "%s: saved with byteorder '%.*s': only little-endian files are read (no byte "
                       "swapping); re-save it on a little-endian machine", file, (int)CN_MIN(bo->size, 16),
                       (const char *)st->map + bo->offset);
    snprintf(name, sizeof name, "%s/constants.pkl", top);
    snprintf(info->kind, sizeof info->kind, "%s", tf_zip_find(z, name) ? "TorchScript" : "torch.save");
    snprintf(name, sizeof name, "%s/data.pkl", top);
    const TfZipEntry *pk = tf_zip_find(z, name);
    if ((rc = tf_zip_stored(z, pk))) return rc;
    char what[sizeof st->path + sizeof name + 4];
    snprintf(what, sizeof what, "%s: %s", file, name);
    TfPickle p;
    NamedList l = {.file = file};
    if ((rc = tf_pickle_run(&p, st->map + pk->offset, pk->size, what, TF_MAX_VALUES_CHECKPOINT)) ||
        (rc = select_weights(&l, p.root, opt, info)) || (rc = strip_prefixes(&l, opt, info)))
        goto done;
    if (l.n == 0) {
        rc = cn_fail(CN_E_MODEL, "%s: no tensors found (%s)", file, info->wrapper);
        goto done;
    }
    st->tensors = callocCheck((size_t)l.n, sizeof(StTensor));
    for (int i = 0; i < l.n && rc == CN_OK; i++) {
        rc = make_tensor(&st->tensors[i], &l.v[i], z, top, file);
        if (rc == CN_OK) st->tensors[st->n++].data = st->map + st->tensors[i].begin;
    }
    if (rc == CN_OK) {
        qsort(st->tensors, (size_t)st->n, sizeof(StTensor), cmp_tensor);
        for (int i = 1; i < st->n && rc == CN_OK; i++)
            if (!strcmp(st->tensors[i - 1].name, st->tensors[i].name))
                rc = cn_fail(CN_E_MODEL, "%s: tensor '%s' appears twice%s%s", file, st->tensors[i].name,
                             info->prefix[0] ? " after stripping " : "", info->prefix);
    }
done:
    named_free(&l);
    tf_pickle_free(&p);
    return rc;
}

int torchfile_parse(SafeTensors *st, TorchFileInfo *info, const uint8_t *buf, size_t size, const char *name,
                    const TorchFileOptions *opt) {
    TorchFileInfo local;
    if (!info) info = &local;
    memset(info, 0, sizeof *info);
    memset(st, 0, sizeof *st);
    snprintf(st->path, sizeof st->path, "%s", name ? name : "(memory)");
    st->map = (uint8_t *)buf;
    st->size = size;
    if (size >= 1 && buf[0] == 0x80)
        return cn_fail(CN_E_MODEL, "%s: legacy PyTorch format (a raw pickle, torch < 1.6): re-save it with torch "
                       ">= 1.6 (torch.save(torch.load(f), f))", st->path);
    if (size < 4 || memcmp(buf, "PK\3\4", 4) != 0)
        return cn_fail(CN_E_MODEL, "%s: not a PyTorch checkpoint (no zip signature)", st->path);
    TfZip z;
    int rc = tf_zip_open(&z, buf, size, st->path);
    if (rc == CN_OK) rc = build(st, info, &z, opt);
    tf_zip_free(&z);
    if (rc != CN_OK) safetensors_close(st);
    return rc;
}

int torchfile_open(SafeTensors *st, TorchFileInfo *info, const char *path, const TorchFileOptions *opt) {
    memset(st, 0, sizeof *st);
    uint8_t *map;
    size_t size;
    int rc = cn_map_file(path, &map, &size);
    if (rc != CN_OK) return rc;
    static const uint8_t empty[1] = {0};
    rc = torchfile_parse(st, info, map ? map : empty, size, path, opt);
    if (rc != CN_OK) {
        if (map) munmap(map, size);
        return rc;
    }
    st->owns_map = map != NULL;
    return CN_OK;
}

int torchfile_sniff(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return 0;
    unsigned char b[4] = {0};
    size_t n = fread(b, 1, 4, fp);
    fclose(fp);
    return (n == 4 && !memcmp(b, "PK\3\4", 4)) || (n >= 1 && b[0] == 0x80);
}
