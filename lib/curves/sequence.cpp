// Text+grid sequences, permutation checks, applying orders to [B,S,inner] tensors, permutation files.
#include <cstring>

#include "lib/curves/order.h"
#include "lib/error.h"
#include "lib/npy.h"

namespace bsattn::curves {

nlohmann::json SequenceLayout::to_json() const {
  return {{"grid", grid.to_json()}, {"text", text}, {"text_position", text_at_head ? "head" : "tail"},
          {"length", length()}};
}

Perm sequence_order(const Perm& grid_perm, const SequenceLayout& layout) {
  if (layout.text < 0) throw UsageError("--text must be >= 0 (got " + std::to_string(layout.text) + ")");
  if (int64_t(grid_perm.size()) != layout.grid.size())
    throw UsageError("grid order has " + std::to_string(grid_perm.size()) + " cells, grid " + layout.grid.str() +
                     " has " + std::to_string(layout.grid.size()));
  Perm p(size_t(layout.length()));
  int64_t off = layout.grid_offset();
  int64_t text_off = layout.text_at_head ? 0 : layout.grid.size();
  for (int64_t i = 0; i < layout.text; ++i) p[size_t(text_off + i)] = text_off + i;
  for (size_t i = 0; i < grid_perm.size(); ++i) p[size_t(off) + i] = off + grid_perm[i];
  return p;
}

Perm sequence_order(const OrderSpec& spec, const SequenceLayout& layout) {
  if (layout.text < 0) throw UsageError("--text must be >= 0 (got " + std::to_string(layout.text) + ")");
  return sequence_order(grid_order(spec, layout.grid), layout);
}

void check_permutation(const Perm& perm, const std::string& what) {
  std::vector<uint8_t> seen(perm.size(), 0);
  for (size_t i = 0; i < perm.size(); ++i) {
    int64_t v = perm[i];
    if (v < 0 || v >= int64_t(perm.size()))
      throw UsageError(what + ": value " + std::to_string(v) + " at position " + std::to_string(i) +
                       " is outside 0.." + std::to_string(int64_t(perm.size()) - 1));
    if (seen[size_t(v)]) throw UsageError(what + ": value " + std::to_string(v) + " appears twice (not a permutation)");
    seen[size_t(v)] = 1;
  }
}

Perm inverse_permutation(const Perm& perm) {
  check_permutation(perm, "permutation");
  Perm inv(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inv[size_t(perm[i])] = int64_t(i);
  return inv;
}

namespace {
void check_apply_args(int64_t batch, int64_t seq, int64_t inner, const Perm& perm) {
  if (batch < 1 || seq < 1 || inner < 1) throw UsageError("token order: batch, seq and inner sizes must be >= 1");
  if (int64_t(perm.size()) != seq)
    throw UsageError("token order has " + std::to_string(perm.size()) + " positions but the tensor has seq = " +
                     std::to_string(seq));
  check_permutation(perm, "token order");
}
}  // namespace

void apply_token_order(const float* x, float* out, int64_t batch, int64_t seq, int64_t inner, const Perm& perm) {
  check_apply_args(batch, seq, inner, perm);
  size_t row = size_t(inner) * sizeof(float);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < seq; ++i)
      std::memcpy(out + (b * seq + i) * inner, x + (b * seq + perm[size_t(i)]) * inner, row);
}

void unapply_token_order(const float* x, float* out, int64_t batch, int64_t seq, int64_t inner, const Perm& perm) {
  check_apply_args(batch, seq, inner, perm);
  size_t row = size_t(inner) * sizeof(float);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < seq; ++i)
      std::memcpy(out + (b * seq + perm[size_t(i)]) * inner, x + (b * seq + i) * inner, row);
}

std::vector<float> apply_token_order(const std::vector<float>& x, int64_t batch, int64_t seq, int64_t inner,
                                     const Perm& perm) {
  if (int64_t(x.size()) != batch * seq * inner) throw UsageError("token order: tensor size does not match B*S*inner");
  std::vector<float> out(x.size());
  apply_token_order(x.data(), out.data(), batch, seq, inner, perm);
  return out;
}

std::vector<float> unapply_token_order(const std::vector<float>& x, int64_t batch, int64_t seq, int64_t inner,
                                       const Perm& perm) {
  if (int64_t(x.size()) != batch * seq * inner) throw UsageError("token order: tensor size does not match B*S*inner");
  std::vector<float> out(x.size());
  unapply_token_order(x.data(), out.data(), batch, seq, inner, perm);
  return out;
}

void write_permutation(const std::string& path, const Perm& perm) {
  NpyArray a(DType::Int64, {int64_t(perm.size())});
  if (!perm.empty()) std::memcpy(a.data.data(), perm.data(), perm.size() * sizeof(int64_t));
  write_npy(path, a);
}

Perm read_permutation(const std::string& path, int64_t expected_length) {
  NpyArray a = read_npy(path);
  if (a.shape.size() != 1) throw UsageError(path + ": a permutation must be 1-D, got shape " + a.shape_str());
  Perm p(size_t(a.numel()));
  if (a.dtype == DType::Int64) {
    if (!p.empty()) std::memcpy(p.data(), a.data.data(), p.size() * sizeof(int64_t));
  } else if (a.dtype == DType::Int32) {
    for (size_t i = 0; i < p.size(); ++i) p[i] = a.as<int32_t>()[i];
  } else {
    throw UsageError(path + ": a permutation must be int64 (or int32), got " + dtype_name(a.dtype));
  }
  if (expected_length > 0 && int64_t(p.size()) != expected_length)
    throw UsageError(path + ": permutation has " + std::to_string(p.size()) + " entries, the sequence has " +
                     std::to_string(expected_length));
  check_permutation(p, path);
  return p;
}

}  // namespace bsattn::curves
