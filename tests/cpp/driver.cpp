// Standalone driver of the core, without R: times a reduction on random data and checks a
// sample of its rows against a plain double loop. Used for benchmarks of the core alone
// and on machines without R (the GPU machine).
//
//   kernops_driver [w1|w7|w2|w2g] [N] [float64|float32] [threads] [D (w7)]
//   (w2g: the gradients dH/dq, dH/dp of W2, as kernel_grad() builds them, direction 1;
//   w1:laplace, w1:cauchy, w1:imq, w1:matern32, w1:matern52: W1 with that named kernel;
//   w1:lse: LogSumExp_Reduction(-s*SqDist(x,y),0) on W1's points)
//   w1:b1: W1 with b in R^1 (the GPU target; w1 has b in R^6).
//   KERNOPS_MAX_ISA=sse2|avx2|avx512 in the environment caps the instruction set, as
//   option kernops.cpu_isa does in R; the line printed names the one used.
//   KERNOPS_BACKEND=cuda runs the reduction on the GPU (cuda::run, as backend = "cuda" in
//   R): the first call (compile or cache load, module load) is timed apart from the warm
//   ones; KERNOPS_REPS warm calls (default 1 on the CPU, 3 on CUDA), the best printed;
//   KERNOPS_CUDA_CACHE is the kernel cache directory (default: memory only);
//   KERNOPS_CHECK_ROWS rows are checked (default 20; each costs N reference evaluations).
//   Every line ends with "RESULT|workload|N|dtype|backend|first_s|best_s|check" for scripts.
//
//   kernops_driver cuda-info            probe, NVRTC, code generator; exit 3 when unusable
//   kernops_driver cuda-compare [N] [cpu]   every op and reduction, float32 and float64,
//     CUDA against the CPU engine (with "cpu": the CPU against itself, to check the list
//     where there is no GPU); exit 1 on a mismatch, 3 when CUDA is unusable
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "cpu/isa.h"
#include "cuda/backend.h"
#include "cuda/cache.h"
#include "cuda/driver.h"
#include "cuda/nvrtc.h"
#include "kernops.h"
#include "reference_eval.h"

using namespace kernops;

