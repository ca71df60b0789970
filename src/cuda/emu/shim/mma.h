// mma.h — FAKE WMMA (nvcuda::wmma) for the CPU emulator: the 16x16x16 subset attention.cu uses.
// Every lane of a warp holds the whole tile (a real fragment spreads it over the 32 lanes in an
// unspecified layout, which the backend never relies on); loads, products and stores are plain
// loops with fp32 accumulation, and every lane stores the same values.
#pragma once
#include "cuda_fp16.h"
#include "cuda_bf16.h"
#include <type_traits>
namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };
inline float emu_f(float x) { return x; }
inline float emu_f(__half x) { return __half2float(x); }
inline float emu_f(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename Use, int M, int N, int K, typename T, typename Layout = void> struct fragment {
    float v[16][16];  // [row][col] of the tile (A: M x K, B: K x N, accumulator: M x N)
};
template <typename U, typename T, typename L> inline void fill_fragment(fragment<U, 16, 16, 16, T, L> &f, float x) {
    for (auto &row : f.v)
        for (float &e : row) e = x;
}
template <typename U, typename T, typename L> inline void load_matrix_sync(fragment<U, 16, 16, 16, T, L> &f, const T *p, unsigned ldm) {
    const bool row = std::is_same<L, row_major>::value;
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) f.v[i][j] = emu_f(row ? p[i * ldm + j] : p[i + j * ldm]);
}
inline void store_matrix_sync(float *p, const fragment<accumulator, 16, 16, 16, float> &f, unsigned ldm, layout_t l) {
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) p[l == mem_row_major ? i * ldm + j : i + j * ldm] = f.v[i][j];
}
template <typename T, typename LA, typename LB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float> &d, const fragment<matrix_a, 16, 16, 16, T, LA> &a,
                     const fragment<matrix_b, 16, 16, 16, T, LB> &b, const fragment<accumulator, 16, 16, 16, float> &c) {
    fragment<accumulator, 16, 16, 16, float> r;
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            float s = c.v[i][j];
            for (int k = 0; k < 16; k++) s += a.v[i][k] * b.v[k][j];
            r.v[i][j] = s;
        }
    d = r;
}
}  // namespace wmma
}  // namespace nvcuda
