// A whole formula: the reduction applied to F, its axis, and the declared variables.
// parse_formula() turns the KeOps string plus declarations ("x = Vi(3)") into it.
// No R headers here.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ast.h"

namespace kernops {

enum class RedKind {
  Sum, Min, Max, ArgMin, ArgMax, MinArgMin, MaxArgMax,
  KMin, ArgKMin, KMinArgKMin, LogSumExp, SumSoftMaxWeight,
};

struct RedInfo {
  RedKind kind;
  const char* name;  // "Sum_Reduction", ...
  bool has_k;        // KMin_Reduction(F, K, axis)
  int extra;         // extra formula after the axis: 0 none, 1 optional (LSE weight), 2 required
};
const RedInfo& red_info(RedKind kind);
const RedInfo* red_by_name(const std::string& name);

// One declared variable: its name, category, position in the argument list, dimension.
struct VarDecl {
  std::string name;
  Cat cat;
  int pos;
  int dim;
};

// Largest K x dim(F) of a K-min reduction: its per-row state holds up to 4 K x dim(F) + 2 dim(F)
// values, indexed with int (8 GB per row at this size, far beyond any useful K).
constexpr std::int64_t kMaxKMinWidth = std::int64_t{1} << 28;

struct Formula {
  RedKind kind = RedKind::Sum;
  int axis = 0;  // 0: result indexed by i, reduced over j; 1: indexed by j, reduced over i
  int k = 0;     // K of the KMin family
  NodeP f;       // the reduced formula F
  NodeP f2;      // LogSumExp weight or SumSoftMaxWeight values; null when absent
  std::vector<VarDecl> vars;  // sorted by position; every position 0..n-1 present

  // Width of the result row: dim(F) (or K*dim(F), or dim(f2) for weighted forms). Fits an
  // int: parse_formula() bounds K x dim(F) by kMaxKMinWidth.
  int out_dim() const;
  // Whether the result carries indices (ArgMin, ...), and in which columns.
  bool returns_indices() const;
  VarNames names() const;
  // Canonical string of the reduction alone, e.g. "Sum_Reduction(Exp(-s*SqNorm2(x-y))*b,0)".
  std::string to_string() const;
  // Declarations in canonical form, e.g. {"x = Vi(0,3)", ...}.
  std::vector<std::string> decl_strings() const;
};

// Parses one declaration "x = Vi(3)", "x=Vi(0,3)", "s = Pm(1)"; `default_pos` is used
// when no position is written.
VarDecl parse_decl(const std::string& decl, int default_pos);

// Parses a formula with its reduction. Variables are looked up in `decls`; inline
// variables Vi(pos,dim) are allowed and added when not declared.
Formula parse_formula(const std::string& source, const std::vector<std::string>& decls);

// Parses a formula without reduction (a bare F) with the same rules; `vars` is updated
// with the inline variables found.
NodeP parse_expression(const std::string& source, std::vector<VarDecl>& vars);

}  // namespace kernops
