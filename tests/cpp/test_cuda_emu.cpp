// The generated CUDA kernels *executed*: each kernel of cuda_cases.h, compiled as host C++
// over cuda_emu.h at build time (cuda_emu_gen.cpp), runs on emulated grids -- several
// blocks with a partial last one, i chunks starting past 0, the j range split over blocks
// and merged -- and must give the CPU engine's values (1e-12 relative in float64, 1e-5 in
// float32, or closer to the float64 result than the CPU's float32) and exactly its
// indices, NaN where it has NaN.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cuda/codegen.h"
#include "cuda/runtime.h"
#include "cuda_cases.h"
#include "cuda_emu_registry.h"
#include "kernops.h"

using namespace kernops;

namespace {

constexpr std::int64_t kN = 37, kM = 53;  // rows not a multiple of any block, tiles partial

struct Data {
  std::vector<std::vector<double>> cols;  // column-major, as R gives them
  std::vector<ArgData> args;
};

Data make_data(const Plan& p, unsigned seed) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  Data d;
  for (const auto& v : p.formula.vars) {
    const std::int64_t rows = v.cat == Cat::P ? 1 : (v.cat == Cat::I ? kN : kM);
    d.cols.emplace_back(static_cast<size_t>(rows * v.dim));
    for (auto& x : d.cols.back()) x = u(g);
    d.args.push_back({d.cols.back().data(), rows, v.dim});
  }
  return d;
}

// Results column-major (rows x cols), as run_cpu writes them.
struct Out {
  OutShape shape;
  std::vector<double> values, indices;
};

Out run_reference(const Plan& p, const Data& d, Dtype dt) {
  Out o;
  o.shape = check_args(p, d.args);
  o.values.assign(static_cast<size_t>(o.shape.rows * o.shape.value_cols), 0);
  o.indices.assign(static_cast<size_t>(o.shape.rows * o.shape.index_cols), 0);
  RunConfig c;
  c.dtype = dt;
  run_cpu(p, d.args, o.values.data(), o.indices.data(), c);
  return o;
}

// How one call is cut into launches: i chunks [i0, i0 + n_i) and j per split.
struct Launch {
  std::vector<std::int64_t> chunk_starts;  // the first is 0; chunks run to the next start or N
  std::int64_t j_per_split;
};

// The runtime's side of kernel_abi.h, on the emulation: device layouts, launches, merge.
template <class T>
Out run_emulated(const Plan& p, const cuda::KernelSource& ks, const kernops_test::EmuKernel& k, const Data& d,
                 const OutShape& shape, const Launch& launch) {
  std::vector<std::vector<T>> dev;  // row-major copies of the arguments
  std::vector<const void*> ptrs;
  for (size_t a = 0; a < d.args.size(); ++a) {
    const ArgData& ad = d.args[a];
    std::vector<T> rm(static_cast<size_t>(ad.rows * ad.cols));
    const bool param = p.formula.vars[a].cat == Cat::P;
    for (std::int64_t r = 0; r < ad.rows; ++r)
      for (std::int64_t c = 0; c < ad.cols; ++c)
        rm[r * ad.cols + c] = static_cast<T>(param ? ad.data[r * ad.cols + c] : ad.data[r + c * ad.rows]);
    dev.push_back(std::move(rm));
  }
  for (const auto& v : dev) ptrs.push_back(v.data());
  const std::int64_t N = shape.rows, M = shape.reduced;
  EXPECT_EQ(ks.value_cols, shape.value_cols);
  EXPECT_EQ(ks.index_cols, shape.index_cols);
  std::vector<T> values(static_cast<size_t>(N * ks.value_cols), T(-7));
  std::vector<std::int64_t> indices(static_cast<size_t>(N * ks.index_cols), -7);
  const std::int64_t n_split = (M + launch.j_per_split - 1) / launch.j_per_split;
  for (size_t q = 0; q < launch.chunk_starts.size(); ++q) {
    const std::int64_t i0 = launch.chunk_starts[q];
    const std::int64_t n_i = (q + 1 < launch.chunk_starts.size() ? launch.chunk_starts[q + 1] : N) - i0;
    std::vector<T> state(static_cast<size_t>(n_split > 1 ? n_split * n_i * ks.state_width : 0));
    cuda::LaunchArgs la{};
    la.args = ptrs.data();
    la.i0 = i0;
    la.n_i = n_i;
    la.j_begin = 0;
    la.j_end = M;
    la.j_per_split = launch.j_per_split;
    la.n_split = n_split;
    la.direct = n_split > 1 ? 0 : 1;
    la.carry_in = 0;
    la.finish = 1;
    la.state = state.data();
    la.values = ks.value_cols ? values.data() + i0 * ks.value_cols : nullptr;
    la.indices = ks.index_cols ? indices.data() + i0 * ks.index_cols : nullptr;
    const unsigned gx = static_cast<unsigned>((n_i + ks.block_size - 1) / ks.block_size);
    k.reduce(la, gx, static_cast<unsigned>(n_split), static_cast<unsigned>(ks.block_size));
    if (n_split > 1) k.merge(la, gx, static_cast<unsigned>(ks.block_size));
  }
  Out o;
  o.shape = shape;
  o.values.resize(values.size());
  o.indices.resize(indices.size());
  for (std::int64_t r = 0; r < N; ++r) {
    for (int c = 0; c < ks.value_cols; ++c) o.values[r + c * N] = static_cast<double>(values[r * ks.value_cols + c]);
    for (int c = 0; c < ks.index_cols; ++c) o.indices[r + c * N] = static_cast<double>(indices[r * ks.index_cols + c]);
  }
  return o;
}

