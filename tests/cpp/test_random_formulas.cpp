// Randomised differential test of the whole pipeline (parser -> simplifier -> differentiator
// -> planner -> CPU engine): random formulas, biased towards what the planner rewrites
// (bare products, Concat roots, subexpressions shared between parts, gradients with respect
// to several variables, which are Concats of Grads), are reduced by the engine and compared
// with a dense evaluation by the reference evaluator (reference_eval.h), and gradients also
// with central finite differences of the formula they differentiate.
//
// A planner bug that miscomputes a class of formulas (issue 16: a bare product shared by two
// parts of a Sum was never computed; 124 of ~1,800 random formulas were wrong) shows up here
// within a few hundred formulas. The seed is fixed, so CI is deterministic; to search longer:
//   KERNOPS_RANDOM_SEED=123 KERNOPS_RANDOM_COUNT=20000 ./kernops_core_tests --gtest_filter='Random*'
// A failure prints the formula and the seed: paste the formula into a test to reproduce it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kernops.h"
#include "reference_eval.h"

using namespace kernops;
using kernops_test::Env;
using kernops_test::Vec;

namespace {

unsigned env_or(const char* name, unsigned fallback) {
  const char* v = std::getenv(name);
  return v && *v ? static_cast<unsigned>(std::strtoul(v, nullptr, 10)) : fallback;
}

// The variables every random formula may use; e is the gradients' direction, declared only
// when used (its dimension is that of the differentiated formula).
struct VarSpec {
  const char* name;
  Cat cat;
  int dim;
};
const std::vector<VarSpec> kVars = {{"x", Cat::I, 3}, {"u", Cat::I, 1}, {"y", Cat::J, 3}, {"v", Cat::J, 1},
                                    {"b", Cat::J, 2}, {"s", Cat::P, 1}, {"p", Cat::P, 3}};

std::vector<std::string> base_decls() {
  std::vector<std::string> d;
  for (const auto& v : kVars) d.push_back(std::string(v.name) + " = " + cat_keyword(v.cat) + "(" + std::to_string(v.dim) + ")");
  return d;
}

// Random formulas of a given dimension over kVars. Every operation is smooth on the data's
// range (positive values in [0.2, 1]) unless `kinks` is set, so that finite differences
// apply; every operation keeps values within a few orders of magnitude (Pow and Square of bounded
// arguments), so relative tolerances are tight.
class Generator {
 public:
  Generator(std::mt19937& rng, bool kinks) : rng_(rng), kinks_(kinks) {}

  std::string gen(int d, int depth) {
    // Reuse a subexpression already made: this is how parts come to share values. Only
    // short ones, else the text of a formula can grow exponentially (the DAG does not).
    auto& pool = pool_[d];
    if (!pool.empty() && chance(0.3)) return pool[pick(pool.size())];
    std::string e = depth <= 0 || chance(0.2) ? leaf(d) : node(d, depth - 1);
    if (e.size() < 300) pool.push_back(e);
    return e;
  }

  // A root for a Sum: a tree of Concats whose leaves are often bare products.
  std::string sum_root(int d, int depth) {
    if (d >= 2 && chance(0.6)) {
      const int d1 = 1 + static_cast<int>(pick(static_cast<size_t>(d - 1)));
      return "Concat(" + sum_root(d1, depth) + "," + sum_root(d - d1, depth) + ")";
    }
    // Leaves: bare products, often of a product X that another leaf is or has as a factor
    // (Concat(E*X, X), X = a*b: the shape of the gradients of issue 16).
    auto& pool = pool_[d];
    if (!pool.empty() && chance(0.3)) return pool[pick(pool.size())];
    if (chance(0.4)) {
      std::string& x = shared_[d];
      if (x.empty() || x.size() > 300) x = "(" + gen(d, depth) + ")*(" + gen(chance(0.5) ? 1 : d, depth) + ")";
      switch (pick(3)) {
        case 0: return x;
        case 1: return "(" + gen(chance(0.5) ? 1 : d, depth) + ")*(" + x + ")";
        default: return "(" + x + ")*(" + gen(d, depth) + ")";
      }
    }
    if (chance(0.6)) {
      std::string e = "(" + gen(d, depth) + ")*(" + gen(chance(0.5) ? 1 : d, depth) + ")";
      if (e.size() < 300) pool.push_back(e);
      return e;
    }
    return gen(d, depth);
  }

  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }

