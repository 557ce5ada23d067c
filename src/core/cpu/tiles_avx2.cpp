// The avx2 copy of the tile engine (Note [ISA dispatch] in isa.h).
#define KERNOPS_ISA avx2
// Standard and shared headers first, compiled for the baseline target.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include "../kernops.h"
#include "isa.h"

#if KERNOPS_X86_DISPATCH
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
#include "tiles.h"
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#else
// Not an x86 build: this instruction set is never selected (select_isa), but the
// symbol must exist.
namespace kernops {
namespace cpu {
inline namespace avx2 {
void run_tiles(const Plan&, const std::vector<ArgData>&, const OutShape&, double*, double*, const RunConfig&) {
  throw InternalError("the avx2 engine was selected on a non-x86 build");
}
}  // namespace avx2
}  // namespace cpu
}  // namespace kernops
#endif
