// tokenizer.c — CLIP byte-level BPE, equal to open_clip 2.24.0's SimpleTokenizer (the default for the
// OpenAI models): vocabulary loading (open_clip's bpe_simple_vocab_16e6.txt.gz or an HF folder's
// vocab.json + merges.txt), the CLIP split regex, BPE with '</w>', SOT/EOT and truncation.
// Text cleaning (ftfy, HTML, whitespace, lower) is tokenizer_clean.c.
//
// Every symbol BPE can produce is a vocabulary entry, so BPE runs on ids: a merge is the hash-table
// entry (left id, right id) -> (rank, merged id), and a word starts as one id per UTF-8 byte.
// Splitting and BPE themselves are in tokenizer_bpe.c.
#define _DEFAULT_SOURCE  // readlink, realpath
#include <cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "clipneg/common.h"
#include "clipneg/tokenizer.h"
#include "tokenizer_internal.h"

#define BPE_N_MERGES (49152 - 256 - 2) // open_clip: merges[1:49152-256-2+1]
#define SOT_TEXT "<start_of_text>"
#define EOT_TEXT "<end_of_text>"

// ---- hashing ------------------------------------------------------------------------------------

static uint32_t hash_str(const char *s) { // FNV-1a
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static int32_t vocab_find(const ClipTokenizer *t, const char *s) {
    for (uint32_t i = hash_str(s) & t->vocab_mask;; i = (i + 1) & t->vocab_mask) {
        int32_t id = t->vocab_slot[i];
        if (id < 0) return -1;
        if (!strcmp(t->tok_str[id], s)) return id;
    }
}

// Insert: a later id for the same string replaces the earlier one (Python's dict(zip(vocab, ids))).
static void vocab_put(ClipTokenizer *t, int32_t id) {
    for (uint32_t i = hash_str(t->tok_str[id]) & t->vocab_mask;; i = (i + 1) & t->vocab_mask) {
        int32_t old = t->vocab_slot[i];
        if (old < 0 || !strcmp(t->tok_str[old], t->tok_str[id])) {
            t->vocab_slot[i] = id;
            return;
        }
    }
}

// A repeated pair keeps its last rank, like Python's dict(zip(merges, range(len(merges)))).
static void merge_put(ClipTokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t merged) {
    uint64_t key = pair_key(a, b);
    for (uint32_t i = (uint32_t)mix64(key) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        if (t->merge[i].key == 0 || t->merge[i].key == key) {
            t->merge[i] = (MergeSlot){key, rank, merged};
            return;
        }
    }
}

static uint32_t pow2_at_least(uint32_t n) {
    uint32_t p = 1;
    while (p < n) p <<= 1;
    return p;
}

// ---- building the vocabulary ------------------------------------------------------------------

// open_clip's bytes_to_unicode(): byte -> the code point that stands for it in vocabulary strings,
// and the byte order of ids 0..255.
static void bytes_to_unicode(int order[256], uint32_t cp_of_byte[256]) {
    int n = 0, used[256] = {0};
    for (int b = '!'; b <= '~'; b++) order[n++] = b, used[b] = 1;
    for (int b = 0xA1; b <= 0xAC; b++) order[n++] = b, used[b] = 1;
    for (int b = 0xAE; b <= 0xFF; b++) order[n++] = b, used[b] = 1;
    for (int b = 0; b < 256; b++) cp_of_byte[b] = (uint32_t)b;
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        if (used[b]) continue;
        order[n++] = b;
        cp_of_byte[b] = 256u + (uint32_t)extra++;
    }
}

static char *utf8_of_cp(uint32_t c, const char *suffix) {
    unsigned char u[4];
    int k = utf8_encode_one(c, u);
    size_t sl = strlen(suffix);
    char *s = mallocCheck((size_t)k + sl + 1);
    memcpy(s, u, (size_t)k);
    memcpy(s + k, suffix, sl + 1);
    return s;
}

