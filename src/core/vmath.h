// vmath.h -- branch-free, auto-vectorizable exp()/log()/sin()/cos() for double and float,
// meant to be inlined into `#pragma omp simd` loops of the kernel-reduction engine (libm
// calls block vectorization at R's default -O2). Self-contained C++17: no R headers here.
#ifndef KERNOPS_CORE_VMATH_H
#define KERNOPS_CORE_VMATH_H

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "cpu/isa.h"

// The functions must be inlined into the simd loop body or the loop cannot be vectorized;
// at -O2 GCC's inliner may refuse bodies of this size, so force it.
#if defined(__GNUC__) || defined(__clang__)
#define KERNOPS_VMATH_INLINE inline __attribute__((always_inline))
#else
#define KERNOPS_VMATH_INLINE inline
#endif

namespace kernops {
namespace vmath {
inline namespace KERNOPS_ISA {  // one copy per instruction set: Note [ISA dispatch]

// Design notes (apply to all of them; sin and cos leave arguments above 1e6 (float 1e8) to libm)
// * Straight-line code only: +,-,*,/ on the floating type, and and/or/add/logical shifts on the
//   same-width unsigned integer obtained by bit casting.  No tables, no libm, no branches, and
//   deliberately no `?:` and no comparisons either: GCC lowers `c ? a : b` to control flow, then
//   sinks the work that feeds only one arm into a conditional block (or jump-threads constant
//   arms), and with the default -ftrapping-math a loop containing conditionally executed FP
//   operations is not if-converted, hence not vectorized ("control flow in loop").  Conditions
//   are instead read off the sign bit of an FP or integer difference (sign_mask below) and
//   applied as and/andnot/or bit blends; plain SSE2 can vectorize all of it (it cannot widen a
//   double comparison into a 64-bit integer mask, so `-(uint64_t)(x > c)` would not work there).
// * No float<->int64 conversions (packed cvt needs AVX-512): integers are obtained with the
//   "magic number" trick, i.e. adding 1.5*2^52 (1.5*2^23 for float) rounds to an integer and
//   leaves it in the low mantissa bits, and vice versa for turning exponent bits into a double.
// * Results do not depend on whether the compiler contracts a*b+c into an FMA.
// * Assumes round-to-nearest and no flush-to-zero / denormals-are-zero (the defaults), and that
//   an operation on a positive NaN returns a positive NaN (true on x86, ARM, POWER, RISC-V).
namespace detail {

template <class To, class From>
KERNOPS_VMATH_INLINE To bit_cast(const From& from) noexcept {
  static_assert(sizeof(To) == sizeof(From), "bit_cast: size mismatch");
  To to;
  std::memcpy(&to, &from, sizeof(To));
  return to;
}

// ln(2) split so that n*kLn2Hi is exact for |n| < 2^11 (double) / 2^8 (float).
// Values as in fdlibm e_exp.c / musl expf.c (Sun Microsystems, public).
constexpr double kLn2HiD = 0x1.62e42feep-1;         // 6.93147180369123816490e-01
constexpr double kLn2LoD = 0x1.a39ef35793c76p-33;   // 1.90821492927058770002e-10
constexpr double kLog2eD = 0x1.71547652b82fep0;     // 1/ln(2)
constexpr float kLn2HiF = 0x1.62e4p-1f;             // 6.9314575195e-01 (15 significant bits)
constexpr float kLn2LoF = 0x1.7f7d1cp-20f;          // 1.4286067653e-06
constexpr float kLog2eF = 0x1.715476p0f;

constexpr double kRoundD = 0x1.8p52;  // x + kRoundD - kRoundD == nearbyint(x), |x| < 2^51
constexpr float kRoundF = 0x1.8p23f;  // same for float, |x| < 2^22

constexpr std::uint64_t kSignD = 0x8000000000000000ULL;
constexpr std::uint32_t kSignF = 0x80000000u;

KERNOPS_VMATH_INLINE std::uint64_t bits(double v) noexcept { return bit_cast<std::uint64_t>(v); }
KERNOPS_VMATH_INLINE std::uint32_t bits(float v) noexcept { return bit_cast<std::uint32_t>(v); }
KERNOPS_VMATH_INLINE double from_bits(std::uint64_t b) noexcept { return bit_cast<double>(b); }
KERNOPS_VMATH_INLINE float from_bits(std::uint32_t b) noexcept { return bit_cast<float>(b); }

// All-ones if the sign bit of v is set, else all-zeros.  `sign_mask(a - b)` is the mask of
// `a < b` for non-NaN a, b with a != b or a - b != -0 (exact subtraction cases are fine: x - x
// is +0 under round-to-nearest).
KERNOPS_VMATH_INLINE std::uint64_t sign_mask(double v) noexcept {
  return std::uint64_t(0) - (bits(v) >> 63);
}
KERNOPS_VMATH_INLINE std::uint32_t sign_mask(float v) noexcept {
  return std::uint32_t(0) - (bits(v) >> 31);
}
// m ? a : b, bitwise.
KERNOPS_VMATH_INLINE double blend(std::uint64_t m, double a, double b) noexcept {
  return from_bits((bits(a) & m) | (bits(b) & ~m));
}
KERNOPS_VMATH_INLINE float blend(std::uint32_t m, float a, float b) noexcept {
  return from_bits((bits(a) & m) | (bits(b) & ~m));
}

}  // namespace detail

// ---------------------------------------------------------------------------------------
// exp(x) = 2^n * e^r,  n = nearbyint(x / ln2),  r = x - n*ln2 in [-ln2/2, ln2/2]
// (Cody-Waite reduction with a two-piece ln2), e^r = 1 + (r + r^2 * q(r)).
// q is a minimax polynomial of degree 9 (so e^r has degree 11), relative error of e^r
// < 2^-56.3 with the coefficients rounded to double; float: degree 5 (e^r degree 7),
// < 2^-29.7 after rounding to float.  Coefficients computed for this file with a Remez
// exchange (mpmath, 60 digits) minimising max |P(r)/e^r - 1| on [-0.3468, 0.3468].
// q is evaluated as even(r^2) + r*odd(r^2) to halve the dependency chain.
// The scaling 2^n is applied as 2^n1 * 2^n2 with n1 = floor(n/2), n2 = n - n1, so both factors
// are normal numbers: the first product is exact and the second rounds once, giving correctly
// scaled subnormal results and a natural overflow to +inf.  Both exponents come straight from
// the bits of t = x/ln2 + 1.5*2^52, whose low bits hold n (shift right by one for n1).
// |x| is first clamped to 750 (keeping the sign), which already gives exactly 0 / +inf and
// keeps n1, n2 inside the normal exponent range; so +-inf need no special case, and NaN (not
// clamped) propagates through the arithmetic.
// The work is split in two halves, exp(x) = exp_finish(exp_reduce(x)), bit for bit: a loop
// that runs the halves as two passes over a short run (cpu/exp_run.h, Note [Split exp]) keeps
// each dependency chain short enough for the out-of-order window, ~30% faster than one pass.
// The pieces below are templates over the lane type V (the scalar itself, or a GCC vector
// of it in cpu/exp_run.h) with the scalar type S fixing the constants, so that the
// vector code runs exactly the same operations and rounds to the same bits.
template <class V>
struct ExpReduced {
  V r;  // x - n ln2
  V t;  // x/ln2 + 1.5*2^52 (2^23): its low bits hold n
};

template <class S>
struct ExpConst;
template <>
struct ExpConst<double> {
  static constexpr double log2e = detail::kLog2eD, round = detail::kRoundD;
  static constexpr double ln2_hi = detail::kLn2HiD, ln2_lo = detail::kLn2LoD;
  static constexpr double clamp = 750;  // |x| above: exp is 0 or inf either way
  static constexpr int mant_bits = 52, bias = 1023;
};
template <>
struct ExpConst<float> {
  static constexpr float log2e = detail::kLog2eF, round = detail::kRoundF;
  static constexpr float ln2_hi = detail::kLn2HiF, ln2_lo = detail::kLn2LoF;
  static constexpr float clamp = 105;
  static constexpr int mant_bits = 23, bias = 127;
};

// Cody-Waite reduction of an argument already clamped to +-ExpConst<S>::clamp.
template <class S, class V>
KERNOPS_VMATH_INLINE ExpReduced<V> exp_reduce_clamped(V xc) noexcept {
  using C = ExpConst<S>;
  const V t = xc * C::log2e + C::round;  // bits(t) = bits(round) + n
  const V n = t - C::round;              // exact integer
  return {(xc - n * C::ln2_hi) - n * C::ln2_lo, t};  // first difference is exact
}

// e^r on [-ln2/2, ln2/2].
template <class S, class V>
KERNOPS_VMATH_INLINE V exp_poly(V r) noexcept {
  const V r2 = r * r;
  if constexpr (sizeof(S) == 8) {
    V qe = 0x1.28ad6823801dap-22 * r2 + 0x1.a0199a176f423p-16;  // c10, c8
    qe = qe * r2 + 0x1.6c16c18426388p-10;                       // c6
    qe = qe * r2 + 0x1.555555555088dp-5;                        // c4
    qe = qe * r2 + 0x1.000000000000ap-1;                        // c2
    V qo = 0x1.ad7f8826e4794p-26 * r2 + 0x1.71df253159674p-19;  // c11, c9
    qo = qo * r2 + 0x1.a01a012a6def2p-13;                       // c7
    qo = qo * r2 + 0x1.1111111127b8ep-7;                        // c5
    qo = qo * r2 + 0x1.55555555554fap-3;                        // c3
    return 1.0 + (r + r2 * (qe + r * qo));
  } else {
    const V qe = (0x1.6d8cf4p-10f * r2 + 0x1.55548ep-5f) * r2 + 0.5f;          // c6, c4, c2
    const V qo = (0x1.9f08a2p-13f * r2 + 0x1.11127p-7f) * r2 + 0x1.555554p-3f;  // c7, c5, c3
    return 1.0f + (r + r2 * (qe + r * qo));
  }
}

KERNOPS_VMATH_INLINE ExpReduced<double> exp_reduce(double x) noexcept {
  using namespace detail;
  const std::uint64_t bx = bits(x);
  const std::uint64_t big = sign_mask(750.0 - from_bits(bx & ~kSignD));  // |x| > 750
  const double xc = from_bits((bx & ~big) | (((bx & kSignD) | bits(750.0)) & big));
  return exp_reduce_clamped<double>(xc);
}

KERNOPS_VMATH_INLINE double exp_finish(double r, double t) noexcept {
  using namespace detail;
  const double p = exp_poly<double>(r);
  // bits(kRoundD) is even with zero low 12 bits, so (bits(t) >> 1) holds kRoundD/2 + floor(n/2)
  // and bits(t) - that holds kRoundD/2 + n2; adding the bias and shifting left by 52 keeps
  // exactly the low 12 bits, i.e. the biased exponents of 2^n1 and 2^n2.
  const std::uint64_t bt = bits(t);
  const std::uint64_t bh = bt >> 1;
  const double s1 = from_bits((bh + 1023) << 52);       // 2^n1, |n1| <= 541
  const double s2 = from_bits((bt - bh + 1023) << 52);  // 2^n2
  return (p * s1) * s2;
}

KERNOPS_VMATH_INLINE double exp(double x) noexcept {
  const ExpReduced<double> e = exp_reduce(x);
  return exp_finish(e.r, e.t);
}

// float version: same scheme in single precision; |x| clamped to 105.
KERNOPS_VMATH_INLINE ExpReduced<float> exp_reduce(float x) noexcept {
  using namespace detail;
  const std::uint32_t bx = bits(x);
  const std::uint32_t big = sign_mask(105.0f - from_bits(bx & ~kSignF));  // |x| > 105
  const float xc = from_bits((bx & ~big) | (((bx & kSignF) | bits(105.0f)) & big));
  return exp_reduce_clamped<float>(xc);
}

KERNOPS_VMATH_INLINE float exp_finish(float r, float t) noexcept {
  using namespace detail;
  const float p = exp_poly<float>(r);
  const std::uint32_t bt = bits(t);
  const std::uint32_t bh = bt >> 1;
  const float s1 = from_bits((bh + 127) << 23);       // 2^n1, |n1| <= 76
  const float s2 = from_bits((bt - bh + 127) << 23);  // 2^n2
  return (p * s1) * s2;
}

KERNOPS_VMATH_INLINE float exp(float x) noexcept {
  const ExpReduced<float> e = exp_reduce(x);
  return exp_finish(e.r, e.t);
}

// ---------------------------------------------------------------------------------------
// log(x) = k*ln2 + log(1+f),  x = 2^k * m,  m in [sqrt(2)/2, sqrt(2)),  f = m - 1.
// With s = f/(2+f):  log(1+f) = 2 atanh(s) = 2s + s*R(s^2),  R(z) = sum c_i z^i ~ 2/3 z + ...
// and because 2s = f - s*f = f - h + s*h (h = f^2/2), log(1+f) = f - (h - s*(h + R)), which
// keeps the large term f exact.  The minimax coefficients of R are the published ones of
// fdlibm e_log.c (Lg1..Lg7, |error| < 2^-58.45) and, for float, FreeBSD msun e_logf.c
// (Lg1..Lg4, |error| < 2^-34.24).  Subnormal inputs are first scaled by 2^54 (2^25).
// Special values are fixed up at the end with bit blends.
// Like exp, log is split in two halves, log(x) = log_finish(x, log_reduce(x)) bit for bit:
// the engine runs them as two passes (cpu/math_runs.h, log_run), the division in the first.
template <class V>
struct LogReduced {
  V k;  // the exponent k, as a floating-point value
  V f;  // m - 1
  V s;  // f / (2 + f)
};

KERNOPS_VMATH_INLINE LogReduced<double> log_reduce(double x) noexcept {
  using namespace detail;
  const std::uint64_t bx = bits(x);
  // x < 2^-1022: subnormal (also set for zero/negatives, whose result is replaced below).
  // Integer test: an FP difference could itself be subnormal, which costs a microcode assist.
  const std::uint64_t tiny = std::uint64_t(0) - ((bx - (std::uint64_t{1} << 52)) >> 63);
  const double xs = x * from_bits(bits(1.0) + (tiny & (std::uint64_t{54} << 52)));  // 2^54 or 1
  const double kadj = from_bits(bits(-54.0) & tiny);

  // Adding (1.0 - sqrt(0.5)) in bit space carries into the exponent exactly when the
  // mantissa is >= sqrt(0.5)'s, so the exponent field then holds k + 1023.
  constexpr std::uint64_t kSqrtHalfBits = 0x3fe6a09e00000000ULL;  // ~sqrt(0.5), rounded down
  const std::uint64_t u = bits(xs) + (std::uint64_t{0x3ff0000000000000} - kSqrtHalfBits);
  const double kbias = from_bits((u >> 52) | std::uint64_t{0x4330000000000000});  // 2^52 + k + 1023
  const double k = (kbias - (0x1p52 + 1023.0)) + kadj;
  const double m = from_bits((u & std::uint64_t{0x000fffffffffffff}) + kSqrtHalfBits);
  const double f = m - 1.0;  // exact, in [-0.2929, 0.4143]
  return {k, f, f / (2.0 + f)};
}

KERNOPS_VMATH_INLINE double log_finish(double x, const LogReduced<double>& lr) noexcept {
  using namespace detail;
  const double k = lr.k, f = lr.f, s = lr.s;
  const double z = s * s;
  const double w = z * z;  // R split into odd/even powers of z for a shorter dependency chain
  const double R = z * (6.666666666666735130e-01 +                     // Lg1
                        w * (2.857142874366239149e-01 +                // Lg3
                             w * (1.818357216161805012e-01 +           // Lg5
                                  w * 1.479819860511658591e-01))) +    // Lg7
                   w * (3.999999999940941908e-01 +                     // Lg2
                        w * (2.222219843214978396e-01 +                // Lg4
                             w * 1.531383769920937332e-01));           // Lg6
  const double h = 0.5 * f * f;
  double y = k * kLn2HiD - ((h - (s * (h + R) + k * kLn2LoD)) - f);

  // Special values, tested on the bits (no FP op that could produce a subnormal: on x86 those
  // take a microcode assist of ~100 cycles).  Order matters: -inf/-NaN are non-finite and
  // negative, -0 is negative and zero.
  const std::uint64_t bx = bits(x);
  const std::uint64_t ax = bx & ~kSignD;
  const std::uint64_t not_finite = std::uint64_t(0) - ((ax + (std::uint64_t{1} << 52)) >> 63);
  const std::uint64_t is_zero = std::uint64_t(0) - ((ax - 1) >> 63);  // x == +-0
  const std::uint64_t is_neg = std::uint64_t(0) - (bx >> 63);         // sign bit set
  y = blend(not_finite, x, y);      // +inf -> +inf, NaN -> NaN
  y = from_bits(bits(y) | is_neg);  // all-ones: a quiet NaN
  y = blend(is_zero, -std::numeric_limits<double>::infinity(), y);
  return y;
}

KERNOPS_VMATH_INLINE double log(double x) noexcept { return log_finish(x, log_reduce(x)); }

KERNOPS_VMATH_INLINE LogReduced<float> log_reduce(float x) noexcept {
  using namespace detail;
  const std::uint32_t bx = bits(x);
  const std::uint32_t tiny = std::uint32_t(0) - ((bx - (std::uint32_t{1} << 23)) >> 31);
  const float xs = x * from_bits(bits(1.0f) + (tiny & (std::uint32_t{25} << 23)));  // 2^25 or 1
  const float kadj = from_bits(bits(-25.0f) & tiny);

  constexpr std::uint32_t kSqrtHalfBits = 0x3f3504f3u;  // sqrt(0.5)
  const std::uint32_t u = bits(xs) + (std::uint32_t{0x3f800000} - kSqrtHalfBits);
  const float kbias = from_bits((u >> 23) | std::uint32_t{0x4b000000});  // 2^23 + k + 127
  const float k = (kbias - (0x1p23f + 127.0f)) + kadj;
  const float m = from_bits((u & std::uint32_t{0x007fffff}) + kSqrtHalfBits);
  const float f = m - 1.0f;
  return {k, f, f / (2.0f + f)};
}

KERNOPS_VMATH_INLINE float log_finish(float x, const LogReduced<float>& lr) noexcept {
  using namespace detail;
  const float k = lr.k, f = lr.f, s = lr.s;
  const float z = s * s;
  const float w = z * z;
  const float R = z * (0xaaaaaa.0p-24f + w * 0x91e9ee.0p-25f) +  // Lg1, Lg3
                  w * (0xccce13.0p-25f + w * 0xf89e26.0p-26f);   // Lg2, Lg4
  const float h = 0.5f * f * f;
  float y = k * kLn2HiF - ((h - (s * (h + R) + k * kLn2LoF)) - f);

  const std::uint32_t bx = bits(x);
  const std::uint32_t ax = bx & ~kSignF;
  const std::uint32_t not_finite = std::uint32_t(0) - ((ax + (std::uint32_t{1} << 23)) >> 31);
  const std::uint32_t is_zero = std::uint32_t(0) - ((ax - 1) >> 31);
  const std::uint32_t is_neg = std::uint32_t(0) - (bx >> 31);
  y = blend(not_finite, x, y);
  y = from_bits(bits(y) | is_neg);
  y = blend(is_zero, -std::numeric_limits<float>::infinity(), y);
  return y;
}

KERNOPS_VMATH_INLINE float log(float x) noexcept { return log_finish(x, log_reduce(x)); }

// a where x is +-0, else b: a bit blend, no `?:` (see the design notes).
KERNOPS_VMATH_INLINE double blend_if_zero(double x, double a, double b) noexcept {
  using namespace detail;
  return blend(std::uint64_t(0) - (((bits(x) & ~kSignD) - 1) >> 63), a, b);
}
KERNOPS_VMATH_INLINE float blend_if_zero(float x, float a, float b) noexcept {
  using namespace detail;
  return blend(std::uint32_t(0) - (((bits(x) & ~kSignF) - 1) >> 31), a, b);
}

// ---------------------------------------------------------------------------------------
// sin(x), cos(x). For |x| <= kTrigMax (double 1e6, float 1e8) in straight-line code:
// x = n pi/2 + r by Cody-Waite with pi/2 in four pieces (fdlibm e_rem_pio2.c: pio2_1, pio2_2,
// pio2_3 hold 33 bits each, so n*pio2_k is exact for n < 2^20, and the tail pio2_3t). When r
// is small the first three differences are exact (their operands are close multiples of a
// common power of two), so r keeps its accuracy next to the multiples of pi/2. Then sin r
// and cos r by the fdlibm k_sin.c / k_cos.c polynomials (|error| < 2^-58 on [-pi/4, pi/4];
// r is one double, so their tail argument y is 0), and the quadrant n mod 4 picks sin r,
// cos r, -sin r or -cos r by bit blends; cos x is sin of quadrant n + 1. |x| < 2^-26: sin x
// rounds to x (and -0 stays -0). float: in float for |x| <= 8192 (Note [float trig]); up to
// 1e8 the same in double with pi/2 in two pieces (FreeBSD e_rem_pio2f.c: n*pio2_1 exact for
// n < 2^28) and the FreeBSD k_sinf.c / k_cosf.c polynomials (|error| < 2^-37), rounded once
// to float. Max error 1-2 ulp (tests).
// Larger |x|, +-inf and NaN go to libm: sin()/cos() below branch, and the vector runs of the
// engine (cpu/math_runs.h) keep x in those lanes (sincos_or_keep) and fix them up afterwards.
namespace detail {

constexpr double kTrigMaxD = 1e6;  // n = x 2/pi < 2^20
constexpr float kTrigMaxF = 1e8f;  // n < 2^28
constexpr double kInvPio2 = 6.36619772367581382433e-01;   // 0x3FE45F30 6DC9C883
constexpr double kPio2_1 = 1.57079632673412561417e+00;    // 0x3FF921FB 54400000, 33 bits
constexpr double kPio2_2 = 6.07710050630396597660e-11;    // 0x3DD0B461 1A600000, 33 bits
constexpr double kPio2_3 = 2.02226624871116645580e-21;    // 0x3BA3198A 2E000000, 33 bits
constexpr double kPio2_3t = 8.47842766036889956997e-32;   // 0x397B839A 252049C1
constexpr double kPio2_1F = 1.57079631090164184570e+00;   // 0x3FF921FB 50000000, 25 bits
constexpr double kPio2_1tF = 1.58932547735281966916e-08;  // 0x3E5110B4 611A6263
// float in float (Note [float trig]): |x| <= 8192, so n = x 2/pi < 2^13 and n times each of
// the first three pieces of pi/2 (8, 11 and 11 bits) is exact.
constexpr float kTrigNativeMaxF = 8192.0f;
constexpr float kInvPio2Fl = 0x1.45f306p-1f;
constexpr float kPio2_1Fl = 0x1.92p+0f;       // 1.5703125
constexpr float kPio2_2Fl = 0x1.fb4p-12f;     // 11 bits
constexpr float kPio2_3Fl = 0x1.444p-24f;     // 11 bits
constexpr float kPio2_4Fl = 0x1.68c234p-39f;  // the rest, to 2^-63

// sin r and cos r for |r| <= ~pi/4 (fdlibm __kernel_sin, __kernel_cos with y = 0).
KERNOPS_VMATH_INLINE double sin_kernel(double r) noexcept {
  const double z = r * r, v = z * r;
  const double p = 8.33333333332248946124e-03 +              // S2
                   z * (-1.98412698298579493134e-04 +        // S3
                        z * (2.75573137070700676789e-06 +    // S4
                             z * (-2.50507602534068634195e-08 +  // S5
                                  z * 1.58969099521155010221e-10)));  // S6
  return r + v * (-1.66666666666666324348e-01 + z * p);        // S1
}
KERNOPS_VMATH_INLINE double cos_kernel(double r) noexcept {
  const double z = r * r, w = z * z;
  const double p = z * (4.16666666666666019037e-02 +                  // C1
                        z * (-1.38888888888741095749e-03 +            // C2
                             z * 2.48015872894767294178e-05)) +       // C3
                   w * w * (-2.75573143513906633035e-07 +             // C4
                            z * (2.08757232129817482790e-09 +         // C5
                                 z * -1.13596475577881948265e-11));   // C6
  const double hz = 0.5 * z, one_hz = 1.0 - hz;
  return one_hz + (((1.0 - one_hz) - hz) + z * p);  // keeps 1 - z/2 exact to the last bit
}
// FreeBSD __kernel_sindf, __kernel_cosdf: for float results, evaluated in double.
KERNOPS_VMATH_INLINE double sin_kernel_f(double r) noexcept {
  const double z = r * r, w = z * z, s = z * r;
  return (r + s * (-0x15555554cbac77.0p-55 + z * 0x111110896efbb2.0p-59)) +   // S1, S2
         s * w * (-0x1a00f9e2cae774.0p-65 + z * 0x16cd878c3b46a7.0p-71);      // S3, S4
}
KERNOPS_VMATH_INLINE double cos_kernel_f(double r) noexcept {
  const double z = r * r, w = z * z;
  return ((1.0 + z * -0x1ffffffd0c5e81.0p-54) + w * 0x155553e1053a42.0p-57) +  // C0, C1
         (w * z) * (-0x16c087e80f1e27.0p-62 + z * 0x199342e0ee5069.0p-68);     // C2, C3
}

// sin r and cos r for |r| <= ~pi/4 in float arithmetic (the Cephes sinf / cosf polynomials,
// relative error below 2^-24 on [-pi/4, pi/4]).
KERNOPS_VMATH_INLINE float sin_kernel_fl(float r) noexcept {
  const float z = r * r;
  return r + (r * z) * (-1.6666654611e-1f + z * (8.3321608736e-3f + z * -1.9515295891e-4f));
}
KERNOPS_VMATH_INLINE float cos_kernel_fl(float r) noexcept {
  const float z = r * r;
  return (1.0f - 0.5f * z) + (z * z) * (4.166664568298827e-2f + z * (-1.388731625493765e-3f + z * 2.443315711809948e-5f));
}
template <int Shift>
KERNOPS_VMATH_INLINE float by_quadrant_fl(float t, float s, float c) noexcept {
  const std::uint32_t q = bits(t) + Shift;  // bits(kRoundF) is a multiple of 4
  const float y = blend(std::uint32_t(0) - (q & 1), c, s);
  return from_bits(bits(y) ^ ((q & 2) << 30));
}

// sin (Shift 0) or cos (Shift 1) of x, given sin r, cos r and t = x 2/pi + 1.5*2^52: the
// low two bits of bits(t) + Shift are the quadrant.
template <int Shift>
KERNOPS_VMATH_INLINE double by_quadrant(double t, double s, double c) noexcept {
  const std::uint64_t q = bits(t) + Shift;  // bits(kRoundD) is a multiple of 4
  const double y = blend(std::uint64_t(0) - (q & 1), c, s);
  return from_bits(bits(y) ^ ((q & 2) << 62));  // quadrants 2 and 3: negated
}

}  // namespace detail

// sin (Shift 0) or cos (Shift 1) of x where |x| <= kTrigMax; where |x| is larger, or x is
// not finite, returns x itself (a value outside [-1, 1], for a caller to redo with libm).
template <int Shift>
KERNOPS_VMATH_INLINE double sincos_or_keep(double x) noexcept {
  using namespace detail;
  const double t = x * kInvPio2 + kRoundD;
  const double n = t - kRoundD;
  const double r = (((x - n * kPio2_1) - n * kPio2_2) - n * kPio2_3) - n * kPio2_3t;
  double y = by_quadrant<Shift>(t, sin_kernel(r), cos_kernel(r));
  const std::uint64_t ax = bits(x) & ~kSignD;
  if constexpr (Shift == 0) y = blend(std::uint64_t(0) - ((ax - bits(0x1p-26)) >> 63), x, y);  // |x| < 2^-26
  return blend(std::uint64_t(0) - ((bits(kTrigMaxD) - ax) >> 63), x, y);          // |x| > max
}
// Note [float trig]
// float sin/cos are computed in float where |x| <= 8192 (kTrigNativeMaxF): Cody-Waite with
// pi/2 in four float pieces (the first three short enough that n times each is exact, the
// subtractions then exact as in fdlibm), and float polynomials, so a vector holds twice the
// lanes of the double computation it replaces (bench/ops.R). Between 8192 and 1e8, where
// float pieces cannot keep r accurate next to the multiples of pi/2, sincos_wide() does it
// in double as before; beyond, libm. Max error 2 ulp in every range (tests).
template <int Shift>
KERNOPS_VMATH_INLINE float sincos_or_keep(float x) noexcept {
  using namespace detail;
  const float t = x * kInvPio2Fl + kRoundF;
  const float n = t - kRoundF;
  const float r = (((x - n * kPio2_1Fl) - n * kPio2_2Fl) - n * kPio2_3Fl) - n * kPio2_4Fl;
  float y = by_quadrant_fl<Shift>(t, sin_kernel_fl(r), cos_kernel_fl(r));
  const std::uint32_t ax = bits(x) & ~kSignF;
  if constexpr (Shift == 0) y = blend(std::uint32_t(0) - ((ax - bits(0x1p-12f)) >> 31), x, y);  // |x| < 2^-12
  return blend(std::uint32_t(0) - ((bits(kTrigNativeMaxF) - ax) >> 31), x, y);          // |x| > 8192
}

// float sin (Shift 0) or cos (Shift 1) through double, for 8192 < |x| <= kTrigMaxF.
template <int Shift>
inline float sincos_wide(float xf) noexcept {
  using namespace detail;
  const double x = xf;
  const double t = x * kInvPio2 + kRoundD;
  const double n = t - kRoundD;
  const double r = (x - n * kPio2_1F) - n * kPio2_1tF;
  return static_cast<float>(by_quadrant<Shift>(t, sin_kernel_f(r), cos_kernel_f(r)));
}

// Whether sincos_or_keep computes x (else it keeps it, for sin() / cos() below to redo).
template <class T>
KERNOPS_VMATH_INLINE bool trig_in_range(T x) noexcept {
  return std::fabs(x) <= (sizeof(T) == 8 ? T(detail::kTrigMaxD) : T(detail::kTrigNativeMaxF));
}
inline double sin(double x) noexcept { return trig_in_range(x) ? sincos_or_keep<0>(x) : std::sin(x); }
inline double cos(double x) noexcept { return trig_in_range(x) ? sincos_or_keep<1>(x) : std::cos(x); }
inline float sin(float x) noexcept {
  return trig_in_range(x) ? sincos_or_keep<0>(x) : std::fabs(x) <= detail::kTrigMaxF ? sincos_wide<0>(x) : std::sin(x);
}
inline float cos(float x) noexcept {
  return trig_in_range(x) ? sincos_or_keep<1>(x) : std::fabs(x) <= detail::kTrigMaxF ? sincos_wide<1>(x) : std::cos(x);
}

}  // namespace KERNOPS_ISA
}  // namespace vmath
}  // namespace kernops

#endif  // KERNOPS_CORE_VMATH_H
