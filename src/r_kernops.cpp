// Rcpp glue for the core: converts R objects, calls kernops::compile / run_cpu, and
// returns core errors as data (a list of class "kernops_core_error") so that the R side
// raises classed conditions. No logic here. Worker threads never touch R: the only R
// call during a run is the interrupt check, made on this (the main) thread.
#include <Rcpp.h>
#include <cstdio>

#include <chrono>
#include <climits>
#include <string>
#include <vector>

#include "core/cpu/isa.h"
#include "core/cuda/backend.h"
#include "core/kernops.h"

namespace {

Rcpp::List core_error(const kernops::Error& e) {
  Rcpp::List out = Rcpp::List::create(Rcpp::Named("kind") = e.kind(), Rcpp::Named("message") = e.what());
  if (auto pe = dynamic_cast<const kernops::ParseError*>(&e)) {
    out["pos"] = static_cast<double>(pe->pos);
    out["token"] = pe->token;
    out["source"] = pe->source;
    if (!pe->subtype.empty()) out["subtype"] = pe->subtype;
  } else if (auto de = dynamic_cast<const kernops::DimensionError*>(&e)) {
    out["pos"] = static_cast<double>(de->pos);
  } else if (dynamic_cast<const kernops::cuda::DeviceMemoryError*>(&e)) {
    out["subtype"] = "device";  // the GPU's memory, not R's
  }
  out.attr("class") = "kernops_core_error";
  return out;
}

// R_CheckUserInterrupt longjmps; R_ToplevelExec contains it and reports it as FALSE.
void check_interrupt_fn(void*) { R_CheckUserInterrupt(); }

struct RControl : kernops::Control {
  int polls_before_interrupt = -1;  // test hook: report an interrupt after this many polls
  bool show_progress = false;       // option kernops.progress
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  bool printed = false;
  double last_print = 0;
  bool interrupted() override {
    if (polls_before_interrupt >= 0 && polls_before_interrupt-- == 0) return true;
    return R_ToplevelExec(check_interrupt_fn, nullptr) == FALSE;
  }
  // A one-line progress report on stderr, only for calls that run longer than 2 s; a line
  // that was shown ends at 100% when the call completes.
  void progress(double fraction) override {
    if (!show_progress) return;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (fraction >= 1) {
      if (printed) REprintf("\rkernops: 100%% done, %.0f s elapsed                    ", elapsed);
      return;
    }
    if (elapsed < 2 || fraction <= 0 || elapsed - last_print < 0.5) return;  // at most twice a second
    last_print = elapsed;
    REprintf("\rkernops: %3.0f%% done, %.0f s elapsed, about %.0f s left   ", 100 * fraction, elapsed,
             elapsed * (1 - fraction) / fraction);
    printed = true;
  }
  ~RControl() override {
    if (printed) REprintf("\n");
  }
};

const kernops::Plan* get_plan(SEXP ptr) {
  if (TYPEOF(ptr) != EXTPTRSXP || R_ExternalPtrAddr(ptr) == nullptr) return nullptr;
  return static_cast<std::shared_ptr<const kernops::Plan>*>(R_ExternalPtrAddr(ptr))->get();
}

void finalize_plan(SEXP ptr) {
  auto* p = static_cast<std::shared_ptr<const kernops::Plan>*>(R_ExternalPtrAddr(ptr));
  delete p;
  R_ClearExternalPtr(ptr);
}

const char* kCatNames[] = {"i", "j", "parameter"};

// The text of a compiled formula, or NA when it is too large to write out (shared
// subexpressions printed in full, ast.h): the plan itself never needs the text.
template <class F>
Rcpp::CharacterVector text_or_na(F make) {
  try {
    return Rcpp::CharacterVector::create(make());
  } catch (const kernops::UnsupportedError&) {
    return Rcpp::CharacterVector::create(NA_STRING);
  }
}

}  // namespace

