// The CUDA driver API through dlopen (see driver.h, Note [Loading CUDA lazily]).
#include "driver.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstddef>
#include <mutex>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "cache.h"
#include "nvrtc.h"

namespace kernops {
namespace cuda {

namespace {

// Our own declarations of the driver API (cuda.h): opaque handles, int status codes,
// 64-bit device pointers. The _v2 entry points are the ones cuda.h maps the plain names to
// since CUDA 4.0 (64-bit sizes); cuDevicePrimaryCtxRelease_v2 since CUDA 11.
using CUresult = int;
using CUdevice = int;
using CUcontext = void*;
using CUmodule = void*;
using CUfunction = void*;
using CUstream = void*;
using CUdeviceptr = unsigned long long;
constexpr CUresult kSuccess = 0;
constexpr CUresult kOutOfMemory = 2;
constexpr CUresult kInsufficientDriver = 35;
constexpr CUresult kNoDevice = 100;
constexpr int kAttrMultiprocessors = 16;
constexpr int kAttrCcMajor = 75;
constexpr int kAttrCcMinor = 76;
constexpr int kFuncAttrMaxDynamicShared = 8;

struct Api {
  CUresult (*init)(unsigned);
  CUresult (*driver_version)(int*);
  CUresult (*device_count)(int*);
  CUresult (*device_get)(CUdevice*, int);
  CUresult (*device_name)(char*, int, CUdevice);
  CUresult (*device_total_mem)(std::size_t*, CUdevice);
  CUresult (*device_attribute)(int*, int, CUdevice);
  CUresult (*primary_ctx_retain)(CUcontext*, CUdevice);
  CUresult (*ctx_set_current)(CUcontext);
  CUresult (*mem_alloc)(CUdeviceptr*, std::size_t);
  CUresult (*mem_free)(CUdeviceptr);
  CUresult (*memcpy_htod)(CUdeviceptr, const void*, std::size_t);
  CUresult (*memcpy_dtoh)(void*, CUdeviceptr, std::size_t);
  CUresult (*mem_info)(std::size_t*, std::size_t*);
  CUresult (*module_load_data)(CUmodule*, const void*);
  CUresult (*module_get_function)(CUfunction*, CUmodule, const char*);
  CUresult (*func_set_attribute)(CUfunction, int, int);
  CUresult (*launch_kernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                            CUstream, void**, void**);
  CUresult (*ctx_synchronize)();
  CUresult (*error_string)(CUresult, const char**);
};

// The process's driver state: loaded and initialised once, then read-only except the
// "unusable" mark and the module table, both under `mutex`.
struct State {
  std::mutex mutex;
  bool loaded = false;
  Api api{};
  ProbeResult probe;
  std::string forced_failure;  // test hook
  pid_t pid = 0;               // the process that loaded the driver (see probe())
  CUcontext ctx = nullptr;     // primary context of device 0, retained for the process
  CUdevice dev = 0;
  std::unordered_map<std::string, std::shared_ptr<Module>> modules;  // by cache key hash
};

State& state() {
  static State s;
  return s;
}

std::string error_text(const Api& api, CUresult rc) {
  const char* s = nullptr;
  if (api.error_string && api.error_string(rc, &s) == kSuccess && s) return s;
  return "CUDA error " + std::to_string(rc);
}

// Loads and initialises the driver, fills s.probe. Called once, under s.mutex.
void load(State& s) {
  s.loaded = true;
  s.pid = getpid();
  ProbeResult& p = s.probe;
  void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    p.why = "no CUDA driver (libcuda.so.1 not found)";
    return;
  }
  Api& a = s.api;
  std::string missing;
  auto sym = [&](auto& fn, const char* name, const char* fallback = nullptr) {
    void* f = dlsym(h, name);
    if (!f && fallback) f = dlsym(h, fallback);
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(f);
    if (!f && missing.empty()) missing = name;
  };
  sym(a.init, "cuInit");
  sym(a.driver_version, "cuDriverGetVersion");
  sym(a.device_count, "cuDeviceGetCount");
  sym(a.device_get, "cuDeviceGet");
  sym(a.device_name, "cuDeviceGetName");
  sym(a.device_total_mem, "cuDeviceTotalMem_v2");
  sym(a.device_attribute, "cuDeviceGetAttribute");
  sym(a.primary_ctx_retain, "cuDevicePrimaryCtxRetain");
  sym(a.ctx_set_current, "cuCtxSetCurrent");
  sym(a.mem_alloc, "cuMemAlloc_v2");
  sym(a.mem_free, "cuMemFree_v2");
  sym(a.memcpy_htod, "cuMemcpyHtoD_v2");
  sym(a.memcpy_dtoh, "cuMemcpyDtoH_v2");
  sym(a.mem_info, "cuMemGetInfo_v2");
  sym(a.module_load_data, "cuModuleLoadData");
  sym(a.module_get_function, "cuModuleGetFunction");
  sym(a.func_set_attribute, "cuFuncSetAttribute");
  sym(a.launch_kernel, "cuLaunchKernel");
  sym(a.ctx_synchronize, "cuCtxSynchronize");
  sym(a.error_string, "cuGetErrorString");
  Dl_info info;
  if (a.init && dladdr(reinterpret_cast<void*>(a.init), &info) && info.dli_fname) p.library = info.dli_fname;
  if (p.library.find("/stubs/") != std::string::npos) {
    p.why = "no CUDA driver (only the toolkit's stub library was found, at " + p.library + ")";
    return;
  }
  if (!missing.empty()) {
    p.why = "the CUDA driver is too old (libcuda.so.1 lacks " + missing + ")";
    return;
  }
  a.driver_version(&p.driver_version);
  CUresult rc = a.init(0);
  if (rc == kNoDevice) {
    p.why = "no CUDA device (the driver is installed but found no GPU)";
    return;
  }
  if (rc == kInsufficientDriver) {
    p.why = "the CUDA driver (" + driver_version_string(p.driver_version) + ") is too old for this GPU";
    return;
  }
  if (rc != kSuccess) {
    p.why = "the CUDA driver failed to initialise (cuInit: " + error_text(a, rc) + ")";
    return;
  }
  if (a.device_count(&p.device_count) != kSuccess || p.device_count < 1) {
    p.why = "no CUDA device";
    return;
  }
  rc = a.device_get(&s.dev, 0);
  char name[256] = {0};
  if (rc == kSuccess) rc = a.device_name(name, sizeof name - 1, s.dev);
  if (rc == kSuccess) rc = a.device_total_mem(&p.total_memory, s.dev);
  if (rc == kSuccess) rc = a.device_attribute(&p.cc_major, kAttrCcMajor, s.dev);
  if (rc == kSuccess) rc = a.device_attribute(&p.cc_minor, kAttrCcMinor, s.dev);
  if (rc == kSuccess) rc = a.device_attribute(&p.multiprocessors, kAttrMultiprocessors, s.dev);
  if (rc == kSuccess) rc = a.primary_ctx_retain(&s.ctx, s.dev);
  if (rc != kSuccess) {
    p.why = "the CUDA device could not be opened (" + error_text(a, rc) + ")";
    return;
  }
  p.device_name = name;
  p.usable = true;
}

State& loaded_state() {
  State& s = state();
  if (!s.loaded) load(s);
  return s;
}

[[noreturn]] void fail(const Api& a, CUresult rc, const char* what) {
  if (rc == kOutOfMemory)
    throw DeviceMemoryError(std::string("the GPU ran out of memory (") + what + ")");
  throw BackendError(std::string("CUDA: ") + what + " failed: " + error_text(a, rc));
}

void check(const Api& a, CUresult rc, const char* what) {
  if (rc != kSuccess) fail(a, rc, what);
}

struct CudaModule : Module {
  const Api* api = nullptr;
  CUmodule mod = nullptr;
  std::mutex mutex;
  std::unordered_map<std::string, CUfunction> functions;
  std::unordered_map<std::string, std::int64_t> shared_set;  // dynamic shared memory allowed so far
  // Modules live for the process (State::modules), as the primary context does: unloading
  // at exit would race the driver's own teardown.
};

}  // namespace

std::string driver_version_string(int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); }