 private:
  std::string leaf(int d) {
    std::vector<std::string> same;
    for (const auto& v : kVars)
      if (v.dim == d) same.push_back(v.name);
    if (d == 1 && chance(0.15)) return std::to_string(pick(2)) + ".5";
    if (!same.empty() && chance(0.8)) return same[pick(same.size())];
    if (d <= 3) {  // a slice of a 3-vector
      static const char* const kVec3[] = {"x", "y", "p"};
      const int start = static_cast<int>(pick(static_cast<size_t>(4 - d)));
      return d == 1 ? std::string("Elem(") + kVec3[pick(3)] + "," + std::to_string(start) + ")"
                    : std::string("Extract(") + kVec3[pick(3)] + "," + std::to_string(start) + "," + std::to_string(d) + ")";
    }
    return "SumT(" + leaf(1) + "," + std::to_string(d) + ")";
  }

  std::string node(int d, int depth) {
    const std::string a = gen(d, depth);
    switch (pick(kinks_ ? 13 : 11)) {
      case 0: return "(" + a + ")*(" + gen(chance(0.3) ? 1 : d, depth) + ")";  // bare products
      case 1: return "(" + a + ")*(" + gen(d, depth) + ")";
      case 2: return "(" + a + ")+(" + gen(chance(0.3) ? 1 : d, depth) + ")";
      case 3: return "(" + a + ")-(" + gen(d, depth) + ")";
      case 4: {
        static const char* const kSmooth[] = {"Exp(-Square(%))", "Sin(%)", "Cos(%)", "Square(Sin(%))", "Inv(1+Square(%))",
                                              "Sqrt(1+Square(%))", "Log(1+Square(%))", "Rsqrt(1+Square(%))",
                                              "Pow(Cos(%),3)", "-%"};
        std::string t = kSmooth[pick(10)];
        return t.replace(t.find('%'), 1, "(" + a + ")");
      }
      case 5:
        if (d >= 2) {
          const int d1 = 1 + static_cast<int>(pick(static_cast<size_t>(d - 1)));
          return "Concat(" + gen(d1, depth) + "," + gen(d - d1, depth) + ")";
        }
        return "(" + gen(3, depth) + "|" + gen(3, depth) + ")";
      case 6:
        if (d == 1) {
          static const char* const kReduce[] = {"SqDist(%,#)", "SqNorm2(%)", "Sum(%)", "Elem(%,1)"};
          std::string t = kReduce[pick(4)];
          t.replace(t.find('%'), 1, gen(3, depth));
          const auto h = t.find('#');
          return h == std::string::npos ? t : t.replace(h, 1, gen(3, depth));
        }
        return "Extract(" + gen(d + 1, depth) + ",1," + std::to_string(d) + ")";
      case 7: return "(" + gen(1, depth) + ")*(" + a + ")";  // scalar times vector
      case 8: return "(" + a + ")/(1+Square(" + gen(1, depth) + "))";
      case 9: return d == 1 ? "Exp(-(" + gen(1, depth) + ")*SqDist(x,y))" : "SumT(" + gen(1, depth) + "," + std::to_string(d) + ")*(" + a + ")";
      case 10:  // a kernel of a sum of terms times a weight: gradients of its terms share factors
        return "Pow(Cos(" + gen(1, depth) + ")+" + (chance(0.5) ? "s" : "u") + ",3)*(" + a + ")";
      case 11: return "IfElse(" + gen(d, depth) + "-" + gen(d, depth) + "," + a + "," + gen(d, depth) + ")";
      default: return "Min(" + a + "," + gen(d, depth) + ")+Abs(" + gen(d, depth) + "-0.5)";
    }
  }

  std::mt19937& rng_;
  bool kinks_;
  std::map<int, std::vector<std::string>> pool_;  // by dimension
  std::map<int, std::string> shared_;  // by dimension, the product X that sum_root() leaves share
};

