// Symbolic differentiation of formulas (see diff.h).
//
// The chain rule is written once per mode, as a sweep over the formula DAG in topological
// order (section "sweeps" at the end):
//   * reverse mode, grad(F, v, e): the adjoint of F is e; walking from F down to the
//     leaves, each node hands to each argument its vector-Jacobian product (VJP), and the
//     contributions reaching one node are summed;
//   * forward mode, diff_forward(F, v, u): the tangent of v is u; walking from the leaves up
//     to F, each node sums the Jacobian-vector products (JVP) of its arguments' tangents.
// Nodes are memoised by structural equality, so a shared or repeated subexpression is
// visited once, and only nodes that depend on v are differentiated at all.
//
// The per-op rules come in two kinds:
//   * elementwise ops have a diagonal Jacobian, which is its own transpose: one rule,
//     elementwise_partial(n, k, x) = x * dn/da_k (coordinatewise), serves both modes. The
//     sweeps then fix dimension-1 broadcasting: a VJP for a dimension-1 argument of a
//     dimension-d node is summed over the coordinates (Sum), a JVP of a dimension-1 tangent
//     is broadcast to dimension d (SumT);
//   * vector ops have a rectangular Jacobian: vjp_vector (the transpose) and jvp_vector
//     (the op itself, applied to the tangent) are written side by side for each op.
// Rules reuse the node itself where the derivative contains it (Exp, Sqrt, Rsqrt, Inv,
// Div, Powf), so the value is shared with F rather than recomputed. Everything is built
// through the smart constructors of ast.h, which simplify 0*x, 1*x, x+0 and fold constants;
// the few helpers below add the simplifications that matter for derivatives.
// No R headers here.
#include "diff.h"

#include <string>
#include <unordered_map>
#include <vector>

#include "errors.h"

