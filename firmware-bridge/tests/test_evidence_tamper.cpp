// Evidence at the library level: round trips with OpenSSL keys (Ed25519,
// ES256), rotation, the tamper table (a clean signed run, changed in one way
// each, must be named by its reason code) and the table of malformed
// checkpoint encodings, built with a small CBOR writer of the test's own.
#include <catch2/catch.hpp>

#include <epb/evidence.h>

#include <functional>

#include "epb_test_support.hpp"
#include "evidence_openssl.hpp"

using namespace epbt;

namespace {

// One item of a capture, as a verifier receives it.
struct Item {
  bool is_ck;
  Bytes bytes;
};
using Stream = std::vector<Item>;

struct Run {
  Stream items;
  epb_ev_key key;
};

Bytes reading_bytes(const epb_reading &r) {
  uint8_t b[EPB_EV_READING_MAX];
  size_t n = epb_ev_reading_bytes(&r, b, sizeof b);
  REQUIRE(n > 0);
  return Bytes(b, b + n);
}

// Source src signs readings first..first+n-1 (positions, a door at 15) with
// key, a checkpoint every 10 readings or after the door.
Stream signed_run(EVP_PKEY *key, const std::string &src, uint64_t first, int n,
                  const std::string &kid = "") {
  Gen g(static_cast<uint32_t>(first) + static_cast<uint8_t>(src.back()));  // per source
  epb_ev_signer s;
  REQUIRE(epb_ossl::signer(key, kid, &s));
  epb_ev_chain c;
  REQUIRE(epb_ev_chain_init(&c, src.c_str(), static_cast<uint8_t>(src.size()), first) ==
          EPB_EV_OK);
  epb_ev_policy p = {10, 0};
  Stream out;
  for (int i = 0; i < n; i++) {
    epb_message m = g.reading_msg();
    m.m.reading.seq = first + static_cast<uint64_t>(i);
    if (m.m.reading.kind == EPB_READING_SEAL || m.m.reading.kind == EPB_READING_DOOR)
      m.m.reading.kind = EPB_READING_SENSOR, m.m.reading.u.sensor.present = 0;
    if (i == 15) m.m.reading.kind = EPB_READING_DOOR, m.m.reading.u.door.state = 2;
    REQUIRE(epb_ev_append(&c, &m.m.reading, 0, 0) == EPB_EV_OK);
    out.push_back({false, reading_bytes(m.m.reading)});
    if (epb_ev_due(&c, &p, 0)) {
      uint8_t ck[EPB_EV_CHECKPOINT_MAX];
      size_t len = 0;
      REQUIRE(epb_ev_make_checkpoint(&c, &s, 1718000000000ull + static_cast<uint64_t>(i),
                                     nullptr, ck, sizeof ck, &len) == EPB_EV_OK);
      out.push_back({true, Bytes(ck, ck + len)});
    }
  }
  return out;
}

struct EvOutcome {
  std::vector<epb_ev_status> problems;  // every status but OK and DUPLICATE, in order
  int duplicates = 0;
  uint64_t verified_to = 0;  // last seq covered by an accepted checkpoint
  uint64_t tail = 0;         // readings fed after it (the unverified tail)
};

EvOutcome verify(const Stream &s, const epb_ev_key &key, const std::string &src = "TU-0042") {
  epb_ev_verifier v;
  REQUIRE(epb_ev_verifier_init(&v, src.c_str(), static_cast<uint8_t>(src.size()), &key,
                               epb_ossl::verify, nullptr) == EPB_EV_OK);
  EvOutcome o;
  for (const Item &it : s) {
    epb_ev_status st = it.is_ck ? epb_ev_verifier_checkpoint(&v, it.bytes.data(), it.bytes.size(), nullptr)
                                : epb_ev_verifier_reading(&v, it.bytes.data(), it.bytes.size());
    if (st == EPB_EV_DUPLICATE) o.duplicates++;
    else if (st != EPB_EV_OK) o.problems.push_back(st);
  }
  o.verified_to = v.ck_last;
  o.tail = v.count;
  return o;
}

std::size_t nth(const Stream &s, bool ck, int k) {  // index of the k-th (0-based) such item
  for (std::size_t i = 0; i < s.size(); i++)
    if (s[i].is_ck == ck && k-- == 0) return i;
  FAIL("no such item");
  return 0;
}

epb_ossl::Pkey seeded(uint8_t first) {
  uint8_t seed[32];
  example_bytes(seed, 32, first);
  return epb_ossl::ed25519_from_seed(seed);
}

// ---- an independent deterministic-CBOR writer for hand-made encodings ----
struct C {
  Bytes b;
  C &head(uint8_t major, uint64_t v) {
    uint8_t mt = static_cast<uint8_t>(major << 5);
    if (v < 24) b.push_back(static_cast<uint8_t>(mt | v));
    else if (v < 0x100) b.insert(b.end(), {static_cast<uint8_t>(mt | 24), static_cast<uint8_t>(v)});
    else if (v < 0x10000) b.insert(b.end(), {static_cast<uint8_t>(mt | 25), static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)});
    else if (v < 0x100000000ull) {
      b.push_back(static_cast<uint8_t>(mt | 26));
      for (int i = 3; i >= 0; i--) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
    } else {
      b.push_back(static_cast<uint8_t>(mt | 27));
      for (int i = 7; i >= 0; i--) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
    }
    return *this;
  }
  C &u(uint64_t v) { return head(0, v); }
  C &i(int64_t v) { return v >= 0 ? head(0, static_cast<uint64_t>(v)) : head(1, static_cast<uint64_t>(-1 - v)); }
  C &bs(const Bytes &x) { head(2, x.size()); b.insert(b.end(), x.begin(), x.end()); return *this; }
  C &ts(const std::string &x) { head(3, x.size()); b.insert(b.end(), x.begin(), x.end()); return *this; }
  C &raw(const Bytes &x) { b.insert(b.end(), x.begin(), x.end()); return *this; }
};

