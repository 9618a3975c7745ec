// eport::geofence tracker: the behaviours users rely on. No false
// transitions for a parked unit with GPS noise on a boundary; a crossing
// between two sparse fixes reported; dwell, gating, duplicates and stale
// fixes; a backlog replayed in any interleaving of units gives the same
// events; save/restore at every cut point gives the events of an
// uninterrupted run; index and brute force agree; zone set replacement.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "eport/geofence/tracker.h"
#include "eport/geofence/zones_file.h"
#include "geofence_test_util.h"

using eport::geofence::Fix;
using eport::geofence::Geometry;
using eport::geofence::LatLonE7;
using eport::geofence::Tracker;
using eport::geofence::Transition;
using eport::geofence::TransitionKind;
using eport::geofence::Zone;
using eport::geofence::ZoneSet;
using geofence_test::fix;
using geofence_test::ll;
using geofence_test::offset;

namespace {

constexpr std::uint64_t kT0 = 1795000000000ull;  // 2026-11-18, ms
const LatLonE7 kCentre = ll(30.63, 122.05);

Zone zone(std::string id, Geometry g, double buffer_m = 25, int dwell_s = 60, double max_hdop = 5.0) {
  Zone z;
  z.id = std::move(id);
  z.name = z.id;
  z.geometry = std::move(g);
  z.buffer_m = buffer_m;
  z.dwell = std::chrono::seconds(dwell_s);
  z.max_hdop_centi = static_cast<std::uint16_t>(max_hdop * 100);
  return z;
}

std::shared_ptr<const ZoneSet> set_of(std::vector<Zone> zones, std::string version = "t1") {
  auto s = ZoneSet::create(std::move(version), std::move(zones));
  REQUIRE(s.ok());
  return std::make_shared<const ZoneSet>(std::move(*s));
}

std::shared_ptr<const ZoneSet> shanghai() {
  auto s = eport::geofence::load_zones_file(std::string(EPORT_SOURCE_DIR) + "/docs/zones/shanghai-terminals.geojson");
  REQUIRE(s.ok());
  return std::make_shared<const ZoneSet>(std::move(*s));
}

struct SourcedFix {
  std::string source;
  Fix fix;
};

// Five units' buffered positions, 1,000 in all: trucks over the Donghai
// Bridge into the Yangshan terminals (fixes every 20 s to 10 min, so some
// terminals are only crossed between fixes), and one at Waigaoqiao.
std::vector<std::vector<SourcedFix>> backlog() {
  const LatLonE7 mainland = ll(30.905, 121.890), bridge_south = ll(30.6460, 122.0440);
  const LatLonE7 y1 = ll(30.638, 122.057), y2 = ll(30.6355, 122.080), y3 = ll(30.634, 122.108), y4 = ll(30.624, 122.030);
  const LatLonE7 sea = ll(30.60, 122.20), w1 = ll(31.357, 121.587), w45 = ll(31.343, 121.643), city = ll(31.30, 121.50);
  struct Plan {
    std::vector<LatLonE7> waypoints;
    double interval_s, pause_s;
    std::size_t count;
  };
  const Plan plans[] = {
      {{mainland, ll(30.8300, 121.9450), ll(30.7800, 121.9800), ll(30.7250, 122.0120), ll(30.6700, 122.0330),
        bridge_south, y1, y2, y3, y2, y1, bridge_south, ll(30.6700, 122.0330), mainland},
       30, 300, 300},
      {{y4, y1, y3, sea, y3, y4}, 600, 1200, 100},
      {{w1, w45, city, w45, w1}, 20, 600, 250},
      {{y1, y2, y3, y4, y1}, 120, 900, 150},
      {{sea, y3, y2, y1, y4, sea}, 60, 240, 200},
  };
  std::vector<std::vector<SourcedFix>> units;
  for (std::size_t u = 0; u < std::size(plans); ++u) {
    const auto& p = plans[u];
    // The route driven again and again until the unit has its share of fixes.
    std::vector<LatLonE7> route = p.waypoints;
    for (int lap = 0; lap < 8; ++lap) route.insert(route.end(), p.waypoints.begin() + 1, p.waypoints.end());
    auto fixes = geofence_test::journey(route, 12.0, p.interval_s, p.pause_s, kT0 + u * 7777, 100 + u);
    REQUIRE(fixes.size() >= p.count);
    fixes.resize(std::min(fixes.size(), p.count));
    std::vector<SourcedFix> mine;
    for (auto& f : fixes) mine.push_back({"tcu-" + std::to_string(u), f});
    units.push_back(std::move(mine));
  }
  return units;
}

std::vector<SourcedFix> one_after_another(const std::vector<std::vector<SourcedFix>>& units) {
  std::vector<SourcedFix> all;
  for (const auto& u : units) all.insert(all.end(), u.begin(), u.end());
  return all;
}

// A random interleaving that keeps each unit's own order.
std::vector<SourcedFix> interleaved(const std::vector<std::vector<SourcedFix>>& units, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::size_t> next(units.size(), 0);
  std::vector<SourcedFix> all;
  while (true) {
    std::vector<std::size_t> open;
    for (std::size_t u = 0; u < units.size(); ++u) {
      if (next[u] < units[u].size()) open.push_back(u);
    }
    if (open.empty()) break;
    const std::size_t u = open[std::uniform_int_distribution<std::size_t>(0, open.size() - 1)(rng)];
    all.push_back(units[u][next[u]++]);
  }
  return all;
}

std::vector<Transition> run(Tracker& t, const std::vector<SourcedFix>& fixes, std::size_t from = 0,
                            std::size_t to = static_cast<std::size_t>(-1)) {
  std::vector<Transition> out;
  for (std::size_t i = from; i < std::min(to, fixes.size()); ++i) t.process(fixes[i].source, fixes[i].fix, out);
  return out;
}

std::map<std::string, std::vector<Transition>> by_source(const std::vector<Transition>& ts) {
  std::map<std::string, std::vector<Transition>> m;
  for (const auto& t : ts) m[t.source_id].push_back(t);
  return m;
}

}  // namespace

