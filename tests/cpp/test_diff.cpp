// Tests of symbolic differentiation (src/core/diff.cpp): Grad and Diff of every op against
// central finite differences of a reference evaluator, second derivatives (Grad of Grad),
// formula size, parsing and printing of derivatives, and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "ast.h"
#include "diff.h"
#include "errors.h"
#include "reduction.h"
#include "reference_eval.h"

namespace {

using kernops::Cat;
using kernops::NodeP;
using kernops::Op;
using kernops_test::Env;
using kernops_test::ref_eval;
using kernops_test::Vec;

// Variables of the test formulas: i-, j- and Pm-indexed, of several dimensions.
const std::vector<kernops::VarDecl>& decls() {
  static const std::vector<kernops::VarDecl> d = {
      {"x", Cat::I, 0, 3}, {"y", Cat::J, 1, 3}, {"a", Cat::I, 2, 1}, {"b", Cat::J, 3, 1},
      {"s", Cat::P, 4, 1}, {"A", Cat::P, 5, 9}, {"p", Cat::I, 6, 2}, {"q", Cat::J, 7, 2},
      {"M", Cat::J, 8, 6}, {"t", Cat::P, 9, 3},
  };
  return d;
}

kernops::VarNames names() {
  kernops::VarNames n;
  for (const auto& v : decls()) n[{static_cast<int>(v.cat), v.pos}] = v.name;
  n[{0, 20}] = "e";
  n[{0, 21}] = "w";
  return n;
}

NodeP parse(const std::string& s) {
  std::vector<kernops::VarDecl> vars = decls();
  return kernops::parse_expression(s, vars);
}

NodeP var_of(const std::string& name) {
  for (const auto& v : decls())
    if (v.name == name) return kernops::var(v.cat, v.pos, v.dim);
  throw std::logic_error("no variable " + name);
}

// Direction variables: e (for F) and w (for a gradient), i-indexed, at unused positions.
NodeP dir_e(int dim) { return kernops::var(Cat::I, 20, dim); }
NodeP dir_w(int dim) { return kernops::var(Cat::I, 21, dim); }

Vec random_vec(std::mt19937& rng, int d, double lo, double hi) {
  std::uniform_real_distribution<double> u(lo, hi);
  Vec v(d);
  for (double& x : v) x = u(rng);
  return v;
}

// Values for every declared variable (positive, so Log/Sqrt/Powf are defined; differences
// such as x-y take both signs) and for any extra variable of `extra` (in [-1, 1]).
Env random_env(std::mt19937& rng, const std::vector<NodeP>& extra = {}) {
  Env env;
  for (const auto& v : decls()) env[{static_cast<int>(v.cat), v.pos}] = random_vec(rng, v.dim, 0.4, 1.6);
  for (const auto& v : extra) env[{v->params[0], v->params[1]}] = random_vec(rng, v->dim, -1, 1);
  return env;
}

double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t k = 0; k < a.size(); ++k) s += a[k] * b[k];
  return s;
}

// Central finite differences of <e, F> with respect to each coordinate of v.
Vec fd_grad(const NodeP& f, const NodeP& v, const Vec& e, Env env) {
  const double h = 1e-6;
  Vec& x = env[{v->params[0], v->params[1]}];
  Vec out(v->dim);
  for (int l = 0; l < v->dim; ++l) {
    const double x0 = x[l];
    x[l] = x0 + h;
    const double fp = dot(e, ref_eval(f, env));
    x[l] = x0 - h;
    const double fm = dot(e, ref_eval(f, env));
    x[l] = x0;
    out[l] = (fp - fm) / (2 * h);
  }
  return out;
}

// Central finite differences of F along v + h u.
Vec fd_diff(const NodeP& f, const NodeP& v, const Vec& u, Env env) {
  const double h = 1e-6;
  Vec& x = env[{v->params[0], v->params[1]}];
  const Vec x0 = x;
  for (size_t l = 0; l < x.size(); ++l) x[l] = x0[l] + h * u[l];
  const Vec fp = ref_eval(f, env);
  for (size_t l = 0; l < x.size(); ++l) x[l] = x0[l] - h * u[l];
  const Vec fm = ref_eval(f, env);
  Vec out(fp.size());
  for (size_t k = 0; k < out.size(); ++k) out[k] = (fp[k] - fm[k]) / (2 * h);
  return out;
}

