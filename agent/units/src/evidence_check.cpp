// The bridge's check of units' evidence checkpoints (docs/evidence.md 13):
// the C99 parser and Sig_structure of eport::epb, OpenSSL's verify through
// the reference callback, and the chain rule of epb_ev_verifier without the
// readings.
#include "eport/units/evidence_check.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "eport/model/ids.h"
#include "evidence_openssl.hpp"

namespace eport::units {

namespace {

bool unhex(const std::string& hex, std::uint8_t* out, std::size_t max, std::size_t* len) {
  if (hex.empty() || hex.size() % 2 != 0 || hex.size() / 2 > max) return false;
  if (hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) return false;
  for (std::size_t i = 0; i < hex.size() / 2; ++i) {
    out[i] = static_cast<std::uint8_t>(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
  }
  *len = hex.size() / 2;
  return true;
}

bool same_key(const epb_ev_key& k, const epb_ev_checkpoint& ck) {
  return k.kid_len != 0 && k.alg == ck.alg && k.kid_len == ck.kid_len && std::memcmp(k.kid, ck.kid, k.kid_len) == 0;
}

}  // namespace

Result<std::map<std::string, epb_ev_key>> read_evidence_keys(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error{"cannot read " + path + ": " + std::strerror(errno)};
  std::map<std::string, epb_ev_key> keys;
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    auto where = path + ":" + std::to_string(line_no) + ": ";
    std::istringstream words(line);
    std::string unit, alg, kid, pub, extra;
    words >> unit >> alg >> kid >> pub >> extra;
    if (pub.empty() || !extra.empty()) return Error{where + "expected \"UNIT_ID ALG KID_HEX PUBKEY_HEX\" (four fields)"};
    if (auto problem = model::topic_id_problem(unit, EPB_EV_SOURCE_MAX); !problem.empty()) {
      return Error{where + "unit id " + model::quoted_id(unit) + " " + problem};
    }
    epb_ev_key k{};
    std::size_t want = 0;
    if (alg == "ed25519") {
      k.alg = EPB_EV_ALG_EDDSA;
      want = 32;
    } else if (alg == "es256") {
      k.alg = EPB_EV_ALG_ES256;
      want = 65;
    } else {
      return Error{where + "alg \"" + alg + "\" is neither ed25519 nor es256"};
    }
    std::size_t n = 0;
    if (!unhex(kid, k.kid, EPB_EV_KID_MAX, &n)) return Error{where + "the key id is not 1..16 bytes of hex"};
    k.kid_len = static_cast<std::uint8_t>(n);
    if (!unhex(pub, k.pub, EPB_EV_PUB_MAX, &n) || n != want || (want == 65 && k.pub[0] != 0x04)) {
      return Error{where + "the public key is not " + std::to_string(want) + " bytes of hex" +
                   (want == 65 ? " starting 04" : "")};
    }
    k.pub_len = static_cast<std::uint8_t>(n);
    if (!keys.emplace(unit, k).second) return Error{where + "unit " + unit + " is listed twice"};
  }
  return keys;
}

EvidenceChecker::EvidenceChecker(std::map<std::string, epb_ev_key> keys) {
  for (auto& [unit, key] : keys) units_[unit].key = key;
}

bool EvidenceChecker::has_key(std::string_view unit) const { return units_.find(unit) != units_.end(); }

void EvidenceChecker::reading(std::string_view unit, std::uint64_t seq, std::span<const std::uint8_t> r) {
  auto it = units_.find(unit);
  if (it == units_.end() || r.empty()) return;
  Unit& u = it->second;
  if (u.fed_from == 0) u.fed_from = seq;
  u.readings.emplace_back(seq, std::vector<std::uint8_t>(r.begin(), r.end()));
  if (u.readings.size() > kMaxPendingReadings) {
    u.readings.pop_front();
    u.fed_from = u.readings.front().first;  // what was dropped can no longer be checked
  }
}

EvidenceVerdict EvidenceChecker::check(std::string_view unit, std::uint64_t seq, std::span<const std::uint8_t> cose) {
  EvidenceVerdict v;
  epb_ev_checkpoint ck;
  if (auto st = epb_ev_parse(cose.data(), cose.size(), &ck); st != EPB_EV_OK) {
    v.check = model::EvidenceCheck::kMalformed;
    v.detail = epb_ev_status_name(st);
    return v;
  }
  v.n = ck.n;
  v.time_ms = ck.time_ms;
  if (std::string_view(ck.src, ck.src_len) != unit) {
    v.check = model::EvidenceCheck::kOtherSource;
    v.detail = "a checkpoint of " + model::quoted_id(std::string_view(ck.src, ck.src_len));
    return v;
  }
  auto it = units_.find(unit);
  if (it == units_.end()) {
    v.check = model::EvidenceCheck::kUnchecked;
    return v;
  }
  Unit& u = it->second;
  const bool by_next = !same_key(u.key, ck) && same_key(u.next, ck);
  if (!same_key(u.key, ck) && !by_next) {
    v.check = model::EvidenceCheck::kWrongKey;
    v.detail = "signed under a key id this unit does not have";
    return v;
  }
  const epb_ev_key& key = by_next ? u.next : u.key;
  std::uint8_t tbs[EPB_EV_TBS_MAX];
  std::size_t tbs_len = epb_ev_encode_tbs(&ck, tbs, sizeof tbs);
  if (tbs_len == 0 || epb_ossl::verify(nullptr, key.alg, key.pub, key.pub_len, tbs, tbs_len, ck.sig) != 1) {
    v.check = model::EvidenceCheck::kBadSignature;
    v.detail = "the signature does not verify";
    return v;
  }
  std::uint8_t id[EPB_EV_HASH_LEN];
  epb_sha256(tbs, tbs_len, id);
  if (u.have_last && std::memcmp(id, u.last_id, sizeof id) == 0) {
    v.check = model::EvidenceCheck::kVerified;  // the last accepted one again: a resend
    return v;
  }
  if (u.have_last && ck.n <= u.last_n) {
    v.check = model::EvidenceCheck::kReplayed;
    v.detail = "checkpoint " + std::to_string(ck.n) + " is not above the last accepted, " + std::to_string(u.last_n);
    return v;
  }
  // Authentic and new: it becomes the last accepted whatever follows, so one
  // bad link never hides the next (as epb_ev_verifier does).
  bool follows = !u.have_last || (ck.n == u.last_n + 1 && ck.has_prev &&
                                  std::memcmp(ck.prev, u.last_id, sizeof id) == 0 && ck.first == u.last_last + 1);
  std::string chain_detail;
  if (!follows) {
    chain_detail = "checkpoint " + std::to_string(ck.n) + " (" + std::to_string(ck.first) + ".." +
                   std::to_string(ck.last) + ") does not follow checkpoint " + std::to_string(u.last_n) +
                   " (up to " + std::to_string(u.last_last) + ")";
  }
  // The head over the readings stored here, when the whole range is here
  // and where it starts is known (the last accepted head, or genesis).
  // After a break the range's start is the head of a checkpoint not accepted here: unknown.
  bool start_known = u.have_last ? follows : ck.n == 1;
  bool readings_match = true;
  std::string readings_detail;
  if (start_known && u.fed_from != 0 && u.fed_from <= ck.first) {
    std::uint8_t h[EPB_EV_HASH_LEN];
    if (u.have_last) {
      std::memcpy(h, u.last_head, sizeof h);
    } else {
      epb_ev_genesis(ck.src, ck.src_len, h);
    }
    std::uint64_t count = 0;
    for (const auto& [s, r] : u.readings) {
      if (s < ck.first || s > ck.last) continue;
      epb_ev_link(h, s, r.data(), r.size(), h);
      ++count;
    }
    v.head_checked = true;
    if (count != ck.count || std::memcmp(h, ck.head, sizeof h) != 0) {
      readings_match = false;
      readings_detail = std::to_string(count) + " readings stored here in " + std::to_string(ck.first) + ".." +
                        std::to_string(ck.last) + (count != ck.count ? " where it counts " + std::to_string(ck.count)
                                                                     : std::string(", not hashing to its head"));
    }
  }
  while (!u.readings.empty() && u.readings.front().first <= ck.last) u.readings.pop_front();
  std::memcpy(u.last_head, ck.head, sizeof ck.head);
  if (by_next) {
    u.key = u.next;
    u.next = epb_ev_key{};
  }
  if (ck.has_next_key) u.next = ck.next_key;
  u.have_last = true;
  u.last_n = ck.n;
  u.last_last = ck.last;
  std::memcpy(u.last_id, id, sizeof id);
  if (ck.last != seq) {
    v.check = model::EvidenceCheck::kSeqMismatch;
    v.detail = "it covers up to seq " + std::to_string(ck.last) + " but was sent as " + std::to_string(seq);
  } else if (!follows) {
    v.check = model::EvidenceCheck::kBrokenChain;
    v.detail = chain_detail;
  } else if (!readings_match) {
    v.check = model::EvidenceCheck::kReadingsMismatch;
    v.detail = readings_detail;
  } else {
    v.check = model::EvidenceCheck::kVerified;
  }
  return v;
}

}  // namespace eport::units