Bytes filled(std::size_t n, uint8_t v) { return Bytes(n, v); }

// The parts of a checkpoint, each replaceable by a case of the table.
struct Parts {
  Bytes protected_hdr = C().head(5, 2).u(1).i(-8).u(4).bs(filled(8, 0x11)).b;
  Bytes unprotected = {0xA0};
  std::vector<std::pair<Bytes, Bytes>> fields = {  // encoded key, encoded value
      {C().u(1).b, C().ts("TU-0042").b},  {C().u(2).b, C().u(2).b},
      {C().u(3).b, C().u(1006).b},        {C().u(4).b, C().u(1200).b},
      {C().u(5).b, C().u(195).b},         {C().u(6).b, C().bs(filled(32, 0x66)).b},
      {C().u(7).b, C().bs(filled(32, 0x77)).b}, {C().u(8).b, C().u(1718000000000ull).b},
      {C().u(9).b, C().head(4, 3).i(-8).bs(filled(4, 0x99)).bs(filled(32, 0x98)).b}};
  Bytes map_head;  // empty: a definite map of fields.size()
  Bytes sig = C().bs(filled(64, 0x55)).b;
  Bytes prefix = {0xD2, 0x84};
  Bytes payload_override;  // non-empty: the payload bstr as given

  Bytes payload() const {
    C p;
    if (map_head.empty()) p.head(5, fields.size());
    else p.raw(map_head);
    for (const auto &f : fields) p.raw(f.first).raw(f.second);
    return p.b;
  }
  Bytes cose() const {
    C c;
    c.raw(prefix).bs(protected_hdr).raw(unprotected);
    if (payload_override.empty()) c.bs(payload());
    else c.raw(payload_override);
    c.raw(sig);
    return c.b;
  }
  void set(uint64_t key, const Bytes &value) {
    for (auto &f : fields)
      if (f.first == C().u(key).b) f.second = value;
  }
  void drop(uint64_t key) {
    for (auto it = fields.begin(); it != fields.end(); ++it)
      if (it->first == C().u(key).b) {
        fields.erase(it);
        return;
      }
  }
};

}  // namespace

TEST_CASE("signed runs verify with OpenSSL keys, Ed25519 and ES256", "[epb][evidence]") {
  for (int32_t alg : {EPB_EV_ALG_EDDSA, EPB_EV_ALG_ES256}) {
    INFO("alg " << alg);
    epb_ossl::Pkey k = epb_ossl::generate(alg);
    REQUIRE(k);
    epb_ev_key pub;
    REQUIRE(epb_ossl::public_key(k.get(), "", &pub));
    Stream s = signed_run(k.get(), "TU-0042", 1001, 95);
    EvOutcome o = verify(s, pub);
    CHECK(o.problems.empty());
    CHECK(o.verified_to == 1086);  // checkpoints at 1010, 1016 (the door), 1026 ... 1086
    CHECK(o.tail == 9);            // 1087..1095: not yet covered
  }
}

