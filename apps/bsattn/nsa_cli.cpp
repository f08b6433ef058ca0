#include "apps/bsattn/nsa_cli.h"

#include "lib/error.h"

namespace bsattn::app {

void add_nsa_options(CLI::App& sub, NsaCli& o, bool with_gates, const std::string& g) {
  sub.add_option("--nsa", o.spec, "NSA instead of a mask: compressed + selected + sliding-window attention, causal, softmax; "
                 "block=64,stride=32,select=64,topn=16,window=512,init=1,local=2,qblock=1 (defaults; docs/nsa.md)")->group(g);
  sub.add_option("--nsa-pool", o.pool, "NSA: per-position pooling weights of a compression block (.npy, float, [block]; default: mean)")->group(g);
  if (!with_gates) return;
  sub.add_option("--nsa-gates", o.gates, "NSA: gates (.npy float32 [B,S,Hq,3] or [total,Hq,3]: cmp, slc, win; default 1/3 each)")->group(g);
  sub.add_option("--nsa-gate-logits", o.gate_logits, "NSA: gate logits, the same shape; the gates are their sigmoid")->group(g);
}

NsaParams nsa_params(const NsaCli& o) {
  if (!o.requested()) {
    if (!o.pool.empty() || !o.gates.empty() || !o.gate_logits.empty())
      throw UsageError("--nsa-pool/--nsa-gates/--nsa-gate-logits need --nsa SPEC");
    return {};
  }
  NsaParams p = parse_nsa_spec(o.spec, "--nsa");
  if (!o.pool.empty()) {
    p.pool = load_nsa_pool(o.pool, p.block, "--nsa-pool");
    p.pool_file = o.pool;
  }
  if (!o.gates.empty() && !o.gate_logits.empty()) throw UsageError("--nsa-gates and --nsa-gate-logits: give one");
  return p;
}

std::vector<float> nsa_gates(const NsaCli& o, int64_t rows, int64_t heads) {
  if (!o.gates.empty()) return load_nsa_gates(o.gates, rows, heads, false, "--nsa-gates");
  if (!o.gate_logits.empty()) return load_nsa_gates(o.gate_logits, rows, heads, true, "--nsa-gate-logits");
  return {};
}

}  // namespace bsattn::app
