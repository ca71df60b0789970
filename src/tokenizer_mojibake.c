// tokenizer_mojibake.c — ftfy 6.1.x mojibake repair, as run by ftfy.fix_text inside open_clip's cleaning:
//   badness.is_bad                 the "this looks like mojibake" heuristic (BADNESS_RE)
//   fix_encoding                   re-encode in one of 9 single-byte charmaps and decode as UTF-8 (or
//                                  ftfy's "utf-8-variants"), with restore_byte_a0 and
//                                  replace_lossy_sequences; decode_inconsistent_utf8; the Latin-1 ->
//                                  windows-1252 step; fix_c1_controls
// Each Python regex is spelled out as a small matcher next to its source text. Character classes
// come from the generated tables (ftfy_char_cats), built from ftfy's own category strings.
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "tokenizer_internal.h"

// ---- character categories ---------------------------------------------------------------------

static uint32_t mb_cats(uint32_t c) {
    if (c < 0x20 || (c > 0x20 && c < 0x80) || c > 0xFFFF) return 0; // ' ' is a utf8_continuation
    int lo = 0, hi = ftfy_char_cats_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < ftfy_char_cats[mid].key) hi = mid - 1;
        else if (c > ftfy_char_cats[mid].key) lo = mid + 1;
        else return ftfy_char_cats[mid].value;
    }
    return 0;
}

static int in_list(uint32_t c, const uint32_t *list, int n) {
    for (int i = 0; i < n; i++)
        if (list[i] == c) return 1;
    return 0;
}
#define IN(c, ...) in_list((c), (const uint32_t[]){__VA_ARGS__}, \
                           (int)(sizeof((const uint32_t[]){__VA_ARGS__}) / sizeof(uint32_t)))

static int is_lower_az(uint32_t c) { return c >= 'a' && c <= 'z'; }
static int is_alpha_ascii(uint32_t c) { return is_lower_az(c) || (c >= 'A' && c <= 'Z'); }

// ---- badness.is_bad ---------------------------------------------------------------------------

enum { NONE = 0xFFFFFFFFu }; // "past the end": belongs to no class

