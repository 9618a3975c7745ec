// The gateway's own evidence chains (docs/evidence.md 13.4): its GNSS fixes
// and its derived custody events are chained and signed in the transaction
// that stores them, the checkpoints are records of `<source>:ev`, and the
// whole record verifies with the C library's streaming verifier, across
// restarts, failed commits, alarms, the time rule and a key change.
#include <catch2/catch.hpp>

#include <epb/evidence.h>

#include <cstring>
#include <map>

#include "eport/codec/codec.h"
#include "eport/evidence/canonical.h"
#include "eport/evidence/gateway_chains.h"
#include "events_fixture.h"
#include "evidence_openssl.hpp"

namespace eport {
namespace {

using test_events::kGateway;

std::string make_key(const test::TempDir& dir, const std::string& name) {
  auto key = epb_ossl::generate(EPB_EV_ALG_EDDSA);
  REQUIRE(key);
  std::string err;
  auto path = dir.file(name);
  REQUIRE(epb_ossl::write_private_pem(key.get(), path, &err));
  return path;
}

epb_ev_key public_of(const std::string& path) {
  std::string err;
  auto key = epb_ossl::read_private_pem(path, &err);
  REQUIRE(key);
  epb_ev_key pub{};
  REQUIRE(epb_ossl::public_key(key.get(), "", &pub));
  return pub;
}

// The gateway's GNSS fix number `seq`, near the test zone.
model::Reading gateway_fix(std::uint64_t seq) {
  auto r = test_events::position(kGateway, "", seq, 30.7, 122.1);
  return r;
}

struct Gateway {
  test_events::Store store;  // outbox + custody engine
  std::string gateway_key, custody_key;
  evidence::EvidenceOptions options;
  std::unique_ptr<evidence::GatewayChains> chains;
  std::uint64_t now = 1'700'000'000'000ull;

