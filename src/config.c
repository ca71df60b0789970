// config.c — the job file (INI via inih): keys, defaults, ${VAR} expansion, path resolution and
// validation, so that a bad job is refused before any work with "FILE:LINE: [section] key: why".
// Every key is documented in docs/job-file.md; the table KEYS below is the single source of truth.
#define _GNU_SOURCE
#include "clipneg/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clipneg/common.h"
#include "clipneg/variants.h"
#include "ini.h"

// ---------------------------------------------------------------------------------------------
// The keys of a job file
// ---------------------------------------------------------------------------------------------

typedef enum {
    K_FILE,     // path to an existing regular file
    K_DIR,      // path to an existing folder
    K_ANYPATH,  // existing file or folder
    K_OUTPATH,  // file to be written: its folder must exist
    K_STRING,
    K_INT,
    K_U64,
    K_BOOL,
    K_ENUM,
    K_DOUBLE,   // finite number in [min, max] (items: crop_expand)
} KeyKind;

typedef struct {
    const char *section;
    const char *key;
    KeyKind kind;
    size_t offset;                  // field in JobConfig
    long long min, max;             // K_INT range
    const char *const *enum_names;  // K_ENUM: NULL-terminated, value = index mapped by enum_values
    const int *enum_values;
} KeySpec;

static const char *const BACKEND_NAMES[] = {"auto", "cpu", "cuda", NULL};
static const int BACKEND_VALUES[] = {BACKEND_AUTO, BACKEND_CPU, BACKEND_CUDA};
static const char *const PRECISION_NAMES[] = {"auto", "fp32", "tf32", "fp16", "bf16", NULL};
static const int PRECISION_VALUES[] = {PREC_AUTO, PREC_FP32, PREC_TF32, PREC_FP16, PREC_BF16};
static const char *const FORMAT_NAMES[] = {"coco", "jsonl", "items", "negbench-mcq", "negbench-retrieval",
                                           "negrefcocog", "valse-existence", "sugarcrepe", "classification", "ccneg", NULL};
static const int FORMAT_VALUES[] = {DATASET_COCO, DATASET_JSONL, DATASET_ITEMS, DATASET_NEGBENCH_MCQ,
                                    DATASET_NEGBENCH_RETRIEVAL, DATASET_NEGREFCOCOG, DATASET_VALSE_EXISTENCE,
                                    DATASET_SUGARCREPE, DATASET_CLASSIFY, DATASET_CCNEG};
static const char *const GELU_NAMES[] = {"auto", "true", "false", "yes", "no", "1", "0", NULL};
static const int GELU_VALUES[] = {-1, 1, 0, 1, 0, 1, 0};
static const char *const DTYPE_NAMES[] = {"float16", "float32", NULL};
static const int DTYPE_VALUES[] = {1, 0};

