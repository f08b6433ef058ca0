#include "lib/ring/ring_plan.h"

#include <string>

#include "lib/error.h"

namespace bsattn::ring {

void check_ring_problem(const AttentionProblem& p, const BlockMask& mask, const RingLayout& L) {
  if (p.varlen()) throw UsageError("--ranks: ring attention takes fixed-length batches; drop --seqlens/--cu-seqlens");
  if (p.score != ScoreFn::Softmax)
    throw UsageError("--ranks: ring attention merges the steps by their log-sum-exp; it needs --score softmax");
  if (p.q_len != p.kv_len)
    throw UsageError("--ranks: ring attention shards one sequence for Q and K/V alike; Q has " + std::to_string(p.q_len) +
                     " tokens and K/V " + std::to_string(p.kv_len) + " (allowed: equal lengths)");
  if (L.seq_len != p.q_len || L.unit % mask.shape.block_q != 0 || L.unit % mask.shape.block_kv != 0)
    throw std::logic_error("ring layout made for another sequence length or block sizes");
}

void check_ring_shape(int ranks, RingLayoutKind kind, const MaskShape& s) {
  if (s.q_len != s.kv_len)
    throw UsageError("--ranks: ring attention shards one sequence for Q and K/V alike; Q has " + std::to_string(s.q_len) +
                     " tokens and K/V " + std::to_string(s.kv_len) + " (allowed: equal lengths)");
  make_ring_layout(ranks, kind, s.q_len, s.block_q, s.block_kv);
}

AttentionProblem step_problem(const AttentionProblem& p, const RingLayout& L, int q_rank, int kv_rank) {
  AttentionProblem s = p;
  s.q_len = L.shard_len(q_rank);
  s.kv_len = L.shard_len(kv_rank);
  s.scale = p.effective_scale();
  return s;
}

RingStep ring_step(const BlockMask& mask, const RingLayout& L, int q_rank, int kv_rank) {
  const MaskShape& gs = mask.shape;
  RingStep st;
  st.q_rank = q_rank;
  st.kv_rank = kv_rank;
  const bool own = q_rank == kv_rank;
  const bool causal = mask.causal && own;
  // Global block rows / columns of the shards, with the chunk each belongs to.
  struct Blocks {
    std::vector<int64_t> global;
    std::vector<int> chunk;
  };
  auto blocks_of = [&](int r, int64_t block) {
    Blocks b;
    for (int c : L.rank_chunks(r)) {
      const TokenRange& t = L.chunks[size_t(c)];
      for (int64_t i = t.begin / block; i * block < t.end; ++i) b.global.push_back(i), b.chunk.push_back(c);
    }
    return b;
  };
  const Blocks rows = blocks_of(q_rank, gs.block_q), cols = blocks_of(kv_rank, gs.block_kv);
  MaskShape s = gs;
  s.q_len = L.shard_len(q_rank);
  s.kv_len = L.shard_len(kv_rank);
  BlockMask m(s);
  if (int64_t(rows.global.size()) != s.mq() || int64_t(cols.global.size()) != s.mk())
    throw std::logic_error("ring shard blocks do not match the shard lengths");
  m.causal = causal;
  for (int64_t b = 0; b < gs.batch; ++b)
    for (int64_t h = 0; h < gs.heads; ++h)
      for (int64_t i = 0; i < s.mq(); ++i) {
        const TokenRange& qc = L.chunks[size_t(rows.chunk[size_t(i)])];
        for (int64_t j = 0; j < s.mk(); ++j) {
          if (!own && mask.causal) {
            // Disjoint chunks: visible only when the key chunk lies wholly before the query chunk.
            const TokenRange& kc = L.chunks[size_t(cols.chunk[size_t(j)])];
            if (kc.begin >= qc.end) continue;
          }
          if (mask.at(b, h, rows.global[size_t(i)], cols.global[size_t(j)])) m.set(b, h, i, j);
        }
      }
  if (causal) m.apply_causal();
  m.normalize_head_types();
  const BlockGeometry g = m.geometry();
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t i = 0; i < s.mq(); ++i)
        for (int64_t j = 0; j < s.mk(); ++j)
          if (m.at(b, h, i, j)) st.computed_pairs += g.pairs(i, j, causal);
  st.empty = st.computed_pairs == 0;
  st.mask = std::move(m);
  return st;
}

std::vector<RingStep> ring_steps(const BlockMask& mask, const RingLayout& L) {
  std::vector<RingStep> v;
  v.reserve(size_t(L.ranks) * size_t(L.ranks));
  for (int r = 0; r < L.ranks; ++r)
    for (int o = 0; o < L.ranks; ++o) v.push_back(ring_step(mask, L, r, o));
  return v;
}

}  // namespace bsattn::ring
