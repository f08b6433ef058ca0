#include "lib/tensor/qkv_source.h"

#include "lib/error.h"

namespace bsattn {

Qkv load_qkv(const QkvSource& src, bool need_v) {
  bool files = !src.q.empty() || !src.k.empty() || !src.v.empty();
  if (files && !src.synthetic.empty()) throw UsageError("give either --q/--k/--v files or --synthetic, not both");
  if (!files && src.synthetic.empty()) throw UsageError("inputs missing: give --q/--k" + std::string(need_v ? "/--v" : "") + " files or --synthetic KIND");
  Qkv r;
  r.layout = parse_layout(src.layout);
  if (files) {
    if (src.q.empty() || src.k.empty() || (need_v && src.v.empty()))
      throw UsageError(std::string("give all of --q, --k") + (need_v ? ", --v" : ""));
    r.q = load_tensor(src.q, "--q", r.layout, src.dtype);
    r.k = load_tensor(src.k, "--k", r.layout, src.dtype);
    r.v = need_v || !src.v.empty() ? load_tensor(src.v, "--v", r.layout, src.dtype) : r.k;
    check_qkv(r.q, r.k, r.v);
    auto desc = [](const Tensor& t, const std::string& path) {
      nlohmann::json j{{"file", path}, {"dtype", elem_type_name(t.dtype)}, {"shape_bshd", {t.batch, t.seq, t.heads, t.dim}}};
      if (t.file_dtype != t.dtype) j["file_dtype"] = elem_type_name(t.file_dtype);  // rounded on loading
      return j;
    };
    r.spec = {{"source", "files"}, {"layout", layout_name(r.layout)}, {"q", desc(r.q, src.q)}, {"k", desc(r.k, src.k)}};
    if (!src.v.empty()) r.spec["v"] = desc(r.v, src.v);
    return r;
  }
  SyntheticSizes z = src.sizes;
  if (z.seq <= 0) z.seq = synthetic_required_seq(src.synthetic);
  if (z.seq <= 0) throw UsageError("--synthetic needs a sequence length (--seq)");
  SyntheticQKV s = make_synthetic(src.synthetic, z, src.seed);
  auto tensor = [&](std::vector<float>&& data, int64_t heads, const char* name) {
    Tensor t;
    t.data = std::move(data);
    t.batch = z.batch;
    t.seq = z.seq;
    t.heads = heads;
    t.dim = z.head_dim;
    t.name = std::string("synthetic ") + name;
    return t;
  };
  r.q = tensor(std::move(s.q), z.heads_q, "Q");
  r.k = tensor(std::move(s.k), z.heads_kv, "K");
  r.v = tensor(std::move(s.v), z.heads_kv, "V");
  r.spec = {{"source", "synthetic"}, {"synthetic", s.spec},
            {"sizes", {{"batch", z.batch}, {"seq", z.seq}, {"heads_q", z.heads_q}, {"heads_kv", z.heads_kv}, {"head_dim", z.head_dim}}}};
  return r;
}

}  // namespace bsattn
