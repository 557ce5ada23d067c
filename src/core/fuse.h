// Fast paths chosen by pattern matching on the AST at plan time: a radial kernel
// phi(s * |x - y|^2) becomes one planner-only node, RadialKernel(x, y, s, c){kind}, that the
// engines evaluate in one fused pass (distance, scaling and phi in registers) instead of
// three or more instructions with their intermediate values stored. Users never write it:
// the six named kernels of the formula language and the usual hand-written spellings
// (Exp(-s*SqNorm2(x-y)), Exp(-SqDist(x,y)/(s*s)), ...) are recognised. No R headers here.
#pragma once
#include <functional>

#include "ast.h"

namespace kernops {

// phi(r2), with s the scale and c the offset (both dimension-1, parameter-only):
enum class RadialKind : int {
  Gauss,            // exp(s r2)                                  (s < 0 for a decaying kernel)
  Laplace,          // exp(-sqrt(s r2))
  Cauchy,           // 1 / (c + s r2)
  InvMultiquadric,  // 1 / sqrt(c + s r2)
  Matern32,         // (1 + v) exp(-v),          v = sqrt(s r2)
  Matern52,         // (1 + v + v^2/3) exp(-v),  v = sqrt(s r2)
};
constexpr int kRadialKinds = 6;

const char* radial_name(RadialKind k);

// phi on the GPU (cuda/codegen.cpp): CUDA C++ statements that set `phi` from `r2`, `s` and
// `c` (scalars of the kernel's type T), in the order of the CPU's maths (cpu/radial.h), so
// that both agree to rounding. Next to the kinds so that a new kind is added in one place
// with its CPU loop.
const char* radial_cuda(RadialKind k);

// Replaces every radial-kernel subtree of `root` by a RadialKernel node. `level(n)` is the
// plan level of a node (kP 0, kI 1, kJ 2, kIJ 3): x must be i-only and y j-only (or the
// reverse), s and c parameter-only.
NodeP fuse_radial_kernels(const NodeP& root, const std::function<int(const NodeP&)>& level);

}  // namespace kernops
