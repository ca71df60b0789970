// test_half.c — float32 -> float16 conversion used for /similarity/full against numpy's
// astype(np.float16) (tests/fixtures/f16_vectors.txt from tests/reference/make_f16_vectors.py):
// bit-exact, ties to even, subnormals, overflow to inf, NaN stays NaN. f16 -> f32 (used by the fp16
// checkpoint loader) is checked for all 65536 halves against the format's definition,
// (-1)^s * 2^(e-15) * (1 + m/1024), subnormals 2^-14 * m/1024, computed in double with ldexp:
// exact, no tolerance. Also every finite half survives f16 -> f32 -> f16 unchanged, and the HDF5
// half type is 2 bytes with 10 mantissa bits.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/h5out.h"
#include "clipneg/half.h"

int main(void) {
    const char *src = getenv("CLIPNEG_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/f16_vectors.txt", src ? src : ".");
    FILE *fp = fopen(path, "r");
    if (!fp) {
        fprintf(stderr, "FAIL: cannot open %s\n", path);
        return 1;
    }
    unsigned fbits, hbits;
    int n = 0, fails = 0;
    while (fscanf(fp, "%x %x", &fbits, &hbits) == 2) {
        float f;
        uint32_t b = fbits;
        memcpy(&f, &b, 4);
        uint16_t got = f32_to_f16(f);
        int is_nan = (hbits & 0x7c00) == 0x7c00 && (hbits & 0x3ff);
        int ok = is_nan ? ((got & 0x7c00) == 0x7c00 && (got & 0x3ff)) : got == hbits;
        if (!ok && fails++ < 10) fprintf(stderr, "FAIL: %08x (%.9g) -> %04x, numpy %04x\n", fbits, f, got, hbits);
        n++;
    }
    fclose(fp);
    for (unsigned h = 0; h < 0x10000; h++) {
        unsigned e = (h >> 10) & 0x1f, m = h & 0x3ff;
        double want = e == 0x1f ? (m ? NAN : INFINITY) : e ? ldexp(1024 + m, (int)e - 25) : ldexp(m, -24);
        if (h & 0x8000) want = -want;
        float got = f16_to_f32((uint16_t)h);
        int ok = isnan(want) ? isnan(got) : ((double)got == want && !signbit(got) == !signbit(want));
        if (!ok && fails++ < 20) fprintf(stderr, "FAIL: f16_to_f32(%04x) = %.9g, want %.9g\n", h, got, want);
    }
    for (unsigned h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue; // NaN payloads are not preserved
        uint16_t back = f32_to_f16(f16_to_f32((uint16_t)h));
        if (back != h && fails++ < 20) fprintf(stderr, "FAIL: roundtrip %04x -> %04x\n", h, back);
    }
    hid_t t = h5_half_type();
    if (t < 0 || H5Tget_size(t) != 2 || H5Tget_precision(t) != 16 || H5Tget_class(t) != H5T_FLOAT) {
        fprintf(stderr, "FAIL: HDF5 half type is not a 2-byte float\n");
        fails++;
    } else {
        size_t spos, epos, esize, mpos, msize;
        H5Tget_fields(t, &spos, &epos, &esize, &mpos, &msize);
        if (spos != 15 || epos != 10 || esize != 5 || mpos != 0 || msize != 10 || H5Tget_ebias(t) != 15) {
            fprintf(stderr, "FAIL: half fields %zu %zu %zu %zu %zu\n", spos, epos, esize, mpos, msize);
            fails++;
        }
        H5Tclose(t);
    }
    if (n < 500) {
        fprintf(stderr, "FAIL: only %d vectors read\n", n);
        return 1;
    }
    printf("half: %d numpy vectors, 65536 exact f16 -> f32, 65536 roundtrips, %d failures\n", n, fails);
    return fails ? 1 : 0;
}
