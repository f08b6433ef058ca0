// Dilated attention (LongNet), exact at token level, computed by the block-sparse forward and backward.
//
// Definition. A branch (w, r) cuts the sequence into segments of w tokens (the last one shorter when S is
// not a multiple of w). Query head h has the offset o = h mod r; inside a segment starting at s0, the
// tokens i with (i - s0) mod r == o attend to each other (causal: key <= query). Branch b gives each
// token it selects an output O_b and a log-sum-exp L_b; a token is in several branches' selections, and
// its output is their merge by softmax denominators:
//   O = sum_b exp(L_b - L) O_b,  L = log sum_b exp(L_b),
// which is softmax attention over the multiset union of the branches' keys (a key two branches share
// counts twice, as in LongNet). A branch that does not select a token contributes nothing to it; a token
// that no branch selects for head h (possible when r > number of heads, or r does not divide the heads)
// gets O = 0 and LSE = -inf, the convention of an empty mask row. r must divide w (w/r tokens per class),
// so that i mod r and (i - s0) mod r agree. K/V heads follow GQA (query head h reads kv head
// h / (Hq/Hkv)); the selection is the query head's.
//
// Construction. When r divides S and the r * Hq virtual heads below fit a grid dimension (lib/sizes.h's
// kMaxGridDim; otherwise the residue form), the branch needs no permutation: Q viewed as [B*S/r, r*Hq, D]
// (the same memory) puts token t = r*u + c of head h at row u, "virtual head" c*Hq + h, so the tokens of
// class c of a segment are one run of w/r consecutive rows of virtual head c*Hq + h (K/V likewise with Hkv,
// and GQA maps virtual head c*Hq + h to c*Hkv + h/(Hq/Hkv), the class's copy of its K/V head). Each run is
// one sequence of a varlen batch and the mask ([runs, r*Hq, Mq, Mk]) keeps a run's blocks for the virtual
// heads c*Hq + h whose offset h mod r is c: the branch is one block-sparse forward on the inputs as they are,
// its O already in the original order and its LSE [r*Hq, B*S/r] (the strided form). Otherwise
// residue_order(S, w, r) (lib/curves/residue.cpp) lists each segment's tokens class by class, each (segment,
// class) run is one sequence, the mask ([runs, Hq, Mq, Mk]) keeps a run's blocks for the heads whose offset
// is the run's class, and Q/K/V are permuted into that order (the residue form). Either way the branch is
// exact for any lengths (tails and runs shorter than a block are the varlen sequences' partial blocks). The
// branches are merged row by row as above. The backward of the merge is the branches' own backward run with
// the merged O and LSE in place of their own (the merge is one softmax over the union, so P = exp(S - L) and
// D = rowsum(dO * O) are those of the union), and the gradients of the branches add up.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/attention.h"
#include "lib/curves/order.h"
#include "lib/mask.h"

namespace bsattn::dilated {

struct Branch {
  int64_t segment = 0, rate = 1;
};

struct DilatedSpec {
  std::vector<Branch> branches;
  bool causal = false;               // causal within each segment
  std::string str() const;           // "2048:1,4096:2"
  nlohmann::json to_json() const;    // {"branches": [{"segment":..,"rate":..}], "causal": .., "spec": str()}
};

constexpr int kMaxBranches = 16;

// "SEGMENT:RATE[,SEGMENT:RATE...]": 1 to kMaxBranches pairs, segment >= 1, rate >= 1 dividing the
// segment. UsageError naming `what` with what is allowed.
DilatedSpec parse_dilated(const std::string& text, bool causal, const std::string& what = "--dilated");

inline int64_t head_offset(int64_t head, int64_t rate) { return head % rate; }

// One branch as a varlen block-sparse problem: strided, or on the residue-permuted sequence.
struct BranchPlan {
  Branch branch;
  bool strided = false;          // r divides S: the inputs viewed as [B*S/r, r*H, D], no permutation
  curves::Perm perm;             // residue form: position j of a sequence holds token perm[j]; else empty
  AttentionProblem problem;      // varlen, one sequence per non-empty run; strided: heads r*Hq / r*Hkv
  BlockMask mask;                // [runs, heads of the problem, Mq, Mk]
  std::vector<int64_t> run_class;  // residue form: each run's class (strided: every run holds all classes)
  // Where token g (0..B*S-1, original order) of head h of a tensor with `heads` heads is in the branch's
  // layout [rows, heads * (strided ? r : 1), ...]: (row, virtual head). rows = B*S / (strided ? r : 1).
  struct Slot {
    int64_t row, head;
  };
  Slot slot(int64_t g, int64_t h, int64_t heads, int64_t seq) const {
    if (strided) return {g / branch.rate, (g % branch.rate) * heads + h};
    return {g - g % seq + inv[size_t(g % seq)], h};
  }
  int64_t rows(int64_t tokens) const { return strided ? tokens / branch.rate : tokens; }
  int64_t heads(int64_t h) const { return strided ? h * branch.rate : h; }
  std::vector<int64_t> inv;      // residue form: the position of token t in the order (perm's inverse)
};

// The problem `p` (fixed-length, q_len == kv_len, softmax) checked for dilated attention: UsageError
// naming what is wrong.
void check_problem(const AttentionProblem& p, const DilatedSpec& spec);
BranchPlan plan_branch(const AttentionProblem& p, const Branch& b, bool causal, int64_t block_q, int64_t block_kv);

// The (q, k) pairs the definition computes, summed over batch, heads and branches (FLOPs = 4 * D * pairs).
int64_t dilated_pairs(const AttentionShape& s, const DilatedSpec& spec);
// Whether branch b relates query i and key k of head h (fixed-length positions in 0..S-1).
inline bool branch_covers(const Branch& b, bool causal, int64_t h, int64_t i, int64_t k) {
  if (i / b.segment != k / b.segment || (causal && k > i)) return false;
  const int64_t o = head_offset(h, b.rate);
  return i % b.rate == o && k % b.rate == o;
}

// Token rows of `row_bytes` (heads * head_dim elements), `batch` sequences of perm.size() tokens each:
// dst row b*S + j = src row b*S + perm[j] (a residue order per branch, a curve order before dilation).
std::vector<uint8_t> permute_token_rows(const void* src, size_t row_bytes, int64_t batch, const curves::Perm& perm);

struct DilatedOptions {
  int64_t block_q = 128, block_kv = 128;
  AttentionOptions attention;  // backend (cpu / cuda) and the cuda kernel options
  bool f64 = false;            // cpu: compute in float64 (results narrowed to float32)
  int threads = 0;             // cpu threads (0: all)
};

struct DilatedResult {
  std::vector<float> out;         // [B*S, Hq, D]
  std::vector<float> lse;         // [B, Hq, S], natural log; -inf where no branch selects the token
  std::vector<float> dq, dk, dv;  // with dO: the shapes of Q, K, V
};

// The forward (and, with `dout`, the backward) in the original token order. `in` holds p.dtype
// elements, BSHD, fixed-length; dO is f32 with the shape of Q. The CPU backend keeps the branches and the
// merge in float32 (float64 with opt.f64) until the results are returned; the cuda backend computes the
// forward on the GPU (lib/dilated/dilated_gpu.h: gathers, branches, merge; O rounded to the inputs' 16-bit
// type) and, with dO, each branch's backward on the GPU with the gradients added up on the host.
DilatedResult dilated_attention(const AttentionProblem& p, const DilatedSpec& spec, const AttentionInputs& in,
                                const float* dout, const DilatedOptions& opt);

}  // namespace bsattn::dilated