// Does one of BADNESS_RE's alternatives match at s[i]? (is_bad only needs "anywhere", so the order
// of the alternatives does not matter.) The comments quote the alternatives.
static int bad_at(const uint32_t *s, size_t n, size_t i) {
    uint32_t c0 = s[i], c1 = i + 1 < n ? s[i + 1] : NONE, c2 = i + 2 < n ? s[i + 2] : NONE;
    uint32_t c3 = i + 3 < n ? s[i + 3] : NONE;
    uint32_t k0 = mb_cats(c0), k1 = c1 == NONE ? 0 : mb_cats(c1), k2 = c2 == NONE ? 0 : mb_cats(c2);
    uint32_t k3 = c3 == NONE ? 0 : mb_cats(c3);
    const uint32_t LA = MB_LOWER_ACCENTED, UA = MB_UPPER_ACCENTED, BOX = MB_BOX, SP = MB_START_PUNCT,
                   EP = MB_END_PUNCT, CUR = MB_CURRENCY, NUM = MB_NUMERIC, BAD = MB_BAD, C1 = MB_C1;

    if (k0 & C1) return 1; // [c1]
    // [bad lower_accented upper_accented box start_punct end_punct currency numeric] [bad]
    if ((k0 & (BAD | LA | UA | BOX | SP | EP | CUR | NUM)) && (k1 & BAD)) return 1;
    // [a-zA-Z] [lower_common upper_common] [bad]
    if (is_alpha_ascii(c0) && (k1 & (MB_LOWER_COMMON | MB_UPPER_COMMON)) && (k2 & BAD)) return 1;
    // [bad] [lower_accented upper_accented box start_punct end_punct currency numeric]
    if ((k0 & BAD) && (k1 & (LA | UA | BOX | SP | EP | CUR | NUM))) return 1;
    // [lower_accented lower_common box end_punct currency numeric] [upper_accented]
    if ((k0 & (LA | MB_LOWER_COMMON | BOX | EP | CUR | NUM)) && (k1 & UA)) return 1;
    // [box end_punct currency numeric] [lower_accented]
    if ((k0 & (BOX | EP | CUR | NUM)) && (k1 & LA)) return 1;
    // [lower_accented box end_punct] [currency]
    if ((k0 & (LA | BOX | EP)) && (k1 & CUR)) return 1;
    // \s [upper_accented] [currency]
    if ((uni_props(c0) & UP_PY_SPACE) && (k1 & UA) && (k2 & CUR)) return 1;
    // [upper_accented box] [numeric]
    if ((k0 & (UA | BOX)) && (k1 & NUM)) return 1;
    // [lower_accented upper_accented box currency end_punct] [start_punct] [numeric]
    if ((k0 & (LA | UA | BOX | CUR | EP)) && (k1 & SP) && (k2 & NUM)) return 1;
    // [lower_accented upper_accented currency numeric box] [end_punct] [start_punct]
    if ((k0 & (LA | UA | CUR | NUM | BOX)) && (k1 & EP) && (k2 & SP)) return 1;
    // [currency numeric box] [start_punct]
    if ((k0 & (CUR | NUM | BOX)) && (k1 & SP)) return 1;
    // [a-z] [upper_accented] [start_punct currency]
    if (is_lower_az(c0) && (k1 & UA) && (k2 & (SP | CUR))) return 1;
    // [box] [kaomoji]
    if ((k0 & BOX) && (k1 & MB_KAOMOJI)) return 1;
    // [lower_accented upper_accented currency numeric start_punct end_punct] [box]
    if ((k0 & (LA | UA | CUR | NUM | SP | EP)) && (k1 & BOX)) return 1;
    // [box] [end_punct]
    if ((k0 & BOX) && (k1 & EP)) return 1;
    // [lower_accented upper_accented] [end_punct] \w
    if ((k0 & (LA | UA)) && (k1 & EP) && c2 != NONE && (uni_props(c2) & UP_RE_WORD)) return 1;
    // [Œœ][^A-Za-z]
    if ((c0 == 0x152 || c0 == 0x153) && c1 != NONE && !is_alpha_ascii(c1)) return 1;
    // [ÂÃÎÐ][€Šš¢£Ÿž\xa0\xad®©°·»{start_punct}{end_punct}–—´]
    if (IN(c0, 0xC2, 0xC3, 0xCE, 0xD0) &&
        ((k1 & (SP | EP)) || IN(c1, 0x20AC, 0x160, 0x161, 0xA2, 0xA3, 0x178, 0x17E, 0xA0, 0xAD, 0xAE, 0xA9,
                                0xB0, 0xB7, 0xBB, 0x2013, 0x2014, 0xB4)))
        return 1;
    // × [²³]
    if (c0 == 0xD7 && (c1 == 0xB2 || c1 == 0xB3)) return 1;
    // [ØÙ] [{common}{currency}{bad}{numeric}{start_punct}ŸŠ®°µ»] twice
    {
        const uint32_t ar = MB_COMMON | CUR | BAD | NUM | SP;
        if ((c0 == 0xD8 || c0 == 0xD9) && ((k1 & ar) || IN(c1, 0x178, 0x160, 0xAE, 0xB0, 0xB5, 0xBB)) &&
            (c2 == 0xD8 || c2 == 0xD9) && ((k3 & ar) || IN(c3, 0x178, 0x160, 0xAE, 0xB0, 0xB5, 0xBB)))
            return 1;
    }
    // à[²µ¹¼½¾]
    if (c0 == 0xE0 && IN(c1, 0xB2, 0xB5, 0xB9, 0xBC, 0xBD, 0xBE)) return 1;
    // √[±∂†≠®™´≤≥¥µø]
    if (c0 == 0x221A && IN(c1, 0xB1, 0x2202, 0x2020, 0x2260, 0xAE, 0x2122, 0xB4, 0x2264, 0x2265, 0xA5, 0xB5, 0xF8))
        return 1;
    // ≈[°¢]
    if (c0 == 0x2248 && (c1 == 0xB0 || c1 == 0xA2)) return 1;
    // ‚Ä[ìîïòôúùû†°¢π]
    if (c0 == 0x201A && c1 == 0xC4 && IN(c2, 0xEC, 0xEE, 0xEF, 0xF2, 0xF4, 0xFA, 0xF9, 0xFB, 0x2020, 0xB0, 0xA2, 0x3C0))
        return 1;
    // ‚[âó][àä°ê]
    if (c0 == 0x201A && (c1 == 0xE2 || c1 == 0xF3) && IN(c2, 0xE0, 0xE4, 0xB0, 0xEA)) return 1;
    // вЂ
    if (c0 == 0x432 && c1 == 0x402) return 1;
    // [ВГРС][{c1}{bad}{start_punct}{end_punct}{currency}°µ][ВГРС]
    if (IN(c0, 0x412, 0x413, 0x420, 0x421) && ((k1 & (C1 | BAD | SP | EP | CUR)) || c1 == 0xB0 || c1 == 0xB5) &&
        IN(c2, 0x412, 0x413, 0x420, 0x421))
        return 1;
    // ГўВЂВ.[A-Za-z ]   ('.' is any character but '\n')
    if (c0 == 0x413 && c1 == 0x45E && c2 == 0x412 && c3 == 0x402 && i + 6 < n && s[i + 4] == 0x412 &&
        s[i + 5] != '\n' && (is_alpha_ascii(s[i + 6]) || s[i + 6] == ' '))
        return 1;
    // Ã[\xa0¡]
    if (c0 == 0xC3 && (c1 == 0xA0 || c1 == 0xA1)) return 1;
    // [a-z]\s?[ÃÂ][ ]
    if (is_lower_az(c0)) {
        if ((c1 == 0xC3 || c1 == 0xC2) && c2 == ' ') return 1;
        if (c1 != NONE && (uni_props(c1) & UP_PY_SPACE) && (c2 == 0xC3 || c2 == 0xC2) && c3 == ' ') return 1;
    }
    // ^[ÃÂ][ ]
    if (i == 0 && (c0 == 0xC3 || c0 == 0xC2) && c1 == ' ') return 1;
    // [a-z.,?!{end_punct}] Â [ {start_punct}{end_punct}]
    if ((is_lower_az(c0) || IN(c0, '.', ',', '?', '!') || (k0 & EP)) && c1 == 0xC2 &&
        (c2 == ' ' || (k2 & (SP | EP))))
        return 1;
    // β€[™\xa0Ά\xad®°]
    if (c0 == 0x3B2 && c1 == 0x20AC && IN(c2, 0x2122, 0xA0, 0x386, 0xAD, 0xAE, 0xB0)) return 1;
    // [ΒΓΞΟ][{c1}{bad}{start_punct}{end_punct}{currency}°][ΒΓΞΟ]
    if (IN(c0, 0x392, 0x393, 0x39E, 0x39F) && ((k1 & (C1 | BAD | SP | EP | CUR)) || c1 == 0xB0) &&
        IN(c2, 0x392, 0x393, 0x39E, 0x39F))
        return 1;
    return 0;
}

