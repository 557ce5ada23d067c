// Linearisation of a formula into per-level programs (see plan.h).
#include "plan.h"

#include <algorithm>
#include <functional>
#include <unordered_map>

#include "errors.h"
#include "fuse.h"

namespace kernops {

namespace {

Level var_level(Cat c) { return c == Cat::I ? kI : c == Cat::J ? kJ : kP; }

// Swaps the i and j categories of every variable (axis 1 -> axis 0).
NodeP swap_ij(const NodeP& n) {
  return map_vars(n, [](const NodeP& v) -> NodeP {
    Cat c = v->cat();
    if (c == Cat::P) return v;
    return var(c == Cat::I ? Cat::J : Cat::I, v->pos(), v->dim);
  });
}

class Builder {
 public:
  explicit Builder(Plan& p) : plan_(p) {}

  int add(const NodeP& n) {
    auto it = ids_.find(n);
    if (it != ids_.end()) return it->second;
    std::vector<int> in;
    int lvl = kP;
    for (const auto& a : n->args) {
      in.push_back(add(a));
      lvl |= plan_.slots[in.back()].level;
    }
    Slot s;
    s.dim = n->dim;
    if (n->op == Op::Var) {
      s.level = var_level(n->cat());
      s.arg = n->pos();
    } else {
      s.level = static_cast<Level>(lvl);
      s.offset = plan_.level_width[s.level];
      plan_.level_width[s.level] += n->dim;
    }
    int id = static_cast<int>(plan_.slots.size());
    plan_.slots.push_back(s);
    if (n->op != Op::Var) {
      Instr ins{n->op, id, std::move(in), n->params, n->value};
      plan_.prog[s.level].push_back(std::move(ins));
    }
    ids_.emplace(n, id);
    return id;
  }

