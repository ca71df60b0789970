// tokenizer_bpe.c — from cleaned text to ids: open_clip's split regex, byte-level BPE, SOT/EOT,
// truncation. Thread-safe: only reads the ClipTokenizer, all scratch memory is per call.
//
// The split pattern (regex module, IGNORECASE), tried in this order at each position:
//   <start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// Characters matching none of them (whitespace, and U+0345, which IGNORECASE keeps out of the last
// class) are skipped, exactly as re.findall skips them.
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/tokenizer.h"
#include "tokenizer_internal.h"

typedef struct {
    int32_t *v;
    size_t len, cap;
} IdVec;

static void idvec_push(IdVec *x, int32_t id) {
    if (x->len == x->cap) {
        x->cap = x->cap ? 2 * x->cap : 128;
        x->v = reallocCheck(x->v, x->cap * sizeof(int32_t));
    }
    x->v[x->len++] = id;
}

// ---- split ----------------------------------------------------------------------------------------

// Does code point c match the pattern's ASCII literal p under the regex module's IGNORECASE?
static int ci_eq(uint32_t c, char p) {
    if (c == (uint32_t)(unsigned char)p) return 1;
    const uint32_t *eq = uni_ci_ascii[(unsigned char)p - 0x21];
    for (int k = 0; k < 3 && eq[k]; k++)
        if (eq[k] == c) return 1;
    return 0;
}

// Length of the literal `lit` matched case-insensitively at s[i], or 0.
static size_t match_literal(const uint32_t *s, size_t n, size_t i, const char *lit) {
    size_t k = 0;
    for (; lit[k]; k++)
        if (i + k >= n || !ci_eq(s[i + k], lit[k])) return 0;
    return k;
}

// The next token of the split regex at or after *pos: sets [*start, *end) and returns 1, or 0 at the end.
static int next_piece(const uint32_t *s, size_t n, size_t *pos, size_t *start, size_t *end) {
    static const char *const literals[] = {"<start_of_text>", "<end_of_text>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    for (size_t i = *pos; i < n; i++) {
        uint32_t c = s[i];
        size_t m = 0;
        for (int k = 0; k < 9 && !m; k++) m = match_literal(s, n, i, literals[k]);
        if (!m) {
            uint32_t p = uni_props(c);
            if (p & UP_RX_LETTER) {
                m = 1;
                while (i + m < n && (uni_props(s[i + m]) & UP_RX_LETTER)) m++;
            } else if (p & UP_RX_NUMBER) {
                m = 1; // a single \p{N}
            } else if (p & UP_RX_OTHER) {
                m = 1;
                while (i + m < n && (uni_props(s[i + m]) & UP_RX_OTHER)) m++;
            }
        }
        if (m) {
            *start = i;
            *end = i + m;
            *pos = i + m;
            return 1;
        }
    }
    *pos = n;
    return 0;
}

// ---- BPE ------------------------------------------------------------------------------------------

// Python's SimpleTokenizer.bpe: repeatedly take the adjacent pair with the lowest merge rank and merge
// ALL its occurrences left to right; stop when no pair has a rank. Simple O(len^2) version for the
// usual short words; w is rewritten in place, returns the new length.
static size_t bpe_simple(const ClipTokenizer *t, int32_t *w, size_t m) {
    while (m > 1) {
        int32_t best = INT32_MAX, a = 0, b = 0, merged = 0;
        for (size_t i = 0; i + 1 < m; i++) {
            const MergeSlot *ms = merge_find(t, w[i], w[i + 1]);
            if (ms && ms->rank < best) best = ms->rank, a = w[i], b = w[i + 1], merged = ms->merged;
        }
        if (best == INT32_MAX) break;
        size_t o = 0;
        for (size_t i = 0; i < m;) {
            if (i + 1 < m && w[i] == a && w[i + 1] == b) {
                w[o++] = merged;
                i += 2;
            } else {
                w[o++] = w[i++];
            }
        }
        m = o;
    }
    return m;
}

