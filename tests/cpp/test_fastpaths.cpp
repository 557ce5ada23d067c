// Fast paths chosen at plan time (fuse.h): they must be recognised where promised, left
// alone where they do not apply, and give the generic interpreter's results on every
// instruction set.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "cpu/isa.h"
#include "fp_env.h"
#include "kernops.h"
#include "scalar_ops.h"
#include "vmath.h"

using namespace kernops;

namespace {

// A value as a reduction computes it: below the smallest normal number of its type, 0 with
// its sign (Note [Subnormals] in fp_env.h), where the platform flushes.
template <class T>
double flushed(T v) {
  return kFlushBits != 0 && std::fabs(v) < std::numeric_limits<T>::min() ? std::copysign(0.0, v) : static_cast<double>(v);
}

Plan plan_of(const std::string& formula, const std::vector<std::string>& decls, bool fuse) {
  PlanOptions o;
  o.fuse_radial = fuse;
  return make_plan(parse_formula(formula, decls), o);
}

int count_op(const Plan& p, Op op) {
  int n = 0;
  for (const auto& prog : p.prog)
    for (const auto& ins : prog) n += ins.op == op;
  return n;
}

std::vector<std::vector<double>> random_args(const Plan& p, std::int64_t n, std::int64_t m, unsigned seed) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<std::vector<double>> cols;
  for (const auto& v : p.formula.vars) {
    const std::int64_t rows = v.cat == Cat::P ? 1 : (v.cat == Cat::I ? n : m);
    cols.emplace_back(static_cast<size_t>(rows * v.dim));
    for (auto& x : cols.back()) x = v.cat == Cat::P ? 0.5 + std::fabs(u(g)) : u(g);  // positive scales
  }
  return cols;
}

// The reduction's values; its indices into *idx_out when given.
std::vector<double> run(const Plan& p, const std::vector<std::vector<double>>& cols, std::int64_t n, std::int64_t m,
                        Dtype dt, int isa, int threads, std::vector<double>* idx_out = nullptr) {
  std::vector<ArgData> args;
  for (size_t a = 0; a < cols.size(); ++a) {
    const auto& v = p.formula.vars[a];
    const std::int64_t rows = v.cat == Cat::P ? 1 : (v.cat == Cat::I ? n : m);
    args.push_back({cols[a].data(), rows, v.dim});
  }
  const OutShape s = check_args(p, args);
  std::vector<double> out(static_cast<size_t>(s.rows * s.value_cols));
  std::vector<double> idx(static_cast<size_t>(s.rows * s.index_cols));
  RunConfig c;
  c.dtype = dt;
  c.max_isa = isa;
  c.n_threads = threads;
  run_cpu(p, args, out.data(), idx.data(), c);
  if (idx_out) *idx_out = idx;
  return out;
}

struct Case {
  const char* formula;
  int fused;  // RadialKernel instructions expected in the plan
};

}  // namespace

// The named kernels at every dimension path (1-4 specialised, 5+ generic), the usual
// hand-written spellings, reductions other than Sum, and gradients.
TEST(FastPaths, RadialKernelsMatchTheGenericInterpreter) {
  const Case cases[] = {
      {"GaussKernel(s,x,y,b)", 1},
      {"LaplaceKernel(s,x,y,b)", 1},
      {"CauchyKernel(s,x,y,b)", 1},
      {"InverseMultiquadricKernel(s,x,y,b)", 1},
      {"Matern32Kernel(s,x,y,b)", 1},
      {"Matern52Kernel(s,x,y,b)", 1},
      {"Exp(-s*SqNorm2(x-y))*b", 1},
      {"Exp(-SqDist(x,y)/(s*s))*b", 1},
      {"Exp(-SqDist(y,x))*b", 1},
      {"Exp(-SqDist(x,y)*s*2)*b", 1},
      {"Inv(1+s*SqDist(x,y))*b", 1},
      {"Rsqrt(SqDist(x,y)*s+2)*b", 1},
      {"Exp(-Sqrt(s*SqDist(x,y)))*b", 1},
      {"Concat(GaussKernel(s,x,y,b),CauchyKernel(s,x,y,b))", 2},
      {"Grad(GaussKernel(s,x,y,b),x,b)", 1},
      {"Grad(Matern52Kernel(s,x,y,b),x,b)", 1},
  };
  for (int dim : {1, 2, 3, 4, 7}) {
    const std::string d = std::to_string(dim);
    const std::vector<std::string> decls = {"x = Vi(" + d + ")", "y = Vj(" + d + ")", "b = Vj(3)", "s = Pm(1)"};
    for (const Case& c : cases) {
      for (const char* red : {"Sum_Reduction(", "LogSumExp_Reduction(Elem("}) {
        const bool lse = red[0] == 'L';
        if (lse && std::string(c.formula).rfind("Grad", 0) == 0) continue;
        for (int axis = 0; axis < 2; ++axis) {
          const std::string src = std::string(red) + c.formula + (lse ? ",0)," : ",") + std::to_string(axis) + ")";
          const Plan fused = plan_of(src, decls, true);
          const Plan generic = plan_of(src, decls, false);
          EXPECT_EQ(count_op(fused, Op::RadialKernel), c.fused) << src;
          EXPECT_EQ(count_op(generic, Op::RadialKernel), 0) << src;
          const auto cols = random_args(fused, 23, 531, 17);
          for (Dtype dt : {Dtype::Float64, Dtype::Float32}) {
            const double tol = dt == Dtype::Float64 ? 1e-13 : 2e-6;
            for (cpu::Isa isa : cpu::supported_isas()) {
              const auto want = run(generic, cols, 23, 531, dt, static_cast<int>(isa), 1);
              const auto got = run(fused, cols, 23, 531, dt, static_cast<int>(isa), 2);
              double scale = 0;
              for (double v : want) scale = std::max(scale, std::fabs(v));
              for (size_t q = 0; q < want.size(); ++q)
                ASSERT_LE(std::fabs(got[q] - want[q]), tol * std::max(1.0, scale))
                    << src << " dim " << dim << " isa " << cpu::isa_name(isa) << " value " << q;
            }
          }
        }
      }
    }
  }
}

