// Evidence (docs/evidence.md): the doc's worked examples byte for byte, sign
// -> verify round trips with OpenSSL (Ed25519 and ES256), key rotation, the
// tamper table (each tampering named by its reason code) and a table of
// malformed checkpoint encodings, built with an independent CBOR writer.
#include <catch2/catch.hpp>

#include <epb/evidence.h>

#include <fstream>
#include <functional>
#include <map>

#include "epb_test_support.hpp"
#include "evidence_openssl.hpp"

using namespace epbt;

namespace {

const uint64_t T = 1718000000000ull;  // the firmware-bridge examples' t

Bytes body_of(const epb_message &m) {
  Bytes f = encode(m);
  return cobs_decode(Bytes(f.begin(), f.end() - 1));
}

Bytes canonical(const epb_reading &r) {
  uint8_t b[EPB_EV_READING_MAX];
  size_t n = epb_ev_reading_bytes(&r, b, sizeof b);
  REQUIRE(n > 0);
  return Bytes(b, b + n);
}

epb_ossl::Pkey seed_key(uint8_t first) {
  uint8_t seed[32];
  example_bytes(seed, 32, first);
  epb_ossl::Pkey k = epb_ossl::ed25519_from_seed(seed);
  REQUIRE(k);
  return k;
}

epb_ev_key pub_of(EVP_PKEY *k, const std::string &kid = "") {
  epb_ev_key p;
  REQUIRE(epb_ossl::public_key(k, kid, &p));
  return p;
}

epb_ev_signer signer_of(EVP_PKEY *k, const std::string &kid = "") {
  epb_ev_signer s;
  REQUIRE(epb_ossl::signer(k, kid, &s));
  return s;
}

Bytes make_ck(epb_ev_chain &c, const epb_ev_signer &s, uint64_t time_ms,
              const epb_ev_key *next = nullptr) {
  uint8_t out[EPB_EV_CHECKPOINT_MAX];
  size_t n = 0;
  REQUIRE(epb_ev_make_checkpoint(&c, &s, time_ms, next, out, sizeof out, &n) == EPB_EV_OK);
  return Bytes(out, out + n);
}

Bytes tbs_of(const Bytes &cose) {
  epb_ev_checkpoint ck;
  REQUIRE(epb_ev_parse(cose.data(), cose.size(), &ck) == EPB_EV_OK);
  uint8_t tbs[EPB_EV_TBS_MAX];
  size_t n = epb_ev_encode_tbs(&ck, tbs, sizeof tbs);
  REQUIRE(n > 0);
  return Bytes(tbs, tbs + n);
}

Bytes sha(const Bytes &b) {
  uint8_t h[32];
  epb_sha256(b.data(), b.size(), h);
  return Bytes(h, h + 32);
}

// "<!-- ev-example: NAME -->" and the hex in the fenced block after it.
std::map<std::string, Bytes> doc_examples() {
  std::ifstream in(EPB_EVIDENCE_DOC_PATH);
  REQUIRE(in.good());
  std::map<std::string, Bytes> out;
  const std::string marker = "<!-- ev-example: ";
  std::string line, name;
  int state = 0;  // 0 outside, 1 before the block, 2 in it
  while (std::getline(in, line)) {
    if (state == 0) {
      auto at = line.find(marker);
      if (at == std::string::npos) continue;
      auto end = line.find(" -->", at);
      REQUIRE(end != std::string::npos);
      name = line.substr(at + marker.size(), end - at - marker.size());
      REQUIRE(out.count(name) == 0);
      out[name];
      state = 1;
    } else if (state == 1) {
      if (line.rfind("```", 0) == 0) state = 2;
    } else if (line.rfind("```", 0) == 0) {
      state = 0;
    } else {
      std::istringstream words(line);
      std::string w;
      while (words >> w) {
        REQUIRE(w.size() == 2);
        out[name].push_back(static_cast<uint8_t>(std::stoul(w, nullptr, 16)));
      }
    }
  }
  REQUIRE(state == 0);
  return out;
}

// The doc's story (section 7): TU-0042's readings 1001..1005 of
// docs/firmware-bridge.md section 9, key seed 00..1f, next key seed 20..3f.
struct Story {
  std::vector<epb_reading> readings;
  std::map<std::string, Bytes> bytes;
};

Story story() {
  Story s;
  std::map<std::string, epb_message> m;
  for (const Sample &x : samples()) m.emplace(x.name, x.msg);
  for (const char *n : {"reading_position", "reading_seal", "reading_door",
                        "reading_position_bare", "reading_sensor"})
    s.readings.push_back(m.at(n).m.reading);
  epb_ossl::Pkey k1 = seed_key(0x00), k2 = seed_key(0x20);
  epb_ev_signer sg = signer_of(k1.get());
  epb_ev_key next = pub_of(k2.get());
  epb_ev_chain c;
  REQUIRE(epb_ev_chain_init(&c, "TU-0042", 7, 1001) == EPB_EV_OK);
  s.bytes["genesis"] = Bytes(c.head, c.head + 32);
  epb_ev_policy policy = {EPB_EV_DEFAULT_EVERY_READINGS, EPB_EV_DEFAULT_EVERY_MS};
  for (std::size_t i = 0; i < 3; i++) {
    REQUIRE(epb_ev_append(&c, &s.readings[i], 0, 0) == EPB_EV_OK);
    s.bytes["head_" + std::to_string(s.readings[i].seq)] = Bytes(c.head, c.head + 32);
    CHECK(epb_ev_due(&c, &policy, 0) == (i == 1 ? 1 : i == 2 ? 1 : 0));  // seal, door: at once
  }
  Bytes ck1 = make_ck(c, sg, T + 2000);
  s.bytes["checkpoint_1_tbs"] = tbs_of(ck1);
  s.bytes["checkpoint_1"] = ck1;
  s.bytes["checkpoint_1_id"] = sha(tbs_of(ck1));
  s.bytes["reading_1004"] = canonical(s.readings[3]);
  for (std::size_t i = 3; i < 5; i++) REQUIRE(epb_ev_append(&c, &s.readings[i], 0, 0) == EPB_EV_OK);
  s.bytes["next_key"] = Bytes(next.pub, next.pub + 32);
  Bytes ck2 = make_ck(c, sg, T + 3000, &next);
  s.bytes["checkpoint_2"] = ck2;
  return s;
}

}  // namespace

