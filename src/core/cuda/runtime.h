// Runs one reduction on a CUDA device: the arguments converted to the kernel_abi.h layout,
// chunked launches over the output rows to bound device memory and the time between two
// interrupt checks, then windows of the reduced side launched in turn (the state carried by
// the merge kernel) when a chunk's launch would still be too long, the reduced side split
// over gridDim.y (with the merge kernel) when there are too few output rows to fill the
// device, and the results converted back to the
// column-major doubles run_cpu() writes. The kernels themselves come as a KernelSource
// (codegen.h: generate_cuda(plan, dtype)); the device is an interface (device.h), so that
// tests run this logic on the host. No R headers, no CUDA headers here.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../kernops.h"
#include "device.h"
#include "kernel_abi.h"

namespace kernops {
namespace cuda {

// Pairs per launch above which a launch is cut, over the output rows first (unless that
// leaves fewer rows than fill the device), then into windows of the reduced side:
// ~20 ms of W1 on an H100, the longest an interrupt waits. Unmeasured.
constexpr std::int64_t kPairsPerLaunch = std::int64_t{1} << 36;
// Resident threads per multiprocessor counted as "full" (2048 on every GPU since sm_50).
constexpr std::int64_t kThreadsPerSm = 2048;

struct CudaRunConfig {
  Dtype dtype = Dtype::Float64;
  Control* control = nullptr;     // interrupt polling between launches, on the calling thread
  std::int64_t chunk_rows = 0;    // output rows per launch; 0: chosen (launch_shape)
  double memory_fraction = 0.8;   // of the device's free memory a run may use
  std::int64_t pairs_per_launch = kPairsPerLaunch;  // smaller in tests, to cover the windows
};

// How the output rows are cut into launches, and the reduced side into windows (one launch
// each, in turn) and splits (gridDim.y of one launch).
struct LaunchShape {
  std::int64_t chunk_rows = 0;    // output rows per launch (the last one may have fewer)
  std::int64_t j_per_launch = 0;  // reduced rows per window (n_j when there is one)
  std::int64_t n_split = 1;       // gridDim.y of the reduce kernel (at most)
  std::int64_t j_per_split = 0;   // reduced rows per split, a multiple of the block size
};

// The launch arithmetic alone (unit-tested): n_i output rows, n_j reduced rows, the
// kernels' block size and state width, bytes per element of T, device memory available
// for outputs and states (after the inputs), the device's multiprocessors and largest
// gridDim.y, and a forced chunk size (0: none). Throws DeviceMemoryError when not even one
// row fits.
LaunchShape launch_shape(std::int64_t n_i, std::int64_t n_j, const KernelSource& src, std::size_t elem,
                         std::size_t budget_bytes, int multiprocessors, std::int64_t max_grid_y,
                         std::int64_t chunk_rows, std::int64_t pairs_per_launch = kPairsPerLaunch);

// Runs the reduction of `plan` with the kernels of `src` on `dev`. `args` and `shape` as for
// run_cpu() (check_args() already passed); `values` (shape.rows x value_cols) and `indices`
// (shape.rows x index_cols, 0-based, -1 for none) are column-major doubles, preallocated.
// Throws DeviceMemoryError (inputs or one chunk do not fit), Interrupted, InputError (float32
// range), BackendError (device failures).
void run_cuda(Device& dev, const Plan& plan, const KernelSource& src, const std::vector<ArgData>& args,
              const OutShape& shape, double* values, double* indices, const CudaRunConfig& config);

}  // namespace cuda
}  // namespace kernops