struct Data {
  std::vector<std::vector<double>> cols;  // column-major per argument
  std::vector<ArgData> args;
};

Data make_data(const Formula& f, std::int64_t n, std::int64_t m, std::mt19937& rng) {
  std::uniform_real_distribution<double> u(0.2, 1.0);
  Data d;
  for (const auto& v : f.vars) {
    const std::int64_t rows = v.cat == Cat::P ? 1 : (v.cat == Cat::I ? n : m);
    d.cols.emplace_back(static_cast<size_t>(rows * v.dim));
    for (auto& x : d.cols.back()) x = u(rng);
  }
  for (size_t a = 0; a < d.cols.size(); ++a) {
    const auto& v = f.vars[a];
    d.args.push_back({d.cols[a].data(), v.cat == Cat::P ? 1 : (v.cat == Cat::I ? n : m), v.dim});
  }
  return d;
}

// The variables' values at pair (i, j) of the formula as declared (i indexes Vi rows).
Env pair_env(const Formula& f, const Data& d, std::int64_t i, std::int64_t j) {
  Env env;
  for (size_t a = 0; a < d.args.size(); ++a) {
    const auto& v = f.vars[a];
    const std::int64_t row = v.cat == Cat::P ? 0 : (v.cat == Cat::I ? i : j);
    Vec val(static_cast<size_t>(v.dim));
    for (int k = 0; k < v.dim; ++k) val[k] = d.args[a].data[row + k * d.args[a].rows];
    env[{static_cast<int>(v.cat), v.pos}] = val;
  }
  return env;
}

struct Dense {
  std::vector<double> values, indices;  // column-major, like the engine's result
  std::vector<double> scale;            // per value: the sum of |terms| of a Sum, else |value|
};

// Whether two values are too close for the engine's rounding to order them as we do: the
// index of a Min, ArgMin or K-min is then not checked (NaN in Dense::indices), the value is.
bool tie(double a, double b) { return std::fabs(a - b) <= 1e-9 * std::max({1.0, std::fabs(a), std::fabs(b)}); }

