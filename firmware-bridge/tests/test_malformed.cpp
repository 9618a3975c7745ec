// Every class of malformed frame, one table row each: the frame is rejected
// with the right status, counted exactly once, and the good frame after it
// still decodes (the stream resynchronises at the next 0x00).
#include <catch2/catch.hpp>

#include "epb_test_support.hpp"

using namespace epbt;

namespace {

Bytes frame_of(const Bytes &body_bytes) {
  Bytes f = cobs_encode(body_bytes);
  f.push_back(0);
  return f;
}

Bytes msg(uint8_t type, const P &p) { return frame_of(body(EPB_PROTOCOL_VERSION, type, p.b)); }

// Readings: seq, time, kind, then the kind's fields.
P rd(uint8_t kind) { return P().u64(7).u64(1718000000000ull).u8(kind); }
P pos(uint8_t fix, uint8_t present) {
  return rd(0).u32(519225000).u32(44791700).u8(fix).u8(9).u8(present);
}
P hello_p(const std::string &unit) { return P().str(unit).str("").str("1.0"); }

Bytes flip(Bytes b, std::size_t i) {
  b[i] ^= 0x01;
  return b;
}

Bytes raw(std::initializer_list<uint8_t> l) { return Bytes(l); }

Bytes repeat(uint8_t v, std::size_t n, bool delimit = true) {
  Bytes b(n, v);
  if (delimit) b.push_back(0);
  return b;
}

}  // namespace

