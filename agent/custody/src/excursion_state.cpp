// The committed form of ExcursionState (version 1, kExcursionStateBytes
// bytes): see state_bytes.h for the encoding rules.
#include <string>

#include "eport/custody/excursion.h"
#include "state_bytes.h"

namespace eport::custody {
namespace {
constexpr std::uint8_t kVersion = 1;
}  // namespace

std::vector<std::uint8_t> encode(const ExcursionState& s) {
  bytes::Writer w;
  w.u8(kVersion);
  w.u64(s.last_seq);
  w.u8(s.has_sample ? 1 : 0);
  w.u64(s.last_sample_ms);
  w.u8(static_cast<std::uint8_t>(s.phase));
  w.u8(static_cast<std::uint8_t>(s.direction));
  w.u64(s.began_ms);
  w.u64(s.first_seq);
  w.i16(s.first_value_centi_c);
  w.i16(s.setpoint_centi_c);
  w.i32(s.band_low_centi_c);
  w.i32(s.band_high_centi_c);
  w.i16(s.extreme_centi_c);
  w.u64(s.extreme_ms);
  w.u64(s.extreme_seq);
  w.u8(s.has_ended ? 1 : 0);
  w.u64(s.last_ended_ms);
  return w.take();
}

Result<ExcursionState> decode_excursion_state(std::span<const std::uint8_t> data) {
  if (data.size() != kExcursionStateBytes)
    return Error{"custody reefer state: " + std::to_string(data.size()) + " bytes, expected " +
                 std::to_string(kExcursionStateBytes)};
  bytes::Reader in(data);
  if (std::uint8_t v = in.u8(); v != kVersion) return Error{"custody reefer state: unknown version " + std::to_string(v)};
  ExcursionState s;
  s.last_seq = in.u64();
  const std::uint8_t has_sample = in.u8();
  s.last_sample_ms = in.u64();
  const std::uint8_t phase = in.u8();
  const std::uint8_t direction = in.u8();
  s.began_ms = in.u64();
  s.first_seq = in.u64();
  s.first_value_centi_c = in.i16();
  s.setpoint_centi_c = in.i16();
  s.band_low_centi_c = in.i32();
  s.band_high_centi_c = in.i32();
  s.extreme_centi_c = in.i16();
  s.extreme_ms = in.u64();
  s.extreme_seq = in.u64();
  const std::uint8_t has_ended = in.u8();
  s.last_ended_ms = in.u64();
  if (!in.done()) return Error{"custody reefer state: malformed"};
  if (has_sample > 1 || has_ended > 1 || phase > 2 || direction > 1)
    return Error{"custody reefer state: a flag or phase byte is out of range"};
  s.has_sample = has_sample == 1;
  s.has_ended = has_ended == 1;
  s.phase = static_cast<ExcursionPhase>(phase);
  s.direction = static_cast<ExcursionDirection>(direction);
  return s;
}

}  // namespace eport::custody
