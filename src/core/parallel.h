// A small parallel-for over std::threads that keeps every R-facing concern on the
// calling thread: workers never call back into the host (R); the calling thread takes
// tasks too and polls Control::interrupted() between them, and once no task is left it
// keeps polling (and reporting progress) until the workers have finished theirs. Worker
// exceptions are caught into an exception_ptr and rethrown on the calling thread after
// all threads joined. No R headers here.
#pragma once
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
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
  // Fraction of the work done so far, reported between tasks and while the calling thread
  // waits for the others; 1 once, at the end of a call that completed.
  virtual void progress(double /*fraction*/) {}
  // Least time between two calls of interrupted() from inside a task (StopCheck).
  virtual std::chrono::milliseconds poll_interval() const { return std::chrono::milliseconds(50); }
};

// Asked by a task body between pieces of its work: true when the work should end early
// (the user interrupted, or another task failed); the body may then return at once, since
// parallel_for throws and its results are discarded. On the calling thread it also polls
// control->interrupted(), at most every control->poll_interval(): a task can run for
// seconds (a costly formula, a K-min with a large K), and between tasks alone an interrupt
// could wait that long.
using StopCheck = std::function<bool()>;

// Runs body(task, worker, stop) for task in [0, n_tasks) on up to n_threads threads.
// Throws Interrupted if control reported an interrupt; rethrows the first worker error.
inline void parallel_for(std::int64_t n_tasks, int n_threads, Control* control,
                         const std::function<void(std::int64_t, int, const StopCheck&)>& body) {
  if (n_threads < 1) n_threads = 1;
  if (n_tasks < n_threads) n_threads = static_cast<int>(n_tasks < 1 ? 1 : n_tasks);
  std::atomic<std::int64_t> next{0};
  std::atomic<std::int64_t> done{0};
  std::atomic<bool> stop{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  bool was_interrupted = false;
  // Workers that have left their loop, guarded by finish_mutex, for the calling thread's wait.
  int finished_workers = 0;
  std::mutex finish_mutex;
  std::condition_variable finished;

  // On the calling thread: asks the host whether the user interrupted, and if so stops all.
  const auto poll_host = [&] {
    if (control->interrupted()) {
      was_interrupted = true;
      stop = true;
    }
  };
  // Between tasks and while waiting: the fraction done, below 1 (1 is for the end).
  const auto report_progress = [&] {
    const std::int64_t d = done.load();
    if (d < n_tasks) control->progress(static_cast<double>(d) / static_cast<double>(n_tasks));
  };
  auto work = [&](int worker, bool is_caller) {
    const auto interval = control ? control->poll_interval() : std::chrono::milliseconds(0);
    auto next_poll = std::chrono::steady_clock::now() + interval;
    // The clock is read at every 8th check only (a check comes every ~20 us on W1), unless
    // every check is to poll.
    const unsigned clock_every = interval.count() > 0 ? 8 : 1;
    unsigned checks = 0;
    const StopCheck stop_check = [&]() {
      if (is_caller && control && ++checks % clock_every == 0 && std::chrono::steady_clock::now() >= next_poll) {
        next_poll = std::chrono::steady_clock::now() + interval;
        poll_host();
      }
      return stop.load(std::memory_order_relaxed);
    };
    while (!stop.load(std::memory_order_relaxed)) {
      const std::int64_t t = next.fetch_add(1);
      if (t >= n_tasks) break;
      try {
        body(t, worker, stop_check);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        stop = true;
      }
      ++done;
      if (is_caller && control) {
        poll_host();
        report_progress();
      }
    }
  };

  const auto worker_main = [&](int worker) {
    work(worker, false);
    std::lock_guard<std::mutex> lock(finish_mutex);
    ++finished_workers;
    finished.notify_one();
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
    for (int w = 1; w < n_threads; ++w) threads.emplace_back(worker_main, w);
  } catch (...) {  // could not start a thread: the ones started and the caller finish the work
  }
  work(0, true);
  // No task is left, but a worker may be in a long one: its StopChecks only read `stop`,
  // which only this thread sets, so keep polling the host until every worker is done.
  if (control) {
    const auto interval = std::max(control->poll_interval(), std::chrono::milliseconds(1));
    const int started = static_cast<int>(threads.size());
    std::unique_lock<std::mutex> lock(finish_mutex);
    while (!finished.wait_for(lock, interval, [&] { return finished_workers == started; })) {
      lock.unlock();
      if (!stop.load()) poll_host();
      report_progress();
      lock.lock();
    }
  }
  for (auto& th : threads) th.join();
  if (error) std::rethrow_exception(error);
  if (was_interrupted) throw Interrupted();
  if (control) control->progress(1.0);
}

}  // namespace kernops
