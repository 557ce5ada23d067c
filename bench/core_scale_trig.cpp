// bench/core_scale_trig.cpp -- the core alone (no R), for issue 17's A/B comparisons on one
// host: W1 and LogSumExp at an ordinary and an extreme scale (subnormal kernel values), and
// float32 against float64 Sin/Cos reductions. Min of 7 alternated runs, 2 threads, N = M = 1e4.
// Build against the core library of tests/cpp (cmake -S tests/cpp -B build/cpp-tests && cmake
// --build build/cpp-tests --target kernops_core):
//   g++ -std=c++17 -O2 -Isrc/core bench/core_scale_trig.cpp build/cpp-tests/libkernops_core.a \
//       -lpthread -ldl -o build/core_scale_trig && build/core_scale_trig
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include "kernops.h"

using namespace kernops;

namespace {

const std::int64_t n = 10000;

double seconds(const Plan& p, const std::vector<ArgData>& args, Dtype dt, std::vector<double>& out) {
  RunConfig c;
  c.n_threads = 2;
  c.dtype = dt;
  const auto t0 = std::chrono::steady_clock::now();
  run_cpu(p, args, out.data(), nullptr, c);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main() {
  std::mt19937 g(1);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<double> x(3 * n), y(3 * n), b(6 * n), out(6 * n);
  for (auto* v : {&x, &y, &b})
    for (auto& e : *v) e = u(g);
  auto w1 = compile("Sum_Reduction(Exp(-s*SqDist(x,y))*b,0)", {"x = Vi(3)", "y = Vj(3)", "b = Vj(6)", "s = Pm(1)"});
  auto lse = compile("LogSumExp_Reduction(-s*SqDist(x,y),0)", {"x = Vi(3)", "y = Vj(3)", "s = Pm(1)"});
  std::printf("| reduction | dtype | ordinary s | time | extreme s | time | ratio |\n|---|---|---|---|---|---|---|\n");
  for (Dtype dt : {Dtype::Float64, Dtype::Float32}) {
    for (int which = 0; which < 2; ++which) {
      const double ss[2] = {8, dt == Dtype::Float32 && which == 0 ? 150.0 : 4000.0};
      double t[2] = {1e9, 1e9};
      for (int rep = 0; rep < 7; ++rep)
        for (int k = 0; k < 2; ++k) {
          std::vector<double> s = {ss[k]};
          const std::vector<ArgData> a = which == 0
              ? std::vector<ArgData>{{x.data(), n, 3}, {y.data(), n, 3}, {b.data(), n, 6}, {s.data(), 1, 1}}
              : std::vector<ArgData>{{x.data(), n, 3}, {y.data(), n, 3}, {s.data(), 1, 1}};
          t[k] = std::min(t[k], seconds(which == 0 ? *w1 : *lse, a, dt, out));
        }
      std::printf("| %s | %s | %g | %.4f | %g | %.4f | %.2f |\n", which ? "LogSumExp" : "W1", dt == Dtype::Float64 ? "float64" : "float32",
                  ss[0], t[0], ss[1], t[1], t[1] / t[0]);
    }
  }
  std::printf("\n| reduction | float64 | float32 | float64 / float32 |\n|---|---|---|---|\n");
  for (const char* f : {"Sum_Reduction(Sin(s*SqDist(x,y))*b,0)", "Sum_Reduction(Cos(s*(x|y))*b,0)"}) {
    auto p = compile(f, {"x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "s = Pm(1)"});
    std::vector<double> s = {10};
    const std::vector<ArgData> a = {{x.data(), n, 3}, {y.data(), n, 3}, {b.data(), n, 1}, {s.data(), 1, 1}};
    double t[2] = {1e9, 1e9};
    for (int rep = 0; rep < 7; ++rep)
      for (int k = 0; k < 2; ++k) t[k] = std::min(t[k], seconds(*p, a, k ? Dtype::Float32 : Dtype::Float64, out));
    std::printf("| `%s` | %.4f | %.4f | %.2f |\n", f, t[0], t[1], t[0] / t[1]);
  }
}
