// Quality of a block mask against dense attention on given Q/K/V: attention recall (share of the dense
// softmax mass inside the kept blocks, per row; for SiLU the share of absolute score mass), output
// errors against dense attention (relative L2 and L1, RMSE, max abs, cosine), per head and overall,
// plus the mask statistics of lib/mask_stats.h.
#pragma once
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/attention.h"
#include "lib/progress.h"
#include "lib/mask_stats.h"

namespace bsattn {

struct ErrorStats {
  double rel_l2 = 0;   // ||got - want||_2 / ||want||_2
  double rel_l1 = 0;   // ||got - want||_1 / ||want||_1
  double rmse = 0;     // sqrt(mean((got - want)^2))
  double max_abs = 0;  // max |got - want|
  double cosine = 1;   // <got, want> / (|got| |want|) (1 when both are zero)
  int64_t count = 0;
  int64_t worst_index = -1;  // flat index of max_abs
};
// got vs want, both [rows, heads, dim]: per head and over everything.
struct ErrorReport {
  std::vector<ErrorStats> heads;
  ErrorStats overall;
};
ErrorReport compare_tensors(const float* got, const float* want, int64_t rows, int64_t heads, int64_t dim);
nlohmann::json to_json(const ErrorStats& e);

struct HeadQuality {
  int64_t head = 0;
  double density = 0;                    // kept / causally visible blocks of this head
  double recall_mean = 0, recall_min = 0;  // over the rows that see a key
  ErrorStats error;                      // sparse output vs dense output
};
struct QualityReport {
  std::vector<HeadQuality> heads;
  double recall_mean = 0, recall_min = 0;
  ErrorStats error;
  MaskStats mask;
};

// The dense attention output with the same causal flag (the reference every mask is compared to).
std::vector<float> dense_output(const AttentionProblem& p, const MaskShape& shape, bool causal, const float* q,
                                const float* k, const float* v, int threads = 0, ProgressMeter* progress = nullptr);
// q, k, v: f32 BSHD. `dense` (optional) is dense_output for the same inputs (sweeps reuse it).
QualityReport evaluate_mask(const AttentionProblem& p, const BlockMask& mask, const float* q, const float* k,
                            const float* v, const std::vector<float>* dense = nullptr, int threads = 0);
// The mask dense_output runs: every block kept, dense heads, batch 1, `causal` applied.
BlockMask dense_mask_like(const MaskShape& shape, bool causal);
// The report from outputs computed elsewhere (the CUDA path, kernels/quality_cuda.h): `sparse` and
// `dense` outputs [total_q, heads, dim], and per-row recall laid out as row_recall returns it.
QualityReport quality_report(const AttentionProblem& p, const BlockMask& mask, const float* sparse, const float* dense,
                             const std::vector<double>& recall);
// Softmax recall from the log-sum-exps of the sparse and the dense pass ([B, H, q_len] each): the kept
// share of a row's mass is exp(lse_sparse - lse_dense). NaN where the dense row sees no key, as
// row_recall.
std::vector<double> recall_from_lse(const std::vector<float>& lse_sparse, const std::vector<float>& lse_dense);
nlohmann::json to_json(const QualityReport& r);

}  // namespace bsattn
