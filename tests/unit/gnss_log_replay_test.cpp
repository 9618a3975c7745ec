// Replays the Yangshan truck log (tests/data/yangshan_truck.nmea, made by
// tools/gen_yangshan_nmea.py) and the malformed log through the line framer
// and FixAssembler: reading count, spot-checked values, counters.
#include <catch2/catch.hpp>

#include <algorithm>
#include <vector>

#include "eport/gnss/fix_assembler.h"
#include "eport/gnss/line_framer.h"
#include "gnss_test_util.h"

using eport::gnss::AssemblerOptions;
using eport::gnss::FixAssembler;
using eport::gnss::GnssCounters;
using eport::gnss::LineFramer;
using eport::gnss::RejectReason;
using eport::gnss::testing::data_path;
using eport::gnss::testing::read_file;
using eport::model::FixQuality;
using eport::model::Position;
using eport::model::Reading;

namespace {

struct Replay {
  std::vector<Reading> readings;
  GnssCounters counters;
};

Replay replay(const std::string& file, std::chrono::milliseconds min_interval, bool require_fix = true) {
  AssemblerOptions o;
  o.source_id = "gw-yangshan-01";
  o.min_interval = min_interval;
  o.require_fix = require_fix;
  std::uint64_t seq = 1;
  FixAssembler a(o, [&seq] { return seq++; });
  LineFramer framer(256);
  Replay out;
  const std::string bytes = read_file(data_path(file));
  REQUIRE(!bytes.empty());
  framer.feed(bytes, [&](std::string_view line) {
    if (auto r = a.feed_line(line)) out.readings.push_back(*r);
  });
  if (auto r = a.flush()) out.readings.push_back(*r);
  out.counters = a.counters();
  return out;
}

const Reading* at_time(const std::vector<Reading>& rs, std::uint64_t t) {
  auto it = std::find_if(rs.begin(), rs.end(), [t](const Reading& r) { return r.time_utc_ms == t; });
  return it == rs.end() ? nullptr : &*it;
}

constexpr std::uint64_t kMidnight = 1'715'731'200'000ULL;  // 2024-05-15T00:00:00Z

}  // namespace

