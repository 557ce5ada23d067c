// The CUDA backend's entry points (see backend.h).
#include "backend.h"

#include <cstdlib>

#include "codegen.h"
#include "driver.h"
#include "nvrtc.h"

namespace kernops {
namespace cuda {

namespace {

std::string formula_text(const Plan& plan) {
  try {
    return plan.formula.to_string();
  } catch (const Error&) {
    return "(a formula too large to write out)";
  }
}

}  // namespace

std::string nvrtc_driver_mismatch(const std::string& nvrtc_version, int driver_version) {
  const int nvrtc_major = std::atoi(nvrtc_version.c_str());
  if (driver_version <= 0 || nvrtc_major <= driver_version / 1000) return "";
  return "NVRTC " + nvrtc_version + " is newer than the CUDA driver (" + driver_version_string(driver_version) +
         "), which cannot load its kernels; install the NVRTC of CUDA " + std::to_string(driver_version / 1000) +
         " or point KERNOPS_NVRTC_PATH at it";
}

bool usable(std::string* why) {
  const ProbeResult p = probe();
  std::string reason;
  if (!p.usable) {
    reason = p.why;
  } else if (Nvrtc::available(&reason)) {
    reason = nvrtc_driver_mismatch(Nvrtc::get().version(), p.driver_version);
    if (reason.empty()) return true;
  }
  if (why) *why = reason;
  return false;
}

void run(const Plan& plan, const std::vector<ArgData>& args, const OutShape& shape, double* values,
         double* indices, const CudaRunConfig& config) {
  std::string why;
  if (!usable(&why)) throw BackendError("CUDA is not usable: " + why);
  CudaDevice dev;
  // A formula the generator or the runtime refuses (an op without CUDA code, values too wide
  // for a thread, for shared memory or for the device's memory) is a backend that cannot serve
  // it, not a fault of the formula: a BackendError, so that "auto" computes it on the CPU.
  // The device stays usable (no mark_unusable()).
  KernelSource src;
  try {
    src = generate_cuda(plan, config.dtype);
  } catch (const UnsupportedError& e) {
    throw BackendError(e.what());
  }
  try {
    run_cuda(dev, plan, src, args, shape, values, indices, config);
  } catch (const UnsupportedError& e) {
    throw BackendError(e.what());  // this formula on this device; the device is fine
  } catch (const CompileError& e) {
    throw CompileError(std::string(e.what()) + "\nFormula: " + formula_text(plan) + "\nNVRTC log:\n" + e.log,
                       e.log);
  } catch (const DeviceMemoryError& e) {
    throw DeviceMemoryError(std::string(e.what()) +
                            "; use smaller chunks (option kernops.cuda_chunk_rows) or backend = \"cpu\"");
  } catch (const BackendError& e) {
    // A device that failed (a launch, a copy, a module load) is not tried again in this
    // process: "auto" goes to the CPU from now on, and backend_info() says why.
    mark_unusable(std::string("the GPU failed earlier in this session: ") + e.what());
    throw;
  }
}

}  // namespace cuda
}  // namespace kernops
