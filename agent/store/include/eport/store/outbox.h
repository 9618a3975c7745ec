// The outbox: the agent's only durable copy of readings between the moment a
// unit hands them over and the broker's PUBACK. A SQLite database in WAL mode;
// readings go in as opaque blobs with their priority class, source and
// sequence number, and leave in drain order (highest class first, FIFO within
// a class) only when the uplink acknowledges them. The only library that
// links SQLite.
//
// Thread-safety: every method may be called from any thread; calls are
// serialised on one connection.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "eport/model/reading.h"
#include "eport/model/result.h"

namespace eport::store {

enum class Durability {
  kFull,    // fsync at every commit: an acknowledged reading survives power loss
  kNormal,  // fsync at WAL checkpoints only: survives a crash, power loss may lose the last commits
};

struct OutboxOptions {
  std::string path;
  Durability durability = Durability::kFull;
  std::chrono::milliseconds busy_timeout{5000};
};

// One reading on its way in.
struct Record {
  std::string source_id;
  std::uint64_t seq = 0;
  model::Priority priority = model::Priority::kTelemetry;
  std::uint64_t created_utc_ms = 0;
  std::vector<std::uint8_t> body;  // codec::encode_reading()
};

// One reading on its way out.
struct StoredRecord {
  std::int64_t id = 0;  // row id: what ack() takes
  std::string source_id;
  std::uint64_t seq = 0;
  model::Priority priority = model::Priority::kTelemetry;
  std::vector<std::uint8_t> body;
};

struct AppendResult {
  std::size_t stored = 0;
  std::size_t duplicates = 0;  // seq <= the last stored seq of its source: already in custody
  std::vector<bool> duplicate;  // per record, in the order given
};

struct ClassStats {
  std::uint64_t rows = 0;
  std::uint64_t bytes = 0;
};

struct OutboxStats {
  std::array<ClassStats, model::kPriorityCount> by_class{};
  std::uint64_t appended = 0;    // since open
  std::uint64_t duplicates = 0;  // since open
  std::uint64_t acked = 0;       // since open
  std::uint64_t total_rows() const;
};

class Outbox {
 public:
  // Opens or creates the database, applies pragmas and schema migrations.
  static Result<std::unique_ptr<Outbox>> open(const OutboxOptions& options);
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Commits all records in one transaction; on success every one of them is
  // durable (per the durability mode) and may be acknowledged to its unit.
  // A record whose seq is not above its source's last stored seq is a resend
  // and is skipped. On error nothing was stored.
  Result<AppendResult> append(std::span<const Record> records);

  // Highest seq stored so far for a source (0 if none), kept across restarts
  // even after the readings themselves have been published and deleted.
  std::uint64_t last_seq(std::string_view source_id);

  // Leases the next readings to publish, all of one priority class: the
  // highest class that has unleased rows, oldest first, at most max_rows
  // rows and about max_bytes of bodies (at least one row). Empty when
  // nothing is waiting.
  Result<std::vector<StoredRecord>> take(std::size_t max_rows, std::size_t max_bytes);

  // Deletes published rows (after the broker's PUBACK).
  Status ack(std::span<const std::int64_t> ids);

  // Forgets all leases: every unacknowledged row will be taken again (after
  // a reconnect, when in-flight messages may have been lost).
  void release_all();

  // Next envelope sequence number; strictly increasing across restarts
  // (a crash leaves a gap, never a repeat).
  std::uint64_t next_envelope_seq();

  OutboxStats stats();

 private:
  struct Impl;
  explicit Outbox(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace eport::store
