// eport::custody motion: no transition for a parked unit with GPS noise, a
// journey's start and stop at the right times, gating, time going
// backwards, and the Options at and past each end of their ranges.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "custody_test_util.h"
#include "eport/custody/motion.h"

using namespace eport;
using namespace eport::custody;
using namespace eport::test::custody;

namespace {
std::vector<MotionTransition> run(MotionDetector& d, const std::vector<model::Reading>& rs) {
  std::vector<MotionTransition> out;
  for (const auto& r : rs) d.process(r, out);
  return out;
}
}  // namespace

TEST_CASE("motion: a parked unit with 15 m GPS noise and 0..1 m/s speed jitter never moves in 10,000 fixes", "[detectors]") {
  Noise n(42);
  std::vector<model::Reading> rs;
  for (std::uint64_t i = 0; i < 10000; ++i) rs.push_back(noisy_fix(n, "tcu-1", i + 1, kT0 + i * 1000, kYardLat, kYardLon));
  MotionDetector d;
  CHECK(run(d, rs).empty());
  CHECK(d.counters().positions == 10000);
  CHECK_FALSE(d.moving("tcu-1"));
}

TEST_CASE("motion: a parked unit reporting every 10 minutes never moves either", "[detectors]") {
  Noise n(7);
  std::vector<model::Reading> rs;
  for (std::uint64_t i = 0; i < 10000; ++i)
    rs.push_back(noisy_fix(n, "tcu-1", i + 1, kT0 + i * 600000, kYardLat, kYardLon));
  MotionDetector d;
  CHECK(run(d, rs).empty());
}

TEST_CASE("motion: a truck leaving the yard starts within a minute and stops where it arrived", "[detectors]") {
  const Journey j = journey("tcu-1", 3);
  MotionDetector d;
  const auto got = run(d, j.readings);
  REQUIRE(got.size() == 2);
  CHECK(got[0].kind == MotionKind::kStart);
  CHECK(dcsa_code(got[0].kind) == "MOTION_START");
  // The first fix at >= 3 m/s is the third second of the acceleration.
  CHECK(got[0].time_utc_ms == j.departure_ms + 2000);
  CHECK(got[0].detected_utc_ms - j.departure_ms <= 60000);
  CHECK(got[0].detected_utc_ms == got[0].time_utc_ms + 20000);
  CHECK(got[1].kind == MotionKind::kStop);
  CHECK(dcsa_code(got[1].kind) == "MOTION_STOP");
  // Below 1.5 m/s from the 1 m/s fix of the braking, two fixes before the first parked one.
  CHECK(got[1].time_utc_ms == j.arrival_ms - 2000);
  CHECK(got[1].detected_utc_ms == got[1].time_utc_ms + 180000);
  CHECK(got[1].first_seq < got[1].caused_by_seq);
  CHECK(d.counters().starts == 1);
  CHECK(d.counters().stops == 1);
}

TEST_CASE("motion: a unit without a speed field starts from displacement within a minute", "[detectors]") {
  MotionDetector d;
  std::vector<model::Reading> rs;
  std::uint64_t seq = 1;
  for (int i = 0; i < 60; ++i) rs.push_back(position("tcu-1", seq++, kT0 + i * 1000ull, kYardLat, kYardLon, std::nullopt));
  const std::uint64_t departure = kT0 + 60000;
  for (int i = 1; i <= 120; ++i)  // 3 m/s east, no speed reported
    rs.push_back(position("tcu-1", seq++, departure + (i - 1) * 1000ull, kYardLat,
                          kYardLon + static_cast<std::int32_t>(3.0 * i * kLonPerM), std::nullopt));
  const auto got = run(d, rs);
  REQUIRE(got.size() == 1);
  CHECK(got[0].kind == MotionKind::kStart);
  CHECK(got[0].detected_utc_ms - departure <= 60000);
}

TEST_CASE("motion: a short burst of speed shorter than the debounce is not a start", "[detectors]") {
  MotionDetector d;
  std::vector<model::Reading> rs;
  std::uint64_t seq = 1, t = kT0;
  for (int i = 0; i < 10; ++i, t += 1000) rs.push_back(position("tcu-1", seq++, t, kYardLat, kYardLon, 0));
  for (int i = 0; i < 19; ++i, t += 1000) rs.push_back(position("tcu-1", seq++, t, kYardLat, kYardLon, 500));
  for (int i = 0; i < 10; ++i, t += 1000) rs.push_back(position("tcu-1", seq++, t, kYardLat, kYardLon, 0));
  CHECK(run(d, rs).empty());
}

