// Reading a capture: JSON lines into readings with their canonical bytes R,
// declared gaps and checkpoints (docs/evidence.md sections 3 and 15). R is
// rebuilt by one builder per payload kind (kBuilders below); a unit's kinds
// fill an epb_reading from the JSON fields and epb_ev_reading_bytes encodes
// it, so R is exactly what the unit's library chained; a custody event (the
// gateway's own source, section 13.4) is an event record, encoded by the
// agent's own eport::evidence_canonical. A payload kind with no canonical R
// (gaps aside: any kind this build does not know) is skipped, as
// eport_verify.py skips it.
#include "eport/verify/capture.h"

#include <epb/epb.h>
#include <epb/evidence.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>

#include "eport/evidence/canonical.h"
#include "eport/json/reader.h"
#include "eport/model/reading.h"
#include "hex.h"

namespace eport::verify {
namespace {

using json::Value;

// Errors of one line: "<where>: <what>".
struct Line {
  std::string_view where;
  const Value& obj;

  Error error(const std::string& what) const { return Error{std::string(where) + ": " + what}; }

  // An integer member in min..max (the JSON field's type as the schema and
  // eport-tail give it). Absent: nullopt when optional, else an error.
  Result<std::optional<std::int64_t>> integer(std::string_view key, std::int64_t min, std::int64_t max,
                                              bool optional = false) const {
    const Value* v = obj.find(key);
    if (v == nullptr) {
      if (optional) return std::optional<std::int64_t>{};
      return error("\"" + std::string(key) + "\" is missing");
    }
    if (!v->is_number()) return error("\"" + std::string(key) + "\" is not a number");
    const std::string& t = v->text();
    if (t.find_first_of(".eE") != std::string::npos) {
      return error("\"" + std::string(key) + "\" " + t + " is not a whole number");
    }
    errno = 0;
    char* end = nullptr;
    long long n = std::strtoll(t.c_str(), &end, 10);
    if (errno != 0 || end != t.c_str() + t.size() || n < min || n > max) {
      return error("\"" + std::string(key) + "\" " + t + " is out of range " + std::to_string(min) + ".." +
                   std::to_string(max));
    }
    return std::optional<std::int64_t>{n};
  }

  // An unsigned 64-bit member (seq, time): 0..2^64-1.
  Result<std::uint64_t> u64(std::string_view key) const {
    const Value* v = obj.find(key);
    if (v == nullptr) return error("\"" + std::string(key) + "\" is missing");
    if (!v->is_number()) return error("\"" + std::string(key) + "\" is not a number");
    const std::string& t = v->text();
    if (t.empty() || t.find_first_not_of("0123456789") != std::string::npos) {
      return error("\"" + std::string(key) + "\" " + t + " is not a whole number 0..2^64-1");
    }
    errno = 0;
    char* end = nullptr;
    unsigned long long n = std::strtoull(t.c_str(), &end, 10);
    if (errno != 0 || end != t.c_str() + t.size()) {
      return error("\"" + std::string(key) + "\" " + t + " is out of range 0..2^64-1");
    }
    return static_cast<std::uint64_t>(n);
  }

