#include "apps/bsattn/hstu_cli.h"

#include "lib/error.h"

namespace bsattn::app {

void add_hstu_options(CLI::App& sub, HstuCli& o, const std::string& g) {
  sub.add_option("--rab-pos", o.rab_pos, "HSTU (--score silu): relative position bias table .npy, float32 [Hq,N] or [N]: "
                 "bias pos[h, min(|i-j|, N-1)]")->group(g);
  sub.add_option("--rab-ts", o.rab_ts, "HSTU: timestamp bias table .npy, float32 [Hq,Nb] or [Nb], indexed by HSTU's bucket "
                 "floor(ln(max(|t[i+1]-t[j]|,1))/0.301) clamped to Nb-1 (needs --timestamps)")->group(g);
  sub.add_option("--timestamps", o.timestamps, "HSTU: one timestamp per token .npy ([total] or [B,S], int or float)")->group(g);
  sub.add_option("--rab", o.rab, "HSTU: a dense bias .npy, float32 [Hq,Sq,Sk] (positions within each sequence), added to the others")->group(g);
  sub.add_option("--gate-u", o.gate_u, "HSTU: u-gating, O * U with U .npy of the shape of O")->group(g);
}

HstuBias load_hstu_bias(const HstuCli& o, int64_t total, int64_t heads, int64_t q_len, int64_t kv_len) {
  if (o.rab_ts.empty() != o.timestamps.empty())
    throw UsageError(o.rab_ts.empty() ? "--timestamps is only read with --rab-ts (the timestamp bias table)"
                                      : "--rab-ts needs --timestamps (one timestamp per token)");
  HstuBias b;
  if (!o.rab_pos.empty()) b.pos = load_bias_table(o.rab_pos, heads, b.pos_len, "--rab-pos");
  if (!o.rab_ts.empty()) {
    b.ts = load_bias_table(o.rab_ts, heads, b.ts_buckets, "--rab-ts");
    b.timestamps = load_timestamps(o.timestamps, total, "--timestamps");
  }
  if (!o.rab.empty()) b.dense = load_dense_bias(o.rab, heads, q_len, kv_len, "--rab");
  return b;
}

}  // namespace bsattn::app
