// Fused evaluation of a RadialKernel instruction (fuse.h) over a tile row: for each j of
// the run, r2 = |x_i - y_j|^2, then phi(r2) -- the distance, scaling and phi in one or two
// loops (Note [Split exp], Note [Vector exp runs]) instead of a pass through memory per
// instruction. The maths is written in the same order as the generic instructions it
// replaces, so both paths agree to the last bit or two. No R headers here.
#pragma once
#include "isa.h"
#include <cmath>
#include <type_traits>

#include "../errors.h"
#include "../fuse.h"
#include "../vmath.h"
#include "exp_run.h"
#include "span.h"

namespace kernops {
namespace cpu {
inline namespace KERNOPS_ISA {

template <RadialKind K>
constexpr bool kUsesExp = K != RadialKind::Cauchy && K != RadialKind::InvMultiquadric;
template <RadialKind K>
constexpr bool kMatern = K == RadialKind::Matern32 || K == RadialKind::Matern52;

// The exp kinds as phi = g(a, exp(a)): the argument a of the exp...
template <RadialKind K, class T>
KERNOPS_VMATH_INLINE T exp_argument(T r2, T s) {
  if constexpr (K == RadialKind::Gauss)
    return r2 * s;
  else
    return -std::sqrt(r2 * s);  // -v
}
// ...and the Matern polynomials in v = -a, spelled as the parser's kernels are, for lanes
// V of scalars T.
template <RadialKind K, class T, class V>
KERNOPS_VMATH_INLINE V matern(V a, V e) {
  if constexpr (K == RadialKind::Matern32)
    return (T(1) - a) * e;
  else
    return ((T(1) - a) + (a * a) * static_cast<T>(1.0 / 3)) * e;
}
// The other kinds, directly.
template <RadialKind K, class T>
KERNOPS_VMATH_INLINE T rational(T r2, T s, T c) {
  if constexpr (K == RadialKind::Cauchy)
    return T(1) / (c + r2 * s);
  else
    return T(1) / std::sqrt(c + r2 * s);
}

// out[b] = phi(r2(b)) over the run, for the kinds without exp.
template <RadialKind K, class T, class R2>
inline void rational_run(T* out, int n, T s, T c, R2&& r2) {
  KERNOPS_SIMD
  for (int b = 0; b < n; ++b) out[b] = rational<K>(r2(b), s, c);
}

// out[b] = phi(r2(b)) over the run, for the kinds with exp, in explicit vectors (Note
// [Vector exp runs]). r2v(b) gives the squared distances of lanes b .. b+W-1, r2s(b) that
// of lane b, computed alike. Range: what the arguments a can be.
template <RadialKind K, ExpRange Range, class T, class R2V, class R2S>
void exp_kind_run(T* out, int n, T s, const Scratch<T>& sc, R2V r2v, R2S r2s) {
  const Vec<T> vs = vbroadcast(s);
  const auto argv = [r2v, vs](int b) {
    if constexpr (K == RadialKind::Gauss)
      return r2v(b) * vs;
    else
      return -vsqrt(r2v(b) * vs);
  };
  const auto args = [r2s, s](int b) { return exp_argument<K>(r2s(b), s); };
  if constexpr (!kMatern<K>) {
    exp_run<Range>(out, n, sc.b, sc.c, argv, args);
  } else {  // pass 1 keeps the arguments, for the polynomial applied in pass 2
    T* a = sc.a;
    const auto keep_v = [a, argv](int b) {
      const auto x = argv(b);
      vstore(a + b, x);
      return x;
    };
    const auto keep_s = [a, args](int b) { return a[b] = args(b); };
    const auto poly = [a](int q, auto e) {
      if constexpr (std::is_same<decltype(e), T>::value)
        return matern<K, T>(a[q], e);
      else
        return matern<K, T>(vload(a + q), e);
    };
    exp_run<Range>(out, n, sc.b, sc.c, keep_v, keep_s, poly);
  }
}

// out[b] = phi(r2(b)) for every kind. The exp kinds' arguments are <= 0 and never NaN for
// a decaying kernel (the Gaussian with s < 0, the others with s > 0; coordinates are
// finite, check_args), which lets exp_run take its cheapest scaling.
template <RadialKind K, class T, class R2V, class R2S>
void radial_run(T* out, int n, T s, T c, const Scratch<T>& sc, R2V r2v, R2S r2s) {
  if constexpr (!kUsesExp<K>) {
    rational_run<K>(out, n, s, c, r2s);
  } else if (K == RadialKind::Gauss ? s < 0 : s > 0) {
    exp_kind_run<K, ExpRange::NonPositiveNoNaN>(out, n, s, sc, r2v, r2s);
  } else {
    exp_kind_run<K, ExpRange::Any>(out, n, s, sc, r2v, r2s);
  }
}

// Small dimensions: the coordinates of x_i live in registers and the distance is computed
// inside phi's first pass.
template <RadialKind K, int D, class T>
void radial_small(T* out, const Span<T>& x, const Span<T>& y, int n, T s, T c, const Scratch<T>& sc) {
  T xv[D];
  const T* yv[D];
  for (int d = 0; d < D; ++d) {
    xv[d] = *x.comp(d);
    yv[d] = y.comp(d);
  }
  // Squared distance of lane b, in the order (and so with the contractions) shared by
  // every path below.
  const auto r2s = [xv, yv](int b) {
    T r2 = 0;
    KERNOPS_PRAGMA(GCC unroll 4)
    for (int d = 0; d < D; ++d) {
      const T e = xv[d] - yv[d][b];
      r2 += e * e;
    }
    return r2;
  };
  Vec<T> xb[D];
  for (int d = 0; d < D; ++d) xb[d] = vbroadcast(xv[d]);
  const auto r2v = [xb, yv](int b) {
    Vec<T> r2 = vbroadcast(T(0));
    KERNOPS_PRAGMA(GCC unroll 4)
    for (int d = 0; d < D; ++d) {
      const Vec<T> e = xb[d] - vload(yv[d] + b);
      r2 = e * e + r2;
    }
    return r2;
  };
  radial_run<K>(out, n, s, c, sc, r2v, r2s);
}

// out[b] = |c - v_b|^2 for a point c constant over the run (a broadcast view) and a run of
// points v: one pass up to dimension 4, then four coordinates per pass over the output.
// Shared by SqDistFused (eval.h).
template <int D, class T>
void sqdist_to_run_small(T* out, const Span<T>& c, const Span<T>& v, int n) {
  T cv[D];
  const T* vv[D];
  for (int d = 0; d < D; ++d) {
    cv[d] = *c.comp(d);
    vv[d] = v.comp(d);
  }
  KERNOPS_SIMD
  for (int b = 0; b < n; ++b) {
    T r2 = 0;
    KERNOPS_PRAGMA(GCC unroll 4)
    for (int d = 0; d < D; ++d) {
      const T e = cv[d] - vv[d][b];
      r2 += e * e;
    }
    out[b] = r2;
  }
}

template <class T>
void sqdist_to_run(T* out, const Span<T>& c, const Span<T>& v, int n) {
  const int dim = c.dim;
  switch (dim) {  // small dimensions: one pass, the sum in registers
    case 1: sqdist_to_run_small<1>(out, c, v, n); return;
    case 2: sqdist_to_run_small<2>(out, c, v, n); return;
    case 3: sqdist_to_run_small<3>(out, c, v, n); return;
    case 4: sqdist_to_run_small<4>(out, c, v, n); return;
    default: break;
  }
  for (int b = 0; b < n; ++b) out[b] = 0;
  int k = 0;
  for (; k + 4 <= dim; k += 4) {
    const T c0 = *c.comp(k), c1 = *c.comp(k + 1), c2 = *c.comp(k + 2), c3 = *c.comp(k + 3);
    const T *v0 = v.comp(k), *v1 = v.comp(k + 1), *v2 = v.comp(k + 2), *v3 = v.comp(k + 3);
    KERNOPS_SIMD
    for (int b = 0; b < n; ++b) {
      const T e0 = c0 - v0[b], e1 = c1 - v1[b], e2 = c2 - v2[b], e3 = c3 - v3[b];
      out[b] += (e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3);
    }
  }
  for (; k < dim; ++k) {
    const T ck = *c.comp(k);
    const T* pv = v.comp(k);
    KERNOPS_SIMD
    for (int b = 0; b < n; ++b) out[b] += (ck - pv[b]) * (ck - pv[b]);
  }
}

// Any dimension: squared distances first, then phi.
template <RadialKind K, class T>
void radial_any(T* out, const Span<T>& x, const Span<T>& y, int n, T s, T c, const Scratch<T>& sc) {
  sqdist_to_run(out, x, y, n);
  const T* r2 = out;
  radial_run<K>(out, n, s, c, sc, [r2](int b) { return vload(r2 + b); }, [r2](int b) { return r2[b]; });
}

template <RadialKind K, class T>
void radial_dim(T* out, const Span<T>& x, const Span<T>& y, int n, T s, T c, const Scratch<T>& sc) {
  switch (x.dim) {
    case 1: radial_small<K, 1>(out, x, y, n, s, c, sc); return;
    case 2: radial_small<K, 2>(out, x, y, n, s, c, sc); return;
    case 3: radial_small<K, 3>(out, x, y, n, s, c, sc); return;
    case 4: radial_small<K, 4>(out, x, y, n, s, c, sc); return;
    default: radial_any<K>(out, x, y, n, s, c, sc);
  }
}

// in = {x (i-only: broadcast over the run), y (j-only), s, c (parameters)}.
template <class T>
void eval_radial(int kind, T* out, const Span<T>* in, int n, const Scratch<T>& sc) {
  if (!in[0].bc || in[1].bc) throw InternalError("RadialKernel expects an i-only x and a j-only y");
  const T s = *in[2].comp(0), c = *in[3].comp(0);
  switch (static_cast<RadialKind>(kind)) {
    case RadialKind::Gauss: radial_dim<RadialKind::Gauss>(out, in[0], in[1], n, s, c, sc); return;
    case RadialKind::Laplace: radial_dim<RadialKind::Laplace>(out, in[0], in[1], n, s, c, sc); return;
    case RadialKind::Cauchy: radial_dim<RadialKind::Cauchy>(out, in[0], in[1], n, s, c, sc); return;
    case RadialKind::InvMultiquadric: radial_dim<RadialKind::InvMultiquadric>(out, in[0], in[1], n, s, c, sc); return;
    case RadialKind::Matern32: radial_dim<RadialKind::Matern32>(out, in[0], in[1], n, s, c, sc); return;
    case RadialKind::Matern52: radial_dim<RadialKind::Matern52>(out, in[0], in[1], n, s, c, sc); return;
  }
  throw InternalError("unknown radial kernel kind " + std::to_string(kind));
}

}  // namespace KERNOPS_ISA
}  // namespace cpu
}  // namespace kernops