TEST_CASE("geofence parked unit with 15 m GPS noise on a zone boundary for 10,000 fixes: 0 transitions", "[geofence]") {
  const LatLonE7 a = offset(kCentre, 2000, 0), b = offset(a, 1000, 0);
  auto zones = set_of({
      zone("circle", *Geometry::circle(kCentre, 100)),
      zone("square", *Geometry::polygon({{ll(30.64, 122.05), ll(30.64, 122.052), ll(30.642, 122.052), ll(30.642, 122.05),
                                          ll(30.64, 122.05)}})),
      zone("corridor", *Geometry::corridor({a, b}, 100)),
      zone("quick", *Geometry::circle(ll(30.66, 122.05), 100), 25, 0),  // no dwell: hysteresis alone
  });
  struct Spot {
    const char* what;
    LatLonE7 at;
  };
  const Spot spots[] = {
      {"on the circle's edge", offset(kCentre, 100, 0)},
      {"on the square's south edge", ll(30.64, 122.051)},
      {"on the square's north-east vertex", ll(30.642, 122.052)},
      {"on the corridor's edge", offset(a, 500, 50)},
      {"on the corridor's round end", offset(a, -50, 0)},
      {"on the edge of a zone without dwell", offset(ll(30.66, 122.05), 0, -100)},
  };
  for (const auto& spot : spots) {
    INFO(spot.what);
    Tracker t(zones);
    std::mt19937_64 rng(42);
    std::vector<Transition> out;
    std::size_t inside = 0;
    for (std::uint64_t i = 1; i <= 10000; ++i) {
      const LatLonE7 p = geofence_test::jitter(rng, spot.at, 15.0);
      for (const auto& z : zones->zones()) inside += z.geometry.contains(eport::geofence::unit_vector(p)) ? 1 : 0;
      t.process("parked", fix(i, kT0 + i * 10000, p), out);
    }
    CHECK(out.empty());
    CHECK(t.counters().fixes == 10000);
    // The noise does straddle the boundary: a tracker without hysteresis would flap.
    CHECK(inside > 2000);
    CHECK(inside < 8000);
  }
}

