// variants.c — caption variants: the variants file (INI, one section per variant) and rendering a
// template for one caption. Placeholders and rules are documented in docs/variants.md; subject
// detection and swapping live in variants_subject.c.
#include "clipneg/variants.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "ini.h"

typedef struct {
    const char *name;
    unsigned bit;
} Placeholder;

static const Placeholder PLACEHOLDERS[] = {
    {"caption", VAR_USES_CAPTION}, {"caption_lc", VAR_USES_CAPTION_LC}, {"swap", VAR_USES_SWAP},
    {"swap_lc", VAR_USES_SWAP_LC}, {"subject", VAR_USES_SUBJECT},     {"other", VAR_USES_OTHER},
    {"a_other", VAR_USES_A_OTHER}, {"negative", VAR_USES_NEGATIVE},
};
#define N_PLACEHOLDERS ((int)(sizeof PLACEHOLDERS / sizeof PLACEHOLDERS[0]))
#define USES_CAPTION_TEXT (VAR_USES_CAPTION | VAR_USES_CAPTION_LC | VAR_USES_SWAP | VAR_USES_SWAP_LC | \
                           VAR_USES_SUBJECT | VAR_USES_OTHER | VAR_USES_A_OTHER)
#define USES_SWAP (VAR_USES_SWAP | VAR_USES_SWAP_LC | VAR_USES_OTHER | VAR_USES_A_OTHER)

const char *polarity_name(Polarity p) {
    return p == POLARITY_POSITIVE ? "positive" : p == POLARITY_NEGATIVE ? "negative" : "other";
}

// Walks a template: calls `emit` for literal text and placeholders. Returns 0, or -1 with a reason
// in err (unknown placeholder, unmatched brace). Shared by validation and rendering so that the
// two can never disagree about what a template means.
typedef void (*EmitFn)(void *ctx, const char *text, size_t n, int placeholder);

static int walk_template(const char *t, EmitFn emit, void *ctx, char *err, size_t errn) {
    const char *lit = t;
    for (const char *p = t; *p;) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {  // escaped brace
            emit(ctx, lit, (size_t)(p - lit) + 1, -1);
            p += 2;
            lit = p;
            continue;
        }
        if (*p == '}') return snprintf(err, errn, "unmatched '}' (write '}}' for a literal brace)"), -1;
        if (*p != '{') { p++; continue; }
        const char *close = strchr(p, '}');
        const char *reopen = strchr(p + 1, '{');
        if (!close || (reopen && reopen < close))
            return snprintf(err, errn, "unmatched '{' (write '{{' for a literal brace)"), -1;
        size_t n = (size_t)(close - p - 1);
        int found = -1;
        for (int i = 0; i < N_PLACEHOLDERS; i++)
            if (strlen(PLACEHOLDERS[i].name) == n && !strncmp(PLACEHOLDERS[i].name, p + 1, n)) found = i;
        if (found < 0)
            return snprintf(err, errn,
                            "unknown placeholder {%.*s} (known: {caption} {caption_lc} {swap} {swap_lc} {subject} "
                            "{other} {a_other} {negative})",
                            (int)n, p + 1),
                   -1;
        emit(ctx, lit, (size_t)(p - lit), -1);
        emit(ctx, NULL, 0, found);
        p = close + 1;
        lit = p;
    }
    emit(ctx, lit, strlen(lit), -1);
    return 0;
}

static void emit_uses(void *ctx, const char *text, size_t n, int placeholder) {
    (void)text, (void)n;
    if (placeholder >= 0) *(unsigned *)ctx |= PLACEHOLDERS[placeholder].bit;
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

typedef struct {
    VariantSet *vs;
    int cap;
    int template_line, polarity_line, description_line;  // of the current variant, 0 = not seen
} VariantsParse;

static int valid_name(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '-' || *s == '.')) return 0;
    return 1;
}

// Checks done when a variant's section ends (the next header or the end of the file).
static int finish_variant(VariantsParse *p) {
    if (p->vs->n == 0) return CN_OK;
    Variant *v = &p->vs->items[p->vs->n - 1];
    if (!v->template_text)
        return cn_fail(CN_E_CONFIG, "%s:%d: [%s] template: required key missing", p->vs->path, v->line, v->name);
    return CN_OK;
}

// inih ends a value at a ';' that follows a blank (an inline comment). For a template that is a
// silent truncation, so look at the raw line: is there such a ';' after the '='?
static int cut_by_comment(const char *text, int line) {
    for (int l = 1; l < line && text; l++) {
        text = strchr(text, '\n');
        if (text) text++;
    }
    if (!text) return 0;
    const char *end = strchr(text, '\n');
    if (!end) end = text + strlen(text);
    const char *eq = memchr(text, '=', (size_t)(end - text));
    for (const char *p = eq ? eq + 1 : end; p < end; p++)
        if (*p == ';' && (p[-1] == ' ' || p[-1] == '\t')) return 1;
    return 0;
}

