// exp over a run of values, in explicit vectors and two passes (Note [Split exp], Note
// [Vector exp runs]). Include from eval.h. No R headers here.
#pragma once
#include "isa.h"

#include "../vmath.h"
#include "vec.h"

namespace kernops {
namespace cpu {
inline namespace KERNOPS_ISA {

// Note [Split exp]
// One loop computing exp has a dependency chain of ~65 cycles per vector (clamp,
// reduction, degree-11 polynomial, scaling): the out-of-order window then holds fewer than
// three iterations and the loop runs at ~4 cycles per double on AVX2, half the machine's
// throughput. Split into two passes through L1 scratch, vmath::exp_reduce() then
// vmath::exp_finish(), each chain is short and the same work runs at ~3 cycles per double.
//
// Note [Vector exp runs]
// The passes are written with explicit vectors rather than left to the `omp simd`
// vectoriser, and give vmath::exp's results to the bit:
// * The range clamp of vmath::exp_reduce (|x| <= 750, NaN kept) is one vector max and one
//   min (ExpRange::Any), or only the max when the arguments cannot be positive (the
//   Gaussian kernel's s r2 with s < 0, Laplace's and Matern's -sqrt(s r2) with s > 0,
//   LogSumExp's F - max F): the auto-vectorised bit blends of the scalar code took ~8
//   instructions.
// * Pass 1 also keeps the smallest (and largest) argument of the run. When all lie in
//   [-708, 708] (float: 87), every 2^n is a normal number and pass 2 scales by one
//   multiplication by 2^n built from t's bits; exp_finish's two multiplications
//   (2^n1 * 2^n2, needed for subnormal results) give the same bits there. Runs with
//   other arguments take those two. When no argument can be NaN (the radial kernels
//   above, from finite coordinates: the arguments are in [-inf, 0]), n is added to the
//   exponent bits instead (Scaling::ExponentAdd), one FMA-port operation less per vector.
// On W1 (Gaussian convolution) the kernel went from ~16 to ~11.5 cycles per vector of
// four doubles in an L1-resident microbenchmark written during development (not kept);
// bench/RESULTS.md has the whole-workload numbers.

// The arguments' possible values: any, or <= 0 (or NaN), or <= 0 and never NaN.
enum class ExpRange { Any, NonPositive, NonPositiveNoNaN };

template <class T>
struct OneScaleLimit;
template <>
struct OneScaleLimit<double> {
  static constexpr double value = 708;  // |x| below: 2^n is a normal double
  // Pass 1's lower clamp: n = round(x log2(e)) is then >= -1023, whose 2^n built from t's
  // bits is +0 (biased exponent 0), so below -708.9 one multiplication gives exactly 0.
  static constexpr double flush = -708.9;  // x log2(e) = -1022.7
};
template <>
struct OneScaleLimit<float> {
  static constexpr float value = 87;
  static constexpr float flush = -88.0f;  // x log2(e) = -126.96: n = -127, 2^n = +0
};

// How pass 2 applies 2^n: two multiplications (any argument), one multiplication (all
// arguments in +-OneScaleLimit), or an integer addition of n to the exponent field of
// e^r (the same, when no argument is NaN: a NaN's payload bits would be added to), which
// keeps the multiplication off the FMA ports.
enum class Scaling { Two, One, ExponentAdd };

// What exp_run stores: by default the exp values themselves; a caller may instead give a
// function post(b, e) of the values e at b .. b+W-1 (a vector) or at b alone (a scalar),
// applied in pass 2 before the store (the Matern kernels' polynomial), which saves a pass.
struct ExpValues {
  template <class V>
  V operator()(int, V e) const {
    return e;
  }
};

// Pass 2 over the first nv values: out = post(exp_finish(r, t)). out may be r (each lane
// is read before it is written).
template <Scaling S, class T, class Post>
inline void exp_finish_run(T* out, const T* r, const T* t, int nv, Post post) {
  using C = vmath::ExpConst<T>;
  constexpr int W = KERNOPS_VBYTES / static_cast<int>(sizeof(T));
  for (int q = 0; q < nv; q += W) {
    const Vec<T> p = vmath::exp_poly<T>(vload(r + q));
    const VecBits<T> bt = (VecBits<T>)vload(t + q);
    Vec<T> e;
    if constexpr (S == Scaling::ExponentAdd) {
      e = (Vec<T>)((VecBits<T>)p + (bt << C::mant_bits));  // bits(round)'s low bits are 0
    } else if constexpr (S == Scaling::One) {
      e = p * (Vec<T>)((bt + C::bias) << C::mant_bits);
    } else {
      const VecBits<T> bh = (VecBits<T>)((VecUBits<T>)bt >> 1);
      const Vec<T> s1 = (Vec<T>)((bh + C::bias) << C::mant_bits);
      const Vec<T> s2 = (Vec<T>)((bt - bh + C::bias) << C::mant_bits);
      e = (p * s1) * s2;
    }
    vstore(out + q, post(q, e));
  }
}

// out[b] = exp(x_b) for b < n, bit for bit vmath::exp (or post(b, exp(x_b)), see
// ExpValues). `argv(b)` gives the vector of arguments b .. b+W-1, `args(b)` argument b
// alone (for the tail), computed the same way. r may be out; t is a scratch run of n
// values; neither may be read by the arguments or post.
// The functions are taken by value and should capture by value: then what they hold is
// local to this frame and stays in registers; through references, every store to r or t
// could change it, and the loop reloaded pointers and vectors (-20% on W1).
template <ExpRange Range, class T, class ArgV, class ArgS, class Post = ExpValues>
inline void exp_run(T* out, int n, T* r, T* t, ArgV argv, ArgS args, Post post = {}) {
  using C = vmath::ExpConst<T>;
  constexpr int W = KERNOPS_VBYTES / static_cast<int>(sizeof(T));
  const int nv = n / W * W;
  // Reductions run with subnormal results flushed to zero (Note [Subnormals] in fp_env.h),
  // so arguments below OneScaleLimit::flush, whose exp is below the normal range, are
  // clamped there and give 0 through the one-multiplication scaling: a Gaussian at a small
  // bandwidth, or LogSumExp's exp(F - max F) over far points, then costs what it costs at an
  // ordinary scale (before: the two-multiplication path for the whole run). Normal results
  // keep vmath::exp's bits.
  // Where the platform cannot flush (kFlushBits == 0), the full range as before.
  constexpr bool flushing = kFlushBits != 0;
  const Vec<T> lo = vbroadcast(flushing ? OneScaleLimit<T>::flush : static_cast<T>(-C::clamp));
  const Vec<T> hi = vbroadcast(static_cast<T>(C::clamp));
  Vec<T> xmin = vbroadcast(T(0)), xmax = xmin;
  for (int b = 0; b < nv; b += W) {
    Vec<T> x = argv(b);
    xmin = xmin < x ? xmin : x;
    x = vmax_keep_nan(lo, x);
    if constexpr (Range == ExpRange::Any) {
      xmax = xmax > x ? xmax : x;
      x = vmin_keep_nan(hi, x);
    }
    const vmath::ExpReduced<Vec<T>> e = vmath::exp_reduce_clamped<T>(x);
    vstore(r + b, e.r);
    vstore(t + b, e.t);
  }
  T lowest = 0, highest = 0;  // NaN lanes may be dropped here: they are NaN either way
  for (int l = 0; l < W; ++l) {
    lowest = xmin[l] < lowest ? xmin[l] : lowest;
    highest = xmax[l] > highest ? xmax[l] : highest;
  }
  const T limit = OneScaleLimit<T>::value;
  if (!(highest <= limit) || (!flushing && !(lowest >= -limit)))
    exp_finish_run<Scaling::Two>(out, r, t, nv, post);
  else if (!(lowest >= -limit))  // 2^n may be +0 (n = -1023): the exponent add would wrap
    exp_finish_run<Scaling::One>(out, r, t, nv, post);
  else if (Range == ExpRange::NonPositiveNoNaN)
    exp_finish_run<Scaling::ExponentAdd>(out, r, t, nv, post);
  else
    exp_finish_run<Scaling::One>(out, r, t, nv, post);
  for (int b = nv; b < n; ++b) out[b] = post(b, vmath::exp(args(b)));
}

}  // namespace KERNOPS_ISA
}  // namespace cpu
}  // namespace kernops