TEST_CASE("the Yangshan log gives one position per epoch with a fix", "[gnss]") {
  const auto r = replay("yangshan_truck.nmea", std::chrono::milliseconds(1000));
  // 260 epochs at 1 Hz from 23:58:20Z; no fix in the first 2 and in 5 under a quay crane.
  CHECK(r.counters.lines == 3640);
  CHECK(r.counters.sentences == 3640);
  CHECK(r.counters.rejected_total() == 0);
  CHECK(r.counters.epochs == 260);
  CHECK(r.counters.skipped_no_fix == 7);
  CHECK(r.counters.skipped_interval == 0);
  CHECK(r.counters.stale_sentences == 0);
  REQUIRE(r.readings.size() == 253);
  CHECK(r.counters.positions == 253);

  // Sequence numbers come from the caller, one per reading.
  for (std::size_t i = 0; i < r.readings.size(); ++i) {
    CHECK(r.readings[i].seq == i + 1);
    CHECK(r.readings[i].source_id == "gw-yangshan-01");
    CHECK(r.readings[i].container_id.empty());
  }

  // First fix, 23:58:22Z, on the Donghai Bridge at 72 km/h:
  // $GNRMC,235822.00,A,3038.08363,N,12202.59644,E,38.877,139.29,140524,,,A,V
  // $GNVTG,139.29,T,,M,38.877,N,72.000,K,A
  // $GNGGA,235822.00,3038.08363,N,12202.59644,E,1,17,0.79,13.8,M,9.4,M,,
  const Reading& first = r.readings.front();
  CHECK(first.time_utc_ms == kMidnight - 98'000);
  const auto& p = std::get<Position>(first.payload);
  CHECK(p.lat_e7 == 306347272);   // 30 + 38.08363/60 = 30.63472716..
  CHECK(p.lon_e7 == 1220432740);  // 122 + 2.59644/60 = 122.04327400
  CHECK(p.speed_cm_s == 2000);
  CHECK(p.heading_cdeg == 13929);
  CHECK(p.fix == FixQuality::kGps);
  CHECK(p.satellites == 17);
  CHECK(p.hdop_centi == 79);

  // Midnight: the RMC date turns to 150524 and the time keeps counting.
  const Reading* m = at_time(r.readings, kMidnight);
  REQUIRE(m != nullptr);
  CHECK(std::get<Position>(m->payload).lat_e7 == 306281730);  // 3037.69038,N
  CHECK(at_time(r.readings, kMidnight - 1000) != nullptr);
  CHECK(at_time(r.readings, kMidnight + 1000) != nullptr);

  // Under the crane (00:02:05Z..00:02:09Z) nothing is handed out.
  for (std::uint64_t s = 125; s < 130; ++s) CHECK(at_time(r.readings, kMidnight + s * 1000) == nullptr);

  // Stopped at the gate and at the berth: speed 0, course absent, not 0.
  const auto stopped = std::count_if(r.readings.begin(), r.readings.end(), [](const Reading& x) {
    const auto& q = std::get<Position>(x.payload);
    return q.speed_cm_s == 0 && !q.heading_cdeg;
  });
  CHECK(stopped == 35);

  // Times strictly increase, 1 s apart except across the no-fix gap.
  for (std::size_t i = 1; i < r.readings.size(); ++i) {
    const auto dt = r.readings[i].time_utc_ms - r.readings[i - 1].time_utc_ms;
    CHECK((dt == 1000 || dt == 6000));
  }
}

TEST_CASE("replaying the Yangshan log with min_interval 5 s keeps every fifth second", "[gnss]") {
  const auto r = replay("yangshan_truck.nmea", std::chrono::milliseconds(5000));
  CHECK(r.counters.positions == r.readings.size());
  CHECK(r.counters.positions + r.counters.skipped_interval == 253);
  REQUIRE(r.readings.size() >= 50);
  for (std::size_t i = 1; i < r.readings.size(); ++i) {
    CHECK(r.readings[i].time_utc_ms - r.readings[i - 1].time_utc_ms >= 5000);
  }
}

TEST_CASE("the malformed log: bad lines are counted by reason, good epochs still come through", "[gnss]") {
  const auto r = replay("yangshan_malformed.nmea", std::chrono::milliseconds(1000));
  const auto& c = r.counters;
  CHECK(c.lines == 129);
  CHECK(c.sentences == 120);
  CHECK(c.rejected_for(RejectReason::kBadChecksum) == 1);
  CHECK(c.rejected_for(RejectReason::kMissingChecksum) == 2);  // no "*hh", and a line cut short
  CHECK(c.rejected_for(RejectReason::kTooLong) == 1);
  CHECK(c.rejected_for(RejectReason::kBadByte) == 1);          // NUL and 0xFF noise
  CHECK(c.rejected_for(RejectReason::kUnknownTalker) == 1);
  CHECK(c.rejected_for(RejectReason::kUnsupportedType) == 1);  // GLL
  CHECK(c.rejected_for(RejectReason::kOutOfRange) == 1);       // latitude 91 deg
  CHECK(c.rejected_for(RejectReason::kBadField) == 1);         // quality 'x'
  CHECK(c.rejected_total() == 9);
  // The first 120 lines of the good log: epochs 0..8, the first two without a fix.
  CHECK(c.epochs == 9);
  REQUIRE(r.readings.size() == 7);
  CHECK(r.readings.front().time_utc_ms == kMidnight - 98'000);
}

TEST_CASE("require_fix off hands out nothing more when no-fix epochs have no coordinates", "[gnss]") {
  const auto r = replay("yangshan_truck.nmea", std::chrono::milliseconds(0), false);
  CHECK(r.readings.size() == 253);
  CHECK(r.counters.skipped_no_fix == 7);
}
