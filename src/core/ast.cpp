// Smart constructors, structural equality and printing of the formula AST (see ast.h).
#include "ast.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cstdint>
#include <unordered_map>

#include "errors.h"
#include "scalar_ops.h"

namespace kernops {

namespace {

std::size_t mix(std::size_t h, std::size_t v) {
  return h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}

NodeP finish(Node n) {
  std::size_t h = std::hash<int>()(static_cast<int>(n.op));
  h = mix(h, static_cast<std::size_t>(n.dim));
  for (int p : n.params) h = mix(h, std::hash<int>()(p));
  if (n.op == Op::Const) {
    std::uint64_t bits;
    std::memcpy(&bits, &n.value, sizeof bits);
    h = mix(h, std::hash<std::uint64_t>()(bits));
  }
  for (const auto& a : n.args) {
    h = mix(h, a->hash);
    n.depth = std::max(n.depth, a->depth + 1);
  }
  if (n.depth > kMaxDepth)
    throw ParseError("the formula is nested more than " + std::to_string(kMaxDepth) + " operations deep", -1, "", "",
                     kParseNesting);
  n.hash = h;
  return std::make_shared<const Node>(std::move(n));
}

bool is_zero(const NodeP& n) { return n->op == Op::Zero || n->is_const(0.0); }
bool is_one(const NodeP& n) { return n->is_const(1.0); }

// Ops for which a zero argument (any of them) makes the whole result zero.
bool zero_absorbing(Op op) {
  switch (op) {
    case Op::Neg: case Op::Abs: case Op::Sign: case Op::Sin: case Op::ReLU: case Op::Square: case Op::Log1p: case Op::Expm1:
    case Op::Mul: case Op::Sum: case Op::SumT: case Op::SqNorm2: case Op::Scalprod:
    case Op::Elem: case Op::ElemT: case Op::Extract: case Op::ExtractT:
    case Op::MatVecMult: case Op::VecMatMult: case Op::TensorProd:
      return true;
    default:
      return false;
  }
}

// Folds an elementwise op whose arguments are all constants; false if not applicable.
bool fold_constants(Op op, const std::vector<NodeP>& a, const std::vector<int>& p, double* out) {
  for (const auto& x : a)
    if (x->op != Op::Const) return false;
  if (op == Op::Pow) {
    *out = pow_int(a[0]->value, p[0]);
    return true;
  }
  if (a.size() == 1) return visit_unary(op, [&](auto t) { *out = decltype(t)::f(a[0]->value); });
  if (a.size() == 2)
    return visit_binary(op, [&](auto t) { *out = decltype(t)::f(a[0]->value, a[1]->value); });
  if (a.size() == 3)
    return visit_ternary(
        op, [&](auto t) { *out = decltype(t)::f(a[0]->value, a[1]->value, a[2]->value); });
  return false;
}

}  // namespace

bool equal(const NodeP& a, const NodeP& b) {
  if (a.get() == b.get()) return true;
  if (a->hash != b->hash || a->op != b->op || a->dim != b->dim || a->params != b->params ||
      a->args.size() != b->args.size())
    return false;
  if (a->op == Op::Const && std::memcmp(&a->value, &b->value, sizeof(double)) != 0) return false;
  for (size_t k = 0; k < a->args.size(); ++k)
    if (!equal(a->args[k], b->args[k])) return false;
  return true;
}

NodeP var(Cat cat, int pos, int dim) {
  if (dim < 1) throw DimensionError("variable dimension must be >= 1, got " + std::to_string(dim));
  Node n{Op::Var, dim, {}, {static_cast<int>(cat), pos}};
  return finish(std::move(n));
}

NodeP constant(double v) {
  Node n{Op::Const, 1, {}, {}};
  n.value = v;
  return finish(std::move(n));
}

NodeP zero(int dim) {
  if (dim == 1) return constant(0.0);  // one spelling for the scalar zero
  Node n{Op::Zero, dim, {}, {dim}};
  return finish(std::move(n));
}

NodeP make(Op op, std::vector<NodeP> args, std::vector<int> params, long pos) {
  const OpInfo& info = op_info(op);
  if (static_cast<int>(args.size()) != info.nargs || static_cast<int>(params.size()) != info.nparams)
    throw InternalError(std::string("wrong arity building ") + info.name);
  if (op == Op::Zero) return zero(params[0]);
  std::vector<int> dims;
  for (const auto& a : args) dims.push_back(a->dim);
  const int dim = infer_dim(op, dims, params, pos);

  // ---- simplifications; each must be idempotent so that parse(print(f)) == f ----
  double folded;
  if (dim == 1 && fold_constants(op, args, params, &folded)) return constant(folded);  // 2*3 -> 6
  if (zero_absorbing(op))
    for (const auto& a : args)
      if (is_zero(a)) return zero(dim);  // 0*f -> 0, Sum(0) -> 0, ...
  switch (op) {
    case Op::Neg:
      if (args[0]->op == Op::Neg) return args[0]->args[0];  // -(-f) -> f
      break;
    case Op::Add:  // 0+f -> f, f+0 -> f (when no broadcast is lost)
      if (is_zero(args[0]) && args[1]->dim == dim) return args[1];
      if (is_zero(args[1]) && args[0]->dim == dim) return args[0];
      break;
    case Op::Sub:
      if (is_zero(args[1]) && args[0]->dim == dim) return args[0];  // f-0 -> f
      if (is_zero(args[0]) && args[1]->dim == dim) return neg(args[1]);  // 0-f -> -f
      break;
    case Op::Mul:  // 1*f -> f, f*1 -> f
      if (is_one(args[0]) && args[1]->dim == dim) return args[1];
      if (is_one(args[1]) && args[0]->dim == dim) return args[0];
      break;
    case Op::Div:
      if (is_one(args[1]) && args[0]->dim == dim) return args[0];  // f/1 -> f
      if (is_zero(args[0])) return zero(dim);                      // 0/f -> 0
      break;
    case Op::Pow:
      if (params[0] == 1) return args[0];  // Pow(f,1) -> f
      break;
    default:
      break;
  }
  Node n{op, dim, std::move(args), std::move(params)};
  return finish(std::move(n));
}

// ---- tree walks; memoised on node identity so shared subtrees stay shared ----

NodeP map_vars(const NodeP& root, const std::function<NodeP(const NodeP&)>& f) {
  std::unordered_map<const Node*, NodeP> memo;
  std::function<NodeP(const NodeP&)> go = [&](const NodeP& n) -> NodeP {
    auto it = memo.find(n.get());
    if (it != memo.end()) return it->second;
    NodeP out;
    if (n->op == Op::Var) {
      out = f(n);
    } else if (n->args.empty()) {
      out = n;
    } else {
      std::vector<NodeP> a;
      bool same = true;
      for (const auto& c : n->args) {
        a.push_back(go(c));
        same = same && a.back().get() == c.get();
      }
      out = same ? n : make(n->op, std::move(a), n->params);
    }
    memo[n.get()] = out;
    return out;
  };
  return go(root);
}

NodeP substitute(const NodeP& root, const NodeP& from, const NodeP& to) {
  std::unordered_map<const Node*, NodeP> memo;
  std::function<NodeP(const NodeP&)> go = [&](const NodeP& n) -> NodeP {
    if (equal(n, from)) return to;
    auto it = memo.find(n.get());
    if (it != memo.end()) return it->second;
    NodeP out = n;
    if (!n->args.empty()) {
      std::vector<NodeP> a;
      bool same = true;
      for (const auto& c : n->args) {
        a.push_back(go(c));
        same = same && a.back().get() == c.get();
      }
      if (!same) out = make(n->op, std::move(a), n->params);
    }
    memo[n.get()] = out;
    return out;
  };
  return go(root);
}

std::vector<NodeP> collect_vars(const NodeP& root) {
  std::vector<NodeP> out;
  std::unordered_map<const Node*, bool> seen;
  std::function<void(const NodeP&)> go = [&](const NodeP& n) {
    if (seen[n.get()]) return;
    seen[n.get()] = true;
    if (n->op == Op::Var) {
      for (const auto& v : out)
        if (equal(v, n)) return;
      out.push_back(n);
    }
    for (const auto& c : n->args) go(c);
  };
  go(root);
  return out;
}

std::size_t count_nodes(const NodeP& root) {
  std::unordered_map<NodeP, bool, NodeHash, NodeEq> seen;
  std::function<void(const NodeP&)> go = [&](const NodeP& n) {
    if (!seen.emplace(n, true).second) return;
    for (const auto& c : n->args) go(c);
  };
  go(root);
  return seen.size();
}

// ---- printing ----

std::string format_number(double v) {
  // Non-finite constants print as expressions that fold back to them.
  if (std::isnan(v)) return "(0/0)";
  if (std::isinf(v)) return v > 0 ? "(1/0)" : "(-1/0)";
  char buf[40];
  for (int prec : {15, 17}) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

namespace {

// Precedence levels: 1 = + -, 2 = * /, 3 = unary minus, 4 = atoms.
int precedence(const Node& n) {
  switch (n.op) {
    case Op::Add: case Op::Sub: return 1;
    case Op::Mul: case Op::Div: return 2;
    case Op::Neg: return 3;
    case Op::Const: return n.value < 0 || std::signbit(n.value) ? 3 : 4;
    default: return 4;
  }
}

// Printing appends to one string: returning and concatenating a string per node cost
// time quadratic in the output (a 75 MB formula took 12 s).
void print(const NodeP& n, const VarNames& names, std::string& out);

std::string leaf_text(const Node& n, const VarNames& names) {
  if (n.op == Op::Const) {
    std::string s = format_number(n.value);
    if (s == "0" && std::signbit(n.value)) s = "-0";
    return s;
  }
  auto it = names.find({n.params[0], n.params[1]});
  if (it != names.end()) return it->second;
  return std::string(cat_keyword(n.cat())) + "(" + std::to_string(n.pos()) + "," + std::to_string(n.dim) + ")";
}

// Whether `n`, printed in a context requiring precedence >= `need`, starts with '-'.
bool starts_with_minus(const Node& n, int need, const VarNames& names) {
  for (const Node* m = &n;;) {
    const int p = precedence(*m);
    if (p < need) return false;  // printed in parentheses
    switch (op_info(m->op).style) {
      case PrintStyle::Prefix: return true;
      case PrintStyle::Leaf: return m->op == Op::Const && leaf_text(*m, names)[0] == '-';
      case PrintStyle::Infix:
        need = p;
        m = m->args[0].get();
        break;
      default: return false;
    }
  }
}

// Prints `n` in a context requiring precedence >= `need`.
void print_at(const NodeP& n, int need, const VarNames& names, std::string& out) {
  if (precedence(*n) >= need) return print(n, names, out);
  out += '(';
  print(n, names, out);
  out += ')';
}

void print(const NodeP& n, const VarNames& names, std::string& out) {
  const OpInfo& info = op_info(n->op);
  switch (info.style) {
    case PrintStyle::Leaf:
      out += leaf_text(*n, names);
      return;
    case PrintStyle::Prefix:
      out += '-';
      return print_at(n->args[0], 3, names, out);
    case PrintStyle::Infix: {
      const int p = precedence(*n);
      print_at(n->args[0], p, names, out);
      out += info.name;
      const bool wrap = starts_with_minus(*n->args[1], p + 1, names);  // a-(-b), never a--b
      if (wrap) out += '(';
      print_at(n->args[1], p + 1, names, out);
      if (wrap) out += ')';
      return;
    }
    case PrintStyle::Bar:
      out += '(';
      print(n->args[0], names, out);
      out += '|';
      print(n->args[1], names, out);
      out += ')';
      return;
    case PrintStyle::Call: {
      out += info.name;
      out += '(';
      bool first = true;
      for (const auto& a : n->args) {
        if (!first) out += ',';
        print(a, names, out);
        first = false;
      }
      for (int q : n->params) {
        if (!first) out += ',';
        out += std::to_string(q);
        first = false;
      }
      out += ')';
      return;
    }
  }
}

}  // namespace

std::int64_t printed_length_bound(const NodeP& root, const VarNames& names) {
  // Memoised on node identity: O(distinct nodes), although the text repeats every shared
  // subexpression. Each argument is counted with two parentheses, which the printer adds
  // at most once; counts saturate far above any limit so that they never overflow.
  constexpr std::int64_t kSaturate = std::int64_t{1} << 60;
  std::unordered_map<const Node*, std::int64_t> memo;
  std::function<std::int64_t(const NodeP&)> go = [&](const NodeP& n) -> std::int64_t {
    auto it = memo.find(n.get());
    if (it != memo.end()) return it->second;
    std::int64_t len = op_info(n->op).style == PrintStyle::Leaf ? static_cast<std::int64_t>(leaf_text(*n, names).size())
                                                                 : static_cast<std::int64_t>(std::strlen(op_info(n->op).name)) + 4;
    for (int q : n->params) len += static_cast<std::int64_t>(std::to_string(q).size()) + 1;
    for (const auto& a : n->args) len = std::min(kSaturate, len + go(a) + 3);
    memo[n.get()] = len;
    return len;
  };
  return go(root);
}

std::string to_string(const NodeP& n, const VarNames& names) {
  const std::int64_t bound = printed_length_bound(n, names);
  if (bound > kMaxPrintedLength)
    throw UnsupportedError("this formula is too large to write out: it repeats shared subexpressions in full, "
                           "which would take more than " + std::to_string(kMaxPrintedLength) +
                           " characters (kernops computes with it, but cannot print it)");
  std::string out;
  out.reserve(static_cast<std::size_t>(bound));
  print(n, names, out);
  return out;
}

}  // namespace kernops
