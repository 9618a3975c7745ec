// [units][evidence] The bridge's check of units' checkpoints
// (docs/evidence.md 13.3), one rule per case: key file parsing, wrong key,
// other source, replay, a resend, seq mismatch, broken chain and the move
// to an announced key.
#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>

#include "eport/units/evidence_check.h"
#include "evidence_openssl.hpp"
#include "test_util.h"

using namespace eport;
using model::EvidenceCheck;

namespace {

struct Source {
  std::string id;
  epb_ossl::Pkey key = epb_ossl::generate(EPB_EV_ALG_EDDSA);
  epb_ev_signer signer{};
  epb_ev_key pub{};
  epb_ev_chain chain{};
  std::uint64_t seq = 0;
  explicit Source(std::string unit, std::uint64_t start = 1) : id(std::move(unit)), seq(start - 1) {
    REQUIRE(epb_ossl::signer(key.get(), "", &signer));
    REQUIRE(epb_ossl::public_key(key.get(), "", &pub));
    REQUIRE(epb_ev_chain_init(&chain, id.c_str(), static_cast<std::uint8_t>(id.size()), start) == EPB_EV_OK);
  }
  // n readings, then a checkpoint over them (announcing next, if given).
  std::vector<std::uint8_t> checkpoint(int n, const epb_ev_key* next = nullptr) {
    for (int i = 0; i < n; ++i) {
      epb_reading r{};
      r.seq = ++seq;
      r.time_utc_ms = 1795000000000ull + seq;
      r.kind = EPB_READING_DOOR;
      r.u.door.state = 1;
      REQUIRE(epb_ev_append(&chain, &r, seq, 0) == EPB_EV_OK);
    }
    std::vector<std::uint8_t> out(EPB_EV_CHECKPOINT_MAX);
    std::size_t len = 0;
    REQUIRE(epb_ev_make_checkpoint(&chain, &signer, 1795000000000ull, next, out.data(), out.size(), &len) == EPB_EV_OK);
    out.resize(len);
    return out;
  }
};

}  // namespace

TEST_CASE("evidence keys file: four fields a line, errors name the line", "[units][evidence]") {
  test::TempDir dir;
  auto write = [&](const std::string& text) {
    std::ofstream(dir.file("keys")) << text;
    return units::read_evidence_keys(dir.file("keys"));
  };
  auto ok = write("# comment\n\ntcu-1 ed25519 0102030405060708 " + std::string(64, 'a') + "\n");
  REQUIRE(ok.ok());
  CHECK(ok->at("tcu-1").pub_len == 32);
  CHECK(ok->at("tcu-1").kid_len == 8);
  auto bad = write("tcu-1 ed25519 0102 " + std::string(62, 'a') + "\n");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().find("keys:1: the public key is not 32 bytes") != std::string::npos);
  CHECK_FALSE(write("tcu-1 rsa 01 " + std::string(64, 'a') + "\n").ok());
  CHECK_FALSE(write("tcu-1 es256 01 " + std::string(130, 'a') + "\n").ok());  // not 04...
  CHECK_FALSE(write("tcu 1 ed25519 01 " + std::string(64, 'a') + "\n").ok());
  CHECK_FALSE(write("tcu-1 ed25519 01 " + std::string(64, 'a') + "\ntcu-1 ed25519 01 " + std::string(64, 'b') + "\n").ok());
  CHECK_FALSE(units::read_evidence_keys(dir.file("missing")).ok());
}

TEST_CASE("the checker: resend, replay, seq mismatch, broken chain, other source, wrong key", "[units][evidence]") {
  Source a("tcu-a"), b("tcu-b"), impostor("tcu-a");
  units::EvidenceChecker checker({{"tcu-a", a.pub}, {"tcu-b", b.pub}});
  auto c1 = a.checkpoint(3);
  auto v = checker.check("tcu-a", 3, c1);
  CHECK(v.check == EvidenceCheck::kVerified);
  CHECK(v.n == 1);
  CHECK(checker.check("tcu-a", 3, c1).check == EvidenceCheck::kVerified);  // a resend
  auto c2 = a.checkpoint(2);
  CHECK(checker.check("tcu-a", 99, c2).check == EvidenceCheck::kSeqMismatch);  // authentic: accepted anyway
  CHECK(checker.check("tcu-a", 3, c1).check == EvidenceCheck::kReplayed);
  (void)a.checkpoint(1);  // withheld
  auto c4 = a.checkpoint(1);
  CHECK(checker.check("tcu-a", 7, c4).check == EvidenceCheck::kBrokenChain);
  auto c5 = a.checkpoint(1);
  CHECK(checker.check("tcu-a", 8, c5).check == EvidenceCheck::kVerified);  // follows c4 again
  CHECK(checker.check("tcu-a", 3, b.checkpoint(3)).check == EvidenceCheck::kOtherSource);
  // The impostor signs tcu-a's checkpoint with its own key: the default kid
  // differs (wrong key); under tcu-a's kid the signature fails.
  CHECK(checker.check("tcu-a", 3, impostor.checkpoint(3)).check == EvidenceCheck::kWrongKey);
  impostor.signer.kid_len = a.signer.kid_len;
  std::memcpy(impostor.signer.kid, a.signer.kid, a.signer.kid_len);
  CHECK(checker.check("tcu-a", 6, impostor.checkpoint(3)).check == EvidenceCheck::kBadSignature);
  CHECK(checker.check("tcu-c", 1, Source("tcu-c").checkpoint(1)).check == EvidenceCheck::kUnchecked);
  std::vector<std::uint8_t> junk{0xd2, 0x84, 0x00};
  CHECK(checker.check("tcu-a", 9, junk).check == EvidenceCheck::kMalformed);
}

TEST_CASE("the checker moves to an announced key once a checkpoint is signed with it", "[units][evidence]") {
  Source a("tcu-r");
  units::EvidenceChecker checker({{"tcu-r", a.pub}});
  epb_ossl::Pkey next = epb_ossl::generate(EPB_EV_ALG_EDDSA);
  epb_ev_key next_pub{};
  REQUIRE(epb_ossl::public_key(next.get(), "", &next_pub));
  CHECK(checker.check("tcu-r", 2, a.checkpoint(2, &next_pub)).check == EvidenceCheck::kVerified);
  epb_ev_signer old = a.signer;
  REQUIRE(epb_ossl::signer(next.get(), "", &a.signer));
  CHECK(checker.check("tcu-r", 4, a.checkpoint(2)).check == EvidenceCheck::kVerified);  // the new key
  a.signer = old;
  CHECK(checker.check("tcu-r", 6, a.checkpoint(2)).check == EvidenceCheck::kWrongKey);  // the old one no more
}
