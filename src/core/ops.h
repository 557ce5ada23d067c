// The operations of the formula language: identity, arity and printing of each.
// Dimension rules live in ops.cpp, CPU evaluation in cpu/eval.h, derivatives in diff.cpp;
// the elementwise scalar maths shared by all of them is in scalar_ops.h. No R headers here.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kernops {

enum class Op : std::uint8_t {
  // leaves
  Var, Const, Zero,
  // elementwise, one argument
  Neg, Exp, Log, Sqrt, Rsqrt, Inv, Abs, Sign, Sin, Cos, Step, ReLU, Square, Log1p, Expm1, Pow,
  // elementwise, two or three arguments (a dimension-1 argument broadcasts)
  Add, Sub, Mul, Div, Min, Max, Powf, IfElse, Clamp,
  // vector operations
  Sum, SumT, SqNorm2, Scalprod, Elem, ElemT, Extract, ExtractT, Concat,
  MatVecMult, VecMatMult, TensorProd,
  // planner-only fusions, never in a formula's AST (see plan.cpp and fuse.h):
  // SqNorm2(a-b), and a radial kernel phi(s*|x-y|^2) (params: {RadialKind})
  SqDistFused, RadialKernel,
};

// Whether `op` only appears in plans (made by the planner, never parsed or printed).
inline bool planner_only(Op op) { return op >= Op::SqDistFused; }

// How a node prints: as a function call Name(args, params), or infix.
enum class PrintStyle : std::uint8_t { Call, Infix, Prefix, Bar, Leaf };

struct OpInfo {
  Op op;
  const char* name;   // the KeOps spelling, e.g. "Exp"; for infix ops the symbol
  int nargs;          // number of formula arguments
  int nparams;        // number of integer parameters written after them (Pow(x, n): 1)
  PrintStyle style;
  bool elementwise;   // applies per coordinate with dimension-1 broadcasting
};

const OpInfo& op_info(Op op);
// Looks up a function-call spelling ("Exp", "SqNorm2", ...); nullptr when unknown.
const OpInfo* op_by_name(const std::string& name);
// All ops that have a function-call spelling, for error messages and tests.
std::vector<const OpInfo*> callable_ops();

// Dimension of a node with these argument dimensions and integer parameters.
// Throws DimensionError (with `pos`) when they do not fit.
// Largest dimension of a variable or of any node: past it infer_dim and the parser refuse
// the formula (a DimensionError or ParseError), long before a buffer size could overflow.
constexpr int kMaxDim = 1 << 24;
int infer_dim(Op op, const std::vector<int>& arg_dims, const std::vector<int>& params, long pos);

}  // namespace kernops
