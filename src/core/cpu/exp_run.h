// exp over a run of values in two passes (Note [Split exp]). Include from eval.h, after
// the KERNOPS_SIMD macros. No R headers here.
#pragma once
#include "isa.h"

#include "../vmath.h"

namespace kernops {
namespace cpu {
inline namespace KERNOPS_ISA {

// Note [Split exp]
// One `omp simd` loop computing exp has a dependency chain of ~65 cycles per vector (clamp,
// reduction, degree-11 polynomial, scaling): the out-of-order window then holds fewer than
// three iterations and the loop runs at ~4 cycles per double on AVX2, half the machine's
// throughput. Split into two passes through L1 scratch, exp_reduce() then exp_finish(), each
// chain is short and the same work runs at ~3 cycles per double (bench: tests/cpp driver,
// W1). Results are bit-identical to vmath::exp. `arg(b)` gives the b-th argument (it may
// not read `out`); t is a scratch run of n values, and out holds the other half meanwhile.
template <class T, class Arg>
inline void exp_run(T* out, int n, T* t, Arg&& arg) {
  KERNOPS_SIMD
  for (int b = 0; b < n; ++b) {
    const vmath::ExpReduced<T> e = vmath::exp_reduce(arg(b));
    out[b] = e.r;
    t[b] = e.t;
  }
  KERNOPS_SIMD
  for (int b = 0; b < n; ++b) out[b] = vmath::exp_finish(out[b], t[b]);
}

}  // namespace KERNOPS_ISA
}  // namespace cpu
}  // namespace kernops
