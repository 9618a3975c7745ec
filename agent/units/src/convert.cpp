// epb_reading <-> model::Reading, field by field, with the presence bits of
// the wire format mapped to std::optional.
#include "eport/units/convert.h"

#include <cstring>

namespace eport::units {

namespace {
template <class T>
std::optional<T> present(std::uint8_t bits, std::uint8_t bit, T value) {
  return (bits & bit) != 0 ? std::optional<T>(value) : std::nullopt;
}
template <class T, class U>
void put(const std::optional<T>& v, std::uint8_t& bits, std::uint8_t bit, U& out) {
  if (v) {
    bits = static_cast<std::uint8_t>(bits | bit);
    out = *v;
  }
}
}  // namespace

Result<model::Reading> from_wire(const epb_reading& in, std::string_view unit_id, std::string_view container_id) {
  model::Reading r;
  r.source_id = std::string(unit_id);
  r.container_id = std::string(container_id);
  r.seq = in.seq;
  r.time_utc_ms = in.time_utc_ms;
  if (in.seq == 0) return Error{"reading seq 0 (sequence numbers start at 1)"};
  switch (in.kind) {
    case EPB_READING_POSITION: {
      const auto& p = in.u.position;
      model::Position m;
      m.lat_e7 = p.lat_e7;
      m.lon_e7 = p.lon_e7;
      if (m.lat_e7 < -900000000 || m.lat_e7 > 900000000) return Error{"latitude out of range"};
      if (m.lon_e7 < -1800000000 || m.lon_e7 > 1800000000) return Error{"longitude out of range"};
      m.speed_cm_s = present(p.present, EPB_POS_SPEED, p.speed_cm_s);
      m.heading_cdeg = present(p.present, EPB_POS_HEADING, p.heading_cdeg);
      m.hdop_centi = present(p.present, EPB_POS_HDOP, p.hdop_centi);
      m.fix = static_cast<model::FixQuality>(p.fix);
      m.satellites = p.satellites;
      r.payload = m;
      break;
    }
    case EPB_READING_SEAL:
      r.payload = model::SealEvent{std::string(in.u.seal.seal_id, in.u.seal.seal_id_len),
                                   static_cast<model::SealState>(in.u.seal.state)};
      break;
    case EPB_READING_DOOR:
      r.payload = model::DoorEvent{static_cast<model::DoorState>(in.u.door.state)};
      break;
    case EPB_READING_SENSOR: {
      const auto& s = in.u.sensor;
      model::SensorSample m;
      m.temperature_centi_c = present(s.present, EPB_SENSOR_TEMPERATURE, s.temperature_centi_c);
      m.humidity_centi_pct = present(s.present, EPB_SENSOR_HUMIDITY, s.humidity_centi_pct);
      m.shock_milli_g = present(s.present, EPB_SENSOR_SHOCK, s.shock_milli_g);
      m.battery_mv = present(s.present, EPB_SENSOR_BATTERY_MV, s.battery_mv);
      m.battery_pct = present(s.present, EPB_SENSOR_BATTERY_PCT, s.battery_pct);
      m.reefer_setpoint_centi_c = present(s.present, EPB_SENSOR_REEFER_SETPOINT, s.reefer_setpoint_centi_c);
      r.payload = m;
      break;
    }
    default:
      return Error{"unknown reading kind " + std::to_string(in.kind)};
  }
  return r;
}

Result<epb_reading> to_wire(const model::Reading& in) {
  epb_reading w;
  std::memset(&w, 0, sizeof w);
  w.seq = in.seq;
  w.time_utc_ms = in.time_utc_ms;
  if (const auto* p = std::get_if<model::Position>(&in.payload)) {
    w.kind = EPB_READING_POSITION;
    auto& o = w.u.position;
    o.lat_e7 = p->lat_e7;
    o.lon_e7 = p->lon_e7;
    put(p->speed_cm_s, o.present, EPB_POS_SPEED, o.speed_cm_s);
    put(p->heading_cdeg, o.present, EPB_POS_HEADING, o.heading_cdeg);
    put(p->hdop_centi, o.present, EPB_POS_HDOP, o.hdop_centi);
    o.fix = static_cast<std::uint8_t>(p->fix);
    o.satellites = p->satellites;
  } else if (const auto* s = std::get_if<model::SealEvent>(&in.payload)) {
    if (s->seal_id.size() > EPB_SEAL_ID_MAX) return Error{"seal id longer than " + std::to_string(EPB_SEAL_ID_MAX)};
    w.kind = EPB_READING_SEAL;
    w.u.seal.state = static_cast<std::uint8_t>(s->state);
    w.u.seal.seal_id_len = static_cast<std::uint8_t>(s->seal_id.size());
    std::memcpy(w.u.seal.seal_id, s->seal_id.data(), s->seal_id.size());
  } else if (const auto* d = std::get_if<model::DoorEvent>(&in.payload)) {
    w.kind = EPB_READING_DOOR;
    w.u.door.state = static_cast<std::uint8_t>(d->state);
  } else {
    const auto& m = std::get<model::SensorSample>(in.payload);
    w.kind = EPB_READING_SENSOR;
    auto& o = w.u.sensor;
    put(m.temperature_centi_c, o.present, EPB_SENSOR_TEMPERATURE, o.temperature_centi_c);
    put(m.humidity_centi_pct, o.present, EPB_SENSOR_HUMIDITY, o.humidity_centi_pct);
    put(m.shock_milli_g, o.present, EPB_SENSOR_SHOCK, o.shock_milli_g);
    put(m.battery_mv, o.present, EPB_SENSOR_BATTERY_MV, o.battery_mv);
    put(m.battery_pct, o.present, EPB_SENSOR_BATTERY_PCT, o.battery_pct);
    put(m.reefer_setpoint_centi_c, o.present, EPB_SENSOR_REEFER_SETPOINT, o.reefer_setpoint_centi_c);
  }
  return w;
}

}  // namespace eport::units