static int variants_on_line(void *user, const char *section, const char *key, const char *value, int line) {
    VariantsParse *p = user;
    VariantSet *vs = p->vs;
    if (!key) {  // a new [variant]
        int rc = finish_variant(p);
        if (rc != CN_OK) return rc;
        if (!valid_name(section))
            return cn_fail(CN_E_CONFIG, "%s:%d: [%s]: variant names may use letters, digits, '_', '-' and '.'",
                           vs->path, line, section);
        int dup = variants_find(vs, section);
        if (dup >= 0)
            return cn_fail(CN_E_CONFIG, "%s:%d: [%s]: duplicate variant (first at line %d)", vs->path, line, section,
                           vs->items[dup].line);
        if (vs->n == p->cap) vs->items = reallocCheck(vs->items, (p->cap = 2 * p->cap + 4) * sizeof *vs->items);
        Variant *v = &vs->items[vs->n++];
        memset(v, 0, sizeof *v);
        v->name = strdupCheck(section);
        v->polarity = POLARITY_POSITIVE;
        v->description = strdupCheck("");
        v->line = line;
        p->template_line = p->polarity_line = p->description_line = 0;
        return CN_OK;
    }
    if (section[0] == '\0' || vs->n == 0)
        return cn_fail(CN_E_CONFIG, "%s:%d: %s: key outside any [variant] section", vs->path, line, key);
    Variant *v = &vs->items[vs->n - 1];
    int *seen = !strcmp(key, "template")      ? &p->template_line
                : !strcmp(key, "polarity")    ? &p->polarity_line
                : !strcmp(key, "description") ? &p->description_line
                                              : NULL;
    if (!seen)
        return cn_fail(CN_E_CONFIG, "%s:%d: [%s] %s: unknown key (known: template, polarity, description)", vs->path,
                       line, v->name, key);
    if (*seen)
        return cn_fail(CN_E_CONFIG, "%s:%d: [%s] %s: duplicate key (first at line %d)", vs->path, line, v->name, key,
                       *seen);
    *seen = line;
    if (!strcmp(key, "template")) {
        if (!value[0]) return cn_fail(CN_E_CONFIG, "%s:%d: [%s] template: empty", vs->path, line, v->name);
        if (cut_by_comment(vs->text, line))
            return cn_fail(CN_E_CONFIG,
                           "%s:%d: [%s] template: ' ;' starts a comment in INI files, so the template would end "
                           "as '%s' (write ';' without the blank before it)",
                           vs->path, line, v->name, value);
        char err[256];
        unsigned uses = 0;
        if (walk_template(value, emit_uses, &uses, err, sizeof err) < 0)
            return cn_fail(CN_E_CONFIG, "%s:%d: [%s] template: %s", vs->path, line, v->name, err);
        v->template_text = strdupCheck(value);
        v->uses = uses;
    } else if (!strcmp(key, "polarity")) {
        if (!strcmp(value, "positive")) v->polarity = POLARITY_POSITIVE;
        else if (!strcmp(value, "negative")) v->polarity = POLARITY_NEGATIVE;
        else if (!strcmp(value, "other")) v->polarity = POLARITY_OTHER;
        else
            return cn_fail(CN_E_CONFIG, "%s:%d: [%s] polarity: expected positive, negative or other, got '%s'",
                           vs->path, line, v->name, value);
    } else {
        free(v->description);
        v->description = strdupCheck(value);
    }
    return CN_OK;
}

int variants_find(const VariantSet *vs, const char *name) {
    for (int i = 0; i < vs->n; i++)
        if (!strcmp(vs->items[i].name, name)) return i;
    return -1;
}

void variants_free(VariantSet *vs) {
    if (!vs) return;
    for (int i = 0; i < vs->n; i++) {
        free(vs->items[i].name);
        free(vs->items[i].template_text);
        free(vs->items[i].description);
    }
    free(vs->items);
    free(vs->path);
    free(vs->text);
    memset(vs, 0, sizeof *vs);
}

int variants_load(VariantSet *vs, const char *path) {
    memset(vs, 0, sizeof *vs);
    vs->path = strdupCheck(path);
    int rc = cn_read_file(path, &vs->text, NULL);
    if (rc != CN_OK) rc = CN_E_CONFIG;  // cn_read_file's message stands, as a config error
    VariantsParse p = {.vs = vs};
    if (rc == CN_OK) rc = ini_parse_text(path, vs->text, variants_on_line, &p);
    if (rc == CN_OK) rc = finish_variant(&p);
    if (rc == CN_OK && vs->n == 0)
        rc = cn_fail(CN_E_CONFIG, "%s: no variants (expected [name] sections with template = ...)", path);
    if (rc != CN_OK) variants_free(vs);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

static char *copy_span(const char *s, int start, int end) {
    char *out = mallocCheck((size_t)(end - start) + 1);
    memcpy(out, s + start, (size_t)(end - start));
    out[end - start] = '\0';
    return out;
}

// Copy of s without leading/trailing whitespace.
static char *trimmed(const char *s) {
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) n--;
    char *out = mallocCheck(n + 1);
    memcpy(out, s, n);
    out[n] = '\0';
    return out;
}

