// tokenizer_html.c — the two HTML unescapers in open_clip's cleaning, quirks included:
//  * Python's html.unescape (run twice by open_clip's basic_clean), HTML5 rules: numeric references
//    with the "invalid charref" table, named references with or without ';', and the longest-prefix
//    rule for legacy names ("&notit;" -> "¬it;").
//  * ftfy.fixes.unescape_html (inside ftfy.fix_text): only "&name;" / "&#...;" forms, plus all-caps
//    names such as "&EACUTE;"; numeric forms that html.unescape only half-decodes are left alone.
#include <string.h>

#include "tokenizer_internal.h"

static int is_ascii_digit(uint32_t c) { return c >= '0' && c <= '9'; }
static int is_ascii_alnum(uint32_t c) {
    return is_ascii_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static int hex_value(uint32_t c) {
    if (is_ascii_digit(c)) return (int)(c - '0');
    if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
    return -1;
}

// Look up an ASCII name given as code points in a table sorted by strcmp. Returns index or -1.
static int name_cmp(const char *name, const uint32_t *cp, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char a = (unsigned char)name[i];
        if (a == 0) return -1; // name shorter
        if (a != cp[i]) return a < cp[i] ? -1 : 1;
    }
    return name[n] ? 1 : 0;
}

static int html5_find(const uint32_t *cp, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (cp[i] > 0x7E) return -1; // all names are ASCII
    int lo = 0, hi = html5_entities_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = name_cmp(html5_entities[mid].name, cp, n);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

static void push_html5(CpBuf *out, int idx) {
    cpbuf_push(out, html5_entities[idx].cp[0]);
    if (html5_entities[idx].cp[1]) cpbuf_push(out, html5_entities[idx].cp[1]);
}

// html._replace_charref for a numeric reference whose value is `num` (saturated at 0x110000).
static void push_numeric(CpBuf *out, uint32_t num) {
    for (int i = 0; i < html_invalid_charrefs_count; i++) {
        if (html_invalid_charrefs[i].key == num) {
            cpbuf_push(out, html_invalid_charrefs[i].value);
            return;
        }
    }
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) {
        cpbuf_push(out, 0xFFFD);
        return;
    }
    for (int i = 0; i < html_invalid_codepoints_count; i++)
        if (html_invalid_codepoints[i] == num) return; // unescapes to nothing
    cpbuf_push(out, num);
}

// Try the stdlib _charref regex at s[i] == '&':
//   &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)
// On a match, append the replacement and return the match length; else return 0.
static size_t html_charref(const uint32_t *s, size_t n, size_t i, CpBuf *out) {
    size_t j = i + 1;
    if (j < n && s[j] == '#') {
        size_t k = j + 1;
        uint32_t num = 0;
        if (k < n && is_ascii_digit(s[k])) {
            while (k < n && is_ascii_digit(s[k])) {
                // Saturate: anything above U+10FFFF behaves the same (-> U+FFFD). Note Python >= 3.11
                // raises ValueError for decimal references of more than 4300 digits; we give U+FFFD.
                num = num > 0x110000 ? 0x110001 : num * 10 + (s[k] - '0');
                k++;
            }
        } else if (k + 1 < n && (s[k] == 'x' || s[k] == 'X') && hex_value(s[k + 1]) >= 0) {
            k++;
            while (k < n && hex_value(s[k]) >= 0) {
                num = num > 0x110000 ? 0x110001 : num * 16 + (uint32_t)hex_value(s[k]);
                k++;
            }
        } else {
            return 0; // "&#" not followed by a number: no match at this '&'
        }
        if (k < n && s[k] == ';') k++;
        push_numeric(out, num);
        return k - i;
    }
    // named: [^\t\n\f <&#;]{1,32} then optional ';'
    size_t k = j;
    while (k < n && k - j < 32) {
        uint32_t c = s[k];
        if (c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' || c == ';')
            break;
        k++;
    }
    if (k == j) return 0;
    if (k < n && s[k] == ';') k++;
    const uint32_t *name = s + j;
    size_t len = k - j; // includes the ';' when present, like Python's group(1)
    int idx = html5_find(name, len);
    if (idx >= 0) {
        push_html5(out, idx);
        return k - i;
    }
    // longest prefix of at least 2 characters that is an entity (legacy names without ';')
    for (size_t x = len - 1; x >= 2 && len >= 3; x--) {
        idx = html5_find(name, x);
        if (idx >= 0) {
            push_html5(out, idx);
            cpbuf_append(out, name + x, len - x);
            return k - i;
        }
    }
    cpbuf_push(out, '&');
    cpbuf_append(out, name, len);
    return k - i;
}

void html_unescape(const CpBuf *in, CpBuf *out) {
    out->len = 0;
    cpbuf_reserve(out, in->len + 1);
    const uint32_t *s = in->cp;
    size_t n = in->len, i = 0;
    while (i < n) {
        if (s[i] == '&') {
            size_t m = html_charref(s, n, i, out);
            if (m) {
                i += m;
                continue;
            }
        }
        cpbuf_push(out, s[i++]);
    }
}

// ftfy.chardata.HTML_ENTITIES lookup of the name between '&' and ';'.
static int ftfy_entity_find(const uint32_t *cp, size_t n) {
    int lo = 0, hi = ftfy_entities_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = name_cmp(ftfy_entities[mid].name, cp, n);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

void ftfy_unescape_html(const CpBuf *in, CpBuf *out) {
    out->len = 0;
    cpbuf_reserve(out, in->len + 1);
    const uint32_t *s = in->cp;
    size_t n = in->len, i = 0;
    CpBuf piece = {0}, dec = {0};
    while (i < n) {
        // HTML_ENTITY_RE = r"&#?[0-9A-Za-z]{1,24};"
        if (s[i] == '&') {
            size_t j = i + 1;
            int numeric = j < n && s[j] == '#';
            if (numeric) j++;
            size_t k = j;
            while (k < n && is_ascii_alnum(s[k])) k++;
            if (k > j && k - j <= 24 && k < n && s[k] == ';') {
                size_t end = k + 1;
                int idx = numeric ? -1 : ftfy_entity_find(s + j, k - j);
                if (idx >= 0) {
                    for (int t = 0; t < 3 && ftfy_entities[idx].cp[t]; t++) cpbuf_push(out, ftfy_entities[idx].cp[t]);
                } else if (numeric) {
                    // html.unescape the match; keep the original if the ';' was not consumed
                    piece.len = 0;
                    cpbuf_append(&piece, s + i, end - i);
                    html_unescape(&piece, &dec);
                    int has_semicolon = 0;
                    for (size_t t = 0; t < dec.len; t++) has_semicolon |= dec.cp[t] == ';';
                    cpbuf_append(out, has_semicolon ? piece.cp : dec.cp, has_semicolon ? piece.len : dec.len);
                } else {
                    cpbuf_append(out, s + i, end - i);
                }
                i = end;
                continue;
            }
        }
        cpbuf_push(out, s[i++]);
    }
    cpbuf_free(&piece);
    cpbuf_free(&dec);
}
