// Q/K/V/dO tensors for run, analyze and bench: .npy in BSHD or BHSD, float32 / float16 / bfloat16
// (bf16 stored as uint16 bits, declared with --dtype bf16), converted exactly to f32 BSHD in memory.
// --dtype bf16 / f16 on float32 files rounds the values to that type (nearest even) on loading, so
// every backend computes on the same numbers.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "lib/attention.h"

namespace bsattn {

enum class Layout { BSHD, BHSD };
Layout parse_layout(const std::string& s);  // "bshd" | "bhsd" (UsageError otherwise)
const char* layout_name(Layout l);

struct Tensor {
  std::vector<float> data;  // BSHD (3-D files: [S,H,D], batch 1 or a packed varlen batch)
  int64_t batch = 1, seq = 0, heads = 0, dim = 0;
  ElemType dtype = ElemType::F32;       // the values' type: every value is exact in it (the file's, or --dtype)
  ElemType file_dtype = ElemType::F32;  // what the file held (f32 when rounded to a --dtype of 16 bits)
  std::string name;                // for messages ("--q q.npy")
  int64_t numel() const { return batch * seq * heads * dim; }
};

// dtype: "auto" (float32 / float16 from the file; uint16 needs an explicit "bf16"), "f32" (float32
// files), "f16" (float16 files, or float32 files rounded to f16), "bf16" (uint16 files holding bf16
// bits, or float32 files rounded to bf16); rounding is to nearest even, and a value that overflows
// the type is a UsageError naming its position. Accepts 4-D [B,S,H,D] (or [B,H,S,D] with BHSD) and 3-D [S,H,D] ([H,S,D]). Checks that the
// file fits in memory before reading it and that every value is finite (first bad position named).
Tensor load_tensor(const std::string& path, const std::string& what, Layout layout, const std::string& dtype);

// Q, K, V (and dO) agree: batch, head_dim, K/V identical shapes, Hq a multiple of Hkv, dO like Q.
void check_qkv(const Tensor& q, const Tensor& k, const Tensor& v);

// Writes f32 data given in BSHD [b,s,h,d] as .npy in `layout`: 4-D [B,S,H,D] / [B,H,S,D], or 3-D when `packed` (varlen results [total,H,D] / [H,total,D]).
void save_tensor(const std::string& path, const std::vector<float>& bshd, int64_t batch, int64_t seq, int64_t heads,
                 int64_t dim, Layout layout, bool packed = false);
void save_array(const std::string& path, const std::vector<float>& data, const std::vector<int64_t>& shape);

// An AttentionProblem for these tensors (fixed-length batch, f32 elements).
AttentionProblem problem_for(const Tensor& q, const Tensor& k);

// The f16 / bf16 bit patterns of f32 values (round to nearest even, NaN kept NaN, overflow to inf):
// what the CUDA backend takes. Exact for Tensor::data whose dtype is `t`. t = F32: std::logic_error.
std::vector<uint16_t> to_16bit(const std::vector<float>& x, ElemType t);

}  // namespace bsattn
