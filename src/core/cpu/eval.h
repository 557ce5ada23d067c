// Evaluation of one plan instruction over a run of n points, for every op of the
// formula language. Loops are written to vectorise across the run (`omp simd`).
// No R headers here.
#pragma once
#include "isa.h"
#include <cstring>

#include "../errors.h"
#include "../plan.h"
#include "../scalar_ops.h"
#include "span.h"

// `omp simd` loops vectorise at R's default -O2 when built with -fopenmp-simd (configure
// adds it when the compiler accepts it); without the flag they are plain loops.
#define KERNOPS_PRAGMA(x) _Pragma(#x)
#define KERNOPS_SIMD KERNOPS_PRAGMA(omp simd)
#define KERNOPS_SIMD_REDUCE(op, ...) KERNOPS_PRAGMA(omp simd reduction(op : __VA_ARGS__))

#include "exp_run.h"
#include "math_runs.h"  // uses the macros above
#include "radial.h"     // uses the macros above

namespace kernops {
namespace cpu {
inline namespace KERNOPS_ISA {


template <class F, class T>
inline void map1(const OutSpan<T>& o, const Span<T>& x, int n, T* sa) {
  for (int k = 0; k < o.dim; ++k) {
    const T* px = contiguous(x, k, n, sa);
    T* po = o.comp(k);
    KERNOPS_SIMD
    for (int b = 0; b < n; ++b) po[b] = F::f(px[b]);
  }
}

template <class F, class T>
inline void map2(const OutSpan<T>& o, const Span<T>& x, const Span<T>& y, int n, const Scratch<T>& s) {
  for (int k = 0; k < o.dim; ++k) {
    T* po = o.comp(k);
    if (x.bc && !y.bc) {
      const T vx = *x.comp(k);
      const T* py = y.comp(k);
      KERNOPS_SIMD
      for (int b = 0; b < n; ++b) po[b] = F::f(vx, py[b]);
    } else if (y.bc && !x.bc) {
      const T* px = x.comp(k);
      const T vy = *y.comp(k);
      KERNOPS_SIMD
      for (int b = 0; b < n; ++b) po[b] = F::f(px[b], vy);
    } else {
      const T* px = contiguous(x, k, n, s.a);
      const T* py = contiguous(y, k, n, s.b);
      KERNOPS_SIMD
      for (int b = 0; b < n; ++b) po[b] = F::f(px[b], py[b]);
    }
  }
}

// One component of map3, with the broadcast operands (BX, BY, BZ) held in registers rather
// than copied over the run.
template <class F, bool BX, bool BY, bool BZ, class T>
inline void map3_run(T* po, const T* px, const T* py, const T* pz, int n) {
  const T vx = BX ? *px : T(0), vy = BY ? *py : T(0), vz = BZ ? *pz : T(0);
  KERNOPS_SIMD
  for (int b = 0; b < n; ++b) po[b] = F::f(BX ? vx : px[b], BY ? vy : py[b], BZ ? vz : pz[b]);
}

template <class F, class T>
inline void map3(const OutSpan<T>& o, const Span<T>& x, const Span<T>& y, const Span<T>& z, int n) {
  for (int k = 0; k < o.dim; ++k) {
    const T *px = x.comp(k), *py = y.comp(k), *pz = z.comp(k);
    T* po = o.comp(k);
    switch ((x.bc ? 4 : 0) | (y.bc ? 2 : 0) | (z.bc ? 1 : 0)) {
      case 0: map3_run<F, false, false, false>(po, px, py, pz, n); break;
      case 1: map3_run<F, false, false, true>(po, px, py, pz, n); break;
      case 2: map3_run<F, false, true, false>(po, px, py, pz, n); break;
      case 3: map3_run<F, false, true, true>(po, px, py, pz, n); break;
      case 4: map3_run<F, true, false, false>(po, px, py, pz, n); break;
      case 5: map3_run<F, true, false, true>(po, px, py, pz, n); break;
      case 6: map3_run<F, true, true, false>(po, px, py, pz, n); break;
      default: map3_run<F, true, true, true>(po, px, py, pz, n); break;
    }
  }
}

template <class T>
inline void fill(T* p, int n, T v) {
  for (int b = 0; b < n; ++b) p[b] = v;
}

// po[b] += term(b) for b < n, or, for the first term of a sum, po[b] = +0 + term(b): the
// same values as zeroing po first, without that pass.
template <class T, class Term>
inline void add_term(T* po, int n, bool first, Term term) {
  if (first) {
    KERNOPS_SIMD
    for (int b = 0; b < n; ++b) po[b] = T(0) + term(b);
  } else {
    KERNOPS_SIMD
    for (int b = 0; b < n; ++b) po[b] += term(b);
  }
}

// Evaluates `ins` over n points: out = op(in...). `in` holds the views of ins.in.
template <class T>
void eval_instr(const Instr& ins, const OutSpan<T>& o, const Span<T>* in, int n, const Scratch<T>& s) {
  const Op op = ins.op;
  if (op == Op::Exp) {  // Note [Split exp], Note [Vector exp runs]
    for (int k = 0; k < o.dim; ++k) {
      const T* px = contiguous(in[0], k, n, s.a);
      T* po = o.comp(k);
      exp_run<ExpRange::Any>(po, n, po, s.b, [px](int b) { return vload(px + b); }, [px](int b) { return px[b]; });
    }
    return;
  }
  if (op == Op::Log) {
    for (int k = 0; k < o.dim; ++k) log_run(o.comp(k), contiguous(in[0], k, n, s.a), n, s.b, s.c);
    return;
  }
  if (op == Op::Powf) {
    for (int k = 0; k < o.dim; ++k) powf_run(o.comp(k), in[0], in[1], k, n, s);
    return;
  }
  if (op == Op::Sin || op == Op::Cos) {
    for (int k = 0; k < o.dim; ++k) {
      const T* px = contiguous(in[0], k, n, s.a);
      if (op == Op::Sin)
        trig_run<0>(o.comp(k), px, n);
      else
        trig_run<1>(o.comp(k), px, n);
    }
    return;
  }
  if (visit_unary(op, [&](auto t) { map1<decltype(t)>(o, in[0], n, s.a); })) return;
  if (visit_binary(op, [&](auto t) { map2<decltype(t)>(o, in[0], in[1], n, s); })) return;
  if (visit_ternary(op, [&](auto t) { map3<decltype(t)>(o, in[0], in[1], in[2], n); })) return;
  switch (op) {
    case Op::Const:
      fill(o.comp(0), n, static_cast<T>(ins.value));
      return;
    case Op::Zero:
      for (int k = 0; k < o.dim; ++k) fill(o.comp(k), n, T(0));
      return;
    case Op::Pow:
      for (int k = 0; k < o.dim; ++k) pow_run(o.comp(k), contiguous(in[0], k, n, s.a), n, ins.params[0]);
      return;
    case Op::Sum:
    case Op::SqNorm2: {
      T* po = o.comp(0);
      for (int k = 0; k < in[0].dim; ++k) {
        const T* px = contiguous(in[0], k, n, s.a);
        if (op == Op::SqNorm2)
          add_term(po, n, k == 0, [px](int b) { return px[b] * px[b]; });
        else
          add_term(po, n, k == 0, [px](int b) { return px[b]; });
      }
      return;
    }
    case Op::SqDistFused: {  // sum_k (a_k - b_k)^2 without storing a - b
      T* po = o.comp(0);
      if (in[0].bc != in[1].bc) {  // one point constant over the run (high-dimensional data)
        sqdist_to_run(po, in[0].bc ? in[0] : in[1], in[0].bc ? in[1] : in[0], n);
        return;
      }
      for (int k = 0; k < in[0].dim; ++k) {
        const T* pa = contiguous(in[0], k, n, s.a);
        const T* pb = contiguous(in[1], k, n, s.b);
        add_term(po, n, k == 0, [pa, pb](int b) { return (pa[b] - pb[b]) * (pa[b] - pb[b]); });
      }
      return;
    }
    case Op::RadialKernel:
      eval_radial(ins.params[0], o.comp(0), in, n, s);
      return;
    case Op::Scalprod: {
      T* po = o.comp(0);
      for (int k = 0; k < in[0].dim; ++k) {
        if (in[0].bc != in[1].bc) {  // one side constant over the run: no scratch copy
          const Span<T>& c = in[0].bc ? in[0] : in[1];
          const Span<T>& v = in[0].bc ? in[1] : in[0];
          const T vc = *c.comp(k);
          const T* pv = v.comp(k);
          add_term(po, n, k == 0, [vc, pv](int b) { return vc * pv[b]; });
        } else {
          const T* px = contiguous(in[0], k, n, s.a);
          const T* py = contiguous(in[1], k, n, s.b);
          add_term(po, n, k == 0, [px, py](int b) { return px[b] * py[b]; });
        }
      }
      return;
    }
    case Op::SumT:
      for (int k = 0; k < o.dim; ++k) std::memcpy(o.comp(k), contiguous(in[0], 0, n, s.a), n * sizeof(T));
      return;
    case Op::Elem:
      std::memcpy(o.comp(0), contiguous(in[0], ins.params[0], n, s.a), n * sizeof(T));
      return;
    case Op::ElemT:
      for (int k = 0; k < o.dim; ++k) {
        if (k == ins.params[1])
          std::memcpy(o.comp(k), contiguous(in[0], 0, n, s.a), n * sizeof(T));
        else
          fill(o.comp(k), n, T(0));
      }
      return;
    case Op::Extract:
      for (int k = 0; k < o.dim; ++k)
        std::memcpy(o.comp(k), contiguous(in[0], ins.params[0] + k, n, s.a), n * sizeof(T));
      return;
    case Op::ExtractT: {
      const int start = ins.params[0], len = in[0].dim;
      for (int k = 0; k < o.dim; ++k) {
        if (k >= start && k < start + len)
          std::memcpy(o.comp(k), contiguous(in[0], k - start, n, s.a), n * sizeof(T));
        else
          fill(o.comp(k), n, T(0));
      }
      return;
    }
    case Op::Concat: {
      const int da = in[0].dim;
      for (int k = 0; k < o.dim; ++k) {
        const T* src = k < da ? contiguous(in[0], k, n, s.a) : contiguous(in[1], k - da, n, s.a);
        std::memcpy(o.comp(k), src, n * sizeof(T));
      }
      return;
    }
    case Op::MatVecMult: {  // out_r = sum_c A[r*nc + c] v_c
      const int nc = in[1].dim;
      for (int r = 0; r < o.dim; ++r) {
        T* po = o.comp(r);
        for (int c = 0; c < nc; ++c) {
          const T* pa = contiguous(in[0], r * nc + c, n, s.a);
          const T* pv = contiguous(in[1], c, n, s.b);
          add_term(po, n, c == 0, [pa, pv](int b) { return pa[b] * pv[b]; });
        }
      }
      return;
    }
    case Op::VecMatMult: {  // out_c = sum_r v_r A[r*m + c]
      const int nr = in[0].dim, m = o.dim;
      for (int c = 0; c < m; ++c) {
        T* po = o.comp(c);
        for (int r = 0; r < nr; ++r) {
          const T* pv = contiguous(in[0], r, n, s.a);
          const T* pa = contiguous(in[1], r * m + c, n, s.b);
          add_term(po, n, r == 0, [pv, pa](int b) { return pv[b] * pa[b]; });
        }
      }
      return;
    }
    case Op::TensorProd: {  // out[k*q + l] = a_k b_l
      const int p = in[0].dim, q = in[1].dim;
      for (int k = 0; k < p; ++k) {
        const T* pa = contiguous(in[0], k, n, s.a);
        for (int l = 0; l < q; ++l) {
          const T* pb = contiguous(in[1], l, n, s.b);
          T* po = o.comp(k * q + l);
          KERNOPS_SIMD
          for (int b = 0; b < n; ++b) po[b] = pa[b] * pb[b];
        }
      }
      return;
    }
    default:
      throw InternalError(std::string("no CPU evaluation for op ") + op_info(op).name);
  }
}

}  // namespace KERNOPS_ISA
}  // namespace cpu
}  // namespace kernops
