// The [events] tests' fixture: an outbox in a temporary directory with a
// custody event engine over it (reopened as a restarted agent does), one
// circular test zone, readings of a journey through it, and the custody
// source's rows decoded.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "eport/codec/codec.h"
#include "eport/events/engine.h"
#include "eport/geofence/zones_file.h"
#include "eport/store/outbox.h"
#include "test_util.h"

namespace eport::test_events {

inline constexpr const char* kGateway = "gw-test";
// One circular zone of 300 m around 30.6000 N, 122.0000 E; 10 m buffer, 60 s dwell.
inline constexpr const char* kZones = R"({"type": "FeatureCollection", "version": "test-1", "features": [
  {"type": "Feature", "geometry": {"type": "Point", "coordinates": [122.0, 30.6]},
   "properties": {"id": "berth-1", "name": "Berth 1", "radius_m": 300, "buffer_m": 10, "dwell_s": 60}}]})";

inline std::shared_ptr<const geofence::ZoneSet> zones() {
  auto set = geofence::parse_zones_file(kZones);
  REQUIRE(set.ok());
  return std::make_shared<const geofence::ZoneSet>(std::move(*set));
}

inline model::Reading position(const std::string& unit, const std::string& container, std::uint64_t seq, double lat,
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

inline store::Record record(const model::Reading& r) {
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
inline std::vector<model::Reading> journey() {
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
  // Runs a custody command as the agent does (AgentCommands).
  Result<std::string> command(codec::Action action, const std::string& id = "cmd-1") {
    codec::Command c;
    c.command_id = id;
    c.gateway_id = kGateway;
    c.action = std::move(action);
    auto reply = engine->run_command(*outbox, c);
    if (!reply) UNSCOPED_INFO("command " << id << " refused: " << reply.error());
    return reply;
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

inline std::vector<model::EventCode> codes(const std::vector<model::CustodyEvent>& events) {
  std::vector<model::EventCode> out;
  for (const auto& e : events) out.push_back(e.code);
  return out;
}

}  // namespace eport::test_events
