// test_safetensors.c — the safetensors parser on hand-made good and bad buffers, the dtype
// conversions on known bit patterns, and the file-level entry point on a committed fixture.
// Every bad input must fail with CN_E_MODEL and a message naming the file and the problem.
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clipneg/common.h"
#include "clipneg/safetensors.h"
#include "test_check.h"

// u64 header length | header | data
static uint8_t *make_buf(const char *header, const void *data, size_t data_len, uint64_t claimed_len, size_t *size) {
    size_t hl = strlen(header);
    *size = 8 + hl + data_len;
    uint8_t *b = mallocCheck(*size);
    uint64_t n = claimed_len ? claimed_len : hl;
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(n >> (8 * i));
    memcpy(b + 8, header, hl);
    if (data_len) memcpy(b + 8 + hl, data, data_len);
    return b;
}

// Parse `header` + `data_len` zero bytes; expect failure mentioning `needle` (and the file name).
static void expect_bad(const char *what, const char *header, size_t data_len, uint64_t claimed, const char *needle) {
    uint8_t zeros[64] = {0};
    size_t size;
    uint8_t *b = make_buf(header, zeros, data_len, claimed, &size);
    SafeTensors st;
    int rc = safetensors_parse(&st, b, size, "bad.safetensors");
    CHECK_MSG(rc == CN_E_MODEL, "%s: expected CN_E_MODEL, got %d", what, rc);
    CHECK_MSG(strstr(cn_last_error(), needle) != NULL, "%s: message '%s' lacks '%s'", what, cn_last_error(), needle);
    CHECK_MSG(strstr(cn_last_error(), "bad.safetensors") != NULL, "%s: message '%s' lacks the file name", what,
          cn_last_error());
    CHECK_MSG(st.n == 0 && st.tensors == NULL, "%s: state not cleared after failure", what);
    safetensors_close(&st);  // harmless after a failure
    free(b);
}

