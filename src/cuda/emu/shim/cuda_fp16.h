// cuda_fp16.h — FAKE binary16 for the CPU emulator: GCC's _Float16 (round-to-nearest-even).
#pragma once
struct __half { _Float16 v; };
static inline __half __float2half_rn(float x) { __half h; h.v = (_Float16)x; return h; }
static inline __half __float2half(float x) { return __float2half_rn(x); }
static inline float __half2float(__half h) { return (float)h.v; }
