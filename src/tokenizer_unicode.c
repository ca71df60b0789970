// tokenizer_unicode.c — code point buffers, UTF-8 in/out, and the Unicode operations open_clip's cleaning
// uses: property lookup, str.lower(), str.strip() and NFC. All data comes from unicode_tables.c,
// generated from the Python reference, so "what counts as whitespace/letter/cased" is never guessed.
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "tokenizer_internal.h"

// ---- CpBuf ------------------------------------------------------------------------------------

void cpbuf_reserve(CpBuf *b, size_t cap) {
    if (cap <= b->cap) return;
    size_t n = b->cap ? b->cap : 64;
    while (n < cap) n *= 2;
    b->cp = reallocCheck(b->cp, n * sizeof(uint32_t));
    b->cap = n;
}

void cpbuf_push(CpBuf *b, uint32_t c) {
    if (b->len == b->cap) cpbuf_reserve(b, b->len + 1);
    b->cp[b->len++] = c;
}

void cpbuf_append(CpBuf *b, const uint32_t *cp, size_t n) {
    cpbuf_reserve(b, b->len + n);
    if (n) memcpy(b->cp + b->len, cp, n * sizeof(uint32_t));
    b->len += n;
}

void cpbuf_free(CpBuf *b) {
    free(b->cp);
    b->cp = NULL;
    b->len = b->cap = 0;
}

void cpbuf_swap(CpBuf *a, CpBuf *b) {
    CpBuf t = *a;
    *a = *b;
    *b = t;
}

int cpbuf_equal(const CpBuf *a, const CpBuf *b) {
    return a->len == b->len && (a->len == 0 || memcmp(a->cp, b->cp, a->len * sizeof(uint32_t)) == 0);
}

// ---- UTF-8 ------------------------------------------------------------------------------------

// Length of a well-formed sequence starting with lead byte `c`, or 0 if `c` can never start one,
// and the valid range of the second byte (Unicode Table 3-7).
static int utf8_lead(unsigned char c, unsigned char *lo, unsigned char *hi) {
    *lo = 0x80;
    *hi = 0xBF;
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;
    if (c < 0xE0) return 2;
    if (c < 0xF0) {
        if (c == 0xE0) *lo = 0xA0;
        if (c == 0xED) *hi = 0x9F; // no surrogates
        return 3;
    }
    if (c < 0xF5) {
        if (c == 0xF0) *lo = 0x90;
        if (c == 0xF4) *hi = 0x8F; // <= U+10FFFF
        return 4;
    }
    return 0;
}

// Decode one sequence at s[0..n). Returns bytes consumed (>= 1); *cp = code point, or 0xFFFFFFFF when
// s starts with an invalid maximal subpart of that many bytes (CPython's "replace" granularity).
static size_t utf8_step(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned char lo, hi;
    int need = utf8_lead(s[0], &lo, &hi);
    if (need == 1) {
        *cp = s[0];
        return 1;
    }
    *cp = 0xFFFFFFFFu;
    if (need == 0) return 1;
    uint32_t c = s[0] & (0x7F >> need);
    for (int k = 1; k < need; k++) {
        if ((size_t)k >= n) return (size_t)k; // truncated: the valid prefix is one error
        unsigned char b = s[k];
        unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
        if (b < l || b > h) return (size_t)k;
        c = (c << 6) | (b & 0x3F);
    }
    *cp = c;
    return (size_t)need;
}

void utf8_decode_replace(const unsigned char *s, size_t n, CpBuf *out) {
    out->len = 0;
    cpbuf_reserve(out, n + 1);
    size_t i = 0;
    while (i < n) {
        uint32_t c;
        i += utf8_step(s + i, n - i, &c);
        out->cp[out->len++] = c == 0xFFFFFFFFu ? 0xFFFD : c;
    }
}

