#include "lib/render/colormap.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace bsattn::render {

uint32_t Rgb::argb() const {
  auto c = [](double v) { return uint32_t(std::lround(std::clamp(v, 0.0, 1.0) * 255.0)); };
  return 0xff000000u | (c(r) << 16) | (c(g) << 8) | c(b);
}

std::string Rgb::hex() const {
  uint32_t v = argb();
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%06x", v & 0xffffffu);
  return buf;
}

namespace {
// Entries 0, 16, 32, ..., 240 and 255 of the 256-entry viridis table (source named in the header).
constexpr double kViridis[17][3] = {
    {0.267004, 0.004874, 0.329415}, {0.282327, 0.094955, 0.417331}, {0.278826, 0.175490, 0.483397},
    {0.258965, 0.251537, 0.524736}, {0.229739, 0.322361, 0.545706}, {0.199430, 0.387607, 0.554642},
    {0.172719, 0.448791, 0.557885}, {0.149039, 0.508051, 0.557250}, {0.127568, 0.566949, 0.550556},
    {0.120638, 0.625828, 0.533488}, {0.157851, 0.683765, 0.501686}, {0.246070, 0.738910, 0.452024},
    {0.369214, 0.788888, 0.382914}, {0.515992, 0.831158, 0.294279}, {0.678489, 0.863742, 0.189503},
    {0.845561, 0.887322, 0.099702}, {0.993248, 0.906157, 0.143936}};
constexpr double kViridisPos[17] = {0,       16 / 255., 32 / 255.,  48 / 255.,  64 / 255.,  80 / 255.,
                                    96 / 255.,  112 / 255., 128 / 255., 144 / 255., 160 / 255., 176 / 255.,
                                    192 / 255., 208 / 255., 224 / 255., 240 / 255., 1.0};

// Tableau-10-like qualitative colours (hand-picked, well separated in hue).
constexpr uint32_t kLines[10] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                 0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};

Rgb from_hex(uint32_t v) { return {((v >> 16) & 255) / 255.0, ((v >> 8) & 255) / 255.0, (v & 255) / 255.0}; }

Rgb hsv(double h, double s, double v) {
  h = std::fmod(h, 1.0) * 6.0;
  int i = int(h) % 6;
  double f = h - std::floor(h), p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  switch (i) {
    case 0: return {v, t, p};
    case 1: return {q, v, p};
    case 2: return {p, v, t};
    case 3: return {p, q, v};
    case 4: return {t, p, v};
    default: return {v, p, q};
  }
}
}  // namespace

Rgb viridis(double t) {
  if (!(t > 0)) t = 0;  // NaN too
  if (t > 1) t = 1;
  int k = 0;
  while (k < 15 && t > kViridisPos[k + 1]) ++k;
  double f = (t - kViridisPos[k]) / (kViridisPos[k + 1] - kViridisPos[k]);
  return {kViridis[k][0] + f * (kViridis[k + 1][0] - kViridis[k][0]),
          kViridis[k][1] + f * (kViridis[k + 1][1] - kViridis[k][1]),
          kViridis[k][2] + f * (kViridis[k + 1][2] - kViridis[k][2])};
}

Rgb line_color(int index) { return from_hex(kLines[((index % 10) + 10) % 10]); }

Rgb category_color(int64_t index) {
  // Golden-ratio hue steps; saturation and value alternate in a 3-cycle so that neighbours with close
  // hues still differ in lightness.
  double h = std::fmod(0.07 + double(index) * 0.6180339887498949, 1.0);
  static constexpr double kS[3] = {0.75, 0.55, 0.9}, kV[3] = {0.92, 0.75, 0.6};
  return hsv(h, kS[index % 3], kV[index % 3]);
}

}  // namespace bsattn::render
