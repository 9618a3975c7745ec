// [reporting] Adaptive reporting in the custody event engine: a unit's
// custody state selects its reporting profile after each reading; a change
// reaches the sink once, only after its transaction commits; the selected
// profile is part of the unit's saved state, so a crash or a rollback
// neither loses nor repeats a change; version 1 state rows still restore.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "eport/codec/codec.h"
#include "eport/events/config_keys.h"
#include "eport/events/engine.h"
#include "eport/geofence/zones_file.h"
#include "eport/store/outbox.h"
#include "test_util.h"

using namespace eport;

namespace {

constexpr const char* kGateway = "gw-test";
// A 300 m circle (berth-1) at 30.6 N 122.0 E and a 2 km one (sea-anchorage)
// 20 km east; 10 m buffer, 60 s dwell.
constexpr const char* kZones = R"({"type": "FeatureCollection", "version": "test-1", "features": [
  {"type": "Feature", "geometry": {"type": "Point", "coordinates": [122.0, 30.6]},
   "properties": {"id": "berth-1", "name": "Berth 1", "radius_m": 300, "buffer_m": 10, "dwell_s": 60}},
  {"type": "Feature", "geometry": {"type": "Point", "coordinates": [122.2, 30.6]},
   "properties": {"id": "sea-anchorage", "name": "Anchorage", "radius_m": 2000, "buffer_m": 10, "dwell_s": 60}}]})";

std::shared_ptr<const geofence::ZoneSet> zones() {
  auto set = geofence::parse_zones_file(kZones);
  REQUIRE(set.ok());
  return std::make_shared<const geofence::ZoneSet>(std::move(*set));
}

constexpr std::uint64_t kT0 = 1'700'000'000'000ull;