TEST_CASE("keys written as PEM read back and sign the same", "[epb][evidence]") {
  char dir[] = "/tmp/epb-ev-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  for (int32_t alg : {EPB_EV_ALG_EDDSA, EPB_EV_ALG_ES256}) {
    epb_ossl::Pkey k = epb_ossl::generate(alg);
    std::string err, priv = std::string(dir) + "/k.pem", pubf = std::string(dir) + "/k.pub";
    REQUIRE(epb_ossl::write_private_pem(k.get(), priv, &err));
    REQUIRE(epb_ossl::write_public_pem(k.get(), pubf, &err));
    epb_ossl::Pkey k2 = epb_ossl::read_private_pem(priv, &err), p2 = epb_ossl::read_public_pem(pubf, &err);
    REQUIRE(k2);
    REQUIRE(p2);
    epb_ev_key a, b;
    REQUIRE(epb_ossl::public_key(k.get(), "", &a));
    REQUIRE(epb_ossl::public_key(p2.get(), "", &b));
    CHECK(hex(Bytes(a.pub, a.pub + a.pub_len)) == hex(Bytes(b.pub, b.pub + b.pub_len)));
    CHECK(verify(signed_run(k2.get(), "TU-0042", 1, 12), b).problems.empty());
    std::remove(priv.c_str());
    std::remove(pubf.c_str());
  }
  std::string err;
  CHECK(!epb_ossl::read_private_pem(std::string(dir) + "/none.pem", &err));
  CHECK(err.find("none.pem") != std::string::npos);
  rmdir(dir);
}

TEST_CASE("a checkpoint under the old key announces the next; then the old key is refused",
          "[epb][evidence]") {
  epb_ossl::Pkey a = seeded(0x00), b = seeded(0x20);
  epb_ev_key pa, pb;
  REQUIRE(epb_ossl::public_key(a.get(), "", &pa));
  REQUIRE(epb_ossl::public_key(b.get(), "", &pb));
  epb_ev_signer sa, sb;
  REQUIRE(epb_ossl::signer(a.get(), "", &sa));
  REQUIRE(epb_ossl::signer(b.get(), "", &sb));
  epb_ev_chain c;
  REQUIRE(epb_ev_chain_init(&c, "TU-0042", 7, 1) == EPB_EV_OK);
  epb_ev_verifier v;
  REQUIRE(epb_ev_verifier_init(&v, "TU-0042", 7, &pa, epb_ossl::verify, nullptr) == EPB_EV_OK);
  auto step = [&](uint64_t seq, const epb_ev_signer &s, const epb_ev_key *next) {
    epb_message m = door(seq, 0, 1);
    Bytes r = reading_bytes(m.m.reading);
    REQUIRE(epb_ev_append(&c, &m.m.reading, 0, 0) == EPB_EV_OK);
    REQUIRE(epb_ev_verifier_reading(&v, r.data(), r.size()) == EPB_EV_OK);
    uint8_t ck[EPB_EV_CHECKPOINT_MAX];
    size_t n = 0;
    REQUIRE(epb_ev_make_checkpoint(&c, &s, 0, next, ck, sizeof ck, &n) == EPB_EV_OK);
    return Bytes(ck, ck + n);
  };
  Bytes ck1 = step(1, sa, nullptr);
  CHECK(epb_ev_verifier_checkpoint(&v, ck1.data(), ck1.size(), nullptr) == EPB_EV_OK);
  Bytes ck2 = step(2, sa, &pb);  // announces b
  CHECK(epb_ev_verifier_checkpoint(&v, ck2.data(), ck2.size(), nullptr) == EPB_EV_OK);
  Bytes ck3 = step(3, sb, nullptr);  // b takes over
  CHECK(epb_ev_verifier_checkpoint(&v, ck3.data(), ck3.size(), nullptr) == EPB_EV_OK);
  Bytes ck4 = step(4, sa, nullptr);  // the old key no longer counts
  CHECK(epb_ev_verifier_checkpoint(&v, ck4.data(), ck4.size(), nullptr) == EPB_EV_ERR_KID);
  // A key the chain never announced is refused from the start.
  epb_ev_verifier fresh;
  REQUIRE(epb_ev_verifier_init(&fresh, "TU-0042", 7, &pa, epb_ossl::verify, nullptr) == EPB_EV_OK);
  CHECK(epb_ev_verifier_checkpoint(&fresh, ck3.data(), ck3.size(), nullptr) == EPB_EV_ERR_KID);
}

