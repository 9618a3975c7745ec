// Unit authentication in the C library: SHA-256 and HMAC-SHA256 against the
// published vectors and OpenSSL, the session key and AUTH proof, and sealed
// frames refused when tampered with, replayed, reflected, keyless or forged.
#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <random>
#include <string>

#include "epb_test_support.hpp"

using namespace epbt;

namespace {

std::string hexd(const uint8_t *p, std::size_t n) { return hex(Bytes(p, p + n)); }

std::string sha(const std::string &s) {
  uint8_t out[EPB_SHA256_LEN];
  epb_sha256(reinterpret_cast<const uint8_t *>(s.data()), s.size(), out);
  return hexd(out, sizeof out);
}

std::string spaced(const char *compact) {
  std::string out;
  for (std::size_t i = 0; compact[i]; i += 2) {
    if (i) out += ' ';
    out += compact[i];
    out += compact[i + 1];
  }
  return out;
}

// Body (COBS-decoded, with crc) of a frame.
Bytes body_of(const Bytes &frame) { return cobs_decode(Bytes(frame.begin(), frame.end() - 1)); }

void fix_crc(Bytes &body) {
  uint32_t crc = epb_crc32c(body.data(), body.size() - 4);
  for (int i = 0; i < 4; i++) body[body.size() - 4 + i] = static_cast<uint8_t>(crc >> (8 * i));
}

epb_status decode(const Bytes &body, epb_auth &a, epb_message &out) {
  return epb_decode_body_auth(body.data(), body.size(), &out, &a);
}

}  // namespace

