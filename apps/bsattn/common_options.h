// Options every subcommand shares, declared once here: the block sizes (--block, --block-q,
// --block-kv; lib/block_sizes.h turns them into sizes) and the head dimension (--head-dim).
#pragma once
#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

#include "lib/block_sizes.h"

namespace bsattn::app {

enum class BlockValues {
  PerSide,  // --block, --block-q, --block-kv, one size each (gen-mask, visualize mask/attention, analyze, run)
  Square,   // --block only, one size for both sides (visualize curve: tokens per block along an order)
  Sweep,    // --block LIST: square sizes swept as one axis (bench)
};

// `unset` says in --help what a size not given means ("128", "the mask file's or 128").
void add_block_options(CLI::App& sub, BlockOptions& o, const std::string& group, const std::string& unset,
                       BlockValues values = BlockValues::PerSide);

// --head-dim (synthetic inputs; bench has its own sweep axis under the same name).
void add_head_dim_option(CLI::App& sub, int64_t& head_dim, const std::string& help, const std::string& group);

// --seed of every subcommand: an unsigned 64-bit integer. CLI11 would read "-1" as 2^64-1; this
// check refuses a sign (or anything else that is not a plain integer in range) with the range stated.
CLI::Validator seed_check();
// --scale of run and analyze: 0 (meaning 1/sqrt(head_dim)) or a finite number in (0, 3.4e38], the
// float32 range the kernels and the CPU reference compute scores in.
CLI::Validator scale_check();
// A floating-point option in [lo, hi]. CLI::Range lets NaN through (every comparison with it is
// false), so --silu-n nan or --dpi nan would pass; this check refuses anything not finite and in range.
CLI::Validator finite_range(double lo, double hi);

// Refuses an empty value ("--seqlens ''", "--nsa ''", a positional '') on every option of `app` and
// its subcommands that takes a value. Many options mean "not given" by an empty string, so without
// this an empty value would silently run without what it asked for. Call after registering.
void refuse_empty_values(CLI::App& app);

}  // namespace bsattn::app
