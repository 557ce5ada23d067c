// Symbolic differentiation of formulas (reverse mode, with the chain rule written once).
// No R headers here.
#pragma once
#include "ast.h"

namespace kernops {

// Grad(F, v, e): the gradient with respect to the variable v of <e, F>, where e has
// F's dimension. The result has v's dimension. Simplified as it is built.
NodeP grad(const NodeP& f, const NodeP& v, const NodeP& e);

// Diff(F, v, u): the directional derivative dF/dv . u (forward mode), of F's dimension.
NodeP diff_forward(const NodeP& f, const NodeP& v, const NodeP& u);

}  // namespace kernops