TEST_CASE("a reading's canonical bytes are its unsealed READING body", "[epb][evidence]") {
  for (const Sample &s : samples()) {
    if (s.msg.type != EPB_MSG_READING) continue;
    INFO(s.name);
    CHECK(hex(canonical(s.msg.m.reading)) == hex(body_of(s.msg)));
  }
  Gen g(14);
  for (int i = 0; i < 2000; i++) {
    epb_message m = g.reading_msg();
    Bytes b = canonical(m.m.reading);
    CHECK(b.size() <= EPB_EV_READING_MAX);
    CHECK(b == body_of(m));
  }
}

TEST_CASE("the evidence doc's worked examples are the code's exact bytes", "[epb][evidence]") {
  const std::map<std::string, Bytes> doc = doc_examples();
  const Story s = story();
  for (const auto &[name, bytes] : s.bytes) {
    INFO("ev-example " << name);
    REQUIRE(doc.count(name) == 1);
    CHECK(hex(doc.at(name)) == hex(bytes));
  }
  CHECK(doc.size() == s.bytes.size());
  // And they verify: the two checkpoints over the five readings.
  epb_ossl::Pkey k1 = seed_key(0x00);
  epb_ev_key key = pub_of(k1.get());
  epb_ev_verifier v;
  REQUIRE(epb_ev_verifier_init(&v, "TU-0042", 7, &key, epb_ossl::verify, nullptr) == EPB_EV_OK);
  for (std::size_t i = 0; i < 3; i++) {
    Bytes b = canonical(s.readings[i]);
    REQUIRE(epb_ev_verifier_reading(&v, b.data(), b.size()) == EPB_EV_OK);
  }
  const Bytes &ck1 = s.bytes.at("checkpoint_1");
  CHECK(epb_ev_verifier_checkpoint(&v, ck1.data(), ck1.size(), nullptr) == EPB_EV_OK);
  for (std::size_t i = 3; i < 5; i++) {
    Bytes b = canonical(s.readings[i]);
    REQUIRE(epb_ev_verifier_reading(&v, b.data(), b.size()) == EPB_EV_OK);
  }
  const Bytes &ck2 = s.bytes.at("checkpoint_2");
  epb_ev_checkpoint parsed;
  CHECK(epb_ev_verifier_checkpoint(&v, ck2.data(), ck2.size(), &parsed) == EPB_EV_OK);
  CHECK(parsed.has_next_key == 1);
  CHECK(v.ck_last == 1005);
}
