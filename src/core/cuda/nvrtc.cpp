// NVRTC through dlopen (see nvrtc.h and Note [Loading CUDA lazily] in driver.h).
#include "nvrtc.h"

#include <dlfcn.h>

#include <algorithm>
#include <clocale>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <type_traits>

namespace kernops {
namespace cuda {

namespace {

// Our own declarations of the NVRTC C API (nvrtc.h of CUDA 11.2+): the types are opaque
// handles and int status codes, stable across versions.
using nvrtcResult = int;
using nvrtcProgram = void*;
constexpr nvrtcResult kNvrtcSuccess = 0;

}  // namespace

struct Nvrtc::Api {
  nvrtcResult (*version)(int*, int*);
  nvrtcResult (*num_archs)(int*);        // nvrtcGetNumSupportedArchs (11.2+), may be null
  nvrtcResult (*archs)(int*);            // nvrtcGetSupportedArchs
  nvrtcResult (*create)(nvrtcProgram*, const char*, const char*, int, const char* const*, const char* const*);
  nvrtcResult (*compile)(nvrtcProgram, int, const char* const*);
  nvrtcResult (*log_size)(nvrtcProgram, std::size_t*);
  nvrtcResult (*log)(nvrtcProgram, char*);
  nvrtcResult (*cubin_size)(nvrtcProgram, std::size_t*);
  nvrtcResult (*cubin)(nvrtcProgram, char*);
  nvrtcResult (*ptx_size)(nvrtcProgram, std::size_t*);
  nvrtcResult (*ptx)(nvrtcProgram, char*);
  nvrtcResult (*destroy)(nvrtcProgram*);
  const char* (*error_string)(nvrtcResult);
};

std::vector<std::string> nvrtc_candidates() {
  std::vector<std::string> out;
  if (const char* p = std::getenv("KERNOPS_NVRTC_PATH"))
    if (*p) out.emplace_back(p);
  // NVRTC's soname carries the CUDA major version (libnvrtc.so.12 for all of CUDA 12;
  // CUDA 11.x used libnvrtc.so.11.2); the unversioned name exists only with a toolkit.
  const char* names[] = {"libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2"};
  for (const char* n : names) out.emplace_back(n);
  std::vector<std::string> dirs;
  if (const char* h = std::getenv("CUDA_HOME"))
    if (*h) dirs.push_back(std::string(h) + "/lib64");
#ifdef KERNOPS_CUDA_HOME
  dirs.push_back(std::string(KERNOPS_CUDA_HOME) + "/lib64");
#endif
  dirs.emplace_back("/usr/local/cuda/lib64");
  for (const auto& d : dirs)
    for (const char* n : names) out.push_back(d + "/" + n);
  return out;
}

struct NvrtcLoader {
  std::unique_ptr<Nvrtc> nvrtc;
  std::string error;

  NvrtcLoader() {
    void* h = nullptr;
    std::string tried;
    for (const auto& c : nvrtc_candidates()) {
      h = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (h) break;
      tried += (tried.empty() ? "" : ", ") + c;
    }
    if (!h) {
      error = "NVRTC (the CUDA run-time compiler) not found; tried " + tried +
              ". Install the CUDA toolkit or set CUDA_HOME or KERNOPS_NVRTC_PATH";
      return;
    }
    static Nvrtc::Api api;  // filled once: the loader runs once per process
    bool ok = true;
    auto sym = [&](auto& fn, const char* name, bool required) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(h, name));
      if (!fn && required) {
        ok = false;
        error = std::string("the NVRTC library loaded lacks ") + name + " (CUDA older than 11.2?)";
      }
    };
    sym(api.version, "nvrtcVersion", true);
    sym(api.num_archs, "nvrtcGetNumSupportedArchs", false);
    sym(api.archs, "nvrtcGetSupportedArchs", false);
    sym(api.create, "nvrtcCreateProgram", true);
    sym(api.compile, "nvrtcCompileProgram", true);
    sym(api.log_size, "nvrtcGetProgramLogSize", true);
    sym(api.log, "nvrtcGetProgramLog", true);
    sym(api.cubin_size, "nvrtcGetCUBINSize", true);
    sym(api.cubin, "nvrtcGetCUBIN", true);
    sym(api.ptx_size, "nvrtcGetPTXSize", true);
    sym(api.ptx, "nvrtcGetPTX", true);
    sym(api.destroy, "nvrtcDestroyProgram", true);
    sym(api.error_string, "nvrtcGetErrorString", true);
    if (!ok) return;
    std::unique_ptr<Nvrtc> n(new Nvrtc());
    n->api_ = &api;
    Dl_info info;
    n->path_ = dladdr(reinterpret_cast<void*>(api.version), &info) && info.dli_fname ? info.dli_fname : "libnvrtc";
    api.version(&n->major_, &n->minor_);
    int count = 0;
    if (api.num_archs && api.archs && api.num_archs(&count) == kNvrtcSuccess && count > 0) {
      n->archs_.resize(static_cast<std::size_t>(count));
      api.archs(n->archs_.data());
    }
    nvrtc = std::move(n);
  }
};