// The same algorithm for long words in O(len log len): a linked list of symbols plus a min-heap of
// (rank, left position) candidates checked lazily. One "round" pops every candidate of the lowest
// rank and merges them in position order, which is what Python's left-to-right pass does.
typedef struct {
    int32_t rank;
    int32_t pos;
} HeapItem;

static int heap_less(HeapItem x, HeapItem y) { return x.rank < y.rank || (x.rank == y.rank && x.pos < y.pos); }

static void heap_push(HeapItem *h, size_t *n, HeapItem it) {
    size_t i = (*n)++;
    h[i] = it;
    while (i > 0 && heap_less(h[i], h[(i - 1) / 2])) {
        HeapItem tmp = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = tmp;
        i = (i - 1) / 2;
    }
}

static HeapItem heap_pop(HeapItem *h, size_t *n) {
    HeapItem top = h[0];
    h[0] = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, s = i;
        if (l < *n && heap_less(h[l], h[s])) s = l;
        if (r < *n && heap_less(h[r], h[s])) s = r;
        if (s == i) break;
        HeapItem tmp = h[i];
        h[i] = h[s];
        h[s] = tmp;
        i = s;
    }
    return top;
}

static size_t bpe_heap(const ClipTokenizer *t, int32_t *w, size_t m) {
    int32_t *next = mallocCheck(m * sizeof(int32_t)), *prev = mallocCheck(m * sizeof(int32_t));
    // every merge adds at most 2 candidates; m - 1 initial ones
    HeapItem *heap = mallocCheck(3 * m * sizeof(HeapItem)), *round = mallocCheck(3 * m * sizeof(HeapItem));
    size_t hn = 0;
    for (size_t i = 0; i < m; i++) {
        next[i] = i + 1 < m ? (int32_t)(i + 1) : -1;
        prev[i] = (int32_t)i - 1;
    }
    for (size_t i = 0; i + 1 < m; i++) {
        const MergeSlot *ms = merge_find(t, w[i], w[i + 1]);
        if (ms) heap_push(heap, &hn, (HeapItem){ms->rank, (int32_t)i});
    }
    // w[i] < 0 marks a symbol merged into its left neighbour
    while (hn > 0) {
        int32_t rank = heap[0].rank;
        size_t rn = 0;
        while (hn > 0 && heap[0].rank == rank) round[rn++] = heap_pop(heap, &hn); // in position order
        for (size_t k = 0; k < rn; k++) {
            int32_t p = round[k].pos, q = w[p] >= 0 ? next[p] : -1;
            if (q < 0) continue; // stale: p was merged away or is now last
            const MergeSlot *ms = merge_find(t, w[p], w[q]);
            if (!ms || ms->rank != rank) continue; // stale: the pair changed
            w[p] = ms->merged;
            w[q] = -1;
            next[p] = next[q];
            if (next[q] >= 0) prev[next[q]] = p;
            if (prev[p] >= 0) {
                const MergeSlot *l = merge_find(t, w[prev[p]], w[p]);
                if (l) heap_push(heap, &hn, (HeapItem){l->rank, prev[p]});
            }
            if (next[p] >= 0) {
                const MergeSlot *r = merge_find(t, w[p], w[next[p]]);
                if (r) heap_push(heap, &hn, (HeapItem){r->rank, p});
            }
        }
    }
    size_t o = 0;
    for (int32_t i = 0; i >= 0; i = next[i]) w[o++] = w[i];
    free(next);
    free(prev);
    free(heap);
    free(round);
    return o;
}

#define BPE_SIMPLE_MAX 64 // words up to this many bytes use bpe_simple

// BPE one piece given as UTF-8 bytes; appends ids to out. `simple_max` picks the algorithm (tests
// run both on the same words).
static void bpe_piece(const ClipTokenizer *t, const unsigned char *bytes, size_t nb, size_t simple_max, IdVec *out,
                      int32_t *scratch) {
    for (size_t i = 0; i < nb; i++) scratch[i] = i + 1 < nb ? t->byte_id[bytes[i]] : t->byte_eow_id[bytes[i]];
    size_t m = nb <= simple_max ? bpe_simple(t, scratch, nb) : bpe_heap(t, scratch, nb);
    for (size_t i = 0; i < m; i++) idvec_push(out, scratch[i]);
}

