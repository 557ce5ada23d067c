// Accuracy, special-value and monotonicity tests for src/core/vmath.h
// (branch-free exp/log/sin/cos used inside `#pragma omp simd` loops).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "vmath.h"

namespace vm = kernops::vmath;

namespace {

// Map a float/double onto integers so that adjacent representable values differ by 1
// (-0 and +0 both map to 0; subnormals are counted in their own ulps).
std::int64_t ordered(double v) {
  std::int64_t i;
  std::memcpy(&i, &v, sizeof i);
  return i < 0 ? std::numeric_limits<std::int64_t>::min() - i : i;
}
std::int64_t ordered(float v) {
  std::int32_t i;
  std::memcpy(&i, &v, sizeof i);
  return i < 0 ? std::int64_t(std::numeric_limits<std::int32_t>::min()) - i : i;
}

// Distance in ulps; NaN vs NaN counts as 0, NaN vs number as "infinite".
template <class T>
double ulp_dist(T got, T want) {
  if (std::isnan(got) || std::isnan(want))
    return (std::isnan(got) && std::isnan(want)) ? 0.0 : std::numeric_limits<double>::infinity();
  const std::int64_t d = ordered(got) - ordered(want);
  return static_cast<double>(d < 0 ? -d : d);
}

// References: libm in double; for float, the double libm result rounded to float.
double ref_exp(double x) { return std::exp(x); }
double ref_log(double x) { return std::log(x); }
float ref_exp(float x) { return static_cast<float>(std::exp(static_cast<double>(x))); }
float ref_log(float x) { return static_cast<float>(std::log(static_cast<double>(x))); }

struct MaxErr {
  double ulps = 0;
  double at = 0;
};

// Apply f through a `#pragma omp simd` loop (the production usage; vectorized when compiled
// with -fopenmp-simd).
template <class T, class F>
std::vector<T> apply_simd(const std::vector<T>& xs, F f) {
  std::vector<T> ys(xs.size());
  const T* px = xs.data();
  T* py = ys.data();
  const std::size_t n = xs.size();
#pragma omp simd
  for (std::size_t i = 0; i < n; ++i) py[i] = f(px[i]);
  return ys;
}

template <class T, class F, class R>
MaxErr max_ulp(const std::vector<T>& xs, F f, R ref) {
  const std::vector<T> ys = apply_simd(xs, f);
  MaxErr e;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const double d = ulp_dist(ys[i], ref(xs[i]));
    if (d > e.ulps) {
      e.ulps = d;
      e.at = static_cast<double>(xs[i]);
    }
  }
  return e;
}

template <class T>
std::vector<T> uniform(T lo, T hi, std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(static_cast<double>(lo), static_cast<double>(hi));
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(u(rng));
  return v;
}

// Positive finite values, uniform in the exponent (hence log-uniform) including subnormals.
std::vector<double> log_uniform_double(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<double> v;
  v.reserve(n);
  while (v.size() < n) {
    const std::uint64_t e = rng() % 2047;  // biased exponent 0..2046 (0 = subnormal)
    const std::uint64_t m = rng() & 0x000fffffffffffffULL;
    const std::uint64_t b = (e << 52) | m;
    double x;
    std::memcpy(&x, &b, sizeof x);
    if (x > 0) v.push_back(x);
  }
  return v;
}
std::vector<float> log_uniform_float(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<float> v;
  v.reserve(n);
  while (v.size() < n) {
    const std::uint32_t e = static_cast<std::uint32_t>(rng() % 255);
    const std::uint32_t m = static_cast<std::uint32_t>(rng()) & 0x007fffffu;
    const std::uint32_t b = (e << 23) | m;
    float x;
    std::memcpy(&x, &b, sizeof x);
    if (x > 0) v.push_back(x);
  }
  return v;
}

constexpr std::size_t kN = 1000000;
constexpr double kTol = 2.0;  // ulps

double vexp(double x) { return vm::exp(x); }
float vexp(float x) { return vm::exp(x); }
double vlog(double x) { return vm::log(x); }
float vlog(float x) { return vm::log(x); }

template <class T>
T inf() { return std::numeric_limits<T>::infinity(); }
template <class T>
T qnan() { return std::numeric_limits<T>::quiet_NaN(); }

}  // namespace