TEST_CASE("motion: fixes without a fix or with a large HDOP are not used", "[detectors]") {
  MotionDetector d;
  std::vector<model::Reading> rs;
  std::uint64_t seq = 1, t = kT0;
  rs.push_back(position("tcu-1", seq++, t, kYardLat, kYardLon, 0));
  const std::int32_t far = kYardLon + static_cast<std::int32_t>(5000 * kLonPerM);
  for (int i = 0; i < 100; ++i, t += 1000) {
    rs.push_back(position("tcu-1", seq++, t, kYardLat, far, 2000, model::FixQuality::kNoFix));
    rs.push_back(position("tcu-1", seq++, t, kYardLat, far, 2000, model::FixQuality::kGps, std::uint16_t{501}));
  }
  CHECK(run(d, rs).empty());
  CHECK(d.counters().gated == 200);
  // HDOP exactly at the limit, or unknown, is used.
  std::vector<MotionTransition> out;
  d.process(position("tcu-1", seq++, t, kYardLat, far, 2000, model::FixQuality::kGps, std::uint16_t{500}), out);
  d.process(position("tcu-1", seq++, t + 20000, kYardLat, far, 2000, model::FixQuality::kGps, std::nullopt), out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].kind == MotionKind::kStart);
}

TEST_CASE("motion: a reading whose time goes backwards is counted and not used; a repeated seq is a no-op", "[detectors]") {
  MotionDetector d;
  std::vector<MotionTransition> out;
  d.process(position("tcu-1", 1, kT0, kYardLat, kYardLon, 0), out);
  d.process(position("tcu-1", 2, kT0 + 10000, kYardLat, kYardLon, 800), out);
  // Backwards by 20 s with a fast fix: it neither confirms nor breaks the run.
  d.process(position("tcu-1", 3, kT0 - 10000, kYardLat, kYardLon, 800), out);
  d.process(position("tcu-1", 2, kT0 + 40000, kYardLat, kYardLon, 800), out);  // seq already seen
  CHECK(out.empty());
  CHECK(d.counters().time_backwards == 1);
  CHECK(d.counters().stale_seq == 1);
  d.process(position("tcu-1", 4, kT0 + 30000, kYardLat, kYardLon, 800), out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].time_utc_ms == kT0 + 10000);
  CHECK(out[0].caused_by_seq == 4);
}

TEST_CASE("motion: readings of other kinds only advance the seq", "[detectors]") {
  MotionDetector d;
  std::vector<MotionTransition> out;
  d.process(temperature("tcu-1", 5, kT0, 400, std::nullopt), out);
  d.process(position("tcu-1", 5, kT0, kYardLat, kYardLon, 0), out);
  CHECK(d.counters().stale_seq == 1);
  CHECK(d.counters().positions == 0);
}

TEST_CASE("motion: speeds exactly at the thresholds and a zero start debounce", "[detectors]") {
  MotionOptions o;
  o.start_debounce = std::chrono::seconds(0);
  REQUIRE(validate(o).ok());
  MotionDetector d(o);
  std::vector<MotionTransition> out;
  d.process(position("tcu-1", 1, kT0, kYardLat, kYardLon, 0), out);
  d.process(position("tcu-1", 2, kT0 + 1000, kYardLat, kYardLon, 299), out);
  CHECK(out.empty());
  d.process(position("tcu-1", 3, kT0 + 2000, kYardLat, kYardLon, 300), out);  // >= start speed: at once
  REQUIRE(out.size() == 1);
  // At the stop speed is not slow; one below is.
  for (std::uint64_t i = 0; i < 300; ++i) d.process(position("tcu-1", 4 + i, kT0 + 3000 + i * 1000, kYardLat, kYardLon, 150), out);
  CHECK(out.size() == 1);
  for (std::uint64_t i = 0; i <= 180; ++i)
    d.process(position("tcu-1", 400 + i, kT0 + 400000 + i * 1000, kYardLat, kYardLon, 149), out);
  REQUIRE(out.size() == 2);
  CHECK(out[1].kind == MotionKind::kStop);
  CHECK(out[1].time_utc_ms == kT0 + 400000);
  CHECK(out[1].detected_utc_ms == kT0 + 580000);
}

