// lib/progress: the ETA from the rate so far and the duration format, hand-computed (issue 25).
#include <doctest/doctest.h>

#include "lib/progress.h"

using namespace bsattn;

TEST_CASE("progress: ETA from the rate so far") {
  // 30 of 120 units in 12 s: 0.4 s per unit, 90 left -> 36 s.
  CHECK(ProgressMeter::eta_seconds(12.0, 30, 120) == doctest::Approx(36.0));
  CHECK(ProgressMeter::eta_seconds(5.0, 0, 10) < 0);   // no rate yet: unknown
  CHECK(ProgressMeter::eta_seconds(5.0, 10, 10) == 0);  // done
  CHECK(ProgressMeter::eta_seconds(5.0, 3, 0) < 0);
}

TEST_CASE("progress: durations and the status text") {
  CHECK(ProgressMeter::format_duration(0.42) == "0.4 s");
  CHECK(ProgressMeter::format_duration(12.4) == "12 s");
  CHECK(ProgressMeter::format_duration(185) == "3 min 05 s");
  CHECK(ProgressMeter::format_duration(2 * 3600 + 7 * 60 + 30) == "2 h 07 min");
  CHECK(ProgressMeter::status_text(30, 120, 12.0) == "25% (30/120), 12 s elapsed, ETA 36 s");
  CHECK(ProgressMeter::status_text(0, 120, 1.0) == "0% (0/120), 1.0 s elapsed, ETA unknown");
  CHECK(ProgressMeter::status_text(120, 120, 48.0) == "100% (120/120), 48 s elapsed");
}

TEST_CASE("progress: a disabled meter counts nothing and prints nothing") {
  ProgressMeter m("x", false);
  m.add_work(5);
  m.step(5);
  m.finish();
  CHECK(!m.enabled());
}