// ------------------------------------------------------------------ accuracy

TEST(VmathExp, DoubleFullRange) {
  auto xs = uniform<double>(-745.0, 710.0, kN, 1);
  auto e = max_ulp(xs, [](double x) { return vm::exp(x); }, [](double x) { return ref_exp(x); });
  EXPECT_LE(e.ulps, kTol) << "at x = " << e.at;
}

TEST(VmathExp, DoubleUnitInterval) {
  auto xs = uniform<double>(-1.0, 1.0, kN, 2);
  auto e = max_ulp(xs, [](double x) { return vm::exp(x); }, [](double x) { return ref_exp(x); });
  EXPECT_LE(e.ulps, kTol) << "at x = " << e.at;
}

TEST(VmathExp, DoubleSubnormalResults) {
  auto xs = uniform<double>(-745.2, -708.0, kN / 4, 3);
  auto e = max_ulp(xs, [](double x) { return vm::exp(x); }, [](double x) { return ref_exp(x); });
  EXPECT_LE(e.ulps, kTol) << "at x = " << e.at;
}

TEST(VmathExp, FloatFullRange) {
  auto xs = uniform<float>(-104.0f, 89.0f, kN, 4);
  auto e = max_ulp(xs, [](float x) { return vm::exp(x); }, [](float x) { return ref_exp(x); });
  EXPECT_LE(e.ulps, kTol) << "at x = " << e.at;
}

TEST(VmathExp, FloatUnitInterval) {
  auto xs = uniform<float>(-1.0f, 1.0f, kN, 5);
  auto e = max_ulp(xs, [](float x) { return vm::exp(x); }, [](float x) { return ref_exp(x); });
  EXPECT_LE(e.ulps, kTol) << "at x = " << e.at;
}

TEST(VmathLog, DoubleLogUniform) {
  auto xs = log_uniform_double(kN, 6);
  auto e = max_ulp(xs, [](double x) { return vm::log(x); }, [](double x) { return ref_log(x); });
  EXPECT_LE(e.ulps, kTol) << "at x = " << e.at;
}

TEST(VmathLog, DoubleNearOne) {
  auto xs = uniform<double>(0.5, 2.0, kN, 7);
  auto e = max_ulp(xs, [](double x) { return vm::log(x); }, [](double x) { return ref_log(x); });
  EXPECT_LE(e.ulps, kTol) << "at x = " << e.at;
}

TEST(VmathLog, FloatLogUniform) {
  auto xs = log_uniform_float(kN, 8);
  auto e = max_ulp(xs, [](float x) { return vm::log(x); }, [](float x) { return ref_log(x); });
  EXPECT_LE(e.ulps, kTol) << "at x = " << e.at;
}

TEST(VmathLog, FloatNearOne) {
  auto xs = uniform<float>(0.5f, 2.0f, kN, 9);
  auto e = max_ulp(xs, [](float x) { return vm::log(x); }, [](float x) { return ref_log(x); });
  EXPECT_LE(e.ulps, kTol) << "at x = " << e.at;
}

// Vectorized loop body and scalar call must agree bit for bit (no remainder-loop drift).
template <class T>
void check_simd_matches_scalar(std::uint64_t seed) {
  std::vector<T> xs = uniform<T>(T(-120), T(120), 1003, seed);
  // include special values and subnormals among ordinary ones
  const T specials[] = {T(0), -T(0), inf<T>(), -inf<T>(), qnan<T>(), -qnan<T>(),
                        std::numeric_limits<T>::denorm_min(), std::numeric_limits<T>::min(),
                        std::numeric_limits<T>::max(), T(1), T(-1)};
  for (std::size_t i = 0; i < sizeof(specials) / sizeof(specials[0]); ++i)
    xs[7 * i + 3] = specials[i];
  const std::vector<T> e = apply_simd(xs, [](T x) { return vm::exp(x); });
  const std::vector<T> l = apply_simd(xs, [](T x) { return vm::log(x); });
  for (std::size_t i = 0; i < xs.size(); ++i) {
    volatile T x = xs[i];  // opaque: forces a separate scalar evaluation
    EXPECT_EQ(ordered(e[i]), ordered(vexp(T(x)))) << "exp " << xs[i];
    EXPECT_EQ(ordered(l[i]), ordered(vlog(T(x)))) << "log " << xs[i];
  }
}