// Shapes that look radial but are not: both points on the same side, a pair-dependent
// scale, a distance between differently indexed values.
TEST(FastPaths, NonRadialShapesStayGeneric) {
  const std::vector<std::string> decls = {"x = Vi(3)", "z = Vi(3)", "y = Vj(3)", "b = Vj(1)", "s = Pm(1)"};
  for (const char* f : {"Exp(-SqDist(x,z))*b", "Exp(-b*SqDist(x,y))", "Exp(-SqDist(x+y,y))", "Exp(-SqNorm2(x))*b",
                        "Inv(b+SqDist(x,y))"}) {
    const Plan p = plan_of(std::string("Sum_Reduction(") + f + ",0)", decls, true);
    EXPECT_EQ(count_op(p, Op::RadialKernel), 0) << f;
  }
}

// Special values go through the fused path as through the generic one: an overflowing
// Gauss argument gives +Inf, a negative Laplace scale NaN, huge distances exactly 0.
TEST(FastPaths, RadialKernelSpecialValues) {
  const std::vector<std::string> decls = {"x = Vi(1)", "y = Vj(1)", "s = Pm(1)"};
  for (const char* f : {"Exp(s*SqDist(x,y))", "LaplaceKernel(s,x,y,1)", "GaussKernel(s,x,y,1)"}) {
    const std::string src = std::string("Sum_Reduction(") + f + ",0)";
    const Plan fused = plan_of(src, decls, true);
    ASSERT_EQ(count_op(fused, Op::RadialKernel), 1) << f;
    const Plan generic = plan_of(src, decls, false);
    for (double s : {1e6, -1.0, 0.0}) {
      std::vector<std::vector<double>> cols = {{0.0, 3.0}, {1.0, -2.0, 40.0}, {s}};
      for (Dtype dt : {Dtype::Float64, Dtype::Float32}) {
        const auto want = run(generic, cols, 2, 3, dt, 0, 1);
        const auto got = run(fused, cols, 2, 3, dt, 2, 1);
        for (size_t q = 0; q < want.size(); ++q) {
          if (std::isnan(want[q]))
            EXPECT_TRUE(std::isnan(got[q])) << f << " s=" << s;
          else
            EXPECT_DOUBLE_EQ(got[q], want[q]) << f << " s=" << s;
        }
      }
    }
  }
}