int utf8_decode_strict(const unsigned char *s, size_t n, CpBuf *out) {
    out->len = 0;
    cpbuf_reserve(out, n + 1);
    size_t i = 0;
    while (i < n) {
        uint32_t c;
        i += utf8_step(s + i, n - i, &c);
        if (c == 0xFFFFFFFFu) return -1;
        out->cp[out->len++] = c;
    }
    return 0;
}

int utf8_encode_one(uint32_t c, unsigned char out[4]) {
    if (c < 0x80) {
        out[0] = (unsigned char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (unsigned char)(0xC0 | (c >> 6));
        out[1] = (unsigned char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (c >> 12));
        out[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (c >> 18));
    out[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (c & 0x3F));
    return 4;
}

// ---- property lookups -------------------------------------------------------------------------

static uint32_t range_lookup(const UniRange *r, int count, uint32_t c) {
    int lo = 0, hi = count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < r[mid].lo) hi = mid - 1;
        else if (c > r[mid].hi) lo = mid + 1;
        else return r[mid].value;
    }
    return 0;
}

static const UniPair *pair_lookup(const UniPair *p, int count, uint32_t key) {
    int lo = 0, hi = count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (key < p[mid].key) hi = mid - 1;
        else if (key > p[mid].key) lo = mid + 1;
        else return &p[mid];
    }
    return NULL;
}

uint32_t uni_props(uint32_t c) {
    if (c < 256) return uni_prop_latin1[c]; // captions are mostly ASCII: skip the ~12-step search
    return range_lookup(uni_prop_ranges, uni_prop_ranges_count, c);
}

uint32_t uni_ccc(uint32_t c) {
    if (c < 0x300) return 0; // nothing below U+0300 combines
    return range_lookup(uni_ccc_ranges, uni_ccc_ranges_count, c);
}

void uni_strip(CpBuf *b) {
    size_t start = 0, end = b->len;
    while (start < end && (uni_props(b->cp[start]) & UP_PY_SPACE)) start++;
    while (end > start && (uni_props(b->cp[end - 1]) & UP_PY_SPACE)) end--;
    if (start) memmove(b->cp, b->cp + start, (end - start) * sizeof(uint32_t));
    b->len = end - start;
}

// ---- str.lower() ------------------------------------------------------------------------------

// CPython's handle_capital_sigma: U+03A3 lowercases to final sigma U+03C2 when preceded by a cased
// letter (skipping case-ignorables) and not followed by one (again skipping case-ignorables).
static int final_sigma(const uint32_t *s, size_t n, size_t i) {
    size_t j = i;
    uint32_t p = 0;
    while (j > 0) {
        p = uni_props(s[j - 1]);
        if (!(p & UP_CASE_IGNORABLE)) break;
        j--;
    }
    if (j == 0 || !(p & UP_CASED)) return 0;
    for (j = i + 1; j < n; j++) {
        p = uni_props(s[j]);
        if (!(p & UP_CASE_IGNORABLE)) return !(p & UP_CASED);
    }
    return 1;
}

void uni_lower(const CpBuf *in, CpBuf *out) {
    out->len = 0;
    cpbuf_reserve(out, in->len + 8);
    for (size_t i = 0; i < in->len; i++) {
        uint32_t c = in->cp[i];
        if (c >= 'A' && c <= 'Z') {
            cpbuf_push(out, c + 32);
        } else if (c < 0xC0) {
            cpbuf_push(out, c); // no other lowercase mappings below U+00C0
        } else if (c == 0x130) { // the only multi-code-point lowercase mapping (SpecialCasing)
            cpbuf_push(out, 0x69);
            cpbuf_push(out, 0x307);
        } else if (c == 0x3A3) {
            cpbuf_push(out, final_sigma(in->cp, in->len, i) ? 0x3C2 : 0x3C3);
        } else {
            const UniPair *m = pair_lookup(uni_lower_map, uni_lower_map_count, c);
            cpbuf_push(out, m ? m->value : c);
        }
    }
}

// ---- NFC --------------------------------------------------------------------------------------

