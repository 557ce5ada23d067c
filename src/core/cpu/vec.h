// Fixed-width vectors for the few kernels written by hand rather than left to the
// auto-vectoriser (register blocking needs the accumulators named). Include from the
// cpu/tiles_<isa>.cpp chain only: KERNOPS_VBYTES, the vector width of the translation
// unit in bytes, must be defined. No R headers here.
#pragma once
#include "isa.h"
#include <cstring>

#ifndef KERNOPS_VBYTES
#error "cpu/vec.h needs KERNOPS_VBYTES (defined by cpu/tiles_<isa>.cpp)"
#endif

namespace kernops {
namespace cpu {
inline namespace KERNOPS_ISA {

// GCC vector extensions (also Clang): the attribute needs a concrete element type.
template <class T>
struct VecOf;
template <>
struct VecOf<float> {
  typedef float type __attribute__((vector_size(KERNOPS_VBYTES)));
};
template <>
struct VecOf<double> {
  typedef double type __attribute__((vector_size(KERNOPS_VBYTES)));
};
template <class T>
using Vec = typename VecOf<T>::type;

template <class T>
inline Vec<T> vload(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class T>
inline Vec<T> vbroadcast(T v) {
  constexpr int W = KERNOPS_VBYTES / static_cast<int>(sizeof(T));
  Vec<T> r;
  for (int k = 0; k < W; ++k) r[k] = v;
  return r;
}
template <class T>
inline void vstore(T* p, const Vec<T>& v) {
  std::memcpy(p, &v, sizeof v);
}

}  // namespace KERNOPS_ISA
}  // namespace cpu
}  // namespace kernops
