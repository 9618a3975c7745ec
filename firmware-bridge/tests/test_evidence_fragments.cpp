// EVIDENCE fragments (docs/firmware-bridge.md 6.7 and 7.15): a checkpoint of
// up to 336 bytes crosses the 128-byte frame limit in up to four CRC'd
// fragments, reassembled with bounded memory. Adversarial: corrupted,
// dropped, reordered, duplicated and interleaved fragments, a flood of
// random ones, and fragments that claim more than a checkpoint can hold.
#include <catch2/catch.hpp>

#include <random>

#include <epb/evidence.h>

#include "epb_test_support.hpp"

using namespace epbt;

namespace {

std::vector<uint8_t> pattern(uint64_t seq, std::size_t len) {
  std::vector<uint8_t> out(len);
  for (std::size_t i = 0; i < len; i++) out[i] = static_cast<uint8_t>(seq * 31u + i * 7u + len);
  return out;
}

// Decodes one complete frame (with its trailing 0x00).
epb_status decode_frame(const Bytes &frame, epb_message &out) {
  Bytes body = cobs_decode(Bytes(frame.begin(), frame.end() - 1));
  return epb_decode_body(body.data(), body.size(), &out);
}

epb_message evidence_raw(uint64_t seq, uint16_t total, uint16_t offset, uint8_t len) {
  epb_message m = blank(EPB_MSG_EVIDENCE);
  m.m.evidence.seq = seq;
  m.m.evidence.total_len = total;
  m.m.evidence.offset = offset;
  m.m.evidence.len = len;
  for (uint8_t i = 0; i < len; i++) m.m.evidence.data[i] = static_cast<uint8_t>(i + 1);
  return m;
}

}  // namespace

TEST_CASE("a checkpoint splits into 96-byte fragments, the last one shorter", "[epb][evidence]") {
  CHECK(epb_evf_count(0) == 0);
  CHECK(epb_evf_count(1) == 1);
  CHECK(epb_evf_count(96) == 1);
  CHECK(epb_evf_count(97) == 2);
  CHECK(epb_evf_count(152) == 2);
  CHECK(epb_evf_count(336) == 4);
  CHECK(epb_evf_count(337) == 0);
  static_assert(EPB_EVF_TOTAL_MAX == EPB_EV_CHECKPOINT_MAX, "fragments carry any checkpoint");
  for (std::size_t total : {std::size_t{1}, std::size_t{95}, std::size_t{96}, std::size_t{97},
                            std::size_t{152}, std::size_t{192}, std::size_t{335}, std::size_t{336}}) {
    INFO("total " << total);
    auto ck = pattern(7, total);
    std::vector<uint8_t> back;
    for (unsigned i = 0; i < epb_evf_count(total); i++) {
      epb_message m = evidence(7, ck, i);
      REQUIRE(m.m.evidence.len > 0);
      CHECK(m.m.evidence.offset == i * EPB_EVF_DATA_MAX);
      Bytes frame = encode(m);
      REQUIRE(!frame.empty());
      CHECK(frame.size() <= EPB_MAX_ENCODED);
      epb_message got;
      REQUIRE(decode_frame(frame, got) == EPB_OK);
      CHECK(diff(m, got) == "");
      back.insert(back.end(), got.m.evidence.data, got.m.evidence.data + got.m.evidence.len);
      // The largest fragment fits a sealed frame too.
      epb_auth a = example_auth(true);
      CHECK(encode_sealed(m, a).size() <= EPB_MAX_ENCODED);
    }
    CHECK(back == ck);
    epb_message none;
    CHECK(epb_evf_fragment(7, ck.data(), total, epb_evf_count(total), &none) == 0);
  }
  epb_message m;
  auto ck = pattern(1, 10);
  CHECK(epb_evf_fragment(0, ck.data(), ck.size(), 0, &m) == 0);
  CHECK(epb_evf_fragment(EPB_SEQ_MAX + 1, ck.data(), ck.size(), 0, &m) == 0);
  CHECK(epb_evf_fragment(1, ck.data(), 0, 0, &m) == 0);
  CHECK(epb_evf_fragment(1, nullptr, 10, 0, &m) == 0);
}