TEST(Vmath, SimdLoopMatchesScalarCalls) {
  check_simd_matches_scalar<double>(10);
  check_simd_matches_scalar<float>(11);
}

// ------------------------------------------------------------------ special values

template <class T>
void check_exp_specials() {
  const T pinf = inf<T>();
  EXPECT_EQ(vm::exp(-pinf), T(0));
  EXPECT_FALSE(std::signbit(vm::exp(-pinf)));
  EXPECT_EQ(vm::exp(pinf), pinf);
  EXPECT_TRUE(std::isnan(vm::exp(qnan<T>())));
  EXPECT_TRUE(std::isnan(vm::exp(-qnan<T>())));
  EXPECT_TRUE(std::isnan(vm::exp(std::numeric_limits<T>::signaling_NaN())));
  EXPECT_TRUE(std::isnan(vm::exp(T(0) * inf<T>())));  // hardware default NaN (negative on x86)
  EXPECT_EQ(vm::exp(T(0)), T(1));
  EXPECT_EQ(vm::exp(-T(0)), T(1));
  EXPECT_EQ(vm::exp(std::numeric_limits<T>::max()), pinf);
  EXPECT_EQ(vm::exp(std::numeric_limits<T>::lowest()), T(0));
  EXPECT_EQ(vm::exp(T(1000)), pinf);
  EXPECT_EQ(vm::exp(T(-1000)), T(0));
  // Tiny arguments: exp(x) rounds to 1 (or 1 - ulp/2 neighbour) without garbage.
  EXPECT_LE(ulp_dist(vm::exp(std::numeric_limits<T>::denorm_min()), T(1)), 0.0);
  EXPECT_LE(ulp_dist(vm::exp(std::numeric_limits<T>::min()), T(1)), 0.0);
}

TEST(VmathExp, SpecialValuesDouble) {
  check_exp_specials<double>();
  // Overflow threshold: log(DBL_MAX) = 709.782712893383973096...
  EXPECT_EQ(vm::exp(709.79), inf<double>());
  EXPECT_EQ(vm::exp(std::nextafter(709.782712893384, 1000.0)), inf<double>());
  EXPECT_TRUE(std::isfinite(vm::exp(709.782712893383)));
  EXPECT_LE(ulp_dist(vm::exp(709.782712893383), std::exp(709.782712893383)), kTol);
  EXPECT_LE(ulp_dist(vm::exp(709.0), std::exp(709.0)), kTol);
  // Subnormal results: exp(-745.13) = 4.9e-324 (denorm_min), below -745.14 -> 0.
  EXPECT_EQ(vm::exp(-745.13), std::numeric_limits<double>::denorm_min());
  EXPECT_EQ(vm::exp(-745.2), 0.0);
  EXPECT_EQ(vm::exp(-746.0), 0.0);
  for (double x : {-708.0, -708.4, -708.5, -710.0, -720.0, -730.0, -740.0, -744.0, -745.0})
    EXPECT_LE(ulp_dist(vm::exp(x), std::exp(x)), 1.0) << x;
  const double lo = std::log(std::numeric_limits<double>::min());  // -708.396...
  EXPECT_LT(vm::exp(lo - 1.0), std::numeric_limits<double>::min());
  EXPECT_GT(vm::exp(lo - 1.0), 0.0);
}

TEST(VmathExp, SpecialValuesFloat) {
  check_exp_specials<float>();
  // log(FLT_MAX) = 88.7228391...
  EXPECT_EQ(vm::exp(88.73f), inf<float>());
  EXPECT_TRUE(std::isfinite(vm::exp(88.72f)));
  EXPECT_LE(ulp_dist(vm::exp(88.72f), ref_exp(88.72f)), kTol);
  // Subnormal floats: FLT_TRUE_MIN = exp(-103.279); 0 below -103.97.
  EXPECT_EQ(vm::exp(-103.0f), ref_exp(-103.0f));
  EXPECT_EQ(vm::exp(-103.5f), std::numeric_limits<float>::denorm_min());
  EXPECT_EQ(vm::exp(-104.0f), 0.0f);
  EXPECT_EQ(vm::exp(-110.0f), 0.0f);
  for (float x : {-87.0f, -87.4f, -88.0f, -90.0f, -95.0f, -100.0f, -102.0f})
    EXPECT_LE(ulp_dist(vm::exp(x), ref_exp(x)), 1.0) << x;
}

