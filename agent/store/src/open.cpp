// Opening, checking, migrating and, when it must, moving aside and salvaging
// the outbox database. Corruption is told apart from other failures (no
// permission, disk full, locked) by SQLite's result codes: only a file SQLite
// reports as corrupt or not a database is ever moved.
#include "open.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "eport/log/log.h"

namespace eport::store::opening {

namespace {

constexpr std::string_view kLog = "store";

// Schema v1. A later version adds a migration step from N-1 to N below and
// never edits a shipped one.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE IF NOT EXISTS outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: drain cursors rely on it
  priority INTEGER NOT NULL,
  source_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_drain ON outbox(priority, id);
CREATE TABLE IF NOT EXISTS sources (
  source_id TEXT PRIMARY KEY,
  last_seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta(key, value) VALUES ('envelope_seq_reserved', 1);
)sql";

// Schema v2: sources remember when they last stored a reading and the row id
// of that reading, so that idle sources with nothing waiting can expire.
constexpr const char* kSchemaV2 = R"sql(
ALTER TABLE sources ADD COLUMN seen_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sources ADD COLUMN last_row_id INTEGER NOT NULL DEFAULT 0;
)sql";

// Schema v3: the command ids the uplink has seen, with their replies, so
// that a repeat is answered again and not executed again, also after a
// restart (docs/store.md "Commands"). `id` is the order of receipt (the
// oldest go first); `reply` is NULL while the command executes, and stays
// NULL if the agent stopped before its outcome was recorded; `cost` is what
// the row counts against store.max_bytes.
constexpr const char* kSchemaV3 = R"sql(
CREATE TABLE IF NOT EXISTS commands (
  id INTEGER PRIMARY KEY,
  command_id TEXT NOT NULL UNIQUE,
  issued_ms INTEGER NOT NULL,
  received_ms INTEGER NOT NULL,
  reply TEXT,
  cost INTEGER NOT NULL
);
)sql";

// Schema v4: the state of the derivers that run inside append() (the custody
// event engine's per-source detector state, docs/custody-events.md), written
// in the same transaction as the records it was derived from.
constexpr const char* kSchemaV4 = R"sql(
CREATE TABLE IF NOT EXISTS derived_state (
  key TEXT PRIMARY KEY,
  state BLOB NOT NULL
) WITHOUT ROWID;
)sql";

// Schema v5: each reading's class_seq, its source's count of readings in its
// class (docs/consuming.md, "Completeness per class"), and each source's last
// count per class (class_seq_<priority value>). Rows stored before it keep 0:
// not numbered.
constexpr const char* kSchemaV5 = R"sql(
ALTER TABLE outbox ADD COLUMN class_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sources ADD COLUMN class_seq_0 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sources ADD COLUMN class_seq_1 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sources ADD COLUMN class_seq_2 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sources ADD COLUMN class_seq_3 INTEGER NOT NULL DEFAULT 0;
)sql";

bool exists(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0;
}

std::string utc_stamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// A failure, and whether it means the file itself is damaged.
struct Failure {
  std::string message;
  bool corrupt = false;
};

Failure fail(sqlite::Db& db, const std::string& what) { return {what, db.last_error_is_corruption()}; }

int progress_deadline(void* arg) {
  auto* deadline = static_cast<std::chrono::steady_clock::time_point*>(arg);
  return std::chrono::steady_clock::now() > *deadline ? 1 : 0;
}