static ClipTokenizer *tokenizer_alloc(int n_vocab, int n_merges) {
    ClipTokenizer *t = callocCheck(1, sizeof(ClipTokenizer));
    t->n_vocab = n_vocab;
    t->tok_str = callocCheck((size_t)n_vocab, sizeof(char *));
    uint32_t vcap = pow2_at_least((uint32_t)n_vocab * 2 + 16);
    t->vocab_slot = mallocCheck(vcap * sizeof(int32_t));
    memset(t->vocab_slot, 0xFF, vcap * sizeof(int32_t));
    t->vocab_mask = vcap - 1;
    uint32_t mcap = pow2_at_least((uint32_t)n_merges * 2 + 16);
    t->merge = callocCheck(mcap, sizeof(MergeSlot));
    t->merge_mask = mcap - 1;
    return t;
}

void tokenizer_free(ClipTokenizer *t) {
    if (!t) return;
    for (int i = 0; i < t->n_vocab; i++) free(t->tok_str[i]);
    free(t->tok_str);
    free(t->vocab_slot);
    free(t->merge);
    free(t);
}

// After tok_str and vocab are filled: resolve byte symbols. Fails if the vocabulary lacks one.
static int resolve_bytes(ClipTokenizer *t, const char *where) {
    int order[256];
    uint32_t cp_of_byte[256];
    bytes_to_unicode(order, cp_of_byte);
    for (int b = 0; b < 256; b++) {
        char *s = utf8_of_cp(cp_of_byte[b], ""), *w = utf8_of_cp(cp_of_byte[b], "</w>");
        t->byte_id[b] = vocab_find(t, s);
        t->byte_eow_id[b] = vocab_find(t, w);
        int bad = t->byte_id[b] < 0 || t->byte_eow_id[b] < 0;
        free(s);
        free(w);
        if (bad) return cn_fail(CN_E_MODEL, "%s: vocabulary has no symbol for byte 0x%02X: not a CLIP byte-level BPE", where, b);
    }
    return CN_OK;
}

// Split one merges line in place into its two symbols (Python: tuple(line.split()), which must
// have exactly 2 parts). Returns 1 on success.
static int is_split_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }
static int split_merge(char *line, char **a, char **b) {
    char *parts[3] = {NULL, NULL, NULL};
    int n = 0;
    char *p = line;
    while (*p && n < 3) {
        while (*p && is_split_space(*p)) p++;
        if (!*p) break;
        parts[n++] = p;
        while (*p && !is_split_space(*p)) p++;
        if (*p) *p++ = 0;
    }
    *a = parts[0];
    *b = parts[1];
    return n == 2;
}

// Register merge `rank` (a, b): both symbols and their concatenation must be in the vocabulary.
static int add_merge(ClipTokenizer *t, const char *a, const char *b, int rank, const char *where, int line) {
    int32_t ia = vocab_find(t, a), ib = vocab_find(t, b);
    size_t la = strlen(a), lb = strlen(b);
    char *ab = mallocCheck(la + lb + 1);
    memcpy(ab, a, la);
    memcpy(ab + la, b, lb + 1);
    int32_t im = vocab_find(t, ab);
    free(ab);
    if (ia < 0 || ib < 0 || im < 0)
        return cn_fail(CN_E_MODEL, "%s:%d: merge '%s %s' uses a symbol missing from the vocabulary", where, line, a, b);
    merge_put(t, ia, ib, rank, im);
    return CN_OK;
}

// ---- loading: open_clip's bpe_simple_vocab_16e6.txt.gz ----------------------------------------------

