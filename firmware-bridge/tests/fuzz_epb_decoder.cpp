// libFuzzer target for eport::epb: feeds arbitrary bytes to the stream decoder
// (and to epb_decode_body directly, and to a decoder holding a session key),
// re-encodes every decoded message and checks it decodes to the same
// content; every sealable message is sealed, must open on the other side,
// and must not open once any byte of it changed. Any mismatch aborts.
#include <cstdio>
#include <cstdlib>

#include "epb_test_support.hpp"

namespace {

[[noreturn]] void fail(const char *what, const std::string &detail = "") {
  std::fprintf(stderr, "epb fuzz: %s %s\n", what, detail.c_str());
  std::abort();
}

void check_strings(const epb_message &m) {
  auto ok = [](const char *s, uint8_t len, uint8_t max) {
    if (len > max || s[len] != '\0') return false;
    for (uint8_t i = 0; i < len; i++)
      if (s[i] < 0x20 || s[i] > 0x7E) return false;
    return true;
  };
  if (m.type == EPB_MSG_HELLO) {
    const epb_hello &h = m.m.hello;
    if (!ok(h.unit_id, h.unit_id_len, EPB_UNIT_ID_MAX) ||
        !ok(h.container_id, h.container_id_len, EPB_CONTAINER_ID_MAX) ||
        !ok(h.firmware, h.firmware_len, EPB_FIRMWARE_MAX))
      fail("bad hello string");
  } else if (m.type == EPB_MSG_READING && m.m.reading.kind == EPB_READING_SEAL) {
    const epb_seal &s = m.m.reading.u.seal;
    if (!ok(s.seal_id, s.seal_id_len, EPB_SEAL_ID_MAX)) fail("bad seal id");
  }
}

// A decoded message must re-encode, and the frame must decode to it again.
void check_roundtrip(const epb_message &m) {
  check_strings(m);
  epbt::Bytes frame = epbt::encode(m);
  if (frame.empty()) fail("decoded message does not re-encode");
  if (frame.size() > EPB_MAX_ENCODED) fail("frame above EPB_MAX_ENCODED");
  epb_decoder d;
  epb_decoder_init(&d);
  epb_message again;
  epb_status st;
  std::size_t used = epb_decoder_feed(&d, frame.data(), frame.size(), &again, &st);
  if (st != EPB_OK || used != frame.size()) fail("re-encoded frame rejected", epb_status_name(st));
  std::string diff = epbt::diff(m, again);
  if (!diff.empty()) fail("round trip differs:", diff);
}

// Sealed by the example unit session, the message opens at the agent side
// with the same content; one changed byte (chosen by `salt`) makes it fail.
void check_sealed(const epb_message &m, uint8_t salt) {
  if (m.type == EPB_MSG_HELLO || m.type == EPB_MSG_CHALLENGE || m.type == EPB_MSG_AUTH) return;
  epb_auth unit = epbt::example_auth(true), agent = epbt::example_auth(false);
  epbt::Bytes frame = epbt::encode_sealed(m, unit);
  if (frame.empty()) fail("a valid message does not seal");
  epbt::Bytes body = epbt::cobs_decode(epbt::Bytes(frame.begin(), frame.end() - 1));
  epb_message opened;
  if (epb_decode_body_auth(body.data(), body.size(), &opened, &agent) != EPB_OK || !opened.sealed)
    fail("sealed frame does not open");
  std::string diff = epbt::diff(m, opened);
  if (!diff.empty()) fail("sealed round trip differs:", diff);
  epb_auth fresh = epbt::example_auth(false);
  std::size_t at = 1 + salt % (body.size() - 5);  // type .. tag, not the version or crc
  body[at] ^= static_cast<uint8_t>(1u << (salt % 8));
  uint32_t crc = epb_crc32c(body.data(), body.size() - 4);
  for (int i = 0; i < 4; i++) body[body.size() - 4 + i] = static_cast<uint8_t>(crc >> (8 * i));
  if (epb_decode_body_auth(body.data(), body.size(), &opened, &fresh) == EPB_OK && opened.sealed)
    fail("an altered sealed frame opened");
}

// A body that decodes must re-encode to exactly the same bytes (the encoding
// is canonical), and its frame must pass the stream decoder too.
void check_body(const epbt::Bytes &body) {
  epb_message m;
  if (epb_decode_body(body.data(), body.size(), &m) != EPB_OK) return;
  check_roundtrip(m);
  epbt::Bytes frame = epbt::encode(m);
  frame.pop_back();
  if (epbt::cobs_decode(frame) != body) fail("re-encoded body differs from the input body");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, std::size_t size) {
  epb_decoder d;
  epb_decoder_init(&d);
  std::size_t pos = 0, frames = 0;
  for (;;) {
    epb_message m;
    epb_status st;
    std::size_t used = epb_decoder_feed(&d, data + pos, size - pos, &m, &st);
    if (used > size - pos) fail("feed consumed more than it was given");
    pos += used;
    if (st == EPB_NEED_MORE) {
      if (pos != size) fail("NEED_MORE before the end of input");
      break;
    }
    if (used == 0) fail("frame finished without consuming a byte");
    frames++;
    if (st == EPB_OK) {
      check_roundtrip(m);
      check_sealed(m, static_cast<uint8_t>(size + frames));
    }
  }
  std::size_t counted = 0;
  for (int s = 0; s < EPB_STATUS_COUNT; s++)
    if (s != EPB_NEED_MORE) counted += d.counts[s];
  if (counted != frames) fail("counts disagree with the outcomes returned");

  // The same bytes as a bare body, and as a body whose CRC we append: random
  // bytes almost never carry a valid CRC, and without this second form the
  // fuzzer could not explore the payload checks.
  check_body(epbt::Bytes(data, data + size));
  if (size <= EPB_MAX_BODY) {
    epbt::Bytes body(data, data + size);
    uint32_t crc = epb_crc32c(body.data(), body.size());
    for (int i = 0; i < 4; i++) body.push_back(static_cast<uint8_t>(crc >> (8 * i)));
    check_body(body);
    // With a session key: a sealed body still needs a tag made with it.
    epb_auth agent = epbt::example_auth(false);
    epb_message m;
    if (epb_decode_body_auth(body.data(), body.size(), &m, &agent) == EPB_OK && m.sealed)
      fail("arbitrary bytes opened as a sealed frame");
  }
  return 0;
}
