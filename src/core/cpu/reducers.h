// Reductions over j of a pair formula, folded one tile row at a time into a per-i state
// of doubles. Each reducer can also merge two partial states (when the j range is split
// across threads) and finalise a state into the output row. No R headers here.
#pragma once
#include "isa.h"
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <algorithm>
#include <memory>
#include <vector>

#include "../plan.h"
#include "../vmath.h"
#include "eval.h"
#include "vec.h"

namespace kernops {
namespace cpu {
inline namespace KERNOPS_ISA {

// Where a finished row goes: values[row + c*ld] for value column c, indices likewise
// (indices are 0-based here; -1 means "none", e.g. every value was NaN).
struct OutRow {
  double* values;
  double* indices;
  std::int64_t ld;
  std::int64_t row;
  void val(int c, double v) const { values[row + c * ld] = v; }
  void idx(int c, double v) const { indices[row + c * ld] = v; }
};

template <class T>
struct Reducer {
  virtual ~Reducer() = default;
  int state_size = 0;
  virtual void init(double* st) const = 0;
  // Folds n points j0..j0+n-1. f[k], g[k] are the views of plan part k (Plan::parts):
  // F and the second formula (weight / values) for most reductions, several parts for a
  // Sum (Note [Sum parts]).
  virtual void fold(double* st, const Span<T>* f, const Span<T>* g, int n, std::int64_t j0,
                    const Scratch<T>& s) const = 0;
  // Folds the same run for `rows` rows at once: st[r] is row r's state, f and g hold the
  // views of row r's parts at [r * parts, (r + 1) * parts). By default row by row.
  virtual void fold_rows(double* const* st, const Span<T>* f, const Span<T>* g, int rows, int n,
                         std::int64_t j0, const Scratch<T>& s) const {
    const int np = parts_per_row();
    for (int r = 0; r < rows; ++r) fold(st[r], f + r * np, g + r * np, n, j0, s);
  }
  virtual int parts_per_row() const { return 1; }
  // How many rows fold_rows() would rather be given at once (Note [Row pairs], Note [Row
  // quads]).
  virtual int rows_per_fold() const { return 1; }
  virtual void merge(double* st, const double* other) const = 0;
  virtual void finish(const double* st, const OutRow& out) const = 0;
};

constexpr double kInf = std::numeric_limits<double>::infinity();

// Note [Widened partials]
// Sums fold each run in T and add the run's partial to the double state. In float32 a
// partial can overflow where the double state would not (3e38 summed over 100 points),
// or turn into NaN through inf - inf: then `exact` recomputes it in double. The check is
// one compare per run and component; in float64, and for finite partials, nothing changes.
template <class T, class Exact>
inline double widened(T partial, Exact exact) {
  if constexpr (std::is_same_v<T, float>)
    if (!std::isfinite(partial)) return exact();
  return static_cast<double>(partial);
}

// sum_b pf[b] * pg[b] in double: the exact form of a run's partial (Note [Widened partials]).
template <class T>
inline double dot_in_double(const T* pf, const T* pg, int n) {
  double s = 0;
  for (int b = 0; b < n; ++b) s += static_cast<double>(pf[b]) * static_cast<double>(pg[b]);
  return s;
}

// st[k] += sum_b pf[b] * g[k][b] for G components: the kernel times its weights, the core of
// every Sum_Reduction of a kernel. Written with vectors so that the G*V accumulators (two
// or four vectors of the run at a time, enough to cover the FMA latency) stay in registers and the
// shared factor is loaded once for all components. Each run is summed in T, then added to
// the double state (block-wise accumulation keeps float32 sums accurate).
template <class T, int G>
void product_sums(double* st, const T* pf, const T* const* g, int n) {
  constexpr int W = KERNOPS_VBYTES / static_cast<int>(sizeof(T));
  constexpr int V = G <= 2 ? 4 : 2;  // vectors of the run per step: G*V >= 4 chains
  Vec<T> a[G][V];
  _Pragma("GCC unroll 8") for (int k = 0; k < G; ++k)
    _Pragma("GCC unroll 4") for (int v = 0; v < V; ++v) a[k][v] = Vec<T>{};
  int b = 0;
  for (; b + V * W <= n; b += V * W) {
    Vec<T> f[V];
    _Pragma("GCC unroll 4") for (int v = 0; v < V; ++v) f[v] = vload(pf + b + v * W);
    _Pragma("GCC unroll 8") for (int k = 0; k < G; ++k)
      _Pragma("GCC unroll 4") for (int v = 0; v < V; ++v) a[k][v] += f[v] * vload(g[k] + b + v * W);
  }
  for (int k = 0; k < G; ++k) {
    T sum = 0;
    for (int q = b; q < n; ++q) sum += pf[q] * g[k][q];
    Vec<T> t = a[k][0];
    for (int v = 1; v < V; ++v) t += a[k][v];
    for (int l = 0; l < W; ++l) sum += t[l];
    st[k] += widened(sum, [&] { return dot_in_double(pf, g[k], n); });
  }
}

// Note [Row pairs]
// The same sums for two rows whose weights are the same run (g is j-only): each weight
// vector is loaded once for both rows, which halves the loads (the fold is load-bound:
// ~7 loads per 6 FMAs for one row) and the L2 traffic of the weights. One vector per
// step: 2G accumulators, each updated once per ~G cycles, which covers the FMA latency.
template <class T, int G>
void product_sums2(double* st0, double* st1, const T* pf0, const T* pf1, const T* const* g, int n) {
  constexpr int W = KERNOPS_VBYTES / static_cast<int>(sizeof(T));
  Vec<T> a[G], c[G];
  _Pragma("GCC unroll 8") for (int k = 0; k < G; ++k) a[k] = c[k] = Vec<T>{};
  int b = 0;
  for (; b + W <= n; b += W) {
    const Vec<T> v = vload(pf0 + b), w = vload(pf1 + b);
    _Pragma("GCC unroll 8") for (int k = 0; k < G; ++k) {
      Vec<T> gk = vload(g[k] + b);
      in_register(gk);
      a[k] += v * gk;
      c[k] += w * gk;
    }
  }
  for (int k = 0; k < G; ++k) {
    T s0 = 0, s1 = 0;
    for (int q = b; q < n; ++q) {
      s0 += pf0[q] * g[k][q];
      s1 += pf1[q] * g[k][q];
    }
    for (int l = 0; l < W; ++l) {
      s0 += a[k][l];
      s1 += c[k][l];
    }
    st0[k] += widened(s0, [&] { return dot_in_double(pf0, g[k], n); });
    st1[k] += widened(s1, [&] { return dot_in_double(pf1, g[k], n); });
  }
}

template <class T>
void product_sums2_any(double* st0, double* st1, const T* pf0, const T* pf1, const T* const* g, int count, int n) {
  switch (count) {
    case 1: product_sums2<T, 1>(st0, st1, pf0, pf1, g, n); return;
    case 2: product_sums2<T, 2>(st0, st1, pf0, pf1, g, n); return;
    case 3: product_sums2<T, 3>(st0, st1, pf0, pf1, g, n); return;
    case 4: product_sums2<T, 4>(st0, st1, pf0, pf1, g, n); return;
    case 5: product_sums2<T, 5>(st0, st1, pf0, pf1, g, n); return;
    default: product_sums2<T, 6>(st0, st1, pf0, pf1, g, n); return;
  }
}

// Note [Row quads]
// With four rows the fold reads each weight vector once for four rows' values. Six
// weights would need 24 accumulators, more than the 16 vector registers of AVX2, so the
// weights go in sweeps of at most three (12 accumulators), and the run in chunks of
// kQuadChunk points so that the four rows' values read by the first sweep are still in L1
// for the next (the weights and the values otherwise stream from L2, which bounds the
// fold). Per 24 FMAs (four rows, six weights) that is 6 weight and 4 value vectors from
// L2, against 12 and 4 for two row pairs: in a microbenchmark of W1's pattern (L2-resident
// runs of 4096 doubles, AVX2) the fold went from 4.0 to 3.4 cycles per vector and row
// (bench/RESULTS.md). The accumulators live in `acc` between chunks, so the horizontal
// sums are paid once per call.
constexpr int kQuadChunk = 512;

// One sweep over points [b0, b1) (a multiple of the step) for weights g[0..G-1], adding
// into acc[(r * G + k) * V + v]: four rows r, V vectors per step (two when G = 1, so
// that eight chains cover the FMA latency).
template <class T, int G>
inline void quad_sweep(Vec<T>* acc, const T* const* pf, const T* const* g, int b0, int b1) {
  constexpr int W = KERNOPS_VBYTES / static_cast<int>(sizeof(T));
  constexpr int V = G == 1 ? 2 : 1;
  Vec<T> a[4][G][V];
  _Pragma("GCC unroll 4") for (int r = 0; r < 4; ++r)
    _Pragma("GCC unroll 4") for (int k = 0; k < G; ++k)
      _Pragma("GCC unroll 2") for (int v = 0; v < V; ++v) a[r][k][v] = acc[(r * G + k) * V + v];
  const T *p0 = pf[0], *p1 = pf[1], *p2 = pf[2], *p3 = pf[3];
  for (int b = b0; b < b1; b += V * W) {
    _Pragma("GCC unroll 2") for (int v = 0; v < V; ++v) {
      const int q = b + v * W;
      const Vec<T> f[4] = {vload(p0 + q), vload(p1 + q), vload(p2 + q), vload(p3 + q)};
      _Pragma("GCC unroll 4") for (int k = 0; k < G; ++k) {
        Vec<T> gk = vload(g[k] + q);
        in_register(gk);
        _Pragma("GCC unroll 4") for (int r = 0; r < 4; ++r) a[r][k][v] += f[r] * gk;
      }
    }
  }
  _Pragma("GCC unroll 4") for (int r = 0; r < 4; ++r)
    _Pragma("GCC unroll 4") for (int k = 0; k < G; ++k)
      _Pragma("GCC unroll 2") for (int v = 0; v < V; ++v) acc[(r * G + k) * V + v] = a[r][k][v];
}

// st[r][k] += sum_b pf[r][b] * g[k][b] for four rows r and count <= 6 weights k shared by
// the rows (Note [Row quads]); each row's run is summed in T, then added to its state.
template <class T>
void product_sums4(double* const* st, std::int64_t offset, const T* const* pf, const T* const* g, int count,
                   int n) {
  constexpr int W = KERNOPS_VBYTES / static_cast<int>(sizeof(T));
  constexpr int kSweep = 3;
  Vec<T> acc[4 * 6 * 2];  // (r * G + k) * V + v per sweep, sweeps one after the other
  for (auto& v : acc) v = Vec<T>{};
  const int sweeps = (count + kSweep - 1) / kSweep;
  const int body = n / (2 * W) * (2 * W);  // a whole number of steps for either V
  for (int c0 = 0; c0 < body; c0 += kQuadChunk) {
    const int c1 = std::min(body, c0 + kQuadChunk);
    Vec<T>* a = acc;
    for (int s = 0; s < sweeps; ++s) {
      const int k0 = s * count / sweeps, k1 = (s + 1) * count / sweeps;  // even sweeps: 3+3, 3+2, 2+2
      switch (k1 - k0) {
        case 1: quad_sweep<T, 1>(a, pf, g + k0, c0, c1); a += 4 * 2; break;
        case 2: quad_sweep<T, 2>(a, pf, g + k0, c0, c1); a += 4 * 2; break;
        default: quad_sweep<T, 3>(a, pf, g + k0, c0, c1); a += 4 * 3; break;
      }
    }
  }
  // Horizontal sums, in the layout of each sweep, then the tail.
  const Vec<T>* a = acc;
  for (int s = 0; s < sweeps; ++s) {
    const int k0 = s * count / sweeps, k1 = (s + 1) * count / sweeps, G = k1 - k0, V = G == 1 ? 2 : 1;
    for (int r = 0; r < 4; ++r)
      for (int k = 0; k < G; ++k) {
        T sum = 0;
        for (int q = body; q < n; ++q) sum += pf[r][q] * g[k0 + k][q];
        Vec<T> t = a[(r * G + k) * V];
        if (V == 2) t += a[(r * G + k) * V + 1];
        for (int l = 0; l < W; ++l) sum += t[l];
        st[r][offset + k0 + k] += widened(sum, [&] { return dot_in_double(pf[r], g[k0 + k], n); });
      }
    a += 4 * G * V;
  }
}

template <class T>
void product_sums_any(double* st, const T* pf, const T* const* g, int count, int n) {
  switch (count) {
    case 1: product_sums<T, 1>(st, pf, g, n); return;
    case 2: product_sums<T, 2>(st, pf, g, n); return;
    case 3: product_sums<T, 3>(st, pf, g, n); return;
    case 4: product_sums<T, 4>(st, pf, g, n); return;
    case 5: product_sums<T, 5>(st, pf, g, n); return;
    default: product_sums<T, 6>(st, pf, g, n); return;
  }
}

// Largest (Max) or smallest of n values, NaN skipped (-inf / +inf when there is none), and
// plain sum, in T. Vector code with four accumulators: an `omp simd` reduction keeps one
// chain and finishes with a scalar loop over its lanes.
template <bool Max, class T>
T run_extreme(const T* p, int n) {
  constexpr int W = KERNOPS_VBYTES / static_cast<int>(sizeof(T));
  const T start = Max ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
  const Vec<T> init = vbroadcast(start);
  Vec<T> a[4] = {init, init, init, init};
  int b = 0;
  for (; b + 4 * W <= n; b += 4 * W)
    _Pragma("GCC unroll 4") for (int v = 0; v < 4; ++v) {
      const Vec<T> x = vload(p + b + v * W);
      if constexpr (Max)
        a[v] = x > a[v] ? x : a[v];
      else
        a[v] = x < a[v] ? x : a[v];
    }
  T m = start;
  auto take = [&m](T x) { m = (Max ? x > m : x < m) ? x : m; };
  for (int v = 0; v < 4; ++v)
    for (int l = 0; l < W; ++l) take(a[v][l]);
  for (; b < n; ++b) take(p[b]);
  return m;
}

template <class T>
T run_sum(const T* p, int n) {
  constexpr int W = KERNOPS_VBYTES / static_cast<int>(sizeof(T));
  Vec<T> a[4] = {};
  int b = 0;
  for (; b + 4 * W <= n; b += 4 * W)
    _Pragma("GCC unroll 4") for (int v = 0; v < 4; ++v) a[v] += vload(p + b + v * W);
  const Vec<T> t = (a[0] + a[1]) + (a[2] + a[3]);
  T sum = 0;
  for (int l = 0; l < W; ++l) sum += t[l];
  for (; b < n; ++b) sum += p[b];
  return sum;
}

// Sum_Reduction, folded part by part (Note [Sum parts]): part k adds sum_j a (or
// sum_j a*b) into state columns [offset, offset + dim). Each tile row is summed in T, then
// added to the double state: block-wise accumulation keeps float32 sums accurate.
template <class T>
struct SumReducer : Reducer<T> {
  std::vector<Plan::Part> parts;
  std::vector<bool> shared_weights;  // part q is (scalar) * (j-only value): Note [Row pairs]
  explicit SumReducer(const Plan& p) : parts(p.parts) {
    for (const auto& q : parts) {
      this->state_size = std::max(this->state_size, q.offset + q.dim);
      shared_weights.push_back(q.b >= 0 && p.slots[q.a].dim == 1 && p.slots[q.a].level == kIJ &&
                               p.slots[q.b].level == kJ);
    }
  }
  int parts_per_row() const override { return static_cast<int>(parts.size()); }
  int rows_per_fold() const override {
    return std::find(shared_weights.begin(), shared_weights.end(), true) != shared_weights.end() ? 4 : 1;
  }
  void fold_rows(double* const* st, const Span<T>* f, const Span<T>* g, int rows, int n, std::int64_t,
                 const Scratch<T>& s) const override {
    const size_t np = parts.size();
    for (size_t q = 0; q < np; ++q) {
      if (!shared_weights[q]) {
        for (int r = 0; r < rows; ++r)
          fold_part(st[r] + parts[q].offset, f[r * np + q], g[r * np + q], parts[q].dim, parts[q].b >= 0, n, s);
        continue;
      }
      // a: pair values (contiguous), b: the same j run for every row. Rows by four (Note
      // [Row quads]), then by two (Note [Row pairs]), then one; the weights by blocks of six.
      const T* gk[6];
      const auto weight_blocks = [&](auto&& fold_block) {
        for (int k = 0; k < parts[q].dim; k += 6) {
          const int count = std::min(6, parts[q].dim - k);
          for (int c = 0; c < count; ++c) gk[c] = g[q].comp(k + c);
          fold_block(parts[q].offset + k, count);
        }
      };
      int r = 0;
      for (; r + 4 <= rows; r += 4) {
        const T* pf[4] = {f[r * np + q].p, f[(r + 1) * np + q].p, f[(r + 2) * np + q].p, f[(r + 3) * np + q].p};
        weight_blocks([&](std::int64_t offset, int count) { product_sums4(st + r, offset, pf, gk, count, n); });
      }
      for (; r + 2 <= rows; r += 2)
        weight_blocks([&](std::int64_t offset, int count) {
          product_sums2_any(st[r] + offset, st[r + 1] + offset, f[r * np + q].p, f[(r + 1) * np + q].p, gk, count, n);
        });
      for (; r < rows; ++r)
        fold_part(st[r] + parts[q].offset, f[r * np + q], g[r * np + q], parts[q].dim, true, n, s);
    }
  }
  void init(double* st) const override {
    for (int k = 0; k < this->state_size; ++k) st[k] = 0;
  }
  void fold(double* st, const Span<T>* f, const Span<T>* g, int n, std::int64_t,
            const Scratch<T>& s) const override {
    for (size_t q = 0; q < parts.size(); ++q)
      fold_part(st + parts[q].offset, f[q], g[q], parts[q].dim, parts[q].b >= 0, n, s);
  }
  void merge(double* st, const double* o) const override {
    for (int k = 0; k < this->state_size; ++k) st[k] += o[k];
  }
  void finish(const double* st, const OutRow& out) const override {
    for (int k = 0; k < this->state_size; ++k) out.val(k, st[k]);
  }
  static void fold_part(double* st, const Span<T>& f, const Span<T>& g, int dim, bool product, int n,
                        const Scratch<T>& s) {
    if (product && f.dim == 1 && !g.bc) {  // a scalar times a vector: the common case
      const T* pf = contiguous(f, 0, n, s.a);
      const T* gk[6];
      for (int k = 0; k < dim; k += 6) {
        const int count = std::min(6, dim - k);
        for (int q = 0; q < count; ++q) gk[q] = g.comp(k + q);
        product_sums_any(st + k, pf, gk, count, n);
      }
      return;
    }
    // Components go four at a time, and each run in two halves: eight independent
    // accumulators cover the latency of the FMAs (one chain per component would be
    // latency-bound; four still half so), and the shared factor of a fused product is
    // loaded once for all four.
    int k = 0;
    const int h = n / 2;
    for (; k + 4 <= dim; k += 4) {
      T a0 = 0, a1 = 0, a2 = 0, a3 = 0, c0 = 0, c1 = 0, c2 = 0, c3 = 0;
      if (product && f.dim == 1 && !g.bc && g.dim > 1) {
        const T* pf = contiguous(f, 0, n, s.a);
        const T *g0 = g.comp(k), *g1 = g.comp(k + 1), *g2 = g.comp(k + 2), *g3 = g.comp(k + 3);
        KERNOPS_SIMD_REDUCE(+, a0, a1, a2, a3, c0, c1, c2, c3)
        for (int b = 0; b < h; ++b) {
          const T v = pf[b], w = pf[b + h];
          a0 += v * g0[b];
          a1 += v * g1[b];
          a2 += v * g2[b];
          a3 += v * g3[b];
          c0 += w * g0[b + h];
          c1 += w * g1[b + h];
          c2 += w * g2[b + h];
          c3 += w * g3[b + h];
        }
        if (n % 2) {
          const T v = pf[n - 1];
          a0 += v * g0[n - 1];
          a1 += v * g1[n - 1];
          a2 += v * g2[n - 1];
          a3 += v * g3[n - 1];
        }
      } else if (product) {  // rare layouts: one component at a time
        a0 = dot(f, g, k, n, s);
        a1 = dot(f, g, k + 1, n, s);
        a2 = dot(f, g, k + 2, n, s);
        a3 = dot(f, g, k + 3, n, s);
      } else if (!f.bc) {
        const T *p0 = f.comp(k), *p1 = f.comp(k + 1), *p2 = f.comp(k + 2), *p3 = f.comp(k + 3);
        KERNOPS_SIMD_REDUCE(+, a0, a1, a2, a3, c0, c1, c2, c3)
        for (int b = 0; b < h; ++b) {
          a0 += p0[b];
          a1 += p1[b];
          a2 += p2[b];
          a3 += p3[b];
          c0 += p0[b + h];
          c1 += p1[b + h];
          c2 += p2[b + h];
          c3 += p3[b + h];
        }
        if (n % 2) {
          a0 += p0[n - 1];
          a1 += p1[n - 1];
          a2 += p2[n - 1];
          a3 += p3[n - 1];
        }
      } else {
        a0 = static_cast<T>(n) * *f.comp(k);
        a1 = static_cast<T>(n) * *f.comp(k + 1);
        a2 = static_cast<T>(n) * *f.comp(k + 2);
        a3 = static_cast<T>(n) * *f.comp(k + 3);
      }
      const auto exact = [&](int c) { return [&, c] { return part_in_double(f, g, c, product, n, s); }; };
      st[k] += widened(a0 + c0, exact(k));
      st[k + 1] += widened(a1 + c1, exact(k + 1));
      st[k + 2] += widened(a2 + c2, exact(k + 2));
      st[k + 3] += widened(a3 + c3, exact(k + 3));
    }
    for (; k < dim; ++k)
      st[k] += widened(product ? dot(f, g, k, n, s) : plain_sum(f, k, n),
                       [&] { return part_in_double(f, g, k, product, n, s); });
  }
  // Component k of the part over the run, in double (Note [Widened partials]).
  static double part_in_double(const Span<T>& f, const Span<T>& g, int k, bool product, int n, const Scratch<T>& s) {
    if (product) return dot_in_double(contiguous(f, k, n, s.a), contiguous(g, k, n, s.b), n);
    if (f.bc) return static_cast<double>(n) * static_cast<double>(*f.comp(k));
    const T* p = f.comp(k);
    double sum = 0;
    for (int b = 0; b < n; ++b) sum += static_cast<double>(p[b]);
    return sum;
  }
  // sum_b f_k[b] g_k[b], the run in quarters: four accumulators.
  static T dot(const Span<T>& f, const Span<T>& g, int k, int n, const Scratch<T>& s) {
    const T* pf = contiguous(f, k, n, s.a);
    const T* pg = contiguous(g, k, n, s.b);
    T a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    const int q = n / 4;
    KERNOPS_SIMD_REDUCE(+, a0, a1, a2, a3)
    for (int b = 0; b < q; ++b) {
      a0 += pf[b] * pg[b];
      a1 += pf[b + q] * pg[b + q];
      a2 += pf[b + 2 * q] * pg[b + 2 * q];
      a3 += pf[b + 3 * q] * pg[b + 3 * q];
    }
    for (int b = 4 * q; b < n; ++b) a0 += pf[b] * pg[b];
    return (a0 + a1) + (a2 + a3);
  }
  static T plain_sum(const Span<T>& f, int k, int n) {
    return f.bc ? static_cast<T>(n) * *f.comp(k) : run_sum(f.comp(k), n);
  }
};

// Min/Max with their index: state (value, index) per component. NaNs are skipped;
// ties keep the smallest index.
template <class T>
struct ArgExtremeReducer : Reducer<T> {
  int dim;
  bool is_max, want_val, want_idx;
  ArgExtremeReducer(int d, bool mx, bool val, bool idx) : dim(d), is_max(mx), want_val(val), want_idx(idx) {
    this->state_size = 2 * d;
  }
  bool better(double a, double b) const { return is_max ? a > b : a < b; }
  void init(double* st) const override {
    for (int k = 0; k < dim; ++k) {
      st[2 * k] = is_max ? -kInf : kInf;
      st[2 * k + 1] = -1;
    }
  }
  void fold(double* st, const Span<T>* fs, const Span<T>*, int n, std::int64_t j0,
            const Scratch<T>& s) const override {
    const Span<T>& f = fs[0];
    for (int k = 0; k < dim; ++k) {
      const T* pf = contiguous(f, k, n, s.a);
      // First the block's extreme (vectorises), then its index only if it improves.
      const T m = is_max ? run_extreme<true>(pf, n) : run_extreme<false>(pf, n);
      const bool none = st[2 * k + 1] < 0;
      if (better(m, st[2 * k]) || (none && m == st[2 * k])) {
        for (int b = 0; b < n; ++b)
          if (pf[b] == m) {
            st[2 * k] = m;
            st[2 * k + 1] = static_cast<double>(j0 + b);
            break;
          }
      }
    }
  }
  void merge(double* st, const double* o) const override {
    // `o` covers later j than `st`: on ties the earlier index wins.
    for (int k = 0; k < dim; ++k)
      if (o[2 * k + 1] >= 0 && (st[2 * k + 1] < 0 || better(o[2 * k], st[2 * k]))) {
        st[2 * k] = o[2 * k];
        st[2 * k + 1] = o[2 * k + 1];
      }
  }
  void finish(const double* st, const OutRow& out) const override {
    for (int k = 0; k < dim; ++k) {
      const bool none = st[2 * k + 1] < 0;
      if (want_val) out.val(k, none ? NAN : st[2 * k]);
      if (want_idx) out.idx(k, st[2 * k + 1]);
    }
  }
};

// The K smallest values per component and their indices, kept sorted (value, index).
template <class T>
struct KMinReducer : Reducer<T> {
  int dim, K;
  bool want_val, want_idx;
  KMinReducer(int d, int k, bool val, bool idx) : dim(d), K(k), want_val(val), want_idx(idx) {
    this->state_size = 2 * d * k;
  }
  void init(double* st) const override {
    for (int q = 0; q < dim * K; ++q) {
      st[2 * q] = kInf;
      st[2 * q + 1] = -1;
    }
  }
  static bool less(double v, double i, double v2, double i2) {
    return v < v2 || (v == v2 && (i2 < 0 || (i >= 0 && i < i2)));
  }
  void insert(double* lst, double v, double i) const {  // lst: K pairs sorted
    if (!less(v, i, lst[2 * (K - 1)], lst[2 * (K - 1) + 1])) return;
    int p = K - 1;
    while (p > 0 && less(v, i, lst[2 * (p - 1)], lst[2 * (p - 1) + 1])) {
      lst[2 * p] = lst[2 * (p - 1)];
      lst[2 * p + 1] = lst[2 * (p - 1) + 1];
      --p;
    }
    lst[2 * p] = v;
    lst[2 * p + 1] = i;
  }
  void fold(double* st, const Span<T>* fs, const Span<T>*, int n, std::int64_t j0,
            const Scratch<T>& s) const override {
    const Span<T>& f = fs[0];
    for (int k = 0; k < dim; ++k) {
      const T* pf = contiguous(f, k, n, s.a);
      double* lst = st + 2 * K * k;
      // Once the list is full, most values are above its largest entry: chunks of 128 are
      // first tested against it with a vector minimum and skipped when no value can enter;
      // in the others, each block of 16 gives the bit mask of its values below the
      // threshold (vector compares), and only those values are visited, each checked again
      // against the threshold as insertions lower it.
      constexpr int kChunk = 128;
      bool is_full = full(lst);
      T thr = is_full ? bound(lst) : T(0);  // updated after each insertion only
      for (int c0 = 0; c0 < n; c0 += kChunk) {
        const int c1 = c0 + kChunk < n ? c0 + kChunk : n;
        if (is_full && !any_below(pf + c0, c1 - c0, thr)) continue;
        for (int b0 = c0; b0 < c1; b0 += kBlock) {
          const int b1 = b0 + kBlock < c1 ? b0 + kBlock : c1;
          if (is_full && b1 - b0 == kBlock) {
            for (std::uint32_t m = below_bits(pf + b0, thr); m != 0; m &= m - 1) {
              const int b = b0 + __builtin_ctz(m);
              if (pf[b] < thr) {
                insert(lst, pf[b], static_cast<double>(j0 + b));
                thr = bound(lst);
              }
            }
            continue;
          }
          for (int b = b0; b < b1; ++b) {
            const double v = pf[b];
            if ((v < lst[2 * (K - 1)] || !is_full) && v == v) {
              insert(lst, v, static_cast<double>(j0 + b));
              is_full = full(lst);
              if (is_full) thr = bound(lst);
            }
          }
        }
      }
    }
  }
  bool full(const double* lst) const { return lst[2 * (K - 1) + 1] >= 0; }
  // The list's largest value, in T: exact, since the list only ever holds values of T (the
  // folded runs' values, and in merge() those of other states of the same runs), so no
  // value of T below the list's largest is above it.
  T bound(const double* lst) const { return static_cast<T>(lst[2 * (K - 1)]); }
  // Whether some of the L values at p is below `bound` (NaN never is): the chunk's
  // minimum in four independent vector chains (a load and a min per vector), then
  // one compare; a NaN lane never replaces the minimum. The plain loop compiles to a
  // load, compare, and, or and the loop's own three instructions per vector, in one
  // chain; this one made W7 (D = 32) ~5% faster (bench/RESULTS.md).
  template <int L>
  static bool any_below_fixed(const T* p, T bound) {
    constexpr int W = KERNOPS_VBYTES / static_cast<int>(sizeof(T));
    static_assert(L % (4 * W) == 0, "a chunk is whole groups of four vectors");
    const Vec<T> vb = vbroadcast(bound);
    Vec<T> m[4] = {vb, vb, vb, vb};
    for (int b = 0; b < L; b += 4 * W)
      _Pragma("GCC unroll 4") for (int v = 0; v < 4; ++v) {
        const Vec<T> x = vload(p + b + v * W);
        m[v] = x < m[v] ? x : m[v];
      }
    m[0] = m[0] < m[1] ? m[0] : m[1];
    m[2] = m[2] < m[3] ? m[2] : m[3];
    m[0] = m[0] < m[2] ? m[0] : m[2];
    int any = 0;
    for (int l = 0; l < W; ++l) any |= m[0][l] < bound;
    return any != 0;
  }
  static bool any_below(const T* p, int n, T bound) {
    if (n == 128) return any_below_fixed<128>(p, bound);
    for (int b = 0; b < n; ++b)
      if (p[b] < bound) return true;
    return false;
  }
  // Bit q set when p[q] < bound (never for NaN), for the kBlock values at p.
  static constexpr int kBlock = 16;
  static std::uint32_t below_bits(const T* p, T bound) {
    constexpr int W = KERNOPS_VBYTES / static_cast<int>(sizeof(T));
    static_assert(kBlock % W == 0, "a block is whole vectors");
    const Vec<T> vb = vbroadcast(bound);
    std::uint32_t m = 0;
    _Pragma("GCC unroll 8") for (int v = 0; v < kBlock / W; ++v) m |= vmask_bits(vload(p + v * W) < vb) << (v * W);
    return m;
  }
  void merge(double* st, const double* o) const override {
    for (int k = 0; k < dim; ++k)
      for (int q = 0; q < K; ++q)
        if (o[2 * (K * k + q) + 1] >= 0) insert(st + 2 * K * k, o[2 * (K * k + q)], o[2 * (K * k + q) + 1]);
  }
  void finish(const double* st, const OutRow& out) const override {
    // Columns in KeOps' K-major order: column q * dim + k is the q-th smallest of
    // component k (for dim 1: the K nearest, in order).
    for (int k = 0; k < dim; ++k)
      for (int q = 0; q < K; ++q) {
        const double* e = st + 2 * (K * k + q);
        const bool none = e[1] < 0;
        if (want_val) out.val(q * dim + k, none ? NAN : e[0]);
        if (want_idx) out.idx(q * dim + k, e[1]);
      }
  }
};

// LogSumExp_Reduction: log sum_j exp(F_j) (per component), or with a weight W,
// log sum_j exp(F_j) W_j (F of dimension 1). Stabilised by the running maximum m:
// state (m, s_1..s_w) with value m + log(s).
template <class T>
struct LogSumExpReducer : Reducer<T> {
  int dim;       // components of F
  int wdim;      // components of the weight (0: no weight)
  bool softmax;  // SumSoftMaxWeight: state (m, s, sv_1..sv_w), value sv/s
  LogSumExpReducer(int d, int w, bool sm) : dim(d), wdim(w), softmax(sm) {
    this->state_size = w ? (sm ? 2 + w : 1 + w) : 2 * d;
  }
  int groups() const { return wdim ? 1 : dim; }
  int width() const { return wdim ? this->state_size : 2; }  // state entries per group
  void init(double* st) const override {
    for (int q = 0; q < this->state_size; ++q) st[q] = 0;
    for (int g = 0; g < groups(); ++g) st[g * width()] = -kInf;
  }
  // Rescales the group's sums from maximum m_old to m_new.
  void rescale(double* grp, double m_new) const {
    if (grp[0] == m_new) return;  // also m = +inf twice: inf - inf would be NaN
    const double r = grp[0] == -kInf ? 0.0 : std::exp(grp[0] - m_new);
    for (int q = 1; q < width(); ++q) grp[q] *= r;
    grp[0] = m_new;
  }
  void fold(double* st, const Span<T>* fs, const Span<T>* ws, int n, std::int64_t,
            const Scratch<T>& s) const override {
    const Span<T>& f = fs[0];
    const Span<T>& w = ws[0];
    for (int g = 0; g < groups(); ++g) {
      double* grp = st + g * width();
      const T* pf = contiguous(f, g, n, s.a);
      const T mb = run_extreme<true>(pf, n);
      if (!(mb > T(-INFINITY))) {  // all -inf (nothing to add), or NaNs the max skipped
        for (int b = 0; b < n; ++b)
          if (pf[b] != pf[b]) grp[0] = NAN;  // a NaN term makes the whole result NaN
        continue;
      }
      if (mb > grp[0]) rescale(grp, mb);
      const T m = static_cast<T>(grp[0]);
      // e_b = exp(F_b - m) in scratch c (NaN terms stay NaN and propagate). When m is +inf
      // (F overflowed), the limit: each +inf term weighs 1 and the others 0, so LogSumExp
      // is +inf and SumSoftMaxWeight the mean weight of the +inf terms (inf - inf = NaN).
      T* e = s.c;
      if (m == T(INFINITY)) {
        for (int b = 0; b < n; ++b) e[b] = pf[b] == m ? T(1) : pf[b] != pf[b] ? pf[b] : T(0);
      } else {
        const Vec<T> vm = vbroadcast(m);  // F - m <= 0 (or NaN): Note [Vector exp runs]
        exp_run<ExpRange::NonPositive>(e, n, e, s.b, [pf, vm](int b) { return vload(pf + b) - vm; },
                                       [pf, m](int b) { return pf[b] - m; });
      }
      int q = 1;
      if (!wdim || softmax) grp[q++] += static_cast<double>(run_sum(e, n));
      if (!wdim) continue;
      if (!w.bc) {
        const T* wk[6];
        for (int c = 0; c < wdim; c += 6) {
          const int count = std::min(6, wdim - c);
          for (int k = 0; k < count; ++k) wk[k] = w.comp(c + k);
          product_sums_any(grp + q + c, e, wk, count, n);
        }
      } else {  // weights constant over the run
        const double sum = static_cast<double>(run_sum(e, n));
        for (int c = 0; c < wdim; ++c) grp[q + c] += sum * static_cast<double>(*w.comp(c));
      }
    }
  }
  void merge(double* st, const double* o) const override {
    for (int g = 0; g < groups(); ++g) {
      double* a = st + g * width();
      const double* b = o + g * width();
      if (b[0] == -kInf) continue;
      if (std::isnan(a[0]) || std::isnan(b[0])) {
        a[0] = NAN;
        continue;
      }
      const double m = std::fmax(a[0], b[0]);
      rescale(a, m);
      const double r = b[0] == m ? 1.0 : std::exp(b[0] - m);  // m may be +inf
      for (int q = 1; q < width(); ++q) a[q] += b[q] * r;
    }
  }
  void finish(const double* st, const OutRow& out) const override {
    if (!wdim) {
      for (int k = 0; k < dim; ++k) out.val(k, st[2 * k] + std::log(st[2 * k + 1]));
    } else if (!softmax) {
      for (int c = 0; c < wdim; ++c) out.val(c, st[0] + std::log(st[1 + c]));
    } else {
      for (int c = 0; c < wdim; ++c) out.val(c, st[2 + c] / st[1]);
    }
  }
};

}  // namespace KERNOPS_ISA
}  // namespace cpu
}  // namespace kernops
