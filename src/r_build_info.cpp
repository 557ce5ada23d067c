// r_build_info.cpp -- what this build of kernops was compiled with, for backend_info().
// The CUDA macros come from src/Makevars (written by `configure`): they only record where a
// toolkit was at build time; whether a driver/GPU exists is decided at run time, elsewhere.
#include <Rcpp.h>

#include <string>

#include "core/fp_env.h"

namespace {

// Instruction-set macros the compiler defined for the baseline target (R's flags: no -march).
std::string simd_baseline() {
  std::string s;
  auto add = [&s](const char* name) { s += s.empty() ? name : std::string(" ") + name; };
#ifdef __SSE2__
  add("SSE2");
#endif
#ifdef __AVX2__
  add("AVX2");
#endif
#ifdef __FMA__
  add("FMA");
#endif
#ifdef __AVX512F__
  add("AVX512F");
#endif
#if defined(__ARM_NEON) || defined(__ARM_NEON__)
  add("NEON");
#endif
  return s.empty() ? "none" : s;
}

std::string compiler_version() {
#if defined(__clang__)
  return __VERSION__;  // already reads "Clang ..." / "Apple LLVM ..."
#elif defined(__GNUC__)
  return std::string("GCC ") + __VERSION__;
#elif defined(__VERSION__)
  return __VERSION__;
#else
  return "unknown";
#endif
}

}  // namespace

// [[Rcpp::export]]
Rcpp::List cpp_build_info() {
#ifdef KERNOPS_HAVE_CUDA_TOOLKIT
  const bool cuda_toolkit = true;
#else
  const bool cuda_toolkit = false;
#endif
#ifdef KERNOPS_CUDA_HOME
  Rcpp::CharacterVector cuda_home = Rcpp::CharacterVector::create(KERNOPS_CUDA_HOME);
#else
  Rcpp::CharacterVector cuda_home = Rcpp::CharacterVector::create(NA_STRING);
#endif
#ifdef KERNOPS_CUDA_VERSION
  Rcpp::CharacterVector cuda_version = Rcpp::CharacterVector::create(KERNOPS_CUDA_VERSION);
#else
  Rcpp::CharacterVector cuda_version = Rcpp::CharacterVector::create(NA_STRING);
#endif
  return Rcpp::List::create(
      Rcpp::Named("cuda_toolkit") = cuda_toolkit,
      Rcpp::Named("cuda_home") = cuda_home,
      Rcpp::Named("cuda_version") = cuda_version,
      Rcpp::Named("compiler") = compiler_version(),
      Rcpp::Named("cxx_std") = static_cast<int>(__cplusplus),
      Rcpp::Named("simd_flags") = simd_baseline());
}

// The calling thread's floating-point control register (x86 MXCSR, AArch64 FPCR; NA where
// unknown), for the tests that check that a reduction leaves it as it found it: reductions
// flush subnormals to zero while they run (Note [Subnormals] in core/fp_env.h).
// [[Rcpp::export(.fp_control)]]
double fp_control_register() {
  return kernops::kFlushBits == 0 ? NA_REAL : static_cast<double>(kernops::fp_control());
}
