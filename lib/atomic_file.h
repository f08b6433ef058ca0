// Every file bsattn writes goes to a temporary name in the same folder and is renamed at the end,
// so a failed run never leaves a half-written output.
#pragma once
#include <cstdio>
#include <string>

namespace bsattn {

class AtomicFile {
 public:
  // Opens "<dir>/.<name>.tmp.<pid>" for writing; throws UsageError when the folder is not writable.
  explicit AtomicFile(std::string path);
  ~AtomicFile();  // removes the temporary file unless commit() succeeded
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t bytes);
  void write(const std::string& s) { write(s.data(), s.size()); }
  // Flushes, closes and renames onto the final path.
  void commit();
  const std::string& path() const { return path_; }

 private:
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
  bool committed_ = false;
};

// Writes a whole string to `path` atomically; "-" writes to stdout.
void write_text_file(const std::string& path, const std::string& text);
std::string read_text_file(const std::string& path);

}  // namespace bsattn
