// Round trips of every message type and every optional-field combination,
// encoder refusals, buffer-size limits, the CRC-32C check value and names.
#include <catch2/catch.hpp>

#include "epb_test_support.hpp"

using namespace epbt;

namespace {

epb_message roundtrip(const epb_message &m) {
  Bytes frame = encode(m);
  REQUIRE(!frame.empty());
  REQUIRE(frame.size() <= EPB_MAX_ENCODED);
  REQUIRE(frame.back() == 0x00);
  for (std::size_t i = 0; i + 1 < frame.size(); i++) REQUIRE(frame[i] != 0x00);
  std::vector<Outcome> outs = run_stream(frame);
  REQUIRE(outs.size() == 1);
  REQUIRE(outs[0].status == EPB_OK);
  CHECK(diff(m, outs[0].msg) == "");
  return outs[0].msg;
}

std::size_t popcount(unsigned v) {
  std::size_t n = 0;
  for (; v; v &= v - 1) n++;
  return n;
}

}  // namespace

TEST_CASE("crc32c matches the Castagnoli check value", "[epb]") {
  const uint8_t check[] = {'1', '2', '3', '4', '5', '6', '7', '8', '9'};
  CHECK(epb_crc32c(check, sizeof check) == 0xE3069283u);
  CHECK(epb_crc32c(nullptr, 0) == 0x00000000u);
  const uint8_t zeros[32] = {};
  CHECK(epb_crc32c(zeros, sizeof zeros) == 0x8A9136AAu);  // RFC 3720 B.4
}

TEST_CASE("every message type round-trips", "[epb]") {
  for (const Sample &s : samples()) {
    INFO(s.name);
    roundtrip(s.msg);
  }
}

TEST_CASE("extreme values round-trip", "[epb]") {
  roundtrip(hello(std::string(EPB_UNIT_ID_MAX, '~'), std::string(EPB_CONTAINER_ID_MAX, ' '),
                  std::string(EPB_FIRMWARE_MAX, 'x'), EPB_SEQ_MAX, 1));
  roundtrip(hello("u", "", "", EPB_SEQ_MAX, EPB_SEQ_MAX));
  roundtrip(hello("u", "", "", 1));
  roundtrip(welcome(0, 1, 0));
  roundtrip(welcome(EPB_SEQ_MAX, 65535, UINT64_MAX));
  roundtrip(position(1, 0, -900000000, -1800000000, 0, 0, 7, 0, 0, 0));
  roundtrip(position(EPB_SEQ_MAX, UINT64_MAX, 900000000, 1800000000, 8, 255, 7, 65535,
                     35999, 65535));
  roundtrip(sensor(1, 0, 0x3F, INT16_MIN, 10000, 65535, 65535, 100, INT16_MAX));
  roundtrip(sensor(2, 0, 0x3F, INT16_MAX, 0, 0, 0, 0, INT16_MIN));
  roundtrip(sensor(3, 0, 0, 0, 0, 0, 0, 0, 0));
  roundtrip(seal(4, 0, 3, std::string(EPB_SEAL_ID_MAX, 'S')));
  roundtrip(ack(0));
  roundtrip(ack(EPB_SEQ_MAX));
  roundtrip(discard(1, EPB_SEQ_MAX, EPB_DISCARD_EXPIRED));
  roundtrip(settings(UINT32_MAX, 1, EPB_MSG_SETTINGS_ACK));
  roundtrip(nack(0, EPB_NACK_MALFORMED));
  roundtrip(settings(0, 0));
  roundtrip(settings(UINT32_MAX, UINT32_MAX));
  roundtrip(ping(EPB_MSG_PING, 0));
  roundtrip(ping(EPB_MSG_PONG, UINT32_MAX));
  roundtrip(time_sync(UINT64_MAX));
  roundtrip(settings_ext(0, 0, 0, 0, 0));
  roundtrip(settings_ext(1, 2, EPB_DEADBAND_TEMPERATURE, EPB_TEMPERATURE_DEADBAND_MAX, 0, EPB_MSG_SETTINGS_ACK));
  roundtrip(settings_ext(UINT32_MAX, UINT32_MAX, EPB_DEADBAND_POSITION, 0, EPB_POSITION_DEADBAND_MAX));
  roundtrip(settings_ext(60, 60, EPB_DEADBAND_TEMPERATURE | EPB_DEADBAND_POSITION, 0, 0));
  roundtrip(features(0));
  roundtrip(features(UINT32_MAX));  // bits not known yet are carried, not refused
}

