// Instruction sets of the CPU backend and the choice among them at run time.
// No R headers here.
//
// Note [ISA dispatch]
// R builds packages with portable flags (-O2, no -march), so the tile engine would only
// ever use SSE2. Instead cpu/tiles.h is compiled three times: tiles_base.cpp (the
// baseline), tiles_avx2.cpp (AVX2 + FMA) and tiles_avx512.cpp (AVX-512), each raising
// its target with `#pragma GCC target` *after* the standard and shared kernops headers,
// so that only the kernels get the wider instructions. Every kernel header
// (vmath.h, scalar_ops.h, cpu/span.h, cpu/eval.h, cpu/reducers.h, cpu/tiles.h, ...) wraps
// its contents in `inline namespace KERNOPS_ISA`, so each copy has its own symbols and
// the linker can never pick an AVX2 instance of an inline function for baseline code.
// run_cpu() asks the processor (__builtin_cpu_supports) which copies it can run and
// takes the best one not above RunConfig::max_isa.
#pragma once
#include <string>
#include <vector>

#ifndef KERNOPS_ISA
#define KERNOPS_ISA base
#endif

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define KERNOPS_X86_DISPATCH 1
#else
#define KERNOPS_X86_DISPATCH 0
#endif

namespace kernops {

struct Plan;
struct ArgData;
struct OutShape;
struct RunConfig;

namespace cpu {

enum class Isa { Base = 0, Avx2 = 1, Avx512 = 2 };

// "sse2" (or the baseline of a non-x86 build), "avx2", "avx512".
const char* isa_name(Isa isa);
// The best instruction set this processor supports, capped at `max`.
Isa select_isa(Isa max = Isa::Avx512);
// The instruction sets usable on this processor, lowest first.
std::vector<Isa> supported_isas();

// One copy of the tile engine per instruction set (cpu/tiles_<isa>.cpp).
#define KERNOPS_DECLARE_RUN_TILES(ns)                                                              \
  inline namespace ns {                                                                            \
  void run_tiles(const Plan& plan, const std::vector<ArgData>& args, const OutShape& shape,         \
                 double* values, double* indices, const RunConfig& config);                        \
  }
KERNOPS_DECLARE_RUN_TILES(base)
KERNOPS_DECLARE_RUN_TILES(avx2)
KERNOPS_DECLARE_RUN_TILES(avx512)
#undef KERNOPS_DECLARE_RUN_TILES

}  // namespace cpu
}  // namespace kernops
