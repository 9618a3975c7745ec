// The outbox's config key rows (docs/config.md, [store]).
#include "eport/store/config_keys.h"

namespace eport::store {

namespace {

constexpr std::int64_t kTenYears_s = 10ll * 365 * 86400;

config::Keys<OutboxOptions> build() {
  using O = OutboxOptions;
  config::Keys<O> k;
  k.add(config::string<O>("store.path", "SQLite outbox file (WAL mode: the -wal and -shm files live beside it).",
                          EPORT_OPTION(O, path)));
  k.add(config::enumeration<O>("store.durability", {{"full", Durability::kFull}, {"normal", Durability::kNormal}},
                               "\"full\": fsync at every commit, an acknowledged reading survives power loss. "
                               "\"normal\": survives a crash of the agent; power loss may lose the last commits. See "
                               "docs/store.md.",
                               EPORT_OPTION(O, durability)));
  k.add(config::integer<O>("store.max_bytes", 1 << 20, 1ll << 40,
                           "Most bytes the waiting readings may take (body + 48 bytes each). When reached, see "
                           "store.when_full.",
                           EPORT_OPTION(O, max_bytes)));
  k.add(config::integer<O>("store.low_water_pct", 10, 99,
                           "Eviction frees space down to this share of the limit, so it runs in bursts, not per "
                           "reading.",
                           EPORT_OPTION(O, low_water_pct)));
  k.add(config::integer<O>("store.min_free_bytes", 0, 1ll << 40,
                           "Free space kept on the store's filesystem; below it the store counts as full. Leaves room "
                           "for SQLite's journal so that eviction itself can still run on a full disk.",
                           EPORT_OPTION(O, min_free_bytes)));
  k.add(config::integer<O>("store.page_size_bytes", 512, 65536,
                           "SQLite page size of a store file created new (an existing file keeps its own); a power of "
                           "two. Smaller: fewer bytes written to the flash per commit; larger: faster inserts and "
                           "drains of a backlog (docs/store.md, Flash wear).",
                           EPORT_OPTION(O, page_size_bytes)));
  k.add(config::enumeration<O>(
      "store.when_full", {{"evict", WhenFull::kEvictLowest}, {"refuse", WhenFull::kRefuse}},
      "\"refuse\": never delete an acknowledged reading; refuse new readings, units keep and resend them. "
      "\"evict\": delete acknowledged readings of the lowest class, oldest first, to make room (never an "
      "alarm while anything lower remains; refuse when nothing may give way): trades the delivery promise "
      "for the newest data (docs/store.md).",
      EPORT_OPTION(O, when_full)));
  auto ttl = [](model::Priority p) { return [p](O& o) -> auto& { return o.ttl[static_cast<int>(p)]; }; };
  k.add(config::duration<O>("store.ttl_alarm_s", 0, kTenYears_s, "Delete unsent alarms older than this; 0: never.",
                            ttl(model::Priority::kAlarm)));
  k.add(config::duration<O>("store.ttl_event_s", 0, kTenYears_s, "Delete unsent events older than this; 0: never.",
                            ttl(model::Priority::kEvent)));
  k.add(config::duration<O>("store.ttl_telemetry_s", 0, kTenYears_s,
                            "Delete unsent telemetry older than this; 0: never.", ttl(model::Priority::kTelemetry)));
  k.add(config::duration<O>("store.ttl_bulk_s", 0, kTenYears_s,
                            "Delete unsent bulk readings older than this; 0: never.", ttl(model::Priority::kBulk)));
  k.add(config::duration<O>("store.startup_check_ms", 0, 600000,
                            "Time budget of the start-up PRAGMA quick_check; past it the agent starts unverified "
                            "(logged).",
                            EPORT_OPTION(O, startup_check_budget)));
  k.add(config::duration<O>("store.source_expiry_s", 0, kTenYears_s,
                            "A source (unit) with no readings waiting that stored nothing for this long is forgotten "
                            "with its last seq (docs/store.md, Sources); 0: never.",
                            EPORT_OPTION(O, source_expiry)));
  k.add(config::duration<O>("store.maintenance_interval_s", 1, 3600, "How often expiry and space reclaim run.",
                            EPORT_OPTION(O, maintenance_interval)));
  k.rule({"store.page_size_bytes"}, "`store.page_size_bytes` must be a power of two.", [](const O& o) {
    return config::problem_if((o.page_size_bytes & (o.page_size_bytes - 1)) != 0, "must be a power of two");
  });
  k.rule({"store.path"}, "`store.path` must not be empty.",
         [](const O& o) { return config::problem_if(o.path.empty(), "must not be empty"); });
  return k;
}

}  // namespace

const config::Keys<OutboxOptions>& config_keys() {
  static const config::Keys<OutboxOptions> keys = build();
  return keys;
}

}  // namespace eport::store
