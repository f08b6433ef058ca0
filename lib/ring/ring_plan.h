// Which blocks a rank computes at each step of the ring, as the sub-problem the attention entry runs.
//
// Rank r keeps its Q shard; at step t it holds the K/V shard of rank (r - t) mod N. The sub-problem is
// (Q shard of r, K/V shard of the owner) with the mask's blocks for those rows and columns:
//   - own shard (t = 0): causal exactly as the global mask (the shard order is the global order, so the
//     causal rule on shard-local positions is the global one);
//   - another shard: chunks are disjoint, so every (Q chunk, K chunk) pair is either entirely visible
//     (its keys all precede its queries) or, under causal, entirely invisible; the sub-problem is
//     non-causal with the invisible chunk pairs' blocks cleared.
// A step whose sub-mask keeps no block computes nothing (its K/V still travel on).
#pragma once
#include <cstdint>
#include <vector>

#include "lib/attention.h"
#include "lib/mask.h"
#include "lib/ring/ring_layout.h"

namespace bsattn::ring {

struct RingStep {
  int q_rank = 0, kv_rank = 0;
  BlockMask mask;                 // [mask batch, H, shard blocks of q_rank, shard blocks of kv_rank]
  bool empty = true;              // keeps no block: skipped
  int64_t computed_pairs = 0;     // (q,k) pairs the step computes (causal applied), over the mask's batch
};

// UsageError unless the problem and mask fit the ring: fixed-length batch, softmax, q_len == kv_len (one
// sequence sharded for Q and K/V alike), and the layout made for this length and these block sizes.
void check_ring_problem(const AttentionProblem& p, const BlockMask& mask, const RingLayout& L);

// The checks of check_ring_problem and make_ring_layout that need only the mask's sizes (UsageError), for
// callers that want them before the inputs' work: Q and K/V of one length, the chunks fit.
void check_ring_shape(int ranks, RingLayoutKind kind, const MaskShape& s);

// The step of rank q_rank against the K/V shard of kv_rank.
RingStep ring_step(const BlockMask& mask, const RingLayout& L, int q_rank, int kv_rank);

// The sub-problem of a step: the global problem with the shard lengths.
AttentionProblem step_problem(const AttentionProblem& p, const RingLayout& L, int q_rank, int kv_rank);

// Every step of every rank, [q_rank * N + kv_rank].
std::vector<RingStep> ring_steps(const BlockMask& mask, const RingLayout& L);

}  // namespace bsattn::ring
