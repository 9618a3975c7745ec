// Motion detection (issue 13): MOTION_START / MOTION_STOP per source from
// the speed and displacement of its position readings, debounced in event
// time (time_utc_ms), never the wall clock, so that a backlog replayed at any
// speed gives the same transitions as live. Not thread-safe: one owner feeds
// readings, source by source in seq order (sources may interleave).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "eport/model/reading.h"
#include "eport/model/result.h"

namespace eport::custody {

// Defaults: a parked unit (GPS noise +/- 15 m, speed jitter 0..1 m/s) never
// moves; a truck leaving a yard at >= 3 m/s is moving within about 20 s.
// Suggested config keys in brackets; validate() gives the ranges.
struct MotionOptions {
  // [custody.motion_start_speed_cm_s] 50..5000: a fix at or above this
  // speed counts towards starting (300 = 3 m/s = 10.8 km/h).
  std::uint16_t start_speed_cm_s = 300;
  // [custody.motion_start_distance_m] 20..10000: a fix farther than this
  // from the anchor (where the unit stopped) counts towards starting, also
  // without a speed.
  std::uint32_t start_distance_m = 80;
  // [custody.motion_start_debounce_s] 0..600: how long fixes must keep
  // counting towards starting (every usable fix in between) before
  // MOTION_START.
  std::chrono::seconds start_debounce{20};
  // [custody.motion_stop_speed_cm_s] 10..5000, below start_speed_cm_s: a
  // fix below this speed (or without one) counts towards stopping.
  std::uint16_t stop_speed_cm_s = 150;
  // [custody.motion_stop_radius_m] 10..10000: ... if it is also within this
  // radius of the first fix of the stop.
  std::uint32_t stop_radius_m = 50;
  // [custody.motion_stop_debounce_s] 10..3600: how long fixes must keep
  // counting towards stopping before MOTION_STOP (lights and gate queues
  // are shorter than the default 3 min).
  std::chrono::seconds stop_debounce{180};
  // [custody.motion_max_hdop_centi] 100..5000: fixes with a larger HDOP
  // (x100), and fixes without a fix, are not used (counted in gated).
  std::uint16_t max_hdop_centi = 500;
};

// The ranges above; the error names the field, its value and its range.
Status validate(const MotionOptions& o);

enum class MotionKind : std::uint8_t { kStart = 0, kStop = 1 };

// One transition. time_utc_ms, lat_e7 and lon_e7 are those of the first fix
// of the debounce (when the unit began moving or stopped there);
// caused_by_seq is the reading that confirmed it (its time is
// detected_utc_ms), first_seq the reading of that first fix.
struct MotionTransition {
  std::string source_id;
  MotionKind kind = MotionKind::kStart;
  std::uint64_t time_utc_ms = 0;
  std::int32_t lat_e7 = 0;
  std::int32_t lon_e7 = 0;
  std::uint64_t first_seq = 0;
  std::uint64_t caused_by_seq = 0;
  std::uint64_t detected_utc_ms = 0;
  bool operator==(const MotionTransition&) const = default;
};

// DCSA Track & Trace v3 IoT event type: "MOTION_START" or "MOTION_STOP".
std::string_view dcsa_code(MotionKind k);

// Health counters, totals since construction (not persisted).
struct MotionCounters {
  std::uint64_t positions = 0;       // position readings used
  std::uint64_t stale_seq = 0;       // seq <= the source's last processed: no-op
  std::uint64_t time_backwards = 0;  // time before the source's last used reading: not used
  std::uint64_t gated = 0;           // no fix or HDOP above max_hdop_centi: not used
  std::uint64_t starts = 0;
  std::uint64_t stops = 0;
  std::uint64_t restore_errors = 0;  // restore_state() refused the bytes
};

// Per-source state, everything a restart needs. Plain value; the encoding
// below is what the agent commits with the readings that changed it.
struct MotionState {
  std::uint64_t last_seq = 0;      // last reading processed (any kind)
  std::uint64_t last_time_ms = 0;  // time of the last position used
  bool has_anchor = false;         // false until the first usable fix
  bool moving = false;             // the unit starts as stopped at its first fix
  std::int32_t anchor_lat_e7 = 0;  // where it stopped (valid while stopped)
  std::int32_t anchor_lon_e7 = 0;
  // The debounce under way (towards start while stopped, towards stop
  // while moving): its first fix.
  bool pending = false;
  std::uint64_t pending_seq = 0;
  std::uint64_t pending_time_ms = 0;
  std::int32_t pending_lat_e7 = 0;
  std::int32_t pending_lon_e7 = 0;
  bool operator==(const MotionState&) const = default;
};

// Version 1: 1 + 8 + 8 + 1 + 1 + 4 + 4 + 1 + 8 + 8 + 4 + 4 = 52 bytes, always.
inline constexpr std::size_t kMotionStateBytes = 52;
std::vector<std::uint8_t> encode(const MotionState& s);
// Refuses a wrong length, an unknown version or a flag byte other than 0/1.
Result<MotionState> decode_motion_state(std::span<const std::uint8_t> bytes);

// One source's step: feeds `r` (of that source) into `s`; returns the
// transition it confirms, if any. Exposed for tests and for callers that
// keep states themselves.
std::optional<MotionTransition> step(const MotionOptions& o, MotionState& s, const model::Reading& r,
                                     MotionCounters& c);

class MotionDetector {
 public:
  // `options` must pass validate() (checked by the caller's config layer).
  explicit MotionDetector(MotionOptions options = {});

  // Feeds one reading of any kind; appends the transition it causes (0 or 1)
  // to `out`. Readings other than positions only advance the source's seq.
  void process(const model::Reading& r, std::vector<MotionTransition>& out);

  // The source's state after the last reading processed (a fresh state's
  // bytes for a source never seen), kMotionStateBytes long.
  std::vector<std::uint8_t> save_state(std::string_view source_id) const;
  // Replaces the source's state with decoded bytes; on error the state in
  // memory is unchanged and restore_errors counts it.
  Status restore_state(std::string_view source_id, std::span<const std::uint8_t> bytes);
  // Drops the source's state (it is then a source never seen).
  void forget(std::string_view source_id) {
    if (auto it = states_.find(source_id); it != states_.end()) states_.erase(it);
  }

  // Whether the source is moving (false for an unknown source): an input of
  // the reporting profiles.
  bool moving(std::string_view source_id) const;

  const MotionCounters& counters() const { return counters_; }
  const MotionOptions& options() const { return options_; }

 private:
  MotionOptions options_;
  std::map<std::string, MotionState, std::less<>> states_;
  MotionCounters counters_;
};

}  // namespace eport::custody