namespace {
NvrtcLoader& loader() {
  static NvrtcLoader l;  // thread-safe one-time initialisation (C++11 statics)
  return l;
}
}  // namespace

Nvrtc& Nvrtc::get() {
  NvrtcLoader& l = loader();
  if (!l.nvrtc) throw BackendError(l.error);
  return *l.nvrtc;
}

bool Nvrtc::available(std::string* why) {
  NvrtcLoader& l = loader();
  if (!l.nvrtc && why) *why = l.error;
  return l.nvrtc != nullptr;
}

std::string Nvrtc::version() const { return std::to_string(major_) + "." + std::to_string(minor_); }

CompiledImage Nvrtc::compile(const std::string& source, int cc, const std::vector<std::string>& options) const {
  CompiledImage out;
  int target = cc;
  if (!archs_.empty()) {
    bool known = false;
    for (int a : archs_) known = known || a == cc;
    if (!known) {
      // A cubin runs on devices of the same major version and a minor version at least its
      // own: take the newest such architecture NVRTC knows. Else (a device newer than this
      // NVRTC) PTX for the newest architecture below the device, which the driver compiles
      // for it when the module is loaded.
      int same_major = -1, below = -1;
      for (int a : archs_) {
        if (a <= cc) below = std::max(below, a);
        if (a <= cc && a / 10 == cc / 10) same_major = std::max(same_major, a);
      }
      if (below < 0)
        throw BackendError("this GPU (compute capability " + std::to_string(cc / 10) + "." + std::to_string(cc % 10) +
                           ") is older than NVRTC " + version() + " supports (oldest: sm_" +
                           std::to_string(archs_.front()) + ")");
      out.is_ptx = same_major < 0;
      target = out.is_ptx ? below : same_major;
    }
  }
  out.arch = (out.is_ptx ? "compute_" : "sm_") + std::to_string(target);
  std::vector<std::string> opts{"--gpu-architecture=" + out.arch};
  opts.insert(opts.end(), options.begin(), options.end());
  std::vector<const char*> copts;
  for (const auto& o : opts) copts.push_back(o.c_str());

  const Api& a = *api_;
  nvrtcProgram prog = nullptr;
  nvrtcResult rc = a.create(&prog, source.c_str(), "kernops_kernel.cu", 0, nullptr, nullptr);
  if (rc != kNvrtcSuccess)
    throw BackendError(std::string("nvrtcCreateProgram failed: ") + a.error_string(rc));
  struct Destroy {
    const Api& a;
    nvrtcProgram* p;
    ~Destroy() { a.destroy(p); }
  } destroy{a, &prog};
  // NVRTC before CUDA 12.6.2 changes the process locale while it compiles (PyTorch's
  // LazyNVRTC notes it), and R's number printing depends on the locale: restore it.
  const char* loc = std::setlocale(LC_ALL, nullptr);
  const std::string saved = loc ? loc : "C";
  rc = a.compile(prog, static_cast<int>(copts.size()), copts.data());
  std::setlocale(LC_ALL, saved.c_str());
  std::size_t n = 0;
  if (a.log_size(prog, &n) == kNvrtcSuccess && n > 1) {
    out.log.resize(n);
    a.log(prog, &out.log[0]);
    out.log.resize(n - 1);  // drop the terminating NUL
  }
  if (rc != kNvrtcSuccess)
    throw CompileError(std::string("NVRTC could not compile the generated kernel for ") + out.arch + " (" +
                           a.error_string(rc) + "): a bug in kernops' CUDA code generator, please report it",
                       out.log);
  n = 0;
  if (out.is_ptx) {
    a.ptx_size(prog, &n);
    out.image.resize(n);
    if (n) a.ptx(prog, &out.image[0]);
  } else {
    a.cubin_size(prog, &n);
    out.image.resize(n);
    if (n) a.cubin(prog, &out.image[0]);
  }
  if (out.image.empty()) throw BackendError("NVRTC returned an empty image for " + out.arch);
  return out;
}

}  // namespace cuda
}  // namespace kernops
