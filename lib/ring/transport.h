// How the ranks of a ring exchange their K/V shards: one interface, a loopback implementation in this
// folder (N virtual ranks in one process, lib/ring/loopback.h) and an NCCL one in kernels/ (one GPU per
// rank, kernels/nccl_transport.cpp). Each rank's thread owns its Transport and calls it in the same order
// as every other rank (SPMD): a rank that stops calling stalls the others, so a failing rank calls abort().
#pragma once
#include <cstddef>
#include <cstdint>

namespace bsattn::ring {

class Transport {
 public:
  virtual ~Transport() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // One ring shift: `send_bytes` of `send` go to rank (rank+1) mod size while `recv_bytes` from rank
  // (rank-1) mod size arrive in `recv` (the caller knows both sizes). Buffers are in the memory of the
  // rank's engine (host, or its GPU). On a GPU the shift is ordered after the work already enqueued on the
  // compute stream and runs on the transport's own stream; `recv` may be read, and `send` overwritten,
  // only after finish_shift(). The loopback transport completes the shift inside start_shift.
  virtual void start_shift(const void* send, size_t send_bytes, void* recv, size_t recv_bytes) = 0;
  // Work enqueued on the compute stream after this call sees the received data.
  virtual void finish_shift() = 0;
  // Every rank has reached the barrier (and, on a GPU, its enqueued work has completed).
  virtual void barrier() = 0;
  // "loopback" or "nccl".
  virtual const char* name() const = 0;
  // Whether a shift runs concurrently with the step computed between start_shift and finish_shift.
  virtual bool overlaps_compute() const = 0;
  // Called by a rank that failed: makes the other ranks' pending and later calls fail instead of waiting
  // for it (loopback: its rendezvous throws; NCCL: the communicators are aborted).
  virtual void abort() {}
  // Bytes this rank has sent.
  int64_t bytes_sent() const { return bytes_sent_; }
  // Host seconds spent copying data (loopback's copies); 0 where the transfers run on a device stream.
  double copy_seconds() const { return copy_seconds_; }

 protected:
  int64_t bytes_sent_ = 0;
  double copy_seconds_ = 0;
};

}  // namespace bsattn::ring
