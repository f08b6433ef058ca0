#include "lib/tensor/synthetic.h"

#include <cmath>

#include "lib/error.h"
#include "lib/sizes.h"
#include "lib/rng.h"
#include "lib/spec.h"

namespace bsattn {
namespace {

std::vector<ParamDef> defs_for(const std::string& kind) {
  ParamDef base{"base", ParamKind::Float, "10000", 1.0001, 1e9, "rotary base (frequencies base^(-2f/D))", {}};
  ParamDef strength{"strength", ParamKind::Float, "12", 0, 100, "logit of a token with itself above background", {}};
  ParamDef noise{"noise", ParamKind::Float, "1", 0, 100, "standard deviation of the content noise", {}};
  if (kind == "decay") return {base, strength, noise};
  if (kind == "sinks")
    return {base, strength, noise, {"count", ParamKind::Int, "4", 1, 1e9, "number of sink tokens", {}},
            {"sink_strength", ParamKind::Float, "8", 0, 100, "extra logit of sink keys for every query", {}}};
  if (kind == "clustered")
    return {{"clusters", ParamKind::Int, "16", 1, 1e6, "number of content clusters", {}},
            {"run", ParamKind::Float, "64", 1, 1e9, "mean length of a run of tokens of one cluster", {}},
            {"strength", ParamKind::Float, "10", 0, 100, "logit of a same-cluster pair above background", {}}, noise};
  if (kind == "spatial") {
    base.default_value = "100";
    return {{"grid", ParamKind::Dims, "16x16", 1, 1e6, "grid HxW or TxHxW (raster order)", {}},
            {"text", ParamKind::Int, "0", 0, 1e9, "text tokens before the grid", {}},
            base, strength, {"text_strength", ParamKind::Float, "4", 0, 100, "logit of text keys for grid queries", {}},
            noise};
  }
  if (kind == "random") return {{"sd", ParamKind::Float, "1", 1e-6, 100, "standard deviation of Q and K", {}}};
  throw UsageError("--synthetic: unknown kind '" + kind + "' (allowed: decay, sinks, clustered, spatial, random)");
}

// Random unit vector of length n.
std::vector<double> unit(Rng& rng, int64_t n) {
  std::vector<double> u(static_cast<size_t>(n));
  double s = 0;
  for (auto& x : u) {
    x = rng.normal();
    s += x * x;
  }
  for (auto& x : u) x /= std::sqrt(s);
  return u;
}

// Adds a * R(pos) u to dst[0..n) where R rotates pairs (2f, 2f+1) of the sub-space by pos*theta_f.
void add_rotary(float* dst, const double* u, int64_t n, double pos, double base, double a) {
  for (int64_t f = 0; f < n / 2; ++f) {
    double th = pos * std::pow(base, -2.0 * double(f) / double(n)), c = std::cos(th), s = std::sin(th);
    dst[2 * f] += float(a * (c * u[2 * f] - s * u[2 * f + 1]));
    dst[2 * f + 1] += float(a * (s * u[2 * f] + c * u[2 * f + 1]));
  }
}

}  // namespace

std::vector<std::string> synthetic_kinds() { return {"decay", "sinks", "clustered", "spatial", "random"}; }

std::string synthetic_help() {
  return "decay[:base=10000,strength=12,noise=1] rotary positional decay; "
         "sinks[:count=4,sink_strength=8,...] decay + attention sinks; "
         "clustered[:clusters=16,run=64,strength=10,noise=1] content clusters scattered along the sequence; "
         "spatial[:grid=16x16,text=0,base=100,strength=12,text_strength=4] 2D/3D grid with a text prefix; "
         "random[:sd=1] plain Gaussian (baseline only)";
}

int64_t synthetic_required_seq(const std::string& text) {
  Spec s = parse_spec(text, "--synthetic");
  Params p(defs_for(s.name), s.args, "synthetic '" + s.name + "'");
  if (s.name != "spatial") return 0;
  int64_t n = p.get_int("text");
  std::vector<int64_t> dims = p.get_dims("grid");
  int64_t g = 1;
  for (int64_t d : dims) g = checked_product({g, d}, kMaxTokens, "synthetic 'spatial' grid", "tokens");
  return checked_product({n + g}, kMaxTokens, "synthetic 'spatial' text + grid", "tokens");
}

SyntheticQKV make_synthetic(const std::string& text, const SyntheticSizes& z, uint64_t seed) {
  Spec s = parse_spec(text, "--synthetic");
  Params p(defs_for(s.name), s.args, "synthetic '" + s.name + "'");
  if (z.batch <= 0 || z.seq <= 0 || z.heads_q <= 0 || z.heads_kv <= 0 || z.head_dim <= 0)
    throw UsageError("synthetic inputs need positive sizes");
  if (z.heads_q % z.heads_kv) throw UsageError("query heads must be a multiple of key/value heads");
  if (z.head_dim % 2) throw UsageError("synthetic inputs need an even head_dim (rotary pairs)");
  // Every size is checked before anything is allocated: B*S*H*D must neither wrap nor pass the limit.
  checked_product({z.batch, z.seq, z.heads_q, z.head_dim}, kMaxTensorElements,
                  "synthetic Q [batch x seq x heads x head_dim]", "elements");
  checked_product({z.batch, z.seq, z.heads_kv, z.head_dim}, kMaxTensorElements,
                  "synthetic K/V [batch x seq x kv-heads x head_dim]", "elements");
  const int64_t B = z.batch, S = z.seq, H = z.heads_q, Hk = z.heads_kv, D = z.head_dim, G = H / Hk;
  const double scale = 1.0 / std::sqrt(double(D));
  SyntheticQKV r;
  r.sizes = z;
  r.q.assign(size_t(B * S * H * D), 0.f);
  r.k.assign(size_t(B * S * Hk * D), 0.f);
  r.v.assign(size_t(B * S * Hk * D), 0.f);
  const uint64_t kind_salt = std::hash<std::string>{}(s.name) & 0xffffffffull;
  // Noise and V, one stream per (tensor, batch).
  auto noise_fill = [&](std::vector<float>& t, int64_t heads, uint64_t which, double sd) {
    for (int64_t b = 0; b < B; ++b) {
      Rng rng(mix_seed(seed, kind_salt, which, uint64_t(b)));
      float* x = t.data() + b * S * heads * D;
      for (int64_t e = 0; e < S * heads * D; ++e) x[e] += float(sd * rng.normal());
    }
  };
  noise_fill(r.v, Hk, 3, 1.0);
  auto qrow = [&](int64_t b, int64_t t, int64_t h) { return r.q.data() + ((b * S + t) * H + h) * D; };
  auto krow = [&](int64_t b, int64_t t, int64_t h) { return r.k.data() + ((b * S + t) * Hk + h) * D; };

  if (s.name == "random") {
    noise_fill(r.q, H, 1, p.get_float("sd"));
    noise_fill(r.k, Hk, 2, p.get_float("sd"));
  } else {
    double noise = p.get_float("noise");
    noise_fill(r.q, H, 1, noise);
    noise_fill(r.k, Hk, 2, noise);
    // Amplitude a with scale * a^2 = strength: a token's logit with itself (noise aside).
    double a = std::sqrt(p.get_float("strength") / scale);
    for (int64_t hk = 0; hk < Hk; ++hk) {
      Rng rng(mix_seed(seed, kind_salt, 100, uint64_t(hk)));
      if (s.name == "decay" || s.name == "sinks") {
        auto u = unit(rng, D);
        double base = p.get_float("base");
        for (int64_t b = 0; b < B; ++b)
          for (int64_t t = 0; t < S; ++t) {
            add_rotary(krow(b, t, hk), u.data(), D, double(t), base, a);
            for (int64_t g = 0; g < G; ++g) add_rotary(qrow(b, t, hk * G + g), u.data(), D, double(t), base, a);
          }
        if (s.name == "sinks") {
          auto w = unit(rng, D);
          double c = std::sqrt(p.get_float("sink_strength") / scale);
          int64_t count = std::min(p.get_int("count"), S);
          for (int64_t b = 0; b < B; ++b)
            for (int64_t t = 0; t < S; ++t) {
              for (int64_t g = 0; g < G; ++g)
                for (int64_t d = 0; d < D; ++d) qrow(b, t, hk * G + g)[d] += float(c * w[size_t(d)]);
              if (t < count)
                for (int64_t d = 0; d < D; ++d) krow(b, t, hk)[d] += float(c * w[size_t(d)]);
            }
        }
      } else if (s.name == "clustered") {
        int64_t C = p.get_int("clusters");
        std::vector<std::vector<double>> centre;
        for (int64_t c = 0; c < C; ++c) centre.push_back(unit(rng, D));
        double run = p.get_float("run");
        for (int64_t b = 0; b < B; ++b) {
          Rng rb(mix_seed(seed, kind_salt, 200 + uint64_t(hk), uint64_t(b)));
          int64_t t = 0;
          while (t < S) {
            // Geometric run length with mean `run`.
            int64_t len = 1 + int64_t(std::floor(std::log(1.0 - rb.uniform()) / std::log(1.0 - 1.0 / std::max(run, 1.0001))));
            int64_t c = int64_t(rb.below(uint64_t(C)));
            for (int64_t e = t; e < std::min(S, t + len); ++e)
              for (int64_t d = 0; d < D; ++d) {
                float x = float(a * centre[size_t(c)][size_t(d)]);
                krow(b, e, hk)[d] += x;
                for (int64_t g = 0; g < G; ++g) qrow(b, e, hk * G + g)[d] += x;
              }
            t += len;
          }
        }
      } else {  // spatial
        auto grid = p.get_dims("grid");
        if (grid.size() != 2 && grid.size() != 3)
          throw UsageError("synthetic 'spatial': grid must be HxW or TxHxW");
        int64_t ntext = p.get_int("text"), cells = 1;
        for (int64_t d : grid) cells *= d;
        if (ntext + cells != S)
          throw UsageError("synthetic 'spatial': the sequence length " + std::to_string(S) + " must equal text + grid = " +
                           std::to_string(ntext + cells) + " (set --seq, or change grid/text)");
        int64_t axes = int64_t(grid.size()), sub = (D / axes) & ~int64_t(1);
        if (sub < 2) throw UsageError("synthetic 'spatial': head_dim too small for the grid axes");
        std::vector<std::vector<double>> u;
        for (int64_t ax = 0; ax < axes; ++ax) u.push_back(unit(rng, sub));
        auto w = unit(rng, D);
        double base = p.get_float("base"), ct = std::sqrt(p.get_float("text_strength") / scale);
        // Per-axis amplitude so that the self logit over all axes totals `strength`.
        double aa = a / std::sqrt(double(axes));
        for (int64_t b = 0; b < B; ++b)
          for (int64_t t = 0; t < S; ++t) {
            if (t < ntext) {
              for (int64_t d = 0; d < D; ++d) krow(b, t, hk)[d] += float(ct * w[size_t(d)]);
              continue;
            }
            int64_t idx = t - ntext, coord[3];
            for (int64_t ax = axes - 1; ax >= 0; --ax) {
              coord[ax] = idx % grid[size_t(ax)];
              idx /= grid[size_t(ax)];
            }
            for (int64_t ax = 0; ax < axes; ++ax) {
              add_rotary(krow(b, t, hk) + ax * sub, u[size_t(ax)].data(), sub, double(coord[ax]), base, aa);
              for (int64_t g = 0; g < G; ++g)
                add_rotary(qrow(b, t, hk * G + g) + ax * sub, u[size_t(ax)].data(), sub, double(coord[ax]), base, aa);
            }
            for (int64_t g = 0; g < G; ++g)
              for (int64_t d = 0; d < D; ++d) qrow(b, t, hk * G + g)[d] += float(ct * w[size_t(d)]);
          }
      }
    }
  }
  r.spec = {{"kind", s.name}, {"params", p.to_json()}, {"seed", seed}};
  return r;
}

}  // namespace bsattn