template <class T>
void check_log_specials() {
  const T pinf = inf<T>();
  EXPECT_EQ(vm::log(T(0)), -pinf);
  EXPECT_EQ(vm::log(-T(0)), -pinf);
  EXPECT_TRUE(std::isnan(vm::log(T(-1))));
  EXPECT_TRUE(std::isnan(vm::log(-std::numeric_limits<T>::denorm_min())));
  EXPECT_TRUE(std::isnan(vm::log(-std::numeric_limits<T>::max())));
  EXPECT_TRUE(std::isnan(vm::log(-pinf)));
  EXPECT_EQ(vm::log(pinf), pinf);
  EXPECT_TRUE(std::isnan(vm::log(qnan<T>())));
  EXPECT_TRUE(std::isnan(vm::log(-qnan<T>())));
  EXPECT_TRUE(std::isnan(vm::log(std::numeric_limits<T>::signaling_NaN())));
  EXPECT_TRUE(std::isnan(vm::log(T(0) * inf<T>())));
  EXPECT_EQ(vm::log(T(1)), T(0));
  EXPECT_FALSE(std::signbit(vm::log(T(1))));
  EXPECT_EQ(vm::log(T(2)), ref_log(T(2)));
  // Extremes and subnormals.
  const T dmin = std::numeric_limits<T>::denorm_min();
  for (T x : {dmin, T(2) * dmin, T(3) * dmin, T(1000) * dmin, std::numeric_limits<T>::min() / T(3),
              std::numeric_limits<T>::min(), std::nextafter(std::numeric_limits<T>::min(), T(0)),
              std::numeric_limits<T>::max(), std::numeric_limits<T>::epsilon(),
              T(1) + std::numeric_limits<T>::epsilon(), T(1) - std::numeric_limits<T>::epsilon() / 2})
    EXPECT_LE(ulp_dist(vm::log(x), ref_log(x)), 1.0) << x;
}

TEST(VmathLog, SpecialValuesDouble) { check_log_specials<double>(); }
TEST(VmathLog, SpecialValuesFloat) { check_log_specials<float>(); }

// Every subnormal exponent/bit position, double and float.
TEST(VmathLog, AllSubnormalBinades) {
  for (int b = 0; b < 52; ++b) {
    const double x = std::ldexp(1.0, -1074 + b) * 1.37;
    EXPECT_LE(ulp_dist(vm::log(x), ref_log(x)), kTol) << x;
  }
  for (int b = 0; b < 23; ++b) {
    const float x = std::ldexp(1.0f, -149 + b) * 1.37f;
    EXPECT_LE(ulp_dist(vm::log(x), ref_log(x)), kTol) << x;
  }
}

// ------------------------------------------------------------------ monotonicity

template <class T, class F>
void expect_monotone(const std::vector<T>& xs, F f, const char* what) {
  // xs is increasing; f must be non-decreasing along it.
  int bad = 0;
  for (std::size_t i = 1; i < xs.size(); ++i) {
    if (f(xs[i]) < f(xs[i - 1])) {
      if (++bad <= 5)
        ADD_FAILURE() << what << " not monotone between " << xs[i - 1] << " and " << xs[i];
    }
  }
  EXPECT_EQ(bad, 0) << what;
}

// Fine uniform grid plus every representable value in a window around `c`.
template <class T>
std::vector<T> grid(T lo, T hi, int n, T c, int steps) {
  std::vector<T> v;
  for (int i = 0; i <= n; ++i) v.push_back(lo + (hi - lo) * static_cast<T>(i) / static_cast<T>(n));
  std::vector<T> w;
  T x = c;
  for (int i = 0; i < steps; ++i) x = std::nextafter(x, -inf<T>());
  for (int i = 0; i < 2 * steps; ++i, x = std::nextafter(x, inf<T>())) w.push_back(x);
  // merge (both sorted)
  std::vector<T> out;
  std::size_t a = 0, b = 0;
  while (a < v.size() || b < w.size()) {
    if (b == w.size() || (a < v.size() && v[a] <= w[b])) out.push_back(v[a++]);
    else out.push_back(w[b++]);
  }
  return out;
}

