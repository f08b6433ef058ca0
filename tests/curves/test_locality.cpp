// Locality metrics on small grids, values computed by hand in the comments.
#include <doctest/doctest.h>

#include <cmath>

#include "lib/curves/locality.h"
#include "lib/error.h"

using namespace bsattn;
using namespace bsattn::curves;

TEST_CASE("raster on a 2x4 image, block 4: every block is one row") {
  Grid g = parse_grid("2x4", "g");
  LocalityMetrics m = locality_metrics(g, raster_order(g), 4, 0, {parse_radius("1", g, "r")});
  // 7 steps: 6 along a row, 1 jump from (0,3) to (1,0) of length sqrt(1 + 9).
  CHECK(m.steps == 7);
  CHECK(m.face_steps == 6);
  CHECK(m.jump_steps == 1);
  CHECK(m.diagonal_steps == 0);
  CHECK(m.longest_step == doctest::Approx(std::sqrt(10.0)));
  CHECK(m.blocks == 2);
  CHECK(m.bbox_per_token == doctest::Approx(1.0));                  // 1x4 box / 4 tokens
  CHECK(m.radius_of_gyration == doctest::Approx(std::sqrt(1.25)));  // w = 0..3 around 1.5
  CHECK(m.surface_per_token == doctest::Approx(1.0));               // 4 vertical pairs leave each row
  CHECK(m.face_pairs == 10);                                        // 6 horizontal + 4 vertical
  CHECK(m.same_block_face_pairs == 6);
  CHECK(m.same_block_share == doctest::Approx(0.6));
  CHECK(m.neighbour_blocks == doctest::Approx(2.0));
  // 3x3 window: both rows see both rows: 4 block pairs of 16 token pairs = 64 computed; useful pairs
  // per row: 4 + 6 + 6 + 4 = 20, so 40 in all.
  REQUIRE(m.windows.size() == 1);
  CHECK(m.windows[0].kept_blocks == 4);
  CHECK(m.windows[0].block_density == doctest::Approx(1.0));
  CHECK(m.windows[0].computed_pairs == 64);
  CHECK(m.windows[0].useful_pairs == 40);
  CHECK(m.windows[0].useful_share == doctest::Approx(40.0 / 64.0));
  CHECK(m.windows[0].token_density == doctest::Approx(40.0 / 64.0));
}

TEST_CASE("gilbert on a 2x4 image, block 4: blocks are 2x2 squares") {
  Grid g = parse_grid("2x4", "g");
  Perm p = gilbert_order(g);
  LocalityMetrics m = locality_metrics(g, p, 4, 0, {parse_radius("0", g, "r")});
  CHECK(m.face_steps == 7);
  CHECK(m.longest_step == doctest::Approx(1.0));
  CHECK(m.bbox_per_token == doctest::Approx(1.0));  // 2x2 box / 4
  // Cells (0,0),(0,1),(1,0),(1,1): squared distances to (0.5,0.5) are all 0.5.
  CHECK(m.radius_of_gyration == doctest::Approx(std::sqrt(0.5)));
  CHECK(m.surface_per_token == doctest::Approx(0.5));  // 2 horizontal pairs cross the middle
  CHECK(m.same_block_share == doctest::Approx(0.8));   // 8 of 10 pairs
  // Radius 0: each token attends itself only: 2 diagonal blocks, 32 computed, 8 useful.
  CHECK(m.windows[0].kept_blocks == 2);
  CHECK(m.windows[0].block_density == doctest::Approx(0.5));
  CHECK(m.windows[0].useful_share == doctest::Approx(8.0 / 32.0));
}

TEST_CASE("a text prefix shifts block boundaries; partial blocks are weighted by their tokens") {
  // 1x1x6 line, raster, text 2 at the head, block 4: sequence blocks [0,4) and [4,8) hold grid cells
  // 0-1 and 2-5. Bounding boxes: 2/2 and 4/4 -> 1. Radii of gyration: 0.5 and sqrt(1.25), weighted
  // 2/6 and 4/6. Surface: 1 pair crosses -> 1/2 and 1/4, weighted -> 1/6 + 1/6.
  Grid g = make_grid(1, 1, 6, "g");
  LocalityMetrics m = locality_metrics(g, raster_order(g), 4, 2, {});
  CHECK(m.blocks == 2);
  CHECK(m.bbox_per_token == doctest::Approx(1.0));
  CHECK(m.radius_of_gyration == doctest::Approx(2.0 / 6 * 0.5 + 4.0 / 6 * std::sqrt(1.25)));
  CHECK(m.surface_per_token == doctest::Approx(1.0 / 3.0));
  CHECK(m.same_block_share == doctest::Approx(4.0 / 5.0));
}

TEST_CASE("3D: a diagonal step is counted as diagonal, and the 26-neighbourhood is used") {
  Grid g = make_grid(2, 2, 2, "g");
  // Order: (0,0,0) (1,1,1) then the rest in raster order.
  Perm p = {0, 7, 1, 2, 3, 4, 5, 6};
  LocalityMetrics m = locality_metrics(g, p, 1, 0, {parse_radius("1", g, "r")});
  CHECK(m.diagonal_steps >= 1);
  // Block size 1: each block is one cell whose 26-neighbourhood covers the whole 2x2x2 cube.
  CHECK(m.neighbour_blocks == doctest::Approx(8.0));
  // Window radius 1 covers the whole cube: every block pair kept, density 1, all pairs useful.
  CHECK(m.windows[0].block_density == doctest::Approx(1.0));
  CHECK(m.windows[0].useful_share == doctest::Approx(1.0));
}

TEST_CASE("locality rejects bad input") {
  Grid g = make_grid(1, 2, 2, "g");
  CHECK_THROWS_AS(locality_metrics(g, raster_order(g), 0, 0, {}), UsageError);
  CHECK_THROWS_AS(locality_metrics(g, Perm{0, 1, 2}, 4, 0, {}), UsageError);
  CHECK_THROWS_AS(locality_metrics(g, Perm{0, 1, 1, 3}, 4, 0, {}), UsageError);
  CHECK_THROWS_AS(parse_radius("-1", g, "--radius"), UsageError);
  CHECK_THROWS_AS(parse_radius("1x1x1x1", g, "--radius"), UsageError);
}
