// Fixed-width vectors for the few kernels written by hand rather than left to the
// auto-vectoriser (register blocking needs the accumulators named). Include from the
// cpu/tiles_<isa>.cpp chain only: KERNOPS_VBYTES, the vector width of the translation
// unit in bytes, must be defined. No R headers here.
#pragma once
#include "isa.h"
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#ifndef KERNOPS_VBYTES
#error "cpu/vec.h needs KERNOPS_VBYTES (defined by cpu/tiles_<isa>.cpp)"
#endif

namespace kernops {
namespace cpu {
inline namespace KERNOPS_ISA {

// GCC vector extensions (also Clang) of KERNOPS_VBYTES bytes with elements E.
template <class E>
struct LanesOf {
  typedef E type __attribute__((vector_size(KERNOPS_VBYTES)));
};
template <class T>
using Vec = typename LanesOf<T>::type;

// Integer vectors of the same lanes, for bit manipulation of floating-point vectors (a
// C-style cast between vector types of one size reinterprets the bits).
template <class T>
using VecBits = typename LanesOf<typename std::conditional<sizeof(T) == 4, std::int32_t, std::int64_t>::type>::type;
template <class T>
using VecUBits = typename LanesOf<typename std::conditional<sizeof(T) == 4, std::uint32_t, std::uint64_t>::type>::type;

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

// Lane-wise square root, correctly rounded like std::sqrt.
#if KERNOPS_X86_DISPATCH && KERNOPS_VBYTES == 32
inline Vec<double> vsqrt(const Vec<double>& v) { return __builtin_ia32_sqrtpd256(v); }
inline Vec<float> vsqrt(const Vec<float>& v) { return __builtin_ia32_sqrtps256(v); }
#elif KERNOPS_X86_DISPATCH && KERNOPS_VBYTES == 16
inline Vec<double> vsqrt(const Vec<double>& v) { return __builtin_ia32_sqrtpd(v); }
inline Vec<float> vsqrt(const Vec<float>& v) { return __builtin_ia32_sqrtps(v); }
#else
template <class V>
inline V vsqrt(const V& v) {
  V r = v;
  for (int l = 0; l < static_cast<int>(sizeof(V) / sizeof(r[0])); ++l) r[l] = std::sqrt(v[l]);
  return r;
}
#endif

// Makes the compiler hold v in a register here. Without it, GCC folds a load used by
// two FMAs into both as a memory operand, so the value is loaded twice (Note [Row pairs]).
template <class V>
inline void in_register(V& v) {
#if KERNOPS_X86_DISPATCH
  __asm__("" : "+x"(v));
#else
  (void)v;
#endif
}

// Bit l set when lane l of the comparison result c (all ones or all zeros per lane) is set.
// One template chosen by lane width, not overloads on VecBits<T>: a comparison of double
// vectors has `long` lanes with GCC but `long long` lanes with Clang, so an overload for
// one of them is ambiguous or missing with the other compiler.
template <class B>
inline unsigned vmask_bits(const B& c) {
  constexpr bool four = sizeof(c[0]) == 4;
#if KERNOPS_X86_DISPATCH && KERNOPS_VBYTES == 32
  if constexpr (four) return __builtin_ia32_movmskps256((Vec<float>)c);
  else return __builtin_ia32_movmskpd256((Vec<double>)c);
#elif KERNOPS_X86_DISPATCH && KERNOPS_VBYTES == 64
  // vpmovd2m / vpmovq2m (AVX512DQ): the lanes' sign bits straight into a mask. With the
  // generic loop below, W7 at D = 3 ran 4-5% slower (bench/RESULTS.md, 2026-12-06).
  typedef int VecInt __attribute__((vector_size(64)));              // the builtins' operand types
  typedef long long VecLongLong __attribute__((vector_size(64)));
  if constexpr (four) return __builtin_ia32_cvtd2mask512((VecInt)c);
  else return __builtin_ia32_cvtq2mask512((VecLongLong)c);
#elif KERNOPS_X86_DISPATCH && KERNOPS_VBYTES == 16
  if constexpr (four) return __builtin_ia32_movmskps((Vec<float>)c);
  else return __builtin_ia32_movmskpd((Vec<double>)c);
#else
  (void)four;
  unsigned m = 0;
  for (int l = 0; l < static_cast<int>(sizeof(B) / sizeof(c[0])); ++l) m |= static_cast<unsigned>(c[l] != 0) << l;
  return m;
#endif
}

// Lane-wise c > v ? c : v and c < v ? c : v, so a NaN in v is kept (c is never NaN
// here). With AVX2 the conditionals compile to a compare and a blend, both on the FMA
// ports of AMD cores; the max and min instructions have exactly these semantics (they
// return their second operand when either is NaN) in one operation.
#if KERNOPS_VBYTES == 32 && KERNOPS_X86_DISPATCH  // only the AVX2 unit has 32-byte vectors
inline Vec<double> vmax_keep_nan(const Vec<double>& c, const Vec<double>& v) { return __builtin_ia32_maxpd256(c, v); }
inline Vec<float> vmax_keep_nan(const Vec<float>& c, const Vec<float>& v) { return __builtin_ia32_maxps256(c, v); }
inline Vec<double> vmin_keep_nan(const Vec<double>& c, const Vec<double>& v) { return __builtin_ia32_minpd256(c, v); }
inline Vec<float> vmin_keep_nan(const Vec<float>& c, const Vec<float>& v) { return __builtin_ia32_minps256(c, v); }
#else
template <class V>
inline V vmax_keep_nan(const V& c, const V& v) {
  return c > v ? c : v;
}
template <class V>
inline V vmin_keep_nan(const V& c, const V& v) {
  return c < v ? c : v;
}
#endif

}  // namespace KERNOPS_ISA
}  // namespace cpu
}  // namespace kernops
