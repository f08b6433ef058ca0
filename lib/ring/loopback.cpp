#include "lib/ring/loopback.h"

#include <chrono>
#include <stdexcept>
#include <string>

#include "lib/error.h"

namespace bsattn::ring {

LoopbackHub::LoopbackHub(int ranks) : posts(size_t(ranks)), ranks_(ranks) {}

void LoopbackHub::arrive_and_wait() {
  std::unique_lock<std::mutex> lock(mu_);
  if (aborted_) throw RuntimeFailure("ring: another rank failed");
  const uint64_t gen = generation_;
  if (++arrived_ == ranks_) {
    arrived_ = 0;
    ++generation_;
    cv_.notify_all();
    return;
  }
  cv_.wait(lock, [&] { return generation_ != gen || aborted_; });
  if (generation_ == gen) throw RuntimeFailure("ring: another rank failed");
}

void LoopbackHub::abort() {
  std::lock_guard<std::mutex> lock(mu_);
  aborted_ = true;
  cv_.notify_all();
}

bool LoopbackHub::aborted() const {
  std::lock_guard<std::mutex> lock(mu_);
  return aborted_;
}

LoopbackTransport::LoopbackTransport(LoopbackHub& hub, int rank, CopyFn copy) : hub_(hub), rank_(rank), copy_(std::move(copy)) {}

void LoopbackTransport::start_shift(const void* send, size_t send_bytes, void* recv, size_t recv_bytes) {
  const int n = hub_.ranks();
  hub_.posts[size_t(rank_)] = {send, send_bytes};
  hub_.arrive_and_wait();  // every rank's send buffer is posted (and no longer written)
  const LoopbackHub::Post& from = hub_.posts[size_t((rank_ + n - 1) % n)];
  if (from.bytes != recv_bytes)
    throw std::logic_error("ring loopback: rank " + std::to_string(rank_) + " expects " + std::to_string(recv_bytes) +
                           " bytes but its predecessor sends " + std::to_string(from.bytes));
  const auto t0 = std::chrono::steady_clock::now();
  if (recv_bytes) copy_(recv, from.send, recv_bytes);
  copy_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  bytes_sent_ += int64_t(send_bytes);
  hub_.arrive_and_wait();  // every copy is done: send buffers may be reused
}

}  // namespace bsattn::ring
