// The gateway's evidence chains and checkpoints (docs/evidence.md 13.4).
#include "eport/evidence/gateway_chains.h"

#include <cstring>

#include "eport/codec/codec.h"
#include "eport/evidence/canonical.h"
#include "eport/log/log.h"
#include "eport/model/clock.h"
#include "eport/model/reading.h"
#include "evidence_openssl.hpp"

namespace eport::evidence {

namespace {

constexpr std::string_view kLog = "evidence";
constexpr std::uint8_t kStateVersion = 1;

void put_u64(std::vector<std::uint8_t>& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

std::uint64_t get_u64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return v;
}

std::string hex(const std::uint8_t* p, std::size_t n) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out += kHex[p[i] >> 4];
    out += kHex[p[i] & 0x0f];
  }
  return out;
}

}  // namespace

struct GatewayChains::Source {
  std::string id;
  std::string ev_id;  // model::evidence_source_id(id): where its checkpoints go
  epb_ossl::Pkey key;
  epb_ev_key pub{};
  epb_ev_signer signer{};
  // Rotation (evidence.*_previous_key): the key the saved chain is under.
  epb_ossl::Pkey prev_key;
  epb_ev_key prev_pub{};
  epb_ev_signer prev_signer{};
  // The next checkpoint is signed with prev_key and announces pub.
  bool committed_announce = false, working_announce = false;
  // Committed state, and the state of the running transaction.
  epb_ev_chain committed{}, working{};
  bool committed_started = false, working_started = false;
  std::uint64_t committed_ev_seq = 0, working_ev_seq = 0;  // last checkpoint record's seq
  bool dirty = false;

  // State row: version, kid_len, kid, started, ev_seq, head, last_ckpt,
  // ckpt_n, range_first, last_seq, count, opened_ms, urgent.
  std::vector<std::uint8_t> state() const {
    std::vector<std::uint8_t> out;
    const epb_ev_key& under = working_announce ? prev_pub : pub;
    out.push_back(kStateVersion);
    out.push_back(under.kid_len);
    out.insert(out.end(), under.kid, under.kid + under.kid_len);
    out.push_back(working_started ? 1 : 0);
    put_u64(out, working_ev_seq);
    out.insert(out.end(), working.head, working.head + EPB_EV_HASH_LEN);
    out.insert(out.end(), working.last_ckpt, working.last_ckpt + EPB_EV_HASH_LEN);
    for (auto v : {working.ckpt_n, working.range_first, working.last_seq, working.count, working.opened_ms}) {
      put_u64(out, v);
    }
    out.push_back(working.urgent);
    return out;
  }

  // Restores from a state row; false (and nothing changed) if it does not
  // parse or was made under another key id.
  bool restore(const std::vector<std::uint8_t>& b, std::string& why) {
    if (b.size() < 2 || b[0] != kStateVersion) return why = "its format is unknown", false;
    std::size_t kid_len = b[1];
    if (b.size() != 2 + kid_len + 1 + 8 + 2 * EPB_EV_HASH_LEN + 5 * 8 + 1) return why = "its length is wrong", false;
    auto is = [&](const epb_ev_key& k) {
      return k.kid_len > 0 && kid_len == k.kid_len && std::memcmp(b.data() + 2, k.kid, kid_len) == 0;
    };
    bool announce = false;
    if (!is(pub)) {
      if (!prev_key || !is(prev_pub)) {
        return why = "it was made under key id " + hex(b.data() + 2, kid_len) + ", not " +
                     hex(pub.kid, pub.kid_len) + (prev_key ? " nor the previous key's" : ""),
               false;
      }
      announce = true;
    }
    const std::uint8_t* p = b.data() + 2 + kid_len;
    epb_ev_chain c{};
    if (epb_ev_chain_init(&c, id.data(), static_cast<std::uint8_t>(id.size()), 1) != EPB_EV_OK) {
      return why = "its source id is invalid", false;
    }
    bool started = *p++ != 0;
    std::uint64_t ev_seq = get_u64(p);
    p += 8;
    std::memcpy(c.head, p, EPB_EV_HASH_LEN);
    p += EPB_EV_HASH_LEN;
    std::memcpy(c.last_ckpt, p, EPB_EV_HASH_LEN);
    p += EPB_EV_HASH_LEN;
    c.ckpt_n = get_u64(p);
    c.range_first = get_u64(p + 8);
    c.last_seq = get_u64(p + 16);
    c.count = get_u64(p + 24);
    c.opened_ms = get_u64(p + 32);
    c.urgent = p[40];
    committed = working = c;
    committed_started = working_started = started;
    committed_ev_seq = working_ev_seq = ev_seq;
    committed_announce = working_announce = announce;
    return true;
  }
};

GatewayChains::GatewayChains() : now_ms_([] { return model::now_utc_ms(); }) {}
GatewayChains::~GatewayChains() = default;