#define F(field) offsetof(JobConfig, field)
#define ENUM(names, values) 0, 0, names, values
static const KeySpec KEYS[] = {
    {"model", "path", K_ANYPATH, F(model_path), 0, 0, NULL, NULL},
    {"model", "tokenizer", K_ANYPATH, F(tokenizer_path), 0, 0, NULL, NULL},
    {"model", "quick_gelu", K_ENUM, F(quick_gelu), ENUM(GELU_NAMES, GELU_VALUES)},
    {"model", "state_key", K_STRING, F(state_key), 0, 0, NULL, NULL},
    {"model", "strip_prefix", K_STRING, F(strip_prefix), 0, 0, NULL, NULL},
    {"dataset", "format", K_ENUM, F(dataset_kind), ENUM(FORMAT_NAMES, FORMAT_VALUES)},
    {"dataset", "captions", K_FILE, F(captions_json), 0, 0, NULL, NULL},
    {"dataset", "instances", K_FILE, F(instances_json), 0, 0, NULL, NULL},
    {"dataset", "images", K_DIR, F(images_dir), 0, 0, NULL, NULL},
    {"dataset", "manifest", K_FILE, F(manifest), 0, 0, NULL, NULL},
    {"dataset", "max_images", K_INT, F(max_images), 0, INT_MAX, NULL, NULL},
    {"dataset", "crop_expand", K_DOUBLE, F(crop_expand), 1, 10, NULL, NULL},
    {"dataset", "path", K_ANYPATH, F(dataset_path), 0, 0, NULL, NULL},
    {"dataset", "image_prefix", K_STRING, F(image_prefix), 0, 0, NULL, NULL},
    {"dataset", "last_n", K_INT, F(last_n), 0, INT_MAX, NULL, NULL},
    {"dataset", "classnames", K_FILE, F(classnames), 0, 0, NULL, NULL},
    {"dataset", "templates", K_FILE, F(templates), 0, 0, NULL, NULL},
    {"dataset", "negated_templates", K_FILE, F(negated_templates), 0, 0, NULL, NULL},
    {"variants", "file", K_FILE, F(variants_file), 0, 0, NULL, NULL},
    {"variants", "base_variant", K_STRING, F(base_variant), 0, 0, NULL, NULL},
    {"output", "path", K_OUTPATH, F(output_path), 0, 0, NULL, NULL},
    {"output", "embeddings", K_BOOL, F(store_embeddings), 0, 0, NULL, NULL},
    {"output", "full_similarity", K_BOOL, F(full_similarity), 0, 0, NULL, NULL},
    {"output", "full_dtype", K_ENUM, F(full_dtype_f16), ENUM(DTYPE_NAMES, DTYPE_VALUES)},
    {"output", "compression", K_INT, F(compression), 0, 9, NULL, NULL},
    {"run", "backend", K_ENUM, F(backend), ENUM(BACKEND_NAMES, BACKEND_VALUES)},
    {"run", "precision", K_ENUM, F(precision), ENUM(PRECISION_NAMES, PRECISION_VALUES)},
    {"run", "image_batch", K_INT, F(image_batch), 1, 1 << 16, NULL, NULL},
    {"run", "text_batch", K_INT, F(text_batch), 1, 1 << 20, NULL, NULL},
    {"run", "image_shard", K_INT, F(image_shard), 1, 1 << 24, NULL, NULL},
    {"run", "text_shard", K_INT, F(text_shard), 1, 1 << 24, NULL, NULL},
    {"run", "tile_texts", K_INT, F(tile_texts), 1, 1 << 24, NULL, NULL},
    {"run", "seed", K_U64, F(seed), 0, 0, NULL, NULL},
    {"run", "threads", K_INT, F(threads), 0, 4096, NULL, NULL},
    {"run", "decode_threads", K_INT, F(decode_threads), 1, 256, NULL, NULL},
};
#undef F
#undef ENUM
#define N_KEYS ((int)(sizeof KEYS / sizeof KEYS[0]))
static const char *const SECTIONS[] = {"model", "dataset", "variants", "output", "run", NULL};

static void job_defaults(JobConfig *job) {
    job->quick_gelu = -1;
    job->dataset_kind = DATASET_COCO;
    job->crop_expand = 1.0;
    job->last_n = 40000; // CoN-CLIP's evaluation split: the last 40,000 entries of CC-Neg
    job->store_embeddings = 1;
    job->full_similarity = 0;
    job->full_dtype_f16 = 1;
    job->backend = BACKEND_AUTO;
    job->precision = PREC_AUTO; // fp16 on a GPU, fp32 on the CPU (backend_create)
    job->image_batch = 32;
    job->text_batch = 256;
    job->image_shard = 64;
    job->text_shard = 512;
    job->tile_texts = 4096;
    job->seed = 0;
    job->threads = 0;
    job->decode_threads = 2;
}

// One raw value per key: the file's, then replaced by an override.
typedef struct {
    char *value;       // NULL = not given
    int line;          // line in the job file (file values)
    int from_override; // 1: given by --set (relative paths: against the current directory)
} RawValue;

