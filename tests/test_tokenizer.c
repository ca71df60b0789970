// test_tokenizer.c — the C tokenizer against open_clip 2.24.0's golden ids.
//
//   test_tokenizer [HF_DIR]
//
// Golden data: tests/fixtures/tokenizer/golden.jsonl.gz, written by
// tests/reference/make_tokenizer_golden.py with open_clip (every coco-mini caption, the captions in
// the 4 seed prompts, ~1,500 seeded stress strings). Checks, each failing the test on any mismatch:
//  1. every caption of $CLIPNEG_SHARED/.../captions_val2017.json (and its 4 prompts) is in the golden;
//  2. tokenizer_encode (context 77 and 16) and tokenizer_encode_raw equal open_clip, for the
//     vocabulary loaded from bpe_simple_vocab_16e6.txt.gz and (if HF_DIR holds one) from an HF copy;
//  3. both BPE algorithms (short-word loop and heap) give the golden ids;
//  4. encoding from 4 OpenMP threads gives the same ids (thread safety);
//  5. error handling: missing/corrupt vocabularies, bad arguments;
//  6. the `clipneg tokenize` command prints the golden ids and reports truncation.
// Prints the throughput on the caption texts. Exit 77 (skip) when the shared BPE file is missing.
#define _POSIX_C_SOURCE 200809L
#include <cJSON.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "../src/tokenizer_internal.h"
#include "clipneg/common.h"
#include "clipneg/tokenizer.h"
#include "test_check.h"

typedef struct {
    char *name;
    char *text; // input bytes, NUL-terminated (the golden never holds NUL bytes)
    int32_t ids[CLIP_CONTEXT];
    int n_ids, trunc, n_raw;
    int32_t *raw; // only for truncated strings, else NULL
    int has16, trunc16;
    int32_t ids16[16];
} Golden;


// ---- golden file ------------------------------------------------------------------------------

static char *gz_line(gzFile f) {
    size_t cap = 1 << 16, len = 0;
    char *buf = mallocCheck(cap);
    for (;;) {
        if (!gzgets(f, buf + len, (int)(cap - len))) break;
        len += strlen(buf + len);
        if (len && buf[len - 1] == '\n') return buf;
        buf = reallocCheck(buf, cap *= 2);
    }
    if (len) return buf;
    free(buf);
    return NULL;
}

static int read_ids(const cJSON *arr, int32_t *out, int max) {
    int n = 0;
    for (const cJSON *it = arr ? arr->child : NULL; it; it = it->next) {
        if (n == max) return -1;
        out[n++] = (int32_t)it->valueint;
    }
    return n;
}

static int hex_nibble(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static Golden *load_golden(const char *path, int *count) {
    gzFile f = gzopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open golden file %s\n", path);
        exit(1);
    }
    int cap = 4096, n = 0;
    Golden *g = callocCheck((size_t)cap, sizeof(Golden));
    char *line;
    while ((line = gz_line(f))) {
        cJSON *o = cJSON_Parse(line);
        if (!o) {
            fprintf(stderr, "%s: line %d is not JSON\n", path, n + 1);
            exit(1);
        }
        if (n == cap) g = reallocCheck(g, (size_t)(cap *= 2) * sizeof(Golden));
        Golden *e = &g[n];
        memset(e, 0, sizeof *e);
        e->name = strdupCheck(cJSON_GetObjectItem(o, "id")->valuestring);
        const char *hex = cJSON_GetObjectItem(o, "x")->valuestring;
        size_t hl = strlen(hex);
        e->text = mallocCheck(hl / 2 + 1);
        for (size_t i = 0; i < hl / 2; i++) {
            int hi = hex_nibble(hex[2 * i]), lo = hex_nibble(hex[2 * i + 1]);
            if (hi < 0 || lo < 0 || (hi | lo) == 0) {
                fprintf(stderr, "%s: %s: bad hex or NUL byte\n", path, e->name);
                exit(1);
            }
            e->text[i] = (char)(hi * 16 + lo);
        }
        e->text[hl / 2] = 0;
        e->n_ids = read_ids(cJSON_GetObjectItem(o, "ids"), e->ids, CLIP_CONTEXT);
        e->trunc = cJSON_GetObjectItem(o, "trunc")->valueint;
        e->n_raw = cJSON_GetObjectItem(o, "n_raw")->valueint;
        const cJSON *raw = cJSON_GetObjectItem(o, "raw");
        if (raw) {
            e->raw = mallocCheck((size_t)e->n_raw * sizeof(int32_t));
            if (read_ids(raw, e->raw, e->n_raw) != e->n_raw) {
                fprintf(stderr, "%s: %s: raw length differs from n_raw\n", path, e->name);
                exit(1);
            }
        }
        const cJSON *i16 = cJSON_GetObjectItem(o, "ids16");
        if (i16) {
            e->has16 = read_ids(i16, e->ids16, 16) == 16;
            e->trunc16 = cJSON_GetObjectItem(o, "trunc16")->valueint;
        }
        if (e->n_ids < 2) {
            fprintf(stderr, "%s: %s: malformed ids\n", path, e->name);
            exit(1);
        }
        cJSON_Delete(o);
        free(line);
        n++;
    }
    gzclose(f);
    *count = n;
    return g;
}