static void test_good(void) {
    // a: F32 [2] = {1.5, -2}; b: F16 [6] bit patterns; c: BF16 [2]; d: I64 [2]; e: empty F32 [0, 3]
    uint8_t data[48] = {0};
    float a[2] = {1.5f, -2.0f};
    memcpy(data, a, 8);
    // F16: smallest subnormal 2^-24, largest normal 65504, -2, +inf, 1/3 (0x3555 = 0.333251953125), -0
    uint16_t h[6] = {0x0001, 0x7bff, 0xc000, 0x7c00, 0x3555, 0x8000};
    memcpy(data + 8, h, 12);
    uint16_t bf[2] = {0x3f80, 0x4049};  // 1.0, 3.140625
    memcpy(data + 20, bf, 4);
    int64_t ids[2] = {49406, 49407};
    memcpy(data + 24, ids, 16);
    const char *hdr =
        "{\"__metadata__\":{\"format\":\"pt\",\"images\":\"[\\\"x.jpg\\\"]\"},"
        "\"z_b\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[8,20]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"c\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[20,24]},"
        "\"d\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[24,40]},"
        "\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[40,40]},"
        "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[40,44]}}   ";
    size_t size;
    uint8_t *b = make_buf(hdr, data, 48, 0, &size);
    SafeTensors st;
    int rc = safetensors_parse(&st, b, size, "good.safetensors");
    CHECK_MSG(rc == CN_OK, "good buffer rejected: %s", cn_last_error());
    if (rc != CN_OK) {
        free(b);
        return;
    }
    CHECK_MSG(st.n == 6, "expected 6 tensors, got %d", st.n);
    CHECK_MSG(st.n_meta == 2, "expected 2 metadata entries, got %d", st.n_meta);
    const char *img = safetensors_metadata(&st, "images");
    CHECK_MSG(img && !strcmp(img, "[\"x.jpg\"]"), "metadata 'images' = %s", img ? img : "(null)");
    CHECK_MSG(safetensors_metadata(&st, "nope") == NULL, "metadata lookup of a missing key");
    CHECK_MSG(safetensors_find(&st, "missing") == NULL, "find of a missing tensor");
    for (int i = 1; i < st.n; i++) CHECK_MSG(strcmp(st.tensors[i - 1].name, st.tensors[i].name) < 0, "not sorted");

    float out[8];
    StTensor *t = safetensors_find(&st, "a");
    CHECK_MSG(t && t->dtype == ST_F32 && t->ndim == 1 && t->numel == 2, "tensor a metadata");
    CHECK_MSG(t && safetensors_to_f32(t, out) == CN_OK && out[0] == 1.5f && out[1] == -2.0f, "F32 values");

    t = safetensors_find(&st, "z_b");
    CHECK_MSG(t && t->dtype == ST_F16 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3, "tensor z_b metadata");
    if (t && safetensors_to_f32(t, out) == CN_OK) {
        // exact: every half is representable in single precision
        CHECK_MSG(out[0] == 0x1p-24f, "f16 subnormal: %a", out[0]);
        CHECK_MSG(out[1] == 65504.0f, "f16 max: %g", out[1]);
        CHECK_MSG(out[2] == -2.0f, "f16 -2: %g", out[2]);
        CHECK_MSG(isinf(out[3]) && out[3] > 0, "f16 +inf: %g", out[3]);
        CHECK_MSG(out[4] == 0.333251953125f, "f16 1/3: %.12g", out[4]);
        CHECK_MSG(out[5] == 0.0f && 1.0f / out[5] < 0, "f16 -0: %g", out[5]);
    }
    t = safetensors_find(&st, "c");
    CHECK_MSG(t && t->dtype == ST_BF16 && safetensors_to_f32(t, out) == CN_OK && out[0] == 1.0f && out[1] == 3.140625f,
          "BF16 values %g %g", out[0], out[1]);

    t = safetensors_find(&st, "d");
    int32_t iv[2];
    CHECK_MSG(t && t->dtype == ST_OTHER && !strcmp(t->dtype_str, "I64"), "I64 dtype");
    CHECK_MSG(t && safetensors_to_i32(t, iv) == CN_OK && iv[0] == 49406 && iv[1] == 49407, "I64 -> i32 values");
    CHECK_MSG(t && safetensors_to_f32(t, out) == CN_E_MODEL && strstr(cn_last_error(), "I64"),
          "to_f32 must refuse I64: %s", cn_last_error());

    t = safetensors_find(&st, "e");
    CHECK_MSG(t && t->numel == 0 && t->begin == 40 && t->end == 40, "empty tensor");
    t = safetensors_find(&st, "s");
    CHECK_MSG(t && t->ndim == 0 && t->numel == 1, "scalar tensor");
    CHECK_MSG(safetensors_itemsize("BF16") == 2 && safetensors_itemsize("I64") == 8 && safetensors_itemsize("X") == 0,
          "itemsize");
    safetensors_close(&st);
    free(b);

    // I64 out of the int32 range
    int64_t big = (int64_t)1 << 40;
    b = make_buf("{\"t\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", &big, 8, 0, &size);
    CHECK_MSG(safetensors_parse(&st, b, size, "big.safetensors") == CN_OK, "big i64 parse");
    CHECK_MSG(safetensors_to_i32(&st.tensors[0], iv) == CN_E_MODEL && strstr(cn_last_error(), "int32"),
          "i64 out of range: %s", cn_last_error());
    safetensors_close(&st);
    free(b);
}

