// Content-adaptive block selectors (energy threshold, top-k, XAttention antidiagonal, MInference
// vertical-slash): the pieces each pattern is made of, exposed so tests can check each selector's
// defining property on its own scores. Every selector reads Q/K from PatternContext::inputs (f32
// BSHD); the exact oracle it is judged against is lib/quality/block_mass.h (analyze reports the
// recall of any of these masks).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "lib/attention.h"
#include "patterns/registry.h"

namespace bsattn::adaptive {

// Checks that ctx has inputs matching the mask's sizes (UsageError naming the pattern otherwise)
// and returns the batch entry of the inputs to read (0 when the inputs have batch 1).
int64_t input_batch(const PatternContext& ctx, const std::string& pattern);
// An AttentionProblem describing one batch entry of ctx.inputs (softmax, f32).
AttentionProblem input_problem(const PatternInputs& in);

// Estimated block mass of one head at pooling level `pool` (units of pool x pool blocks): Q and K
// mean-pooled per unit, logits scale * q_u.k_v + log(visible keys of v per row of u), softmax over
// each pooled row. Returns [Mu, Nu] (Mu = ceil(Mq/pool), Nu = ceil(Mk/pool)); each row sums to 1
// over its visible units (0 where the unit is invisible under causal). With pool = 1, [Mq, Mk].
std::vector<double> pooled_mass(const PatternContext& ctx, int64_t b, int64_t pool, int64_t& mu, int64_t& nu);

// Indices of the largest entries of mass[0..n) (ties: lower index first) taken in decreasing order
// until their sum reaches tau (the crossing entry included), then at least min_keep and at most
// max_keep (<= 0: no cap) entries; only entries with mass > 0 are taken past the forced ones.
std::vector<int64_t> select_until_mass(const double* mass, int64_t n, double tau, int64_t min_keep, int64_t max_keep);

// XAttention antidiagonal block scores of one head: token groups of `stride`, group score
// sum_t q[a*stride + stride-1-t] . k[b*stride + t] * scale / stride, softmax over each query group's
// visible key groups, summed into blocks and averaged over the row block's groups: [Mq, Mk], rows
// summing to 1.
std::vector<double> antidiagonal_mass(const PatternContext& ctx, int64_t b, int64_t stride);

// MInference vertical-slash scores from the exact attention of the last `last_q` queries of one head:
// vertical[k] = summed probability of key k, slash[o] = summed probability at distance o = (q + kv_len
// - q_len) - k from the aligned diagonal (o in [0, kv_len + q_len)).
void vertical_slash_scores(const PatternContext& ctx, int64_t b, int64_t last_q, std::vector<double>& vertical,
                           std::vector<double>& slash);

// Indices of the `count` largest values (ties: lower index), ascending.
std::vector<int64_t> top_indices(const std::vector<double>& v, int64_t count);

}  // namespace bsattn::adaptive
