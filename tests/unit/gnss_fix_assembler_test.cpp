// FixAssembler and GpsdAssembler tests: one reading per epoch, field
// precedence between sentences, require_fix, min_interval, dates across
// midnight, sequence numbers and the counters.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "eport/gnss/fix_assembler.h"
#include "eport/gnss/gpsd_mapping.h"
#include "gnss_test_util.h"

using eport::gnss::AssemblerOptions;
using eport::gnss::FixAssembler;
using eport::gnss::GpsdAssembler;
using eport::gnss::GpsdSky;
using eport::gnss::GpsdTpv;
using eport::gnss::RejectReason;
using eport::gnss::testing::with_checksum;
using eport::model::FixQuality;
using eport::model::Position;
using eport::model::Reading;

namespace {

struct Harness {
  explicit Harness(AssemblerOptions o = make_options()) : a(std::move(o), [this] { return next_seq++; }) {}

  static AssemblerOptions make_options() {
    AssemblerOptions o;
    o.source_id = "gw-yangshan-01";
    o.min_interval = std::chrono::milliseconds(0);
    return o;
  }

  // Feeds bodies (checksums added); collects what comes out.
  void feed(std::initializer_list<std::string> bodies) {
    for (const auto& b : bodies) {
      if (auto r = a.feed_line(with_checksum(b) + "\r\n")) out.push_back(*r);
    }
  }
  void flush() {
    if (auto r = a.flush()) out.push_back(*r);
  }
  const Position& pos(std::size_t i) const { return std::get<Position>(out.at(i).payload); }

  std::uint64_t next_seq = 100;
  FixAssembler a;
  std::vector<Reading> out;
};

// One u-blox style epoch at hh:mm:ss on 2024-05-14.
std::vector<std::string> epoch(const std::string& hhmmss, const std::string& date = "140524") {
  return {
      "GNRMC," + hhmmss + ".00,A,3037.12340,N,12203.60000,E,10.000,90.00," + date + ",,,A,V",
      "GNVTG,91.00,T,,M,10.000,N,18.600,K,A",
      "GNGGA," + hhmmss + ".00,3037.12340,N,12203.60000,E,2,12,0.85,6.5,M,9.4,M,,",
      "GNGSA,A,3,02,05,12,13,15,18,,,,,,,1.35,0.84,1.05,1",
      "GNGSA,A,3,66,75,82,,,,,,,,,,1.35,0.84,1.05,2",
      "GPGSV,1,1,02,02,24,074,42,05,56,185,40,1",
  };
}

void feed_all(Harness& h, const std::vector<std::string>& bodies) {
  for (const auto& b : bodies) h.feed({b});
}

}  // namespace

TEST_CASE("the sentences of one epoch become one reading when the next epoch starts", "[gnss]") {
  Harness h;
  feed_all(h, epoch("120000"));
  CHECK(h.out.empty());  // the epoch is still open
  h.feed({epoch("120001")[0]});
  REQUIRE(h.out.size() == 1);
  const Reading& r = h.out[0];
  CHECK(r.source_id == "gw-yangshan-01");
  CHECK(r.container_id.empty());
  CHECK(r.seq == 100);
  CHECK(r.time_utc_ms == 1'715'688'000'000ULL);  // 2024-05-14T12:00:00Z
  const Position& p = h.pos(0);
  CHECK(p.lat_e7 == 306187233);
  CHECK(p.lon_e7 == 1220600000);
  CHECK(p.fix == FixQuality::kDgps);   // GGA quality wins over RMC mode 'A'
  CHECK(p.speed_cm_s == 517);          // VTG 18.600 km/h (RMC's 10 kn would be 514)
  CHECK(p.heading_cdeg == 9100);       // VTG, not RMC's 90.00
  CHECK(p.satellites == 12);           // GGA, not the GSA sum (9)
  CHECK(p.hdop_centi == 85);           // GGA, not GSA's 0.84
  CHECK(h.a.counters().epochs == 1);
  CHECK(h.a.counters().positions == 1);
  h.flush();
  REQUIRE(h.out.size() == 2);
  CHECK(h.out[1].seq == 101);
  CHECK(h.out[1].time_utc_ms == 1'715'688'001'000ULL);
}

TEST_CASE("without GGA and VTG the epoch falls back to RMC and GSA", "[gnss]") {
  Harness h;
  h.feed({"GNRMC,120000.00,A,3037.12340,S,12203.60000,W,10.000,90.00,140524,,,D,V",
          "GNGSA,A,3,02,05,12,13,15,18,,,,,,,1.35,0.84,1.05,1",
          "GNGSA,A,3,66,75,82,,,,,,,,,,1.35,0.84,1.05,2"});
  h.flush();
  REQUIRE(h.out.size() == 1);
  const Position& p = h.pos(0);
  CHECK(p.lat_e7 == -306187233);
  CHECK(p.lon_e7 == -1220600000);
  CHECK(p.fix == FixQuality::kDgps);  // RMC mode 'D'
  CHECK(p.speed_cm_s == 514);         // 10 kn
  CHECK(p.heading_cdeg == 9000);
  CHECK(p.satellites == 9);           // 6 + 3 from the two GSAs
  CHECK(p.hdop_centi == 84);
}

