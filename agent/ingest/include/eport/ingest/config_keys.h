// Ingest's config keys: the group-commit window (store.commit_interval_ms,
// store.commit_max_readings; in [store] because operators think of them as
// the store's), one row per IngestOptions field.
#pragma once

#include "eport/config/keys.h"
#include "eport/ingest/ingest.h"

namespace eport::ingest {

const config::Keys<IngestOptions>& config_keys();

}  // namespace eport::ingest
