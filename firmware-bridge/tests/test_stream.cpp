// The incremental decoder on whole streams: byte-by-byte, random chunk sizes
// and one big buffer all yield the same outcomes; resync after garbage and
// oversized frames; empty frames are skipped; feed's return value is exact.
#include <catch2/catch.hpp>

#include "epb_test_support.hpp"

using namespace epbt;

namespace {

void append(Bytes &to, const Bytes &b) { to.insert(to.end(), b.begin(), b.end()); }

// A long stream of random valid frames mixed with every kind of noise.
Bytes noisy_stream(Gen &g, std::vector<epb_message> &sent) {
  Bytes s;
  for (int i = 0; i < 400; i++) {
    switch (g.u(0, 9)) {
      case 0:
        s.push_back(0);  // resync 0x00 / empty frame
        break;
      case 1: {          // garbage closed by a 0x00
        for (uint64_t n = g.u(1, 40); n > 0; n--) s.push_back(static_cast<uint8_t>(g.u(1, 255)));
        s.push_back(0);
        break;
      }
      case 2:            // oversized run
        for (uint64_t n = g.u(EPB_MAX_ENCODED, 400); n > 0; n--)
          s.push_back(static_cast<uint8_t>(g.u(1, 255)));
        s.push_back(0);
        break;
      default: {
        epb_message m = g.message();
        append(s, encode(m));
        sent.push_back(m);
      }
    }
  }
  return s;
}

}  // namespace

TEST_CASE("byte-by-byte, random chunks and one buffer give the same outcomes", "[epb]") {
  for (uint32_t seed : {1u, 2u, 3u, 99u}) {
    INFO("seed " << seed);
    Gen g(seed);
    std::vector<epb_message> sent;
    const Bytes stream = noisy_stream(g, sent);

    epb_decoder whole_d;
    epb_decoder_init(&whole_d);
    const std::vector<Outcome> whole = run_stream(whole_d, stream, [] { return SIZE_MAX; });

    // Every valid frame arrives, in order, intact.
    std::vector<epb_message> got;
    for (const Outcome &o : whole)
      if (o.status == EPB_OK) got.push_back(o.msg);
    REQUIRE(got.size() == sent.size());
    for (std::size_t i = 0; i < sent.size(); i++) REQUIRE(diff(sent[i], got[i]) == "");

    auto same = [&](const std::vector<Outcome> &other, const epb_decoder &d) {
      REQUIRE(other.size() == whole.size());
      for (std::size_t i = 0; i < whole.size(); i++) {
        REQUIRE(other[i].status == whole[i].status);
        if (whole[i].status == EPB_OK) REQUIRE(diff(other[i].msg, whole[i].msg) == "");
      }
      for (int s = 0; s < EPB_STATUS_COUNT; s++)
        if (s != EPB_NEED_MORE) REQUIRE(d.counts[s] == whole_d.counts[s]);
    };

    epb_decoder byte_d;
    epb_decoder_init(&byte_d);
    same(run_stream(byte_d, stream, [] { return std::size_t{1}; }), byte_d);

    for (int round = 0; round < 5; round++) {
      epb_decoder chunk_d;
      epb_decoder_init(&chunk_d);
      same(run_stream(chunk_d, stream, [&g] { return static_cast<std::size_t>(g.u(1, 300)); }),
           chunk_d);
    }
    // Noise really was there and was counted.
    CHECK(whole_d.counts[EPB_ERR_OVERSIZE] > 0);
    CHECK(whole_d.counts[EPB_OK] == sent.size());
  }
}

TEST_CASE("feed stops right after each frame's delimiter", "[epb]") {
  Bytes a = encode(ack(1)), b = encode(ping(EPB_MSG_PING, 2));
  Bytes s = a;
  append(s, b);
  epb_decoder d;
  epb_decoder_init(&d);
  epb_message m;
  epb_status st;
  CHECK(epb_decoder_feed(&d, s.data(), s.size(), &m, &st) == a.size());
  CHECK(st == EPB_OK);
  CHECK(epb_decoder_feed(&d, s.data() + a.size(), b.size(), &m, &st) == b.size());
  CHECK(st == EPB_OK);
  CHECK(m.type == EPB_MSG_PING);
  CHECK(epb_decoder_feed(&d, s.data(), 0, &m, &st) == 0);
  CHECK(st == EPB_NEED_MORE);
}