TEST_CASE("epochs without a fix are skipped, or handed out with kNoFix when require_fix is off", "[gnss]") {
  const std::vector<std::string> no_fix_with_coords = {
      "GNRMC,120000.00,V,3037.12340,N,12203.60000,E,,,140524,,,N,V",
      "GNGGA,120000.00,3037.12340,N,12203.60000,E,0,00,,,,,,,",
  };
  const std::vector<std::string> no_fix_no_coords = {
      "GNRMC,120001.00,V,,,,,,,140524,,,N,V",
      "GNGGA,120001.00,,,,,0,00,99.99,,,,,,",
  };
  SECTION("require_fix (default)") {
    auto o = Harness::make_options();
    o.require_fix = true;
    Harness h(o);
    feed_all(h, no_fix_with_coords);
    feed_all(h, no_fix_no_coords);
    h.flush();
    CHECK(h.out.empty());
    CHECK(h.a.counters().skipped_no_fix == 2);
    CHECK(h.next_seq == 100);  // no sequence number used up
  }
  SECTION("require_fix off") {
    auto o = Harness::make_options();
    o.require_fix = false;
    Harness h(o);
    feed_all(h, no_fix_with_coords);
    feed_all(h, no_fix_no_coords);
    h.flush();
    REQUIRE(h.out.size() == 1);  // the one with coordinates
    CHECK(h.pos(0).fix == FixQuality::kNoFix);
    CHECK(h.a.counters().skipped_no_fix == 1);
  }
}

TEST_CASE("min_interval limits the rate by receiver time, not host time", "[gnss]") {
  auto o = Harness::make_options();
  o.min_interval = std::chrono::milliseconds(5000);
  Harness h(o);
  for (int s = 0; s < 12; ++s) {
    char t[16];
    std::snprintf(t, sizeof t, "1200%02d", s);
    feed_all(h, epoch(t));
  }
  h.flush();
  REQUIRE(h.out.size() == 3);  // :00, :05, :10
  CHECK(h.out[1].time_utc_ms - h.out[0].time_utc_ms == 5000);
  CHECK(h.out[2].time_utc_ms - h.out[1].time_utc_ms == 5000);
  CHECK(h.a.counters().skipped_interval == 9);
  CHECK(h.out[2].seq == 102);
}

TEST_CASE("a 10 Hz receiver gives one reading per epoch with min_interval 0", "[gnss]") {
  Harness h;
  for (int ds = 0; ds < 10; ++ds) {
    const std::string t = "120000." + std::to_string(ds) + "0";
    h.feed({"GNRMC," + t + ",A,3037.12340,N,12203.60000,E,0.1,,140524,,,A,V",
            "GNGGA," + t + ",3037.12340,N,12203.60000,E,1,08,1.0,6.5,M,9.4,M,,"});
  }
  h.flush();
  REQUIRE(h.out.size() == 10);
  CHECK(h.out[9].time_utc_ms - h.out[0].time_utc_ms == 900);
}

TEST_CASE("the date carries across midnight when an epoch has no RMC", "[gnss]") {
  Harness h;
  feed_all(h, epoch("235959", "140524"));
  h.feed({"GNGGA,000000.00,3037.12340,N,12203.60000,E,1,08,1.0,6.5,M,9.4,M,,",
          "GNGGA,000001.00,3037.12340,N,12203.60000,E,1,08,1.0,6.5,M,9.4,M,,"});
  h.flush();
  REQUIRE(h.out.size() == 3);
  CHECK(h.out[0].time_utc_ms == 1'715'731'199'000ULL);  // 2024-05-14T23:59:59Z
  CHECK(h.out[1].time_utc_ms == 1'715'731'200'000ULL);  // 2024-05-15T00:00:00Z
  CHECK(h.out[2].time_utc_ms == 1'715'731'201'000ULL);
}

TEST_CASE("without any RMC date the epoch cannot be timed and is skipped", "[gnss]") {
  Harness h;
  h.feed({"GNGGA,120000.00,3037.12340,N,12203.60000,E,1,08,1.0,6.5,M,9.4,M,,"});
  h.flush();
  CHECK(h.out.empty());
  CHECK(h.a.counters().skipped_no_date == 1);
}

TEST_CASE("sentences for an epoch already closed, or before any epoch, are counted stale", "[gnss]") {
  Harness h;
  h.feed({"GNVTG,91.00,T,,M,10.000,N,18.600,K,A"});  // no epoch open yet
  feed_all(h, epoch("120000"));
  feed_all(h, epoch("120001"));
  h.feed({"GNGGA,120000.00,3037.12340,N,12203.60000,E,1,08,1.0,6.5,M,9.4,M,,"});  // late
  h.flush();
  CHECK(h.out.size() == 2);
  CHECK(h.a.counters().stale_sentences == 2);
}

