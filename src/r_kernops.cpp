// Rcpp glue for the core: converts R objects, calls kernops::compile / run_cpu, and
// returns core errors as data (a list of class "kernops_core_error") so that the R side
// raises classed conditions. No logic here. Worker threads never touch R: the only R
// call during a run is the interrupt check, made on this (the main) thread.
#include <Rcpp.h>

#include <chrono>
#include <string>
#include <vector>

#include "core/cpu/isa.h"
#include "core/kernops.h"

namespace {

Rcpp::List core_error(const kernops::Error& e) {
  Rcpp::List out = Rcpp::List::create(Rcpp::Named("kind") = e.kind(), Rcpp::Named("message") = e.what());
  if (auto pe = dynamic_cast<const kernops::ParseError*>(&e)) {
    out["pos"] = static_cast<double>(pe->pos);
    out["token"] = pe->token;
    out["source"] = pe->source;
  } else if (auto de = dynamic_cast<const kernops::DimensionError*>(&e)) {
    out["pos"] = static_cast<double>(de->pos);
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
  // A one-line progress report on stderr, only for calls that run longer than 2 s.
  void progress(double fraction) override {
    if (!show_progress) return;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
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
      Rcpp::Named("ptr") = ptr, Rcpp::Named("formula") = f.to_string(),
      Rcpp::Named("reduction") = kernops::red_info(f.kind).name, Rcpp::Named("axis") = f.axis,
      Rcpp::Named("k") = f.k, Rcpp::Named("formula_dim") = f.f->dim, Rcpp::Named("out_dim") = f.out_dim(),
      Rcpp::Named("vars") = Rcpp::List::create(Rcpp::Named("name") = name, Rcpp::Named("index") = cat,
                                               Rcpp::Named("pos") = pos, Rcpp::Named("dim") = dim),
      Rcpp::Named("decls") = f.decl_strings(), Rcpp::Named("f") = kernops::to_string(f.f, f.names()),
      Rcpp::Named("f2") = f.f2 ? kernops::to_string(f.f2, f.names()) : std::string(),
      Rcpp::Named("fast_paths") = kernops::fast_paths(*plan));
  UNPROTECT(1);
  return out;
}

// [[Rcpp::export]]
bool cpp_plan_valid(SEXP ptr) { return get_plan(ptr) != nullptr; }

// [[Rcpp::export]]
SEXP cpp_run(SEXP ptr, Rcpp::List args, std::string dtype, int n_threads, double max_bytes,
             int polls_before_interrupt, int max_isa, bool progress) {
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
    const double bytes = 8.0 * static_cast<double>(shape.rows) * (shape.value_cols + shape.index_cols);
    if (bytes > max_bytes)
      throw kernops::MemoryError("the result would need " + std::to_string(bytes / 1e9) + " GB (" +
                                 std::to_string(shape.rows) + " rows x " +
                                 std::to_string(shape.value_cols + shape.index_cols) +
                                 " columns), more than the limit of " + std::to_string(max_bytes / 1e9) +
                                 " GB (option kernops.max_output_bytes)");
  } catch (const kernops::Error& e) {
    return core_error(e);
  }
  Rcpp::NumericMatrix values(shape.rows, shape.value_cols);
  Rcpp::NumericMatrix indices(shape.rows, shape.index_cols);
  RControl control;
  control.polls_before_interrupt = polls_before_interrupt;
  control.show_progress = progress;
  kernops::RunConfig cfg;
  cfg.dtype = dtype == "float32" ? kernops::Dtype::Float32 : kernops::Dtype::Float64;
  cfg.n_threads = n_threads;
  cfg.control = &control;
  cfg.max_isa = max_isa;
  try {
    kernops::run_cpu(*plan, data, shape, values.begin(), indices.begin(), cfg);  // already checked above
  } catch (const kernops::Error& e) {
    return core_error(e);
  } catch (const std::exception& e) {
    return core_error(kernops::InternalError(e.what()));
  }
  return Rcpp::List::create(Rcpp::Named("values") = values, Rcpp::Named("indices") = indices);
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

// Instruction sets of the CPU engine usable on this processor, lowest first.
// [[Rcpp::export]]
Rcpp::CharacterVector cpp_cpu_isas() {
  Rcpp::CharacterVector out;
  for (auto isa : kernops::cpu::supported_isas()) out.push_back(kernops::cpu::isa_name(isa));
  return out;
}