TEST_CASE("tamper table: every change to a signed run is named by its reason", "[epb][evidence]") {
  epb_ossl::Pkey key = seeded(0x00), other = seeded(0x40);
  epb_ev_key pub;
  REQUIRE(epb_ossl::public_key(key.get(), "", &pub));
  const Stream clean = signed_run(key.get(), "TU-0042", 1001, 45);  // checkpoints after 10, 16 (door), 26, 36
  REQUIRE(verify(clean, pub).problems.empty());
  REQUIRE(verify(clean, pub).verified_to == 1036);
  const Stream other_unit = signed_run(key.get(), "TU-0043", 1001, 45);

  struct Case {
    const char *what;
    std::function<void(Stream &)> tamper;
    epb_ev_status first_problem;  // EPB_EV_OK: no problem at all
  };
  const std::vector<Case> cases = {
      {"clean", [](Stream &) {}, EPB_EV_OK},
      {"a checkpoint resent (a duplicate)",
       [](Stream &s) { std::size_t i = nth(s, true, 1); s.insert(s.begin() + static_cast<long>(i) + 1, s[i]); },
       EPB_EV_OK},
      {"one field of one reading changed, its CRC recomputed",
       [](Stream &s) {
         Item &it = s[nth(s, false, 3)];
         epb_message m;
         REQUIRE(epb_decode_body(it.bytes.data(), it.bytes.size(), &m) == EPB_OK);
         m.m.reading.time_utc_ms += 1;
         it.bytes = reading_bytes(m.m.reading);
       },
       EPB_EV_ERR_CHAIN},
      {"one byte of one reading flipped (its CRC then fails)",
       [](Stream &s) { s[nth(s, false, 3)].bytes[12] ^= 0x01; }, EPB_EV_ERR_READING},
      {"one reading dropped", [](Stream &s) { s.erase(s.begin() + static_cast<long>(nth(s, false, 4))); },
       EPB_EV_ERR_MISSING},
      {"a range of readings dropped",
       [](Stream &s) { std::size_t i = nth(s, false, 11); s.erase(s.begin() + static_cast<long>(i), s.begin() + static_cast<long>(i) + 3); },
       EPB_EV_ERR_MISSING},
      {"two readings reordered",
       [](Stream &s) { std::size_t i = nth(s, false, 5); std::swap(s[i], s[i + 1]); },
       EPB_EV_ERR_ORDER},
      {"a reading forged with a fresh seq before a checkpoint",
       [](Stream &s) {
         epb_message m = door(1011, 1718000000000ull, 2);  // the seq after checkpoint 1's range...
         s.insert(s.begin() + static_cast<long>(nth(s, true, 0)), {false, reading_bytes(m.m.reading)});
       },
       EPB_EV_ERR_EXTRA},
      {"a reading of another unit moved in",
       [&](Stream &s) { s[nth(s, false, 2)] = other_unit[nth(other_unit, false, 2)]; },
       EPB_EV_ERR_CHAIN},
      {"an old checkpoint replayed",
       [](Stream &s) { Item old = s[nth(s, true, 0)]; s.insert(s.begin() + static_cast<long>(nth(s, true, 2)) + 1, old); },
       EPB_EV_ERR_REPLAY},
      {"a checkpoint dropped in the middle",
       [](Stream &s) { s.erase(s.begin() + static_cast<long>(nth(s, true, 1))); }, EPB_EV_ERR_CKPT_CHAIN},
      {"a checkpoint of another unit",
       [&](Stream &s) { s[nth(s, true, 1)] = other_unit[nth(other_unit, true, 1)]; }, EPB_EV_ERR_SOURCE},
      {"a checkpoint field changed, the signature kept",
       [](Stream &s) {
         Item &it = s[nth(s, true, 1)];
         epb_ev_checkpoint ck;
         REQUIRE(epb_ev_parse(it.bytes.data(), it.bytes.size(), &ck) == EPB_EV_OK);
         ck.time_ms += 1;
         uint8_t out[EPB_EV_CHECKPOINT_MAX];
         it.bytes = Bytes(out, out + epb_ev_encode_cose(&ck, out, sizeof out));
       },
       EPB_EV_ERR_SIGNATURE},
      {"signed with another key under this key's id",
       [&](Stream &s) {
         Stream forged = signed_run(other.get(), "TU-0042", 1001, 45,
                                    std::string(reinterpret_cast<const char *>(pub.kid), pub.kid_len));
         s[nth(s, true, 2)] = forged[nth(forged, true, 2)];
       },
       EPB_EV_ERR_SIGNATURE},
      {"signed with another key under its own id",
       [&](Stream &s) {
         Stream forged = signed_run(other.get(), "TU-0042", 1001, 45);
         s[nth(s, true, 2)] = forged[nth(forged, true, 2)];
       },
       EPB_EV_ERR_KID},
  };
  for (const Case &c : cases) {
    INFO(c.what);
    Stream s = clean;
    c.tamper(s);
    EvOutcome o = verify(s, pub);
    if (c.first_problem == EPB_EV_OK) {
      CHECK(o.problems.empty());
    } else {
      REQUIRE(!o.problems.empty());
      CHECK(epb_ev_status_name(o.problems.front()) == std::string(epb_ev_status_name(c.first_problem)));
    }
  }

  SECTION("truncation: dropping the newest checkpoints leaves an unverified tail, no clean record") {
    Stream s = clean;
    s.erase(s.begin() + static_cast<long>(nth(s, true, 2)), s.end());  // checkpoints 3, 4 and their readings' cover
    for (std::size_t i = nth(clean, true, 2); i < clean.size(); i++)
      if (!clean[i].is_ck) s.push_back(clean[i]);
    EvOutcome o = verify(s, pub);
    CHECK(o.problems.empty());
    CHECK(o.verified_to == 1016);
    CHECK(o.tail == 29);  // 1017..1045 present but not covered by any checkpoint
  }
}

