// [events] Seals and the custody commands: an expected seal (ExpectSeal)
// makes another seal number, a tamper and an opening outside its allowed
// zones alarms naming both numbers; PairUnit pairs a unit that names no
// container (UNPAIRING then PAIRING, its readings stamped with the
// container); ReplaceZones puts verified zones in force or is refused with
// everything as it was. All of it survives a restart and rolls back with a
// failed commit.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

#include "epb/epb.h"
#include "events_fixture.h"
#include "eport/model/clock.h"

using namespace eport;
using namespace eport::test_events;

namespace {

const std::string kBox = "MSKU1234565";

model::Reading seal(const std::string& unit, const std::string& container, std::uint64_t seq, std::string seal_id,
                    model::SealState state) {
  model::Reading r;
  r.source_id = unit;
  r.container_id = container;
  r.seq = seq;
  r.time_utc_ms = 1'700'000'000'000ull + seq * 30'000;
  r.payload = model::SealEvent{std::move(seal_id), state};
  return r;
}

codec::ExpectSeal expect(std::string seal_id, std::vector<std::string> allowed = {}) {
  return codec::ExpectSeal{kBox, std::move(seal_id), 3, std::move(allowed)};
}

std::string sha256_hex(const std::string& text) {
  epb_sha256_ctx c;
  epb_sha256_init(&c);
  epb_sha256_update(&c, reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
  std::uint8_t d[EPB_SHA256_LEN];
  epb_sha256_final(&c, d);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (auto b : d) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

codec::ReplaceZones zones_command(const std::string& geojson) { return {geojson, sha256_hex(geojson)}; }

// A zone set with one circle "quay-2" far from the fixture's berth-1.
const std::string kOtherZones = R"({"type": "FeatureCollection", "version": "test-2", "features": [
  {"type": "Feature", "geometry": {"type": "Point", "coordinates": [121.0, 31.0]},
   "properties": {"id": "quay-2", "name": "Quay 2", "radius_m": 200}}]})";

// The unit parked inside berth-1 (after its dwell): seqs 1..5.
std::vector<model::Reading> parked_in_berth(const std::string& container = kBox) {
  std::vector<model::Reading> out;
  for (std::uint64_t seq = 1; seq <= 5; ++seq) out.push_back(position("TU-1", container, seq, 30.6, 122.0));
  return out;
}

// The custody events with their store priority, in seq order.
std::vector<std::pair<model::CustodyEvent, model::Priority>> events_with_class(Store& s) {
  std::vector<std::tuple<std::uint64_t, model::CustodyEvent, model::Priority>> rows;
  REQUIRE(s.outbox
              ->for_each([&](const store::StoredRecord& r) {
                auto d = codec::decode_reading(r.body);
                REQUIRE(d.ok());
                if (const auto* e = std::get_if<model::CustodyEvent>(&d->payload)) rows.emplace_back(r.seq, *e, r.priority);
                return true;
              })
              .ok());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return std::get<0>(a) < std::get<0>(b); });
  std::vector<std::pair<model::CustodyEvent, model::Priority>> out;
  for (auto& [seq, e, p] : rows) out.emplace_back(std::move(e), p);
  return out;
}

}  // namespace