static int read_gz(const char *path, char **data, size_t *len) {
    gzFile f = gzopen(path, "rb"); // reads plain files transparently too
    if (!f) return cn_fail(CN_E_MODEL, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 20, n = 0;
    char *buf = mallocCheck(cap + 1);
    for (;;) {
        if (n == cap) buf = reallocCheck(buf, (cap *= 2) + 1);
        int r = gzread(f, buf + n, (unsigned)(cap - n));
        if (r < 0) {
            int e;
            const char *msg = gzerror(f, &e);
            int rc = cn_fail(CN_E_MODEL, "%s: gzip read error: %s", path, msg);
            gzclose(f);
            free(buf);
            return rc;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    gzclose(f);
    buf[n] = 0;
    *data = buf;
    *len = n;
    return CN_OK;
}

int tokenizer_load_bpe(ClipTokenizer **out, const char *path) {
    *out = NULL;
    char *data = NULL;
    size_t len = 0;
    int rc = read_gz(path, &data, &len);
    if (rc) return rc;
    if (strlen(data) != len) {
        free(data);
        return cn_fail(CN_E_MODEL, "%s: contains NUL bytes: not a BPE merges file", path);
    }
    CpBuf check = {0};
    if (utf8_decode_strict((const unsigned char *)data, len, &check) != 0) {
        cpbuf_free(&check);
        free(data);
        return cn_fail(CN_E_MODEL, "%s: not valid UTF-8", path);
    }
    cpbuf_free(&check);
    // lines[1 : 1 + BPE_N_MERGES] are the merges (line 0 is a "#version" header)
    char **lines = mallocCheck((BPE_N_MERGES + 2) * sizeof(char *));
    int nl = 0;
    char *p = data;
    while (nl < BPE_N_MERGES + 1) {
        char *nlp = strchr(p, '\n');
        lines[nl++] = p;
        if (!nlp) break;
        *nlp = 0;
        p = nlp + 1;
    }
    if (nl < BPE_N_MERGES + 1) {
        free(lines);
        free(data);
        return cn_fail(CN_E_MODEL, "%s: has %d lines, a CLIP BPE file needs %d (header + merges)", path, nl,
                       BPE_N_MERGES + 1);
    }
    int n_vocab = 512 + BPE_N_MERGES + 2;
    ClipTokenizer *t = tokenizer_alloc(n_vocab, BPE_N_MERGES);
    int order[256];
    uint32_t cp_of_byte[256];
    bytes_to_unicode(order, cp_of_byte);
    for (int i = 0; i < 256; i++) {
        t->tok_str[i] = utf8_of_cp(cp_of_byte[order[i]], "");
        t->tok_str[256 + i] = utf8_of_cp(cp_of_byte[order[i]], "</w>");
    }
    char **ma = mallocCheck(BPE_N_MERGES * sizeof(char *)), **mb = mallocCheck(BPE_N_MERGES * sizeof(char *));
    for (int r = 0; r < BPE_N_MERGES && rc == CN_OK; r++) {
        if (!split_merge(lines[1 + r], &ma[r], &mb[r])) {
            rc = cn_fail(CN_E_MODEL, "%s:%d: expected two symbols separated by a space", path, r + 2);
            break;
        }
        size_t la = strlen(ma[r]), lb = strlen(mb[r]);
        char *s = mallocCheck(la + lb + 1);
        memcpy(s, ma[r], la);
        memcpy(s + la, mb[r], lb + 1);
        t->tok_str[512 + r] = s;
    }
    if (rc == CN_OK) {
        t->sot = 512 + BPE_N_MERGES;
        t->eot = t->sot + 1;
        t->tok_str[t->sot] = strdupCheck(SOT_TEXT);
        t->tok_str[t->eot] = strdupCheck(EOT_TEXT);
        for (int i = 0; i < n_vocab; i++) vocab_put(t, i);
        rc = resolve_bytes(t, path);
    }
    for (int r = 0; r < BPE_N_MERGES && rc == CN_OK; r++) rc = add_merge(t, ma[r], mb[r], r, path, r + 2);
    free(ma);
    free(mb);
    free(lines);
    free(data);
    if (rc == CN_OK && (t->sot != CLIP_SOT || t->eot != CLIP_EOT))
        rc = cn_fail(CN_E_INTERNAL, "%s: SOT/EOT ids %d/%d differ from CLIP's", path, t->sot, t->eot);
    if (rc) {
        tokenizer_free(t);
        return rc;
    }
    *out = t;
    return CN_OK;
}

// ---- loading: HF vocab.json + merges.txt -------------------------------------------------------

int tokenizer_load_hf(ClipTokenizer **out, const char *vocab_json, const char *merges_txt) {
    *out = NULL;
    char *js = NULL, *mt = NULL;
    size_t jl = 0, ml = 0;
    int rc = cn_read_file(vocab_json, &js, &jl);
    if (rc) return cn_fail(CN_E_MODEL, "%s", cn_last_error());
    rc = cn_read_file(merges_txt, &mt, &ml);
    if (rc) {
        free(js);
        return cn_fail(CN_E_MODEL, "%s", cn_last_error());
    }
    ClipTokenizer *t = NULL;
    cJSON *root = cJSON_ParseWithLength(js, jl);
    if (!root || !cJSON_IsObject(root)) {
        rc = cn_fail(CN_E_MODEL, "%s: not a JSON object (token -> id)", vocab_json);
        goto done;
    }
    int max_id = -1, count = 0;
    for (cJSON *it = root->child; it; it = it->next) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > 1e7 ||
            it->valuedouble != (double)(int)it->valuedouble) {
            rc = cn_fail(CN_E_MODEL, "%s: entry \"%s\" is not a non-negative integer id", vocab_json, it->string);
            goto done;
        }
        max_id = CN_MAX(max_id, it->valueint);
        count++;
    }
    if (max_id + 1 != CLIP_EOT + 1) {
        rc = cn_fail(CN_E_MODEL, "%s: %d entries with ids up to %d; a CLIP vocabulary has ids 0..%d", vocab_json,
                     count, max_id, CLIP_EOT);
        goto done;
    }
    t = tokenizer_alloc(max_id + 1, BPE_N_MERGES);
    for (cJSON *it = root->child; it; it = it->next) {
        if (t->tok_str[it->valueint]) {
            rc = cn_fail(CN_E_MODEL, "%s: id %d used twice", vocab_json, it->valueint);
            goto done;
        }
        t->tok_str[it->valueint] = strdupCheck(it->string);
    }
    for (int i = 0; i < t->n_vocab; i++)
        if (t->tok_str[i]) vocab_put(t, i);
    t->sot = vocab_find(t, "<|startoftext|>");
    t->eot = vocab_find(t, "<|endoftext|>");
    if (t->sot != CLIP_SOT || t->eot != CLIP_EOT) {
        rc = cn_fail(CN_E_MODEL, "%s: <|startoftext|>/<|endoftext|> have ids %d/%d, expected %d/%d", vocab_json, t->sot,
                     t->eot, CLIP_SOT, CLIP_EOT);
        goto done;
    }
    if ((rc = resolve_bytes(t, vocab_json))) goto done;
    // merges.txt: HF's CLIPTokenizer reads merges.strip().split("\n")[1 : 49152 - 256 - 2 + 1]
    {
        char *p = mt;
        int line = 0, rank = 0;
        while (*p && rank < BPE_N_MERGES && rc == CN_OK) {
            char *e = strchr(p, '\n');
            if (e) *e = 0;
            line++;
            if (line > 1) {
                char *a, *b;
                if (!split_merge(p, &a, &b)) rc = cn_fail(CN_E_MODEL, "%s:%d: expected two symbols", merges_txt, line);
                else rc = add_merge(t, a, b, rank++, merges_txt, line);
            }
            if (!e) break;
            p = e + 1;
        }
        if (rc == CN_OK && rank != BPE_N_MERGES)
            rc = cn_fail(CN_E_MODEL, "%s: %d merges, a CLIP vocabulary has %d", merges_txt, rank, BPE_N_MERGES);
    }
done:
    cJSON_Delete(root);
    free(js);
    free(mt);
    if (rc) {
        tokenizer_free(t);
        return rc;
    }
    *out = t;
    return CN_OK;
}

// ---- loading: search ------------------------------------------------------------------------------

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}
static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