// PRAGMA quick_check, abandoned after the budget: a large store on a slow
// card must not keep the agent from starting.
std::optional<Failure> quick_check(sqlite::Db& db, std::chrono::milliseconds budget) {
  auto deadline = std::chrono::steady_clock::now() + budget;
  sqlite3_progress_handler(db.get(), 1000, progress_deadline, &deadline);
  sqlite::Stmt s;
  std::optional<Failure> result;
  if (auto st = s.prepare(db, "PRAGMA quick_check"); !st) {
    result = fail(db, st.error());
  } else {
    std::string report;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) report += (report.empty() ? "" : "; ") + s.column_text(0);
    if (rc == SQLITE_INTERRUPT) {
      log::warn(kLog, "start-up check not finished within " + std::to_string(budget.count()) +
                          " ms: continuing unverified (run 'eport-agent store verify')");
    } else if (rc != SQLITE_DONE) {
      result = fail(db, "quick_check: " + db.error_message());
    } else if (report != "ok") {
      result = Failure{"quick_check: " + report.substr(0, 500), true};
    }
  }
  s.reset();
  sqlite3_progress_handler(db.get(), 0, nullptr, nullptr);
  return result;
}

std::optional<Failure> migrate(sqlite::Db& db) {
  auto version = db.query_int("PRAGMA user_version");
  if (!version) return fail(db, version.error());
  if (*version > kSchemaVersion) {
    return Failure{"store schema version " + std::to_string(*version) + " is newer than this agent's (" +
                       std::to_string(kSchemaVersion) + "): refusing to touch it",
                   false};
  }
  if (*version == kSchemaVersion) return std::nullopt;
  if (auto s = db.exec("BEGIN IMMEDIATE"); !s) return fail(db, s.error());
  // version 0 -> 1: the initial schema.
  if (*version < 1) {
    if (auto s = db.exec(kSchemaV1); !s) {
      auto f = fail(db, s.error());
      (void)db.exec("ROLLBACK");
      return f;
    }
  }
  // version 1 -> 2: when each source last stored a reading, and its last
  // row id (source expiry). Existing sources get them at load().
  if (*version < 2) {
    if (auto s = db.exec(kSchemaV2); !s) {
      auto f = fail(db, s.error());
      (void)db.exec("ROLLBACK");
      return f;
    }
  }
  // version 2 -> 3: seen command ids (an existing store starts with none).
  if (*version < 3) {
    if (auto s = db.exec(kSchemaV3); !s) {
      auto f = fail(db, s.error());
      (void)db.exec("ROLLBACK");
      return f;
    }
  }
  // version 3 -> 4: derived state (an existing store starts with none).
  if (*version < 4) {
    if (auto s = db.exec(kSchemaV4); !s) {
      auto f = fail(db, s.error());
      (void)db.exec("ROLLBACK");
      return f;
    }
  }
  // version 4 -> 5: class seqs (waiting rows stay unnumbered).
  if (*version < 5) {
    if (auto s = db.exec(kSchemaV5); !s) {
      auto f = fail(db, s.error());
      (void)db.exec("ROLLBACK");
      return f;
    }
  }
  if (auto s = db.exec("PRAGMA user_version = " + std::to_string(kSchemaVersion) + "; COMMIT"); !s) {
    auto f = fail(db, s.error());
    (void)db.exec("ROLLBACK");
    return f;
  }
  return std::nullopt;
}

