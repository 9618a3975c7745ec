// Helpers shared by the epb tests, the corpus generator and the fuzzer:
// message builders, semantic equality (ignores absent optional fields), a
// byte-stream runner, a random valid-message generator and the sample
// messages the doc examples and the seed corpus are made of.
#pragma once

#include <epb/epb.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace epbt {

using Bytes = std::vector<uint8_t>;

inline epb_message blank(uint8_t type) {
  epb_message m;
  std::memset(&m, 0, sizeof m);
  m.type = type;
  return m;
}

template <std::size_t N>
inline void set_str(char (&dst)[N], uint8_t &len, const std::string &s) {
  std::memset(dst, 0, N);
  std::memcpy(dst, s.data(), s.size() < N ? s.size() : N - 1);
  len = static_cast<uint8_t>(s.size());
}

inline epb_message hello(const std::string &unit, const std::string &container,
                         const std::string &fw, uint64_t next_seq,
                         uint64_t oldest_seq = 0) {
  epb_message m = blank(EPB_MSG_HELLO);
  set_str(m.m.hello.unit_id, m.m.hello.unit_id_len, unit);
  set_str(m.m.hello.container_id, m.m.hello.container_id_len, container);
  set_str(m.m.hello.firmware, m.m.hello.firmware_len, fw);
  m.m.hello.next_seq = next_seq;
  m.m.hello.oldest_seq = oldest_seq == 0 ? next_seq : oldest_seq;
  return m;
}

inline epb_message welcome(uint64_t last, uint16_t window, uint64_t utc_ms) {
  epb_message m = blank(EPB_MSG_WELCOME);
  m.m.welcome.last_stored_seq = last;
  m.m.welcome.window = window;
  m.m.welcome.utc_ms = utc_ms;
  return m;
}

inline epb_message reading(uint64_t seq, uint64_t time_ms, uint8_t kind) {
  epb_message m = blank(EPB_MSG_READING);
  m.m.reading.seq = seq;
  m.m.reading.time_utc_ms = time_ms;
  m.m.reading.kind = kind;
  return m;
}

inline epb_message position(uint64_t seq, uint64_t time_ms, int32_t lat, int32_t lon,
                            uint8_t fix, uint8_t sats, uint8_t present,
                            uint16_t speed, uint16_t heading, uint16_t hdop) {
  epb_message m = reading(seq, time_ms, EPB_READING_POSITION);
  epb_position &p = m.m.reading.u.position;
  p.lat_e7 = lat;
  p.lon_e7 = lon;
  p.fix = fix;
  p.satellites = sats;
  p.present = present;
  p.speed_cm_s = speed;
  p.heading_cdeg = heading;
  p.hdop_centi = hdop;
  return m;
}

inline epb_message seal(uint64_t seq, uint64_t time_ms, uint8_t state,
                        const std::string &id) {
  epb_message m = reading(seq, time_ms, EPB_READING_SEAL);
  m.m.reading.u.seal.state = state;
  set_str(m.m.reading.u.seal.seal_id, m.m.reading.u.seal.seal_id_len, id);
  return m;
}

inline epb_message door(uint64_t seq, uint64_t time_ms, uint8_t state) {
  epb_message m = reading(seq, time_ms, EPB_READING_DOOR);
  m.m.reading.u.door.state = state;
  return m;
}

inline epb_message sensor(uint64_t seq, uint64_t time_ms, uint8_t present,
                          int16_t temp, uint16_t hum, uint16_t shock, uint16_t mv,
                          uint8_t pct, int16_t setpoint) {
  epb_message m = reading(seq, time_ms, EPB_READING_SENSOR);
  epb_sensor &s = m.m.reading.u.sensor;
  s.present = present;
  s.temperature_centi_c = temp;
  s.humidity_centi_pct = hum;
  s.shock_milli_g = shock;
  s.battery_mv = mv;
  s.battery_pct = pct;
  s.reefer_setpoint_centi_c = setpoint;
  return m;
}

inline epb_message ack(uint64_t seq) {
  epb_message m = blank(EPB_MSG_ACK);
  m.m.ack.seq = seq;
  return m;
}

