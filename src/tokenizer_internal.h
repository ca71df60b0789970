// tokenizer_internal.h — pieces of the CLIP tokenizer shared between its source files (not public API).
//
// The text pipeline works on arrays of code points (CpBuf), exactly like the Python reference works
// on str objects:
//   bytes --utf8_decode_replace--> code points --ftfy_fix_text--> --html_unescape x2--> strip
//   --whitespace_clean--> str.lower --CLIP split regex--> UTF-8 bytes of each piece --> BPE
#ifndef CLIPNEG_TOKENIZER_INTERNAL_H
#define CLIPNEG_TOKENIZER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "unicode_tables.h"

// ---- the loaded vocabulary (tokenizer.c builds it, tokenizer_bpe.c reads it) ----------------------
typedef struct {
    uint64_t key; // pair_key(left, right); 0 = empty slot
    int32_t rank, merged;
} MergeSlot;

struct ClipTokenizer {
    int n_vocab;
    char **tok_str;      // id -> token text as in the vocabulary ("cat</w>"); NULL for unused ids
    int32_t *vocab_slot; // open addressing table of ids, keyed by tok_str; -1 = empty
    uint32_t vocab_mask;
    MergeSlot *merge;    // open addressing table of merges, keyed by (left id, right id)
    uint32_t merge_mask;
    int32_t byte_id[256], byte_eow_id[256]; // id of byte b as a symbol, and as a word's last symbol (+</w>)
    int32_t sot, eot;
};

static inline uint64_t pair_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1; }

static inline uint64_t mix64(uint64_t x) { // splitmix64 finaliser
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static inline const MergeSlot *merge_find(const struct ClipTokenizer *t, int32_t a, int32_t b) {
    uint64_t key = pair_key(a, b);
    for (uint32_t i = (uint32_t)mix64(key) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        if (t->merge[i].key == key) return &t->merge[i];
        if (t->merge[i].key == 0) return NULL;
    }
}

// A growable array of code points (a Python str).
typedef struct {
    uint32_t *cp;
    size_t len, cap;
} CpBuf;

void cpbuf_reserve(CpBuf *b, size_t cap);
void cpbuf_push(CpBuf *b, uint32_t c);
void cpbuf_append(CpBuf *b, const uint32_t *cp, size_t n);
void cpbuf_free(CpBuf *b);
// Swap contents (used by the "text = fix(text)" steps: write into `tmp`, then swap).
void cpbuf_swap(CpBuf *a, CpBuf *b);
int cpbuf_equal(const CpBuf *a, const CpBuf *b);

// ---- tokenizer_unicode.c ----------------------------------------------------------------------
// bytes.decode('utf-8', errors='replace'): each maximal invalid subsequence becomes one U+FFFD.
void utf8_decode_replace(const unsigned char *s, size_t n, CpBuf *out);
// Append the UTF-8 encoding of c (c < 0x110000, never a surrogate here) to out; returns bytes written.
int utf8_encode_one(uint32_t c, unsigned char out[4]);
// Strict UTF-8 decode (bytes.decode('utf-8')); returns 0 on success, -1 on any error.
int utf8_decode_strict(const unsigned char *s, size_t n, CpBuf *out);

uint32_t uni_props(uint32_t c);              // UP_* bits
uint32_t uni_ccc(uint32_t c);                // canonical combining class
void uni_lower(const CpBuf *in, CpBuf *out); // str.lower() (full mapping + final sigma)
void uni_nfc(const CpBuf *in, CpBuf *out);   // unicodedata.normalize('NFC', ...)
// Python str.strip() with no arguments (str.isspace characters), in place.
void uni_strip(CpBuf *b);

// ---- tokenizer_html.c -------------------------------------------------------------------------
// Python's html.unescape(s) (stdlib, HTML5 rules incl. prefix matching of legacy names).
void html_unescape(const CpBuf *in, CpBuf *out);
// ftfy.fixes.unescape_html: only `&name;` / `&#...;` forms, plus ftfy's all-caps names.
void ftfy_unescape_html(const CpBuf *in, CpBuf *out);

// ---- tokenizer_ftfy.c -------------------------------------------------------------------------
// ftfy.fix_text(text) with ftfy 6.1.x's default configuration (see docs/tokenizer.md).
void ftfy_fix_text(const CpBuf *in, CpBuf *out);

// ---- tokenizer_mojibake.c ---------------------------------------------------------------------
// ftfy.badness.is_bad(text)
int ftfy_is_bad(const uint32_t *cp, size_t n);
// ftfy.fix_encoding(text) (mojibake repair: charmap re-decoding, inconsistent UTF-8, C1 controls).
void ftfy_fix_encoding(const CpBuf *in, CpBuf *out);
// ftfy.fixes.fix_c1_controls
void ftfy_fix_c1_controls(const CpBuf *in, CpBuf *out);

// ---- tokenizer_clean.c ------------------------------------------------------------------------
// open_clip's _clean_lower: whitespace_clean(basic_clean(text)).lower(), from raw UTF-8 bytes.
void clip_clean_text(const char *text, size_t len, CpBuf *out);

// ---- tokenizer_bpe.c ---------------------------------------------------------------------------
// tokenizer_encode_raw with a chosen BPE algorithm: words of up to `simple_max` bytes use the plain
// O(n^2) loop, longer ones the heap version (tests compare both).
int tokenizer_encode_raw_bpe_mode(const struct ClipTokenizer *t, const char *text, size_t simple_max, int32_t **ids);

#endif
