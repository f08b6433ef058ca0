#include "lib/ring/ring_bench.h"

#include <algorithm>
#include <cstdio>

#include "lib/error.h"
#include "lib/mask_stats.h"
#include "lib/rng.h"
#include "lib/spec.h"

namespace bsattn::ring {

const char* scaling_name(Scaling s) { return s == Scaling::Weak ? "weak" : "strong"; }

std::vector<Scaling> parse_scaling(const std::string& s) {
  if (s == "strong") return {Scaling::Strong};
  if (s == "weak") return {Scaling::Weak};
  if (s == "both") return {Scaling::Strong, Scaling::Weak};
  throw UsageError("--scaling " + s + ": allowed: strong, weak, both");
}

std::vector<int> parse_rank_list(const std::string& s) {
  std::vector<int> v;
  for (const std::string& item : split_list(s, "--ranks", "1,2,4,8")) {
    size_t used = 0;
    long long n = -1;
    try {
      n = std::stoll(item, &used);
    } catch (...) {
      used = 0;
    }
    if (used != item.size() || item.empty() || n < 1 || n > kMaxRanks)
      throw UsageError("--ranks " + s + ": '" + item + "' is not a rank count; allowed: a list of integers 1.." +
                       std::to_string(kMaxRanks) + " in ascending order, e.g. 1,2,4,8");
    if (!v.empty() && n <= v.back())
      throw UsageError("--ranks " + s + ": rank counts must ascend without repeats, e.g. 1,2,4,8");
    v.push_back(int(n));
  }
  return v;
}

namespace {

std::vector<float> seeded_values(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& e : x) e = float(rng.uniform() * 2 - 1);
  return x;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

std::vector<nlohmann::json> ring_scaling(const AttentionProblem& base, const RingMaskFactory& make_mask,
                                         const RingBenchOptions& opt,
                                         const std::function<void(const std::string&)>& progress) {
  if (opt.ranks.empty()) throw UsageError("--ranks: give rank counts, e.g. 1,2,4,8");
  if (opt.reps < 1 || opt.warmup < 0) throw UsageError("ring bench: reps must be >= 1 and warmup >= 0");
  const int n0 = opt.ranks.front();
  std::vector<nlohmann::json> records;
  BlockMask mask;
  std::vector<float> q, k, v;
  int64_t inputs_len = -1;
  for (Scaling sc : opt.scaling) {
    double t0 = 0, per_rank_rate0 = 0;
    for (int n : opt.ranks) {
      AttentionProblem p = base;
      if (sc == Scaling::Weak) p.q_len = p.kv_len = base.q_len * n / n0;
      // One mask and one set of inputs per sequence length (strong scaling: the same for every N).
      if (p.q_len != inputs_len) {
        const int64_t nq = p.batch * p.q_len * p.heads_q * p.head_dim, nk = p.batch * p.kv_len * p.heads_kv * p.head_dim;
        mask = make_mask(p.q_len);
        q = seeded_values(nq, opt.seed * 4 + 1), k = seeded_values(nk, opt.seed * 4 + 2), v = seeded_values(nk, opt.seed * 4 + 3);
        inputs_len = p.q_len;
      }
      RingConfig cfg = opt.ring;
      cfg.ranks = n;
      cfg.serialize_steps = cfg.transport == TransportKind::Loopback;
      if (progress)
        progress("ring bench: " + std::string(scaling_name(sc)) + " scaling, " + std::to_string(n) + " rank(s), S=" +
                 std::to_string(p.q_len));
      std::vector<double> ring_t, wall_t, compute_t, copy_t;
      RingResult last;
      for (int rep = 0; rep < opt.warmup + opt.reps; ++rep) {
        last = ring_attention(p, mask, q.data(), k.data(), v.data(), nullptr, cfg);
        if (rep < opt.warmup) continue;
        double compute = 0, copy = 0;
        for (const RankReport& r : last.ranks) compute = std::max(compute, r.step_seconds), copy = std::max(copy, r.copy_seconds);
        const bool nccl = cfg.transport == TransportKind::Nccl;
        ring_t.push_back(nccl ? last.seconds : compute);
        wall_t.push_back(last.seconds);
        compute_t.push_back(compute);
        copy_t.push_back(copy);
      }
      int64_t bytes_max = 0, bytes_total = 0, pairs = 0;
      size_t mem_max = 0;
      int skipped = 0, computed = 0;
      for (const RankReport& r : last.ranks) {
        bytes_max = std::max(bytes_max, r.bytes_sent);
        bytes_total += r.bytes_sent;
        mem_max = std::max(mem_max, r.memory_bytes);
        pairs += r.computed_pairs;
        skipped += r.steps_skipped, computed += r.steps_computed;
      }
      const double t = median(ring_t), wall = median(wall_t), compute_max = median(compute_t);
      const double rate = double(pairs) / (double(n) * t);
      if (n == n0) t0 = t, per_rank_rate0 = rate;
      nlohmann::json rec = {
          {"scaling", scaling_name(sc)}, {"ranks", n}, {"layout", ring_layout_name(cfg.layout)},
          {"transport", last.transport}, {"engine", last.engine}, {"batch", p.batch}, {"seq", p.q_len},
          {"heads", p.heads_q}, {"heads_kv", p.heads_kv}, {"head_dim", p.head_dim}, {"block_q", mask.shape.block_q},
          {"block_kv", mask.shape.block_kv}, {"causal", mask.causal}, {"mask", mask.spec},
          {"pair_density", mask_stats(mask).pair_density()}, {"computed_pairs", pairs},
          {"steps_computed", computed}, {"steps_skipped", skipped}, {"ring_s", t}, {"wall_s", wall},
          {"rank_compute_s", compute_max}, {"copy_s", median(copy_t)}, {"bytes_sent_per_rank", bytes_max},
          {"bytes_sent_total", bytes_total}, {"memory_per_rank_bytes", mem_max}, {"reps", opt.reps},
          {"seed", opt.seed}};
      if (sc == Scaling::Strong) {
        rec["speedup"] = t0 / t;
        rec["efficiency"] = double(n0) * t0 / (double(n) * t);
      } else {
        rec["efficiency"] = rate / per_rank_rate0;
      }
      rec["base_ranks"] = n0;
      if (last.transport == std::string("loopback")) {
        rec["communication"] = "loopback";
      } else {
        const double exposed = std::max(0.0, wall - compute_max);
        rec["exposed_communication_s"] = exposed;
        rec["communication"] = n == 1 ? "none" : exposed < 0.05 * wall ? "hidden" : "exposed";
      }
      records.push_back(rec);
    }
  }
  return records;
}

std::string ring_bench_markdown(const std::vector<nlohmann::json>& records) {
  std::string s =
      "| scaling | ranks | S | time (ms) | speedup | efficiency | rank compute (ms) | copies (ms) | MB sent/rank | "
      "memory/rank (MB) | steps computed/skipped | communication |\n"
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n";
  char line[512];
  for (const auto& r : records) {
    const std::string speed = r.contains("speedup") ? std::to_string(r["speedup"].get<double>()).substr(0, 5) + "x" : "-";
    std::snprintf(line, sizeof line, "| %s | %d | %lld | %.3f | %s | %.2f | %.3f | %.3f | %.2f | %.1f | %d/%d | %s |\n",
                  r["scaling"].get<std::string>().c_str(), r["ranks"].get<int>(), (long long)r["seq"].get<int64_t>(),
                  r["ring_s"].get<double>() * 1e3, speed.c_str(), r["efficiency"].get<double>(),
                  r["rank_compute_s"].get<double>() * 1e3, r["copy_s"].get<double>() * 1e3,
                  double(r["bytes_sent_per_rank"].get<int64_t>()) / 1e6,
                  double(r["memory_per_rank_bytes"].get<size_t>()) / 1e6, r["steps_computed"].get<int>(),
                  r["steps_skipped"].get<int>(), r["communication"].get<std::string>().c_str());
    s += line;
  }
  return s;
}

}  // namespace bsattn::ring