// The full BPE ids open_clip gives (without SOT/EOT).
static const int32_t *golden_raw(const Golden *e) { return e->raw ? e->raw : e->ids + 1; }

static void print_ids(const char *label, const int32_t *ids, int n) {
    fprintf(stderr, "    %s (%d):", label, n);
    for (int i = 0; i < n && i < 40; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, n > 40 ? " ...\n" : "\n");
}

// ---- the golden comparison --------------------------------------------------------------------------

// Compare one golden entry; returns 0 if everything matches.
static int check_entry(const ClipTokenizer *tok, const Golden *e, size_t simple_max, int verbose) {
    int32_t ids[CLIP_CONTEXT], ids16[16];
    int trunc = -1, trunc16 = -1, bad = 0;
    int n = tokenizer_encode(tok, e->text, CLIP_CONTEXT, ids, &trunc);
    if (n != e->n_ids || trunc != e->trunc || memcmp(ids, e->ids, (size_t)e->n_ids * sizeof(int32_t))) bad |= 1;
    for (int i = e->n_ids; i < CLIP_CONTEXT; i++) bad |= ids[i] != 0 ? 1 : 0;
    if (e->has16) {
        int n16 = tokenizer_encode(tok, e->text, 16, ids16, &trunc16);
        if (n16 < 2 || trunc16 != e->trunc16 || memcmp(ids16, e->ids16, sizeof ids16)) bad |= 2;
    }
    int32_t *raw = NULL;
    int nr = simple_max == (size_t)-1 ? tokenizer_encode_raw(tok, e->text, &raw)
                                      : tokenizer_encode_raw_bpe_mode(tok, e->text, simple_max, &raw);
    if (nr != e->n_raw || memcmp(raw, golden_raw(e), (size_t)e->n_raw * sizeof(int32_t))) bad |= 4;
    if (bad && verbose) {
        fprintf(stderr, "  MISMATCH %s (1: ids/77, 2: ids/16, 4: raw; got %d), truncated open_clip %d clipneg %d, text \"%.200s\"\n",
                e->name, bad, e->trunc, trunc, e->text);
        print_ids("open_clip", e->ids, e->n_ids);
        print_ids("clipneg  ", ids, n);
        if (bad & 4) {
            print_ids("open_clip raw", golden_raw(e), e->n_raw);
            print_ids("clipneg raw  ", raw, nr);
        }
    }
    free(raw);
    return bad;
}

// Returns the number of mismatching entries; prints per-family counts.
static int check_golden(const ClipTokenizer *tok, const Golden *g, int n, size_t simple_max, const char *label) {
    int caps = 0, caps_ok = 0, stress = 0, stress_ok = 0, shown = 0;
    for (int i = 0; i < n; i++) {
        int is_cap = !strncmp(g[i].name, "caption:", 8);
        int bad = check_entry(tok, &g[i], simple_max, shown < 5);
        if (bad) shown++;
        if (is_cap) caps++, caps_ok += !bad;
        else stress++, stress_ok += !bad;
    }
    printf("%s: %d/%d caption texts and %d/%d stress strings match open_clip\n", label, caps_ok, caps, stress_ok,
           stress);
    return (caps - caps_ok) + (stress - stress_ok);
}

