// eport::custody reefer excursions: a spike shorter than the minimum gives
// nothing; an excursion gives START once the minimum has passed and END
// with duration and extreme; hysteresis, missing samples, gaps, the
// configured setpoint, and the Options at and past each end of their ranges.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "custody_test_util.h"
#include "eport/custody/excursion.h"

using namespace eport;
using namespace eport::custody;
using namespace eport::test::custody;

namespace {
constexpr std::int16_t kSetpoint = -1800;  // -18.00 degC: band -20.00 .. -16.00 with the default 2.00 tolerance
constexpr std::uint64_t kMinute = 60000;

// Feeds one sample a minute from kT0 (seq i + 1), a value per minute.
std::vector<ExcursionEvent> feed(ExcursionDetector& d, const std::vector<std::optional<std::int16_t>>& per_minute) {
  std::vector<ExcursionEvent> out;
  for (std::size_t i = 0; i < per_minute.size(); ++i)
    d.process(temperature("reefer-1", i + 1, kT0 + i * kMinute, per_minute[i], kSetpoint), out);
  return out;
}
}  // namespace

TEST_CASE("reefer: an out-of-band spike shorter than the minimum duration produces nothing", "[detectors]") {
  ExcursionDetector d;  // minimum 10 min
  std::vector<std::optional<std::int16_t>> v(30, -1800);
  for (int i = 10; i < 19; ++i) v[static_cast<std::size_t>(i)] = -1200;  // 9 min at -12 degC
  CHECK(feed(d, v).empty());
  CHECK(d.counters().spikes == 1);
  CHECK_FALSE(d.active("reefer-1"));
}

TEST_CASE("reefer: an excursion gives START after the minimum and END with its duration and maximum", "[detectors]") {
  ExcursionDetector d;
  std::vector<std::optional<std::int16_t>> v(60, -1800);
  // Out from minute 10 to 29 above the band, peaking at -9.50 degC at minute 20.
  for (int i = 10; i < 30; ++i) v[static_cast<std::size_t>(i)] = static_cast<std::int16_t>(-1500 + (i <= 20 ? i - 10 : 30 - i) * 55);
  v[30] = -1700;
  const auto got = feed(d, v);
  REQUIRE(got.size() == 2);
  const auto& start = got[0];
  CHECK(start.kind == ExcursionKind::kStart);
  CHECK(dcsa_code(start.kind) == "MEASURED");
  CHECK(dcsa_alarm_code(start.direction) == "TEMPERATURE_ABOVE_BAND");
  CHECK(start.direction == ExcursionDirection::kAbove);
  CHECK(start.began_utc_ms == kT0 + 10 * kMinute);
  CHECK(start.first_seq == 11);
  CHECK(start.first_value_centi_c == -1500);
  CHECK(start.setpoint_centi_c == kSetpoint);
  CHECK(start.band_low_centi_c == -2000);
  CHECK(start.band_high_centi_c == -1600);
  CHECK(start.detected_utc_ms == kT0 + 20 * kMinute);  // exactly 10 min after it began
  CHECK(start.caused_by_seq == 21);
  const auto& end = got[1];
  CHECK(end.kind == ExcursionKind::kEnd);
  CHECK(end.began_utc_ms == start.began_utc_ms);
  CHECK(end.ended_utc_ms == kT0 + 30 * kMinute);
  CHECK(end.duration_ms == 20 * kMinute);
  CHECK(end.extreme_centi_c == -950);
  CHECK(end.extreme_utc_ms == kT0 + 20 * kMinute);
  CHECK(end.extreme_seq == 21);
  CHECK(end.caused_by_seq == 31);
  CHECK_FALSE(end.ended_by_gap);
  CHECK_FALSE(d.active("reefer-1"));
  CHECK(d.last_ended_utc_ms("reefer-1") == kT0 + 30 * kMinute);
}

TEST_CASE("reefer: an excursion below the band reports its minimum", "[detectors]") {
  ExcursionDetector d;
  std::vector<std::optional<std::int16_t>> v(40, -1800);
  for (int i = 5; i < 25; ++i) v[static_cast<std::size_t>(i)] = -2100;
  v[12] = -2600;
  v[13] = -2600;  // the first sample at the minimum is the one reported
  const auto got = feed(d, v);
  REQUIRE(got.size() == 2);
  CHECK(got[0].direction == ExcursionDirection::kBelow);
  CHECK(dcsa_alarm_code(got[0].direction) == "TEMPERATURE_BELOW_BAND");
  CHECK(got[1].extreme_centi_c == -2600);
  CHECK(got[1].extreme_seq == 13);
  CHECK(got[1].duration_ms == 20 * kMinute);
}