TEST_CASE("malformed frames are rejected, counted once, and the stream resyncs", "[epb]") {
  const Bytes good_ack_body = body(EPB_PROTOCOL_VERSION, EPB_MSG_ACK, P().u64(41).b);
  const Bytes good_hello = encode(hello("TU-12345678", "", "", 1));
  const Bytes long_body_129 = body(EPB_PROTOCOL_VERSION, EPB_MSG_PING, Bytes(129 - 6, 0x11));
  const Bytes long_body_128 = body(EPB_PROTOCOL_VERSION, EPB_MSG_PING, Bytes(128 - 6, 0x11));

  struct Row {
    const char *what;
    Bytes bad;
    epb_status want;
  };
  auto rows = GENERATE_COPY(values<Row>({
      // framing
      {"crc byte flipped", frame_of(flip(good_ack_body, good_ack_body.size() - 1)), EPB_ERR_CRC},
      {"payload byte flipped", frame_of(flip(good_ack_body, 3)), EPB_ERR_CRC},
      {"version byte flipped", frame_of(flip(good_ack_body, 0)), EPB_ERR_CRC},
      {"type byte flipped", frame_of(flip(good_ack_body, 1)), EPB_ERR_CRC},
      {"crc of an empty payload", frame_of(body(EPB_PROTOCOL_VERSION, EPB_MSG_ACK, {})), EPB_ERR_PAYLOAD},
      {"empty body (lone code byte)", raw({0x01, 0x00}), EPB_ERR_TRUNCATED},
      {"1-byte body", raw({0x02, 0x01, 0x00}), EPB_ERR_TRUNCATED},
      {"5-byte body", frame_of(Bytes{EPB_PROTOCOL_VERSION, 8, 0xAA, 0xBB, 0xCC}), EPB_ERR_TRUNCATED},
      {"oversized: 130 non-zero bytes", repeat(0x55, 130), EPB_ERR_OVERSIZE},
      {"oversized: 1000 non-zero bytes", repeat(0x55, 1000), EPB_ERR_OVERSIZE},
      {"oversized: 129-byte body", frame_of(long_body_129), EPB_ERR_OVERSIZE},
      {"128-byte body is not oversized, but trails", frame_of(long_body_128), EPB_ERR_PAYLOAD},
      {"cobs code past the end", raw({0x05, 0x11, 0x22, 0x00}), EPB_ERR_COBS},
      {"cobs last code past the end", raw({0x02, 0x11, 0x09, 0x33, 0x00}), EPB_ERR_COBS},
      {"version 0", frame_of(body(0, EPB_MSG_ACK, P().u64(1).b)), EPB_ERR_VERSION},
      {"version 1 (an older unit)", frame_of(body(1, EPB_MSG_ACK, P().u64(1).b)), EPB_ERR_VERSION},
      {"version 3", frame_of(body(3, EPB_MSG_ACK, P().u64(1).b)), EPB_ERR_VERSION},
      {"version 255", frame_of(body(255, EPB_MSG_ACK, P().u64(1).b)), EPB_ERR_VERSION},
      {"type 0", msg(0, P().u64(1)), EPB_ERR_TYPE},
      {"type 17", msg(17, P().u64(1)), EPB_ERR_TYPE},
      {"evidence without data", msg(15, P().u64(1).u16(10).u16(0)), EPB_ERR_PAYLOAD},
      {"evidence ack of 9 bytes", msg(16, P().u64(1).u8(0)), EPB_ERR_PAYLOAD},
      {"challenge 15 bytes", msg(12, P().u64(1).u32(2).u16(3).u8(4)), EPB_ERR_PAYLOAD},
      {"challenge 17 bytes", msg(12, P().u64(1).u64(2).u8(4)), EPB_ERR_PAYLOAD},
      {"auth 31 bytes", msg(13, P().u64(1).u64(2).u64(3).u32(4).u16(5).u8(6)), EPB_ERR_PAYLOAD},
      {"sealed ack without a session", msg(0x84, P().u64(1).u32(1).u64(0)), EPB_ERR_AUTH},
      {"type 127", msg(127, P()), EPB_ERR_TYPE},
      {"type 255 (sealed bit, no session)", msg(255, P()), EPB_ERR_AUTH},
      // HELLO
      {"hello unit id 33 bytes", msg(1, P().str(std::string(33, 'u')).str("").str("").u64(1).u64(1)), EPB_ERR_PAYLOAD},
      {"hello unit id empty", msg(1, hello_p("").u64(1).u64(1)), EPB_ERR_PAYLOAD},
      {"hello unit id 0x1F", msg(1, hello_p("a\x1f").u64(1).u64(1)), EPB_ERR_PAYLOAD},
      {"hello unit id 0x7F", msg(1, hello_p("a\x7f").u64(1).u64(1)), EPB_ERR_PAYLOAD},
      {"hello unit id 0x80", msg(1, hello_p("a\x80").u64(1).u64(1)), EPB_ERR_PAYLOAD},
      {"hello unit id NUL", msg(1, P().u8(2).u8('a').u8(0).str("").str("").u64(1).u64(1)), EPB_ERR_PAYLOAD},
      {"hello container id 12 bytes", msg(1, P().str("u").str("ABCU12345678").str("").u64(1).u64(1)), EPB_ERR_PAYLOAD},
      {"hello firmware 17 bytes", msg(1, P().str("u").str("").str(std::string(17, 'f')).u64(1).u64(1)), EPB_ERR_PAYLOAD},
      {"hello next_seq 0", msg(1, hello_p("u").u64(0).u64(0)), EPB_ERR_PAYLOAD},
      {"hello oldest_seq 0", msg(1, hello_p("u").u64(5).u64(0)), EPB_ERR_PAYLOAD},
      {"hello oldest_seq above next_seq", msg(1, hello_p("u").u64(5).u64(6)), EPB_ERR_PAYLOAD},
      {"hello next_seq 2^53", msg(1, hello_p("u").u64(EPB_SEQ_MAX + 1).u64(1)), EPB_ERR_PAYLOAD},
      {"hello v1 layout (no oldest_seq)", msg(1, hello_p("u").u64(1)), EPB_ERR_PAYLOAD},
      {"hello string runs past the end", msg(1, P().u8(20).u8('u')), EPB_ERR_PAYLOAD},
      {"hello missing an oldest_seq byte", msg(1, P(hello_p("u")).u64(1).u32(1).u16(0).u8(0)), EPB_ERR_PAYLOAD},
      {"hello trailing byte", msg(1, hello_p("u").u64(1).u64(1).u8(0)), EPB_ERR_PAYLOAD},
      // WELCOME
      {"welcome window 0", msg(2, P().u64(5).u16(0).u64(1)), EPB_ERR_PAYLOAD},
      {"welcome short", msg(2, P().u64(5).u16(8).u32(1)), EPB_ERR_PAYLOAD},
      {"welcome trailing byte", msg(2, P().u64(5).u16(8).u64(1).u8(1)), EPB_ERR_PAYLOAD},
      // READING
      {"reading seq 0", msg(3, P().u64(0).u64(1).u8(2).u8(1)), EPB_ERR_PAYLOAD},
      {"reading seq 2^53", msg(3, P().u64(EPB_SEQ_MAX + 1).u64(1).u8(2).u8(1)), EPB_ERR_PAYLOAD},
      {"reading seq 2^64-1", msg(3, P().u64(UINT64_MAX).u64(1).u8(2).u8(1)), EPB_ERR_PAYLOAD},
      {"reading kind 4", msg(3, rd(4).u8(0)), EPB_ERR_PAYLOAD},
      {"reading kind 255", msg(3, rd(255)), EPB_ERR_PAYLOAD},
      {"reading without kind", msg(3, P().u64(7).u64(1)), EPB_ERR_PAYLOAD},
      {"position fix 9", msg(3, pos(9, 0)), EPB_ERR_PAYLOAD},
      {"position heading 36000", msg(3, pos(1, EPB_POS_HEADING).u16(36000)), EPB_ERR_PAYLOAD},
      {"position latitude 90.0000001", msg(3, rd(0).u32(900000001).u32(0).u8(1).u8(0).u8(0)), EPB_ERR_PAYLOAD},
      {"position longitude -180.0000001", msg(3, rd(0).u32(0).u32(static_cast<uint32_t>(-1800000001)).u8(1).u8(0).u8(0)), EPB_ERR_PAYLOAD},
      {"position unknown bit 0x08", msg(3, pos(1, 0x08).u16(0)), EPB_ERR_PAYLOAD},
      {"position unknown bit 0x80", msg(3, pos(1, 0x80)), EPB_ERR_PAYLOAD},
      {"position present field missing", msg(3, pos(1, EPB_POS_SPEED | EPB_POS_HDOP).u16(5)), EPB_ERR_PAYLOAD},
      {"position trailing byte", msg(3, pos(1, 0).u8(0)), EPB_ERR_PAYLOAD},
      {"seal state 4", msg(3, rd(1).u8(4).str("S")), EPB_ERR_PAYLOAD},
      {"seal id 33 bytes", msg(3, rd(1).u8(1).str(std::string(33, 'S'))), EPB_ERR_PAYLOAD},
      {"seal id not printable", msg(3, rd(1).u8(1).str("S\x01")), EPB_ERR_PAYLOAD},
      {"seal id runs past the end", msg(3, rd(1).u8(1).u8(5).u8('S')), EPB_ERR_PAYLOAD},
      {"seal trailing byte", msg(3, rd(1).u8(1).str("S").u8('x')), EPB_ERR_PAYLOAD},
      {"door state 3", msg(3, rd(2).u8(3)), EPB_ERR_PAYLOAD},
      {"door without state", msg(3, rd(2)), EPB_ERR_PAYLOAD},
      {"door trailing byte", msg(3, rd(2).u8(1).u8(0)), EPB_ERR_PAYLOAD},
      {"sensor humidity 10001", msg(3, rd(3).u8(EPB_SENSOR_HUMIDITY).u16(10001)), EPB_ERR_PAYLOAD},
      {"sensor battery 101 %", msg(3, rd(3).u8(EPB_SENSOR_BATTERY_PCT).u8(101)), EPB_ERR_PAYLOAD},
      {"sensor unknown bit 0x40", msg(3, rd(3).u8(0x40).u16(0)), EPB_ERR_PAYLOAD},
      {"sensor unknown bit 0x80", msg(3, rd(3).u8(0x81).u16(0)), EPB_ERR_PAYLOAD},
      {"sensor present field missing", msg(3, rd(3).u8(EPB_SENSOR_TEMPERATURE | EPB_SENSOR_SHOCK).u16(1)), EPB_ERR_PAYLOAD},
      {"sensor absent field sent", msg(3, rd(3).u8(EPB_SENSOR_TEMPERATURE).u16(1).u16(2)), EPB_ERR_PAYLOAD},
      // ACK, NACK, TIME_SYNC, SETTINGS, PING, PONG
      {"ack short", msg(4, P().u32(1).u16(0).u8(0)), EPB_ERR_PAYLOAD},
      {"ack trailing byte", msg(4, P().u64(1).u8(0)), EPB_ERR_PAYLOAD},
      {"nack reason 0", msg(5, P().u64(1).u8(0)), EPB_ERR_PAYLOAD},
      {"nack reason 11", msg(5, P().u64(1).u8(11)), EPB_ERR_PAYLOAD},
      {"nack seq 2^53", msg(5, P().u64(EPB_SEQ_MAX + 1).u8(4)), EPB_ERR_PAYLOAD},
      {"ack seq 2^53", msg(4, P().u64(EPB_SEQ_MAX + 1)), EPB_ERR_PAYLOAD},
      {"welcome last_stored_seq 2^53", msg(2, P().u64(EPB_SEQ_MAX + 1).u16(8).u64(1)), EPB_ERR_PAYLOAD},
      // DISCARD, SETTINGS_ACK
      {"discard first 0", msg(10, P().u64(0).u64(5).u8(1)), EPB_ERR_PAYLOAD},
      {"discard first above last", msg(10, P().u64(6).u64(5).u8(1)), EPB_ERR_PAYLOAD},
      {"discard last 2^53", msg(10, P().u64(1).u64(EPB_SEQ_MAX + 1).u8(1)), EPB_ERR_PAYLOAD},
      {"discard reason 0", msg(10, P().u64(1).u64(5).u8(0)), EPB_ERR_PAYLOAD},
      {"discard reason 4", msg(10, P().u64(1).u64(5).u8(4)), EPB_ERR_PAYLOAD},
      {"discard without reason", msg(10, P().u64(1).u64(5)), EPB_ERR_PAYLOAD},
      {"discard trailing byte", msg(10, P().u64(1).u64(5).u8(1).u8(0)), EPB_ERR_PAYLOAD},
      {"settings ack short", msg(11, P().u32(60)), EPB_ERR_PAYLOAD},
      {"settings ack trailing byte", msg(11, P().u32(60).u32(60).u8(0)), EPB_ERR_PAYLOAD},
      {"nack without reason", msg(5, P().u64(1)), EPB_ERR_PAYLOAD},
      {"time sync short", msg(6, P().u32(1)), EPB_ERR_PAYLOAD},
      {"time sync trailing byte", msg(6, P().u64(1).u8(1)), EPB_ERR_PAYLOAD},
      {"settings short", msg(7, P().u32(60)), EPB_ERR_PAYLOAD},
      {"settings trailing byte", msg(7, P().u32(60).u32(60).u8(0)), EPB_ERR_PAYLOAD},
      {"settings extension short", msg(7, P().u32(60).u32(60).u8(1).u16(5).u16(0)), EPB_ERR_PAYLOAD},
      {"settings extension trailing byte", msg(7, P().u32(60).u32(60).u8(1).u16(5).u32(0).u8(0)), EPB_ERR_PAYLOAD},
      {"settings extension unknown bit", msg(7, P().u32(60).u32(60).u8(4).u16(0).u32(0)), EPB_ERR_PAYLOAD},
      {"settings temperature deadband 2001", msg(7, P().u32(60).u32(60).u8(1).u16(2001).u32(0)), EPB_ERR_PAYLOAD},
      {"settings position deadband 100001", msg(7, P().u32(60).u32(60).u8(2).u16(0).u32(100001)), EPB_ERR_PAYLOAD},
      {"settings absent deadband not 0", msg(7, P().u32(60).u32(60).u8(1).u16(5).u32(25)), EPB_ERR_PAYLOAD},
      {"settings ack extension short", msg(11, P().u32(60).u32(60).u8(0)), EPB_ERR_PAYLOAD},
      {"features short", msg(14, P().u16(1)), EPB_ERR_PAYLOAD},
      {"features trailing byte", msg(14, P().u32(1).u8(0)), EPB_ERR_PAYLOAD},
      {"ping empty", msg(8, P()), EPB_ERR_PAYLOAD},
      {"ping trailing byte", msg(8, P().u32(1).u8(0)), EPB_ERR_PAYLOAD},
      {"pong short", msg(9, P().u16(1)), EPB_ERR_PAYLOAD},
      // garbage between frames, closed by a 0x00
      {"ascii garbage", Bytes{'n', 'o', 'i', 's', 'e', 0}, EPB_ERR_COBS},
      {"garbage that cobs-decodes", Bytes{0x03, 0x10, 0x20, 0x02, 0x30, 0x04, 1, 2, 3, 0}, EPB_ERR_CRC},
      {"tail of a frame cut inside a group", Bytes(good_hello.begin() + 4, good_hello.end()), EPB_ERR_COBS},
  }));

  INFO(rows.what);
  const Bytes a = encode(hello("TU-1", "", "", 1));
  const Bytes b = encode(ack(7));
  Bytes stream = a;
  stream.insert(stream.end(), rows.bad.begin(), rows.bad.end());
  stream.insert(stream.end(), b.begin(), b.end());

  for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, SIZE_MAX}) {
    INFO("chunk " << chunk);
    epb_decoder d;
    epb_decoder_init(&d);
    std::vector<Outcome> outs = run_stream(d, stream, [chunk] { return chunk; });
    REQUIRE(outs.size() == 3);
    CHECK(outs[0].status == EPB_OK);
    CHECK(outs[1].status == rows.want);
    CHECK(outs[2].status == EPB_OK);
    CHECK(diff(outs[2].msg, ack(7)) == "");
    for (int s = 0; s < EPB_STATUS_COUNT; s++) {
      if (s == EPB_NEED_MORE) continue;
      unsigned want = s == EPB_OK ? 2u : (s == rows.want ? 1u : 0u);
      INFO("count of " << epb_status_name(static_cast<epb_status>(s)));
      CHECK(d.counts[s] == want);
    }
  }

  // The body alone, where there is one, gets the same verdict.
  if (rows.want >= EPB_ERR_TRUNCATED && rows.bad.size() > 1) {
    Bytes bytes = cobs_decode(Bytes(rows.bad.begin(), rows.bad.end() - 1));
    epb_message m;
    CHECK(epb_decode_body(bytes.data(), bytes.size(), &m) == rows.want);
  }
}

