// The CPU engine against the reference evaluator: every reduction, both axes, float32,
// thread counts, split j ranges, and the error paths of check_args.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <limits>

#include "cpu/isa.h"
#include "kernops.h"
#include "reference_eval.h"

using namespace kernops;
using kernops_test::Env;
using kernops_test::Vec;

namespace {

struct Data {
  std::vector<std::vector<double>> cols;  // column-major per argument
  std::vector<ArgData> args;
};

Data make_data(const Plan& p, std::int64_t n, std::int64_t m, unsigned seed, bool positive = false) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<double> u(positive ? 0.1 : -1.0, 1.0);
  Data d;
  for (const auto& v : p.formula.vars) {
    const std::int64_t rows = v.cat == Cat::P ? 1 : (v.cat == Cat::I ? n : m);
    d.cols.emplace_back(static_cast<size_t>(rows * v.dim));
    for (auto& x : d.cols.back()) x = u(g);
  }
  for (size_t a = 0; a < d.cols.size(); ++a) {
    const auto& v = p.formula.vars[a];
    const std::int64_t rows = v.cat == Cat::P ? 1 : (v.cat == Cat::I ? n : m);
    d.args.push_back({d.cols[a].data(), rows, v.dim});
  }
  return d;
}

// Values of F at pair (i, j) of the user's formula (axis as declared).
Vec ref_pair(const Plan& p, const NodeP& f, const Data& d, std::int64_t i, std::int64_t j) {
  Env env;
  for (size_t a = 0; a < d.args.size(); ++a) {
    const auto& v = p.formula.vars[a];
    const std::int64_t row = v.cat == Cat::P ? 0 : (v.cat == Cat::I ? i : j);
    Vec val(static_cast<size_t>(v.dim));
    for (int k = 0; k < v.dim; ++k) val[k] = d.args[a].data[row + k * d.args[a].rows];
    env[{static_cast<int>(v.cat), v.pos}] = val;
  }
  return kernops_test::ref_eval(f, env);
}

struct Result {
  std::vector<double> values, indices;
  OutShape shape;
};

Result run(const Plan& p, const Data& d, int threads, Dtype dt = Dtype::Float64) {
  Result r;
  r.shape = check_args(p, d.args);
  r.values.assign(static_cast<size_t>(r.shape.rows * r.shape.value_cols), 0);
  r.indices.assign(static_cast<size_t>(r.shape.rows * r.shape.index_cols), 0);
  RunConfig c;
  c.n_threads = threads;
  c.dtype = dt;
  run_cpu(p, d.args, r.values.data(), r.indices.data(), c);
  return r;
}

// Dense reference of the whole reduction: for output row o, the list of F values over
// the reduced index.
std::vector<Vec> column(const Plan& p, const NodeP& f, const Data& d, std::int64_t o, std::int64_t count) {
  std::vector<Vec> out;
  for (std::int64_t r = 0; r < count; ++r)
    out.push_back(p.formula.axis == 0 ? ref_pair(p, f, d, o, r) : ref_pair(p, f, d, r, o));
  return out;
}

void expect_rel(double got, double want, double tol, const std::string& what) {
  EXPECT_LE(std::fabs(got - want), tol * std::max(1.0, std::fabs(want))) << what << ": got " << got << " want " << want;
}

}  // namespace

class SumFormulas : public ::testing::TestWithParam<const char*> {};