TEST_CASE("the origin refuses what would break its chain", "[epb][evidence]") {
  epb_ev_chain c;
  CHECK(epb_ev_chain_init(&c, "", 0, 1) == EPB_EV_ERR_ARG);
  CHECK(epb_ev_chain_init(&c, "TU 0042", 7, 1) == EPB_EV_ERR_ARG);
  CHECK(epb_ev_chain_init(&c, "TU-0042", 7, 0) == EPB_EV_ERR_ARG);
  CHECK(epb_ev_chain_init(&c, "TU-0042", 7, EPB_SEQ_MAX + 1) == EPB_EV_ERR_ARG);
  REQUIRE(epb_ev_chain_init(&c, "TU-0042", 7, 10) == EPB_EV_OK);
  epb_ossl::Pkey k = seeded(0);
  epb_ev_signer s;
  REQUIRE(epb_ossl::signer(k.get(), "", &s));
  uint8_t out[EPB_EV_CHECKPOINT_MAX];
  size_t n = 0;
  CHECK(epb_ev_make_checkpoint(&c, &s, 0, nullptr, out, sizeof out, &n) == EPB_EV_ERR_EMPTY);
  epb_message m = door(9, 0, 1);
  CHECK(epb_ev_append(&c, &m.m.reading, 0, 0) == EPB_EV_ERR_SEQ);  // below the chain's start
  m.m.reading.seq = 10;
  m.m.reading.u.door.state = 7;
  CHECK(epb_ev_append(&c, &m.m.reading, 0, 0) == EPB_EV_ERR_ARG);  // not a valid reading
  m.m.reading.u.door.state = 1;
  const epb_ev_chain before = c;
  REQUIRE(epb_ev_append(&c, &m.m.reading, 0, 0) == EPB_EV_OK);
  CHECK(epb_ev_append(&c, &m.m.reading, 0, 0) == EPB_EV_ERR_SEQ);  // the same seq again
  CHECK(std::memcmp(&before, &c, sizeof c) != 0);
  // A small buffer or a failing signer changes nothing.
  const epb_ev_chain mid = c;
  CHECK(epb_ev_make_checkpoint(&c, &s, 0, nullptr, out, 100, &n) == EPB_EV_ERR_ARG);
  epb_ev_signer failing = s;
  failing.sign = [](void *, const uint8_t *, size_t, uint8_t *) { return 0; };
  CHECK(epb_ev_make_checkpoint(&c, &failing, 0, nullptr, out, sizeof out, &n) == EPB_EV_ERR_SIGNER);
  CHECK(std::memcmp(&mid, &c, sizeof c) == 0);
  // Time and count rules.
  epb_ev_chain t;
  REQUIRE(epb_ev_chain_init(&t, "TU-0042", 7, 1) == EPB_EV_OK);
  epb_ev_policy p = {3, 1000};
  epb_message pos = position(1, 0, 0, 0, 1, 5, 0, 0, 0, 0);
  REQUIRE(epb_ev_append(&t, &pos.m.reading, 5000, 0) == EPB_EV_OK);
  CHECK(epb_ev_due(&t, &p, 5999) == 0);
  CHECK(epb_ev_due(&t, &p, 6000) == 1);
  pos.m.reading.seq = 2;
  REQUIRE(epb_ev_append(&t, &pos.m.reading, 5001, 0) == EPB_EV_OK);
  pos.m.reading.seq = 3;
  CHECK(epb_ev_due(&t, &p, 5002) == 0);
  REQUIRE(epb_ev_append(&t, &pos.m.reading, 5002, 0) == EPB_EV_OK);
  CHECK(epb_ev_due(&t, &p, 5002) == 1);
  epb_ev_chain a;
  REQUIRE(epb_ev_chain_init(&a, "TU-0042", 7, 1) == EPB_EV_OK);
  pos.m.reading.seq = 1;
  REQUIRE(epb_ev_append(&a, &pos.m.reading, 0, 1) == EPB_EV_OK);  // an alarm: at once
  CHECK(epb_ev_due(&a, &p, 0) == 1);
}

