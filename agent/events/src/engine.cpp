// The custody event engine (engine.h): per stored unit reading, pairing,
// then seals, geofences, motion and reefer excursions, each event a reading
// of the custody source; the custody commands; all state saved and rolled
// back with the store's transaction.
#include "eport/events/engine.h"

#include <algorithm>
#include <functional>
#include <cstdio>
#include <utility>

#include "epb/epb.h"
#include "eport/codec/codec.h"
#include "eport/geofence/zones_file.h"
#include "eport/json/json.h"
#include "eport/log/log.h"
#include "eport/model/clock.h"
#include "eport/model/ids.h"

namespace eport::events {

namespace {

constexpr std::string_view kLog = "custody";
// 2: adds the reporting part (reporting.h); rows of version 1 restore with
// none (the unit's next reading decides its profile afresh).
constexpr std::uint8_t kStateVersion = 2;
constexpr std::uint8_t kSealStateVersion = 1;  // seal/<container> rows

std::shared_ptr<const geofence::ZoneSet> or_empty(std::shared_ptr<const geofence::ZoneSet> zones) {
  if (zones) return zones;
  auto none = geofence::ZoneSet::create("", {});
  return std::make_shared<const geofence::ZoneSet>(std::move(none).value());
}

void put_part(std::vector<std::uint8_t>& out, std::span<const std::uint8_t> part) {
  out.push_back(static_cast<std::uint8_t>(part.size() >> 8));
  out.push_back(static_cast<std::uint8_t>(part.size()));
  out.insert(out.end(), part.begin(), part.end());
}

// The next length-prefixed part of `in` at `at`, or false when it overruns.
bool get_part(std::span<const std::uint8_t> in, std::size_t& at, std::span<const std::uint8_t>& part) {
  if (at + 2 > in.size()) return false;
  std::size_t n = (std::size_t{in[at]} << 8) | in[at + 1];
  at += 2;
  if (at + n > in.size()) return false;
  part = in.subspan(at, n);
  at += n;
  return true;
}

std::span<const std::uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::vector<std::uint8_t> encode_seal(const ExpectedSeal& e) {
  std::vector<std::uint8_t> out{kSealStateVersion, static_cast<std::uint8_t>(e.seal_class),
                                static_cast<std::uint8_t>(e.allowed_zones.size())};
  put_part(out, bytes_of(e.seal_id));
  for (const auto& z : e.allowed_zones) put_part(out, bytes_of(z));
  return out;
}

std::optional<ExpectedSeal> decode_seal(std::span<const std::uint8_t> in) {
  if (in.size() < 3 || in[0] != kSealStateVersion || in[1] > 3 || in[2] > codec::kMaxAllowedZones) return std::nullopt;
  ExpectedSeal e;
  e.seal_class = static_cast<model::SealClass>(in[1]);
  std::size_t at = 3;
  std::span<const std::uint8_t> part;
  if (!get_part(in, at, part)) return std::nullopt;
  e.seal_id.assign(part.begin(), part.end());
  for (std::size_t i = 0; i < in[2]; ++i) {
    if (!get_part(in, at, part)) return std::nullopt;
    e.allowed_zones.emplace_back(part.begin(), part.end());
  }
  if (at != in.size()) return std::nullopt;
  return e;
}

std::string sha256_hex(std::string_view text) {
  epb_sha256_ctx c;
  epb_sha256_init(&c);
  epb_sha256_update(&c, reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
  std::uint8_t digest[EPB_SHA256_LEN];
  epb_sha256_final(&c, digest);
  std::string hex;
  char two[3];
  for (auto b : digest) {
    std::snprintf(two, sizeof two, "%02x", b);
    hex += two;
  }
  return hex;
}

// The zones a ReplaceZones saved in the store put in force at start, if any.
std::shared_ptr<const geofence::ZoneSet> saved_zones(const store::DerivedState& saved, std::string& geojson) {
  for (const auto& [key, bytes] : saved) {
    if (key != kZonesKey) continue;
    std::string text(bytes.begin(), bytes.end());
    auto parsed = geofence::parse_zones_file(text);
    if (!parsed) {
      log::error(kLog, "the zones a ReplaceZones command put in force do not parse any more (" + parsed.error() +
                           "): using custody.zones_file");
      return nullptr;
    }
    geojson = std::move(text);
    return std::make_shared<const geofence::ZoneSet>(std::move(*parsed));
  }
  return nullptr;
}

}  // namespace

// The deriver of a transaction of the engine's own (Outbox::append with no
// records: a custody command, forgetting units): `body` at begin(), the
// engine for the rest.
class Engine::Transaction final : public store::Deriver {
 public:
  Transaction(Engine& engine, std::function<void(std::vector<store::Record>&)> body)
      : engine_(engine), body_(std::move(body)) {}
  void begin(std::vector<store::Record>& out) override { body_(out); }
  void stored(const store::Record& r, std::vector<store::Record>& out) override { engine_.stored(r, out); }
  void state_changes(store::DerivedState& out) override { engine_.state_changes(out); }
  void finished(bool committed) override { engine_.finished(committed); }

