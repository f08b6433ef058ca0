// NSA (native sparse attention, Yuan et al. 2025) as one computation over Q/K/V (softmax, causal), per
// query token t and query head h (docs/nsa.md has the definition with every parameter):
//
//   compressed  K/V pooled into blocks of `block` tokens every `stride` tokens (mean, or a given weight per
//               position), Kc_i = sum_j w_j K[i*stride + j]; query t attends over the blocks that end at or
//               before t (i*stride + block - 1 <= t): o_cmp, and the probabilities p_cmp[i].
//   selected    key blocks of `select` tokens; block j's importance is the sum of p_cmp[i] over the
//               compressed blocks i whose tokens overlap it, summed over the query heads of the GQA group
//               (and over the `qblock` queries of a query block), so the group shares one selection. The
//               `init` first blocks and the `local` blocks ending at the query's block are always taken,
//               then the most important other visible blocks (ties: the earlier) up to `topn` blocks in
//               all; causal attention over their tokens: o_slc.
//   window      causal attention over the query's own `select` block and the window/select - 1 before it
//               (the window rounded up to whole blocks, the block-sparse forward's granularity): o_win.
//   output      O = g_cmp * o_cmp + g_slc * o_slc + g_win * o_win with per-token, per-head gates (a file,
//               sigmoid of given logits, or 1/3 each).
//
// On the CPU backend, the compressed branch and the selection are computed here in float64 and the selected
// and window branches (block masks, block_q = qblock, block_kv = select) by the CPU reference forward; on
// the cuda backend every step runs on the GPU (lib/nsa/nsa_gpu.h), this file's float64 path being its
// reference.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/attention.h"
#include "lib/mask.h"
#include "lib/mask_stats.h"
#include "lib/quality/quality.h"

namespace bsattn {

struct NsaParams {
  int64_t block = 64;    // compression block length l
  int64_t stride = 32;   // compression stride d (<= block)
  int64_t select = 64;   // selection block size l' (the masks' block_kv)
  int64_t topn = 16;     // selected blocks per query, forced ones included
  int64_t window = 512;  // sliding window in tokens (rounded up to select blocks)
  int64_t init = 1;      // forced initial blocks
  int64_t local = 2;     // forced local blocks (ending at the query's block)
  int64_t qblock = 1;    // queries sharing one selection (1: per token, exact NSA; 64/128: GPU kernels' block_q)
  std::vector<double> pool;  // per-position pooling weights (block entries); empty: mean
  std::string pool_file;     // where `pool` came from (recorded)
  nlohmann::json to_json() const;
};

// "block=64,stride=32,topn=16,window=512[,select=64,init=1,local=2,qblock=1]" (UsageError naming `what`
// for an unknown key, a bad number or a range: 1 <= stride <= block, select, qblock >= 1, topn >= 1,
// window >= 1, init, local >= 0).
NsaParams parse_nsa_spec(const std::string& text, const std::string& what);
// A 1-D float .npy of `block` pooling weights (UsageError otherwise).
std::vector<double> load_nsa_pool(const std::string& path, int64_t block, const std::string& what);
// Gates [rows, Hq, 3] (cmp, slc, win) from a float .npy of that shape ([B,S,Hq,3] or [total,Hq,3]);
// `logits`: sigmoid applied. UsageError naming the file for a shape or non-finite value.
std::vector<float> load_nsa_gates(const std::string& path, int64_t rows, int64_t heads, bool logits,
                                  const std::string& what);

struct NsaBranches {
  std::vector<float> out;                 // [B*S, Hq, D] the gated sum
  std::vector<float> cmp, slc, win;       // each branch alone
  BlockMask select_mask, window_mask;     // [B,Hq,ceil(S/qblock),ceil(S/select)], causal (varlen: per sequence)
  int64_t compressed_blocks = 0;          // Nc (varlen: summed over the sequences)
};

struct NsaOptions {
  AttentionOptions backend;  // cpu: everything on the CPU; cuda: every step on the GPU (lib/nsa/nsa_gpu.h)
  ElemType cuda_dtype = ElemType::BF16;  // cuda: Q/K/V rounded to this 16-bit type
  int threads = 0;
};

// p: q_len == kv_len, softmax (UsageError otherwise); q, k, v f32 BSHD. gates: [B*S, Hq, 3] or null (1/3
// each). Varlen (equal q/k offsets): each sequence alone, outputs packed, the masks embedded per sequence
// (their statistics: varlen_mask_stats).
NsaBranches nsa_forward(const AttentionProblem& p, const float* q, const float* k, const float* v,
                        const NsaParams& np, const float* gates, const NsaOptions& opt = {});
// The window branch's mask: rows of qblock queries, key blocks of `select` tokens, the window's W =
// ceil(window/select) blocks ending at the block of the row's first query, up to the block of its last.
BlockMask nsa_window_mask(const AttentionProblem& p, const NsaParams& np);

// NSA against exact dense causal attention on the same inputs (CPU float32): the gated output and each
// branch alone, per head and overall, with the selected and window masks' statistics (per sequence when
// varlen). What `analyze --nsa` reports.
struct NsaQuality {
  ErrorReport out, cmp, slc, win;
  MaskStats select_stats, window_stats;
  int64_t compressed_blocks = 0;
};
NsaQuality nsa_quality(const AttentionProblem& p, const float* q, const float* k, const float* v, const NsaParams& np,
                       const float* gates, int threads = 0);
nlohmann::json to_json(const NsaQuality& r);

}  // namespace bsattn