// Kernel sums whose weights are shared by the rows fold four rows at a time (Note [Row
// quads]), then two, then one: every weight count up to two blocks of six, row counts that
// leave partial groups, runs that cross the fold's chunks or leave a tail, the fused and the
// generic plan, every instruction set, against a plain double loop.
TEST(FastPaths, SharedWeightSumsFoldRowsTogether) {
  for (int G : {1, 2, 3, 4, 5, 6, 7, 13}) {
    const std::vector<std::string> decls = {"x = Vi(2)", "y = Vj(2)", "b = Vj(" + std::to_string(G) + ")", "s = Pm(1)"};
    const std::string src = "Sum_Reduction(Exp(-s*SqDist(x,y))*b,0)";
    for (const auto& [n, m] : {std::pair<std::int64_t, std::int64_t>{23, 1100}, {7, 531}, {5, 37}, {3, 1029}}) {
      for (bool fuse : {true, false}) {
        const Plan p = plan_of(src, decls, fuse);
        const auto cols = random_args(p, n, m, static_cast<unsigned>(G * 100 + n));
        std::vector<double> want(static_cast<size_t>(n * G), 0.0);
        for (std::int64_t i = 0; i < n; ++i)
          for (std::int64_t j = 0; j < m; ++j) {
            const double d0 = cols[0][i] - cols[1][j], d1 = cols[0][i + n] - cols[1][j + m];
            const double k = std::exp(-cols[3][0] * (d0 * d0 + d1 * d1));
            for (int c = 0; c < G; ++c) want[i + c * n] += k * cols[2][j + c * m];
          }
        double scale = 0;
        for (double v : want) scale = std::max(scale, std::fabs(v));
        for (Dtype dt : {Dtype::Float64, Dtype::Float32})
          for (cpu::Isa isa : cpu::supported_isas())
            for (int threads : {1, 2}) {
              const auto got = run(p, cols, n, m, dt, static_cast<int>(isa), threads);
              const double tol = (dt == Dtype::Float64 ? 1e-13 : 2e-6) * std::max(1.0, scale);
              for (size_t q = 0; q < want.size(); ++q)
                ASSERT_NEAR(got[q], want[q], tol) << "G " << G << " n " << n << " m " << m << " fuse " << fuse
                                                  << " isa " << cpu::isa_name(isa) << " value " << q;
            }
      }
    }
  }
}

// The vector loops of the Gaussian and Laplace kernels (Note [Vector exp runs]) give the
// generic interpreter's bits on every instruction set: runs where one scaling suffices,
// runs with far points (two scalings, subnormal and zero results), arguments beyond the
// clamp, infinite squared distances (and so NaN at scale 0), zero scales and scales of the
// other sign (which take the generic loops), and run lengths that leave a tail.
TEST(FastPaths, ExpKernelRunsGiveTheGenericBits) {
  // K-min reductions return pair values themselves (a sum's order depends on the plan): the
  // 32 smallest kernel values (far points: subnormal and zero results) and the 32 smallest
  // weighted ones (near points, negative weights).
  for (const char* f : {"Exp(s*SqDist(x,y))", "Exp(s*SqDist(x,y))*b", "Exp(-Sqrt(s*SqDist(x,y)))"})
  for (int dim : {1, 3, 6}) {
    const std::string d = std::to_string(dim);
    const std::vector<std::string> decls = {"x = Vi(" + d + ")", "y = Vj(" + d + ")", "b = Vj(1)", "s = Pm(1)"};
    const std::string src = std::string("KMin_Reduction(") + f + ",32,0)";
    const Plan fused = plan_of(src, decls, true);
    const Plan generic = plan_of(src, decls, false);
    ASSERT_EQ(count_op(fused, Op::RadialKernel), 1);
    const std::int64_t n = 5, m = 531;
    auto cols = random_args(fused, n, m, 5);
    for (size_t k = 0; k < cols[1].size(); ++k) cols[1][k] *= 1 + (k % 7) * 3;  // distances up to ~40
    const double y300 = cols[1][300], y301 = cols[1][301];
    for (double s : {-0.3, -1.0, -30.0, -1e4, 0.0, -0.0, 2.0, 0.3, 30.0, 1e4}) {
      cols[3] = {s};
      for (Dtype dt : {Dtype::Float64, Dtype::Float32})
        for (cpu::Isa isa : cpu::supported_isas()) {
          // At s = -1 and 0, two points so far that squared distances overflow to +inf.
          const double big = s == -1.0 || s == 0.0 ? (dt == Dtype::Float64 ? 1e200 : 1e30) : 0.0;
          cols[1][300] = big != 0 ? big : y300;
          cols[1][301] = big != 0 ? -big : y301;
          const auto want = run(generic, cols, n, m, dt, static_cast<int>(isa), 1);
          const auto got = run(fused, cols, n, m, dt, static_cast<int>(isa), 1);
          for (size_t q = 0; q < want.size(); ++q) {
            if (std::isnan(want[q]))
              EXPECT_TRUE(std::isnan(got[q])) << f << " dim " << dim << " s " << s << " value " << q;
            else
              EXPECT_EQ(got[q], want[q]) << f << " dim " << dim << " s " << s << " isa " << cpu::isa_name(isa)
                                         << " value " << q;
          }
        }
    }
  }
}

