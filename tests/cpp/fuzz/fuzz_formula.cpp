// libFuzzer target for the core: compiles a formula with its declarations, prints it,
// checks and runs it on small data. Expected failures are typed kernops::Error; anything
// else (a crash, a sanitizer report, std::bad_alloc, an InternalError, a printed formula
// that does not parse back to the same DAG) is a bug. How to build and run: README.md.
//
// Input: the formula on the first line, then one declaration per line ("x = Vi(3)").
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "kernops.h"

using namespace kernops;

namespace {

// Sizes small enough that every input runs in milliseconds: larger ones only find
// timeouts and out-of-memory, not bugs.
constexpr int kMaxArgValues = 4096;
constexpr int kMaxOutDim = 4096;

void fuzz_one(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start <= text.size() && lines.size() < 9) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  const std::vector<std::string> decls(lines.begin() + 1, lines.end());
  std::shared_ptr<const Plan> plan;
  try {
    plan = compile(lines[0], decls);
  } catch (const InternalError&) {
    std::abort();
  } catch (const Error&) {
    return;
  }
  const Formula& f = plan->formula;
  // Printing: either refused up front (too large) or parsed back to the same formula.
  try {
    const std::string printed = f.to_string();
    const Formula back = parse_formula(printed, f.decl_strings());
    if (!equal(back.f, f.f) || (f.f2 && !equal(back.f2, f.f2))) std::abort();
  } catch (const UnsupportedError&) {
  }
  if (plan->out_dim() > kMaxOutDim) return;
  // Data: 3 points indexed by i, 4 by j, values from a fixed pattern.
  std::vector<std::vector<double>> store;
  std::vector<ArgData> args;
  for (const auto& v : f.vars) {
    const std::int64_t rows = v.cat == Cat::I ? 3 : v.cat == Cat::J ? 4 : 1;
    if (rows * v.dim > kMaxArgValues) return;
    store.emplace_back(static_cast<std::size_t>(rows * v.dim));
    for (std::size_t q = 0; q < store.back().size(); ++q) store.back()[q] = 0.25 * static_cast<double>(q % 7) - 0.6;
    args.push_back({store.back().data(), v.cat == Cat::P ? v.dim : rows, v.cat == Cat::P ? 1 : v.dim});
  }
  try {
    const OutShape shape = check_args(*plan, args);
    std::vector<double> values(static_cast<std::size_t>(shape.rows * shape.value_cols));
    std::vector<double> indices(static_cast<std::size_t>(shape.rows * shape.index_cols));
    RunConfig config;
    for (Dtype dtype : {Dtype::Float64, Dtype::Float32}) {
      config.dtype = dtype;
      run_cpu(*plan, args, shape, values.data(), indices.data(), config);
    }
  } catch (const InternalError&) {
    std::abort();
  } catch (const Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 4096) return 0;  // long inputs only slow the search down
  fuzz_one(std::string(reinterpret_cast<const char*>(data), size));
  return 0;
}