TEST_CASE("malformed checkpoint encodings are refused, each with its reason", "[epb][evidence]") {
  // The hand-made base parses, and is byte for byte what the library encodes.
  const Parts base;
  const Bytes good = base.cose();
  epb_ev_checkpoint ck;
  REQUIRE(epb_ev_parse(good.data(), good.size(), &ck) == EPB_EV_OK);
  uint8_t again[EPB_EV_CHECKPOINT_MAX];
  CHECK(hex(Bytes(again, again + epb_ev_encode_cose(&ck, again, sizeof again))) == hex(good));
  CHECK(ck.n == 2);
  CHECK(ck.count == 195);
  CHECK(ck.has_next_key == 1);

  struct Case {
    const char *what;
    std::function<void(Parts &)> change;
    epb_ev_status want;
  };
  const Bytes h32 = C().bs(filled(32, 1)).b;
  const std::vector<Case> cases = {
      {"untagged", [](Parts &p) { p.prefix = {0x84}; }, EPB_EV_ERR_CBOR},
      {"tag 98 (COSE_Sign)", [](Parts &p) { p.prefix = {0xD8, 0x62, 0x84}; }, EPB_EV_ERR_CBOR},
      {"tag 18 in a long form", [](Parts &p) { p.prefix = {0xD8, 0x12, 0x84}; }, EPB_EV_ERR_NONCANONICAL},
      {"array of 3", [](Parts &p) { p.prefix = {0xD2, 0x83}; }, EPB_EV_ERR_CBOR},
      {"indefinite array", [](Parts &p) { p.prefix = {0xD2, 0x9F}; }, EPB_EV_ERR_NONCANONICAL},
      {"reserved additional info", [](Parts &p) { p.prefix = {0xD2, 0x9C}; }, EPB_EV_ERR_CBOR},
      {"protected header as a map, not a bstr",
       [](Parts &p) { p.prefix = {0xD2, 0x84, 0xA0}; p.protected_hdr = {}; }, EPB_EV_ERR_CBOR},
      {"alg ES384", [](Parts &p) { p.protected_hdr = C().head(5, 2).u(1).i(-35).u(4).bs(filled(8, 1)).b; }, EPB_EV_ERR_HEADER},
      {"alg missing", [](Parts &p) { p.protected_hdr = C().head(5, 1).u(4).bs(filled(8, 1)).b; }, EPB_EV_ERR_HEADER},
      {"kid of 17 bytes", [](Parts &p) { p.protected_hdr = C().head(5, 2).u(1).i(-8).u(4).bs(filled(17, 1)).b; }, EPB_EV_ERR_HEADER},
      {"kid empty", [](Parts &p) { p.protected_hdr = C().head(5, 2).u(1).i(-8).u(4).bs({}).b; }, EPB_EV_ERR_HEADER},
      {"a third header (content type)",
       [](Parts &p) { p.protected_hdr = C().head(5, 3).u(1).i(-8).u(3).u(60).u(4).bs(filled(8, 1)).b; }, EPB_EV_ERR_HEADER},
      {"header labels out of order",
       [](Parts &p) { p.protected_hdr = C().head(5, 2).u(4).bs(filled(8, 1)).u(1).i(-8).b; }, EPB_EV_ERR_NONCANONICAL},
      {"header bytes after the map",
       [](Parts &p) { p.protected_hdr.push_back(0x00); }, EPB_EV_ERR_HEADER},
      {"unprotected header not empty", [](Parts &p) { p.unprotected = C().head(5, 1).u(4).bs(filled(8, 1)).b; }, EPB_EV_ERR_HEADER},
      {"unprotected header an array", [](Parts &p) { p.unprotected = {0x80}; }, EPB_EV_ERR_CBOR},
      {"detached payload (nil)", [](Parts &p) { p.payload_override = {0xF6}; }, EPB_EV_ERR_CBOR},
      {"payload not a map", [](Parts &p) { p.payload_override = C().bs({0x80}).b; }, EPB_EV_ERR_PAYLOAD},
      {"payload with a trailing byte", [](Parts &p) { Bytes x = p.payload(); x.push_back(0); p.payload_override = C().bs(x).b; }, EPB_EV_ERR_PAYLOAD},
      {"indefinite payload map", [](Parts &p) { p.map_head = {0xBF}; }, EPB_EV_ERR_NONCANONICAL},
      {"payload keys out of order", [](Parts &p) { std::swap(p.fields[2], p.fields[3]); }, EPB_EV_ERR_NONCANONICAL},
      {"a repeated key", [](Parts &p) { p.fields[3] = p.fields[2]; }, EPB_EV_ERR_PAYLOAD},
      {"an unknown key 10", [](Parts &p) { p.fields.push_back({C().u(10).b, C().u(0).b}); }, EPB_EV_ERR_PAYLOAD},
      {"a text key", [](Parts &p) { p.fields[0].first = C().ts("src").b; }, EPB_EV_ERR_PAYLOAD},
      {"head missing", [](Parts &p) { p.drop(6); }, EPB_EV_ERR_PAYLOAD},
      {"time missing", [](Parts &p) { p.drop(8); }, EPB_EV_ERR_PAYLOAD},
      {"prev missing although n = 2", [](Parts &p) { p.drop(7); }, EPB_EV_ERR_PAYLOAD},
      {"prev present although n = 1", [](Parts &p) { p.set(2, C().u(1).b); }, EPB_EV_ERR_PAYLOAD},
      {"n = 0", [](Parts &p) { p.set(2, C().u(0).b); }, EPB_EV_ERR_PAYLOAD},
      {"n above 2^53 - 1", [](Parts &p) { p.set(2, C().u(EPB_SEQ_MAX + 1).b); }, EPB_EV_ERR_PAYLOAD},
      {"first as a long-form integer", [](Parts &p) { p.set(3, {0x1A, 0x00, 0x00, 0x03, 0xEE}); }, EPB_EV_ERR_NONCANONICAL},
      {"first 0", [](Parts &p) { p.set(3, C().u(0).b); }, EPB_EV_ERR_PAYLOAD},
      {"last below first", [](Parts &p) { p.set(4, C().u(1005).b); }, EPB_EV_ERR_PAYLOAD},
      {"count 0", [](Parts &p) { p.set(5, C().u(0).b); }, EPB_EV_ERR_PAYLOAD},
      {"count above the range", [](Parts &p) { p.set(5, C().u(196).b); }, EPB_EV_ERR_PAYLOAD},
      {"count negative", [](Parts &p) { p.set(5, C().i(-1).b); }, EPB_EV_ERR_PAYLOAD},
      {"head of 31 bytes", [](Parts &p) { p.set(6, C().bs(filled(31, 1)).b); }, EPB_EV_ERR_PAYLOAD},
      {"head as text", [](Parts &p) { p.set(6, C().ts(std::string(32, 'a')).b); }, EPB_EV_ERR_PAYLOAD},
      {"prev of 33 bytes", [](Parts &p) { p.set(7, C().bs(filled(33, 1)).b); }, EPB_EV_ERR_PAYLOAD},
      {"source empty", [](Parts &p) { p.set(1, C().ts("").b); }, EPB_EV_ERR_PAYLOAD},
      {"source with a space", [](Parts &p) { p.set(1, C().ts("TU 0042").b); }, EPB_EV_ERR_PAYLOAD},
      {"source of 33 bytes", [](Parts &p) { p.set(1, C().ts(std::string(33, 'A')).b); }, EPB_EV_ERR_PAYLOAD},
      {"source as bytes", [](Parts &p) { p.set(1, C().bs({'T', 'U'}).b); }, EPB_EV_ERR_PAYLOAD},
      {"time as a float", [](Parts &p) { p.set(8, {0xFB, 0x42, 0x78, 0xFF, 0x2F, 0x4E, 0x00, 0x00, 0x00}); }, EPB_EV_ERR_CBOR},
      {"time as true", [](Parts &p) { p.set(8, {0xF5}); }, EPB_EV_ERR_PAYLOAD},
      {"next key of an unknown alg", [](Parts &p) { p.set(9, C().head(4, 3).i(-35).bs(filled(4, 1)).bs(filled(32, 1)).b); }, EPB_EV_ERR_PAYLOAD},
      {"next Ed25519 key of 31 bytes", [](Parts &p) { p.set(9, C().head(4, 3).i(-8).bs(filled(4, 1)).bs(filled(31, 1)).b); }, EPB_EV_ERR_PAYLOAD},
      {"next P-256 key compressed", [](Parts &p) { Bytes k = filled(65, 1); k[0] = 0x02; p.set(9, C().head(4, 3).i(-7).bs(filled(4, 1)).bs(k).b); }, EPB_EV_ERR_PAYLOAD},
      {"next key array of 2", [](Parts &p) { p.set(9, C().head(4, 2).i(-8).bs(filled(4, 1)).b); }, EPB_EV_ERR_PAYLOAD},
      {"next key of 66 bytes", [](Parts &p) { p.set(9, C().head(4, 3).i(-7).bs(filled(4, 1)).bs(filled(66, 4)).b); }, EPB_EV_ERR_PAYLOAD},
      {"signature of 63 bytes", [](Parts &p) { p.sig = C().bs(filled(63, 1)).b; }, EPB_EV_ERR_CBOR},
      {"signature of 65 bytes", [](Parts &p) { p.sig = C().bs(filled(65, 1)).b; }, EPB_EV_ERR_CBOR},
      {"signature as text", [](Parts &p) { p.sig = C().ts(std::string(64, 's')).b; }, EPB_EV_ERR_CBOR},
      {"signature's length in a long form", [](Parts &p) { p.sig = C().head(2, 64).b; p.sig[0] = 0x59; p.sig.insert(p.sig.begin() + 1, 0x00); p.sig.resize(p.sig.size() + 64, 1); }, EPB_EV_ERR_NONCANONICAL},
      {"a trailing byte", [](Parts &p) { p.sig.push_back(0x00); }, EPB_EV_ERR_TRAILING},
      {"a second checkpoint after it", [](Parts &p) { Bytes again2 = p.cose(); p.sig.insert(p.sig.end(), again2.begin(), again2.end()); }, EPB_EV_ERR_TOO_LARGE},
  };
  for (const Case &c : cases) {
    INFO(c.what);
    Parts p;
    c.change(p);
    Bytes b = p.cose();
    epb_ev_checkpoint out;
    CHECK(epb_ev_status_name(epb_ev_parse(b.data(), b.size(), &out)) ==
          std::string(epb_ev_status_name(c.want)));
  }

  SECTION("every truncation is refused as truncated") {
    for (std::size_t n = 0; n < good.size(); n++) {
      INFO("first " << n << " bytes");
      CHECK(epb_ev_parse(good.data(), n, &ck) == EPB_EV_ERR_TRUNCATED);
    }
  }
  SECTION("more than EPB_EV_CHECKPOINT_MAX bytes is refused before reading any") {
    Bytes big(EPB_EV_CHECKPOINT_MAX + 1, 0);
    CHECK(epb_ev_parse(big.data(), big.size(), &ck) == EPB_EV_ERR_TOO_LARGE);
  }
  SECTION("random garbage never parses") {
    Gen g(1814);
    for (int i = 0; i < 20000; i++) {
      Bytes b(static_cast<std::size_t>(g.u(0, 300)));
      for (uint8_t &x : b) x = static_cast<uint8_t>(g.u(0, 255));
      CHECK(epb_ev_parse(b.data(), b.size(), &ck) != EPB_EV_OK);
    }
  }
  SECTION("one byte changed anywhere either fails or is again the encoder's bytes") {
    for (std::size_t i = 0; i < good.size(); i++) {
      for (uint8_t x : {0x01, 0x20, 0x80, 0xFF}) {
        Bytes b = good;
        b[i] ^= x;
        if (epb_ev_parse(b.data(), b.size(), &ck) == EPB_EV_OK) {
          uint8_t re[EPB_EV_CHECKPOINT_MAX];
          CHECK(hex(Bytes(re, re + epb_ev_encode_cose(&ck, re, sizeof re))) == hex(b));
        }
      }
    }
  }
}