int ftfy_is_bad(const uint32_t *cp, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (bad_at(cp, n, i)) return 1;
    return 0;
}

// ---- bytes ------------------------------------------------------------------------------------

typedef struct {
    unsigned char *b;
    size_t len, cap;
} Bytes;

static void bytes_push(Bytes *x, unsigned char c) {
    if (x->len == x->cap) {
        x->cap = x->cap ? 2 * x->cap : 64;
        x->b = reallocCheck(x->b, x->cap);
    }
    x->b[x->len++] = c;
}

// A byte regex made of fixed-length sequences of byte classes, tried in order (Python's leftmost,
// first-alternative-wins semantics for alternations of fixed-length branches).
typedef struct {
    int nranges;
    unsigned char lo[6], hi[6];
} ByteClass;
typedef struct {
    int len;
    ByteClass cls[6];
} ByteSeq;

#define R1(a) {1, {a}, {a}}
#define RR(a, b) {1, {a}, {b}}
static int class_has(const ByteClass *c, unsigned char b) {
    for (int i = 0; i < c->nranges; i++)
        if (b >= c->lo[i] && b <= c->hi[i]) return 1;
    return 0;
}

// Length of the first alternative of `alts` matching at x[i], or 0.
static int seq_match(const ByteSeq *alts, int nalts, const unsigned char *x, size_t n, size_t i) {
    for (int a = 0; a < nalts; a++) {
        const ByteSeq *s = &alts[a];
        if (i + (size_t)s->len > n) continue;
        int k = 0;
        while (k < s->len && class_has(&s->cls[k], x[i + k])) k++;
        if (k == s->len) return s->len;
    }
    return 0;
}