TEST(VmathMonotone, ExpNearZero) {
  expect_monotone(grid<double>(-1e-3, 1e-3, 200000, 0.0, 20000),
                  [](double x) { return vm::exp(x); }, "exp(double) near 0");
  expect_monotone(grid<float>(-1e-3f, 1e-3f, 200000, 0.0f, 20000),
                  [](float x) { return vm::exp(x); }, "exp(float) near 0");
  // Around the range-reduction switch points +-ln2/2, where n changes.
  for (double c : {0.5 * std::log(2.0), -0.5 * std::log(2.0)}) {
    expect_monotone(grid<double>(c - 1e-6, c + 1e-6, 100000, c, 20000),
                    [](double x) { return vm::exp(x); }, "exp(double) near +-ln2/2");
    const float cf = static_cast<float>(c);
    expect_monotone(grid<float>(cf - 1e-4f, cf + 1e-4f, 100000, cf, 20000),
                    [](float x) { return vm::exp(x); }, "exp(float) near +-ln2/2");
  }
}

TEST(VmathMonotone, LogNearOneAndZero) {
  expect_monotone(grid<double>(1 - 1e-3, 1 + 1e-3, 200000, 1.0, 20000),
                  [](double x) { return vm::log(x); }, "log(double) near 1");
  expect_monotone(grid<float>(1 - 1e-3f, 1 + 1e-3f, 200000, 1.0f, 20000),
                  [](float x) { return vm::log(x); }, "log(float) near 1");
  // Near 0+: across the subnormal/normal boundary (scaling switch) ...
  const double dmin = std::numeric_limits<double>::min();
  expect_monotone(grid<double>(0.0, 4 * dmin, 200000, dmin, 20000),
                  [](double x) { return vm::log(x); }, "log(double) near 0");
  const float fmin = std::numeric_limits<float>::min();
  expect_monotone(grid<float>(0.0f, 4 * fmin, 200000, fmin, 20000),
                  [](float x) { return vm::log(x); }, "log(float) near 0");
  // ... and across the mantissa split point sqrt(1/2), where k changes.
  const double c = std::sqrt(0.5);
  expect_monotone(grid<double>(c - 1e-6, c + 1e-6, 100000, c, 20000),
                  [](double x) { return vm::log(x); }, "log(double) near sqrt(1/2)");
  const float cf = std::sqrt(0.5f);
  expect_monotone(grid<float>(cf - 1e-4f, cf + 1e-4f, 100000, cf, 20000),
                  [](float x) { return vm::log(x); }, "log(float) near sqrt(1/2)");
}

// ------------------------------------------------------------------ sin and cos

// Both functions over xs, through the vectorised path (sincos_or_keep in an omp simd loop,
// kept lanes redone with libm as the engine does) and the scalar one, against libm (float:
// the double libm result rounded). Returns the larger error in ulps.
template <class T>
double trig_max_ulp(const std::vector<T>& xs) {
  double worst = 0;
  for (int shift = 0; shift < 2; ++shift) {
    std::vector<T> ys = shift == 0 ? apply_simd(xs, [](T x) { return vm::sincos_or_keep<0>(x); })
                                   : apply_simd(xs, [](T x) { return vm::sincos_or_keep<1>(x); });
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const double xd = static_cast<double>(xs[i]);
      const T want = static_cast<T>(shift == 0 ? std::sin(xd) : std::cos(xd));
      if (!(std::fabs(ys[i]) <= T(2))) ys[i] = shift == 0 ? vm::sin(ys[i]) : vm::cos(ys[i]);  // as the engine
      const T scalar = shift == 0 ? vm::sin(xs[i]) : vm::cos(xs[i]);
      EXPECT_EQ(ordered(ys[i]), ordered(scalar)) << (shift ? "cos " : "sin ") << xs[i];
      const double d = ulp_dist(ys[i], want);
      EXPECT_LE(d, kTol) << (shift ? "cos " : "sin ") << xs[i];
      worst = std::max(worst, d);
    }
  }
  return worst;
}