std::optional<Failure> try_open(sqlite::Db& db, const OutboxOptions& o) {
  // A new outbox is created 0600 whatever the umask (systemd's UMask= is not
  // there when the agent runs by hand); SQLite gives its -wal and -shm files
  // the database file's mode.
  if (!exists(o.path)) {
    int fd = ::open(o.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      (void)::fchmod(fd, 0600);
      ::close(fd);
    }
  }
  if (auto s = db.open(o.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, o.vfs); !s) return Failure{s.error(), false};
  sqlite3_busy_timeout(db.get(), static_cast<int>(o.busy_timeout.count()));
  // page_size and auto_vacuum only take effect before the first table
  // exists: a store keeps the page size it was created with. Every commit
  // writes each page it touched once more (as a WAL frame), so the page
  // size is most of what a small commit costs the flash (docs/store.md,
  // Flash wear).
  std::string pragmas = "PRAGMA page_size=" + std::to_string(o.page_size_bytes) +
                        "; PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL; PRAGMA synchronous=";
  pragmas += o.durability == Durability::kFull ? "FULL" : "NORMAL";
  // secure_delete=FAST: Debian's SQLite zeroes deleted content by default,
  // which doubles the writes of every drain; FAST still overwrites what it can
  // without extra I/O.
  pragmas += "; PRAGMA cache_size=-" + std::to_string(kPageCacheKiB) +
             "; PRAGMA temp_store=MEMORY; PRAGMA secure_delete=FAST;";
  if (auto s = db.exec(pragmas); !s) return fail(db, s.error());
  // The WAL: checkpointed once it holds kWalCheckpointBytes, and kept at
  // that size afterwards (reset and overwritten, not truncated and grown
  // again). It is the part of the store's disk use that its byte accounting
  // cannot see, and what the free-space reserve must hold on a full disk;
  // each checkpoint writes every page it holds into the database once more,
  // so a larger WAL folds more commits of the same pages into one write.
  auto page_size = db.query_int("PRAGMA page_size");
  if (!page_size) return fail(db, page_size.error());
  pragmas = "PRAGMA wal_autocheckpoint=" + std::to_string(kWalCheckpointBytes / std::max<std::int64_t>(512, *page_size)) +
            "; PRAGMA journal_size_limit=" + std::to_string(kWalCheckpointBytes) + ";";
  if (auto s = db.exec(pragmas); !s) return fail(db, s.error());
  if (auto f = quick_check(db, o.startup_check_budget)) return f;
  if (auto f = migrate(db)) return f;
  // A table that fails to read is as bad as a failed check.
  if (auto n = db.query_int("SELECT count(*) FROM (SELECT 1 FROM outbox LIMIT 1)"); !n) {
    return fail(db, n.error());
  }
  return std::nullopt;
}

