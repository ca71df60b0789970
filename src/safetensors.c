// safetensors.c — bounds-checked safetensors reader (see include/clipneg/safetensors.h).
//
// File layout: u64 little-endian header length N | N bytes of JSON | data section.
// The JSON maps tensor names to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to
// the data section) plus an optional "__metadata__" string map. Nothing in the header is trusted:
// every number is checked to be a non-negative integer, every product and sum for overflow, every
// byte range against the file size, and no two tensors may share bytes. A file that passes can be
// read through StTensor.data without further checks.
#define _GNU_SOURCE
#include "clipneg/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clipneg/common.h"
#include "clipneg/half.h"

// Largest integer a JSON number (a double in cJSON) holds exactly.
#define ST_MAX_JSON_INT 9007199254740992.0  // 2^53

typedef struct {
    const char *name;
    size_t itemsize;
    StDtype dtype;
} DtypeInfo;

static const DtypeInfo DTYPES[] = {
    {"F32", 4, ST_F32},   {"F16", 2, ST_F16},   {"BF16", 2, ST_BF16}, {"F64", 8, ST_OTHER},
    {"I64", 8, ST_OTHER}, {"I32", 4, ST_OTHER}, {"I16", 2, ST_OTHER}, {"I8", 1, ST_OTHER},
    {"U64", 8, ST_OTHER}, {"U32", 4, ST_OTHER}, {"U16", 2, ST_OTHER}, {"U8", 1, ST_OTHER},
    {"BOOL", 1, ST_OTHER}, {"F8_E4M3", 1, ST_OTHER}, {"F8_E5M2", 1, ST_OTHER},
};
#define N_DTYPES ((int)(sizeof DTYPES / sizeof DTYPES[0]))

static const DtypeInfo *dtype_info(const char *s) {
    for (int i = 0; i < N_DTYPES; i++)
        if (!strcmp(DTYPES[i].name, s)) return &DTYPES[i];
    return NULL;
}

size_t safetensors_itemsize(const char *dtype) {
    const DtypeInfo *d = dtype_info(dtype);
    return d ? d->itemsize : 0;
}

// A JSON value that must be a non-negative integer representable exactly.
static int json_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0.0) || d > ST_MAX_JSON_INT || d != (double)(uint64_t)d) return 0;
    *out = (uint64_t)d;
    return 1;
}

// Fill one StTensor from its header entry; `data_size` bounds the offsets.
static int parse_entry(StTensor *t, const cJSON *e, const char *file, size_t data_size) {
    const char *nm = e->string;
    if (!cJSON_IsObject(e)) return cn_fail(CN_E_MODEL, "%s: header entry '%s' is not an object", file, nm);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt)) return cn_fail(CN_E_MODEL, "%s: tensor '%s': missing or non-string \"dtype\"", file, nm);
    if (!cJSON_IsArray(sh)) return cn_fail(CN_E_MODEL, "%s: tensor '%s': missing or non-array \"shape\"", file, nm);
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2)
        return cn_fail(CN_E_MODEL, "%s: tensor '%s': \"data_offsets\" must be [begin, end]", file, nm);

    const DtypeInfo *info = dtype_info(dt->valuestring);
    if (!info) return cn_fail(CN_E_MODEL, "%s: tensor '%s': unknown dtype \"%.20s\"", file, nm, dt->valuestring);
    snprintf(t->dtype_str, sizeof t->dtype_str, "%s", info->name);
    t->dtype = info->dtype;

    int ndim = cJSON_GetArraySize(sh);
    if (ndim > ST_MAX_DIMS)
        return cn_fail(CN_E_MODEL, "%s: tensor '%s': %d dimensions (at most %d supported)", file, nm, ndim,
                       ST_MAX_DIMS);
    t->ndim = ndim;
    uint64_t numel = 1;
    int d = 0;
    for (const cJSON *x = sh->child; x; x = x->next, d++) {
        uint64_t n;
        if (!json_uint(x, &n))
            return cn_fail(CN_E_MODEL, "%s: tensor '%s': shape[%d] is not a non-negative integer", file, nm, d);
        if (n != 0 && numel > (uint64_t)INT64_MAX / n)
            return cn_fail(CN_E_MODEL, "%s: tensor '%s': element count overflows", file, nm);
        numel *= n;
        t->shape[d] = (int64_t)n;
    }
    t->numel = (int64_t)numel;

    uint64_t begin, end;
    if (!json_uint(of->child, &begin) || !json_uint(of->child->next, &end))
        return cn_fail(CN_E_MODEL, "%s: tensor '%s': data_offsets are not non-negative integers", file, nm);
    if (begin > end || end > data_size)
        return cn_fail(CN_E_MODEL,
                       "%s: tensor '%s': data_offsets [%llu, %llu] outside the data section (%zu bytes)", file,
                       nm, (unsigned long long)begin, (unsigned long long)end, data_size);
    // Compare by division first so numel * itemsize cannot overflow.
    uint64_t nbytes = end - begin;
    if (numel > nbytes / info->itemsize || numel * info->itemsize != nbytes)
        return cn_fail(CN_E_MODEL,
                       "%s: tensor '%s': %llu bytes in data_offsets but shape x %s needs %llu x %zu", file, nm,
                       (unsigned long long)nbytes, info->name, (unsigned long long)numel, info->itemsize);
    t->begin = (size_t)begin;
    t->end = (size_t)end;
    return CN_OK;
}

