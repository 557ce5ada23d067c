// CUDA code generation: a Plan printed as one CUDA C++ translation unit holding the fused
// reduction kernel and its split-merge kernel, for one dtype (kernel_abi.h is the contract
// with the runtime that compiles and launches them). The source needs no header at all, so
// NVRTC compiles it offline and the CPU emulation in tests/cpp runs the very same text.
// Pure C++17: no R headers, no CUDA headers. No R headers here.
#pragma once
#include "../kernops.h"
#include "kernel_abi.h"

namespace kernops {
namespace cuda {

struct CodegenOptions {
  // Threads per block (one output row each), 1..1024. The j-tile staged in shared memory
  // holds as many points, fewer when the j-level values are too wide for kMaxSharedBytes.
  // The tests use small blocks, so that the emulation covers partial tiles and blocks.
  int block_size = 128;
};

// Static shared memory per block that the generator stays within: the limit every CUDA
// device accepts without opting in (cuFuncSetAttribute) to more.
constexpr std::int64_t kMaxSharedBytes = 48 * 1024;

// Per-thread array bytes (every value of the formula and the reducer's state) the generator
// accepts: half the hardware's 512 KB stack frame a thread (see check_thread_arrays() in
// codegen.cpp; the runtime also budgets what the frames of a full device take).
constexpr std::int64_t kMaxThreadArrayBytes = 256 * 1024;

// The kernels of `plan` for `dtype`. Throws UnsupportedError naming the op when an
// instruction has no CUDA form, when one j-level point alone outgrows kMaxSharedBytes, or
// when the per-thread arrays outgrow kMaxThreadArrayBytes.
KernelSource generate_cuda(const Plan& plan, Dtype dtype);
KernelSource generate_cuda(const Plan& plan, Dtype dtype, const CodegenOptions& options);

}  // namespace cuda
}  // namespace kernops
