#include "lib/bench/results.h"

#include <cmath>
#include <cstdio>
#include <set>
#include <stdexcept>

#include "lib/error.h"

namespace bsattn::bench {

const std::vector<std::string>& record_columns() {
  static const std::vector<std::string> cols{
      "impl",          "backend",         "kernel",          "pattern",          "spec",
      "causal",        "batch",           "heads",           "heads_kv",         "seq",
      "head_dim",      "block",           "dtype",           "pass",             "density_target",
      "density",       "pair_density",    "kept_blocks",     "flops_computed",   "flops_dense_equiv",
      "bytes_min",     "median_ms",       "mean_ms",         "min_ms",           "max_ms",
      "rel_noise",     "samples",         "noise_met",       "sm_clock_mhz",     "tflops_effective",
      "tflops_dense_equiv", "gemm_fraction", "gbytes_per_s", "speedup_vs_dense", "dense_median_ms",
      "dense_sm_clock_mhz",
      "mask_build_ms", "mask_build_kind", "mask_build_share", "check_ref",       "check_rel_err",
      "check_max_abs_err", "mask_file",   "seed",            "mask_generate_ms", "score",
      "rab",           "gate_u",
      // the parts of a pipeline, each timed alone: bench --dilated (gather, branches, merge) and bench --nsa
      // (selection, branches, gate) on the cuda backend
      "gather_ms",     "selection_ms",    "branches_ms",     "merge_ms",         "gate_ms"};
  return cols;
}

nlohmann::json make_record(const nlohmann::json& fields) {
  static const std::set<std::string> known(record_columns().begin(), record_columns().end());
  nlohmann::json r = nlohmann::json::object();
  for (auto& c : record_columns()) r[c] = nullptr;
  for (auto& [k, v] : fields.items()) {
    if (!known.count(k)) throw std::invalid_argument("make_record: unknown column '" + k + "'");
    r[k] = v;
  }
  return r;
}

nlohmann::json to_json(const BenchDoc& d) {
  nlohmann::json j;
  j["schema"] = kBenchSchema;
  j["context"] = d.context;
  j["records"] = nlohmann::json::array();
  for (auto& r : d.records) j["records"].push_back(make_record(r));
  j["skipped"] = d.skipped;
  return j;
}

BenchDoc bench_doc_from_json(const nlohmann::json& j, const std::string& what) {
  if (!j.is_object() || !j.contains("schema") || j["schema"] != kBenchSchema)
    throw UsageError(what + ": not a " + std::string(kBenchSchema) + " document (missing or different \"schema\")");
  BenchDoc d;
  if (j.contains("context")) d.context = j["context"];
  if (!j.contains("records") || !j["records"].is_array()) throw UsageError(what + ": \"records\" must be an array");
  for (auto& r : j["records"]) {
    if (!r.is_object()) throw UsageError(what + ": every record must be an object");
    try {
      d.records.push_back(make_record(r));
    } catch (const std::invalid_argument& e) {
      throw UsageError(what + ": " + e.what());
    }
  }
  if (j.contains("skipped") && j["skipped"].is_array())
    for (auto& s : j["skipped"]) d.skipped.push_back(s);
  return d;
}

namespace {

std::string csv_cell(const nlohmann::json& v) {
  if (v.is_null()) return "";
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
  if (v.is_number_float()) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v.get<double>());
    return buf;
  }
  std::string s = v.is_string() ? v.get<std::string>() : v.dump();
  if (s.find_first_of(",\"\n") == std::string::npos && !s.empty()) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

nlohmann::json parse_cell(const std::string& s, bool quoted) {
  if (quoted) return s;
  if (s.empty()) return nullptr;
  if (s == "true") return true;
  if (s == "false") return false;
  char* end = nullptr;
  if (s.find_first_of(".eEn") == std::string::npos) {
    long long v = std::strtoll(s.c_str(), &end, 10);
    if (end && *end == '\0') return v;
  }
  double d = std::strtod(s.c_str(), &end);
  if (end && *end == '\0' && std::isfinite(d)) return d;
  return s;
}

}  // namespace

std::string to_csv(const BenchDoc& d) {
  std::string out;
  const auto& cols = record_columns();
  for (size_t i = 0; i < cols.size(); ++i) out += (i ? "," : "") + cols[i];
  out += "\n";
  for (auto& r0 : d.records) {
    auto r = make_record(r0);
    for (size_t i = 0; i < cols.size(); ++i) out += (i ? "," : "") + csv_cell(r[cols[i]]);
    out += "\n";
  }
  return out;
}

std::vector<nlohmann::json> records_from_csv(const std::string& text, const std::string& what) {
  std::vector<std::vector<std::pair<std::string, bool>>> rows;
  std::vector<std::pair<std::string, bool>> row;
  std::string cell;
  bool quoted = false, in_quotes = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_quotes) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') cell += '"', ++i;
      else if (c == '"') in_quotes = false;
      else cell += c;
    } else if (c == '"') {
      in_quotes = quoted = true;
    } else if (c == ',') {
      row.push_back({cell, quoted});
      cell.clear();
      quoted = false;
    } else if (c == '\n') {
      row.push_back({cell, quoted});
      rows.push_back(row);
      row.clear();
      cell.clear();
      quoted = false;
    } else if (c != '\r') {
      cell += c;
    }
  }
  if (in_quotes) throw UsageError(what + ": unterminated quoted cell");
  if (!cell.empty() || !row.empty()) row.push_back({cell, quoted}), rows.push_back(row);
  if (rows.empty()) throw UsageError(what + ": empty CSV");
  std::vector<std::string> header;
  for (auto& c : rows[0]) header.push_back(c.first);
  std::vector<nlohmann::json> out;
  for (size_t r = 1; r < rows.size(); ++r) {
    if (rows[r].size() != header.size())
      throw UsageError(what + ": row " + std::to_string(r + 1) + " has " + std::to_string(rows[r].size()) +
                       " cells, the header " + std::to_string(header.size()));
    nlohmann::json rec = nlohmann::json::object();
    for (size_t i = 0; i < header.size(); ++i) rec[header[i]] = parse_cell(rows[r][i].first, rows[r][i].second);
    try {
      out.push_back(make_record(rec));
    } catch (const std::invalid_argument& e) {
      throw UsageError(what + ": " + e.what());
    }
  }
  return out;
}

