// The CUDA backend as the hosts (the R glue, the standalone driver) see it: is it usable,
// and run one reduction on it. This is where the code generator (codegen.h:
// generate_cuda) meets the runtime (runtime.h: run_cuda) and the device (driver.h).
// No R headers, no CUDA headers here.
#pragma once
#include <string>
#include <vector>

#include "../kernops.h"
#include "runtime.h"

namespace kernops {
namespace cuda {

// Why kernels from this NVRTC ("13.0") cannot load on this driver (cuDriverGetVersion,
// 12040 for 12.4): a newer major version than the driver's; "" when they can.
std::string nvrtc_driver_mismatch(const std::string& nvrtc_version, int driver_version);

// Whether a reduction can run on CUDA now; `why` gets the reason when not (no driver, no
// device, no NVRTC, the device failed earlier in this session).
bool usable(std::string* why = nullptr);

// Runs `plan` on device 0 (see run_cuda for the arguments). Errors: BackendError when CUDA
// is unusable; CompileError (NVRTC rejected generated code, a kernops bug) with the formula
// in its message and NVRTC's log; DeviceMemoryError, whose message suggests smaller chunks
// or the CPU; Interrupted.
void run(const Plan& plan, const std::vector<ArgData>& args, const OutShape& shape, double* values,
         double* indices, const CudaRunConfig& config);

}  // namespace cuda
}  // namespace kernops