typedef struct {
    const char *path;
    RawValue raw[N_KEYS];
    int section_line[5];   // line of each [section] header, 0 = absent
} JobParse;

static int find_key(const char *section, const char *key) {
    for (int i = 0; i < N_KEYS; i++)
        if (!strcmp(KEYS[i].section, section) && !strcmp(KEYS[i].key, key)) return i;
    return -1;
}

static int find_section(const char *section) {
    for (int i = 0; SECTIONS[i]; i++)
        if (!strcmp(SECTIONS[i], section)) return i;
    return -1;
}

// "path, tokenizer, quick_gelu" for error messages that list what is allowed.
static void known_keys(const char *section, char *buf, size_t n) {
    buf[0] = '\0';
    for (int i = 0; i < N_KEYS; i++) {
        if (strcmp(KEYS[i].section, section) != 0) continue;
        size_t used = strlen(buf);
        snprintf(buf + used, n - used, "%s%s", used ? ", " : "", KEYS[i].key);
    }
}

static int job_on_line(void *user, const char *section, const char *key, const char *value, int line) {
    JobParse *p = user;
    if (!key) {  // a section header
        int s = find_section(section);
        if (s < 0)
            return cn_fail(CN_E_CONFIG, "%s:%d: [%s]: unknown section (known: model, dataset, variants, output, run)",
                           p->path, line, section);
        if (p->section_line[s])
            return cn_fail(CN_E_CONFIG, "%s:%d: [%s]: duplicate section (first at line %d)", p->path, line,
                           section, p->section_line[s]);
        p->section_line[s] = line;
        return CN_OK;
    }
    if (section[0] == '\0')
        return cn_fail(CN_E_CONFIG, "%s:%d: %s: key outside any [section]", p->path, line, key);
    int k = find_key(section, key);
    if (k < 0) {
        char known[256];
        known_keys(section, known, sizeof known);
        return cn_fail(CN_E_CONFIG, "%s:%d: [%s] %s: unknown key (known: %s)", p->path, line, section, key, known);
    }
    if (p->raw[k].value)
        return cn_fail(CN_E_CONFIG, "%s:%d: [%s] %s: duplicate key (first at line %d)", p->path, line, section,
                       key, p->raw[k].line);
    p->raw[k].value = strdupCheck(value);
    p->raw[k].line = line;
    return CN_OK;
}

// "section.key=value" from --set.
static int apply_override(JobParse *p, const char *ov) {
    const char *eq = strchr(ov, '=');
    const char *dot = strchr(ov, '.');
    if (!eq || !dot || dot > eq)
        return cn_fail(CN_E_CONFIG, "--set %s: expected section.key=value", ov);
    char name[256];
    if ((size_t)(eq - ov) >= sizeof name) return cn_fail(CN_E_CONFIG, "--set %.40s...: name too long", ov);
    snprintf(name, sizeof name, "%.*s", (int)(eq - ov), ov);
    for (size_t n = strlen(name); n > 0 && isspace((unsigned char)name[n - 1]); n--) name[n - 1] = '\0';
    char *d = strchr(name, '.');
    *d = '\0';
    const char *section = name, *key = d + 1;
    if (find_section(section) < 0)
        return cn_fail(CN_E_CONFIG, "--set %s.%s: unknown section (known: model, dataset, variants, output, run)",
                       section, key);
    int k = find_key(section, key);
    if (k < 0) {
        char known[256];
        known_keys(section, known, sizeof known);
        return cn_fail(CN_E_CONFIG, "--set %s.%s: unknown key (known: %s)", section, key, known);
    }
    const char *value = eq + 1;
    while (isspace((unsigned char)*value)) value++;
    free(p->raw[k].value);  // a later --set wins over the file and over an earlier --set
    p->raw[k].value = strdupCheck(value);
    size_t n = strlen(p->raw[k].value);
    while (n > 0 && isspace((unsigned char)p->raw[k].value[n - 1])) p->raw[k].value[--n] = '\0';
    p->raw[k].from_override = 1;
    return CN_OK;
}

