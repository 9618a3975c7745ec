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

struct Opened {
  std::string moved_to;       // non-empty if the old file was unusable
  std::uint64_t salvaged = 0; // rows copied from it
};

// Leaves `db` open, checked and migrated.
Result<Opened> open_checked(sqlite::Db& db, const OutboxOptions& options);

}  // namespace eport::store::opening
