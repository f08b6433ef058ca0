// --nsa SPEC and its files, shared by run, analyze and bench (lib/nsa/nsa.h computes; docs/nsa.md).
#pragma once
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "lib/nsa/nsa.h"

namespace bsattn::app {

struct NsaCli {
  std::string spec;                       // empty: no NSA
  std::string pool, gates, gate_logits;  // .npy files
  bool requested() const { return !spec.empty(); }
};
// with_gates: --nsa-gates / --nsa-gate-logits (run and analyze; bench times equal gates).
void add_nsa_options(CLI::App& sub, NsaCli& o, bool with_gates, const std::string& group);
// The parameters (with the pooling weights loaded); UsageError for the spec or the file.
NsaParams nsa_params(const NsaCli& o);
// The gates for `rows` tokens and `heads` query heads, [rows, heads, 3]; empty when none is given (1/3 each).
std::vector<float> nsa_gates(const NsaCli& o, int64_t rows, int64_t heads);

}  // namespace bsattn::app