TEST_CASE("an expected seal makes another number, a tamper and an opening outside its zones alarms naming both",
          "[events]") {
  Store s;
  auto reply = s.command(expect("SL-000001", {"berth-1"}));
  REQUIRE(reply.ok());
  CHECK(*reply ==
        R"({"container":"MSKU1234565","expected_seal_id":"SL-000001","seal_class":"high_security","allowed_zones":["berth-1"]})");
  // The expected seal, sealed: no event beyond the pairing.
  REQUIRE(s.append({seal("TU-1", kBox, 1, "SL-000001", model::SealState::kSealed)}).ok());
  CHECK(codes(s.events()) == std::vector<model::EventCode>{model::EventCode::kPairing});
  // Another number: SEAL_MISMATCH, an alarm, naming both and the class.
  REQUIRE(s.append({seal("TU-1", kBox, 2, "SL-999999", model::SealState::kSealed)}).ok());
  auto e = events_with_class(s);
  REQUIRE(e.size() == 2);
  CHECK(e[1].first.code == model::EventCode::kSealMismatch);
  CHECK(e[1].second == model::Priority::kAlarm);
  CHECK(e[1].first.seal_id == "SL-999999");
  CHECK(e[1].first.expected_seal_id == "SL-000001");
  CHECK(e[1].first.seal_class == model::SealClass::kHighSecurity);
  CHECK(e[1].first.caused_by_seq == 2);
  // A tamper of the expected seal: SEAL_TAMPERED.
  REQUIRE(s.append({seal("TU-1", kBox, 3, "SL-000001", model::SealState::kTampered)}).ok());
  // Opened outside any zone: SEAL_OPENED_OUTSIDE_ZONE.
  REQUIRE(s.append({seal("TU-1", kBox, 4, "SL-000001", model::SealState::kOpened)}).ok());
  e = events_with_class(s);
  REQUIRE(e.size() == 4);
  CHECK(e[2].first.code == model::EventCode::kSealTampered);
  CHECK(e[2].first.expected_seal_id == "SL-000001");
  CHECK(e[2].second == model::Priority::kAlarm);
  CHECK(e[3].first.code == model::EventCode::kSealOpenedOutsideZone);
  CHECK(e[3].second == model::Priority::kAlarm);
  CHECK(e[3].first.zone_id.empty());
  // Inside berth-1 (allowed): opening is no alarm.
  std::vector<model::Reading> in_berth;
  for (std::uint64_t seq = 5; seq <= 9; ++seq) in_berth.push_back(position("TU-1", kBox, seq, 30.6, 122.0));
  REQUIRE(s.append(in_berth).ok());
  const auto before = s.events().size();
  REQUIRE(s.append({seal("TU-1", kBox, 10, "SL-000001", model::SealState::kOpened)}).ok());
  CHECK(s.events().size() == before);
  // The expectation survives a restart; forgetting it ends the alarms for other numbers.
  s.open();
  REQUIRE(s.append({seal("TU-1", kBox, 11, "SL-777777", model::SealState::kSealed)}).ok());
  CHECK(s.events().back().code == model::EventCode::kSealMismatch);
  REQUIRE(s.command(expect(""), "cmd-2").ok());
  CHECK(s.engine->state().expected_seals == 0);
  REQUIRE(s.append({seal("TU-1", kBox, 12, "SL-888888", model::SealState::kSealed)}).ok());
  CHECK(s.events().back().code == model::EventCode::kSealMismatch);  // still the one of seq 11
  CHECK(s.events().back().caused_by_seq == 11);
}

TEST_CASE("an opening inside a zone that is not allowed names that zone", "[events]") {
  Store s;
  REQUIRE(s.append(parked_in_berth()).ok());
  REQUIRE(s.command(expect("SL-1")).ok());  // allowed nowhere
  REQUIRE(s.append({seal("TU-1", kBox, 6, "SL-1", model::SealState::kOpened)}).ok());
  auto last = s.events().back();
  CHECK(last.code == model::EventCode::kSealOpenedOutsideZone);
  CHECK(last.zone_id == "berth-1");
  CHECK(last.lat_e7 == 306000000);
}

TEST_CASE("a tamper without an expected seal is an alarm too; a seal reading without one is no event", "[events]") {
  Store s;
  REQUIRE(s.append({seal("TU-1", kBox, 1, "SL-5", model::SealState::kSealed),
                    seal("TU-1", kBox, 2, "SL-5", model::SealState::kOpened),
                    seal("TU-1", kBox, 3, "SL-5", model::SealState::kTampered)})
              .ok());
  auto e = s.events();
  CHECK(codes(e) == std::vector<model::EventCode>{model::EventCode::kPairing, model::EventCode::kSealTampered});
  CHECK(e[1].seal_id == "SL-5");
  CHECK(e[1].expected_seal_id.empty());
}

TEST_CASE("ExpectSeal is refused for a container that is not ISO 6346 or a zone not in force", "[events]") {
  Store s;
  auto bad_box = s.command(codec::ExpectSeal{"MSKU1234566", "SL-1", 0, {}});
  REQUIRE_FALSE(bad_box.ok());
  CHECK(bad_box.error().find("ISO 6346") != std::string::npos);
  auto bad_zone = s.command(expect("SL-1", {"berth-1", "nowhere"}));
  REQUIRE_FALSE(bad_zone.ok());
  CHECK(bad_zone.error() == "ExpectSeal: allowed zone \"nowhere\" is not in the zones in force (version \"test-1\")");
  CHECK(s.engine->state().expected_seals == 0);
  CHECK(s.engine->counters().commands_refused == 2);
}

