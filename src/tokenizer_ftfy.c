// tokenizer_ftfy.c — ftfy.fix_text (ftfy 6.1.x, default TextFixerConfig), the first step of open_clip's
// basic_clean. Mirrors ftfy/__init__.py: the text is cut into segments after each '\n' (and every
// 1,000,000 code points), and each segment is run through all fixers, repeatedly, until it stops
// changing. The character-level fixers live here; mojibake repair is in tokenizer_mojibake.c.
#include <string.h>

#include "tokenizer_internal.h"

#define FTFY_MAX_DECODE_LENGTH 1000000 // TextFixerConfig.max_decode_length

static const UniMulti *multi_find(const UniMulti *t, int count, uint32_t c) {
    int lo = 0, hi = count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < t[mid].cp) hi = mid - 1;
        else if (c > t[mid].cp) lo = mid + 1;
        else return &t[mid];
    }
    return NULL;
}

// str.translate with a {code point: string} table (fix_latin_ligatures, fix_character_width,
// uncurl_quotes). Returns 1 if anything changed.
static int translate(const UniMulti *t, int count, uint32_t min_cp, const CpBuf *in, CpBuf *out) {
    out->len = 0;
    cpbuf_reserve(out, in->len + 1);
    int changed = 0;
    for (size_t i = 0; i < in->len; i++) {
        uint32_t c = in->cp[i];
        const UniMulti *m = c >= min_cp ? multi_find(t, count, c) : NULL;
        if (!m) {
            cpbuf_push(out, c);
            continue;
        }
        changed = 1;
        for (int k = 0; k < 3 && m->out[k]; k++) cpbuf_push(out, m->out[k]);
    }
    return changed;
}

// fixes.fix_line_breaks: "\r\n", "\r", U+2028, U+2029, U+0085 -> "\n" (in that order of replaces,
// which is the same as one left-to-right pass that treats "\r\n" as a unit).
static void fix_line_breaks(const CpBuf *in, CpBuf *out) {
    out->len = 0;
    cpbuf_reserve(out, in->len + 1);
    for (size_t i = 0; i < in->len; i++) {
        uint32_t c = in->cp[i];
        if (c == '\r') {
            if (i + 1 < in->len && in->cp[i + 1] == '\n') i++;
            cpbuf_push(out, '\n');
        } else if (c == 0x2028 || c == 0x2029 || c == 0x85) {
            cpbuf_push(out, '\n');
        } else {
            cpbuf_push(out, c);
        }
    }
}

// fixes.remove_terminal_escapes: ANSI_RE = "\033\[((?:\d|;)*)([a-zA-Z])" (\d is Unicode Nd).
static void remove_terminal_escapes(const CpBuf *in, CpBuf *out) {
    out->len = 0;
    cpbuf_reserve(out, in->len + 1);
    size_t n = in->len;
    for (size_t i = 0; i < n; i++) {
        if (in->cp[i] == 0x1B && i + 1 < n && in->cp[i + 1] == '[') {
            size_t j = i + 2;
            while (j < n && (in->cp[j] == ';' || (uni_props(in->cp[j]) & UP_RE_DIGIT))) j++;
            uint32_t c = j < n ? in->cp[j] : 0;
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
                i = j; // drop the whole escape sequence
                continue;
            }
        }
        cpbuf_push(out, in->cp[i]);
    }
}

// fixes.remove_control_chars: delete the code points of chardata.CONTROL_CHARS.
static void remove_control_chars(const CpBuf *in, CpBuf *out) {
    out->len = 0;
    cpbuf_reserve(out, in->len + 1);
    for (size_t i = 0; i < in->len; i++) {
        uint32_t c = in->cp[i];
        int drop = 0;
        if (c < 0x20 || c == 0x7F || (c >= 0x2000 && c < 0x10000)) {
            for (int k = 0; k < ftfy_control_chars_count && !drop; k++) drop = ftfy_control_chars[k] == c;
        }
        if (!drop) cpbuf_push(out, c);
    }
}

// ftfy.fix_and_explain for one segment with explain=False: apply every fixer in ftfy's order until
// a full round leaves the text unchanged.
static void fix_segment(const uint32_t *seg, size_t n, int unescape_html, CpBuf *result) {
    CpBuf text = {0}, tmp = {0}, orig = {0};
    cpbuf_append(&text, seg, n);
    for (;;) {
        orig.len = 0;
        cpbuf_append(&orig, text.cp, text.len);
        if (unescape_html) {
            ftfy_unescape_html(&text, &tmp);
            cpbuf_swap(&text, &tmp);
        }
        ftfy_fix_encoding(&text, &tmp);
        cpbuf_swap(&text, &tmp);
        ftfy_fix_c1_controls(&text, &tmp);
        cpbuf_swap(&text, &tmp);
        translate(ftfy_ligatures, ftfy_ligatures_count, 0x100, &text, &tmp);
        cpbuf_swap(&text, &tmp);
        translate(ftfy_width_map, ftfy_width_map_count, 0x3000, &text, &tmp);
        cpbuf_swap(&text, &tmp);
        translate(ftfy_quotes, ftfy_quotes_count, 0x2BC, &text, &tmp);
        cpbuf_swap(&text, &tmp);
        fix_line_breaks(&text, &tmp);
        cpbuf_swap(&text, &tmp);
        // fix_surrogates: nothing to do, our text never holds surrogate code points (the UTF-8
        // decoder, html unescaping and the mojibake decoders all produce scalar values only).
        remove_terminal_escapes(&text, &tmp);
        cpbuf_swap(&text, &tmp);
        remove_control_chars(&text, &tmp);
        cpbuf_swap(&text, &tmp);
        uni_nfc(&text, &tmp);
        cpbuf_swap(&text, &tmp);
        if (cpbuf_equal(&text, &orig)) break;
    }
    cpbuf_append(result, text.cp, text.len);
    cpbuf_free(&text);
    cpbuf_free(&tmp);
    cpbuf_free(&orig);
}

void ftfy_fix_text(const CpBuf *in, CpBuf *out) {
    out->len = 0;
    cpbuf_reserve(out, in->len + 1);
    // config.unescape_html == "auto": once a segment contains '<' the text is taken for HTML and
    // entities are left alone in that segment AND every later one (ftfy replaces its config).
    int unescape_html = 1;
    size_t pos = 0, n = in->len;
    while (pos < n) {
        size_t brk = pos;
        while (brk < n && in->cp[brk] != '\n') brk++;
        brk = brk < n ? brk + 1 : n;
        if (brk - pos > FTFY_MAX_DECODE_LENGTH) brk = pos + FTFY_MAX_DECODE_LENGTH;
        for (size_t i = pos; i < brk && unescape_html; i++)
            if (in->cp[i] == '<') unescape_html = 0;
        fix_segment(in->cp + pos, brk - pos, unescape_html, out);
        pos = brk;
    }
}
