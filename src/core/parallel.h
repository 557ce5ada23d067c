// A small parallel-for over std::threads that keeps every R-facing concern on the
// calling thread: workers never call back into the host (R); the calling thread takes
// tasks too and polls Control::interrupted() between them. Worker exceptions are caught
// into an exception_ptr and rethrown on the calling thread after all threads joined.
// No R headers here.
#pragma once
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "errors.h"

namespace kernops {

// Host hooks, called on the calling thread only.
struct Control {
  virtual ~Control() = default;
  // True when the user asked to stop (e.g. Ctrl-C in R).
  virtual bool interrupted() { return false; }
  // Fraction of the work done so far, reported between tasks.
  virtual void progress(double /*fraction*/) {}
};

// Runs body(task, worker) for task in [0, n_tasks) on up to n_threads threads.
// Throws Interrupted if control reported an interrupt; rethrows the first worker error.
inline void parallel_for(std::int64_t n_tasks, int n_threads, Control* control,
                         const std::function<void(std::int64_t, int)>& body) {
  if (n_threads < 1) n_threads = 1;
  if (n_tasks < n_threads) n_threads = static_cast<int>(n_tasks < 1 ? 1 : n_tasks);
  std::atomic<std::int64_t> next{0};
  std::atomic<std::int64_t> done{0};
  std::atomic<bool> stop{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  bool was_interrupted = false;

  auto work = [&](int worker, bool is_caller) {
    while (!stop.load(std::memory_order_relaxed)) {
      const std::int64_t t = next.fetch_add(1);
      if (t >= n_tasks) break;
      try {
        body(t, worker);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        stop = true;
      }
      ++done;
      if (is_caller && control) {
        if (control->interrupted()) {
          was_interrupted = true;
          stop = true;
        }
        control->progress(static_cast<double>(done.load()) / static_cast<double>(n_tasks));
      }
    }
  };

  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(n_threads - 1));
  struct Joiner {  // joins on every exit path, exceptions included
    std::vector<std::thread>& t;
    ~Joiner() {
      for (auto& th : t)
        if (th.joinable()) th.join();
    }
  } joiner{threads};
  try {
    for (int w = 1; w < n_threads; ++w) threads.emplace_back(work, w, false);
  } catch (...) {  // could not start a thread: the ones started and the caller finish the work
  }
  work(0, true);
  for (auto& th : threads) th.join();
  if (error) std::rethrow_exception(error);
  if (was_interrupted) throw Interrupted();
}

}  // namespace kernops
