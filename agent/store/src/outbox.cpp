// The SQLite outbox: schema and migrations, group-committed appends with
// per-source duplicate detection, leased drain in priority order, and acks.
#include "eport/store/outbox.h"

#include <mutex>
#include <unordered_map>

#include "sqlite.h"

namespace eport::store {

namespace {

constexpr int kSchemaVersion = 1;
constexpr std::uint64_t kEnvelopeSeqBlock = 1024;

// Schema v1. Migrations from older versions go in migrate() keyed by
// PRAGMA user_version; never edit a shipped version in place.
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

std::string sqlite_error(sqlite3* db, const std::string& what) { return what + ": " + sqlite3_errmsg(db); }

}  // namespace

std::uint64_t OutboxStats::total_rows() const {
  std::uint64_t n = 0;
  for (const auto& c : by_class) n += c.rows;
  return n;
}

struct Outbox::Impl {
  std::mutex mu;
  sqlite::Db db;
  sqlite::Stmt insert, select_sources, upsert_source, take, del, set_env_seq;
  std::unordered_map<std::string, std::uint64_t> last_seq;  // every source ever stored
  std::array<std::int64_t, model::kPriorityCount> cursor{};  // highest leased id per class
  std::uint64_t next_env_seq = 1;      // next envelope seq to hand out
  std::uint64_t reserved_env_seq = 1;  // persisted: first seq not yet reserved
  OutboxStats stats;

  Status migrate() {
    sqlite::Stmt v;
    if (auto s = v.prepare(db, "PRAGMA user_version"); !s) return s;
    if (v.step() != SQLITE_ROW) return Error{sqlite_error(db.get(), "reading user_version")};
    auto version = v.column_int(0);
    v.reset();
    if (version > kSchemaVersion) {
      return Error{"store schema version " + std::to_string(version) + " is newer than this agent's (" +
                   std::to_string(kSchemaVersion) + "): refusing to touch it"};
    }
    if (version == kSchemaVersion) return ok_status();
    if (auto s = db.exec("BEGIN IMMEDIATE"); !s) return s;
    if (auto s = db.exec(kSchemaV1); !s) {
      (void)db.exec("ROLLBACK");
      return s;
    }
    if (auto s = db.exec("PRAGMA user_version = " + std::to_string(kSchemaVersion)); !s) {
      (void)db.exec("ROLLBACK");
      return s;
    }
    return db.exec("COMMIT");
  }

  Status load() {
    sqlite::Stmt s;
    if (auto st = s.prepare(db, "SELECT source_id, last_seq FROM sources"); !st) return st;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) last_seq[s.column_text(0)] = static_cast<std::uint64_t>(s.column_int(1));
    if (rc != SQLITE_DONE) return Error{sqlite_error(db.get(), "loading sources")};

    sqlite::Stmt c;
    if (auto st = c.prepare(db, "SELECT priority, count(*), coalesce(sum(length(body)),0) FROM outbox GROUP BY priority");
        !st)
      return st;
    while ((rc = c.step()) == SQLITE_ROW) {
      auto p = c.column_int(0);
      if (p >= 0 && p < model::kPriorityCount) {
        stats.by_class[static_cast<std::size_t>(p)] = {static_cast<std::uint64_t>(c.column_int(1)),
                                                       static_cast<std::uint64_t>(c.column_int(2))};
      }
    }
    if (rc != SQLITE_DONE) return Error{sqlite_error(db.get(), "counting outbox")};

    sqlite::Stmt e;
    if (auto st = e.prepare(db, "SELECT value FROM meta WHERE key='envelope_seq_reserved'"); !st) return st;
    if (e.step() == SQLITE_ROW) next_env_seq = reserved_env_seq = static_cast<std::uint64_t>(e.column_int(0));
    return ok_status();
  }