// |analytic - fd| <= tol * (1 + |analytic|) coordinatewise.
::testing::AssertionResult close(const Vec& an, const Vec& fd, double tol) {
  if (an.size() != fd.size()) return ::testing::AssertionFailure() << "sizes differ";
  for (size_t k = 0; k < an.size(); ++k) {
    if (!(std::fabs(an[k] - fd[k]) <= tol * (1 + std::fabs(an[k]))))
      return ::testing::AssertionFailure()
             << "coordinate " << k << ": analytic " << an[k] << " vs finite differences " << fd[k];
  }
  return ::testing::AssertionSuccess();
}

// Formulas covering every op of ops.h (checked by OpCoverage) and the parser's sugars,
// with dimension-1 broadcasting, shared subexpressions and i/j/Pm variables.
const std::vector<std::string>& formulas() {
  static const std::vector<std::string> f = {
      // one-argument elementwise
      "-(x*a)", "Exp(x*y)", "Log(x+y)", "Sqrt(x*s)", "Rsqrt(x+b)", "Inv(x-y+3)",
      "Abs(x-y)*a", "Sign(x-y)*x", "Sin(x*y)+Cos(a*y)", "Step(x-y)*Square(x)", "ReLU(x-y)*b",
      "Square(x-y)*b", "Log1p(x*y)", "Expm1(x-y)*a", "Pow(x,3)*y", "Pow(x+y,-2)", "Pow(x*b,-1)", "Pow(x,0)+y", "Pow(a,2)*x",
      // two- and three-argument elementwise, with broadcasting
      "x-y", "a-x", "x+b", "x*a", "x/y", "a/x", "x/b", "(x-y)/(a+b)",
      "x^2.5", "Powf(x,y)", "Powf(x*a,s)", "Powf(s,x)", "Powf(a,b)*x",
      "Min(x,y)", "Max(x,a)", "Min(a,y*b)", "Max(x*y,s)", "Min(x,x)*y",
      "IfElse(x-y,x*y,a)", "IfElse(a-b,x,y)", "IfElse(x-y,s,b)",
      "Clamp(x,a,b+0.6)", "Clamp(x*2,1,2)", "Clamp(s,x,y)", "Clamp(a,x*b,y+1)",
      // vector operations
      "Sum(x*y)", "SumT(a*b,3)*x", "SqNorm2(x-y)", "(x|y)*a", "(x*a|y)", "(x|x)",
      "Elem(x*y,1)", "ElemT(a*b,3,2)*x", "Extract(Concat(x,y),2,3)", "ExtractT(x,1,5)*Concat(y,p)",
      "Concat(x*a,Exp(p))", "Concat(a,b)*p",
      "MatVecMult(A,x)", "VecMatMult(x,A)", "MatVecMult(M,x*y)", "VecMatMult(p,M)",
      "TensorProd(x,p)", "TensorProd(p*b,y)", "MatVecMult(TensorProd(x,y),t)", "MatVecMult(A,a)",
      // sugars and kernels
      "Normalize(x-y)", "Norm2(x-y)", "SqDist(x,y)", "GaussKernel(s,x,y,b)",
      "LaplaceKernel(s,x,y,b)", "CauchyKernel(s,x,y,p)", "InverseMultiquadricKernel(s,x,y,b)",
      "Matern32Kernel(s,x,y,b)", "Matern52Kernel(s,x,y,q)",
      // shared subexpressions, derivatives inside formulas
      "Exp(-SqNorm2(x-y))*SqNorm2(x-y)", "x*x", "Exp(-SqNorm2(x-y))*(p|q)",
      "Grad(Exp(-SqNorm2(x-y))*b,x,a)", "Diff(Sin(x*y)*a,x,y)", "Grad(Log(x+y),y,x)",
  };
  return f;
}

TEST(Diff, OpCoverage) {
  std::set<Op> seen;
  for (const auto& s : formulas()) {
    std::function<void(const NodeP&)> go = [&](const NodeP& n) {
      seen.insert(n->op);
      for (const auto& c : n->args) go(c);
    };
    go(parse(s));
  }
  for (int k = static_cast<int>(Op::Neg); k <= static_cast<int>(Op::TensorProd); ++k)
    EXPECT_TRUE(seen.count(static_cast<Op>(k))) << "no test formula uses " << kernops::op_info(static_cast<Op>(k)).name;
}