// Exp over a run (Note [Vector exp runs]) against the scalar vmath::exp of this file (the
// baseline build): bit for bit on the baseline instruction set, within an ulp on the others
// (they contract a*b+c into FMAs). Runs with every argument in [-700, 700] (one scaling)
// and runs reaching the subnormal, underflow and overflow ranges (two scalings).
TEST(FastPaths, ExpRunsGiveVmathExp) {
  const int m = 203;  // a vector part and a tail for every width
  const std::vector<std::string> decls = {"x = Vi(1)", "y = Vj(1)"};
  const Plan p = plan_of("KMin_Reduction(Exp(x-y)," + std::to_string(m) + ",0)", decls, true);
  std::mt19937 g(3);
  for (Dtype dt : {Dtype::Float64, Dtype::Float32}) {
    const bool f32 = dt == Dtype::Float32;
    for (bool wide : {false, true}) {
      const double range = f32 ? (wide ? 110 : 86) : (wide ? 800 : 700);
      std::uniform_real_distribution<double> u(-range, range);
      std::vector<double> y(m);
      for (auto& v : y) v = u(g);
      if (wide) {  // arguments -y at the edges of the ranges
        const double edges64[] = {708.5, -708.5, 745.2, 745.1, -709.9, -0.0, 1e-300, -1e-300, 1e300, -1e300};
        const double edges32[] = {87.5, -87.5, 103.9, 103.0, -88.8, -0.0, 1e-40, -1e-40, 1e30, -1e30};
        for (size_t k = 0; k < 10; ++k) y[13 * k + 5] = f32 ? edges32[k] : edges64[k];
      }
      std::vector<double> want(m);
      for (int j = 0; j < m; ++j)
        want[j] = f32 ? flushed(vmath::exp(-static_cast<float>(y[j]))) : flushed(vmath::exp(-y[j]));
      std::sort(want.begin(), want.end());
      for (cpu::Isa isa : cpu::supported_isas()) {
        const auto got = run(p, {{0.0}, y}, 1, m, dt, static_cast<int>(isa), 1);
        const double ulp = f32 ? 0x1p-23 : 0x1p-52;
        for (int j = 0; j < m; ++j) {
          if (isa == cpu::Isa::Base || std::isinf(want[j]) || want[j] == 0)
            EXPECT_EQ(got[j], want[j]) << "range " << range << " isa " << cpu::isa_name(isa) << " value " << j;
          else
            EXPECT_LE(std::fabs(got[j] - want[j]), ulp * std::fabs(want[j]))
                << "range " << range << " isa " << cpu::isa_name(isa) << " value " << j;
        }
      }
    }
  }
}

// High-dimensional distances go through the engine's blocked kernel (Note [Blocked
// distances]): every instruction set, row counts that are not multiples of the block,
// both argument orders and both axes, against plain double loops.
TEST(FastPaths, BlockedDistancesMatchPlainLoops) {
  for (int dim : {16, 21, 40}) {
    const std::string d = std::to_string(dim);
    const std::vector<std::string> decls = {"x = Vi(" + d + ")", "y = Vj(" + d + ")", "b = Vj(2)", "s = Pm(1)"};
    for (const char* f : {"SqDist(x,y)*b", "SqDist(y,x)*b", "Exp(-s*SqNorm2(x-y))*b"}) {
      for (int axis = 0; axis < 2; ++axis) {
        const std::string src = std::string("Sum_Reduction(") + f + "," + std::to_string(axis) + ")";
        const Plan p = plan_of(src, decls, true);
        EXPECT_EQ(count_op(p, Op::RadialKernel), 0) << src;  // blocked distances instead
        const std::int64_t n = axis == 0 ? 23 : 531, m = axis == 0 ? 531 : 23;  // rows of x, y
        const auto cols = random_args(p, n, m, 5);
        const double s = cols[3][0];
        const std::int64_t out_rows = axis == 0 ? n : m;
        std::vector<double> want(static_cast<size_t>(out_rows * 2), 0.0);
        for (std::int64_t i = 0; i < n; ++i)
          for (std::int64_t j = 0; j < m; ++j) {
            double r2 = 0;
            for (int k = 0; k < dim; ++k) {
              const double e = cols[0][i + k * n] - cols[1][j + k * m];
              r2 += e * e;
            }
            const double kv = f[0] == 'E' ? std::exp(-s * r2) : r2;
            const std::int64_t o = axis == 0 ? i : j;
            for (int c = 0; c < 2; ++c) want[o + c * out_rows] += kv * cols[2][j + c * m];
          }
        for (Dtype dt : {Dtype::Float64, Dtype::Float32}) {
          const double tol = dt == Dtype::Float64 ? 1e-12 : 2e-5;
          for (cpu::Isa isa : cpu::supported_isas())
            for (int threads : {1, 2}) {
              const auto got = run(p, cols, n, m, dt, static_cast<int>(isa), threads);
              double scale = 0;
              for (double v : want) scale = std::max(scale, std::fabs(v));
              for (size_t q = 0; q < want.size(); ++q)
                ASSERT_LE(std::fabs(got[q] - want[q]), tol * std::max(1.0, scale))
                    << src << " isa " << cpu::isa_name(isa) << " threads " << threads << " value " << q;
            }
        }
      }
    }
  }
}

