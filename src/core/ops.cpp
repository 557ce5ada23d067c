// Op table and dimension rules. See ops.h.
#include "ops.h"

#include <string>

#include "errors.h"

namespace kernops {

namespace {

constexpr OpInfo kOps[] = {
    {Op::Var, "Var", 0, 2, PrintStyle::Leaf, false},
    {Op::Const, "Const", 0, 0, PrintStyle::Leaf, false},
    {Op::Zero, "Zero", 0, 1, PrintStyle::Call, false},
    {Op::Neg, "-", 1, 0, PrintStyle::Prefix, true},
    {Op::Exp, "Exp", 1, 0, PrintStyle::Call, true},
    {Op::Log, "Log", 1, 0, PrintStyle::Call, true},
    {Op::Sqrt, "Sqrt", 1, 0, PrintStyle::Call, true},
    {Op::Rsqrt, "Rsqrt", 1, 0, PrintStyle::Call, true},
    {Op::Inv, "Inv", 1, 0, PrintStyle::Call, true},
    {Op::Abs, "Abs", 1, 0, PrintStyle::Call, true},
    {Op::Sign, "Sign", 1, 0, PrintStyle::Call, true},
    {Op::Sin, "Sin", 1, 0, PrintStyle::Call, true},
    {Op::Cos, "Cos", 1, 0, PrintStyle::Call, true},
    {Op::Step, "Step", 1, 0, PrintStyle::Call, true},
    {Op::ReLU, "ReLU", 1, 0, PrintStyle::Call, true},
    {Op::Square, "Square", 1, 0, PrintStyle::Call, true},
    {Op::Log1p, "Log1p", 1, 0, PrintStyle::Call, true},
    {Op::Expm1, "Expm1", 1, 0, PrintStyle::Call, true},
    {Op::Pow, "Pow", 1, 1, PrintStyle::Call, true},
    {Op::Add, "+", 2, 0, PrintStyle::Infix, true},
    {Op::Sub, "-", 2, 0, PrintStyle::Infix, true},
    {Op::Mul, "*", 2, 0, PrintStyle::Infix, true},
    {Op::Div, "/", 2, 0, PrintStyle::Infix, true},
    {Op::Min, "Min", 2, 0, PrintStyle::Call, true},
    {Op::Max, "Max", 2, 0, PrintStyle::Call, true},
    {Op::Powf, "Powf", 2, 0, PrintStyle::Call, true},
    {Op::IfElse, "IfElse", 3, 0, PrintStyle::Call, true},
    {Op::Clamp, "Clamp", 3, 0, PrintStyle::Call, true},
    {Op::Sum, "Sum", 1, 0, PrintStyle::Call, false},
    {Op::SumT, "SumT", 1, 1, PrintStyle::Call, false},
    {Op::SqNorm2, "SqNorm2", 1, 0, PrintStyle::Call, false},
    {Op::Scalprod, "|", 2, 0, PrintStyle::Bar, false},
    {Op::Elem, "Elem", 1, 1, PrintStyle::Call, false},
    {Op::ElemT, "ElemT", 1, 2, PrintStyle::Call, false},
    {Op::Extract, "Extract", 1, 2, PrintStyle::Call, false},
    {Op::ExtractT, "ExtractT", 1, 2, PrintStyle::Call, false},
    {Op::Concat, "Concat", 2, 0, PrintStyle::Call, false},
    {Op::MatVecMult, "MatVecMult", 2, 0, PrintStyle::Call, false},
    {Op::VecMatMult, "VecMatMult", 2, 0, PrintStyle::Call, false},
    {Op::TensorProd, "TensorProd", 2, 0, PrintStyle::Call, false},
    {Op::SqDistFused, "SqDist", 2, 0, PrintStyle::Call, false},
    {Op::RadialKernel, "RadialKernel", 4, 1, PrintStyle::Call, false},
};

std::string dims_str(const std::vector<int>& d) {
  std::string s;
  for (size_t k = 0; k < d.size(); ++k) s += (k ? ", " : "") + std::to_string(d[k]);
  return s;
}

[[noreturn]] void fail(Op op, const std::string& why, const std::vector<int>& dims, long pos) {
  std::string name = op_info(op).name;
  if (op == Op::Scalprod) name = "scalar product (a|b)";
  throw DimensionError(name + ": " + why + " (argument dimensions: " + dims_str(dims) + ")", pos);
}

}  // namespace

const OpInfo& op_info(Op op) { return kOps[static_cast<int>(op)]; }

const OpInfo* op_by_name(const std::string& name) {
  for (const auto& info : kOps)
    if (info.style == PrintStyle::Call && !planner_only(info.op) && name == info.name) return &info;
  return nullptr;
}

std::vector<const OpInfo*> callable_ops() {
  std::vector<const OpInfo*> out;
  for (const auto& info : kOps)
    if (info.style == PrintStyle::Call && !planner_only(info.op)) out.push_back(&info);
  return out;
}

namespace {

int infer_dim_unchecked(Op op, const std::vector<int>& d, const std::vector<int>& p, long pos);

}  // namespace

// Every dimension is at most kMaxDim: products and sums of dimensions are computed in 64
// bits, so that TensorProd of two 65536-vectors is an error rather than a dimension that
// wrapped around (0, or a small number that later overran a buffer).
int infer_dim(Op op, const std::vector<int>& d, const std::vector<int>& p, long pos) {
  std::int64_t out = 0;
  switch (op) {
    case Op::Concat:
      out = std::int64_t(d[0]) + d[1];
      break;
    case Op::TensorProd:
      out = std::int64_t(d[0]) * d[1];
      break;
    default:
      out = infer_dim_unchecked(op, d, p, pos);
  }
  if (out > kMaxDim)
    fail(op, "the result would have dimension " + std::to_string(out) + ", more than the limit of " + std::to_string(kMaxDim),
         d, pos);
  return static_cast<int>(out);
}

namespace {

int infer_dim_unchecked(Op op, const std::vector<int>& d, const std::vector<int>& p, long pos) {
  const OpInfo& info = op_info(op);
  if (info.elementwise) {
    // Elementwise: all dimensions equal, or 1 (broadcast).
    int out = 1;
    for (int di : d) {
      if (di == 1) continue;
      if (out != 1 && di != out) fail(op, "dimensions must be equal or 1", d, pos);
      out = di;
    }
    return out;
  }
  switch (op) {
    case Op::Zero:
      if (p[0] < 1) fail(op, "dimension must be >= 1", d, pos);
      return p[0];
    case Op::Sum:
    case Op::SqNorm2:
      return 1;
    case Op::SqDistFused:
      if (d[0] != d[1]) fail(op, "dimensions must be equal", d, pos);
      return 1;
    case Op::RadialKernel:  // (x, y, scale, offset)
      if (d[0] != d[1] || d[2] != 1 || d[3] != 1) fail(op, "expects (x, y, scalar, scalar) with dim x = dim y", d, pos);
      return 1;
    case Op::SumT:
      if (d[0] != 1) fail(op, "argument must have dimension 1", d, pos);
      if (p[0] < 1) fail(op, "target dimension must be >= 1", d, pos);
      return p[0];
    case Op::Scalprod:
      if (d[0] != d[1]) fail(op, "dimensions must be equal", d, pos);
      return 1;
    case Op::Elem:
      if (p[0] < 0 || p[0] >= d[0])
        fail(op, "index " + std::to_string(p[0]) + " out of range 0.." + std::to_string(d[0] - 1),
             d, pos);
      return 1;
    case Op::ElemT:
      if (d[0] != 1) fail(op, "argument must have dimension 1", d, pos);
      if (p[1] < 0 || p[1] >= p[0]) fail(op, "index out of range", d, pos);
      return p[0];
    case Op::Extract:
      if (p[0] < 0 || p[1] < 1 || p[0] + p[1] > d[0])
        fail(op,
             "range [" + std::to_string(p[0]) + ", " + std::to_string(p[0] + p[1]) +
                 ") does not fit in dimension " + std::to_string(d[0]),
             d, pos);
      return p[1];
    case Op::ExtractT:
      if (p[0] < 0 || p[0] + d[0] > p[1]) fail(op, "range does not fit in target dimension", d, pos);
      return p[1];
    case Op::MatVecMult:  // A (m x n, row-major, dim m*n) times v (dim n) -> dim m
      if (d[0] % d[1] != 0) fail(op, "matrix dimension must be a multiple of the vector's", d, pos);
      return d[0] / d[1];
    case Op::VecMatMult:  // v (dim n) times A (n x m, row-major, dim n*m) -> dim m
      if (d[1] % d[0] != 0) fail(op, "matrix dimension must be a multiple of the vector's", d, pos);
      return d[1] / d[0];
    default:
      fail(op, "has no dimension rule", d, pos);
  }
}

}  // namespace

}  // namespace kernops
