#include "apps/bsattn/common_options.h"

#include <cmath>
#include <sstream>

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

CLI::Validator seed_check() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        const char* allowed = "allowed: an integer from 0 to 18446744073709551615";
        if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos)
          return "'" + v + "' is not a seed (" + allowed + ")";
        if (v.size() > 20 || (v.size() == 20 && v > "18446744073709551615"))
          return "'" + v + "' is too large (" + allowed + ")";
        return {};
      },
      "SEED", "seed");
}

namespace {
// Whether the whole of v is one finite number (into x).
bool finite_number(const std::string& v, double& x) {
  size_t pos = 0;
  try {
    x = std::stod(v, &pos);
  } catch (...) {
    return false;
  }
  return pos == v.size() && std::isfinite(x);
}
}  // namespace

CLI::Validator scale_check() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        double x = 0;
        if (!finite_number(v, x) || x < 0 || x > 3.4e38)
          return "'" + v + "' is not allowed (allowed: 0 for 1/sqrt(head_dim), or a finite number in (0, 3.4e38])";
        return {};
      },
      "SCALE", "scale");
}

CLI::Validator finite_range(double lo, double hi) {
  std::ostringstream range;
  range << "[" << lo << " - " << hi << "]";
  return CLI::Validator(
      [lo, hi, r = range.str()](std::string& v) -> std::string {
        double x = 0;
        if (!finite_number(v, x) || x < lo || x > hi)
          return "'" + v + "' is not allowed (allowed: a finite number in " + r + ")";
        return {};
      },
      "FLOAT in " + range.str(), "finite range");
}

void refuse_empty_values(CLI::App& app) {
  const CLI::Validator non_empty(
      [](std::string& v) -> std::string {
        if (v.empty()) return "the value is empty (give a value, or leave the option out for its default)";
        return {};
      },
      "", "non-empty");
  for (CLI::Option* opt : app.get_options())
    if (opt->get_type_size() > 0) opt->check(non_empty);
  for (CLI::App* sub : app.get_subcommands({})) refuse_empty_values(*sub);
}

}  // namespace bsattn::app
