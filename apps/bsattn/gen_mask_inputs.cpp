// gen-mask Q/K input options for the adaptive selectors (patterns/adaptive): --q/--k files or
// --synthetic KIND[:params], --layout, --dtype; recorded in mask.spec["inputs"].
#include "apps/bsattn/attention_inputs.h"
#include "apps/bsattn/common_options.h"
#include "apps/bsattn/gen_mask_extras.h"
#include "lib/error.h"
#include "lib/npy.h"

namespace bsattn::app {

struct GenMaskInputOptions {
  InputCli in;
};

std::shared_ptr<GenMaskInputOptions> add_gen_mask_input_options(CLI::App& sub) {
  auto o = std::make_shared<GenMaskInputOptions>();
  const std::string g = "Adaptive inputs";
  add_input_options(sub, o->in, false, false, g);
  add_head_dim_option(sub, o->in.src.sizes.head_dim, "Synthetic: head dimension (even)", g);
  sub.add_option("--kv-heads", o->in.kv_heads, "Synthetic: key/value heads (0: as --heads)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 16))->capture_default_str()->group(g);
  return o;
}

void sizes_from_gen_mask_inputs(const GenMaskInputOptions& o, MaskRequest& req, bool heads_given) {
  const QkvSource& s = o.in.src;
  if (s.q.empty() || s.k.empty()) return;
  // Only the headers: load_inputs reads and checks the whole files later.
  const NpyHeader q = read_npy_header(s.q), k = read_npy_header(s.k);
  if (q.shape.size() != 4 || k.shape.size() != 4) return;  // load_inputs names the bad shape
  const bool bshd = s.layout != "bhsd";
  const size_t seq = bshd ? 1 : 2, heads = bshd ? 2 : 1;
  if (!req.shape.q_len) req.shape.q_len = q.shape[seq];
  if (!req.shape.kv_len) req.shape.kv_len = k.shape[seq];
  if (!heads_given) req.shape.heads = q.shape[heads];
}

void prepare_gen_mask_inputs(const GenMaskInputOptions& o, MaskRequest& req, GenMaskPrepared& prep) {
  const QkvSource& s = o.in.src;
  if (s.q.empty() && s.k.empty() && s.synthetic.empty()) return;  // patterns that need inputs say so
  InputCli in = o.in;
  in.src.sizes.batch = req.shape.batch;
  in.src.sizes.heads_q = req.shape.heads;
  if (!s.synthetic.empty()) {
    if (req.shape.q_len != req.shape.kv_len)
      throw UsageError("--synthetic makes self-attention inputs: q_len must equal kv_len");
    in.src.sizes.seq = req.shape.q_len;
  }
  auto qkv = std::make_shared<Qkv>(load_inputs(in, false, req.seed));
  if (qkv->q.seq != req.shape.q_len || qkv->k.seq != req.shape.kv_len || qkv->q.heads != req.shape.heads)
    throw UsageError("--q/--k: Q has S=" + std::to_string(qkv->q.seq) + " H=" + std::to_string(qkv->q.heads) + ", K has S=" +
                     std::to_string(qkv->k.seq) + " but the mask is for q_len=" + std::to_string(req.shape.q_len) +
                     " kv_len=" + std::to_string(req.shape.kv_len) + " heads=" + std::to_string(req.shape.heads));
  if (qkv->q.batch != 1 && qkv->q.batch != req.shape.batch)
    throw UsageError("--q/--k: batch " + std::to_string(qkv->q.batch) + " must be 1 or --batch " + std::to_string(req.shape.batch));
  // With --order the mask is built for the reordered sequence, so the selectors must score the
  // reordered tokens, as run --reorder does (prepare_gen_mask_order has set req.token_order).
  if (req.token_order) reorder_tokens(*qkv, *req.token_order);
  prep.inputs = std::make_shared<PatternInputs>(pattern_inputs(*qkv));
  prep.input_storage = qkv;
  prep.input_spec = qkv->spec;
  // Files keep their own 16-bit type; synthetic or float32 inputs take --dtype's (rounded when used).
  prep.input_dtype = qkv->q.dtype != ElemType::F32 ? qkv->q.dtype
                     : s.dtype == "bf16"            ? ElemType::BF16
                     : s.dtype == "f16"             ? ElemType::F16
                                                    : ElemType::F32;
  req.inputs = prep.inputs.get();
}

}  // namespace bsattn::app