TEST_CASE("SETTINGS is 8 bytes without the deadband extension and 15 with it", "[epb]") {
  // body = version, type, payload, crc
  auto payload_size = [](const epb_message &m) {
    const Bytes frame = encode(m);
    return cobs_decode(Bytes(frame.begin(), frame.end() - 1)).size() - 6;
  };
  CHECK(payload_size(settings(60, 900)) == 8);
  CHECK(payload_size(settings_ext(60, 900, EPB_DEADBAND_POSITION, 0, 25)) == 15);
  CHECK(payload_size(settings_ext(60, 900, 0, 0, 0, EPB_MSG_SETTINGS_ACK)) == 15);
  CHECK(payload_size(features(EPB_FEATURE_DEADBANDS)) == 4);
}

TEST_CASE("every seal, door state and nack reason round-trips", "[epb]") {
  for (uint8_t st = 0; st <= 3; st++) roundtrip(seal(10, 1, st, "S"));
  for (uint8_t st = 0; st <= 2; st++) roundtrip(door(10, 1, st));
  for (uint8_t r = EPB_NACK_MALFORMED; r <= EPB_NACK_REASON_MAX; r++) roundtrip(nack(5, r));
}

TEST_CASE("strings of every length and the printable boundaries round-trip", "[epb]") {
  for (std::size_t n = 0; n <= EPB_SEAL_ID_MAX; n++) roundtrip(seal(1, 2, 1, std::string(n, 'A')));
  for (std::size_t n = 1; n <= EPB_UNIT_ID_MAX; n++) roundtrip(hello(std::string(n, 'u'), "", "", 1));
  for (std::size_t n = 0; n <= EPB_CONTAINER_ID_MAX; n++)
    roundtrip(hello("u", std::string(n, 'C'), "", 1));
  for (std::size_t n = 0; n <= EPB_FIRMWARE_MAX; n++) roundtrip(hello("u", "", std::string(n, 'f'), 1));
  std::string all;
  for (char c = 0x20; c < 0x7E; c++) all += c;
  all += '\x7E';
  for (std::size_t i = 0; i < all.size(); i += EPB_SEAL_ID_MAX)
    roundtrip(seal(1, 2, 1, all.substr(i, EPB_SEAL_ID_MAX)));
}

TEST_CASE("decoded strings are NUL-terminated", "[epb]") {
  epb_message m = roundtrip(hello("TU-1", "ABCU1234560", "fw", 3));
  CHECK(std::string(m.m.hello.unit_id) == "TU-1");
  CHECK(std::string(m.m.hello.container_id) == "ABCU1234560");
  CHECK(std::string(m.m.hello.firmware) == "fw");
  m = roundtrip(seal(1, 1, 1, "SEAL"));
  CHECK(std::string(m.m.reading.u.seal.seal_id) == "SEAL");
}

TEST_CASE("position round-trips with every optional-field combination", "[epb]") {
  const std::size_t base = encode(position(1, 2, 3, 4, 1, 5, 0, 0, 0, 0)).size();
  for (uint8_t present = 0; present <= 7; present++) {
    INFO("present=" << +present);
    // Absent fields carry junk that must neither be sent nor come back.
    epb_message m = position(77, 1718000000000ull, -12345678, 98765432, 4, 12, present,
                             1234, 35999, 250);
    if (!(present & EPB_POS_HEADING)) m.m.reading.u.position.heading_cdeg = 65535;
    epb_message back = roundtrip(m);
    const epb_position &p = back.m.reading.u.position;
    CHECK(encode(m).size() == base + 2 * popcount(present));
    if (!(present & EPB_POS_SPEED)) CHECK(p.speed_cm_s == 0);
    if (!(present & EPB_POS_HEADING)) CHECK(p.heading_cdeg == 0);
    if (!(present & EPB_POS_HDOP)) CHECK(p.hdop_centi == 0);
  }
}