 private:
  Engine& engine_;
  std::function<void(std::vector<store::Record>&)> body_;
};

Engine::Engine(EngineOptions options, std::shared_ptr<const geofence::ZoneSet> file_zones,
               const store::DerivedState& saved, std::uint64_t last_event_seq)
    : opt_(std::move(options)),
      source_id_(model::custody_source_id(opt_.gateway_id)),
      file_zones_(or_empty(file_zones)),
      zones_(saved_zones(saved, zones_geojson_)),
      zones_origin_(zones_ ? "command" : file_zones ? "file" : "none"),
      geofences_(zones_ ? zones_ : file_zones_),
      motion_(opt_.motion),
      excursion_(opt_.excursion),
      reporting_(opt_.reporting),
      event_seq_(last_event_seq) {
  if (!zones_) zones_ = file_zones_;
  for (const auto& [key, bytes] : saved) {
    std::string_view k = key;
    bool ok = true;
    if (k.starts_with(kStateKeyPrefix)) {
      std::string unit(k.substr(kStateKeyPrefix.size()));
      ok = restore(unit, bytes);
      saved_units_.insert(std::move(unit));
    } else if (k.starts_with(kPairKeyPrefix)) {
      std::string container(bytes.begin(), bytes.end());
      ok = model::is_valid_iso6346(container);
      if (ok) paired_by_command_[std::string(k.substr(kPairKeyPrefix.size()))] = std::move(container);
    } else if (k.starts_with(kSealKeyPrefix)) {
      auto seal = decode_seal(bytes);
      ok = seal.has_value();
      if (ok) expected_seals_[std::string(k.substr(kSealKeyPrefix.size()))] = std::move(*seal);
    }
    if (!ok) {
      ++counters_.bad_state;
      log::warn(kLog, "saved state row " + key + " does not restore: it starts afresh");
    }
  }
}

EngineState Engine::state() const {
  std::lock_guard lock(read_mu_);
  EngineState s;
  s.zones_version = zones_->version();
  s.zones_origin = zones_origin_;
  s.zones = zones_->zones().size();
  s.expected_seals = expected_seals_.size();
  s.paired_by_command = paired_by_command_.size();
  return s;
}

std::string Engine::paired_container(const std::string& unit) const {
  std::lock_guard lock(read_mu_);
  auto it = paired_.find(unit);
  return it == paired_.end() ? std::string() : it->second;
}

std::vector<std::uint8_t> Engine::save(const std::string& unit) const {
  std::vector<std::uint8_t> out{kStateVersion};
  put_part(out, motion_.save_state(unit));
  put_part(out, excursion_.save_state(unit));
  put_part(out, geofences_.save_state(unit));
  auto container = paired_container(unit);
  put_part(out, std::span(reinterpret_cast<const std::uint8_t*>(container.data()), container.size()));
  put_part(out, reporting_.save(unit));  // version 2
  return out;
}

bool Engine::restore(const std::string& unit, std::span<const std::uint8_t> bytes) {
  std::span<const std::uint8_t> motion, excursion, zones, container, reporting;
  std::size_t at = 1;
  if (bytes.empty() || (bytes[0] != 1 && bytes[0] != kStateVersion) || !get_part(bytes, at, motion) ||
      !get_part(bytes, at, excursion) || !get_part(bytes, at, zones) || !get_part(bytes, at, container) ||
      (bytes[0] >= 2 && !get_part(bytes, at, reporting)) || at != bytes.size()) {
    return false;
  }
  if (!reporting_.restore(unit, reporting)) return false;
  if (!motion_.restore_state(unit, motion) || !excursion_.restore_state(unit, excursion)) return false;
  // Memberships of zones no longer configured are dropped here; their
  // EXITs are not reported (the zone set changed while the agent was down).
  if (!geofences_.restore_state(unit, zones)) return false;
  std::string c(container.begin(), container.end());
  std::lock_guard lock(read_mu_);
  if (c.empty()) {
    paired_.erase(unit);
  } else {
    paired_[unit] = std::move(c);
  }
  return true;
}

void Engine::begin_change() {
  if (changing_) return;
  changing_ = true;
  undo_event_seq_ = event_seq_;
}

void Engine::touch(const std::string& unit) {
  begin_change();
  if (!undo_.count(unit)) undo_.emplace(unit, save(unit));
}

void Engine::emit(const std::string& subject, model::TimeSource time_source, model::CustodyEvent e,
                  std::uint64_t time_utc_ms, const std::string& container, std::vector<store::Record>& out) {
  e.subject_id = subject;
  model::Reading r;
  r.source_id = source_id_;
  r.container_id = container;
  r.seq = ++event_seq_;
  r.time_utc_ms = time_utc_ms;
  r.time_source = time_source;
  pending_codes_.push_back(e.code);
  r.payload = std::move(e);
  store::Record rec;
  rec.source_id = source_id_;
  rec.seq = r.seq;
  rec.priority = model::classify(r, opt_.priority);
  rec.created_utc_ms = model::now_utc_ms();  // as ingest stamps readings: store TTLs count from here
  rec.body = codec::encode_reading(r);
  out.push_back(std::move(rec));
}

void Engine::stored(const store::Record& rec, std::vector<store::Record>& out) {
  if (rec.source_id == source_id_ || rec.source_id == opt_.gateway_id) return;  // its own, the gateway's GNSS
  auto decoded = codec::decode_reading(rec.body);
  if (!decoded) {
    std::lock_guard lock(counters_mu_);
    ++counters_.undecodable;
    return;
  }
  const model::Reading& r = *decoded;
  if (std::holds_alternative<model::SequenceGap>(r.payload) || std::holds_alternative<model::CustodyEvent>(r.payload)) {
    return;
  }
  // A unit on no container (its HELLO named none) has no custody to watch,
  // unless it just left one.
  if (r.container_id.empty() && paired_container(r.source_id).empty()) return;
  touch(r.source_id);
  {
    std::lock_guard lock(counters_mu_);
    ++counters_.readings;
  }

  // Pairing: a unit is on the container its readings carry (its HELLO's,
  // or its PairUnit's: rewrite()); a reading on another container is
  // UNPAIRING from the old one, then PAIRING.
  std::string paired = paired_container(r.source_id);
  if (paired != r.container_id) {
    model::CustodyEvent e;
    e.first_seq = e.caused_by_seq = r.seq;
    if (!paired.empty()) {
      e.code = model::EventCode::kUnpairing;
      emit(r.source_id, r.time_source, e, r.time_utc_ms, paired, out);
    }
    if (!r.container_id.empty()) {
      e.code = model::EventCode::kPairing;
      emit(r.source_id, r.time_source, e, r.time_utc_ms, r.container_id, out);
    }
    std::lock_guard lock(read_mu_);
    if (r.container_id.empty()) {
      paired_.erase(r.source_id);
    } else {
      paired_[r.source_id] = r.container_id;
    }
    // A unit whose own HELLO now names a container is no longer paired by
    // command: what the unit reports wins.
    if (auto it = paired_by_command_.find(r.source_id); it != paired_by_command_.end() && it->second != r.container_id) {
      undo_paired_by_command_.try_emplace(r.source_id, it->second);
      paired_by_command_.erase(it);
    }
  }
  if (r.container_id.empty()) return;

  if (const auto* seal = std::get_if<model::SealEvent>(&r.payload)) check_seal(r, *seal, out);

  if (const auto* pos = std::get_if<model::Position>(&r.payload)) {
    std::vector<geofence::Transition> zones;
    geofences_.process(r.source_id, geofence::Fix{r.seq, r.time_utc_ms, *pos}, zones);
    for (const auto& t : zones) {
      model::CustodyEvent e;
      e.code = t.kind == geofence::TransitionKind::kEntry ? model::EventCode::kGeofenceEntry
                                                          : model::EventCode::kGeofenceExit;
      e.first_seq = t.first_seq;
      e.caused_by_seq = t.last_seq;
      e.zone_id = t.zone_id;
      e.interpolated = t.interpolated;
      emit(r.source_id, r.time_source, e, t.time_utc_ms, r.container_id, out);
    }
    std::vector<custody::MotionTransition> motion;
    motion_.process(r, motion);
    for (const auto& m : motion) {
      model::CustodyEvent e;
      e.code = m.kind == custody::MotionKind::kStart ? model::EventCode::kMotionStart : model::EventCode::kMotionStop;
      e.first_seq = m.first_seq;
      e.caused_by_seq = m.caused_by_seq;
      e.lat_e7 = m.lat_e7;
      e.lon_e7 = m.lon_e7;
      emit(r.source_id, r.time_source, e, m.time_utc_ms, r.container_id, out);
    }
  } else if (std::holds_alternative<model::SensorSample>(r.payload)) {
    std::vector<custody::ExcursionEvent> excursions;
    excursion_.process(r, excursions);
    for (const auto& x : excursions) {
      model::CustodyEvent e;
      bool start = x.kind == custody::ExcursionKind::kStart;
      e.code = start ? model::EventCode::kExcursionStart : model::EventCode::kExcursionEnd;
      e.first_seq = x.first_seq;
      e.caused_by_seq = x.caused_by_seq;
      e.temperature_centi_c = start ? x.first_value_centi_c : x.extreme_centi_c;
      e.setpoint_centi_c = x.setpoint_centi_c;
      e.band_low_centi_c = static_cast<std::int16_t>(x.band_low_centi_c);
      e.band_high_centi_c = static_cast<std::int16_t>(x.band_high_centi_c);
      if (!start) {
        e.duration_ms = x.duration_ms;
        e.ended_by_gap = x.ended_by_gap;
      }
      emit(r.source_id, r.time_source, e, start ? x.began_utc_ms : x.ended_utc_ms, r.container_id, out);
    }
  }
  reporting_.observe(r, geofences_, motion_, excursion_);  // adaptive reporting (reporting.cpp)
}

void Engine::check_seal(const model::Reading& r, const model::SealEvent& seal, std::vector<store::Record>& out) {
  auto expected = expected_seals_.find(r.container_id);
  const ExpectedSeal* want = expected == expected_seals_.end() ? nullptr : &expected->second;
  model::CustodyEvent e;
  e.first_seq = e.caused_by_seq = r.seq;
  e.seal_id = seal.seal_id;
  if (want != nullptr) {
    e.expected_seal_id = want->seal_id;
    e.seal_class = want->seal_class;
  }
  // Where the unit is: its last fix used for zones, and the zones it is inside.
  std::vector<std::string> inside;
  if (const auto* where = geofences_.state(r.source_id)) {
    if (where->last_fix) {
      e.lat_e7 = where->last_fix->at.lat_e7;
      e.lon_e7 = where->last_fix->at.lon_e7;
    }
    for (const auto& m : where->zones) {
      if (m.phase == geofence::Phase::kInside) inside.push_back(m.zone_id);
    }
  }
  if (want != nullptr && !seal.seal_id.empty() && seal.seal_id != want->seal_id) {
    e.code = model::EventCode::kSealMismatch;
    emit(r.source_id, r.time_source, e, r.time_utc_ms, r.container_id, out);
  }
  if (seal.state == model::SealState::kTampered) {
    e.code = model::EventCode::kSealTampered;
    emit(r.source_id, r.time_source, e, r.time_utc_ms, r.container_id, out);
  }
  if (seal.state == model::SealState::kOpened && want != nullptr) {
    bool allowed = std::any_of(inside.begin(), inside.end(), [&](const std::string& z) {
      return std::find(want->allowed_zones.begin(), want->allowed_zones.end(), z) != want->allowed_zones.end();
    });
    if (!allowed) {
      e.code = model::EventCode::kSealOpenedOutsideZone;
      if (!inside.empty()) e.zone_id = inside.front();  // the zone it was opened in, not an allowed one
      emit(r.source_id, r.time_source, e, r.time_utc_ms, r.container_id, out);
    }
  }
}

const store::Record& Engine::rewrite(const store::Record& r, store::Record& scratch) {
  auto it = paired_by_command_.find(r.source_id);
  if (it == paired_by_command_.end()) return r;
  auto decoded = codec::decode_reading(r.body);
  if (!decoded || !decoded->container_id.empty()) return r;
  if (std::holds_alternative<model::SequenceGap>(decoded->payload)) return r;  // a gap concerns no container
  decoded->container_id = it->second;
  scratch = r;
  scratch.body = codec::encode_reading(*decoded);
  return scratch;
}

void Engine::state_changes(store::DerivedState& out) {
  for (const auto& [unit, before] : undo_) {
    out.emplace_back(std::string(kStateKeyPrefix) + unit,
                     forgotten_.count(unit) ? std::vector<std::uint8_t>() : save(unit));  // none: the row goes
  }
  for (const auto& [unit, before] : undo_paired_by_command_) {
    auto it = paired_by_command_.find(unit);
    auto bytes = it == paired_by_command_.end() ? std::span<const std::uint8_t>() : bytes_of(it->second);
    out.emplace_back(std::string(kPairKeyPrefix) + unit, std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
  }
  for (const auto& [container, before] : undo_seals_) {
    auto it = expected_seals_.find(container);
    out.emplace_back(std::string(kSealKeyPrefix) + container,
                     it == expected_seals_.end() ? std::vector<std::uint8_t>() : encode_seal(it->second));
  }
  if (undo_zones_) {
    auto bytes = bytes_of(zones_geojson_);
    out.emplace_back(std::string(kZonesKey), std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
  }
}

EngineCounters Engine::counters() const {
  std::lock_guard lock(counters_mu_);
  return counters_;
}

void Engine::finished(bool committed) {
  auto profiles_sent = reporting_.finished(committed);  // after a commit only; a rollback forgets them
  if (!committed && changing_) {
    // Back to the state of the last commit: the zones first (a unit's saved
    // state is restored against the zones it was saved with), then the rest.
    if (undo_zones_) {
      set_zones(undo_zones_->first, undo_zones_->second);
      zones_geojson_ = std::move(undo_zones_geojson_);
    }
    std::lock_guard lock(read_mu_);
    for (auto& [unit, before] : undo_paired_by_command_) {
      if (before) {
        paired_by_command_[unit] = std::move(*before);
      } else {
        paired_by_command_.erase(unit);
      }
    }
    for (auto& [container, before] : undo_seals_) {
      if (before) {
        expected_seals_[container] = std::move(*before);
      } else {
        expected_seals_.erase(container);
      }
    }
  }
  bool restored_ok = true;
  if (!committed && changing_) {
    for (const auto& [unit, before] : undo_) restored_ok = restore(unit, before) && restored_ok;
    event_seq_ = undo_event_seq_;
  }
  {
    std::lock_guard lock(counters_mu_);
    counters_.profile_changes += profiles_sent;
    if (committed) {
      counters_.events += pending_codes_.size();
      for (auto code : pending_codes_) {
        auto i = static_cast<std::size_t>(code);
        if (i < std::size(counters_.by_code)) ++counters_.by_code[i];
      }
      counters_.commands += pending_commands_;
      counters_.units_forgotten += forgotten_.size();
    } else if (changing_) {
      ++counters_.rollbacks;
      if (!restored_ok) ++counters_.bad_state;  // cannot happen: it is what save() wrote
    }
  }
  if (committed) {
    for (const auto& unit : undo_) saved_units_.insert(unit.first);
    for (const auto& unit : forgotten_) saved_units_.erase(unit);
  }
  forgotten_.clear();
  changing_ = false;
  undo_.clear();
  undo_paired_by_command_.clear();
  undo_seals_.clear();
  undo_zones_.reset();
  undo_zones_geojson_.clear();
  pending_codes_.clear();
  pending_commands_ = 0;
}

void Engine::set_zones(std::shared_ptr<const geofence::ZoneSet> zones, std::string origin) {
  geofences_.replace_zones(zones);  // its transitions are the caller's
  std::lock_guard lock(read_mu_);
  zones_ = std::move(zones);
  zones_origin_ = std::move(origin);
}

Result<std::string> Engine::run_command(store::Outbox& outbox, const codec::Command& command) {
  Result<std::string> reply = Error{"the command did not run"};
  Transaction run(*this, [&](std::vector<store::Record>& out) { reply = apply(command, out); });
  auto stored = outbox.append({}, &run);
  if (!stored) {
    std::lock_guard lock(counters_mu_);
    ++counters_.commands_refused;
    return Error{"not carried out: the store could not commit it (" + stored.error() + ")"};
  }
  if (!reply) {
    std::lock_guard lock(counters_mu_);
    ++counters_.commands_refused;
  }
  return reply;
}

std::vector<std::string> Engine::units() const {
  std::set<std::string> out;
  {
    std::lock_guard lock(read_mu_);
    for (const auto& [unit, container] : paired_) out.insert(unit);
  }
  for (auto& unit : geofences_.sources_in_zones()) out.insert(std::move(unit));
  for (const auto& unit : saved_units_) out.insert(unit);
  return {out.begin(), out.end()};
}

Result<std::size_t> Engine::forget_units(store::Outbox& outbox, const std::vector<std::string>& units) {
  std::size_t forgotten = 0;
  Transaction run(*this, [&](std::vector<store::Record>& out) {
    const auto now = model::now_utc_ms();
    for (const auto& unit : units) {
      if (unit == source_id_ || unit == opt_.gateway_id) continue;
      bool known = saved_units_.count(unit) > 0 || !paired_container(unit).empty();
      if (!known) continue;
      touch(unit);
      if (auto paired = paired_container(unit); !paired.empty()) {
        model::CustodyEvent e;
        e.code = model::EventCode::kUnpairing;
        emit(unit, model::TimeSource::kSource, e, now, paired, out);
      }
      {
        std::lock_guard lock(read_mu_);
        paired_.erase(unit);
      }
      motion_.forget(unit);
      excursion_.forget(unit);
      geofences_.forget(unit);
      reporting_.restore(unit, {});  // afresh: its next reading decides its profile
      forgotten_.insert(unit);
      ++forgotten;
    }
  });
  auto stored = outbox.append({}, &run);
  if (!stored) return Error{"forgetting idle units: the store could not commit it (" + stored.error() + ")"};
  return forgotten;
}

Result<std::string> Engine::apply(const codec::Command& command, std::vector<store::Record>& out) {
  Result<std::string> reply = Error{"not a custody command"};
  if (const auto* seal = std::get_if<codec::ExpectSeal>(&command.action)) {
    reply = expect_seal(*seal);
  } else if (const auto* pair = std::get_if<codec::PairUnit>(&command.action)) {
    reply = pair_unit(*pair, command.command_id, out);
  } else if (const auto* zones = std::get_if<codec::ReplaceZones>(&command.action)) {
    reply = replace_zones(*zones, command.command_id, out);
  }
  if (reply) ++pending_commands_;
  return reply;
}

Result<std::string> Engine::expect_seal(const codec::ExpectSeal& c) {
  if (!model::is_valid_iso6346(c.container_id)) {
    return Error{"ExpectSeal: container_id \"" + c.container_id + "\" is not an ISO 6346 container number"};
  }
  for (const auto& z : c.allowed_zones) {
    if (zones_->find(z) < 0) {
      return Error{"ExpectSeal: allowed zone \"" + z + "\" is not in the zones in force (version \"" +
                   zones_->version() + "\")"};
    }
  }
  auto it = expected_seals_.find(c.container_id);
  if (!c.seal_id.empty() && it == expected_seals_.end() && expected_seals_.size() >= kMaxExpectedSeals) {
    return Error{"ExpectSeal: " + std::to_string(kMaxExpectedSeals) + " containers have an expected seal already"};
  }
  begin_change();
  undo_seals_.try_emplace(c.container_id,
                          it == expected_seals_.end() ? std::nullopt : std::optional<ExpectedSeal>(it->second));
  std::string reply = "{\"container\":" + json::quote(c.container_id);
  if (c.seal_id.empty()) {
    std::lock_guard lock(read_mu_);
    expected_seals_.erase(c.container_id);
    return reply + ",\"expected_seal_id\":null}";
  }
  ExpectedSeal e{c.seal_id, static_cast<model::SealClass>(c.seal_class), c.allowed_zones};
  std::sort(e.allowed_zones.begin(), e.allowed_zones.end());
  e.allowed_zones.erase(std::unique(e.allowed_zones.begin(), e.allowed_zones.end()), e.allowed_zones.end());
  reply += ",\"expected_seal_id\":" + json::quote(e.seal_id) + ",\"seal_class\":" +
           json::quote(model::seal_class_name(e.seal_class)) + ",\"allowed_zones\":[";
  for (std::size_t i = 0; i < e.allowed_zones.size(); ++i) reply += (i ? "," : "") + json::quote(e.allowed_zones[i]);
  reply += "]}";
  std::lock_guard lock(read_mu_);
  expected_seals_[c.container_id] = std::move(e);
  return reply;
}

Result<std::string> Engine::pair_unit(const codec::PairUnit& c, const std::string& command_id,
                                      std::vector<store::Record>& out) {
  if (auto problem = model::topic_id_problem(c.unit_id); !problem.empty()) {
    return Error{"PairUnit: unit_id " + problem};
  }
  if (c.unit_id == source_id_ || c.unit_id == opt_.gateway_id) {
    return Error{"PairUnit: \"" + c.unit_id + "\" is this gateway's, not a unit's"};
  }
  if (model::is_evidence_source(c.unit_id)) {
    return Error{"PairUnit: \"" + c.unit_id + "\" is a unit's evidence source (\":ev\"), not a unit"};
  }
  if (!c.container_id.empty() && !model::is_valid_iso6346(c.container_id)) {
    return Error{"PairUnit: container_id \"" + c.container_id + "\" is not an ISO 6346 container number"};
  }
  auto by_command = paired_by_command_.find(c.unit_id);
  std::string paired = paired_container(c.unit_id);
  if (by_command == paired_by_command_.end() && !paired.empty()) {
    return Error{"PairUnit: unit \"" + c.unit_id + "\" reports its container itself (" + paired +
                 ", in its HELLO): pairing by command is for units that report none"};
  }
  std::string reply = "{\"unit\":" + json::quote(c.unit_id) + ",\"container\":" +
                      (c.container_id.empty() ? std::string("null") : json::quote(c.container_id));
  if (paired == c.container_id) return reply + ",\"events\":0}";  // already so: nothing to store
  if (by_command == paired_by_command_.end() && paired_by_command_.size() >= kMaxPairedByCommand) {
    return Error{"PairUnit: " + std::to_string(kMaxPairedByCommand) + " units are paired by command already"};
  }
  touch(c.unit_id);
  undo_paired_by_command_.try_emplace(
      c.unit_id, by_command == paired_by_command_.end() ? std::nullopt : std::optional<std::string>(by_command->second));
  const auto now = model::now_utc_ms();
  model::CustodyEvent e;
  e.command_id = command_id;
  std::size_t events = 0;
  if (!paired.empty()) {
    e.code = model::EventCode::kUnpairing;
    emit(c.unit_id, model::TimeSource::kSource, e, now, paired, out);
    ++events;
  }
  if (!c.container_id.empty()) {
    e.code = model::EventCode::kPairing;
    emit(c.unit_id, model::TimeSource::kSource, e, now, c.container_id, out);
    ++events;
  }
  std::lock_guard lock(read_mu_);
  if (c.container_id.empty()) {
    paired_.erase(c.unit_id);
    paired_by_command_.erase(c.unit_id);
  } else {
    paired_[c.unit_id] = c.container_id;
    paired_by_command_[c.unit_id] = c.container_id;
  }
  return reply + ",\"events\":" + std::to_string(events) + "}";
}

Result<std::string> Engine::replace_zones(const codec::ReplaceZones& c, const std::string& command_id,
                                          std::vector<store::Record>& out) {
  std::shared_ptr<const geofence::ZoneSet> zones = file_zones_;
  std::string origin = file_zones_->zones().empty() && file_zones_->version().empty() ? "none" : "file";
  if (!c.geojson.empty()) {
    auto digest = sha256_hex(c.geojson);
    if (digest != c.sha256) {
      return Error{"ReplaceZones: the geojson's SHA-256 is " + digest + ", the command says " + c.sha256};
    }
    auto parsed = geofence::parse_zones_file(c.geojson);
    if (!parsed) return Error{"ReplaceZones: " + parsed.error()};
    if (parsed->version() == zones_->version() && c.geojson != zones_geojson_) {
      return Error{"ReplaceZones: version \"" + parsed->version() +
                   "\" is in force with other content: give the new zones a new version"};
    }
    zones = std::make_shared<const geofence::ZoneSet>(std::move(*parsed));
    origin = "command";
  }
  std::string reply = "{\"zones_version\":" + json::quote(zones->version()) + ",\"zones\":" +
                      std::to_string(zones->zones().size()) + ",\"origin\":" + json::quote(origin);
  if (c.geojson == zones_geojson_) return reply + ",\"exits\":0}";  // in force already
  begin_change();
  for (const auto& unit : geofences_.sources_in_zones()) touch(unit);
  undo_zones_.emplace(zones_, zones_origin_);
  undo_zones_geojson_ = zones_geojson_;
  zones_geojson_ = c.geojson;
  std::vector<geofence::Transition> exits = geofences_.replace_zones(zones);
  {
    std::lock_guard lock(read_mu_);
    zones_ = zones;
    zones_origin_ = origin;
  }
  for (const auto& t : exits) {
    model::CustodyEvent e;
    e.code = model::EventCode::kGeofenceExit;
    e.first_seq = t.first_seq;
    e.caused_by_seq = t.last_seq;
    e.zone_id = t.zone_id;
    e.command_id = command_id;  // a zone_removed EXIT: the command removed the zone
    emit(t.source_id, model::TimeSource::kSource, e, t.time_utc_ms, paired_container(t.source_id), out);
  }
  return reply + ",\"exits\":" + std::to_string(exits.size()) + "}";
}

}  // namespace eport::events