// chardata.ALTERED_UTF8_RE
static const ByteSeq ALTERED_UTF8[] = {
    // [\xc2\xc3\xc5\xce\xd0\xd9][ ]
    {2, {{6, {0xC2, 0xC3, 0xC5, 0xCE, 0xD0, 0xD9}, {0xC2, 0xC3, 0xC5, 0xCE, 0xD0, 0xD9}}, R1(' ')}},
    // [\xe2\xe3][ ][\x80-\x84\x86-\x9f\xa1-\xbf]
    {3, {RR(0xE2, 0xE3), R1(' '), {3, {0x80, 0x86, 0xA1}, {0x84, 0x9F, 0xBF}}}},
    // [\xe0-\xe3][\x80-\x84\x86-\x9f\xa1-\xbf][ ]
    {3, {RR(0xE0, 0xE3), {3, {0x80, 0x86, 0xA1}, {0x84, 0x9F, 0xBF}}, R1(' ')}},
    // [\xf0][ ][\x80-\xbf][\x80-\xbf]
    {4, {R1(0xF0), R1(' '), RR(0x80, 0xBF), RR(0x80, 0xBF)}},
    // [\xf0][\x80-\xbf][ ][\x80-\xbf]
    {4, {R1(0xF0), RR(0x80, 0xBF), R1(' '), RR(0x80, 0xBF)}},
    // [\xf0][\x80-\xbf][\x80-\xbf][ ]
    {4, {R1(0xF0), RR(0x80, 0xBF), RR(0x80, 0xBF), R1(' ')}},
};

static int altered_utf8_match(const unsigned char *x, size_t n, size_t i) {
    return seq_match(ALTERED_UTF8, (int)(sizeof ALTERED_UTF8 / sizeof ALTERED_UTF8[0]), x, n, i);
}

// fixes.restore_byte_a0
static void restore_byte_a0(const Bytes *in, Bytes *out) {
    // A_GRAVE_WORD_RE = b"\xc3 (?! |quele|quela|quilo|s )" -> b"\xc3\xa0 "
    Bytes t = {0};
    for (size_t i = 0; i < in->len; i++) {
        unsigned char c = in->b[i];
        if (c == 0xC3 && i + 1 < in->len && in->b[i + 1] == ' ') {
            const unsigned char *r = in->b + i + 2;
            size_t left = in->len - (i + 2);
            int veto = (left >= 1 && r[0] == ' ') || (left >= 5 && (!memcmp(r, "quele", 5) || !memcmp(r, "quela", 5) ||
                                                                      !memcmp(r, "quilo", 5))) ||
                       (left >= 2 && !memcmp(r, "s ", 2));
            if (!veto) {
                bytes_push(&t, 0xC3);
                bytes_push(&t, 0xA0);
                bytes_push(&t, ' ');
                i++;
                continue;
            }
        }
        bytes_push(&t, c);
    }
    // ALTERED_UTF8_RE.sub(lambda m: m.group(0).replace(b"\x20", b"\xa0"), ...)
    out->len = 0;
    for (size_t i = 0; i < t.len;) {
        int m = altered_utf8_match(t.b, t.len, i);
        if (m) {
            for (int k = 0; k < m; k++) bytes_push(out, t.b[i + k] == ' ' ? 0xA0 : t.b[i + k]);
            i += (size_t)m;
        } else {
            bytes_push(out, t.b[i++]);
        }
    }
    free(t.b);
}