TEST_CASE("a receiver clock that jumps back is followed and counted", "[gnss]") {
  Harness h;
  feed_all(h, epoch("120010"));
  feed_all(h, epoch("120000"));
  h.flush();
  REQUIRE(h.out.size() == 2);
  CHECK(h.a.counters().time_went_back == 1);
}

TEST_CASE("rejected lines are counted per reason and do not disturb the epoch", "[gnss]") {
  Harness h;
  const auto e = epoch("120000");
  h.feed({e[0]});
  CHECK_FALSE(h.a.feed_line("$GNGGA,120000.00,garbage*00").has_value());
  CHECK_FALSE(h.a.feed_line(std::string("\0\0\0", 3)).has_value());
  CHECK_FALSE(h.a.feed_line("").has_value());
  h.feed({"GNGLL,3037.12340,N,12203.60000,E,120000.00,A,A"});
  feed_all(h, {e.begin() + 1, e.end()});
  h.flush();
  REQUIRE(h.out.size() == 1);
  CHECK(h.pos(0).satellites == 12);
  const auto& c = h.a.counters();
  CHECK(c.lines == 10);
  CHECK(c.sentences == 6);
  CHECK(c.rejected_for(RejectReason::kBadChecksum) == 1);
  CHECK(c.rejected_for(RejectReason::kBadByte) == 1);
  CHECK(c.rejected_for(RejectReason::kEmpty) == 1);
  CHECK(c.rejected_for(RejectReason::kUnsupportedType) == 1);
  CHECK(c.rejected_total() == 4);
}

TEST_CASE("gpsd fix status maps onto the NMEA quality numbering", "[gnss]") {
  using eport::gnss::fix_from_gpsd;
  CHECK(fix_from_gpsd(1, 1) == FixQuality::kNoFix);
  CHECK(fix_from_gpsd(0, 0) == FixQuality::kNoFix);
  CHECK(fix_from_gpsd(3, 0) == FixQuality::kGps);
  CHECK(fix_from_gpsd(3, 1) == FixQuality::kGps);
  CHECK(fix_from_gpsd(2, 2) == FixQuality::kDgps);
  CHECK(fix_from_gpsd(3, 3) == FixQuality::kRtkFixed);
  CHECK(fix_from_gpsd(3, 4) == FixQuality::kRtkFloat);
  CHECK(fix_from_gpsd(3, 5) == FixQuality::kEstimated);
  CHECK(fix_from_gpsd(3, 8) == FixQuality::kSimulated);
}

TEST_CASE("gpsd reports: the last TPV of a time wins, SKY adds hdop and satellites", "[gnss]") {
  std::uint64_t seq = 7;
  auto o = Harness::make_options();
  GpsdAssembler g(o, [&] { return seq++; });
  GpsdTpv t;
  t.mode = 2;
  t.status = 1;
  t.time_utc_ms = 1'715'731'200'000ULL;
  t.lat_deg = 30.618723333;
  t.lon_deg = 122.06;
  t.speed_m_s = 5.004;
  t.track_deg = 359.996;
  CHECK_FALSE(g.on_tpv(t));
  t.mode = 3;
  t.lat_deg = 30.61872336;  // the later TPV of the same time wins
  CHECK_FALSE(g.on_tpv(t));
  g.on_sky(GpsdSky{0.84, 9});
  GpsdTpv next = t;
  next.time_utc_ms = *t.time_utc_ms + 1000;
  next.speed_m_s = NAN;
  next.track_deg = NAN;
  auto r = g.on_tpv(next);
  REQUIRE(r.has_value());
  CHECK(r->seq == 7);
  CHECK(r->time_utc_ms == 1'715'731'200'000ULL);
  const auto& p = std::get<Position>(r->payload);
  CHECK(p.lat_e7 == 306187234);
  CHECK(p.lon_e7 == 1220600000);
  CHECK(p.speed_cm_s == 500);
  CHECK(p.heading_cdeg == 0);  // 359.996 rounds to 360.00 = 0
  CHECK(p.satellites == 9);
  CHECK(p.hdop_centi == 84);
  CHECK(p.fix == FixQuality::kGps);
  r = g.flush();
  REQUIRE(r.has_value());
  const auto& q = std::get<Position>(r->payload);
  CHECK_FALSE(q.speed_cm_s.has_value());
  CHECK_FALSE(q.heading_cdeg.has_value());
  CHECK_FALSE(q.hdop_centi.has_value());  // no SKY for this epoch
}

TEST_CASE("gpsd reports without a fix or time are skipped and counted", "[gnss]") {
  auto o = Harness::make_options();
  GpsdAssembler g(o, nullptr);
  GpsdTpv t;
  t.mode = 1;
  t.time_utc_ms = 1000;
  CHECK_FALSE(g.on_tpv(t));
  GpsdTpv untimed;
  untimed.mode = 3;
  untimed.lat_deg = 1;
  untimed.lon_deg = 1;
  CHECK_FALSE(g.on_tpv(untimed));
  CHECK_FALSE(g.flush());
  CHECK(g.counters().skipped_no_fix == 1);
  CHECK(g.counters().skipped_no_date == 1);
}
