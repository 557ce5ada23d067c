// K-min reductions with a large K (Note [Large K]). No R headers here.
#pragma once
#include "isa.h"
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "reducers.h"

namespace kernops {
namespace cpu {
inline namespace KERNOPS_ISA {

// Note [Large K]
// KMinReducer keeps each row's K smallest values sorted and inserts by shifting, O(K) per
// value that enters; with data in random order about K log(M/K) values enter per row, so
// the shifting grows like K^2. Above kSortedMaxK the row's list is instead a
// buffer of up to 2K candidates in no order, holding every value seen that is at most the
// K-th smallest at the last compaction (`thr`; +inf before K values were seen). When the
// buffer is full, nth_element keeps its K smallest and thr becomes the largest of them;
// finish() sorts. A value then costs O(1) amortised. The result is KMinReducer's: the K
// smallest by (value, index), NaN never kept, +inf kept while fewer than K values are.
// R level, KMin_ArgKMin of SqDist at N = M = 2e4 (D = 3, two threads), sorted lists ->
// buffers: K = 100 0.67 -> 0.72 s, 150 1.27 -> 0.95 s, 250 2.67 -> 1.42 s, 400 5.0 ->
// 1.9 s, 1000 25.9 -> 3.9 s (bench/RESULTS.md, 2026-11-28 09:30).
constexpr int kSortedMaxK = 128;

template <class T>
struct KMinBufferedReducer : Reducer<T> {
  struct Pair {
    double v, i;
  };
  int dim, K;
  bool want_val, want_idx;
  KMinBufferedReducer(int d, int k, bool val, bool idx) : dim(d), K(k), want_val(val), want_idx(idx) {
    this->state_size = d * width();
  }
  // Per component: the count, thr, then 2K (value, index) pairs.
  int width() const { return 2 + 4 * K; }
  static Pair* pairs(double* g) { return reinterpret_cast<Pair*>(g + 2); }
  static const Pair* pairs(const double* g) { return reinterpret_cast<const Pair*>(g + 2); }
  static bool less(const Pair& a, const Pair& b) { return a.v < b.v || (a.v == b.v && a.i < b.i); }

  void init(double* st) const override {
    for (int k = 0; k < dim; ++k) {
      st[k * width()] = 0;
      st[k * width() + 1] = std::numeric_limits<double>::infinity();
    }
  }
  // Adds a value already checked against thr (v <= thr, so never NaN).
  void push(double* g, double v, double i) const {
    const int c = static_cast<int>(g[0]);
    pairs(g)[c] = {v, i};
    g[0] = c + 1;
    if (c + 1 == 2 * K) {
      Pair* b = pairs(g);
      std::nth_element(b, b + (K - 1), b + 2 * K, less);
      g[0] = K;
      g[1] = b[K - 1].v;
    }
  }
  void fold(double* st, const Span<T>* fs, const Span<T>*, int n, std::int64_t j0,
            const Scratch<T>& s) const override {
    using Sorted = KMinReducer<T>;  // for its vector prefilter
    constexpr int kChunk = 128, kBlock = Sorted::kBlock;
    for (int k = 0; k < dim; ++k) {
      const T* pf = contiguous(fs[0], k, n, s.a);
      double* g = st + k * width();
      // Values v <= thr enter, i.e. v < `below`, the next value of T above thr (thr is a
      // value of T, or +inf until K values were seen: then every value but NaN enters).
      // Chunks and blocks are tested with KMinReducer's vector prefilter, as there.
      const auto below = [g]() {
        return g[1] == std::numeric_limits<double>::infinity()
                   ? std::numeric_limits<T>::infinity()
                   : std::nextafter(static_cast<T>(g[1]), std::numeric_limits<T>::infinity());
      };
      T lim = below();
      for (int c0 = 0; c0 < n; c0 += kChunk) {
        const int c1 = c0 + kChunk < n ? c0 + kChunk : n;
        const bool open = lim == std::numeric_limits<T>::infinity();  // +inf values enter too
        if (!open && !Sorted::any_below(pf + c0, c1 - c0, lim)) continue;
        for (int b0 = c0; b0 < c1; b0 += kBlock) {
          const int b1 = b0 + kBlock < c1 ? b0 + kBlock : c1;
          if (!open && b1 - b0 == kBlock) {
            for (std::uint32_t msk = Sorted::below_bits(pf + b0, lim); msk != 0; msk &= msk - 1) {
              const int b = b0 + __builtin_ctz(msk);
              if (pf[b] < lim) {
                push(g, pf[b], static_cast<double>(j0 + b));
                lim = below();
              }
            }
            continue;
          }
          for (int b = b0; b < b1; ++b) {
            const double v = pf[b];
            if (v <= g[1]) {
              push(g, v, static_cast<double>(j0 + b));
              lim = below();
            }
          }
        }
      }
    }
  }
  void merge(double* st, const double* o) const override {
    for (int k = 0; k < dim; ++k) {
      double* g = st + k * width();
      const double* og = o + k * width();
      const Pair* b = pairs(og);
      for (int q = 0; q < static_cast<int>(og[0]); ++q)
        if (b[q].v <= g[1]) push(g, b[q].v, b[q].i);
    }
  }
  void finish(const double* st, const OutRow& out) const override {
    std::vector<Pair> sorted;
    for (int k = 0; k < dim; ++k) {
      const double* g = st + k * width();
      sorted.assign(pairs(g), pairs(g) + static_cast<int>(g[0]));
      std::sort(sorted.begin(), sorted.end(), less);
      for (int q = 0; q < K; ++q) {
        const bool none = q >= static_cast<int>(sorted.size());
        if (want_val) out.val(q * dim + k, none ? NAN : sorted[q].v);  // K-major, as KMinReducer
        if (want_idx) out.idx(q * dim + k, none ? -1.0 : sorted[q].i);
      }
    }
  }
};

}  // namespace KERNOPS_ISA
}  // namespace cpu
}  // namespace kernops