// Where a value came from, for error messages: "job.ini:12: [run] seed" or "--set run.seed".
static void value_label(const JobParse *p, int k, char *buf, size_t n) {
    const RawValue *r = &p->raw[k];
    if (r->from_override) snprintf(buf, n, "--set %s.%s", KEYS[k].section, KEYS[k].key);
    else snprintf(buf, n, "%s:%d: [%s] %s", p->path, r->line, KEYS[k].section, KEYS[k].key);
}

// ---------------------------------------------------------------------------------------------
// ${VAR} and ${VAR:-default} expansion (the default may itself contain ${...})
// ---------------------------------------------------------------------------------------------

typedef struct {
    char *buf;
    size_t len, cap;
} StrBuf;

static void sb_add(StrBuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        b->cap = CN_MAX(2 * b->cap, b->len + n + 64);
        b->buf = reallocCheck(b->buf, b->cap);
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

// Expands s[0..n) into b. On error writes the reason to err and returns -1.
static int expand_env(const char *s, size_t n, StrBuf *b, char *err, size_t errn, int depth) {
    if (depth > 8) return snprintf(err, errn, "${...} nested too deeply"), -1;
    size_t i = 0;
    while (i < n) {
        if (s[i] != '$' || i + 1 >= n || s[i + 1] != '{') {
            sb_add(b, s + i, 1);
            i++;
            continue;
        }
        // Find the matching '}' (defaults may nest ${...}).
        size_t j = i + 2;
        int level = 1;
        for (; j < n; j++) {
            if (s[j] == '$' && j + 1 < n && s[j + 1] == '{') level++, j++;
            else if (s[j] == '}' && --level == 0) break;
        }
        if (j >= n) return snprintf(err, errn, "unterminated ${ in '%.*s'", (int)n, s), -1;
        const char *name = s + i + 2;
        size_t inner = j - (i + 2);
        const char *sep = NULL;
        for (size_t q = 0; q + 1 < inner; q++)
            if (name[q] == ':' && name[q + 1] == '-') { sep = name + q; break; }
        size_t name_len = sep ? (size_t)(sep - name) : inner;
        if (name_len == 0) return snprintf(err, errn, "empty variable name in ${}"), -1;
        if (name_len > 100) return snprintf(err, errn, "variable name too long in ${...}"), -1;
        for (size_t q = 0; q < name_len; q++)
            if (!(isalnum((unsigned char)name[q]) || name[q] == '_'))
                return snprintf(err, errn, "bad variable name '%.*s' in ${...}", (int)name_len, name), -1;
        char var[128];
        snprintf(var, sizeof var, "%.*s", (int)name_len, name);
        const char *env = getenv(var);
        if (env && (env[0] || !sep)) {
            sb_add(b, env, strlen(env));
        } else if (sep) {  // like the shell: ${VAR:-x} uses x when VAR is unset or empty
            const char *def = sep + 2;
            if (expand_env(def, (size_t)(name + inner - def), b, err, errn, depth + 1) < 0) return -1;
        } else {
            return snprintf(err, errn, "environment variable %s is not set (use ${%s:-default})", var, var), -1;
        }
        i = j + 1;
    }
    if (!b->buf) sb_add(b, "", 0);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Converting and checking one value
// ---------------------------------------------------------------------------------------------

static int parse_int(const char *s, long long *out) {
    if (!*s) return -1;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno || *end != '\0' || end == s) return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out) {
    static const char *const T[] = {"true", "yes", "on", "1"}, *const FLS[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(s, T[i])) return *out = 1, 0;
        if (!strcasecmp(s, FLS[i])) return *out = 0, 0;
    }
    return -1;
}