TEST_CASE("geofence a unit crossing a 200 m zone between two fixes 10 minutes apart: ENTRY and EXIT", "[geofence]") {
  auto zones = set_of({zone("gate", *Geometry::circle(kCentre, 100))});
  Tracker t(zones);
  CHECK(t.process("truck", fix(7, kT0, offset(kCentre, -5000, 0))).empty());
  auto out = t.process("truck", fix(8, kT0 + 600000, offset(kCentre, 5000, 0)));
  REQUIRE(out.size() == 2);
  CHECK(out[0].kind == TransitionKind::kEntry);
  CHECK(out[1].kind == TransitionKind::kExit);
  for (const auto& e : out) {
    CHECK(e.source_id == "truck");
    CHECK(e.zone_id == "gate");
    CHECK(e.interpolated);
    CHECK_FALSE(e.zone_removed);
    CHECK(e.first_seq == 7);
    CHECK(e.last_seq == 8);
  }
  // 4,900 m and 5,100 m of 10,000 m: 294 s and 306 s after the first fix.
  CHECK(out[0].time_utc_ms == Approx(kT0 + 294000).margin(200));
  CHECK(out[1].time_utc_ms == Approx(kT0 + 306000).margin(200));
  CHECK(t.counters().crossings == 1);
  // A line that passes only 10 m deep (less than the 25 m buffer) is noise, not a crossing.
  Tracker shallow(zones);
  (void)shallow.process("truck", fix(1, kT0, offset(kCentre, -5000, 90)));
  CHECK(shallow.process("truck", fix(2, kT0 + 600000, offset(kCentre, 5000, 90))).empty());
}

TEST_CASE("geofence ENTRY after the dwell carries the first inside fix; a shorter visit reports nothing", "[geofence]") {
  auto zones = set_of({zone("yard", *Geometry::circle(kCentre, 300), 25, 60)});
  Tracker t(zones);
  const LatLonE7 out_there = offset(kCentre, -1000, 0), in_here = offset(kCentre, 0, 0);
  CHECK(t.process("u", fix(1, kT0, out_there)).empty());
  CHECK(t.process("u", fix(2, kT0 + 10000, in_here)).empty());   // pending
  CHECK(t.process("u", fix(3, kT0 + 40000, in_here)).empty());   // 30 s: not yet
  auto entry = t.process("u", fix(4, kT0 + 70000, in_here));    // 60 s after seq 2
  REQUIRE(entry.size() == 1);
  CHECK(entry[0] == Transition{"u", "yard", TransitionKind::kEntry, kT0 + 10000, 2, 4, false, false});
  CHECK(t.process("u", fix(5, kT0 + 80000, in_here)).empty());   // no second ENTRY
  auto exit = t.process("u", fix(6, kT0 + 90000, out_there));
  REQUIRE(exit.size() == 1);
  CHECK(exit[0] == Transition{"u", "yard", TransitionKind::kExit, kT0 + 90000, 6, 6, false, false});
  // A 30 s visit: nothing at all.
  CHECK(t.process("u", fix(7, kT0 + 100000, in_here)).empty());
  CHECK(t.process("u", fix(8, kT0 + 130000, in_here)).empty());
  CHECK(t.process("u", fix(9, kT0 + 140000, out_there)).empty());
  // In the band (between -25 m and +25 m) the pending entry neither completes nor lapses.
  CHECK(t.process("u", fix(10, kT0 + 150000, in_here)).empty());
  CHECK(t.process("u", fix(11, kT0 + 250000, offset(kCentre, 290, 0))).empty());
  auto late = t.process("u", fix(12, kT0 + 260000, in_here));
  REQUIRE(late.size() == 1);
  CHECK(late[0].time_utc_ms == kT0 + 150000);
  CHECK(late[0].first_seq == 10);
}

