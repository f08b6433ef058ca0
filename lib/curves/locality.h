// Locality of a token order, measured: how compact the blocks of B consecutive tokens are on the grid
// and how many blocks a fixed 3D/2D window needs.
//
// Only grid tokens count. Blocks are those of the whole sequence: grid position i sits at sequence
// position grid_offset + i (grid_offset = text length when the text is at the head), so a text prefix
// shifts block boundaries exactly as it does in the model. Per-block values are averaged over tokens
// (each block weighted by its number of grid tokens), so partial blocks at the text boundary and at
// the end count in proportion to their size.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/curves/order.h"

namespace bsattn::curves {

// Window half-widths along t, h, w: query (t,h,w) attends every key with |dt|<=t, |dh|<=h, |dw|<=w.
struct WindowRadius {
  int64_t t = 1, h = 1, w = 1;
  std::string str() const;  // "1x1x1"
};
// "R" (all axes; t = 0 on a 2D grid), "RTxRHxRW", or "RHxRW" on a 2D grid; each >= 0.
WindowRadius parse_radius(const std::string& text, const Grid& g, const std::string& what);

struct WindowCoverage {
  WindowRadius radius;
  int64_t kept_blocks = 0;      // (query block, key block) pairs holding at least one window pair
  int64_t grid_blocks = 0;      // blocks holding grid tokens (the density's denominator is its square)
  double block_density = 0;     // kept_blocks / grid_blocks^2: the density a mask needs to cover the window
  int64_t computed_pairs = 0;   // grid token pairs inside kept blocks
  int64_t useful_pairs = 0;     // token pairs inside the window
  double useful_share = 0;      // useful_pairs / computed_pairs
  double token_density = 0;     // useful_pairs / N^2: the window's own density, the floor for any order
};

struct LocalityMetrics {
  int64_t tokens = 0, block = 0, grid_offset = 0;
  // Consecutive grid tokens: face-adjacent (one step along one axis), diagonal (Chebyshev distance 1,
  // more than one axis), jump (anything else); longest step as Euclidean length in cells.
  int64_t steps = 0, face_steps = 0, diagonal_steps = 0, jump_steps = 0;
  double longest_step = 0;
  int64_t blocks = 0;                // blocks holding grid tokens
  double bbox_per_token = 0;         // bounding-box volume / tokens in the block
  double radius_of_gyration = 0;     // sqrt(mean squared distance to the block's centroid), cells
  double surface_per_token = 0;      // face-neighbour pairs leaving the block / tokens in the block
  double neighbour_blocks = 0;       // distinct blocks holding a cell of the 26- (2D: 8-) neighbourhood
                                     // of the block's cells, the block itself included
  int64_t face_pairs = 0, same_block_face_pairs = 0;
  double same_block_share = 0;       // same_block_face_pairs / face_pairs
  std::vector<WindowCoverage> windows;

  double share(int64_t n) const { return steps ? double(n) / double(steps) : 0.0; }
  nlohmann::json to_json() const;
};

// grid_perm[i] = raster cell at grid position i (a permutation of the grid's cells).
LocalityMetrics locality_metrics(const Grid& g, const Perm& grid_perm, int64_t block, int64_t grid_offset,
                                 const std::vector<WindowRadius>& radii);

}  // namespace bsattn::curves