TEST_CASE("a frame split across feeds decodes once complete", "[epb]") {
  Bytes f = encode(hello("TU-0042", "MSCU1234566", "1.4.2", 1001));
  epb_decoder d;
  epb_decoder_init(&d);
  epb_message m;
  epb_status st;
  CHECK(epb_decoder_feed(&d, f.data(), f.size() - 1, &m, &st) == f.size() - 1);
  CHECK(st == EPB_NEED_MORE);
  CHECK(d.counts[EPB_NEED_MORE] == 1);
  CHECK(epb_decoder_feed(&d, f.data() + f.size() - 1, 1, &m, &st) == 1);
  CHECK(st == EPB_OK);
  CHECK(std::string(m.m.hello.unit_id) == "TU-0042");
}

TEST_CASE("empty frames and leading 0x00s are skipped silently", "[epb]") {
  Bytes s{0, 0, 0};
  append(s, encode(ack(3)));
  s.push_back(0);
  s.push_back(0);
  epb_decoder d;
  epb_decoder_init(&d);
  std::vector<Outcome> outs = run_stream(d, s, [] { return SIZE_MAX; });
  REQUIRE(outs.size() == 1);
  CHECK(outs[0].status == EPB_OK);
  for (int st = EPB_ERR_OVERSIZE; st < EPB_STATUS_COUNT; st++) CHECK(d.counts[st] == 0);
}

TEST_CASE("an oversized frame is reported once, at once, and dropped to its 0x00", "[epb]") {
  epb_decoder d;
  epb_decoder_init(&d);
  Bytes junk(5000, 0x42);
  epb_message m;
  epb_status st;
  // Reported on the byte that overflows, before any delimiter arrives.
  std::size_t used = epb_decoder_feed(&d, junk.data(), junk.size(), &m, &st);
  CHECK(st == EPB_ERR_OVERSIZE);
  CHECK(used == EPB_MAX_ENCODED);
  CHECK(epb_decoder_feed(&d, junk.data(), junk.size(), &m, &st) == junk.size());
  CHECK(st == EPB_NEED_MORE);
  CHECK(d.counts[EPB_ERR_OVERSIZE] == 1);
  // A frame that starts before the 0x00 belongs to the dropped one...
  Bytes tail = encode(ack(8));
  CHECK(epb_decoder_feed(&d, tail.data(), tail.size(), &m, &st) == tail.size());
  CHECK(st == EPB_NEED_MORE);
  // ...and the next one decodes.
  CHECK(epb_decoder_feed(&d, tail.data(), tail.size(), &m, &st) == tail.size());
  CHECK(st == EPB_OK);
  CHECK(m.m.ack.seq == 8);
  CHECK(d.counts[EPB_ERR_OVERSIZE] == 1);
}

TEST_CASE("the largest legal frame is accepted at the size boundary", "[epb]") {
  // 129 COBS bytes + 0x00 = EPB_MAX_ENCODED: a 128-byte body. It fails only
  // on its content (trailing bytes), proving the size limit let it through.
  Bytes body{EPB_PROTOCOL_VERSION, EPB_MSG_PING};
  body.resize(EPB_MAX_BODY - 4, 0x33);
  uint32_t crc = epb_crc32c(body.data(), body.size());
  for (int i = 0; i < 4; i++) body.push_back(static_cast<uint8_t>(crc >> (8 * i)));
  Bytes f = cobs_encode(body);
  f.push_back(0);
  REQUIRE(f.size() == EPB_MAX_ENCODED);
  std::vector<Outcome> outs = run_stream(f);
  REQUIRE(outs.size() == 1);
  CHECK(outs[0].status == EPB_ERR_PAYLOAD);
}

TEST_CASE("garbage glued to a frame costs that frame only", "[epb]") {
  Bytes s{'x', 'y', 'z'};
  append(s, encode(ack(1)));   // lost together with the garbage
  append(s, encode(ack(2)));   // decodes
  s.push_back('q');            // half-sent junk, then a sender's resync 0x00
  s.push_back(0);
  append(s, encode(ack(3)));
  std::vector<Outcome> outs = run_stream(s, 1);
  REQUIRE(outs.size() == 4);
  CHECK(outs[0].status != EPB_OK);
  CHECK(outs[1].status == EPB_OK);
  CHECK(outs[1].msg.m.ack.seq == 2);
  CHECK(outs[2].status != EPB_OK);
  CHECK(outs[3].status == EPB_OK);
  CHECK(outs[3].msg.m.ack.seq == 3);
}
