// vmath.h -- branch-free, auto-vectorizable exp()/log() for double and float, meant to be
// inlined into `#pragma omp simd` loops of the kernel-reduction engine (libm calls block
// vectorization at R's default -O2). Self-contained C++17: no R headers here.
#ifndef KERNOPS_CORE_VMATH_H
#define KERNOPS_CORE_VMATH_H

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

// Design notes (apply to all four functions)
// * Straight-line code only: +,-,*,/ on the floating type, and and/or/add/logical shifts on the
//   same-width unsigned integer obtained by bit casting.  No tables, no libm, no branches, and
//   deliberately no `?:` and no comparisons either: GCC lowers `c ? a : b` to control flow, then
//   sinks the work that feeds only one arm into a conditional block (or jump-threads constant
//   arms), and with the default -ftrapping-math a loop containing conditionally executed FP
//   operations is not if-converted, hence not vectorized ("control flow in loop").  Conditions
//   are instead read off the sign bit of an FP difference (sign_mask below) and applied as
//   and/andnot/or bit blends; plain SSE2 can vectorize all of it (it cannot widen a double
//   comparison into a 64-bit integer mask, so `-(uint64_t)(x > c)` would not work there).
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

// 2^k for an integer-valued k with 1 <= k + 1023 <= 2046: the bits of 1.5*2^52 + 1023 + k
// hold k + 1023 in their low 12 bits; shifting by 52 moves that into the exponent field.
KERNOPS_VMATH_INLINE double pow2i(double k) noexcept {
  const std::uint64_t b = bit_cast<std::uint64_t>(k + (kRoundD + 1023.0));
  return bit_cast<double>(b << 52);
}
KERNOPS_VMATH_INLINE float pow2i(float k) noexcept {
  const std::uint32_t b = bit_cast<std::uint32_t>(k + (kRoundF + 127.0f));
  return bit_cast<float>(b << 23);
}

}  // namespace detail

// ---------------------------------------------------------------------------------------
// exp(x) = 2^n * e^r,  n = nearbyint(x / ln2),  r = x - n*ln2 in [-ln2/2, ln2/2]
// (Cody-Waite reduction with a two-piece ln2).  e^r = 1 + (r + r^2 * q(r)) where q is the
// Taylor series sum_{k=2..13} r^(k-2)/k!  (truncation error < 2^-57 on the interval).
// The scaling 2^n is applied as 2^n1 * 2^n2 with n1 = round(n/2), so both factors are normal
// numbers: the first product is exact and the second rounds once, giving correctly scaled
// subnormal results and a natural overflow to +inf.  |x| is first clamped to 750 (keeping the
// sign), which already gives exactly 0 / +inf and keeps n1, n2 inside the normal exponent range;
// so +-inf need no special case, and NaN (not clamped) propagates through the arithmetic.
KERNOPS_VMATH_INLINE double exp(double x) noexcept {
  using namespace detail;
  const std::uint64_t bx = bits(x);
  const std::uint64_t big = sign_mask(750.0 - from_bits(bx & ~kSignD));  // |x| > 750
  const double xc = from_bits((bx & ~big) | (((bx & kSignD) | bits(750.0)) & big));

  const double n = (xc * kLog2eD + kRoundD) - kRoundD;  // |n| <= 1082, exact integer
  const double r = (xc - n * kLn2HiD) - n * kLn2LoD;     // first difference is exact

  double q = 1.0 / 6227020800.0;   // 1/13!
  q = q * r + 1.0 / 479001600.0;   // 1/12!
  q = q * r + 1.0 / 39916800.0;    // 1/11!
  q = q * r + 1.0 / 3628800.0;     // 1/10!
  q = q * r + 1.0 / 362880.0;      // 1/9!
  q = q * r + 1.0 / 40320.0;       // 1/8!
  q = q * r + 1.0 / 5040.0;        // 1/7!
  q = q * r + 1.0 / 720.0;         // 1/6!
  q = q * r + 1.0 / 120.0;         // 1/5!
  q = q * r + 1.0 / 24.0;          // 1/4!
  q = q * r + 1.0 / 6.0;           // 1/3!
  q = q * r + 0.5;                 // 1/2!
  const double p = 1.0 + (r + (r * r) * q);

  const double n1 = (n * 0.5 + kRoundD) - kRoundD;  // |n1| <= 541
  const double n2 = n - n1;                         // |n2| <= 541
  return (p * pow2i(n1)) * pow2i(n2);
}