// Relative paths: against the job file's folder (file values) or the current directory (--set).
static char *resolve_path(const char *job_dir, const char *value, int from_override) {
    if (value[0] == '/' || from_override || !job_dir[0]) return strdupCheck(value);
    size_t n = strlen(job_dir) + strlen(value) + 2;
    char *p = mallocCheck(n);
    snprintf(p, n, "%s/%s", job_dir, value);
    return p;
}

static int check_path(KeyKind kind, const char *path, const char *label) {
    struct stat st;
    if (kind == K_OUTPATH) {
        // An output that cannot be created is an I/O failure (exit 6, docs/cli.md), found before any work.
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return cn_fail(CN_E_IO, "%s: '%s' is a folder (expected an output file name)", label, path);
        const char *slash = strrchr(path, '/');
        if (!slash) return CN_OK;
        char dir[4096];
        snprintf(dir, sizeof dir, "%.*s", (int)(slash == path ? 1 : slash - path), path);
        if (stat(dir, &st) != 0)
            return cn_fail(CN_E_IO, "%s: cannot create '%s': folder '%s' does not exist (%s)", label, path, dir,
                           strerror(errno));
        if (!S_ISDIR(st.st_mode))
            return cn_fail(CN_E_IO, "%s: cannot create '%s': '%s' is not a folder (%s)", label, path, dir,
                           strerror(ENOTDIR));
        return CN_OK;
    }
    if (stat(path, &st) != 0)
        return cn_fail(CN_E_CONFIG, "%s: '%s' does not exist (%s)", label, path, strerror(errno));
    if (kind == K_FILE && !S_ISREG(st.st_mode))
        return cn_fail(CN_E_CONFIG, "%s: '%s' is not a file", label, path);
    if (kind == K_DIR && !S_ISDIR(st.st_mode))
        return cn_fail(CN_E_CONFIG, "%s: '%s' is not a folder", label, path);
    return CN_OK;
}

static int apply_value(JobConfig *job, const JobParse *p, int k, const char *job_dir) {
    const KeySpec *spec = &KEYS[k];
    const RawValue *raw = &p->raw[k];
    char label[512], err[512];
    value_label(p, k, label, sizeof label);
    StrBuf b = {0};
    if (expand_env(raw->value, strlen(raw->value), &b, err, sizeof err, 0) < 0) {
        free(b.buf);
        return cn_fail(CN_E_CONFIG, "%s: %s", label, err);
    }
    char *v = b.buf;
    char *field = (char *)job + spec->offset;
    int rc = CN_OK;
    if (v[0] == '\0') {  // an empty value means "not given" (e.g. instances = ${INSTANCES:-})
        free(v);
        return CN_OK;
    }
    switch (spec->kind) {
    case K_FILE:
    case K_DIR:
    case K_ANYPATH:
    case K_OUTPATH: {
        char *path = resolve_path(job_dir, v, raw->from_override);
        rc = check_path(spec->kind, path, label);
        if (rc != CN_OK) free(path);
        else *(char **)field = path;
        break;
    }
    case K_STRING:
        *(char **)field = strdupCheck(v);
        break;
    case K_INT: {
        long long x;
        if (parse_int(v, &x) < 0) rc = cn_fail(CN_E_CONFIG, "%s: expected an integer, got '%s'", label, v);
        else if (x < spec->min) rc = cn_fail(CN_E_CONFIG, "%s: must be >= %lld (got %lld)", label, spec->min, x);
        else if (x > spec->max) rc = cn_fail(CN_E_CONFIG, "%s: must be <= %lld (got %lld)", label, spec->max, x);
        else *(int *)field = (int)x;
        break;
    }
    case K_U64: {
        errno = 0;
        char *end = NULL;
        unsigned long long x = strtoull(v, &end, 10);
        if (!isdigit((unsigned char)v[0]) || errno || *end != '\0')
            rc = cn_fail(CN_E_CONFIG, "%s: expected an integer in [0, 2^64), got '%s'", label, v);
        else *(uint64_t *)field = (uint64_t)x;
        break;
    }
    case K_BOOL: {
        int x;
        if (parse_bool(v, &x) < 0)
            rc = cn_fail(CN_E_CONFIG, "%s: expected true or false (or yes/no, on/off, 1/0), got '%s'", label, v);
        else *(int *)field = x;
        break;
    }
    case K_DOUBLE: {
        char *end = NULL;
        errno = 0;
        double x = strtod(v, &end);
        if (errno || end == v || *end != '\0' || !isfinite(x))
            rc = cn_fail(CN_E_CONFIG, "%s: expected a number, got '%s'", label, v);
        else if (x < (double)spec->min || x > (double)spec->max)
            rc = cn_fail(CN_E_CONFIG, "%s: must be in [%lld, %lld] (got %s)", label, spec->min, spec->max, v);
        else *(double *)field = x;
        break;
    }
    case K_ENUM: {
        int found = -1;
        char names[256] = "";
        for (int i = 0; spec->enum_names[i]; i++) {
            if (!strcasecmp(v, spec->enum_names[i])) found = i;
            size_t used = strlen(names);
            snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", spec->enum_names[i]);
        }
        if (found < 0) rc = cn_fail(CN_E_CONFIG, "%s: expected one of %s, got '%s'", label, names, v);
        else *(int *)field = spec->enum_values[found];
        break;
    }
    }
    free(v);
    return rc;
}

