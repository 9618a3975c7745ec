// Adaptive reporting (reporting.h): a unit's custody state from the engine's
// detectors, the profile it selects, the change held until the commit, and
// the unit's reporting state bytes.
#include "eport/events/reporting.h"

#include <algorithm>

#include "eport/log/log.h"

namespace eport::events {

namespace {

constexpr std::string_view kLog = "custody";
constexpr std::uint8_t kReportingStateVersion = 1;
constexpr std::uint8_t kFlagReefer = 0x01;

custody::ProfileTable table_of(const ReportingOptions& o) {
  auto parsed = custody::parse_profiles(o.profiles);
  custody::ProfileTable t;
  if (parsed) {
    t = std::move(*parsed);
  } else {
    if (o.adaptive) log::error(kLog, "custody.profiles: " + parsed.error() + "; the built-in profiles are used");
    t = custody::default_profiles();
  }
  t.burst_duration = o.burst_duration;
  return t;
}

bool any_match(const std::vector<std::string>& patterns, std::string_view id) {
  return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) { return zone_matches(p, id); });
}

}  // namespace

bool zone_matches(std::string_view pattern, std::string_view id) {
  // Iterative glob with one backtrack point: linear enough for ids of at
  // most 64 bytes and a few patterns.
  std::size_t p = 0, s = 0, star = std::string_view::npos, mark = 0;
  while (s < id.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = s;
    } else if (p < pattern.size() && pattern[p] == id[s]) {
      ++p;
      ++s;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      s = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

Reporting::Reporting(const ReportingOptions& options) : options_(options), selector_(table_of(options)) {}

void Reporting::observe(const model::Reading& r, const geofence::Tracker& zones, const custody::MotionDetector& motion,
                        const custody::ExcursionDetector& excursions) {
  if (!options_.adaptive) return;
  if (const auto* s = std::get_if<model::SensorSample>(&r.payload); s && s->reefer_setpoint_centi_c) {
    reefers_.insert(r.source_id);
  }
  units_.insert(r.source_id);
  custody::CustodyInput in;
  if (const auto* st = zones.state(r.source_id)) {
    for (const auto& m : st->zones) {
      if (m.phase != geofence::Phase::kInside) continue;
      if (any_match(options_.sea_zones, m.zone_id)) {
        in.at_sea = true;
      } else if (any_match(options_.terminal_zones, m.zone_id)) {
        in.in_terminal_zone = true;
      }
    }
  }
  in.moving = motion.moving(r.source_id);
  in.reefer = reefers_.count(r.source_id) != 0;
  in.excursion_active = excursions.active(r.source_id);
  in.excursion_ended_utc_ms = excursions.last_ended_utc_ms(r.source_id);
  in.time_utc_ms = r.time_utc_ms;
  if (auto d = selector_.decide(r.source_id, r.seq, in)) pending_.push_back(std::move(*d));
}

std::size_t Reporting::finished(bool committed) {
  auto todo = std::move(pending_);
  pending_.clear();
  if (!committed || !sink_) return 0;
  for (const auto& d : todo) sink_(d.source_id, d.profile);
  return todo.size();
}

std::vector<std::uint8_t> Reporting::save(const std::string& unit) const {
  if (!options_.adaptive) return {};
  std::vector<std::uint8_t> out{kReportingStateVersion,
                                static_cast<std::uint8_t>(reefers_.count(unit) ? kFlagReefer : 0)};
  auto sel = selector_.save_state(unit);
  out.insert(out.end(), sel.begin(), sel.end());
  return out;
}

bool Reporting::restore(const std::string& unit, std::span<const std::uint8_t> bytes) {
  if (!options_.adaptive) return true;  // kept nothing; a saved profile is dropped with the next save
  if (bytes.empty()) {
    // No reporting state (a version 1 row, or adaptive reporting was off):
    // the unit's next reading decides and its profile is sent.
    reefers_.erase(unit);
    units_.erase(unit);
    return selector_.restore_state(unit, custody::encode(custody::ProfileState{})).ok();
  }
  if (bytes.size() < 2 || bytes[0] != kReportingStateVersion || (bytes[1] & ~kFlagReefer) != 0) return false;
  if (!selector_.restore_state(unit, bytes.subspan(2)).ok()) return false;
  if (bytes[1] & kFlagReefer) {
    reefers_.insert(unit);
  } else {
    reefers_.erase(unit);
  }
  units_.insert(unit);
  return true;
}

std::map<std::string, custody::Profile> Reporting::current() const {
  std::map<std::string, custody::Profile> out;
  if (!options_.adaptive) return out;
  for (const auto& unit : units_) {
    auto s = custody::decode_profile_state(selector_.save_state(unit));
    if (!s || s->current.empty()) continue;
    for (const auto& rule : selector_.table().rules) {
      if (rule.profile.name == s->current) {
        out.emplace(unit, rule.profile);
        break;
      }
    }
  }
  return out;
}

}  // namespace eport::events