  Result<std::string> string(std::string_view key, bool optional = false) const {
    const Value* v = obj.find(key);
    if (v == nullptr) {
      if (optional) return std::string();
      return error("\"" + std::string(key) + "\" is missing");
    }
    if (!v->is_string()) return error("\"" + std::string(key) + "\" is not a string");
    return v->text();
  }
};

// An optional field into *field with its present bit; false (and *err) on a bad value.
template <class T>
bool optional_field(const Line& l, std::string_view key, T* field, std::uint8_t bit, std::uint8_t* present,
                    Status* err) {
  auto v = l.integer(key, std::numeric_limits<T>::min(), std::numeric_limits<T>::max(), true);
  if (!v) {
    *err = Error{v.error()};
    return false;
  }
  if (*v) {
    *field = static_cast<T>(**v);
    *present = static_cast<std::uint8_t>(*present | bit);
  }
  return true;
}

Status position(const Line& l, epb_reading& r) {
  auto& p = r.u.position;
  auto lat = l.integer("lat_e7", INT32_MIN, INT32_MAX), lon = l.integer("lon_e7", INT32_MIN, INT32_MAX);
  auto fix = l.integer("fix", 0, 255), sats = l.integer("satellites", 0, 255);
  for (const auto* v : {&lat, &lon, &fix, &sats}) {
    if (!*v) return Error{v->error()};
  }
  p.lat_e7 = static_cast<std::int32_t>(**lat);
  p.lon_e7 = static_cast<std::int32_t>(**lon);
  p.fix = static_cast<std::uint8_t>(**fix);
  p.satellites = static_cast<std::uint8_t>(**sats);
  Status err = ok_status();
  if (!optional_field(l, "speed_cm_s", &p.speed_cm_s, EPB_POS_SPEED, &p.present, &err) ||
      !optional_field(l, "heading_cdeg", &p.heading_cdeg, EPB_POS_HEADING, &p.present, &err) ||
      !optional_field(l, "hdop_centi", &p.hdop_centi, EPB_POS_HDOP, &p.present, &err))
    return err;
  return ok_status();
}

// The state names eport-tail prints (codec.cpp), in wire order.
Result<std::uint8_t> state(const Line& l, std::initializer_list<std::string_view> names) {
  auto s = l.string("state");
  if (!s) return Error{s.error()};
  std::uint8_t i = 0;
  std::string list;
  for (auto n : names) {
    if (*s == n) return i;
    list += (i++ ? ", " : "") + std::string(n);
  }
  return l.error("\"state\" \"" + *s + "\" is not one of " + list);
}

// A seal id longer than the wire allows cannot be put in epb_seal: *too_long
// says so (the reading then has no R).
Status seal(const Line& l, epb_reading& r, std::string* seal_id) {
  auto st = state(l, {"unknown", "sealed", "opened", "tampered"});
  if (!st) return Error{st.error()};
  auto id = l.string("seal_id", true);
  if (!id) return Error{id.error()};
  r.u.seal.state = *st;
  *seal_id = *id;
  if (id->size() <= EPB_SEAL_ID_MAX) {
    std::memcpy(r.u.seal.seal_id, id->data(), id->size());
    r.u.seal.seal_id_len = static_cast<std::uint8_t>(id->size());
  } else {
    r.u.seal.seal_id_len = 0xFF;  // never valid: epb_ev_reading_bytes refuses it
  }
  return ok_status();
}

Status door(const Line& l, epb_reading& r) {
  auto st = state(l, {"unknown", "closed", "open"});
  if (!st) return Error{st.error()};
  r.u.door.state = *st;
  return ok_status();
}

Status sensor(const Line& l, epb_reading& r) {
  auto& s = r.u.sensor;
  Status err = ok_status();
  if (!optional_field(l, "temperature_centi_c", &s.temperature_centi_c, EPB_SENSOR_TEMPERATURE, &s.present, &err) ||
      !optional_field(l, "humidity_centi_pct", &s.humidity_centi_pct, EPB_SENSOR_HUMIDITY, &s.present, &err) ||
      !optional_field(l, "shock_milli_g", &s.shock_milli_g, EPB_SENSOR_SHOCK, &s.present, &err) ||
      !optional_field(l, "battery_mv", &s.battery_mv, EPB_SENSOR_BATTERY_MV, &s.present, &err) ||
      !optional_field(l, "battery_pct", &s.battery_pct, EPB_SENSOR_BATTERY_PCT, &s.present, &err) ||
      !optional_field(l, "reefer_setpoint_centi_c", &s.reefer_setpoint_centi_c, EPB_SENSOR_REEFER_SETPOINT,
                      &s.present, &err))
    return err;
  return ok_status();
}

// The canonical bytes of one reading, as a payload kind's builder gives them.
struct Canonical {
  bool ok = false;  // false: outside what its source can produce; bytes then only tell copies apart
  std::vector<std::uint8_t> bytes;
};

// A unit's reading (position, seal, door, sensor): its unsealed epb READING
// body (section 3), fill() setting the payload of an epb_reading and
// epb_ev_reading_bytes encoding it as the unit's library did.
template <Status (*fill)(const Line&, epb_reading&, std::string*), std::uint8_t kEpbKind>
Result<Canonical> epb_reading_body(const Line& l, std::uint64_t seq) {
  epb_reading r;
  std::memset(&r, 0, sizeof r);
  r.seq = seq;
  r.kind = kEpbKind;
  auto time = l.u64("time_utc_ms");
  if (!time) return Error{time.error()};
  auto ts = l.string("time_source", true);
  if (!ts) return Error{ts.error()};
  // The unit sent 0 when the agent filled in its own clock (section 3).
  r.time_utc_ms = *ts == "gateway_receive" ? 0 : *time;
  std::string extra;  // what does not fit epb_reading (a seal id too long), for the fingerprint
  if (auto st = fill(l, r, &extra); !st) return Error{st.error()};
  Canonical out;
  std::uint8_t bytes[EPB_EV_READING_MAX];
  std::size_t n = epb_ev_reading_bytes(&r, bytes, sizeof bytes);
  out.ok = n > 0;
  if (out.ok) {
    out.bytes.assign(bytes, bytes + n);
  } else {
    const auto* raw = reinterpret_cast<const std::uint8_t*>(&r);  // zeroed first: no stray padding
    out.bytes.assign(raw, raw + sizeof r);
    out.bytes.insert(out.bytes.end(), extra.begin(), extra.end());
  }
  return out;
}

Status fill_position(const Line& l, epb_reading& r, std::string*) { return position(l, r); }
Status fill_seal(const Line& l, epb_reading& r, std::string* extra) { return seal(l, r, extra); }
Status fill_door(const Line& l, epb_reading& r, std::string*) { return door(l, r); }
Status fill_sensor(const Line& l, epb_reading& r, std::string*) { return sensor(l, r); }

// A custody event the gateway derived: the event record of section 13.4,
// built by the agent's own encoder (eport::evidence_canonical) from the
// event as eport-tail prints it. A member out of its field's range, or an
// event name or seal class this build does not know, gives no R.
Result<Canonical> event_record(const Line& l, std::uint64_t seq) {
  model::Reading r;
  r.seq = seq;
  auto time = l.u64("time_utc_ms");
  auto ts = l.string("time_source", true);
  auto container = l.string("container", true);
  auto name = l.string("event");
  auto subject = l.string("subject", true);
  auto first = l.integer("first_seq", 0, INT64_MAX, true), caused = l.integer("caused_by_seq", 0, INT64_MAX, true);
  auto zone = l.string("zone", true);
  for (const auto* v : {&ts, &container, &name, &subject, &zone}) {
    if (!*v) return Error{v->error()};
  }
  for (const auto* v : {&first, &caused}) {
    if (!*v) return Error{v->error()};
  }
  if (!time) return Error{time.error()};
  r.time_utc_ms = *time;
  if (*ts == "gateway_receive") r.time_source = model::TimeSource::kGatewayReceive;
  r.container_id = *container;
  model::CustodyEvent e;
  bool known = false;
  for (std::size_t i = 1; i < model::kEventCodeCount; ++i) {
    if (model::event_code_name(static_cast<model::EventCode>(i)) == *name) {
      e.code = static_cast<model::EventCode>(i);
      known = true;
    }
  }
  e.subject_id = *subject;
  e.first_seq = static_cast<std::uint64_t>(first->value_or(0));
  e.caused_by_seq = static_cast<std::uint64_t>(caused->value_or(0));
  e.zone_id = *zone;
  auto opt = [&](std::string_view key, auto& field, std::int64_t min, std::int64_t max) -> Status {
    auto v = l.integer(key, min, max, true);
    if (!v) return Error{v.error()};
    if (*v) field = static_cast<typename std::decay_t<decltype(field)>::value_type>(**v);
    return ok_status();
  };
  for (auto st : {opt("lat_e7", e.lat_e7, INT32_MIN, INT32_MAX), opt("lon_e7", e.lon_e7, INT32_MIN, INT32_MAX),
                  opt("temperature_centi_c", e.temperature_centi_c, INT16_MIN, INT16_MAX),
                  opt("setpoint_centi_c", e.setpoint_centi_c, INT16_MIN, INT16_MAX),
                  opt("band_low_centi_c", e.band_low_centi_c, INT16_MIN, INT16_MAX),
                  opt("band_high_centi_c", e.band_high_centi_c, INT16_MIN, INT16_MAX),
                  opt("duration_ms", e.duration_ms, 0, INT64_MAX)}) {
    if (!st) return Error{st.error()};
  }
  for (auto [key, flag] : {std::pair<std::string_view, bool*>{"interpolated", &e.interpolated},
                           std::pair<std::string_view, bool*>{"ended_by_gap", &e.ended_by_gap}}) {
    const Value* v = l.obj.find(key);
    if (v == nullptr) continue;
    if (!v->is_bool()) return l.error("\"" + std::string(key) + "\" is not true or false");
    *flag = v->as_bool();
  }
  auto seal_id = l.string("seal_id", true), expected = l.string("expected_seal_id", true);
  auto seal_class = l.string("seal_class", true), command = l.string("command_id", true);
  for (const auto* v : {&seal_id, &expected, &seal_class, &command}) {
    if (!*v) return Error{v->error()};
  }
  e.seal_id = *seal_id;
  e.expected_seal_id = *expected;
  e.command_id = *command;
  if (!seal_class->empty()) {
    auto c = model::seal_class_from_name(*seal_class);
    known = known && c.has_value();
    if (c) e.seal_class = *c;
  }
  r.payload = e;
  Canonical out;
  auto bytes = known ? evidence::canonical_bytes(r) : std::nullopt;
  out.ok = bytes.has_value();
  if (bytes) {
    out.bytes = std::move(*bytes);
  } else {
    // Fingerprint of a copy with no R: the line's members as given.
    auto text = std::string(*name) + '\0' + *subject + '\0' + *zone + '\0' + *seal_id + '\0' + *expected + '\0' +
                *seal_class + '\0' + *command;
    out.bytes.assign(text.begin(), text.end());
  }
  return out;
}

// One builder per payload kind with a canonical R, by the JSON "kind" that
// eport-tail prints. A kind not listed (custody events "event" for now, a
// newer kind) has none: it is in no chain. A kind that gets a canonical form
// of its own (the gateway's sources, section 13.4) adds a row here.
struct Builder {
  std::string_view kind;
  Result<Canonical> (*canonical)(const Line&, std::uint64_t seq);
};

const Builder kBuilders[] = {
    {"position", epb_reading_body<fill_position, EPB_READING_POSITION>},
    {"seal", epb_reading_body<fill_seal, EPB_READING_SEAL>},
    {"door", epb_reading_body<fill_door, EPB_READING_DOOR>},
    {"sensor", epb_reading_body<fill_sensor, EPB_READING_SENSOR>},
    {"event", event_record},
};

const Builder* builder_of(std::string_view kind) {
  for (const auto& b : kBuilders) {
    if (b.kind == kind) return &b;
  }
  return nullptr;
}

Status reading(Capture& c, const Line& l, const Builder& b, std::string source, std::uint64_t seq) {
  auto r = b.canonical(l, seq);
  if (!r) return Error{r.error()};
  c.readings.push_back({std::move(source), seq, r->ok, std::move(r->bytes)});
  return ok_status();
}

Status checkpoint_hex(Capture& c, const Line& l, std::string_view key) {
  auto text = l.string(key);
  if (!text) return Error{text.error()};
  auto bytes = detail::unhex(*text);
  if (!bytes) return l.error("\"" + std::string(key) + "\" is not hex");
  c.checkpoints.push_back(std::move(*bytes));
  return ok_status();
}

}  // namespace

Status add_line(Capture& capture, std::string_view line, std::string_view where, const CaptureLimits& limits) {
  if (line.find_first_not_of(" \t\r\n") == std::string_view::npos || line.front() != '{') return ok_status();
  if (line.size() > limits.max_line_bytes) {
    return Error{std::string(where) + ": longer than " + std::to_string(limits.max_line_bytes) + " bytes"};
  }
  json::ReaderLimits rl;
  rl.max_bytes = limits.max_line_bytes;
  rl.max_depth = limits.max_depth;
  rl.max_values = limits.max_values;
  auto doc = json::parse(line, rl);
  if (!doc) return Error{std::string(where) + ": " + doc.error()};
  if (!doc->is_object()) return Error{std::string(where) + ": not a JSON object"};
  const Line l{where, *doc};
  if (doc->find("checkpoint") != nullptr) return checkpoint_hex(capture, l, "checkpoint");
  const Value* kind = doc->find("kind");
  if (kind != nullptr && kind->is_string() && kind->text() == "evidence") return checkpoint_hex(capture, l, "cose");
  if (doc->find("source") == nullptr || doc->find("seq") == nullptr) {
    ++capture.ignored;  // not a reading: an error line of eport-tail, an envelope header, ...
    return ok_status();
  }
  auto source = l.string("source");
  if (!source) return Error{source.error()};
  auto seq = l.u64("seq");
  if (!seq) return Error{seq.error()};
  if (kind != nullptr && kind->is_string() && kind->text() == "gap") {
    auto first = l.u64("first_seq");
    if (!first) return Error{first.error()};
    capture.gaps.push_back({*source, *first, *seq});
    return ok_status();
  }
  const Builder* b = kind != nullptr && kind->is_string() ? builder_of(kind->text()) : nullptr;
  if (b == nullptr) {
    ++capture.ignored;  // no canonical R: not in any chain (custody events, a newer kind)
    return ok_status();
  }
  return reading(capture, l, *b, std::move(*source), *seq);
}

Status read_capture(Capture& capture, const std::string& path, const CaptureLimits& limits) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{"cannot read " + path + ": " + std::strerror(errno)};
  // One line at a time into a buffer of the line limit: a line without end
  // is refused at the limit, never held whole.
  std::vector<char> buf(limits.max_line_bytes + 2);
  for (std::size_t n = 1;; ++n) {
    in.getline(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto got = static_cast<std::size_t>(in.gcount());
    const std::string where = path + " line " + std::to_string(n);
    if (in.fail() && !in.eof() && got == buf.size() - 1) {
      return Error{where + ": longer than " + std::to_string(limits.max_line_bytes) + " bytes"};
    }
    if (got == 0 && in.eof()) break;
    const std::size_t len = in.eof() ? got : got - 1;  // without the newline
    if (auto st = add_line(capture, std::string_view(buf.data(), len), where, limits); !st) return st;
    if (in.eof()) break;
    if (in.fail()) return Error{"cannot read " + path + ": " + std::strerror(errno)};
  }
  if (in.bad()) return Error{"cannot read " + path + ": " + std::strerror(errno)};
  return ok_status();
}

}  // namespace eport::verify