TEST_CASE("PairUnit pairs a unit that names no container: its readings carry the container from then on",
          "[events]") {
  Store s;
  // No container in its HELLO: no custody, no event.
  REQUIRE(s.append({position("TU-9", "", 1, 10, 10)}).ok());
  CHECK(s.events().empty());
  auto reply = s.command(codec::PairUnit{"TU-9", kBox}, "pair-1");
  REQUIRE(reply.ok());
  CHECK(*reply == R"({"unit":"TU-9","container":"MSKU1234565","events":1})");
  auto e = s.events();
  REQUIRE(e.size() == 1);
  CHECK(e[0].code == model::EventCode::kPairing);
  CHECK(e[0].subject_id == "TU-9");
  CHECK(e[0].command_id == "pair-1");
  // The next readings are stored with the container (and derive no second PAIRING).
  REQUIRE(s.append({position("TU-9", "", 2, 10, 10)}).ok());
  s.open();  // and after a restart
  REQUIRE(s.append({position("TU-9", "", 3, 10, 10)}).ok());
  std::vector<std::string> stored;
  REQUIRE(s.outbox
              ->for_each([&](const store::StoredRecord& r) {
                if (r.source_id == "TU-9") stored.push_back(codec::decode_reading(r.body)->container_id);
                return true;
              })
              .ok());
  CHECK(stored == std::vector<std::string>{"", kBox, kBox});
  CHECK(s.events().size() == 1);
  // Another container: UNPAIRING then PAIRING, never a silent switch.
  REQUIRE(s.command(codec::PairUnit{"TU-9", "CSQU3054383"}, "pair-2").ok());
  // The same again changes nothing.
  REQUIRE(s.command(codec::PairUnit{"TU-9", "CSQU3054383"}, "pair-3").ok());
  // Unpaired: UNPAIRING; its readings carry no container again.
  REQUIRE(s.command(codec::PairUnit{"TU-9", ""}, "pair-4").ok());
  e = s.events();
  CHECK(codes(e) == std::vector<model::EventCode>{model::EventCode::kPairing, model::EventCode::kUnpairing,
                                                  model::EventCode::kPairing, model::EventCode::kUnpairing});
  auto rows = s.event_rows();
  CHECK(codec::decode_reading(rows[1].second)->container_id == kBox);           // the one it left
  CHECK(codec::decode_reading(rows[2].second)->container_id == "CSQU3054383");  // the one it is on
  CHECK(s.engine->paired_container("TU-9").empty());
  CHECK(s.engine->state().paired_by_command == 0);
}

TEST_CASE("PairUnit is refused for a unit that reports its own container, and for bad ids", "[events]") {
  Store s;
  REQUIRE(s.append({position("TU-1", kBox, 1, 10, 10)}).ok());
  auto own = s.command(codec::PairUnit{"TU-1", "CSQU3054383"});
  REQUIRE_FALSE(own.ok());
  CHECK(own.error().find("reports its container itself (MSKU1234565") != std::string::npos);
  CHECK_FALSE(s.command(codec::PairUnit{"TU 1", kBox}).ok());      // not topic-safe
  CHECK_FALSE(s.command(codec::PairUnit{"TU-2", "MSKU123"}).ok());  // not ISO 6346
  CHECK_FALSE(s.command(codec::PairUnit{kGateway, kBox}).ok());     // the gateway itself
  CHECK_FALSE(s.command(codec::PairUnit{"TU-1:ev", kBox}).ok());    // a unit's evidence source
  CHECK(s.events().size() == 1);
}

TEST_CASE("a unit paired by command whose HELLO then names a container follows its HELLO", "[events]") {
  Store s;
  REQUIRE(s.command(codec::PairUnit{"TU-9", kBox}).ok());
  REQUIRE(s.append({position("TU-9", "CSQU3054383", 1, 10, 10)}).ok());
  CHECK(codes(s.events()) == std::vector<model::EventCode>{model::EventCode::kPairing, model::EventCode::kUnpairing,
                                                           model::EventCode::kPairing});
  CHECK(s.engine->state().paired_by_command == 0);
  s.open();
  CHECK(s.engine->state().paired_by_command == 0);
  CHECK(s.engine->paired_container("TU-9") == "CSQU3054383");
}