// Try `path` as a vocabulary file or a folder holding one. Returns 1 if found (rc set), 0 if nothing
// there; appends the places looked at to `tried`.
static int try_location(ClipTokenizer **out, const char *path, char *tried, size_t cap, int *rc) {
    char a[4096], b[4096];
    size_t used = strlen(tried);
    if (is_dir(path)) {
        snprintf(a, sizeof a, "%s/bpe_simple_vocab_16e6.txt.gz", path);
        if (is_file(a)) return *rc = tokenizer_load_bpe(out, a), 1;
        snprintf(a, sizeof a, "%s/vocab.json", path);
        snprintf(b, sizeof b, "%s/merges.txt", path);
        if (is_file(a) && is_file(b)) return *rc = tokenizer_load_hf(out, a, b), 1;
        snprintf(tried + used, cap - used, "%s%s/{bpe_simple_vocab_16e6.txt.gz | vocab.json + merges.txt}",
                 used ? ", " : "", path);
        return 0;
    }
    if (is_file(path)) {
        size_t n = strlen(path);
        if (n >= 10 && !strcmp(path + n - 10, "vocab.json")) { // an HF vocab.json: merges.txt beside it
            snprintf(b, sizeof b, "%.*smerges.txt", (int)(n - 10), path);
            if (!is_file(b)) return *rc = cn_fail(CN_E_MODEL, "%s: no merges.txt beside it (%s)", path, b), 1;
            return *rc = tokenizer_load_hf(out, path, b), 1;
        }
        return *rc = tokenizer_load_bpe(out, path), 1;
    }
    snprintf(tried + used, cap - used, "%s%s (missing)", used ? ", " : "", path);
    return 0;
}

