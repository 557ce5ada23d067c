// Chunked, split launches of generated kernels (see runtime.h).
#include "runtime.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace kernops {
namespace cuda {

namespace {

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

std::string mb(double bytes) { return std::to_string(static_cast<long long>(std::ceil(bytes / 1e6))) + " MB"; }

// One argument in the kernels' layout: row-major rows x cols of T (engine view), or the
// dim values of a parameter in their R order.
template <class T>
std::vector<T> to_device_layout(const Plan& plan, std::size_t a, const ArgData& d) {
  const std::int64_t n = d.rows * d.cols;
  std::vector<T> out(static_cast<std::size_t>(n));
  const bool param = plan.arg_level[a] == kP;
  for (std::int64_t r = 0; r < (param ? 1 : d.rows); ++r)
    for (std::int64_t c = 0; c < (param ? n : d.cols); ++c) {
      const double v = param ? d.data[c] : d.data[c * d.rows + r];
      // float32 cannot hold finite doubles beyond ~3.4e38: they would silently become Inf.
      if (sizeof(T) == 4 && std::fabs(v) > std::numeric_limits<float>::max())
        throw InputError("argument '" + plan.formula.vars[a].name + "' has values beyond the float32 range (" +
                         std::to_string(v) + "); use dtype = \"float64\"");
      out[static_cast<std::size_t>(param ? c : r * d.cols + c)] = static_cast<T>(v);
    }
  return out;
}

template <class T>
void run_typed(Device& dev, const Plan& plan, const KernelSource& src, const std::vector<ArgData>& args,
               const OutShape& shape, double* values, double* indices, const CudaRunConfig& cfg) {
  const std::int64_t N = shape.rows, M = shape.reduced;
  const int vc = shape.value_cols, ic = shape.index_cols;
  if (vc != src.value_cols || ic != src.index_cols)
    throw InternalError("the CUDA kernel writes " + std::to_string(src.value_cols) + " value and " +
                        std::to_string(src.index_cols) + " index columns, the reduction has " + std::to_string(vc) +
                        " and " + std::to_string(ic));
  // Inputs: whole, once (O(N + M)); the kernels index them globally, the outputs by chunk.
  std::vector<DeviceBuffer> inputs;
  std::vector<const void*> arg_ptrs;
  double input_bytes = 0;
  for (const auto& d : args) input_bytes += static_cast<double>(d.rows * d.cols) * sizeof(T);
  // The driver reserves every resident thread's local memory (the kernel's per-thread
  // arrays) when it launches, outside our allocations: take it off the budget first.
  const double local_bytes = static_cast<double>(src.thread_bytes) * kThreadsPerSm * dev.multiprocessors();
  const double usable = static_cast<double>(dev.free_memory()) * cfg.memory_fraction - local_bytes;
  if (usable <= 0)
    throw UnsupportedError("this formula's per-thread arrays (" + std::to_string(src.thread_bytes / 1024) + " KB" +
                           " a thread) need " + mb(local_bytes) + " of GPU memory at once, more than the " +
                           mb(static_cast<double>(dev.free_memory()) * cfg.memory_fraction) +
                           " available; use backend = \"cpu\"");
  if (input_bytes > usable)
    throw DeviceMemoryError("the arguments need " + mb(input_bytes) + " on the GPU, which has " +
                            mb(usable) + " available for this run");
  for (std::size_t a = 0; a < args.size(); ++a) {
    const std::vector<T> host = to_device_layout<T>(plan, a, args[a]);
    inputs.emplace_back(dev, host.size() * sizeof(T));
    dev.copy_to_device(inputs.back().get(), host.data(), host.size() * sizeof(T));
    arg_ptrs.push_back(inputs.back().get());
  }
  DeviceBuffer arg_table(dev, arg_ptrs.size() * sizeof(void*));
  if (!arg_ptrs.empty()) dev.copy_to_device(arg_table.get(), arg_ptrs.data(), arg_ptrs.size() * sizeof(void*));

  const double budget = static_cast<double>(dev.free_memory()) * cfg.memory_fraction - local_bytes;
  const LaunchShape ls = launch_shape(N, M, src, sizeof(T), budget > 0 ? static_cast<std::size_t>(budget) : 0,
                                      dev.multiprocessors(), dev.max_grid_y(), cfg.chunk_rows, cfg.pairs_per_launch);
  const std::int64_t C = ls.chunk_rows;
  const std::int64_t n_windows = std::max<std::int64_t>(1, ceil_div(M, ls.j_per_launch));
  const bool merged = ls.n_split > 1 || n_windows > 1;
  DeviceBuffer d_values(dev, static_cast<std::size_t>(C * vc) * sizeof(T));
  DeviceBuffer d_indices(dev, static_cast<std::size_t>(C * ic) * sizeof(std::int64_t));
  DeviceBuffer d_state(dev, merged ? static_cast<std::size_t>(ls.n_split * C * src.state_width) * sizeof(T) : 0);
  DeviceBuffer d_carry(dev, n_windows > 1 ? static_cast<std::size_t>(C * src.state_width) * sizeof(T) : 0);
  std::shared_ptr<Module> mod = dev.load(src);
  std::vector<T> h_values(static_cast<std::size_t>(C * vc));
  std::vector<std::int64_t> h_indices(static_cast<std::size_t>(C * ic));

  for (std::int64_t i0 = 0; i0 < N; i0 += C) {
    const std::int64_t n = std::min(C, N - i0);
    const std::int64_t bx = ceil_div(n, src.block_size);
    for (std::int64_t w = 0; w < n_windows; ++w) {
      LaunchArgs la{};
      la.args = static_cast<const void* const*>(arg_table.get());
      la.i0 = i0;
      la.n_i = n;
      la.j_begin = w * ls.j_per_launch;
      la.j_end = std::min(M, la.j_begin + ls.j_per_launch);
      la.j_per_split = ls.j_per_split;
      la.n_split = std::max<std::int64_t>(1, ceil_div(la.j_end - la.j_begin, ls.j_per_split));
      la.direct = merged ? 0 : 1;
      la.carry_in = w > 0 ? 1 : 0;
      la.finish = w + 1 == n_windows ? 1 : 0;
      la.state = d_state.get();
      la.carry = d_carry.get();
      la.values = vc ? d_values.get() : nullptr;
      la.indices = ic ? static_cast<std::int64_t*>(d_indices.get()) : nullptr;
      dev.launch(*mod, src.reduce_name, Grid{bx, la.n_split}, src.block_size, src.shared_bytes, la);
      if (merged) dev.launch(*mod, src.merge_name, Grid{bx, 1}, src.block_size, 0, la);
      if (n_windows > 1) {
        dev.synchronize();
        if (cfg.control && cfg.control->interrupted()) throw Interrupted();
      }
    }
    dev.synchronize();
    if (vc) dev.copy_to_host(h_values.data(), d_values.get(), static_cast<std::size_t>(n * vc) * sizeof(T));
    if (ic)
      dev.copy_to_host(h_indices.data(), d_indices.get(), static_cast<std::size_t>(n * ic) * sizeof(std::int64_t));
    for (std::int64_t r = 0; r < n; ++r) {
      for (int c = 0; c < vc; ++c) values[c * N + i0 + r] = static_cast<double>(h_values[static_cast<std::size_t>(r * vc + c)]);
      for (int c = 0; c < ic; ++c) indices[c * N + i0 + r] = static_cast<double>(h_indices[static_cast<std::size_t>(r * ic + c)]);
    }
    if (cfg.control) {
      if (cfg.control->interrupted()) throw Interrupted();
      if (i0 + n < N) cfg.control->progress(static_cast<double>(i0 + n) / static_cast<double>(N));
    }
  }
  if (cfg.control) cfg.control->progress(1.0);
}

}  // namespace

LaunchShape launch_shape(std::int64_t n_i, std::int64_t n_j, const KernelSource& src, std::size_t elem,
                         std::size_t budget_bytes, int multiprocessors, std::int64_t max_grid_y,
                         std::int64_t chunk_rows, std::int64_t pairs_per_launch) {
  const std::int64_t bs = std::max(1, src.block_size);
  const std::int64_t fill = std::max<std::int64_t>(1, multiprocessors) * kThreadsPerSm;
  const std::int64_t ppl = std::max<std::int64_t>(1, pairs_per_launch);
  LaunchShape s;
  // Rows per launch: at most `ppl` pairs (interrupt latency), never fewer rows than fill
  // the device; a forced size wins.
  std::int64_t c = std::max<std::int64_t>(fill, ppl / std::max<std::int64_t>(1, n_j));
  if (chunk_rows > 0) c = chunk_rows;
  c = std::max<std::int64_t>(1, std::min(c, n_i));
  // Memory: the outputs of one chunk.
  const double out_row = static_cast<double>(src.value_cols) * elem + static_cast<double>(src.index_cols) * 8;
  const double budget = static_cast<double>(budget_bytes);
  if (out_row > 0) c = std::min<std::int64_t>(c, static_cast<std::int64_t>(budget / out_row));
  if (c < 1)
    throw DeviceMemoryError("not even one output row (" + mb(out_row) + ") fits in the GPU memory available (" +
                            mb(budget) + ")");
  s.chunk_rows = c;
  // States of one output row that fit next to its outputs (splits, and the carry of windows).
  const bool can_merge = src.state_width > 0 && !src.merge_name.empty();
  const double state_row = static_cast<double>(src.state_width) * elem;
  const std::int64_t fits =
      can_merge ? static_cast<std::int64_t>((budget / static_cast<double>(c) - out_row) / state_row) : 0;
  // Windows of the reduced side, one launch each in turn, when a launch over all of it
  // would exceed `ppl` pairs: each a multiple of the block size, the state carried from
  // window to window through the merge kernel (kernel_abi.h).
  s.j_per_launch = std::max<std::int64_t>(n_j, 1);
  if (can_merge && fits >= 2 && c * n_j > ppl)
    s.j_per_launch = std::min(s.j_per_launch, std::max<std::int64_t>(bs, ppl / c / bs * bs));
  const bool windows = s.j_per_launch < n_j;
  // Split a window when the chunk's rows leave the device idle (as the CPU splits j for
  // small N): enough splits to fill it, each at least one tile of block_size rows.
  s.j_per_split = ceil_div(s.j_per_launch, bs) * bs;
  const std::int64_t threads = ceil_div(c, bs) * bs;
  if (threads < fill && can_merge) {
    std::int64_t ns = std::min({ceil_div(fill, threads), ceil_div(s.j_per_launch, bs), std::max<std::int64_t>(1, max_grid_y)});
    ns = std::min(ns, fits - (windows ? 1 : 0));  // the carry takes one state per row
    if (ns > 1) {
      s.j_per_split = ceil_div(ceil_div(s.j_per_launch, ns), bs) * bs;
      s.n_split = ceil_div(s.j_per_launch, s.j_per_split);
    }
  }
  if (s.n_split <= 1) s.n_split = 1;
  return s;
}

void run_cuda(Device& dev, const Plan& plan, const KernelSource& src, const std::vector<ArgData>& args,
              const OutShape& shape, double* values, double* indices, const CudaRunConfig& config) {
  if (config.dtype == Dtype::Float32)
    run_typed<float>(dev, plan, src, args, shape, values, indices, config);
  else
    run_typed<double>(dev, plan, src, args, shape, values, indices, config);
}

}  // namespace cuda
}  // namespace kernops
