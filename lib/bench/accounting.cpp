#include "lib/bench/accounting.h"

#include "lib/varlen/varlen.h"

#include "lib/error.h"
#include "lib/mask_stats.h"

namespace bsattn::bench {

const char* pass_name(Pass p) {
  switch (p) {
    case Pass::Fwd: return "fwd";
    case Pass::Bwd: return "bwd";
    case Pass::FwdBwd: return "fwd+bwd";
  }
  return "?";
}

Pass parse_pass(const std::string& s) {
  if (s == "fwd") return Pass::Fwd;
  if (s == "bwd") return Pass::Bwd;
  if (s == "fwd+bwd" || s == "fwdbwd") return Pass::FwdBwd;
  throw UsageError("--pass '" + s + "': allowed are fwd, bwd, fwd+bwd");
}

WorkCount attention_work(const AttentionProblem& p, const BlockMask& mask, Pass pass) {
  p.validate(mask);
  if (p.varlen()) {  // each sequence on its own: its length, its blocks (lib/varlen/varlen.h)
    WorkCount w;
    for (int64_t b = 0; b < p.batch; ++b) {
      AttentionProblem one = p;
      one.cu_seqlens_q.clear(), one.cu_seqlens_k.clear();
      one.batch = 1;
      one.q_len = p.cu_seqlens_q[size_t(b) + 1] - p.cu_seqlens_q[size_t(b)];
      one.kv_len = p.cu_seqlens_k[size_t(b) + 1] - p.cu_seqlens_k[size_t(b)];
      WorkCount x = attention_work(one, crop_sequence_mask(mask, b, one.q_len), pass);
      w.computed_pairs += x.computed_pairs, w.dense_pairs += x.dense_pairs;
      w.flops_computed += x.flops_computed, w.flops_dense_equiv += x.flops_dense_equiv, w.bytes_min += x.bytes_min;
    }
    return w;
  }
  MaskStats st = mask_stats(mask);
  // A batch-1 mask broadcasts: its pairs count once per batch entry.
  int64_t reps = mask.shape.batch == 1 ? p.batch : 1;
  WorkCount w;
  w.computed_pairs = st.computed_pairs * reps;
  w.dense_pairs = st.dense_pairs * reps;
  double fwd = 4.0 * double(p.head_dim), mult = pass == Pass::Fwd ? 1.0 : pass == Pass::Bwd ? 2.5 : 3.5;
  w.flops_computed = fwd * double(w.computed_pairs) * mult;
  w.flops_dense_equiv = fwd * double(w.dense_pairs) * mult;

  double e = double(elem_size(p.dtype));
  double q = double(p.batch) * double(p.q_len) * double(p.heads_q) * double(p.head_dim);
  double kv = double(p.batch) * double(p.kv_len) * double(p.heads_kv) * double(p.head_dim);
  double lse = 4.0 * double(p.batch) * double(p.heads_q) * double(p.q_len);
  double csr = 4.0 * double(mask.shape.batch * mask.shape.heads * mask.shape.mq()) + 4.0 * double(st.kept_blocks);
  double fwd_bytes = e * (q + 2 * kv + q) + lse + csr;           // read Q K V, write O and LSE
  double bwd_bytes = e * (q + 2 * kv + 2 * q + q + 2 * kv) + lse + csr;  // read Q K V O dO LSE, write dQ dK dV
  w.bytes_min = pass == Pass::Fwd ? fwd_bytes : pass == Pass::Bwd ? bwd_bytes : fwd_bytes + bwd_bytes;
  return w;
}

}  // namespace bsattn::bench
