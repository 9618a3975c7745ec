// Opening the outbox file: pragmas, schema migrations keyed by
// PRAGMA user_version, a start-up check bounded in time, and what happens to
// a database SQLite cannot use: moved aside for forensics, its readable rows
// salvaged into a fresh file. Private to the store library.
#pragma once

#include <cstdint>
#include <string>

#include "eport/store/outbox.h"
#include "sqlite.h"

namespace eport::store::opening {

inline constexpr int kSchemaVersion = 5;

// The WAL is checkpointed once it holds this much, and kept at that size.
inline constexpr std::int64_t kWalCheckpointBytes = 1 << 20;

// SQLite's page cache, in KiB of pages. The outbox's working set is small
// (the newest leaf of each class where appends go, the oldest where takes,
// acks and eviction go, the interior pages above them, the sources rows):
// 512 KiB drains, fills and wears the flash the same as 1 MiB did, and is
// the store's largest share of the heap (docs/benchmarks.md, Memory budget).
inline constexpr int kPageCacheKiB = 512;

struct Opened {
  std::string moved_to;       // non-empty if the old file was unusable
  std::uint64_t salvaged = 0; // rows copied from it
};

// Leaves `db` open, checked and migrated.
Result<Opened> open_checked(sqlite::Db& db, const OutboxOptions& options);

}  // namespace eport::store::opening
