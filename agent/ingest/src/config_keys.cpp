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
  k.add(config::duration<O>("store.commit_interval_max_ms", 0, 2000,
                            "Group commit under load: while readings keep arriving, the window grows by "
                            "store.commit_interval_ms at a time up to this long (fewer, larger commits: less flash "
                            "wear, longer until the ACK; units wait 10 s for it). 0: off, the window stays "
                            "store.commit_interval_ms.",
                            EPORT_OPTION(O, commit_interval_max)));
  k.add(config::integer<O>("store.commit_max_readings", 1, 100000, "Group commit: most readings in one transaction.",
                           EPORT_OPTION(O, commit_max_readings)));
  k.rule({"store.commit_interval_max_ms", "store.commit_interval_ms"},
         "`store.commit_interval_max_ms` must be 0 (off) or at least `store.commit_interval_ms`.",
         [](const O& o) {
           return config::problem_if(o.commit_interval_max.count() != 0 && o.commit_interval_max < o.commit_interval,
                                     "must be 0 or at least store.commit_interval_ms");
         });
  return k;
}

}  // namespace

const config::Keys<IngestOptions>& config_keys() {
  static const config::Keys<IngestOptions> keys = build();
  return keys;
}

}  // namespace eport::ingest
