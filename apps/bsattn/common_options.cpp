#include "apps/bsattn/common_options.h"

namespace bsattn::app {

void add_block_options(CLI::App& sub, BlockOptions& o, const std::string& group, const std::string& unset,
                       BlockValues values) {
  if (values == BlockValues::Sweep) {
    sub.add_option("--block", o.block, "Block sizes (q = kv), list or start:stop:step; unset: " + unset)
        ->type_name("LIST")
        ->group(group);
    return;
  }
  if (values == BlockValues::Square) {
    sub.add_option("--block", o.block, "Block size in tokens (unset: " + unset + ")")->type_name("INT")->group(group);
    return;
  }
  sub.add_option("--block", o.block, "Block size for queries and keys (unset: " + unset + ")")
      ->type_name("INT")
      ->group(group);
  sub.add_option("--block-q", o.block_q, "Query block size (overrides --block)")->type_name("INT")->group(group);
  sub.add_option("--block-kv", o.block_kv, "Key block size (overrides --block)")->type_name("INT")->group(group);
}

void add_head_dim_option(CLI::App& sub, int64_t& head_dim, const std::string& help, const std::string& group) {
  sub.add_option("--head-dim", head_dim, help)
      ->check(CLI::Range(int64_t(1), int64_t(4096)))
      ->capture_default_str()
      ->group(group);
}

}  // namespace bsattn::app
