#include "patterns/registry.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <sstream>

#include "lib/error.h"
#include "lib/rng.h"

namespace bsattn {

namespace {
std::map<std::string, PatternDef>& registry() {
  static std::map<std::string, PatternDef> r;
  return r;
}
}  // namespace

PatternRegistrar::PatternRegistrar(PatternDef def) {
  auto name = def.name;
  if (!registry().emplace(name, std::move(def)).second) throw std::logic_error("pattern registered twice: " + name);
}

uint64_t PatternContext::stream_seed(uint64_t salt) const {
  return mix_seed(seed, uint64_t(batch_index), uint64_t(head), salt);
}

const PatternDef& find_pattern(const std::string& name) {
  auto it = registry().find(name);
  if (it == registry().end()) {
    std::string names;
    for (auto* p : all_patterns()) names += (names.empty() ? "" : ", ") + p->name;
    throw UsageError("unknown pattern '" + name + "' (known: " + names + "; see --list-patterns)");
  }
  return it->second;
}

std::vector<const PatternDef*> all_patterns() {
  std::vector<const PatternDef*> v;
  for (auto& [n, d] : registry()) v.push_back(&d);
  std::stable_sort(v.begin(), v.end(), [](auto* a, auto* b) {
    return a->family != b->family ? a->family < b->family : a->name < b->name;
  });
  return v;
}

std::string ParsedPattern::spec() const {
  if (!def) return "";
  std::string s = def->name;
  bool first = true;
  for (auto& [k, v] : params.values()) {
    s += (first ? ":" : ",") + k + "=" + v;
    first = false;
  }
  return s;
}

ParsedPattern parse_pattern(const std::string& text, const std::string& what) {
  Spec spec = parse_spec(text, what);
  ParsedPattern p;
  p.def = &find_pattern(spec.name);
  p.params = Params(p.def->params, spec.args, "pattern '" + p.def->name + "'");
  return p;
}

namespace {
// Every head in 0..heads-1 belongs to exactly one entry.
void check_head_coverage(const std::vector<HeadMapEntry>& entries, int64_t heads) {
  std::vector<int8_t> owned(size_t(std::max<int64_t>(heads, 0)), 0);
  for (auto& e : entries) {
    if (e.first < 0 || e.last < e.first || e.last >= heads)
      throw UsageError("--head-map: range '" + std::to_string(e.first) + "-" + std::to_string(e.last) +
                       "' is outside heads 0-" + std::to_string(heads - 1) + " or reversed");
    for (int64_t h = e.first; h <= e.last; ++h) {
      if (owned[size_t(h)]) throw UsageError("--head-map: head " + std::to_string(h) + " is assigned twice");
      owned[size_t(h)] = 1;
    }
  }
  for (int64_t h = 0; h < heads; ++h)
    if (!owned[size_t(h)])
      throw UsageError("--head-map: head " + std::to_string(h) + " is not assigned (every head 0-" +
                       std::to_string(heads - 1) + " needs exactly one range)");
}
}  // namespace

std::vector<HeadMapEntry> parse_head_map(const std::string& text, int64_t heads) {
  std::vector<HeadMapEntry> out;
  for (const std::string& item : split_list(text, "--head-map", "0-3=dense;4-15=local:window=2", ';')) {
    auto eq = item.find('=');
    if (eq == std::string::npos)
      throw UsageError("--head-map: '" + item + "' is not RANGE=SPEC (e.g. 0-3=dense)");
    std::string range = item.substr(0, eq);
    HeadMapEntry e;
    auto dash = range.find('-');
    e.first = parse_int(range.substr(0, dash), "--head-map range '" + range + "'");
    e.last = dash == std::string::npos ? e.first : parse_int(range.substr(dash + 1), "--head-map range '" + range + "'");
    e.pattern = parse_pattern(item.substr(eq + 1), "--head-map");
    out.push_back(e);
  }
  check_head_coverage(out, heads);
  return out;
}

std::vector<HeadMapEntry> MaskRequest::groups() const {
  if (!head_map.empty()) {
    if (pattern.def) throw UsageError("give either --pattern or --head-map, not both");
    return head_map;
  }
  if (!pattern.def) throw UsageError("no pattern given (use --pattern NAME[:k=v,...] or --head-map)");
  return {{0, shape.heads - 1, pattern}};
}

bool MaskRequest::batch_invariant() const {
  for (auto& g : groups())
    if (!g.pattern.def->batch_invariant) return false;
  return true;
}

bool resolve_natural_lengths(MaskRequest& req) {
  if (req.shape.q_len > 0 && req.shape.kv_len > 0) return true;
  if (req.shape.heads <= 0) return false;
  std::string from;
  int64_t q = 0, kv = 0;
  for (auto& g : req.groups()) {
    const PatternDef& def = *g.pattern.def;
    if (!def.natural_lengths) continue;
    auto [gq, gk] = def.natural_lengths(g.pattern.params);
    if (!from.empty() && (gq != q || gk != kv))
      throw UsageError("patterns '" + from + "' and '" + def.name + "' imply different sequence lengths (" +
                       std::to_string(q) + "x" + std::to_string(kv) + " vs " + std::to_string(gq) + "x" +
                       std::to_string(gk) + "); give --seq");
    q = gq;
    kv = gk;
    from = def.name;
  }
  if (from.empty()) return false;
  if (req.shape.q_len <= 0) req.shape.q_len = q;
  if (req.shape.kv_len <= 0) req.shape.kv_len = kv;
  return true;
}

BlockMask generate_mask(const MaskShape& shape, bool causal, uint64_t seed, const std::string& spec) {
  MaskRequest req;
  req.shape = shape;
  req.causal = causal;
  req.seed = seed;
  req.pattern = parse_pattern(spec, "--pattern");
  return generate_mask(req);
}

BlockMask generate_mask(const MaskRequest& req) {
  req.shape.validate();
  const std::vector<HeadMapEntry> groups = req.groups();
  if (!req.head_map.empty()) check_head_coverage(groups, req.shape.heads);
  bool causal = req.causal;
  for (auto& g : groups) {
    if (g.pattern.def->needs_inputs && !req.inputs)
      throw UsageError("pattern '" + g.pattern.def->name + "' selects blocks from Q/K: give --q/--k or --synthetic");
    causal |= g.pattern.def->implies_causal;
  }

  BlockMask m(req.shape);
  m.causal = causal;
  for (auto& g : groups) {
    const PatternDef& def = *g.pattern.def;
    PatternContext ctx;
    ctx.shape = req.shape;
    ctx.causal = causal;
    ctx.seed = req.seed;
    ctx.group_heads = g.last - g.first + 1;
    ctx.token_order = req.token_order;
    ctx.inputs = req.inputs;
    if (def.validate) def.validate(ctx, g.pattern.params);
    for (int64_t h = g.first; h <= g.last; ++h) {
      if (def.head_invariant && def.batch_invariant && h > g.first) {
        for (int64_t b = 0; b < req.shape.batch; ++b)
          std::copy(m.head_bits(b, g.first), m.head_bits(b, g.first) + req.shape.head_cells(),
                    m.head_bits(b, h));
        m.heads[h] = m.heads[g.first];
        continue;
      }
      ctx.head = h;
      ctx.group_head = h - g.first;
      int64_t nb = def.batch_invariant ? 1 : req.shape.batch;
      for (int64_t b = 0; b < nb; ++b) {
        ctx.batch_index = b;
        HeadInfo info;
        HeadOutput out{m.head_bits(b, h), &info, req.shape.mk()};
        def.generate(ctx, g.pattern.params, out);
        m.heads[h] = info;
      }
      for (int64_t b = nb; b < req.shape.batch; ++b)
        std::copy(m.head_bits(0, h), m.head_bits(0, h) + req.shape.head_cells(), m.head_bits(b, h));
    }
  }
  m.apply_causal();
  // Dense heads keep their type only when the bitmap is full; a sparse pattern that happens to keep
  // every block becomes dense (kernels may then skip its bitmap).
  m.normalize_head_types();
  m.check_consistency();

  auto& spec = m.spec;
  spec = nlohmann::json::object();
  spec["seed"] = req.seed;
  spec["causal"] = causal;
  auto& gs = spec["groups"] = nlohmann::json::array();
  std::string canon;
  for (auto& g : groups) {
    const std::string one = g.pattern.spec();
    gs.push_back({{"heads", {g.first, g.last}}, {"pattern", g.pattern.def->name}, {"params", g.pattern.params.to_json()},
                  {"spec", one}});
    canon += (canon.empty() ? "" : ";") + std::to_string(g.first) + "-" + std::to_string(g.last) + "=" + one;
  }
  if (req.head_map.empty()) spec["pattern"] = gs[0]["spec"];
  else spec["head_map"] = canon;
  return m;
}

std::string list_patterns_text() {
  std::ostringstream os;
  std::string family;
  for (auto* p : all_patterns()) {
    if (p->family != family) {
      family = p->family;
      os << "\n[" << family << "]\n";
    }
    os << "  " << p->name << (p->implies_causal ? " (causal)" : "") << "\n      " << p->summary << "\n";
    for (auto& d : p->params) {
      os << "      " << d.name << " (" << param_kind_name(d.kind);
      if (d.kind == ParamKind::Int || d.kind == ParamKind::Float || d.kind == ParamKind::IntList ||
          d.kind == ParamKind::FloatList) {
        auto num = [](double x, const char* inf) {
          if (std::abs(x) >= 1e299) return std::string(inf);
          std::ostringstream o;
          o << x;
          return o.str();
        };
        os << ", " << num(d.min, "-inf") << ".." << num(d.max, "inf");
      }
      if (!d.choices.empty()) {
        os << ", one of";
        for (auto& c : d.choices) os << " " << c;
      }
      bool scalar = d.kind == ParamKind::Int || d.kind == ParamKind::Float || d.kind == ParamKind::Bool;
      os << ", default " << (!d.default_value.empty() ? d.default_value : scalar ? "required" : "none") << "): "
         << d.help << "\n";
    }
  }
  return os.str();
}

nlohmann::json list_patterns_json() {
  auto j = nlohmann::json::array();
  for (auto* p : all_patterns()) {
    auto ps = nlohmann::json::array();
    for (auto& d : p->params) {
      nlohmann::json pj = {{"name", d.name}, {"kind", param_kind_name(d.kind)}, {"default", d.default_value},
                           {"help", d.help}};
      if (d.min > -1e299) pj["min"] = d.min;
      if (d.max < 1e299) pj["max"] = d.max;
      if (!d.choices.empty()) pj["choices"] = d.choices;
      ps.push_back(pj);
    }
    j.push_back({{"name", p->name}, {"family", p->family}, {"summary", p->summary}, {"params", ps},
                 {"causal", p->implies_causal}, {"needs_inputs", p->needs_inputs}});
  }
  return j;
}

}  // namespace bsattn
