// Quality of dilated attention against dense attention on given Q/K/V (analyze --dilated): per head, the
// share of the pairs it covers (the union of the branches, against the causally visible pairs), the
// attention recall (the share of each row's dense softmax mass on the covered keys, mean and worst row)
// and the output error of the merged dilated output against exact dense attention.
#pragma once
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/dilated/dilated.h"
#include "lib/quality/quality.h"

namespace bsattn::dilated {

struct DilatedQuality {
  std::vector<HeadQuality> heads;  // density = covered pairs / visible pairs of the head
  double recall_mean = 0, recall_min = 0;
  ErrorStats error;
  int64_t covered_pairs = 0;    // distinct (q, k) pairs some branch computes, over batch and heads
  int64_t computed_pairs = 0;   // pairs the branches compute (a pair two branches share counts twice)
  int64_t visible_pairs = 0;    // pairs dense attention computes (causal applied)
  int64_t uncovered_rows = 0;   // (batch, head, token) rows that no branch selects: O = 0
  double coverage() const { return visible_pairs ? double(covered_pairs) / double(visible_pairs) : 0; }
};

// q, k, v: f32 BSHD, fixed-length. The dilated output runs through dilated_attention with `opt`
// (CPU float32 unless opt says otherwise); the dense output and the recall are exact CPU passes.
DilatedQuality evaluate_dilated(const AttentionProblem& p, const DilatedSpec& spec, const float* q, const float* k,
                                const float* v, const DilatedOptions& opt);
nlohmann::json to_json(const DilatedQuality& r);

}  // namespace bsattn::dilated
