// Scalar maths of the elementwise operations, one tag struct per op. Each `f` is inline,
// branch-free where it matters, and vectorises inside `#pragma omp simd` loops (exp/log
// come from vmath.h because libm's do not). Used by the CPU evaluator and by constant
// folding, so both agree to the last bit. No R headers here.
//
// Note [CUDA snippets]
// Each tag struct also carries `cuda`: the same maths as a CUDA C++ expression, which the
// code generator (cuda/codegen.cpp) pastes into kernels with $0, $1, $2 replaced by the
// arguments (plain array elements: no side effects, so repeating one is free). The
// expression may use the kernel's scalar type T and the helpers of the generated prelude
// (k_nan(), k_inf(), and FPowf::cuda_helper / pow_int_cuda() below), and must keep the
// CPU's NaN rules: that is why they sit side by side, and why adding an op stays one place.
#pragma once
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "cpu/isa.h"
#include "ops.h"
#include "vmath.h"

namespace kernops {
inline namespace KERNOPS_ISA {

// ---- one argument ----
struct FNeg {
  static constexpr const char* cuda = "-($0)";
  template <class T> static T f(T x) { return -x; } };
struct FExp {
  static constexpr const char* cuda = "exp($0)";
  template <class T> static T f(T x) { return vmath::exp(x); } };
struct FLog {
  static constexpr const char* cuda = "log($0)";
  template <class T> static T f(T x) { return vmath::log(x); } };
struct FSqrt {
  static constexpr const char* cuda = "sqrt($0)";
  template <class T> static T f(T x) { return std::sqrt(x); } };
struct FRsqrt {
  static constexpr const char* cuda = "T(1) / sqrt($0)";
  template <class T> static T f(T x) { return T(1) / std::sqrt(x); } };
struct FInv {
  static constexpr const char* cuda = "T(1) / ($0)";
  template <class T> static T f(T x) { return T(1) / x; } };
struct FAbs {
  static constexpr const char* cuda = "fabs($0)";
  template <class T> static T f(T x) { return std::fabs(x); } };
// NaN semantics follow R: every elementwise op gives NaN for a NaN argument (R's sign(NaN),
// NaN >= 0, ifelse(NaN, a, b), pmin(1, NaN) are all NaN or NA), where a bare comparison
// would pick a branch. `x == x` is false only for NaN; with no NaN the values are those of
// the plain comparisons, bit for bit.
// Sign(0) = 0, as in R's sign(); Sign(NaN) = NaN.
struct FSign {
  static constexpr const char* cuda = "($0 > T(0) ? T(1) : ($0 < T(0) ? T(-1) : ($0 == $0 ? T(0) : $0)))";
  template <class T> static T f(T x) { return x > T(0) ? T(1) : (x < T(0) ? T(-1) : (x == x ? T(0) : x)); }
};
struct FSin {
  static constexpr const char* cuda = "sin($0)";
  template <class T> static T f(T x) { return vmath::sin(x); } };
struct FCos {
  static constexpr const char* cuda = "cos($0)";
  template <class T> static T f(T x) { return vmath::cos(x); } };
// Step(x) = 1 for x >= 0, else 0 (KeOps convention); Step(NaN) = NaN.
struct FStep {
  static constexpr const char* cuda = "($0 < T(0) ? T(0) : ($0 == $0 ? T(1) : $0))";
  template <class T> static T f(T x) { return x < T(0) ? T(0) : (x == x ? T(1) : x); } };
// ReLU(NaN) = NaN (the comparison is false, x is kept).
struct FReLU {
  static constexpr const char* cuda = "($0 < T(0) ? T(0) : $0)";
  template <class T> static T f(T x) { return x < T(0) ? T(0) : x; } };
struct FSquare {
  static constexpr const char* cuda = "($0) * ($0)";
  template <class T> static T f(T x) { return x * x; } };
// Log1p(x) = log(1 + x), accurate where Log(1 + x) loses every digit (1 + 1e-17 == 1):
// with u = 1 + x rounded, log(u) * x / (u - 1) cancels the rounding of u (Goldberg, "What
// every computer scientist should know about floating-point arithmetic", Theorem 4); x
// itself where u == 1, and log(u) where u - 1 == x (x exact in u, also x = +inf, where the
// ratio would be inf / inf). Branch-free, on vmath's log, so it vectorises.
struct FLog1p {
  static constexpr const char* cuda = "log1p($0)";
  template <class T> static T f(T x) {
    const T u = T(1) + x, d = u - T(1), l = vmath::log(u);
    return d == T(0) ? x : (d == x ? l : l * (x / d));
  }
};
// Expm1(x) = exp(x) - 1, accurate near 0 where Exp(x) - 1 cancels: with u = exp(x),
// (u - 1) * x / log(u) (Kahan's trick, the same correction as Log1p's); x where u == 1,
// -1 where u - 1 == -1 (x very negative), +inf where u is.
struct FExpm1 {
  static constexpr const char* cuda = "expm1($0)";
  template <class T> static T f(T x) {
    const T u = vmath::exp(x), d = u - T(1), l = vmath::log(u);
    return u == T(1) ? x : (d == T(-1) || u == T(INFINITY) ? d : d * (x / l));
  }
};

// ---- two arguments ----
struct FAdd {
  static constexpr const char* cuda = "($0) + ($1)";
  template <class T> static T f(T a, T b) { return a + b; } };
struct FSub {
  static constexpr const char* cuda = "($0) - ($1)";
  template <class T> static T f(T a, T b) { return a - b; } };
struct FMul {
  static constexpr const char* cuda = "($0) * ($1)";
  template <class T> static T f(T a, T b) { return a * b; } };
struct FDiv {
  static constexpr const char* cuda = "($0) / ($1)";
  template <class T> static T f(T a, T b) { return a / b; } };
// Min / Max are NaN when either argument is (R's pmin / pmax), in either order: a NaN `a`
// is kept by the comparison, a NaN `b` by the second test.
struct FMin {
  static constexpr const char* cuda = "($1 < $0 ? $1 : ($1 == $1 ? $0 : $1))";
  template <class T> static T f(T a, T b) { return b < a ? b : (b == b ? a : b); } };
struct FMax {
  static constexpr const char* cuda = "($1 > $0 ? $1 : ($1 == $1 ? $0 : $1))";
  template <class T> static T f(T a, T b) { return b > a ? b : (b == b ? a : b); } };
// Powf(a, b) = a^b = exp(b log a), as in R: 0^b is 0 for b > 0 and inf for b < 0 through
// log(0) = -inf, and x^0 = 1 for every x, NaN included (the exponent is set to 0 where
// b == 0, by a bit blend). A negative a gives NaN for a fractional b, like R's (-2)^0.5,
// and (-1)^b |a|^b for a whole b, like R's (-2)^3 = -8 (negative_base). The CPU engine
// runs the exp as a split exp run (cpu/math_runs.h, powf_run) and fixes the negative
// bases after it, to the same bits as f.
struct FPowf {
  static constexpr const char* cuda = "k_powf($0, $1)";
  // f below on the GPU, with the same exp(b log a) (not pow) so that both agree closely.
  static constexpr const char* cuda_helper = R"(
__device__ __forceinline__ T k_powf(T a, T b) {
  if (a < T(0)) {
    if (b != floor(b)) return k_nan();
    const T m = b == T(0) ? T(1) : exp(b * log(-a));
    return fabs(fmod(b, T(2))) == T(1) ? -m : m;
  }
  return b == T(0) ? T(1) : exp(b * log(a));
}
)";
  template <class T> KERNOPS_VMATH_INLINE static T exponent_of_log(T log_a, T b) {
    return vmath::blend_if_zero(b, T(0), b * log_a);
  }
  // a^b for a < 0 (not inlined into vector loops: it runs for negative bases only).
  template <class T> static T negative_base(T a, T b) {
    if (b != std::floor(b)) return std::numeric_limits<T>::quiet_NaN();  // fractional (NaN b too)
    const T m = vmath::exp(exponent_of_log(vmath::log(-a), b));
    return std::fabs(std::fmod(b, T(2))) == T(1) ? -m : m;  // odd b (inf is even here)
  }
  template <class T> static T f(T a, T b) {
    return a < T(0) ? negative_base(a, b) : vmath::exp(exponent_of_log(vmath::log(a), b));
  }
};

// ---- three arguments ----
// IfElse(c, a, b) = a where c >= 0, else b (KeOps convention); NaN where c is NaN.
struct FIfElse {
  static constexpr const char* cuda = "($0 >= T(0) ? $1 : ($0 == $0 ? $2 : $0))";
  template <class T> static T f(T c, T a, T b) { return c >= T(0) ? a : (c == c ? b : c); } };
// Clamp(x, lo, hi): NaN when x, lo or hi is (lo + hi is then NaN).
struct FClamp {
  static constexpr const char* cuda = "($1 == $1 && $2 == $2 ? ($0 < $1 ? $1 : ($0 > $2 ? $2 : $0)) : ($1) + ($2))";
  template <class T> static T f(T x, T lo, T hi) {
    const T r = x < lo ? lo : (x > hi ? hi : x);
    return lo == lo && hi == hi ? r : lo + hi;
  }
};

// x^n for an integer n. Up to |n| = kPowBySquaringMax by repeated squaring (exact for
// small n, like R's x^2); past it as exp(n log|x|) with the sign of x^n (pow_by_log).
// Squaring's rounding errors grow with n, the log form's with |n log|x||, which is below
// 710 wherever x^n is a finite normal number. Measured largest relative errors over x
// with finite x^n (against long double powl): squaring 9e-15 at n = 100, 9e-14 at 1000,
// 3e-13 at 3000, 1e-10 at 1e6; the log form 6e-14 to 1.3e-13 for every n: the crossing
// is near n = 2000.
constexpr unsigned kPowBySquaringMax = 2048;
template <class T>
KERNOPS_VMATH_INLINE T pow_by_log(T x, int n) {
  const T m = vmath::exp(static_cast<T>(n) * vmath::log(std::fabs(x)));
  return (n & 1) && x < T(0) ? -m : m;
}
template <class T>
inline T pow_int(T x, int n) {
  if (n > static_cast<int>(kPowBySquaringMax) || n < -static_cast<int>(kPowBySquaringMax)) return pow_by_log(x, n);
  T base = n < 0 ? T(1) / x : x;
  unsigned m = n < 0 ? static_cast<unsigned>(-(long)n) : static_cast<unsigned>(n);
  T r = T(1);
  while (m) {
    if (m & 1u) r *= base;
    base *= base;
    m >>= 1u;
  }
  return r;
}

// pow_int on the GPU (Note [CUDA snippets]): the same squaring steps and crossover.
inline std::string pow_int_cuda() {
  const std::string max = std::to_string(kPowBySquaringMax);
  return R"(
__device__ __forceinline__ T k_pow_int(T x, int n) {
  if (n > )" + max + " || n < -" + max + R"() {
    const T m = exp(T(n) * log(fabs(x)));
    return (n & 1) && x < T(0) ? -m : m;
  }
  T base = n < 0 ? T(1) / x : x;
  unsigned m = n < 0 ? (unsigned)(-(long long)n) : (unsigned)n;
  T r = T(1);
  while (m) {
    if (m & 1u) r *= base;
    base *= base;
    m >>= 1u;
  }
  return r;
}
)";
}