// {caption_lc}: trimmed, final periods (and the blanks around them) dropped, first letter lowered
// unless the first word is an acronym ("TV on a stand" stays as is).
static char *lower_caption(const char *s) {
    char *out = trimmed(s);
    size_t n = strlen(out);
    while (n > 0 && (out[n - 1] == '.' || isspace((unsigned char)out[n - 1]))) out[--n] = '\0';
    if (isupper((unsigned char)out[0]) && !isupper((unsigned char)out[1])) out[0] = (char)tolower((unsigned char)out[0]);
    return out;
}

typedef struct {
    char *buf;
    size_t len, cap;
    const char *values[N_PLACEHOLDERS];
} RenderCtx;

static void append(RenderCtx *r, const char *s, size_t n) {
    if (r->len + n + 1 > r->cap) {
        r->cap = CN_MAX(2 * r->cap, r->len + n + 64);
        r->buf = reallocCheck(r->buf, r->cap);
    }
    memcpy(r->buf + r->len, s, n);
    r->len += n;
    r->buf[r->len] = '\0';
}

static void emit_render(void *ctx, const char *text, size_t n, int placeholder) {
    RenderCtx *r = ctx;
    if (placeholder < 0) append(r, text, n);
    else append(r, r->values[placeholder], strlen(r->values[placeholder]));
}

static int placeholder_index(unsigned bit) {
    for (int i = 0; i < N_PLACEHOLDERS; i++)
        if (PLACEHOLDERS[i].bit == bit) return i;
    return -1;
}

int variant_render(const Variant *v, const Dataset *ds, int c, uint64_t seed, char **out) {
    *out = NULL;
    const DsCaption *cap = dataset_caption(ds, c);
    char *caption = trimmed(cap->text), *caption_lc = NULL, *negative = NULL, *swap_lc = NULL, *subject = NULL;
    SubjectSwap sw = {0};
    int status = TEXT_OK;
    if ((v->uses & USES_CAPTION_TEXT) && caption[0] == '\0') status = TEXT_EMPTY;
    if (status == TEXT_OK && (v->uses & VAR_USES_NEGATIVE)) {
        negative = cap->n_negatives > 0 ? trimmed(cap->negatives[0]) : NULL;
        if (!negative || !negative[0]) status = TEXT_NO_NEGATIVE;
    }
    if (status == TEXT_OK && (v->uses & USES_SWAP)) {
        status = subject_swap(ds, c, caption, seed, &sw);
        if (status == TEXT_OK) swap_lc = lower_caption(sw.swapped);
    } else if (status == TEXT_OK && (v->uses & VAR_USES_SUBJECT)) {
        int start, end;
        if (find_subject(ds, caption, &start, &end) < 0) status = TEXT_NO_SUBJECT;
        else subject = copy_span(caption, start, end);
    }
    if (status == TEXT_OK && (v->uses & VAR_USES_SUBJECT) && !subject)
        subject = copy_span(caption, sw.start, sw.end);
    if (status == TEXT_OK) {
        caption_lc = lower_caption(caption);
        RenderCtx r = {0};
        r.values[placeholder_index(VAR_USES_CAPTION)] = caption;
        r.values[placeholder_index(VAR_USES_CAPTION_LC)] = caption_lc;
        r.values[placeholder_index(VAR_USES_SWAP)] = sw.swapped ? sw.swapped : "";
        r.values[placeholder_index(VAR_USES_SWAP_LC)] = swap_lc ? swap_lc : "";
        r.values[placeholder_index(VAR_USES_SUBJECT)] = subject ? subject : "";
        r.values[placeholder_index(VAR_USES_OTHER)] = sw.other ? sw.other : "";
        r.values[placeholder_index(VAR_USES_A_OTHER)] = sw.a_other ? sw.a_other : "";
        r.values[placeholder_index(VAR_USES_NEGATIVE)] = negative ? negative : "";
        char err[256];
        if (walk_template(v->template_text, emit_render, &r, err, sizeof err) < 0)
            cn_die(CN_E_INTERNAL, "variant '%s': template changed after validation: %s", v->name, err);
        *out = r.buf ? r.buf : strdupCheck("");
    }
    free(caption);
    free(caption_lc);
    free(negative);
    free(swap_lc);
    free(subject);
    subject_swap_free(&sw);
    return status;
}
