// Progress of long commands on stderr (analyze --sweep, bench, run on the CPU): done / total units, the
// elapsed time and an ETA, redrawn in place on a terminal (at most 10 times a second), or one line at
// most every 2 seconds when stderr is a file (--progress). Thread-safe: workers call step().
#pragma once
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace bsattn {

class ProgressMeter {
 public:
  // `label` starts every line ("bsattn run: forward"); a disabled meter prints nothing.
  ProgressMeter(std::string label, bool enabled);
  ~ProgressMeter();  // ends a status line left open (an error unwinding); no final line
  ProgressMeter(const ProgressMeter&) = delete;
  ProgressMeter& operator=(const ProgressMeter&) = delete;

  bool enabled() const { return enabled_; }
  bool started() const { return total_ > 0; }
  // More units of work to come (a pass announces its tasks before running them).
  void add_work(int64_t units);
  // `units` more done; redraws when due.
  void step(int64_t units = 1);
  // Prints `text` on a line of its own with the ETA so far (bench: one line per configuration).
  void message(const std::string& text);
  // Clears the terminal line, so that the caller can print on stdout; the next step() redraws.
  void clear();
  // The last line (100%, total time) and a newline; later calls do nothing.
  void finish();

  // The remaining time from the rate so far: elapsed * (total - done) / done; < 0 when unknown.
  static double eta_seconds(double elapsed, int64_t done, int64_t total);
  // "0.4 s", "12 s", "3 min 05 s", "2 h 07 min".
  static std::string format_duration(double seconds);
  // "forward 37% (120/320), 12 s elapsed, ETA 20 s" (without the label).
  static std::string status_text(int64_t done, int64_t total, double elapsed);

 private:
  void draw_locked(bool force);
  double elapsed() const;

  std::string label_;
  bool enabled_ = false, terminal_ = false, finished_ = false, drawn_ = false;
  int64_t total_ = 0, done_ = 0, drawn_done_ = -1;
  std::chrono::steady_clock::time_point start_, last_draw_;
  std::mutex mu_;
};

}  // namespace bsattn