// The K nearest neighbours in high dimension: blocked distances and the chunked K-min
// prefilter together, against a sort of the exact distances (the data has no ties).
TEST(FastPaths, BlockedKNearestNeighbours) {
  const int dim = 32, K = 7;
  const std::vector<std::string> decls = {"x = Vi(32)", "y = Vj(32)"};
  const Plan p = plan_of("ArgKMin_Reduction(SqDist(x,y),7,0)", decls, true);
  const std::int64_t n = 29, m = 1100;  // 29: a last, partial group of rows (Note [Blocked distances])
  const auto cols = random_args(p, n, m, 9);
  for (Dtype dt : {Dtype::Float64, Dtype::Float32})
    for (cpu::Isa isa : cpu::supported_isas()) {
      std::vector<double> idx;
      run(p, cols, n, m, dt, static_cast<int>(isa), 2, &idx);
      for (std::int64_t i = 0; i < n; ++i) {
        std::vector<std::pair<double, int>> all;
        for (std::int64_t j = 0; j < m; ++j) {
          double r2 = 0;
          for (int k = 0; k < dim; ++k) {
            const double e = cols[0][i + k * n] - cols[1][j + k * m];
            r2 += e * e;
          }
          all.push_back({r2, static_cast<int>(j)});
        }
        std::sort(all.begin(), all.end());
        for (int q = 0; q < K; ++q)
          EXPECT_EQ(idx[i + q * n], all[q].second) << "row " << i << " rank " << q << " isa " << cpu::isa_name(isa);
      }
    }
}

// ArgKMin's prefilter (a chunk's minimum against the list's largest, then the bit mask of a
// candidate block's values below it) against the same reduction with K = M, which keeps
// every value and so never filters: ties (kept in index order), NaN (never kept), +-inf,
// every instruction set, both dtypes, and a j range split across threads (three rows).
TEST(FastPaths, KMinPrefilterKeepsTheSmallestInIndexOrder) {
  const std::vector<std::string> decls = {"x = Vi(1)", "y = Vj(1)"};
  const std::int64_t n = 3, m = 2000;
  const int K = 5;
  std::vector<double> x = {1.0, -1.0, 0.5}, y(m);
  std::mt19937 g(4);
  std::uniform_int_distribution<int> u(-20, 20);
  for (auto& v : y) v = u(g);  // integers: many ties, and zeros
  y[1500] = -0.0;
  for (const char* f : {"x*y", "Log(x*y)", "Inv(x*y)"}) {
    const auto src = [f](std::int64_t k) {
      return std::string("KMin_ArgKMin_Reduction(") + f + "," + std::to_string(k) + ",0)";
    };
    const Plan small = plan_of(src(K), decls, true), all = plan_of(src(m), decls, true);
    for (Dtype dt : {Dtype::Float64, Dtype::Float32})
      for (cpu::Isa isa : cpu::supported_isas())
        for (int threads : {1, 2}) {
          std::vector<double> idx, idx_all;
          const auto got = run(small, {x, y}, n, m, dt, static_cast<int>(isa), threads, &idx);
          const auto want = run(all, {x, y}, n, m, dt, static_cast<int>(isa), 1, &idx_all);
          for (std::int64_t i = 0; i < n; ++i)
            for (int q = 0; q < K; ++q) {
              const double v = got[i + q * n], w = want[i + q * n];
              EXPECT_TRUE(v == w || (std::isnan(v) && std::isnan(w)))
                  << f << " row " << i << " rank " << q << " isa " << cpu::isa_name(isa) << ": " << v << " vs " << w;
              EXPECT_EQ(idx[i + q * n], idx_all[i + q * n]) << f << " row " << i << " rank " << q;
            }
        }
  }
}