// A key that must be present: name the section (or the file) it is missing from.
static int require(const JobConfig *job, const JobParse *p, const char *section, const char *key,
                   const char *why) {
    int k = find_key(section, key);
    if (*(char *const *)((const char *)job + KEYS[k].offset)) return CN_OK;
    int s = find_section(section);
    if (p->section_line[s])
        return cn_fail(CN_E_CONFIG, "%s:%d: [%s] %s: required key missing%s", p->path, p->section_line[s], section,
                       key, why);
    return cn_fail(CN_E_CONFIG, "%s: [%s] %s: required key missing (no [%s] section)%s", p->path, section, key,
                   section, why);
}

static int cross_checks(JobConfig *job, const JobParse *p) {
    int rc;
    if ((rc = require(job, p, "model", "path", "")) != CN_OK) return rc;
    if (job->dataset_kind == DATASET_COCO) {
        if ((rc = require(job, p, "dataset", "captions", " (format = coco)")) != CN_OK) return rc;
        if ((rc = require(job, p, "dataset", "images", " (format = coco)")) != CN_OK) return rc;
    } else if (job->dataset_kind == DATASET_CLASSIFY) {
        if ((rc = require(job, p, "dataset", "path", " (format = classification)")) != CN_OK) return rc;
        if ((rc = require(job, p, "dataset", "templates", " (format = classification)")) != CN_OK) return rc;
    } else if ((job->dataset_kind >= DATASET_NEGBENCH_MCQ && job->dataset_kind <= DATASET_SUGARCREPE) ||
               job->dataset_kind == DATASET_CCNEG) { // a benchmark's published file (docs/benchmarks.md)
        char why[64];
        snprintf(why, sizeof why, " (format = %s)", FORMAT_NAMES[job->dataset_kind]);
        if ((rc = require(job, p, "dataset", "path", why)) != CN_OK) return rc;
        if ((rc = require(job, p, "dataset", "images", why)) != CN_OK) return rc;
    } else {
        const char *why = job->dataset_kind == DATASET_ITEMS ? " (format = items)" : " (format = jsonl)";
        if ((rc = require(job, p, "dataset", "manifest", why)) != CN_OK) return rc;
    }
    if ((rc = require(job, p, "variants", "file", "")) != CN_OK) return rc;
    if (job->backend == BACKEND_CPU && job->precision != PREC_FP32 && job->precision != PREC_AUTO) {
        int k = find_key("run", "precision");
        char label[512];
        value_label(p, k, label, sizeof label);
        return cn_fail(CN_E_CONFIG, "%s: the cpu backend computes in fp32 only (set backend = cuda or auto)", label);
    }
    // Load the variants once: a broken variants file is a broken job.
    VariantSet vs = {0};
    if ((rc = variants_load(&vs, job->variants_file)) != CN_OK) return rc;
    if (job->base_variant) {
        int found = -1;
        for (int i = 0; i < vs.n; i++)
            if (!strcmp(vs.items[i].name, job->base_variant)) found = i;
        char label[512];
        value_label(p, find_key("variants", "base_variant"), label, sizeof label);
        if (found < 0) rc = cn_fail(CN_E_CONFIG, "%s: no variant named '%s' in %s", label, job->base_variant, vs.path);
        else if (vs.items[found].polarity != POLARITY_POSITIVE)
            rc = cn_fail(CN_E_CONFIG, "%s: variant '%s' is not positive (the base must be a true caption)", label,
                         job->base_variant);
    } else {
        for (int i = 0; i < vs.n && !job->base_variant; i++)
            if (vs.items[i].polarity == POLARITY_POSITIVE) job->base_variant = strdupCheck(vs.items[i].name);
    }
    variants_free(&vs);
    return rc;
}

