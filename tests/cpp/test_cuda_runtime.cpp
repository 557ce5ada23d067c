// The CUDA runtime without a GPU: the kernel cache (with a fake compiler), NVRTC (when a
// toolkit is installed), the driver probe (which must say why CUDA is unusable here), and
// the launch logic of run_cuda() on a fake device whose "kernels" compute a Sum with the
// reference evaluator, against run_cpu().
#include <dlfcn.h>
#include <algorithm>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "cuda/backend.h"
#include "cuda/cache.h"
#include "cuda/driver.h"
#include "cuda/nvrtc.h"
#include "cuda/runtime.h"
#include "kernops.h"
#include "reference_eval.h"

using namespace kernops;
using namespace kernops::cuda;
namespace fs = std::filesystem;

namespace {

// A fresh directory under the system's temporary directory, removed at the end.
struct TempDir {
  fs::path path;
  TempDir() {
    static int n = 0;
    path = fs::temp_directory_path() / ("kernops-cache-test-" + std::to_string(getpid()) + "-" + std::to_string(n++));
    fs::remove_all(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

CacheKey key_of(const std::string& src, int cc = 90) {
  CacheKey k;
  k.source = src;
  k.compiler_version = "13.0";
  k.cc = cc;
  return k;
}

// A "compiler" that counts its calls and returns an image derived from the source.
struct FakeCompiler {
  int calls = 0;
  KernelCache::CompileFn fn(const std::string& src) {
    return [this, src] {
      ++calls;
      CompiledImage img;
      img.image = "CUBIN:" + src;
      img.arch = "sm_90";
      return img;
    };
  }
};

}  // namespace

// ---- cache -------------------------------------------------------------------------------

TEST(CudaCache, MissThenMemoryHitThenDiskHitInANewProcess) {
  TempDir dir;
  KernelCache cache;
  cache.set_dir(dir.path.string());
  FakeCompiler fc;
  auto a = cache.get(key_of("k1"), fc.fn("k1"));
  EXPECT_EQ(a->image, "CUBIN:k1");
  EXPECT_EQ(fc.calls, 1);
  auto b = cache.get(key_of("k1"), fc.fn("k1"));
  EXPECT_EQ(fc.calls, 1);
  EXPECT_EQ(b->image, "CUBIN:k1");
  EXPECT_EQ(cache.stats().memory_hits, 1);
  EXPECT_TRUE(fs::exists(cache.file_for(key_of("k1"))));
  // A new process: nothing in memory, the file is there.
  KernelCache fresh;
  fresh.set_dir(dir.path.string());
  auto c = fresh.get(key_of("k1"), fc.fn("k1"));
  EXPECT_EQ(fc.calls, 1);
  EXPECT_EQ(c->image, "CUBIN:k1");
  EXPECT_EQ(c->arch, "sm_90");
  EXPECT_EQ(fresh.stats().disk_hits, 1);
  EXPECT_EQ(fresh.stats().compiles, 0);
  // No temporary file is left behind by the atomic write.
  for (const auto& e : fs::directory_iterator(dir.path)) EXPECT_EQ(e.path().extension(), ".kernel");
}

// The directory stays under its size limit: the least recently used files go first (a disk
// hit counts as a use), down to three quarters of the limit.
TEST(CudaCache, TheDiskCacheIsPrunedLeastRecentlyUsedFirst) {
  TempDir dir;
  KernelCache cache;
  cache.set_dir(dir.path.string());
  FakeCompiler fc;
  const auto old_time = fs::file_time_type::clock::now() - std::chrono::hours(1);
  for (const char* k : {"a", "b", "c"}) {
    cache.get(key_of(k), fc.fn(std::string(k) + std::string(2000, 'x')));
    fs::last_write_time(cache.file_for(key_of(k)), old_time - std::chrono::minutes(k[0]));  // c the oldest
  }
  const auto size = fs::file_size(cache.file_for(key_of("a")));
  KernelCache fresh;  // a new process: "a" is read from disk, which refreshes it
  fresh.set_dir(dir.path.string());
  fresh.get(key_of("a"), fc.fn("a"));
  EXPECT_EQ(fresh.stats().disk_hits, 1);
  fresh.set_max_disk_bytes(3 * size + size / 2);  // room for three and a half files
  fresh.get(key_of("d"), fc.fn(std::string("d") + std::string(2000, 'x')));  // four files: prune to <= 2.6
  EXPECT_TRUE(fs::exists(fresh.file_for(key_of("a"))));   // used last
  EXPECT_TRUE(fs::exists(fresh.file_for(key_of("d"))));   // just written
  EXPECT_FALSE(fs::exists(fresh.file_for(key_of("c"))));  // the least recently used...
  EXPECT_FALSE(fs::exists(fresh.file_for(key_of("b"))));  // ... down to 3/4 of the limit
}

TEST(CudaCache, KeyDependsOnSourceOptionsVersionAndArch) {
  const CacheKey base = key_of("src");
  std::set<std::string> hashes{base.hash()};
  CacheKey k = base;
  k.source = "src ";
  hashes.insert(k.hash());
  k = base;
  k.options = {"-lineinfo"};
  hashes.insert(k.hash());
  k = base;
  k.compiler_version = "12.4";
  hashes.insert(k.hash());
  k = base;
  k.cc = 80;
  hashes.insert(k.hash());
  EXPECT_EQ(hashes.size(), 5u);
  EXPECT_EQ(base.hash(), key_of("src").hash());
  EXPECT_EQ(base.hash().size(), 32u);

  TempDir dir;
  KernelCache cache;
  cache.set_dir(dir.path.string());
  FakeCompiler fc;
  cache.get(key_of("src", 90), fc.fn("src"));
  cache.get(key_of("src", 80), fc.fn("src"));
  EXPECT_EQ(fc.calls, 2);
}

TEST(CudaCache, CorruptOrForeignFilesAreRecompiledNeverFatal) {
  TempDir dir;
  FakeCompiler fc;
  const CacheKey key = key_of("kernel source");
  {
    KernelCache cache;
    cache.set_dir(dir.path.string());
    cache.get(key, fc.fn("kernel source"));
  }
  const std::string file = [&] {
    KernelCache c;
    c.set_dir(dir.path.string());
    return c.file_for(key);
  }();
  std::string good;
  {
    std::ifstream in(file, std::ios::binary);
    good.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  ASSERT_GT(good.size(), 40u);
  std::string flipped = good;
  flipped[flipped.size() / 2] ^= 0x5a;
  // (a file whose key differs: another key's entry under this name)
  CompiledImage other;
  other.image = "CUBIN:other";
  other.arch = "sm_90";
  const std::vector<std::string> bad = {"", "garbage", good.substr(0, good.size() / 2), flipped,
                                        serialize_entry(key_of("other").text(), other)};
  int expected_calls = fc.calls;
  for (const auto& content : bad) {
    {
      std::ofstream out(file, std::ios::binary | std::ios::trunc);
      out << content;
    }
    KernelCache cache;
    cache.set_dir(dir.path.string());
    auto img = cache.get(key, fc.fn("kernel source"));
    EXPECT_EQ(img->image, "CUBIN:kernel source");
    EXPECT_EQ(fc.calls, ++expected_calls);
    EXPECT_EQ(cache.stats().bad_files, 1);
    // ... and the file was rewritten: a new process reads it.
    KernelCache again;
    again.set_dir(dir.path.string());
    again.get(key, fc.fn("kernel source"));
    EXPECT_EQ(again.stats().disk_hits, 1);
    EXPECT_EQ(fc.calls, expected_calls);
  }
}

TEST(CudaCache, UnwritableDirectoryAndFailedCompile) {
  TempDir dir;
  fs::create_directories(dir.path);
  const fs::path not_a_dir = dir.path / "file";
  { std::ofstream(not_a_dir) << "x"; }
  KernelCache cache;
  cache.set_dir(not_a_dir.string());  // a file: nothing can be written under it
  FakeCompiler fc;
  EXPECT_EQ(cache.get(key_of("a"), fc.fn("a"))->image, "CUBIN:a");
  EXPECT_EQ(cache.get(key_of("a"), fc.fn("a"))->image, "CUBIN:a");
  EXPECT_EQ(fc.calls, 1);
  // A compile that throws stores nothing.
  KernelCache::CompileFn failing = []() -> CompiledImage { throw CompileError("bad", "log text"); };
  EXPECT_THROW(cache.get(key_of("b"), failing), CompileError);
  EXPECT_EQ(cache.get(key_of("b"), fc.fn("b"))->image, "CUBIN:b");
}

TEST(CudaCache, EntryRoundTrip) {
  CompiledImage img;
  img.image = std::string("\x7f" "ELF\0\1\2", 7);
  img.arch = "compute_90";
  img.is_ptx = true;
  CompiledImage back;
  ASSERT_TRUE(parse_entry(serialize_entry("key", img), "key", &back));
  EXPECT_EQ(back.image, img.image);
  EXPECT_EQ(back.arch, "compute_90");
  EXPECT_TRUE(back.is_ptx);
  EXPECT_FALSE(parse_entry(serialize_entry("key", img), "other key", &back));
}

// ---- NVRTC (needs the toolkit, not a GPU) --------------------------------------------------

TEST(CudaNvrtc, CompilesATrivialKernelForSm80AndSm90) {
  std::string why;
  if (!Nvrtc::available(&why)) GTEST_SKIP() << why;
  const Nvrtc& nv = Nvrtc::get();
  EXPECT_NE(nv.version().find('.'), std::string::npos);
  const std::string src = "extern \"C\" __global__ void twice(float* x) { x[threadIdx.x] *= 2.0f; }\n";
  for (int cc : {80, 90}) {
    const CompiledImage img = nv.compile(src, cc);
    EXPECT_FALSE(img.is_ptx);
    EXPECT_EQ(img.arch, "sm_" + std::to_string(cc));
    ASSERT_GT(img.image.size(), 4u);
    EXPECT_EQ(img.image.substr(0, 4), "\x7f" "ELF");  // a cubin is an ELF file
  }
  // A device newer than this NVRTC knows: PTX for the newest architecture it knows.
  const CompiledImage ptx = nv.compile(src, 990);
  EXPECT_TRUE(ptx.is_ptx);
  EXPECT_NE(ptx.image.find(".entry twice"), std::string::npos);
  // A minor version NVRTC does not list (sm_91): the cubin of the same major version.
  const auto& archs = nv.supported_archs();
  if (!archs.empty() && std::find(archs.begin(), archs.end(), 91) == archs.end() &&
      std::find(archs.begin(), archs.end(), 90) != archs.end()) {
    const CompiledImage same = nv.compile(src, 91);
    EXPECT_FALSE(same.is_ptx);
    EXPECT_EQ(same.arch, "sm_90");
  }
  // An older one: a BackendError naming it.
  EXPECT_THROW(nv.compile(src, 10), BackendError);
}

TEST(CudaNvrtc, ACompileErrorCarriesTheLog) {
  std::string why;
  if (!Nvrtc::available(&why)) GTEST_SKIP() << why;
  try {
    Nvrtc::get().compile("extern \"C\" __global__ void k() { undeclared_thing = 1; }\n", 90);
    FAIL() << "expected a CompileError";
  } catch (const CompileError& e) {
    EXPECT_NE(e.log.find("undeclared_thing"), std::string::npos) << e.log;
    EXPECT_STREQ(e.kind(), "internal");
  }
}

// ---- the driver probe ----------------------------------------------------------------------

TEST(CudaDriver, ProbeSaysWhyCudaIsUnusable) {
  void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (h) {
    dlclose(h);
    GTEST_SKIP() << "a CUDA driver is installed here";
  }
  const ProbeResult p = probe();
  EXPECT_FALSE(p.usable);
  EXPECT_EQ(p.why, "no CUDA driver (libcuda.so.1 not found)");
  EXPECT_THROW(CudaDevice(), BackendError);
}

TEST(CudaDriver, AForcedFailureIsReportedAndCleared) {
  const ProbeResult before = probe();
  force_probe_failure("test: device lost");
  ProbeResult p = probe();
  EXPECT_FALSE(p.usable);
  EXPECT_EQ(p.why, "test: device lost");
  EXPECT_THROW(CudaDevice(), BackendError);
  force_probe_failure("");
  p = probe();
  EXPECT_EQ(p.usable, before.usable);
  EXPECT_EQ(p.why, before.why);
  EXPECT_EQ(driver_version_string(12040), "12.4");
}

// ---- launch arithmetic --------------------------------------------------------------------

// The launch arithmetic's kernels: blocks of 128, a state of 2 T and one value per row.
KernelSource launch_test_source() {
  KernelSource src;
  src.block_size = 128;
  src.state_width = 2;
  src.value_cols = 1;
  src.merge_name = "merge";
  return src;
}

TEST(CudaLaunch, ShapeSplitsTheReducedSideOnlyWhenRowsCannotFillTheDevice) {
  const KernelSource src = launch_test_source();
  const std::size_t big = std::size_t{1} << 34;
  // 1e6 x 1e6 on 132 multiprocessors: rows fill it, no split; launches of >= 270336 rows.
  LaunchShape s = launch_shape(1000000, 1000000, src, 4, big, 132, 65535, 0);
  EXPECT_EQ(s.n_split, 1);
  EXPECT_EQ(s.chunk_rows, 132 * kThreadsPerSm);
  // 1e7 x 1e3: a launch of kPairsPerLaunch pairs.
  s = launch_shape(10000000, 1000, src, 4, big, 132, 65535, 0);
  EXPECT_EQ(s.chunk_rows, std::min<std::int64_t>(10000000, kPairsPerLaunch / 1000));
  // 100 x 1e6: one chunk, the j side split until the device is full, in whole tiles.
  s = launch_shape(100, 1000000, src, 4, big, 132, 65535, 0);
  EXPECT_EQ(s.chunk_rows, 100);
  EXPECT_EQ(s.j_per_split % 128, 0);
  // (about full: splits are whole tiles, 1954 of 512 rows here)
  EXPECT_GE(s.n_split * 128, 0.9 * 132 * kThreadsPerSm);
  EXPECT_GE(s.n_split * s.j_per_split, 1000000);
  EXPECT_LT((s.n_split - 1) * s.j_per_split, 1000000);
  // ... but never more splits than tiles, or than gridDim.y allows.
  EXPECT_EQ(launch_shape(100, 300, src, 4, big, 132, 65535, 0).n_split, 3);
  EXPECT_EQ(launch_shape(100, 1000000, src, 4, big, 132, 16, 0).n_split, 16);
  // No merge kernel or no state: no split.
  KernelSource nomerge = src;
  nomerge.merge_name.clear();
  EXPECT_EQ(launch_shape(100, 1000000, nomerge, 4, big, 132, 65535, 0).n_split, 1);
  // Memory bounds the chunk (outputs), then the splits (states).
  s = launch_shape(1000000, 1000, src, 4, 4000, 132, 65535, 0);
  EXPECT_EQ(s.chunk_rows, 1000);
  EXPECT_EQ(s.n_split, 1);
  EXPECT_THROW(launch_shape(10, 10, src, 4, 2, 132, 65535, 0), DeviceMemoryError);
  // A forced chunk size wins.
  EXPECT_EQ(launch_shape(1000, 1000, src, 4, big, 1, 65535, 7).chunk_rows, 7);
}

TEST(CudaLaunch, ShapeCutsALongReducedSideIntoWindows) {
  const KernelSource src = launch_test_source();
  const std::size_t big = std::size_t{1} << 34;
  // 1e6 x 1e8 on 132 multiprocessors: rows fill the device, and the reduced side goes in
  // windows of whole blocks, each launch at most kPairsPerLaunch pairs (not 2.7e13).
  LaunchShape s = launch_shape(1000000, 100000000, src, 4, big, 132, 65535, 0);
  EXPECT_EQ(s.chunk_rows, 132 * kThreadsPerSm);
  EXPECT_EQ(s.j_per_launch % 128, 0);
  EXPECT_LE(s.chunk_rows * s.j_per_launch, kPairsPerLaunch);
  EXPECT_GT(s.chunk_rows * s.j_per_launch, kPairsPerLaunch / 2);
  // 1e3 x 1e9: one chunk, windows, and the device filled by splits within each window.
  s = launch_shape(1000, 1000000000, src, 4, big, 132, 65535, 0);
  EXPECT_EQ(s.chunk_rows, 1000);
  EXPECT_LT(s.j_per_launch, 1000000000);
  EXPECT_GT(s.n_split, 1);
  EXPECT_GE(s.n_split * s.j_per_split, s.j_per_launch);
  // Short enough: one window, the whole reduced side.
  EXPECT_EQ(launch_shape(100, 300, src, 4, big, 132, 65535, 0).j_per_launch, 300);
  // Without a merge kernel (or state) there is nothing to carry: one window.
  KernelSource nomerge = src;
  nomerge.merge_name.clear();
  EXPECT_EQ(launch_shape(1000, 1000000000, nomerge, 4, big, 132, 65535, 0).j_per_launch, 1000000000);
}

// ---- run_cuda on a fake device ------------------------------------------------------------

namespace {

// Host memory as "device" memory, and kernels that compute a Sum (or, for a dimension-1
// formula, a Min_ArgMin) reduction of the plan with the reference evaluator, honouring the
// grid, the splits and the merge exactly as kernel_abi.h specifies. Records launches and
// live allocations.
template <class T>
class FakeDevice : public Device {
 public:
  explicit FakeDevice(const Plan& plan) : plan_(plan) {}
  std::size_t free_bytes = std::size_t{1} << 30;
  int sms = 4;
  int live = 0;
  std::vector<std::pair<std::string, Grid>> launches;
  KernelSource src;

  std::size_t free_memory() override { return free_bytes; }
  int multiprocessors() override { return sms; }
  void* alloc(std::size_t bytes) override {
    if (bytes > free_bytes) throw DeviceMemoryError("fake device: out of memory");
    ++live;
    free_bytes -= bytes;
    void* p = std::calloc(bytes ? bytes : 1, 1);
    sizes[p] = bytes;
    return p;
  }
  void free(void* p) noexcept override {
    if (p) {
      --live;
      free_bytes += sizes[p];
      sizes.erase(p);
      std::free(p);
    }
  }
  std::map<void*, std::size_t> sizes;
  void copy_to_device(void* d, const void* s, std::size_t n) override { std::memcpy(d, s, n); }
  void copy_to_host(void* d, const void* s, std::size_t n) override { std::memcpy(d, s, n); }
  std::shared_ptr<Module> load(const KernelSource& s) override {
    src = s;
    return std::make_shared<Module>();
  }
  void synchronize() override {}
  void launch(Module&, const std::string& name, Grid grid, int block, std::int64_t, const LaunchArgs& a) override {
    launches.emplace_back(name, grid);
    if (plan_.kind == RedKind::MinArgMin) return launch_argmin(name, grid, block, a);
    const int w = plan_.out_dim();
    for (std::int64_t by = 0; by < grid.y; ++by)
      for (std::int64_t bx = 0; bx < grid.x; ++bx)
        for (int t = 0; t < block; ++t) {
          const std::int64_t row = bx * block + t;
          if (row >= a.n_i) continue;
          std::vector<double> acc(static_cast<std::size_t>(w), 0.0);
          if (name == src.merge_name) {
            const T* st = static_cast<const T*>(a.state);
            T* carry = static_cast<T*>(a.carry);
            if (a.carry_in)
              for (int c = 0; c < w; ++c) acc[c] += carry[row * w + c];
            for (std::int64_t y = 0; y < a.n_split; ++y)
              for (int c = 0; c < w; ++c) acc[c] += st[(y * a.n_i + row) * w + c];
            if (a.finish) {
              write(a, row, acc);
            } else {
              for (int c = 0; c < w; ++c) carry[row * w + c] = static_cast<T>(acc[c]);
            }
            continue;
          }
          const std::int64_t j0 = a.j_begin + by * a.j_per_split, j1 = std::min(a.j_end, j0 + a.j_per_split);
          for (std::int64_t j = j0; j < j1; ++j) {
            const auto v = kernops_test::ref_eval(plan_.f, env(a, a.i0 + row, j));
            for (int c = 0; c < w; ++c) acc[c] += v[c];
          }
          if (!a.direct) {
            T* st = static_cast<T*>(a.state);
            for (int c = 0; c < w; ++c) st[(by * a.n_i + row) * w + c] = static_cast<T>(acc[c]);
          } else {
            write(a, row, acc);
          }
        }
  }

  // State per row: {best value, its global j}; the first minimum wins, splits in order.
  void launch_argmin(const std::string& name, Grid grid, int block, const LaunchArgs& a) {
    T* st = static_cast<T*>(a.state);
    for (std::int64_t by = 0; by < grid.y; ++by)
      for (std::int64_t row = 0; row < grid.x * block; ++row) {
        if (row >= a.n_i) continue;
        double best = INFINITY, idx = -1;
        if (name == src.merge_name) {
          T* carry = static_cast<T*>(a.carry);
          if (a.carry_in && carry[row * 2] < best) best = carry[row * 2], idx = carry[row * 2 + 1];
          for (std::int64_t y = 0; y < a.n_split; ++y) {
            const T* s = st + (y * a.n_i + row) * 2;
            if (s[0] < best) best = s[0], idx = s[1];
          }
          if (!a.finish) {
            carry[row * 2] = static_cast<T>(best);
            carry[row * 2 + 1] = static_cast<T>(idx);
            continue;
          }
        } else {
          const std::int64_t j0 = a.j_begin + by * a.j_per_split, j1 = std::min(a.j_end, j0 + a.j_per_split);
          for (std::int64_t j = j0; j < j1; ++j) {
            const double v = kernops_test::ref_eval(plan_.f, env(a, a.i0 + row, j))[0];
            if (v < best) best = v, idx = static_cast<double>(j);
          }
          if (!a.direct) {
            st[(by * a.n_i + row) * 2] = static_cast<T>(best);
            st[(by * a.n_i + row) * 2 + 1] = static_cast<T>(idx);
            continue;
          }
        }
        static_cast<T*>(a.values)[row] = static_cast<T>(best);
        a.indices[row] = static_cast<std::int64_t>(idx);
      }
  }

 private:
  void write(const LaunchArgs& a, std::int64_t row, const std::vector<double>& acc) {
    T* v = static_cast<T*>(a.values);
    for (std::size_t c = 0; c < acc.size(); ++c) v[row * static_cast<std::int64_t>(acc.size()) + c] = static_cast<T>(acc[c]);
  }
  kernops_test::Env env(const LaunchArgs& a, std::int64_t i, std::int64_t j) const {
    kernops_test::Env e;
    for (std::size_t k = 0; k < plan_.arg_level.size(); ++k) {
      const int lvl = plan_.arg_level[k];
      const int dim = plan_.formula.vars[k].dim;
      const T* p = static_cast<const T*>(a.args[k]);
      const std::int64_t r = lvl == kI ? i : lvl == kJ ? j : 0;
      const int cat = lvl == kI ? 0 : lvl == kJ ? 1 : 2;
      e[{cat, static_cast<int>(k)}] = kernops_test::Vec(p + r * dim, p + (r + 1) * dim);
    }
    return e;
  }
  const Plan& plan_;
};

struct Problem {
  std::shared_ptr<const Plan> plan;
  std::vector<std::vector<double>> store;
  std::vector<ArgData> args;
  OutShape shape;
};

Problem make_problem(const std::string& f, const std::vector<std::string>& decls,
                     const std::vector<std::pair<std::int64_t, int>>& sizes) {
  Problem p;
  p.plan = compile(f, decls);
  std::mt19937 rng(42);
  std::uniform_real_distribution<double> u(-1, 1);
  for (const auto& s : sizes) {
    std::vector<double> v(static_cast<std::size_t>(s.first * s.second));
    for (auto& x : v) x = u(rng);
    p.store.push_back(std::move(v));
  }
  for (std::size_t k = 0; k < sizes.size(); ++k)
    p.args.push_back(ArgData{p.store[k].data(), sizes[k].first, sizes[k].second});
  p.shape = check_args(*p.plan, p.args);
  return p;
}

KernelSource fake_source(const Plan& plan, int block) {
  KernelSource s;
  s.reduce_name = "kernops_reduce";
  s.merge_name = "kernops_merge";
  s.block_size = block;
  const bool argmin = plan.kind == RedKind::MinArgMin;
  s.state_width = argmin ? 2 : plan.out_dim();
  s.value_cols = argmin ? 1 : plan.out_dim();
  s.index_cols = argmin ? 1 : 0;
  return s;
}

std::vector<double> cpu_result(const Problem& p, std::vector<double>* indices = nullptr) {
  std::vector<double> v(static_cast<std::size_t>(p.shape.rows * p.shape.value_cols));
  if (indices) indices->assign(static_cast<std::size_t>(p.shape.rows * p.shape.index_cols), 0.0);
  RunConfig cfg;
  run_cpu(*p.plan, p.args, p.shape, v.data(), indices ? indices->data() : nullptr, cfg);
  return v;
}

struct CountingControl : Control {
  int polls = 0;
  int interrupt_at = -1;
  double last_progress = 0;
  bool interrupted() override { return ++polls == interrupt_at; }
  void progress(double f) override { last_progress = f; }
};

const std::string kGauss = "Sum_Reduction(Exp(-s*SqDist(x,y))*b, 0)";
const std::vector<std::string> kGaussDecls = {"x = Vi(3)", "y = Vj(3)", "b = Vj(2)", "s = Pm(1)"};

}  // namespace

TEST(CudaRun, SmallNSplitsTheReducedSideAndMerges) {
  Problem p = make_problem(kGauss, kGaussDecls, {{50, 3}, {700, 3}, {700, 2}, {1, 1}});
  FakeDevice<double> dev(*p.plan);
  std::vector<double> out(100);
  CudaRunConfig cfg;
  run_cuda(dev, *p.plan, fake_source(*p.plan, 32), p.args, p.shape, out.data(), nullptr, cfg);
  const auto ref = cpu_result(p);
  for (std::size_t k = 0; k < out.size(); ++k) EXPECT_NEAR(out[k], ref[k], 1e-12 * (1 + std::fabs(ref[k])));
  // 50 rows leave a 4-multiprocessor device idle: 700 j in 22 splits of one tile each.
  ASSERT_EQ(dev.launches.size(), 2u);
  EXPECT_EQ(dev.launches[0].first, "kernops_reduce");
  EXPECT_EQ(dev.launches[0].second.x, 2);
  EXPECT_EQ(dev.launches[0].second.y, 22);
  EXPECT_EQ(dev.launches[1].first, "kernops_merge");
  EXPECT_EQ(dev.launches[1].second.y, 1);
  EXPECT_EQ(dev.live, 0);
}

TEST(CudaRun, ChunkedLaunchesOverTheOutputRowsAxis1WithParameters) {
  // axis 1: the result is indexed by j; the engine view swaps the sides.
  Problem p = make_problem("Sum_Reduction(Exp(-s*SqDist(x,y))*b, 1)", {"x = Vi(3)", "y = Vj(3)", "b = Vi(2)", "s = Pm(1)"},
                           {{60, 3}, {45, 3}, {60, 2}, {1, 1}});
  FakeDevice<double> dev(*p.plan);
  dev.sms = 0;  // "fill" counts as one multiprocessor's threads: 7-row chunks split j too
  std::vector<double> out(static_cast<std::size_t>(p.shape.rows * 2));
  CudaRunConfig cfg;
  cfg.chunk_rows = 7;
  CountingControl ctl;
  cfg.control = &ctl;
  run_cuda(dev, *p.plan, fake_source(*p.plan, 4), p.args, p.shape, out.data(), nullptr, cfg);
  const auto ref = cpu_result(p);
  for (std::size_t k = 0; k < out.size(); ++k) EXPECT_NEAR(out[k], ref[k], 1e-12 * (1 + std::fabs(ref[k])));
  EXPECT_EQ(p.shape.rows, 45);
  EXPECT_EQ(dev.launches.size(), 14u);  // ceil(45 / 7) chunks, each a reduce and a merge
  EXPECT_EQ(dev.launches[0].second.y, 15);  // 60 reduced rows in 15 tiles of 4
  EXPECT_EQ(ctl.polls, 7);             // one interrupt check per chunk
  EXPECT_EQ(ctl.last_progress, 1.0);
}

TEST(CudaRun, Float32AndMemoryBoundChunks) {
  Problem p = make_problem(kGauss, kGaussDecls, {{300, 3}, {40, 3}, {40, 2}, {1, 1}});
  FakeDevice<float> dev(*p.plan);
  dev.sms = 0;
  // Inputs take 300*3*4 + 40*5*4 + 4 = 4404 bytes and the argument table 32: 1000 bytes
  // are left, for 125 output rows of 8 bytes (and no room for split states).
  dev.free_bytes = 4404 + 32 + 1000;
  std::vector<double> out(600);
  CudaRunConfig cfg;
  cfg.dtype = Dtype::Float32;
  cfg.memory_fraction = 1.0;
  run_cuda(dev, *p.plan, fake_source(*p.plan, 16), p.args, p.shape, out.data(), nullptr, cfg);
  const auto ref = cpu_result(p);
  for (std::size_t k = 0; k < out.size(); ++k) EXPECT_NEAR(out[k], ref[k], 1e-5 * (1 + std::fabs(ref[k])));
  EXPECT_EQ(dev.launches.size(), 3u);  // 125 + 125 + 50 rows
  EXPECT_EQ(dev.live, 0);
}

TEST(CudaRun, DeviceOutOfMemoryAndInterruptsAreTypedAndFreeEverything) {
  Problem p = make_problem(kGauss, kGaussDecls, {{300, 3}, {40, 3}, {40, 2}, {1, 1}});
  FakeDevice<double> dev(*p.plan);
  dev.free_bytes = 1000;  // the inputs alone need 9 kB
  std::vector<double> out(600);
  CudaRunConfig cfg;
  EXPECT_THROW(run_cuda(dev, *p.plan, fake_source(*p.plan, 16), p.args, p.shape, out.data(), nullptr, cfg),
               DeviceMemoryError);
  EXPECT_EQ(dev.live, 0);
  dev.free_bytes = std::size_t{1} << 30;
  dev.sms = 0;
  CountingControl ctl;
  ctl.interrupt_at = 2;
  cfg.control = &ctl;
  cfg.chunk_rows = 50;
  EXPECT_THROW(run_cuda(dev, *p.plan, fake_source(*p.plan, 16), p.args, p.shape, out.data(), nullptr, cfg),
               Interrupted);
  EXPECT_EQ(dev.launches.size(), 4u);  // stopped after the second chunk of six (reduce + merge each)
  EXPECT_EQ(dev.live, 0);
  // float32 range is checked as the data is converted.
  std::vector<double> huge(3, 1e39);
  p.args[0] = ArgData{huge.data(), 1, 3};
  p.shape.rows = 1;
  cfg.dtype = Dtype::Float32;
  cfg.control = nullptr;
  EXPECT_THROW(run_cuda(dev, *p.plan, fake_source(*p.plan, 16), p.args, p.shape, out.data(), nullptr, cfg),
               InputError);
  EXPECT_EQ(dev.live, 0);
}

TEST(CudaRun, IndicesComeBackGlobalAndColumnMajorAcrossChunksAndSplits) {
  // axis 1, so the engine view swaps the sides; chunks of 9 rows, the 200 reduced rows in
  // splits: every index must be the global row of the reduced side, as run_cpu's.
  Problem p = make_problem("Min_ArgMin_Reduction(SqDist(x,y)+a, 1)", {"x = Vi(2)", "y = Vj(2)", "a = Vi(1)"},
                           {{200, 2}, {40, 2}, {200, 1}});
  for (bool chunked : {false, true}) {
    FakeDevice<double> dev(*p.plan);
    std::vector<double> values(40), indices(40, -7);
    CudaRunConfig cfg;
    cfg.chunk_rows = chunked ? 9 : 0;
    run_cuda(dev, *p.plan, fake_source(*p.plan, 8), p.args, p.shape, values.data(), indices.data(), cfg);
    std::vector<double> ref_idx;
    const auto ref = cpu_result(p, &ref_idx);
    for (std::size_t k = 0; k < 40; ++k) {
      EXPECT_NEAR(values[k], ref[k], 1e-12 * (1 + std::fabs(ref[k])));
      EXPECT_EQ(indices[k], ref_idx[k]) << "row " << k;
    }
    EXPECT_GT(dev.launches.front().second.y, 1);  // the reduced side was split
    EXPECT_EQ(dev.live, 0);
  }
}

// The driver reserves every resident thread's local memory at launch: a kernel whose
// per-thread arrays would take more than the budget on this device is refused (the backend
// turns it into a BackendError, so "auto" goes to the CPU), and a smaller one leaves less
// for the chunks.
TEST(CudaRun, PerThreadArraysAreBudgetedAsTheDriverReservesThem) {
  Problem p = make_problem(kGauss, kGaussDecls, {{50, 3}, {70, 3}, {70, 2}, {1, 1}});
  FakeDevice<double> dev(*p.plan);
  dev.sms = 132;
  dev.free_bytes = std::size_t{1} << 30;
  KernelSource src = fake_source(*p.plan, 32);
  src.thread_bytes = 8 * 1024;  // x 2048 threads x 132 SMs = 2.2 GB > 0.8 GB
  std::vector<double> out(100);
  CudaRunConfig cfg;
  try {
    run_cuda(dev, *p.plan, src, p.args, p.shape, out.data(), nullptr, cfg);
    FAIL() << "expected UnsupportedError";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("8 KB a thread"), std::string::npos) << e.what();
  }
  EXPECT_EQ(dev.live, 0);
  src.thread_bytes = 2 * 1024;  // 554 MB of the 859 MB budget
  run_cuda(dev, *p.plan, src, p.args, p.shape, out.data(), nullptr, cfg);
  const auto ref = cpu_result(p);
  for (std::size_t k = 0; k < out.size(); ++k) EXPECT_NEAR(out[k], ref[k], 1e-12 * (1 + std::fabs(ref[k])));
}

// Kernels from an NVRTC of a newer major version than the driver do not load (the driver
// rejects their cubin or PTX): CUDA is then unusable, with a reason naming both versions.
TEST(CudaBackend, AnNvrtcNewerThanTheDriverIsNamed) {
  EXPECT_EQ(kernops::cuda::nvrtc_driver_mismatch("13.0", 13020), "");
  EXPECT_EQ(kernops::cuda::nvrtc_driver_mismatch("12.4", 13000), "");
  EXPECT_EQ(kernops::cuda::nvrtc_driver_mismatch("13.0", 0), "");  // no driver: probe() says so
  const std::string why = kernops::cuda::nvrtc_driver_mismatch("13.0", 12040);
  EXPECT_NE(why.find("NVRTC 13.0 is newer than the CUDA driver (12.4)"), std::string::npos) << why;
}

// Windows of the reduced side: the same sums, launched in turn with the state carried; an
// interrupt is polled between windows, so a long reduced side stops within one window.
TEST(CudaRun, WindowsOfTheReducedSideCarryTheStateAndPollInterrupts) {
  Problem p = make_problem(kGauss, kGaussDecls, {{50, 3}, {700, 3}, {700, 2}, {1, 1}});
  FakeDevice<double> dev(*p.plan);
  std::vector<double> out(100);
  CudaRunConfig cfg;
  cfg.pairs_per_launch = 50 * 64;  // windows of 64 of the 700 reduced rows
  run_cuda(dev, *p.plan, fake_source(*p.plan, 32), p.args, p.shape, out.data(), nullptr, cfg);
  const auto ref = cpu_result(p);
  for (std::size_t k = 0; k < out.size(); ++k) EXPECT_NEAR(out[k], ref[k], 1e-12 * (1 + std::fabs(ref[k])));
  EXPECT_EQ(dev.launches.size(), 2u * 11);  // ceil(700 / 64) windows, a reduce and a merge each
  CountingControl ctl;
  ctl.interrupt_at = 3;
  cfg.control = &ctl;
  dev.launches.clear();
  EXPECT_THROW(run_cuda(dev, *p.plan, fake_source(*p.plan, 32), p.args, p.shape, out.data(), nullptr, cfg),
               Interrupted);
  EXPECT_EQ(dev.launches.size(), 2u * 3);
  EXPECT_EQ(dev.live, 0);
}
