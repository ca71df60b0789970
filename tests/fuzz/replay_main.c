// replay_main.c — runs a fuzz target's LLVMFuzzerTestOneInput on every file of the folders given on
// the command line, without libFuzzer. So the seed corpora and the hostile inputs of
// tests/data/bad/<target>/ (crash reproducers of past fuzzing included) are replayed by every
// normal build — Release and ASan+UBSan with gcc — not only by the clang fuzz build.
// Usage: replay_<target> DIR... ; exit 0 when every input ran (a crash or a broken oracle aborts).
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// Replay every regular file of `dir` in name order; returns the count (-1: folder unreadable).
static int replay_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "replay: cannot open %s\n", dir);
        return -1;
    }
    char **names = NULL;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        names = reallocCheck(names, (size_t)(n + 1) * sizeof *names);
        names[n++] = strdupCheck(e->d_name);
    }
    closedir(d);
    if (n > 1) qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        char *buf = NULL;
        size_t len = 0;
        if (cn_read_file(path, &buf, &len) != CN_OK) {
            fprintf(stderr, "replay: %s\n", cn_last_error());
            exit(1);
        }
        fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
        // an exact-size copy, so ASan sees a read past the input as libFuzzer would
        uint8_t *exact = mallocCheck(len ? len : 1);
        memcpy(exact, buf, len);
        free(buf);
        LLVMFuzzerTestOneInput(exact, len);
        free(exact);
        free(names[i]);
    }
    free(names);
    return n;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    int total = 0;
    for (int i = 1; i < argc; i++) {
        int n = replay_dir(argv[i]);
        if (n < 0) return 1;
        total += n;
    }
    printf("replayed %d inputs\n", total);
    return total > 0 ? 0 : 1; // an empty replay tests nothing
}