// The runtime's Device over host memory whose "module" is the case's emulated kernels: the
// package's run_cuda() (layouts, chunks, splits, merge, copies back) drives the generated
// code, so what a GPU would run is tested end to end but for the hardware.
class EmuDevice : public cuda::Device {
 public:
  explicit EmuDevice(const kernops_test::EmuKernel& k) : k_(k) {}
  int launches = 0, live = 0;
  std::size_t free_memory() override { return std::size_t{1} << 30; }
  int multiprocessors() override { return 2; }
  void* alloc(std::size_t bytes) override {
    ++live;
    return std::calloc(bytes ? bytes : 1, 1);
  }
  void free(void* p) noexcept override {
    if (p) --live;
    std::free(p);
  }
  void copy_to_device(void* d, const void* s, std::size_t n) override { std::memcpy(d, s, n); }
  void copy_to_host(void* d, const void* s, std::size_t n) override { std::memcpy(d, s, n); }
  std::shared_ptr<cuda::Module> load(const cuda::KernelSource& src) override {
    if (src.source != k_.source) throw std::runtime_error("EmuDevice: not the source compiled in");
    return std::make_shared<cuda::Module>();
  }
  void launch(cuda::Module&, const std::string& name, cuda::Grid grid, int block, std::int64_t,
              const cuda::LaunchArgs& a) override {
    ++launches;
    if (name == "kernops_reduce")
      k_.reduce(a, static_cast<unsigned>(grid.x), static_cast<unsigned>(grid.y), static_cast<unsigned>(block));
    else if (name == "kernops_merge")
      k_.merge(a, static_cast<unsigned>(grid.x), static_cast<unsigned>(block));
    else
      throw std::runtime_error("EmuDevice: no kernel " + name);
  }
  void synchronize() override {}

 private:
  const kernops_test::EmuKernel& k_;
};

bool same_value(double got, double want, double tol) {
  if (std::isnan(want) || std::isnan(got)) return std::isnan(want) && std::isnan(got);
  if (got == want) return true;  // infinities included
  return std::fabs(got - want) <= tol * std::max(1.0, std::fabs(want));
}

}  // namespace