TEST_CASE("ReplaceZones puts verified zones in force, with EXITs from removed zones, kept across restarts",
          "[events]") {
  Store s;
  REQUIRE(s.append(parked_in_berth()).ok());
  REQUIRE(s.events().back().code == model::EventCode::kGeofenceEntry);
  auto reply = s.command(zones_command(kOtherZones), "zones-2");
  REQUIRE(reply.ok());
  CHECK(*reply == R"({"zones_version":"test-2","zones":1,"origin":"command","exits":1})");
  auto exit = s.events().back();
  CHECK(exit.code == model::EventCode::kGeofenceExit);
  CHECK(exit.zone_id == "berth-1");
  CHECK(exit.command_id == "zones-2");
  CHECK(s.engine->state().zones_version == "test-2");
  s.open();
  CHECK(s.engine->state().zones_version == "test-2");
  CHECK(s.engine->state().zones_origin == "command");
  // The same again: in force already, nothing stored.
  const auto n = s.events().size();
  REQUIRE(s.command(zones_command(kOtherZones), "zones-3").ok());
  CHECK(s.events().size() == n);
  // Empty: back to custody.zones_file.
  reply = s.command(codec::ReplaceZones{}, "zones-4");
  REQUIRE(reply.ok());
  CHECK(*reply == R"({"zones_version":"test-1","zones":1,"origin":"file","exits":0})");
  s.open();
  CHECK(s.engine->state().zones_origin == "file");
}

TEST_CASE("a bad ReplaceZones is refused naming what is wrong, and the zones in force stay", "[events]") {
  Store s;
  REQUIRE(s.append(parked_in_berth()).ok());
  const auto n = s.events().size();
  auto wrong_hash = s.command(codec::ReplaceZones{kOtherZones, std::string(64, '0')});
  REQUIRE_FALSE(wrong_hash.ok());
  CHECK(wrong_hash.error().find("the geojson's SHA-256 is") != std::string::npos);
  const std::string bow_tie = R"({"type": "FeatureCollection", "version": "bad", "features": [
    {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[121,31],[121.01,31.01],[121.01,31],[121,31.01],[121,31]]]},
     "properties": {"id": "bow-tie", "name": "Bow tie"}}]})";
  auto crossing = s.command(zones_command(bow_tie));
  REQUIRE_FALSE(crossing.ok());
  CHECK(crossing.error().find("feature 0 (id \"bow-tie\")") != std::string::npos);
  CHECK(crossing.error().find("intersects itself") != std::string::npos);
  auto unknown = s.command(zones_command(R"({"type": "FeatureCollection", "version": "x", "features": [
    {"type": "Feature", "geometry": {"type": "MultiPoint", "coordinates": [[121,31]]}, "properties": {"id": "m", "name": "M"}}]})"));
  CHECK_FALSE(unknown.ok());
  auto out_of_range = s.command(zones_command(R"({"type": "FeatureCollection", "version": "x", "features": [
    {"type": "Feature", "geometry": {"type": "Point", "coordinates": [181,31]}, "properties": {"id": "c", "name": "C", "radius_m": 5}}]})"));
  CHECK_FALSE(out_of_range.ok());
  // Same version as in force, other content.
  std::string same_version = kOtherZones;
  same_version.replace(same_version.find("test-2"), 6, "test-1");
  auto reused = s.command(zones_command(same_version));
  REQUIRE_FALSE(reused.ok());
  CHECK(reused.error().find("give the new zones a new version") != std::string::npos);
  CHECK(s.engine->state().zones_version == "test-1");
  CHECK(s.events().size() == n);
  // Still inside berth-1: leaving it still gives its EXIT.
  std::vector<model::Reading> away;
  for (std::uint64_t seq = 6; seq <= 9; ++seq) away.push_back(position("TU-1", kBox, seq, 30.7, 122.0));
  REQUIRE(s.append(away).ok());
  auto after = codes(s.events());
  CHECK(std::count(after.begin() + static_cast<std::ptrdiff_t>(n), after.end(), model::EventCode::kGeofenceExit) == 1);
}

