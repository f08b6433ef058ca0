#include "lib/mask_stats.h"

#include <cstdlib>

namespace bsattn {

MaskStats mask_stats(const BlockMask& m) {
  MaskStats st;
  auto g = m.geometry();
  int64_t B = m.shape.batch, H = m.shape.heads, mq = m.shape.mq(), mk = m.shape.mk();

  // Per-block pair counts only differ near the causal diagonal and at tails; cache per (i,j) lazily
  // by computing row-wise: a row's pair count for block j depends on (i,j) only.
  int64_t visible_blocks = 0, dense_pairs_head = 0;
  for (int64_t i = 0; i < mq; ++i)
    for (int64_t j = 0; j < mk; ++j) {
      int64_t p = g.pairs(i, j, m.causal);
      if (p > 0) ++visible_blocks;
      dense_pairs_head += p;
    }

  for (int64_t h = 0; h < H; ++h) {
    HeadStats hs;
    hs.head = h;
    hs.type = m.heads[h].type;
    hs.row_min = INT64_MAX;
    int64_t diag_rows = 0, diag_kept = 0;
    for (int64_t b = 0; b < B; ++b) {
      const uint8_t* hb = m.head_bits(b, h);
      for (int64_t i = 0; i < mq; ++i) {
        const uint8_t* row = hb + i * mk;
        int64_t d = g.diag_block(i);
        int64_t n = 0;
        for (int64_t j = 0; j < mk; ++j) {
          if (!row[j]) continue;
          ++n;
          hs.computed_pairs += g.pairs(i, j, m.causal);
          if (d >= 0) hs.bandwidth = std::max<int64_t>(hs.bandwidth, std::llabs(j - d));
        }
        if (d >= 0) {
          ++diag_rows;
          diag_kept += row[d] ? 1 : 0;
        }
        hs.kept_blocks += n;
        hs.row_min = std::min(hs.row_min, n);
        hs.row_max = std::max(hs.row_max, n);
        if (n == 0) ++hs.empty_rows;
      }
    }
    hs.density = visible_blocks ? double(hs.kept_blocks) / double(B * visible_blocks) : 0.0;
    hs.pair_density = dense_pairs_head ? double(hs.computed_pairs) / double(B * dense_pairs_head) : 0.0;
    hs.row_mean = double(hs.kept_blocks) / double(B * mq);
    hs.diag_coverage = diag_rows ? double(diag_kept) / double(diag_rows) : 0.0;
    st.kept_blocks += hs.kept_blocks;
    st.computed_pairs += hs.computed_pairs;
    st.empty_rows += hs.empty_rows;
    st.heads.push_back(hs);
  }
  st.visible_blocks = visible_blocks * B * H;
  st.density = visible_blocks ? double(st.kept_blocks) / double(st.visible_blocks) : 0.0;
  st.bitmap_fill = double(st.kept_blocks) / double(B * H * mq * mk);
  st.dense_pairs = dense_pairs_head * B * H;
  return st;
}

nlohmann::json to_json(const MaskStats& s) {
  nlohmann::json j;
  j["kept_blocks"] = s.kept_blocks;
  j["visible_blocks"] = s.visible_blocks;
  j["density"] = s.density;
  j["bitmap_fill"] = s.bitmap_fill;
  j["computed_pairs"] = s.computed_pairs;
  j["dense_pairs"] = s.dense_pairs;
  j["pair_density"] = s.pair_density();
  j["empty_rows"] = s.empty_rows;
  auto& hs = j["heads"] = nlohmann::json::array();
  for (auto& h : s.heads)
    hs.push_back({{"head", h.head},
                  {"type", head_type_name(h.type)},
                  {"kept_blocks", h.kept_blocks},
                  {"density", h.density},
                  {"pair_density", h.pair_density},
                  {"row_min", h.row_min},
                  {"row_mean", h.row_mean},
                  {"row_max", h.row_max},
                  {"empty_rows", h.empty_rows},
                  {"diag_coverage", h.diag_coverage},
                  {"bandwidth", h.bandwidth},
                  {"computed_pairs", h.computed_pairs}});
  return j;
}

}  // namespace bsattn