TEST_CASE("geofence gating: no transition on a fix without a valid fix or above max_hdop", "[geofence]") {
  auto zones = set_of({zone("yard", *Geometry::circle(kCentre, 300), 25, 0, 5.0)});
  Tracker t(zones);
  const LatLonE7 in_here = kCentre, out_there = offset(kCentre, -1000, 0);
  CHECK(t.process("u", fix(1, kT0, out_there)).empty());
  CHECK(t.process("u", fix(2, kT0 + 1000, in_here, 1.0, eport::model::FixQuality::kNoFix)).empty());
  CHECK(t.process("u", fix(3, kT0 + 2000, in_here, 5.01)).empty());
  CHECK(t.counters().no_fix == 1);
  CHECK(t.counters().hdop_gated == 1);
  auto in = t.process("u", fix(4, kT0 + 3000, in_here, 5.0));  // at the gate: allowed
  REQUIRE(in.size() == 1);
  CHECK(in[0].kind == TransitionKind::kEntry);
  // A wild fix with a bad HDOP does not make it leave.
  CHECK(t.process("u", fix(5, kT0 + 4000, out_there, 9.9)).empty());
  // A fix without HDOP is not gated.
  Fix no_hdop = fix(6, kT0 + 5000, out_there);
  no_hdop.position.hdop_centi.reset();
  CHECK(t.process("u", no_hdop).size() == 1);
}

TEST_CASE("geofence duplicate seqs are no-ops and stale fixes are not used", "[geofence]") {
  auto zones = set_of({zone("yard", *Geometry::circle(kCentre, 300), 25, 0)});
  Tracker t(zones);
  const LatLonE7 in_here = kCentre, out_there = offset(kCentre, -1000, 0);
  CHECK(t.process("u", fix(5, kT0 + 50000, out_there)).empty());
  CHECK(t.process("u", fix(5, kT0 + 60000, in_here)).empty());  // resend of seq 5
  CHECK(t.process("u", fix(3, kT0 + 70000, in_here)).empty());  // below
  CHECK(t.counters().duplicates == 2);
  CHECK(t.process("u", fix(6, kT0 + 40000, in_here)).empty());  // time went backwards
  CHECK(t.counters().stale == 1);
  CHECK(t.state("u")->last_seq == 6);
  CHECK(t.state("u")->last_fix->seq == 5);
  CHECK(t.process("u", fix(7, kT0 + 80000, in_here)).size() == 1);
  // A Reading that is not a position is ignored.
  eport::model::Reading seal;
  seal.source_id = "u";
  seal.seq = 8;
  seal.payload = eport::model::SealEvent{"SEAL1", eport::model::SealState::kOpened};
  CHECK(t.process(seal).empty());
}

TEST_CASE("geofence a backlog of 1,000 positions from 5 units gives the same events in any interleaving",
          "[geofence]") {
  const auto units = backlog();
  const auto sequential = one_after_another(units);
  REQUIRE(sequential.size() == 1000);
  auto zones = shanghai();
  Tracker reference(zones);
  const auto expected = run(reference, sequential);
  // The journeys do produce events, crossings among them.
  REQUIRE(expected.size() >= 20);
  CHECK(std::any_of(expected.begin(), expected.end(), [](const Transition& e) { return e.interpolated; }));
  CHECK(std::any_of(expected.begin(), expected.end(), [](const Transition& e) { return e.zone_id == "donghai-bridge"; }));
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    INFO("seed " << seed);
    Tracker t(zones);
    const auto got = run(t, interleaved(units, seed));
    CHECK(by_source(got) == by_source(expected));
    // A replay of the same backlog again (everything a resend) adds nothing.
    CHECK(run(t, interleaved(units, seed + 100)).empty());
  }
}

