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
  int64_t sampled_rows = 0;     // evaluate_dilated_rows: query rows per (batch, head); 0: every row
  double coverage() const { return visible_pairs ? double(covered_pairs) / double(visible_pairs) : 0; }
};

// q, k, v: f32 BSHD, fixed-length. The dilated output runs through dilated_attention with `opt`
// (CPU float32 unless opt says otherwise); the dense output and the recall are exact CPU passes.
DilatedQuality evaluate_dilated(const AttentionProblem& p, const DilatedSpec& spec, const float* q, const float* k,
                                const float* v, const DilatedOptions& opt);
// The same measures over `rows` query rows per (batch, head), evenly spaced (row t_i = floor((i + 1/2) S /
// rows)), for sequences too long for the full dense pass: each sampled row's dense softmax over every
// visible key, the share of it on the keys some branch covers (recall) and the dilated output of the row
// from the definition (softmax over the branches' keys, a key two branches share counting twice), all in
// float64 on the CPU; the error compares the sampled rows' outputs. covered/visible pairs and
// uncovered_rows count the sampled rows; computed_pairs is the whole problem's. UsageError for rows < 1.
DilatedQuality evaluate_dilated_rows(const AttentionProblem& p, const DilatedSpec& spec, const float* q, const float* k,
                                     const float* v, int64_t rows, int threads = 0);
nlohmann::json to_json(const DilatedQuality& r);

}  // namespace bsattn::dilated