TEST_CASE("EVIDENCE and EVIDENCE_ACK out of range are refused both ways", "[epb][evidence]") {
  struct Row {
    const char *what;
    epb_message msg;
  };
  const Row rows[] = {
      {"seq 0", evidence_raw(0, 10, 0, 10)},
      {"seq above EPB_SEQ_MAX", evidence_raw(EPB_SEQ_MAX + 1, 10, 0, 10)},
      {"total 0", evidence_raw(1, 0, 0, 0)},
      {"total 337 (over-long)", evidence_raw(1, 337, 0, 96)},
      {"total 65535", evidence_raw(1, 65535, 0, 96)},
      {"offset not a multiple of 96", evidence_raw(1, 200, 95, 96)},
      {"offset at the end", evidence_raw(1, 192, 192, 0)},
      {"offset beyond the end", evidence_raw(1, 100, 192, 4)},
      {"short fragment before the last", evidence_raw(1, 200, 0, 95)},
      {"last fragment one byte short", evidence_raw(1, 100, 96, 3)},
      {"last fragment one byte long", evidence_raw(1, 100, 96, 5)},
      {"single fragment, wrong length", evidence_raw(1, 10, 0, 9)},
      {"no data", evidence_raw(1, 10, 0, 0)},
      {"ack seq 0", evidence_ack(0)},
      {"ack seq above EPB_SEQ_MAX", evidence_ack(EPB_SEQ_MAX + 1)},
  };
  for (const Row &r : rows) {
    INFO(r.what);
    uint8_t out[EPB_MAX_ENCODED];
    CHECK(epb_encode(&r.msg, out, sizeof out) == 0);
    // The same content framed by hand: refused as EPB_ERR_PAYLOAD.
    P p;
    if (r.msg.type == EPB_MSG_EVIDENCE) {
      p.u64(r.msg.m.evidence.seq).u16(r.msg.m.evidence.total_len).u16(r.msg.m.evidence.offset);
      for (uint8_t i = 0; i < r.msg.m.evidence.len; i++) p.u8(r.msg.m.evidence.data[i]);
    } else {
      p.u64(r.msg.m.evidence_ack.seq);
    }
    Bytes b = body(EPB_PROTOCOL_VERSION, r.msg.type, p.b);
    epb_message got;
    CHECK(epb_decode_body(b.data(), b.size(), &got) == EPB_ERR_PAYLOAD);
    CHECK(got.type == r.msg.type);
  }
  // A fragment whose data would run past any legal fragment (97 bytes).
  P p;
  p.u64(1).u16(200).u16(0);
  for (int i = 0; i < 97; i++) p.u8(1);
  Bytes b = body(EPB_PROTOCOL_VERSION, EPB_MSG_EVIDENCE, p.b);
  epb_message got;
  CHECK(epb_decode_body(b.data(), b.size(), &got) == EPB_ERR_PAYLOAD);
  // The next type (17) is unknown.
  Bytes t17 = body(EPB_PROTOCOL_VERSION, 17, P().u32(1).b);
  CHECK(epb_decode_body(t17.data(), t17.size(), &got) == EPB_ERR_TYPE);
  // An ACK of 9 bytes or 7 bytes.
  Bytes a9 = body(EPB_PROTOCOL_VERSION, EPB_MSG_EVIDENCE_ACK, P().u64(1).u8(0).b);
  CHECK(epb_decode_body(a9.data(), a9.size(), &got) == EPB_ERR_PAYLOAD);
  Bytes a7 = body(EPB_PROTOCOL_VERSION, EPB_MSG_EVIDENCE_ACK, P().u32(1).u16(0).u8(0).b);
  CHECK(epb_decode_body(a7.data(), a7.size(), &got) == EPB_ERR_PAYLOAD);
}

