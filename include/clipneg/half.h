// half.h — IEEE binary16 (half precision) <-> binary32 conversion on the CPU (src/half.c).
#ifndef CLIPNEG_HALF_H
#define CLIPNEG_HALF_H

#include <stdint.h>

// Round to nearest, ties to even (as numpy's astype(np.float16)); NaN stays NaN, overflow -> inf.
uint16_t f32_to_f16(float f);
// Exact for every input (subnormals included); inf and NaN are kept.
float f16_to_f32(uint16_t h);

#endif
