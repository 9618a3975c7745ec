// Ingest's config key rows (docs/config.md, [store]).
#include "eport/ingest/config_keys.h"

namespace eport::ingest {

namespace {

config::Keys<IngestOptions> build() {
  using O = IngestOptions;
  config::Keys<O> k;
  k.add(config::duration<O>("store.commit_interval_ms", 0, 10000,
                            "Group commit: longest a received reading waits before its transaction commits (and it "
                            "is acknowledged).",
                            EPORT_OPTION(O, commit_interval)));
  k.add(config::integer<O>("store.commit_max_readings", 1, 100000, "Group commit: most readings in one transaction.",
                           EPORT_OPTION(O, commit_max_readings)));
  return k;
}

}  // namespace

const config::Keys<IngestOptions>& config_keys() {
  static const config::Keys<IngestOptions> keys = build();
  return keys;
}

}  // namespace eport::ingest
