// fuzz_util.h — helpers shared by the libFuzzer targets: inputs that the API reads from files are
// written to a per-process temp folder in /tmp (tmpfs-speed is not needed at these sizes).
#ifndef CLIPNEG_FUZZ_UTIL_H
#define CLIPNEG_FUZZ_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static inline const char *fuzz_write_temp(const char *name, const unsigned char *data, size_t size) {
    static char dir[256];
    static char path[512];
    if (!dir[0]) snprintf(dir, sizeof dir, "/tmp/clipneg-fuzz-%d", (int)getpid());
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (!fp) abort();
    if (size && fwrite(data, 1, size, fp) != size) abort();
    fclose(fp);
    return path;
}

static inline char *fuzz_cstr(const unsigned char *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
