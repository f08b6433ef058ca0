#include "lib/atomic_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/error.h"
#include "lib/sizes.h"

namespace bsattn {

namespace {

thread_local OutputSet* g_active = nullptr;

std::string folder_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

bool is_folder(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool exists(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

void check_folder(const std::string& dir, const std::string& what, const std::string& path) {
  const std::string named = what + ": cannot write '" + path + "'";
  const std::string allowed = " (allowed: a path in an existing, writable folder)";
  if (!exists(dir)) throw UsageError(named + ": folder '" + dir + "' does not exist" + allowed);
  if (!is_folder(dir)) throw UsageError(named + ": '" + dir + "' is not a folder" + allowed);
  if (::access(dir.c_str(), W_OK | X_OK) != 0) throw UsageError(named + ": folder '" + dir + "' is not writable" + allowed);
}

}  // namespace

void check_output_path(const std::string& path, const std::string& what) {
  if (path.empty()) throw UsageError(what + ": output path is empty");
  if (path.back() == '/' || is_folder(path))
    throw UsageError(what + ": cannot write '" + path + "': it is a folder (allowed: a file path, e.g. " +
                     (path.back() == '/' ? path : path + "/") + "out.npy)");
  check_folder(folder_of(path), what, path);
}

OutputSet::OutputSet() {
  if (g_active) throw std::logic_error("OutputSet: a set is already active in this thread");
  g_active = this;
}

OutputSet::~OutputSet() {
  if (g_active == this) g_active = nullptr;
  if (!committed_) {
    for (auto& s : staged_) std::remove(s.tmp.c_str());
    for (auto& d : created_folders_) ::rmdir(d.c_str());  // only if still empty
  }
}

OutputSet* OutputSet::active() { return g_active; }

void OutputSet::add(const std::string& path, const std::string& what) {
  if (path.empty() || path == "-") return;
  check_output_path(path, what);
  for (auto& d : declared_)
    if (d == path)
      throw UsageError(what + ": cannot write '" + path + "' twice: it is also another output of this run (allowed: distinct files)");
  declared_.push_back(path);
}

void OutputSet::add_folder(const std::string& dir, const std::string& what) {
  if (dir.empty()) return;
  if (exists(dir)) {
    check_folder(dir, what, dir);
    return;
  }
  // A folder the run creates: made now (its parent checked), removed again if the run fails.
  std::string trimmed = dir;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  check_folder(folder_of(trimmed), what, dir);
  if (::mkdir(trimmed.c_str(), 0755) != 0)
    throw UsageError(what + ": cannot write '" + dir + "': cannot create the folder: " + std::strerror(errno));
  created_folders_.push_back(trimmed);
}

void OutputSet::stage(const std::string& tmp, const std::string& path) {
  for (auto& s : staged_)
    if (s.path == path) {  // written twice in one run: the later file wins, the earlier is dropped
      std::remove(s.tmp.c_str());
      s.tmp = tmp;
      return;
    }
  staged_.push_back({tmp, path});
}

void OutputSet::commit() {
  // Keep each file about to be replaced under a hard link so a failed rename can put it back.
  std::vector<std::string> backup(staged_.size());
  for (size_t k = 0; k < staged_.size(); ++k) {
    std::string b = staged_[k].tmp + ".old";
    if (exists(staged_[k].path) && ::link(staged_[k].path.c_str(), b.c_str()) == 0) backup[k] = b;
  }
  for (size_t k = 0; k < staged_.size(); ++k) {
    if (std::rename(staged_[k].tmp.c_str(), staged_[k].path.c_str()) == 0) continue;
    const std::string why = std::strerror(errno), failed = staged_[k].path;
    for (size_t u = 0; u < k; ++u) {  // undo: restore the old file, or remove the new one
      if (!backup[u].empty()) std::rename(backup[u].c_str(), staged_[u].path.c_str());
      else std::remove(staged_[u].path.c_str());
    }
    for (size_t u = k; u < staged_.size(); ++u) std::remove(staged_[u].tmp.c_str());
    for (size_t u = k; u < staged_.size(); ++u)
      if (!backup[u].empty()) std::remove(backup[u].c_str());
    staged_.clear();  // nothing staged is left to remove; created folders go with the destructor
    throw RuntimeFailure("cannot rename onto '" + failed + "': " + why + " (no output of this run was written)");
  }
  for (auto& b : backup)
    if (!b.empty()) std::remove(b.c_str());
  committed_ = true;
  if (g_active == this) g_active = nullptr;
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  check_output_path(path_, "output");
  auto slash = path_.find_last_of('/');
  std::string dir = slash == std::string::npos ? "" : path_.substr(0, slash + 1);
  std::string base = slash == std::string::npos ? path_ : path_.substr(slash + 1);
  tmp_ = dir + "." + base + ".tmp." + std::to_string(::getpid());
  f_ = std::fopen(tmp_.c_str(), "wb");
  if (!f_) {
    throw UsageError("cannot write '" + path_ + "': " + std::strerror(errno) +
                     " (the folder must exist and be writable)");
  }
}

AtomicFile::~AtomicFile() {
  if (f_) std::fclose(f_);
  if (!committed_) std::remove(tmp_.c_str());
}

void AtomicFile::write(const void* data, size_t bytes) {
  if (bytes && std::fwrite(data, 1, bytes, f_) != bytes)
    throw RuntimeFailure("writing '" + path_ + "' failed: " + std::strerror(errno));
}

void AtomicFile::commit() {
  if (std::fflush(f_) != 0 || std::fclose(f_) != 0) {
    f_ = nullptr;
    throw RuntimeFailure("writing '" + path_ + "' failed: " + std::strerror(errno));
  }
  f_ = nullptr;
  if (OutputSet* set = OutputSet::active()) {
    set->stage(tmp_, path_);
    committed_ = true;  // the set owns the temporary now
    return;
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0)
    throw RuntimeFailure("cannot rename onto '" + path_ + "': " + std::strerror(errno));
  committed_ = true;
}

void write_text_file(const std::string& path, const std::string& text) {
  if (path == "-") {
    std::cout << text;
    std::cout.flush();
    return;
  }
  AtomicFile f(path);
  f.write(text);
  f.commit();
}

std::string read_text_file(const std::string& path, int64_t max_bytes) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) throw UsageError("cannot read '" + path + "': " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw UsageError("cannot read '" + path + "': it is a folder (allowed: a file)");
  if (S_ISREG(st.st_mode) && st.st_size > max_bytes)
    throw UsageError("'" + path + "' has " + std::to_string(int64_t(st.st_size)) + " bytes, more than the limit of " +
                     limit_str(max_bytes) + " bytes for this kind of file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError("cannot read '" + path + "': " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  if (int64_t(s.size()) > max_bytes)  // a pipe or device: its length is known only now
    throw UsageError("'" + path + "' is larger than the limit of " + limit_str(max_bytes) + " bytes");
  return s;
}

}  // namespace bsattn