static int parse_metadata(SafeTensors *st, const cJSON *m) {
    if (!cJSON_IsObject(m)) return cn_fail(CN_E_MODEL, "%s: \"__metadata__\" is not an object", st->path);
    int n = cJSON_GetArraySize(m);
    st->meta_keys = callocCheck((size_t)n, sizeof(char *));
    st->meta_values = callocCheck((size_t)n, sizeof(char *));
    for (const cJSON *v = m->child; v; v = v->next) {
        if (!cJSON_IsString(v))
            return cn_fail(CN_E_MODEL, "%s: __metadata__ value of '%s' is not a string", st->path, v->string);
        st->meta_keys[st->n_meta] = strdupCheck(v->string);
        st->meta_values[st->n_meta] = strdupCheck(v->valuestring);
        st->n_meta++;
    }
    return CN_OK;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const StTensor *)a)->name, ((const StTensor *)b)->name);
}
static int cmp_begin(const void *a, const void *b) {
    const StTensor *x = *(const StTensor *const *)a, *y = *(const StTensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

// Sorting by name finds duplicate keys (cJSON keeps them); sorting by offset finds shared bytes.
static int check_unique_and_disjoint(SafeTensors *st) {
    qsort(st->tensors, (size_t)st->n, sizeof(StTensor), cmp_name);
    for (int i = 1; i < st->n; i++)
        if (!strcmp(st->tensors[i - 1].name, st->tensors[i].name))
            return cn_fail(CN_E_MODEL, "%s: tensor '%s' appears twice in the header", st->path, st->tensors[i].name);
    StTensor **by_off = mallocCheck((size_t)st->n * sizeof(StTensor *) + 1);
    for (int i = 0; i < st->n; i++) by_off[i] = &st->tensors[i];
    qsort(by_off, (size_t)st->n, sizeof(StTensor *), cmp_begin);
    // Walk by start offset keeping the furthest end seen so far (an empty tensor between two
    // others must not hide an overlap); empty tensors occupy no bytes and never overlap.
    int rc = CN_OK;
    const StTensor *last = NULL;
    for (int i = 0; i < st->n && rc == CN_OK; i++) {
        const StTensor *b = by_off[i];
        if (b->begin == b->end) continue;
        if (last && b->begin < last->end)
            rc = cn_fail(CN_E_MODEL, "%s: tensors '%s' [%zu, %zu) and '%s' [%zu, %zu) overlap", st->path,
                         last->name, last->begin, last->end, b->name, b->begin, b->end);
        if (!last || b->end > last->end) last = b;
    }
    free(by_off);
    return rc;
}

static int parse_header(SafeTensors *st, const uint8_t *buf, size_t size) {
    if (size < 8) return cn_fail(CN_E_MODEL, "%s: %zu bytes, too short for a safetensors file", st->path, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    if (hlen > size - 8)
        return cn_fail(CN_E_MODEL, "%s: header length %llu exceeds the file size (%zu bytes): truncated or not "
                       "a safetensors file", st->path, (unsigned long long)hlen, size);
    if (hlen < 2) return cn_fail(CN_E_MODEL, "%s: empty safetensors header", st->path);
    const char *json = (const char *)buf + 8;
    if (json[0] != '{')
        return cn_fail(CN_E_MODEL, "%s: header does not start with '{': not a safetensors file", st->path);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, (size_t)hlen, &end, 0);
    if (!root) {
        long at = end ? (long)(end - json) : -1;
        return cn_fail(CN_E_MODEL, "%s: header is not valid JSON (near byte %ld of %llu)", st->path, at,
                       (unsigned long long)hlen);
    }
    int rc = CN_OK;
    // Only padding (spaces, as the reference writer uses) may follow the JSON object.
    for (const char *c = end; c < json + hlen && rc == CN_OK; c++)
        if (*c != ' ' && *c != '\n' && *c != '\t' && *c != '\r' && *c != '\0')
            rc = cn_fail(CN_E_MODEL, "%s: unexpected bytes after the header JSON (byte %ld of %llu)", st->path,
                         (long)(c - json), (unsigned long long)hlen);
    if (rc == CN_OK && !cJSON_IsObject(root)) rc = cn_fail(CN_E_MODEL, "%s: header is not a JSON object", st->path);
    size_t data_size = size - 8 - (size_t)hlen;
    const uint8_t *data = buf + 8 + hlen;
    int cap = rc == CN_OK ? cJSON_GetArraySize(root) : 0;
    st->tensors = callocCheck((size_t)cap + 1, sizeof(StTensor));
    for (const cJSON *e = rc == CN_OK ? root->child : NULL; e && rc == CN_OK; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) {
            rc = parse_metadata(st, e);
            continue;
        }
        StTensor *t = &st->tensors[st->n];
        t->name = strdupCheck(e->string);
        st->n++;
        rc = parse_entry(t, e, st->path, data_size);
        t->data = data + t->begin;
    }
    cJSON_Delete(root);
    if (rc == CN_OK) rc = check_unique_and_disjoint(st);
    return rc;
}

int safetensors_parse(SafeTensors *st, const uint8_t *buf, size_t size, const char *name) {
    memset(st, 0, sizeof *st);
    snprintf(st->path, sizeof st->path, "%s", name ? name : "(memory)");
    st->map = (uint8_t *)buf;
    st->size = size;
    int rc = parse_header(st, buf, size);
    if (rc != CN_OK) safetensors_close(st);
    return rc;
}

int safetensors_open(SafeTensors *st, const char *path) {
    memset(st, 0, sizeof *st);
    uint8_t *map;
    size_t size;
    int rc0 = cn_map_file(path, &map, &size);
    if (rc0 != CN_OK) return rc0;
    static const uint8_t empty[1] = {0};
    int rc = safetensors_parse(st, map ? map : empty, size, path);
    if (rc != CN_OK) {
        if (map) munmap(map, size);
        return rc;
    }
    st->owns_map = map != NULL;
    return CN_OK;
}

void safetensors_close(SafeTensors *st) {
    for (int i = 0; i < st->n; i++) free(st->tensors[i].name);
    free(st->tensors);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->meta_keys);
    free(st->meta_values);
    if (st->owns_map && st->map) munmap(st->map, st->size);
    st->tensors = NULL;
    st->meta_keys = st->meta_values = NULL;
    st->n = st->n_meta = 0;
    st->map = NULL;
    st->owns_map = 0;
}

