// Dilated attention's forward with every step on the GPU, registered by kernels/ (kernels/dilated_gpu.cu)
// when the build has CUDA, so that lib/dilated reaches it without linking CUDA.
//
// Q/K/V are uploaded once in the original token order. Per branch: a strided branch (its rate divides S)
// reads them as they are (viewed as [B*S/r, r*H, D], lib/dilated/dilated.h); a residue-form branch first
// has one kernel gather the token rows into its residue order, each row only for the heads that read it
// (a query head reads the tokens of its offset's class). The block-sparse forward runs the branch as its
// varlen problem (the row CSR built on the GPU once, at upload). Last, one kernel merges the branches: per
// (token, head) it reads each branch's LSE and output row at the token's slot (strided: row t/r of
// virtual head (t mod r)*H + h, O already in the original order; residue form: the inverse permutation,
// on the fly) and writes
// O = sum_b exp(L_b - L) O_b and L = log sum_b exp(L_b) in the original order, O in the inputs' 16-bit
// type (as the forward's O), L in float32 ([B, Hq, S]; -inf and O = 0 where no branch selects the token).
#pragma once
#include <string>
#include <vector>

#include "lib/bench/stats.h"
#include "lib/dilated/dilated.h"

namespace bsattn::dilated {

struct DilatedGpuTiming {
  bench::TimingStats total;     // gathers, branches and merge in each sample (what a caller waits for)
  bench::TimingStats gather;    // the gathers alone (residue-form branches; an empty step when all are strided)
  bench::TimingStats branches;  // the branches' forwards alone, on inputs gathered beforehand
  bench::TimingStats merge;     // the merge alone
  double sm_clock_mhz = 0;      // measured while busy (kernels/timing.h)
  std::string kernel;           // the forward kernel the branches run
};

class DilatedGpu {
 public:
  virtual ~DilatedGpu() = default;
  // The forward of p (16-bit dtype, fixed length, q_len == kv_len; check_problem passed) given its
  // branches' plans. UsageError for what the kernels cannot run, before any GPU work; RuntimeFailure
  // without a GPU or for CUDA errors. out and lse as DilatedResult (float32, original order).
  virtual DilatedResult forward(const AttentionProblem& p, const std::vector<BranchPlan>& plans,
                                const AttentionInputs& in, const AttentionOptions& opt) = 0;
  // The same computation timed (CUDA events, L2 flushed before every sample; lib/bench/stats.h's loop).
  virtual DilatedGpuTiming time(const AttentionProblem& p, const std::vector<BranchPlan>& plans,
                                const AttentionInputs& in, const AttentionOptions& opt,
                                const bench::TimingOptions& timing) = 0;
};

// kernels/ registers its one instance (a static object); nullptr in a build without CUDA.
void register_dilated_gpu(DilatedGpu* g);
DilatedGpu* dilated_gpu();

}  // namespace bsattn::dilated