TEST_CASE("geofence state saved and restored at every cut point gives the events of an uninterrupted run",
          "[geofence]") {
  const auto fixes = interleaved(backlog(), 7);
  auto zones = shanghai();
  Tracker whole(zones);
  const auto expected = run(whole, fixes);
  std::vector<std::string> sources;
  for (const auto& f : fixes) {
    if (std::find(sources.begin(), sources.end(), f.source) == sources.end()) sources.push_back(f.source);
  }
  for (std::size_t cut = 0; cut <= fixes.size(); ++cut) {
    INFO("cut before fix " << cut);
    Tracker before(zones);
    auto got = run(before, fixes, 0, cut);
    Tracker after(zones);  // a new process: only the committed bytes survive
    for (const auto& s : sources) {
      auto restored = after.restore_state(s, before.save_state(s));
      REQUIRE(restored.ok());
      CHECK(restored->empty());
    }
    const auto rest = run(after, fixes, cut);
    got.insert(got.end(), rest.begin(), rest.end());
    REQUIRE(got == expected);
  }
}

TEST_CASE("geofence the spatial index and a brute-force scan give the same events over 1,000 zones", "[geofence]") {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> lat(30.55, 30.75), lon(121.95, 122.20), size(50, 400);
  std::vector<Zone> zs;
  for (int i = 0; i < 1000; ++i) {
    const LatLonE7 c = ll(lat(rng), lon(rng));
    const double s = size(rng);
    std::string id = "z" + std::to_string(i);
    if (i % 3 == 0) {
      zs.push_back(zone(id, *Geometry::circle(c, s), 25, i % 2 ? 0 : 60));
    } else if (i % 3 == 1) {
      zs.push_back(zone(id, *Geometry::polygon({{offset(c, -s, -s), offset(c, s, -s), offset(c, s, s), offset(c, -s, s),
                                                  offset(c, -s, -s)}}),
                        25, i % 2 ? 0 : 60));
    } else {
      zs.push_back(zone(id, *Geometry::corridor({offset(c, -s, 0), offset(c, s, s)}, 120), 25, 30));
    }
  }
  auto zones = set_of(std::move(zs));
  const auto fixes = interleaved(backlog(), 3);
  Tracker indexed(zones);
  Tracker brute(zones, {.use_spatial_index = false});
  const auto a = run(indexed, fixes);
  const auto b = run(brute, fixes);
  CHECK(a.size() > 50);
  CHECK(a == b);
}

TEST_CASE("geofence replacing the zone set: a removed zone gives EXIT flagged zone_removed", "[geofence]") {
  auto both = set_of({zone("keep", *Geometry::circle(kCentre, 300), 25, 0),
                      zone("gone", *Geometry::circle(kCentre, 500), 25, 0),
                      zone("pending", *Geometry::circle(kCentre, 400), 25, 3600)});
  Tracker t(both);
  (void)t.process("u", fix(1, kT0, offset(kCentre, -5000, 0)));
  auto in = t.process("u", fix(2, kT0 + 60000, kCentre));
  REQUIRE(in.size() == 2);  // keep and gone; pending waits for its hour
  auto keep_only = set_of({zone("keep", *Geometry::circle(kCentre, 300), 25, 0)}, "t2");
  auto removed = t.replace_zones(keep_only);
  REQUIRE(removed.size() == 1);
  CHECK(removed[0] == Transition{"u", "gone", TransitionKind::kExit, kT0 + 60000, 2, 2, false, true});
  CHECK(t.counters().zone_removed == 1);
  REQUIRE(t.state("u")->zones.size() == 1);  // the pending one vanished silently
  CHECK(t.state("u")->zones[0].zone_id == "keep");
  CHECK(t.zones().version() == "t2");
  // "keep" is still inside: no second ENTRY, and its EXIT comes as usual.
  CHECK(t.process("u", fix(3, kT0 + 70000, kCentre)).empty());
  CHECK(t.process("u", fix(4, kT0 + 80000, offset(kCentre, -5000, 0))).size() == 1);

  // Restoring a state saved under the old set reports the same EXIT.
  Tracker old(both);
  (void)old.process("u", fix(1, kT0, offset(kCentre, -5000, 0)));
  (void)old.process("u", fix(2, kT0 + 60000, kCentre));
  Tracker fresh(keep_only);
  auto restored = fresh.restore_state("u", old.save_state("u"));
  REQUIRE(restored.ok());
  REQUIRE(restored->size() == 1);
  CHECK((*restored)[0].zone_removed);
}