// float version: same scheme in single precision; degree-7 Taylor polynomial
// (truncation error < 2^-27 on [-ln2/2, ln2/2]); |x| clamped to 105.
KERNOPS_VMATH_INLINE float exp(float x) noexcept {
  using namespace detail;
  const std::uint32_t bx = bits(x);
  const std::uint32_t big = sign_mask(105.0f - from_bits(bx & ~kSignF));  // |x| > 105
  const float xc = from_bits((bx & ~big) | (((bx & kSignF) | bits(105.0f)) & big));

  const float n = (xc * kLog2eF + kRoundF) - kRoundF;  // |n| <= 151
  const float r = (xc - n * kLn2HiF) - n * kLn2LoF;

  float q = 1.0f / 5040.0f;        // 1/7!
  q = q * r + 1.0f / 720.0f;       // 1/6!
  q = q * r + 1.0f / 120.0f;       // 1/5!
  q = q * r + 1.0f / 24.0f;        // 1/4!
  q = q * r + 1.0f / 6.0f;         // 1/3!
  q = q * r + 0.5f;                // 1/2!
  const float p = 1.0f + (r + (r * r) * q);

  const float n1 = (n * 0.5f + kRoundF) - kRoundF;  // |n1| <= 76
  const float n2 = n - n1;
  return (p * pow2i(n1)) * pow2i(n2);
}

// ---------------------------------------------------------------------------------------
// log(x) = k*ln2 + log(1+f),  x = 2^k * m,  m in [sqrt(2)/2, sqrt(2)),  f = m - 1.
// With s = f/(2+f):  log(1+f) = 2 atanh(s) = 2s + s*R(s^2),  R(z) = sum c_i z^i ~ 2/3 z + ...
// and because 2s = f - s*f = f - h + s*h (h = f^2/2), log(1+f) = f - (h - s*(h + R)), which
// keeps the large term f exact.  The minimax coefficients of R are the published ones of
// fdlibm e_log.c (Lg1..Lg7, |error| < 2^-58.45) and, for float, FreeBSD msun e_logf.c
// (Lg1..Lg4, |error| < 2^-34.24).  Subnormal inputs are first scaled by 2^54 (2^25).
// Special values are patched with bit blends at the end.
KERNOPS_VMATH_INLINE double log(double x) noexcept {
  using namespace detail;
  const std::uint64_t bx = bits(x);
  // x < 2^-1022: subnormal (also set for zero/negatives, whose result is replaced below).
  const std::uint64_t tiny = sign_mask(x - 0x1p-1022);
  const double xs = x * from_bits((bits(0x1p54) & tiny) | (bits(1.0) & ~tiny));
  const double kadj = from_bits(bits(-54.0) & tiny);

  // Adding (1.0 - sqrt(0.5)) in bit space carries into the exponent exactly when the
  // mantissa is >= sqrt(0.5)'s, so the exponent field then holds k + 1023.
  constexpr std::uint64_t kSqrtHalfBits = 0x3fe6a09e00000000ULL;  // ~sqrt(0.5), rounded down
  const std::uint64_t u = bits(xs) + (std::uint64_t{0x3ff0000000000000} - kSqrtHalfBits);
  const double kbias = from_bits((u >> 52) | std::uint64_t{0x4330000000000000});  // 2^52 + k + 1023
  const double k = (kbias - (0x1p52 + 1023.0)) + kadj;
  const double m = from_bits((u & std::uint64_t{0x000fffffffffffff}) + kSqrtHalfBits);
  const double f = m - 1.0;  // exact, in [-0.2929, 0.4143]

  const double s = f / (2.0 + f);
  const double z = s * s;
  double R = 1.479819860511658591e-01;  // Lg7
  R = R * z + 1.531383769920937332e-01; // Lg6
  R = R * z + 1.818357216161805012e-01; // Lg5
  R = R * z + 2.222219843214978396e-01; // Lg4
  R = R * z + 2.857142874366239149e-01; // Lg3
  R = R * z + 3.999999999940941908e-01; // Lg2
  R = R * z + 6.666666666666735130e-01; // Lg1
  R = R * z;
  const double h = 0.5 * f * f;
  double y = k * kLn2HiD - ((h - (s * (h + R) + k * kLn2LoD)) - f);

  // Special values.  x - x is +0 for finite x and NaN for NaN (and +-inf, fixed next).
  y += x - x;
  const double ax = from_bits(bx & ~kSignD);
  const std::uint64_t is_inf = sign_mask(std::numeric_limits<double>::max() - ax);
  const std::uint64_t is_zero = sign_mask(ax - std::numeric_limits<double>::denorm_min());
  const std::uint64_t is_neg = std::uint64_t(0) - (bx >> 63);  // includes -0, -inf, -NaN
  y = blend(is_inf, std::numeric_limits<double>::infinity(), y);
  y = blend(is_neg, std::numeric_limits<double>::quiet_NaN(), y);
  y = blend(is_zero, -std::numeric_limits<double>::infinity(), y);
  return y;
}

