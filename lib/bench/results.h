// The results schema "bsattn.bench/v1" (docs/bench-json.md) and its exports. One document holds a
// context block (GPU, SMs, clocks, driver, CUDA and compiler versions, commit and dirty flag, argv,
// effective config, seed, ceilings) and flat records, one per measured configuration and
// implementation (bsattn and, merged by scripts/peers.py, its peers). CSV and the Markdown table
// are exports of the same records; JSON and CSV read back to the same records.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace bsattn::bench {

inline constexpr const char* kBenchSchema = "bsattn.bench/v1";

struct BenchDoc {
  nlohmann::json context = nlohmann::json::object();
  std::vector<nlohmann::json> records;  // flat objects: keys from record_columns(), null when unknown
  std::vector<nlohmann::json> skipped;  // {config fields..., "reason"}
};

// Every record key, in the order CSV columns are written.
const std::vector<std::string>& record_columns();
// A record with every column present (null where not set); throws std::invalid_argument for a key
// outside record_columns().
nlohmann::json make_record(const nlohmann::json& fields);

nlohmann::json to_json(const BenchDoc& d);
// Validates the schema name and the records' keys; UsageError naming `what`.
BenchDoc bench_doc_from_json(const nlohmann::json& j, const std::string& what);
std::string to_csv(const BenchDoc& d);
// Parses to_csv()'s output back into records (numbers, booleans, strings, empty = null).
std::vector<nlohmann::json> records_from_csv(const std::string& text, const std::string& what);
// The human table: one row per record, the columns people compare.
std::string to_markdown(const BenchDoc& d);
// The table under a few lines of the run's context (device and driver, CUDA, commit, date, kernel,
// ceilings, command) so that a saved file says where its figures come from (`bench --markdown FILE`).
std::string to_markdown_report(const BenchDoc& d);

}  // namespace bsattn::bench
