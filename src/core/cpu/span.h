// Views of a node's values over a run of n consecutive points (a tile row). Values are
// stored component by component ("structure of arrays"): component k starts at
// p + k*cs. A broadcast view holds one value per component, constant over the run
// (an i-only value seen from a pair tile, or a parameter). No R headers here.
#pragma once
#include "isa.h"
#include <cstddef>
#include <cstdint>
#include <new>

namespace kernops {
namespace cpu {
inline namespace KERNOPS_ISA {

template <class T>
struct Span {
  const T* p = nullptr;
  std::int64_t cs = 0;  // distance between components
  bool bc = false;      // broadcast: component k is the single value *comp(k)
  int dim = 1;
  // Dimension-1 views broadcast across components too.
  const T* comp(int k) const { return p + (dim == 1 ? 0 : k) * cs; }
};

template <class T>
struct OutSpan {
  T* p = nullptr;
  std::int64_t cs = 0;
  int dim = 1;
  T* comp(int k) const { return p + k * cs; }
};

// Scratch space of an evaluation (broadcast operands, split exp): three runs of the tile
// length.
template <class T>
struct Scratch {
  T* a;
  T* b;
  T* c;
};

// Allocates on cache-line (64-byte) boundaries, so that vector loads of a buffer never
// straddle two lines wherever the heap put it.
template <class T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64))); }
  void deallocate(T* p, std::size_t) { ::operator delete(p, std::align_val_t(64)); }
  template <class U>
  bool operator==(const CacheLineAllocator<U>&) const { return true; }
  template <class U>
  bool operator!=(const CacheLineAllocator<U>&) const { return false; }
};

// Contiguous values of component k of `s` over n points: the view itself, or `scratch`
// filled with the broadcast value.
template <class T>
inline const T* contiguous(const Span<T>& s, int k, int n, T* scratch) {
  if (!s.bc) return s.comp(k);
  const T v = *s.comp(k);
  for (int b = 0; b < n; ++b) scratch[b] = v;
  return scratch;
}

}  // namespace KERNOPS_ISA
}  // namespace cpu
}  // namespace kernops