// Checkpoint 1 of docs/evidence.md 9.3 (152 bytes, unit TU-0042, readings
// 1001..1003): the EVIDENCE examples of docs/firmware-bridge.md 9.16 carry it.
inline std::vector<uint8_t> example_checkpoint_1() {
  static const uint8_t ck[] = {
      0xd2, 0x84, 0x4d, 0xa2, 0x01, 0x27, 0x04, 0x48, 0x56, 0x47, 0x5a, 0xa7, 0x54, 0x63, 0x47, 0x4c,
      0xa0, 0x58, 0x43, 0xa7, 0x01, 0x67, 0x54, 0x55, 0x2d, 0x30, 0x30, 0x34, 0x32, 0x02, 0x01, 0x03,
      0x19, 0x03, 0xe9, 0x04, 0x19, 0x03, 0xeb, 0x05, 0x03, 0x06, 0x58, 0x20, 0x6f, 0xce, 0xc1, 0x78,
      0xd0, 0x8b, 0xf9, 0xc6, 0xcf, 0xe8, 0xf9, 0x0f, 0x36, 0xcf, 0x9a, 0xa5, 0x89, 0xc1, 0xd1, 0x0d,
      0x35, 0x57, 0x9f, 0xfa, 0x6a, 0x81, 0x34, 0x36, 0xfc, 0xfe, 0x9f, 0x64, 0x08, 0x1b, 0x00, 0x00,
      0x01, 0x90, 0x00, 0xc7, 0xa3, 0xd0, 0x58, 0x40, 0x10, 0x04, 0x80, 0x6d, 0x7b, 0x84, 0x48, 0x2d,
      0x61, 0xc7, 0xba, 0x7f, 0x26, 0x89, 0x20, 0x49, 0xcd, 0xca, 0x72, 0x52, 0x23, 0xc5, 0xab, 0x4e,
      0x33, 0x50, 0xbc, 0xe8, 0x15, 0xfa, 0xbb, 0xd2, 0x0f, 0xe8, 0x3d, 0x53, 0x3b, 0x46, 0x41, 0xff,
      0xe8, 0xaa, 0xc3, 0x60, 0x5f, 0xf1, 0x9a, 0x9c, 0x8b, 0xce, 0xd1, 0xc3, 0x9e, 0x5a, 0xb0, 0x32,
      0xc4, 0x3f, 0x9b, 0xba, 0x1d, 0xf9, 0xe6, 0x0c};
  return std::vector<uint8_t>(ck, ck + sizeof ck);
}

// Fragment `index` of checkpoint ck (key seq), as the unit sends it.
inline epb_message evidence(uint64_t seq, const std::vector<uint8_t> &ck, unsigned index) {
  epb_message m;
  if (!epb_evf_fragment(seq, ck.data(), ck.size(), index, &m)) m = blank(EPB_MSG_EVIDENCE);
  return m;
}

inline epb_message evidence_ack(uint64_t seq) {
  epb_message m = blank(EPB_MSG_EVIDENCE_ACK);
  m.m.evidence_ack.seq = seq;
  return m;
}

inline epb_message nack(uint64_t seq, uint8_t reason) {
  epb_message m = blank(EPB_MSG_NACK);
  m.m.nack.seq = seq;
  m.m.nack.reason = reason;
  return m;
}

inline epb_message time_sync(uint64_t utc_ms) {
  epb_message m = blank(EPB_MSG_TIME_SYNC);
  m.m.time_sync.utc_ms = utc_ms;
  return m;
}

inline epb_message discard(uint64_t first, uint64_t last, uint8_t reason) {
  epb_message m = blank(EPB_MSG_DISCARD);
  m.m.discard.first_seq = first;
  m.m.discard.last_seq = last;
  m.m.discard.reason = reason;
  return m;
}

inline epb_message settings(uint32_t pos_s, uint32_t sensor_s,
                            uint8_t type = EPB_MSG_SETTINGS) {
  epb_message m = blank(type);
  m.m.settings.position_interval_s = pos_s;
  m.m.settings.sensor_interval_s = sensor_s;
  return m;
}

// SETTINGS (or SETTINGS_ACK) with the deadband extension (6.4).
inline epb_message settings_ext(uint32_t pos_s, uint32_t sensor_s, uint8_t deadbands, uint16_t temp_centi_c,
                                uint32_t pos_m, uint8_t type = EPB_MSG_SETTINGS) {
  epb_message m = settings(pos_s, sensor_s, type);
  m.m.settings.extended = 1;
  m.m.settings.deadbands = deadbands;
  m.m.settings.temperature_deadband_centi_c = temp_centi_c;
  m.m.settings.position_deadband_m = pos_m;
  return m;
}

