// A fixed-size thread pool with a fixed work split. Invariant every op relies on: the result of an op
// never depends on how work was split across threads. Ops only split work whose outputs are disjoint,
// and reductions use fixed-size blocks combined in a fixed order, so CPU results are bitwise identical
// from run to run and for any thread count.
#pragma once
#include <cstdint>
#include <functional>

namespace dbt {

// Threads used by parallel_for, the calling thread included. Default: DBT_NUM_THREADS or the number of
// hardware threads.
int num_threads();
// Resizes the pool (n >= 1). Not to be called while an op runs.
void set_num_threads(int n);

// Calls fn(begin, end) on contiguous ranges covering [0, n): at most 4 ranges per thread, each at least
// `grain` long (except the last), handed to whichever thread is free. The ranges depend only on n, grain
// and the thread count; fn must write disjoint outputs per range. Runs inline when n <= grain, when only
// one thread is configured, and when called from inside another parallel_for (nested calls do not fan
// out). Exceptions thrown by fn are re-thrown in the caller (the first one wins).
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace dbt
