#include "core/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace dbt {
namespace {

thread_local bool t_in_parallel = false;

class Pool {
 public:
  Pool() { resize(default_threads()); }
  ~Pool() { stop(); }

  int size() const { return nthreads_; }

  void resize(int n) {
    n = std::max(1, n);
    std::lock_guard<std::mutex> run(run_mutex_);
    stop();
    nthreads_ = n;
    quit_ = false;
    uint64_t gen = generation_.load();
    for (int i = 1; i < n; i++) workers_.emplace_back([this, i, gen] { worker(i, gen); });
  }

  void run(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    // More chunks than threads, handed out dynamically: a thread slowed by other processes does not hold
    // the others up. Chunk boundaries depend only on n, grain and the pool size, never on timing.
    int64_t chunks = std::min<int64_t>(int64_t(nthreads_) * kChunksPerThread, (n + grain - 1) / grain);
    std::unique_lock<std::mutex> run(run_mutex_, std::try_to_lock);
    if (nthreads_ <= 1 || chunks <= 1 || t_in_parallel || !run.owns_lock()) {
      if (n > 0) fn(0, n);
      return;
    }
    {
      std::lock_guard<std::mutex> lk(m_);
      fn_ = &fn;
      n_ = n;
      chunks_ = chunks;
      next_.store(0);
      pending_.store(nthreads_ - 1);
      error_ = nullptr;
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    work();
    // Short spin before sleeping: ops come in quick succession, and a sleeping thread is slow to wake.
    for (int i = 0; i < kSpin && pending_.load(std::memory_order_acquire) != 0; i++) cpu_relax();
    std::unique_lock<std::mutex> lk(m_);
    done_cv_.wait(lk, [this] { return pending_.load() == 0; });
    fn_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  static constexpr int64_t kChunksPerThread = 4;
  static constexpr int kSpin = 4000;  // pause iterations (tens of microseconds)

  static void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    std::this_thread::yield();
#endif
  }

  static int default_threads() {
    if (const char* s = std::getenv("DBT_NUM_THREADS")) {
      int v = std::atoi(s);
      if (v >= 1) return v;
    }
    unsigned hw = std::thread::hardware_concurrency();
    return hw ? int(hw) : 1;
  }

  // Takes chunks until none is left.
  void work() {
    t_in_parallel = true;
    for (;;) {
      int64_t i = next_.fetch_add(1);
      if (i >= chunks_) break;
      int64_t begin = n_ * i / chunks_, end = n_ * (i + 1) / chunks_;
      try {
        if (begin < end) (*fn_)(begin, end);
      } catch (...) {
        std::lock_guard<std::mutex> lk(m_);
        if (!error_) error_ = std::current_exception();
      }
    }
    t_in_parallel = false;
  }

  void worker(int index, uint64_t seen) {
    for (;;) {
      for (int i = 0; i < kSpin && generation_.load(std::memory_order_acquire) == seen; i++) cpu_relax();
      {
        std::unique_lock<std::mutex> lk(m_);
        cv_.wait(lk, [&] { return quit_ || generation_.load() != seen; });
        if (quit_) return;
        seen = generation_.load();
      }
      work();
      if (pending_.fetch_sub(1) == 1) {
        std::lock_guard<std::mutex> lk(m_);
        done_cv_.notify_one();
      }
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lk(m_);
      quit_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  int nthreads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex run_mutex_;  // one parallel_for at a time; others run inline
  std::mutex m_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  int64_t chunks_ = 0;
  std::atomic<int64_t> next_{0};
  std::atomic<int> pending_{0};
  std::atomic<uint64_t> generation_{0};
  bool quit_ = false;
  std::exception_ptr error_;
};

Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

int num_threads() { return pool().size(); }
void set_num_threads(int n) { pool().resize(n); }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  pool().run(n, std::max<int64_t>(grain, 1), fn);
}

}  // namespace dbt
