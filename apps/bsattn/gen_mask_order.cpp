// gen-mask token-order options: --order NAME --grid TxHxW|HxW [--text N] [--text-position head|tail]
// [--emit-permutation FILE] [--emit-inverse FILE]. The permutation covers the whole sequence (text
// kept in place) and reaches the patterns as PatternContext::token_order.
#include "apps/bsattn/gen_mask_extras.h"
#include "lib/curves/order.h"
#include "lib/error.h"

namespace bsattn::app {

struct GenMaskOrderOptions {
  std::string order, grid, text_position = "head", emit, emit_inverse;
  int64_t text = 0;
};

std::shared_ptr<GenMaskOrderOptions> add_gen_mask_order_options(CLI::App& sub) {
  auto o = std::make_shared<GenMaskOrderOptions>();
  const char* g = "Token order";
  sub.add_option("--order", o->order,
                 "Reorder the grid tokens (video/image patterns build the mask for the reordered sequence):\n" +
                     curves::orders_help())
      ->group(g);
  sub.add_option("--grid", o->grid, "Grid of the reordered tokens, TxHxW (video) or HxW (image)")->group(g);
  sub.add_option("--text", o->text, "Text tokens kept in place (q_len = kv_len must equal text + grid cells)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 40))
      ->capture_default_str()
      ->group(g);
  sub.add_option("--text-position", o->text_position, "Where the text tokens sit")
      ->check(CLI::IsMember({"head", "tail"}))
      ->capture_default_str()
      ->group(g);
  sub.add_option("--emit-permutation", o->emit,
                 "Write the permutation as int64 .npy (perm[i] = original index of the token at position i)")
      ->group(g);
  sub.add_option("--emit-inverse", o->emit_inverse, "Write the inverse permutation as int64 .npy")->group(g);
  return o;
}

void prepare_gen_mask_order(const GenMaskOrderOptions& o, MaskRequest& req, GenMaskPrepared& prep) {
  if (o.order.empty()) {
    if (!o.grid.empty() || o.text != 0 || !o.emit.empty() || !o.emit_inverse.empty())
      throw UsageError("--grid, --text, --emit-permutation and --emit-inverse need --order NAME");
    return;
  }
  if (o.grid.empty()) throw UsageError("--order needs --grid TxHxW (or HxW) for the reordered tokens");
  curves::SequenceLayout layout;
  layout.grid = curves::parse_grid(o.grid, "--grid");
  layout.text = o.text;
  layout.text_at_head = o.text_position != "tail";
  if (req.shape.q_len != req.shape.kv_len)
    throw UsageError("--order needs q_len = kv_len (got " + std::to_string(req.shape.q_len) + " and " +
                     std::to_string(req.shape.kv_len) + ")");
  if (layout.length() != req.shape.q_len)
    throw UsageError("--grid " + layout.grid.str() + " (" + std::to_string(layout.grid.size()) + " tokens) + --text " +
                     std::to_string(layout.text) + " = " + std::to_string(layout.length()) +
                     " tokens, but the sequence has " + std::to_string(req.shape.q_len) + " (they must be equal)");
  curves::OrderSpec spec = curves::parse_order(o.order, layout.grid, req.shape.block_q, "--order");
  prep.token_order = std::make_shared<std::vector<int64_t>>(curves::sequence_order(spec, layout));
  req.token_order = prep.token_order.get();
  prep.order_spec = spec.to_json();
  prep.order_spec["layout"] = layout.to_json();
  if (!o.emit.empty()) prep.order_spec["permutation_file"] = o.emit;
}

void add_gen_mask_order_outputs(const GenMaskOrderOptions& o, OutputSet& outputs) {
  outputs.add(o.emit, "--emit-permutation");
  outputs.add(o.emit_inverse, "--emit-inverse");
}

void finish_gen_mask_order(const GenMaskOrderOptions& o, const GenMaskPrepared& prep, BlockMask&) {
  if (!prep.token_order) return;
  if (!o.emit.empty()) curves::write_permutation(o.emit, *prep.token_order);
  if (!o.emit_inverse.empty()) curves::write_permutation(o.emit_inverse, curves::inverse_permutation(*prep.token_order));
}

}  // namespace bsattn::app
