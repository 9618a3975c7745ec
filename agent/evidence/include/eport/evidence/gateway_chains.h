// The gateway's own evidence sources (docs/evidence.md 13.4): the records
// the gateway produces itself, its GNSS fixes (source `<gateway id>`) and
// its derived custody events (`<gateway id>:custody`), each source with its
// hash chain and signed checkpoints, as a unit keeps them (sections 4-6).
// It is the store's chain (store::Outbox::set_chain): it sees every record
// as the transaction that stores it runs, links those of its sources, and
// adds each checkpoint as a record of `<source>:ev` (seq = its number) to
// the same transaction, with the chain state as a state row
// ("evidence/<source>"). So a crash at any moment neither skips a record
// nor signs one that was not stored, and checkpoints travel, are kept and
// are published exactly like a unit's (section 13).
//
// Thread-safety: the Deriver calls come under the outbox's lock (one at a
// time); due() and stats() may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <epb/evidence.h>

#include "eport/model/result.h"
#include "eport/store/outbox.h"

namespace eport::evidence {

// Every field a config key sets has its one default here (config_keys.cpp).
struct EvidenceOptions {
  std::string gateway_key_file;  // signs source <gateway id> (its GNSS); empty: not chained
  std::string custody_key_file;  // signs source <gateway id>:custody; empty: not chained
  // Rotation: the key each chain was signed with until now. A chain saved
  // under it makes its next checkpoint with it, announcing the new key
  // (docs/evidence.md 5, key 9), and is signed with the new key after that.
  std::string gateway_previous_key_file;
  std::string custody_previous_key_file;
  std::uint32_t checkpoint_every_readings = EPB_EV_DEFAULT_EVERY_READINGS;
  std::chrono::seconds checkpoint_every{EPB_EV_DEFAULT_EVERY_MS / 1000};
};

// Prefix of the state rows (one per chained source).
inline constexpr std::string_view kStateKeyPrefix = "evidence/";

struct ChainStats {
  std::uint64_t linked = 0;         // records appended to a chain (committed)
  std::uint64_t checkpoints = 0;    // checkpoints made (committed)
  std::uint64_t sign_failures = 0;  // a signer that failed (the checkpoint is tried again later)
  std::uint64_t restarts = 0;       // chains started afresh (a new key, or records stored unchained)
};

class GatewayChains final : public store::Deriver {
 public:
  // Loads the keys (PKCS#8 PEM, Ed25519 or P-256; the key id is the default
  // one, section 14) and restores each source's chain from `saved`. A chain
  // is started afresh, with a warning, when its saved state was made under
  // another key or does not end at the source's last stored seq
  // (`last_seq`): records were stored that it does not cover. A chain saved
  // under the previous key (rotation) continues, announcing the new one.
  // Errors name the key file.
  static Result<std::unique_ptr<GatewayChains>> open(const EvidenceOptions& options, std::string_view gateway_id,
                                                     const store::DerivedState& saved,
                                                     const std::function<std::uint64_t(std::string_view)>& last_seq);
  ~GatewayChains() override;

  // Sources chained, in the order configured.
  std::vector<std::string> sources() const;

  // A checkpoint is due by the time rule at UTC `now_ms`: run
  // outbox.append({}, this) to make it.
  bool due(std::uint64_t now_ms) const;
  // Before a planned stop (docs/evidence.md 6: a source should make a
  // checkpoint before it shuts down): the next begin() covers every
  // uncovered record, whatever the policy. Run outbox.append({}, this).
  void cover_all_next();
  ChainStats stats() const;

  void stored(const store::Record& r, std::vector<store::Record>& out) override;
  void begin(std::vector<store::Record>& out) override;
  void state_changes(store::DerivedState& out) override;
  void finished(bool committed) override;

  // The clock (UTC ms) the chains use; tests set it.
  void set_clock(std::function<std::uint64_t()> now_ms);

 private:
  struct Source;
  GatewayChains();
  void checkpoint(Source& s, std::uint64_t now, std::vector<store::Record>& out);

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Source>> sources_;
  epb_ev_policy policy_{};
  ChainStats committed_{}, pending_{};
  bool cover_all_ = false;
  std::function<std::uint64_t()> now_ms_;
};

}  // namespace eport::evidence