static int altered_utf8_search(const Bytes *x) {
    for (size_t i = 0; i < x->len; i++)
        if (altered_utf8_match(x->b, x->len, i)) return 1;
    return 0;
}

// chardata.LOSSY_UTF8_RE
static const ByteSeq LOSSY_UTF8[] = {
    {2, {RR(0xC2, 0xDF), R1(0x1A)}},                                                       // [\xc2-\xdf][\x1a]
    {2, {RR(0xC2, 0xC3), R1('?')}},                                                        // [\xc2-\xc3][?]
    {6, {R1(0xED), RR(0xA0, 0xAF), {2, {0x1A, '?'}, {0x1A, '?'}}, R1(0xED), RR(0xB0, 0xBF), // \xed[\xa0-\xaf][\x1a?]\xed
         {3, {0x1A, '?', 0x80}, {0x1A, '?', 0xBF}}}},                                      //   [\xb0-\xbf][\x1a?\x80-\xbf]
    {6, {R1(0xED), RR(0xA0, 0xAF), {3, {0x1A, '?', 0x80}, {0x1A, '?', 0xBF}}, R1(0xED),    // \xed[\xa0-\xaf][\x1a?\x80-\xbf]
         RR(0xB0, 0xBF), {2, {0x1A, '?'}, {0x1A, '?'}}}},                                  //   \xed[\xb0-\xbf][\x1a?]
    {3, {RR(0xE0, 0xEF), {2, {0x1A, '?'}, {0x1A, '?'}}, {2, {0x1A, 0x80}, {0x1A, 0xBF}}}}, // [\xe0-\xef][\x1a?][\x1a\x80-\xbf]
    {3, {RR(0xE0, 0xEF), {2, {0x1A, 0x80}, {0x1A, 0xBF}}, {2, {0x1A, '?'}, {0x1A, '?'}}}}, // [\xe0-\xef][\x1a\x80-\xbf][\x1a?]
    {4, {RR(0xF0, 0xF4), {2, {0x1A, '?'}, {0x1A, '?'}}, {2, {0x1A, 0x80}, {0x1A, 0xBF}},   // [\xf0-\xf4][\x1a?][\x1a\x80-\xbf]
         {2, {0x1A, 0x80}, {0x1A, 0xBF}}}},                                                //   [\x1a\x80-\xbf]
    {4, {RR(0xF0, 0xF4), {2, {0x1A, 0x80}, {0x1A, 0xBF}}, {2, {0x1A, '?'}, {0x1A, '?'}},   // [\xf0-\xf4][\x1a\x80-\xbf][\x1a?]
         {2, {0x1A, 0x80}, {0x1A, 0xBF}}}},                                                //   [\x1a\x80-\xbf]
    {4, {RR(0xF0, 0xF4), {2, {0x1A, 0x80}, {0x1A, 0xBF}}, {2, {0x1A, 0x80}, {0x1A, 0xBF}}, // [\xf0-\xf4][\x1a\x80-\xbf]
         {2, {0x1A, '?'}, {0x1A, '?'}}}},                                                  //   [\x1a\x80-\xbf][\x1a?]
    {1, {R1(0x1A)}},                                                                       // \x1a
};

