// The floating-point environment of a reduction: subnormal numbers flushed to zero while
// it runs, the caller's environment restored afterwards. No R headers here.
//
// Note [Subnormals]
// A kernel value below the smallest normal number (float64 2.2e-308, float32 1.2e-38) is a
// subnormal. Intel CPUs compute with subnormals through microcode assists, ~100 cycles an
// operation: a Gaussian kernel at a small bandwidth, or exp(F - max) in every LogSumExp of a
// Sinkhorn loop with a small blur, made most pairs subnormal and the reduction 6-22x slower
// (issue 17; AMD's Zen hides the cost). While a reduction runs, every thread that computes
// it sets FTZ on x86: a result below the normal range becomes 0. So contributions below the
// smallest normal number are dropped, which changes no sum by more than that amount, and a
// LogSumExp not at all (its terms are relative to the largest, which is 1); everything else
// is unchanged. DAZ (subnormal *inputs* read as 0) is left off: the engine's own values are
// then never subnormal, so it would gain nothing, and it would change a user's subnormal
// data (Log(1e-310) would be -Inf). AArch64 has one bit for both (FPCR.FZ): there subnormal
// inputs do read as 0. The state is saved and
// restored by a scope guard on every exit path (errors and interrupts included), so R's own
// arithmetic on the calling thread never sees it. Setting it costs two instructions per task.
#pragma once

#if defined(__x86_64__) || defined(_M_X64) || (defined(__i386__) && defined(__SSE2__))
#include <xmmintrin.h>
#define KERNOPS_FP_ENV_X86 1
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#define KERNOPS_FP_ENV_ARM64 1
#endif

namespace kernops {

// The control bits that this guard sets; 0 where the platform has none we know.
#if defined(KERNOPS_FP_ENV_X86)
constexpr unsigned long kFlushBits = 0x8000;  // MXCSR: FTZ (bit 15)
#elif defined(KERNOPS_FP_ENV_ARM64)
constexpr unsigned long kFlushBits = 1ul << 24;  // FPCR: FZ
#else
constexpr unsigned long kFlushBits = 0;
#endif

// The calling thread's floating-point control register (MXCSR, FPCR), or 0 where unknown.
inline unsigned long fp_control() {
#if defined(KERNOPS_FP_ENV_X86)
  return _mm_getcsr();
#elif defined(KERNOPS_FP_ENV_ARM64)
  unsigned long v;
  __asm__ __volatile__("mrs %0, fpcr" : "=r"(v));
  return v;
#else
  return 0;
#endif
}

inline void set_fp_control(unsigned long v) {
#if defined(KERNOPS_FP_ENV_X86)
  _mm_setcsr(static_cast<unsigned int>(v));
#elif defined(KERNOPS_FP_ENV_ARM64)
  __asm__ __volatile__("msr fpcr, %0" : : "r"(v));
#else
  (void)v;
#endif
}

// Flushes subnormals to zero on this thread for the guard's lifetime (Note [Subnormals]).
class FlushSubnormals {
 public:
  FlushSubnormals() : saved_(fp_control()) {
    if ((saved_ & kFlushBits) != kFlushBits) set_fp_control(saved_ | kFlushBits);
  }
  ~FlushSubnormals() { set_fp_control(saved_); }  // exception flags included: bit for bit
  FlushSubnormals(const FlushSubnormals&) = delete;
  FlushSubnormals& operator=(const FlushSubnormals&) = delete;

 private:
  unsigned long saved_;
};

}  // namespace kernops
