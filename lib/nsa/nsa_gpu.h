// NSA's forward with every step on the GPU, registered by kernels/ (kernels/nsa_gpu.cu) when the build has
// CUDA, so that lib/nsa reaches it without linking CUDA. The CPU path of lib/nsa/nsa.h (compressed branch
// and selection in float64) stays the reference it is tested against (tests/gpu/test_nsa_gpu.cpp).
//
// The steps, on one stream, for a fixed-length batch (varlen: nsa_forward calls it per sequence):
//   1. compression   K/V pooled into blocks (mean or the given weights), f32 sums rounded to the 16-bit type
//                    (as a model keeps them), one copy per query head of the group;
//   2. compressed    scores = scale * Q Kc^T by cuBLAS (16-bit in, f32 out, per query head), over chunks of
//                    at most 4096 queries, each up to its last query's visible compressed blocks;
//   3. selection     one CTA per (query row, KV group): each row's softmax over its visible compressed
//                    blocks (P, 16-bit, for step 4), the group's and row's probability mass per compressed
//                    block, the importance of each key block, the top-n blocks with the forced ones
//                    (kernels/nsa_select.h), written as the selected mask's bitmap; its row CSR by
//                    launch_row_csr;
//   4. o_cmp = P Vc by cuBLAS (f32 out);
//   5. the selected and the window branches: the block-sparse forward on the GPU CSRs (the window mask,
//                    fixed by the shape, is built on the host once per problem);
//   6. the gates: O = g_cmp o_cmp + g_slc o_slc + g_win o_win in the 16-bit type.
// Limits: 16-bit Q/K/V, the head dims the forward takes, qblock and select 64 or 128 (its blocks).
#pragma once
#include <string>

#include "lib/bench/stats.h"
#include "lib/nsa/nsa.h"

namespace bsattn {

struct NsaGpuTiming {
  bench::TimingStats total;       // steps 1-6 in each sample (what a caller waits for)
  bench::TimingStats selection;   // steps 1-4 alone (compression, compressed branch, selection, CSR)
  bench::TimingStats branches;    // step 5 alone
  bench::TimingStats gate;        // step 6 alone
  double sm_clock_mhz = 0;
  std::string kernel;             // the forward kernel of the two block-sparse branches
};

class NsaGpu {
 public:
  virtual ~NsaGpu() = default;
  // What the GPU path cannot run (UsageError naming it); needs no GPU. p: fixed-length, self-attention,
  // softmax, GQA; p.dtype the 16-bit type of the inputs.
  virtual void check(const AttentionProblem& p, const NsaParams& np, const AttentionOptions& opt) const = 0;
  // in: host Q/K/V of p.dtype, BSHD; gates [B*S, Hq, 3] (cmp, slc, win) or null (1/3 each). The result's
  // out, cmp, slc, win are float32 copies of the GPU's (out, slc, win in the 16-bit type; cmp float32), the
  // masks as lib/nsa/nsa.h builds them. RuntimeFailure without a GPU or for CUDA errors.
  virtual NsaBranches forward(const AttentionProblem& p, const NsaParams& np, const AttentionInputs& in,
                              const float* gates, const AttentionOptions& opt) = 0;
  virtual NsaGpuTiming time(const AttentionProblem& p, const NsaParams& np, const AttentionInputs& in,
                            const float* gates, const AttentionOptions& opt, const bench::TimingOptions& timing) = 0;
};

// kernels/ registers its one instance; nullptr in a build without CUDA.
void register_nsa_gpu(NsaGpu* g);
NsaGpu* nsa_gpu();

}  // namespace bsattn
