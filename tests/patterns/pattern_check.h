// Helpers for pattern tests: generate a mask through the registry, and an independent token-level
// reference: block (i,j) is expected kept exactly when some existing token pair (q,k) in it is allowed
// by a predicate written plainly in the test (O(S^2), small sizes only).
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "lib/rng.h"
#include "patterns/registry.h"

namespace bsattn::test {

inline MaskShape shape_of(int64_t q_len, int64_t kv_len, int64_t bq, int64_t bk, int64_t heads = 1, int64_t batch = 1) {
  MaskShape s;
  s.q_len = q_len;
  s.kv_len = kv_len;
  s.block_q = bq;
  s.block_kv = bk;
  s.heads = heads;
  s.batch = batch;
  return s;
}

inline BlockMask gen(const std::string& spec, MaskShape s, bool causal = false, uint64_t seed = 1,
                     const std::vector<int64_t>* order = nullptr) {
  MaskRequest r;
  r.shape = s;
  r.causal = causal;
  r.seed = seed;
  r.pattern = parse_pattern(spec, "--pattern");
  r.token_order = order;
  return generate_mask(r);
}

// Expected [Mq,Mk] bitmap from a token predicate allowed(q, k) (positions in the sequence); pairs that
// causal hides are not allowed when `causal`.
inline std::vector<uint8_t> token_reference(const MaskShape& s, bool causal,
                                            const std::function<bool(int64_t, int64_t)>& allowed) {
  std::vector<uint8_t> ref(size_t(s.mq() * s.mk()), 0);
  for (int64_t q = 0; q < s.q_len; ++q)
    for (int64_t k = 0; k < s.kv_len; ++k) {
      if (causal && k > q + s.kv_len - s.q_len) continue;
      if (allowed(q, k)) ref[size_t((q / s.block_q) * s.mk() + k / s.block_kv)] = 1;
    }
  return ref;
}

// Expected bitmap from a block predicate.
inline std::vector<uint8_t> block_reference(const MaskShape& s, const std::function<bool(int64_t, int64_t)>& kept) {
  std::vector<uint8_t> ref(size_t(s.mq() * s.mk()), 0);
  for (int64_t i = 0; i < s.mq(); ++i)
    for (int64_t j = 0; j < s.mk(); ++j) ref[size_t(i * s.mk() + j)] = kept(i, j);
  return ref;
}

inline std::vector<uint8_t> head_of(const BlockMask& m, int64_t h, int64_t b = 0) {
  return std::vector<uint8_t>(m.head_bits(b, h), m.head_bits(b, h) + m.shape.head_cells());
}

// Number of differing blocks (0 when equal); prints the first difference.
inline int64_t diff_count(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want, int64_t mk) {
  int64_t n = 0;
  for (size_t c = 0; c < got.size(); ++c)
    if (got[c] != want[c]) {
      if (n == 0) MESSAGE("first difference at block (" << int64_t(c) / mk << "," << int64_t(c) % mk << "): got "
                                                        << int(got[c]) << ", want " << int(want[c]));
      ++n;
    }
  return n;
}

// A seeded random permutation of n tokens.
inline std::vector<int64_t> random_order(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), int64_t(0));
  Rng rng(seed);
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[size_t(i)], p[size_t(rng.below(uint64_t(i + 1)))]);
  return p;
}

// A locality-keeping but non-identity order: raster order with every second grid row reversed
// (boustrophedon) inside a prefix-first sequence; plus blocks of cells, closer to what curves give.
inline std::vector<int64_t> snake_order(int64_t prefix, int64_t t, int64_t h, int64_t w) {
  std::vector<int64_t> p;
  for (int64_t k = 0; k < prefix; ++k) p.push_back(k);
  for (int64_t a = 0; a < t; ++a)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) p.push_back(prefix + (a * h + y) * w + (y % 2 ? w - 1 - x : x));
  return p;
}

}  // namespace bsattn::test