// [[Rcpp::export]]
SEXP cpp_compile(std::string formula, std::vector<std::string> decls) {
  std::shared_ptr<const kernops::Plan> plan;
  try {
    plan = kernops::compile(formula, decls);
  } catch (const kernops::Error& e) {
    return core_error(e);
  }
  const kernops::Formula& f = plan->formula;
  Rcpp::CharacterVector name, cat;
  Rcpp::IntegerVector pos, dim;
  for (const auto& v : f.vars) {
    name.push_back(v.name);
    cat.push_back(kCatNames[static_cast<int>(v.cat)]);
    pos.push_back(v.pos);
    dim.push_back(v.dim);
  }
  auto* holder = new std::shared_ptr<const kernops::Plan>(plan);
  SEXP ptr = PROTECT(R_MakeExternalPtr(holder, R_NilValue, R_NilValue));
  R_RegisterCFinalizerEx(ptr, finalize_plan, TRUE);
  Rcpp::List out = Rcpp::List::create(
      Rcpp::Named("ptr") = ptr, Rcpp::Named("formula") = text_or_na([&] { return f.to_string(); }),
      Rcpp::Named("reduction") = kernops::red_info(f.kind).name, Rcpp::Named("axis") = f.axis,
      Rcpp::Named("k") = f.k, Rcpp::Named("formula_dim") = f.f->dim, Rcpp::Named("out_dim") = f.out_dim(),
      Rcpp::Named("vars") = Rcpp::List::create(Rcpp::Named("name") = name, Rcpp::Named("index") = cat,
                                               Rcpp::Named("pos") = pos, Rcpp::Named("dim") = dim),
      Rcpp::Named("decls") = f.decl_strings(),
      Rcpp::Named("f") = text_or_na([&] { return kernops::to_string(f.f, f.names()); }),
      Rcpp::Named("f2") = text_or_na([&] { return f.f2 ? kernops::to_string(f.f2, f.names()) : std::string(); }),
      Rcpp::Named("fast_paths") = kernops::fast_paths(*plan));
  UNPROTECT(1);
  return out;
}

// [[Rcpp::export]]
bool cpp_plan_valid(SEXP ptr) { return get_plan(ptr) != nullptr; }

// A rows x cols matrix of `type`, or R_NilValue when R cannot allocate it: R's allocation
// error would otherwise jump over this frame's destructors and reach the user unclassed.
static SEXP alloc_result(R_xlen_t rows, R_xlen_t cols, SEXPTYPE type) {
  struct Request {
    R_xlen_t rows, cols;
    SEXPTYPE type;
  } req{rows, cols, type};
  return R_tryCatchError(
      [](void* d) -> SEXP {
        const Request* r = static_cast<const Request*>(d);
        return Rf_allocMatrix(r->type, static_cast<int>(r->rows), static_cast<int>(r->cols));
      },
      &req, [](SEXP, void*) -> SEXP { return R_NilValue; }, nullptr);
}

// Bytes a result takes while it is made: values in doubles; indices in doubles from the
// core, then integers for R. Both the kernops.max_output_bytes check and the message of a
// failed allocation count them so.
static double result_bytes(const kernops::OutShape& shape) {
  return static_cast<double>(shape.rows) * (8.0 * shape.value_cols + 12.0 * shape.index_cols);
}

// "96 bytes", "1.5 MB", "24 GB" (as format_bytes() in R/kernel_op.R): std::to_string
// printed a small limit as "0.000000 GB".
static std::string format_bytes(double bytes) {
  static const struct {
    double size;
    const char* name;
  } units[] = {{1e12, "TB"}, {1e9, "GB"}, {1e6, "MB"}, {1e3, "kB"}};
  char out[48];
  std::snprintf(out, sizeof out, "%.0f bytes", bytes);
  for (const auto& u : units) {
    if (bytes >= u.size) {
      std::snprintf(out, sizeof out, "%.3g %s", bytes / u.size, u.name);
      break;
    }
  }
  return out;
}

static SEXP allocation_failed(const kernops::OutShape& shape) {
  return core_error(kernops::MemoryError("R could not allocate memory for the result (" + std::to_string(shape.rows) +
                                         " rows x " + std::to_string(shape.value_cols + shape.index_cols) +
                                         " columns, " + format_bytes(result_bytes(shape)) +
                                         " with the buffers it needs)"));
}