inline epb_message features(uint32_t bits) {
  epb_message m = blank(EPB_MSG_FEATURES);
  m.m.features.features = bits;
  return m;
}

inline epb_message ping(uint8_t type, uint32_t nonce) {
  epb_message m = blank(type);
  m.m.ping.nonce = nonce;
  return m;
}

// Empty string if a and b carry the same content, else what differs. Fields
// whose present bit is clear and string bytes past their length are ignored.
inline std::string diff(const epb_message &a, const epb_message &b) {
  std::ostringstream o;
  auto field = [&](const char *name, auto x, auto y) {
    if (x != y) o << name << ": " << +x << " != " << +y << "; ";
  };
  auto str = [&](const char *name, const char *x, uint8_t xl, const char *y,
                 uint8_t yl) {
    if (xl != yl || std::memcmp(x, y, xl) != 0)
      o << name << ": '" << std::string(x, xl) << "' != '" << std::string(y, yl)
        << "'; ";
  };
  field("type", a.type, b.type);
  if (a.type != b.type) return o.str();
  switch (a.type) {
    case EPB_MSG_HELLO: {
      const epb_hello &x = a.m.hello, &y = b.m.hello;
      str("unit_id", x.unit_id, x.unit_id_len, y.unit_id, y.unit_id_len);
      str("container_id", x.container_id, x.container_id_len, y.container_id,
          y.container_id_len);
      str("firmware", x.firmware, x.firmware_len, y.firmware, y.firmware_len);
      field("next_seq", x.next_seq, y.next_seq);
      field("oldest_seq", x.oldest_seq, y.oldest_seq);
      break;
    }
    case EPB_MSG_WELCOME:
      field("last_stored_seq", a.m.welcome.last_stored_seq, b.m.welcome.last_stored_seq);
      field("window", a.m.welcome.window, b.m.welcome.window);
      field("utc_ms", a.m.welcome.utc_ms, b.m.welcome.utc_ms);
      break;
    case EPB_MSG_READING: {
      const epb_reading &x = a.m.reading, &y = b.m.reading;
      field("seq", x.seq, y.seq);
      field("time_utc_ms", x.time_utc_ms, y.time_utc_ms);
      field("kind", x.kind, y.kind);
      if (x.kind != y.kind) break;
      if (x.kind == EPB_READING_POSITION) {
        const epb_position &p = x.u.position, &q = y.u.position;
        field("lat_e7", p.lat_e7, q.lat_e7);
        field("lon_e7", p.lon_e7, q.lon_e7);
        field("fix", p.fix, q.fix);
        field("satellites", p.satellites, q.satellites);
        field("present", p.present, q.present);
        if (p.present & EPB_POS_SPEED) field("speed", p.speed_cm_s, q.speed_cm_s);
        if (p.present & EPB_POS_HEADING) field("heading", p.heading_cdeg, q.heading_cdeg);
        if (p.present & EPB_POS_HDOP) field("hdop", p.hdop_centi, q.hdop_centi);
      } else if (x.kind == EPB_READING_SEAL) {
        field("seal state", x.u.seal.state, y.u.seal.state);
        str("seal_id", x.u.seal.seal_id, x.u.seal.seal_id_len, y.u.seal.seal_id,
            y.u.seal.seal_id_len);
      } else if (x.kind == EPB_READING_DOOR) {
        field("door state", x.u.door.state, y.u.door.state);
      } else if (x.kind == EPB_READING_SENSOR) {
        const epb_sensor &s = x.u.sensor, &t = y.u.sensor;
        field("present", s.present, t.present);
        if (s.present & EPB_SENSOR_TEMPERATURE)
          field("temperature", s.temperature_centi_c, t.temperature_centi_c);
        if (s.present & EPB_SENSOR_HUMIDITY)
          field("humidity", s.humidity_centi_pct, t.humidity_centi_pct);
        if (s.present & EPB_SENSOR_SHOCK) field("shock", s.shock_milli_g, t.shock_milli_g);
        if (s.present & EPB_SENSOR_BATTERY_MV) field("battery_mv", s.battery_mv, t.battery_mv);
        if (s.present & EPB_SENSOR_BATTERY_PCT)
          field("battery_pct", s.battery_pct, t.battery_pct);
        if (s.present & EPB_SENSOR_REEFER_SETPOINT)
          field("setpoint", s.reefer_setpoint_centi_c, t.reefer_setpoint_centi_c);
      }
      break;
    }
    case EPB_MSG_ACK:
      field("seq", a.m.ack.seq, b.m.ack.seq);
      break;
    case EPB_MSG_NACK:
      field("seq", a.m.nack.seq, b.m.nack.seq);
      field("reason", a.m.nack.reason, b.m.nack.reason);
      break;
    case EPB_MSG_TIME_SYNC:
      field("utc_ms", a.m.time_sync.utc_ms, b.m.time_sync.utc_ms);
      break;
    case EPB_MSG_DISCARD:
      field("first_seq", a.m.discard.first_seq, b.m.discard.first_seq);
      field("last_seq", a.m.discard.last_seq, b.m.discard.last_seq);
      field("reason", a.m.discard.reason, b.m.discard.reason);
      break;
    case EPB_MSG_SETTINGS:
    case EPB_MSG_SETTINGS_ACK:
      field("position_interval_s", a.m.settings.position_interval_s,
            b.m.settings.position_interval_s);
      field("sensor_interval_s", a.m.settings.sensor_interval_s,
            b.m.settings.sensor_interval_s);
      field("extended", a.m.settings.extended, b.m.settings.extended);
      field("deadbands", a.m.settings.deadbands, b.m.settings.deadbands);
      field("temperature_deadband_centi_c", a.m.settings.temperature_deadband_centi_c,
            b.m.settings.temperature_deadband_centi_c);
      field("position_deadband_m", a.m.settings.position_deadband_m, b.m.settings.position_deadband_m);
      break;
    case EPB_MSG_FEATURES:
      field("features", a.m.features.features, b.m.features.features);
      break;
    case EPB_MSG_CHALLENGE:
      if (std::memcmp(a.m.challenge.agent_nonce, b.m.challenge.agent_nonce, EPB_NONCE_LEN))
        o << "agent_nonce differs; ";
      break;
    case EPB_MSG_AUTH:
      if (std::memcmp(a.m.auth.unit_nonce, b.m.auth.unit_nonce, EPB_NONCE_LEN))
        o << "unit_nonce differs; ";
      if (std::memcmp(a.m.auth.proof, b.m.auth.proof, EPB_PROOF_LEN)) o << "proof differs; ";
      break;
    case EPB_MSG_EVIDENCE:
      field("seq", a.m.evidence.seq, b.m.evidence.seq);
      field("total_len", a.m.evidence.total_len, b.m.evidence.total_len);
      field("offset", a.m.evidence.offset, b.m.evidence.offset);
      field("len", a.m.evidence.len, b.m.evidence.len);
      if (std::memcmp(a.m.evidence.data, b.m.evidence.data, a.m.evidence.len)) o << "data differs; ";
      break;
    case EPB_MSG_EVIDENCE_ACK:
      field("seq", a.m.evidence_ack.seq, b.m.evidence_ack.seq);
      break;
    default:
      field("nonce", a.m.ping.nonce, b.m.ping.nonce);
      break;
  }
  return o.str();
}