Result<std::unique_ptr<GatewayChains>> GatewayChains::open(
    const EvidenceOptions& options, std::string_view gateway_id, const store::DerivedState& saved,
    const std::function<std::uint64_t(std::string_view)>& last_seq) {
  std::unique_ptr<GatewayChains> g(new GatewayChains());
  g->policy_.every_readings = options.checkpoint_every_readings;
  g->policy_.every_ms = static_cast<std::uint32_t>(options.checkpoint_every.count() * 1000);
  struct Wanted {
    std::string key_name, file, previous_name, previous_file;
  };
  const Wanted wanted[] = {
      {"evidence.gateway_key", options.gateway_key_file, "evidence.gateway_previous_key",
       options.gateway_previous_key_file},
      {"evidence.custody_key", options.custody_key_file, "evidence.custody_previous_key",
       options.custody_previous_key_file},
  };
  const std::string ids[] = {std::string(gateway_id), model::custody_source_id(gateway_id)};
  for (std::size_t i = 0; i < 2; ++i) {
    const auto& [key_name, file, previous_name, previous_file] = wanted[i];
    if (file.empty()) {
      if (!previous_file.empty()) return Error{previous_name + " needs " + key_name};
      continue;
    }
    auto s = std::make_unique<Source>();
    s->id = ids[i];
    s->ev_id = model::evidence_source_id(s->id);
    std::string err;
    s->key = epb_ossl::read_private_pem(file, &err);
    if (!s->key) return Error{key_name + ": " + err};
    if (epb_ossl::alg_of(s->key.get()) == 0) {
      return Error{key_name + ": " + file + " is neither an Ed25519 nor a P-256 key"};
    }
    if (!epb_ossl::public_key(s->key.get(), "", &s->pub) || !epb_ossl::signer(s->key.get(), "", &s->signer)) {
      return Error{key_name + ": " + file + ": cannot make a signer of it"};
    }
    if (!previous_file.empty()) {
      s->prev_key = epb_ossl::read_private_pem(previous_file, &err);
      if (!s->prev_key) return Error{previous_name + ": " + err};
      if (epb_ossl::alg_of(s->prev_key.get()) == 0 || !epb_ossl::public_key(s->prev_key.get(), "", &s->prev_pub) ||
          !epb_ossl::signer(s->prev_key.get(), "", &s->prev_signer)) {
        return Error{previous_name + ": " + previous_file + " is neither an Ed25519 nor a P-256 key"};
      }
    }
    const std::string row = std::string(kStateKeyPrefix) + s->id;
    const std::uint64_t stored_last = last_seq(s->id);
    for (const auto& [k, bytes] : saved) {
      if (k != row) continue;
      std::string why;
      if (!s->restore(bytes, why)) {
        log::warn(kLog, "the saved chain of " + s->id + " does not continue (" + why + "): a new chain starts");
        ++g->committed_.restarts;
      } else if (s->working_started && s->working.last_seq != stored_last) {
        log::warn(kLog, "the saved chain of " + s->id + " ends at seq " + std::to_string(s->working.last_seq) +
                            " but the store holds records up to " + std::to_string(stored_last) +
                            ": a new chain starts");
        s->committed_started = s->working_started = false;
        ++g->committed_.restarts;
      }
    }
    s->committed_ev_seq = s->working_ev_seq = std::max(s->working_ev_seq, last_seq(s->ev_id));
    log::info(kLog, s->id + " chained, key id " + hex(s->pub.kid, s->pub.kid_len) +
                        (s->working_started ? ", continuing at checkpoint " + std::to_string(s->working.ckpt_n)
                                            : ", a new chain from its next record") +
                        (s->working_announce ? "; its next checkpoint, under the previous key " +
                                                   hex(s->prev_pub.kid, s->prev_pub.kid_len) + ", announces it"
                                             : ""));
    g->sources_.push_back(std::move(s));
  }
  return g;
}

std::vector<std::string> GatewayChains::sources() const {
  std::vector<std::string> out;
  for (const auto& s : sources_) out.push_back(s->id);
  return out;
}

void GatewayChains::set_clock(std::function<std::uint64_t()> now_ms) {
  std::lock_guard lock(mu_);
  now_ms_ = std::move(now_ms);
}

bool GatewayChains::due(std::uint64_t now_ms) const {
  std::lock_guard lock(mu_);
  for (const auto& s : sources_) {
    if (s->committed_started && epb_ev_due(&s->committed, &policy_, now_ms)) return true;
  }
  return false;
}

ChainStats GatewayChains::stats() const {
  std::lock_guard lock(mu_);
  return committed_;
}