// ---- checks -----------------------------------------------------------------------------------------

// Every caption of the shared coco-mini annotations (and its 4 prompts) must be in the golden.
static void check_caption_coverage(const char *shared, const Golden *g, int n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/data/coco-mini/annotations/captions_val2017.json", shared);
    char *data = NULL;
    size_t len = 0;
    if (cn_read_file(path, &data, &len) != CN_OK) {
        CHECK_MSG(0, "cannot read %s: the golden cannot be checked against the captions", path);
        return;
    }
    cJSON *root = cJSON_ParseWithLength(data, len);
    const cJSON *anns = cJSON_GetObjectItem(root, "annotations");
    static const char *const prompts[4][2] = {
        {"this_is", "This is %s"}, {"not", "Not %s"}, {"this_is_not", "This is not %s"}, {"absolutely_no", "There is absolutely no %s"}};
    int n_caps = 0, found = 0;
    for (const cJSON *a = anns ? anns->child : NULL; a; a = a->next) {
        const char *cap = cJSON_GetObjectItem(a, "caption")->valuestring;
        long id = (long)cJSON_GetObjectItem(a, "id")->valuedouble;
        for (int p = -1; p < 4; p++) {
            char name[256], text[8192];
            if (p < 0) {
                snprintf(name, sizeof name, "caption:%ld", id);
                snprintf(text, sizeof text, "%s", cap);
            } else {
                snprintf(name, sizeof name, "caption:%ld:%s", id, prompts[p][0]);
                snprintf(text, sizeof text, prompts[p][1], cap);
            }
            n_caps++;
            for (int i = 0; i < n; i++) {
                if (!strcmp(g[i].name, name)) {
                    CHECK_MSG(!strcmp(g[i].text, text), "golden %s has a different text than the annotations", name);
                    found++;
                    break;
                }
            }
        }
    }
    printf("caption coverage: %d/%d caption texts of %s are in the golden\n", found, n_caps, path);
    CHECK_MSG(n_caps > 0 && found == n_caps, "golden is missing caption texts: re-run tests/reference/make_tokenizer_golden.py");
    cJSON_Delete(root);
    free(data);
}

static void check_threads(const ClipTokenizer *tok, const Golden *g, int n) {
    int bad = 0;
#pragma omp parallel for num_threads(4) schedule(dynamic, 16) reduction(+ : bad)
    for (int i = 0; i < n; i++) bad += check_entry(tok, &g[i], (size_t)-1, 0) != 0;
    printf("threads: %d/%d strings match when encoded from 4 OpenMP threads\n", n - bad, n);
    CHECK_MSG(bad == 0, "%d strings differ when tokenized concurrently", bad);
}