// The example session of the spec (docs/firmware-bridge.md 13.6): unit
// TU-0042 with key 00 01 .. 1f, agent nonce a0 .. af, unit nonce b0 .. bf.
inline void example_bytes(uint8_t *out, std::size_t n, uint8_t first) {
  for (std::size_t i = 0; i < n; i++) out[i] = static_cast<uint8_t>(first + i);
}

inline void example_session_key(uint8_t sk[EPB_SHA256_LEN]) {
  uint8_t key[EPB_KEY_LEN], agent_nonce[EPB_NONCE_LEN], unit_nonce[EPB_NONCE_LEN];
  example_bytes(key, sizeof key, 0x00);
  example_bytes(agent_nonce, sizeof agent_nonce, 0xa0);
  example_bytes(unit_nonce, sizeof unit_nonce, 0xb0);
  epb_auth_session_key(key, "TU-0042", 7, agent_nonce, unit_nonce, sk);
}

// A fresh side of the example session (so its first sealed frame has counter 1).
inline epb_auth example_auth(bool as_unit) {
  uint8_t sk[EPB_SHA256_LEN];
  example_session_key(sk);
  epb_auth a;
  epb_auth_start(&a, sk, as_unit ? 1 : 0);
  return a;
}

inline epb_message challenge(uint8_t first) {
  epb_message m = blank(EPB_MSG_CHALLENGE);
  example_bytes(m.m.challenge.agent_nonce, EPB_NONCE_LEN, first);
  return m;
}

