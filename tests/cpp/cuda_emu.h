// A CPU emulation of the little of CUDA that generated kernels use (src/core/cuda/codegen.cpp),
// so that their text runs here as host C++ and is checked against the CPU engine: blocks run
// one after the other, the threads of a block as std::threads that meet at __syncthreads()
// (a barrier), __shared__ arrays are static (one copy, used by one block at a time), and
// threadIdx / blockIdx are thread_local. The CUDA maths builtins the kernels call (exp, log,
// sqrt, ... with float overloads) are the <cmath> ones; __longlong_as_double is a bit copy.
// Include before the generated source (cuda_emu_gen.cpp writes the files that do). Test-only.
#pragma once
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cuda_emu {

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};

inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

// A reusable barrier for `count` threads (std::barrier is C++20).
class Barrier {
 public:
  explicit Barrier(int count) : count_(count) {}
  void wait() {
    std::unique_lock<std::mutex> lock(m_);
    const long gen = generation_;
    if (++arrived_ == count_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return generation_ != gen; });
    }
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int count_, arrived_ = 0;
  long generation_ = 0;
};

inline Barrier* current_barrier = nullptr;  // the running block's (one block at a time)

inline void syncthreads() { current_barrier->wait(); }

// Runs kernel() for every thread of the grid, block after block. A thread that returns
// early must not be waited for at a later barrier: generated kernels only return after
// their last __syncthreads(), as CUDA requires too.
inline void launch(dim3 grid, dim3 block, const std::function<void()>& kernel) {
  gridDim = grid;
  blockDim = block;
  for (unsigned by = 0; by < grid.y; ++by)
    for (unsigned bx = 0; bx < grid.x; ++bx) {
      Barrier barrier(static_cast<int>(block.x));
      current_barrier = &barrier;
      std::vector<std::thread> threads;
      for (unsigned t = 0; t < block.x; ++t)
        threads.emplace_back([&, t] {
          threadIdx = dim3{t, 0, 0};
          blockIdx = dim3{bx, by, 0};
          kernel();
        });
      for (auto& th : threads) th.join();
      current_barrier = nullptr;
    }
}

inline double longlong_as_double(long long v) {
  double d;
  std::memcpy(&d, &v, sizeof d);
  return d;
}

}  // namespace cuda_emu

using cuda_emu::blockDim;
using cuda_emu::blockIdx;
using cuda_emu::gridDim;
using cuda_emu::threadIdx;
using std::cos;
using std::exp;
using std::expm1;
using std::fabs;
using std::floor;
using std::fmod;
using std::log;
using std::log1p;
using std::sin;
using std::sqrt;

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __syncthreads() cuda_emu::syncthreads()
#define __longlong_as_double(v) cuda_emu::longlong_as_double(v)
// Kernels of several sources live in one program, each source in its own namespace.
#define KERNOPS_EXTERN_C
