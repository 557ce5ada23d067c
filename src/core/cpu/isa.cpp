// Run-time choice of the instruction set (Note [ISA dispatch] in isa.h).
#include "isa.h"

namespace kernops {
namespace cpu {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return KERNOPS_X86_DISPATCH ? "sse2" : "baseline";
  }
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out{Isa::Base};
#if KERNOPS_X86_DISPATCH
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    out.push_back(Isa::Avx2);
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))
      out.push_back(Isa::Avx512);
  }
#endif
  return out;
}

Isa select_isa(Isa max) {
  Isa best = Isa::Base;
  for (Isa i : supported_isas())
    if (static_cast<int>(i) <= static_cast<int>(max)) best = i;
  return best;
}

}  // namespace cpu
}  // namespace kernops
