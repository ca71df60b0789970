// test_check.h — the assertion macros of the C unit tests that compare plain values (config,
// dataset, variants, items): a failed check prints FILE:LINE and the expression with both values,
// counts in g_failures and the test goes on, so one run lists every failure; main() returns 1 when
// g_failures > 0.
#pragma once
#include <stdio.h>
#include <string.h>

static int g_failures = 0;

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            g_failures++;                                                   \
        }                                                                   \
    } while (0)

#define CHECK_INT(a, b)                                                                                \
    do {                                                                                               \
        long long _a = (long long)(a), _b = (long long)(b);                                            \
        if (_a != _b) {                                                                                \
            fprintf(stderr, "FAIL %s:%d: %s = %lld, expected %lld\n", __FILE__, __LINE__, #a, _a, _b); \
            g_failures++;                                                                              \
        }                                                                                              \
    } while (0)

#define CHECK_STR(a, b)                                                                                   \
    do {                                                                                                  \
        const char *_a = (a), *_b = (b);                                                                  \
        if (!_a || strcmp(_a, _b)) {                                                                      \
            fprintf(stderr, "FAIL %s:%d: %s = '%s', expected '%s'\n", __FILE__, __LINE__, #a,             \
                    _a ? _a : "(null)", _b);                                                              \
            g_failures++;                                                                                 \
        }                                                                                                 \
    } while (0)

// CHECK_MSG(cond, fmt, ...): the same with a printf-style explanation (tokenizer, image, model
// loading, safetensors, reduce statistics).
#define CHECK_MSG(cond, ...)                                         \
    do {                                                             \
        if (!(cond)) {                                               \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);     \
            fprintf(stderr, __VA_ARGS__);                            \
            fputc('\n', stderr);                                     \
            g_failures++;                                            \
        }                                                            \
    } while (0)