namespace kernops {

namespace {

// ---- small builders with the simplifications derivatives need ----

bool is_zero(const NodeP& n) { return n->op == Op::Zero || n->is_const(0.0); }

NodeP num(double v) { return constant(v); }
NodeP pow_n(const NodeP& a, int n) { return make(Op::Pow, {a}, {n}); }
// Sum(u); Sum(a*b) of two dimension-d factors is (a|b), one op instead of two.
NodeP sum(const NodeP& a) {
  if (a->dim == 1) return a;
  if (a->op == Op::Mul && a->args[0]->dim == a->dim && a->args[1]->dim == a->dim)
    return make(Op::Scalprod, {a->args[0], a->args[1]});
  return make(Op::Sum, {a});
}
NodeP sum_t(const NodeP& a, int d) { return d == 1 ? a : make(Op::SumT, {a}, {d}); }
NodeP scalprod(const NodeP& a, const NodeP& b) { return make(Op::Scalprod, {a, b}); }

// IfElse(c, a, b) = a where c >= 0, else b; both branches zero -> zero, and a constant
// condition picks its branch (broadcast to the node's dimension).
NodeP if_else(const NodeP& c, const NodeP& a, const NodeP& b) {
  NodeP n = make(Op::IfElse, {c, a, b});
  if (is_zero(a) && is_zero(b)) return zero(n->dim);
  if (c->op == Op::Const && c->value == c->value) {  // a NaN condition gives NaN: kept
    const NodeP& pick = c->value >= 0 ? a : b;
    return pick->dim == n->dim ? pick : sum_t(pick, n->dim);
  }
  return n;
}

// Extract / ExtractT of the whole vector are the identity.
NodeP extract(const NodeP& a, int start, int len) {
  if (start == 0 && len == a->dim) return a;
  return make(Op::Extract, {a}, {start, len});
}
NodeP extract_t(const NodeP& a, int start, int dim) {
  if (start == 0 && dim == a->dim) return a;
  return make(Op::ExtractT, {a}, {start, dim});
}

// Brings a contribution to dimension `dim` across dimension-1 broadcasting: a dimension-d
// contribution to a dimension-1 target is summed over its coordinates (the VJP of a
// broadcast), a dimension-1 contribution to a dimension-d target is broadcast (its JVP).
NodeP fit_dim(const NodeP& c, int dim) {
  if (c->dim == dim) return c;
  if (dim == 1) return sum(c);
  if (c->dim == 1) return sum_t(c, dim);
  throw InternalError("derivative of dimension " + std::to_string(c->dim) +
                      " does not fit dimension " + std::to_string(dim));
}

// acc + c, where a null acc means "no contribution yet" and zero contributions are skipped.
void accumulate(NodeP& acc, const NodeP& c) {
  if (!c || is_zero(c)) return;
  acc = acc ? add(acc, c) : c;
}

// ---- elementwise rules, shared by both modes ----
// x * dn/da_k, coordinatewise, for an elementwise node n with arguments a, b, c; x is the
// incoming gradient (reverse mode, dimension of n) or the tangent of a_k (forward mode,
// dimension of a_k). Returns nullptr when the partial derivative is identically zero.
// Dimension-1 broadcasting of the result is fixed by the caller (fit_dim).
NodeP elementwise_partial(const NodeP& n, int k, const NodeP& x) {
  const std::vector<NodeP>& arg = n->args;
  switch (n->op) {
    // d(-u) = -du
    case Op::Neg:
      return neg(x);
    // d Exp(u) = Exp(u) du                      (the node itself is the factor)
    case Op::Exp:
      return mul(x, n);
    // d Log(u) = du / u
    case Op::Log:
      return mul(x, unary(Op::Inv, arg[0]));
    // d Log1p(u) = du / (1 + u)
    case Op::Log1p:
      return mul(x, unary(Op::Inv, add(num(1), arg[0])));
    // d Expm1(u) = Exp(u) du
    case Op::Expm1:
      return mul(x, unary(Op::Exp, arg[0]));
    // d Sqrt(u) = du / (2 Sqrt(u))              (reuses Sqrt(u)), and 0 where u = 0: the
    // subgradient at the kink of Norm2(x - y) = Sqrt(SqNorm2(x - y)), so that the gradients
    // of the Laplace and Matern kernels are 0 where two points coincide, not 0 * inf = NaN
    // (KeOps gets the same from Rsqrt(0) = 0). u < 0 or NaN still gives NaN.
    case Op::Sqrt:
      return if_else(neg(unary(Op::Abs, arg[0])), num(0), div(mul(num(0.5), x), n));
    // d Rsqrt(u) = d u^(-1/2) = -1/2 u^(-3/2) du = -0.5 Rsqrt(u)^3 du
    case Op::Rsqrt:
      return mul(mul(num(-0.5), x), pow_n(n, 3));
    // d Inv(u) = -du / u^2 = -Inv(u)^2 du
    case Op::Inv:
      return neg(mul(x, unary(Op::Square, n)));
    // d Abs(u) = Sign(u) du                     (subgradient 0 at u = 0)
    case Op::Abs:
      return mul(x, unary(Op::Sign, arg[0]));
    // Sign and Step are piecewise constant: zero derivative (almost everywhere)
    case Op::Sign:
    case Op::Step:
      return nullptr;
    // d Sin(u) = Cos(u) du
    case Op::Sin:
      return mul(x, unary(Op::Cos, arg[0]));
    // d Cos(u) = -Sin(u) du
    case Op::Cos:
      return neg(mul(x, unary(Op::Sin, arg[0])));
    // d ReLU(u) = Step(u) du                    (subgradient 1 at u = 0, as Step(0) = 1)
    case Op::ReLU:
      return mul(x, unary(Op::Step, arg[0]));
    // d Square(u) = 2 u du
    case Op::Square:
      return mul(mul(num(2), arg[0]), x);
    // d Pow(u, p) = p Pow(u, p-1) du            (p integer, possibly negative; Pow(u,0) = 1)
    case Op::Pow: {
      const int p = n->params[0];
      if (p == 0) return nullptr;
      return mul(mul(num(p), pow_n(arg[0], p - 1)), x);
    }
    // d(a + b) = da + db
    case Op::Add:
      return x;
    // d(a - b) = da - db
    case Op::Sub:
      return k == 0 ? x : neg(x);
    // d(a * b) = b da + a db
    case Op::Mul:
      return mul(x, arg[1 - k]);
    // d(a / b) = da / b - (a / b^2) db = da / b - (a/b) db / b     (reuses a/b)
    case Op::Div:
      return k == 0 ? div(x, arg[1]) : neg(div(mul(x, n), arg[1]));
    // Min(a, b) = b < a ? b : a: the derivative of the selected argument; a is selected
    // where b - a >= 0, so ties go to the first argument.
    case Op::Min: {
      NodeP c = sub(arg[1], arg[0]);
      return k == 0 ? if_else(c, x, num(0)) : if_else(c, num(0), x);
    }
    // Max(a, b) = b > a ? b : a: a is selected where a - b >= 0 (ties to the first).
    case Op::Max: {
      NodeP c = sub(arg[0], arg[1]);
      return k == 0 ? if_else(c, x, num(0)) : if_else(c, num(0), x);
    }
    // d Powf(a, b) = b Powf(a, b-1) da + Log(a) Powf(a, b) db      (reuses Powf(a, b))
    case Op::Powf:
      if (k == 0) return mul(mul(arg[1], make(Op::Powf, {arg[0], sub(arg[1], num(1))})), x);
      return mul(mul(unary(Op::Log, arg[0]), n), x);
    // IfElse(c, a, b) = a where c >= 0, else b: c gets nothing (piecewise constant),
    // a gets the derivative where c >= 0, b where c < 0.
    case Op::IfElse:
      if (k == 0) return nullptr;
      return k == 1 ? if_else(arg[0], x, num(0)) : if_else(arg[0], num(0), x);
    // Clamp(u, lo, hi) = u < lo ? lo : (u > hi ? hi : u): each argument gets the
    // derivative where it is selected: lo where u - lo < 0; otherwise hi where hi - u < 0,
    // else u.
    case Op::Clamp: {
      NodeP above_lo = sub(arg[0], arg[1]);  // >= 0: not clamped to lo
      NodeP below_hi = sub(arg[2], arg[0]);  // >= 0: not clamped to hi
      if (k == 0) return if_else(above_lo, if_else(below_hi, x, num(0)), num(0));
      if (k == 1) return if_else(above_lo, num(0), x);
      return if_else(above_lo, if_else(below_hi, num(0), x), num(0));
    }
    default:
      throw InternalError(std::string("no elementwise derivative rule for ") + op_info(n->op).name);
  }
}

// ---- vector ops: VJP (transpose) and JVP, side by side ----
// vjp_vector(n, k, g): the contribution to the adjoint of argument k, of its dimension,
// given the adjoint g of n (dimension of n). jvp_vector(n, k, t): the tangent of n due to
// the tangent t of argument k (dimension of n). Each op has a Jacobian J_k and the rules
// are g -> J_k^T g and t -> J_k t.

NodeP vjp_vector(const NodeP& n, int k, const NodeP& g) {
  const std::vector<NodeP>& arg = n->args;
  switch (n->op) {
    // Sum(u) = sum_l u_l: every coordinate gets g (a scalar)
    case Op::Sum:
      return sum_t(g, arg[0]->dim);
    // SumT(u, d) = (u, ..., u): u gets sum_l g_l
    case Op::SumT:
      return sum(g);
    // SqNorm2(u) = (u|u): d = 2 (u|du) => gu += 2 u g
    case Op::SqNorm2:
      return mul(mul(num(2), arg[0]), g);
    // (a|b): d = (da|b) + (a|db) => ga += g b, gb += g a
    case Op::Scalprod:
      return mul(g, arg[1 - k]);
    // Elem(u, i) = u_i => gu += g at coordinate i: ElemT(g, dim u, i)
    case Op::Elem:
      return make(Op::ElemT, {g}, {arg[0]->dim, n->params[0]});
    // ElemT(u, d, i) = u at coordinate i of a zero vector => gu += g_i
    case Op::ElemT:
      return make(Op::Elem, {g}, {n->params[1]});
    // Extract(u, s, len) = u[s, s+len) => gu += g placed at [s, s+len): ExtractT(g, s, dim u)
    case Op::Extract:
      return extract_t(g, n->params[0], arg[0]->dim);
    // ExtractT(u, s, d) = u placed at [s, s+len) => gu += g[s, s+len)
    case Op::ExtractT:
      return extract(g, n->params[0], arg[0]->dim);
    // Concat(a, b) = (a, b) => ga += g[0, dim a), gb += g[dim a, dim a + dim b)
    case Op::Concat:
      return k == 0 ? extract(g, 0, arg[0]->dim) : extract(g, arg[0]->dim, arg[1]->dim);
    // MatVecMult(A, v) = A v, A m x n row-major:
    //   d = dA v + A dv => gA += g v^T = TensorProd(g, v), gv += A^T g = VecMatMult(g, A)
    case Op::MatVecMult:
      return k == 0 ? make(Op::TensorProd, {g, arg[1]}) : make(Op::VecMatMult, {g, arg[0]});
    // VecMatMult(v, A) = v^T A, A n x m row-major:
    //   d = dv^T A + v^T dA => gv += A g = MatVecMult(A, g), gA += v g^T = TensorProd(v, g)
    case Op::VecMatMult:
      return k == 0 ? make(Op::MatVecMult, {arg[1], g}) : make(Op::TensorProd, {arg[0], g});
    // TensorProd(a, b) = a b^T (p x q, row-major): out[k*q+l] = a_k b_l
    //   => ga += G b = MatVecMult(g, b), gb += G^T a = VecMatMult(a, g), G = g as p x q
    case Op::TensorProd:
      return k == 0 ? make(Op::MatVecMult, {g, arg[1]}) : make(Op::VecMatMult, {arg[0], g});
    default:
      throw InternalError(std::string("no reverse-mode rule for ") + op_info(n->op).name);
  }
}

NodeP jvp_vector(const NodeP& n, int k, const NodeP& t) {
  const std::vector<NodeP>& arg = n->args;
  // Ops linear in each argument: the tangent is the op applied with t in slot k.
  auto with_t = [&]() {
    std::vector<NodeP> a = arg;
    a[k] = t;
    return make(n->op, std::move(a), n->params);
  };
  switch (n->op) {
    // Sum, SumT, Elem, ElemT, Extract, ExtractT are linear: d op(u) = op(du).
    // (a|b), MatVecMult, VecMatMult, TensorProd are bilinear: d op(a, b) = op(da, b) + op(a, db).
    case Op::Sum: case Op::SumT: case Op::Elem: case Op::ElemT: case Op::Extract:
    case Op::ExtractT: case Op::Scalprod: case Op::MatVecMult: case Op::VecMatMult:
    case Op::TensorProd:
      return with_t();
    // d SqNorm2(u) = 2 (u|du)
    case Op::SqNorm2:
      return mul(num(2), scalprod(arg[0], t));
    // d Concat(a, b) = (da, 0) + (0, db)
    case Op::Concat:
      return extract_t(t, k == 0 ? 0 : arg[0]->dim, n->dim);
    default:
      throw InternalError(std::string("no forward-mode rule for ") + op_info(n->op).name);
  }
}

// ---- sweeps ----

// The DAG below f in topological order (arguments before the nodes using them), with
// structurally equal nodes merged, and for each node whether it depends on the variable v.
struct Dag {
  std::vector<NodeP> order;
  std::vector<std::vector<int>> args;  // index in `order` of each argument
  std::vector<bool> depends;
};

Dag topo_sort(const NodeP& f, const NodeP& v) {
  Dag dag;
  std::unordered_map<NodeP, int, NodeHash, NodeEq> index;  // -1: on the stack
  // Iterative post-order DFS (formulas can be deep chains).
  struct Frame {
    NodeP node;
    size_t next;
  };
  std::vector<Frame> stack{{f, 0}};
  index.emplace(f, -1);
  while (!stack.empty()) {
    Frame& top = stack.back();
    if (top.next < top.node->args.size()) {
      const NodeP& c = top.node->args[top.next++];
      if (index.emplace(c, -1).second) stack.push_back({c, 0});
      continue;
    }
    NodeP n = top.node;
    stack.pop_back();
    std::vector<int> a;
    bool dep = n->op == Op::Var && equal(n, v);
    for (const auto& c : n->args) {
      int i = index.at(c);
      a.push_back(i);
      dep = dep || dag.depends[i];
    }
    index[n] = static_cast<int>(dag.order.size());
    dag.order.push_back(n);
    dag.args.push_back(std::move(a));
    dag.depends.push_back(dep);
  }
  return dag;
}

void check_variable(const char* what, const NodeP& v) {
  if (v->op != Op::Var)
    throw InputError(std::string(what) +
                     ": can only differentiate with respect to a variable (Vi, Vj or Pm), got " +
                     to_string(v));
}

}  // namespace

NodeP grad(const NodeP& f, const NodeP& v, const NodeP& e) {
  check_variable("Grad", v);
  if (e->dim != f->dim)
    throw DimensionError("Grad: the direction has dimension " + std::to_string(e->dim) +
                         " but the formula has dimension " + std::to_string(f->dim));
  Dag dag = topo_sort(f, v);
  const int root = static_cast<int>(dag.order.size()) - 1;
  if (!dag.depends[root]) return zero(v->dim);

  // adj[i]: the adjoint (gradient of <e, F> with respect to node i), null while zero.
  std::vector<NodeP> adj(dag.order.size());
  adj[root] = e;
  NodeP result;
  for (int i = root; i >= 0; --i) {
    const NodeP& n = dag.order[i];
    const NodeP g = adj[i];
    if (!g || is_zero(g) || !dag.depends[i]) continue;
    if (n->op == Op::Var) {  // depends => it is v
      accumulate(result, g);
      continue;
    }
    const bool elementwise = op_info(n->op).elementwise;
    for (size_t k = 0; k < n->args.size(); ++k) {
      const int a = dag.args[i][k];
      if (!dag.depends[a]) continue;
      NodeP c = elementwise ? elementwise_partial(n, static_cast<int>(k), g)
                            : vjp_vector(n, static_cast<int>(k), g);
      if (c) accumulate(adj[a], fit_dim(c, n->args[k]->dim));
    }
    adj[i] = nullptr;  // no longer needed
  }
  if (!result) return zero(v->dim);
  return fit_dim(result, v->dim);
}

NodeP diff_forward(const NodeP& f, const NodeP& v, const NodeP& u) {
  check_variable("Diff", v);
  if (u->dim != v->dim)
    throw DimensionError("Diff: the direction has dimension " + std::to_string(u->dim) +
                         " but the variable has dimension " + std::to_string(v->dim));
  Dag dag = topo_sort(f, v);
  // tan[i]: the tangent of node i, null while zero.
  std::vector<NodeP> tan(dag.order.size());
  for (size_t i = 0; i < dag.order.size(); ++i) {
    if (!dag.depends[i]) continue;
    const NodeP& n = dag.order[i];
    if (n->op == Op::Var) {  // depends => it is v
      tan[i] = u;
      continue;
    }
    const bool elementwise = op_info(n->op).elementwise;
    NodeP t;
    for (size_t k = 0; k < n->args.size(); ++k) {
      const NodeP& tk = tan[dag.args[i][k]];
      if (!tk || is_zero(tk)) continue;
      NodeP c = elementwise ? elementwise_partial(n, static_cast<int>(k), tk)
                            : jvp_vector(n, static_cast<int>(k), tk);
      if (c) accumulate(t, fit_dim(c, n->dim));
    }
    tan[i] = t;
  }
  const NodeP& t = tan.back();
  return t ? t : zero(f->dim);
}

}  // namespace kernops