TEST_CASE("a custody command whose commit fails changes nothing, and runs again the same", "[events]") {
  for (std::string step : {"begin", "derive", "state", "sources", "commit"}) {
    INFO("failing step " << step);
    Store reference;
    REQUIRE(reference.append(parked_in_berth()).ok());
    REQUIRE(reference.command(zones_command(kOtherZones)).ok());
    REQUIRE(reference.command(codec::PairUnit{"TU-9", kBox}).ok());
    REQUIRE(reference.command(expect("SL-1")).ok());

    Store s;
    int armed = 0;
    s.options.fault = [&](std::string_view at) { return at == step && armed-- > 0 ? 10 /* SQLITE_IOERR */ : 0; };
    s.open();
    REQUIRE(s.append(parked_in_berth()).ok());
    const auto before = s.event_rows();
    armed = 1;
    CHECK_FALSE(s.command(zones_command(kOtherZones)).ok());
    CHECK(s.engine->state().zones_version == "test-1");
    armed = 1;
    CHECK_FALSE(s.command(codec::PairUnit{"TU-9", kBox}).ok());
    CHECK(s.engine->paired_container("TU-9").empty());
    armed = step == "derive" ? 0 : 1;  // ExpectSeal derives no record: it has no derive step
    auto seal_reply = s.command(expect("SL-1"));
    CHECK(seal_reply.ok() == (step == "derive"));
    if (step != "derive") CHECK(s.engine->state().expected_seals == 0);
    CHECK(s.event_rows() == before);
    // A restart sees the same: nothing of the failed commands was stored.
    s.open();
    CHECK(s.event_rows() == before);
    CHECK(s.engine->state().zones_version == "test-1");
    // Carried out again, they give what an undisturbed run gave, byte for byte.
    REQUIRE(s.command(zones_command(kOtherZones)).ok());
    REQUIRE(s.command(codec::PairUnit{"TU-9", kBox}).ok());
    REQUIRE(s.command(expect("SL-1")).ok());
    auto got = s.event_rows();
    auto want = reference.event_rows();
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      auto a = codec::decode_reading(got[i].second), b = codec::decode_reading(want[i].second);
      // Events of commands carry the time they ran; everything else is the same.
      a->time_utc_ms = b->time_utc_ms = 0;
      CHECK(*a == *b);
    }
  }
}

TEST_CASE("a unit the store forgets (idle past store.source_expiry_s) is UNPAIRING and its state row goes", "[events]") {
  Store s;
  s.options.source_expiry = std::chrono::seconds(60);
  s.open();
  REQUIRE(s.append(parked_in_berth()).ok());
  auto has_row = [&](const std::string& key) {
    auto saved = s.outbox->derived_state();
    REQUIRE(saved.ok());
    return std::any_of(saved->begin(), saved->end(), [&](const auto& row) { return row.first == key; });
  };
  REQUIRE(has_row("custody/TU-1"));
  // Units it does not know are skipped.
  auto none = s.engine->forget_units(*s.outbox, {"TU-unknown"});
  REQUIRE(none.ok());
  CHECK(*none == 0);
  // The store forgets TU-1 once it has been idle for the expiry with nothing waiting.
  s.outbox->release_all();
  std::vector<store::Lease> leases;
  while (true) {
    auto taken = s.outbox->take(1000, 1 << 20);
    REQUIRE(taken.ok());
    if (taken->empty()) break;
    leases.push_back(store::Lease::of(*taken));
  }
  REQUIRE(s.outbox->ack(leases).ok());
  auto report = s.outbox->maintain(model::now_utc_ms() + 120'000);
  REQUIRE(report.ok());
  CHECK(std::count(report->forgotten_sources.begin(), report->forgotten_sources.end(), "TU-1") == 1);
  auto forgotten = s.engine->forget_units(*s.outbox, report->forgotten_sources);
  REQUIRE(forgotten.ok());
  CHECK(*forgotten == 1);
  CHECK_FALSE(has_row("custody/TU-1"));
  CHECK(s.engine->paired_container("TU-1").empty());
  CHECK(s.engine->counters().units_forgotten == 1);
  auto e = s.events();
  REQUIRE_FALSE(e.empty());
  CHECK(e.back().code == model::EventCode::kUnpairing);
  CHECK(e.back().subject_id == "TU-1");
  // Back on another container: PAIRING only (the UNPAIRING was stored when it was forgotten).
  REQUIRE(s.append({position("TU-1", "CSQU3054383", 1, 10, 10)}).ok());
  CHECK(s.events().back().code == model::EventCode::kPairing);
  CHECK(s.engine->units() == std::vector<std::string>{"TU-1"});
}
