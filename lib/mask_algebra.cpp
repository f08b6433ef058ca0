#include "lib/mask_algebra.h"

#include "lib/error.h"

namespace bsattn {

namespace {
void same_shape(const BlockMask& a, const BlockMask& b, const char* op) {
  if (a.shape != b.shape)
    throw UsageError(std::string(op) + ": masks differ in shape (" + a.shape.str() + " vs " + b.shape.str() + ")");
}
template <class F>
BlockMask combine(const BlockMask& a, const BlockMask& b, const char* op, F f) {
  same_shape(a, b, op);
  BlockMask r(a.shape);
  r.causal = a.causal;
  for (size_t k = 0; k < r.bits.size(); ++k) r.bits[k] = f(a.bits[k], b.bits[k]) ? 1 : 0;
  r.apply_causal();
  r.normalize_head_types();
  return r;
}
}  // namespace

BlockMask mask_union(const BlockMask& a, const BlockMask& b) {
  return combine(a, b, "union", [](uint8_t x, uint8_t y) { return x || y; });
}
BlockMask mask_intersection(const BlockMask& a, const BlockMask& b) {
  return combine(a, b, "intersection", [](uint8_t x, uint8_t y) { return x && y; });
}
BlockMask mask_difference(const BlockMask& a, const BlockMask& b) {
  return combine(a, b, "difference", [](uint8_t x, uint8_t y) { return x && !y; });
}

BlockMask mask_complement(const BlockMask& a) {
  BlockMask r(a.shape);
  r.causal = a.causal;
  for (size_t k = 0; k < r.bits.size(); ++k) r.bits[k] = !a.bits[k];
  r.apply_causal();
  r.normalize_head_types();
  return r;
}

BlockMask causal_restrict(const BlockMask& a) {
  BlockMask r = a;
  r.causal = true;
  r.apply_causal();
  r.normalize_head_types();
  return r;
}

void assign_head(BlockMask& dst, int64_t dh, const BlockMask& src, int64_t sh) {
  if (dh < 0 || dh >= dst.shape.heads || sh < 0 || sh >= src.shape.heads)
    throw UsageError("assign_head: head index out of range");
  MaskShape a = dst.shape, b = src.shape;
  a.heads = b.heads = 1;
  if (a != b) throw UsageError("assign_head: masks differ in sizes (" + dst.shape.str() + " vs " + src.shape.str() + ")");
  for (int64_t bb = 0; bb < dst.shape.batch; ++bb)
    std::copy(src.head_bits(bb, sh), src.head_bits(bb, sh) + src.shape.head_cells(), dst.head_bits(bb, dh));
  dst.heads[dh] = src.heads[sh];
  if (dst.causal != src.causal) {
    dst.apply_causal();
    dst.normalize_head_types();
  }
}

BlockMask broadcast_batch(const BlockMask& a, int64_t batch) {
  if (batch == a.shape.batch) return a;
  if (a.shape.batch != 1)
    throw UsageError("cannot broadcast a mask of batch " + std::to_string(a.shape.batch) + " to batch " +
                     std::to_string(batch) + " (only batch 1 broadcasts)");
  MaskShape s = a.shape;
  s.batch = batch;
  BlockMask r(s);
  r.causal = a.causal;
  r.heads = a.heads;
  r.spec = a.spec;
  size_t n = a.bits.size();
  for (int64_t b = 0; b < batch; ++b) std::copy(a.bits.begin(), a.bits.end(), r.bits.begin() + b * n);
  return r;
}

BlockMask convert_block_size(const BlockMask& a, int64_t block_q, int64_t block_kv) {
  MaskShape s = a.shape;
  s.block_q = block_q;
  s.block_kv = block_kv;
  BlockMask r(s);
  r.causal = a.causal;
  r.spec = a.spec;
  int64_t omk = a.shape.mk(), nmq = s.mq(), nmk = s.mk();
  // Old block ranges overlapping each new block.
  auto range = [](int64_t nb, int64_t nsize, int64_t ob, int64_t len, int64_t& lo, int64_t& hi) {
    int64_t t0 = nb * nsize, t1 = std::min(len, (nb + 1) * nsize) - 1;
    lo = t0 / ob;
    hi = t1 / ob;
  };
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h) {
      const uint8_t* ob = a.head_bits(b, h);
      uint8_t* nbits = r.head_bits(b, h);
      for (int64_t i = 0; i < nmq; ++i) {
        int64_t i0, i1;
        range(i, block_q, a.shape.block_q, s.q_len, i0, i1);
        for (int64_t j = 0; j < nmk; ++j) {
          int64_t j0, j1;
          range(j, block_kv, a.shape.block_kv, s.kv_len, j0, j1);
          bool any = false;
          for (int64_t oi = i0; oi <= i1 && !any; ++oi)
            for (int64_t oj = j0; oj <= j1; ++oj)
              if (ob[oi * omk + oj]) {
                any = true;
                break;
              }
          nbits[i * nmk + j] = any;
        }
      }
    }
  r.apply_causal();
  r.normalize_head_types();
  return r;
}

}  // namespace bsattn