// x near multiples of pi/2 (the reduction's hard cases): the double nearest k pi/2 and its
// neighbours, for k spread over the fast range.
template <class T>
std::vector<T> near_multiples_of_half_pi(double kmax, std::size_t count) {
  std::vector<T> v;
  for (std::size_t q = 1; q <= count; ++q) {
    const double k = std::floor(kmax * static_cast<double>(q) / static_cast<double>(count));
    T x = static_cast<T>(static_cast<long double>(k) * 1.5707963267948966192313216916397514L);
    for (int step = 0; step < 3; ++step) {
      v.push_back(x);
      v.push_back(-x);
      x = std::nextafter(x, T(0));
    }
  }
  return v;
}

TEST(VmathTrig, DoubleAccuracy) {
  EXPECT_LE(trig_max_ulp(uniform<double>(-3.15, 3.15, kN / 4, 21)), kTol);
  EXPECT_LE(trig_max_ulp(uniform<double>(-200.0, 200.0, kN / 4, 22)), kTol);
  EXPECT_LE(trig_max_ulp(uniform<double>(-1e6, 1e6, kN / 4, 23)), kTol);
  EXPECT_LE(trig_max_ulp(near_multiples_of_half_pi<double>(6.3e5, 20000)), kTol);
}

TEST(VmathTrig, FloatAccuracy) {
  EXPECT_LE(trig_max_ulp(uniform<float>(-3.15f, 3.15f, kN / 4, 24)), kTol);
  EXPECT_LE(trig_max_ulp(uniform<float>(-1e4f, 1e4f, kN / 4, 25)), kTol);
  EXPECT_LE(trig_max_ulp(uniform<float>(-1e8f, 1e8f, kN / 4, 26)), kTol);
  EXPECT_LE(trig_max_ulp(near_multiples_of_half_pi<float>(6e7, 20000)), kTol);
  // the float-in-float range (Note [float trig]): |x| <= 8192, every multiple of pi/2 in it
  EXPECT_LE(trig_max_ulp(uniform<float>(-8192.0f, 8192.0f, kN / 4, 28)), kTol);
  EXPECT_LE(trig_max_ulp(near_multiples_of_half_pi<float>(5215, 5215)), kTol);
}

template <class T>
void check_trig_specials() {
  const T tiny[] = {std::numeric_limits<T>::denorm_min(), std::numeric_limits<T>::min(), T(1e-30), T(1e-9)};
  for (T x : tiny) {
    EXPECT_EQ(vm::sin(x), x) << x;
    EXPECT_EQ(vm::sin(-x), -x) << x;
    EXPECT_EQ(vm::cos(x), T(1)) << x;
  }
  EXPECT_EQ(vm::sin(T(0)), T(0));
  EXPECT_FALSE(std::signbit(vm::sin(T(0))));
  EXPECT_EQ(vm::sin(-T(0)), T(0));
  EXPECT_TRUE(std::signbit(vm::sin(-T(0))));
  EXPECT_EQ(vm::cos(T(0)), T(1));
  EXPECT_EQ(vm::cos(-T(0)), T(1));
  for (T x : {inf<T>(), -inf<T>(), qnan<T>(), -qnan<T>()}) {
    EXPECT_TRUE(std::isnan(vm::sin(x))) << x;
    EXPECT_TRUE(std::isnan(vm::cos(x))) << x;
    // the vector path keeps them, for libm to redo
    EXPECT_FALSE(std::fabs(vm::sincos_or_keep<0>(x)) <= T(2)) << x;
  }
  // Beyond the fast range: libm's own values.
  for (T x : {T(1.5e8), T(-3e9), T(1e30), std::numeric_limits<T>::max(), std::numeric_limits<T>::lowest()}) {
    EXPECT_EQ(ordered(vm::sin(x)), ordered(std::sin(x))) << x;
    EXPECT_EQ(ordered(vm::cos(x)), ordered(std::cos(x))) << x;
  }
  // Results stay inside [-1, 1].
  for (T x : uniform<T>(T(-10), T(10), 10000, 27)) {
    EXPECT_LE(std::fabs(vm::sin(x)), T(1));
    EXPECT_LE(std::fabs(vm::cos(x)), T(1));
  }
}

TEST(VmathTrig, SpecialValuesDouble) { check_trig_specials<double>(); }
TEST(VmathTrig, SpecialValuesFloat) { check_trig_specials<float>(); }