static void check_errors(const char *bpe_path) {
    ClipTokenizer *t = (ClipTokenizer *)1;
    CHECK_MSG(tokenizer_load_bpe(&t, "/nonexistent/bpe.txt.gz") == CN_E_MODEL && t == NULL, "missing file: CN_E_MODEL");
    CHECK_MSG(strstr(cn_last_error(), "/nonexistent/bpe.txt.gz") != NULL, "message names the file: %s", cn_last_error());
    char tmp[256];
    snprintf(tmp, sizeof tmp, "/tmp/clipneg_test_tok_%d.txt", (int)getpid());
    FILE *f = fopenCheck(tmp, "w");
    fputs("#version: 0.2\ni n\nt h\n", f); // far too short
    fcloseCheck(f);
    CHECK_MSG(tokenizer_load_bpe(&t, tmp) == CN_E_MODEL && t == NULL, "short merges file: CN_E_MODEL");
    CHECK_MSG(strstr(cn_last_error(), "lines") != NULL, "message says why: %s", cn_last_error());
    f = fopenCheck(tmp, "w");
    fputs("{\"a\": 1}", f);
    fcloseCheck(f);
    CHECK_MSG(tokenizer_load_hf(&t, tmp, "/nonexistent/merges.txt") == CN_E_MODEL && t == NULL, "HF: missing merges");
    CHECK_MSG(tokenizer_load_hf(&t, tmp, bpe_path) == CN_E_MODEL && t == NULL, "HF: tiny vocab.json rejected");
    CHECK_MSG(strstr(cn_last_error(), "ids up to") != NULL, "message says why: %s", cn_last_error());
    remove(tmp);
    CHECK_MSG(tokenizer_load_auto(&t, "/nonexistent/dir", NULL) == CN_E_MODEL, "explicit path missing");
    CHECK_MSG(strstr(cn_last_error(), "/nonexistent/dir") != NULL, "lists the place: %s", cn_last_error());
    const char *old = getenv("CLIPNEG_BPE");
    char *saved = old ? strdupCheck(old) : NULL;
    unsetenv("CLIPNEG_BPE");
    // Last place looked at: models/ of the source tree it was built from (the tests run there),
    // where scripts/install-deps.sh puts the vocabulary.
    int rc_models = tokenizer_load_auto(&t, NULL, "/nonexistent/model");
    if (access("models/bpe_simple_vocab_16e6.txt.gz", R_OK) == 0) {
        CHECK_MSG(rc_models == CN_OK && t, "finds models/bpe_simple_vocab_16e6.txt.gz: %s", cn_last_error());
    } else {
        CHECK_MSG(rc_models == CN_E_MODEL, "nothing found");
        CHECK_MSG(strstr(cn_last_error(), "/nonexistent/model") && strstr(cn_last_error(), "CLIPNEG_BPE") &&
                      strstr(cn_last_error(), "/models/"),
                  "lists every place: %s", cn_last_error());
    }
    tokenizer_free(t);
    t = NULL;
    setenv("CLIPNEG_BPE", bpe_path, 1);
    CHECK_MSG(tokenizer_load_auto(&t, NULL, "/nonexistent/model") == CN_OK && t, "falls back to $CLIPNEG_BPE");
    int32_t ids[CLIP_CONTEXT];
    int tr = 5;
    CHECK_MSG(tokenizer_encode(t, "a cat", 1, ids, &tr) < 0 && tr == 0, "context 1 is an error");
    CHECK_MSG(tokenizer_encode(t, NULL, CLIP_CONTEXT, ids, &tr) < 0, "NULL text is an error");
    CHECK_MSG(tokenizer_encode(t, "a cat", 2, ids, &tr) == 2 && tr == 1 && ids[0] == CLIP_SOT && ids[1] == CLIP_EOT,
          "context 2: SOT EOT, truncated");
    CHECK_MSG(tokenizer_encode(t, "", CLIP_CONTEXT, ids, &tr) == 2 && tr == 0 && ids[2] == 0, "empty text: SOT EOT");
    CHECK_MSG(tokenizer_encode(t, "a cat", CLIP_CONTEXT, ids, NULL) == 4, "truncated may be NULL");
    CHECK_MSG(!strcmp(tokenizer_token_str(t, 320), "a</w>") && !strcmp(tokenizer_token_str(t, CLIP_SOT), "<start_of_text>") &&
              tokenizer_token_str(t, -1) == NULL && tokenizer_token_str(t, CLIP_EOT + 1) == NULL,
          "tokenizer_token_str");
    tokenizer_free(t);
    if (saved) setenv("CLIPNEG_BPE", saved, 1);
    else unsetenv("CLIPNEG_BPE");
    free(saved);
}