void GatewayChains::checkpoint(Source& s, std::uint64_t now, std::vector<store::Record>& out) {
  std::uint8_t buf[EPB_EV_CHECKPOINT_MAX];
  std::size_t len = 0;
  const std::uint64_t last = s.working.last_seq;  // the checkpoint's `last`
  auto st = s.working_announce
                ? epb_ev_make_checkpoint(&s.working, &s.prev_signer, now, &s.pub, buf, sizeof buf, &len)
                : epb_ev_make_checkpoint(&s.working, &s.signer, now, nullptr, buf, sizeof buf, &len);
  if (st != EPB_EV_OK) {
    if (pending_.sign_failures++ == 0) {
      log::error(kLog, "cannot sign a checkpoint of " + s.id + ": " + epb_ev_status_name(st));
    }
    return;
  }
  model::Reading ck;
  ck.source_id = s.ev_id;
  // Keyed like a unit's (docs/evidence.md 13.2): seq = the checkpoint's
  // `last`; above the previous checkpoint record's even if the source's seqs
  // began again (the store forgot it), so that it is always stored.
  s.working_ev_seq = std::max(last, s.working_ev_seq + 1);
  ck.seq = s.working_ev_seq;
  ck.time_utc_ms = now;
  ck.payload = model::EvidenceCheckpoint{std::vector<std::uint8_t>(buf, buf + len), s.working.ckpt_n,
                                         model::EvidenceCheck::kVerified};
  out.push_back(store::Record{ck.source_id, ck.seq, model::Priority::kAlarm, now, codec::encode_reading(ck)});
  s.working_announce = false;  // announced: the new key signs from now on
  s.dirty = true;
  ++pending_.checkpoints;
}

void GatewayChains::stored(const store::Record& r, std::vector<store::Record>& out) {
  std::lock_guard lock(mu_);
  Source* s = nullptr;
  for (auto& c : sources_) {
    if (c->id == r.source_id) s = c.get();
  }
  if (s == nullptr) return;
  auto reading = codec::decode_reading(r.body);
  if (!reading) return;  // not a record the agent encoded: cannot be
  auto bytes = canonical_bytes(*reading);
  if (!bytes) return;  // a declared gap: not a record of the chain
  const auto now = now_ms_();
  const int alarm = r.priority == model::Priority::kAlarm ? 1 : 0;
  const auto src_len = static_cast<std::uint8_t>(s->id.size());
  if (!s->working_started) {
    if (epb_ev_chain_init(&s->working, s->id.data(), src_len, r.seq) != EPB_EV_OK) return;
    s->working_started = true;
  }
  auto st = epb_ev_append_bytes(&s->working, r.seq, bytes->data(), bytes->size(), now, alarm);
  if (st == EPB_EV_ERR_SEQ) {
    // The store forgot the source and its seqs began again: so does the chain.
    log::warn(kLog, s->id + " seq " + std::to_string(r.seq) + " is not above the chain's last, " +
                        std::to_string(s->working.last_seq) + ": a new chain starts");
    ++pending_.restarts;
    if (epb_ev_chain_init(&s->working, s->id.data(), src_len, r.seq) != EPB_EV_OK) return;
    st = epb_ev_append_bytes(&s->working, r.seq, bytes->data(), bytes->size(), now, alarm);
  }
  if (st != EPB_EV_OK) return;
  s->dirty = true;
  ++pending_.linked;
  if (epb_ev_due(&s->working, &policy_, now)) checkpoint(*s, now, out);
}

void GatewayChains::cover_all_next() {
  std::lock_guard lock(mu_);
  cover_all_ = true;
}

void GatewayChains::begin(std::vector<store::Record>& out) {
  std::lock_guard lock(mu_);
  const auto now = now_ms_();
  const bool all = cover_all_;
  cover_all_ = false;
  for (auto& s : sources_) {
    if (!s->working_started || s->working.count == 0) continue;
    if (all || epb_ev_due(&s->working, &policy_, now)) checkpoint(*s, now, out);
  }
}

void GatewayChains::state_changes(store::DerivedState& out) {
  std::lock_guard lock(mu_);
  for (auto& s : sources_) {
    if (s->dirty) out.emplace_back(std::string(kStateKeyPrefix) + s->id, s->state());
  }
}

void GatewayChains::finished(bool committed) {
  std::lock_guard lock(mu_);
  for (auto& s : sources_) {
    if (committed) {
      s->committed = s->working;
      s->committed_started = s->working_started;
      s->committed_ev_seq = s->working_ev_seq;
      s->committed_announce = s->working_announce;
    } else {
      s->working = s->committed;
      s->working_started = s->committed_started;
      s->working_ev_seq = s->committed_ev_seq;
      s->working_announce = s->committed_announce;
    }
    s->dirty = false;
  }
  if (committed) {
    committed_.linked += pending_.linked;
    committed_.checkpoints += pending_.checkpoints;
    committed_.sign_failures += pending_.sign_failures;
    committed_.restarts += pending_.restarts;
  }
  pending_ = {};
}

}  // namespace eport::evidence
