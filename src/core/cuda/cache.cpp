// The compiled-kernel cache (see cache.h).
#include "cache.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <system_error>

#include <unistd.h>

namespace kernops {
namespace cuda {

namespace {

// FNV-1a 64 with two offset bases: two independent hashes of the key for a 128-bit file
// name. Not cryptographic: a hit is also checked against the key stored in the file.
std::uint64_t fnv1a(const std::string& s, std::uint64_t h) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string hex64(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

const char kMagic[] = "kernops-kernel-cache 1\n";

void put_u64(std::string& out, std::uint64_t v) {
  for (int b = 0; b < 8; ++b) out.push_back(static_cast<char>((v >> (8 * b)) & 0xff));
}

bool get_u64(const std::string& in, std::size_t& at, std::uint64_t* v) {
  if (in.size() < at + 8) return false;
  *v = 0;
  for (int b = 0; b < 8; ++b) *v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[at + b])) << (8 * b);
  at += 8;
  return true;
}

bool get_str(const std::string& in, std::size_t& at, std::string* s) {
  std::uint64_t n = 0;
  if (!get_u64(in, at, &n) || n > in.size() - at) return false;
  s->assign(in, at, static_cast<std::size_t>(n));
  at += static_cast<std::size_t>(n);
  return true;
}

void put_str(std::string& out, const std::string& s) {
  put_u64(out, s.size());
  out += s;
}

}  // namespace

std::string CacheKey::text() const {
  std::string t = "nvrtc " + compiler_version + "\ncc " + std::to_string(cc) + "\n";
  for (const auto& o : options) t += "option " + o + "\n";
  t += "source\n" + source;
  return t;
}

std::string CacheKey::hash() const {
  const std::string t = text();
  return hex64(fnv1a(t, 14695981039346656037ull)) + hex64(fnv1a(t, 0x9e3779b97f4a7c15ull));
}

std::string serialize_entry(const std::string& key_text, const CompiledImage& img) {
  std::string out = kMagic;
  put_str(out, key_text);
  put_str(out, img.arch);
  out.push_back(img.is_ptx ? 1 : 0);
  put_str(out, img.image);
  put_u64(out, fnv1a(out, 14695981039346656037ull));  // checksum of everything before it
  return out;
}

bool parse_entry(const std::string& bytes, const std::string& key_text, CompiledImage* img) {
  const std::size_t m = sizeof(kMagic) - 1;
  if (bytes.size() < m + 8 || bytes.compare(0, m, kMagic) != 0) return false;
  std::uint64_t sum = 0;
  std::size_t end = bytes.size() - 8;
  if (!get_u64(bytes, end, &sum) || sum != fnv1a(bytes.substr(0, bytes.size() - 8), 14695981039346656037ull))
    return false;
  const std::string body = bytes.substr(0, bytes.size() - 8);
  std::size_t at = m;
  std::string key, arch, image;
  if (!get_str(body, at, &key) || key != key_text) return false;
  if (!get_str(body, at, &arch) || at >= body.size()) return false;
  const char kind = body[at++];
  if (kind != 0 && kind != 1) return false;
  if (!get_str(body, at, &image) || at != body.size() || image.empty()) return false;
  img->arch = arch;
  img->is_ptx = kind == 1;
  img->image = std::move(image);
  img->log.clear();
  return true;
}

namespace {

// Deletes the least recently written *.kernel files of `dir` until they take at most
// 3/4 of `max_bytes`, when they take more than `max_bytes`. Errors (a file another process
// removed, a read-only directory) are ignored: pruning is best effort, like the writes.
void prune(const std::string& dir, std::uintmax_t max_bytes) {
  namespace fs = std::filesystem;
  struct Entry {
    fs::file_time_type time;
    std::uintmax_t size;
    fs::path path;
  };
  std::vector<Entry> files;
  std::uintmax_t total = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() != ".kernel") continue;
    std::error_code e1, e2;
    const auto size = fs::file_size(it->path(), e1);
    const auto time = fs::last_write_time(it->path(), e2);
    if (e1 || e2) continue;
    files.push_back({time, size, it->path()});
    total += size;
  }
  if (total <= max_bytes) return;
  std::sort(files.begin(), files.end(), [](const Entry& a, const Entry& b) { return a.time < b.time; });
  for (const auto& f : files) {
    if (total <= max_bytes / 4 * 3) break;
    std::error_code e;
    if (fs::remove(f.path, e)) total -= f.size;
  }
}

}  // namespace

KernelCache& KernelCache::global() {
  static KernelCache cache;
  return cache;
}

void KernelCache::set_dir(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mutex_);
  dir_ = dir;
}

std::string KernelCache::dir() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return dir_;
}

std::string KernelCache::file_for(const CacheKey& key) const {
  const std::string d = dir();
  return d.empty() ? std::string() : d + "/" + key.hash() + ".kernel";
}

CacheStats KernelCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void KernelCache::set_max_disk_bytes(std::uintmax_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  max_disk_bytes_ = bytes;
}

void KernelCache::clear_memory() {
  std::lock_guard<std::mutex> lock(mutex_);
  memory_.clear();
}

std::shared_ptr<const CompiledImage> KernelCache::get(const CacheKey& key, const CompileFn& compile) {
  const std::string h = key.hash();
  const std::string text = key.text();
  std::string dir;
  std::uintmax_t max_disk_bytes = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    max_disk_bytes = max_disk_bytes_;
    auto it = memory_.find(h);
    if (it != memory_.end()) {
      ++stats_.memory_hits;
      return it->second;
    }
    dir = dir_;
  }
  const std::string path = dir.empty() ? std::string() : dir + "/" + h + ".kernel";
  // Disk: any failure to read or parse is a miss (counted), never an error.
  if (!path.empty()) {
    std::ifstream in(path, std::ios::binary);
    if (in) {
      std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      auto img = std::make_shared<CompiledImage>();
      std::lock_guard<std::mutex> lock(mutex_);
      if (in.good() || in.eof()) {
        if (parse_entry(bytes, text, img.get())) {
          ++stats_.disk_hits;
          memory_[h] = img;
          std::error_code ec;  // recently used: the last file pruning deletes
          std::filesystem::last_write_time(path, std::filesystem::file_time_type::clock::now(), ec);
          return img;
        }
      }
      ++stats_.bad_files;
    }
  }
  auto img = std::make_shared<const CompiledImage>(compile());
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.compiles;
    memory_[h] = img;
  }
  if (!path.empty()) {
    // Atomic: write a temporary file in the same directory, then rename it over the final
    // name, so another process never reads half a file. Failures (read-only directory, full
    // disk) leave the cache in memory only.
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    static std::atomic<unsigned> counter{0};
    const std::string tmp = path + ".tmp." + std::to_string(static_cast<long>(getpid())) + "." +
                            std::to_string(counter.fetch_add(1));
    bool ok = false;
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      if (out) {
        const std::string bytes = serialize_entry(text, *img);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        out.close();
        ok = !out.fail();
      }
    }
    if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) std::remove(tmp.c_str());
    else prune(dir, max_disk_bytes);
  }
  return img;
}

}  // namespace cuda
}  // namespace kernops