// Note [Large K]: K above kSortedMaxK goes through unsorted buffers compacted by
// nth_element. Against sorting: K = 129 and 1000 over 3000 points (so the buffers are
// compacted many times), ties among integers kept in index order, NaN never kept, +inf
// kept only while fewer than K values are, K = M (empty ranks where F is NaN), one and two
// threads (three rows: the j range is split and the partial lists merged), every ISA.
TEST(FastPaths, LargeKMinMatchesSorting) {
  const std::vector<std::string> decls = {"x = Vi(1)", "y = Vj(1)"};
  const std::int64_t n = 3, m = 3000;
  std::vector<double> x = {1.0, -1.0, 0.5}, y(m);
  std::mt19937 g(8);
  std::uniform_int_distribution<int> u(-200, 200);
  for (auto& v : y) v = u(g);
  struct Form {
    const char* src;
    double (*f)(double);
  };
  const Form forms[] = {{"x*y", [](double v) { return v; }},
                        {"Log(x*y)", [](double v) { return std::log(v); }},
                        {"Inv(x*y)", [](double v) { return 1 / v; }}};
  for (const Form& form : forms)
    for (int K : {129, 1000, static_cast<int>(m)}) {
      const Plan p = plan_of(std::string("KMin_ArgKMin_Reduction(") + form.src + "," + std::to_string(K) + ",0)",
                             decls, true);
      for (cpu::Isa isa : cpu::supported_isas())
        for (int threads : {1, 2}) {
          std::vector<double> idx;
          const auto got = run(p, {x, y}, n, m, Dtype::Float64, static_cast<int>(isa), threads, &idx);
          for (std::int64_t i = 0; i < n; ++i) {
            std::vector<std::pair<double, std::int64_t>> all;
            for (std::int64_t j = 0; j < m; ++j) {
              const double v = form.f(x[i] * y[j]);
              if (v == v) all.push_back({v, j});
            }
            std::sort(all.begin(), all.end());
            for (int q = 0; q < K; ++q) {
              const double v = got[i + q * n], id = idx[i + q * n];
              if (q < static_cast<int>(all.size())) {
                const double w = all[q].first;  // the engine's log may differ from libm's by an ulp
                ASSERT_TRUE(v == w || std::fabs(v - w) <= 1e-15 * std::fabs(w))
                    << form.src << " K " << K << " row " << i << " rank " << q << ": " << v << " vs " << w;
                ASSERT_EQ(id, static_cast<double>(all[q].second)) << form.src << " K " << K << " rank " << q;
              } else {
                ASSERT_TRUE(std::isnan(v)) << form.src << " K " << K << " rank " << q;
                ASSERT_EQ(id, -1.0);
              }
            }
          }
        }
    }
}

// Note [Scalar products]: i- and parameter-level factors of a product of scalars are
// multiplied once per i, leaving one multiplication per pair, with the same values.
TEST(FastPaths, ScalarProductsMultiplyLowLevelFactorsOncePerRow) {
  const std::vector<std::string> decls = {"x = Vi(1)", "y = Vj(1)", "s = Pm(1)", "t = Pm(1)"};
  // As written: two multiplications per pair (the root one is folded by the reducer);
  // regrouped: Exp(y)*(x|y) per pair, times 2*x*s*t*x computed once per row.
  const std::string src = "Sum_Reduction(2*(x*s)*(Exp(y)*(t*x))*(x|y),0)";
  const Plan p = plan_of(src, decls, true);
  int pair_muls = 0;
  for (const auto& ins : p.prog[kIJ]) pair_muls += ins.op == Op::Mul;
  EXPECT_EQ(pair_muls, 1) << "pair-level multiplications";
  const auto cols = random_args(p, 9, 13, 3);
  std::vector<double> want(9, 0.0);
  for (int i = 0; i < 9; ++i)
    for (int j = 0; j < 13; ++j) {
      const double x = cols[0][i], y = cols[1][j], s = cols[2][0], t = cols[3][0];
      want[i] += 2 * (x * s) * (std::exp(y) * (t * x)) * (x * y);
    }
  for (cpu::Isa isa : cpu::supported_isas()) {
    const auto got = run(p, cols, 9, 13, Dtype::Float64, static_cast<int>(isa), 1);
    for (int i = 0; i < 9; ++i) EXPECT_NEAR(got[i], want[i], 1e-12 * std::max(1.0, std::fabs(want[i])));
  }
}

