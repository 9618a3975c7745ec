// Canonical bytes R of a record, the input of its evidence chain link
// (docs/evidence.md sections 3 and 13.4): a unit's reading (or one of the
// gateway's own GNSS fixes) is its unsealed epb READING body; a derived
// custody event is an event record (02 40 ...). Rebuilt the same way by
// every verifier from the decoded record.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "eport/model/reading.h"

namespace eport::evidence {

// R of r, or nullopt for a record that is not chained (a declared gap, a
// checkpoint) or cannot be (a field longer than its canonical form allows,
// which the record's own validation rules out).
std::optional<std::vector<std::uint8_t>> canonical_bytes(const model::Reading& r);

}  // namespace eport::evidence
