// half.c — IEEE binary16 <-> binary32, the one copy: fp16 checkpoints (safetensors.c) and the
// float16 /similarity/full dataset (eval_similarity.c). Matches numpy's astype (tests/test_half.c).
#include "clipneg/half.h"

#include <math.h>
#include <string.h>

uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t exp = (x >> 23) & 0xffu;
    uint32_t mant = x & 0x7fffffu;
    if (exp == 0xff) return (uint16_t)(sign | (mant ? 0x7e00u : 0x7c00u)); // NaN (quiet) or inf
    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00u); // overflow -> inf (as numpy)
    if (e <= 0) {
        // half subnormal: m * 2^-24 with m = (1.mant) * 2^(exp-126) = M >> (14 - e)
        if (e < -10) return (uint16_t)sign; // below half the smallest subnormal: +-0
        uint32_t M = mant | 0x800000u;
        int shift = 14 - e;
        uint32_t m = M >> shift, rem = M & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (m & 1))) m++; // nearest, ties to even
        return (uint16_t)(sign | m);
    }
    uint32_t h = sign | ((uint32_t)e << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++; // a carry into the exponent is correct
    return (uint16_t)h;
}

// Exact for every input: a half subnormal m * 2^-24 is a normal float.
float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    uint32_t x;
    if (exp == 0x1f)
        x = sign | 0x7f800000u | (mant << 13);
    else if (exp == 0) {
        float v = ldexpf((float)mant, -24);
        return sign ? -v : v;
    } else
        x = sign | ((exp - 15 + 127) << 23) | (mant << 13);
    float f;
    memcpy(&f, &x, 4);
    return f;
}
