// The few things the CUDA runtime (runtime.h: chunked launches, split / merge) asks of a
// device: memory, copies, loading a kernel source, launching, waiting. The driver API
// implements it (driver.h: CudaDevice); tests implement it on the host (a fake device, and
// the CPU emulation of generated kernels), so the launch arithmetic is tested without a GPU.
// No R headers, no CUDA headers here.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "../errors.h"
#include "kernel_abi.h"

namespace kernops {
namespace cuda {

// The device ran out of memory. The glue makes it a kernops_error_memory that suggests
// smaller chunks (option kernops.cuda_chunk_rows) or backend = "cpu".
class DeviceMemoryError : public MemoryError {
 public:
  explicit DeviceMemoryError(const std::string& msg) : MemoryError(msg) {}
};

// A loaded kernel source (a CUDA module, or the emulation's host functions).
struct Module {
  virtual ~Module() = default;
};

struct Grid {
  std::int64_t x = 1, y = 1;
};

class Device {
 public:
  virtual ~Device() = default;
  // Free device memory now, in bytes (cuMemGetInfo).
  virtual std::size_t free_memory() = 0;
  // Number of multiprocessors: how many threads it takes to fill the device.
  virtual int multiprocessors() = 0;
  // Largest gridDim.y (65535 on every CUDA device so far).
  virtual std::int64_t max_grid_y() { return 65535; }
  // Device memory; alloc throws DeviceMemoryError when there is not enough, free never throws.
  virtual void* alloc(std::size_t bytes) = 0;
  virtual void free(void* p) noexcept = 0;
  virtual void copy_to_device(void* dst, const void* src, std::size_t bytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, std::size_t bytes) = 0;
  // Compiles (through the cubin cache) and loads the source's kernels.
  virtual std::shared_ptr<Module> load(const KernelSource& src) = 0;
  // Launches kernel `name` of `m` with blockDim.x = block, `shared_bytes` of dynamic shared
  // memory and `args` as its only parameter (by value); asynchronous.
  virtual void launch(Module& m, const std::string& name, Grid grid, int block, std::int64_t shared_bytes,
                      const LaunchArgs& args) = 0;
  // Waits for every launch and copy; reports a failed kernel.
  virtual void synchronize() = 0;
};

// Device memory owned for the scope of a run (RAII over Device::alloc / free).
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(Device& d, std::size_t bytes) : dev_(&d), p_(bytes ? d.alloc(bytes) : nullptr) {}
  DeviceBuffer(DeviceBuffer&& o) noexcept : dev_(o.dev_), p_(o.p_) { o.p_ = nullptr; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      dev_ = o.dev_;
      p_ = o.p_;
      o.p_ = nullptr;
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { reset(); }
  void* get() const { return p_; }

 private:
  void reset() noexcept {
    if (p_ && dev_) dev_->free(p_);
    p_ = nullptr;
  }
  Device* dev_ = nullptr;
  void* p_ = nullptr;
};

}  // namespace cuda
}  // namespace kernops
