// The CUDA driver API, loaded with dlopen("libcuda.so.1") on first use, through our own
// typedefs of the few entry points kernops calls; probe() says whether a GPU is usable and,
// if not, why. CudaDevice implements the runtime's Device interface (device.h) with it.
// No R headers, no CUDA headers here.
//
// Note [Loading CUDA lazily]
// kernops never links libcuda or libnvrtc (as PyTorch's ATen/cuda/nvrtc_stub: "we want our
// GPU build to work on CPU machines"): a package linked with -lcuda fails to *load* on a
// machine without a driver. Both are dlopen()ed the first time CUDA is asked for, and
// their absence is a value (probe()) or a BackendError, never a crash. Only the driver's
// runtime soname, libcuda.so.1, is opened: the toolkit's stubs/libcuda.so exists so that
// programs link without a driver, and every call into it fails; a libcuda.so.1 that
// resolves into a "stubs" directory is refused for the same reason.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "device.h"

namespace kernops {
namespace cuda {

struct ProbeResult {
  bool usable = false;
  std::string why;            // when not usable: "no CUDA driver (libcuda.so.1 not found)", ...
  std::string library;        // path of the libcuda loaded
  int driver_version = 0;     // cuDriverGetVersion: 12040 for 12.4
  int device_count = 0;
  std::string device_name;    // device 0
  std::size_t total_memory = 0;  // bytes
  int cc_major = 0, cc_minor = 0;
  int multiprocessors = 0;
};

// Loads the driver (once per process), initialises it and describes device 0. Never
// throws. The answer is remembered; a device that failed later is reported by
// mark_unusable(), so that "auto" stops choosing it for the rest of the session.
ProbeResult probe();
void mark_unusable(const std::string& why);
// Test hook: probe() answers "unusable: why" from now on (empty `why` restores the real probe).
void force_probe_failure(const std::string& why);

// "12.4" from 12040.
std::string driver_version_string(int v);

// Device 0 through the driver API, its primary context made current on the calling thread.
// Throws BackendError (with the driver's message) when probe() says the GPU is unusable.
class CudaDevice : public Device {
 public:
  CudaDevice();
  ~CudaDevice() override;
  std::size_t free_memory() override;
  int multiprocessors() override;
  void* alloc(std::size_t bytes) override;
  void free(void* p) noexcept override;
  void copy_to_device(void* dst, const void* src, std::size_t bytes) override;
  void copy_to_host(void* dst, const void* src, std::size_t bytes) override;
  std::shared_ptr<Module> load(const KernelSource& src) override;
  void launch(Module& m, const std::string& name, Grid grid, int block, std::int64_t shared_bytes,
              const LaunchArgs& args) override;
  void synchronize() override;

  // Compute capability as NVRTC wants it: 90 for 9.0.
  int compute_capability() const { return cc_; }

 private:
  void* ctx_ = nullptr;  // CUcontext (the primary context, retained)
  int dev_ = 0;          // CUdevice
  int cc_ = 0;
  int sms_ = 0;
};

}  // namespace cuda
}  // namespace kernops
