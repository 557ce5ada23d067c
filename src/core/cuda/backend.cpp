// The CUDA backend's entry points (see backend.h).
#include "backend.h"

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

bool usable(std::string* why) {
  const ProbeResult p = probe();
  std::string reason;
  if (!p.usable) {
    reason = p.why;
  } else if (Nvrtc::available(&reason)) {
    return true;
  }
  if (why) *why = reason;
  return false;
}

void run(const Plan& plan, const std::vector<ArgData>& args, const OutShape& shape, double* values,
         double* indices, const CudaRunConfig& config) {
  std::string why;
  if (!usable(&why)) throw BackendError("CUDA is not usable: " + why);
  CudaDevice dev;
  const KernelSource src = generate_cuda(plan, config.dtype);
  try {
    run_cuda(dev, plan, src, args, shape, values, indices, config);
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