// Run `clipneg tokenize` on golden texts through stdin and compare its output lines.
static void check_cli(const char *bin, const char *bpe_path, const Golden *g, int n) {
    char in[256], out[256], err[256], cmd[16384];
    snprintf(in, sizeof in, "/tmp/clipneg_test_tok_in_%d.txt", (int)getpid());
    snprintf(out, sizeof out, "/tmp/clipneg_test_tok_out_%d.txt", (int)getpid());
    snprintf(err, sizeof err, "/tmp/clipneg_test_tok_err_%d.txt", (int)getpid());
    FILE *f = fopenCheck(in, "w");
    int *used = mallocCheck((size_t)n * sizeof(int)), nu = 0, trunc_line = -1;
    for (int i = 0; i < n && nu < 200; i++) {
        if (strpbrk(g[i].text, "\r\n") || (i % 7 && !g[i].trunc)) continue; // one text per line
        if (g[i].trunc && trunc_line < 0) trunc_line = nu;
        fprintf(f, "%s\n", g[i].text);
        used[nu++] = i;
    }
    fcloseCheck(f);
    snprintf(cmd, sizeof cmd, "'%s' tokenize --vocab '%s' < '%s' > '%s' 2> '%s'", bin, bpe_path, in, out, err);
    int rc = system(cmd);
    CHECK_MSG(rc == 0, "clipneg tokenize exited with %d", rc);
    f = fopenCheck(out, "r");
    char line[65536];
    int ok = 0;
    for (int k = 0; k < nu && fgets(line, sizeof line, f); k++) {
        const Golden *e = &g[used[k]];
        char want[4096];
        int w = 0;
        for (int i = 0; i < e->n_ids; i++) w += snprintf(want + w, sizeof want - (size_t)w, i ? " %d" : "%d", e->ids[i]);
        line[strcspn(line, "\n")] = 0;
        ok += !strcmp(line, want);
    }
    fcloseCheck(f);
    printf("cli: %d/%d lines of `clipneg tokenize` match open_clip\n", ok, nu);
    CHECK_MSG(nu > 0 && ok == nu, "clipneg tokenize output differs");
    if (trunc_line >= 0) {
        f = fopenCheck(err, "r");
        char want[64];
        snprintf(want, sizeof want, "# truncated: text %d", trunc_line);
        int seen = 0;
        while (fgets(line, sizeof line, f)) seen |= strstr(line, want) != NULL;
        fcloseCheck(f);
        CHECK_MSG(seen, "stderr lacks '%s'", want);
    }
    snprintf(cmd, sizeof cmd, "'%s' tokenize --context 1 x > /dev/null 2>&1", bin);
    rc = system(cmd);
    CHECK_MSG(WIFEXITED(rc) && WEXITSTATUS(rc) == CN_E_USAGE, "bad --context exits %d", CN_E_USAGE);
    snprintf(cmd, sizeof cmd, "'%s' tokenize --vocab /nonexistent x > /dev/null 2>&1", bin);
    rc = system(cmd);
    CHECK_MSG(WIFEXITED(rc) && WEXITSTATUS(rc) == CN_E_MODEL, "missing vocabulary exits %d", CN_E_MODEL);
    remove(in);
    remove(out);
    remove(err);
    free(used);
}

// Inputs far outside the golden (no reference can BPE a 100 KB word in useful time): they must
// finish, give a well-formed truncated row, and stay inside the vocabulary.
static void check_big_inputs(const ClipTokenizer *tok) {
    size_t n = 100000;
    char *s = mallocCheck(n + 1);
    uint32_t x = 12345;
    for (int kind = 0; kind < 3; kind++) {
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            s[i] = kind == 0 ? 'a' : kind == 1 ? (char)(1 + (x >> 16) % 255) : "ab &;#<\n\xc3"[(x >> 16) % 9];
        }
        s[n] = 0;
        int32_t ids[CLIP_CONTEXT];
        int trunc = 0;
        double t0 = cn_now();
        int r = tokenizer_encode(tok, s, CLIP_CONTEXT, ids, &trunc);
        int ok = r == CLIP_CONTEXT && trunc == 1 && ids[0] == CLIP_SOT && ids[CLIP_CONTEXT - 1] == CLIP_EOT;
        for (int i = 1; i < CLIP_CONTEXT - 1; i++) ok &= ids[i] >= 0 && ids[i] < CLIP_SOT;
        CHECK_MSG(ok, "100 KB input of kind %d: malformed row (ret %d, truncated %d)", kind, r, trunc);
        int32_t *raw = NULL;
        int nr = tokenizer_encode_raw(tok, s, &raw);
        CHECK_MSG(nr > CLIP_CONTEXT && !memcmp(raw, ids + 1, (CLIP_CONTEXT - 2) * sizeof(int32_t)),
              "100 KB input of kind %d: encode_raw disagrees with encode", kind);
        free(raw);
        printf("big input %d (100 KB): %d raw tokens, %.2f s\n", kind, nr, cn_now() - t0);
    }
    free(s);
}