// Sin and Cos run as one vectorised pass plus a libm fix-up of the lanes out of the fast
// range (cpu/eval.h, trig_run): on every instruction set each value is vmath::sin / cos of
// the point, huge arguments and, in float32, an infinite one (1e20^2) included: bit for bit on the baseline, to
// an ulp where the wider units contract products into FMAs (this file's scalar code is
// compiled for the baseline).
TEST(VectorRuns, SinCosMatchTheScalarFunctionsOnEveryIsa) {
  const Plan p = plan_of("Sum_Reduction(Concat(Sin(x*y*y),Cos(x*y*y)),1)", {"x = Vi(1)", "y = Vj(1)"}, true);
  const std::int64_t m = 531;
  std::vector<std::vector<double>> cols = {{1.0}, std::vector<double>(static_cast<size_t>(m))};
  std::mt19937 g(5);
  std::uniform_real_distribution<double> u(-50.0, 50.0);
  for (auto& v : cols[1]) v = u(g);
  const double specials[] = {0.0, -0.0, 1e-160, -2e-9, 1e3, -1e3, 1000.0001, 1e4, -3e5, 1e20,
                             1.2533141373155001, 1.7724538509055159};  // sqrt(pi/2), sqrt(pi)
  for (size_t k = 0; k < sizeof(specials) / sizeof(specials[0]); ++k) cols[1][7 * k + 2] = specials[k];
  for (Dtype dt : {Dtype::Float64, Dtype::Float32})
    for (cpu::Isa isa : cpu::supported_isas()) {
      const auto got = run(p, cols, 1, m, dt, static_cast<int>(isa), 1);
      for (std::int64_t j = 0; j < m; ++j) {
        const double y = cols[1][static_cast<size_t>(j)];
        const float yf = static_cast<float>(y);
        const double want_s = dt == Dtype::Float64 ? vmath::sin(flushed(y * y)) : vmath::sin(static_cast<float>(flushed(yf * yf)));
        const double want_c = dt == Dtype::Float64 ? vmath::cos(flushed(y * y)) : vmath::cos(static_cast<float>(flushed(yf * yf)));
        for (int q = 0; q < 2; ++q) {
          const double v = got[static_cast<size_t>(j + q * m)], want = q == 0 ? want_s : want_c;
          const double ulp = dt == Dtype::Float64 ? 0x1p-52 : 0x1p-23;
          const double tol = isa == cpu::Isa::Base ? 0.0 : ulp * std::max(std::fabs(want), 0x1p-60);
          EXPECT_TRUE(std::fabs(v - want) <= tol || (std::isnan(v) && std::isnan(want)))
              << (q ? "cos(" : "sin(") << y << ") isa " << cpu::isa_name(isa) << " dtype " << static_cast<int>(dt)
              << ": " << v << " vs " << want;
        }
      }
    }
}

// Pow(x, n) runs through pow_steps (unrolled square-and-multiply) for |n| <= 16 and pow_int
// beyond: the same products in the same order, so every instruction set gives pow_int's
// bits. Powf's vectorised loop gives FPowf's scalar values (to a few ulp where FMAs differ).
TEST(VectorRuns, PowAndPowfMatchTheScalarFunctionsOnEveryIsa) {
  const std::int64_t m = 203;
  std::mt19937 g(6);
  std::uniform_real_distribution<double> u(-2.5, 2.5);
  std::vector<double> y(static_cast<size_t>(m));
  for (auto& v : y) v = u(g);
  y[3] = 0.0;
  y[10] = 1.0;
  y[11] = -1.0;
  std::vector<int> exponents = {-5000, -2049, -2048, 2048, 2049, 1000001};
  for (int e = -18; e <= 18; ++e) exponents.push_back(e);
  for (int e : exponents) {
    const Plan p = plan_of("Sum_Reduction(Pow(x*y," + std::to_string(e) + "),1)", {"x = Vi(1)", "y = Vj(1)"}, true);
    for (Dtype dt : {Dtype::Float64, Dtype::Float32})
      for (cpu::Isa isa : cpu::supported_isas()) {
        const auto got = run(p, {{1.0}, y}, 1, m, dt, static_cast<int>(isa), 1);
        for (std::int64_t j = 0; j < m; ++j) {
          const double yj = y[static_cast<size_t>(j)];
          const double want = dt == Dtype::Float64 ? flushed(pow_int(yj, e)) : flushed(pow_int(static_cast<float>(yj), e));
          // Past kPowBySquaringMax, exp(e log|y|): where FMAs change the log by an ulp, the
          // result moves by |e log|y|| ulp.
          const double ulp = dt == Dtype::Float64 ? 0x1p-52 : 0x1p-23;
          const bool by_log = e > static_cast<int>(kPowBySquaringMax) || e < -static_cast<int>(kPowBySquaringMax);
          const double tol = isa == cpu::Isa::Base || !by_log
                                 ? 0.0
                                 : (4 * std::fabs(e * std::log(std::fabs(yj))) + 16) * ulp * std::fabs(want);
          EXPECT_TRUE(got[static_cast<size_t>(j)] == want || std::fabs(got[static_cast<size_t>(j)] - want) <= tol ||
                      (std::isnan(want) && std::isnan(got[static_cast<size_t>(j)])))
              << "Pow(" << yj << ", " << e << ") isa " << cpu::isa_name(isa) << ": " << got[static_cast<size_t>(j)]
              << " vs " << want;
        }
      }
  }
  // Powf(y, c) (a run of bases, one exponent) and Powf(|c|, y) (one base: one log per run).
  for (bool base_is_c : {false, true}) {
    const Plan p = plan_of(base_is_c ? "Sum_Reduction(Powf(Abs(c),x*y),1)" : "Sum_Reduction(Powf(x*y,c),1)",
                           {"x = Vi(1)", "y = Vj(1)", "c = Pm(1)"}, true);
    for (double c : {0.0, -0.0, 0.5, -1.5, 2.0, 1e-3, 7.25})
      for (Dtype dt : {Dtype::Float64, Dtype::Float32})
        for (cpu::Isa isa : cpu::supported_isas()) {
          const auto got = run(p, {{1.0}, y, {c}}, 1, m, dt, static_cast<int>(isa), 1);
          for (std::int64_t j = 0; j < m; ++j) {
            const double yj = base_is_c ? std::fabs(c) : y[static_cast<size_t>(j)], v = got[static_cast<size_t>(j)];
            const double cj = base_is_c ? y[static_cast<size_t>(j)] : c;
            const double want = dt == Dtype::Float64 ? flushed(FPowf::f(yj, cj))
                                                     : flushed(FPowf::f(static_cast<float>(yj), static_cast<float>(cj)));
            const double ulp = dt == Dtype::Float64 ? 0x1p-52 : 0x1p-23;
            const double tol = isa == cpu::Isa::Base ? 0.0 : 16 * ulp * std::fabs(want);
            EXPECT_TRUE(std::fabs(v - want) <= tol || v == want || (std::isnan(v) && std::isnan(want)))
                << "Powf(" << yj << ", " << cj << ") isa " << cpu::isa_name(isa) << ": " << v << " vs " << want;
            if (cj == 0) {
              EXPECT_EQ(v, 1.0) << "x^0 = 1 for every x, as in R: x = " << yj;
            }
            if (yj < 0 && cj != std::floor(cj)) {
              EXPECT_TRUE(std::isnan(v)) << "Powf(" << yj << ", " << cj << ")";
            } else if (yj < 0) {  // a whole exponent: R's (-2)^3 = -8
              EXPECT_NEAR(v, std::pow(yj, cj), (dt == Dtype::Float64 ? 1e-14 : 1e-6) * std::fabs(std::pow(yj, cj)))
                  << "Powf(" << yj << ", " << cj << ")";
            }
          }
        }
  }
}

