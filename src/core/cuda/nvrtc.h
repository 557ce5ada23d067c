// NVRTC, the CUDA run-time compiler, loaded with dlopen on first use: kernops never links
// libnvrtc, so the package builds and loads where no CUDA toolkit exists
// (Note [Loading CUDA lazily] in driver.h). Only the few entry points kernops needs are
// declared, with our own typedefs: no CUDA header is needed to build this.
// No R headers here.
#pragma once
#include <string>
#include <vector>

#include "../errors.h"

namespace kernops {
namespace cuda {

// A compile of generated source that NVRTC rejected: a bug in kernops' code generator,
// not a user mistake. Carries NVRTC's log; the glue adds the formula.
class CompileError : public Error {
 public:
  CompileError(const std::string& msg, std::string log) : Error(msg), log(std::move(log)) {}
  const char* kind() const noexcept override { return "internal"; }
  std::string log;
};

// What NVRTC produced for one source: a cubin for the requested architecture, or PTX for
// the newest virtual architecture NVRTC knows when the device is newer (the driver then
// compiles the PTX when the module is loaded).
struct CompiledImage {
  std::string image;  // cubin bytes, or PTX text
  bool is_ptx = false;
  std::string arch;   // "sm_90" (cubin) or "compute_90" (PTX)
  std::string log;    // NVRTC's log (warnings), may be empty
};

class Nvrtc {
 public:
  // The process's NVRTC, loaded on first call; throws BackendError (saying where it looked)
  // when no libnvrtc can be loaded.
  static Nvrtc& get();
  // Whether a libnvrtc can be loaded, without throwing; `why` gets the reason when not.
  static bool available(std::string* why = nullptr);

  // "13.0"
  std::string version() const;
  // Path of the library loaded (from dladdr), for backend_info().
  const std::string& library() const { return path_; }
  // Compute capabilities NVRTC can emit cubins for, e.g. {75, 80, 86, 89, 90, 100, 120}.
  const std::vector<int>& supported_archs() const { return archs_; }

  // Compiles `source` for compute capability `cc` (e.g. 90 for sm_90) with `options`
  // added to the architecture flag. Throws CompileError with NVRTC's log on failure, and
  // BackendError when `cc` is older than NVRTC supports.
  CompiledImage compile(const std::string& source, int cc, const std::vector<std::string>& options = {}) const;

  Nvrtc(const Nvrtc&) = delete;
  Nvrtc& operator=(const Nvrtc&) = delete;
  ~Nvrtc() = default;  // the library stays loaded for the life of the process

 private:
  Nvrtc() = default;
  struct Api;
  const Api* api_ = nullptr;
  std::string path_;
  int major_ = 0, minor_ = 0;
  std::vector<int> archs_;
  friend struct NvrtcLoader;
};

// Where kernops looks for libnvrtc, in order (for messages and tests): $KERNOPS_NVRTC_PATH,
// then the loader's search path (libnvrtc.so, libnvrtc.so.13, .12, .11.2), then
// $CUDA_HOME/lib64, the toolkit `configure` recorded (KERNOPS_CUDA_HOME) and
// /usr/local/cuda/lib64.
std::vector<std::string> nvrtc_candidates();

}  // namespace cuda
}  // namespace kernops
