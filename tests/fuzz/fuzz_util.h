// fuzz_util.h — helpers shared by the libFuzzer targets: inputs that the API reads from files are
// written to a per-process temp folder in /tmp (tmpfs speed is not needed at these sizes). The
// folder and every file written there are removed at exit, so long campaigns leave nothing behind.
#ifndef CLIPNEG_FUZZ_UTIL_H
#define CLIPNEG_FUZZ_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUZZ_MAX_TEMP 16

static char fuzz_dir_[256];
static char fuzz_names_[FUZZ_MAX_TEMP][512]; // files and (trailing '/') folders to remove at exit
static int fuzz_n_names_;

static inline void fuzz_cleanup_(void) {
    for (int i = fuzz_n_names_ - 1; i >= 0; i--) {
        size_t n = strlen(fuzz_names_[i]);
        if (n && fuzz_names_[i][n - 1] == '/') rmdir(fuzz_names_[i]);
        else unlink(fuzz_names_[i]);
    }
    rmdir(fuzz_dir_);
}

static inline void fuzz_remember_(const char *path) {
    for (int i = 0; i < fuzz_n_names_; i++)
        if (!strcmp(fuzz_names_[i], path)) return;
    if (fuzz_n_names_ == FUZZ_MAX_TEMP) abort();
    snprintf(fuzz_names_[fuzz_n_names_++], sizeof fuzz_names_[0], "%s", path);
}

// The per-process folder (created on first use).
static inline const char *fuzz_temp_dir(void) {
    if (!fuzz_dir_[0]) {
        snprintf(fuzz_dir_, sizeof fuzz_dir_, "/tmp/clipneg-fuzz-%d", (int)getpid());
        if (mkdir(fuzz_dir_, 0700) != 0) abort();
        atexit(fuzz_cleanup_);
    }
    return fuzz_dir_;
}

// Write `data` to <temp dir>/<name> and return the path (a static buffer, valid until the next call).
static inline const char *fuzz_write_temp(const char *name, const unsigned char *data, size_t size) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", fuzz_temp_dir(), name);
    fuzz_remember_(path);
    FILE *fp = fopen(path, "wb");
    if (!fp) abort();
    if (size && fwrite(data, 1, size, fp) != size) abort();
    if (fclose(fp) != 0) abort();
    return path;
}

// Create <temp dir>/<name>/ (removed at exit).
static inline void fuzz_make_temp_dir(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/", fuzz_temp_dir(), name);
    mkdir(path, 0700);
    fuzz_remember_(path);
}

static inline char *fuzz_cstr(const unsigned char *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
