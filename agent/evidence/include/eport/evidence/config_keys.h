// The [evidence] config keys: the gateway's signing keys and checkpoint
// policy (docs/evidence.md 13.4), one row per EvidenceOptions field.
#pragma once

#include "eport/config/keys.h"
#include "eport/evidence/gateway_chains.h"

namespace eport::evidence {

const config::Keys<EvidenceOptions>& config_keys();

}  // namespace eport::evidence