// Grad of F with respect to each of its variables (i, j and Pm) against finite differences;
// Diff against finite differences and against Grad (<e, dF.u> = <u, grad <e,F>>).
TEST(Diff, GradAndDiffOfEveryOpMatchFiniteDifferences) {
  int idx = 0;
  for (const auto& s : formulas()) {
    SCOPED_TRACE(s);
    const NodeP f = parse(s);
    const NodeP e = dir_e(f->dim);
    std::mt19937 rng(1234 + idx++);
    for (int trial = 0; trial < 3; ++trial) {
      for (const auto& v : kernops::collect_vars(f)) {
        SCOPED_TRACE("with respect to " + kernops::to_string(v, names()));
        const NodeP u = dir_w(v->dim);
        Env env = random_env(rng, {e, u});
        const Vec& ev = env[{0, 20}];
        const Vec& uv = env[{0, 21}];

        const NodeP g = kernops::grad(f, v, e);
        ASSERT_EQ(g->dim, v->dim);
        const Vec gv = ref_eval(g, env);
        EXPECT_TRUE(close(gv, fd_grad(f, v, ev, env), 1e-6)) << "Grad = " << kernops::to_string(g, names());

        const NodeP d = kernops::diff_forward(f, v, u);
        ASSERT_EQ(d->dim, f->dim);
        const Vec dv = ref_eval(d, env);
        EXPECT_TRUE(close(dv, fd_diff(f, v, uv, env), 1e-6)) << "Diff = " << kernops::to_string(d, names());
        EXPECT_NEAR(dot(ev, dv), dot(uv, gv), 1e-12 * (1 + std::fabs(dot(uv, gv))));
      }
    }
  }
}

// Grad of Grad: for G = Grad(F, v, e), Grad(G, u, w) against finite differences of <w, G>,
// for every variable u of G (including e itself).
TEST(Diff, SecondDerivativesMatchFiniteDifferences) {
  int idx = 0;
  for (const auto& s : formulas()) {
    SCOPED_TRACE(s);
    const NodeP f = parse(s);
    const NodeP e = dir_e(f->dim);
    std::mt19937 rng(999 + idx++);
    for (const auto& v : kernops::collect_vars(f)) {
      const NodeP g = kernops::grad(f, v, e);
      const NodeP w = dir_w(g->dim);
      Env env = random_env(rng, {e, w});
      for (const auto& u : kernops::collect_vars(g)) {
        SCOPED_TRACE("Grad w.r.t. " + kernops::to_string(v, names()) + ", then " +
                     kernops::to_string(u, names()));
        const NodeP h = kernops::grad(g, u, w);
        ASSERT_EQ(h->dim, u->dim);
        EXPECT_TRUE(close(ref_eval(h, env), fd_grad(g, u, env[{0, 21}], env), 1e-6))
            << "Grad = " << kernops::to_string(g, names()) << "\nGrad of Grad = " << kernops::to_string(h, names());
      }
    }
  }
}

// The Hessian-vector product of a Gaussian-weighted kernel, written in the formula syntax.
TEST(Diff, HessianVectorProductThroughTheParser) {
  std::vector<kernops::VarDecl> vars = decls();
  vars.push_back({"e", Cat::I, 20, 1});
  vars.push_back({"w", Cat::I, 21, 3});
  const std::string F = "Exp(-SqNorm2(x-y))*(p|q)";
  const NodeP g = kernops::parse_expression("Grad(" + F + ",x,e)", vars);
  const NodeP hxx = kernops::parse_expression("Grad(Grad(" + F + ",x,e),x,w)", vars);
  const NodeP hxy = kernops::parse_expression("Grad(Grad(" + F + ",x,e),y,w)", vars);
  EXPECT_TRUE(kernops::equal(hxx, kernops::grad(g, var_of("x"), dir_w(3))));
  std::mt19937 rng(7);
  for (int trial = 0; trial < 5; ++trial) {
    Env env = random_env(rng, {dir_e(1), dir_w(3)});
    const Vec& wv = env[{0, 21}];
    EXPECT_TRUE(close(ref_eval(hxx, env), fd_grad(g, var_of("x"), wv, env), 1e-6));
    EXPECT_TRUE(close(ref_eval(hxy, env), fd_grad(g, var_of("y"), wv, env), 1e-6));
    // Closed form: grad_x <e,F> = -2 (x-y) K (p|q) e, K = exp(-|x-y|^2), so
    // H w = K (p|q) e (4 (x-y)((x-y)|w) - 2 w).
    const Vec& x = env[{0, 0}];
    const Vec& y = env[{1, 1}];
    Vec r(3);
    double r2 = 0, rw = 0;
    for (int k = 0; k < 3; ++k) {
      r[k] = x[k] - y[k];
      r2 += r[k] * r[k];
      rw += r[k] * wv[k];
    }
    const double c = std::exp(-r2) * dot(env[{0, 6}], env[{1, 7}]) * env[{0, 20}][0];
    Vec expect(3);
    for (int k = 0; k < 3; ++k) expect[k] = c * (4 * r[k] * rw - 2 * wv[k]);
    EXPECT_TRUE(close(ref_eval(hxx, env), expect, 1e-12));
  }
}