TEST_CASE("reassembly: in order, duplicated, dropped, reordered, interleaved", "[epb][evidence]") {
  const auto ck = pattern(1003, 336);  // four fragments
  auto frag = [&](unsigned i) { return evidence(1003, ck, i).m.evidence; };
  epb_evf_reasm r;
  epb_evf_reset(&r);

  auto f0 = frag(0), f1 = frag(1), f2 = frag(2), f3 = frag(3);
  CHECK(epb_evf_feed(&r, &f0) == EPB_EVF_MORE);
  CHECK(epb_evf_feed(&r, &f1) == EPB_EVF_MORE);
  CHECK(epb_evf_feed(&r, &f1) == EPB_EVF_DUPLICATE);  // duplicated: ignored
  CHECK(epb_evf_feed(&r, &f0) == EPB_EVF_RESTARTED);  // offset 0 always starts afresh
  CHECK(epb_evf_feed(&r, &f1) == EPB_EVF_MORE);
  CHECK(epb_evf_feed(&r, &f2) == EPB_EVF_MORE);
  CHECK(epb_evf_feed(&r, &f3) == EPB_EVF_COMPLETE);
  CHECK(std::vector<uint8_t>(r.buf, r.buf + r.total_len) == ck);
  CHECK(r.seq == 1003);
  CHECK(epb_evf_feed(&r, &f3) == EPB_EVF_DUPLICATE);  // a resent tail after completion

  // Dropped: 0, 2 -> a gap, nothing completes until the whole is resent.
  epb_evf_reset(&r);
  CHECK(epb_evf_feed(&r, &f0) == EPB_EVF_MORE);
  CHECK(epb_evf_feed(&r, &f2) == EPB_EVF_GAP);
  CHECK(epb_evf_feed(&r, &f3) == EPB_EVF_GAP);
  CHECK(r.seq == 0);
  for (auto *f : {&f0, &f1, &f2}) CHECK(epb_evf_feed(&r, f) == EPB_EVF_MORE);
  CHECK(epb_evf_feed(&r, &f3) == EPB_EVF_COMPLETE);
  CHECK(std::vector<uint8_t>(r.buf, r.buf + r.total_len) == ck);

  // Reordered: 1 before 0, 3 before 2.
  epb_evf_reset(&r);
  CHECK(epb_evf_feed(&r, &f1) == EPB_EVF_GAP);
  CHECK(epb_evf_feed(&r, &f0) == EPB_EVF_MORE);
  CHECK(epb_evf_feed(&r, &f1) == EPB_EVF_MORE);
  CHECK(epb_evf_feed(&r, &f3) == EPB_EVF_GAP);
  CHECK(epb_evf_feed(&r, &f2) == EPB_EVF_GAP);

  // Interleaved with another checkpoint's fragments: never mixed.
  const auto other = pattern(2000, 336);
  auto g1 = evidence(2000, other, 1).m.evidence;
  epb_evf_reset(&r);
  CHECK(epb_evf_feed(&r, &f0) == EPB_EVF_MORE);
  CHECK(epb_evf_feed(&r, &g1) == EPB_EVF_GAP);
  CHECK(epb_evf_feed(&r, &f1) == EPB_EVF_GAP);
  // Same seq, another total: another checkpoint, not a continuation.
  const auto shorter = pattern(1003, 200);
  auto h1 = evidence(1003, shorter, 1).m.evidence;
  epb_evf_reset(&r);
  CHECK(epb_evf_feed(&r, &f0) == EPB_EVF_MORE);
  CHECK(epb_evf_feed(&r, &h1) == EPB_EVF_GAP);

  // A single-fragment checkpoint completes at once, also over a partial one.
  const auto small = pattern(5, 40);
  auto s0 = evidence(5, small, 0).m.evidence;
  epb_evf_reset(&r);
  CHECK(epb_evf_feed(&r, &f0) == EPB_EVF_MORE);
  CHECK(epb_evf_feed(&r, &s0) == EPB_EVF_COMPLETE);
  CHECK(std::vector<uint8_t>(r.buf, r.buf + r.total_len) == small);

  // Over-long or out-of-range fragments handed over without decoding are
  // refused and never copied (no write past buf).
  epb_evidence bad = f0;
  bad.total_len = 400;
  epb_evf_reset(&r);
  CHECK(epb_evf_feed(&r, &bad) == EPB_EVF_GAP);
  bad = f3;
  bad.offset = 384;  // would write past 336
  CHECK(epb_evf_feed(&r, &bad) == EPB_EVF_GAP);
  bad = f0;
  bad.len = 200;
  CHECK(epb_evf_feed(&r, &bad) == EPB_EVF_GAP);
}

