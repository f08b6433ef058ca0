// How ring attention (context parallelism) cuts one sequence over N ranks.
//
// The sequence of S tokens is cut into chunks whose boundaries fall on multiples of the unit
// u = lcm(block_q, block_kv), so that every chunk boundary is a block boundary of the mask in both
// directions and a rank's slice of the mask is whole blocks. The ceil(S/u) units are dealt out in order,
// the first chunks taking one unit more when they do not divide evenly; the last chunk also holds the
// tail (S not a multiple of u), so it is the shortest.
//
//   contiguous: N chunks, rank r holds chunk r.
//   zigzag:     2N chunks, rank r holds chunks r and 2N-1-r (stacked in that order in its shard), so that
//               under a causal mask every rank has about the same number of visible pairs.
//
// A rank's shard is its chunks' tokens stacked in ascending position: the shard-local order is the
// global order restricted to the shard, which keeps the causal rule exact inside a shard.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace bsattn::ring {

enum class RingLayoutKind { Contiguous, Zigzag };
const char* ring_layout_name(RingLayoutKind k);              // "contiguous" | "zigzag"
RingLayoutKind parse_ring_layout(const std::string& s);      // UsageError naming --ring-layout otherwise

constexpr int kMaxRanks = 1024;

struct TokenRange {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};

struct RingLayout {
  int ranks = 1;
  RingLayoutKind kind = RingLayoutKind::Contiguous;
  int64_t seq_len = 0;
  int64_t unit = 0;                 // lcm(block_q, block_kv)
  std::vector<TokenRange> chunks;   // in sequence order: ranks (contiguous) or 2*ranks (zigzag) of them

  // The chunks rank r holds, in the order its shard stacks them (ascending positions).
  std::vector<int> rank_chunks(int r) const;
  int64_t shard_len(int r) const;
  int64_t max_shard_len() const;
  // Global position of each row of rank r's shard.
  std::vector<int64_t> shard_tokens(int r) const;
};

// UsageError when ranks is outside 1..kMaxRanks, a size is not positive, or the sequence has fewer
// units than the layout has chunks (the message names the unit, the counts and what to change).
RingLayout make_ring_layout(int ranks, RingLayoutKind kind, int64_t seq_len, int64_t block_q, int64_t block_kv);

// Rows `tokens` of a [outer, seq, inner] array, as [outer, tokens.size(), inner].
template <class T>
std::vector<T> gather_rows(const T* x, int64_t outer, int64_t seq, int64_t inner, const std::vector<int64_t>& tokens) {
  const int64_t n = int64_t(tokens.size());
  std::vector<T> out(size_t(outer * n * inner));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < n; ++i) {
      const T* src = x + (o * seq + tokens[size_t(i)]) * inner;
      std::copy(src, src + inner, out.begin() + (o * n + i) * inner);
    }
  return out;
}

// The reverse: [outer, tokens.size(), inner] written into rows `tokens` of a [outer, seq, inner] array.
template <class T>
void scatter_rows(const T* part, T* x, int64_t outer, int64_t seq, int64_t inner, const std::vector<int64_t>& tokens) {
  const int64_t n = int64_t(tokens.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < n; ++i) {
      const T* src = part + (o * n + i) * inner;
      std::copy(src, src + inner, x + (o * seq + tokens[size_t(i)]) * inner);
    }
}

}  // namespace bsattn::ring