  Status prepare_all() {
    for (auto [stmt, sql] : {
             std::pair{&insert, "INSERT INTO outbox(priority, source_id, seq, created_ms, body) VALUES (?,?,?,?,?)"},
             std::pair{&upsert_source,
                       "INSERT INTO sources(source_id, last_seq) VALUES (?1, ?2) "
                       "ON CONFLICT(source_id) DO UPDATE SET last_seq = max(last_seq, ?2)"},
             std::pair{&take,
                       "SELECT id, source_id, seq, body FROM outbox WHERE priority = ? AND id > ? ORDER BY id LIMIT ?"},
             std::pair{&del, "DELETE FROM outbox WHERE id = ? RETURNING priority, length(body)"},
             std::pair{&set_env_seq, "UPDATE meta SET value = max(value, ?) WHERE key = 'envelope_seq_reserved'"},
         }) {
      if (auto s = stmt->prepare(db, sql); !s) return s;
    }
    return ok_status();
  }

  Error rollback(const std::string& what) {
    std::string msg = sqlite_error(db.get(), what);
    (void)db.exec("ROLLBACK");
    return Error{msg};
  }
};

Outbox::Outbox(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Outbox::~Outbox() = default;

Result<std::unique_ptr<Outbox>> Outbox::open(const OutboxOptions& options) {
  auto impl = std::make_unique<Impl>();
  if (auto s = impl->db.open(options.path); !s) return Error{s.error()};
  sqlite3_busy_timeout(impl->db.get(), static_cast<int>(options.busy_timeout.count()));
  std::string pragmas = "PRAGMA journal_mode=WAL; PRAGMA synchronous=";
  pragmas += options.durability == Durability::kFull ? "FULL" : "NORMAL";
  pragmas += "; PRAGMA foreign_keys=OFF; PRAGMA cache_size=-2048;";
  if (auto s = impl->db.exec(pragmas); !s) return Error{"store " + options.path + ": " + s.error()};
  if (auto s = impl->migrate(); !s) return Error{"store " + options.path + ": " + s.error()};
  if (auto s = impl->prepare_all(); !s) return Error{"store " + options.path + ": " + s.error()};
  if (auto s = impl->load(); !s) return Error{"store " + options.path + ": " + s.error()};
  return std::unique_ptr<Outbox>(new Outbox(std::move(impl)));
}

Result<AppendResult> Outbox::append(std::span<const Record> records) {
  auto& d = *impl_;
  std::lock_guard lock(d.mu);
  AppendResult result;
  if (records.empty()) return result;
  result.duplicate.assign(records.size(), false);
  if (auto s = d.db.exec("BEGIN IMMEDIATE"); !s) return Error{"append: " + s.error()};

  // Seqs stored by this transaction; merged into d.last_seq only on commit.
  std::unordered_map<std::string_view, std::uint64_t> batch_max;
  std::array<ClassStats, model::kPriorityCount> added{};
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    std::uint64_t last = 0;
    if (auto it = batch_max.find(r.source_id); it != batch_max.end()) {
      last = it->second;
    } else if (auto it2 = d.last_seq.find(r.source_id); it2 != d.last_seq.end()) {
      last = it2->second;
    }
    if (r.seq <= last) {
      ++result.duplicates;
      result.duplicate[i] = true;
      continue;
    }
    sqlite::ResetGuard g(d.insert);
    d.insert.bind(1, static_cast<std::int64_t>(r.priority));
    d.insert.bind(2, r.source_id);
    d.insert.bind(3, static_cast<std::int64_t>(r.seq));
    d.insert.bind(4, static_cast<std::int64_t>(r.created_utc_ms));
    d.insert.bind_blob(5, r.body);
    if (d.insert.step() != SQLITE_DONE) return d.rollback("append: insert");
    batch_max[r.source_id] = r.seq;
    auto& c = added[static_cast<std::size_t>(r.priority)];
    ++c.rows;
    c.bytes += r.body.size();
    ++result.stored;
  }
  for (const auto& [source, seq] : batch_max) {
    sqlite::ResetGuard g(d.upsert_source);
    d.upsert_source.bind(1, source);
    d.upsert_source.bind(2, static_cast<std::int64_t>(seq));
    if (d.upsert_source.step() != SQLITE_DONE) return d.rollback("append: update sources");
  }
  if (sqlite3_exec(d.db.get(), "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return d.rollback("append: commit");
  }
  for (const auto& [source, seq] : batch_max) d.last_seq[std::string(source)] = seq;
  for (std::size_t i = 0; i < added.size(); ++i) {
    d.stats.by_class[i].rows += added[i].rows;
    d.stats.by_class[i].bytes += added[i].bytes;
  }
  d.stats.appended += result.stored;
  d.stats.duplicates += result.duplicates;
  return result;
}

std::uint64_t Outbox::last_seq(std::string_view source_id) {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->last_seq.find(std::string(source_id));
  return it == impl_->last_seq.end() ? 0 : it->second;
}

Result<std::vector<StoredRecord>> Outbox::take(std::size_t max_rows, std::size_t max_bytes) {
  auto& d = *impl_;
  std::lock_guard lock(d.mu);
  std::vector<StoredRecord> out;
  for (int p = model::kPriorityCount - 1; p >= 0; --p) {
    auto& cursor = d.cursor[static_cast<std::size_t>(p)];
    sqlite::ResetGuard g(d.take);
    d.take.bind(1, p);
    d.take.bind(2, cursor);
    d.take.bind(3, static_cast<std::int64_t>(max_rows));
    std::size_t bytes = 0;
    int rc;
    while ((rc = d.take.step()) == SQLITE_ROW) {
      auto body = d.take.column_blob(3);
      if (!out.empty() && bytes + body.size() > max_bytes) break;
      StoredRecord r;
      r.id = d.take.column_int(0);
      r.source_id = d.take.column_text(1);
      r.seq = static_cast<std::uint64_t>(d.take.column_int(2));
      r.priority = static_cast<model::Priority>(p);
      r.body.assign(body.begin(), body.end());
      bytes += body.size();
      out.push_back(std::move(r));
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Error{sqlite_error(d.db.get(), "take")};
    if (!out.empty()) {
      cursor = out.back().id;
      break;
    }
  }
  return out;
}

Status Outbox::ack(std::span<const std::int64_t> ids) {
  auto& d = *impl_;
  std::lock_guard lock(d.mu);
  if (ids.empty()) return ok_status();
  if (auto s = d.db.exec("BEGIN IMMEDIATE"); !s) return Error{"ack: " + s.error()};
  std::array<ClassStats, model::kPriorityCount> removed{};
  for (auto id : ids) {
    sqlite::ResetGuard g(d.del);
    d.del.bind(1, id);
    int rc = d.del.step();
    if (rc == SQLITE_ROW) {
      auto p = d.del.column_int(0);
      if (p >= 0 && p < model::kPriorityCount) {
        ++removed[static_cast<std::size_t>(p)].rows;
        removed[static_cast<std::size_t>(p)].bytes += static_cast<std::uint64_t>(d.del.column_int(1));
      }
      rc = d.del.step();
    }
    if (rc != SQLITE_DONE) return d.rollback("ack: delete");
  }
  if (sqlite3_exec(d.db.get(), "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) return d.rollback("ack: commit");
  for (std::size_t i = 0; i < removed.size(); ++i) {
    d.stats.by_class[i].rows -= std::min(d.stats.by_class[i].rows, removed[i].rows);
    d.stats.by_class[i].bytes -= std::min(d.stats.by_class[i].bytes, removed[i].bytes);
    d.stats.acked += removed[i].rows;
  }
  return ok_status();
}

void Outbox::release_all() {
  std::lock_guard lock(impl_->mu);
  impl_->cursor.fill(0);
}

std::uint64_t Outbox::next_envelope_seq() {
  auto& d = *impl_;
  std::lock_guard lock(d.mu);
  // Sequence numbers are reserved in blocks, so that a crash never reuses
  // one that may already have reached the broker; a restart leaves a gap.
  if (d.next_env_seq >= d.reserved_env_seq) {
    sqlite::ResetGuard g(d.set_env_seq);
    d.set_env_seq.bind(1, static_cast<std::int64_t>(d.next_env_seq + kEnvelopeSeqBlock));
    if (d.set_env_seq.step() == SQLITE_DONE) d.reserved_env_seq = d.next_env_seq + kEnvelopeSeqBlock;
  }
  return d.next_env_seq++;
}

OutboxStats Outbox::stats() {
  std::lock_guard lock(impl_->mu);
  return impl_->stats;
}

}  // namespace eport::store