TEST_P(SumFormulas, MatchReferenceOnBothAxesAndDtypes) {
  const std::vector<std::string> decls = {"x = Vi(3)", "y = Vj(3)", "b = Vj(2)", "s = Pm(1)", "p = Pm(3)"};
  for (int axis = 0; axis < 2; ++axis) {
    std::string src = std::string("Sum_Reduction(") + GetParam() + "," + std::to_string(axis) + ")";
    auto plan = compile(src, decls);
    Data d = make_data(*plan, 37, 53, 7, true);
    for (int threads : {1, 2}) {
      for (Dtype dt : {Dtype::Float64, Dtype::Float32}) {
        Result r = run(*plan, d, threads, dt);
        const double tol = dt == Dtype::Float64 ? 1e-12 : 1e-5;
        for (std::int64_t o = 0; o < r.shape.rows; ++o) {
          auto col = column(*plan, plan->formula.f, d, o, r.shape.reduced);
          for (int k = 0; k < r.shape.value_cols; ++k) {
            double want = 0, scale = 0;
            for (const auto& v : col) {
              want += v[k];
              scale += std::fabs(v[k]);
            }
            EXPECT_LE(std::fabs(r.values[o + k * r.shape.rows] - want), tol * std::max(1.0, scale)) << src;
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Engine, SumFormulas,
    ::testing::Values("Exp(-s*SqNorm2(x-y))*b", "x*y+p", "Sqrt(SqNorm2(x-y))", "Rsqrt(1+SqDist(x,y))*Elem(b,1)",
                      "Log(1+Square(x))*Sin(y)+Cos(p)", "Abs(x-y)+Sign(x-y)+Step(x-y)+ReLU(x-y)",
                      "IfElse(x-y,x,y)+Clamp(x-y,-0.5,0.5)+Min(x,y)-Max(x,p)", "Pow(x-y,3)+Pow(y,-2)+x^0.5",
                      "IfElse(x-y,p,Elem(b,0))+Clamp(y,x,p)+IfElse(p-x,x,y)",  // broadcast operands of map3
                      "Inv(1+(x|y))*b", "Concat(x,b)+TensorProd(Elem(x,0),Concat(y,Extract(y,0,2)))",
                      "MatVecMult(TensorProd(x,y),p)+VecMatMult(y,TensorProd(x,p))", "Normalize(x-y)",
                      "Matern32Kernel(s,x,y,b)+Matern52Kernel(s,x,y,b)+LaplaceKernel(s,x,y,b)",
                      "CauchyKernel(s,x,y,b)+InverseMultiquadricKernel(s,x,y,b)+GaussKernel(s,x,y,b)",
                      "b", "x", "s*Sum(x)", "Grad(Exp(-SqDist(x,y)),x,s)",
                      // Sum parts (Note [Sum parts]): repeated and nested Concat/Mul roots
                      "Concat(Elem(x,0)*y,Concat(Elem(x,0)*y,b*s))", "Concat(Concat(x,y),x*y)",
                      "Concat(Concat(Concat(x,y),Concat(x,y)),Concat(x,y))"));

TEST(Engine, ArgAndKMinReductionsMatchSorting) {
  const std::vector<std::string> decls = {"x = Vi(2)", "y = Vj(2)"};
  for (int axis = 0; axis < 2; ++axis) {
    const std::string ax = std::to_string(axis);
    auto p = compile("KMin_ArgKMin_Reduction(SqDist(x,y),4," + ax + ")", decls);
    auto pm = compile("Max_ArgMax_Reduction(SqDist(x,y)," + ax + ")", decls);
    for (auto sizes : {std::pair<int, int>{40, 700}, std::pair<int, int>{6, 5000}}) {
      Data d = make_data(*p, sizes.first, sizes.second, 3);
      for (int threads : {1, 2}) {
        Result r = run(*p, d, threads);
        Result rm = run(*pm, d, threads);
        for (std::int64_t o = 0; o < r.shape.rows; ++o) {
          auto col = column(*p, p->formula.f, d, o, r.shape.reduced);
          std::vector<std::pair<double, int>> all;
          for (size_t j = 0; j < col.size(); ++j) all.push_back({col[j][0], static_cast<int>(j)});
          std::sort(all.begin(), all.end());
          for (int q = 0; q < 4; ++q) {
            expect_rel(r.values[o + q * r.shape.rows], all[q].first, 1e-12, "kmin");
            EXPECT_EQ(r.indices[o + q * r.shape.rows], all[q].second);
          }
          expect_rel(rm.values[o], all.back().first, 1e-12, "max");
          EXPECT_EQ(rm.indices[o], all.back().second);
        }
      }
    }
  }
}

// K-min of a vector formula: columns in KeOps' K-major order, column q * D + k holding the
// q-th smallest of component k (small K: the sorted list; large K: the buffered reducer).
TEST(Engine, KMinOfAVectorFormulaIsKMajorLikeKeOps) {
  const std::vector<std::string> decls = {"x = Vi(3)", "y = Vj(3)"};
  const int D = 3;
  for (int K : {3, 300}) {
    auto p = compile("KMin_ArgKMin_Reduction(x-y," + std::to_string(K) + ",0)", decls);
    Data d = make_data(*p, 5, 700, 11);
    Result r = run(*p, d, 2);
    ASSERT_EQ(r.shape.value_cols, K * D);
    for (std::int64_t i = 0; i < r.shape.rows; ++i) {
      auto col = column(*p, p->formula.f, d, i, r.shape.reduced);
      for (int k = 0; k < D; ++k) {
        std::vector<std::pair<double, int>> all;
        for (size_t j = 0; j < col.size(); ++j) all.push_back({col[j][k], static_cast<int>(j)});
        std::sort(all.begin(), all.end());
        for (int q = 0; q < K; ++q) {
          const std::int64_t c = q * D + k;
          expect_rel(r.values[i + c * r.shape.rows], all[q].first, 1e-12, "kmin");
          EXPECT_EQ(r.indices[i + c * r.shape.rows], all[q].second) << "K " << K << " rank " << q << " comp " << k;
        }
      }
    }
  }
}

// float32 sums accumulate in double (Note [Widened partials]): values near float32's
// largest, summed over 100 points, give about 3e40 (not +inf), in every sum path: a plain
// sum, a scalar times a vector (one row, row pairs and quads), components by four. (A
// formula whose own values overflow in float32, like a scalar product, stays +inf.)
TEST(Engine, Float32SumsDoNotOverflowWhereDoubleDoesNot) {
  const std::vector<std::string> decls = {"x = Vi(1)", "y = Vj(1)", "v = Vj(5)", "u = Vi(5)"};
  const double big = 3e38;
  const std::int64_t n = 7, m = 100;
  for (const char* f : {"y", "x*y", "x*v", "Step(y-x)*v", "v", "u*v", "y-x"}) {
    auto p = compile(std::string("Sum_Reduction(") + f + ",0)", decls);
    Data d = make_data(*p, n, m, 5);
    for (auto& col : d.cols)
      for (auto& v : col) v = 1;
    for (size_t a = 0; a < d.cols.size(); ++a)
      if (p->formula.vars[a].cat == Cat::J)
        for (auto& v : d.cols[a]) v = big;
    for (int threads : {1, 2}) {
      Result r32 = run(*p, d, threads, Dtype::Float32);
      Result r64 = run(*p, d, threads, Dtype::Float64);
      for (size_t q = 0; q < r64.values.size(); ++q) {
        ASSERT_TRUE(std::isfinite(r64.values[q])) << f;
        expect_rel(r32.values[q], r64.values[q], 1e-6, std::string("float32 ") + f);
      }
    }
  }
}

// NaN semantics of the elementwise ops follow R: a NaN argument gives NaN (Sign, Step,
// Min and Max in either order, IfElse's condition, Clamp's bounds), against the reference
// evaluator; values without NaN are unchanged (the same data's other rows).
TEST(Engine, ElementwiseOpsPropagateNaNLikeR) {
  // Inputs are finite (check_args), so NaN and inf come from the formula: X = (x + (c/c - 1)) / e
  // is x, NaN where c = 0, and +-inf where e = 0; Y likewise with g.
  const std::vector<std::string> decls = {"x = Vi(1)", "c = Vi(1)", "e = Vi(1)", "y = Vj(1)", "g = Vj(1)"};
  const std::vector<double> xs = {1.0, 0.0, -0.0, 1.0, -1.0, 0.5, 1.0, -1.0, 2.0, -3.0};
  const std::vector<double> cs = {0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0};
  const std::vector<double> es = {1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0};
  const auto with_xy = [](std::string f) {
    for (size_t q; (q = f.find('X')) != std::string::npos;) f.replace(q, 1, "((x+(c/c-1))/e)");
    for (size_t q; (q = f.find('Y')) != std::string::npos;) f.replace(q, 1, "(y+(g/g-1))");
    return f;
  };
  for (const char* f : {"Sign(X)", "Step(X)", "ReLU(X)", "Abs(X)", "Min(X,Y)", "Min(Y,X)", "Max(X,Y)", "Max(Y,X)",
                        "IfElse(X,Y,2*Y)", "IfElse(Y,X,-X)", "Clamp(X,Y,3)", "Clamp(0.25,X,Y)", "Clamp(0.25,Y,X)",
                        "Min(X,1)+Max(2,X)"}) {
    auto p = compile("Sum_Reduction(" + with_xy(f) + ",0)", decls);
    for (double yv : {0.5, -2.0})
      for (double gv : {0.0, 1.0})
        for (Dtype dt : {Dtype::Float64, Dtype::Float32}) {
          Data d = make_data(*p, static_cast<std::int64_t>(xs.size()), 1, 1);
          d.cols = {xs, cs, es, {yv}, {gv}};
          for (size_t a = 0; a < d.args.size(); ++a) d.args[a].data = d.cols[a].data();
          Result r = run(*p, d, 1, dt);
          for (size_t i = 0; i < xs.size(); ++i) {
            const double want = ref_pair(*p, p->formula.f, d, static_cast<std::int64_t>(i), 0)[0];
            const double got = r.values[i];
            if (std::isnan(want))
              EXPECT_TRUE(std::isnan(got)) << f << " at row " << i << ", y = " << yv << ", g = " << gv << ": " << got;
            else
              EXPECT_EQ(got, want) << f << " at row " << i << ", y = " << yv << ", g = " << gv;
          }
        }
  }
}

// Whole powers with large exponents: accurate to ~1e-13 (exp(n log|x|) past
// kPowBySquaringMax, where repeated squaring lost ~1e-10 at n = 1e6), with R's sign for a
// negative base, also past the parser's Pow range (x^1000001 is Powf: R gives -1 at x = -1).
TEST(Engine, LargeWholePowersAreAccurateAndSignedLikeR) {
  const std::vector<std::string> decls = {"x = Vi(1)", "y = Vj(1)"};
  std::mt19937 g(4);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  for (int n : {3000, -3000, 100000, 1000000, 1000001, 2000001, -2000001}) {
    for (const std::string& f : {"Pow(x," + std::to_string(n) + ")", "x^" + std::to_string(n)}) {
      auto p = compile("Sum_Reduction(" + f + "*y,0)", decls);
      Data d = make_data(*p, 64, 1, 1);
      for (size_t i = 0; i < d.cols[0].size(); ++i)
        d.cols[0][i] = (i % 2 ? -1.0 : 1.0) * (i < 4 ? 1.0 : std::exp(u(g) * 700.0 / std::abs(n)));
      d.cols[1] = {1.0};
      d.args[0].data = d.cols[0].data();
      d.args[1].data = d.cols[1].data();
      Result r = run(*p, d, 1);
      for (size_t i = 0; i < d.cols[0].size(); ++i) {
        const long double want = std::pow(static_cast<long double>(d.cols[0][i]), n);
        EXPECT_LE(std::fabs(static_cast<double>((r.values[i] - want) / want)), 2e-13)
            << f << " at x = " << d.cols[0][i] << ": " << r.values[i] << " vs " << static_cast<double>(want);
      }
    }
  }
}

// Log1p and Expm1 against libm's log1p / expm1, tiny arguments included, where Log(1 + x)
// and Exp(x) - 1 lose every digit (log1p(1e-17) is 1e-17, Log(1 + 1e-17) is 0), on every ISA.
TEST(Engine, Log1pAndExpm1AreAccurateNearZero) {
  const std::vector<std::string> decls = {"x = Vi(1)", "y = Vj(1)"};
  const std::vector<double> xs = {1e-17, -1e-17, 1e-300, 0.0, -0.0, 3e-10, -3e-10, 1e-5, -1e-5, 0.3, -0.5, 1.5,
                                  2.0, -0.999999, 100.0, 1e300, 700.0, 709.5, -40.0, -800.0, 1e-8, 0.69};
  for (const char* f : {"Log1p", "Expm1"}) {
    auto p = compile(std::string("Sum_Reduction(") + f + "(x)*y,0)", decls);
    for (Dtype dt : {Dtype::Float64, Dtype::Float32}) {
      std::vector<double> in;  // float32: its range, and its values
      for (double x : xs)
        if (dt == Dtype::Float64) in.push_back(x);
        else if (std::fabs(x) < 80 && (x == 0 || std::fabs(x) > 1e-37)) in.push_back(static_cast<float>(x));
      const std::vector<double> one = {1.0};
      const std::vector<ArgData> args = {{in.data(), static_cast<std::int64_t>(in.size()), 1}, {one.data(), 1, 1}};
      check_args(*p, args);
      for (cpu::Isa isa : cpu::supported_isas()) {
        RunConfig c;
        c.dtype = dt;
        c.max_isa = static_cast<int>(isa);
        std::vector<double> got(in.size());
        run_cpu(*p, args, got.data(), nullptr, c);
        for (size_t i = 0; i < in.size(); ++i) {
          const double x = in[i], want = f[0] == 'L' ? std::log1p(x) : std::expm1(x);
          const double tol = dt == Dtype::Float64 ? 4e-16 : 4e-7;
          if (std::isnan(want))
            EXPECT_TRUE(std::isnan(got[i])) << f << "(" << x << ")";
          else
            EXPECT_TRUE(got[i] == want || std::fabs(got[i] - want) <= tol * std::fabs(want))
                << f << "(" << x << ") isa " << cpu::isa_name(isa) << ": " << got[i] << " vs " << want;
        }
      }
    }
  }
}

TEST(Engine, LogSumExpIsStableAndMatchesSoftmax) {
  const std::vector<std::string> decls = {"x = Vi(1)", "y = Vj(1)", "w = Vj(2)"};
  auto lse = compile("LogSumExp_Reduction(1000+10*x*y,0)", decls);
  auto lsew = compile("LogSumExp_Reduction(1000+10*x*y,0,w)", decls);
  auto smw = compile("SumSoftMaxWeight_Reduction(1000+10*x*y,0,w)", decls);
  Data d = make_data(*lse, 5, 3000, 11, true);
  for (int threads : {1, 2}) {
    Result a = run(*lse, d, threads), b = run(*lsew, d, threads), c = run(*smw, d, threads);
    for (std::int64_t o = 0; o < 5; ++o) {
      auto col = column(*lse, lse->formula.f, d, o, 3000);
      double m = -INFINITY;
      for (const auto& v : col) m = std::max(m, v[0]);
      double s = 0, sw[2] = {0, 0};
      for (size_t j = 0; j < col.size(); ++j) {
        const double e = std::exp(col[j][0] - m);
        s += e;
        for (int k = 0; k < 2; ++k) sw[k] += e * d.args[2].data[j + k * 3000];
      }
      expect_rel(a.values[o], m + std::log(s), 1e-12, "lse");
      for (int k = 0; k < 2; ++k) {
        expect_rel(b.values[o + 5 * k], m + std::log(sw[k]), 1e-12, "lse weighted");
        expect_rel(c.values[o + 5 * k], sw[k] / s, 1e-12, "softmax");
      }
    }
  }
}

// F = x*y overflows to +inf for some pairs: LogSumExp is +inf (it was inf - inf = NaN),
// SumSoftMaxWeight the mean weight of the +inf terms (the limit of the softmax), a row
// without +inf terms is unaffected, and a NaN term still makes the row NaN. M spans
// several runs and, with two threads, several tasks whose states are merged.
TEST(Engine, LogSumExpOfOverflowingTermsIsTheLimit) {
  const std::vector<std::string> decls = {"x = Vi(1)", "y = Vj(1)", "w = Vj(1)"};
  auto lse = compile("LogSumExp_Reduction(x*y,0)", decls);
  auto smw = compile("SumSoftMaxWeight_Reduction(x*y,0,w)", decls);
  auto nan = compile("LogSumExp_Reduction(x*y+Log(w-3),0)", decls);  // NaN where w < 3
  const int m = 20000;
  std::vector<double> x = {1e200, 1e-200}, y(m, 1.0), w(m, 1.0);
  y[5] = y[12345] = 1e200;  // row 0: two +inf terms
  w[5] = 2;
  w[12345] = 5;
  w[19999] = 4;
  const std::vector<ArgData> args = {{x.data(), 2, 1}, {y.data(), m, 1}, {w.data(), m, 1}};
  for (int threads : {1, 2}) {
    RunConfig c;
    c.n_threads = threads;
    std::vector<double> a(2), b(2), z(2);
    run_cpu(*lse, args, a.data(), nullptr, c);
    run_cpu(*smw, args, b.data(), nullptr, c);
    run_cpu(*nan, args, z.data(), nullptr, c);
    EXPECT_EQ(a[0], INFINITY);
    expect_rel(a[1], std::log(m - 2 + 2 * std::exp(1.0)), 1e-12, "row without overflow");
    EXPECT_EQ(b[0], 3.5);  // (2 + 5) / 2
    EXPECT_TRUE(std::isnan(z[0]));
    EXPECT_TRUE(std::isnan(z[1]));
  }
}

TEST(Engine, CheckArgsNamesTheFaultyArgument) {
  auto p = compile("Sum_Reduction(x*y,0)", {"x = Vi(2)", "y = Vj(2)", "z = Vi(2)"});
  std::vector<double> a(20, 0.5), bad(20, 0.5);
  bad[7] = NAN;
  auto args = [&](const double* xz, std::int64_t rx, std::int64_t cy) {
    return std::vector<ArgData>{{xz, rx, 2}, {a.data(), 10, cy}, {a.data(), 10, 2}};
  };
  EXPECT_NO_THROW(check_args(*p, args(a.data(), 10, 2)));
  EXPECT_THROW(check_args(*p, args(bad.data(), 10, 2)), InputError);  // NaN
  EXPECT_THROW(check_args(*p, args(a.data(), 9, 2)), InputError);     // x and z rows differ
  EXPECT_THROW(check_args(*p, args(a.data(), 10, 1)), DimensionError);
  EXPECT_THROW(check_args(*p, args(a.data(), 0, 2)), InputError);     // zero rows
  auto nj = compile("Sum_Reduction(x,0)", {"x = Vi(2)"});
  EXPECT_THROW(check_args(*nj, {{a.data(), 10, 2}}), DimensionError);  // nothing to reduce over
}

TEST(Engine, InterruptStopsTheRunAndRethrowsOnTheCaller) {
  struct StopNow : Control {
    bool interrupted() override { return true; }
  } stop;
  auto p = compile("Sum_Reduction(Exp(-SqDist(x,y)),0)", {"x = Vi(3)", "y = Vj(3)"});
  Data d = make_data(*p, 4000, 4000, 1);
  std::vector<double> out(4000);
  RunConfig c;
  c.n_threads = 2;
  c.control = &stop;
  EXPECT_THROW(run_cpu(*p, d.args, out.data(), nullptr, c), Interrupted);
}

// With several threads the last row blocks shrink (cpu/tiles.h, row_blocks): here two
// threads give five blocks of 752 rows, then 564, 420, 316 and ~1M-pair blocks of 264
// (the last one partial), one thread blocks of 1504. Every row must be computed once,
// whatever block it falls in: the values agree to the bit (each row's sum runs over the
// same j runs in the same order, and blocks start on whole groups of rows) and with the
// reference at the blocks' edges.
TEST(Engine, ShrinkingRowBlocksCoverEveryRowOnce) {
  auto p = compile("Sum_Reduction(Exp(-SqDist(x,y))*b,0)", {"x = Vi(3)", "y = Vj(3)", "b = Vj(2)"});
  Data d = make_data(*p, 6001, 4000, 11);
  Result one = run(*p, d, 1), two = run(*p, d, 2);
  ASSERT_EQ(one.values.size(), two.values.size());
  for (size_t q = 0; q < one.values.size(); ++q) ASSERT_EQ(one.values[q], two.values[q]) << "value " << q;
  for (std::int64_t o : {0, 3759, 3760, 4323, 4324, 4743, 4744, 5059, 5060, 5851, 5852, 6000}) {
    auto col = column(*p, p->formula.f, d, o, two.shape.reduced);
    for (int k = 0; k < 2; ++k) {
      double want = 0;
      for (const auto& v : col) want += v[k];
      expect_rel(two.values[o + k * two.shape.rows], want, 1e-12, "row " + std::to_string(o));
    }
  }
}

// An interrupt reaches a task that is still running (parallel.h, StopCheck): the calling
// thread polls the host between the groups of rows and runs of its task, not only between
// tasks. One row is one task here; with no minimum interval between polls it is polled
// after each of its runs, and an interrupt on the third poll stops it there. (Before, one
// row of a K-min with K = M = 1e5 took 19 s to notice an interrupt.)
TEST(Engine, InterruptReachesARunningTask) {
  struct Polled : Control {
    int calls = 0, stop_at = -1;
    bool interrupted() override { return ++calls == stop_at; }
    std::chrono::milliseconds poll_interval() const override { return std::chrono::milliseconds(0); }
  };
  auto p = compile("ArgKMin_Reduction(SqDist(x,y),5,0)", {"x = Vi(3)", "y = Vj(3)"});
  Data d = make_data(*p, 1, 40000, 3);
  std::vector<double> out(5);
  RunConfig c;
  c.n_threads = 1;
  Polled count;
  c.control = &count;
  run_cpu(*p, d.args, out.data(), out.data(), c);
  EXPECT_GE(count.calls, 5);  // runs of at most 8192 points, and once after the task
  Polled stop;
  stop.stop_at = 3;
  c.control = &stop;
  EXPECT_THROW(run_cpu(*p, d.args, out.data(), out.data(), c), Interrupted);
  EXPECT_LE(stop.calls, 4);  // the third poll stopped the task (the fourth: after it)
}

// RunConfig::split_reduced = false (what R's future shards run with, R/future.R): each
// row's reduced range stays whole, so a block of rows computed on its own, with any
// thread count, is bitwise those rows of the whole call, when the block starts on a
// multiple of 48 rows (whole groups of 4 or 6 rows: tiles.h, group_). With the default,
// few rows per thread split the reduced range and the last bits move. Formulas: W1 (rows
// in fours), a 16-D distance (rows in sixes), a LogSumExp and an ArgKMin; both axes.
TEST(Engine, UnsplitReducedRangeMakesRowsIndependentOfTheBlock) {
  const std::vector<std::string> decls = {"x = Vi(16)", "y = Vj(16)", "b = Vj(6)"};
  for (const char* f : {"Sum_Reduction(Exp(-SqNorm2(Extract(x,0,3)-Extract(y,0,3)))*b,0)",
                        "Sum_Reduction(Exp(-SqDist(x,y)/16)*b,0)", "LogSumExp_Reduction(-SqDist(x,y),0)",
                        "ArgKMin_Reduction(SqDist(x,y),3,0)", "Sum_Reduction(Exp(-SqDist(x,y)/16)*x,1)"}) {
    auto p = compile(f, decls);
    const int axis = p->formula.axis;
    const std::int64_t n = axis == 0 ? 150 : 3000, m = axis == 0 ? 3000 : 150;
    Data d = make_data(*p, n, m, 5);
    const std::int64_t rows = axis == 0 ? n : m;
    auto run_split = [&](const Data& dd, int threads, bool split) {
      Result r;
      r.shape = check_args(*p, dd.args);
      r.values.assign(static_cast<size_t>(r.shape.rows * r.shape.value_cols), 0);
      r.indices.assign(static_cast<size_t>(r.shape.rows * r.shape.index_cols), 0);
      RunConfig c;
      c.n_threads = threads;
      c.split_reduced = split;
      run_cpu(*p, dd.args, r.values.data(), r.indices.data(), c);
      return r;
    };
    const Result whole = run_split(d, 2, false);
    for (int threads : {1, 2}) {
      for (std::int64_t r0 : {std::int64_t(0), std::int64_t(48), std::int64_t(96)}) {
        const std::int64_t r1 = std::min(rows, r0 + 48 + (r0 == 96 ? 100 : 0));
        Data blk = d;  // the output side's arguments cut to rows [r0, r1)
        for (size_t a = 0; a < blk.args.size(); ++a) {
          const Cat out_cat = axis == 0 ? Cat::I : Cat::J;
          if (p->formula.vars[a].cat != out_cat) continue;
          const int dim = p->formula.vars[a].dim;
          blk.cols[a].clear();
          for (int k = 0; k < dim; ++k)
            for (std::int64_t r = r0; r < r1; ++r) blk.cols[a].push_back(d.cols[a][r + k * rows]);
          blk.args[a] = {nullptr, r1 - r0, dim};
        }
        for (size_t a = 0; a < blk.args.size(); ++a) blk.args[a].data = blk.cols[a].data();
        const Result part = run_split(blk, threads, false);
        for (int k = 0; k < whole.shape.value_cols; ++k)
          for (std::int64_t r = r0; r < r1; ++r)
            ASSERT_EQ(part.values[(r - r0) + k * (r1 - r0)], whole.values[r + k * rows])
                << f << " threads " << threads << " row " << r;
        for (int k = 0; k < whole.shape.index_cols; ++k)
          for (std::int64_t r = r0; r < r1; ++r)
            ASSERT_EQ(part.indices[(r - r0) + k * (r1 - r0)], whole.indices[r + k * rows]) << f << " row " << r;
      }
    }
  }
}
