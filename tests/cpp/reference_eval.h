// Test-only reference evaluator: computes a formula (NodeP) for one set of variable values,
// in double, with the plainest possible code (std:: maths, no vectorisation), as an
// independent oracle for the engine and for the derivative tests. NaN follows R: an
// elementwise op with a NaN argument is NaN. Values are memoised per
// node so shared DAGs (gradients) evaluate in linear time.
#pragma once
#include <cmath>
#include <map>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ast.h"

namespace kernops_test {

using Vec = std::vector<double>;
// Values of the variables, keyed by (category, position) as in Node::params.
using Env = std::map<std::pair<int, int>, Vec>;

class RefEval {
 public:
  explicit RefEval(const Env& env) : env_(env) {}

  const Vec& operator()(const kernops::NodeP& n) {
    auto it = memo_.find(n.get());
    if (it != memo_.end()) return it->second;
    Vec v = compute(n);
    if (static_cast<int>(v.size()) != n->dim)
      throw std::logic_error("reference evaluator: wrong size for " + kernops::to_string(n));
    return memo_.emplace(n.get(), std::move(v)).first->second;
  }

 private:
  Vec compute(const kernops::NodeP& n) {
    using kernops::Op;
    const int d = n->dim;
    Vec out(d, 0.0);
    // Argument k at coordinate l, with dimension-1 broadcasting.
    std::vector<const Vec*> a;
    for (const auto& c : n->args) a.push_back(&(*this)(c));
    auto at = [&](size_t k, int l) { return a[k]->size() == 1 ? (*a[k])[0] : (*a[k])[l]; };
    const std::vector<int>& p = n->params;
    switch (n->op) {
      case Op::Var: {
        auto it = env_.find({p[0], p[1]});
        if (it == env_.end() || static_cast<int>(it->second.size()) != d)
          throw std::logic_error("reference evaluator: no value for " + kernops::to_string(n));
        return it->second;
      }
      case Op::Const: out[0] = n->value; return out;
      case Op::Zero: return out;
      default: break;
    }
    if (kernops::op_info(n->op).elementwise) {
      for (int l = 0; l < d; ++l) {
        const double x = at(0, l);
        const double y = a.size() > 1 ? at(1, l) : 0.0;
        const double z = a.size() > 2 ? at(2, l) : 0.0;
        double r = 0;
        switch (n->op) {
          case Op::Neg: r = -x; break;
          case Op::Exp: r = std::exp(x); break;
          case Op::Log: r = std::log(x); break;
          case Op::Sqrt: r = std::sqrt(x); break;
          case Op::Rsqrt: r = 1 / std::sqrt(x); break;
          case Op::Inv: r = 1 / x; break;
          case Op::Abs: r = std::fabs(x); break;
          case Op::Sign: r = std::isnan(x) ? x : (x > 0 ? 1 : (x < 0 ? -1 : 0)); break;
          case Op::Sin: r = std::sin(x); break;
          case Op::Cos: r = std::cos(x); break;
          case Op::Step: r = std::isnan(x) ? x : (x >= 0 ? 1 : 0); break;
          case Op::ReLU: r = std::isnan(x) ? x : (x >= 0 ? x : 0); break;
          case Op::Square: r = x * x; break;
          case Op::Log1p: r = std::log1p(x); break;
          case Op::Expm1: r = std::expm1(x); break;
          case Op::Pow: r = std::pow(x, p[0]); break;
          case Op::Add: r = x + y; break;
          case Op::Sub: r = x - y; break;
          case Op::Mul: r = x * y; break;
          case Op::Div: r = x / y; break;
          case Op::Min: r = std::isnan(x) || std::isnan(y) ? NAN : (y < x ? y : x); break;
          case Op::Max: r = std::isnan(x) || std::isnan(y) ? NAN : (y > x ? y : x); break;
          case Op::Powf: r = std::pow(x, y); break;
          case Op::IfElse: r = std::isnan(x) ? x : (x >= 0 ? y : z); break;
          case Op::Clamp: r = std::isnan(y) || std::isnan(z) ? NAN : (x < y ? y : (x > z ? z : x)); break;
          default: throw std::logic_error("reference evaluator: unknown elementwise op");
        }
        out[l] = r;
      }
      return out;
    }
    const Vec& u = *a[0];
    switch (n->op) {
      case Op::Sum:
        for (double x : u) out[0] += x;
        break;
      case Op::SumT:
        for (int l = 0; l < d; ++l) out[l] = u[0];
        break;
      case Op::SqNorm2:
        for (double x : u) out[0] += x * x;
        break;
      case Op::Scalprod:
        for (size_t l = 0; l < u.size(); ++l) out[0] += u[l] * (*a[1])[l];
        break;
      case Op::Elem: out[0] = u[p[0]]; break;
      case Op::ElemT: out[p[1]] = u[0]; break;
      case Op::Extract:
        for (int l = 0; l < p[1]; ++l) out[l] = u[p[0] + l];
        break;
      case Op::ExtractT:
        for (size_t l = 0; l < u.size(); ++l) out[p[0] + l] = u[l];
        break;
      case Op::Concat:
        for (size_t l = 0; l < u.size(); ++l) out[l] = u[l];
        for (size_t l = 0; l < a[1]->size(); ++l) out[u.size() + l] = (*a[1])[l];
        break;
      case Op::MatVecMult: {  // A (m x n) v
        const Vec& v = *a[1];
        const size_t nn = v.size();
        for (int i = 0; i < d; ++i)
          for (size_t j = 0; j < nn; ++j) out[i] += u[i * nn + j] * v[j];
        break;
      }
      case Op::VecMatMult: {  // v^T A (n x m)
        const Vec& A = *a[1];
        for (size_t i = 0; i < u.size(); ++i)
          for (int j = 0; j < d; ++j) out[j] += u[i] * A[i * d + j];
        break;
      }
      case Op::TensorProd: {
        const Vec& b = *a[1];
        for (size_t i = 0; i < u.size(); ++i)
          for (size_t j = 0; j < b.size(); ++j) out[i * b.size() + j] = u[i] * b[j];
        break;
      }
      default:
        throw std::logic_error("reference evaluator: unknown op");
    }
    return out;
  }

  const Env& env_;
  std::unordered_map<const kernops::Node*, Vec> memo_;
};

inline Vec ref_eval(const kernops::NodeP& n, const Env& env) { return RefEval(env)(n); }

}  // namespace kernops_test
