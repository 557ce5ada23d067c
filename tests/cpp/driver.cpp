// Standalone driver of the core, without R: times a reduction on random data and checks a
// sample of its rows against a plain double loop. Used for benchmarks of the core alone
// and on machines without R (the GPU machine).
//
//   kernops_driver [w1|w7|w2|w2g] [N] [float64|float32] [threads] [D (w7)]
//   (w2g: the gradients dH/dq, dH/dp of W2, as kernel_grad() builds them, direction 1;
//   w1:laplace, w1:cauchy, w1:imq, w1:matern32, w1:matern52: W1 with that named kernel;
//   w1:lse: LogSumExp_Reduction(-s*SqDist(x,y),0) on W1's points)
//   KERNOPS_MAX_ISA=sse2|avx2|avx512 in the environment caps the instruction set, as
//   option kernops.cpu_isa does in R; the line printed names the one used.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "cpu/isa.h"
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
                         "w1:lse, w2, w2g, w7)\n", w.c_str());
    std::exit(2);
  }
  return {"Sum_Reduction(" + f + ",0)", {"x = Vi(3)", "y = Vj(3)", "b = Vj(6)", "s = Pm(1)"},
          {3, 3, 6, 1}, {0, 1, 1, 2}, {10.0}};
}

}  // namespace

int main(int argc, char** argv) {
  const std::string w = argc > 1 ? argv[1] : "w1";
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
  const char* isa = cpu::isa_name(cpu::select_isa(static_cast<cpu::Isa>(cfg.max_isa)));
  const auto t0 = std::chrono::steady_clock::now();
  run_cpu(*plan, args, values.data(), indices.data(), cfg);
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // Check 20 rows against the reference evaluator (a plain double loop over j).
  double max_err = 0;
  int bad_idx = 0;
  for (std::int64_t i = 0; i < std::min<std::int64_t>(n, 20); ++i) {
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
  std::printf("%s N=M=%lld D=%d %s %s threads=%d: %.4f s, %.3g pairs/s; check on 20 rows: %s %.3g\n", w.c_str(),
              static_cast<long long>(n), w == "w7" ? D : 3, f32 ? "float32" : "float64", isa, threads, sec,
              static_cast<double>(n) * static_cast<double>(n) / sec,
              w == "w7" ? "neighbours differing" : "max rel err", w == "w7" ? double(bad_idx) : max_err);
  const double tol = f32 ? 1e-5 : 1e-12;
  return (w == "w7" ? bad_idx > (f32 ? 2 : 0) : max_err > tol) ? 1 : 0;
}
