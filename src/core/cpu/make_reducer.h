// The reducer of a plan (cpu/reducers.h, and cpu/kmin_buffered.h for a large K).
// Include from cpu/tiles.h only. No R headers here.
#pragma once
#include "isa.h"
#include <memory>

#include "../errors.h"
#include "../plan.h"
#include "kmin_buffered.h"
#include "reducers.h"

namespace kernops {
namespace cpu {
inline namespace KERNOPS_ISA {

// K-min with a K above kSortedMaxK keeps unsorted buffers (Note [Large K]).
template <class T>
std::unique_ptr<Reducer<T>> make_kmin(int d, int k, bool val, bool idx) {
  if (k > kSortedMaxK) return std::make_unique<KMinBufferedReducer<T>>(d, k, val, idx);
  return std::make_unique<KMinReducer<T>>(d, k, val, idx);
}

template <class T>
std::unique_ptr<Reducer<T>> make_reducer(const Plan& p) {
  const int d = p.f->dim;
  switch (p.kind) {
    case RedKind::Sum: return std::make_unique<SumReducer<T>>(p);
    case RedKind::Min: return std::make_unique<ArgExtremeReducer<T>>(d, false, true, false);
    case RedKind::Max: return std::make_unique<ArgExtremeReducer<T>>(d, true, true, false);
    case RedKind::ArgMin: return std::make_unique<ArgExtremeReducer<T>>(d, false, false, true);
    case RedKind::ArgMax: return std::make_unique<ArgExtremeReducer<T>>(d, true, false, true);
    case RedKind::MinArgMin: return std::make_unique<ArgExtremeReducer<T>>(d, false, true, true);
    case RedKind::MaxArgMax: return std::make_unique<ArgExtremeReducer<T>>(d, true, true, true);
    case RedKind::KMin: return make_kmin<T>(d, p.k, true, false);
    case RedKind::ArgKMin: return make_kmin<T>(d, p.k, false, true);
    case RedKind::KMinArgKMin: return make_kmin<T>(d, p.k, true, true);
    case RedKind::LogSumExp: return std::make_unique<LogSumExpReducer<T>>(d, p.f2 ? p.f2->dim : 0, false);
    case RedKind::SumSoftMaxWeight: return std::make_unique<LogSumExpReducer<T>>(d, p.f2->dim, true);
  }
  throw InternalError("unknown reduction");
}

}  // namespace KERNOPS_ISA
}  // namespace cpu
}  // namespace kernops