TEST_CASE("sha256 matches the FIPS 180-4 examples", "[epb][auth]") {
  CHECK(sha("") == spaced("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
  CHECK(sha("abc") == spaced("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
  CHECK(sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        spaced("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
  epb_sha256_ctx c;
  epb_sha256_init(&c);
  const std::string a1000(1000, 'a');
  for (int i = 0; i < 1000; i++)
    epb_sha256_update(&c, reinterpret_cast<const uint8_t *>(a1000.data()), a1000.size());
  uint8_t out[EPB_SHA256_LEN];
  epb_sha256_final(&c, out);
  CHECK(hexd(out, sizeof out) ==
        spaced("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
}

TEST_CASE("hmac-sha256 matches RFC 4231", "[epb][auth]") {
  uint8_t out[EPB_SHA256_LEN];
  const Bytes key1(20, 0x0b);
  const std::string hi = "Hi There";
  epb_hmac_sha256(key1.data(), key1.size(), reinterpret_cast<const uint8_t *>(hi.data()),
                  hi.size(), out);
  CHECK(hexd(out, sizeof out) ==
        spaced("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"));
  const std::string jefe = "Jefe", what = "what do ya want for nothing?";
  epb_hmac_sha256(reinterpret_cast<const uint8_t *>(jefe.data()), jefe.size(),
                  reinterpret_cast<const uint8_t *>(what.data()), what.size(), out);
  CHECK(hexd(out, sizeof out) ==
        spaced("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));
  const Bytes key6(131, 0xaa);  // longer than a block: hashed first
  const std::string big = "Test Using Larger Than Block-Size Key - Hash Key First";
  epb_hmac_sha256(key6.data(), key6.size(), reinterpret_cast<const uint8_t *>(big.data()),
                  big.size(), out);
  CHECK(hexd(out, sizeof out) ==
        spaced("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"));
}

TEST_CASE("sha256 and hmac agree with OpenSSL for every length and chunking", "[epb][auth]") {
  std::mt19937 rng(20261201);
  for (std::size_t len = 0; len < 300; len++) {
    Bytes data(len), key(rng() % 100);
    for (auto &b : data) b = static_cast<uint8_t>(rng());
    for (auto &b : key) b = static_cast<uint8_t>(rng());
    uint8_t ours[EPB_SHA256_LEN], theirs[EPB_SHA256_LEN];
    unsigned theirs_len = 0;
    epb_sha256_ctx c;
    epb_sha256_init(&c);
    for (std::size_t at = 0; at < len;) {  // random chunks
      std::size_t n = std::min<std::size_t>(len - at, rng() % 70);
      epb_sha256_update(&c, data.data() + at, n);
      at += n;
    }
    epb_sha256_final(&c, ours);
    EVP_Digest(data.data(), len, theirs, &theirs_len, EVP_sha256(), nullptr);
    INFO("length " << len);
    REQUIRE(hexd(ours, 32) == hexd(theirs, 32));
    epb_hmac_sha256(key.data(), key.size(), data.data(), len, ours);
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), data.data(), len, theirs,
         &theirs_len);
    REQUIRE(hexd(ours, 32) == hexd(theirs, 32));
  }
}

TEST_CASE("both sides derive one session key and the proof binds every HELLO field",
          "[epb][auth]") {
  const epb_message h = hello("TU-0042", "MSCU1234566", "1.4.2", 1006, 1001);
  uint8_t sk[EPB_SHA256_LEN], proof[EPB_PROOF_LEN], other[EPB_PROOF_LEN];
  example_session_key(sk);
  REQUIRE(epb_auth_proof(sk, &h, proof) == 1);
  for (const epb_message &changed :
       {hello("TU-0043", "MSCU1234566", "1.4.2", 1006, 1001),
        hello("TU-0042", "", "1.4.2", 1006, 1001), hello("TU-0042", "MSCU1234566", "1.4.3", 1006, 1001),
        hello("TU-0042", "MSCU1234566", "1.4.2", 1007, 1001),
        hello("TU-0042", "MSCU1234566", "1.4.2", 1006, 1002)}) {
    REQUIRE(epb_auth_proof(sk, &changed, other) == 1);
    CHECK(hexd(proof, 16) != hexd(other, 16));
  }
  // Another key, another nonce: another session key.
  uint8_t key[EPB_KEY_LEN], an[EPB_NONCE_LEN], un[EPB_NONCE_LEN], sk2[EPB_SHA256_LEN];
  example_bytes(key, sizeof key, 0x00);
  example_bytes(an, sizeof an, 0xa0);
  example_bytes(un, sizeof un, 0xb0);
  un[15] ^= 1;
  epb_auth_session_key(key, "TU-0042", 7, an, un, sk2);
  CHECK(hexd(sk, 32) != hexd(sk2, 32));
  epb_message not_hello = ack(5);
  CHECK(epb_auth_proof(sk, &not_hello, proof) == 0);
}

TEST_CASE("sealed frames round-trip with increasing counters", "[epb][auth]") {
  epb_auth unit = example_auth(true), agent = example_auth(false);
  epb_decoder d;
  epb_decoder_init(&d);
  d.auth = &agent;
  Bytes stream;
  for (uint64_t seq = 1; seq <= 5; seq++) {
    Bytes f = encode_sealed(door(seq, 1718000000000ull, 2), unit);
    REQUIRE(!f.empty());
    stream.insert(stream.end(), f.begin(), f.end());
  }
  CHECK(unit.send_counter == 5);
  std::vector<Outcome> outs = run_stream(d, stream, [] { return std::size_t{7}; });
  REQUIRE(outs.size() == 5);
  for (std::size_t i = 0; i < outs.size(); i++) {
    CHECK(outs[i].status == EPB_OK);
    CHECK(outs[i].msg.sealed == 1);
    CHECK(outs[i].msg.counter == i + 1);
    CHECK(outs[i].msg.m.reading.seq == i + 1);
  }
  CHECK(agent.recv_counter == 5);
  // A lost frame (counter gap) is fine: the next one still verifies.
  encode_sealed(ack(1), unit);
  epb_message out;
  CHECK(decode(body_of(encode_sealed(door(7, 0, 1), unit)), agent, out) == EPB_OK);
  CHECK(out.counter == 7);
}

TEST_CASE("a sealed frame changed anywhere, replayed, reflected or keyless is refused",
          "[epb][auth]") {
  epb_auth unit = example_auth(true);
  const Bytes frame = encode_sealed(seal(9, 1718000000000ull, 3, "SL-778812"), unit);
  const Bytes body = body_of(frame);
  REQUIRE(body.size() == 2 + 28 + EPB_SEAL_OVERHEAD + 4);  // payload 28 bytes

  SECTION("every byte after the version, flipped with the crc fixed, is refused") {
    for (std::size_t i = 1; i + 4 < body.size(); i++) {
      for (uint8_t bit : {0x01, 0x80}) {
        Bytes b = body;
        b[i] ^= bit;
        fix_crc(b);
        epb_auth agent = example_auth(false);
        epb_message out;
        epb_status st = decode(b, agent, out);
        INFO("byte " << i << " bit " << +bit);
        // Clearing the sealed bit turns it into an unsealed frame whose
        // payload has 12 stray bytes; everything else fails the tag.
        CHECK(st == (i == 1 && bit == 0x80 ? EPB_ERR_PAYLOAD : EPB_ERR_AUTH));
        CHECK(agent.recv_counter == 0);
      }
    }
  }
  SECTION("the same frame twice: the second is a replay") {
    epb_auth agent = example_auth(false);
    epb_message out;
    CHECK(decode(body, agent, out) == EPB_OK);
    CHECK(decode(body, agent, out) == EPB_ERR_AUTH);
  }
  SECTION("an older counter after a newer one is refused") {
    const Bytes second = body_of(encode_sealed(door(10, 0, 1), unit));
    epb_auth agent = example_auth(false);
    epb_message out;
    CHECK(decode(second, agent, out) == EPB_OK);
    CHECK(decode(body, agent, out) == EPB_ERR_AUTH);
  }
  SECTION("a frame sent back to its sender (reflection) is refused") {
    epb_auth other_unit = example_auth(true);
    epb_message out;
    CHECK(decode(body, other_unit, out) == EPB_ERR_AUTH);
  }
  SECTION("another key, or no session at all, is refused") {
    uint8_t key[EPB_KEY_LEN] = {}, n[EPB_NONCE_LEN] = {}, sk[EPB_SHA256_LEN];
    epb_auth_session_key(key, "TU-0042", 7, n, n, sk);
    epb_auth wrong;
    epb_auth_start(&wrong, sk, 0);
    epb_message out;
    CHECK(decode(body, wrong, out) == EPB_ERR_AUTH);
    CHECK(epb_decode_body(body.data(), body.size(), &out) == EPB_ERR_AUTH);
    epb_auth inactive{};
    CHECK(decode(body, inactive, out) == EPB_ERR_AUTH);
    epb_decoder d;
    epb_decoder_init(&d);
    std::vector<Outcome> outs = run_stream(d, frame, [] { return SIZE_MAX; });
    REQUIRE(outs.size() == 1);
    CHECK(outs[0].status == EPB_ERR_AUTH);
    CHECK(d.counts[EPB_ERR_AUTH] == 1);
  }
  SECTION("an unsealed frame decodes as before and says so") {
    epb_auth agent = example_auth(false);
    epb_message out;
    const Bytes plain = body_of(encode(door(11, 0, 1)));
    CHECK(decode(plain, agent, out) == EPB_OK);
    CHECK(out.sealed == 0);
  }
}

TEST_CASE("HELLO, CHALLENGE and AUTH are never sealed", "[epb][auth]") {
  epb_auth unit = example_auth(true);
  const epb_message h = hello("TU-0042", "", "", 5, 5);
  uint8_t out[EPB_MAX_ENCODED];
  CHECK(epb_encode_sealed(&h, &unit, out, sizeof out) == 0);
  const epb_message c = challenge(1);
  CHECK(epb_encode_sealed(&c, &unit, out, sizeof out) == 0);
  CHECK(unit.send_counter == 0);
  // A forged sealed HELLO with a good tag (built by hand) is refused as payload.
  Bytes b = body_of(encode(h));
  b.resize(b.size() - 4);
  b[1] |= EPB_SEALED_FLAG;
  for (uint8_t x : {1, 0, 0, 0}) b.push_back(x);
  uint8_t tag[EPB_TAG_LEN];
  unit.tag(unit.session_key, EPB_DIR_UNIT_TO_AGENT, b.data(), b.size(), tag);
  b.insert(b.end(), tag, tag + EPB_TAG_LEN);
  b.resize(b.size() + 4);
  fix_crc(b);
  epb_auth agent = example_auth(false);
  epb_message m;
  CHECK(decode(b, agent, m) == EPB_ERR_PAYLOAD);
  CHECK(m.type == EPB_MSG_HELLO);
}

TEST_CASE("a session whose counter would wrap seals nothing more", "[epb][auth]") {
  epb_auth unit = example_auth(true);
  unit.send_counter = 0xFFFFFFFEu;
  CHECK(!encode_sealed(ack(1), unit).empty());
  CHECK(encode_sealed(ack(2), unit).empty());
  CHECK(unit.send_counter == 0xFFFFFFFFu);
  epb_auth_clear(&unit);
  CHECK(unit.active == 0);
  CHECK(encode_sealed(ack(3), unit).empty());
}
