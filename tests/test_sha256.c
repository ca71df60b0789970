// test_sha256.c — src/sha256.c against Python hashlib digests (tests/fixtures/sha256_vectors.txt,
// made by tests/reference/make_sha256_vectors.py): one-shot, streamed in odd-sized pieces, and
// from a file (the path the evaluator uses for model weights). Exact match required: it is a hash.
#define _POSIX_C_SOURCE 200809L // mkstemp
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clipneg/common.h"
#include "clipneg/sha256.h"

static uint8_t *make(const char *pattern, size_t n) {
    uint8_t *b = mallocCheck(n + 1);
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(pattern, "a"))
            b[i] = 'a';
        else if (!strcmp(pattern, "abc"))
            b[i] = (uint8_t) "abc"[i % 3];
        else
            b[i] = (uint8_t)((i * 7 + 3) % 256);
    }
    return b;
}

int main(void) {
    const char *src = getenv("CLIPNEG_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/sha256_vectors.txt", src ? src : ".");
    FILE *fp = fopen(path, "r");
    if (!fp) {
        fprintf(stderr, "FAIL: cannot open %s\n", path);
        return 1;
    }
    int fails = 0, n_cases = 0;
    size_t n;
    char pattern[16], want[80];
    while (fscanf(fp, "%zu %15s %79s", &n, pattern, want) == 3) {
        n_cases++;
        uint8_t *b = make(pattern, n);
        char got[65], got_stream[65], got_file[65];
        sha256_buffer_hex(b, n, got);
        // streamed in pieces of 1, 2, 3, ... bytes: exercises every partial-block path
        Sha256 s;
        uint8_t d[32];
        sha256_init(&s);
        size_t off = 0, piece = 1;
        while (off < n) {
            size_t take = CN_MIN(piece, n - off);
            sha256_update(&s, b + off, take);
            off += take;
            piece = piece % 97 + 1;
        }
        sha256_final(&s, d);
        sha256_hex(d, got_stream);
        char tmp[] = "/tmp/clipneg_sha256_XXXXXX";
        int fd = mkstemp(tmp);
        if (fd < 0 || write(fd, b, n) != (ssize_t)n) {
            fprintf(stderr, "FAIL: temp file\n");
            return 1;
        }
        close(fd);
        if (sha256_file_hex(tmp, got_file) != CN_OK) {
            fprintf(stderr, "FAIL: %s\n", cn_last_error());
            return 1;
        }
        unlink(tmp);
        int ok = !strcmp(got, want) && !strcmp(got_stream, want) && !strcmp(got_file, want);
        printf("%s %8zu %-5s %s\n", ok ? "ok  " : "FAIL", n, pattern, got);
        if (!ok) {
            fprintf(stderr, "  want   %s\n  stream %s\n  file   %s\n", want, got_stream, got_file);
            fails++;
        }
        free(b);
    }
    fclose(fp);
    if (n_cases < 10) {
        fprintf(stderr, "FAIL: only %d vectors read from %s\n", n_cases, path);
        return 1;
    }
    // a missing file is an error with a message, not a crash
    char hex[65];
    if (sha256_file_hex("/nonexistent/clipneg.bin", hex) != CN_E_IO || !strstr(cn_last_error(), "/nonexistent")) {
        fprintf(stderr, "FAIL: missing file not reported: '%s'\n", cn_last_error());
        fails++;
    }
    printf("%d/%d vectors ok\n", n_cases - fails, n_cases);
    return fails ? 1 : 0;
}
