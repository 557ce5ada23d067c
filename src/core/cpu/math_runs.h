// Runs of the elementwise maths functions that need more than one `omp simd` loop over
// the run: sin/cos (a vectorised pass and a libm fix-up), log (two passes), Powf (log,
// exponents, split exp) and integer powers (unrolled per exponent). Each gives the scalar
// function's values (vmath.h, scalar_ops.h) to the bit. Include from eval.h, after its
// KERNOPS_SIMD macros. No R headers here.
#pragma once
#include "isa.h"
#include <cmath>

#include "../scalar_ops.h"
#include "../vmath.h"
#include "exp_run.h"
#include "span.h"

namespace kernops {
namespace cpu {
inline namespace KERNOPS_ISA {

// po[b] = sin(px[b]) (Shift 0) or cos(px[b]) (Shift 1), bit for bit vmath::sin / cos: one
// vectorised pass, then the scalar function for the lanes that pass kept (double |x| > 1e6,
// float |x| > 8192: Note [float trig]; inf, NaN), found again from their values, which lie
// outside [-1, 1]. po may be px.
template <int Shift, class T>
inline void trig_run(T* po, const T* px, int n) {
  int kept = 0;
  KERNOPS_SIMD_REDUCE(|, kept)
  for (int b = 0; b < n; ++b) {
    const T x = px[b];
    kept |= !vmath::trig_in_range(x);
    po[b] = vmath::sincos_or_keep<Shift>(x);
  }
  if (!kept) return;
  for (int b = 0; b < n; ++b)  // a kept x has |x| > 2, or is NaN
    if (!(std::fabs(po[b]) <= T(2))) po[b] = Shift == 0 ? vmath::sin(po[b]) : vmath::cos(po[b]);
}

// po[b] = vmath::log(px[b]) as two vectorised passes, vmath::log_reduce (up to the
// division) then vmath::log_finish, bit for bit: 10-15% faster than one loop in a
// microbenchmark written during development (the chain is shorter, as with the exp). k
// goes through po, f and s through the scratch runs sf and ss; po must not be px.
template <class T>
inline void log_run(T* po, const T* px, int n, T* sf, T* ss) {
  KERNOPS_SIMD
  for (int b = 0; b < n; ++b) {
    const vmath::LogReduced<T> r = vmath::log_reduce(px[b]);
    po[b] = r.k;
    sf[b] = r.f;
    ss[b] = r.s;
  }
  KERNOPS_SIMD
  for (int b = 0; b < n; ++b) po[b] = vmath::log_finish(px[b], vmath::LogReduced<T>{po[b], sf[b], ss[b]});
}

// Component k of Powf(a, e), FPowf::f to the bit: log a as a log run (or once, for a
// broadcast a), the exponents e log a, then exp as a split exp run (Note [Split exp]); one
// loop doing log and exp was a chain the out-of-order window could not overlap. po is
// not an input (every instruction has its own slot).
template <class T>
inline void powf_run(T* po, const Span<T>& a, const Span<T>& e, int k, int n, const Scratch<T>& s) {
  if (a.bc) {  // one log for the run
    const T la = vmath::log(*a.comp(k));
    const T* pe = contiguous(e, k, n, s.a);
    KERNOPS_SIMD
    for (int b = 0; b < n; ++b) po[b] = FPowf::exponent_of_log(la, pe[b]);
  } else {
    const T* pa = a.comp(k);
    log_run(po, pa, n, s.b, s.c);
    if (e.bc) {
      const T ve = *e.comp(k);
      KERNOPS_SIMD
      for (int b = 0; b < n; ++b) po[b] = FPowf::exponent_of_log(po[b], ve);
    } else {
      const T* pe = e.comp(k);
      KERNOPS_SIMD
      for (int b = 0; b < n; ++b) po[b] = FPowf::exponent_of_log(po[b], pe[b]);
    }
  }
  exp_run<ExpRange::Any>(po, n, s.b, s.c, [po](int b) { return vload(po + b); }, [po](int b) { return po[b]; });
  // Negative bases (FPowf::negative_base), found by one vectorised pass.
  const T* pa = a.comp(k);
  int neg = 0;
  if (a.bc) {
    neg = *pa < T(0);
  } else {
    KERNOPS_SIMD_REDUCE(|, neg)
    for (int b = 0; b < n; ++b) neg |= pa[b] < T(0);
  }
  if (!neg) return;
  for (int b = 0; b < n; ++b) {
    const T ab = a.bc ? *pa : pa[b];
    if (ab < T(0)) po[b] = FPowf::negative_base(ab, e.bc ? *e.comp(k) : e.comp(k)[b]);
  }
}

// po[b] = pow_int(px[b], e): |e| up to kPowUnrolled through pow_steps (vectorised), up to
// kPowBySquaringMax point by point, larger ones through pow_by_log (vectorised). po may be px.
constexpr unsigned kPowUnrolled = 16;
template <unsigned M, class T>
inline void pow_run_from(T* po, const T* px, int n, unsigned m, bool inverse) {
  if constexpr (M > kPowUnrolled) {
    const int e = inverse ? -static_cast<int>(m) : static_cast<int>(m);
    if (m > kPowBySquaringMax) {
      KERNOPS_SIMD
      for (int b = 0; b < n; ++b) po[b] = pow_by_log(px[b], e);
      return;
    }
    for (int b = 0; b < n; ++b) po[b] = pow_int(px[b], e);
  } else if (m != M) {
    pow_run_from<M + 1>(po, px, n, m, inverse);
  } else if (inverse) {
    KERNOPS_SIMD
    for (int b = 0; b < n; ++b) po[b] = pow_steps<M>(T(1), T(1) / px[b]);
  } else {
    KERNOPS_SIMD
    for (int b = 0; b < n; ++b) po[b] = pow_steps<M>(T(1), px[b]);
  }
}
template <class T>
inline void pow_run(T* po, const T* px, int n, int e) {
  pow_run_from<0>(po, px, n, e < 0 ? static_cast<unsigned>(-static_cast<long>(e)) : static_cast<unsigned>(e), e < 0);
}

}  // namespace KERNOPS_ISA
}  // namespace cpu
}  // namespace kernops
