// Where Q/K/V come from for run, analyze, bench and gen-mask's adaptive selectors: .npy files
// (tensor_io.h) or a structured synthetic generator (synthetic.h). One struct, one loader.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "lib/tensor/synthetic.h"
#include "lib/tensor/tensor_io.h"

namespace bsattn {

struct QkvSource {
  std::string q, k, v;     // files (v optional when need_v is false)
  std::string layout = "bshd", dtype = "auto";
  std::string synthetic;   // KIND[:params]; exclusive with files
  SyntheticSizes sizes;    // synthetic only; sizes.seq <= 0: the kind's required length
  uint64_t seed = 0;       // synthetic only
};

struct Qkv {
  Tensor q, k, v;  // f32 BSHD (values exact in each tensor's dtype)
  Layout layout = Layout::BSHD;
  nlohmann::json spec;  // files with shapes/dtypes, or the synthetic kind, parameters and seed
};

// UsageError when neither or both sources are given, files disagree, or parameters are bad.
Qkv load_qkv(const QkvSource& src, bool need_v);

}  // namespace bsattn
