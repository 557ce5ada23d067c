// The core's public API: compile a formula once into a Plan, check inputs against it,
// run it on the CPU. This is the only header the R glue and the standalone driver need.
// No R headers here.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "errors.h"
#include "parallel.h"
#include "plan.h"
#include "reduction.h"

namespace kernops {

// One input argument: a column-major rows x cols block of doubles (an R matrix).
// A parameter (Pm) is read as a vector of rows*cols values.
struct ArgData {
  const double* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
};

enum class Dtype { Float64, Float32 };

struct RunConfig {
  Dtype dtype = Dtype::Float64;
  int n_threads = 1;
  Control* control = nullptr;  // interrupt polling, on the calling thread only
  int max_isa = 2;             // highest instruction set allowed: 0 baseline, 1 AVX2, 2 AVX-512
  // With few rows per thread the CPU engine also splits the reduced range across threads
  // and merges partial states (Note [CPU tiling]), so a row's last bits depend on N and the
  // thread count. false keeps every row's reduced range whole and in one order: a row's
  // result then depends only on the data, so blocks of rows computed apart (sharded over
  // R's future workers, R/future.R) are bitwise the rows of the whole call.
  bool split_reduced = true;
};

// Shape of a result: `rows` output points; value and index columns (either may be 0).
struct OutShape {
  std::int64_t rows = 0;  // N: number of points the result is indexed by
  std::int64_t reduced = 0;  // M: number of points reduced over
  int value_cols = 0;
  int index_cols = 0;
};

// Parses and plans a formula with its reduction. Throws ParseError / DimensionError.
std::shared_ptr<const Plan> compile(const std::string& formula, const std::vector<std::string>& decls);

// Validates the arguments (count, shapes, row counts, finiteness) and returns the
// shape of the result. Throws InputError / DimensionError naming the argument.
OutShape check_args(const Plan& plan, const std::vector<ArgData>& args);

// Runs the reduction on the CPU. `values` (rows x value_cols) and `indices`
// (rows x index_cols, 0-based, -1 for none) are column-major and preallocated.
void run_cpu(const Plan& plan, const std::vector<ArgData>& args, double* values, double* indices,
             const RunConfig& config);
// The same for arguments already validated: `shape` is what check_args() returned for
// them (the glue checks first, to size and allocate the result).
void run_cpu(const Plan& plan, const std::vector<ArgData>& args, const OutShape& shape, double* values,
             double* indices, const RunConfig& config);

}  // namespace kernops