TEST_CASE("reefer: the band's edges are inside and the end needs the hysteresis", "[detectors]") {
  ExcursionDetector d;
  std::vector<std::optional<std::int16_t>> v(60, -1600);  // exactly on the upper edge: in band
  for (int i = 10; i < 25; ++i) v[static_cast<std::size_t>(i)] = -1599;
  for (int i = 25; i < 35; ++i) v[static_cast<std::size_t>(i)] = -1649;  // in band but within the hysteresis
  for (int i = 35; i < 60; ++i) v[static_cast<std::size_t>(i)] = -1650;  // back by the hysteresis
  const auto got = feed(d, v);
  REQUIRE(got.size() == 2);
  CHECK(got[0].began_utc_ms == kT0 + 10 * kMinute);
  CHECK(got[1].ended_utc_ms == kT0 + 35 * kMinute);
  CHECK(got[1].extreme_centi_c == -1599);
}

TEST_CASE("reefer: missing temperature samples neither start nor end an excursion", "[detectors]") {
  ExcursionDetector d;
  std::vector<std::optional<std::int16_t>> v(50, -1800);
  v[10] = -1000;
  for (int i = 11; i < 25; ++i) v[static_cast<std::size_t>(i)] = std::nullopt;  // the sensor did not answer
  v[25] = -1000;
  for (int i = 26; i < 40; ++i) v[static_cast<std::size_t>(i)] = std::nullopt;
  const auto got = feed(d, v);
  // START at the next known out-of-band sample (15 min after the first), END at minute 40.
  REQUIRE(got.size() == 2);
  CHECK(got[0].detected_utc_ms == kT0 + 25 * kMinute);
  CHECK(got[1].ended_utc_ms == kT0 + 40 * kMinute);
  // Readings of other kinds are as missing as an empty sample.
  std::vector<ExcursionEvent> out;
  d.process(position("reefer-1", 51, kT0 + 51 * kMinute, kYardLat, kYardLon, 0), out);
  CHECK(out.empty());
  CHECK(d.counters().samples == 50 - 28);
}

TEST_CASE("reefer: a gap longer than the limit ends an active excursion with ended_by_gap at its last sample", "[detectors]") {
  ExcursionDetector d;  // max gap 1 h
  std::vector<ExcursionEvent> out;
  std::uint64_t seq = 1;
  for (int i = 0; i < 20; ++i) d.process(temperature("reefer-1", seq++, kT0 + i * kMinute, -1000, kSetpoint), out);
  REQUIRE(out.size() == 1);
  // Nothing for 61 minutes, then still out of band: the old one ends, a new run begins.
  const std::uint64_t back = kT0 + 19 * kMinute + 61 * kMinute;
  d.process(temperature("reefer-1", seq++, back, -1000, kSetpoint), out);
  REQUIRE(out.size() == 2);
  CHECK(out[1].kind == ExcursionKind::kEnd);
  CHECK(out[1].ended_by_gap);
  CHECK(out[1].ended_utc_ms == kT0 + 19 * kMinute);
  CHECK(out[1].duration_ms == 19 * kMinute);
  CHECK(out[1].caused_by_seq == seq - 1);
  CHECK(d.counters().gap_ends == 1);
  for (int i = 1; i <= 10; ++i) d.process(temperature("reefer-1", seq++, back + i * kMinute, -1000, kSetpoint), out);
  REQUIRE(out.size() == 3);
  CHECK(out[2].kind == ExcursionKind::kStart);
  CHECK(out[2].began_utc_ms == back);
  // Exactly the limit is not a gap.
  ExcursionDetector e;
  std::vector<ExcursionEvent> out2;
  e.process(temperature("reefer-1", 1, kT0, -1000, kSetpoint), out2);
  e.process(temperature("reefer-1", 2, kT0 + 60 * kMinute, -1000, kSetpoint), out2);
  REQUIRE(out2.size() == 1);
  CHECK(out2[0].kind == ExcursionKind::kStart);
}

TEST_CASE("reefer: the configured setpoint applies to samples without one; none at all means not used", "[detectors]") {
  ExcursionOptions o;
  o.setpoint_centi_c = 400;  // +4 degC chilled cargo
  o.min_duration = std::chrono::seconds(0);
  ExcursionDetector d(o);
  std::vector<ExcursionEvent> out;
  d.process(temperature("reefer-1", 1, kT0, 700, std::nullopt), out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].setpoint_centi_c == 400);
  CHECK(out[0].band_high_centi_c == 600);
  // The reading's own setpoint wins over the configured one.
  d.process(temperature("reefer-2", 1, kT0, 700, std::int16_t{700}), out);
  CHECK(out.size() == 1);
  ExcursionDetector none;
  none.process(temperature("reefer-1", 1, kT0, 700, std::nullopt), out);
  CHECK(none.counters().no_setpoint == 1);
  CHECK(none.counters().samples == 0);
}