TEST_CASE("a restarted chain and a discarded range are reported, and what follows verifies",
          "[epb][evidence]") {
  epb_ossl::Pkey key = seeded(0x00);
  epb_ev_key pub;
  REQUIRE(epb_ossl::public_key(key.get(), "", &pub));
  SECTION("the unit lost its chain state and restarted at a later seq") {
    Stream s = signed_run(key.get(), "TU-0042", 1001, 30);  // checkpoints at 1010, 1016, 1026
    Stream again = signed_run(key.get(), "TU-0042", 2001, 25);  // a new chain: n = 1 again
    s.erase(s.begin() + static_cast<long>(nth(s, true, 2)) + 1, s.end());
    s.insert(s.end(), again.begin(), again.end());
    EvOutcome o = verify(s, pub);
    REQUIRE(o.problems.size() == 1);
    CHECK(o.problems[0] == EPB_EV_ERR_CKPT_CHAIN);  // at the new chain's first checkpoint
    CHECK(o.verified_to == 2016);                    // ... and its second one verifies
  }
  SECTION("a whole range declared discarded: missing there, verified after") {
    Stream s = signed_run(key.get(), "TU-0042", 1001, 45);
    std::size_t from = nth(s, true, 0) + 1, to = nth(s, true, 1);  // readings 1011..1016
    s.erase(s.begin() + static_cast<long>(from), s.begin() + static_cast<long>(to));
    EvOutcome o = verify(s, pub);
    REQUIRE(o.problems.size() == 1);
    CHECK(o.problems[0] == EPB_EV_ERR_MISSING);
    CHECK(o.verified_to == 1036);
  }
  SECTION("a reading below the first checkpoint's range is not covered") {
    Stream s = signed_run(key.get(), "TU-0042", 1001, 12);
    epb_message m = door(999, 0, 1);
    s.insert(s.begin(), {false, reading_bytes(m.m.reading)});
    CHECK(verify(s, pub).problems.front() == EPB_EV_ERR_EXTRA);
  }
}
