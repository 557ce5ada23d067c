// The CPU backend's entry points: compile(), check_args(), and run_cpu(), which picks
// the best instruction set the processor supports (Note [ISA dispatch] in isa.h).
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <new>
#include <string>

#include "../fp_env.h"
#include "../kernops.h"
#include "isa.h"

namespace kernops {

namespace {

std::string decl_string(const VarDecl& v) { return std::string(cat_keyword(v.cat)) + "(" + std::to_string(v.dim) + ")"; }

}  // namespace

std::shared_ptr<const Plan> compile(const std::string& formula, const std::vector<std::string>& decls) {
  return std::make_shared<const Plan>(make_plan(parse_formula(formula, decls)));
}

OutShape check_args(const Plan& plan, const std::vector<ArgData>& args) {
  const auto& vars = plan.formula.vars;
  if (args.size() != vars.size())
    throw InputError("expected " + std::to_string(vars.size()) + " arguments, got " + std::to_string(args.size()));
  std::int64_t rows[4] = {-1, -1, -1, -1};
  int who[4] = {-1, -1, -1, -1};
  for (size_t a = 0; a < args.size(); ++a) {
    const VarDecl& v = vars[a];
    const ArgData& d = args[a];
    const Level l = static_cast<Level>(plan.arg_level[a]);
    if (v.cat == Cat::P) {
      if (d.rows * d.cols != v.dim)
        throw DimensionError("argument '" + v.name + "' is declared " + decl_string(v) + " (" +
                             std::to_string(v.dim) + " values) but has " + std::to_string(d.rows * d.cols) +
                             " values");
    } else {
      if (d.cols != v.dim)
        throw DimensionError("argument '" + v.name + "' is declared " + decl_string(v) + " (" +
                             std::to_string(v.dim) + " columns) but has " + std::to_string(d.cols) + " columns");
      if (d.rows < 1) throw InputError("argument '" + v.name + "' has zero rows");
      if (rows[l] >= 0 && rows[l] != d.rows)
        throw InputError("arguments '" + vars[who[l]].name + "' and '" + v.name + "' are both indexed by " +
                         (v.cat == Cat::I ? "i" : "j") + " but have " + std::to_string(rows[l]) + " and " +
                         std::to_string(d.rows) + " rows");
      rows[l] = d.rows;
      who[l] = static_cast<int>(a);
    }
    const std::int64_t n = d.rows * d.cols;
    for (std::int64_t q = 0; q < n; ++q)
      if (!std::isfinite(d.data[q]))
        throw InputError("argument '" + v.name + "' contains NA, NaN or Inf (row " + std::to_string(q % d.rows + 1) +
                         ", column " + std::to_string(q / d.rows + 1) + ")");
  }
  const int axis = plan.formula.axis;
  const char* out_name = axis == 0 ? "i" : "j";
  const char* red_name = axis == 0 ? "j" : "i";
  if (rows[kI] < 0)
    throw DimensionError(std::string("the result is indexed by ") + out_name + " (axis " + std::to_string(axis) +
                         ") but no argument is declared V" + out_name + ": the number of output rows is unknown");
  if (rows[kJ] < 0)
    throw DimensionError(std::string("the reduction runs over ") + red_name + " but no argument is declared V" +
                         red_name + ": the number of points to reduce over is unknown");
  OutShape s;
  s.rows = rows[kI];
  s.reduced = rows[kJ];
  const int od = plan.out_dim();
  switch (plan.kind) {
    case RedKind::ArgMin: case RedKind::ArgMax: case RedKind::ArgKMin:
      s.index_cols = od;
      break;
    case RedKind::MinArgMin: case RedKind::MaxArgMax: case RedKind::KMinArgKMin:
      s.value_cols = od / 2;
      s.index_cols = od / 2;
      break;
    default:
      s.value_cols = od;
  }
  if (plan.k > s.reduced)
    throw InputError("K = " + std::to_string(plan.k) + " is larger than the number of points reduced over (" +
                     std::to_string(s.reduced) + ")");
  return s;
}

namespace {
// float32 cannot hold finite doubles beyond ~3.4e38: they would silently become Inf.
void check_float32_range(const Plan& plan, const std::vector<ArgData>& args) {
  for (size_t a = 0; a < args.size(); ++a) {
    const std::int64_t n = args[a].rows * args[a].cols;
    for (std::int64_t q = 0; q < n; ++q)
      if (std::fabs(args[a].data[q]) > std::numeric_limits<float>::max())
        throw InputError("argument '" + plan.formula.vars[a].name + "' has values beyond the float32 range (" +
                         std::to_string(args[a].data[q]) + "); use dtype = \"float64\"");
  }
}
}  // namespace

void run_cpu(const Plan& plan, const std::vector<ArgData>& args, double* values, double* indices,
             const RunConfig& config) {
  run_cpu(plan, args, check_args(plan, args), values, indices, config);
}

void run_cpu(const Plan& plan, const std::vector<ArgData>& args, const OutShape& shape, double* values,
             double* indices, const RunConfig& config) {
  if (config.dtype == Dtype::Float32) check_float32_range(plan, args);
  const cpu::Isa isa = cpu::select_isa(static_cast<cpu::Isa>(config.max_isa));
  // Tasks set it on their own thread; this covers what the calling thread does between
  // them (merging partial states, finishing rows) and restores its state on every exit.
  FlushSubnormals flush;
  try {
    switch (isa) {
      case cpu::Isa::Avx512: cpu::avx512::run_tiles(plan, args, shape, values, indices, config); break;
      case cpu::Isa::Avx2: cpu::avx2::run_tiles(plan, args, shape, values, indices, config); break;
      default: cpu::base::run_tiles(plan, args, shape, values, indices, config); break;
    }
  } catch (const std::bad_alloc&) {
    throw MemoryError("not enough memory for the working buffers of this reduction (O(N + M) values)");
  }
}

}  // namespace kernops
