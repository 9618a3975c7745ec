// The outbox: the agent's only durable copy of readings between the moment a
// unit hands them over and the broker's PUBACK. A SQLite database in WAL mode;
// readings go in as opaque blobs with their priority class, source and
// sequence number, and leave in drain order (highest class first, FIFO within
// a class) only when the uplink acknowledges them. Bounded by bytes and by a
// free-space reserve: when full it evicts the lowest class first and never an
// alarm, or refuses (backpressure). The only library that links SQLite.
// It also keeps the command ids the uplink has seen, with their replies
// (CommandLog, command_log.h). docs/store.md describes the guarantees and
// every counter.
//
// Thread-safety: every method may be called from any thread; calls are
// serialised on one connection.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "eport/model/reading.h"
#include "eport/model/result.h"
#include "eport/store/command_log.h"

namespace eport::store {

enum class Durability {
  kFull,    // fsync at every commit: an acknowledged reading survives power loss
  kNormal,  // fsync at WAL checkpoints only: survives a crash, power loss may lose the last commits
};

enum class WhenFull {
  kEvictLowest,  // evict the lowest class, oldest first; never an alarm; refuse when nothing lower is left
  kRefuse,       // never evict: refuse new readings (units keep them and resend later)
};

// Bytes a row counts for against max_bytes: its body plus this much for the
// source id, keys and SQLite's per-row cost.
inline constexpr std::uint64_t kRowOverheadBytes = 48;
// Bytes a sources row (a source's last seq, kept after its readings are
// gone) counts for against max_bytes, plus the length of its id.
inline constexpr std::uint64_t kSourceRowOverheadBytes = 64;
// Bytes a commands row (a seen command id and its reply) counts for against
// max_bytes, plus the lengths of its id and reply. Commands as a whole take
// at most a sixteenth of max_bytes and at most kMaxCommandRows rows: beyond,
// the oldest are forgotten to make room.
inline constexpr std::uint64_t kCommandRowOverheadBytes = 64;
inline constexpr std::size_t kMaxCommandRows = 1024;

// Every field a config key sets has its one default here (the key rows in
// src/config_keys.cpp read it).
struct OutboxOptions {
  std::string path = "/var/lib/eport-agent/outbox.db";
  Durability durability = Durability::kFull;
  std::chrono::milliseconds busy_timeout{5000};
  std::uint64_t max_bytes = 256ull << 20;     // accounted bytes of all rows
  std::uint32_t low_water_pct = 90;           // eviction frees down to this share of the limit
  std::uint64_t min_free_bytes = 64ull << 20; // free-space reserve on the filesystem
  // SQLite page size of a store file created new (an existing file keeps
  // the one it has): a power of two, 512..65536. Every commit writes each
  // page it touched once more, so small pages wear the flash less per small
  // commit; large ones insert and drain a backlog faster (docs/store.md,
  // Flash wear).
  std::uint32_t page_size_bytes = 1024;
  WhenFull when_full = WhenFull::kRefuse;
  // Per class (index = Priority): rows older than this are deleted by
  // maintain(); zero keeps them until published.
  std::array<std::chrono::seconds, model::kPriorityCount> ttl{};
  // A source with no readings waiting whose last reading was stored longer
  // ago than this is forgotten by maintain() (its last seq with it); zero
  // keeps every source forever. docs/store.md "Sources".
  std::chrono::seconds source_expiry{std::chrono::hours(24 * 30)};
  // What each sources row counts for against max_bytes, plus its id's
  // length; sources as a whole may take at most a quarter of max_bytes
  // (readings of new sources beyond are refused). Zero counts them as
  // nothing (for tests whose arithmetic is about reading rows only).
  std::uint64_t source_row_bytes = kSourceRowOverheadBytes;
  // Seen command ids (CommandLog) are kept while a command with that id and
  // that issued time could still be admitted: until both its issued time and
  // its receipt are this long ago (commands.max_age_s); zero keeps them until
  // max_commands or their share of max_bytes pushes them out.
  std::chrono::seconds command_max_age{300};
  std::size_t max_commands = kMaxCommandRows;
  // Start-up check: PRAGMA quick_check, abandoned (with a warning) after this.
  std::chrono::milliseconds startup_check_budget{2000};
  // How often the outbox's owner calls maintain() (expiry and reclaim).
  std::chrono::seconds maintenance_interval{10};
  // Name of a registered SQLite VFS to open the database with; empty: the
  // default one. For tests that inject I/O faults below SQLite.
  std::string vfs{};
  // Test hook: called before each step of append() ("begin", "evict",
  // "insert", "sources", "counters", "commit"); a result other than SQLITE_OK
  // (0) makes that step fail as if SQLite had returned that code. Unset in
  // production.
  std::function<int(std::string_view step)> fault{};
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
  std::int64_t id = 0;  // row id, increasing
  std::string source_id;
  std::uint64_t seq = 0;
  model::Priority priority = model::Priority::kTelemetry;
  std::uint64_t created_utc_ms = 0;
  std::vector<std::uint8_t> body;
  // Its source's count of readings in its class when it was stored: 1, 2,
  // 3, ... (model::Reading::class_seq); 0 for a row from before store v5.
  std::uint64_t class_seq = 0;
};

// What one take() handed out: every row of one class between two ids.
// Acknowledging it deletes exactly those rows (ids are never reused, and
// take() returns a class's rows in id order without gaps).
struct Lease {
  model::Priority priority = model::Priority::kTelemetry;
  std::int64_t first_id = 0;
  std::int64_t last_id = -1;
  static Lease of(std::span<const StoredRecord> rows);
  bool empty() const { return last_id < first_id; }
};

enum class AppendOutcome : std::uint8_t {
  kStored,     // durable now: acknowledge it
  kDuplicate,  // seq <= the last stored seq of its source: already in custody, acknowledge it
  kRefused,    // not stored (full, an earlier reading of its source was refused or failed to commit,
               // or seq outside 1..model::kMaxSeq): nack
};

struct AppendResult {
  std::size_t stored = 0;
  std::size_t duplicates = 0;
  std::size_t refused = 0;
  std::vector<AppendOutcome> outcome;  // per record, in the order given
  std::size_t derived = 0;             // records a Deriver added (stored with the batch)
};

// State rows a Deriver keeps in the store (key -> bytes).
using DerivedState = std::vector<std::pair<std::string, std::vector<std::uint8_t>>>;

// Derives records from records as append() stores them, inside the same
// transaction (the gateway's custody events, docs/custody-events.md): a
// derived record is stored with the record that caused it or not at all, and
// the deriver's state is written with them, so a crash at any moment neither
// repeats nor loses a derived record. Called under the outbox's lock, on the
// appending thread: it must not call the Outbox back.
class Deriver {
 public:
  virtual ~Deriver() = default;
  // `r` has just been stored by this transaction (in the order append()
  // stores them: per source, seq increasing). Records to store right after
  // it go to `out`, each with its own source and a seq above that source's
  // last; one that cannot be stored (no room) fails the whole append.
  virtual void stored(const Record& r, std::vector<Record>& out) = 0;
  // Before the commit: the state rows to write with it; a row with no bytes
  // deletes the key.
  virtual void state_changes(DerivedState& out) = 0;
  // At the start of the transaction, before any record: records to store
  // first (a cloud command's events; append() with no records runs just
  // this). Stored like those of stored().
  virtual void begin(std::vector<Record>& out) { (void)out; }
  // The record to store in place of `r` (e.g. `r` with the container its
  // unit was paired with by a command, written to `scratch`), or `r` itself.
  // Same source and seq; called before the room for it is reckoned.
  virtual const Record& rewrite(const Record& r, Record& scratch) {
    (void)scratch;
    return r;
  }
  // The transaction committed (true) or was rolled back (false: forget
  // everything stored() saw since the last commit).
  virtual void finished(bool committed) = 0;
};

struct ClassStats {
  std::uint64_t rows = 0;
  std::uint64_t bytes = 0;               // accounted bytes (body + kRowOverheadBytes)
  std::uint64_t oldest_created_ms = 0;   // 0 when empty
  std::uint64_t evicted = 0;             // lifetime of the store file
  std::uint64_t expired = 0;             // lifetime of the store file
  std::uint64_t refused = 0;             // lifetime of the store file
};

struct OutboxStats {
  std::array<ClassStats, model::kPriorityCount> by_class{};
  std::uint64_t appended = 0;    // since open
  std::uint64_t duplicates = 0;  // since open
  std::uint64_t acked = 0;       // since open
  std::uint64_t commit_failures = 0;  // since open: append() calls that failed and stored nothing
  std::uint64_t invalid_seq = 0;      // since open: readings refused for a seq outside 1..model::kMaxSeq
  std::uint64_t file_bytes = 0;  // main file + WAL
  std::uint64_t max_bytes = 0;
  std::string recovered_from;    // non-empty: the database was unusable at open and moved there
  std::uint64_t salvaged = 0;    // rows copied out of that database
  std::uint64_t sources = 0;          // sources rows (last seqs kept)
  std::uint64_t sources_bytes = 0;    // what they count against max_bytes (kSourceRowOverheadBytes + id each)
  std::uint64_t sources_expired = 0;  // since open: forgotten by maintain() (source_expiry)
  std::uint64_t sources_refused = 0;  // since open: readings of a new source refused, sources at their share
  std::uint64_t commands = 0;         // commands rows (seen command ids kept)
  std::uint64_t commands_bytes = 0;   // what they count against max_bytes (kCommandRowOverheadBytes + id + reply)
  std::uint64_t commands_pruned = 0;  // since open: forgotten, older than command_max_age or pushed out by newer
  std::uint64_t total_rows() const;
  std::uint64_t total_bytes() const;
};

struct MaintenanceReport {
  std::uint64_t expired = 0;
  std::uint64_t sources_expired = 0;
  std::vector<std::string> forgotten_sources;  // their ids (a deriver forgets its state of them too)
  std::uint64_t commands_pruned = 0;  // seen command ids older than command_max_age
  std::uint64_t reclaimed_bytes = 0;  // file shrink after a drain
};

class Outbox final : public CommandLog {
 public:
  // Takes an exclusive lock on `<path>.lock` (held until the Outbox is
  // destroyed; a second open of the same store, in this process or another,
  // fails naming the path and the holder's pid), then opens or creates the
  // database, checks it (bounded in time), applies
  // pragmas and schema migrations. A database that SQLite cannot read or that
  // fails the check is moved aside (kept for forensics), its readable rows are
  // salvaged into a fresh one, and stats().recovered_from says so.
  static Result<std::unique_ptr<Outbox>> open(const OutboxOptions& options);
  ~Outbox() override;
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Commits the records that can be stored in one transaction; each record's
  // outcome is in the result. A source's readings are kept in seq order: once
  // one is refused, its later ones are refused too until it is resent. A seq
  // of 0 or above model::kMaxSeq is refused (and counted as invalid_seq)
  // without holding its source back. On error (any step of the transaction
  // failed: busy, disk full, I/O error) nothing was stored, commit_failures
  // counts it, and every source of the batch is held back at its first new
  // seq in it, so nothing later of that source is stored until that one is
  // resent.
  // With a deriver, the records it derives from the stored ones and its
  // state are part of the same transaction (see Deriver); with a deriver and
  // no records, the transaction holds what Deriver::begin() adds.
  Result<AppendResult> append(std::span<const Record> records, Deriver* deriver = nullptr);

