// Grids, order specs and the dispatch from a spec to a family (see order.h).
#include "lib/curves/order.h"

#include <algorithm>
#include <sstream>

#include "lib/error.h"

namespace bsattn::curves {

namespace {
constexpr int64_t kMaxSide = int64_t(1) << 21;  // Morton/Hilbert codes use 21 bits per axis
constexpr int64_t kMaxCells = int64_t(1) << 34;
}  // namespace

std::string Grid::str() const {
  std::ostringstream s;
  if (is_2d) s << h << "x" << w;
  else s << t << "x" << h << "x" << w;
  return s.str();
}

nlohmann::json Grid::to_json() const {
  if (is_2d) return nlohmann::json::array({h, w});
  return nlohmann::json::array({t, h, w});
}

Grid make_grid(int64_t t, int64_t h, int64_t w, const std::string& what) {
  if (t <= 0 || h <= 0 || w <= 0)
    throw UsageError(what + ": grid sides must be >= 1 (got " + std::to_string(t) + "x" + std::to_string(h) + "x" +
                     std::to_string(w) + ")");
  if (t > kMaxSide || h > kMaxSide || w > kMaxSide)
    throw UsageError(what + ": a grid side is larger than 2^21");
  if (t * h > kMaxCells / w) throw UsageError(what + ": the grid has more than 2^34 cells");
  Grid g;
  g.t = t;
  g.h = h;
  g.w = w;
  return g;
}

Grid parse_grid(const std::string& text, const std::string& what) {
  // parse_dims rejects zero and negative sides with a message naming `what`.
  std::vector<int64_t> d;
  for (size_t i = 0, start = 0; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == 'x' || text[i] == 'X') {
      std::string part = text.substr(start, i - start);
      int64_t v = parse_int(part, what);
      if (v <= 0)
        throw UsageError(what + ": '" + text + "' must be positive sizes TxHxW or HxW (each side >= 1)");
      d.push_back(v);
      start = i + 1;
    }
  }
  if (d.size() == 2) {
    Grid g = make_grid(1, d[0], d[1], what);
    g.is_2d = true;
    return g;
  }
  if (d.size() == 3) return make_grid(d[0], d[1], d[2], what);
  throw UsageError(what + ": '" + text + "' must be TxHxW (video) or HxW (image), e.g. 13x30x45");
}

Grid auto_tile(const Grid& g, int64_t block) {
  Grid t = make_grid(1, 1, 1, "tile");
  t.is_2d = g.is_2d;
  int axis = 0;
  for (int guard = 0; guard < 200 && t.size() < block; ++guard, axis = (axis + 1) % 3) {
    int64_t* side = axis == 0 ? &t.w : axis == 1 ? &t.h : &t.t;
    int64_t limit = axis == 0 ? g.w : axis == 1 ? g.h : g.t;
    if (*side * 2 <= limit) *side *= 2;
    else if (t.w * 2 > g.w && t.h * 2 > g.h && t.t * 2 > g.t) break;  // the whole grid is one tile
  }
  return t;
}

const std::vector<std::string>& order_names() {
  static const std::vector<std::string> n = {"raster", "snake", "morton", "hilbert", "gilbert", "tiles", "residue"};
  return n;
}

const std::vector<std::string>& default_compared_orders() {
  static const std::vector<std::string> n = {"raster", "snake", "morton", "hilbert", "gilbert", "tiles"};
  return n;
}

std::string orders_help() {
  return "  raster                     row-major (identity)\n"
         "  snake                      boustrophedon: rows and frames alternate direction\n"
         "  morton                     Z-order on the enclosing power-of-two cube, cells outside skipped\n"
         "  hilbert                    Hilbert on the enclosing power-of-two cube, cells outside skipped\n"
         "  gilbert                    generalized Hilbert for any rectangle/cuboid (face-adjacent steps\n"
         "                             when a side is even)\n"
         "  tiles[:tile=TxHxW|auto]    tiles in raster order of tiles (STA/VSA); auto: volume = block\n"
         "  residue:segment=N[,rate=R] dilated-attention residue classes within segments of N tokens\n";
}