// Log runs as two passes (log_run): on the baseline exactly vmath::log, elsewhere to an ulp
// (FMAs), zero, negative and subnormal arguments included.
TEST(VectorRuns, LogMatchesTheScalarFunctionOnEveryIsa) {
  const Plan p = plan_of("Sum_Reduction(Log(x*y),1)", {"x = Vi(1)", "y = Vj(1)"}, true);
  const std::int64_t m = 301;
  std::mt19937 g(8);
  std::uniform_real_distribution<double> u(-1.0, 30.0);
  std::vector<double> y(static_cast<size_t>(m));
  for (auto& v : y) v = std::exp(u(g));
  const double specials[] = {0.0, -0.0, -1.0, 1.0, 1e-310, 1e-40, 3e38, 1e300, 0.5, 2.0};
  for (size_t k = 0; k < sizeof(specials) / sizeof(specials[0]); ++k) y[11 * k + 4] = specials[k];
  for (Dtype dt : {Dtype::Float64, Dtype::Float32})
    for (cpu::Isa isa : cpu::supported_isas()) {
      std::vector<double> yd = y;
      if (dt == Dtype::Float32)
        for (auto& v : yd) v = std::min(v, 3e38);  // in float range
      const auto got = run(p, {{1.0}, yd}, 1, m, dt, static_cast<int>(isa), 1);
      for (std::int64_t j = 0; j < m; ++j) {
        const double yj = yd[static_cast<size_t>(j)], v = got[static_cast<size_t>(j)];
        // x * y with x = 1: a subnormal y makes a subnormal product, flushed to 0 (log: -Inf).
        const double want = dt == Dtype::Float64 ? vmath::log(flushed(yj)) : vmath::log(static_cast<float>(flushed(static_cast<float>(yj))));
        const double ulp = dt == Dtype::Float64 ? 0x1p-52 : 0x1p-23;
        const double tol = isa == cpu::Isa::Base ? 0.0 : ulp * std::fabs(want);
        EXPECT_TRUE(std::fabs(v - want) <= tol || v == want || (std::isnan(v) && std::isnan(want)))
            << "Log(" << yj << ") isa " << cpu::isa_name(isa) << ": " << v << " vs " << want;
      }
    }
}