inline Bytes encode(const epb_message &m) {
  Bytes out(EPB_MAX_ENCODED);
  out.resize(epb_encode(&m, out.data(), out.size()));
  return out;
}

inline Bytes encode_sealed(const epb_message &m, epb_auth &a) {
  Bytes out(EPB_MAX_ENCODED);
  out.resize(epb_encode_sealed(&m, &a, out.data(), out.size()));
  return out;
}

// The AUTH of the example session: answers the "hello" sample.
inline epb_message example_auth_msg(const epb_message &hello_msg) {
  epb_message m = blank(EPB_MSG_AUTH);
  example_bytes(m.m.auth.unit_nonce, EPB_NONCE_LEN, 0xb0);
  uint8_t sk[EPB_SHA256_LEN];
  example_session_key(sk);
  epb_auth_proof(sk, &hello_msg, m.m.auth.proof);
  return m;
}

// One outcome of the stream decoder: a status and, for EPB_OK, the message.
struct Outcome {
  epb_status status;
  epb_message msg;
};

// Feeds `stream` to d in chunks whose sizes come from next_chunk() and
// returns every non-NEED_MORE outcome in order.
template <class ChunkFn>
std::vector<Outcome> run_stream(epb_decoder &d, const Bytes &stream, ChunkFn next_chunk) {
  std::vector<Outcome> outs;
  std::size_t pos = 0;
  while (pos < stream.size()) {
    std::size_t n = next_chunk();
    if (n > stream.size() - pos) n = stream.size() - pos;
    std::size_t off = 0;
    for (;;) {
      Outcome o;
      std::size_t used = epb_decoder_feed(&d, stream.data() + pos + off, n - off,
                                          &o.msg, &o.status);
      off += used;
      if (o.status == EPB_NEED_MORE) break;
      outs.push_back(o);
    }
    pos += n;
  }
  return outs;
}

inline std::vector<Outcome> run_stream(const Bytes &stream, std::size_t chunk = SIZE_MAX) {
  epb_decoder d;
  epb_decoder_init(&d);
  return run_stream(d, stream, [chunk] { return chunk; });
}

inline std::string hex(const Bytes &b) {
  static const char *digits = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < b.size(); i++) {
    if (i) s += ' ';
    s += digits[b[i] >> 4];
    s += digits[b[i] & 15];
  }
  return s;
}

// Test-side reference COBS (independent of the library's).
inline Bytes cobs_encode(const Bytes &in) {
  Bytes out{0};
  std::size_t code_at = 0;
  uint8_t code = 1;
  for (std::size_t i = 0; i < in.size(); i++) {
    if (in[i] == 0) {
      out[code_at] = code;
      code_at = out.size();
      out.push_back(0);
      code = 1;
    } else {
      out.push_back(in[i]);
      if (++code == 0xFF) {
        out[code_at] = code;
        code_at = out.size();
        out.push_back(0);
        code = 1;
      }
    }
  }
  out[code_at] = code;
  return out;
}

inline Bytes cobs_decode(const Bytes &in) {
  Bytes out;
  std::size_t i = 0;
  while (i < in.size()) {
    uint8_t code = in[i++];
    for (uint8_t k = 1; k < code && i < in.size(); k++) out.push_back(in[i++]);
    if (code != 0xFF && i < in.size()) out.push_back(0);
  }
  return out;
}

// Random valid messages of every type and kind.
class Gen {
 public:
  explicit Gen(uint32_t seed) : rng_(seed) {}

