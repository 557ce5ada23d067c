// The formula AST: immutable nodes shared through shared_ptr, built only through the
// smart constructors below, which infer the dimension and apply the algebraic
// simplifications (each one commented in ast.cpp). Structural equality and hashing let
// the planner share repeated subexpressions. No R headers here.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ops.h"

namespace kernops {

// Index category of a variable: indexed by i, by j, or a parameter (Pm).
enum class Cat : int { I = 0, J = 1, P = 2 };
// The formula-language keyword of a category: "Vi", "Vj" or "Pm".
inline const char* cat_keyword(Cat c) {
  static const char* const kKeywords[] = {"Vi", "Vj", "Pm"};
  return kKeywords[static_cast<int>(c)];
}

struct Node;
using NodeP = std::shared_ptr<const Node>;

struct Node {
  Op op;
  int dim;
  std::vector<NodeP> args;
  std::vector<int> params;  // Var: {cat, pos}; Pow: {n}; Elem: {k}; Extract: {start, len}; ...
  double value = 0;         // Const only
  std::size_t hash = 0;
  int depth = 1;            // longest path to a leaf (bounded: see kMaxDepth)

  Cat cat() const { return static_cast<Cat>(params[0]); }  // Var only
  int pos() const { return params[1]; }                    // Var only
  bool is_const(double v) const { return op == Op::Const && value == v; }
};

bool equal(const NodeP& a, const NodeP& b);
struct NodeHash {
  std::size_t operator()(const NodeP& n) const { return n->hash; }
};
struct NodeEq {
  bool operator()(const NodeP& a, const NodeP& b) const { return equal(a, b); }
};

// Deepest formula accepted. Every tree walk recurses, so an unbounded depth (a formula of
// 100,000 nested parentheses, or x+x+...+x) would overflow the C stack and kill R.
constexpr int kMaxDepth = 2000;

// ---- smart constructors (all formula construction goes through these) ----
NodeP var(Cat cat, int pos, int dim);
NodeP constant(double v);
NodeP zero(int dim);
// Generic: any op with its arguments and integer parameters. `pos` is the source
// offset reported by a DimensionError.
NodeP make(Op op, std::vector<NodeP> args, std::vector<int> params = {}, long pos = -1);

inline NodeP add(NodeP a, NodeP b) { return make(Op::Add, {std::move(a), std::move(b)}); }
inline NodeP sub(NodeP a, NodeP b) { return make(Op::Sub, {std::move(a), std::move(b)}); }
inline NodeP mul(NodeP a, NodeP b) { return make(Op::Mul, {std::move(a), std::move(b)}); }
inline NodeP div(NodeP a, NodeP b) { return make(Op::Div, {std::move(a), std::move(b)}); }
inline NodeP neg(NodeP a) { return make(Op::Neg, {std::move(a)}); }
inline NodeP unary(Op op, NodeP a) { return make(op, {std::move(a)}); }

// Rebuilds `n` with every variable replaced by f(var) (used for axis swaps, Grad, ...).
NodeP map_vars(const NodeP& n, const std::function<NodeP(const NodeP&)>& f);
// Replaces every occurrence of the subtree `from` by `to`.
NodeP substitute(const NodeP& n, const NodeP& from, const NodeP& to);
// Every distinct variable in the tree, in order of first appearance.
std::vector<NodeP> collect_vars(const NodeP& n);
// Number of distinct nodes (shared subtrees counted once).
std::size_t count_nodes(const NodeP& n);

// Printing: names[(cat,pos)] gives the user's variable names; variables without a
// name print as Vi(pos,dim) / Vj(pos,dim) / Pm(pos,dim). parse(to_string(f)) == f.
using VarNames = std::map<std::pair<int, int>, std::string>;
// The text repeats shared subtrees (the language has no way to name them), so it can be
// exponentially longer than the DAG: 26 nested Normalize(), or a 12-deep Grad, would print
// gigabytes. to_string() first bounds the length in O(DAG size) and throws UnsupportedError
// past kMaxPrintedLength; compiling and running never need the text.
constexpr std::int64_t kMaxPrintedLength = std::int64_t{1} << 22;  // 4 MB
std::int64_t printed_length_bound(const NodeP& n, const VarNames& names = {});
std::string to_string(const NodeP& n, const VarNames& names = {});
std::string format_number(double v);

}  // namespace kernops
