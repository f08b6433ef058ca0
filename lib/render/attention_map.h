// Attention maps: how much dense attention each block holds, what the block-sparse attention under a
// mask puts there instead, and the difference; drawn on a log scale with the mask overlaid.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "lib/attention.h"
#include "lib/render/mask_render.h"

namespace bsattn::render {

struct AttentionMaps {
  int64_t mq = 0, mk = 0;
  std::vector<double> dense;   // [Mq,Mk] dense attention mass, averaged over the rows of each row block that see a key
  std::vector<double> sparse;  // [Mq,Mk] the same for block-sparse attention (mass renormalized over kept blocks)
  std::vector<double> error;   // [Mq,Mk] |sparse - dense|
  double recall = 0;           // mean over rows that see a key of the dense mass inside kept blocks
};

// One (batch b, query head h) of fixed-length f32 BSHD q [B,Sq,Hq,D] and k [B,Sk,Hkv,D]. Exact:
// per-row block masses come from the reference oracle (dense_block_mass with one-row blocks), each
// row's sparse mass is its dense mass over the kept blocks divided by the row's recall.
AttentionMaps attention_maps(const AttentionProblem& p, const float* q, const float* k, const BlockMask& mask,
                             int64_t b, int64_t h);

enum class Overlay { Outline, Hatch, None };
Overlay parse_overlay(const std::string& s);  // outline | hatch | none

struct AttentionFigureOptions : FigureOptions {
  Overlay overlay = Overlay::Outline;
  bool error_map = true;  // second panel: |sparse - dense|
  double decades = 5;     // colour range: [max / 10^decades, max]
  std::string subtitle;   // inputs description
  int64_t batch_index = 0;  // the batch entry the maps were made for (mask bitmap of that entry)
};

// Draws the dense mass (with the mask overlaid) and, when asked, the error map of head h.
FigureReport render_attention_figure(const AttentionMaps& maps, const BlockMask& mask, int64_t h,
                                     const AttentionFigureOptions& o, const std::string& path);

}  // namespace bsattn::render
