// What every fuzz target shares: a reader may refuse its input with a UsageError (bad input, exit 2);
// anything else escaping it (a logic_error, a JSON library exception, bad_alloc, a RuntimeFailure) is
// a finding, so it aborts and libFuzzer keeps the input. ASan and UBSan report memory and undefined
// behaviour on their own.
#pragma once
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "lib/error.h"

namespace bsattn::fuzz {

template <class F>
void expect_only_usage_errors(F&& f) {
  try {
    f();
  } catch (const UsageError&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz finding: %s escaped a reader: %s\n", typeid(e).name(), e.what());
    std::abort();
  }
}

// A path of this process's own for readers that take a file name (or write one).
inline std::string scratch_path(const char* name) {
  return std::string("/tmp/bsattn-fuzz-") + std::to_string(::getpid()) + "-" + name;
}

inline void write_bytes(const std::string& path, const uint8_t* data, size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
}

}  // namespace bsattn::fuzz
