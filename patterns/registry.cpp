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

std::vector<HeadMapEntry> parse_head_map(const std::string& text, int64_t heads) {
  std::vector<HeadMapEntry> out;
  std::vector<int> owner(size_t(heads), -1);
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ';')) {
    if (item.find_first_not_of(" ") == std::string::npos) continue;
    auto eq = item.find('=');
    if (eq == std::string::npos)
      throw UsageError("--head-map: '" + item + "' is not RANGE=SPEC (e.g. 0-3=dense)");
    std::string range = item.substr(0, eq);
    HeadMapEntry e;
    auto dash = range.find('-');
    e.first = parse_int(range.substr(0, dash), "--head-map range '" + range + "'");
    e.last = dash == std::string::npos ? e.first : parse_int(range.substr(dash + 1), "--head-map range '" + range + "'");
    if (e.first < 0 || e.last < e.first || e.last >= heads)
      throw UsageError("--head-map: range '" + range + "' is outside heads 0-" + std::to_string(heads - 1) +
                       " or reversed");
    e.spec = parse_spec(item.substr(eq + 1), "--head-map");
    for (int64_t h = e.first; h <= e.last; ++h) {
      if (owner[h] >= 0) throw UsageError("--head-map: head " + std::to_string(h) + " is assigned twice");
      owner[h] = int(out.size());
    }
    out.push_back(e);
  }
  for (int64_t h = 0; h < heads; ++h)
    if (owner[h] < 0)
      throw UsageError("--head-map: head " + std::to_string(h) + " is not assigned (every head 0-" +
                       std::to_string(heads - 1) + " needs exactly one range)");
  return out;
}

namespace {
struct Group {
  HeadMapEntry entry;
  const PatternDef* def;
  Params params;
};
// The request's (head range, pattern, validated parameters) groups.
std::vector<Group> request_groups(const MaskRequest& req) {
  std::vector<Group> groups;
  if (!req.head_map.empty()) {
    if (!req.pattern.empty()) throw UsageError("give either --pattern or --head-map, not both");
    for (auto& e : parse_head_map(req.head_map, req.shape.heads)) groups.push_back({e, nullptr, {}});
  } else {
    if (req.pattern.empty()) throw UsageError("no pattern given (use --pattern NAME[:k=v,...] or --head-map)");
    groups.push_back({{0, req.shape.heads - 1, parse_spec(req.pattern, "--pattern")}, nullptr, {}});
  }
  for (auto& g : groups) {
    g.def = &find_pattern(g.entry.spec.name);
    g.params = Params(g.def->params, g.entry.spec.args, "pattern '" + g.def->name + "'");
  }
  return groups;
}
}  // namespace

bool resolve_natural_lengths(MaskRequest& req) {
  if (req.shape.q_len > 0 && req.shape.kv_len > 0) return true;
  if (req.shape.heads <= 0) return false;
  std::string from;
  int64_t q = 0, kv = 0;
  for (auto& g : request_groups(req)) {
    if (!g.def->natural_lengths) continue;
    auto [gq, gk] = g.def->natural_lengths(g.params);
    if (!from.empty() && (gq != q || gk != kv))
      throw UsageError("patterns '" + from + "' and '" + g.def->name + "' imply different sequence lengths (" +
                       std::to_string(q) + "x" + std::to_string(kv) + " vs " + std::to_string(gq) + "x" +
                       std::to_string(gk) + "); give --seq");
    q = gq;
    kv = gk;
    from = g.def->name;
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
  req.pattern = spec;
  return generate_mask(req);
}

BlockMask generate_mask(const MaskRequest& req) {
  req.shape.validate();
  std::vector<Group> groups = request_groups(req);
  bool causal = req.causal;
  for (auto& g : groups) {
    if (g.def->needs_inputs && !req.inputs)
      throw UsageError("pattern '" + g.def->name + "' selects blocks from Q/K: give --q/--k or --synthetic");
    causal |= g.def->implies_causal;
  }

  BlockMask m(req.shape);
  m.causal = causal;
  for (auto& g : groups) {
    PatternContext ctx;
    ctx.shape = req.shape;
    ctx.causal = causal;
    ctx.seed = req.seed;
    ctx.group_heads = g.entry.last - g.entry.first + 1;
    ctx.token_order = req.token_order;
    ctx.inputs = req.inputs;
    if (g.def->validate) g.def->validate(ctx, g.params);
    for (int64_t h = g.entry.first; h <= g.entry.last; ++h) {
      if (g.def->head_invariant && g.def->batch_invariant && h > g.entry.first) {
        for (int64_t b = 0; b < req.shape.batch; ++b)
          std::copy(m.head_bits(b, g.entry.first), m.head_bits(b, g.entry.first) + req.shape.head_cells(),
                    m.head_bits(b, h));
        m.heads[h] = m.heads[g.entry.first];
        continue;
      }
      ctx.head = h;
      ctx.group_head = h - g.entry.first;
      int64_t nb = g.def->batch_invariant ? 1 : req.shape.batch;
      for (int64_t b = 0; b < nb; ++b) {
        ctx.batch_index = b;
        HeadInfo info;
        HeadOutput out{m.head_bits(b, h), &info, req.shape.mk()};
        g.def->generate(ctx, g.params, out);
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
    nlohmann::json p = g.params.to_json();
    std::string s = g.def->name;
    bool first = true;
    for (auto& [k, v] : g.params.values()) {
      s += (first ? ":" : ",") + k + "=" + v;
      first = false;
    }
    gs.push_back({{"heads", {g.entry.first, g.entry.last}}, {"pattern", g.def->name}, {"params", p}, {"spec", s}});
    canon += (canon.empty() ? "" : ";") + std::to_string(g.entry.first) + "-" + std::to_string(g.entry.last) + "=" + s;
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