namespace {
const std::vector<ParamDef>& order_params(const std::string& name) {
  static const std::vector<ParamDef> none;
  static const std::vector<ParamDef> tiles = {
      {"tile", ParamKind::String, "auto", -1e300, 1e300, "tile sizes TxHxW (HxW for 2D grids) or auto", {}}};
  static const std::vector<ParamDef> residue = {
      {"segment", ParamKind::Int, "", 1, 1e15, "segment length in tokens", {}},
      {"rate", ParamKind::Int, "1", 1, 1e15, "dilation rate", {}}};
  if (name == "tiles") return tiles;
  if (name == "residue") return residue;
  return none;
}
}  // namespace

OrderSpec parse_order(const std::string& text, const Grid& g, int64_t block, const std::string& what) {
  Spec s = parse_spec(text, what);
  bool known = false;
  for (auto& n : order_names()) known |= n == s.name;
  if (!known) {
    std::string all;
    for (auto& n : order_names()) all += (all.empty() ? "" : ", ") + n;
    throw UsageError(what + ": unknown order '" + s.name + "' (allowed: " + all + ")");
  }
  Params p(order_params(s.name), s.args, "order '" + s.name + "'");
  OrderSpec o;
  o.name = s.name;
  if (o.name == "tiles") {
    const std::string& t = p.get_string("tile");
    if (t == "auto") {
      if (block <= 0) throw UsageError(what + ": tiles:tile=auto needs a block size");
      o.tile = auto_tile(g, block);
    } else {
      o.tile_auto = false;
      Grid tile = parse_grid(t, what + " tile");
      if (tile.is_2d != g.is_2d && !(tile.is_2d && g.t == 1))
        throw UsageError(what + ": tile '" + t + "' must have as many sides as the grid " + g.str());
      o.tile = tile;
    }
  }
  if (o.name == "residue") {
    o.segment = p.get_int("segment");
    o.rate = p.get_int("rate");
    if (o.segment % o.rate != 0)
      throw UsageError(what + ": residue segment " + std::to_string(o.segment) + " must be a multiple of rate " +
                       std::to_string(o.rate));
  }
  return o;
}

std::string OrderSpec::str() const {
  if (name == "tiles") return name + ":tile=" + tile.str();
  if (name == "residue") return name + ":segment=" + std::to_string(segment) + ",rate=" + std::to_string(rate);
  return name;
}

nlohmann::json OrderSpec::to_json() const {
  nlohmann::json j = {{"name", name}, {"spec", str()}};
  if (name == "tiles") {
    j["tile"] = tile.to_json();
    j["tile_auto"] = tile_auto;
  }
  if (name == "residue") {
    j["segment"] = segment;
    j["rate"] = rate;
  }
  return j;
}

std::vector<std::string> split_order_list(const std::string& text, const std::string& what,
                                          const std::string& example) {
  std::vector<std::string> out;
  for (std::string item : split_list(text, what, example)) {
    item.erase(std::remove(item.begin(), item.end(), ' '), item.end());
    bool continues = item.find('=') != std::string::npos && item.find(':') == std::string::npos;
    if (continues && !out.empty()) out.back() += "," + item;
    else out.push_back(item);
  }
  return out;
}

Perm grid_order(const OrderSpec& spec, const Grid& g) {
  if (spec.name == "raster") return raster_order(g);
  if (spec.name == "snake") return snake_order(g);
  if (spec.name == "morton") return morton_order(g);
  if (spec.name == "hilbert") return hilbert_order(g);
  if (spec.name == "gilbert") return gilbert_order(g);
  if (spec.name == "tiles") return tile_order(g, spec.tile);
  if (spec.name == "residue") return residue_order(g.size(), spec.segment, spec.rate);
  throw UsageError("unknown order '" + spec.name + "'");
}

}  // namespace bsattn::curves
