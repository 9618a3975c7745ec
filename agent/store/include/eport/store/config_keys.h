// The outbox's config keys ([store], but for the group-commit keys, which
// ingest declares): one row per OutboxOptions field, its default the
// field's initializer.
#pragma once

#include "eport/config/keys.h"
#include "eport/store/outbox.h"

namespace eport::store {

const config::Keys<OutboxOptions>& config_keys();

}  // namespace eport::store
