// eport-verify's verification of a whole capture (docs/evidence.md sections 7
// and 15): per source it orders and de-duplicates the readings, authenticates
// each checkpoint against the registry (key, signature, revocation, one per
// number), then walks the checkpoints in order of n through the C library's
// streaming verifier epb_ev_verifier, feeding each range's readings before
// its checkpoint, and names every problem by the kinds of section 15. The
// verdicts are those of examples/python/eport_verify.py, kind for kind.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "eport/verify/capture.h"
#include "eport/verify/registry.h"

namespace eport::verify {

struct Problem {
  std::string kind;                  // "missing readings", "altered", ... (section 15)
  std::optional<std::uint64_t> first, last;  // the seq range concerned, when there is one
  std::string detail;
};

struct Tail {
  std::uint64_t first = 0, last = 0, readings = 0;
};

struct SourceReport {
  std::string source;                // "?" for checkpoints that did not parse
  std::uint64_t checkpoints = 0;     // authentic checkpoints, one per n
  std::vector<std::pair<std::uint64_t, std::uint64_t>> verified;  // merged seq ranges
  std::uint64_t readings_verified = 0;
  std::vector<Problem> problems;
  std::optional<Tail> unverified_tail;  // readings after the last accepted checkpoint
};

struct Report {
  std::vector<SourceReport> sources;  // by source id, then "?" if any checkpoint was malformed
  std::uint64_t readings = 0;         // readings given (with copies), for throughput figures
};

Report verify(const Capture& capture, const Registry& registry);

}  // namespace eport::verify
