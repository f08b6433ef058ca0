// The exact oracle of block-sparse attention quality: how much dense attention each block holds.
#pragma once
#include <cstdint>
#include <vector>

#include "lib/attention.h"

namespace bsattn {

// [B, Hq, Mq, Mk] (Mq = ceil(q_len/block_q), Mk = ceil(kv_len/block_kv), q_len/kv_len the maxima when
// varlen): the dense attention mass of block (i,j), averaged over the rows of row block i that exist
// and see at least one key (so each block row sums to 1 over j, or to 0 when no row sees a key).
// Softmax: probability mass of softmax(scale*QK^T). SiLU: share of the absolute score mass
// |SiLU(scale*QK^T)| of each row. q, k: f32 BSHD (packed when varlen), p.heads_q / p.heads_kv
// heads; `causal` is bottom-right aligned per sequence. Computed block by block, multithreaded.
std::vector<double> dense_block_mass(const AttentionProblem& p, const float* q, const float* k, bool causal,
                                     int64_t block_q, int64_t block_kv);

// Per-row share of the dense mass inside the kept blocks of `mask` (attention recall), [B, Hq, q_len]
// (varlen: rows past a sequence's length are NaN); rows that see no key are NaN. The mask's batch is
// 1 or p.batch; its sizes must match p (UsageError otherwise).
std::vector<double> row_recall(const AttentionProblem& p, const float* q, const float* k, const BlockMask& mask);

// Mean and worst row of row_recall's output per head and over all heads, over the rows that see a key
// (the non-NaN entries); 0 where there are none.
struct RecallSummary {
  struct Part {
    double mean = 0, min = 0;
    int64_t rows = 0;
  };
  std::vector<Part> heads;
  Part overall;
};
RecallSummary summarize_recall(const std::vector<double>& recall, int64_t batch, int64_t heads, int64_t q_len);

}  // namespace bsattn