namespace {

std::string num(const nlohmann::json& v, const char* fmt) {
  if (!v.is_number()) return "-";
  char buf[48];
  std::snprintf(buf, sizeof buf, fmt, v.get<double>());
  return buf;
}

std::string str(const nlohmann::json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

}  // namespace

std::string to_markdown(const BenchDoc& d) {
  std::string out =
      "| impl | pattern | S | D | block | density | time ms (median) | noise | eff. TFLOP/s | dense-eq. TFLOP/s | "
      "of GEMM | vs dense | mask build |\n"
      "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (auto& r0 : d.records) {
    auto r = make_record(r0);
    std::string impl = str(r["impl"]);
    if (r["kernel"].is_string() && !r["kernel"].get<std::string>().empty()) impl += ":" + r["kernel"].get<std::string>();
    std::string pattern = str(r["pattern"]) + (r["causal"] == true && r["pattern"] != "causal" ? " (causal)" : "");
    if (r["score"] == "silu")  // HSTU: the score, its bias terms and u-gating
      pattern += " silu" + (r["rab"].is_string() && r["rab"] != "none" ? "+" + r["rab"].get<std::string>() : "") +
                 (r["gate_u"] == true ? "+u" : "");
    std::string noise = r["rel_noise"].is_number() ? num(r["rel_noise"].get<double>() * 100, "%.1f%%") : "-";
    if (r["noise_met"] == false) noise += "!";
    std::string gemm = r["gemm_fraction"].is_number() ? num(r["gemm_fraction"].get<double>() * 100, "%.0f%%") : "-";
    std::string share = r["mask_build_share"].is_number()
                            ? num(r["mask_build_share"].get<double>() * 100, "%.2g%%") +
                                  (r["mask_build_kind"].is_string() ? " " + r["mask_build_kind"].get<std::string>() : "")
                            : "-";
    out += "| " + impl + " | " + pattern + " | " + str(r["seq"]) + " | " + str(r["head_dim"]) + " | " + str(r["block"]) +
           " | " + num(r["density"], "%.3f") + " | " + num(r["median_ms"], "%.4g") + " | " + noise + " | " +
           num(r["tflops_effective"], "%.4g") + " | " + num(r["tflops_dense_equiv"], "%.4g") + " | " + gemm + " | " +
           num(r["speedup_vs_dense"], "%.2fx") + " | " + share + " |\n";
  }
  return out;
}

std::string to_markdown_report(const BenchDoc& d) {
  const nlohmann::json& c = d.context;
  auto text = [&](const char* k) { return c.contains(k) && c[k].is_string() ? c[k].get<std::string>() : std::string(); };
  std::string out = "# bsattn bench";
  std::string device = text("gpu").empty() ? text("device") : text("gpu");
  if (!device.empty()) out += ": " + device;
  if (!text("commit").empty()) out += ", commit " + text("commit") + (c.contains("dirty") && c["dirty"] == true ? " (dirty)" : "");
  out += "\n\n";
  std::vector<std::string> parts;
  // Counts as the document has them: a value that is not an integer is shown as written (get<int> of
  // a huge or fractional number would be undefined or wrong).
  auto count = [&](const char* k) { return c[k].is_number_integer() ? c[k].dump() : std::string(); };
  if (c.contains("sms") && !count("sms").empty()) parts.push_back(count("sms") + " SMs");
  if (!text("nvidia_smi").empty()) parts.push_back("nvidia-smi: " + text("nvidia_smi"));
  if (!text("cuda_runtime").empty()) parts.push_back("CUDA runtime " + text("cuda_runtime"));
  if (c.contains("cpu_threads") && !count("cpu_threads").empty()) parts.push_back(count("cpu_threads") + " CPU threads");
  if (!text("host").empty()) parts.push_back("host " + text("host"));
  if (!text("compiler").empty()) parts.push_back(text("compiler"));
  if (!text("date_utc").empty()) parts.push_back(text("date_utc"));
  if (!text("kernel").empty()) parts.push_back("kernel " + text("kernel"));
  if (c.contains("ceilings") && c["ceilings"].is_object())  // (num: "-" for a missing or null figure)
    parts.push_back("ceilings: bf16 GEMM " + num(c["ceilings"].value("gemm_bf16_tflops", nlohmann::json()), "%.0f") +
                    " TFLOP/s, device copy " + num(c["ceilings"].value("d2d_copy_gbs", nlohmann::json()), "%.0f") +
                    " GB/s");
  std::string line;
  for (auto& p : parts) line += (line.empty() ? "" : "; ") + p;
  if (!line.empty()) out += line + ".\n";
  if (!text("command").empty()) out += "Command: `" + text("command") + "`\n";
  if (c.contains("peers") && c["peers"].is_object() && c["peers"].contains("command"))
    out += "Peers: `" + str(c["peers"]["command"]) + "`\n";
  return out + "\n" + to_markdown(d);
}

}  // namespace bsattn::bench