// fixes.replace_lossy_sequences: LOSSY_UTF8_RE.sub(U+FFFD in UTF-8)
static void replace_lossy_sequences(const Bytes *in, Bytes *out) {
    out->len = 0;
    for (size_t i = 0; i < in->len;) {
        int m = seq_match(LOSSY_UTF8, (int)(sizeof LOSSY_UTF8 / sizeof LOSSY_UTF8[0]), in->b, in->len, i);
        if (m) {
            bytes_push(out, 0xEF);
            bytes_push(out, 0xBF);
            bytes_push(out, 0xBD);
            i += (size_t)m;
        } else {
            bytes_push(out, in->b[i++]);
        }
    }
}

// ---- ftfy's "utf-8-variants" codec (strict) -------------------------------------------------------

// Python's `$` in a bytes regex without MULTILINE: at the end, or before a final b"\n".
static int at_dollar(const unsigned char *x, size_t n, size_t p) { return p == n || (p + 1 == n && x[p] == '\n'); }

// Elements 1..5 of CESU8_EXPR = \xed([\xa0-\xaf]|$)([\x80-\xbf]|$)(\xed|$)([\xb0-\xbf]|$)([\x80-\xbf]|$)
static int cesu8_at(const unsigned char *x, size_t n, size_t p) {
    static const unsigned char lo[5] = {0xA0, 0x80, 0xED, 0xB0, 0x80}, hi[5] = {0xAF, 0xBF, 0xED, 0xBF, 0xBF};
    if (p >= n || x[p] != 0xED) return 0;
    for (int k = 0; k < 5; k++) {
        size_t q = p + 1 + (size_t)k;
        if (at_dollar(x, n, q)) return 1; // '$' matches here, and then at every later element too
        if (x[q] < lo[k] || x[q] > hi[k]) return 0;
    }
    return 1;
}

// Start of the first match of SPECIAL_BYTES_RE (NULL_EXPR | CESU8_EXPR | SURROGATE_EXPR) in x[from..n).
static size_t special_bytes_search(const unsigned char *x, size_t n, size_t from) {
    for (size_t p = from; p < n; p++) {
        if (x[p] == 0xC0 && ((p + 1 < n && x[p + 1] == 0x80) || at_dollar(x, n, p + 1))) return p; // \xc0(\x80|$)
        if (x[p] != 0xED) continue;
        if (cesu8_at(x, n, p)) return p;
        // \xed([\xa0-\xbf]|$)([\x80-\xbf]|$)
        if (at_dollar(x, n, p + 1)) return p;
        if (x[p + 1] >= 0xA0 && x[p + 1] <= 0xBF) {
            if (at_dollar(x, n, p + 2) || (x[p + 2] >= 0x80 && x[p + 2] <= 0xBF)) return p;
        }
    }
    return n;
}

// bytes.decode("utf-8-variants"); returns 0 or -1 (UnicodeDecodeError).
static int decode_utf8_variants(const unsigned char *x, size_t n, CpBuf *out) {
    out->len = 0;
    CpBuf part = {0};
    int rc = 0;
    size_t pos = 0;
    while (pos < n && rc == 0) {
        size_t cut = special_bytes_search(x, n, pos);
        if (cut > pos) { // plain UTF-8 before the special bytes
            rc = utf8_decode_strict(x + pos, cut - pos, &part);
            cpbuf_append(out, part.cp, part.len);
            pos = cut;
            continue;
        }
        size_t left = n - pos;
        const unsigned char *in = x + pos;
        if (in[0] == 0xC0) { // Java's two-byte NUL (also swallows a final "\n": ftfy quirk kept)
            if (left > 1) {
                cpbuf_push(out, 0);
                pos += 2;
            } else {
                rc = -1;
            }
        } else if (left < 6) {
            rc = utf8_decode_strict(in, left, &part); // always fails here: ED + invalid/truncated
            cpbuf_append(out, part.cp, part.len);
            pos = n;
        } else if (cesu8_at(in, left, 0)) { // CESU-8 surrogate pair -> one astral code point
            uint32_t cp = ((uint32_t)(in[1] & 0x0F) << 16) + ((uint32_t)(in[2] & 0x3F) << 10) +
                          ((uint32_t)(in[4] & 0x0F) << 6) + (uint32_t)(in[5] & 0x3F) + 0x10000;
            cpbuf_push(out, cp);
            pos += 6;
        } else {
            rc = -1; // a lone encoded surrogate: strict UTF-8 rejects it
        }
    }
    cpbuf_free(&part);
    return rc;
}