TEST_CASE("sensor round-trips with every optional-field combination", "[epb]") {
  const std::size_t base = encode(sensor(1, 2, 0, 0, 0, 0, 0, 0, 0)).size();
  for (unsigned present = 0; present <= 0x3F; present++) {
    INFO("present=" << present);
    epb_message m = sensor(99, 5, static_cast<uint8_t>(present), -4000, 9999, 30000, 3300,
                           55, -2500);
    epb_sensor &in = m.m.reading.u.sensor;
    // Out-of-range junk in absent fields is ignored by the encoder.
    if (!(present & EPB_SENSOR_HUMIDITY)) in.humidity_centi_pct = 60000;
    if (!(present & EPB_SENSOR_BATTERY_PCT)) in.battery_pct = 250;
    epb_message back = roundtrip(m);
    const epb_sensor &s = back.m.reading.u.sensor;
    std::size_t extra = 2 * popcount(present & ~EPB_SENSOR_BATTERY_PCT) +
                        ((present & EPB_SENSOR_BATTERY_PCT) ? 1 : 0);
    CHECK(encode(m).size() == base + extra);
    if (!(present & EPB_SENSOR_TEMPERATURE)) CHECK(s.temperature_centi_c == 0);
    if (!(present & EPB_SENSOR_HUMIDITY)) CHECK(s.humidity_centi_pct == 0);
    if (!(present & EPB_SENSOR_SHOCK)) CHECK(s.shock_milli_g == 0);
    if (!(present & EPB_SENSOR_BATTERY_MV)) CHECK(s.battery_mv == 0);
    if (!(present & EPB_SENSOR_BATTERY_PCT)) CHECK(s.battery_pct == 0);
    if (!(present & EPB_SENSOR_REEFER_SETPOINT)) CHECK(s.reefer_setpoint_centi_c == 0);
  }
}

TEST_CASE("random valid messages round-trip and re-encode to the same bytes", "[epb]") {
  Gen g(12345);
  for (int i = 0; i < 5000; i++) {
    epb_message m = g.message();
    epb_message back = roundtrip(m);
    REQUIRE(encode(back) == encode(m));
  }
}