// models/ of the source tree the executable was built from (where scripts/install-deps.sh puts the
// vocabulary), and models/ beside the executable's folder (build/clipneg -> models/), for a
// tree that was moved after the build.
static int try_install_places(ClipTokenizer **out, char *tried, size_t cap, int *rc) {
#ifdef CLIPNEG_MODELS_DIR
    if (try_location(out, CLIPNEG_MODELS_DIR, tried, cap, rc)) return 1;
#endif
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return 0;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return 0;
    *slash = '\0';
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/../models", exe);
#ifdef CLIPNEG_MODELS_DIR
    char a[PATH_MAX], b[PATH_MAX];  // the same folder as above: do not list it twice
    if (realpath(dir, a) && realpath(CLIPNEG_MODELS_DIR, b) && !strcmp(a, b)) return 0;
#endif
    return try_location(out, dir, tried, cap, rc);
}

int tokenizer_load_auto(ClipTokenizer **out, const char *explicit_path, const char *model_dir) {
    *out = NULL;
    char tried[16384] = "";
    int rc = CN_OK;
    if (explicit_path && *explicit_path) {
        if (try_location(out, explicit_path, tried, sizeof tried, &rc)) return rc;
        return cn_fail(CN_E_MODEL, "tokenizer vocabulary not found: looked at %s", tried);
    }
    if (model_dir && *model_dir && try_location(out, model_dir, tried, sizeof tried, &rc)) return rc;
    // $CLIPNEG_BPE, when set, is a choice like --vocab: a wrong one is an error, not a reason to
    // take another vocabulary
    const char *env = getenv("CLIPNEG_BPE");
    if (env && *env) {
        if (try_location(out, env, tried, sizeof tried, &rc)) return rc;
    } else {
        size_t used = strlen(tried);
        snprintf(tried + used, sizeof tried - used, "%s$CLIPNEG_BPE (unset)", used ? ", " : "");
        if (try_install_places(out, tried, sizeof tried, &rc)) return rc;
    }
    return cn_fail(CN_E_MODEL,
                   "tokenizer vocabulary not found: looked at %s. Use the model folder's vocab.json + merges.txt, "
                   "or open_clip's bpe_simple_vocab_16e6.txt.gz (scripts/install-deps.sh copies it to models/), "
                   "via --vocab / [model] tokenizer / $CLIPNEG_BPE",
                   tried);
}

const char *tokenizer_token_str(const ClipTokenizer *t, int32_t id) {
    if (!t || id < 0 || id >= t->n_vocab) return NULL;
    return t->tok_str[id];
}