// ---- single-byte charmaps -----------------------------------------------------------------------

// chardata.possible_encoding + str.encode(charmap): returns 0 and fills `out`, or -1 if some
// character is not in the charmap.
static int charmap_encode(const CpBuf *text, int enc, Bytes *out) {
    const uint32_t *dec = ftfy_charmaps[enc];
    out->len = 0;
    for (size_t i = 0; i < text->len; i++) {
        uint32_t c = text->cp[i];
        if (c < 0x80 && c != 0x1A) {
            bytes_push(out, (unsigned char)c);
            continue;
        }
        int b = -1;
        if (dec[0x1A] == c) b = 0x1A;
        for (int k = 0x80; k < 0x100 && b < 0; k++)
            if (dec[k] == c) b = k;
        if (b < 0) return -1;
        bytes_push(out, (unsigned char)b);
    }
    return 0;
}

static int is_ascii(const CpBuf *t) {
    for (size_t i = 0; i < t->len; i++)
        if (t->cp[i] >= 0x80) return 0;
    return 1;
}

void ftfy_fix_c1_controls(const CpBuf *in, CpBuf *out) {
    out->len = 0;
    cpbuf_reserve(out, in->len + 1);
    for (size_t i = 0; i < in->len; i++) {
        uint32_t c = in->cp[i];
        // C1_CONTROL_RE [\x80-\x9f] -> .encode("latin-1").decode("sloppy-windows-1252")
        cpbuf_push(out, (c >= 0x80 && c <= 0x9F) ? ftfy_charmaps[1][c] : c);
    }
}

// ---- decode_inconsistent_utf8 ---------------------------------------------------------------------

// UTF8_DETECTOR_RE: (?<![cont_strict]) ([first2][cont] | [first3][cont]{2} | [first4][cont]{3})+
// Returns the match length at i (0: no match). Each repetition takes the first branch that fits;
// nothing follows the group, so Python never backtracks into it.
static size_t utf8_detector_at(const uint32_t *s, size_t n, size_t i) {
    static const uint32_t first[3] = {MB_UTF8_FIRST_OF_2, MB_UTF8_FIRST_OF_3, MB_UTF8_FIRST_OF_4};
    if (i > 0 && (mb_cats(s[i - 1]) & MB_UTF8_CONTINUATION_STRICT)) return 0;
    size_t q = i;
    while (q < n) {
        uint32_t k = mb_cats(s[q]);
        size_t step = 0;
        for (size_t want = 1; want <= 3 && !step; want++) { // continuation characters needed
            if (!(k & first[want - 1]) || q + want >= n) continue;
            size_t j = 1;
            while (j <= want && (mb_cats(s[q + j]) & MB_UTF8_CONTINUATION)) j++;
            if (j > want) step = want + 1;
        }
        if (!step) break;
        q += step;
    }
    return q - i;
}

static void fix_encoding_rec(const CpBuf *in, CpBuf *out);

// fixes.decode_inconsistent_utf8
static void decode_inconsistent_utf8(const CpBuf *in, CpBuf *out) {
    out->len = 0;
    CpBuf sub = {0}, fixed = {0};
    for (size_t i = 0; i < in->len;) {
        size_t m = utf8_detector_at(in->cp, in->len, i);
        if (!m) {
            cpbuf_push(out, in->cp[i++]);
            continue;
        }
        // fix only a strictly shorter substring that itself looks bad (no infinite recursion)
        if (m < in->len && ftfy_is_bad(in->cp + i, m)) {
            sub.len = 0;
            cpbuf_append(&sub, in->cp + i, m);
            fix_encoding_rec(&sub, &fixed);
            cpbuf_append(out, fixed.cp, fixed.len);
        } else {
            cpbuf_append(out, in->cp + i, m);
        }
        i += m;
    }
    cpbuf_free(&sub);
    cpbuf_free(&fixed);
}

