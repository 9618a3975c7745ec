// Canonical bytes of records (docs/evidence.md 3 and 13.4).
#include "eport/evidence/canonical.h"

#include <epb/evidence.h>

#include <string>

#include "eport/units/convert.h"

namespace eport::evidence {

namespace {

void put_u8(std::vector<std::uint8_t>& out, std::uint8_t v) { out.push_back(v); }

template <typename T>
void put_le(std::vector<std::uint8_t>& out, T v) {
  auto u = static_cast<std::make_unsigned_t<T>>(v);
  for (std::size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<std::uint8_t>(u >> (8 * i)));
}

bool put_str(std::vector<std::uint8_t>& out, const std::string& s) {
  if (s.size() > 255) return false;
  out.push_back(static_cast<std::uint8_t>(s.size()));
  out.insert(out.end(), s.begin(), s.end());
  return true;
}

std::uint64_t canonical_time(const model::Reading& r) {
  return r.time_source == model::TimeSource::kGatewayReceive ? 0 : r.time_utc_ms;
}

// Event record: 02 40 seq time code container subject first_seq caused_by_seq
// zone present:u16 [lat lon temperature setpoint band_low band_high duration]
// seal_class seal_id expected_seal_id command_id crc32c.
std::optional<std::vector<std::uint8_t>> event_record(const model::Reading& r, const model::CustodyEvent& e) {
  std::vector<std::uint8_t> out;
  out.reserve(96);
  put_u8(out, EPB_PROTOCOL_VERSION);
  put_u8(out, EPB_EV_RECORD_EVENT);
  put_le<std::uint64_t>(out, r.seq);
  put_le<std::uint64_t>(out, canonical_time(r));
  put_u8(out, static_cast<std::uint8_t>(e.code));
  if (!put_str(out, r.container_id) || !put_str(out, e.subject_id)) return std::nullopt;
  put_le<std::uint64_t>(out, e.first_seq);
  put_le<std::uint64_t>(out, e.caused_by_seq);
  if (!put_str(out, e.zone_id)) return std::nullopt;
  std::uint16_t present = 0;
  if (e.lat_e7) present |= 1u << 0;
  if (e.lon_e7) present |= 1u << 1;
  if (e.temperature_centi_c) present |= 1u << 2;
  if (e.setpoint_centi_c) present |= 1u << 3;
  if (e.band_low_centi_c) present |= 1u << 4;
  if (e.band_high_centi_c) present |= 1u << 5;
  if (e.duration_ms) present |= 1u << 6;
  if (e.interpolated) present |= 1u << 7;
  if (e.ended_by_gap) present |= 1u << 8;
  put_le<std::uint16_t>(out, present);
  if (e.lat_e7) put_le<std::int32_t>(out, *e.lat_e7);
  if (e.lon_e7) put_le<std::int32_t>(out, *e.lon_e7);
  if (e.temperature_centi_c) put_le<std::int16_t>(out, *e.temperature_centi_c);
  if (e.setpoint_centi_c) put_le<std::int16_t>(out, *e.setpoint_centi_c);
  if (e.band_low_centi_c) put_le<std::int16_t>(out, *e.band_low_centi_c);
  if (e.band_high_centi_c) put_le<std::int16_t>(out, *e.band_high_centi_c);
  if (e.duration_ms) put_le<std::uint64_t>(out, *e.duration_ms);
  put_u8(out, static_cast<std::uint8_t>(e.seal_class));
  if (!put_str(out, e.seal_id) || !put_str(out, e.expected_seal_id) || !put_str(out, e.command_id)) {
    return std::nullopt;
  }
  if (out.size() + 4 > EPB_EV_RECORD_MAX) return std::nullopt;
  put_le<std::uint32_t>(out, epb_crc32c(out.data(), out.size()));
  return out;
}

}  // namespace

std::optional<std::vector<std::uint8_t>> canonical_bytes(const model::Reading& r) {
  switch (model::kind_of(r.payload)) {
    case model::Kind::kPosition:
    case model::Kind::kSeal:
    case model::Kind::kDoor:
    case model::Kind::kSensor: {
      auto wire = units::to_wire(r);
      if (!wire) return std::nullopt;
      wire->time_utc_ms = canonical_time(r);
      std::vector<std::uint8_t> out(EPB_EV_READING_MAX);
      auto n = epb_ev_reading_bytes(&*wire, out.data(), out.size());
      if (n == 0) return std::nullopt;
      out.resize(n);
      return out;
    }
    case model::Kind::kEvent:
      return event_record(r, std::get<model::CustodyEvent>(r.payload));
    default:
      return std::nullopt;
  }
}

}  // namespace eport::evidence
