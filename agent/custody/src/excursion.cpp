// ExcursionDetector: the phases of excursion.h per source. In band -> a
// sample out of band begins a pending run -> an out-of-band sample
// min_duration later makes it active (START) -> a sample back in band by
// the hysteresis ends it (END), or cancels a pending run (a spike). Only
// samples that carry a temperature move the phases; a gap between two of
// them longer than max_gap ends the tracking, since nobody knows what
// happened in between.
#include <string>
#include <variant>

#include "eport/custody/excursion.h"

namespace eport::custody {
namespace {

Status out_of_range(const char* field, long long v, long long lo, long long hi) {
  return Error{std::string("custody reefer: ") + field + " = " + std::to_string(v) + " is outside " +
               std::to_string(lo) + ".." + std::to_string(hi)};
}

std::uint64_t ms(std::chrono::seconds s) { return static_cast<std::uint64_t>(s.count()) * 1000; }

ExcursionEvent base_event(const ExcursionState& s, ExcursionKind kind, const model::Reading& r) {
  ExcursionEvent e;
  e.source_id = r.source_id;
  e.kind = kind;
  e.direction = s.direction;
  e.began_utc_ms = s.began_ms;
  e.first_seq = s.first_seq;
  e.first_value_centi_c = s.first_value_centi_c;
  e.setpoint_centi_c = s.setpoint_centi_c;
  e.band_low_centi_c = s.band_low_centi_c;
  e.band_high_centi_c = s.band_high_centi_c;
  e.caused_by_seq = r.seq;
  e.detected_utc_ms = r.time_utc_ms;
  return e;
}

ExcursionEvent end_event(const ExcursionState& s, const model::Reading& r, std::uint64_t ended_ms, bool by_gap) {
  ExcursionEvent e = base_event(s, ExcursionKind::kEnd, r);
  e.ended_utc_ms = ended_ms;
  e.duration_ms = ended_ms - s.began_ms;
  e.extreme_centi_c = s.extreme_centi_c;
  e.extreme_utc_ms = s.extreme_ms;
  e.extreme_seq = s.extreme_seq;
  e.ended_by_gap = by_gap;
  return e;
}

void finish(ExcursionState& s, std::uint64_t ended_ms) {
  s.phase = ExcursionPhase::kInBand;
  s.has_ended = true;
  s.last_ended_ms = ended_ms;
}

}  // namespace

Status validate(const ExcursionOptions& o) {
  if (o.setpoint_centi_c && (*o.setpoint_centi_c < -5000 || *o.setpoint_centi_c > 5000))
    return out_of_range("setpoint_centi_c", *o.setpoint_centi_c, -5000, 5000);
  if (o.tolerance_centi_c < 10 || o.tolerance_centi_c > 2000)
    return out_of_range("tolerance_centi_c", o.tolerance_centi_c, 10, 2000);
  if (o.hysteresis_centi_c > o.tolerance_centi_c)
    return out_of_range("hysteresis_centi_c", o.hysteresis_centi_c, 0, o.tolerance_centi_c);
  if (o.min_duration.count() < 0 || o.min_duration.count() > 86400)
    return out_of_range("min_duration_s", o.min_duration.count(), 0, 86400);
  if (o.max_gap.count() < 60 || o.max_gap.count() > 604800)
    return out_of_range("max_gap_s", o.max_gap.count(), 60, 604800);
  return ok_status();
}

std::string_view dcsa_code(ExcursionKind) { return "MEASURED"; }

std::string_view dcsa_alarm_code(ExcursionDirection d) {
  return d == ExcursionDirection::kAbove ? "TEMPERATURE_ABOVE_BAND" : "TEMPERATURE_BELOW_BAND";
}

void step(const ExcursionOptions& o, ExcursionState& s, const model::Reading& r, ExcursionCounters& c,
          std::vector<ExcursionEvent>& out) {
  if (r.seq <= s.last_seq) {
    ++c.stale_seq;
    return;
  }
  s.last_seq = r.seq;
  const auto* sample = std::get_if<model::SensorSample>(&r.payload);
  if (sample == nullptr || !sample->temperature_centi_c) return;  // missing: neither starts nor ends
  const auto setpoint = sample->reefer_setpoint_centi_c ? sample->reefer_setpoint_centi_c : o.setpoint_centi_c;
  if (!setpoint) {
    ++c.no_setpoint;
    return;
  }
  if (s.has_sample && r.time_utc_ms < s.last_sample_ms) {
    ++c.time_backwards;
    return;
  }
  ++c.samples;
  const std::int16_t v = *sample->temperature_centi_c;
  const std::int32_t low = std::int32_t{*setpoint} - o.tolerance_centi_c;
  const std::int32_t high = std::int32_t{*setpoint} + o.tolerance_centi_c;

  if (s.has_sample && s.phase != ExcursionPhase::kInBand && r.time_utc_ms - s.last_sample_ms > ms(o.max_gap)) {
    if (s.phase == ExcursionPhase::kActive) {
      out.push_back(end_event(s, r, s.last_sample_ms, true));
      finish(s, s.last_sample_ms);
      ++c.ends;
      ++c.gap_ends;
    } else {
      s.phase = ExcursionPhase::kInBand;
      ++c.spikes;
    }
  }
  s.has_sample = true;
  s.last_sample_ms = r.time_utc_ms;

  if (s.phase != ExcursionPhase::kInBand) {
    const bool back = s.direction == ExcursionDirection::kAbove ? v <= high - o.hysteresis_centi_c
                                                                 : v >= low + o.hysteresis_centi_c;
    if (back) {
      if (s.phase == ExcursionPhase::kActive) {
        out.push_back(end_event(s, r, r.time_utc_ms, false));
        finish(s, r.time_utc_ms);
        ++c.ends;
      } else {
        s.phase = ExcursionPhase::kInBand;
        ++c.spikes;
      }
    } else {
      const bool more = s.direction == ExcursionDirection::kAbove ? v > s.extreme_centi_c : v < s.extreme_centi_c;
      if (more) {
        s.extreme_centi_c = v;
        s.extreme_ms = r.time_utc_ms;
        s.extreme_seq = r.seq;
      }
    }
  }

  if (s.phase == ExcursionPhase::kInBand) {
    if (v >= low && v <= high) return;
    s.phase = ExcursionPhase::kPending;
    s.direction = v > high ? ExcursionDirection::kAbove : ExcursionDirection::kBelow;
    s.began_ms = r.time_utc_ms;
    s.first_seq = r.seq;
    s.first_value_centi_c = v;
    s.setpoint_centi_c = *setpoint;
    s.band_low_centi_c = low;
    s.band_high_centi_c = high;
    s.extreme_centi_c = v;
    s.extreme_ms = r.time_utc_ms;
    s.extreme_seq = r.seq;
  }
  if (s.phase == ExcursionPhase::kPending && r.time_utc_ms - s.began_ms >= ms(o.min_duration)) {
    s.phase = ExcursionPhase::kActive;
    out.push_back(base_event(s, ExcursionKind::kStart, r));
    ++c.starts;
  }
}

ExcursionDetector::ExcursionDetector(ExcursionOptions options) : options_(options) {}

void ExcursionDetector::process(const model::Reading& r, std::vector<ExcursionEvent>& out) {
  auto it = states_.find(r.source_id);
  if (it == states_.end()) it = states_.emplace(r.source_id, ExcursionState{}).first;
  step(options_, it->second, r, counters_, out);
}

std::vector<std::uint8_t> ExcursionDetector::save_state(std::string_view source_id) const {
  auto it = states_.find(source_id);
  return encode(it == states_.end() ? ExcursionState{} : it->second);
}

Status ExcursionDetector::restore_state(std::string_view source_id, std::span<const std::uint8_t> bytes) {
  auto s = decode_excursion_state(bytes);
  if (!s) {
    ++counters_.restore_errors;
    return Error{s.error() + " (source " + std::string(source_id) + ")"};
  }
  auto it = states_.find(source_id);
  if (it == states_.end()) it = states_.emplace(std::string(source_id), ExcursionState{}).first;
  it->second = *s;
  return ok_status();
}

bool ExcursionDetector::active(std::string_view source_id) const {
  auto it = states_.find(source_id);
  return it != states_.end() && it->second.phase == ExcursionPhase::kActive;
}

std::optional<std::uint64_t> ExcursionDetector::last_ended_utc_ms(std::string_view source_id) const {
  auto it = states_.find(source_id);
  if (it == states_.end() || !it->second.has_ended) return std::nullopt;
  return it->second.last_ended_ms;
}

}  // namespace eport::custody
