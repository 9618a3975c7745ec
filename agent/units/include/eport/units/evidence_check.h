// The agent's check of the evidence checkpoints units send (docs/evidence.md
// section 13): strict parsing, the unit's key and signature, and the
// checkpoint chain (n, prev, first) against the last checkpoint accepted
// from that unit since the agent started. The verdict travels with the
// checkpoint, which is forwarded whatever it is. The head over the readings
// is checked when the agent has, in memory, every reading of the range
// (fed at commit, reading()); after a restart the first ranges are not.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>
#include <map>
#include <span>
#include <string>
#include <string_view>

#include <epb/evidence.h>

#include "eport/model/reading.h"
#include "eport/model/result.h"

namespace eport::units {

// bridge.evidence_keys: one line per unit, "UNIT_ID ALG KID_HEX PUBKEY_HEX"
// (ALG ed25519 or es256; KID 1..16 bytes; the raw public key, 32 bytes for
// ed25519, the 65-byte point 04||x||y for es256, as `epb-evidence keygen`
// prints them); '#' comments and blank lines. Errors name the file and line.
Result<std::map<std::string, epb_ev_key>> read_evidence_keys(const std::string& path);

struct EvidenceVerdict {
  model::EvidenceCheck check = model::EvidenceCheck::kUnchecked;
  std::uint64_t n = 0;        // checkpoint number, 0 if it did not parse
  std::uint64_t time_ms = 0;  // the checkpoint's time, 0 if none or it did not parse
  std::string detail;         // for the log: what failed
  bool head_checked = false;  // the readings of its range were all here and hashed (to its head or not)
};

// Not thread-safe: the bridge thread owns it. Memory: one small state per
// unit with a key (bounded by the keys file).
class EvidenceChecker {
 public:
  explicit EvidenceChecker(std::map<std::string, epb_ev_key> keys = {});

  bool has_key(std::string_view unit) const;

  // A reading of a unit with a key, committed to the store (each seq once,
  // in seq order): its canonical bytes R, kept until a checkpoint covers it.
  // At most kMaxPendingReadings per unit: beyond, the oldest are dropped and
  // the range holding them is not head-checked.
  void reading(std::string_view unit, std::uint64_t seq, std::span<const std::uint8_t> r);
  static constexpr std::size_t kMaxPendingReadings = 4096;

  // Checks checkpoint cose, sent by `unit` under EVIDENCE seq `seq`. In this
  // order: parses (kMalformed), is the unit's (kOtherSource), a key for the
  // unit (kUnchecked: none), key id current or announced (kWrongKey),
  // signature (kBadSignature); then the last accepted one again: kVerified,
  // nothing changes; a number not above the last accepted (kReplayed);
  // otherwise it is authentic and new and becomes the last accepted, and is
  // kSeqMismatch (its `last` is not seq), kBrokenChain (n, prev or first do
  // not follow the last accepted) or kVerified. The first checkpoint of a
  // unit after the agent started has nothing to follow: only its own
  // signature is checked. Then, with every reading of first..last fed since
  // the agent started and the previous checkpoint's head (or genesis for
  // n = 1), the readings must be `count` and hash to `head`, else
  // kReadingsMismatch (head_checked says whether it could be checked).
  EvidenceVerdict check(std::string_view unit, std::uint64_t seq, std::span<const std::uint8_t> cose);

 private:
  struct Unit {
    epb_ev_key key{};
    epb_ev_key next{};  // kid_len 0: none announced
    bool have_last = false;
    std::uint64_t last_n = 0, last_last = 0;
    std::uint8_t last_id[EPB_EV_HASH_LEN] = {};
    std::uint8_t last_head[EPB_EV_HASH_LEN] = {};
    std::uint64_t fed_from = 0;  // every reading from this seq on was fed (0: none yet)
    std::deque<std::pair<std::uint64_t, std::vector<std::uint8_t>>> readings;  // fed, not yet covered
  };
  std::map<std::string, Unit, std::less<>> units_;
};

}  // namespace eport::units