model::Reading position(std::uint64_t seq, double lat, double lon, std::uint16_t speed_cm_s = 0) {
  model::Reading r;
  r.source_id = "TU-1";
  r.container_id = "MSKU1234565";
  r.seq = seq;
  r.time_utc_ms = kT0 + seq * 30'000;  // every 30 s
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

model::Reading sample(std::uint64_t seq, std::int16_t centi_c) {
  model::Reading r;
  r.source_id = "TU-R";
  r.container_id = "TGHU9876543";
  r.seq = seq;
  r.time_utc_ms = kT0 + seq * 60'000;  // every minute
  model::SensorSample t;
  t.reefer_setpoint_centi_c = -1800;
  t.temperature_centi_c = centi_c;
  r.payload = t;
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

// Parked 2 km north of berth-1, drives in, stays 10 minutes, drives out
// and parks; then the same into the anchorage (a sea zone by default).
std::vector<model::Reading> journey() {
  std::vector<model::Reading> out;
  std::uint64_t seq = 0;
  for (int i = 0; i < 10; ++i) out.push_back(position(++seq, 30.618, 122.0));
  for (int i = 1; i <= 6; ++i) out.push_back(position(++seq, 30.618 - 0.003 * i, 122.0, 1000));
  for (int i = 0; i < 20; ++i) out.push_back(position(++seq, 30.6001, 122.0001));
  for (int i = 1; i <= 6; ++i) out.push_back(position(++seq, 30.600 - 0.003 * i, 122.0, 1000));
  for (int i = 0; i < 10; ++i) out.push_back(position(++seq, 30.582, 122.0));
  for (int i = 0; i < 20; ++i) out.push_back(position(++seq, 30.6, 122.2, 500));
  return out;
}

using Sent = std::vector<std::pair<std::string, std::string>>;  // (unit, profile name)

struct Store {
  test::TempDir dir;
  std::unique_ptr<store::Outbox> outbox;
  std::unique_ptr<events::Engine> engine;
  store::OutboxOptions options;
  events::EngineOptions eo;
  Sent sent;  // every profile change the sink got, over restarts

  Store() {
    options.path = dir.file("outbox.db");
    options.min_free_bytes = 0;
    eo.enabled = true;
    eo.gateway_id = kGateway;
    eo.reporting.adaptive = true;
    open();
  }
  void open() {
    auto saved = reopen_store();
    open_engine(saved);
  }
  store::DerivedState reopen_store() {
    engine.reset();
    outbox.reset();
    auto ob = store::Outbox::open(options);
    REQUIRE(ob.ok());
    outbox = std::move(*ob);
    auto saved = outbox->derived_state();
    REQUIRE(saved.ok());
    return *saved;
  }
  void open_engine(const store::DerivedState& saved) {
    engine = std::make_unique<events::Engine>(eo, zones(), saved, outbox->last_seq(model::custody_source_id(kGateway)));
    engine->on_profile([this](const std::string& unit, const custody::Profile& p) { sent.emplace_back(unit, p.name); });
  }
  Result<store::AppendResult> append(const std::vector<model::Reading>& readings) {
    std::vector<store::Record> records;
    for (const auto& r : readings) records.push_back(record(r));
    return outbox->append(records, engine.get());
  }
};

Sent names(std::initializer_list<const char*> profiles, const char* unit = "TU-1") {
  Sent out;
  for (const char* p : profiles) out.emplace_back(unit, p);
  return out;
}

}  // namespace

TEST_CASE("zone id patterns: '*' matches any run of characters", "[reporting]") {
  struct Row {
    const char* pattern;
    const char* id;
    bool match;
  };
  const Row rows[] = {
      {"*", "yangshan-1", true},          {"*", "", true},
      {"yangshan-*", "yangshan-1", true}, {"yangshan-*", "waigaoqiao-1", false},
      {"*anchorage*", "yangshan-anchorage", true}, {"*anchorage*", "anchorage", true},
      {"*-anchorage", "anchorage-2", false}, {"berth-1", "berth-1", true},
      {"berth-1", "berth-10", false},     {"b*h-*1", "berth-11", true},
      {"b*h-*1", "berth-12", false},      {"", "x", false},
  };
  for (const auto& r : rows) {
    INFO(r.pattern << " ~ " << r.id);
    CHECK(events::zone_matches(r.pattern, r.id) == r.match);
  }
}

TEST_CASE("the default of custody.profiles is the built-in table", "[reporting]") {
  events::ReportingOptions o;
  auto t = custody::parse_profiles(o.profiles);
  REQUIRE(t.ok());
  CHECK(*t == custody::default_profiles());
  CHECK_FALSE(o.adaptive);
}

TEST_CASE("custody.profiles that do not parse, and adaptive reporting without custody, are config errors",
          "[reporting]") {
  const auto& keys = events::config_keys();
  const config::Key<events::EngineOptions>* profiles = nullptr;
  for (const auto& k : keys.keys) {
    if (k.key == "custody.profiles") profiles = &k;
  }
  REQUIRE(profiles != nullptr);
  CHECK(profiles->check(config::Value{std::string("land always position_s=900 sensor_s=900")}).empty());
  CHECK_THAT(profiles->check(config::Value{std::string("land when moving position_s=900 sensor_s=900")}),
             Catch::Contains("always"));
  events::EngineOptions o;
  o.reporting.adaptive = true;
  bool refused = false;
  for (const auto& r : keys.rules) {
    if (!r.check(o).empty()) refused = true;
  }
  CHECK(refused);
  o.enabled = true;
  for (const auto& r : keys.rules) CHECK(r.check(o).empty());
}

TEST_CASE("a journey selects land, terminal in the zone, land, then sea: each change once, after its commit",
          "[reporting]") {
  Store s;
  const auto readings = journey();
  for (const auto& r : readings) REQUIRE(s.append({r}).ok());
  CHECK(s.sent == names({"land", "terminal", "land", "sea"}));
  auto now = s.engine->profiles();
  REQUIRE(now.count("TU-1") == 1);
  CHECK(now.at("TU-1").name == "sea");
  CHECK(now.at("TU-1").position_interval == std::chrono::seconds(86400));
  CHECK(s.engine->counters().profile_changes == 4);
}

TEST_CASE("a parked unit gets its profile once, not with every reading", "[reporting]") {
  Store s;
  for (std::uint64_t seq = 1; seq <= 50; ++seq) REQUIRE(s.append({position(seq, 30.618, 122.0)}).ok());
  CHECK(s.sent == names({"land"}));
  // A resend of stored readings (a lost ACK) decides nothing.
  REQUIRE(s.append({position(49, 30.618, 122.0), position(50, 30.618, 122.0)}).ok());
  CHECK(s.sent.size() == 1);
}

TEST_CASE("the configured table and zone classes decide", "[reporting]") {
  Store s;
  s.eo.reporting.profiles = "dock when terminal position_s=60 sensor_s=60; road when moving position_s=120 sensor_s=900;"
                            "rest always position_s=3600 sensor_s=3600";
  s.eo.reporting.terminal_zones = {"berth-*"};
  s.eo.reporting.sea_zones = {};  // the anchorage is then neither
  s.open();
  for (const auto& r : journey()) REQUIRE(s.append({r}).ok());
  // Out of the berth at its first fix the unit is still stopped (it parked
  // there; MOTION_START needs its debounce): rest, then road.
  CHECK(s.sent == names({"rest", "road", "dock", "rest", "road", "rest", "road"}));
}

TEST_CASE("a crash after any commit neither loses nor repeats a profile change", "[reporting]") {
  const auto readings = journey();
  Store reference;
  for (const auto& r : readings) REQUIRE(reference.append({r}).ok());
  const Sent expected = reference.sent;
  REQUIRE(expected.size() == 4);
  for (std::size_t cut = 0; cut <= readings.size(); cut += 4) {
    INFO("crash after " << cut << " readings");
    Store s;
    for (std::size_t i = 0; i < cut; ++i) REQUIRE(s.append({readings[i]}).ok());
    Sent before = s.sent;
    s.open();  // kill -9 and restart: the engine restores the profile with the unit's state
    if (!before.empty()) {
      auto now = s.engine->profiles();
      REQUIRE(now.count("TU-1") == 1);
      CHECK(now.at("TU-1").name == before.back().second);  // what the unit server sends after WELCOME
    }
    std::size_t from = cut >= 2 ? cut - 2 : 0;  // the unit resends its unacknowledged readings
    for (std::size_t i = from; i < readings.size(); ++i) REQUIRE(s.append({readings[i]}).ok());
    CHECK(s.sent == expected);
  }
}

TEST_CASE("a commit that fails sends nothing, and the retry sends each change once", "[reporting]") {
  const auto readings = journey();
  Store reference;
  REQUIRE(reference.append(readings).ok());
  const Sent expected = reference.sent;
  CHECK(expected == names({"land", "terminal", "land", "sea"}));
  for (std::string step : {"derive", "state", "sources", "commit"}) {
    INFO("failing step " << step);
    Store s;
    int armed = 1;
    s.options.fault = [&](std::string_view at) { return at == step && armed-- > 0 ? 10 /* SQLITE_IOERR */ : 0; };
    s.open();
    CHECK_FALSE(s.append(readings).ok());
    CHECK(s.sent.empty());
    CHECK(s.engine->profiles().empty());
    REQUIRE(s.append(readings).ok());
    CHECK(s.sent == expected);
  }
}

TEST_CASE("a reefer excursion selects burst, and land again once burst_duration has passed after its end",
          "[reporting]") {
  Store s;
  s.eo.reporting.burst_duration = std::chrono::seconds(1800);
  s.open();
  std::vector<model::Reading> samples;
  std::uint64_t seq = 0;
  // Every minute: 10 in band, 15 at -12 degC (out of the +/-2 degC band for
  // more than the 10 minutes a START needs), then in band for an hour.
  for (int i = 0; i < 10; ++i) samples.push_back(sample(++seq, -1800));
  for (int i = 0; i < 15; ++i) samples.push_back(sample(++seq, -1200));
  for (int i = 0; i < 60; ++i) samples.push_back(sample(++seq, -1800));
  for (const auto& r : samples) REQUIRE(s.append({r}).ok());
  CHECK(s.sent == names({"land", "burst", "land"}, "TU-R"));
  // The reefer flag is part of the state: after a restart the unit is still a reefer.
  s.open();
  auto now = s.engine->profiles();
  REQUIRE(now.count("TU-R") == 1);
  CHECK(now.at("TU-R").name == "land");
}

TEST_CASE("version 1 state rows restore: pairing kept, the profile decided afresh at the next reading",
          "[reporting]") {
  Store s;
  s.eo.reporting.adaptive = false;
  s.open();
  for (std::uint64_t seq = 1; seq <= 5; ++seq) REQUIRE(s.append({position(seq, 30.618, 122.0)}).ok());
  CHECK(s.sent.empty());
  auto saved = s.reopen_store();
  // Rewrite each row as version 1 wrote it: without the last part (the
  // reporting state, empty with adaptive reporting off: two zero bytes).
  REQUIRE(saved.size() == 1);
  for (auto& [key, bytes] : saved) {
    REQUIRE(bytes.size() > 3);
    REQUIRE(bytes[0] == 2);
    CHECK(bytes[bytes.size() - 2] == 0);
    CHECK(bytes[bytes.size() - 1] == 0);
    bytes.resize(bytes.size() - 2);
    bytes[0] = 1;
  }
  s.eo.reporting.adaptive = true;
  s.open_engine(saved);
  CHECK(s.engine->counters().bad_state == 0);
  CHECK(s.engine->paired_container("TU-1") == "MSKU1234565");
  REQUIRE(s.append({position(6, 30.618, 122.0)}).ok());
  CHECK(s.sent == names({"land"}));
  CHECK(s.engine->counters().events == 0);  // no new PAIRING: the pairing came through the version 1 row
  // An unknown version is refused.
  for (auto& [key, bytes] : saved) bytes[0] = 3;
  s.open_engine(saved);
  CHECK(s.engine->counters().bad_state == 1);
}
