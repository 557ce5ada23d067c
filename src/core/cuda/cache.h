// The cache of compiled kernels: in memory for the process (a mutex-guarded map) and on
// disk in a directory the host chooses (R: tools::R_user_dir("kernops", "cache"), option
// kernops.cuda_cache), so that the first call of a formula in a new process compiles
// nothing. Keyed by a hash of everything that changes the image: the source, the compile
// options, the NVRTC version and the architecture. Files are written atomically (a
// temporary file renamed over the final name), and a file that is unreadable, truncated
// or does not match its key is compiled again and rewritten: the cache can never make a
// run fail. No R headers here.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "nvrtc.h"

namespace kernops {
namespace cuda {

struct CacheStats {
  std::int64_t memory_hits = 0;
  std::int64_t disk_hits = 0;
  std::int64_t compiles = 0;
  std::int64_t bad_files = 0;  // unreadable or corrupt files met (then recompiled)
};

// What identifies a compiled image: every input of the compile.
struct CacheKey {
  std::string source;
  std::vector<std::string> options;
  std::string compiler_version;  // NVRTC's, e.g. "13.0"
  int cc = 0;                    // the device's compute capability, 90 for sm_90

  // The key as one string (what the file stores, to check a hit) and its hash (the file
  // name: 32 hex digits, two independent 64-bit hashes).
  std::string text() const;
  std::string hash() const;
};

class KernelCache {
 public:
  using CompileFn = std::function<CompiledImage()>;

  // The process's cache, used by CudaDevice.
  static KernelCache& global();

  // The disk directory ("" = memory only). Created when first written to.
  void set_dir(const std::string& dir);
  std::string dir() const;

  // The image for `key`: from memory, else from disk, else compile() (then stored in
  // both). compile()'s exceptions propagate and nothing is stored.
  std::shared_ptr<const CompiledImage> get(const CacheKey& key, const CompileFn& compile);

  CacheStats stats() const;
  // Forgets the in-memory images (the disk files stay): a new process, for tests.
  void clear_memory();
  // The disk directory's size limit (default kDefaultMaxDiskBytes): after a write past it,
  // the least recently used files (a disk hit refreshes a file's time) are deleted down to
  // three quarters of it.
  void set_max_disk_bytes(std::uintmax_t bytes);
  static constexpr std::uintmax_t kDefaultMaxDiskBytes = std::uintmax_t{256} << 20;
  // The path of the file that holds `key` ("" without a directory).
  std::string file_for(const CacheKey& key) const;

 private:
  mutable std::mutex mutex_;
  std::string dir_;
  std::uintmax_t max_disk_bytes_ = kDefaultMaxDiskBytes;
  std::unordered_map<std::string, std::shared_ptr<const CompiledImage>> memory_;
  CacheStats stats_;
};

// The file format, exposed for the tests: serialise and parse one entry. parse returns
// false (never throws) on anything unexpected, including a key other than `key_text`.
std::string serialize_entry(const std::string& key_text, const CompiledImage& img);
bool parse_entry(const std::string& bytes, const std::string& key_text, CompiledImage* img);

}  // namespace cuda
}  // namespace kernops
