// A small thread pool for the CPU reference: runs fn(task) for task in [0, n) on worker threads that
// take tasks from a shared counter (row blocks differ in cost under causal / sparse masks).
#pragma once
#include <cstdint>
#include <functional>

namespace bsattn {

// threads <= 0: std::thread::hardware_concurrency(). Exceptions thrown by fn are rethrown (the first).
void parallel_for(int64_t n, const std::function<void(int64_t)>& fn, int threads = 0);
// The worker count parallel_for uses for `threads` (for reports).
int resolve_threads(int threads);

}  // namespace bsattn
