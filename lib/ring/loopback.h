// The in-process loopback transport: N virtual ranks, each on its own thread, exchanging buffers through
// shared memory. A shift is a rendezvous: every rank posts its send buffer, waits for the others, copies
// its predecessor's buffer into its own receive buffer, and waits again before anyone may reuse a buffer.
// The copy is the engine's (host memcpy for the CPU reference; a device copy when the ranks' buffers live
// on one GPU), so the same ring code runs on the CPU in CI and on one GPU. Shifts do not overlap compute.
#pragma once
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "lib/ring/transport.h"

namespace bsattn::ring {

// Copies `bytes` from `src` to `dst` in the ranks' memory and returns when the copy is complete.
using CopyFn = std::function<void(void* dst, const void* src, size_t bytes)>;

class LoopbackHub {
 public:
  explicit LoopbackHub(int ranks);
  int ranks() const { return ranks_; }
  // Waits until all ranks arrive; RuntimeFailure "another rank failed" once abort() was called.
  void arrive_and_wait();
  // Wakes every waiting rank (which then throws) and makes later waits throw: a failing rank calls it so
  // that the others do not wait for it forever.
  void abort();
  bool aborted() const;

  struct Post {
    const void* send = nullptr;
    size_t bytes = 0;
  };
  std::vector<Post> posts;  // one per rank, written by that rank between two barriers

 private:
  int ranks_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
  bool aborted_ = false;
};

class LoopbackTransport : public Transport {
 public:
  LoopbackTransport(LoopbackHub& hub, int rank, CopyFn copy);
  int rank() const override { return rank_; }
  int size() const override { return hub_.ranks(); }
  void start_shift(const void* send, size_t send_bytes, void* recv, size_t recv_bytes) override;
  void finish_shift() override {}
  void barrier() override { hub_.arrive_and_wait(); }
  void abort() override { hub_.abort(); }
  const char* name() const override { return "loopback"; }
  bool overlaps_compute() const override { return false; }

 private:
  LoopbackHub& hub_;
  int rank_;
  CopyFn copy_;
};

}  // namespace bsattn::ring
