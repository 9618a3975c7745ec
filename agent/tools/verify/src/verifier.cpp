// Verifying a whole capture (docs/evidence.md sections 7 and 15). Three
// passes, as eport_verify.py makes them, so that both give the same verdicts:
//  1. readings per source by seq, one copy each ("conflicting copies" when
//     two differ);
//  2. every checkpoint authenticated on its own: parsed (epb_ev_parse), its
//     kid found in the registry for its source and alg, its signature
//     checked (epb_ossl::verify), the revocation rule of section 14; one
//     authentic checkpoint per (source, n), another with the same n is
//     "replayed checkpoint";
//  3. per source, the authentic checkpoints in order of n through
//     epb_ev_verifier: each range's readings, then its checkpoint; the
//     verifier's status names the range's problem (chain broken, missing,
//     altered), then readings no range holds and the unverified tail.
#include "eport/verify/verifier.h"

#include <epb/evidence.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <set>

#include "evidence_openssl.hpp"
#include "hex.h"
#include "seq_ranges.h"

namespace eport::verify {
namespace {

using Bytes = std::vector<std::uint8_t>;

struct Authentic {
  epb_ev_checkpoint ck;
  const Bytes* cose = nullptr;
  std::array<std::uint8_t, EPB_EV_HASH_LEN> id{};
  Bytes tbs;
  const RegistryKey* key = nullptr;
};

// The verify callback of the walk: the signature of the checkpoint being fed
// was checked in pass 2, so the same bytes are not checked again (one
// Ed25519 verification per checkpoint, about 90 us); anything else goes to
// OpenSSL.
struct Checked {
  const Authentic* current = nullptr;
};

int checked_verify(void* ctx, int32_t alg, const uint8_t* pub, size_t pub_len, const uint8_t* tbs, size_t tbs_len,
                   const uint8_t sig[EPB_EV_SIG_LEN]) {
  const Authentic* a = static_cast<Checked*>(ctx)->current;
  if (a != nullptr && alg == a->key->alg && pub_len == a->key->pub.size() &&
      std::memcmp(pub, a->key->pub.data(), pub_len) == 0 && tbs_len == a->tbs.size() &&
      std::memcmp(tbs, a->tbs.data(), tbs_len) == 0 && std::memcmp(sig, a->ck.sig, EPB_EV_SIG_LEN) == 0)
    return 1;
  return epb_ossl::verify(nullptr, alg, pub, pub_len, tbs, tbs_len, sig);
}

epb_ev_key key_of(const Authentic& a) {
  epb_ev_key k{};
  k.alg = a.key->alg;
  k.kid_len = a.ck.kid_len;
  std::memcpy(k.kid, a.ck.kid, a.ck.kid_len);
  k.pub_len = static_cast<std::uint8_t>(a.key->pub.size());  // 32 or 65: its signature verified
  std::memcpy(k.pub, a.key->pub.data(), a.key->pub.size());
  return k;
}

using detail::ranges;

struct Stored {
  bool canonical;
  const Bytes* r;
};

using Problems = std::map<std::string, std::vector<Problem>>;

void add(Problems& p, const std::string& src, std::string kind, std::optional<std::uint64_t> first,
         std::optional<std::uint64_t> last, std::string detail) {
  p[src].push_back({std::move(kind), first, last, std::move(detail)});
}

}  // namespace

Report verify(const Capture& capture, const Registry& registry) {
  Report report;
  report.readings = capture.readings.size();
  Problems problems;

  // 1. Readings by source and seq; the first copy counts.
  std::map<std::string, std::map<std::uint64_t, Stored>> by_source;
  for (const auto& r : capture.readings) {
    auto& seen = by_source[r.source];
    auto [it, fresh] = seen.emplace(r.seq, Stored{r.canonical, &r.r});
    if (!fresh && (it->second.canonical != r.canonical || *it->second.r != r.r)) {
      add(problems, r.source, "conflicting copies", r.seq, r.seq, "two different readings with one seq");
    }
  }
  std::map<std::string, std::vector<const DeclaredGap*>> gaps;
  for (const auto& g : capture.gaps) gaps[g.source].push_back(&g);

  // 2. Each checkpoint on its own.
  std::map<std::string, std::map<std::uint64_t, Authentic>> chains;
  for (const Bytes& cose : capture.checkpoints) {
    Authentic a;
    epb_ev_status st = epb_ev_parse(cose.data(), cose.size(), &a.ck);
    if (st != EPB_EV_OK) {
      add(problems, "?", "malformed checkpoint", std::nullopt, std::nullopt,
          std::string("not a checkpoint as docs/evidence.md section 5 defines it: ") + epb_ev_status_name(st));
      continue;
    }
    const epb_ev_checkpoint& c = a.ck;
    const std::string src(c.src, c.src_len), n = std::to_string(c.n), kid = detail::hex(c.kid, c.kid_len);
    auto keys = registry.find(kid);
    for (const RegistryKey* k : keys) {
      if (k->source == src && k->alg == c.alg) {
        a.key = k;
        break;
      }
    }
    if (a.key == nullptr) {
      if (!keys.empty()) {
        add(problems, src, "key of another source", c.first, c.last,
            "checkpoint " + n + " signed with kid " + kid + " of " + keys.front()->source);
      } else {
        add(problems, src, "unknown key", c.first, c.last, "checkpoint " + n + ": kid " + kid);
      }
      continue;
    }
    a.tbs.resize(EPB_EV_TBS_MAX);
    a.tbs.resize(epb_ev_encode_tbs(&c, a.tbs.data(), a.tbs.size()));
    if (a.tbs.empty() || epb_ossl::verify(nullptr, c.alg, a.key->pub.data(), a.key->pub.size(), a.tbs.data(),
                                          a.tbs.size(), c.sig) != 1) {
      add(problems, src, "bad signature", c.first, c.last, "checkpoint " + n);
      continue;
    }
    if (a.key->status == "revoked" && (a.key->reason == "keyCompromise" || c.time_ms > a.key->revoked_ms)) {
      add(problems, src, "revoked key", c.first, c.last,
          "checkpoint " + n + ": kid " + a.key->kid + " (" + a.key->reason + ")");
      continue;
    }
    epb_sha256(a.tbs.data(), a.tbs.size(), a.id.data());
    a.cose = &cose;
    auto& chain = chains[src];
    if (auto it = chain.find(c.n); it != chain.end()) {
      if (it->second.id != a.id) {
        add(problems, src, "replayed checkpoint", c.first, c.last,
            "two different checkpoints " + n + ": one is replayed from another chain");
      }
      continue;  // the same checkpoint again: a resend, no problem
    }
    chain.emplace(c.n, std::move(a));
  }

  // 3. Per source, the checkpoints in order of n through the streaming verifier.
  std::set<std::string> sources;
  for (const auto& [s, _] : by_source) sources.insert(s);
  for (const auto& [s, _] : chains) sources.insert(s);
  for (const auto& [s, _] : problems) {
    if (s != "?") sources.insert(s);
  }
  static const std::map<std::uint64_t, Stored> kNoReadings;
  static const std::map<std::uint64_t, Authentic> kNoChain;
  for (const std::string& src : sources) {
    auto bs = by_source.find(src);
    const auto& seqs = bs == by_source.end() ? kNoReadings : bs->second;
    auto cs = chains.find(src);
    const auto& chain = cs == chains.end() ? kNoChain : cs->second;
    SourceReport out;
    out.source = src;
    out.checkpoints = chain.size();
    std::vector<std::pair<std::uint64_t, std::uint64_t>> verified, broken;
    std::set<std::uint64_t> covered;
    std::optional<std::array<std::uint8_t, EPB_EV_KID_MAX + 1>> current_kid;  // [0]: length
    epb_ev_verifier v;
    Checked checked;
    bool started = false;
    std::optional<std::uint64_t> accepted_last;
    for (const auto& [n, a] : chain) {
      const epb_ev_checkpoint& c = a.ck;
      const std::string ns = std::to_string(n);
      const epb_ev_key key = key_of(a);
      if (!started) {
        if (epb_ev_verifier_init(&v, src.data(), static_cast<std::uint8_t>(src.size()), &key, checked_verify,
                                 &checked) != EPB_EV_OK)
          break;  // cannot happen: src parsed, the key verified a signature
        started = true;
      }
      // Each checkpoint is checked under the registry key that pass 2 found
      // for it; which key was due (rotation) is judged below, as a problem of
      // its own, so that a wrong rotation does not hide the range's result.
      v.key = key;
      std::memset(&v.next, 0, sizeof v.next);
      // A range starts after the last accepted one (an earlier, out-of-line
      // checkpoint may have reached further: its range was reported broken).
      if (v.last_seq > v.ck_last) v.last_seq = v.ck_last;
      const std::uint64_t prev_n = v.ck_n, prev_last = v.ck_last;

      std::vector<std::uint64_t> in_range;
      bool unencodable = false;
      for (auto it = seqs.lower_bound(c.first); it != seqs.end() && it->first <= c.last; ++it) {
        in_range.push_back(it->first);
        covered.insert(it->first);
        if (!it->second.canonical) {
          unencodable = true;  // never linked: the range cannot give its head
          continue;
        }
        // epb_ev_verifier_reading takes a unit's R (an epb READING body); a
        // payload kind with a canonical form of its own needs the library to
        // link that form too before its builder (capture.cpp) can feed it here.
        (void)epb_ev_verifier_reading(&v, it->second.r->data(), it->second.r->size());
      }
      checked.current = &a;
      epb_ev_status st = epb_ev_verifier_checkpoint(&v, a.cose->data(), a.cose->size(), nullptr);
      checked.current = nullptr;
      accepted_last = c.last;

      if (st == EPB_EV_ERR_CKPT_CHAIN) {
        if (prev_n == 0) {
          add(problems, src, "checkpoint chain broken", std::nullopt, c.first - 1,
              "checkpoints before " + ns + " are missing: readings before " + std::to_string(c.first) +
                  " are unverified");
          broken.emplace_back(0, c.first - 1);
        } else {
          add(problems, src, "checkpoint chain broken", prev_last + 1, c.first - 1,
              "after checkpoint " + std::to_string(prev_n) + " comes " + ns +
                  ": a checkpoint is missing or the chain restarted");
          broken.emplace_back(prev_last + 1, c.first - 1);
        }
      }
      std::array<std::uint8_t, EPB_EV_KID_MAX + 1> kid{};
      kid[0] = c.kid_len;
      std::memcpy(kid.data() + 1, c.kid, c.kid_len);
      if (current_kid && *current_kid != kid) {
        add(problems, src, "bad signature", c.first, c.last, "checkpoint " + ns + " not under the announced key");
      }
      current_kid = kid;
      if (c.has_next_key) {
        (*current_kid).fill(0);
        (*current_kid)[0] = c.next_key.kid_len;
        std::memcpy(current_kid->data() + 1, c.next_key.kid, c.next_key.kid_len);
      }

      if (st == EPB_EV_ERR_CKPT_CHAIN) {
        add(problems, src, "unverifiable", c.first, c.last, "checkpoint " + ns + ": its start head is unknown");
        continue;
      }
      if (unencodable) st = in_range.size() < c.count ? EPB_EV_ERR_MISSING : EPB_EV_ERR_CHAIN;
      if (st == EPB_EV_OK) {
        verified.emplace_back(c.first, c.last);
      } else if (st == EPB_EV_ERR_MISSING) {
        // The holes of first..last, and whether declared gaps cover each.
        std::vector<std::pair<std::uint64_t, std::uint64_t>> undeclared;
        std::uint64_t expect = c.first;
        auto hole = [&](std::uint64_t a0, std::uint64_t b0) {
          for (const DeclaredGap* g : gaps[src]) {
            if (g->first_seq <= c.last && g->last_seq >= c.first && g->first_seq <= a0 && b0 <= g->last_seq) return;
          }
          undeclared.emplace_back(a0, b0);
        };
        for (std::uint64_t s : in_range) {
          if (s > expect) hole(expect, s - 1);
          expect = s + 1;
        }
        if (expect <= c.last) hole(expect, c.last);
        add(problems, src, undeclared.empty() ? "declared discarded" : "missing readings", c.first, c.last,
            std::to_string(c.count - in_range.size()) + " of " + std::to_string(c.count) + " readings absent" +
                (undeclared.empty() ? std::string(" (a DISCARD covers them)") : " (seqs " + ranges(undeclared) + ")"));
      } else if (st == EPB_EV_ERR_EXTRA || st == EPB_EV_ERR_CHAIN) {
        add(problems, src, "altered", c.first, c.last,
            "checkpoint " + ns + ": the readings do not give its head (altered, substituted or forged)");
      } else {
        add(problems, src, "unverifiable", c.first, c.last,
            "checkpoint " + ns + ": refused by the streaming verifier (" + epb_ev_status_name(st) + ")");
      }
    }

    // Readings inside the span the checkpoints cover that no range holds.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> stray;
    std::uint64_t tail_n = 0;
    for (const auto& [s, _] : seqs) {
      if (accepted_last && s > *accepted_last) {
        if (tail_n++ == 0) out.unverified_tail = Tail{s, s, 0};
        out.unverified_tail->last = s;
        continue;
      }
      if (!accepted_last) {
        if (tail_n++ == 0) out.unverified_tail = Tail{s, s, 0};
        out.unverified_tail->last = s;
        continue;
      }
      if (covered.count(s) != 0) continue;
      bool in_broken = false;
      for (const auto& [a, b] : broken) in_broken = in_broken || (a <= s && s <= b);
      if (in_broken) continue;
      if (!stray.empty() && stray.back().second + 1 == s) {
        stray.back().second = s;
      } else {
        stray.emplace_back(s, s);
      }
    }
    if (out.unverified_tail) out.unverified_tail->readings = tail_n;
    for (const auto& [a, b] : stray) {
      add(problems, src, "not covered", a, b, "readings no checkpoint range holds (forged or misplaced)");
    }
    // Verified ranges, adjacent ones merged; readings counted once.
    std::sort(verified.begin(), verified.end());
    for (const auto& [a, b] : verified) {
      if (!out.verified.empty() && a == out.verified.back().second + 1) {
        out.verified.back().second = b;
      } else {
        out.verified.emplace_back(a, b);
      }
    }
    // Readings inside the union of the verified ranges: one sweep over both, sorted.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> span;
    for (const auto& [a, b] : verified) {
      if (!span.empty() && a <= span.back().second + 1) {
        span.back().second = std::max(span.back().second, b);
      } else {
        span.emplace_back(a, b);
      }
    }
    auto range = span.begin();
    for (std::uint64_t s : covered) {
      while (range != span.end() && range->second < s) ++range;
      if (range == span.end()) break;
      if (range->first <= s) ++out.readings_verified;
    }
    if (auto p = problems.find(src); p != problems.end() && src != "?") out.problems = std::move(p->second);
    report.sources.push_back(std::move(out));
  }
  // "?" holds the checkpoints that did not parse. A source that is really
  // called "?" shares it: its problems join them and its report is that one,
  // as eport_verify.py has it (one member per name in the JSON report).
  if (auto p = problems.find("?"); p != problems.end()) {
    SourceReport q;
    q.source = "?";
    q.problems = std::move(p->second);
    auto same = std::find_if(report.sources.begin(), report.sources.end(),
                             [](const SourceReport& r) { return r.source == "?"; });
    if (same != report.sources.end()) {
      *same = std::move(q);
    } else {
      report.sources.push_back(std::move(q));
    }
  }
  return report;
}

}  // namespace eport::verify
