// MotionDetector: the debounce of motion.h. While stopped, a run of usable
// fixes each fast or far from the anchor, lasting start_debounce, is a
// start; while moving, a run of slow fixes within stop_radius of the run's
// first fix, lasting stop_debounce, is a stop. Any fix that breaks a run
// cancels it, so a single noisy fix never counts twice.
#include <string>
#include <variant>

#include "eport/custody/motion.h"
#include "geo.h"

namespace eport::custody {
namespace {

Status out_of_range(const char* field, long long v, long long lo, long long hi) {
  return Error{std::string("custody motion: ") + field + " = " + std::to_string(v) + " is outside " +
               std::to_string(lo) + ".." + std::to_string(hi)};
}

bool usable(const MotionOptions& o, const model::Position& p) {
  if (p.fix == model::FixQuality::kNoFix) return false;
  return !p.hdop_centi || *p.hdop_centi <= o.max_hdop_centi;
}

void begin_run(MotionState& s, const model::Reading& r, const model::Position& p) {
  s.pending = true;
  s.pending_seq = r.seq;
  s.pending_time_ms = r.time_utc_ms;
  s.pending_lat_e7 = p.lat_e7;
  s.pending_lon_e7 = p.lon_e7;
}

MotionTransition transition(const MotionState& s, MotionKind kind, const model::Reading& r) {
  return MotionTransition{r.source_id, kind, s.pending_time_ms, s.pending_lat_e7, s.pending_lon_e7,
                          s.pending_seq, r.seq, r.time_utc_ms};
}

bool debounced(const MotionState& s, const model::Reading& r, std::chrono::seconds debounce) {
  return r.time_utc_ms - s.pending_time_ms >= static_cast<std::uint64_t>(debounce.count()) * 1000;
}

}  // namespace

Status validate(const MotionOptions& o) {
  if (o.start_speed_cm_s < 50 || o.start_speed_cm_s > 5000) return out_of_range("start_speed_cm_s", o.start_speed_cm_s, 50, 5000);
  if (o.start_distance_m < 20 || o.start_distance_m > 10000) return out_of_range("start_distance_m", o.start_distance_m, 20, 10000);
  if (o.start_debounce.count() < 0 || o.start_debounce.count() > 600)
    return out_of_range("start_debounce_s", o.start_debounce.count(), 0, 600);
  if (o.stop_speed_cm_s < 10 || o.stop_speed_cm_s > 5000) return out_of_range("stop_speed_cm_s", o.stop_speed_cm_s, 10, 5000);
  if (o.stop_speed_cm_s >= o.start_speed_cm_s)
    return Error{"custody motion: stop_speed_cm_s = " + std::to_string(o.stop_speed_cm_s) +
                 " must be below start_speed_cm_s = " + std::to_string(o.start_speed_cm_s)};
  if (o.stop_radius_m < 10 || o.stop_radius_m > 10000) return out_of_range("stop_radius_m", o.stop_radius_m, 10, 10000);
  if (o.stop_debounce.count() < 10 || o.stop_debounce.count() > 3600)
    return out_of_range("stop_debounce_s", o.stop_debounce.count(), 10, 3600);
  if (o.max_hdop_centi < 100 || o.max_hdop_centi > 5000) return out_of_range("max_hdop_centi", o.max_hdop_centi, 100, 5000);
  return ok_status();
}

std::string_view dcsa_code(MotionKind k) { return k == MotionKind::kStart ? "MOTION_START" : "MOTION_STOP"; }

std::optional<MotionTransition> step(const MotionOptions& o, MotionState& s, const model::Reading& r,
                                     MotionCounters& c) {
  if (r.seq <= s.last_seq) {
    ++c.stale_seq;
    return std::nullopt;
  }
  s.last_seq = r.seq;
  const auto* p = std::get_if<model::Position>(&r.payload);
  if (p == nullptr) return std::nullopt;
  if (!usable(o, *p)) {
    ++c.gated;
    return std::nullopt;
  }
  if (s.has_anchor && r.time_utc_ms < s.last_time_ms) {
    ++c.time_backwards;
    return std::nullopt;
  }
  ++c.positions;
  s.last_time_ms = r.time_utc_ms;
  if (!s.has_anchor) {
    s.has_anchor = true;
    s.moving = false;
    s.pending = false;
    s.anchor_lat_e7 = p->lat_e7;
    s.anchor_lon_e7 = p->lon_e7;
    return std::nullopt;
  }

  if (!s.moving) {
    const bool fast = p->speed_cm_s && *p->speed_cm_s >= o.start_speed_cm_s;
    const bool far = geo::distance_m(s.anchor_lat_e7, s.anchor_lon_e7, p->lat_e7, p->lon_e7) > o.start_distance_m;
    if (!fast && !far) {
      s.pending = false;
      return std::nullopt;
    }
    if (!s.pending) begin_run(s, r, *p);
    if (!debounced(s, r, o.start_debounce)) return std::nullopt;
    auto t = transition(s, MotionKind::kStart, r);
    s.moving = true;
    s.pending = false;
    ++c.starts;
    return t;
  }

  const bool slow = !p->speed_cm_s || *p->speed_cm_s < o.stop_speed_cm_s;
  if (!slow) {
    s.pending = false;
    return std::nullopt;
  }
  if (s.pending && geo::distance_m(s.pending_lat_e7, s.pending_lon_e7, p->lat_e7, p->lon_e7) > o.stop_radius_m)
    s.pending = false;  // slow but drifting away: a new run starts here
  if (!s.pending) begin_run(s, r, *p);
  if (!debounced(s, r, o.stop_debounce)) return std::nullopt;
  auto t = transition(s, MotionKind::kStop, r);
  s.moving = false;
  s.pending = false;
  s.anchor_lat_e7 = t.lat_e7;
  s.anchor_lon_e7 = t.lon_e7;
  ++c.stops;
  return t;
}

MotionDetector::MotionDetector(MotionOptions options) : options_(options) {}

void MotionDetector::process(const model::Reading& r, std::vector<MotionTransition>& out) {
  auto it = states_.find(r.source_id);
  if (it == states_.end()) it = states_.emplace(r.source_id, MotionState{}).first;
  if (auto t = step(options_, it->second, r, counters_)) out.push_back(std::move(*t));
}

std::vector<std::uint8_t> MotionDetector::save_state(std::string_view source_id) const {
  auto it = states_.find(source_id);
  return encode(it == states_.end() ? MotionState{} : it->second);
}

Status MotionDetector::restore_state(std::string_view source_id, std::span<const std::uint8_t> bytes) {
  auto s = decode_motion_state(bytes);
  if (!s) {
    ++counters_.restore_errors;
    return Error{s.error() + " (source " + std::string(source_id) + ")"};
  }
  auto it = states_.find(source_id);
  if (it == states_.end()) it = states_.emplace(std::string(source_id), MotionState{}).first;
  it->second = *s;
  return ok_status();
}

bool MotionDetector::moving(std::string_view source_id) const {
  auto it = states_.find(source_id);
  return it != states_.end() && it->second.moving;
}

}  // namespace eport::custody