// r * base^M by pow_int's steps, unrolled at compile time: pow_int(x, M) is
// pow_steps<M>(1, x) to the bit (and pow_int(x, -M) is pow_steps<M>(1, 1/x)). Straight-line,
// so a loop over points vectorises, which pow_int's loop over the bits of n prevents.
template <unsigned M, class T>
inline T pow_steps(T r, T base) {
  if constexpr (M == 0) {
    return r;
  } else {
    if constexpr ((M & 1u) != 0) r *= base;
    if constexpr (M > 1) return pow_steps<M / 2>(r, base * base);
    return r;
  }
}

// Calls fn(Tag{}) with the tag struct of a one-argument elementwise op (not Pow).
// Returns false when `op` is not one.
template <class Fn>
bool visit_unary(Op op, Fn&& fn) {
  switch (op) {
    case Op::Neg: fn(FNeg{}); return true;
    case Op::Exp: fn(FExp{}); return true;
    case Op::Log: fn(FLog{}); return true;
    case Op::Sqrt: fn(FSqrt{}); return true;
    case Op::Rsqrt: fn(FRsqrt{}); return true;
    case Op::Inv: fn(FInv{}); return true;
    case Op::Abs: fn(FAbs{}); return true;
    case Op::Sign: fn(FSign{}); return true;
    case Op::Sin: fn(FSin{}); return true;
    case Op::Cos: fn(FCos{}); return true;
    case Op::Step: fn(FStep{}); return true;
    case Op::ReLU: fn(FReLU{}); return true;
    case Op::Square: fn(FSquare{}); return true;
    case Op::Log1p: fn(FLog1p{}); return true;
    case Op::Expm1: fn(FExpm1{}); return true;
    default: return false;
  }
}

template <class Fn>
bool visit_binary(Op op, Fn&& fn) {
  switch (op) {
    case Op::Add: fn(FAdd{}); return true;
    case Op::Sub: fn(FSub{}); return true;
    case Op::Mul: fn(FMul{}); return true;
    case Op::Div: fn(FDiv{}); return true;
    case Op::Min: fn(FMin{}); return true;
    case Op::Max: fn(FMax{}); return true;
    case Op::Powf: fn(FPowf{}); return true;
    default: return false;
  }
}

template <class Fn>
bool visit_ternary(Op op, Fn&& fn) {
  switch (op) {
    case Op::IfElse: fn(FIfElse{}); return true;
    case Op::Clamp: fn(FClamp{}); return true;
    default: return false;
  }
}

}  // namespace KERNOPS_ISA
}  // namespace kernops
