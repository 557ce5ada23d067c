// The contract between the CUDA code generator (codegen.h: Plan -> kernel source) and the
// CUDA runtime (memory, chunked launches, caching). Both sides include this header; the
// generator also pastes the struct below, verbatim, into every generated source (generated
// code needs no CUDA header), and the CPU emulation of generated kernels (tests/cpp) calls
// the kernels with the same struct, so one contract is tested without a GPU.
// No R headers, no CUDA headers here.
#pragma once
#include <cstdint>
#include <string>

namespace kernops {
namespace cuda {

// Data layout on the device (T = float or double, the run's dtype):
//   * every Vi / Vj argument: a row-major (rows x dim) array of T, point after point, so a
//     thread reads one point contiguously; arguments keep the Plan's engine view (after the
//     axis swap: "i" is always the output side);
//   * every Pm argument: dim values of T;
//   * values: row-major (n_i x value_cols) T; indices: row-major (n_i x index_cols) int64,
//     0-based *global* indices of the reduced side, -1 for none.
//
// Grid: blockDim.x = KernelSource::block_size, one output row per thread;
// gridDim.x = ceil(n_i / block_size); gridDim.y = n_split, the splits of this launch's
// reduced rows [j_begin, j_end): block y reduces [j_begin + y * j_per_split, min(j_end,
// j_begin + (y + 1) * j_per_split)).
//   * direct == 1 (one split and one launch over j): kernel `reduce_name` writes the final
//     values / indices.
//   * else `reduce_name` writes each split's reducer state to `state` ([split][row]
//     [state_width] T, row relative to i0); then kernel `merge_name`, launched with gridDim =
//     (ceil(n_i / block_size), 1), one thread per row, folds, in this order: the row's state
//     in `carry` when carry_in == 1 (the launches over earlier reduced rows), then the
//     n_split states in split order (so ties keep the first index); and writes the final
//     values / indices when finish == 1, else the folded state back to `carry`.
// The runtime launches over windows of the reduced side in turn when one launch would be
// too long (Ctrl-C is polled between launches): the first window with carry_in = 0, the
// last with finish = 1.
// The struct is passed by value as the kernels' only parameter.
struct LaunchArgs {
  const void* const* args;   // device array of device pointers, one per formula argument
  std::int64_t i0;           // first output row of this launch (chunked launches over i)
  std::int64_t n_i;          // output rows in this launch: [i0, i0 + n_i)
  std::int64_t j_begin;      // reduced rows of this launch: [j_begin, j_end), global
  std::int64_t j_end;
  std::int64_t j_per_split;  // reduced rows per block y (a multiple of block_size)
  std::int64_t n_split;      // gridDim.y of the reduce launch (read by the merge kernel)
  std::int64_t direct;       // 1: the reduce kernel writes the final results (no merge)
  std::int64_t carry_in;     // 1: the merge kernel folds `carry` first
  std::int64_t finish;       // 1: the merge kernel writes the final results, 0: `carry`
  void* state;               // n_split x n_i x state_width T when direct == 0
  void* carry;               // n_i x state_width T: the folded state of earlier windows
  void* values;              // n_i x value_cols T, rows relative to i0 (null when value_cols == 0)
  std::int64_t* indices;     // n_i x index_cols int64, rows relative to i0 (null when index_cols == 0)
};

// What the generator returns for one (formula, reduction, axis, dtype).
struct KernelSource {
  std::string source;        // complete CUDA C++ translation unit, extern "C" kernels
  std::string reduce_name;   // e.g. "kernops_reduce"
  std::string merge_name;    // e.g. "kernops_merge"
  int block_size = 128;      // threads per block (also the j-tile height in shared memory)
  std::int64_t shared_bytes = 0;  // dynamic shared memory per block
  int state_width = 0;       // T values of reducer state per row (for the split / merge)
  std::int64_t thread_bytes = 0;  // per-thread arrays: an upper bound of a thread's local memory
  int value_cols = 0, index_cols = 0;
};

}  // namespace cuda
}  // namespace kernops