// split_reduced: RunConfig's (false in the shards of R/future.R).
// [[Rcpp::export]]
SEXP cpp_run(SEXP ptr, Rcpp::List args, std::string dtype, int n_threads, double max_bytes,
             int polls_before_interrupt, int max_isa, bool progress, std::string backend = "cpu",
             double cuda_chunk_rows = 0,
             bool split_reduced = true) {
  const kernops::Plan* plan = get_plan(ptr);
  if (!plan) return core_error(kernops::InternalError("the compiled formula is no longer valid"));
  std::vector<kernops::ArgData> data;
  for (R_xlen_t a = 0; a < args.size(); ++a) {
    SEXP x = args[a];
    if (TYPEOF(x) != REALSXP) return core_error(kernops::InternalError("argument data must be double"));
    kernops::ArgData d;
    d.data = REAL(x);
    SEXP dims = Rf_getAttrib(x, R_DimSymbol);
    if (Rf_length(dims) == 2) {
      d.rows = INTEGER(dims)[0];
      d.cols = INTEGER(dims)[1];
    } else {
      d.rows = Rf_xlength(x);
      d.cols = 1;
    }
    data.push_back(d);
  }
  kernops::OutShape shape;
  try {
    shape = kernops::check_args(*plan, data);
    const double bytes = result_bytes(shape);
    if (bytes > max_bytes)
      throw kernops::MemoryError("the result would need " + format_bytes(bytes) + " (" +
                                 std::to_string(shape.rows) + " rows x " +
                                 std::to_string(shape.value_cols + shape.index_cols) +
                                 " columns), more than the limit of " + format_bytes(max_bytes) +
                                 " (option kernops.max_output_bytes)");
    // An R matrix has at most INT_MAX rows (a long vector argument can give more points),
    // and 1-based indices are R integers: both checked before anything is allocated.
    if (shape.rows > INT_MAX)
      throw kernops::MemoryError("the result would have " + std::to_string(shape.rows) +
                                 " rows, more than the 2147483647 an R matrix can hold");
    if (shape.index_cols > 0 && shape.reduced > INT_MAX)
      throw kernops::MemoryError("the result's indices would go up to " + std::to_string(shape.reduced) +
                                 ", beyond the largest R integer (2147483647)");
  } catch (const kernops::Error& e) {
    return core_error(e);
  }
  // Indices come from the core as 0-based doubles (-1: none) and are returned as a 1-based
  // integer matrix (NA: none), converted here rather than in R, where m + 1, m == 0 and
  // the integer copy needed three more matrices of the result's size.
  SEXP out_values = PROTECT(alloc_result(shape.rows, shape.value_cols, REALSXP));
  SEXP out_indices = PROTECT(alloc_result(shape.rows, shape.index_cols, REALSXP));
  SEXP int_indices = PROTECT(alloc_result(shape.rows, shape.index_cols, INTSXP));
  if (out_values == R_NilValue || out_indices == R_NilValue || int_indices == R_NilValue) {
    UNPROTECT(3);
    return allocation_failed(shape);
  }
  RControl control;
  control.polls_before_interrupt = polls_before_interrupt;
  control.show_progress = progress;
  kernops::RunConfig cfg;
  cfg.dtype = dtype == "float32" ? kernops::Dtype::Float32 : kernops::Dtype::Float64;
  cfg.n_threads = n_threads;
  cfg.control = &control;
  cfg.max_isa = max_isa;
  cfg.split_reduced = split_reduced;
  try {
    if (backend == "cuda") {
      kernops::cuda::CudaRunConfig cc;
      cc.dtype = cfg.dtype;
      cc.control = &control;
      cc.chunk_rows = static_cast<std::int64_t>(cuda_chunk_rows);
      kernops::cuda::run(*plan, data, shape, REAL(out_values), REAL(out_indices), cc);
    } else {
      kernops::run_cpu(*plan, data, shape, REAL(out_values), REAL(out_indices), cfg);  // already checked above
    }
  } catch (const kernops::Error& e) {
    UNPROTECT(3);
    return core_error(e);
  } catch (const std::exception& e) {
    UNPROTECT(3);
    return core_error(kernops::InternalError(e.what()));
  }
  const double* from = REAL(out_indices);
  int* to = INTEGER(int_indices);
  for (R_xlen_t k = 0, n = Rf_xlength(out_indices); k < n; ++k)
    to[k] = from[k] < 0 ? NA_INTEGER : static_cast<int>(from[k]) + 1;
  SEXP out = PROTECT(Rf_allocVector(VECSXP, 2));
  SET_VECTOR_ELT(out, 0, out_values);
  SET_VECTOR_ELT(out, 1, int_indices);
  SEXP names = PROTECT(Rf_allocVector(STRSXP, 2));
  SET_STRING_ELT(names, 0, Rf_mkChar("values"));
  SET_STRING_ELT(names, 1, Rf_mkChar("indices"));
  Rf_setAttrib(out, R_NamesSymbol, names);
  UNPROTECT(5);
  return out;
}

// Parses a formula without running it: for tools and the LazyTensor layer.
// [[Rcpp::export]]
SEXP cpp_canonical(std::string formula, std::vector<std::string> decls) {
  try {
    return Rcpp::wrap(kernops::parse_formula(formula, decls).to_string());
  } catch (const kernops::Error& e) {
    return core_error(e);
  }
}

// TRUE for an ALTREP vector whose values are not in memory (1:3e9, a compact sequence):
// REAL() would allocate them here, where R's allocation error cannot be classed.
// [[Rcpp::export]]
bool cpp_unmaterialised(SEXP x) { return ALTREP(x) && DATAPTR_OR_NULL(x) == nullptr; }

// Instruction sets of the CPU engine usable on this processor, lowest first.
// [[Rcpp::export]]
Rcpp::CharacterVector cpp_cpu_isas() {
  Rcpp::CharacterVector out;
  for (auto isa : kernops::cpu::supported_isas()) out.push_back(kernops::cpu::isa_name(isa));
  return out;
}