ProbeResult probe() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.loaded) load(s);
  ProbeResult p = s.probe;
  // A child forked after cuInit (a multicore future, parallel::mclapply) inherits a driver
  // state that CUDA does not support there: its calls fail or hang. It computes on the CPU.
  if (p.usable && getpid() != s.pid) {
    p.usable = false;
    p.why = "CUDA was initialised in the parent of this forked process (a multicore future or mclapply), and "
            "CUDA cannot be used after fork(); use a multisession plan for GPU work in workers";
  }
  if (!s.forced_failure.empty()) {
    p.usable = false;
    p.why = s.forced_failure;
  }
  return p;
}

void mark_unusable(const std::string& why) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.loaded) load(s);
  s.probe.usable = false;
  s.probe.why = why;
}

void force_probe_failure(const std::string& why) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.forced_failure = why;
}

CudaDevice::CudaDevice() {
  const ProbeResult p = probe();
  if (!p.usable) throw BackendError("CUDA is not usable: " + p.why);
  State& s = loaded_state();
  check(s.api, s.api.ctx_set_current(s.ctx), "cuCtxSetCurrent");
  ctx_ = s.ctx;
  dev_ = s.dev;
  cc_ = p.cc_major * 10 + p.cc_minor;
  sms_ = p.multiprocessors;
}