 private:
  Plan& plan_;
  std::unordered_map<NodeP, int, NodeHash, NodeEq> ids_;
};

int uses(const Plan& p, int slot) {
  int n = (p.root == slot) + (p.root2 == slot);
  for (const auto& prog : p.prog)
    for (const auto& ins : prog)
      for (int s : ins.in) n += s == slot;
  return n;
}

// SqNorm2(a-b) -> SqDistFused(a, b) when the difference is a pair-level value read only
// by the SqNorm2: the dim x B difference buffer is then never written (radial kernels
// spend most of their memory traffic there).
void fuse_sqdist(Plan& p) {
  auto& prog = p.prog[kIJ];
  std::vector<bool> dead(prog.size(), false);
  for (auto& ins : prog) {
    if (ins.op != Op::SqNorm2) continue;
    const int d = ins.in[0];
    auto sub = std::find_if(prog.begin(), prog.end(), [&](const Instr& x) { return x.out == d; });
    if (sub == prog.end() || sub->op != Op::Sub || uses(p, d) != 1) continue;
    if (p.slots[sub->in[0]].dim != p.slots[sub->in[1]].dim) continue;  // broadcasting Sub: keep
    ins.op = Op::SqDistFused;
    ins.in = sub->in;
    dead[static_cast<size_t>(sub - prog.begin())] = true;
  }
  std::vector<Instr> kept;
  for (size_t k = 0; k < prog.size(); ++k)
    if (!dead[k]) kept.push_back(std::move(prog[k]));
  prog = std::move(kept);
}

// Note [Sum parts]
// Sum_Reduction(F) need not store F when its last operations are linear in the sum:
//   Sum_j Concat(a, b) = Concat(Sum_j a, Sum_j b)   (gradients w.r.t. several variables)
//   Sum_j a*b                                      (the kernel times the weights)
// split_sum() peels such Concat and Mul instructions off the root, when nothing else reads
// their results, and leaves a list of parts that the reducer folds directly into the
// right output columns: the product and the concatenation are never written to memory.
// A peeled Concat reads nothing any more (its inputs become parts of their own), but a
// folded Mul still reads both factors through its part: a factor that is itself a bare
// product must then be computed, never folded in turn. For Concat(E*X, X) with X = a*b,
// folding X as well left part E*X reading a value that no instruction wrote.
void split_sum(Plan& p) {
  auto& prog = p.prog[kIJ];
  std::vector<bool> dead(prog.size(), false);     // peeled or folded: removed from prog
  std::vector<bool> peeled(prog.size(), false);   // a peeled Concat: reads nothing now
  auto producer = [&](int slot) -> int {
    for (size_t k = 0; k < prog.size(); ++k)
      if (prog[k].out == slot) return static_cast<int>(k);
    return -1;
  };
  // Whether every reader of `slot` is a peeled Concat.
  auto only_peeled_users = [&](int slot) {
    for (int l = 0; l < 4; ++l)
      for (size_t k = 0; k < p.prog[l].size(); ++k)
        if (!(l == kIJ && peeled[k]))
          for (int s : p.prog[l][k].in)
            if (s == slot) return false;
    return true;
  };
  // 1. Peel the Concat tree under the root, breadth first, so that a value that appears in
  //    several branches is judged once all the Concats reading it are known to be peeled.
  //    A Concat kept once stays kept: leaves() must see one decision per value.
  std::vector<int> todo{p.root};
  std::vector<bool> kept_once(prog.size(), false);
  for (size_t t = 0; t < todo.size(); ++t) {
    const int k = producer(todo[t]);
    if (k < 0 || dead[k] || kept_once[k] || prog[k].op != Op::Concat) continue;
    if (!only_peeled_users(todo[t])) {
      kept_once[k] = true;
      continue;
    }
    dead[k] = peeled[k] = true;
    todo.push_back(prog[k].in[0]);
    todo.push_back(prog[k].in[1]);
  }
  // 2. Its leaves, left to right, with their output columns; a leaf made by a Mul that
  //    nothing else reads is folded as a product.
  std::function<void(int, int)> leaves = [&](int slot, int offset) {
    const int k = producer(slot);
    if (k >= 0 && peeled[k]) {
      leaves(prog[k].in[0], offset);
      leaves(prog[k].in[1], offset + p.slots[prog[k].in[0]].dim);
      return;
    }
    if (k >= 0 && prog[k].op == Op::Mul && (dead[k] || only_peeled_users(slot))) {
      dead[k] = true;
      int a = prog[k].in[0], b = prog[k].in[1];
      if (p.slots[a].dim > p.slots[b].dim) std::swap(a, b);  // the scalar factor first
      p.parts.push_back({a, b, p.slots[slot].dim, offset});
      return;
    }
    p.parts.push_back({slot, -1, p.slots[slot].dim, offset});
  };
  leaves(p.root, 0);
  std::vector<Instr> kept;
  for (size_t k = 0; k < prog.size(); ++k)
    if (!dead[k]) kept.push_back(std::move(prog[k]));
  prog = std::move(kept);
}

// Level of a node: the or of its variables' levels (constants are parameter-level).
int node_level(const NodeP& n, std::unordered_map<const Node*, int>& memo) {
  auto it = memo.find(n.get());
  if (it != memo.end()) return it->second;
  int l = kP;
  if (n->op == Op::Var)
    l = var_level(n->cat());
  else
    for (const auto& a : n->args) l |= node_level(a, memo);
  memo[n.get()] = l;
  return l;
}

// (c*V)*s -> V*(c*s) when V is a vector and c (low-level) and s are scalars; else n.
template <class Low>
NodeP scale_scalar_first(const NodeP& n, const Low& low) {
  for (int k = 0; k < 2; ++k) {
    const NodeP& cv = n->args[k];
    const NodeP& s = n->args[1 - k];
    if (cv->op != Op::Mul || s->dim != 1) continue;
    for (int q = 0; q < 2; ++q) {
      const NodeP& c = cv->args[q];
      const NodeP& v = cv->args[1 - q];
      if (c->dim == 1 && low(c) && v->dim > 1) return mul(v, mul(c, s));
    }
  }
  return n;
}

// Rewrites that move work from pair level to a lower level, where it is done once per
// i, per j or per call instead of per pair:
//   a / c   -> a * Inv(c)      (one division per call instead of one per pair)
//   (-a) * c -> a * (-c),  -(a * c) -> a * (-c)   (the negation moves to c)
//   (c * V) * s -> V * (c * s)  for a vector V and scalars c, s (one scalar product
//                                instead of a vector one: gradients are full of these)
// where a is pair-level and c is not. The printed formula is unchanged: only the plan
// sees the rewritten tree.
NodeP hoist(const NodeP& root) {
  std::unordered_map<const Node*, int> levels;
  std::unordered_map<const Node*, NodeP> memo;
  auto low = [&](const NodeP& n) { return node_level(n, levels) != kIJ; };
  std::function<NodeP(const NodeP&)> go = [&](const NodeP& n) -> NodeP {
    auto it = memo.find(n.get());
    if (it != memo.end()) return it->second;
    std::vector<NodeP> a;
    for (const auto& c : n->args) a.push_back(go(c));
    NodeP out = a.empty() ? n : make(n->op, a, n->params);
    if (out->op == Op::Div && !low(out->args[0]) && low(out->args[1]) && out->args[0]->dim >= out->args[1]->dim)
      out = mul(out->args[0], unary(Op::Inv, out->args[1]));
    if (out->op == Op::Mul) {
      NodeP x = out->args[0], c = out->args[1];
      if (low(x)) std::swap(x, c);
      if (!low(x) && low(c) && x->op == Op::Neg) out = mul(x->args[0], neg(c));
    }
    if (out->op == Op::Mul && out->dim > 1) out = scale_scalar_first(out, low);
    if (out->op == Op::Neg && out->args[0]->op == Op::Mul) {
      NodeP x = out->args[0]->args[0], c = out->args[0]->args[1];
      if (low(x)) std::swap(x, c);
      if (!low(x) && low(c)) out = mul(x, neg(c));
    }
    memo[n.get()] = out;
    return out;
  };
  return go(root);
}

// Note [Scalar products]
// Gradients are long products of scalars, e.g. 2*((e*(p|q))*E*(-1/s^2)) with e an i-value, s a
// parameter and only (p|q) and E pair values: evaluated as written, that is four
// multiplications per pair. A product tree of dimension-1 factors is flattened (through
// inner products read nowhere else) and rebuilt as (product of the pair and j factors) *
// (product of the i and parameter factors): the second product is computed once per i, and
// here one multiplication per pair remains.
NodeP group_scalar_products(const NodeP& root) {
  std::unordered_map<const Node*, int> parents;
  std::function<void(const NodeP&)> count = [&](const NodeP& n) {
    for (const auto& a : n->args)
      if (parents[a.get()]++ == 0) count(a);
  };
  count(root);
  std::unordered_map<const Node*, int> levels;
  std::unordered_map<const Node*, NodeP> memo;  // also keeps every node it maps alive
  auto scalar_mul = [](const NodeP& n) { return n->op == Op::Mul && n->dim == 1 && n->args[0]->dim == 1 && n->args[1]->dim == 1; };
  std::function<NodeP(const NodeP&)> go = [&](const NodeP& n) -> NodeP {
    auto it = memo.find(n.get());
    if (it != memo.end()) return it->second;
    NodeP out;
    if (scalar_mul(n)) {
      std::vector<NodeP> factors;
      std::function<void(const NodeP&)> flatten = [&](const NodeP& m) {
        for (const auto& a : m->args) {
          if (scalar_mul(a) && parents[a.get()] == 1)
            flatten(a);
          else
            factors.push_back(go(a));
        }
      };
      flatten(n);
      NodeP high, low;
      int n_low = 0;
      for (const auto& f : factors) {
        const int l = node_level(f, levels);
        NodeP& acc = (l == kP || l == kI) ? low : high;
        n_low += (l == kP || l == kI);
        acc = acc ? mul(acc, f) : f;
      }
      out = (n_low < 2 || !high) ? nullptr : mul(high, low);
      if (!out) {  // nothing to gain: keep the original tree, rewritten below
        std::vector<NodeP> a{go(n->args[0]), go(n->args[1])};
        out = make(n->op, a, n->params);
      }
    } else if (n->args.empty()) {
      out = n;
    } else {
      std::vector<NodeP> a;
      for (const auto& c : n->args) a.push_back(go(c));
      out = make(n->op, a, n->params);
    }
    memo[n.get()] = out;
    return out;
  };
  return go(root);
}

// Buffer offsets of the values still computed, once fusions have removed instructions:
// the dead values' space would otherwise shrink the CPU engine's tiles (a fused
// 32-dimensional difference left 32 unused rows in every pair buffer).
void compact_offsets(Plan& p) {
  for (int l = 0; l < 4; ++l) {
    std::int64_t w = 0;
    for (const auto& ins : p.prog[l]) {
      p.slots[ins.out].offset = w;
      w += p.slots[ins.out].dim;
    }
    p.level_width[l] = w;
  }
}

}  // namespace

Plan make_plan(const Formula& formula, const PlanOptions& options) {
  Plan p;
  p.formula = formula;
  p.kind = formula.kind;
  p.k = formula.k;
  const bool swap = formula.axis == 1;
  p.f = swap ? swap_ij(formula.f) : formula.f;
  p.f2 = formula.f2 ? (swap ? swap_ij(formula.f2) : formula.f2) : nullptr;
  for (const auto& v : formula.vars) {
    Level l = var_level(v.cat);
    if (swap && l != kP) l = l == kI ? kJ : kI;
    p.arg_level.push_back(l);
  }

  // Fast paths (fuse.h) are recognised on the rewritten tree, where spellings converge.
  auto prepare = [&](const NodeP& f) {
    NodeP t = hoist(f);
    std::unordered_map<const Node*, int> levels;  // keyed by address: only nodes of t, alive
    if (options.fuse_radial) t = fuse_radial_kernels(t, [&](const NodeP& n) { return node_level(n, levels); });
    return group_scalar_products(t);
  };
  Builder b(p);
  p.root = b.add(prepare(p.f));
  if (p.f2) p.root2 = b.add(prepare(p.f2));

  fuse_sqdist(p);

  if (p.kind == RedKind::Sum)
    split_sum(p);
  else
    p.parts.push_back({p.root, p.root2, p.f->dim, 0});
  compact_offsets(p);
  return p;
}

bool is_blocked_sqdist(const Plan& p, const Instr& ins) {
  if (ins.op != Op::SqDistFused || p.slots[ins.in[0]].dim < kBlockedSqDistDim) return false;
  const Level a = p.slots[ins.in[0]].level, b = p.slots[ins.in[1]].level;
  return (a == kI && b == kJ) || (a == kJ && b == kI);
}

std::vector<std::string> fast_paths(const Plan& p) {
  std::vector<std::string> out;
  for (const auto& ins : p.prog[kIJ]) {
    const std::string dim = std::to_string(p.slots[ins.in[0]].dim);
    if (ins.op == Op::RadialKernel)
      out.push_back(std::string("fused ") + radial_name(static_cast<RadialKind>(ins.params[0])) +
                    " kernel (dimension " + dim + ")");
    if (is_blocked_sqdist(p, ins)) out.push_back("blocked squared distances (dimension " + dim + ")");
  }
  return out;
}

}  // namespace kernops
