// Seeded structured synthetic Q/K/V whose attention looks like real models' (random Gaussian Q/K give
// nearly uniform attention and say nothing about a mask). Spec "KIND[:key=value,...]":
//
//   decay      rotary-like positional decay: q_s = a R(s) u + noise, k_t = a R(t) u + noise with R the
//              rotary rotation (frequencies base^(-2f/D)), so q.k ~ a^2 sum_f |u_f|^2 cos(theta_f (s-t))
//              falls with |s - t| (the logit at distance 0 is `strength` above the background).
//              base=10000, strength=12, noise=1
//   sinks      decay plus `count` attention sinks: the first tokens' keys carry a large component along
//              a direction every query shares (`sink_strength` extra logits). count=4, sink_strength=8,
//              base, strength, noise as decay
//   clustered  tokens fall into `clusters` content clusters in runs of mean length `run` scattered along
//              the sequence; q and k are their cluster centre times a plus noise, so tokens attend within
//              their cluster wherever it lies. clusters=16, run=64, strength=10, noise=1
//   spatial    a `text`-token prefix followed by a TxHxW (or HxW) grid in raster order; each grid axis
//              has its own rotary sub-space (2D/3D RoPE), so attention falls with grid distance; every
//              grid query also attends to the text prefix (`text_strength` logits). The sequence length
//              must be text + T*H*W. grid=16x16, text=0, base=100, strength=12, text_strength=4, noise=1
//   random     plain Gaussian Q/K (a baseline only: nearly uniform attention). sd=1
//
// V is N(0,1) for every kind. Every tensor and head has its own stream derived from the seed.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace bsattn {

struct SyntheticSizes {
  int64_t batch = 1, seq = 4096, heads_q = 8, heads_kv = 8, head_dim = 64;
};

struct SyntheticQKV {
  std::vector<float> q, k, v;  // BSHD f32
  SyntheticSizes sizes;
  nlohmann::json spec;  // kind, every parameter, seed
};

// UsageError for an unknown kind, bad parameter or sizes that do not fit (spatial: seq != text+grid).
SyntheticQKV make_synthetic(const std::string& spec, const SyntheticSizes& sizes, uint64_t seed);
// The sequence length a spec requires (spatial: text + prod(grid)), or 0 when any length works.
int64_t synthetic_required_seq(const std::string& spec);
// One line per kind for --help.
std::string synthetic_help();
std::vector<std::string> synthetic_kinds();

}  // namespace bsattn