// No exponential blowup: a chain of 20 nested Exp/Mul, each level using its argument twice.
TEST(Diff, DerivativeSizeStaysLinear) {
  const NodeP x = var_of("x");
  const NodeP y = var_of("y");
  NodeP f = x;
  for (int k = 0; k < 20; ++k)
    f = k % 2 ? kernops::mul(kernops::unary(Op::Exp, f), f) : kernops::mul(f, kernops::mul(f, y));
  const std::size_t n = kernops::count_nodes(f);
  const NodeP g = kernops::grad(f, x, dir_e(3));
  const NodeP gy = kernops::grad(f, y, dir_e(3));
  const NodeP d = kernops::diff_forward(f, x, dir_w(3));
  EXPECT_LE(kernops::count_nodes(g), 10 * n) << "f has " << n << " nodes";
  EXPECT_LE(kernops::count_nodes(gy), 10 * n);
  EXPECT_LE(kernops::count_nodes(d), 10 * n);
  // Second derivative: still linear.
  const NodeP h = kernops::grad(g, x, dir_w(3));
  EXPECT_LE(kernops::count_nodes(h), 100 * n);
}

TEST(Diff, GradInsideAReduction) {
  const kernops::Formula f = kernops::parse_formula(
      "Sum_Reduction(Grad(Exp(-SqNorm2(x-y))*b, x, e), 0)",
      {"x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "e = Vi(1)"});
  EXPECT_EQ(f.f->dim, 3);
  EXPECT_EQ(f.out_dim(), 3);
  ASSERT_EQ(f.vars.size(), 4u);
  const NodeP x = kernops::var(Cat::I, 0, 3), y = kernops::var(Cat::J, 1, 3);
  const NodeP b = kernops::var(Cat::J, 2, 1), e = kernops::var(Cat::I, 3, 1);
  const NodeP F = kernops::mul(
      kernops::unary(Op::Exp, kernops::neg(kernops::make(Op::SqNorm2, {kernops::sub(x, y)}))), b);
  EXPECT_TRUE(kernops::equal(f.f, kernops::grad(F, x, e)));
  // The canonical string parses back to the same formula.
  const kernops::Formula again = kernops::parse_formula(f.to_string(), f.decl_strings());
  EXPECT_TRUE(kernops::equal(again.f, f.f)) << f.to_string();
  // The expected closed form: -2 (x-y) Exp(-|x-y|^2) b e.
  Env env{{{0, 0}, {0.1, 0.7, -0.3}}, {{1, 1}, {0.5, 0.2, 0.4}}, {{1, 2}, {1.7}}, {{0, 3}, {-0.6}}};
  const Vec g = ref_eval(f.f, env);
  const double r2 = 0.16 + 0.25 + 0.49;
  const Vec expect = {-2 * -0.4 * std::exp(-r2) * 1.7 * -0.6, -2 * 0.5 * std::exp(-r2) * 1.7 * -0.6,
                      -2 * -0.7 * std::exp(-r2) * 1.7 * -0.6};
  EXPECT_TRUE(close(g, expect, 1e-13));
}

// Printing a derivative gives a formula that parses back to an equal tree, with the user's
// names and with inline Vi(pos,dim) variables.
TEST(Diff, PrintedDerivativesParseBack) {
  for (const auto& s : formulas()) {
    SCOPED_TRACE(s);
    const NodeP f = parse(s);
    for (const auto& v : kernops::collect_vars(f)) {
      const NodeP g = kernops::grad(f, v, dir_e(f->dim));
      const NodeP d = kernops::diff_forward(f, v, dir_w(v->dim));
      for (const NodeP& h : {g, d}) {
        std::vector<kernops::VarDecl> vars = decls();
        vars.push_back({"e", Cat::I, 20, f->dim});
        vars.push_back({"w", Cat::I, 21, v->dim});
        const std::string named = kernops::to_string(h, names());
        EXPECT_TRUE(kernops::equal(kernops::parse_expression(named, vars), h)) << named;
        std::vector<kernops::VarDecl> none;
        const std::string inl = kernops::to_string(h);
        EXPECT_TRUE(kernops::equal(kernops::parse_expression(inl, none), h)) << inl;
      }
    }
  }
}

// A few derivatives whose printed form is checked exactly: readable, simplified, sharing
// the node's value where the rule says so.
TEST(Diff, ReadableResults) {
  const NodeP x = var_of("x");
  const NodeP e = dir_e(3);
  auto G = [&](const std::string& s, const NodeP& v, const NodeP& dir) {
    return kernops::to_string(kernops::grad(parse(s), v, dir), names());
  };
  EXPECT_EQ(G("Exp(x)", x, e), "e*Exp(x)");
  EXPECT_EQ(G("x*y", x, e), "e*y");
  EXPECT_EQ(G("x-y", var_of("y"), e), "-e");
  EXPECT_EQ(G("Sum(x)", x, dir_e(1)), "SumT(e,3)");
  EXPECT_EQ(G("a*x", var_of("a"), e), "(e|x)");
  EXPECT_EQ(G("a+x", var_of("a"), e), "Sum(e)");
  EXPECT_EQ(G("SqNorm2(x)", x, dir_e(1)), "2*x*e");
  EXPECT_EQ(G("MatVecMult(A,x)", x, e), "VecMatMult(e,A)");
  EXPECT_EQ(G("Sqrt(x)", x, e), "IfElse(-Abs(x),0,0.5*e/Sqrt(x))");  // 0 at the kink x = 0
  EXPECT_EQ(G("y", x, e), "Zero(3)");
  EXPECT_EQ(G("a*b", x, dir_e(1)), "Zero(3)");
  EXPECT_EQ(kernops::to_string(kernops::diff_forward(parse("Exp(a)*y"), var_of("a"), dir_w(1)), names()),
            "w*Exp(a)*y");
}

TEST(Diff, SharedSubexpressionsAreDifferentiatedOnce) {
  // Two structurally equal copies of SqNorm2(x-y) (built separately by the parser) are one
  // node of the sweep: the gradient mentions SqNorm2(x-y) once.
  const NodeP f = parse("Exp(-SqNorm2(x-y))*SqNorm2(x-y)");
  const NodeP g = kernops::grad(f, var_of("x"), dir_e(1));
  EXPECT_LE(kernops::count_nodes(g), 3 * kernops::count_nodes(f)) << kernops::to_string(g, names());
}

TEST(Diff, Errors) {
  const NodeP f = parse("Exp(x*y)");
  const NodeP x = var_of("x");
  // With respect to something that is not a variable.
  EXPECT_THROW(kernops::grad(f, parse("x*y"), dir_e(3)), kernops::InputError);
  EXPECT_THROW(kernops::diff_forward(f, parse("x+1"), dir_w(3)), kernops::InputError);
  // Direction of the wrong dimension.
  EXPECT_THROW(kernops::grad(f, x, dir_e(1)), kernops::DimensionError);
  EXPECT_THROW(kernops::grad(f, x, dir_e(2)), kernops::DimensionError);
  EXPECT_THROW(kernops::diff_forward(f, x, dir_w(1)), kernops::DimensionError);
  EXPECT_THROW(kernops::diff_forward(parse("Sum(x)"), x, dir_w(2)), kernops::DimensionError);
  // The same through the formula syntax.
  EXPECT_THROW(parse("Grad(Exp(x*y), x*y, x)"), kernops::ParseError);
  EXPECT_THROW(parse("Grad(Exp(x*y), x, a)"), kernops::DimensionError);
  EXPECT_THROW(parse("Diff(Exp(x*y), x, a)"), kernops::DimensionError);
  EXPECT_THROW(parse("Grad(Exp(x*y), x)"), kernops::ParseError);
  // Every error derives from kernops::Error.
  EXPECT_THROW(kernops::grad(f, x, dir_e(1)), kernops::Error);
}

TEST(Diff, VariableNotInFormula) {
  const NodeP g = kernops::grad(parse("Exp(x)"), var_of("t"), dir_e(3));
  EXPECT_EQ(g->op, Op::Zero);
  EXPECT_EQ(g->dim, 3);
  const NodeP d = kernops::diff_forward(parse("Exp(x)*a"), var_of("b"), dir_w(1));
  EXPECT_EQ(d->op, Op::Zero);
  EXPECT_EQ(d->dim, 3);
  // Same position, other category: a different variable.
  const NodeP g2 = kernops::grad(parse("Exp(x)"), kernops::var(Cat::J, 0, 3), dir_e(3));
  EXPECT_EQ(g2->op, Op::Zero);
  // The derivative of a constant formula.
  EXPECT_TRUE(kernops::grad(parse("Exp(2)"), var_of("a"), dir_e(1))->is_const(0.0));
}

// Subgradient conventions at the kinks: ReLU'(0) = Step(0) = 1, Abs'(0) = Sign(0) = 0,
// ties of Min/Max go to the first argument, Clamp's boundaries go to x.
TEST(Diff, KinkConventions) {
  const NodeP a = var_of("a"), b = var_of("b"), e = dir_e(1);
  Env env{{{0, 2}, {0.0}}, {{1, 3}, {0.0}}, {{0, 20}, {1.0}}};
  auto at = [&](const std::string& s, const NodeP& v) { return ref_eval(kernops::grad(parse(s), v, e), env)[0]; };
  EXPECT_EQ(at("ReLU(a)", a), 1.0);
  EXPECT_EQ(at("Abs(a)", a), 0.0);
  EXPECT_EQ(at("Min(a,b)", a), 1.0);
  EXPECT_EQ(at("Min(a,b)", b), 0.0);
  EXPECT_EQ(at("Max(a,b)", a), 1.0);
  EXPECT_EQ(at("Max(a,b)", b), 0.0);
  EXPECT_EQ(at("Clamp(a,b,1)", a), 1.0);  // a == lo
  EXPECT_EQ(at("Clamp(a,b,1)", b), 0.0);
  EXPECT_EQ(at("Clamp(a,-1,b)", a), 1.0);  // a == hi
  EXPECT_EQ(at("Clamp(a,-1,b)", b), 0.0);
  EXPECT_EQ(at("IfElse(a,b,2*b)", b), 1.0);  // condition 0 selects the first branch
  // Sqrt at 0: subgradient 0 (the kink of Norm2), and where Sqrt's argument is negative or
  // NaN the derivative stays NaN.
  EXPECT_EQ(at("Sqrt(a)", a), 0.0);
  EXPECT_TRUE(std::isnan(at("Sqrt(a-1)", a)));
}

// Kernels of the distance r = |x - y| at coincident points, x = y: the Laplace kernel's
// gradient is its subgradient 0, the Matern kernels' is 0 (they are differentiable there);
// the whole derivative used to be 0 * inf = NaN. Away from x = y they match finite
// differences (checked for every op in GradAndDiffOfEveryOpMatchFiniteDifferences).
TEST(Diff, RadialKernelsAtCoincidentPoints) {
  const NodeP x = var_of("x"), y = var_of("y"), e = dir_e(1);
  const Vec p = {0.3, -0.2, 0.7};
  Env env{{{0, 0}, p}, {{1, 1}, p}, {{2, 4}, {2.0}}, {{0, 20}, {1.0}}};
  for (const char* f : {"Exp(-Sqrt(s*SqDist(x,y)))", "Norm2(x-y)", "Matern32Kernel(s,x,y,1)",
                        "Matern52Kernel(s,x,y,1)", "LaplaceKernel(s,x,y,1)"}) {
    for (const NodeP& v : {x, y}) {
      const Vec g = ref_eval(kernops::grad(parse(f), v, e), env);
      ASSERT_EQ(g.size(), 3u) << f;
      for (double gk : g) EXPECT_EQ(gk, 0.0) << f;
    }
  }
  // A step away, the gradient is finite and matches finite differences.
  Env away = env;
  away[{1, 1}] = {0.3, -0.2, 0.7 + 1e-3};
  for (const char* f : {"Matern32Kernel(s,x,y,1)", "Exp(-Sqrt(s*SqDist(x,y)))"}) {
    const Vec g = ref_eval(kernops::grad(parse(f), x, e), away);
    const Vec fd = fd_grad(parse(f), x, {1.0}, away);
    for (int k = 0; k < 3; ++k) EXPECT_NEAR(g[k], fd[k], 1e-6 * (1 + std::fabs(fd[k]))) << f;
  }
}

}  // namespace