TEST_CASE("the encoder refuses invalid messages", "[epb]") {
  struct Row {
    const char *what;
    epb_message msg;
  };
  epb_message bad_unit_char = hello("TU\x01", "", "", 1);
  epb_message unit_too_long = hello("u", "", "", 1);
  unit_too_long.m.hello.unit_id_len = EPB_UNIT_ID_MAX + 1;
  epb_message container_too_long = hello("u", "", "", 1);
  container_too_long.m.hello.container_id_len = EPB_CONTAINER_ID_MAX + 1;
  epb_message fw_too_long = hello("u", "", "", 1);
  fw_too_long.m.hello.firmware_len = EPB_FIRMWARE_MAX + 1;
  epb_message seal_too_long = seal(1, 1, 1, "");
  seal_too_long.m.reading.u.seal.seal_id_len = EPB_SEAL_ID_MAX + 1;
  epb_message bad_kind = reading(1, 1, 4);
  const Row rows[] = {
      {"empty unit id", hello("", "", "", 1)},
      {"unit id with a control char", bad_unit_char},
      {"unit id with DEL", hello("TU\x7F", "", "", 1)},
      {"unit id with a high byte", hello("TU\xC3\xA9", "", "", 1)},
      {"unit id too long", unit_too_long},
      {"container id too long", container_too_long},
      {"firmware too long", fw_too_long},
      {"hello next_seq 0", hello("u", "", "", 0)},
      {"hello next_seq above EPB_SEQ_MAX", hello("u", "", "", EPB_SEQ_MAX + 1)},
      {"hello oldest_seq above next_seq", hello("u", "", "", 5, 6)},
      {"welcome last_stored_seq above EPB_SEQ_MAX", welcome(EPB_SEQ_MAX + 1, 1, 1)},
      {"ack above EPB_SEQ_MAX", ack(EPB_SEQ_MAX + 1)},
      {"nack above EPB_SEQ_MAX", nack(EPB_SEQ_MAX + 1, EPB_NACK_WINDOW)},
      {"reading seq above EPB_SEQ_MAX", door(EPB_SEQ_MAX + 1, 1, 1)},
      {"reading seq 2^63", door(1ull << 63, 1, 1)},
      {"discard first 0", discard(0, 5, EPB_DISCARD_FLASH_FULL)},
      {"discard first above last", discard(6, 5, EPB_DISCARD_FLASH_FULL)},
      {"discard last above EPB_SEQ_MAX", discard(1, EPB_SEQ_MAX + 1, EPB_DISCARD_EXPIRED)},
      {"discard reason 0", discard(1, 1, 0)},
      {"discard reason 4", discard(1, 1, 4)},
      {"welcome window 0", welcome(1, 0, 1)},
      {"reading seq 0", door(0, 1, 1)},
      {"unknown reading kind", bad_kind},
      {"fix 9", position(1, 1, 0, 0, 9, 0, 0, 0, 0, 0)},
      {"heading 36000", position(1, 1, 0, 0, 1, 0, EPB_POS_HEADING, 0, 36000, 0)},
      {"latitude above 90", position(1, 1, 900000001, 0, 1, 0, 0, 0, 0, 0)},
      {"latitude below -90", position(1, 1, -900000001, 0, 1, 0, 0, 0, 0, 0)},
      {"longitude above 180", position(1, 1, 0, 1800000001, 1, 0, 0, 0, 0, 0)},
      {"longitude below -180", position(1, 1, 0, -1800000001, 1, 0, 0, 0, 0, 0)},
      {"unknown position bit", position(1, 1, 0, 0, 1, 0, 0x08, 0, 0, 0)},
      {"humidity 10001", sensor(1, 1, EPB_SENSOR_HUMIDITY, 0, 10001, 0, 0, 0, 0)},
      {"battery 101 %", sensor(1, 1, EPB_SENSOR_BATTERY_PCT, 0, 0, 0, 0, 101, 0)},
      {"unknown sensor bit", sensor(1, 1, 0x40, 0, 0, 0, 0, 0, 0)},
      {"seal state 4", seal(1, 1, 4, "S")},
      {"seal id too long", seal_too_long},
      {"seal id with a tab", seal(1, 1, 1, "A\tB")},
      {"door state 3", door(1, 1, 3)},
      {"nack reason 0", nack(1, 0)},
      {"nack reason 11", nack(1, 11)},
      {"message type 0", blank(0)},
      {"message type 17", blank(17)},
      {"settings deadband bit 0x04", settings_ext(60, 60, 0x04, 0, 0)},
      {"settings temperature deadband 2001", settings_ext(60, 60, EPB_DEADBAND_TEMPERATURE, 2001, 0)},
      {"settings position deadband 100001", settings_ext(60, 60, EPB_DEADBAND_POSITION, 0, 100001)},
      {"settings absent deadband with a value", settings_ext(60, 60, EPB_DEADBAND_POSITION, 50, 25)},
      {"settings deadbands without the extension", [] {
         epb_message m = settings(60, 60);
         m.m.settings.deadbands = EPB_DEADBAND_POSITION;
         m.m.settings.position_deadband_m = 25;
         return m;
       }()},
      {"settings extended 2", [] {
         epb_message m = settings_ext(60, 60, 0, 0, 0);
         m.m.settings.extended = 2;
         return m;
       }()},
      {"message type 0x8c (the sealed bit)", blank(0x8c)},
  };
  for (const Row &r : rows) {
    INFO(r.what);
    uint8_t out[EPB_MAX_ENCODED];
    CHECK(epb_encode(&r.msg, out, sizeof out) == 0);
  }
  uint8_t out[EPB_MAX_ENCODED];
  CHECK(epb_encode(nullptr, out, sizeof out) == 0);
}

