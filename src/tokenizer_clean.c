// tokenizer_clean.c — open_clip's default text cleaning for OpenAI CLIP models ("lower"):
//   _clean_lower(x) = whitespace_clean(basic_clean(x)).lower()
//   basic_clean(t)  = html.unescape(html.unescape(ftfy.fix_text(t))).strip()
//   whitespace_clean(t) = regex.sub(r'\s+', ' ', t).strip()
// applied to the text Python would hold after bytes.decode('utf-8', errors='replace').
#include "tokenizer_internal.h"

void clip_clean_text(const char *text, size_t len, CpBuf *out) {
    CpBuf a = {0}, b = {0};
    utf8_decode_replace((const unsigned char *)text, len, &a);
    ftfy_fix_text(&a, &b);
    html_unescape(&b, &a);
    html_unescape(&a, &b);
    uni_strip(&b); // str.strip(): str.isspace() characters, which include U+001C..U+001F

    // regex \s+ -> ' ' (the regex module's \s does NOT include U+001C..U+001F, unlike str.strip)
    a.len = 0;
    cpbuf_reserve(&a, b.len + 1);
    int in_space = 0;
    for (size_t i = 0; i < b.len; i++) {
        uint32_t c = b.cp[i];
        int sp = c == ' ' || (c >= 0x80 || c < 0x20 ? (uni_props(c) & UP_RX_SPACE) != 0 : 0);
        if (sp) {
            if (!in_space) cpbuf_push(&a, ' ');
            in_space = 1;
        } else {
            cpbuf_push(&a, c);
            in_space = 0;
        }
    }
    uni_strip(&a);
    uni_lower(&a, out);
    cpbuf_free(&a);
    cpbuf_free(&b);
}
