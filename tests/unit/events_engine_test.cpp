// [events] The custody event engine inside the outbox's transactions: a
// unit's container changes only through UNPAIRING then PAIRING; a journey
// through a zone gives its ENTRY and EXIT once; a failed commit, a crash at
// any point and a resend neither repeat nor lose an event, and the events
// are byte for byte those of an uninterrupted run.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "eport/codec/codec.h"
#include "eport/events/engine.h"
#include "eport/geofence/zones_file.h"
#include "eport/store/outbox.h"
#include "test_util.h"

using namespace eport;

namespace {

constexpr const char* kGateway = "gw-test";
// One circular zone of 300 m around 30.6000 N, 122.0000 E; 10 m buffer, 60 s dwell.
constexpr const char* kZones = R"({"type": "FeatureCollection", "version": "test-1", "features": [
  {"type": "Feature", "geometry": {"type": "Point", "coordinates": [122.0, 30.6]},
   "properties": {"id": "berth-1", "name": "Berth 1", "radius_m": 300, "buffer_m": 10, "dwell_s": 60}}]})";

std::shared_ptr<const geofence::ZoneSet> zones() {
  auto set = geofence::parse_zones_file(kZones);
  REQUIRE(set.ok());
  return std::make_shared<const geofence::ZoneSet>(std::move(*set));
}

model::Reading position(const std::string& unit, const std::string& container, std::uint64_t seq, double lat,
                        double lon, std::uint16_t speed_cm_s = 0) {
  model::Reading r;
  r.source_id = unit;
  r.container_id = container;
  r.seq = seq;
  r.time_utc_ms = 1'700'000'000'000ull + seq * 30'000;  // every 30 s
  model::Position p;
  p.lat_e7 = static_cast<std::int32_t>(lat * 1e7);
  p.lon_e7 = static_cast<std::int32_t>(lon * 1e7);
  p.fix = model::FixQuality::kGps;
  p.satellites = 9;
  p.hdop_centi = 90;
  p.speed_cm_s = speed_cm_s;
  r.payload = p;
  return r;
}

store::Record record(const model::Reading& r) {
  store::Record rec;
  rec.source_id = r.source_id;
  rec.seq = r.seq;
  rec.priority = model::default_priority(r);
  rec.created_utc_ms = r.time_utc_ms;
  rec.body = codec::encode_reading(r);
  return rec;
}

// A journey of one unit on MSKU1234565: parked 2 km north of the zone, drives
// in (10 m/s), stays 10 minutes, drives out and parks again.
std::vector<model::Reading> journey() {
  std::vector<model::Reading> out;
  std::uint64_t seq = 0;
  const std::string unit = "TU-1", box = "MSKU1234565";
  for (int i = 0; i < 10; ++i) out.push_back(position(unit, box, ++seq, 30.618, 122.0));
  for (int i = 1; i <= 6; ++i) out.push_back(position(unit, box, ++seq, 30.618 - 0.003 * i, 122.0, 1000));
  for (int i = 0; i < 20; ++i) out.push_back(position(unit, box, ++seq, 30.6001, 122.0001));
  for (int i = 1; i <= 6; ++i) out.push_back(position(unit, box, ++seq, 30.600 - 0.003 * i, 122.0, 1000));
  for (int i = 0; i < 10; ++i) out.push_back(position(unit, box, ++seq, 30.582, 122.0));
  return out;
}

struct Store {
  test::TempDir dir;
  std::unique_ptr<store::Outbox> outbox;
  std::unique_ptr<events::Engine> engine;
  store::OutboxOptions options;

  Store() {
    options.path = dir.file("outbox.db");
    options.min_free_bytes = 0;
    open();
  }
  // Opens (again, as a restarted agent does) the outbox and an engine from its saved state.
  void open() {
    engine.reset();
    outbox.reset();
    auto ob = store::Outbox::open(options);
    REQUIRE(ob.ok());
    outbox = std::move(*ob);
    auto saved = outbox->derived_state();
    REQUIRE(saved.ok());
    events::EngineOptions eo;
    eo.enabled = true;
    eo.gateway_id = kGateway;
    engine = std::make_unique<events::Engine>(eo, zones(), *saved,
                                              outbox->last_seq(model::custody_source_id(kGateway)));
  }
  Result<store::AppendResult> append(const std::vector<model::Reading>& readings) {
    std::vector<store::Record> records;
    for (const auto& r : readings) records.push_back(record(r));
    return outbox->append(records, engine.get());
  }
  // The custody source's rows, in seq order: (seq, body).
  std::vector<std::pair<std::uint64_t, std::vector<std::uint8_t>>> event_rows() {
    std::vector<std::pair<std::uint64_t, std::vector<std::uint8_t>>> out;
    REQUIRE(outbox
                ->for_each([&](const store::StoredRecord& r) {
                  if (r.source_id == model::custody_source_id(kGateway)) out.emplace_back(r.seq, r.body);
                  return true;
                })
                .ok());
    std::sort(out.begin(), out.end());
    return out;
  }
  std::vector<model::CustodyEvent> events() {
    std::vector<model::CustodyEvent> out;
    for (const auto& [seq, body] : event_rows()) {
      auto r = codec::decode_reading(body);
      REQUIRE(r.ok());
      out.push_back(std::get<model::CustodyEvent>(r->payload));
    }
    return out;
  }
};

std::vector<model::EventCode> codes(const std::vector<model::CustodyEvent>& events) {
  std::vector<model::EventCode> out;
  for (const auto& e : events) out.push_back(e.code);
  return out;
}

}  // namespace

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
  CHECK(codes(e).front() == model::EventCode::kPairing);
  // Motion: it started and stopped (twice each: into the zone, out of it).
  auto starts = std::count(codes(e).begin(), codes(e).end(), model::EventCode::kMotionStart);
  CHECK(starts >= 1);
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