StTensor *safetensors_find(const SafeTensors *st, const char *name) {
    int lo = 0, hi = st->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(name, st->tensors[mid].name);
        if (c == 0) return &st->tensors[mid];
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

const char *safetensors_metadata(const SafeTensors *st, const char *key) {
    for (int i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta_keys[i], key)) return st->meta_values[i];
    return NULL;
}

int safetensors_to_f32(const StTensor *t, float *dst) {
    const uint8_t *p = t->data;
    size_t n = (size_t)t->numel;
    switch (t->dtype) {
    case ST_F32:
        memcpy(dst, p, n * 4);  // the data may be unaligned: no float* casts into the mapping
        return CN_OK;
    case ST_F16:
        for (size_t i = 0; i < n; i++) dst[i] = f16_to_f32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
        return CN_OK;
    case ST_BF16:
        for (size_t i = 0; i < n; i++) {
            uint32_t bits = (uint32_t)(p[2 * i] | (p[2 * i + 1] << 8)) << 16;
            memcpy(&dst[i], &bits, 4);
        }
        return CN_OK;
    default:
        return cn_fail(CN_E_MODEL, "tensor '%s' has dtype %s, not F32/F16/BF16", t->name, t->dtype_str);
    }
}

int safetensors_to_i32(const StTensor *t, int32_t *dst) {
    const uint8_t *p = t->data;
    size_t n = (size_t)t->numel;
    if (!strcmp(t->dtype_str, "I32")) {
        memcpy(dst, p, n * 4);
        return CN_OK;
    }
    if (strcmp(t->dtype_str, "I64") != 0)
        return cn_fail(CN_E_MODEL, "tensor '%s' has dtype %s, not I32/I64", t->name, t->dtype_str);
    for (size_t i = 0; i < n; i++) {
        int64_t v;
        memcpy(&v, p + 8 * i, 8);
        if (v < INT32_MIN || v > INT32_MAX)
            return cn_fail(CN_E_MODEL, "tensor '%s'[%zu] = %lld does not fit in int32", t->name, i, (long long)v);
        dst[i] = (int32_t)v;
    }
    return CN_OK;
}