// The reduction of `f`, evaluated pair by pair with the reference evaluator.
Dense dense_reduce(const Formula& f, const Data& d, std::int64_t n, std::int64_t m, const OutShape& shape) {
  const std::int64_t rows = f.axis == 0 ? n : m, reduced = f.axis == 0 ? m : n;
  Dense out;
  out.values.assign(static_cast<size_t>(rows * shape.value_cols), NAN);
  out.indices.assign(static_cast<size_t>(rows * shape.index_cols), -1);
  out.scale.assign(out.values.size(), 0.0);
  const int dim = f.f->dim;
  for (std::int64_t o = 0; o < rows; ++o) {
    std::vector<Vec> F, G;
    for (std::int64_t r = 0; r < reduced; ++r) {
      Env env = f.axis == 0 ? pair_env(f, d, o, r) : pair_env(f, d, r, o);
      F.push_back(kernops_test::ref_eval(f.f, env));
      if (f.f2) G.push_back(kernops_test::ref_eval(f.f2, env));
    }
    auto val = [&](int c) -> double& { return out.values[static_cast<size_t>(o + c * rows)]; };
    auto idx = [&](int c) -> double& { return out.indices[static_cast<size_t>(o + c * rows)]; };
    switch (f.kind) {
      case RedKind::Sum:
        for (int c = 0; c < dim; ++c) {
          val(c) = 0;
          for (const auto& v : F) {
            val(c) += v[c];
            out.scale[static_cast<size_t>(o + c * rows)] += std::fabs(v[c]);
          }
        }
        break;
      case RedKind::Min: case RedKind::Max: case RedKind::ArgMin: case RedKind::ArgMax:
      case RedKind::MinArgMin: case RedKind::MaxArgMax: {
        const bool is_min = f.kind == RedKind::Min || f.kind == RedKind::ArgMin || f.kind == RedKind::MinArgMin;
        for (int c = 0; c < dim; ++c) {
          std::vector<std::pair<double, std::int64_t>> all;
          for (std::int64_t r = 0; r < reduced; ++r) all.push_back({is_min ? F[r][c] : -F[r][c], r});
          std::stable_sort(all.begin(), all.end());
          if (shape.value_cols) val(c) = F[all[0].second][c];
          if (shape.index_cols) idx(c) = tie(all[0].first, all[1].first) ? NAN : static_cast<double>(all[0].second);
        }
        break;
      }
      case RedKind::KMin: case RedKind::ArgKMin: case RedKind::KMinArgKMin: {  // scalar F only
        std::vector<std::pair<double, std::int64_t>> all;
        for (std::int64_t r = 0; r < reduced; ++r) all.push_back({F[r][0], r});
        std::stable_sort(all.begin(), all.end());
        for (int q = 0; q < f.k; ++q) {
          if (shape.value_cols) val(q) = all[q].first;
          const bool tied = (q > 0 && tie(all[q - 1].first, all[q].first)) || tie(all[q].first, all[q + 1].first);
          if (shape.index_cols) idx(q) = tied ? NAN : static_cast<double>(all[q].second);
        }
        break;
      }
      case RedKind::LogSumExp: case RedKind::SumSoftMaxWeight: {
        double mx = -INFINITY;
        for (const auto& v : F) mx = std::max(mx, v[0]);
        const int wd = f.f2 ? f.f2->dim : 1;
        double z = 0;
        std::vector<double> zw(static_cast<size_t>(wd), 0.0);
        for (std::int64_t r = 0; r < reduced; ++r) {
          const double e = std::exp(F[r][0] - mx);
          z += e;
          for (int c = 0; c < wd; ++c) zw[c] += e * (f.f2 ? G[r][c] : 1.0);
        }
        for (int c = 0; c < wd; ++c) {
          val(c) = f.kind == RedKind::LogSumExp ? mx + std::log(zw[c]) : zw[c] / z;
          double terms = 0;  // cancellation in sum_j e_j w_j magnifies rounding by this much
          for (std::int64_t r = 0; r < reduced; ++r) terms += std::exp(F[r][0] - mx) * std::fabs(f.f2 ? G[r][c] : 1.0);
          out.scale[static_cast<size_t>(o + c * rows)] = f.kind == RedKind::LogSumExp ? std::fabs(val(c)) + terms / std::fabs(zw[c]) : terms / z;
        }
        break;
      }
    }
  }
  for (size_t k = 0; k < out.values.size(); ++k)
    if (out.scale[k] == 0) out.scale[k] = std::fabs(out.values[k]);
  return out;
}

Dense engine_reduce(const Plan& p, const Data& d, Dtype dt, int threads, OutShape* shape) {
  *shape = check_args(p, d.args);
  Dense r;
  r.values.assign(static_cast<size_t>(shape->rows * shape->value_cols), 0);
  r.indices.assign(static_cast<size_t>(shape->rows * shape->index_cols), 0);
  RunConfig c;
  c.dtype = dt;
  c.n_threads = threads;
  run_cpu(p, d.args, r.values.data(), r.indices.data(), c);
  return r;
}

// How much each value of the reduction moves when every input moves by a float32 rounding
// (relative 2^-24, random signs): a float32 result of an ill-conditioned random formula
// (a difference of large terms) cannot be closer than a multiple of this.
std::vector<double> float32_sensitivity(const Formula& f, const Data& d, std::int64_t n, std::int64_t m,
                                        const OutShape& shape, const Dense& want, std::mt19937& rng) {
  Data moved = d;
  for (size_t a = 0; a < moved.cols.size(); ++a) {
    for (auto& x : moved.cols[a]) x *= 1 + (rng() % 2 ? 1 : -1) * std::ldexp(1.0, -24);
    moved.args[a].data = moved.cols[a].data();
  }
  const Dense w = dense_reduce(f, moved, n, m, shape);
  std::vector<double> out(want.values.size());
  for (size_t k = 0; k < out.size(); ++k) {
    const double dv = std::fabs(w.values[k] - want.values[k]);
    out[k] = std::isfinite(dv) ? dv : 0;
  }
  return out;
}