static void test_bad(void) {
    const char *ok1 = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    uint8_t tiny[5] = {1, 2, 3, 4, 5};
    SafeTensors st;
    CHECK_MSG(safetensors_parse(&st, tiny, 5, "bad.safetensors") == CN_E_MODEL && strstr(cn_last_error(), "too short"),
          "5-byte file: %s", cn_last_error());
    expect_bad("truncated data", ok1, 4, 0, "outside the data section");
    expect_bad("header longer than file", ok1, 8, 1000, "exceeds the file size");
    expect_bad("huge header length", ok1, 8, UINT64_MAX - 3, "exceeds the file size");
    expect_bad("zero header length", ok1, 8, 0 + 1, "empty safetensors header");
    expect_bad("bad JSON", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, 0, "not valid JSON");
    expect_bad("not an object", "[1, 2]", 0, 0, "does not start with '{'");
    expect_bad("garbage after JSON", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}xx", 8, 0,
               "unexpected bytes");
    expect_bad("wrong dtype string", "{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0,
               "unknown dtype \"F33\"");
    expect_bad("dtype not a string", "{\"a\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, "dtype");
    expect_bad("out-of-bounds offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,800]}}", 8, 0,
               "outside the data section");
    expect_bad("begin after end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8, 0,
               "outside the data section");
    expect_bad("size mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 16, 0,
               "needs 3 x 4");
    expect_bad("overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 16, 0, "overlap");
    expect_bad("overlap behind an empty tensor",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
               "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}", 16, 0, "overlap");
    expect_bad("duplicate name", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, 0, "appears twice");
    expect_bad("negative dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, 0,
               "shape[0] is not a non-negative integer");
    expect_bad("fractional dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", 8, 0,
               "shape[0]");
    expect_bad("numel overflow", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],"
               "\"data_offsets\":[0,8]}}", 8, 0, "overflows");
    expect_bad("bytes overflow", "{\"a\":{\"dtype\":\"F64\",\"shape\":[1125899906842624],"
               "\"data_offsets\":[0,8]}}", 8, 0, "needs");
    expect_bad("too many dims", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8,
               0, "dimensions");
    expect_bad("missing offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, 0, "data_offsets");
    expect_bad("offsets of 3", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]}}", 8, 0,
               "data_offsets");
    expect_bad("negative offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8, 0,
               "data_offsets");
    expect_bad("entry not an object", "{\"a\":3}", 0, 0, "not an object");
    expect_bad("metadata not strings", "{\"__metadata__\":{\"k\":1}}", 0, 0, "not a string");
}

static void test_files(void) {
    SafeTensors st;
    CHECK_MSG(safetensors_open(&st, "/nonexistent/x.safetensors") == CN_E_MODEL &&
              strstr(cn_last_error(), "/nonexistent/x.safetensors"),
          "missing file: %s", cn_last_error());
    CHECK_MSG(safetensors_open(&st, "tests") == CN_E_MODEL && strstr(cn_last_error(), "not a regular file"),
          "directory: %s", cn_last_error());
    char tmp[] = "/tmp/clipneg-st-XXXXXX";
    int fd = mkstemp(tmp);
    CHECK_MSG(fd >= 0, "mkstemp");
    if (fd >= 0) {
        close(fd);
        CHECK_MSG(safetensors_open(&st, tmp) == CN_E_MODEL && strstr(cn_last_error(), "too short"), "empty file: %s",
              cn_last_error());
        unlink(tmp);
    }
    // A committed fixture written by the Python safetensors library (tests/reference/make_fixtures.py).
    const char *path = "tests/fixtures/models/vit-tiny-openclip/expected.safetensors";
    int rc = safetensors_open(&st, path);
    CHECK_MSG(rc == CN_OK, "fixture: %s", cn_last_error());
    if (rc != CN_OK) return;
    const char *fx = safetensors_metadata(&st, "fixture");
    CHECK_MSG(fx && !strcmp(fx, "vit-tiny-openclip"), "fixture metadata: %s", fx ? fx : "(null)");
    StTensor *tok = safetensors_find(&st, "tokens");
    CHECK_MSG(tok && tok->ndim == 2 && tok->shape[1] == 77 && !strcmp(tok->dtype_str, "I64"), "tokens tensor");
    if (tok) {
        int32_t *ids = mallocCheck((size_t)tok->numel * sizeof(int32_t));
        CHECK_MSG(safetensors_to_i32(tok, ids) == CN_OK && ids[0] == 49406, "first token is SOT (49406): %d", ids[0]);
        free(ids);
    }
    StTensor *ls = safetensors_find(&st, "logit_scale");
    float v = 0;
    // exp(log(1/0.07)) = 14.2857...: the open_clip initial value the fixture keeps
    CHECK_MSG(ls && safetensors_to_f32(ls, &v) == CN_OK && v > 14.28f && v < 14.29f, "logit_scale %g", v);
    safetensors_close(&st);
}

int main(void) {
    test_good();
    test_bad();
    test_files();
    if (g_failures) {
        fprintf(stderr, "%d check(s) failed\n", g_failures);
        return 1;
    }
    printf("safetensors: all checks passed\n");
    return 0;
}
