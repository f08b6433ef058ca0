#include "lib/ring/ring_layout.h"

#include <algorithm>
#include <numeric>

#include "lib/error.h"

namespace bsattn::ring {

const char* ring_layout_name(RingLayoutKind k) { return k == RingLayoutKind::Zigzag ? "zigzag" : "contiguous"; }

RingLayoutKind parse_ring_layout(const std::string& s) {
  if (s == "contiguous") return RingLayoutKind::Contiguous;
  if (s == "zigzag") return RingLayoutKind::Zigzag;
  throw UsageError("--ring-layout " + s + ": allowed: contiguous, zigzag");
}

std::vector<int> RingLayout::rank_chunks(int r) const {
  if (kind == RingLayoutKind::Contiguous) return {r};
  return {r, 2 * ranks - 1 - r};
}

int64_t RingLayout::shard_len(int r) const {
  int64_t n = 0;
  for (int c : rank_chunks(r)) n += chunks[size_t(c)].size();
  return n;
}

int64_t RingLayout::max_shard_len() const {
  int64_t m = 0;
  for (int r = 0; r < ranks; ++r) m = std::max(m, shard_len(r));
  return m;
}

std::vector<int64_t> RingLayout::shard_tokens(int r) const {
  std::vector<int64_t> t;
  t.reserve(size_t(shard_len(r)));
  for (int c : rank_chunks(r))
    for (int64_t i = chunks[size_t(c)].begin; i < chunks[size_t(c)].end; ++i) t.push_back(i);
  return t;
}

RingLayout make_ring_layout(int ranks, RingLayoutKind kind, int64_t seq_len, int64_t block_q, int64_t block_kv) {
  if (ranks < 1 || ranks > kMaxRanks)
    throw UsageError("--ranks " + std::to_string(ranks) + ": allowed 1.." + std::to_string(kMaxRanks));
  if (seq_len <= 0 || block_q <= 0 || block_kv <= 0)
    throw UsageError("ring attention needs a positive sequence length and block sizes");
  RingLayout L;
  L.ranks = ranks;
  L.kind = kind;
  L.seq_len = seq_len;
  L.unit = std::lcm(block_q, block_kv);
  const int64_t units = seq_len / L.unit + (seq_len % L.unit != 0);
  const int64_t count = kind == RingLayoutKind::Zigzag ? 2 * int64_t(ranks) : ranks;
  if (units < count)
    throw UsageError("--ranks " + std::to_string(ranks) + " with --ring-layout " + ring_layout_name(kind) + " cuts the " +
                     std::to_string(seq_len) + " tokens into " + std::to_string(count) +
                     " chunks on block boundaries (multiples of lcm(block_q, block_kv) = " + std::to_string(L.unit) +
                     " tokens), but there are only " + std::to_string(units) +
                     " such blocks; allowed: at most " + std::to_string(kind == RingLayoutKind::Zigzag ? units / 2 : units) +
                     " ranks, or smaller blocks");
  const int64_t base = units / count, extra = units % count;
  int64_t at = 0;
  for (int64_t c = 0; c < count; ++c) {
    const int64_t n = (base + (c < extra ? 1 : 0)) * L.unit;
    L.chunks.push_back({at, std::min(seq_len, at + n)});
    at += n;
  }
  return L;
}

}  // namespace bsattn::ring