// |got - want| within tol of max(1, scale), scale the size of the terms that made `want`
// (rounding errors grow with them, not with a result that cancelled). Equal infinities and
// two NaN agree (a LogSumExp of weights summing to zero or below).
bool close(double got, double want, double tol, double scale = 0) {
  if (got == want || (std::isnan(got) && std::isnan(want))) return true;
  return std::fabs(got - want) <= tol * std::max({1.0, std::fabs(want), scale});
}

std::string random_reduction(Generator& g, std::string* root) {
  const int axis = g.chance(0.5) ? 1 : 0;
  const std::string ax = std::to_string(axis);
  switch (g.pick(7)) {
    case 0: case 1: case 2:
      *root = g.sum_root(1 + static_cast<int>(g.pick(5)), 3);
      return "Sum_Reduction(" + *root + "," + ax + ")";
    case 3: {
      static const char* const kMinMax[] = {"Min", "Max", "ArgMin", "ArgMax", "Min_ArgMin", "Max_ArgMax"};
      *root = g.gen(1 + static_cast<int>(g.pick(3)), 3);
      return std::string(kMinMax[g.pick(6)]) + "_Reduction(" + *root + "," + ax + ")";
    }
    case 4: {
      static const char* const kK[] = {"KMin", "ArgKMin", "KMin_ArgKMin"};
      *root = g.gen(1, 3);
      return std::string(kK[g.pick(3)]) + "_Reduction(" + *root + ",3," + ax + ")";
    }
    case 5:
      *root = g.gen(1, 3);
      return "LogSumExp_Reduction(" + *root + "," + ax + (g.chance(0.5) ? "," + g.sum_root(2, 2) : "") + ")";
    default:
      *root = g.gen(1, 3);
      return "SumSoftMaxWeight_Reduction(" + *root + "," + ax + "," + g.sum_root(1 + static_cast<int>(g.pick(3)), 2) + ")";
  }
}

}  // namespace

// Every reduction of random formulas, both axes, 1 and 2 threads, float64 (and float32 for
// the sums), against the dense reference.
TEST(RandomFormulas, ReductionsMatchTheDenseReference) {
  const unsigned seed = env_or("KERNOPS_RANDOM_SEED", 20261207), count = env_or("KERNOPS_RANDOM_COUNT", 1500);
  std::mt19937 rng(seed);
  const std::int64_t n = 6, m = 9;  // two threads still split 6 rows; K = 3 <= 6
  int failures = 0;
  for (unsigned t = 0; t < count && failures < 5; ++t) {
    Generator g(rng, std::uniform_int_distribution<int>(0, 3)(rng) == 0);  // kinks: value tests only
    std::string root;
    const std::string src = random_reduction(g, &root);
    SCOPED_TRACE("seed " + std::to_string(seed) + ", formula " + std::to_string(t) + ": " + src);
    std::shared_ptr<const Plan> plan;
    try {
      plan = compile(src, base_decls());
    } catch (const std::exception& e) {
      ADD_FAILURE() << "does not compile: " << e.what();
      ++failures;
      continue;
    }
    try {
      Data d = make_data(plan->formula, n, m, rng);
      OutShape shape;
      Dense want;
      std::vector<double> sensitivity;  // of each value to float32 rounding of the inputs
      bool first = true;
      for (Dtype dt : {Dtype::Float64, Dtype::Float32}) {
        if (dt == Dtype::Float32 && plan->kind != RedKind::Sum) continue;  // near-ties may pick another j
        for (int threads : {1, 2}) {
          Dense got = engine_reduce(*plan, d, dt, threads, &shape);
          if (first) want = dense_reduce(plan->formula, d, n, m, shape), first = false;
          if (dt == Dtype::Float32 && sensitivity.empty()) sensitivity = float32_sensitivity(plan->formula, d, n, m, shape, want, rng);
          const double tol = dt == Dtype::Float64 ? 1e-10 : 2e-4;
          bool ok = true;
          for (size_t k = 0; k < want.values.size() && ok; ++k)
            ok = close(got.values[k], want.values[k], tol, want.scale[k] + (dt == Dtype::Float32 ? 100 * sensitivity[k] / tol : 0));
          for (size_t k = 0; k < want.indices.size() && ok; ++k) ok = std::isnan(want.indices[k]) || got.indices[k] == want.indices[k];
          if (!ok) {
            ADD_FAILURE() << (dt == Dtype::Float64 ? "float64" : "float32") << ", " << threads << " thread(s): engine differs from the dense reference";
            ++failures;
          }
        }
      }
    } catch (const std::exception& e) {  // e.g. std::bad_alloc: the engine must refuse, not throw this
      ADD_FAILURE() << "throws: " << e.what();
      ++failures;
    }
  }
}

