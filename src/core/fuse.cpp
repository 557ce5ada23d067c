// Recognition of radial kernels at plan time (see fuse.h).
#include "fuse.h"

#include <unordered_map>

#include "plan.h"

namespace kernops {

const char* radial_name(RadialKind k) {
  static const char* const kNames[kRadialKinds] = {"Gauss", "Laplace", "Cauchy", "InvMultiquadric",
                                                   "Matern32", "Matern52"};
  return kNames[static_cast<int>(k)];
}

const char* radial_cuda(RadialKind k) {
  static const char* const kPhi[kRadialKinds] = {
      "phi = exp(r2 * s);",
      "phi = exp(-sqrt(r2 * s));",
      "phi = T(1) / (c + r2 * s);",
      "phi = T(1) / sqrt(c + r2 * s);",
      "const T a = -sqrt(r2 * s); phi = (T(1) - a) * exp(a);",
      "const T a = -sqrt(r2 * s); phi = ((T(1) - a) + (a * a) * T(1.0 / 3)) * exp(a);",
  };
  return kPhi[static_cast<int>(k)];
}

namespace {

constexpr int kLevelP = 0, kLevelI = 1, kLevelJ = 2;

// s * |x - y|^2 with x i-only, y j-only, s parameter-only (s = 1 when absent).
struct ScaledDist {
  NodeP x, y, s;
};

class Matcher {
 public:
  explicit Matcher(const std::function<int(const NodeP&)>& level) : level_(level) {}

  // The tree with every radial kernel fused, memoised so shared subtrees stay shared.
  NodeP rewrite(const NodeP& n) {
    auto it = memo_.find(n.get());
    if (it != memo_.end()) return it->second;
    NodeP out = match(n);
    if (!out) {
      std::vector<NodeP> a;
      bool same = true;
      for (const auto& c : n->args) {
        a.push_back(rewrite(c));
        same = same && a.back().get() == c.get();
      }
      out = same ? n : make(n->op, std::move(a), n->params);
    }
    memo_[n.get()] = out;
    return out;
  }

 private:
  bool param_scalar(const NodeP& n) const { return n->dim == 1 && level_(n) == kLevelP; }

  // |x-y|^2 (SqNorm2 of a difference of an i-only and a j-only value), scaled by products
  // and negations of parameter-only scalars: s*r2, r2*s, -(r2), s1*(s2*r2), ...
  bool scaled_dist(const NodeP& n, ScaledDist* out) const {
    if (n->op == Op::SqNorm2 && n->args[0]->op == Op::Sub) {
      NodeP x = n->args[0]->args[0], y = n->args[0]->args[1];
      // High dimensions: the engine's blocked distances beat fusion (plan.h).
      if (x->dim != y->dim || x->dim >= kBlockedSqDistDim) return false;
      if (level_(x) == kLevelJ && level_(y) == kLevelI) std::swap(x, y);  // |x-y| = |y-x|
      if (level_(x) != kLevelI || level_(y) != kLevelJ) return false;
      *out = {x, y, constant(1)};
      return true;
    }
    if (n->op == Op::Neg && scaled_dist(n->args[0], out)) {
      out->s = neg(out->s);
      return true;
    }
    if (n->op == Op::Mul)
      for (int k = 0; k < 2; ++k)
        if (param_scalar(n->args[k]) && scaled_dist(n->args[1 - k], out)) {
          out->s = mul(n->args[k], out->s);
          return true;
        }
    return false;
  }

  // Sqrt(s*r2): the v of the Laplace and Matern kernels.
  bool sqrt_dist(const NodeP& n, ScaledDist* out) const {
    return n->op == Op::Sqrt && scaled_dist(n->args[0], out);
  }

  // c + s*r2 in either order, c parameter-only.
  bool offset_dist(const NodeP& n, ScaledDist* out, NodeP* c) const {
    if (n->op != Op::Add) return false;
    for (int k = 0; k < 2; ++k)
      if (param_scalar(n->args[k]) && scaled_dist(n->args[1 - k], out)) {
        *c = n->args[k];
        return true;
      }
    return false;
  }

  // The Matern polynomial in v: 1 + v (nu = 3/2) or (1 + v) + Square(v)*(1/3) (nu = 5/2),
  // as the parser's Matern32Kernel / Matern52Kernel spell them after the planner's rewrites.
  int matern_poly(const NodeP& p, const NodeP& v) const {
    auto one_plus_v = [&](const NodeP& q) {
      return q->op == Op::Add && ((q->args[0]->is_const(1) && equal(q->args[1], v)) ||
                                  (q->args[1]->is_const(1) && equal(q->args[0], v)));
    };
    if (one_plus_v(p)) return 32;
    if (p->op != Op::Add) return 0;
    for (int k = 0; k < 2; ++k) {
      const NodeP& t = p->args[1 - k];
      if (!one_plus_v(p->args[k]) || t->op != Op::Mul) continue;
      for (int q = 0; q < 2; ++q)
        if (t->args[q]->op == Op::Square && equal(t->args[q]->args[0], v) && t->args[1 - q]->is_const(1.0 / 3))
          return 52;
    }
    return 0;
  }

  NodeP fused(RadialKind kind, const ScaledDist& d, const NodeP& c) {
    return make(Op::RadialKernel, {rewrite(d.x), rewrite(d.y), rewrite(d.s), c ? rewrite(c) : constant(0)},
                {static_cast<int>(kind)});
  }

  // The fused node for n, or nullptr when n is not a radial kernel.
  NodeP match(const NodeP& n) {
    ScaledDist d;
    NodeP c;
    switch (n->op) {
      case Op::Exp: {
        const NodeP& u = n->args[0];
        if (scaled_dist(u, &d)) return fused(RadialKind::Gauss, d, nullptr);
        if (u->op == Op::Neg && sqrt_dist(u->args[0], &d)) return fused(RadialKind::Laplace, d, nullptr);
        return nullptr;
      }
      case Op::Inv:
        if (offset_dist(n->args[0], &d, &c)) return fused(RadialKind::Cauchy, d, c);
        return nullptr;
      case Op::Rsqrt:
        if (offset_dist(n->args[0], &d, &c)) return fused(RadialKind::InvMultiquadric, d, c);
        return nullptr;
      case Op::Mul:  // poly(v) * Exp(-v)
        for (int k = 0; k < 2; ++k) {
          const NodeP& e = n->args[k];
          if (e->op != Op::Exp || e->args[0]->op != Op::Neg) continue;
          const NodeP& v = e->args[0]->args[0];
          if (!sqrt_dist(v, &d)) continue;
          const int m = matern_poly(n->args[1 - k], v);
          if (m) return fused(m == 32 ? RadialKind::Matern32 : RadialKind::Matern52, d, nullptr);
        }
        return nullptr;
      default:
        return nullptr;
    }
  }

  const std::function<int(const NodeP&)>& level_;
  std::unordered_map<const Node*, NodeP> memo_;
};

}  // namespace

NodeP fuse_radial_kernels(const NodeP& root, const std::function<int(const NodeP&)>& level) {
  Matcher m(level);
  return m.rewrite(root);
}

}  // namespace kernops
