// Squared distances between a group of R rows x_i and a run of points y_j, register-blocked
// (Note [Blocked distances]). Include from cpu/tiles.h only: KERNOPS_VBYTES, the vector
// width of the translation unit, must be defined. No R headers here.
#pragma once
#include "isa.h"
#include <cstdint>
#include <cstring>

#include "vec.h"

namespace kernops {
namespace cpu {
inline namespace KERNOPS_ISA {

// Note [Blocked distances]
// In high dimension (D >= kBlockedSqDistDim) computing |x_i - y_j|^2 one row at a time
// reads every y_j coordinate once per row and keeps the partial sums in memory: the loop is
// bound by loads and stores, at ~1 coordinate per vector per 2 cycles. Here a group of R = 6
// rows is computed together like a small matrix product: for each coordinate d one vector
// load of y serves the six rows, whose coordinates are broadcast from a packed copy, and
// the 6 x 2 vectors of partial sums stay in registers until all D coordinates are added.
// Why six: each partial sum is a chain of FMAs (4 cycles each on Zen 4, two per cycle), so
// 8 chains (R = 4) leave no slack and ran at ~3.4 cycles per pair at D = 32, float32; 12
// chains ran at ~2.5-2.8 (an L1-resident microbenchmark written during development, not
// kept), W7 D = 32 7% faster (bench/RESULTS.md). Twelve accumulators, two y vectors, a
// broadcast and a difference are the 16 registers of AVX2 and SSE2.
// We keep the exact difference form sum_d (x_d - y_d)^2 rather than the GEMM identity
// |x|^2 + |y|^2 - 2<x, y>: that identity cancels catastrophically in float32 when the
// points are far from the origin compared with their distances (coordinates ~1000 apart by
// ~1 give distances that are pure rounding noise), and on the machines we measure
// (AMD Zen) the subtraction runs on the otherwise idle FP add pipes, so it costs nothing.
constexpr int kBlockRows = 6;

// out[r][b] = sum_d (xp[d*R + r] - y[d*cs + b])^2 for r < R, b < n. xp holds the group's
// coordinates packed by coordinate, y a run of points stored by coordinate (stride cs).
template <class T, int R>
void sqdist_block(T* const* out, const T* xp, const T* y, std::int64_t cs, int D, int n) {
  constexpr int W = KERNOPS_VBYTES / static_cast<int>(sizeof(T));
  int b = 0;
  for (; b + 2 * W <= n; b += 2 * W) {
    // The loops over r are unrolled so that the accumulators live in registers.
    Vec<T> a0[R], a1[R];
    _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) a0[r] = a1[r] = Vec<T>{};
    const T* yb = y + b;
    for (int d = 0; d < D; ++d) {
      const Vec<T> y0 = vload(yb + d * cs), y1 = vload(yb + d * cs + W);
      _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) {
        const Vec<T> xr = vbroadcast(xp[d * R + r]);
        const Vec<T> e0 = xr - y0, e1 = xr - y1;
        a0[r] += e0 * e0;
        a1[r] += e1 * e1;
      }
    }
    _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) {
      vstore(out[r] + b, a0[r]);
      vstore(out[r] + b + W, a1[r]);
    }
  }
  for (; b < n; ++b)
    for (int r = 0; r < R; ++r) {
      T a = 0;
      for (int d = 0; d < D; ++d) {
        const T e = xp[d * R + r] - y[d * cs + b];
        a += e * e;
      }
      out[r][b] = a;
    }
}

}  // namespace KERNOPS_ISA
}  // namespace cpu
}  // namespace kernops
