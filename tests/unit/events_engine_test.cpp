// [events] The custody event engine inside the outbox's transactions: a
// unit's container changes only through UNPAIRING then PAIRING; a journey
// through a zone gives its ENTRY and EXIT once; a failed commit, a crash at
// any point and a resend neither repeat nor lose an event, and the events
// are byte for byte those of an uninterrupted run.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "events_fixture.h"

using namespace eport;
using namespace eport::test_events;


TEST_CASE("a unit's first reading pairs it; another container is UNPAIRING then PAIRING, never a silent switch",
          "[events]") {
  Store s;
  REQUIRE(s.append({position("TU-1", "MSKU1234565", 1, 10, 10), position("TU-1", "MSKU1234565", 2, 10, 10)}).ok());
  REQUIRE(s.append({position("TU-1", "TGHU9876543", 3, 10, 10)}).ok());
  auto rows = s.event_rows();
  REQUIRE(rows.size() == 3);
  std::vector<std::string> containers;
  for (const auto& [seq, body] : rows) containers.push_back(codec::decode_reading(body)->container_id);
  CHECK(containers == std::vector<std::string>{"MSKU1234565", "MSKU1234565", "TGHU9876543"});
  auto e = s.events();
  CHECK(codes(e) == std::vector<model::EventCode>{model::EventCode::kPairing, model::EventCode::kUnpairing,
                                                  model::EventCode::kPairing});
  CHECK(e[1].subject_id == "TU-1");
  CHECK(e[1].caused_by_seq == 3);
  CHECK(rows[0].first == 1);  // the custody source has its own seq, from 1
  CHECK(rows[2].first == 3);
  // The pairing survives a restart: the same container again is no event.
  s.open();
  REQUIRE(s.append({position("TU-1", "TGHU9876543", 4, 10, 10)}).ok());
  CHECK(s.event_rows().size() == 3);
  CHECK(s.engine->paired_container("TU-1") == "TGHU9876543");
}

TEST_CASE("a journey through a zone gives ENTRY after the dwell and EXIT, once each", "[events]") {
  Store s;
  REQUIRE(s.append(journey()).ok());
  auto e = s.events();
  std::vector<model::CustodyEvent> zone;
  for (const auto& x : e) {
    if (x.code == model::EventCode::kGeofenceEntry || x.code == model::EventCode::kGeofenceExit) zone.push_back(x);
  }
  REQUIRE(zone.size() == 2);
  CHECK(zone[0].code == model::EventCode::kGeofenceEntry);
  CHECK(zone[0].zone_id == "berth-1");
  CHECK(zone[1].code == model::EventCode::kGeofenceExit);
  const auto all = codes(e);
  CHECK(all.front() == model::EventCode::kPairing);
  // Motion: it drove into the zone and out again.
  CHECK(std::count(all.begin(), all.end(), model::EventCode::kMotionStart) >= 1);
  CHECK(std::count(all.begin(), all.end(), model::EventCode::kMotionStop) >= 1);
}

TEST_CASE("a crash after any commit, then the resend of what was not acknowledged, gives the same events byte for byte",
          "[events]") {
  const auto readings = journey();
  Store reference;
  for (const auto& r : readings) REQUIRE(reference.append({r}).ok());
  const auto expected = reference.event_rows();
  REQUIRE(expected.size() >= 4);
  for (std::size_t cut = 0; cut <= readings.size(); cut += 3) {
    INFO("crash after " << cut << " readings");
    Store s;
    for (std::size_t i = 0; i < cut; ++i) REQUIRE(s.append({readings[i]}).ok());
    s.open();  // kill -9 and restart: only what was committed remains
    // The unit resends from before the cut (its last ACK was lost): duplicates derive nothing.
    std::size_t from = cut >= 2 ? cut - 2 : 0;
    for (std::size_t i = from; i < readings.size(); ++i) REQUIRE(s.append({readings[i]}).ok());
    CHECK(s.event_rows() == expected);
  }
}

TEST_CASE("a commit that fails rolls the engine back: the retried batch derives the same events, none twice",
          "[events]") {
  const auto readings = journey();
  Store reference;
  REQUIRE(reference.append(readings).ok());
  const auto expected = reference.event_rows();

  for (std::string step : {"insert", "derive", "state", "sources", "commit"}) {
    INFO("failing step " << step);
    Store s;
    int armed = 1;
    s.options.fault = [&](std::string_view at) { return at == step && armed-- > 0 ? 10 /* SQLITE_IOERR */ : 0; };
    s.open();
    auto failed = s.append(readings);
    CHECK_FALSE(failed.ok());
    CHECK(s.event_rows().empty());
    // The first insert fails before the engine saw anything; later steps have something to forget.
    CHECK(s.engine->counters().rollbacks == (step == "insert" ? 0u : 1u));
    auto again = s.append(readings);  // the unit resends everything
    REQUIRE(again.ok());
    CHECK(again->stored == readings.size());
    CHECK(s.event_rows() == expected);
  }
}

TEST_CASE("a reefer excursion is an alarm at its start and an event with its duration at its end", "[events]") {
  Store s;
  std::vector<model::Reading> samples;
  for (std::uint64_t seq = 1; seq <= 40; ++seq) {
    model::Reading r;
    r.source_id = "TU-R";
    r.container_id = "MSKU1234565";
    r.seq = seq;
    r.time_utc_ms = 1'700'000'000'000ull + seq * 60'000;  // every minute
    model::SensorSample t;
    t.reefer_setpoint_centi_c = -1800;
    // 15 minutes at -12 degC (6 degrees out of a +/-2 degC band), then back to -18.
    t.temperature_centi_c = static_cast<std::int16_t>(seq >= 10 && seq < 25 ? -1200 : -1800);
    r.payload = t;
    samples.push_back(r);
  }
  REQUIRE(s.append(samples).ok());
  std::vector<model::CustodyEvent> excursion;
  std::vector<model::Priority> classes;
  REQUIRE(s.outbox
              ->for_each([&](const store::StoredRecord& r) {
                auto d = codec::decode_reading(r.body);
                if (const auto* e = std::get_if<model::CustodyEvent>(&d->payload);
                    e && (e->code == model::EventCode::kExcursionStart || e->code == model::EventCode::kExcursionEnd)) {
                  excursion.push_back(*e);
                  classes.push_back(r.priority);
                }
                return true;
              })
              .ok());
  REQUIRE(excursion.size() == 2);
  CHECK(excursion[0].code == model::EventCode::kExcursionStart);
  CHECK(classes[0] == model::Priority::kAlarm);
  CHECK(excursion[0].temperature_centi_c == -1200);
  CHECK(excursion[1].code == model::EventCode::kExcursionEnd);
  CHECK(classes[1] == model::Priority::kEvent);
  CHECK(excursion[1].duration_ms == std::optional<std::uint64_t>(15 * 60'000));
}
