// Helpers shared by the pattern families: token ranges -> block ranges, sliding windows, seeded
// random picks, and per-head choices from a list. Header-only; every function is small.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "lib/error.h"
#include "lib/rng.h"
#include "patterns/registry.h"

namespace bsattn::pat {

// Row i of a head's bitmap.
inline uint8_t* row_of(HeadOutput& out, int64_t i) { return out.bits + i * out.mk; }

// Query blocks overlapping the token range [a, b) (b > a, clipped to the sequence).
inline void q_blocks_of(const MaskShape& s, int64_t a, int64_t b, int64_t& i0, int64_t& i1) {
  a = std::max<int64_t>(a, 0);
  b = std::min(b, s.q_len);
  i0 = a / s.block_q;
  i1 = b > a ? (b - 1) / s.block_q : i0 - 1;
}
inline void k_blocks_of(const MaskShape& s, int64_t a, int64_t b, int64_t& j0, int64_t& j1) {
  a = std::max<int64_t>(a, 0);
  b = std::min(b, s.kv_len);
  j0 = a / s.block_kv;
  j1 = b > a ? (b - 1) / s.block_kv : j0 - 1;
}

// Global tokens [a, b): every query block holding one of them keeps its whole row (the tokens attend
// to all), every key block holding one keeps its whole column (all attend to them).
inline void mark_global_rows(const MaskShape& s, int64_t a, int64_t b, HeadOutput& out) {
  int64_t i0, i1;
  q_blocks_of(s, a, b, i0, i1);
  for (int64_t i = i0; i <= i1; ++i) std::fill(row_of(out, i), row_of(out, i) + out.mk, uint8_t(1));
}
inline void mark_global_cols(const MaskShape& s, int64_t a, int64_t b, HeadOutput& out) {
  int64_t j0, j1;
  k_blocks_of(s, a, b, j0, j1);
  for (int64_t i = 0; i < s.mq(); ++i)
    for (int64_t j = j0; j <= j1; ++j) out.set(i, j);
}

// Token-level sliding window: block (i,j) is kept when some existing pair (q,k) in it has
// |k - (q + kv_len - q_len)| <= w (bottom-right aligned, as causal).
inline void mark_local_tokens(const BlockGeometry& g, int64_t i, int64_t w, HeadOutput& out) {
  int64_t off = g.causal_offset();
  int64_t a = g.q_begin(i) + off - w, b = g.q_end(i) - 1 + off + w;
  if (b < 0 || a >= g.s.kv_len) return;
  int64_t j0 = std::max<int64_t>(0, a) / g.s.block_kv, j1 = std::min(g.s.mk() - 1, b / g.s.block_kv);
  for (int64_t j = j0; j <= j1; ++j) out.set(i, j);
}

// Block-level sliding window: |j - diag(i)| <= w.
inline void mark_local_blocks(const BlockGeometry& g, int64_t i, int64_t w, HeadOutput& out) {
  int64_t d = g.diag_block(i);
  for (int64_t j = std::max<int64_t>(0, d - w); j <= std::min(g.s.mk() - 1, d + w); ++j) out.set(i, j);
}

// Blocks of row i that may be drawn: visible under causal (all when not causal).
inline int64_t visible_blocks(const BlockGeometry& g, bool causal, int64_t i) {
  if (!causal) return g.s.mk();
  int64_t last = g.q_end(i) - 1 + g.causal_offset();
  return last < 0 ? 0 : std::min(g.s.mk(), last / g.s.block_kv + 1);
}

// Sets `n` blocks of row i drawn uniformly without replacement from the unset blocks among the first
// `limit` (partial Fisher-Yates over a candidate list; `pool` is scratch space).
inline void pick_random(Rng& rng, HeadOutput& out, int64_t i, int64_t limit, int64_t n, std::vector<int64_t>& pool) {
  pool.clear();
  const uint8_t* row = out.bits + i * out.mk;
  for (int64_t j = 0; j < limit; ++j)
    if (!row[j]) pool.push_back(j);
  int64_t avail = int64_t(pool.size());
  for (int64_t t = 0; t < std::min(n, avail); ++t) {
    int64_t r = t + int64_t(rng.below(uint64_t(avail - t)));
    std::swap(pool[t], pool[r]);
    out.set(i, pool[t]);
  }
}

// Tops row i up to max(1, round(density * V)) kept blocks, V = the row's visible blocks (all with no
// causal): the diagonal block first, then blocks drawn uniformly from the unset visible ones. Blocks
// already set count toward the total.
inline void fill_random_row(Rng& rng, const BlockGeometry& g, bool causal, int64_t i, double density, HeadOutput& out,
                            std::vector<int64_t>& pool) {
  int64_t v = visible_blocks(g, causal, i), dg = g.diag_block(i);
  if (v == 0) return;
  if (dg >= 0 && dg < v) out.set(i, dg);
  const uint8_t* row = out.bits + i * out.mk;
  int64_t have = std::count(row, row + v, uint8_t(1));
  int64_t want = std::max<int64_t>(1, std::llround(density * double(v)));
  pick_random(rng, out, i, v, want - have, pool);
}

// The pattern's own seed parameter (-1: the run's --seed), mixed with (batch, head, salt).
inline uint64_t pattern_seed(const PatternContext& ctx, int64_t seed_param, uint64_t salt) {
  PatternContext c = ctx;
  if (seed_param >= 0) c.seed = uint64_t(seed_param);
  return c.stream_seed(salt);
}

// Per-head choice from a list: head g of its range takes list[g mod size].
template <class T>
T per_head(const std::vector<T>& v, const PatternContext& ctx) {
  return v[size_t(ctx.group_head % int64_t(v.size()))];
}

inline void require_self_attention(const PatternContext& ctx, const std::string& name) {
  if (ctx.shape.q_len != ctx.shape.kv_len)
    throw UsageError("pattern '" + name + "' needs q_len == kv_len (got " + std::to_string(ctx.shape.q_len) +
                     " and " + std::to_string(ctx.shape.kv_len) + ")");
}

// Hybrid patterns: dense_heads may not exceed the heads of the range.
inline void check_dense_heads(const PatternContext& ctx, int64_t dense_heads, const std::string& name) {
  if (dense_heads > ctx.group_heads)
    throw UsageError("pattern '" + name + "': dense_heads = " + std::to_string(dense_heads) + " exceeds the " +
                     std::to_string(ctx.group_heads) + " heads it covers");
}

// ParamDef shorthands.
inline ParamDef int_param(std::string name, std::string def, double lo, double hi, std::string help) {
  return {std::move(name), ParamKind::Int, std::move(def), lo, hi, std::move(help), {}};
}
inline ParamDef seed_param() {
  return int_param("seed", "-1", -1, 9.2e18, "seed of this pattern's random stream (-1: the run's --seed)");
}

}  // namespace bsattn::pat
