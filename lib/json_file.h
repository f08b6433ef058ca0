// JSON documents read from the user's files: .json masks, bench --from and --config, the frontier and
// bench documents that visualize draws.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace bsattn {

// Reads and parses `path` (read_text_file's limits and messages). A file that is not JSON (binary,
// truncated, another format) is a UsageError naming `what` (the option; "" for none) and the file,
// the byte offset of the error and a short excerpt there in printable ASCII:
//   --from: 'r.png' is not valid JSON at byte offset 0 (syntax error while parsing value - invalid
//   literal), near '\x89PNG\x0d\x0a\x1a\x0a\x00\x00\x00\x0dIHDR'
nlohmann::json read_json_file(const std::string& path, const std::string& what);

// `bytes` with every byte outside printable ASCII (0x20-0x7e) written as \xHH.
std::string printable_ascii(const std::string& bytes);

}  // namespace bsattn
