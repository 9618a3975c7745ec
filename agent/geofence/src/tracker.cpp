// The tracker's rules (eport/geofence/tracker.h, docs/geofences.md): per fix,
// the zones worth looking at (near the fix, along the segment from the last
// fix, or already pending/inside), then the hysteresis / dwell / crossing
// state machine of each, in id order.
#include "eport/geofence/tracker.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace eport::geofence {

namespace {

enum class Side { kIn, kBand, kOut };

Side classify(double signed_distance_m, double buffer_m) {
  if (signed_distance_m <= -buffer_m) return Side::kIn;
  if (signed_distance_m > buffer_m) return Side::kOut;
  return Side::kBand;
}

bool passes_gate(const std::optional<std::uint16_t>& hdop_centi, const Zone& z) {
  return !hdop_centi || *hdop_centi <= z.max_hdop_centi;
}

std::uint64_t interpolate(std::uint64_t t0, std::uint64_t t1, double fraction) {
  const std::uint64_t span = t1 - t0;
  const double offset = std::round(static_cast<double>(span) * std::clamp(fraction, 0.0, 1.0));
  return t0 + std::min(span, static_cast<std::uint64_t>(offset));
}

}  // namespace

std::string_view transition_kind_name(TransitionKind k) { return k == TransitionKind::kEntry ? "ENTRY" : "EXIT"; }

Tracker::Tracker(std::shared_ptr<const ZoneSet> zones, TrackerOptions options)
    : zones_(std::move(zones)), options_(options) {}

std::vector<Transition> Tracker::process(std::string_view source_id, const Fix& fix) {
  std::vector<Transition> out;
  process(source_id, fix, out);
  return out;
}

std::vector<Transition> Tracker::process(const model::Reading& reading) {
  std::vector<Transition> out;
  if (const auto* p = std::get_if<model::Position>(&reading.payload)) {
    process(reading.source_id, Fix{reading.seq, reading.time_utc_ms, *p}, out);
  }
  return out;
}

void Tracker::process(std::string_view source_id, const Fix& fix, std::vector<Transition>& out) {
  ++counters_.fixes;
  auto it = sources_.find(source_id);
  if (it == sources_.end()) it = sources_.emplace(std::string(source_id), SourceState{}).first;
  SourceState& s = it->second;
  if (fix.seq <= s.last_seq) {
    ++counters_.duplicates;
    return;
  }
  s.last_seq = fix.seq;
  if (fix.position.fix == model::FixQuality::kNoFix) {
    ++counters_.no_fix;
    return;
  }
  if (s.last_fix && fix.time_utc_ms < s.last_fix->time_utc_ms) {
    ++counters_.stale;
    return;
  }
  const LatLonE7 here{fix.position.lat_e7, fix.position.lon_e7};
  const Vec3 p = unit_vector(here);
  const auto& zones = zones_->zones();
  const std::optional<Vec3> previous =
      s.last_fix ? std::optional<Vec3>(unit_vector(s.last_fix->at)) : std::optional<Vec3>();

  // The zones to look at, ascending (so in id order): near the fix, near the
  // segment from the last fix (crossings), and those pending or inside.
  relevant_.clear();
  if (options_.use_spatial_index) {
    zones_->candidates(p, near_);
    along_.clear();
    if (previous && great_circle_m(*previous, p) <= kMaxCrossingSegmentM) zones_->candidates_along(*previous, p, along_);
    relevant_.insert(relevant_.end(), near_.begin(), near_.end());
    relevant_.insert(relevant_.end(), along_.begin(), along_.end());
    for (const auto& m : s.zones) relevant_.push_back(static_cast<std::uint32_t>(zones_->find(m.zone_id)));
    std::sort(relevant_.begin(), relevant_.end());
    relevant_.erase(std::unique(relevant_.begin(), relevant_.end()), relevant_.end());
  } else {
    for (std::uint32_t z = 0; z < zones.size(); ++z) relevant_.push_back(z);
  }

  const std::size_t first_new = out.size();
  std::vector<ZoneMembership> next;
  next.reserve(s.zones.size() + 1);
  auto member = s.zones.begin();
  bool gated = false;
  for (std::uint32_t zi : relevant_) {
    const Zone& z = zones[zi];
    // Memberships of zones before this one are carried over untouched
    // (only reachable when a zone was skipped, which cannot happen: every
    // membership's zone is in relevant_).
    while (member != s.zones.end() && member->zone_id < z.id) next.push_back(std::move(*member++));
    std::optional<ZoneMembership> m;
    if (member != s.zones.end() && member->zone_id == z.id) m = std::move(*member++);
    if (!passes_gate(fix.position.hdop_centi, z)) {
      gated = true;
      if (m) next.push_back(std::move(*m));
      continue;
    }
    const Side side = classify(z.geometry.signed_distance_m(p), z.buffer_m);
    const auto dwell_ms = static_cast<std::uint64_t>(z.dwell.count()) * 1000;
    auto report = [&](TransitionKind kind, std::uint64_t time, std::uint64_t first, bool interpolated) {
      out.push_back({std::string(source_id), z.id, kind, time, first, fix.seq, interpolated, false});
      if (kind == TransitionKind::kEntry) ++counters_.entries;
      else ++counters_.exits;
    };
    if (!m) {
      if (side == Side::kIn) {
        if (dwell_ms == 0) {
          report(TransitionKind::kEntry, fix.time_utc_ms, fix.seq, false);
          next.push_back({z.id, Phase::kInside, fix.time_utc_ms, fix.seq});
        } else {
          next.push_back({z.id, Phase::kPending, fix.time_utc_ms, fix.seq});
        }
      } else if (previous && passes_gate(s.last_fix->hdop_centi, z)) {
        for (const auto& c : z.geometry.crossings(*previous, p, z.buffer_m)) {
          const std::uint64_t t0 = s.last_fix->time_utc_ms;
          report(TransitionKind::kEntry, interpolate(t0, fix.time_utc_ms, c.enter_fraction), s.last_fix->seq, true);
          report(TransitionKind::kExit, interpolate(t0, fix.time_utc_ms, c.exit_fraction), s.last_fix->seq, true);
          ++counters_.crossings;
        }
      }
      continue;
    }
    if (m->phase == Phase::kPending) {
      if (side == Side::kOut) continue;  // a visit shorter than dwell_s: nothing
      if (side == Side::kIn && fix.time_utc_ms - m->since_time_ms >= dwell_ms) {
        report(TransitionKind::kEntry, m->since_time_ms, m->since_seq, false);
        m->phase = Phase::kInside;
      }
      next.push_back(std::move(*m));
      continue;
    }
    if (side == Side::kOut) {
      report(TransitionKind::kExit, fix.time_utc_ms, fix.seq, false);
      continue;
    }
    next.push_back(std::move(*m));
  }
  while (member != s.zones.end()) next.push_back(std::move(*member++));
  s.zones = std::move(next);
  if (gated) ++counters_.hdop_gated;
  s.last_fix = LastFix{fix.seq, fix.time_utc_ms, here, fix.position.hdop_centi};
  std::stable_sort(out.begin() + static_cast<std::ptrdiff_t>(first_new), out.end(),
                   [](const Transition& a, const Transition& b) { return a.time_utc_ms < b.time_utc_ms; });
}