// Copies every readable row of the damaged file into the fresh one. SQLite
// returns errors, never crashes, on a corrupt file; rows past the first
// error in a table are left behind.
std::uint64_t salvage(sqlite::Db& fresh, const std::string& damaged) {
  sqlite::Db old;
  if (!old.open(damaged, SQLITE_OPEN_READONLY)) return 0;
  std::uint64_t copied = 0;
  sqlite::Stmt read, write;
  // A damaged file of schema v4 or older has no class seqs: its rows stay unnumbered.
  if (!read.prepare(old, "SELECT priority, source_id, seq, created_ms, body, class_seq FROM outbox ORDER BY id") &&
      !read.prepare(old, "SELECT priority, source_id, seq, created_ms, body, 0 FROM outbox ORDER BY id")) {
    return 0;
  }
  if (!write.prepare(fresh,
                     "INSERT INTO outbox(priority, source_id, seq, created_ms, body, class_seq) VALUES (?,?,?,?,?,?)")) {
    return 0;
  }
  (void)fresh.exec("BEGIN");
  while (read.step() == SQLITE_ROW) {
    sqlite::ResetGuard g(write);
    write.bind(1, read.column_int(0));
    write.bind(2, read.column_text(1));
    write.bind(3, read.column_int(2));
    write.bind(4, read.column_int(3));
    write.bind_blob(5, read.column_blob(4));
    write.bind(6, read.column_int(5));
    if (write.step() == SQLITE_DONE) ++copied;
  }
  read.reset();
  // Sequence numbers per source: from the damaged sources table where it
  // reads, and never below what the salvaged rows show.
  sqlite::Stmt src, put;
  if (src.prepare(old, "SELECT source_id, last_seq FROM sources") &&
      put.prepare(fresh, "INSERT INTO sources(source_id, last_seq) VALUES (?1, ?2) "
                         "ON CONFLICT(source_id) DO UPDATE SET last_seq = max(last_seq, ?2)")) {
    while (src.step() == SQLITE_ROW) {
      sqlite::ResetGuard g(put);
      put.bind(1, src.column_text(0));
      put.bind(2, src.column_int(1));
      (void)put.step();
    }
    src.reset();
  }
  (void)fresh.exec(
      "INSERT INTO sources(source_id, last_seq) SELECT source_id, max(seq) FROM outbox GROUP BY source_id "
      "ON CONFLICT(source_id) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)");
  // Class counts: from the damaged sources table where it reads, never below the salvaged rows'.
  sqlite::Stmt counts, put_counts;
  if (counts.prepare(old, "SELECT source_id, class_seq_0, class_seq_1, class_seq_2, class_seq_3 FROM sources") &&
      put_counts.prepare(fresh, "UPDATE sources SET class_seq_0 = max(class_seq_0, ?2), class_seq_1 = max(class_seq_1, ?3), "
                                "class_seq_2 = max(class_seq_2, ?4), class_seq_3 = max(class_seq_3, ?5) "
                                "WHERE source_id = ?1")) {
    while (counts.step() == SQLITE_ROW) {
      sqlite::ResetGuard g(put_counts);
      put_counts.bind(1, counts.column_text(0));
      for (int i = 1; i <= 4; ++i) put_counts.bind(i + 1, counts.column_int(i));
      (void)put_counts.step();
    }
    counts.reset();
  }
  for (int p = 0; p < 4; ++p) {
    std::string col = "class_seq_" + std::to_string(p);
    (void)fresh.exec("UPDATE sources SET " + col + " = max(" + col + ", coalesce((SELECT max(o.class_seq) FROM outbox o "
                     "WHERE o.source_id = sources.source_id AND o.priority = " + std::to_string(p) + "), 0))");
  }
  // Seen command ids, where they read (a damaged file of schema v2 or older
  // has none): a command recorded there must not run again after recovery.
  sqlite::Stmt cmd_read, cmd_write;
  if (cmd_read.prepare(old, "SELECT command_id, issued_ms, received_ms, reply, cost FROM commands ORDER BY id") &&
      cmd_write.prepare(fresh, "INSERT OR IGNORE INTO commands(command_id, issued_ms, received_ms, reply, cost) "
                               "VALUES (?,?,?,?,?)")) {
    while (cmd_read.step() == SQLITE_ROW) {
      sqlite::ResetGuard g(cmd_write);
      cmd_write.bind(1, cmd_read.column_text(0));
      cmd_write.bind(2, cmd_read.column_int(1));
      cmd_write.bind(3, cmd_read.column_int(2));
      if (cmd_read.column_is_null(3)) {
        cmd_write.bind_null(4);
      } else {
        cmd_write.bind(4, cmd_read.column_text(3));
      }
      cmd_write.bind(5, cmd_read.column_int(4));
      (void)cmd_write.step();
    }
    cmd_read.reset();
  }
  (void)fresh.exec("COMMIT");
  return copied;
}

}  // namespace

Result<Opened> open_checked(sqlite::Db& db, const OutboxOptions& options) {
  Opened opened;
  auto failure = try_open(db, options);
  if (!failure) return opened;
  db.close();
  if (!failure->corrupt) return Error{failure->message};

  // The file is damaged: keep it (and its WAL) for forensics, start afresh,
  // and carry over whatever still reads.
  opened.moved_to = options.path + ".corrupt-" + utc_stamp();
  log::error(kLog, "ALARM: " + options.path + " is damaged (" + failure->message + "); moving it to " +
                       opened.moved_to + " and starting a fresh store");
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::string from = options.path + suffix;
    if (exists(from) && std::rename(from.c_str(), (opened.moved_to + suffix).c_str()) != 0) {
      return Error{"cannot move damaged " + from + " aside: " + std::strerror(errno)};
    }
  }
  if (auto again = try_open(db, options)) return Error{"fresh store after recovery: " + again->message};
  opened.salvaged = salvage(db, opened.moved_to);
  log::error(kLog, "ALARM: salvaged " + std::to_string(opened.salvaged) + " readings from " + opened.moved_to);
  return opened;
}

}  // namespace eport::store::opening