TEST_CASE("a bad payload still reports its type and the reading's seq", "[epb]") {
  Bytes bad = body(EPB_PROTOCOL_VERSION, EPB_MSG_READING, rd(2).u8(3).b);  // door state 3, seq 7
  epb_message m;
  REQUIRE(epb_decode_body(bad.data(), bad.size(), &m) == EPB_ERR_PAYLOAD);
  CHECK(m.type == EPB_MSG_READING);
  CHECK(m.m.reading.seq == 7);
  Bytes unknown = body(EPB_PROTOCOL_VERSION, 42, {});
  REQUIRE(epb_decode_body(unknown.data(), unknown.size(), &m) == EPB_ERR_TYPE);
  CHECK(m.type == 42);
}

TEST_CASE("epb_decode_body checks length first", "[epb]") {
  Bytes big(EPB_MAX_BODY + 1, 0x01);
  epb_message m;
  CHECK(epb_decode_body(big.data(), big.size(), &m) == EPB_ERR_OVERSIZE);
  CHECK(epb_decode_body(nullptr, 0, &m) == EPB_ERR_TRUNCATED);
  Bytes five{1, 8, 0, 0, 0};
  CHECK(epb_decode_body(five.data(), five.size(), &m) == EPB_ERR_TRUNCATED);
}
