// Mask figures: each block is kept (fully computed), partial (kept, but the causal diagonal or a
// sequence tail leaves some pairs out), empty (dropped) or hidden (outside the causal triangle,
// dropped). Large masks are max-pooled onto the pixels of their panel with the order
// hidden < empty < kept < partial, so a single kept block always colours at least one pixel.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/mask.h"
#include "lib/render/canvas.h"

namespace bsattn::render {

enum class BlockClass : uint8_t { Hidden = 0, Empty = 1, Kept = 2, Partial = 3 };
const char* block_class_name(BlockClass c);
Rgb block_class_color(BlockClass c);
char block_class_char(BlockClass c);  // '#' kept, '+' partial, '.' empty, ' ' hidden

// Classes of one block row of head (b, h): out[j] for j < mk. Batch b is taken modulo a batch-1 mask.
void classify_row(const BlockMask& m, int64_t b, int64_t h, int64_t i, uint8_t* out);
// The [out_h, out_w] max-pooled class raster of one head (out_w/out_h may exceed Mk/Mq: then each
// block covers several cells). Counts kept blocks (kept + partial) into *kept when given.
std::vector<uint8_t> pool_head_classes(const BlockMask& m, int64_t b, int64_t h, int out_w, int out_h,
                                       int64_t* kept = nullptr);

// The [out_h, out_w] image of one head with coverage shading: each cell mixes the colours of the
// blocks in it by count (a cell with any kept block at least 35% of the way to the kept colour), so a
// downsampled sparse mask looks as sparse as it is. Counts kept and visible (not outside causal) blocks.
struct HeadRaster {
  std::vector<uint32_t> argb;
  int64_t kept = 0, visible = 0;
};
HeadRaster pool_head_coverage(const BlockMask& m, int64_t b, int64_t h, int out_w, int out_h);
// The blocks of each class per cell of an out_w x out_h grid over head (b, h): counts[cell * 4 + class];
// kept / visible: the head's totals.
std::vector<uint32_t> pool_head_counts(const BlockMask& m, int64_t b, int64_t h, int out_w, int out_h, int64_t* kept,
                                       int64_t* visible);

// "all", "3", "0-3,8,12-15" -> sorted unique head indices; UsageError when out of [0, heads).
std::vector<int64_t> parse_head_list(const std::string& text, int64_t heads, const std::string& what = "--heads");

// Text rendering for a terminal: each head at most `max_width` characters wide; a character covering
// several blocks shows the share of them kept (digits 1-9, '#' all, '.' none).
std::string mask_ascii(const BlockMask& m, int64_t batch_index, const std::vector<int64_t>& heads, int max_width,
                       const std::string& name = "");

struct FigureOptions {
  ImageFormat format = ImageFormat::Png;
  int width = 0, height = 0;  // 0: the figure's default (scaled by `scale`)
  double scale = 1.0;         // --dpi / 100: fonts, lines and default sizes
  std::string title;          // replaces the default title when set
  bool show_title = true;     // false: no title and no subtitle line (--no-title)
};

struct MaskFigureOptions : FigureOptions {
  std::vector<int64_t> heads;  // which heads (empty: all)
  int64_t batch_index = 0;
  std::string name;            // shown when the mask records no pattern (e.g. the file name)
};

// Where a figure put its data: one rectangle per panel (a head, a frame, a plot), in pixels.
struct PanelRect {
  std::string label;
  double x = 0, y = 0, w = 0, h = 0;
  int64_t rows = 0, cols = 0;  // blocks (masks, attention) or cells (curves) along each side
};

struct FigureReport {
  std::vector<PanelRect> panels;
  int width = 0, height = 0;
  int panel_w = 0, panel_h = 0;
  bool downsampled = false;  // a pixel covers more than one block
  double ms = 0;             // classification, drawing and encoding
};

nlohmann::json to_json(const FigureReport& r);

FigureReport render_mask_figure(const BlockMask& m, const MaskFigureOptions& o, const std::string& path);

// The name of the pattern a mask records ("local:window=4", a head map, or "").
std::string mask_pattern_label(const BlockMask& m);
// Checks batch index and heads against the mask (UsageError naming the option).
void check_mask_selection(const BlockMask& m, int64_t batch_index, const std::vector<int64_t>& heads);

}  // namespace bsattn::render