// Each case's plan, its kernels (checked to be the ones compiled in), data and the CPU
// engine's results in the case's dtype and in float64.
class CudaEmulation : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    const auto cases = kernops_test::cuda_cases();
    ASSERT_EQ(static_cast<int>(cases.size()), kernops_test::kEmuKernelCount) << "stale build: rerun cmake --build";
    c_ = GetParam();
    cs_ = cases[static_cast<size_t>(c_)];
    plan_ = compile(cs_.formula, kernops_test::cuda_case_decls());
    cuda::CodegenOptions opt;
    opt.block_size = cs_.block_size;
    ks_ = cuda::generate_cuda(*plan_, cs_.dtype, opt);
    ASSERT_EQ(ks_.source, kernel().source) << "the compiled kernel is not what the generator writes now: rebuild";
    data_ = make_data(*plan_, 1000u + static_cast<unsigned>(c_));
    want_ = run_reference(*plan_, data_, cs_.dtype);
    exact_ = cs_.dtype == Dtype::Float32 ? run_reference(*plan_, data_, Dtype::Float64) : want_;
  }
  const kernops_test::EmuKernel& kernel() const { return kernops_test::kEmuKernels[c_]; }
  std::string what() const { return cs_.formula + (cs_.dtype == Dtype::Float32 ? " float32" : " float64"); }

  // Values within 1e-12 relative (float64) or 1e-5 (float32) of the CPU engine's, indices
  // equal, NaN where it has NaN. float32 sums that cancel (a gradient's) lose more than 1e-5
  // relative on the CPU too: a value also passes when it is as close to the float64 result
  // as 1e-5 relative or twice the CPU's own float32 error allow (as accurate as the CPU).
  void expect_engine_results(const std::vector<double>& values, const std::vector<double>& indices) const {
    const double tol = cs_.dtype == Dtype::Float64 ? 1e-12 : 1e-5;
    const size_t rows = static_cast<size_t>(want_.shape.rows);
    int bad = 0;
    for (size_t e = 0; e < want_.values.size() && bad < 5; ++e) {
      const double err = std::fabs(values[e] - exact_.values[e]), cpu_err = std::fabs(want_.values[e] - exact_.values[e]);
      const bool ok = same_value(values[e], want_.values[e], tol) ||
                      (cs_.dtype == Dtype::Float32 &&
                       err <= std::max(tol * std::max(1.0, std::fabs(exact_.values[e])), 2 * cpu_err));
      if (!ok) {
        ++bad;
        ADD_FAILURE() << "value row " << e % rows << " col " << e / rows << ": got " << values[e] << " want "
                      << want_.values[e] << " (float64: " << exact_.values[e] << ")";
      }
    }
    for (size_t e = 0; e < want_.indices.size() && bad < 5; ++e)
      if (indices[e] != want_.indices[e]) {
        ++bad;
        ADD_FAILURE() << "index row " << e % rows << " col " << e / rows << ": got " << indices[e] << " want "
                      << want_.indices[e];
      }
  }

  int c_ = 0;
  kernops_test::CudaCase cs_;
  std::shared_ptr<const Plan> plan_;
  cuda::KernelSource ks_;
  Data data_;
  Out want_, exact_;
};

// The kernels on launches laid out by hand: one launch; i in chunks (i0 > 0) with j in three
// splits; small chunks with j splits shorter than a tile.
TEST_P(CudaEmulation, GeneratedKernelMatchesTheCpuEngine) {
  SCOPED_TRACE(what());
  const std::vector<Launch> launches = {{{0}, kM}, {{0, 20}, (kM + 2) / 3}, {{0, 5, 6, 29}, 7}};
  for (size_t q = 0; q < launches.size(); ++q) {
    SCOPED_TRACE("launch " + std::to_string(q));
    const Out got = cs_.dtype == Dtype::Float64
                        ? run_emulated<double>(*plan_, ks_, kernel(), data_, want_.shape, launches[q])
                        : run_emulated<float>(*plan_, ks_, kernel(), data_, want_.shape, launches[q]);
    expect_engine_results(got.values, got.indices);
  }
}

// The same kernels launched by the package's runtime (run_cuda) on the emulated device:
// whole and in chunks of 8 rows (the runtime picks the j splits: few "multiprocessors"),
// each also with pairs_per_launch = 8 x 16, which cuts the reduced side into windows of
// one block's rows, launched in turn with the state carried from window to window.
TEST_P(CudaEmulation, RunCudaDrivesTheGeneratedKernels) {
  SCOPED_TRACE(what());
  for (std::int64_t chunk : {std::int64_t{0}, std::int64_t{8}})
    for (std::int64_t ppl : {cuda::kPairsPerLaunch, std::int64_t{8 * 16}}) {
      SCOPED_TRACE("chunk_rows " + std::to_string(chunk) + ", pairs_per_launch " + std::to_string(ppl));
      EmuDevice dev(kernel());
      cuda::CudaRunConfig cfg;
      cfg.dtype = cs_.dtype;
      cfg.chunk_rows = chunk;
      cfg.pairs_per_launch = ppl;
      std::vector<double> values(want_.values.size(), -7), indices(want_.indices.size(), -7);
      cuda::run_cuda(dev, *plan_, ks_, data_.args, want_.shape, values.data(), indices.data(), cfg);
      // windows of at most 16 of the 37 or 53 reduced rows: 3 or more, a reduce and a merge each
      if (ppl < cuda::kPairsPerLaunch && ks_.block_size <= 16) {
        EXPECT_GE(dev.launches, 6);
      }
      EXPECT_EQ(dev.live, 0) << "device buffers left allocated";
      expect_engine_results(values, indices);
    }
}

INSTANTIATE_TEST_SUITE_P(Cases, CudaEmulation,
                         ::testing::Range(0, static_cast<int>(kernops_test::cuda_cases().size())));