TEST_CASE("corrupted fragment frames never reach reassembly, the resend completes", "[epb][evidence]") {
  const auto ck = example_checkpoint_1();
  Bytes stream;
  std::vector<Bytes> frames;
  for (unsigned i = 0; i < epb_evf_count(ck.size()); i++) frames.push_back(encode(evidence(1003, ck, i)));
  // Every single-byte corruption of fragment 1: the decoder drops it (CRC,
  // COBS or a split frame), so the checkpoint never completes with it.
  std::size_t completions = 0, wrong = 0;
  for (std::size_t at = 0; at + 1 < frames[1].size(); at++) {
    for (uint8_t flip : {uint8_t{0x01}, uint8_t{0x80}}) {
      Bytes bad = frames[1];
      bad[at] ^= flip;
      epb_decoder d;
      epb_decoder_init(&d);
      epb_evf_reasm r;
      epb_evf_reset(&r);
      Bytes all = frames[0];
      all.insert(all.end(), bad.begin(), bad.end());
      for (auto outs = run_stream(d, all, [] { return SIZE_MAX; }); const Outcome &o : outs) {
        if (o.status != EPB_OK || o.msg.type != EPB_MSG_EVIDENCE) continue;
        if (epb_evf_feed(&r, &o.msg.m.evidence) == EPB_EVF_COMPLETE) {
          completions++;
          if (std::vector<uint8_t>(r.buf, r.buf + r.total_len) != ck) wrong++;
        }
      }
    }
  }
  CHECK(completions == 0);
  CHECK(wrong == 0);
  // The unit resends the whole checkpoint: complete.
  epb_decoder d;
  epb_decoder_init(&d);
  epb_evf_reasm r;
  epb_evf_reset(&r);
  Bytes all;
  for (const Bytes &f : frames) all.insert(all.end(), f.begin(), f.end());
  bool done = false;
  for (auto outs = run_stream(d, all, [] { return SIZE_MAX; }); const Outcome &o : outs)
    if (o.status == EPB_OK) done = epb_evf_feed(&r, &o.msg.m.evidence) == EPB_EVF_COMPLETE;
  CHECK(done);
  CHECK(std::vector<uint8_t>(r.buf, r.buf + r.total_len) == ck);
}

TEST_CASE("a flood of random fragments: bounded memory, never a mixed checkpoint", "[epb][evidence]") {
  // Checkpoint content is a function of (seq, total), so any completion
  // must reproduce exactly that content.
  std::mt19937_64 rng(15);
  epb_evf_reasm r;
  epb_evf_reset(&r);
  std::size_t completes = 0;
  for (int i = 0; i < 200000; i++) {
    uint64_t seq = 1 + rng() % 4;
    std::size_t total = 1 + rng() % EPB_EVF_TOTAL_MAX;
    if (rng() % 2) total = 336;  // favour multi-fragment ones
    auto ck = pattern(seq, total);
    unsigned index = static_cast<unsigned>(rng() % epb_evf_count(total));
    epb_message m = evidence(seq, ck, index);
    epb_evf_status st = epb_evf_feed(&r, &m.m.evidence);
    REQUIRE(r.have <= r.total_len);
    REQUIRE(r.total_len <= EPB_EVF_TOTAL_MAX);
    if (st == EPB_EVF_COMPLETE) {
      completes++;
      REQUIRE(std::vector<uint8_t>(r.buf, r.buf + r.total_len) == pattern(r.seq, r.total_len));
    }
  }
  CHECK(completes > 0);
  CHECK(sizeof(epb_evf_reasm) <= 352);
}
