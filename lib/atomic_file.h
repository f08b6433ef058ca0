// Every file bsattn writes goes to a temporary name in the same folder and is renamed at the end,
// so a failed run never leaves a half-written output.
//
// A command that writes several files declares them all in one OutputSet before any work: each path
// is checked then (its folder exists and is writable, it is not a folder, no two outputs share a
// path), and while the set is alive every AtomicFile of this thread stages its file instead of
// renaming it. OutputSet::commit() renames them all at the end; if any rename fails, the ones already
// done are undone (the previous files restored), and a set destroyed without commit() removes its
// temporaries. So either every output of a run appears, or none changes.
#pragma once
#include <cstdio>
#include <string>
#include <vector>

namespace bsattn {

// UsageError naming `what` (the option) when `path` cannot be written: empty, a folder, in a folder
// that does not exist or is not writable.
void check_output_path(const std::string& path, const std::string& what);

class OutputSet {
 public:
  OutputSet();   // becomes this thread's active set (sets do not nest: std::logic_error)
  ~OutputSet();  // removes staged temporaries unless commit() succeeded
  OutputSet(const OutputSet&) = delete;
  OutputSet& operator=(const OutputSet&) = delete;

  // Declares an output of the run; "" (not asked for) and "-" (stdout) are ignored. UsageError naming
  // `what` when the path cannot be written or another output of the set already names it.
  void add(const std::string& path, const std::string& what);
  // A folder the run writes files into (bench --save-masks): an existing writable folder, or a new one
  // in an existing writable folder, created here and removed again (when empty) if the run fails.
  void add_folder(const std::string& dir, const std::string& what);
  // Renames every staged file onto its path, all or none (RuntimeFailure when a rename fails).
  void commit();

  // The active set of this thread, or nullptr.
  static OutputSet* active();
  // Called by AtomicFile::commit while a set is active: the finished temporary `tmp` becomes `path`
  // at commit().
  void stage(const std::string& tmp, const std::string& path);

 private:
  struct Staged {
    std::string tmp, path;
  };
  std::vector<std::string> declared_;
  std::vector<Staged> staged_;
  std::vector<std::string> created_folders_;
  bool committed_ = false;
};

class AtomicFile {
 public:
  // Opens "<dir>/.<name>.tmp.<pid>" for writing; throws UsageError when the folder is not writable or
  // the path is a folder.
  explicit AtomicFile(std::string path);
  ~AtomicFile();  // removes the temporary file unless commit() succeeded
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t bytes);
  void write(const std::string& s) { write(s.data(), s.size()); }
  // Flushes, closes and renames onto the final path (or hands the file to the active OutputSet,
  // which renames it when the whole run has succeeded).
  void commit();
  const std::string& path() const { return path_; }

 private:
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
  bool committed_ = false;
};

// Writes a whole string to `path` atomically; "-" writes to stdout.
void write_text_file(const std::string& path, const std::string& text);
// Reads a whole file; UsageError when it cannot be read or is larger than `max_bytes` (checked from
// its length on disk before anything is read).
std::string read_text_file(const std::string& path, int64_t max_bytes = int64_t(1) << 30);

}  // namespace bsattn