void Tracker::drop_removed_zones(std::string_view source_id, SourceState& s, std::vector<Transition>& out) {
  std::vector<ZoneMembership> kept;
  for (auto& m : s.zones) {
    if (zones_->find(m.zone_id) >= 0) {
      kept.push_back(std::move(m));
      continue;
    }
    if (m.phase == Phase::kInside) {
      const std::uint64_t time = s.last_fix ? s.last_fix->time_utc_ms : m.since_time_ms;
      out.push_back({std::string(source_id), m.zone_id, TransitionKind::kExit, time, s.last_seq, s.last_seq, false, true});
      ++counters_.exits;
      ++counters_.zone_removed;
    }
  }
  s.zones = std::move(kept);
}

std::vector<Transition> Tracker::replace_zones(std::shared_ptr<const ZoneSet> zones) {
  zones_ = std::move(zones);
  std::vector<Transition> out;
  for (auto& [id, s] : sources_) drop_removed_zones(id, s, out);
  return out;
}

std::vector<std::uint8_t> Tracker::save_state(std::string_view source_id) const {
  auto it = sources_.find(source_id);
  return encode_state(it == sources_.end() ? SourceState{} : it->second);
}

const SourceState* Tracker::state(std::string_view source_id) const {
  auto it = sources_.find(source_id);
  return it == sources_.end() ? nullptr : &it->second;
}

Result<std::vector<Transition>> Tracker::restore_state(std::string_view source_id,
                                                       std::span<const std::uint8_t> bytes) {
  auto decoded = decode_state(bytes);
  if (!decoded.ok()) return Error{decoded.error()};
  std::vector<Transition> out;
  drop_removed_zones(source_id, *decoded, out);
  sources_.insert_or_assign(std::string(source_id), std::move(*decoded));
  return out;
}

void Tracker::forget(std::string_view source_id) {
  auto it = sources_.find(source_id);
  if (it != sources_.end()) sources_.erase(it);
}

std::vector<std::string> Tracker::sources_in_zones() const {
  std::vector<std::string> out;
  for (const auto& [id, s] : sources_) {
    if (!s.zones.empty()) out.push_back(id);
  }
  return out;
}

}  // namespace eport::geofence
