// Reefer temperature excursions (issue 13): a source's temperature outside
// setpoint +/- tolerance for at least min_duration gives a START (an alarm),
// its return into the band (with hysteresis) an END with the duration and
// the extreme value. Event time only (time_utc_ms), so a replayed backlog
// gives the same events as live. Not thread-safe: one owner feeds readings,
// source by source in seq order (sources may interleave).
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

// Suggested config keys in brackets; validate() gives the ranges.
struct ExcursionOptions {
  // [custody.reefer_setpoint_centi_c] -5000..5000 (0.01 degC), optional:
  // the setpoint for samples that carry no reefer_setpoint_centi_c. Absent:
  // such samples are not used (counted in no_setpoint).
  std::optional<std::int16_t> setpoint_centi_c;
  // [custody.reefer_tolerance_centi_c] 10..2000: the band is setpoint +/-
  // tolerance; a value on the band's edge is inside.
  std::uint16_t tolerance_centi_c = 200;
  // [custody.reefer_hysteresis_centi_c] 0..tolerance: an excursion ends
  // only at a value at least this far back inside the band.
  std::uint16_t hysteresis_centi_c = 50;
  // [custody.reefer_min_duration_s] 0..86400: START once an out-of-band
  // sample comes at least this long after the first one of the run (every
  // sample in between out of band too). Shorter spikes give nothing.
  std::chrono::seconds min_duration{600};
  // [custody.reefer_max_gap_s] 60..604800: two consecutive temperature
  // samples further apart than this end the tracking: an active excursion
  // ends with ended_by_gap at its last sample, a pending one is dropped.
  std::chrono::seconds max_gap{3600};
};

Status validate(const ExcursionOptions& o);

enum class ExcursionKind : std::uint8_t { kStart = 0, kEnd = 1 };
enum class ExcursionDirection : std::uint8_t { kAbove = 0, kBelow = 1 };

// One event. Both kinds carry the excursion's beginning (began_utc_ms: the
// first out-of-band sample, first_seq, first_value_centi_c), the setpoint
// and band in force then, and caused_by_seq / detected_utc_ms: the reading
// that confirmed the start or ended it. END also carries ended_utc_ms (the
// first sample back in band, or the last sample before a gap),
// duration_ms = ended - began, the extreme value (the maximum above, the
// minimum below; the first sample that reached it) and ended_by_gap.
struct ExcursionEvent {
  std::string source_id;
  ExcursionKind kind = ExcursionKind::kStart;
  ExcursionDirection direction = ExcursionDirection::kAbove;
  std::uint64_t began_utc_ms = 0;
  std::uint64_t first_seq = 0;
  std::int16_t first_value_centi_c = 0;
  std::int16_t setpoint_centi_c = 0;
  std::int32_t band_low_centi_c = 0;
  std::int32_t band_high_centi_c = 0;
  std::uint64_t caused_by_seq = 0;
  std::uint64_t detected_utc_ms = 0;
  // END only (0 / false in a START):
  std::uint64_t ended_utc_ms = 0;
  std::uint64_t duration_ms = 0;
  std::int16_t extreme_centi_c = 0;
  std::uint64_t extreme_utc_ms = 0;
  std::uint64_t extreme_seq = 0;
  bool ended_by_gap = false;
  bool operator==(const ExcursionEvent&) const = default;
};

// DCSA T&T v3 expresses both as a REEFER event of reeferEventType
// "MEASURED"; the excursion itself goes into reeferDetails.alarms[] (code,
// description, startDateTime, endDateTime). dcsa_code() gives "MEASURED",
// dcsa_alarm_code() our alarm code: "TEMPERATURE_ABOVE_BAND" or
// "TEMPERATURE_BELOW_BAND" (DCSA leaves alarm codes to the manufacturer).
std::string_view dcsa_code(ExcursionKind k);
std::string_view dcsa_alarm_code(ExcursionDirection d);

struct ExcursionCounters {
  std::uint64_t samples = 0;         // temperature samples used
  std::uint64_t stale_seq = 0;       // seq <= the source's last processed: no-op
  std::uint64_t time_backwards = 0;  // time before the source's last used sample: not used
  std::uint64_t no_setpoint = 0;     // temperature without a setpoint (none configured): not used
  std::uint64_t spikes = 0;          // out-of-band runs shorter than min_duration (nothing emitted)
  std::uint64_t starts = 0;
  std::uint64_t ends = 0;
  std::uint64_t gap_ends = 0;        // of which ended_by_gap
  std::uint64_t restore_errors = 0;
};

enum class ExcursionPhase : std::uint8_t { kInBand = 0, kPending = 1, kActive = 2 };

// Per-source state, everything a restart needs.
struct ExcursionState {
  std::uint64_t last_seq = 0;
  bool has_sample = false;  // a temperature sample was used
  std::uint64_t last_sample_ms = 0;
  ExcursionPhase phase = ExcursionPhase::kInBand;
  ExcursionDirection direction = ExcursionDirection::kAbove;
  std::uint64_t began_ms = 0;
  std::uint64_t first_seq = 0;
  std::int16_t first_value_centi_c = 0;
  std::int16_t setpoint_centi_c = 0;
  std::int32_t band_low_centi_c = 0;
  std::int32_t band_high_centi_c = 0;
  std::int16_t extreme_centi_c = 0;
  std::uint64_t extreme_ms = 0;
  std::uint64_t extreme_seq = 0;
  bool has_ended = false;  // an excursion ended (for the reporting burst)
  std::uint64_t last_ended_ms = 0;
  bool operator==(const ExcursionState&) const = default;
};

// Version 1, always kExcursionStateBytes long.
inline constexpr std::size_t kExcursionStateBytes = 1 + 8 + 1 + 8 + 1 + 1 + 8 + 8 + 2 + 2 + 4 + 4 + 2 + 8 + 8 + 1 + 8;
std::vector<std::uint8_t> encode(const ExcursionState& s);
Result<ExcursionState> decode_excursion_state(std::span<const std::uint8_t> bytes);

// One source's step; appends 0, 1 or 2 events (an END by gap, then the
// current sample's own). Exposed for tests.
void step(const ExcursionOptions& o, ExcursionState& s, const model::Reading& r, ExcursionCounters& c,
          std::vector<ExcursionEvent>& out);

class ExcursionDetector {
 public:
  // `options` must pass validate().
  explicit ExcursionDetector(ExcursionOptions options = {});

  // Feeds one reading of any kind (sensor samples with a temperature are
  // used); appends the events it causes, in order.
  void process(const model::Reading& r, std::vector<ExcursionEvent>& out);

  std::vector<std::uint8_t> save_state(std::string_view source_id) const;
  Status restore_state(std::string_view source_id, std::span<const std::uint8_t> bytes);
  // Drops the source's state (it is then a source never seen).
  void forget(std::string_view source_id) {
    if (auto it = states_.find(source_id); it != states_.end()) states_.erase(it);
  }

  // Inputs of the reporting profiles: an excursion started (START emitted)
  // and not ended; when the last one ended (event time), if ever.
  bool active(std::string_view source_id) const;
  std::optional<std::uint64_t> last_ended_utc_ms(std::string_view source_id) const;

  const ExcursionCounters& counters() const { return counters_; }
  const ExcursionOptions& options() const { return options_; }

 private:
  ExcursionOptions options_;
  std::map<std::string, ExcursionState, std::less<>> states_;
  ExcursionCounters counters_;
};

}  // namespace eport::custody