  uint64_t u(uint64_t lo, uint64_t hi) {
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng_);
  }
  int64_t s(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }
  std::string str(std::size_t min, std::size_t max) {
    std::string out(static_cast<std::size_t>(u(min, max)), ' ');
    for (char &c : out) c = static_cast<char>(u(0x20, 0x7E));
    return out;
  }

  epb_message message() {
    switch (u(EPB_MSG_HELLO, EPB_MSG_TYPE_MAX)) {
      case EPB_MSG_HELLO: {
        uint64_t next = u(1, EPB_SEQ_MAX);
        return hello(str(1, EPB_UNIT_ID_MAX), str(0, EPB_CONTAINER_ID_MAX),
                     str(0, EPB_FIRMWARE_MAX), next, u(1, next));
      }
      case EPB_MSG_WELCOME:
        return welcome(u(0, EPB_SEQ_MAX), static_cast<uint16_t>(u(1, 65535)),
                       u(0, UINT64_MAX));
      case EPB_MSG_READING:
        return reading_msg();
      case EPB_MSG_ACK:
        return ack(u(0, EPB_SEQ_MAX));
      case EPB_MSG_NACK:
        return nack(u(0, EPB_SEQ_MAX),
                    static_cast<uint8_t>(u(EPB_NACK_MALFORMED, EPB_NACK_REASON_MAX)));
      case EPB_MSG_DISCARD: {
        uint64_t first = u(1, EPB_SEQ_MAX);
        return discard(first, u(first, EPB_SEQ_MAX),
                       static_cast<uint8_t>(u(1, EPB_DISCARD_REASON_MAX)));
      }
      case EPB_MSG_SETTINGS_ACK:
        return settings(static_cast<uint32_t>(u(0, UINT32_MAX)),
                        static_cast<uint32_t>(u(0, UINT32_MAX)), EPB_MSG_SETTINGS_ACK);
      case EPB_MSG_TIME_SYNC:
        return time_sync(u(0, UINT64_MAX));
      case EPB_MSG_SETTINGS:
        return settings(static_cast<uint32_t>(u(0, UINT32_MAX)),
                        static_cast<uint32_t>(u(0, UINT32_MAX)));
      case EPB_MSG_PING:
        return ping(EPB_MSG_PING, static_cast<uint32_t>(u(0, UINT32_MAX)));
      case EPB_MSG_CHALLENGE:
        return challenge(static_cast<uint8_t>(u(0, 255)));
      case EPB_MSG_AUTH: {
        epb_message m = blank(EPB_MSG_AUTH);
        for (uint8_t &b : m.m.auth.unit_nonce) b = static_cast<uint8_t>(u(0, 255));
        for (uint8_t &b : m.m.auth.proof) b = static_cast<uint8_t>(u(0, 255));
        return m;
      }
      case EPB_MSG_EVIDENCE: {
        std::vector<uint8_t> ck(static_cast<std::size_t>(u(1, EPB_EVF_TOTAL_MAX)));
        for (uint8_t &b : ck) b = static_cast<uint8_t>(u(0, 255));
        return evidence(u(1, EPB_SEQ_MAX), ck, static_cast<unsigned>(u(0, epb_evf_count(ck.size()) - 1)));
      }
      case EPB_MSG_EVIDENCE_ACK:
        return evidence_ack(u(1, EPB_SEQ_MAX));
      default:
        return ping(EPB_MSG_PONG, static_cast<uint32_t>(u(0, UINT32_MAX)));
    }
  }

  epb_message reading_msg() {
    uint64_t seq = u(1, EPB_SEQ_MAX), t = u(0, UINT64_MAX);
    switch (u(0, 3)) {
      case EPB_READING_POSITION:
        return position(seq, t, static_cast<int32_t>(s(-900000000, 900000000)),
                        static_cast<int32_t>(s(-1800000000, 1800000000)),
                        static_cast<uint8_t>(u(0, 8)), static_cast<uint8_t>(u(0, 255)),
                        static_cast<uint8_t>(u(0, 7)), static_cast<uint16_t>(u(0, 65535)),
                        static_cast<uint16_t>(u(0, 35999)),
                        static_cast<uint16_t>(u(0, 65535)));
      case EPB_READING_SEAL:
        return seal(seq, t, static_cast<uint8_t>(u(0, 3)), str(0, EPB_SEAL_ID_MAX));
      case EPB_READING_DOOR:
        return door(seq, t, static_cast<uint8_t>(u(0, 2)));
      default:
        return sensor(seq, t, static_cast<uint8_t>(u(0, 63)),
                      static_cast<int16_t>(s(-32768, 32767)),
                      static_cast<uint16_t>(u(0, 10000)), static_cast<uint16_t>(u(0, 65535)),
                      static_cast<uint16_t>(u(0, 65535)), static_cast<uint8_t>(u(0, 100)),
                      static_cast<int16_t>(s(-32768, 32767)));
    }
  }

 private:
  std::mt19937_64 rng_;
};