TEST_CASE("the encoder needs exactly the frame's size and no more", "[epb]") {
  for (const Sample &s : samples()) {
    INFO(s.name);
    const std::size_t need = encode(s.msg).size();
    uint8_t out[EPB_MAX_ENCODED + 8];
    for (std::size_t cap = 0; cap < need; cap++) {
      std::memset(out, 0xAA, sizeof out);
      CHECK(epb_encode(&s.msg, out, cap) == 0);
      for (std::size_t i = cap; i < sizeof out; i++) REQUIRE(out[i] == 0xAA);
    }
    CHECK(epb_encode(&s.msg, out, need) == need);
  }
  // The largest message there is fits EPB_MAX_ENCODED.
  epb_message big = hello(std::string(EPB_UNIT_ID_MAX, 'u'), std::string(EPB_CONTAINER_ID_MAX, 'c'),
                          std::string(EPB_FIRMWARE_MAX, 'f'), EPB_SEQ_MAX);
  CHECK(encode(big).size() <= EPB_MAX_ENCODED);
}

TEST_CASE("status and nack reason names", "[epb]") {
  for (int s = 0; s < EPB_STATUS_COUNT; s++) {
    const char *n = epb_status_name(static_cast<epb_status>(s));
    REQUIRE(n != nullptr);
    CHECK(std::string(n) != "unknown status");
  }
  CHECK(std::string(epb_status_name(EPB_ERR_CRC)) == "bad crc");
  CHECK(std::string(epb_status_name(static_cast<epb_status>(15))) == "unknown status");
  for (uint8_t r = EPB_NACK_MALFORMED; r <= EPB_NACK_REASON_MAX; r++)
    CHECK(std::string(epb_nack_reason_name(r)) != "unknown reason");
  CHECK(std::string(epb_nack_reason_name(0)) == "unknown reason");
  CHECK(std::string(epb_nack_reason_name(200)) == "unknown reason");
}

TEST_CASE("seqs at the ends of their range encode; one past does not", "[epb]") {
  for (uint64_t seq : {uint64_t{1}, uint64_t{EPB_SEQ_MAX}}) {
    INFO(seq);
    CHECK(!encode(door(seq, 1, 1)).empty());
    CHECK(!encode(ack(seq)).empty());
    CHECK(!encode(discard(seq, seq, EPB_DISCARD_UNIT_RESET)).empty());
    CHECK(!encode(hello("u", "", "", seq, 1)).empty());
  }
  CHECK(encode(door(EPB_SEQ_MAX + 1, 1, 1)).empty());
  CHECK(encode(ack(0)).size() > 0);  // ACK 0: nothing acknowledged yet
}

TEST_CASE("a unit of an older version gets a refusal framed in its own version", "[epb]") {
  uint8_t out[EPB_MAX_ENCODED];
  std::size_t n = epb_encode_version_refusal(1, out, sizeof out);
  REQUIRE(n > 0);
  // Decode it as a v1 unit would: the body's version byte is 1 and the rest
  // is a NACK (seq 0, MALFORMED) with a correct CRC.
  Bytes frame(out, out + n);
  Bytes body = cobs_decode(Bytes(frame.begin(), frame.end() - 1));
  REQUIRE(body.size() == 2 + 9 + 4);
  CHECK(body[0] == 1);
  CHECK(body[1] == EPB_MSG_NACK);
  for (int i = 2; i < 10; i++) CHECK(body[static_cast<std::size_t>(i)] == 0);
  CHECK(body[10] == EPB_NACK_MALFORMED);
  uint32_t crc = epb_crc32c(body.data(), body.size() - 4);
  CHECK(body[11] == static_cast<uint8_t>(crc));
  CHECK(body[14] == static_cast<uint8_t>(crc >> 24));
  // This version's decoder refuses it as another version and remembers which.
  epb_decoder d;
  epb_decoder_init(&d);
  auto outs = run_stream(d, frame, [] { return SIZE_MAX; });
  REQUIRE(outs.size() == 1);
  CHECK(outs[0].status == EPB_ERR_VERSION);
  CHECK(outs[0].msg.type == EPB_MSG_NACK);
  CHECK(d.last_version == 1);
  CHECK(epb_encode_version_refusal(0, out, sizeof out) == 0);
  CHECK(epb_encode_version_refusal(EPB_PROTOCOL_VERSION, out, sizeof out) == 0);
  CHECK(epb_encode_version_refusal(1, out, 4) == 0);
}
