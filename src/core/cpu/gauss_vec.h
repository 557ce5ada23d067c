// The Gaussian kernel exp(s |x_i - y_j|^2), s <= 0, over a tile row, written with explicit
// vectors (Note [Gaussian runs]). Include from radial.h. No R headers here.
#pragma once
#include "isa.h"
#include <cmath>

#include "../vmath.h"
#include "span.h"
#include "vec.h"

namespace kernops {
namespace cpu {
inline namespace KERNOPS_ISA {

// Note [Gaussian runs]
// The Gaussian is the kernel of most workloads (W1, W2 and their gradients), so it gets
// its own loops instead of phi_run's `omp simd` ones, with the same two passes
// (Note [Split exp]) and the same results to the bit:
// * pass 1 computes a = s r2 and the reduced argument (r, t) of exp(a). It needs no
//   range clamp made of bit operations: for a decaying kernel (s <= 0) a <= 0, and one
//   vector max against -clamp (NaN kept) does what vmath::exp_reduce does for |x| > 750.
//   The compiler's auto-vectorised loop spent ~8 instructions on that clamp.
// * It also keeps the largest r2 of the run. When max r2 * |s| <= 708 (float: 87), every
//   2^n is a normal number and pass 2 scales by one multiplication by 2^n built from t's
//   bits; vmath::exp_finish's two multiplications (2^n1 * 2^n2, needed for subnormal
//   results) produce the same bits there. Runs with farther points take those two.
// * A growing kernel (s > 0, or NaN) keeps the generic loops (phi_run).
// With the pointers held in locals (no reloads after each store, as through Scratch),
// this runs ~30% faster than phi_run on W1 (bench/RESULTS.md, 2026-11-27).
template <class T>
struct GaussLimits;
template <>
struct GaussLimits<double> {
  static constexpr double one_scale = 708;  // |a| below: 2^n is normal
};
template <>
struct GaussLimits<float> {
  static constexpr float one_scale = 87;
};

// Pass 2 over the first nv values: out = exp_finish(r, t), with one or two scalings.
template <bool OneScale, class T>
inline void gauss_finish(T* __restrict out, const T* __restrict rb, const T* __restrict tb, int nv) {
  using C = vmath::ExpConst<T>;
  constexpr int W = KERNOPS_VBYTES / static_cast<int>(sizeof(T));
  for (int q = 0; q < nv; q += W) {
    const Vec<T> p = vmath::exp_poly<T>(vload(rb + q));
    const VecBits<T> bt = (VecBits<T>)vload(tb + q);
    if constexpr (OneScale) {
      vstore(out + q, p * (Vec<T>)((bt + C::bias) << C::mant_bits));
    } else {
      const VecBits<T> bh = (VecBits<T>)((VecUBits<T>)bt >> 1);
      const Vec<T> s1 = (Vec<T>)((bh + C::bias) << C::mant_bits);
      const Vec<T> s2 = (Vec<T>)((bt - bh + C::bias) << C::mant_bits);
      vstore(out + q, (p * s1) * s2);
    }
  }
}

// out[b] = exp(s * r2(b)) for b < n, r2(b) the squared distance of lane b computed by
// `r2v(b)` (a vector of lanes b .. b+W-1) or `r2s(b)` (one lane, for the tail), exactly
// as the scalar code computes it. Returns false, having written nothing, when s is not
// <= 0: the caller then takes the generic loops.
template <class T, class R2V, class R2S>
inline bool gauss_run(T* out, int n, T s, T* __restrict rb, T* __restrict tb, R2V&& r2v, R2S&& r2s) {
  if (!(s <= 0)) return false;
  using C = vmath::ExpConst<T>;
  constexpr int W = KERNOPS_VBYTES / static_cast<int>(sizeof(T));
  const int nv = n / W * W;
  const Vec<T> vs = vbroadcast(s), lo = vbroadcast(static_cast<T>(-C::clamp));
  Vec<T> r2max = vbroadcast(T(0));
  for (int b = 0; b < nv; b += W) {
    const Vec<T> r2 = r2v(b);
    r2max = r2max > r2 ? r2max : r2;
    const vmath::ExpReduced<Vec<T>> e = vmath::exp_reduce_clamped<T>(vmax_keep_nan(lo, r2 * vs));
    vstore(rb + b, e.r);
    vstore(tb + b, e.t);
  }
  T m = 0;
  for (int l = 0; l < W; ++l) m = r2max[l] > m ? r2max[l] : m;
  if (m * -s <= GaussLimits<T>::one_scale)
    gauss_finish<true>(out, rb, tb, nv);
  else
    gauss_finish<false>(out, rb, tb, nv);
  for (int b = nv; b < n; ++b) out[b] = vmath::exp(r2s(b) * s);
  return true;
}

}  // namespace KERNOPS_ISA
}  // namespace cpu
}  // namespace kernops
