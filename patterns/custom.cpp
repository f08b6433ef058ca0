// custom: a mask loaded from a file (.npy bool/0-1 [B,H,Mq,Mk], [H,Mq,Mk] or [Mq,Mk]; or .json
// bsattn.mask/v1), checked against the requested sizes. Heads: the file holds 1 head (used for every
// head), the heads of the --head-map range (head g of the range takes file head g), or every head of
// the mask (head h takes file head h). Batch: 1 (broadcast) or the requested batch. A .json file must
// also match q_len, kv_len and the block sizes; its head types are kept.
#include <filesystem>
#include <map>
#include <memory>

#include "lib/mask_io.h"
#include "patterns/common.h"

namespace bsattn {
namespace {

// Loaded once per (path, modification time, sizes) within a process: generate() is called for every
// (batch, head).
const BlockMask& load_custom(const PatternContext& ctx, const std::string& path) {
  static std::map<std::string, std::shared_ptr<BlockMask>> cache;
  std::error_code ec;
  auto stamp = std::filesystem::last_write_time(path, ec);
  std::string key = path + "|" + std::to_string(ec ? 0 : stamp.time_since_epoch().count()) + "|" + ctx.shape.str();
  auto& slot = cache[key];
  if (!slot) {
    MaskSizesHint hint;
    hint.q_len = ctx.shape.q_len;
    hint.kv_len = ctx.shape.kv_len;
    hint.block_q = ctx.shape.block_q;
    hint.block_kv = ctx.shape.block_kv;
    slot = std::make_shared<BlockMask>(load_mask(path, hint));
  }
  return *slot;
}

BSATTN_REGISTER_PATTERN([] {
  PatternDef d;
  d.name = "custom";
  d.family = "custom";
  d.summary = "a mask loaded from .npy or .json, checked against the requested sizes";
  d.params = {{"file", ParamKind::String, "", 0, 0, "mask file (.npy or .json)", {}}};
  d.batch_invariant = false;
  d.validate = [](const PatternContext& ctx, const Params& p) {
    const std::string& path = p.get_string("file");
    if (path.empty()) throw UsageError("pattern 'custom' needs file=PATH (.npy or .json)");
    const BlockMask& m = load_custom(ctx, path);
    const auto &s = ctx.shape, &f = m.shape;
    auto sizes = [](const MaskShape& x) {
      return "q_len=" + std::to_string(x.q_len) + " kv_len=" + std::to_string(x.kv_len) + " block=" +
             std::to_string(x.block_q) + "x" + std::to_string(x.block_kv);
    };
    if (f.q_len != s.q_len || f.kv_len != s.kv_len || f.block_q != s.block_q || f.block_kv != s.block_kv)
      throw UsageError("pattern 'custom': '" + path + "' has " + sizes(f) + ", the request " + sizes(s));
    if (f.heads != 1 && f.heads != ctx.group_heads && f.heads != s.heads)
      throw UsageError("pattern 'custom': '" + path + "' has " + std::to_string(f.heads) + " heads (allowed: 1, " +
                       std::to_string(ctx.group_heads) + " for its head range, or " + std::to_string(s.heads) + ")");
    if (f.batch != 1 && f.batch != s.batch)
      throw UsageError("pattern 'custom': '" + path + "' has batch " + std::to_string(f.batch) + " (allowed: 1 or " +
                       std::to_string(s.batch) + ")");
  };
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    const BlockMask& m = load_custom(ctx, p.get_string("file"));
    int64_t h = m.shape.heads == 1 ? 0 : m.shape.heads == ctx.group_heads ? ctx.group_head : ctx.head;
    int64_t b = m.shape.batch == 1 ? 0 : ctx.batch_index;
    std::copy(m.head_bits(b, h), m.head_bits(b, h) + m.shape.head_cells(), out.bits);
    *out.info = m.heads[size_t(h)];
  };
  return d;
}());

}  // namespace
}  // namespace bsattn
