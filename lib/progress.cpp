#include "lib/progress.h"

#include <cmath>
#include <cstdio>
#include <unistd.h>

namespace bsattn {

ProgressMeter::ProgressMeter(std::string label, bool enabled)
    : label_(std::move(label)), enabled_(enabled), terminal_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

ProgressMeter::~ProgressMeter() {
  // Destroyed without finish() (an error unwinds): end the status line so the error gets its own.
  if (enabled_ && drawn_ && !finished_ && terminal_) std::fputs("\n", stderr);
}

double ProgressMeter::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double ProgressMeter::eta_seconds(double elapsed, int64_t done, int64_t total) {
  if (done <= 0 || total <= 0 || elapsed < 0) return -1;
  if (done >= total) return 0;
  return elapsed * double(total - done) / double(done);
}

std::string ProgressMeter::format_duration(double s) {
  char b[48];
  if (s < 10) std::snprintf(b, sizeof b, "%.1f s", s);
  else if (s < 60) std::snprintf(b, sizeof b, "%.0f s", s);
  else if (s < 3600) std::snprintf(b, sizeof b, "%d min %02d s", int(s / 60), int(std::fmod(s, 60)));
  else std::snprintf(b, sizeof b, "%d h %02d min", int(s / 3600), int(std::fmod(s, 3600) / 60));
  return b;
}

std::string ProgressMeter::status_text(int64_t done, int64_t total, double elapsed) {
  char b[96];
  const int pct = total > 0 ? int(100.0 * double(done) / double(total)) : 0;
  std::snprintf(b, sizeof b, "%d%% (%lld/%lld), ", pct, (long long)done, (long long)total);
  std::string s = b + format_duration(elapsed) + " elapsed";
  const double eta = eta_seconds(elapsed, done, total);
  if (done < total) s += eta < 0 ? ", ETA unknown" : ", ETA " + format_duration(eta);
  return s;
}

void ProgressMeter::add_work(int64_t units) {
  if (!enabled_) return;
  std::lock_guard<std::mutex> lk(mu_);
  if (total_ == 0) start_ = std::chrono::steady_clock::now();  // the clock starts with the work
  total_ += units;
  draw_locked(!drawn_);
}

void ProgressMeter::step(int64_t units) {
  if (!enabled_) return;
  std::lock_guard<std::mutex> lk(mu_);
  done_ += units;
  draw_locked(false);
}

void ProgressMeter::draw_locked(bool force) {
  if (finished_) return;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  if (!force && since < (terminal_ ? 0.1 : 2.0)) return;
  last_draw_ = now;
  drawn_ = true;
  drawn_done_ = done_;
  const std::string line = label_ + " " + status_text(done_, total_, elapsed());
  if (terminal_) std::fprintf(stderr, "\r\033[K%s", line.c_str());
  else std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

void ProgressMeter::message(const std::string& text) {
  if (!enabled_) return;
  std::lock_guard<std::mutex> lk(mu_);
  if (terminal_) std::fprintf(stderr, "\r\033[K");
  std::string eta;
  const double e = eta_seconds(elapsed(), done_, total_);
  if (done_ > 0 && done_ < total_ && e >= 0) eta = "  (" + format_duration(elapsed()) + " elapsed, ETA " + format_duration(e) + ")";
  std::fprintf(stderr, "%s%s\n", text.c_str(), eta.c_str());
  std::fflush(stderr);
}

void ProgressMeter::clear() {
  if (!enabled_ || !terminal_) return;
  std::lock_guard<std::mutex> lk(mu_);
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  last_draw_ = std::chrono::steady_clock::time_point{};  // redraw at the next step
}

void ProgressMeter::finish() {
  if (!enabled_) return;
  std::lock_guard<std::mutex> lk(mu_);
  // Nothing drawn, or (in a file) the last line already says the same: nothing more to print.
  if (finished_ || !drawn_ || (!terminal_ && drawn_done_ == done_)) {
    finished_ = true;
    return;
  }
  const std::string line = label_ + " " + status_text(done_, total_, elapsed());
  if (terminal_) std::fprintf(stderr, "\r\033[K%s\n", line.c_str());
  else std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
  finished_ = true;
}

}  // namespace bsattn
