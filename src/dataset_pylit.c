// dataset_pylit.c — NegBench's retrieval CSVs store `captions` (and the object columns) as the
// repr() of a Python list, which upstream turns back into a list with eval(). Here it is parsed,
// never evaluated: only a list of string literals is accepted (rules in dataset_bench_internal.h),
// with Python's own escape rules so that the texts are byte for byte what eval() returns.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "dataset_bench_internal.h"

typedef struct {
    const char *s;
    size_t len, pos;
    char *err;
    size_t errn;
    char *buf; // the string being decoded
    size_t n, cap;
} Lit;

static int lit_fail(Lit *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int lit_fail(Lit *L, const char *fmt, ...) {
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(L->err, L->errn, "%s (column %zu)", msg, L->pos + 1);
    return -1;
}

static void lit_put(Lit *L, char c) {
    if (L->n + 1 >= L->cap) L->buf = reallocCheck(L->buf, L->cap = 2 * L->cap + 64);
    L->buf[L->n++] = c;
}

static void lit_put_cp(Lit *L, uint32_t cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD; // a lone surrogate has no UTF-8 form
    if (cp < 0x80) {
        lit_put(L, (char)cp);
    } else if (cp < 0x800) {
        lit_put(L, (char)(0xC0 | cp >> 6)), lit_put(L, (char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        lit_put(L, (char)(0xE0 | cp >> 12)), lit_put(L, (char)(0x80 | ((cp >> 6) & 0x3F)));
        lit_put(L, (char)(0x80 | (cp & 0x3F)));
    } else {
        lit_put(L, (char)(0xF0 | cp >> 18)), lit_put(L, (char)(0x80 | ((cp >> 12) & 0x3F)));
        lit_put(L, (char)(0x80 | ((cp >> 6) & 0x3F))), lit_put(L, (char)(0x80 | (cp & 0x3F)));
    }
}

static void skip_space(Lit *L) {
    while (L->pos < L->len && strchr(" \t\r\n\f\v", L->s[L->pos]) && L->s[L->pos]) L->pos++;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// After a backslash (L->pos at the character after it) of a non-raw string.
static int lit_escape(Lit *L) {
    if (L->pos >= L->len) return lit_fail(L, "a string ends in a backslash");
    char c = L->s[L->pos++];
    static const char simple_in[] = "\\'\"abfnrtv", simple_out[] = "\\'\"\a\b\f\n\r\t\v";
    const char *hit = c ? strchr(simple_in, c) : NULL;
    if (hit) {
        lit_put(L, simple_out[hit - simple_in]);
        return 0;
    }
    if (c == '\n') return 0; // line continuation
    if (c == '\r') {
        if (L->pos < L->len && L->s[L->pos] == '\n') L->pos++;
        return 0;
    }
    if (c >= '0' && c <= '7') { // up to three octal digits
        uint32_t v = (uint32_t)(c - '0');
        for (int k = 0; k < 2 && L->pos < L->len && L->s[L->pos] >= '0' && L->s[L->pos] <= '7'; k++)
            v = v * 8 + (uint32_t)(L->s[L->pos++] - '0');
        lit_put_cp(L, v);
        return 0;
    }
    int digits = c == 'x' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : 0;
    if (digits) {
        uint32_t v = 0;
        for (int k = 0; k < digits; k++) {
            int h = L->pos < L->len ? hexval(L->s[L->pos]) : -1;
            if (h < 0) return lit_fail(L, "\\%c escape needs %d hex digits", c, digits);
            v = v * 16 + (uint32_t)h;
            L->pos++;
        }
        if (v > 0x10FFFF) return lit_fail(L, "\\U escape beyond U+10FFFF");
        lit_put_cp(L, v);
        return 0;
    }
    if (c == 'N') return lit_fail(L, "\\N{...} escapes are not supported");
    lit_put(L, '\\'); // unknown escape: Python keeps both characters
    lit_put(L, c);
    return 0;
}

// One string literal (with its prefix) appended to L->buf.
static int lit_string(Lit *L) {
    int raw = 0;
    for (int k = 0; k < 2 && L->pos < L->len && strchr("uUrRbBfF", L->s[L->pos]) && L->s[L->pos]; k++) {
        char p = L->s[L->pos];
        if (strchr("bBfF", p)) return lit_fail(L, "%c-prefixed literals are not plain strings", p);
        raw |= p == 'r' || p == 'R';
        L->pos++;
    }
    if (L->pos >= L->len || (L->s[L->pos] != '\'' && L->s[L->pos] != '"')) return lit_fail(L, "expected a string literal");
    char q = L->s[L->pos++];
    if (L->pos + 1 < L->len && L->s[L->pos] == q && L->s[L->pos + 1] == q)
        return lit_fail(L, "triple-quoted strings are not supported");
    for (;;) {
        if (L->pos >= L->len) return lit_fail(L, "a string is not closed");
        char c = L->s[L->pos++];
        if (c == q) return 0;
        if (c == '\n' || c == '\r') return lit_fail(L, "a line break inside a one-line string");
        if (c != '\\') {
            lit_put(L, c);
        } else if (raw) { // raw: the backslash stays and protects the next character from ending the string
            lit_put(L, c);
            if (L->pos < L->len) lit_put(L, L->s[L->pos++]);
        } else if (lit_escape(L)) {
            return -1;
        }
    }
}

void pylit_free(char **list, int n) {
    for (int i = 0; list && i < n; i++) free(list[i]);
    free(list);
}

int pylit_str_list(const char *s, size_t len, char ***out, int *n, char *err, size_t errn) {
    Lit L = {.s = s, .len = len, .err = err, .errn = errn};
    char **list = NULL;
    int cnt = 0, cap = 0, rc = 0;
    *out = NULL, *n = 0;
    skip_space(&L);
    if (L.pos >= len || s[L.pos] != '[') {
        rc = lit_fail(&L, "expected a Python list '[...]'");
        goto done;
    }
    L.pos++;
    for (;;) {
        skip_space(&L);
        if (L.pos < len && s[L.pos] == ']') break; // empty list or a trailing comma
        L.n = 0;
        do { // adjacent literals are one string
            if ((rc = lit_string(&L))) goto done;
            skip_space(&L);
        } while (L.pos < len && (s[L.pos] == '\'' || s[L.pos] == '"' || (s[L.pos] && strchr("uUrR", s[L.pos]))));
        lit_put(&L, '\0');
        if (strlen(L.buf) + 1 != L.n) {
            rc = lit_fail(&L, "a string holds a NUL character");
            goto done;
        }
        if (cnt == cap) list = reallocCheck(list, sizeof(char *) * (size_t)(cap = 2 * cap + 8));
        list[cnt++] = strdupCheck(L.buf);
        if (L.pos < len && s[L.pos] == ',') {
            L.pos++;
            continue;
        }
        if (L.pos < len && s[L.pos] == ']') break;
        rc = lit_fail(&L, "expected ',' or ']' after a string");
        goto done;
    }
    L.pos++;
    skip_space(&L);
    if (L.pos < len) rc = lit_fail(&L, "text after the closing ']'");
done:
    free(L.buf);
    if (rc) {
        pylit_free(list, cnt);
        return -1;
    }
    *out = list, *n = cnt;
    return 0;
}