  Gateway() {
    gateway_key = make_key(store.dir, "gw.key.pem");
    custody_key = make_key(store.dir, "custody.key.pem");
    options.gateway_key_file = gateway_key;
    options.custody_key_file = custody_key;
    options.checkpoint_every_readings = 8;
    open_chains();
  }
  void open_chains() {
    auto saved = store.outbox->derived_state();
    REQUIRE(saved.ok());
    auto& box = *store.outbox;
    auto c = evidence::GatewayChains::open(options, kGateway, *saved,
                                           [&box](std::string_view s) { return box.last_seq(s); });
    REQUIRE(c.ok());
    chains = std::move(*c);
    chains->set_clock([this] { return now; });
    store.outbox->set_chain(chains.get());
  }
  // As a restarted agent: the outbox, the engine and the chains from the saved state.
  void restart() {
    store.outbox->set_chain(nullptr);
    chains.reset();
    store.open();
    open_chains();
  }
  // Rows of one source, by seq.
  std::map<std::uint64_t, model::Reading> rows(const std::string& source) {
    std::map<std::uint64_t, model::Reading> out;
    REQUIRE(store.outbox
                ->for_each([&](const store::StoredRecord& r) {
                  if (r.source_id == source) {
                    auto d = codec::decode_reading(r.body);
                    REQUIRE(d.ok());
                    out.emplace(r.seq, *d);
                  }
                  return true;
                })
                .ok());
    return out;
  }
};

struct Verified {
  std::uint64_t checkpoints = 0, readings = 0, tail = 0;
  std::vector<std::string> problems;
};

// The record of `source` as the store holds it, verified as a cloud
// verifier would (section 7): records in seq order, each checkpoint after
// the record its range ends with.
Verified verify(Gateway& g, const std::string& source, const std::string& key_path,
                const std::function<void(std::map<std::uint64_t, model::Reading>&)>& tamper = nullptr) {
  auto records = g.rows(source);
  if (tamper) tamper(records);
  auto checkpoints = g.rows(model::evidence_source_id(source));
  Verified out;
  epb_ev_verifier v;
  auto key = public_of(key_path);
  REQUIRE(epb_ev_verifier_init(&v, source.data(), static_cast<std::uint8_t>(source.size()), &key, epb_ossl::verify,
                               nullptr) == EPB_EV_OK);
  auto ck = checkpoints.begin();
  std::uint64_t pending = 0;
  auto feed_checkpoints_up_to = [&](std::uint64_t seq) {
    while (ck != checkpoints.end()) {
      const auto& c = std::get<model::EvidenceCheckpoint>(ck->second.payload);
      epb_ev_checkpoint parsed;
      REQUIRE(epb_ev_parse(c.cose.data(), c.cose.size(), &parsed) == EPB_EV_OK);
      if (parsed.last > seq) return;
      auto st = epb_ev_verifier_checkpoint(&v, c.cose.data(), c.cose.size(), nullptr);
      if (st != EPB_EV_OK) out.problems.push_back("checkpoint " + std::to_string(parsed.n) + ": " + epb_ev_status_name(st));
      out.readings += pending;
      pending = 0;
      ++out.checkpoints;
      ++ck;
    }
  };
  for (const auto& [seq, r] : records) {
    feed_checkpoints_up_to(seq - 1);
    auto bytes = evidence::canonical_bytes(r);
    if (!bytes) continue;
    auto st = epb_ev_verifier_reading(&v, bytes->data(), bytes->size());
    if (st != EPB_EV_OK) out.problems.push_back("seq " + std::to_string(seq) + ": " + epb_ev_status_name(st));
    ++pending;
  }
  feed_checkpoints_up_to(UINT64_MAX);
  out.tail = pending;
  return out;
}

TEST_CASE("the gateway's GNSS fixes and custody events are chained and verify", "[evidence][gateway]") {
  Gateway g;
  g.options.checkpoint_every_readings = 3;
  g.restart();
  auto journey = test_events::journey();  // pairing, geofence entry and exit, motion events
  REQUIRE(g.store.append(journey).ok());
  std::vector<model::Reading> fixes;
  for (std::uint64_t s = 1; s <= 20; ++s) fixes.push_back(gateway_fix(s));
  REQUIRE(g.store.append(fixes).ok());

  auto gnss = verify(g, kGateway, g.gateway_key);
  CHECK(gnss.problems.empty());
  CHECK(gnss.checkpoints == 6);  // every 3
  CHECK(gnss.readings == 18);
  CHECK(gnss.tail == 2);

  const auto custody = model::custody_source_id(kGateway);
  auto events = g.rows(custody);
  REQUIRE(events.size() >= 4);
  auto ev = verify(g, custody, g.custody_key);
  CHECK(ev.problems.empty());
  CHECK(ev.checkpoints >= 1);
  CHECK(ev.readings + ev.tail == events.size());
  CHECK(g.chains->stats().linked == 20 + events.size());

  SECTION("an altered event does not verify") {
    auto v = verify(g, custody, g.custody_key, [](auto& rows) {
      std::get<model::CustodyEvent>(rows.begin()->second.payload).subject_id = "TU-2";
    });
    REQUIRE(v.problems.size() == 1);
    CHECK(v.problems[0].find("broken chain") != std::string::npos);
  }
  SECTION("a dropped fix does not verify") {
    auto v = verify(g, kGateway, g.gateway_key, [](auto& rows) { rows.erase(3); });
    REQUIRE(v.problems.size() == 1);
    CHECK(v.problems[0].find("reading missing") != std::string::npos);
  }
  SECTION("the other source's key does not verify") {
    auto v = verify(g, kGateway, g.custody_key);
    REQUIRE(v.problems.size() == 6);  // every checkpoint refused
    CHECK(v.problems[0].find("key") != std::string::npos);
  }
}

TEST_CASE("a seal or alarm event is covered by a checkpoint at once", "[evidence][gateway]") {
  Gateway g;
  g.options.checkpoint_every_readings = 0;
  g.options.checkpoint_every = std::chrono::seconds(0);
  g.restart();
  // A tampered seal on a paired unit: the engine derives SealTampered (an alarm).
  auto r = test_events::position("TU-1", "MSKU1234565", 1, 30.618, 122.0);
  model::Reading seal = r;
  seal.seq = 2;
  seal.payload = model::SealEvent{"SEAL-1", model::SealState::kTampered};
  REQUIRE(g.store.append({r, seal}).ok());
  const auto custody = model::custody_source_id(kGateway);
  auto events = g.rows(custody);
  bool alarm = false;
  for (const auto& [s, e] : events) alarm |= std::get<model::CustodyEvent>(e.payload).code == model::EventCode::kSealTampered;
  REQUIRE(alarm);
  auto v = verify(g, custody, g.custody_key);
  CHECK(v.problems.empty());
  CHECK(v.checkpoints >= 1);
  CHECK(v.tail == 0);  // the alarm's checkpoint covers the pairing before it too
}

TEST_CASE("a checkpoint due by time is made with no record to come with", "[evidence][gateway]") {
  Gateway g;
  g.options.checkpoint_every = std::chrono::seconds(60);
  g.restart();
  REQUIRE(g.store.append({gateway_fix(1), gateway_fix(2)}).ok());
  CHECK_FALSE(g.chains->due(g.now + 59'999));
  g.now += 60'000;
  REQUIRE(g.chains->due(g.now));
  REQUIRE(g.store.outbox->append({}, g.chains.get()).ok());
  CHECK_FALSE(g.chains->due(g.now));
  auto v = verify(g, kGateway, g.gateway_key);
  CHECK(v.problems.empty());
  CHECK(v.checkpoints == 1);
  CHECK(v.readings == 2);
  CHECK(v.tail == 0);
}

TEST_CASE("before a planned stop every uncovered record is covered", "[evidence][gateway]") {
  Gateway g;
  REQUIRE(g.store.append({gateway_fix(1), gateway_fix(2), gateway_fix(3)}).ok());
  REQUIRE(g.store.outbox->append({}, g.chains.get()).ok());  // nothing due: nothing made
  CHECK(verify(g, kGateway, g.gateway_key).tail == 3);
  g.chains->cover_all_next();
  auto r = g.store.outbox->append({}, g.chains.get());
  REQUIRE(r.ok());
  CHECK(r->derived == 1);
  auto v = verify(g, kGateway, g.gateway_key);
  CHECK(v.problems.empty());
  CHECK(v.tail == 0);
  CHECK(v.readings == 3);
  g.chains->cover_all_next();  // nothing uncovered: no empty checkpoint
  r = g.store.outbox->append({}, g.chains.get());
  REQUIRE(r.ok());
  CHECK(r->derived == 0);
}

TEST_CASE("the chains continue across restarts and failed commits", "[evidence][gateway]") {
  Gateway g;
  // A commit that fails at its last step, when asked: nothing of it is
  // stored, and the chain must be as before it (else the next checkpoint's
  // head is wrong), with no restart in between.
  bool fail_commit = false;
  g.store.options.fault = [&fail_commit](std::string_view step) {
    return fail_commit && step == "commit" ? 10 /* SQLITE_IOERR */ : 0;
  };
  g.restart();
  std::uint64_t seq = 0;
  for (int round = 0; round < 5; ++round) {
    std::vector<model::Reading> fixes;
    for (int i = 0; i < 5; ++i) fixes.push_back(gateway_fix(++seq));
    if (round == 1 || round == 3) {
      fail_commit = true;
      CHECK_FALSE(g.store.append(fixes).ok());
      fail_commit = false;
    }
    REQUIRE(g.store.append(fixes).ok());
    if (round % 2 == 0) g.restart();
  }
  auto v = verify(g, kGateway, g.gateway_key);
  CHECK(v.problems.empty());
  CHECK(v.checkpoints == 3);  // after 8, 16, 24 of 25
  CHECK(v.readings == 24);
  CHECK(v.tail == 1);
  CHECK(g.chains->stats().restarts == 0);
}

TEST_CASE("a new key starts a new chain whose checkpoints still go in", "[evidence][gateway]") {
  Gateway g;
  std::vector<model::Reading> fixes;
  for (std::uint64_t s = 1; s <= 8; ++s) fixes.push_back(gateway_fix(s));
  REQUIRE(g.store.append(fixes).ok());
  REQUIRE(g.rows(model::evidence_source_id(kGateway)).size() == 1);
  g.options.gateway_key_file = make_key(g.store.dir, "gw2.key.pem");
  g.restart();
  CHECK(g.chains->stats().restarts == 1);
  fixes.clear();
  for (std::uint64_t s = 9; s <= 16; ++s) fixes.push_back(gateway_fix(s));
  REQUIRE(g.store.append(fixes).ok());
  // Checkpoint records are keyed by their `last`, as a unit's: 8, then the
  // new chain's n = 1 at 16.
  auto cks = g.rows(model::evidence_source_id(kGateway));
  REQUIRE(cks.size() == 2);
  CHECK(std::get<model::EvidenceCheckpoint>(cks.at(8).payload).n == 1);
  CHECK(std::get<model::EvidenceCheckpoint>(cks.at(16).payload).n == 1);
}

TEST_CASE("a rotated key is announced under the previous one and the chain verifies across it",
          "[evidence][gateway]") {
  Gateway g;
  const auto old_key = g.gateway_key;
  std::uint64_t seq = 0;
  auto eight = [&] {
    std::vector<model::Reading> fixes;
    for (int i = 0; i < 8; ++i) fixes.push_back(gateway_fix(++seq));
    REQUIRE(g.store.append(fixes).ok());
  };
  eight();  // checkpoint 1 under the old key
  g.gateway_key = make_key(g.store.dir, "gw-new.key.pem");
  g.options.gateway_key_file = g.gateway_key;
  g.options.gateway_previous_key_file = old_key;
  g.restart();
  eight();  // checkpoint 2: under the old key, announcing the new one
  g.restart();  // the announcement is committed: the previous key is no longer needed
  eight();  // checkpoint 3: under the new key
  g.options.gateway_previous_key_file.clear();
  g.restart();
  eight();  // checkpoint 4
  CHECK(g.chains->stats().restarts == 0);
  auto cks = g.rows(model::evidence_source_id(kGateway));
  REQUIRE(cks.size() == 4);
  epb_ev_checkpoint second;
  const auto& c2 = std::get<model::EvidenceCheckpoint>(cks.at(16).payload).cose;
  REQUIRE(epb_ev_parse(c2.data(), c2.size(), &second) == EPB_EV_OK);
  auto new_pub = public_of(g.gateway_key), old_pub = public_of(old_key);
  CHECK(second.has_next_key == 1);
  CHECK(std::memcmp(second.next_key.kid, new_pub.kid, new_pub.kid_len) == 0);
  CHECK(std::memcmp(second.kid, old_pub.kid, old_pub.kid_len) == 0);
  // A verifier that starts from the old key follows the announcement.
  auto v = verify(g, kGateway, old_key);
  CHECK(v.problems.empty());
  CHECK(v.checkpoints == 4);
  CHECK(v.readings == 32);
  // One that knows only the new key cannot check the first two.
  auto only_new = verify(g, kGateway, g.gateway_key);
  CHECK(only_new.problems.size() >= 2);
}

TEST_CASE("a previous key without its key is refused at start", "[evidence][gateway]") {
  test::TempDir dir;
  evidence::EvidenceOptions o;
  o.custody_previous_key_file = make_key(dir, "old.pem");
  auto c = evidence::GatewayChains::open(o, kGateway, {}, [](std::string_view) { return std::uint64_t{0}; });
  REQUIRE_FALSE(c.ok());
  CHECK(c.error() == "evidence.custody_previous_key needs evidence.custody_key");
  o = {};
  o.gateway_key_file = dir.file("absent.pem");
  c = evidence::GatewayChains::open(o, kGateway, {}, [](std::string_view) { return std::uint64_t{0}; });
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().find("evidence.gateway_key: ") == 0);
  CHECK(c.error().find("absent.pem") != std::string::npos);
}

TEST_CASE("records stored while the chain was off start a new chain", "[evidence][gateway]") {
  Gateway g;
  REQUIRE(g.store.append({gateway_fix(1), gateway_fix(2)}).ok());
  g.store.outbox->set_chain(nullptr);
  REQUIRE(g.store.append({gateway_fix(3)}).ok());  // not chained
  g.restart();
  CHECK(g.chains->stats().restarts == 1);
}

TEST_CASE("an event record's canonical bytes, byte for byte", "[evidence][gateway]") {
  model::Reading r;
  r.source_id = "gw-01:custody";
  r.container_id = "MSKU1234565";
  r.seq = 7;
  r.time_utc_ms = 1764614400000;  // 2025-12-01T18:40:00Z
  model::CustodyEvent e;
  e.code = model::EventCode::kSealMismatch;
  e.subject_id = "tcu-0001";
  e.first_seq = 1001;
  e.caused_by_seq = 1001;
  e.lat_e7 = 306000000;
  e.lon_e7 = 1220000000;
  e.seal_id = "CN123";
  e.expected_seal_id = "CN124";
  e.seal_class = model::SealClass::kHighSecurity;
  r.payload = e;
  auto bytes = evidence::canonical_bytes(r);
  REQUIRE(bytes);
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (auto b : *bytes) {
    hex += kHex[b >> 4];
    hex += kHex[b & 15];
  }
  // docs/evidence.md 13.4, the worked example.
  CHECK(hex ==
        "0240" "0700000000000000" "00e836db9a010000" "09" "0b4d534b5531323334353635" "087463752d30303031"
        "e903000000000000" "e903000000000000" "00" "0300" "80303d12" "00b9b748" "03" "05434e313233"
        "05434e313234" "00" "a1e54757");
  // GatewayReceive time is 0 in R, as for a unit's reading.
  r.time_source = model::TimeSource::kGatewayReceive;
  auto zero = evidence::canonical_bytes(r);
  REQUIRE(zero);
  CHECK(std::vector<std::uint8_t>(zero->begin() + 10, zero->begin() + 18) == std::vector<std::uint8_t>(8, 0));
}

}  // namespace
}  // namespace eport