TEST_CASE("reefer: a jump from above to below the band ends one excursion and begins the next", "[detectors]") {
  ExcursionOptions o;
  o.min_duration = std::chrono::seconds(0);
  ExcursionDetector d(o);
  std::vector<ExcursionEvent> out;
  d.process(temperature("reefer-1", 1, kT0, -1000, kSetpoint), out);
  d.process(temperature("reefer-1", 2, kT0 + kMinute, -2500, kSetpoint), out);
  REQUIRE(out.size() == 3);
  CHECK(out[0].kind == ExcursionKind::kStart);
  CHECK(out[1].kind == ExcursionKind::kEnd);
  CHECK(out[2].kind == ExcursionKind::kStart);
  CHECK(out[2].direction == ExcursionDirection::kBelow);
  CHECK(out[2].caused_by_seq == 2);
}

TEST_CASE("reefer: a sample whose time goes backwards is counted and not used", "[detectors]") {
  ExcursionDetector d;
  std::vector<ExcursionEvent> out;
  d.process(temperature("reefer-1", 1, kT0, -1000, kSetpoint), out);
  d.process(temperature("reefer-1", 2, kT0 - 11 * kMinute, -1000, kSetpoint), out);  // would be "11 min later" reversed
  d.process(temperature("reefer-1", 3, kT0 + 5 * kMinute, -1800, kSetpoint), out);
  CHECK(out.empty());
  CHECK(d.counters().time_backwards == 1);
}

TEST_CASE("reefer: Options at and past each end of their ranges", "[detectors]") {
  CHECK(validate(ExcursionOptions{}).ok());
  struct Case {
    const char* field;
    void (*set)(ExcursionOptions&, long long);
    long long lo, hi;
  };
  const Case cases[] = {
      {"setpoint_centi_c", [](ExcursionOptions& o, long long v) { o.setpoint_centi_c = static_cast<std::int16_t>(v); }, -5000, 5000},
      {"tolerance_centi_c", [](ExcursionOptions& o, long long v) { o.tolerance_centi_c = static_cast<std::uint16_t>(v); o.hysteresis_centi_c = 0; }, 10, 2000},
      {"hysteresis_centi_c", [](ExcursionOptions& o, long long v) { o.hysteresis_centi_c = static_cast<std::uint16_t>(v); }, 0, 200},
      {"min_duration_s", [](ExcursionOptions& o, long long v) { o.min_duration = std::chrono::seconds(v); }, 0, 86400},
      {"max_gap_s", [](ExcursionOptions& o, long long v) { o.max_gap = std::chrono::seconds(v); }, 60, 604800},
  };
  for (const auto& c : cases) {
    INFO(c.field);
    for (long long v : {c.lo, c.hi}) {
      ExcursionOptions o;
      c.set(o, v);
      CHECK(validate(o).ok());
    }
    for (long long v : {c.lo - 1, c.hi + 1}) {
      ExcursionOptions o;
      c.set(o, v);
      auto st = validate(o);
      REQUIRE_FALSE(st.ok());
      CHECK_THAT(st.error(), Catch::Contains(c.field));
    }
  }
}

TEST_CASE("reefer: the widest band and longest minimum at their limits still detect an excursion", "[detectors]") {
  ExcursionOptions o;
  o.tolerance_centi_c = 2000;
  o.hysteresis_centi_c = 2000;  // the end needs the setpoint itself
  o.min_duration = std::chrono::seconds(86400);
  o.max_gap = std::chrono::seconds(604800);
  REQUIRE(validate(o).ok());
  ExcursionDetector d(o);
  std::vector<ExcursionEvent> out;
  d.process(temperature("reefer-1", 1, kT0, 300, std::int16_t{-1800}), out);   // +3 degC: 21 above
  d.process(temperature("reefer-1", 2, kT0 + 86400000, 300, std::int16_t{-1800}), out);
  REQUIRE(out.size() == 1);
  d.process(temperature("reefer-1", 3, kT0 + 86500000, -1799, std::int16_t{-1800}), out);
  CHECK(out.size() == 1);
  d.process(temperature("reefer-1", 4, kT0 + 86600000, -1800, std::int16_t{-1800}), out);
  REQUIRE(out.size() == 2);
  CHECK(out[1].duration_ms == 86600000);
}