// Gradients with respect to one to three variables at once (the Concat of Grads that
// kernel_grad() builds), of random vector-valued formulas: the engine's reduction against
// the dense reference of the same formula (planner and engine) and against central finite
// differences of the reduction of <F, e> (differentiator).
TEST(RandomFormulas, GradientsMatchFiniteDifferences) {
  const unsigned seed = env_or("KERNOPS_RANDOM_SEED", 20261207) + 1, count = env_or("KERNOPS_RANDOM_COUNT", 1500) / 2;
  std::mt19937 rng(seed);
  const std::int64_t n = 4, m = 7;
  const std::vector<std::string> wrt_names = {"x", "u", "s", "p"};  // output-side and parameters
  int failures = 0;
  for (unsigned t = 0; t < count && failures < 5; ++t) {
    Generator g(rng, false);
    const int fdim = 1 + static_cast<int>(g.pick(3));
    // Half of them kernel-shaped, phi(A + c) * W: the derivatives in A's variables and in c
    // then share the bare product phi'(A + c) * W * e.
    const bool kernel_shaped = g.chance(0.5);
    const std::string c = g.chance(0.5) ? "s" : "u";
    const std::string F = !kernel_shaped ? g.sum_root(fdim, 3)
                                         : "Pow(" + (g.chance(0.7) ? std::string("(x|y)") : "Sin(" + g.gen(1, 2) + ")") + "+" + c + ",3)*(" + g.sum_root(fdim, 2) + ")";
    std::vector<std::string> wrt;
    for (const auto& w : wrt_names)
      if ((kernel_shaped && w == c) || g.chance(0.45)) wrt.push_back(w);
    if (wrt.empty()) wrt.push_back(wrt_names[g.pick(wrt_names.size())]);
    std::shuffle(wrt.begin(), wrt.end(), rng);
    std::string body;
    for (const auto& w : wrt) {
      const std::string gr = "Grad(" + F + "," + w + ",e)";
      body = body.empty() ? gr : "Concat(" + body + "," + gr + ")";
    }
    const std::string src = "Sum_Reduction(" + body + ",0)";
    SCOPED_TRACE("seed " + std::to_string(seed) + ", gradient " + std::to_string(t) + ": " + src);
    std::vector<std::string> decls = base_decls();
    decls.push_back("e = Vi(" + std::to_string(fdim) + ")");
    std::shared_ptr<const Plan> plan, fplan;
    try {
      plan = compile(src, decls);
      fplan = compile("Sum_Reduction(" + F + ",0)", decls);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "does not compile: " << e.what();
      ++failures;
      continue;
    }
    Data d = make_data(plan->formula, n, m, rng);
    OutShape shape;
    Dense got = engine_reduce(*plan, d, Dtype::Float64, 1 + static_cast<int>(g.pick(2)), &shape);
    Dense want = dense_reduce(plan->formula, d, n, m, shape);
    bool ok = true;
    for (size_t k = 0; k < want.values.size() && ok; ++k) ok = close(got.values[k], want.values[k], 1e-10, want.scale[k]);
    if (!ok) {
      ADD_FAILURE() << "engine differs from the dense reference of the gradient formula";
      ++failures;
      continue;
    }
    // Finite differences of sum_j <F(x_i, y_j), e_i> in each coordinate of each variable.
    // fplan declares the same variables in the same positions, so the data is shared.
    const Formula& ff = fplan->formula;
    auto energy = [&](std::int64_t i) {
      double s = 0;
      for (std::int64_t j = 0; j < m; ++j) {
        Env env = pair_env(ff, d, i, j);
        const Vec f = kernops_test::ref_eval(ff.f, env);
        const Vec& e = env.at({static_cast<int>(Cat::I), static_cast<int>(kVars.size())});
        for (size_t c = 0; c < f.size(); ++c) s += f[c] * e[c];
      }
      return s;
    };
    int col = 0;
    for (const auto& w : wrt) {
      const auto& spec = *std::find_if(kVars.begin(), kVars.end(), [&](const VarSpec& v) { return w == v.name; });
      const size_t a = static_cast<size_t>(std::find_if(kVars.begin(), kVars.end(), [&](const VarSpec& v) { return w == v.name; }) - kVars.begin());
      for (int c = 0; c < spec.dim && ok; ++c, ++col) {
        for (std::int64_t i = 0; i < n && ok; ++i) {
          const std::int64_t row = spec.cat == Cat::P ? 0 : i;
          double& xv = d.cols[a][static_cast<size_t>(row + c * d.args[a].rows)];
          const double x0 = xv;
          auto at = [&](double dx) {
            xv = x0 + dx;
            const double e = energy(i);
            xv = x0;
            return e;
          };
          auto fd_at = [&](double h) {  // five-point stencil: error ~h^4 f^(5)
            return (8 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12 * h);
          };
          const double h = 1e-4, fd = fd_at(h);
          // Its error, estimated by the change with the step (deeply nested oscillating
          // formulas have large high derivatives), plus rounding ~1e-16 * |energy| / h.
          const double error = 10 * std::fabs(fd - fd_at(h / 2)) + 1e-11 * std::fabs(at(0)) / h;
          const double g_engine = got.values[static_cast<size_t>(i + col * n)];
          if (!std::isfinite(fd) || !close(g_engine, fd, 1e-6, error / 1e-6)) {
            ADD_FAILURE() << "d/d" << w << "[" << c << "] at row " << i << ": engine " << g_engine << ", finite differences " << fd;
            ok = false;
            ++failures;
          }
        }
      }
    }
  }
}

