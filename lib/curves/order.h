// Token orders for image/video grids: bijections between positions along a curve and grid cells.
//
// A grid is T x H x W (a 2D grid is T = 1); cell (t,h,w) has raster index (t*H + h)*W + w. Every
// order is a permutation `perm` with perm[i] = raster index of the cell at curve position i (the
// same convention as PatternContext::token_order and the .npy files we write, so that PyTorch's
// x.index_select(seq_dim, perm) reorders a tensor). One file per family:
//   raster.cpp   raster (identity) and snake (boustrophedon)
//   morton.cpp   Z-order on the enclosing power-of-two cube, cells outside skipped
//   hilbert.cpp  Hilbert on the enclosing power-of-two cube (Skilling's transform), cells outside skipped
//   gilbert.cpp  generalized Hilbert for arbitrary rectangles and cuboids
//   tiles.cpp    t x h x w tiles in raster order of tiles (Sliding Tile Attention / VSA layout)
//   residue.cpp  residue classes within segments (LongNet dilated attention becomes block diagonal)
// sequence.cpp places a grid order inside a text+grid sequence and applies orders to tensors.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/spec.h"

namespace bsattn::curves {

using Perm = std::vector<int64_t>;

struct Grid {
  int64_t t = 1, h = 1, w = 1;
  bool is_2d = false;  // given as HxW (affects printing only)
  int64_t size() const { return t * h * w; }
  int64_t index(int64_t ti, int64_t hi, int64_t wi) const { return (ti * h + hi) * w + wi; }
  std::string str() const;  // "13x30x45" or "30x45"
  nlohmann::json to_json() const;
};
// "TxHxW" or "HxW", every side >= 1, at most 2^21 per side and 2^34 cells; `what` names the option.
Grid parse_grid(const std::string& text, const std::string& what);
Grid make_grid(int64_t t, int64_t h, int64_t w, const std::string& what);

// --- the families (each returns a permutation of the grid's cells) ---
Perm raster_order(const Grid& g);
Perm snake_order(const Grid& g);
Perm morton_order(const Grid& g);
Perm hilbert_order(const Grid& g);
Perm gilbert_order(const Grid& g);
Perm tile_order(const Grid& g, const Grid& tile);
// Within each segment of `segment` tokens (the last may be shorter), tokens sorted by (p mod rate,
// p div rate): position p of a full segment moves to (p mod rate)*(segment/rate) + p div rate.
Perm residue_order(int64_t n, int64_t segment, int64_t rate);

// Hilbert index of a point on the 2^bits cube in `dims` dimensions (1..3), x[0] the most
// significant axis. Exposed for tests.
uint64_t hilbert_index(const int64_t* x, int dims, int bits);

// The tile a "tiles" order uses when none is given: its volume reaches `block` by doubling w, h, t
// in turn (each capped at the grid's side), e.g. 4x4x8 for 128 and 4x4x4 for 64.
Grid auto_tile(const Grid& g, int64_t block);

// --- order specs: NAME[:key=value,...] ---
struct OrderSpec {
  std::string name;  // raster, snake, morton, hilbert, gilbert, tiles, residue
  Grid tile;         // tiles
  bool tile_auto = true;
  int64_t segment = 0, rate = 1;  // residue
  std::string str() const;        // canonical spec with every parameter
  nlohmann::json to_json() const;
};
// Names of every order, and the default set compared by `analyze --curves` (spatial orders).
const std::vector<std::string>& order_names();
const std::vector<std::string>& default_compared_orders();
std::string orders_help();  // one line per order with its parameters
// Parses a spec; `block` resolves tiles:tile=auto. UsageError names `what` and the allowed values.
OrderSpec parse_order(const std::string& text, const Grid& g, int64_t block, const std::string& what);
// Splits "raster,tiles:tile=2x8x8,residue:segment=64,rate=4" into specs (an item with '=' but no
// ':' continues the previous spec's parameters). An empty item is refused naming `what` (split_list).
std::vector<std::string> split_order_list(const std::string& text, const std::string& what = "--order",
                                          const std::string& example = "raster,hilbert,gilbert");
Perm grid_order(const OrderSpec& spec, const Grid& g);

// --- sequences: a text part kept in place at the head or tail, the grid part reordered ---
struct SequenceLayout {
  Grid grid;
  int64_t text = 0;
  bool text_at_head = true;
  int64_t length() const { return text + grid.size(); }
  int64_t grid_offset() const { return text_at_head ? text : 0; }  // sequence index of grid cell 0
  nlohmann::json to_json() const;
};
// Validates text >= 0 (UsageError) and builds the whole-sequence permutation.
Perm sequence_order(const OrderSpec& spec, const SequenceLayout& layout);
Perm sequence_order(const Perm& grid_perm, const SequenceLayout& layout);

Perm inverse_permutation(const Perm& perm);  // inv[perm[i]] = i; checks it is a permutation
// UsageError naming `what` unless perm is a permutation of 0..n-1 (n = perm.size()).
void check_permutation(const Perm& perm, const std::string& what);

// x is [batch, seq, inner] (inner = heads*head_dim for BSHD tensors). apply: out[b,i] = x[b,perm[i]];
// unapply (the inverse): out[b,perm[i]] = x[b,i]. out must not alias x.
void apply_token_order(const float* x, float* out, int64_t batch, int64_t seq, int64_t inner, const Perm& perm);
void unapply_token_order(const float* x, float* out, int64_t batch, int64_t seq, int64_t inner, const Perm& perm);
std::vector<float> apply_token_order(const std::vector<float>& x, int64_t batch, int64_t seq, int64_t inner,
                                     const Perm& perm);
std::vector<float> unapply_token_order(const std::vector<float>& x, int64_t batch, int64_t seq, int64_t inner,
                                       const Perm& perm);

// An attention run's outputs, computed on the tokens in `perm`'s order, back to the original order in
// place: r.out (BSHD, q_len, heads_q) and r.lse ([batch*heads_q, q_len]); with `gradients`, r.dq like out
// and r.dk, r.dv over kv_len and heads_kv. R: any result with those float vectors (run, ring, dilated);
// P: the problem (AttentionProblem). Nothing to do for an empty perm.
template <class R, class P>
void unapply_token_order_outputs(R& r, const P& p, const Perm& perm, bool gradients) {
  if (perm.empty()) return;
  auto back = [&](std::vector<float>& x, int64_t batch, int64_t seq, int64_t inner) {
    x = unapply_token_order(x, batch, seq, inner, perm);
  };
  back(r.out, p.batch, p.q_len, p.heads_q * p.head_dim);
  back(r.lse, p.batch * p.heads_q, p.q_len, 1);
  if (gradients) {
    back(r.dq, p.batch, p.q_len, p.heads_q * p.head_dim);
    back(r.dk, p.batch, p.kv_len, p.heads_kv * p.head_dim);
    back(r.dv, p.batch, p.kv_len, p.heads_kv * p.head_dim);
  }
}

// int64 .npy of shape (n,), written atomically; the reader checks dtype, rank, length (if > 0)
// and that the values are a permutation.
void write_permutation(const std::string& path, const Perm& perm);
Perm read_permutation(const std::string& path, int64_t expected_length = 0);

}  // namespace bsattn::curves