TEST_CASE("motion: a slow crawl that leaves the stop radius restarts the stop debounce", "[detectors]") {
  MotionOptions o;
  MotionDetector d(o);
  std::vector<MotionTransition> out;
  std::uint64_t seq = 1, t = kT0;
  d.process(position("tcu-1", seq++, t, kYardLat, kYardLon, 0), out);
  for (int i = 0; i < 30; ++i) d.process(position("tcu-1", seq++, t += 1000, kYardLat, kYardLon, 1000), out);
  REQUIRE(out.size() == 1);
  // Reporting 0.5 m/s while moving 1 m per second for 10 minutes: never
  // 180 s within 50 m of a run's first fix, so never stopped.
  for (int i = 1; i <= 600; ++i)
    d.process(position("tcu-1", seq++, t += 1000, kYardLat, kYardLon + static_cast<std::int32_t>(1.0 * i * kLonPerM), 50),
              out);
  CHECK(out.size() == 1);
}

TEST_CASE("motion: Options at and past each end of their ranges", "[detectors]") {
  struct Case {
    const char* field;
    void (*set)(MotionOptions&, long long);
    long long lo, hi;
  };
  const Case cases[] = {
      {"start_speed_cm_s", [](MotionOptions& o, long long v) { o.start_speed_cm_s = static_cast<std::uint16_t>(v); o.stop_speed_cm_s = 10; }, 50, 5000},
      {"start_distance_m", [](MotionOptions& o, long long v) { o.start_distance_m = static_cast<std::uint32_t>(v); }, 20, 10000},
      {"start_debounce_s", [](MotionOptions& o, long long v) { o.start_debounce = std::chrono::seconds(v); }, 0, 600},
      {"stop_speed_cm_s", [](MotionOptions& o, long long v) { o.stop_speed_cm_s = static_cast<std::uint16_t>(v); o.start_speed_cm_s = 5000; }, 10, 4999},
      {"stop_radius_m", [](MotionOptions& o, long long v) { o.stop_radius_m = static_cast<std::uint32_t>(v); }, 10, 10000},
      {"stop_debounce_s", [](MotionOptions& o, long long v) { o.stop_debounce = std::chrono::seconds(v); }, 10, 3600},
      {"max_hdop_centi", [](MotionOptions& o, long long v) { o.max_hdop_centi = static_cast<std::uint16_t>(v); }, 100, 5000},
  };
  CHECK(validate(MotionOptions{}).ok());
  for (const auto& c : cases) {
    INFO(c.field);
    for (long long v : {c.lo, c.hi}) {
      MotionOptions o;
      c.set(o, v);
      CHECK(validate(o).ok());
    }
    for (long long v : {c.lo - 1, c.hi + 1}) {
      MotionOptions o;
      c.set(o, v);
      auto st = validate(o);
      REQUIRE_FALSE(st.ok());
      CHECK_THAT(st.error(), Catch::Contains(c.field));
    }
  }
  MotionOptions o;
  o.stop_speed_cm_s = o.start_speed_cm_s;
  auto st = validate(o);
  REQUIRE_FALSE(st.ok());
  CHECK_THAT(st.error(), Catch::Contains("must be below start_speed_cm_s"));
}

TEST_CASE("motion: every Options extreme still gives a parked unit no transition and a journey its start", "[detectors]") {
  MotionOptions tight;  // the most sensitive settings allowed
  tight.start_speed_cm_s = 50;
  tight.stop_speed_cm_s = 10;
  tight.start_distance_m = 20;
  tight.start_debounce = std::chrono::seconds(0);
  tight.stop_radius_m = 10;
  tight.stop_debounce = std::chrono::seconds(10);
  tight.max_hdop_centi = 5000;
  MotionOptions loose;  // the least sensitive
  loose.start_speed_cm_s = 5000;
  loose.stop_speed_cm_s = 4999;
  loose.start_distance_m = 10000;
  loose.start_debounce = std::chrono::seconds(600);
  loose.stop_radius_m = 10000;
  loose.stop_debounce = std::chrono::seconds(3600);
  loose.max_hdop_centi = 100;
  REQUIRE(validate(tight).ok());
  REQUIRE(validate(loose).ok());
  const Journey j = journey("tcu-1", 11);
  MotionDetector t(tight), l(loose);
  const auto tight_got = run(t, j.readings);
  const auto loose_got = run(l, j.readings);
  REQUIRE_FALSE(tight_got.empty());  // noise beyond 20 m moves it: the price of the tight end
  CHECK(tight_got.front().kind == MotionKind::kStart);
  // 10 m/s never reaches 50 m/s, and 6 km of driving never leaves 10 km within 10 min.
  CHECK(loose_got.empty());
}
