// parallel_for (parallel.h) on its own: what the calling thread reports to the host while
// the other threads finish, and how an interrupt reaches a task it does not run.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <vector>

#include "parallel.h"

using namespace kernops;

namespace {

// Records every progress report; interrupted() answers true from call number stop_at on.
struct Recorder : Control {
  std::vector<double> fractions;
  int calls = 0, stop_at = -1;
  bool interrupted() override { return stop_at >= 0 && ++calls >= stop_at; }
  void progress(double f) override { fractions.push_back(f); }
  std::chrono::milliseconds poll_interval() const override { return std::chrono::milliseconds(1); }
};

}  // namespace

TEST(Parallel, ProgressEndsAtOneAndNeverGoesBack) {
  for (int threads : {1, 2, 3}) {
    Recorder rec;
    std::atomic<int> ran{0};
    parallel_for(7, threads, &rec, [&](std::int64_t, int, const StopCheck&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(3));
      ++ran;
    });
    EXPECT_EQ(ran.load(), 7);
    ASSERT_FALSE(rec.fractions.empty());
    EXPECT_EQ(rec.fractions.back(), 1.0) << threads << " threads";
    EXPECT_EQ(std::count(rec.fractions.begin(), rec.fractions.end(), 1.0), 1) << "100% is reported once";
    for (size_t k = 1; k < rec.fractions.size(); ++k) EXPECT_LE(rec.fractions[k - 1], rec.fractions[k]);
  }
}

TEST(Parallel, InterruptReachesAWorkersLastTask) {
  // Two tasks on two threads. The calling thread (worker 0) holds its task until the other
  // thread has started the second one, so each takes one; the calling thread's returns,
  // the other's runs until told to stop (or 10 s). The first poll answers "no": a caller
  // that stopped polling once it had no task left would leave that task running 10 s.
  Recorder rec;
  rec.stop_at = 2;
  std::atomic<bool> worker_started{false}, long_task_stopped{false};
  const auto t0 = std::chrono::steady_clock::now();
  const auto give_up = t0 + std::chrono::seconds(10);
  EXPECT_THROW(parallel_for(2, 2, &rec,
                            [&](std::int64_t, int worker, const StopCheck& stop) {
                              if (worker == 0) {
                                while (!worker_started && std::chrono::steady_clock::now() < give_up)
                                  std::this_thread::sleep_for(std::chrono::microseconds(100));
                                return;
                              }
                              worker_started = true;
                              while (std::chrono::steady_clock::now() < give_up) {
                                if (stop()) {
                                  long_task_stopped = true;
                                  return;
                                }
                                std::this_thread::sleep_for(std::chrono::microseconds(200));
                              }
                            }),
               Interrupted);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(worker_started.load());
  EXPECT_TRUE(long_task_stopped.load());
  EXPECT_LT(seconds, 5.0);
  EXPECT_TRUE(std::find(rec.fractions.begin(), rec.fractions.end(), 1.0) == rec.fractions.end())
      << "an interrupted call never reports 100%";
}
