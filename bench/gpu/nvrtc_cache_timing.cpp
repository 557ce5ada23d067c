// NVRTC compile time against a disk-cache hit, without a GPU: a kernel of the size of a
// generated W1 reduction (a shared-memory j tile, float32), compiled for sm_80 and sm_90
// through KernelCache. Run twice: the second process reads both cubins from the cache.
//   cmake --build build/cpp-tests --target kernops_core
//   g++ -std=c++17 -O2 -Isrc/core bench/gpu/nvrtc_cache_timing.cpp build/cpp-tests/libkernops_core.a \
//       -ldl -lpthread -o /tmp/nvrtc_cache_timing && /tmp/nvrtc_cache_timing DIR && /tmp/nvrtc_cache_timing DIR
#include <chrono>
#include <cstdio>
#include "cuda/cache.h"
#include "cuda/nvrtc.h"
using namespace kernops::cuda;
static double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
int main(int argc, char** argv) {
  // A kernel of the size of a generated reduction: a tiled sum with shared memory.
  const std::string src = R"(
struct LA { const void* const* args; long long i0, n_i, n_j, jps, ns; void* state; void* values; long long* indices; };
extern "C" __global__ void kernops_reduce(LA a) {
  extern __shared__ float sh[];
  long long i = a.i0 + blockIdx.x * blockDim.x + threadIdx.x;
  const float* x = (const float*)a.args[0]; const float* y = (const float*)a.args[1]; const float* b = (const float*)a.args[2];
  float xi0 = 0, xi1 = 0, xi2 = 0; if (i < a.i0 + a.n_i) { xi0 = x[3*i]; xi1 = x[3*i+1]; xi2 = x[3*i+2]; }
  float acc = 0;
  for (long long j0 = 0; j0 < a.n_j; j0 += blockDim.x) {
    long long j = j0 + threadIdx.x;
    if (j < a.n_j) { sh[4*threadIdx.x] = y[3*j]; sh[4*threadIdx.x+1] = y[3*j+1]; sh[4*threadIdx.x+2] = y[3*j+2]; sh[4*threadIdx.x+3] = b[j]; }
    __syncthreads();
    for (int t = 0; t < blockDim.x && j0 + t < a.n_j; ++t) {
      float d0 = xi0 - sh[4*t], d1 = xi1 - sh[4*t+1], d2 = xi2 - sh[4*t+2];
      acc += __expf(-(d0*d0+d1*d1+d2*d2)) * sh[4*t+3];
    }
    __syncthreads();
  }
  if (i < a.i0 + a.n_i) ((float*)a.values)[i - a.i0] = acc;
})";
  const std::string dir = argc > 1 ? argv[1] : "/tmp/crtm/cache";
  double t = now();
  const Nvrtc& nv = Nvrtc::get();
  std::printf("load NVRTC %s: %.1f ms\n", nv.version().c_str(), 1e3 * (now() - t));
  for (int cc : {80, 90}) {
    CacheKey k; k.source = src; k.compiler_version = nv.version(); k.cc = cc;
    KernelCache cache; cache.set_dir(dir);
    t = now();
    auto img = cache.get(k, [&] { return nv.compile(src, cc); });
    const CacheStats s = cache.stats();
    std::printf("sm_%d: %s %.1f ms (%zu bytes)\n", cc, s.compiles ? "compile+store" : "disk hit", 1e3 * (now() - t), img->image.size());
  }
}