static void throughput(const ClipTokenizer *tok, const Golden *g, int n) {
    int32_t ids[CLIP_CONTEXT];
    long texts = 0, tokens = 0;
    double t0 = cn_now(), t = 0;
    do {
        for (int i = 0; i < n; i++) {
            if (strncmp(g[i].name, "caption:", 8)) continue;
            int trunc;
            tokens += tokenizer_encode(tok, g[i].text, CLIP_CONTEXT, ids, &trunc) - 2;
            texts++;
        }
        t = cn_now() - t0;
    } while (t < 0.5);
    printf("throughput (1 thread, coco caption texts): %.0f tokens/s, %.0f texts/s (%ld texts in %.2f s)\n",
           tokens / t, texts / t, texts, t);
}

int main(int argc, char **argv) {
    const char *shared = getenv("CLIPNEG_SHARED") ? getenv("CLIPNEG_SHARED") : "../shared";
    const char *src = getenv("CLIPNEG_SOURCE_DIR") ? getenv("CLIPNEG_SOURCE_DIR") : ".";
    char bpe[4096], golden_path[4096];
    snprintf(bpe, sizeof bpe, "%s/data/clip-bpe/bpe_simple_vocab_16e6.txt.gz", shared);
    snprintf(golden_path, sizeof golden_path, "%s/tests/fixtures/tokenizer/golden.jsonl.gz", src);
    if (access(bpe, R_OK) != 0) {
        printf("SKIP: CLIP BPE vocabulary not found at %s (set CLIPNEG_SHARED)\n", bpe);
        return 77;
    }
    int n = 0;
    Golden *g = load_golden(golden_path, &n);
    printf("golden: %d strings from %s\n", n, golden_path);
    check_caption_coverage(shared, g, n);

    ClipTokenizer *tok = NULL;
    double t0 = cn_now();
    int rc = tokenizer_load_bpe(&tok, bpe);
    CHECK_MSG(rc == CN_OK, "load %s: %s", bpe, cn_last_error());
    if (rc) return 1;
    printf("loaded %s in %.3f s\n", bpe, cn_now() - t0);
    CHECK_MSG(check_golden(tok, g, n, (size_t)-1, "bpe vocabulary") == 0, "golden mismatches (bpe vocabulary)");
    CHECK_MSG(check_golden(tok, g, n, 0, "bpe vocabulary, heap BPE for every word") == 0, "golden mismatches (heap BPE)");
    CHECK_MSG(check_golden(tok, g, n, (size_t)1 << 30, "bpe vocabulary, simple BPE for every word") == 0,
          "golden mismatches (simple BPE)");
    check_threads(tok, g, n);

    if (argc > 1) { // HF-format copy written by tests/reference/make_hf_vocab.py
        char vj[4096], mt[4096];
        snprintf(vj, sizeof vj, "%s/vocab.json", argv[1]);
        snprintf(mt, sizeof mt, "%s/merges.txt", argv[1]);
        if (access(vj, R_OK) == 0) {
            ClipTokenizer *hf = NULL;
            rc = tokenizer_load_auto(&hf, argv[1], NULL);
            CHECK_MSG(rc == CN_OK, "load HF folder %s: %s", argv[1], cn_last_error());
            if (rc == CN_OK) {
                CHECK_MSG(check_golden(hf, g, n, (size_t)-1, "HF vocab.json + merges.txt") == 0, "golden mismatches (HF)");
                int same = 1;
                for (int id = 0; id < CLIP_SOT; id++) same &= !strcmp(tokenizer_token_str(hf, id), tokenizer_token_str(tok, id));
                CHECK_MSG(same, "HF and BPE vocabularies give different token strings");
                tokenizer_free(hf);
            }
        } else {
            printf("SKIP part: no HF vocabulary in %s\n", argv[1]);
        }
    }
    check_errors(bpe);
    check_big_inputs(tok);
    const char *bin = getenv("CLIPNEG_BIN");
    if (bin && access(bin, X_OK) == 0) check_cli(bin, bpe, g, n);
    else printf("SKIP part: $CLIPNEG_BIN not set, `clipneg tokenize` not checked\n");
    throughput(tok, g, n);
    tokenizer_free(tok);
    for (int i = 0; i < n; i++) {
        free(g[i].name);
        free(g[i].text);
        free(g[i].raw);
    }
    free(g);
    if (g_failures) {
        fprintf(stderr, "%d check(s) failed\n", g_failures);
        return 1;
    }
    printf("all tokenizer checks passed\n");
    return 0;
}