CudaDevice::~CudaDevice() = default;  // the primary context stays retained (see State)

std::size_t CudaDevice::free_memory() {
  const Api& a = state().api;
  std::size_t free_b = 0, total = 0;
  check(a, a.mem_info(&free_b, &total), "cuMemGetInfo");
  return free_b;
}

int CudaDevice::multiprocessors() { return sms_; }

void* CudaDevice::alloc(std::size_t bytes) {
  const Api& a = state().api;
  CUdeviceptr p = 0;
  const CUresult rc = a.mem_alloc(&p, bytes);
  if (rc == kOutOfMemory)
    throw DeviceMemoryError("the GPU ran out of memory allocating " + std::to_string(bytes) + " bytes");
  check(a, rc, "cuMemAlloc");
  return reinterpret_cast<void*>(static_cast<std::uintptr_t>(p));
}

void CudaDevice::free(void* p) noexcept {
  if (p) state().api.mem_free(static_cast<CUdeviceptr>(reinterpret_cast<std::uintptr_t>(p)));
}

void CudaDevice::copy_to_device(void* dst, const void* src, std::size_t bytes) {
  const Api& a = state().api;
  check(a, a.memcpy_htod(static_cast<CUdeviceptr>(reinterpret_cast<std::uintptr_t>(dst)), src, bytes),
        "cuMemcpyHtoD");
}

void CudaDevice::copy_to_host(void* dst, const void* src, std::size_t bytes) {
  const Api& a = state().api;
  check(a, a.memcpy_dtoh(dst, static_cast<CUdeviceptr>(reinterpret_cast<std::uintptr_t>(src)), bytes),
        "cuMemcpyDtoH");
}

std::shared_ptr<Module> CudaDevice::load(const KernelSource& src) {
  const Nvrtc& nvrtc = Nvrtc::get();
  CacheKey key;
  key.source = src.source;
  key.compiler_version = nvrtc.version();
  key.cc = cc_;
  const std::string h = key.hash();
  State& s = state();
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    auto it = s.modules.find(h);
    if (it != s.modules.end()) return it->second;
  }
  auto img = KernelCache::global().get(key, [&] { return nvrtc.compile(key.source, key.cc, key.options); });
  auto m = std::make_shared<CudaModule>();
  m->api = &s.api;
  // A PTX image is NUL-terminated text for the driver's JIT; a cubin is read by its header.
  const std::string data = img->is_ptx ? img->image + '\0' : img->image;
  check(s.api, s.api.module_load_data(&m->mod, data.data()), "cuModuleLoadData");
  std::lock_guard<std::mutex> lock(s.mutex);
  return s.modules.emplace(h, m).first->second;
}

void CudaDevice::launch(Module& mod, const std::string& name, Grid grid, int block, std::int64_t shared_bytes,
                        const LaunchArgs& args) {
  auto& m = static_cast<CudaModule&>(mod);
  const Api& a = *m.api;
  CUfunction f = nullptr;
  {
    std::lock_guard<std::mutex> lock(m.mutex);
    auto it = m.functions.find(name);
    if (it == m.functions.end()) {
      check(a, a.module_get_function(&f, m.mod, name.c_str()), "cuModuleGetFunction");
      it = m.functions.emplace(name, f).first;
    }
    f = it->second;
    // Above 48 KB of dynamic shared memory a kernel must opt in.
    if (shared_bytes > 48 * 1024 && m.shared_set[name] < shared_bytes) {
      check(a, a.func_set_attribute(f, kFuncAttrMaxDynamicShared, static_cast<int>(shared_bytes)),
            "cuFuncSetAttribute(max dynamic shared memory)");
      m.shared_set[name] = shared_bytes;
    }
  }
  LaunchArgs copy = args;
  void* params[] = {&copy};
  check(a,
        a.launch_kernel(f, static_cast<unsigned>(grid.x), static_cast<unsigned>(grid.y), 1,
                        static_cast<unsigned>(block), 1, 1, static_cast<unsigned>(shared_bytes), nullptr, params,
                        nullptr),
        "cuLaunchKernel");
}

void CudaDevice::synchronize() {
  const Api& a = state().api;
  const CUresult rc = a.ctx_synchronize();
  if (rc == kSuccess) return;
  // A kernel fault leaves the context unusable for the rest of the process: from now on
  // "auto" runs on the CPU, which still works (the CPU path shares nothing with this).
  const std::string msg = "a CUDA kernel failed: " + error_text(a, rc);
  mark_unusable(msg + " (the GPU is unusable for the rest of this session)");
  throw BackendError(msg);
}

}  // namespace cuda
}  // namespace kernops
