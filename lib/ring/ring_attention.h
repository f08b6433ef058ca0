// Block-sparse ring attention (context parallelism): the sequence sharded over N ranks (ring_layout.h),
// each rank keeping its Q shard while the K/V shards travel round the ring; at each of the N steps a rank
// computes the blocks its mask keeps for (its Q, the visiting K/V) (ring_plan.h) and merges the partial
// output by log-sum-exp. The backward pass runs the ring again: each step's gradients are those of the
// step's sub-problem taken with the merged O and LSE (the merge is one softmax over the union of the
// steps' keys, so P = exp(S - LSE) and rowsum(dO * O) are the whole ring's); dQ stays with its rank, dK/dV
// travel with their K/V and arrive back at their owner after N shifts.
//
// The result equals the single-rank attention of the same problem and mask up to float rounding (the
// merge order differs).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "lib/attention.h"
#include "lib/mask.h"
#include "lib/ring/ring_layout.h"

namespace bsattn::ring {

enum class TransportKind { Loopback, Nccl };
const char* transport_name(TransportKind t);
TransportKind parse_transport(const std::string& s);  // "loopback" | "nccl", UsageError naming --transport

struct RingConfig {
  int ranks = 2;
  RingLayoutKind layout = RingLayoutKind::Contiguous;
  TransportKind transport = TransportKind::Loopback;
  AttentionOptions attention;  // backend (cpu / cuda) and, on cuda, kernel and max_ctas
  int threads = 0;             // cpu: threads over all ranks (0: all); each rank gets its share
  // Loopback: one rank computes at a time (a hub-wide lock around each step), so that each rank's step
  // times are those of a device it had to itself (bench); the result is the same.
  bool serialize_steps = false;
};

struct RankReport {
  int rank = 0;
  int64_t shard_tokens = 0;
  int steps_computed = 0, steps_skipped = 0;
  int64_t computed_pairs = 0;   // over the mask's batch (x batch when the mask broadcasts)
  int64_t bytes_sent = 0;
  size_t memory_bytes = 0;
  double step_seconds = 0;      // host clock around the rank's steps (GPU: synchronized after each)
  double shift_seconds = 0;     // host clock around its shifts (loopback: the copies and rendezvous)
  double copy_seconds = 0;      // loopback: host seconds in its copies (0 for nccl: on the device)
  double wall_seconds = 0;      // host clock from the start barrier to its last step (forward + backward)
};

struct RingResult {
  std::vector<float> out, lse;    // [B,S,Hq,D], [B,Hq,S]
  std::vector<float> dq, dk, dv;  // with dO
  std::vector<RankReport> ranks;
  std::string engine, transport;
  bool overlapped = false;        // the transport overlaps shifts with compute
  double seconds = 0;             // the longest rank's wall_seconds (loading the shards excluded)
};

// The inputs are host float32 BSHD (values exact in p.dtype; cuda takes bf16/f16). dout: null for the
// forward only. Checks first (UsageError): the problem against the mask (AttentionProblem::validate),
// check_ring_problem, the layout, on cuda what the kernels support; then the backend and transport are
// set up (RuntimeFailure: no CUDA build / GPU / NCCL, fewer GPUs than ranks).
RingResult ring_attention(const AttentionProblem& p, const BlockMask& mask, const float* q, const float* k,
                          const float* v, const float* dout, const RingConfig& cfg);

}  // namespace bsattn::ring
