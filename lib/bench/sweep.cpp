#include "lib/bench/sweep.h"

#include "lib/varlen/varlen.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "lib/block_sizes.h"
#include "lib/error.h"
#include "lib/sizes.h"
#include "lib/spec.h"

namespace bsattn::bench {

namespace {

// Patterns may carry their own parameters ("local:window=4"), whose commas would split a list; a
// pattern axis is therefore split on ';' when it holds one, else on ','.
std::vector<std::string> split_patterns(const std::string& text) {
  if (text.find(';') != std::string::npos) return split_list(text, "--pattern", "random;local:window=2", ';');
  if (text.find(':') != std::string::npos && text.find('=') != std::string::npos)
    return {text};  // one spec with parameters
  return split_list(text, "--pattern", "random,local,causal");
}

ElemType parse_dtype(const std::string& s) {
  if (s == "bf16") return ElemType::BF16;
  if (s == "f16" || s == "fp16") return ElemType::F16;
  if (s == "f32" || s == "fp32") return ElemType::F32;
  throw UsageError("--dtype '" + s + "': allowed are bf16, f16, f32");
}

// Every integer axis is bounded like the float ones: a value past its limit is refused (with the
// limit in the message) before any configuration is expanded or any buffer sized from it.
void check_positive(const std::vector<int64_t>& v, const std::string& what, int64_t max) {
  if (v.empty()) throw UsageError(what + ": give at least one value");
  for (auto x : v)
    if (x < 1 || x > max)
      throw UsageError(what + ": values must be in [1, " + limit_str(max) + "] (got " + std::to_string(x) + ")");
}

std::string fmt_density(double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", d);
  return buf;
}

}  // namespace

void SweepAxes::set(const std::string& axis, const std::string& text) {
  std::string what = "--" + axis;
  if (axis == "seq") seq = parse_int_axis(text, what, "1024,2048"), check_positive(seq, what, kMaxBenchSeq);
  else if (axis == "head-dim" || axis == "head_dim" || axis == "dim")
    head_dim = parse_int_axis(text, what, "64,128"), check_positive(head_dim, what, kMaxBenchHeadDim);
  else if (axis == "heads") heads = parse_int_axis(text, what, "4,8"), check_positive(heads, what, kMaxBenchHeads);
  else if (axis == "batch") batch = parse_int_axis(text, what, "1,2"), check_positive(batch, what, kMaxBenchBatch);
  else if (axis == "block") block = parse_int_axis(text, what, "64,128"), check_positive(block, what, kMaxBlockSize);
  else if (axis == "kv-heads" || axis == "kv_heads" || axis == "heads-kv" || axis == "heads_kv") {
    kv_heads = parse_int(text, what);
    if (kv_heads < 0 || kv_heads > kMaxBenchHeads)
      throw UsageError(what + " must be in [0, " + limit_str(kMaxBenchHeads) + "] (0: same as --heads)");
  } else if (axis == "density") {
    density = parse_float_axis(text, what, "0.1,0.5");
    if (density.empty()) throw UsageError(what + ": give at least one value");
    for (double d : density)
      if (!(d > 0 && d <= 1.0 + 1e-9)) throw UsageError(what + ": values must be in (0, 1] (got " + fmt_density(d) + ")");
  } else if (axis == "pattern") pattern = split_patterns(text);
  else if (axis == "dtype") {
    dtype = split_list(text, what, "bf16,f16");
    for (auto& d : dtype) parse_dtype(d);
  } else if (axis == "pass") {
    pass = split_list(text, what, "fwd,bwd");
    for (auto& p : pass) parse_pass(p);
  } else if (axis == "score") {
    score = split_list(text, what, "softmax,silu");
    for (auto& s : score)
      if (s != "softmax" && s != "silu") throw UsageError(what + " '" + s + "': allowed are softmax, silu");
  } else if (axis == "rab") {
    rab = split_list(text, what, "none,pos");
    for (auto& r : rab)
      if (r != "none" && r != "pos" && r != "ts" && r != "pos+ts")
        throw UsageError(what + " '" + r + "': allowed are none, pos, ts, pos+ts (HSTU's bias terms), or a list of them");
  } else throw UsageError("unknown sweep axis '" + axis + "'");
}

void SweepAxes::merge_json(const nlohmann::json& j, const std::string& what) {
  if (!j.is_object()) throw UsageError(what + ": a sweep config must be a JSON object");
  static const std::set<std::string> known{"seq",   "head_dim", "dim",     "heads",   "kv_heads", "heads_kv",
                                           "batch", "block",    "density", "pattern", "dtype",    "pass",
                                           "score", "rab"};
  for (auto& [key, value] : j.items()) {
    if (key == "schema" || key == "comment") continue;
    if (key == "gate_u") {
      if (!value.is_boolean()) throw UsageError(what + ": gate_u must be true or false");
      gate_u = value.get<bool>();
      continue;
    }
    if (key == "cu_seqlens") {  // varlen offsets (bench --seqlens / --cu-seqlens); [] for none
      if (!value.is_array()) throw UsageError(what + ": cu_seqlens must be an array of offsets [0, L1, L1+L2, ...]");
      std::vector<int64_t> cu;
      for (auto& x : value) {
        if (!x.is_number_integer()) throw UsageError(what + ": cu_seqlens must hold integers");
        cu.push_back(x.get<int64_t>());
      }
      if (!cu.empty()) check_cu_seqlens(cu, what + ": cu_seqlens");
      cu_seqlens.assign(cu.begin(), cu.end());
      continue;
    }
    if (!known.count(key))
      throw UsageError(what + ": unknown key '" + key +
                       "' (allowed: seq, head_dim, heads, kv_heads, batch, block, density, pattern, dtype, pass, "
                       "score, rab, gate_u)");
    std::string text;
    if (value.is_string()) text = value.get<std::string>();
    else if (value.is_number()) text = value.dump();
    else if (value.is_array()) {
      const char* sep = key == "pattern" ? ";" : ",";
      for (size_t i = 0; i < value.size(); ++i) {
        if (!value[i].is_string() && !value[i].is_number())
          throw UsageError(what + ": '" + key + "' must hold numbers or strings");
        text += (i ? sep : "") + (value[i].is_string() ? value[i].get<std::string>() : value[i].dump());
      }
    } else throw UsageError(what + ": '" + key + "' must be a list, a number or a string");
    try {
      set(key, text);
    } catch (const UsageError& e) {
      throw UsageError(what + ": " + e.what());
    }
  }
}

nlohmann::json SweepAxes::to_json() const {
  return {{"seq", seq},     {"head_dim", head_dim}, {"heads", heads},     {"kv_heads", kv_heads}, {"batch", batch},
          {"block", block}, {"density", density},   {"pattern", pattern}, {"dtype", dtype},       {"pass", pass},
          {"cu_seqlens", cu_seqlens}, {"score", score}, {"rab", rab}, {"gate_u", gate_u}};
}

MaskShape BenchConfig::mask_shape() const {
  MaskShape s;
  s.batch = 1;
  s.heads = shape.heads_q;
  s.q_len = shape.q_len;
  s.kv_len = shape.kv_len;
  s.block_q = s.block_kv = block;
  return s;
}

AttentionProblem BenchConfig::problem() const {
  AttentionProblem p;
  static_cast<AttentionShape&>(p) = shape;
  p.dtype = dtype;
  p.cu_seqlens_q = p.cu_seqlens_k = cu_seqlens;
  if (score == ScoreFn::Silu) p.score = ScoreFn::Silu, p.silu_n = double(shape.q_len);
  return p;
}

std::string BenchConfig::label() const {
  std::string s = pattern;
  if (density_target > 0) s += "@" + fmt_density(density_target);
  s += " B=" + std::to_string(shape.batch) + " H=" + std::to_string(shape.heads_q);
  if (shape.heads_kv != shape.heads_q) s += "/" + std::to_string(shape.heads_kv);
  s += (cu_seqlens.empty() ? " S=" : " varlen total=" + std::to_string(cu_seqlens.back()) + " longest=") +
       std::to_string(seq()) + " D=" + std::to_string(shape.head_dim) + " block=" + std::to_string(block) +
       " " + elem_type_name(dtype) + " " + pass_name(pass);
  if (score == ScoreFn::Silu) s += " silu" + (rab == "none" ? "" : " rab=" + rab) + (gate_u ? " u-gating" : "");
  return s;
}

nlohmann::json BenchConfig::to_json() const {
  return {{"pattern", pattern},
          {"density_target", density_target > 0 ? nlohmann::json(density_target) : nlohmann::json()},
          {"spec", spec},
          {"causal", causal},
          {"batch", shape.batch},
          {"heads", shape.heads_q},
          {"heads_kv", shape.heads_kv},
          {"seq", seq()},
          {"head_dim", shape.head_dim},
          {"block", block},
          {"dtype", elem_type_name(dtype)},
          {"pass", pass_name(pass)},
          {"cu_seqlens", cu_seqlens.empty() ? nlohmann::json() : nlohmann::json(cu_seqlens)},
          {"score", score == ScoreFn::Silu ? "silu" : "softmax"},
          {"rab", rab},
          {"gate_u", gate_u}};
}

std::string BenchConfig::dense_key() const {
  return std::to_string(shape.batch) + "/" + std::to_string(shape.heads_q) + "/" + std::to_string(shape.heads_kv) +
         "/" + std::to_string(seq()) + "/" + std::to_string(shape.head_dim) + "/" + std::to_string(block) + "/" +
         elem_type_name(dtype) + "/" + pass_name(pass) + (causal ? "/causal" : "") +
         (cu_seqlens.empty() ? "" : "/varlen" + std::to_string(cu_seqlens.back())) +
         (score == ScoreFn::Silu ? "/silu/" + rab + (gate_u ? "/u" : "") : "");
}

BenchConfig BenchConfig::dense_baseline() const {
  BenchConfig d = *this;
  d.pattern = causal ? "causal" : "dense";
  d.density_target = 1.0;
  d.spec = causal ? "causal" : "dense";
  return d;
}

bool pattern_takes_density(const std::string& p) { return p == "random" || p == "local" || p == "causal"; }

bool mask_spec_for(const std::string& pattern, double density, int64_t mk, std::string& spec, bool& causal,
                   std::string& why) {
  causal = false;
  if (pattern_takes_density(pattern) && !(density > 0 && density <= 1.0 + 1e-9)) {
    why = "density " + fmt_density(density) + " is outside (0, 1]";
    return false;
  }
  if (pattern == "random") {
    spec = density >= 1.0 - 1e-9 ? "dense" : "random:density=" + fmt_density(density);
  } else if (pattern == "causal") {
    causal = true;
    spec = density >= 1.0 - 1e-9 ? "causal" : "random:density=" + fmt_density(density);
  } else if (pattern == "local") {
    // Row i keeps |j - diag(i)| <= w: 2w+1 blocks away from the edges.
    int64_t w = std::max<int64_t>(0, std::llround((density * double(mk) - 1.0) / 2.0));
    spec = density >= 1.0 - 1e-9 || w >= mk - 1 ? "dense" : "local:window=" + std::to_string(w);
  } else {
    spec = pattern;  // dense or a full spec; the registry validates it
  }
  return true;
}

SweepPlan expand_sweep(const SweepAxes& a, const BackendCaps& caps) {
  SweepPlan plan;
  std::set<std::string> seen;  // config label + spec: a repeated mask is measured once
  int64_t longest = 0;
  for (size_t i = 1; i < a.cu_seqlens.size(); ++i) longest = std::max<int64_t>(longest, a.cu_seqlens[i] - a.cu_seqlens[i - 1]);
  const bool varlen = !a.cu_seqlens.empty();
  const std::vector<int64_t> batches = varlen ? std::vector<int64_t>{int64_t(a.cu_seqlens.size()) - 1} : a.batch;
  const std::vector<int64_t> seqs = varlen ? std::vector<int64_t>{longest} : a.seq;
  const bool any_rab = std::any_of(a.rab.begin(), a.rab.end(), [](const std::string& r) { return r != "none"; });
  if ((any_rab || a.gate_u) && std::find(a.score.begin(), a.score.end(), "silu") == a.score.end())
    throw UsageError("--rab and --gate-u are HSTU's: they need --score silu");
  for (const auto& score_s : a.score)
  for (const auto& rab_s : score_s == "silu" ? a.rab : std::vector<std::string>{"none"})
  for (const auto& pass_s : a.pass)
    for (const auto& dtype_s : a.dtype)
      for (int64_t B : batches)
        for (int64_t H : a.heads)
          for (int64_t S : seqs)
            for (int64_t D : a.head_dim)
              for (int64_t blk : a.block)
                for (const auto& pat : a.pattern) {
                  std::vector<double> dens = pattern_takes_density(pat) ? a.density : std::vector<double>{-1.0};
                  for (double d : dens) {
                    BenchConfig c;
                    c.shape.batch = B;
                    c.shape.heads_q = H;
                    c.shape.heads_kv = a.kv_heads ? a.kv_heads : H;
                    c.shape.q_len = c.shape.kv_len = S;
                    c.shape.head_dim = D;
                    c.cu_seqlens = a.cu_seqlens;
                    c.block = blk;
                    c.dtype = parse_dtype(dtype_s);
                    c.pass = parse_pass(pass_s);
                    c.pattern = pat;
                    c.density_target = d;
                    if (score_s == "silu") c.score = ScoreFn::Silu, c.rab = rab_s, c.gate_u = a.gate_u;
                    auto skip = [&](const std::string& why) { plan.skipped.push_back({c, why}); };
                    if (H % c.shape.heads_kv) {
                      skip("heads " + std::to_string(H) + " is not a multiple of --kv-heads " +
                           std::to_string(c.shape.heads_kv));
                      continue;
                    }
                    if (std::find(caps.passes.begin(), caps.passes.end(), c.pass) == caps.passes.end()) {
                      skip(std::string("pass ") + pass_name(c.pass) + " is not implemented by this backend (fwd only)");
                      continue;
                    }
                    if (std::find(caps.dtypes.begin(), caps.dtypes.end(), c.dtype) == caps.dtypes.end()) {
                      skip(std::string("dtype ") + elem_type_name(c.dtype) + " is not supported by this backend");
                      continue;
                    }
                    if (!caps.blocks.empty() && std::find(caps.blocks.begin(), caps.blocks.end(), blk) == caps.blocks.end()) {
                      std::string allowed;
                      for (auto b : caps.blocks) allowed += (allowed.empty() ? "" : ", ") + std::to_string(b);
                      skip("block " + std::to_string(blk) + " is not supported by this backend (allowed: " + allowed + ")");
                      continue;
                    }
                    std::string why;
                    if (!mask_spec_for(pat, d, c.mask_shape().mk(), c.spec, c.causal, why)) {
                      skip(why);
                      continue;
                    }
                    if (caps.max_computed_flops > 0) {
                      // Upper estimate before the mask exists: the target density of the dense work.
                      double dd = d > 0 ? d : 1.0;
                      double est = 4.0 * double(D) * double(S) * double(S) * double(H) * double(B) * dd;
                      if (est > caps.max_computed_flops) {
                        char buf[160];
                        std::snprintf(buf, sizeof buf,
                                      "about %.3g computed FLOPs, over this backend's limit of %.3g (CPU: use smaller "
                                      "--seq/--heads or a GPU)",
                                      est, caps.max_computed_flops);
                        skip(buf);
                        continue;
                      }
                    }
                    std::string key = c.dense_key() + "|" + c.spec + "|" + pat;
                    if (!seen.insert(key).second) {
                      skip("same mask as an earlier configuration (" + c.spec + ")");
                      continue;
                    }
                    plan.configs.push_back(c);
                  }
                }
  return plan;
}

}  // namespace bsattn::bench