// The worked examples of docs/firmware-bridge.md (asserted byte for byte by
// test_doc_examples.cpp) and the rest of the seed corpus.
struct Sample {
  const char *name;
  epb_message msg;
  char sealed_by = 0;  // 0: plain; 'U' or 'A': sealed by that side of the example session
};

inline std::vector<Sample> samples() {
  const uint64_t t = 1718000000000ull;  // 2024-06-10T06:13:20Z
  return {
      {"hello", hello("TU-0042", "MSCU1234566", "1.4.2", 1006, 1001)},
      {"challenge", challenge(0xa0)},
      {"auth", example_auth_msg(hello("TU-0042", "MSCU1234566", "1.4.2", 1006, 1001))},
      {"sealed_welcome", welcome(1000, 16, t + 250), 'A'},
      {"sealed_reading_door", door(1003, t + 2000, 2), 'U'},
      {"welcome", welcome(1000, 16, t + 250)},
      {"reading_position",
       position(1001, t, 519225000, 44791700, 1, 9,
                EPB_POS_SPEED | EPB_POS_HEADING | EPB_POS_HDOP, 250, 9000, 90)},
      {"reading_position_bare", position(1004, t + 60000, -338688000, 1512093000, 0, 0,
                                         0, 0, 0, 0)},
      {"reading_seal", seal(1002, t + 1000, 1, "SL-778812")},
      {"reading_door", door(1003, t + 2000, 2)},
      {"reading_sensor",
       sensor(1005, t + 3000,
              EPB_SENSOR_TEMPERATURE | EPB_SENSOR_HUMIDITY | EPB_SENSOR_BATTERY_PCT,
              -1850, 8120, 0, 0, 87, 0)},
      {"reading_sensor_all", sensor(1006, t + 4000, 0x3F, 412, 5500, 1250, 3712, 64, -1800)},
      {"ack", ack(1002)},
      {"nack", nack(1003, EPB_NACK_STORE_FULL)},
      {"nack_out_of_order", nack(1004, EPB_NACK_OUT_OF_ORDER)},
      {"discard", discard(1007, 1010, EPB_DISCARD_FLASH_FULL)},
      {"settings_ack", settings(60, 900, EPB_MSG_SETTINGS_ACK)},
      {"time_sync", time_sync(t + 5000)},
      {"settings", settings(60, 900)},
      {"features", features(EPB_FEATURE_DEADBANDS)},
      {"settings_deadbands",
       settings_ext(300, 300, EPB_DEADBAND_TEMPERATURE | EPB_DEADBAND_POSITION, 50, 25)},
      {"settings_ack_deadbands",
       settings_ext(300, 300, EPB_DEADBAND_TEMPERATURE | EPB_DEADBAND_POSITION, 50, 25,
                    EPB_MSG_SETTINGS_ACK)},
      {"ping", ping(EPB_MSG_PING, 0x12345678u)},
      {"pong", ping(EPB_MSG_PONG, 0x12345678u)},
      {"evidence_1003_0", evidence(1003, example_checkpoint_1(), 0)},
      {"evidence_1003_1", evidence(1003, example_checkpoint_1(), 1)},
      {"evidence_ack", evidence_ack(1003)},
  };
}

// Little-endian payload builder for hand-made bodies (malformed cases,
// fragments): what the encoder would never write.
struct P {
  Bytes b;
  P &u8(uint64_t v) { b.push_back(static_cast<uint8_t>(v)); return *this; }
  P &u16(uint64_t v) { return u8(v).u8(v >> 8); }
  P &u32(uint64_t v) { return u16(v).u16(v >> 16); }
  P &u64(uint64_t v) { return u32(v).u32(v >> 32); }
  P &str(const std::string &s) {
    u8(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
};

// A body (version, type, payload, CRC-32C) as section 3 lays it out.
inline Bytes body(uint8_t version, uint8_t type, const Bytes &payload) {
  Bytes b{version, type};
  b.insert(b.end(), payload.begin(), payload.end());
  uint32_t crc = epb_crc32c(b.data(), b.size());
  for (int i = 0; i < 4; i++) b.push_back(static_cast<uint8_t>(crc >> (8 * i)));
  return b;
}

}  // namespace epbt
