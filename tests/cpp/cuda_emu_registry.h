// The generated CUDA kernels of cuda_cases.h compiled as host C++ against cuda_emu.h: the
// build writes them (cuda_emu_gen.cpp) and test_cuda_emu.cpp runs them. Test-only.
#pragma once
#include "cuda/kernel_abi.h"

namespace kernops_test {

struct EmuKernel {
  const char* source;  // the text compiled in, to detect a stale build
  // The reduce kernel on a grid (grid_x, grid_y) of blocks of `block` threads, and the merge
  // kernel on (grid_x, 1), as the runtime launches them (kernel_abi.h).
  void (*reduce)(const kernops::cuda::LaunchArgs& args, unsigned grid_x, unsigned grid_y, unsigned block);
  void (*merge)(const kernops::cuda::LaunchArgs& args, unsigned grid_x, unsigned block);
};

// In the order of cuda_cases().
extern const EmuKernel kEmuKernels[];
extern const int kEmuKernelCount;

}  // namespace kernops_test