KERNOPS_VMATH_INLINE float log(float x) noexcept {
  using namespace detail;
  const std::uint32_t bx = bits(x);
  const std::uint32_t tiny = sign_mask(x - 0x1p-126f);
  const float xs = x * from_bits((bits(0x1p25f) & tiny) | (bits(1.0f) & ~tiny));
  const float kadj = from_bits(bits(-25.0f) & tiny);

  constexpr std::uint32_t kSqrtHalfBits = 0x3f3504f3u;  // sqrt(0.5)
  const std::uint32_t u = bits(xs) + (std::uint32_t{0x3f800000} - kSqrtHalfBits);
  const float kbias = from_bits((u >> 23) | std::uint32_t{0x4b000000});  // 2^23 + k + 127
  const float k = (kbias - (0x1p23f + 127.0f)) + kadj;
  const float m = from_bits((u & std::uint32_t{0x007fffff}) + kSqrtHalfBits);
  const float f = m - 1.0f;

  const float s = f / (2.0f + f);
  const float z = s * s;
  float R = 0xf89e26.0p-26f;     // Lg4
  R = R * z + 0x91e9ee.0p-25f;   // Lg3
  R = R * z + 0xccce13.0p-25f;   // Lg2
  R = R * z + 0xaaaaaa.0p-24f;   // Lg1
  R = R * z;
  const float h = 0.5f * f * f;
  float y = k * kLn2HiF - ((h - (s * (h + R) + k * kLn2LoF)) - f);

  y += x - x;
  const float ax = from_bits(bx & ~kSignF);
  const std::uint32_t is_inf = sign_mask(std::numeric_limits<float>::max() - ax);
  const std::uint32_t is_zero = sign_mask(ax - std::numeric_limits<float>::denorm_min());
  const std::uint32_t is_neg = std::uint32_t(0) - (bx >> 31);
  y = blend(is_inf, std::numeric_limits<float>::infinity(), y);
  y = blend(is_neg, std::numeric_limits<float>::quiet_NaN(), y);
  y = blend(is_zero, -std::numeric_limits<float>::infinity(), y);
  return y;
}

}  // namespace KERNOPS_ISA
}  // namespace vmath
}  // namespace kernops

#endif  // KERNOPS_CORE_VMATH_H