// ---- fix_encoding -------------------------------------------------------------------------------

// ftfy._fix_encoding_one_step_and_explain (text part only). Writes the result to out.
static void fix_encoding_one_step(const CpBuf *text, CpBuf *out) {
    out->len = 0;
    if (text->len == 0 || is_ascii(text) || !ftfy_is_bad(text->cp, text->len)) {
        cpbuf_append(out, text->cp, text->len);
        return;
    }
    int possible_latin1 = 0;
    Bytes enc = {0}, tmp = {0};
    int done = 0;
    for (int e = 0; e < FTFY_N_CHARMAPS && !done; e++) {
        if (charmap_encode(text, e, &enc) != 0) continue;
        if (e == 0) possible_latin1 = 1;
        if (altered_utf8_search(&enc)) {
            restore_byte_a0(&enc, &tmp);
            Bytes t = enc;
            enc = tmp;
            tmp = t;
        }
        if (!strncmp(ftfy_charmap_names[e], "sloppy", 6)) {
            replace_lossy_sequences(&enc, &tmp);
            Bytes t = enc;
            enc = tmp;
            tmp = t;
        }
        int variants = memchr(enc.b, 0xED, enc.len) != NULL || memchr(enc.b, 0xC0, enc.len) != NULL;
        int rc = variants ? decode_utf8_variants(enc.b, enc.len, out) : utf8_decode_strict(enc.b, enc.len, out);
        if (rc == 0) done = 1;
    }
    free(enc.b);
    free(tmp.b);
    if (done) return;

    // Look for a-hat-euro sequences that remain, and fix them in isolation.
    int detector = 0;
    for (size_t i = 0; i < text->len && !detector; i++) detector = utf8_detector_at(text->cp, text->len, i) > 0;
    if (detector) {
        decode_inconsistent_utf8(text, out);
        if (!cpbuf_equal(text, out)) return;
    }
    // Latin-1 text with C1 controls: ftfy tests `"windows-1252" in possible_1byte_encodings`, which
    // is never true (the list holds "sloppy-windows-1252"), so it always tries the strict decode.
    if (possible_latin1) {
        out->len = 0;
        int ok = 1;
        for (size_t i = 0; i < text->len && ok; i++) {
            uint32_t c = text->cp[i]; // latin-1 encodable, so c < 0x100
            uint32_t d = ftfy_cp1252_strict[c];
            if (d == 0xFFFFFFFFu) ok = 0;
            else cpbuf_push(out, d);
        }
        if (ok && !cpbuf_equal(text, out)) return;
    }
    int has_c1 = 0;
    for (size_t i = 0; i < text->len && !has_c1; i++) has_c1 = text->cp[i] >= 0x80 && text->cp[i] <= 0x9F;
    if (has_c1) {
        ftfy_fix_c1_controls(text, out);
        return;
    }
    out->len = 0;
    cpbuf_append(out, text->cp, text->len);
}

// ftfy.fix_encoding: repeat one step until the text stops changing.
static void fix_encoding_rec(const CpBuf *in, CpBuf *out) {
    CpBuf text = {0}, next = {0};
    cpbuf_append(&text, in->cp, in->len);
    for (;;) {
        fix_encoding_one_step(&text, &next);
        if (cpbuf_equal(&text, &next)) break;
        cpbuf_swap(&text, &next);
    }
    out->len = 0;
    cpbuf_append(out, text.cp, text.len);
    cpbuf_free(&text);
    cpbuf_free(&next);
}

void ftfy_fix_encoding(const CpBuf *in, CpBuf *out) {
    if (is_ascii(in)) { // the common case: nothing to look at
        out->len = 0;
        cpbuf_append(out, in->cp, in->len);
        return;
    }
    fix_encoding_rec(in, out);
}