namespace {

struct Workload {
  std::string formula;
  std::vector<std::string> decls;
  std::vector<int> dims;  // columns of each argument
  std::vector<int> cats;  // 0 i, 1 j, 2 parameter
  std::vector<double> params;
};

Workload make(const std::string& w, int D) {
  if (w == "w7")
    return {"ArgKMin_Reduction(SqDist(x,y),10,0)",
            {"x = Vi(" + std::to_string(D) + ")", "y = Vj(" + std::to_string(D) + ")"}, {D, D}, {0, 1}, {}};
  if (w == "w2g")
    return {"Sum_Reduction(Concat(2*(qi-qj)*(-(e*(pi|pj)*Exp(-SqNorm2(qi-qj)/(s*s))/(s*s))),"
            "e*Exp(-SqNorm2(qi-qj)/(s*s))*pj),0)",
            {"qi = Vi(3)", "qj = Vj(3)", "pi = Vi(3)", "pj = Vj(3)", "s = Pm(1)", "e = Vi(1)"},
            {3, 3, 3, 3, 1, 1}, {0, 1, 0, 1, 2, 0}, {0.5}};
  if (w == "w2")
    return {"Sum_Reduction(Exp(-SqDist(qi,qj)/(s*s))*(pi|pj),0)",
            {"qi = Vi(3)", "qj = Vj(3)", "pi = Vi(3)", "pj = Vj(3)", "s = Pm(1)"}, {3, 3, 3, 3, 1}, {0, 1, 0, 1, 2}, {0.5}};
  if (w == "w1:b1")  // the GPU target's W1: b in R^1
    return {"Sum_Reduction(Exp(-s*SqNorm2(x-y))*b,0)", {"x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "s = Pm(1)"},
            {3, 3, 1, 1}, {0, 1, 1, 2}, {10.0}};
  if (w == "w1:lse")  // log sum_j exp(-s |x_i - y_j|^2), as Sinkhorn iterations run it
    return {"LogSumExp_Reduction(-s*SqDist(x,y),0)", {"x = Vi(3)", "y = Vj(3)", "s = Pm(1)"},
            {3, 3, 1}, {0, 1, 2}, {10.0}};
  // w1 and the same sum with the other named kernels (w1:laplace, w1:matern52, ...)
  std::string f = "Exp(-s*SqNorm2(x-y))*b";
  const std::string kernels[][2] = {{"w1:laplace", "LaplaceKernel"}, {"w1:cauchy", "CauchyKernel"},
                                    {"w1:imq", "InverseMultiquadricKernel"}, {"w1:matern32", "Matern32Kernel"},
                                    {"w1:matern52", "Matern52Kernel"}};
  bool known = w == "w1";
  for (const auto& k : kernels)
    if (w == k[0]) {
      f = k[1] + "(s,x,y,b)";
      known = true;
    }
  if (!known) {
    std::fprintf(stderr, "unknown workload '%s' (w1, w1:laplace, w1:cauchy, w1:imq, w1:matern32, w1:matern52, "
                         "w1:lse, w1:b1, w2, w2g, w7, cuda-info, cuda-compare)\n", w.c_str());
    std::exit(2);
  }
  return {"Sum_Reduction(" + f + ",0)", {"x = Vi(3)", "y = Vj(3)", "b = Vj(6)", "s = Pm(1)"},
          {3, 3, 6, 1}, {0, 1, 1, 2}, {10.0}};
}

// ---- CUDA: what is there, and every op and reduction against the CPU --------------------

int cuda_info() {
  const cuda::ProbeResult p = cuda::probe();
  std::string nvrtc_why;
  if (cuda::Nvrtc::available(&nvrtc_why))
    std::printf("NVRTC %s (%s)\n", cuda::Nvrtc::get().version().c_str(), cuda::Nvrtc::get().library().c_str());
  else
    std::printf("NVRTC: %s\n", nvrtc_why.c_str());
  if (p.usable)
    std::printf("driver %s (%s); device 0: %s, %.1f GB, compute capability %d.%d, %d multiprocessors\n",
                cuda::driver_version_string(p.driver_version).c_str(), p.library.c_str(), p.device_name.c_str(),
                static_cast<double>(p.total_memory) / 1e9, p.cc_major, p.cc_minor, p.multiprocessors);
  else
    std::printf("driver: %s\n", p.why.c_str());
  std::string why;
  if (cuda::usable(&why)) {
    std::printf("CUDA usable\n");
    return 0;
  }
  std::printf("CUDA unusable: %s\n", why.c_str());
  return 3;
}

// One formula per op of the language and per reduction (both axes for some), on
// x, y in R^3, b in R^2, s a parameter, a and c positive scalars per i and per j.
const std::vector<std::string>& compare_formulas() {
  static const std::vector<std::string> ops = {
      "-(x-y)", "Exp(x-y)", "Log(x+y)", "Sqrt(x+y)", "Rsqrt(x+y)", "Inv(x+y)", "Abs(x-y)", "Sign(x-y)",
      "Sin(x*y)", "Cos(x*y)", "Step(x-y)", "ReLU(x-y)", "Square(x-y)", "Log1p(x*y)", "Expm1(x*y)", "Pow(x-y,3)",
      "x+y", "x-y", "x*y", "x/(y+1)", "Min(x,y)", "Max(x,y)", "Powf(x+y,s)", "IfElse(x-y,x,y)",
      "Clamp(x-y,-s,s)", "Sum(x*y)", "SqNorm2(x-y)", "Norm2(x-y)", "Normalize(x-y)", "SqDist(x,y)", "(x|y)",
      "Elem(x-y,1)", "Extract(x-y,1,2)", "Concat(x,y)", "MatVecMult(Concat(Concat(x,x),x),y)",
      "VecMatMult(y,Concat(Concat(x,x),x))", "TensorProd(x,y)", "GaussKernel(s,x,y,b)", "LaplaceKernel(s,x,y,b)",
      "CauchyKernel(s,x,y,b)", "InverseMultiquadricKernel(s,x,y,b)", "Matern32Kernel(s,x,y,b)",
      "Matern52Kernel(s,x,y,b)", "Exp(-s*SqNorm2(x-y))*b", "Grad(Exp(-s*SqDist(x,y)),x,a)",
      "Grad(Sum(x*y)+Elem(x,0)+Sum(Extract(x,0,2)),x,a)", "a*c*(x|y)"};
  static const std::vector<std::string> all = [] {
    std::vector<std::string> f;
    for (const auto& o : ops) f.push_back("Sum_Reduction(" + o + ",0)");
    const char* reds[] = {
        "Sum_Reduction(Exp(-s*SqDist(x,y))*b,1)", "Min_Reduction(SqDist(x,y),0)", "Max_Reduction(x-y,1)",
        "ArgMin_Reduction(SqDist(x,y),0)", "ArgMax_Reduction(x-y,1)", "Min_ArgMin_Reduction(SqDist(x,y),1)",
        "Max_ArgMax_Reduction(x*y,0)", "KMin_Reduction(SqDist(x,y),5,0)", "ArgKMin_Reduction(SqDist(x,y),10,1)",
        "KMin_ArgKMin_Reduction(x-y,3,0)", "LogSumExp_Reduction(-s*SqDist(x,y),0)",
        "LogSumExp_Reduction(-s*SqDist(x,y),1,c)", "SumSoftMaxWeight_Reduction(-s*SqDist(x,y),0,b)",
        "SumSoftMaxWeight_Reduction(-s*SqDist(x,y),1,x)"};
    for (const char* r : reds) f.emplace_back(r);
    return f;
  }();
  return all;
}

int cuda_compare(std::int64_t n, bool cpu_only) {
  std::string why;
  if (!cpu_only && !cuda::usable(&why)) {
    std::printf("CUDA unusable: %s\n", why.c_str());
    return 3;
  }
  const std::vector<std::string> decls = {"x = Vi(3)", "y = Vj(3)", "b = Vj(2)", "s = Pm(1)", "a = Vi(1)",
                                          "c = Vj(1)"};
  const std::int64_t m = n * 3 / 4 + 1;  // N != M, so that a swapped axis shows
  const std::int64_t rows[] = {n, m, m, 1, n, m};
  const int dims[] = {3, 3, 2, 1, 1, 1};
  std::mt19937 gen(7);
  std::uniform_real_distribution<double> unif(0.1, 1);
  std::vector<std::vector<double>> data;
  std::vector<ArgData> args;
  for (int a = 0; a < 6; ++a) {
    data.emplace_back(static_cast<size_t>(rows[a] * dims[a]));
    for (auto& v : data.back()) v = unif(gen);
  }
  data[3][0] = 2.0;  // s
  for (int a = 0; a < 6; ++a) args.push_back({data[a].data(), rows[a], dims[a]});
  int failures = 0;
  for (const auto& f : compare_formulas())
    for (const Dtype dt : {Dtype::Float64, Dtype::Float32}) {
      const bool f32 = dt == Dtype::Float32;
      try {
        auto plan = compile(f, decls);
        const OutShape shape = check_args(*plan, args);
        const size_t nv = static_cast<size_t>(shape.rows * shape.value_cols);
        const size_t ni = static_cast<size_t>(shape.rows * shape.index_cols);
        std::vector<double> v_cpu(nv), i_cpu(ni), v_gpu(nv), i_gpu(ni);
        RunConfig cfg;
        cfg.dtype = dt;
        cfg.n_threads = 4;
        run_cpu(*plan, args, shape, v_cpu.data(), i_cpu.data(), cfg);
        cuda::CudaRunConfig cc;
        cc.dtype = dt;
        if (cpu_only)
          run_cpu(*plan, args, shape, v_gpu.data(), i_gpu.data(), cfg);
        else
          cuda::run(*plan, args, shape, v_gpu.data(), i_gpu.data(), cc);
        // Values: error relative to the column's largest value; indices: count differing.
        double err = 0;
        for (int c = 0; c < shape.value_cols; ++c) {
          double scale = 0;
          for (std::int64_t r = 0; r < shape.rows; ++r) scale = std::max(scale, std::fabs(v_cpu[c * shape.rows + r]));
          for (std::int64_t r = 0; r < shape.rows; ++r) {
            const double a = v_cpu[c * shape.rows + r], b = v_gpu[c * shape.rows + r];
            if (std::isnan(a) != std::isnan(b)) err = INFINITY;
            else if (!std::isnan(a)) err = std::max(err, std::fabs(a - b) / std::max(scale, 1e-300));
          }
        }
        std::int64_t bad = 0;
        for (size_t k = 0; k < ni; ++k) bad += i_cpu[k] != i_gpu[k];
        // float32 near-ties may order differently: a few indices per thousand rows.
        const bool ok = err <= (f32 ? 2e-5 : 1e-11) && bad <= (f32 ? 1 + shape.rows / 1000 : 0);
        failures += !ok;
        std::printf("%-4s %s %-60s rel err %.2e, indices differing %lld\n", ok ? "ok" : "FAIL",
                    f32 ? "float32" : "float64", f.c_str(), err, static_cast<long long>(bad));
      } catch (const std::exception& e) {
        ++failures;
        std::printf("FAIL %s %-60s %s\n", f32 ? "float32" : "float64", f.c_str(), e.what());
      }
    }
  std::printf("cuda-compare N=%lld M=%lld: %d failure(s) in %zu formulas x 2 dtypes\n", static_cast<long long>(n),
              static_cast<long long>(m), failures, compare_formulas().size());
  return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string w = argc > 1 ? argv[1] : "w1";
  if (w == "cuda-info") return cuda_info();
  if (w == "cuda-compare")
    return cuda_compare(argc > 2 ? std::atoll(argv[2]) : 2000, argc > 3 && std::string(argv[3]) == "cpu");
  const char* be = std::getenv("KERNOPS_BACKEND");
  const bool on_cuda = be && std::string(be) == "cuda";
  if (const char* dir = std::getenv("KERNOPS_CUDA_CACHE")) cuda::KernelCache::global().set_dir(dir);
  const std::int64_t n = argc > 2 ? std::atoll(argv[2]) : 10000;
  const bool f32 = argc > 3 && std::string(argv[3]) == "float32";
  const int threads = argc > 4 ? std::atoi(argv[4]) : 2;
  const int D = argc > 5 ? std::atoi(argv[5]) : 3;
  Workload wl = make(w, D);
  auto plan = compile(wl.formula, wl.decls);

  std::mt19937 gen(1);
  std::uniform_real_distribution<double> unif(0, 1);
  std::vector<std::vector<double>> data;
  std::vector<ArgData> args;
  for (size_t a = 0; a < wl.dims.size(); ++a) {
    const std::int64_t rows = wl.cats[a] == 2 ? 1 : n;
    data.emplace_back(static_cast<size_t>(rows * wl.dims[a]));
    if (wl.cats[a] == 2)
      data.back() = {wl.params[0]};
    else
      for (auto& v : data.back()) v = unif(gen);
  }
  for (size_t a = 0; a < data.size(); ++a)
    args.push_back({data[a].data(), wl.cats[a] == 2 ? 1 : n, wl.dims[a]});

  OutShape shape = check_args(*plan, args);
  std::vector<double> values(static_cast<size_t>(shape.rows * shape.value_cols));
  std::vector<double> indices(static_cast<size_t>(shape.rows * shape.index_cols));
  RunConfig cfg;
  cfg.dtype = f32 ? Dtype::Float32 : Dtype::Float64;
  cfg.n_threads = threads;
  if (const char* cap = std::getenv("KERNOPS_MAX_ISA")) {
    const std::string c = cap;
    cfg.max_isa = c == "avx512" ? 2 : c == "avx2" ? 1 : c == "sse2" || c == "baseline" ? 0 : -1;
    if (cfg.max_isa < 0) {
      std::fprintf(stderr, "KERNOPS_MAX_ISA must be sse2, avx2 or avx512, not '%s'\n", cap);
      return 2;
    }
  }
  const char* isa = on_cuda ? "cuda" : cpu::isa_name(cpu::select_isa(static_cast<cpu::Isa>(cfg.max_isa)));
  cuda::CudaRunConfig cc;
  cc.dtype = cfg.dtype;
  const auto timed_run = [&] {
    const auto t0 = std::chrono::steady_clock::now();
    try {
      if (on_cuda)
        cuda::run(*plan, args, shape, values.data(), indices.data(), cc);
      else
        run_cpu(*plan, args, values.data(), indices.data(), cfg);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: %s\n", w.c_str(), e.what());
      std::exit(3);
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  const double first = timed_run();
  const cuda::CacheStats st = cuda::KernelCache::global().stats();
  const char* reps_env = std::getenv("KERNOPS_REPS");
  const int reps = reps_env ? std::atoi(reps_env) : on_cuda ? 3 : 0;
  double sec = first;
  for (int r = 0; r < reps; ++r) sec = r == 0 ? timed_run() : std::min(sec, timed_run());
  const char* rows_env = std::getenv("KERNOPS_CHECK_ROWS");
  const std::int64_t check_rows = std::min<std::int64_t>(n, rows_env ? std::atoll(rows_env) : 20);

  // Check 20 rows against the reference evaluator (a plain double loop over j).
  double max_err = 0;
  int bad_idx = 0;
  for (std::int64_t i = 0; i < check_rows; ++i) {
    std::vector<double> acc(static_cast<size_t>(plan->f->dim), 0.0), best;
    std::vector<std::pair<double, std::int64_t>> all;
    for (std::int64_t j = 0; j < n; ++j) {
      kernops_test::Env env;
      for (size_t a = 0; a < args.size(); ++a) {
        const std::int64_t row = wl.cats[a] == 2 ? 0 : (wl.cats[a] == 0 ? i : j);
        kernops_test::Vec v(static_cast<size_t>(wl.dims[a]));
        for (int k = 0; k < wl.dims[a]; ++k) v[k] = data[a][row + k * args[a].rows];
        env[{wl.cats[a], static_cast<int>(a)}] = v;
      }
      auto f = kernops_test::ref_eval(plan->f, env);
      if (w == "w7" || w == "w1:lse")
        all.push_back({f[0], j});
      else
        for (size_t k = 0; k < f.size(); ++k) acc[k] += f[k];
    }
    if (w == "w7") {
      std::partial_sort(all.begin(), all.begin() + 10, all.end());
      for (int q = 0; q < 10; ++q) bad_idx += indices[i + q * n] != all[q].second;
    } else {
      if (w == "w1:lse") {  // the reference log-sum-exp, shifted by the largest term
        double m = -INFINITY, sum = 0;
        for (const auto& v : all) m = std::max(m, v.first);
        for (const auto& v : all) sum += std::exp(v.first - m);
        acc[0] = m + std::log(sum);
      }
      double scale = 0;
      for (double a : acc) scale = std::max(scale, std::fabs(a));
      for (size_t k = 0; k < acc.size(); ++k)
        max_err = std::max(max_err, std::fabs(values[i + k * n] - acc[k]) / std::max(scale, 1e-300));
    }
  }
  std::printf("%s N=M=%lld D=%d %s %s threads=%d: %.4f s, %.3g pairs/s; check on %lld rows: %s %.3g\n", w.c_str(),
              static_cast<long long>(n), w == "w7" ? D : 3, f32 ? "float32" : "float64", isa, threads, sec,
              static_cast<double>(n) * static_cast<double>(n) / sec, static_cast<long long>(check_rows),
              w == "w7" ? "neighbours differing" : "max rel err", w == "w7" ? double(bad_idx) : max_err);
  if (on_cuda)
    std::printf("  first call %.4f s (kernel compiles %lld, loaded from the disk cache %lld)\n", first,
                static_cast<long long>(st.compiles), static_cast<long long>(st.disk_hits));
  std::printf("RESULT|%s|%lld|%s|%s|%.4g|%.4g|%s=%.3g\n", w.c_str(), static_cast<long long>(n),
              f32 ? "float32" : "float64", on_cuda ? "cuda" : isa, first, sec,
              w == "w7" ? "bad_idx" : "rel_err", w == "w7" ? double(bad_idx) : max_err);
  const double tol = f32 ? 1e-5 : 1e-12;
  return (w == "w7" ? bad_idx > (f32 ? 2 : 0) : max_err > tol) ? 1 : 0;
}