enum { SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7 };
enum { LCOUNT = 19, VCOUNT = 21, TCOUNT = 28, NCOUNT = VCOUNT * TCOUNT, SCOUNT = LCOUNT * NCOUNT };

static void decompose_one(uint32_t c, CpBuf *out) {
    if (c >= SBASE && c < SBASE + SCOUNT) {
        uint32_t s = c - SBASE;
        cpbuf_push(out, LBASE + s / NCOUNT);
        cpbuf_push(out, VBASE + (s % NCOUNT) / TCOUNT);
        if (s % TCOUNT) cpbuf_push(out, TBASE + s % TCOUNT);
        return;
    }
    if (c >= 0xC0) {
        int lo = 0, hi = uni_decomp_count - 1;
        while (lo <= hi) {
            int mid = (lo + hi) / 2;
            if (c < uni_decomp[mid].cp) hi = mid - 1;
            else if (c > uni_decomp[mid].cp) lo = mid + 1;
            else {
                cpbuf_append(out, uni_decomp_pool + uni_decomp[mid].offset, uni_decomp[mid].len);
                return;
            }
        }
    }
    cpbuf_push(out, c);
}

static uint32_t compose_pair(uint32_t a, uint32_t b) {
    if (a >= LBASE && a < LBASE + LCOUNT && b >= VBASE && b < VBASE + VCOUNT)
        return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT;
    if (a >= SBASE && a < SBASE + SCOUNT && (a - SBASE) % TCOUNT == 0 && b > TBASE && b < TBASE + TCOUNT)
        return a + (b - TBASE);
    uint64_t key = ((uint64_t)a << 21) | b;
    int lo = 0, hi = uni_compose_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (key < uni_compose[mid].key) hi = mid - 1;
        else if (key > uni_compose[mid].key) lo = mid + 1;
        else return uni_compose[mid].composite;
    }
    return 0;
}

void uni_nfc(const CpBuf *in, CpBuf *out) {
    out->len = 0;
    // Fast path: text made only of code points below U+0300 is already NFC (nothing there is
    // composition-excluded, and every composition's second half is >= U+0300; checked in Python).
    int simple = 1;
    for (size_t i = 0; i < in->len && simple; i++) simple = in->cp[i] < 0x300;
    if (simple) {
        cpbuf_append(out, in->cp, in->len);
        return;
    }
    // 1. full canonical decomposition
    CpBuf d = {0};
    cpbuf_reserve(&d, in->len + 16);
    for (size_t i = 0; i < in->len; i++) decompose_one(in->cp[i], &d);
    // 2. canonical ordering: stable insertion sort of each run of non-starters by ccc
    for (size_t i = 1; i < d.len; i++) {
        uint32_t cc = uni_ccc(d.cp[i]);
        if (cc == 0) continue;
        size_t j = i;
        while (j > 0) {
            uint32_t pc = uni_ccc(d.cp[j - 1]);
            if (pc == 0 || pc <= cc) break;
            uint32_t t = d.cp[j];
            d.cp[j] = d.cp[j - 1];
            d.cp[j - 1] = t;
            j--;
        }
    }
    // 3. canonical composition (UAX #15): each char combines with the last starter unless blocked,
    //    i.e. unless some char between them has ccc 0 or ccc >= its own.
    cpbuf_reserve(out, d.len);
    long starter = -1; // index in out of the last starter
    int last_cc = -1;  // ccc of the last char kept after that starter; -1: none (adjacent)
    for (size_t i = 0; i < d.len; i++) {
        uint32_t c = d.cp[i];
        int cc = (int)uni_ccc(c);
        if (starter >= 0 && (last_cc == -1 || (last_cc != 0 && last_cc < cc))) {
            uint32_t comp = compose_pair(out->cp[starter], c);
            if (comp) {
                out->cp[starter] = comp;
                continue;
            }
        }
        if (cc == 0) {
            starter = (long)out->len;
            last_cc = -1;
        } else {
            last_cc = cc;
        }
        out->cp[out->len++] = c;
    }
    cpbuf_free(&d);
}
