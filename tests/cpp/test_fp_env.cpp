// The floating-point environment of reductions (Note [Subnormals] in fp_env.h): subnormal
// results are flushed to zero while a reduction runs, on every thread that computes it, and
// the calling thread's control register is the same before and after every call, whether
// the call returned, failed or was interrupted. Results at extreme kernel scales still
// match a dense double evaluation wherever the terms that matter are normal numbers.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "fp_env.h"
#include "kernops.h"

using namespace kernops;

namespace {

std::vector<double> uniform(std::size_t n, unsigned seed) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<double> v(n);
  for (auto& x : v) x = u(g);
  return v;
}

// Runs `f` with the calling thread's control register set to `start`, and returns the
// register as `f` left it.
template <class F>
unsigned long register_after(unsigned long start, F f) {
  const unsigned long outside = fp_control();
  set_fp_control(start);
  try {
    f();
  } catch (...) {
  }
  const unsigned long after = fp_control();
  set_fp_control(outside);
  return after;
}

}  // namespace

TEST(FpEnv, CallerRegisterIsUnchangedOnEveryExitPath) {
  if (kFlushBits == 0) GTEST_SKIP() << "no known floating-point control register on this platform";
  auto p = compile("Sum_Reduction(Exp(-s*SqDist(x,y))*b,0)", {"x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "s = Pm(1)"});
  const std::int64_t n = 3000;
  std::vector<double> x = uniform(3 * n, 1), y = uniform(3 * n, 2), b = uniform(n, 3), s = {4000};
  const std::vector<ArgData> args = {{x.data(), n, 3}, {y.data(), n, 3}, {b.data(), n, 1}, {s.data(), 1, 1}};
  std::vector<double> out(n);
  struct StopNow : Control {
    bool interrupted() override { return true; }
  } stop;
  // Two starting states: R's default, and one with flags and a rounding mode set, which
  // must survive too (the guard restores bit for bit, not to a default).
  for (unsigned long start : {fp_control(), (fp_control() | 0x3fUL) ^ (kFlushBits == 0x8000 ? 0x2000UL : 0UL)}) {
    for (int threads : {1, 2}) {
      RunConfig c;
      c.n_threads = threads;
      EXPECT_EQ(register_after(start, [&] { run_cpu(*p, args, out.data(), nullptr, c); }), start) << "returned";
      c.control = &stop;
      EXPECT_EQ(register_after(start, [&] { run_cpu(*p, args, out.data(), nullptr, c); }), start) << "interrupted";
      c.control = nullptr;
      c.dtype = Dtype::Float32;
      std::vector<double> huge = {1e300};  // beyond float32: an error before any work
      std::vector<ArgData> bad = args;
      bad[3] = {huge.data(), 1, 1};
      EXPECT_EQ(register_after(start, [&] { run_cpu(*p, bad, out.data(), nullptr, c); }), start) << "failed";
    }
  }
}

// The documented semantics: a term below the smallest normal number contributes 0. A
// product of two normal numbers, 1e-300 * 1e-10, is subnormal: dropped. A row whose terms are
// normal is unchanged.
TEST(FpEnv, SubnormalTermsAreDroppedAndNormalOnesKept) {
  auto p = compile("Sum_Reduction(x*y,0)", {"x = Vi(1)", "y = Vj(1)"});
  std::vector<double> x = {1e-300, 1.0}, y = {1e-10, 3e-10};
  std::vector<double> out(2);
  RunConfig c;
  run_cpu(*p, {{x.data(), 2, 1}, {y.data(), 2, 1}}, out.data(), nullptr, c);
  if (kFlushBits != 0)
    EXPECT_EQ(out[0], 0.0);
  else
    EXPECT_NEAR(out[0], 4e-310, 1e-322);
  EXPECT_NEAR(out[1], 4e-10, 1e-24);
}

// Extreme scales against a dense double evaluation, where each row has normal terms (x_i is
// one of the y's, so its nearest term is exp(0) * b): the Gaussian sum at s = 4000 (float64)
// and s = 150 (float32), and LogSumExp at s = 4000, both dtypes. The dropped terms are below
// 2.2e-308 (float32: 1.2e-38) and cannot move these sums.
TEST(FpEnv, ExtremeScalesMatchTheDenseEvaluation) {
  const std::int64_t n = 500, m = 700;
  std::vector<double> y = uniform(3 * m, 5), b = uniform(m, 6), x(3 * n);
  for (std::int64_t i = 0; i < n; ++i)
    for (int k = 0; k < 3; ++k) x[i + k * n] = y[(i * 7 % m) + k * m];
  const char* decls_w1[] = {"x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "s = Pm(1)"};
  auto w1 = compile("Sum_Reduction(Exp(-s*SqDist(x,y))*b,0)", {decls_w1, decls_w1 + 4});
  auto lse = compile("LogSumExp_Reduction(-s*SqDist(x,y),0)", {"x = Vi(3)", "y = Vj(3)", "s = Pm(1)"});
  auto d2 = [&](std::int64_t i, std::int64_t j) {
    double s = 0;
    for (int k = 0; k < 3; ++k) s += (x[i + k * n] - y[j + k * m]) * (x[i + k * n] - y[j + k * m]);
    return s;
  };
  for (Dtype dt : {Dtype::Float64, Dtype::Float32}) {
    const double s = dt == Dtype::Float64 ? 4000 : 150, tol = dt == Dtype::Float64 ? 1e-12 : 1e-5;
    std::vector<double> sv = {s};
    for (int threads : {1, 2}) {
      RunConfig c;
      c.dtype = dt;
      c.n_threads = threads;
      std::vector<double> got(n), got_lse(n);
      run_cpu(*w1, {{x.data(), n, 3}, {y.data(), m, 3}, {b.data(), m, 1}, {sv.data(), 1, 1}}, got.data(), nullptr, c);
      std::vector<double> sv_lse = {4000};
      run_cpu(*lse, {{x.data(), n, 3}, {y.data(), m, 3}, {sv_lse.data(), 1, 1}}, got_lse.data(), nullptr, c);
      for (std::int64_t i = 0; i < n; ++i) {
        double want = 0, mx = -INFINITY, z = 0;
        for (std::int64_t j = 0; j < m; ++j) want += std::exp(-s * d2(i, j)) * b[j];
        for (std::int64_t j = 0; j < m; ++j) mx = std::max(mx, -4000 * d2(i, j));
        for (std::int64_t j = 0; j < m; ++j) z += std::exp(-4000 * d2(i, j) - mx);
        EXPECT_NEAR(got[i], want, tol * want) << "W1 row " << i;
        EXPECT_NEAR(got_lse[i], mx + std::log(z), tol * std::max(1.0, std::fabs(mx + std::log(z)))) << "LSE row " << i;
      }
    }
  }
}