// The case issue 16 reported, kept by name: part X = x*y is a bare product and a factor of
// the other part; X was never computed and column 2 was garbage.
TEST(RandomFormulas, SharedBareProductOfTwoSumParts) {
  auto p = compile("Sum_Reduction(Concat(Exp(x-y)*(x*y),x*y),0)", {"x = Vi(1)", "y = Vj(1)"});
  std::mt19937 rng(1);
  Data d = make_data(p->formula, 5, 8, rng);
  OutShape shape;
  Dense got = engine_reduce(*p, d, Dtype::Float64, 1, &shape);
  Dense want = dense_reduce(p->formula, d, 5, 8, shape);
  for (size_t k = 0; k < want.values.size(); ++k) EXPECT_TRUE(close(got.values[k], want.values[k], 1e-12)) << k;
}

// The gradient case of issue 16: d/dx and d/dc of Pow((x|y)+c,3)*b share the bare product
// 3*((x|y)+c)^2*b*e; with c first (c, x) the result was right, with x first it was not.
TEST(RandomFormulas, GradientWithRespectToTwoVariablesSharingAFactor) {
  const std::string F = "Pow((x|y)+c,3)*b";
  const std::vector<std::string> decls = {"x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "c = Pm(1)", "e = Vi(1)"};
  for (const char* order : {"Concat(Grad(F,x,e),Grad(F,c,e))", "Concat(Grad(F,c,e),Grad(F,x,e))"}) {
    std::string body = order;
    for (size_t at; (at = body.find("F,")) != std::string::npos;) body.replace(at, 1, F);
    auto p = compile("Sum_Reduction(" + body + ",0)", decls);
    std::mt19937 rng(2);
    Data d = make_data(p->formula, 5, 8, rng);
    OutShape shape;
    Dense got = engine_reduce(*p, d, Dtype::Float64, 1, &shape);
    Dense want = dense_reduce(p->formula, d, 5, 8, shape);
    for (size_t k = 0; k < want.values.size(); ++k)
      EXPECT_TRUE(close(got.values[k], want.values[k], 1e-12)) << order << ", value " << k;
  }
}
