// fuzz_pylit.c — the Python list-literal reader (src/dataset_pylit.c) on arbitrary bytes. Oracles:
// a failure sets a message and returns no list; a success returns n strings that are each no longer
// than 4x the input (\x escapes grow to at most 2 bytes, \u to 3, \U to 4 for 6-10 input bytes);
// writing the strings back as a literal (write_back: quotes, backslashes and control bytes escaped)
// and reading that again gives the same strings.
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/dataset_bench_internal.h"

// ['s0', 's1', ...] with \\, \' and every byte outside printable ASCII escaped as \ooo (octal: a
// byte value < 0x80 is one code point; >= 0x80 bytes are UTF-8 and are kept raw, which the reader
// copies through unchanged).
static char *write_back(char **list, int n, size_t *len) {
    size_t cap = 16, k = 0;
    for (int i = 0; i < n; i++) cap += 4 * strlen(list[i]) + 4;
    char *out = malloc(cap);
    out[k++] = '[';
    for (int i = 0; i < n; i++) {
        if (i) out[k++] = ',';
        out[k++] = '\'';
        for (const unsigned char *p = (const unsigned char *)list[i]; *p; p++) {
            if (*p == '\\' || *p == '\'') {
                out[k++] = '\\';
                out[k++] = (char)*p;
            } else if (*p < 0x20 || *p == 0x7f) {
                k += (size_t)snprintf(out + k, 5, "\\%03o", *p);
            } else {
                out[k++] = (char)*p;
            }
        }
        out[k++] = '\'';
    }
    out[k++] = ']';
    *len = k;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char **list = NULL, err[256];
    int n = -1;
    err[0] = 0;
    if (pylit_str_list((const char *)data, size, &list, &n, err, sizeof err) != 0) {
        if (list || n != 0 || !err[0]) abort();
        return 0;
    }
    for (int i = 0; i < n; i++)
        if (strlen(list[i]) > 4 * size) abort();
    size_t len = 0;
    char *back = write_back(list, n, &len);
    char **again = NULL;
    int m = 0;
    if (pylit_str_list(back, len, &again, &m, err, sizeof err) != 0 || m != n) abort();
    for (int i = 0; i < n; i++)
        if (strcmp(list[i], again[i])) abort();
    pylit_free(list, n);
    pylit_free(again, m);
    free(back);
    return 0;
}