  // A deriver that sees every record any append() stores, in the order
  // stored (those of the call's own deriver too, each right after it is
  // stored; not its own), inside the same transaction: the gateway's
  // evidence chains (docs/evidence.md 13.4), which must cover custody events
  // however they arise. Its stored() output, state_changes() and finished()
  // are handled as a call's deriver's; begin() is called only when it is
  // the call's deriver itself (append({}, chain): a checkpoint due by
  // time). Set once before the first append; it must outlive the Outbox.
  void set_chain(Deriver* chain);

  // Every state row a Deriver wrote (for a deriver starting up).
  Result<DerivedState> derived_state();

  // Highest seq stored so far for a source (0 if none), kept across restarts
  // even after the readings themselves have been published and deleted.
  std::uint64_t last_seq(std::string_view source_id);

  // Leases the next readings to publish, all of one priority class: the
  // highest class (not below min_priority) that has unleased rows, oldest
  // first, at most max_rows rows and about max_bytes of bodies (at least one
  // row). Empty when nothing is waiting. A batch holds either only evidence
  // checkpoints (model::is_evidence_source) or none: they are published on
  // a topic of their own. Evidence rows never expire by the class's TTL.
  Result<std::vector<StoredRecord>> take(std::size_t max_rows, std::size_t max_bytes,
                                         model::Priority min_priority = model::Priority::kBulk);