// Clean, split and BPE `text`, stopping once `limit` ids are out (the rest cannot change them).
static void encode_ids(const ClipTokenizer *t, const char *text, size_t limit, size_t simple_max, IdVec *out) {
    CpBuf clean = {0};
    clip_clean_text(text, strlen(text), &clean);
    unsigned char *bytes = mallocCheck(4 * clean.len + 4);
    int32_t *scratch = mallocCheck((4 * clean.len + 4) * sizeof(int32_t));
    size_t pos = 0, a, b;
    while (out->len < limit && next_piece(clean.cp, clean.len, &pos, &a, &b)) {
        size_t nb = 0;
        for (size_t i = a; i < b; i++) nb += (size_t)utf8_encode_one(clean.cp[i], bytes + nb);
        // SimpleTokenizer.cache maps the special texts to themselves: only their exact ASCII spelling
        // becomes SOT/EOT (a case-insensitive match such as "<ſtart_of_text>" goes through BPE).
        if (nb == 15 && !memcmp(bytes, "<start_of_text>", 15)) idvec_push(out, t->sot);
        else if (nb == 13 && !memcmp(bytes, "<end_of_text>", 13)) idvec_push(out, t->eot);
        else bpe_piece(t, bytes, nb, simple_max, out, scratch);
    }
    free(bytes);
    free(scratch);
    cpbuf_free(&clean);
}

// ---- public API -------------------------------------------------------------------------------------

int tokenizer_encode(const ClipTokenizer *t, const char *text, int context, int32_t *ids, int *truncated) {
    if (truncated) *truncated = 0;
    if (!t || !text || !ids) return -cn_fail(CN_E_USAGE, "tokenizer_encode: NULL tokenizer, text or ids");
    if (context < 2) return -cn_fail(CN_E_USAGE, "tokenizer_encode: context %d leaves no room for SOT and EOT", context);
    IdVec v = {0};
    // context - 1 BPE ids are enough to know whether SOT + ids + EOT exceeds context
    encode_ids(t, text, (size_t)context - 1, BPE_SIMPLE_MAX, &v);
    size_t keep = v.len;
    int cut = v.len > (size_t)context - 2;
    if (cut) keep = (size_t)context - 2; // open_clip: tokens[:context], tokens[-1] = eot
    ids[0] = t->sot;
    if (keep) memcpy(ids + 1, v.v, keep * sizeof(int32_t));
    ids[keep + 1] = t->eot;
    for (size_t i = keep + 2; i < (size_t)context; i++) ids[i] = 0;
    if (truncated) *truncated = cut;
    free(v.v);
    return (int)keep + 2;
}

int tokenizer_encode_raw(const ClipTokenizer *t, const char *text, int32_t **ids) {
    if (ids) *ids = NULL;
    if (!t || !text || !ids) return -cn_fail(CN_E_USAGE, "tokenizer_encode_raw: NULL tokenizer, text or ids");
    IdVec v = {0};
    encode_ids(t, text, SIZE_MAX, BPE_SIMPLE_MAX, &v);
    if (v.len > INT32_MAX) {
        free(v.v);
        return -cn_fail(CN_E_USAGE, "tokenizer_encode_raw: text gives more than 2^31 tokens");
    }
    *ids = v.v ? v.v : callocCheck(1, sizeof(int32_t));
    return (int)v.len;
}

int tokenizer_encode_raw_bpe_mode(const ClipTokenizer *t, const char *text, size_t simple_max, int32_t **ids) {
    IdVec v = {0};
    encode_ids(t, text, SIZE_MAX, simple_max, &v);
    *ids = v.v ? v.v : callocCheck(1, sizeof(int32_t));
    return (int)v.len;
}
