// The custody event engine (engine.h): per stored unit reading, pairing,
// then geofences, motion and reefer excursions, each event a reading of the
// custody source; per-source state saved and rolled back with the store's
// transaction.
#include "eport/events/engine.h"

#include <utility>

#include "eport/codec/codec.h"
#include "eport/log/log.h"
#include "eport/model/clock.h"

namespace eport::events {

namespace {

constexpr std::string_view kLog = "custody";
// 2: adds the reporting part (reporting.h); rows of version 1 restore with
// none (the unit's next reading decides its profile afresh).
constexpr std::uint8_t kStateVersion = 2;

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

}  // namespace

Engine::Engine(EngineOptions options, std::shared_ptr<const geofence::ZoneSet> zones, const store::DerivedState& saved,
               std::uint64_t last_event_seq)
    : opt_(std::move(options)),
      source_id_(model::custody_source_id(opt_.gateway_id)),
      zones_(or_empty(std::move(zones))),
      geofences_(zones_),
      motion_(opt_.motion),
      excursion_(opt_.excursion),
      reporting_(opt_.reporting),
      event_seq_(last_event_seq) {
  for (const auto& [key, bytes] : saved) {
    if (key.rfind(kStateKeyPrefix, 0) != 0) continue;
    auto unit = key.substr(kStateKeyPrefix.size());
    if (!restore(unit, bytes)) {
      ++counters_.bad_state;
      log::warn(kLog, "saved state of " + unit + " does not restore: its rules start afresh");
    }
  }
}

const std::string& Engine::zones_version() const { return zones_->version(); }

std::string Engine::paired_container(const std::string& unit) const {
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
  if (c.empty()) {
    paired_.erase(unit);
  } else {
    paired_[unit] = std::move(c);
  }
  return true;
}

void Engine::touch(const std::string& unit) {
  if (undo_.empty()) undo_event_seq_ = event_seq_;
  undo_.try_emplace(unit, save(unit));
}

void Engine::emit(const model::Reading& cause, model::CustodyEvent e, std::uint64_t time_utc_ms,
                  const std::string& container, std::vector<store::Record>& out) {
  e.subject_id = cause.source_id;
  model::Reading r;
  r.source_id = source_id_;
  r.container_id = container;
  r.seq = ++event_seq_;
  r.time_utc_ms = time_utc_ms;
  r.time_source = cause.time_source;
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

  // Pairing: a unit is on the container its readings carry; a reading on
  // another container is UNPAIRING from the old one, then PAIRING.
  auto& paired = paired_[r.source_id];
  if (paired != r.container_id) {
    model::CustodyEvent e;
    e.first_seq = e.caused_by_seq = r.seq;
    if (!paired.empty()) {
      e.code = model::EventCode::kUnpairing;
      emit(r, e, r.time_utc_ms, paired, out);
    }
    if (!r.container_id.empty()) {
      e.code = model::EventCode::kPairing;
      emit(r, e, r.time_utc_ms, r.container_id, out);
    }
    paired = r.container_id;
  }
  if (r.container_id.empty()) {
    paired_.erase(r.source_id);
    return;
  }

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
      emit(r, e, t.time_utc_ms, r.container_id, out);
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
      emit(r, e, m.time_utc_ms, r.container_id, out);
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
      emit(r, e, start ? x.began_utc_ms : x.ended_utc_ms, r.container_id, out);
    }
  }
  reporting_.observe(r, geofences_, motion_, excursion_);  // adaptive reporting (reporting.cpp)
}

void Engine::state_changes(store::DerivedState& out) {
  for (const auto& [unit, before] : undo_) out.emplace_back(std::string(kStateKeyPrefix) + unit, save(unit));
}

EngineCounters Engine::counters() const {
  std::lock_guard lock(counters_mu_);
  return counters_;
}

void Engine::finished(bool committed) {
  auto profiles_sent = reporting_.finished(committed);  // after a commit only; a rollback forgets them
  std::lock_guard lock(counters_mu_);
  counters_.profile_changes += profiles_sent;
  if (committed) {
    counters_.events += pending_codes_.size();
    for (auto code : pending_codes_) {
      auto i = static_cast<std::size_t>(code);
      if (i < std::size(counters_.by_code)) ++counters_.by_code[i];
    }
  } else if (!undo_.empty()) {
    ++counters_.rollbacks;
    for (const auto& [unit, before] : undo_) {
      if (!restore(unit, before)) ++counters_.bad_state;  // cannot happen: it is what save() wrote
    }
    event_seq_ = undo_event_seq_;
  }
  undo_.clear();
  pending_codes_.clear();
}

}  // namespace eport::events