  // Deletes published rows (after the broker's PUBACK). Rows evicted or
  // expired meanwhile are simply gone already.
  Status ack(std::span<const Lease> leases);

  // Forgets all leases: every unacknowledged row will be taken again (after
  // a reconnect, when in-flight messages may have been lost).
  void release_all();

  // Next envelope sequence number; strictly increasing across restarts.
  // Reserved in blocks of 1024 in the store: after a crash the next process
  // starts after the block (a gap, never a repeat); a clean close (the
  // destructor) gives the unused rest back, so the next one continues at +1.
  std::uint64_t next_envelope_seq();

  // CommandLog (command_log.h): the table `commands`. command_started()
  // commits one row (in a transaction of its own, synced as appends are)
  // after pruning: command ids older than command_max_age, then the oldest
  // while more than max_commands rows or a sixteenth of max_bytes would be
  // kept; it fails (the command must not run) when the whole store is at its
  // limit (readings, sources and commands; as for a reading) or the id is
  // recorded already. command_done() stores the reply, pruning older rows
  // to stay within the share, never this one.
  Result<std::optional<CommandRecord>> find_command(std::string_view command_id) override;
  Status command_started(const CommandRecord& command) override;
  Status command_done(std::string_view command_id, std::string_view reply) override;

  // Housekeeping, called every few seconds: deletes expired rows, forgets
  // sources idle past source_expiry with nothing waiting, and command ids
  // past command_max_age, checkpoints
  // the WAL and gives free pages back to the filesystem once a backlog has
  // drained.
  Result<MaintenanceReport> maintain(std::uint64_t now_utc_ms);

  // Full PRAGMA integrity_check; "ok" or SQLite's list of problems.
  Result<std::string> verify();

  // Every row in drain order, for inspection (does not lease).
  Status for_each(const std::function<bool(const StoredRecord&)>& visit);

  OutboxStats stats();
  // Rows waiting per class (index = Priority), from memory: cheap enough to
  // call on every publisher iteration, unlike stats().
  std::array<std::uint64_t, model::kPriorityCount> rows_by_class();

  // Small named integers kept with the store (e.g. the uplink's data budget
  // use), so they survive restarts. Unknown names read as 0.
  std::int64_t get_value(const std::string& name);
  Status set_value(const std::string& name, std::int64_t value);

 private:
  struct Impl;
  explicit Outbox(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace eport::store
