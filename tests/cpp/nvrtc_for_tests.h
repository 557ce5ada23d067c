// A minimal NVRTC loader for the tests: dlopen()s libnvrtc and compiles a source to a cubin
// through our own typedefs (no CUDA header needed to build). The package's real loader is
// the runtime's (src/core/cuda/nvrtc.*); the tests may switch to it once both are merged.
// Test-only.
#pragma once
#include <dlfcn.h>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace kernops_test {

class NvrtcForTests {
 public:
  struct Result {
    bool ok = false;
    std::string log;
    std::size_t cubin_bytes = 0;
  };

  // The process-wide instance; loaded() is false (and why() says why) without libnvrtc.
  static NvrtcForTests& get() {
    static NvrtcForTests n;
    return n;
  }
  bool loaded() const { return lib_ != nullptr; }
  const std::string& why() const { return why_; }
  std::string path() const { return path_; }

  // Compiles `src` with `options` (e.g. "--gpu-architecture=sm_90") to a cubin.
  Result compile(const std::string& src, const std::vector<std::string>& options) const {
    Result r;
    Program prog = nullptr;
    if (create_(&prog, src.c_str(), "kernops.cu", 0, nullptr, nullptr) != 0) {
      r.log = "nvrtcCreateProgram failed";
      return r;
    }
    std::vector<const char*> opts;
    for (const auto& o : options) opts.push_back(o.c_str());
    const int rc = compile_(prog, static_cast<int>(opts.size()), opts.data());
    std::size_t n = 0;
    if (log_size_(prog, &n) == 0 && n > 1) {
      r.log.assign(n, '\0');
      log_(prog, &r.log[0]);
      r.log.resize(n - 1);
    }
    r.ok = rc == 0;
    if (r.ok && cubin_size_(prog, &r.cubin_bytes) != 0) r.ok = false;
    destroy_(&prog);
    return r;
  }

 private:
  using Program = struct NvrtcProgramOpaque*;
  using CreateFn = int (*)(Program*, const char*, const char*, int, const char* const*, const char* const*);
  using CompileFn = int (*)(Program, int, const char* const*);
  using SizeFn = int (*)(Program, std::size_t*);
  using LogFn = int (*)(Program, char*);
  using DestroyFn = int (*)(Program*);

  NvrtcForTests() {
    for (const auto& c : candidates()) {
      lib_ = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (lib_) {
        path_ = c;
        break;
      }
    }
    if (!lib_) {
      why_ = "libnvrtc not found (CUDA toolkit absent)";
      return;
    }
    create_ = reinterpret_cast<CreateFn>(dlsym(lib_, "nvrtcCreateProgram"));
    compile_ = reinterpret_cast<CompileFn>(dlsym(lib_, "nvrtcCompileProgram"));
    log_size_ = reinterpret_cast<SizeFn>(dlsym(lib_, "nvrtcGetProgramLogSize"));
    log_ = reinterpret_cast<LogFn>(dlsym(lib_, "nvrtcGetProgramLog"));
    cubin_size_ = reinterpret_cast<SizeFn>(dlsym(lib_, "nvrtcGetCUBINSize"));
    destroy_ = reinterpret_cast<DestroyFn>(dlsym(lib_, "nvrtcDestroyProgram"));
    if (!create_ || !compile_ || !log_size_ || !log_ || !cubin_size_ || !destroy_) {
      why_ = path_ + " lacks an NVRTC entry point";
      dlclose(lib_);
      lib_ = nullptr;
    }
  }

  // The toolkit the build found (CMake's KERNOPS_CUDA_HOME), /usr/local/cuda, then the
  // loader's search path.
  static std::vector<std::string> candidates() {
    std::vector<std::string> dirs;
#ifdef KERNOPS_CUDA_HOME
    dirs.push_back(std::string(KERNOPS_CUDA_HOME) + "/lib64");
#endif
    dirs.push_back("/usr/local/cuda/lib64");
    std::vector<std::string> out;
    for (const auto& d : dirs) {
      std::error_code ec;
      std::vector<std::string> found;
      for (const auto& e : std::filesystem::directory_iterator(d, ec)) {
        const std::string name = e.path().filename().string();
        if (name.rfind("libnvrtc.so", 0) == 0) found.push_back(e.path().string());
      }
      std::sort(found.begin(), found.end());  // libnvrtc.so first, then versioned names
      out.insert(out.end(), found.begin(), found.end());
    }
    out.push_back("libnvrtc.so");
    for (const char* v : {"13", "12", "11.2"}) out.push_back(std::string("libnvrtc.so.") + v);
    return out;
  }

  void* lib_ = nullptr;
  std::string path_, why_;
  CreateFn create_ = nullptr;
  CompileFn compile_ = nullptr;
  SizeFn log_size_ = nullptr;
  LogFn log_ = nullptr;
  SizeFn cubin_size_ = nullptr;
  DestroyFn destroy_ = nullptr;
};

}  // namespace kernops_test