// The job text for provenance, with the overrides appended as comment lines.
static char *provenance_text(const char *text, const char *const *overrides) {
    StrBuf b = {0};
    sb_add(&b, text, strlen(text));
    if (overrides && overrides[0]) {
        if (b.len && b.buf[b.len - 1] != '\n') sb_add(&b, "\n", 1);
        const char *head = "; overrides from the command line (--set), applied after the file:\n";
        sb_add(&b, head, strlen(head));
        for (int i = 0; overrides[i]; i++) {
            sb_add(&b, "; --set ", 8);
            // Keep the comment on one line whatever the override holds.
            for (const char *c = overrides[i]; *c; c++) sb_add(&b, (*c == '\n' || *c == '\r') ? " " : c, 1);
            sb_add(&b, "\n", 1);
        }
    }
    return b.buf;
}

void job_free(JobConfig *job) {
    if (!job) return;
    free(job->job_path);
    free(job->job_text);
    free(job->model_path);
    free(job->tokenizer_path);
    free(job->state_key);
    free(job->strip_prefix);
    free(job->captions_json);
    free(job->instances_json);
    free(job->images_dir);
    free(job->manifest);
    free(job->dataset_path);
    free(job->image_prefix);
    free(job->classnames);
    free(job->templates);
    free(job->negated_templates);
    free(job->variants_file);
    free(job->base_variant);
    free(job->output_path);
    memset(job, 0, sizeof *job);
}

int job_load(JobConfig *job, const char *path, const char *const *overrides) {
    memset(job, 0, sizeof *job);
    job_defaults(job);
    job->job_path = strdupCheck(path);
    JobParse p = {.path = path};
    char *text = NULL;
    int rc = cn_read_file(path, &text, NULL);
    if (rc != CN_OK) rc = CN_E_CONFIG;  // cn_read_file's message stands, as a job error
    if (rc == CN_OK) rc = ini_parse_text(path, text, job_on_line, &p);
    for (int i = 0; rc == CN_OK && overrides && overrides[i]; i++) rc = apply_override(&p, overrides[i]);
    // The job's folder, for relative paths.
    char job_dir[4096] = "";
    const char *slash = strrchr(path, '/');
    if (slash) snprintf(job_dir, sizeof job_dir, "%.*s", (int)(slash == path ? 1 : slash - path), path);
    for (int k = 0; rc == CN_OK && k < N_KEYS; k++)
        if (p.raw[k].value) rc = apply_value(job, &p, k, job_dir);
    if (rc == CN_OK) rc = cross_checks(job, &p);
    if (rc == CN_OK) job->job_text = provenance_text(text, overrides);
    for (int k = 0; k < N_KEYS; k++) free(p.raw[k].value);
    free(text);
    if (rc != CN_OK) job_free(job);
    return rc;
}
