// The SQLite outbox: schema and migrations, group-committed appends with
// per-source duplicate detection and ordering, bounds with eviction or
// refusal, leased drain in priority order, acks, expiry and space reclaim;
// and the seen command ids of the uplink (CommandLog), bounded alike.
// Opening, migrations, start-up checking and salvage live in open.cpp.
#include "eport/store/outbox.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "eport/log/log.h"
#include "eport/model/clock.h"
#include "open.h"
#include "sqlite.h"

namespace eport::store {

namespace {

constexpr std::uint64_t kEnvelopeSeqBlock = 1024;
constexpr std::int64_t kEvictChunkRows = 256;
constexpr std::string_view kLog = "store";

std::string sqlite_error(sqlite3* db, const std::string& what) { return what + ": " + sqlite3_errmsg(db); }

std::uint64_t file_size(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

std::string directory_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::uint64_t accounted(std::size_t body_bytes) { return body_bytes + kRowOverheadBytes; }

// Seqs are 1..model::kMaxSeq, so that every one is exact as a signed 64-bit
// SQLite integer and SQL's max() orders them as the in-memory map does.
bool valid_seq(std::uint64_t seq) { return seq >= 1 && seq <= model::kMaxSeq; }


// Sources (their last seqs) may take at most this share of max_bytes: a
// stream of new source ids is refused beyond it and never evicts more than
// this much of the readings.
constexpr std::uint64_t kSourcesShareDivisor = 4;
constexpr auto kForgetUnknownBlockAfter = std::chrono::minutes(10);
// The sources rows are written with an append's transaction at most this
// often (and with every transaction that deletes rows): between, a source's
// last seq is durable in its newest outbox row, which load() reads back.
// Each write touches the sources pages, so this spares them on most commits.
constexpr auto kSourcesFlushInterval = std::chrono::seconds(1);
// ... or once this many sources wait to be written.
constexpr std::size_t kSourcesFlushMax = 1024;
// Seen command ids may take at most this share of max_bytes.
constexpr std::uint64_t kCommandsShareDivisor = 16;

std::uint64_t command_cost(std::string_view id, std::string_view reply) {
  return kCommandRowOverheadBytes + id.size() + reply.size();
}

// The exclusive lock of one store: `<path>.lock`, flock()ed for the
// Outbox's lifetime, with the holder's pid in it for the error message of
// the next one. Never unlinked (an unlink would let two processes hold
// locks on two different files).
class StoreLock {
 public:
  StoreLock() = default;
  StoreLock(const StoreLock&) = delete;
  StoreLock& operator=(const StoreLock&) = delete;
  ~StoreLock() {
    if (fd_ >= 0) close(fd_);  // releases the lock
  }
  Status acquire(const std::string& db_path) {
    std::string path = db_path + ".lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd_ < 0) return Error{"cannot open lock file " + path + ": " + std::strerror(errno)};
    if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      std::string holder;
      char buf[32] = {};
      if (pread(fd_, buf, sizeof buf - 1, 0) > 0) holder = std::string(buf).substr(0, std::string(buf).find('\n'));
      close(fd_);
      fd_ = -1;
      if (err == EWOULDBLOCK) {
        return Error{"in use by another agent" + (holder.empty() ? std::string() : " (pid " + holder + ")") +
                     ", locked through " + path + "; one store serves one agent"};
      }
      return Error{"cannot lock " + path + ": " + std::strerror(err)};
    }
    std::string pid = std::to_string(getpid()) + "\n";
    if (ftruncate(fd_, 0) == 0) {
      [[maybe_unused]] auto n = pwrite(fd_, pid.data(), pid.size(), 0);
    }
    return ok_status();
  }

 private:
  int fd_ = -1;
};

// Sources whose invalid seqs are logged (once each); beyond this many only
// the counter grows.
constexpr std::size_t kMaxInvalidSeqLogged = 1024;

// A source's last class_seq in each class, indexed by Priority value.
using ClassSeqs = std::array<std::uint64_t, model::kPriorityCount>;

}  // namespace

std::uint64_t OutboxStats::total_rows() const {
  std::uint64_t n = 0;
  for (const auto& c : by_class) n += c.rows;
  return n;
}

std::uint64_t OutboxStats::total_bytes() const {
  std::uint64_t n = 0;
  for (const auto& c : by_class) n += c.bytes;
  return n;
}

struct Outbox::Impl {
  StoreLock lock;  // first: released after the database is closed
  OutboxOptions opt;
  std::string dir;
  std::mutex mu;
  Deriver* chain = nullptr;  // set_chain(): sees every stored record
  sqlite::Db db;
  sqlite::Stmt insert, upsert_source, take, del, set_env_seq, evict, oldest, expire, freelist, bump, expire_sources,
      put_state, delete_state, all_state;
  sqlite::Stmt find_cmd, insert_cmd, cost_cmd, done_cmd, prune_cmd_age, prune_cmd_oldest;
  std::uint64_t commands_rows = 0;   // rows of `commands`
  std::uint64_t commands_bytes = 0;  // sum of their cost
  std::int64_t page_size = 4096;
  std::unordered_map<std::string, std::uint64_t> last_seq;     // every source stored and not expired
  // Each source's last class_seq per class (by Priority value): the count of
  // its readings stored in that class (docs/consuming.md, "Completeness per
  // class"). A source without an entry has counted none.
  std::unordered_map<std::string, ClassSeqs> class_last;
  // Sources stored since their sources row was last written (committed, so
  // durable in the outbox rows themselves): what write_sources() writes.
  struct Unwritten {
    std::uint64_t last_seq = 0;
    std::int64_t seen_ms = 0;
    std::int64_t last_row_id = 0;
    ClassSeqs class_seq{};
  };
  std::unordered_map<std::string, Unwritten> unwritten;
  std::chrono::steady_clock::time_point sources_written_at{};
  std::uint64_t sources_bytes = 0;                              // source_cost() of every key of last_seq
  std::unordered_map<std::string, std::uint64_t> blocked_from;  // first refused seq, per source
  // When each block was set. A block of a source that has no sources row
  // (refused before it ever stored: e.g. new ids past their share) is
  // dropped by maintain() once it is kForgetUnknownBlockAfter old, so that
  // invented ids cannot grow this map; by then nothing of it can still be
  // in flight and the bridge holds the unit at the refused seq itself.
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> blocked_at;
  std::array<std::int64_t, model::kPriorityCount> cursor{};     // highest leased id per class
  std::uint64_t next_env_seq = 1;      // next envelope seq to hand out
  std::uint64_t reserved_env_seq = 1;  // persisted: first seq not yet reserved
  OutboxStats stats;
  std::unordered_set<std::string> invalid_seq_logged;  // sources whose invalid seq was logged
  std::string fail_msg;  // what the last failed step of append() said

  std::uint64_t source_cost(std::string_view id) const {
    return opt.source_row_bytes == 0 ? 0 : opt.source_row_bytes + id.size();
  }

  Status prepare_all() {
    for (auto [stmt, sql] : {
             std::pair{&insert,
                       "INSERT INTO outbox(priority, source_id, seq, created_ms, body, class_seq) VALUES (?,?,?,?,?,?)"},
             std::pair{&upsert_source,
                       "INSERT INTO sources(source_id, last_seq, seen_ms, last_row_id, class_seq_0, class_seq_1, "
                       "class_seq_2, class_seq_3) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
                       "ON CONFLICT(source_id) DO UPDATE SET last_seq = max(last_seq, ?2), seen_ms = ?3, "
                       "last_row_id = max(last_row_id, ?4), class_seq_0 = max(class_seq_0, ?5), "
                       "class_seq_1 = max(class_seq_1, ?6), class_seq_2 = max(class_seq_2, ?7), "
                       "class_seq_3 = max(class_seq_3, ?8)"},
             // A source is forgotten when idle and when none of its rows can
             // still wait: its last row is older than every row waiting.
             std::pair{&expire_sources,
                       "DELETE FROM sources WHERE seen_ms < ?1 AND last_row_id < "
                       "(SELECT coalesce(min(id), 9223372036854775807) FROM outbox) RETURNING source_id"},
             std::pair{&take,
                       "SELECT id, source_id, seq, created_ms, body, class_seq FROM outbox WHERE priority = ? AND id > ? "
                       "ORDER BY id LIMIT ?"},
             std::pair{&del, "DELETE FROM outbox WHERE priority = ? AND id BETWEEN ? AND ? RETURNING length(body)"},
             std::pair{&set_env_seq, "UPDATE meta SET value = max(value, ?) WHERE key = 'envelope_seq_reserved'"},
             std::pair{&evict,
                       "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE priority = ? ORDER BY id LIMIT ?) "
                       "RETURNING length(body)"},
             std::pair{&oldest, "SELECT created_ms FROM outbox WHERE priority = ? ORDER BY id LIMIT 1"},
             std::pair{&expire,
                       "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE priority = ? AND created_ms < ? "
                       "AND source_id NOT LIKE '%:ev' ORDER BY id LIMIT 1000) RETURNING length(body)"},
             std::pair{&freelist, "PRAGMA freelist_count"},
             std::pair{&put_state, "INSERT OR REPLACE INTO derived_state(key, state) VALUES (?, ?)"},
             std::pair{&delete_state, "DELETE FROM derived_state WHERE key = ?"},
             std::pair{&all_state, "SELECT key, state FROM derived_state ORDER BY key"},
             std::pair{&find_cmd,
                       "SELECT issued_ms, received_ms, reply FROM commands WHERE command_id = ?"},
             std::pair{&insert_cmd,
                       "INSERT INTO commands(command_id, issued_ms, received_ms, reply, cost) VALUES (?,?,?,NULL,?)"},
             std::pair{&cost_cmd, "SELECT id, cost FROM commands WHERE command_id = ?"},
             std::pair{&done_cmd, "UPDATE commands SET reply = ?2, cost = ?3 WHERE id = ?1"},
             // A command with that id and issued time would be refused as
             // stale now, and so would one issued when it was received.
             std::pair{&prune_cmd_age, "DELETE FROM commands WHERE max(issued_ms, received_ms) < ? RETURNING cost"},
             std::pair{&prune_cmd_oldest,
                       "DELETE FROM commands WHERE id = (SELECT min(id) FROM commands WHERE id != ?) RETURNING cost"},
             std::pair{&bump,
                       "INSERT INTO meta(key, value) VALUES (?1, ?2) "
                       "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value"},
         }) {
      if (auto s = stmt->prepare(db, sql); !s) return s;
    }
    return ok_status();
  }

  Status load() {
    // An older agent stored seqs of 2^63 and above as negative integers and
    // accepted seqs above kMaxSeq: bring such sources back into the range
    // (the highest valid seq still waiting, else 0), so that SQL's max() and
    // the in-memory map agree from here on.
    const std::string max_seq = std::to_string(model::kMaxSeq);
    const std::string out_of_range = " WHERE last_seq < 0 OR last_seq > " + max_seq;
    auto bad = db.query_int("SELECT count(*) FROM sources" + out_of_range);
    if (!bad) return Error{bad.error()};
    if (*bad > 0) {
      if (auto st = db.exec("UPDATE sources SET last_seq = coalesce((SELECT max(o.seq) FROM outbox o WHERE "
                            "o.source_id = sources.source_id AND o.seq BETWEEN 1 AND " + max_seq + "), 0)" +
                            out_of_range);
          !st) {
        return st;
      }
      log::warn(kLog, std::to_string(*bad) + " sources had a last seq outside 1.." + max_seq +
                          "; reset to their highest valid waiting one, else 0");
    }
    // Sources without a seen time (salvaged, or from schema v1): seen now,
    // and possibly with rows waiting.
    if (auto st = db.exec("UPDATE sources SET seen_ms = " + std::to_string(model::now_utc_ms()) +
                          ", last_row_id = (SELECT coalesce(max(id), 0) FROM outbox) WHERE seen_ms = 0");
        !st) {
      return st;
    }
    sqlite::Stmt s;
    if (auto st = s.prepare(db, "SELECT source_id, last_seq, class_seq_0, class_seq_1, class_seq_2, class_seq_3 "
                                "FROM sources");
        !st)
      return st;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) {
      auto id = s.column_text(0);
      sources_bytes += source_cost(id);
      ClassSeqs counts{};
      for (std::size_t p = 0; p < counts.size(); ++p) counts[p] = static_cast<std::uint64_t>(s.column_int(2 + static_cast<int>(p)));
      if (counts != ClassSeqs{}) class_last[id] = counts;
      last_seq[std::move(id)] = static_cast<std::uint64_t>(s.column_int(1));
    }
    if (rc != SQLITE_DONE) return Error{sqlite_error(db.get(), "loading sources")};
    // The sources rows are written with some commits only (write_sources):
    // every row up to the highest last_row_id they hold is covered by them,
    // the rows after it carry the rest of each source's last seq.
    auto covered = db.query_int("SELECT coalesce(max(last_row_id), 0) FROM sources");
    if (!covered) return Error{covered.error()};
    sqlite::Stmt tail;
    if (auto st = tail.prepare(db, "SELECT source_id, max(seq), max(id) FROM outbox WHERE id > ? GROUP BY source_id");
        !st)
      return st;
    tail.bind(1, *covered);
    const auto now_ms = static_cast<std::int64_t>(model::now_utc_ms());
    while ((rc = tail.step()) == SQLITE_ROW) {
      auto id = tail.column_text(0);
      auto seq = static_cast<std::uint64_t>(tail.column_int(1));
      auto [it, inserted] = last_seq.try_emplace(id, 0);
      if (inserted) sources_bytes += source_cost(id);
      it->second = std::max(it->second, seq);
      unwritten[id] = Unwritten{it->second, now_ms, tail.column_int(2)};
    }
    tail.reset();
    if (rc != SQLITE_DONE) return Error{sqlite_error(db.get(), "loading sources from the newest rows")};
    // ... and the rest of each source's class counts.
    sqlite::Stmt tail_counts;
    if (auto st = tail_counts.prepare(db, "SELECT source_id, priority, max(class_seq) FROM outbox WHERE id > ? "
                                          "GROUP BY source_id, priority");
        !st)
      return st;
    tail_counts.bind(1, *covered);
    while ((rc = tail_counts.step()) == SQLITE_ROW) {
      auto id = tail_counts.column_text(0);
      auto p = tail_counts.column_int(1);
      auto count = static_cast<std::uint64_t>(tail_counts.column_int(2));
      if (p < 0 || p >= model::kPriorityCount || count == 0) continue;
      auto& counts = class_last[id];
      counts[static_cast<std::size_t>(p)] = std::max(counts[static_cast<std::size_t>(p)], count);
      if (auto u = unwritten.find(id); u != unwritten.end()) u->second.class_seq = counts;
    }
    tail_counts.reset();
    if (rc != SQLITE_DONE) return Error{sqlite_error(db.get(), "loading class counts from the newest rows")};

    sqlite::Stmt c;
    if (auto st = c.prepare(db, "SELECT priority, count(*), coalesce(sum(length(body)),0) FROM outbox GROUP BY priority");
        !st)
      return st;
    while ((rc = c.step()) == SQLITE_ROW) {
      auto p = c.column_int(0);
      if (p >= 0 && p < model::kPriorityCount) {
        auto rows = static_cast<std::uint64_t>(c.column_int(1));
        auto& cls = stats.by_class[static_cast<std::size_t>(p)];
        cls.rows = rows;
        cls.bytes = static_cast<std::uint64_t>(c.column_int(2)) + rows * kRowOverheadBytes;
      }
    }
    if (rc != SQLITE_DONE) return Error{sqlite_error(db.get(), "counting outbox")};

    // Lifetime counters (evicted.N, expired.N, refused.N for class N).
    sqlite::Stmt m;
    if (auto st = m.prepare(db, "SELECT key, value FROM meta"); !st) return st;
    while ((rc = m.step()) == SQLITE_ROW) {
      auto key = m.column_text(0);
      auto dot = key.find('.');
      if (dot == std::string::npos) continue;
      int p = std::atoi(key.c_str() + dot + 1);
      if (p < 0 || p >= model::kPriorityCount) continue;
      auto& cls = stats.by_class[static_cast<std::size_t>(p)];
      auto name = key.substr(0, dot);
      auto v = static_cast<std::uint64_t>(m.column_int(1));
      if (name == "evicted") cls.evicted = v;
      if (name == "expired") cls.expired = v;
      if (name == "refused") cls.refused = v;
    }
    auto cmd_rows = db.query_int("SELECT count(*) FROM commands");
    auto cmd_bytes = db.query_int("SELECT coalesce(sum(cost), 0) FROM commands");
    if (!cmd_rows) return Error{cmd_rows.error()};
    if (!cmd_bytes) return Error{cmd_bytes.error()};
    commands_rows = static_cast<std::uint64_t>(*cmd_rows);
    commands_bytes = static_cast<std::uint64_t>(*cmd_bytes);
    auto reserved = db.query_int("SELECT value FROM meta WHERE key='envelope_seq_reserved'");
    if (!reserved) return Error{reserved.error()};
    next_env_seq = reserved_env_seq = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(*reserved));
    auto ps = db.query_int("PRAGMA page_size");
    if (ps) page_size = *ps;
    return ok_status();
  }

  // The code of a failed SQLite call (never SQLITE_OK), keeping its message
  // for fail_append().
  int failed(int rc) {
    fail_msg = sqlite3_errmsg(db.get());
    return rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_ERROR : rc;
  }

  // Steps a statement that returns no rows; SQLITE_OK or the failure's code.
  // The statement is reset either way.
  int step_done(sqlite::Stmt& s) {
    int rc = s.step();
    rc = rc == SQLITE_DONE ? SQLITE_OK : failed(rc);
    s.reset();
    return rc;
  }

  // Writes the sources rows of `pending` (inside the caller's transaction):
  // SQLITE_OK or the failure's code.
  int write_sources(const std::unordered_map<std::string, Unwritten>& pending) {
    for (const auto& [source, u] : pending) {
      upsert_source.bind(1, source);
      upsert_source.bind(2, static_cast<std::int64_t>(u.last_seq));
      upsert_source.bind(3, u.seen_ms);
      upsert_source.bind(4, u.last_row_id);
      for (std::size_t p = 0; p < u.class_seq.size(); ++p) {
        upsert_source.bind(5 + static_cast<int>(p), static_cast<std::int64_t>(u.class_seq[p]));
      }
      if (int rc = step_done(upsert_source); rc != SQLITE_OK) return rc;
    }
    return SQLITE_OK;
  }

  // After a transaction that wrote every unwritten source committed.
  void sources_written() {
    unwritten.clear();
    sources_written_at = std::chrono::steady_clock::now();
  }

  // Writes the unwritten sources rows in a transaction of its own (before
  // rows are deleted outside append() and ack(), and at close).
  Status flush_sources() {
    if (unwritten.empty()) return ok_status();
    if (int rc = sqlite3_exec(db.get(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr); rc != SQLITE_OK) {
      return Error{sqlite_error(db.get(), "write sources: begin")};
    }
    if (write_sources(unwritten) != SQLITE_OK ||
        sqlite3_exec(db.get(), "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
      std::string msg = "write sources: " + fail_msg;
      if (sqlite3_get_autocommit(db.get()) == 0) (void)db.exec("ROLLBACK");
      return Error{msg};
    }
    sources_written();
    return ok_status();
  }

  // The test hook (OutboxOptions::fault): SQLITE_OK, or the code the next
  // step of append() is to fail with.
  int injected(std::string_view step) {
    if (!opt.fault) return SQLITE_OK;
    int rc = opt.fault(step);
    if (rc != SQLITE_OK) fail_msg = std::string("injected fault: ") + sqlite3_errstr(rc);
    return rc;
  }

  // Adds to a lifetime counter inside the current transaction: SQLITE_OK or
  // the failure's code.
  int bump_counter(std::string_view name, std::size_t cls, std::uint64_t delta) {
    if (delta == 0) return SQLITE_OK;
    bump.bind(1, std::string(name) + "." + std::to_string(cls));
    bump.bind(2, static_cast<std::int64_t>(delta));
    return step_done(bump);
  }

  std::uint64_t freelist_bytes() {
    sqlite::ResetGuard g(freelist);
    return freelist.step() == SQLITE_ROW ? static_cast<std::uint64_t>(freelist.column_int(0) * page_size) : 0;
  }

  // What all rows may add up to right now: the configured limit, lowered
  // when the filesystem is short of its free-space reserve.
  std::uint64_t capacity(std::uint64_t total) {
    std::uint64_t limit = opt.max_bytes;
    struct statvfs vfs{};
    if (opt.min_free_bytes > 0 && statvfs(dir.c_str(), &vfs) == 0) {
      auto fs_free = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
      auto reusable = freelist_bytes();  // pages SQLite reuses before growing the file
      std::uint64_t by_disk;
      if (fs_free >= opt.min_free_bytes) {
        by_disk = total + reusable + (fs_free - opt.min_free_bytes);
      } else {
        std::uint64_t shortfall = opt.min_free_bytes - fs_free;
        by_disk = total + reusable > shortfall ? total + reusable - shortfall : 0;
      }
      limit = std::min(limit, by_disk);
    }
    return limit;
  }

  // Deletes the oldest rows of classes that may give way to a reading of
  // class `incoming` until `total` is at most `target`. Lowest class first;
  // a class gives way to itself except alarms, which never do.
  // Returns SQLITE_OK or the code of the SQLite error.
  int evict_for(model::Priority incoming, std::uint64_t& total, std::uint64_t target,
                 std::array<ClassStats, model::kPriorityCount>& delta) {
    for (int p = 0; p < model::kPriorityCount && total > target; ++p) {
      auto cls = static_cast<model::Priority>(p);
      if (cls > incoming || (cls == incoming && cls == model::Priority::kAlarm)) break;
      while (total > target) {
        // Delete about as many rows as the excess needs (by the class's
        // average row size), so eviction stops near the low-water mark.
        const auto& cls_now = stats.by_class[static_cast<std::size_t>(p)];
        std::uint64_t avg = cls_now.rows > 0 ? std::max<std::uint64_t>(1, cls_now.bytes / cls_now.rows) : 100;
        auto want = static_cast<std::int64_t>(std::min<std::uint64_t>(kEvictChunkRows, (total - target + avg - 1) / avg));
        evict.bind(1, p);
        evict.bind(2, std::max<std::int64_t>(1, want));
        std::uint64_t freed_rows = 0;
        int rc;
        while ((rc = evict.step()) == SQLITE_ROW) {
          auto bytes = accounted(static_cast<std::size_t>(evict.column_int(0)));
          total -= std::min(total, bytes);
          delta[static_cast<std::size_t>(p)].bytes += bytes;
          ++freed_rows;
        }
        if (rc != SQLITE_DONE) rc = failed(rc);
        evict.reset();
        if (rc != SQLITE_DONE) return rc;
        delta[static_cast<std::size_t>(p)].evicted += freed_rows;
        delta[static_cast<std::size_t>(p)].rows += freed_rows;
        if (freed_rows == 0) break;  // this class is empty (in this transaction)
      }
    }
    return SQLITE_OK;
  }

  // Rolls back after a failed step of ack().
  Error rollback(const std::string& what) {
    std::string msg = sqlite_error(db.get(), what);
    bool disk_full = db.error_code() == SQLITE_FULL;
    (void)db.exec("ROLLBACK");
    if (disk_full) {
      // The disk filled up under us (faster than the reserve allowed for).
      // Folding the WAL back into the database and truncating it is what
      // gives SQLite room again; the next append then evicts.
      (void)db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      log::error(kLog, "disk full: " + msg + "; WAL truncated, eviction will make room");
    }
    return Error{msg};
  }

  // After a failed transaction nothing of the batch is stored: hold every
  // source back at its first new reading in it, so that no later one is
  // stored before that one has been resent.
  void hold_back(std::span<const Record> records) {
    for (const auto& rec : records) {
      if (!valid_seq(rec.seq)) continue;
      auto it = last_seq.find(rec.source_id);
      std::uint64_t last = it == last_seq.end() ? 0 : it->second;
      if (rec.seq <= last) continue;
      auto [b, inserted] = blocked_from.try_emplace(rec.source_id, rec.seq);
      if (!inserted) b->second = std::min(b->second, rec.seq);
      blocked_at[rec.source_id] = std::chrono::steady_clock::now();
    }
  }

  // Every failed step of append() ends here, so that none can forget a part
  // of it: undo the transaction, hold back the batch's sources, count it.
  // `rc` is the step's SQLite result code, fail_msg what it said.
  Error fail_append(std::string_view step, int rc, std::span<const Record> records) {
    std::string msg = "append: " + std::string(step) + ": " + fail_msg;
    if (sqlite3_get_autocommit(db.get()) == 0) (void)db.exec("ROLLBACK");
    hold_back(records);
    ++stats.commit_failures;
    if ((rc & 0xff) == SQLITE_FULL) {
      // The disk filled up under us (faster than the reserve allowed for).
      // Folding the WAL back into the database and truncating it is what
      // gives SQLite room again; the next append then evicts.
      (void)db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      log::error(kLog, "disk full: " + msg + "; WAL truncated, eviction will make room");
    }
    return Error{msg};
  }

  // A seq outside 1..kMaxSeq never reaches SQLite: refused and counted,
  // logged once per source.
  void refuse_invalid_seq(const Record& r) {
    ++stats.invalid_seq;
    if (invalid_seq_logged.size() < kMaxInvalidSeqLogged && invalid_seq_logged.insert(r.source_id).second) {
      log::error(kLog, "refusing reading " + r.source_id + " seq " + std::to_string(r.seq) + ": seqs are 1.." +
                           std::to_string(model::kMaxSeq) +
                           " (further ones of this source are only counted, invalid_seq)");
    }
  }

  std::uint64_t file_bytes() { return file_size(opt.path) + file_size(opt.path + "-wal"); }

  // Deletes the command ids that can no longer be admitted at now_ms
  // (command_max_age), inside the caller's transaction. Adds what it
  // deleted to rows/bytes; SQLITE_OK or the failure's code.
  int prune_commands_by_age(std::uint64_t now_ms, std::uint64_t& rows, std::uint64_t& bytes) {
    auto age_ms = static_cast<std::uint64_t>(opt.command_max_age.count()) * 1000;
    if (age_ms == 0 || now_ms <= age_ms) return SQLITE_OK;
    prune_cmd_age.bind(1, static_cast<std::int64_t>(now_ms - age_ms));
    int rc;
    while ((rc = prune_cmd_age.step()) == SQLITE_ROW) {
      ++rows;
      bytes += static_cast<std::uint64_t>(prune_cmd_age.column_int(0));
    }
    rc = rc == SQLITE_DONE ? SQLITE_OK : failed(rc);
    prune_cmd_age.reset();
    return rc;
  }

  // Deletes the oldest command id other than row `keep`, inside the
  // caller's transaction: false when there was none (or on error, rc set).
  bool prune_oldest_command(std::int64_t keep, std::uint64_t& rows, std::uint64_t& bytes, int& rc) {
    prune_cmd_oldest.bind(1, keep);
    int step = prune_cmd_oldest.step();
    bool deleted = step == SQLITE_ROW;
    if (deleted) {
      ++rows;
      bytes += static_cast<std::uint64_t>(prune_cmd_oldest.column_int(0));
      step = prune_cmd_oldest.step();
    }
    rc = step == SQLITE_DONE ? SQLITE_OK : failed(step);
    prune_cmd_oldest.reset();
    return deleted && rc == SQLITE_OK;
  }

  // Ends a failed command_started()/command_done() transaction.
  Error command_failure(const std::string& what, int rc) {
    std::string msg = what + ": " + fail_msg;
    if (sqlite3_get_autocommit(db.get()) == 0) (void)db.exec("ROLLBACK");
    if ((rc & 0xff) == SQLITE_FULL) (void)db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    return Error{msg};
  }
};

Outbox::Outbox(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Outbox::~Outbox() {
  // A clean close gives back the envelope seqs reserved and not used, so that
  // the next process continues at the next one; only a crash (no destructor)
  // leaves the rest of the block as a gap.
  auto& d = *impl_;
  std::lock_guard lock(d.mu);
  if (d.db.get() != nullptr) {
    if (auto s = d.flush_sources(); !s) log::warn(kLog, s.error() + " (read back from the outbox at the next start)");
  }
  if (d.db.get() != nullptr && d.next_env_seq < d.reserved_env_seq) {
    if (auto s = d.db.exec("UPDATE meta SET value = " + std::to_string(d.next_env_seq) +
                           " WHERE key = 'envelope_seq_reserved' AND value = " + std::to_string(d.reserved_env_seq));
        !s) {
      log::warn(kLog, "envelope seqs reserved up to " + std::to_string(d.reserved_env_seq) +
                          " not given back (the next start leaves a gap): " + s.error());
    }
  }
}

Result<std::unique_ptr<Outbox>> Outbox::open(const OutboxOptions& options) {
  auto impl = std::make_unique<Impl>();
  if (auto s = impl->lock.acquire(options.path); !s) return Error{"store " + options.path + ": " + s.error()};
  impl->opt = options;
  impl->dir = directory_of(options.path);
  auto opened = opening::open_checked(impl->db, options);
  if (!opened) return Error{"store " + options.path + ": " + opened.error()};
  impl->stats.recovered_from = opened->moved_to;
  impl->stats.salvaged = opened->salvaged;
  if (auto s = impl->prepare_all(); !s) return Error{"store " + options.path + ": " + s.error()};
  if (auto s = impl->load(); !s) return Error{"store " + options.path + ": " + s.error()};
  impl->stats.max_bytes = options.max_bytes;
  return std::unique_ptr<Outbox>(new Outbox(std::move(impl)));
}

Result<AppendResult> Outbox::append(std::span<const Record> records, Deriver* deriver) {
  auto& d = *impl_;
  std::lock_guard lock(d.mu);
  AppendResult result;
  if (records.empty() && deriver == nullptr) return result;
  result.outcome.assign(records.size(), AppendOutcome::kRefused);

  std::uint64_t total = d.stats.total_bytes() + d.sources_bytes + d.commands_bytes;
  std::uint64_t limit = d.capacity(total);
  std::uint64_t sources_limit = d.opt.max_bytes / kSourcesShareDivisor;
  std::uint64_t sources_bytes = d.sources_bytes;  // with this batch's new sources
  std::uint64_t low_water = limit / 100 * d.opt.low_water_pct;
  // Every failure from here on returns through fail(): rollback, hold back
  // the batch's sources, count it.
  // The chain sees every record stored, unless it is this call's deriver.
  Deriver* chain = d.chain != deriver ? d.chain : nullptr;
  auto fail = [&](std::string_view step, int rc) -> Result<AppendResult> {
    if (deriver != nullptr) deriver->finished(false);
    if (chain != nullptr) chain->finished(false);
    return d.fail_append(step, rc, records);
  };
  std::vector<Record> derived;  // what the deriver adds after one stored record
  if (int rc = d.injected("begin"); rc != SQLITE_OK) return fail("begin", rc);
  if (int rc = sqlite3_exec(d.db.get(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr); rc != SQLITE_OK) {
    return fail("begin", d.failed(rc));
  }

  // Changes made by this transaction; applied to the in-memory state only
  // once it has committed.
  std::unordered_map<std::string_view, std::uint64_t> batch_max;
  std::unordered_map<std::string_view, std::int64_t> batch_row;  // last row id inserted per source
  std::unordered_map<std::string_view, ClassSeqs> batch_class;    // class counts after this batch, per source
  // The class_seq the next record of `source` in class `p` gets (and counts it).
  auto next_class_seq = [&](std::string_view source, model::Priority p) -> std::uint64_t {
    auto [it, fresh] = batch_class.try_emplace(source);
    if (fresh) {
      if (auto known = d.class_last.find(std::string(source)); known != d.class_last.end()) it->second = known->second;
    }
    return ++it->second[static_cast<std::size_t>(p)];
  };
  std::unordered_map<std::string_view, std::uint64_t> newly_blocked;
  std::unordered_set<std::string_view> unblocked;
  std::array<ClassStats, model::kPriorityCount> added{}, evicted{};
  // The derived records' source ids, owned here for as long as batch_max
  // holds views of them (a deque: growing it moves no element).
  std::deque<std::string> derived_keep;

  // Stores what the deriver added (after one stored record, or at begin());
  // SQLITE_OK or the failed step's code, with fail_step naming the step.
  std::string_view fail_step;
  auto fail_rc = [&](std::string_view step, int rc) { fail_step = step; return rc; };
  std::vector<Record> chained;  // what the chain adds after one stored record
  auto store_one = [&](const Record& e) -> int {
    // A derived record goes in with what caused it, or the whole batch
    // fails: it is never stored without its cause, nor its cause without it.
    auto seen = batch_max.find(e.source_id);
    std::uint64_t before = seen != batch_max.end() ? seen->second
                           : d.last_seq.count(e.source_id) ? d.last_seq.at(e.source_id) : 0;
    if (!valid_seq(e.seq) || e.seq <= before) {
      d.fail_msg = "derived record " + e.source_id + " seq " + std::to_string(e.seq) + " is not above " +
                   std::to_string(before);
      return fail_rc("derive", SQLITE_CONSTRAINT);
    }
    auto e_need = accounted(e.body.size());
    bool e_new = seen == batch_max.end() && !d.last_seq.count(e.source_id);
    if (e_new) e_need += d.source_cost(e.source_id);
    if (total + e_need > limit && d.opt.when_full == WhenFull::kEvictLowest) {
      std::uint64_t target = low_water > e_need ? low_water - e_need : 0;
      if (int rc = d.evict_for(e.priority, total, target, evicted); rc != SQLITE_OK) return fail_rc("derive", rc);
    }
    if (total + e_need > limit) {
      // Not SQLITE_FULL: the disk is not full (fail_append's remedy for
      // that, a WAL truncation, would not help); store.max_bytes is reached.
      d.fail_msg = "no room for a derived " + std::string(model::priority_name(e.priority)) +
                   " record within store.max_bytes";
      return fail_rc("derive", SQLITE_CONSTRAINT);
    }
    if (int rc = d.injected("derive"); rc != SQLITE_OK) return fail_rc("derive", rc);
    d.insert.bind(1, static_cast<std::int64_t>(e.priority));
    d.insert.bind(2, e.source_id);
    d.insert.bind(3, static_cast<std::int64_t>(e.seq));
    d.insert.bind(4, static_cast<std::int64_t>(e.created_utc_ms));
    d.insert.bind_blob(5, e.body);
    // batch_max holds string_views and `derived` is reused for the next
    // record: the id is kept in derived_keep, which outlives batch_max.
    derived_keep.push_back(e.source_id);
    // Counted before the insert can fail: a failed append rolls back the
    // whole batch, and its counts with it.
    d.insert.bind(6, static_cast<std::int64_t>(next_class_seq(derived_keep.back(), e.priority)));
    if (int rc = d.step_done(d.insert); rc != SQLITE_OK) return fail_rc("derive", rc);
    batch_max[derived_keep.back()] = e.seq;
    batch_row[derived_keep.back()] = sqlite3_last_insert_rowid(d.db.get());
    if (e_new) sources_bytes += d.source_cost(e.source_id);
    auto& ec = added[static_cast<std::size_t>(e.priority)];
    ++ec.rows;
    ec.bytes += e_need;
    total += e_need;
    ++result.derived;
    return SQLITE_OK;
  };
  // What the chain adds after record `r` was stored (not fed back to it).
  auto chain_after = [&](const Record& r) -> int {
    if (chain == nullptr) return SQLITE_OK;
    chained.clear();
    chain->stored(r, chained);
    for (const auto& e : chained) {
      if (int rc = store_one(e); rc != SQLITE_OK) return rc;
    }
    return SQLITE_OK;
  };
  auto store_derived = [&]() -> int {
    for (const auto& e : derived) {
      if (int rc = store_one(e); rc != SQLITE_OK) return rc;
      if (int rc = chain_after(e); rc != SQLITE_OK) return rc;
    }
    return SQLITE_OK;
  };
  if (deriver != nullptr) {
    derived.clear();
    deriver->begin(derived);
    if (int rc = store_derived(); rc != SQLITE_OK) return fail(fail_step, rc);
  }

  Record rewritten;  // a record as the deriver rewrote it (Deriver::rewrite)
  for (std::size_t i = 0; i < records.size(); ++i) {
    const Record& r = deriver != nullptr ? deriver->rewrite(records[i], rewritten) : records[i];
    // The batch's maps keep views of source ids: of the caller's record,
    // which outlives them (a rewrite has the same source, in scratch space
    // reused by the next record).
    const std::string_view source = records[i].source_id;
    if (!valid_seq(r.seq)) {
      d.refuse_invalid_seq(r);
      ++result.refused;
      continue;
    }
    std::uint64_t last = 0;
    if (auto it = batch_max.find(r.source_id); it != batch_max.end()) {
      last = it->second;
    } else if (auto it2 = d.last_seq.find(r.source_id); it2 != d.last_seq.end()) {
      last = it2->second;
    }
    if (r.seq <= last) {
      ++result.duplicates;
      result.outcome[i] = AppendOutcome::kDuplicate;
      continue;
    }
    // Keep each source in seq order: after a refusal, hold back its later
    // readings until the refused one comes again.
    if (auto nb = newly_blocked.find(r.source_id); nb != newly_blocked.end()) {
      ++result.refused;
      continue;
    }
    if (auto b = d.blocked_from.find(r.source_id); b != d.blocked_from.end() && !unblocked.count(r.source_id)) {
      if (r.seq > b->second) {
        ++result.refused;
        continue;
      }
      unblocked.insert(source);  // the held-back reading is here again
    }
    auto need = accounted(r.body.size());
    bool new_source = !batch_max.count(r.source_id) && !d.last_seq.count(r.source_id);
    if (new_source) {
      // A new source costs its sources row too, and sources as a whole
      // stay within their share of the bound.
      need += d.source_cost(r.source_id);
      if (d.opt.source_row_bytes > 0 && sources_bytes + d.source_cost(r.source_id) > sources_limit) {
        ++result.refused;
        ++added[static_cast<std::size_t>(r.priority)].refused;
        newly_blocked[source] = r.seq;
        ++d.stats.sources_refused;
        continue;
      }
    }
    if (total + need > limit && d.opt.when_full == WhenFull::kEvictLowest) {
      std::uint64_t target = low_water > need ? low_water - need : 0;
      if (int rc = d.injected("evict"); rc != SQLITE_OK) return fail("evict", rc);
      if (int rc = d.evict_for(r.priority, total, target, evicted); rc != SQLITE_OK) return fail("evict", rc);
    }
    if (total + need > limit) {
      ++result.refused;
      ++added[static_cast<std::size_t>(r.priority)].refused;
      newly_blocked[source] = r.seq;
      continue;
    }
    if (int rc = d.injected("insert"); rc != SQLITE_OK) return fail("insert", rc);
    d.insert.bind(1, static_cast<std::int64_t>(r.priority));
    d.insert.bind(2, r.source_id);
    d.insert.bind(3, static_cast<std::int64_t>(r.seq));  // exact: seq <= kMaxSeq < 2^63
    d.insert.bind(4, static_cast<std::int64_t>(r.created_utc_ms));
    d.insert.bind_blob(5, r.body);
    d.insert.bind(6, static_cast<std::int64_t>(next_class_seq(source, r.priority)));
    if (int rc = d.step_done(d.insert); rc != SQLITE_OK) return fail("insert", rc);
    batch_max[source] = r.seq;
    batch_row[source] = sqlite3_last_insert_rowid(d.db.get());
    if (new_source) sources_bytes += d.source_cost(r.source_id);
    auto& c = added[static_cast<std::size_t>(r.priority)];
    ++c.rows;
    c.bytes += need;
    total += need;
    ++result.stored;
    result.outcome[i] = AppendOutcome::kStored;
    if (int rc = chain_after(r); rc != SQLITE_OK) return fail(fail_step, rc);
    if (deriver == nullptr) continue;
    derived.clear();
    deriver->stored(r, derived);
    if (int rc = store_derived(); rc != SQLITE_OK) return fail(fail_step, rc);
  }
  if (deriver != nullptr || chain != nullptr) {
    if (int rc = d.injected("state"); rc != SQLITE_OK) return fail("state", rc);
    DerivedState states;
    if (deriver != nullptr) deriver->state_changes(states);
    if (chain != nullptr) chain->state_changes(states);
    for (const auto& [key, bytes] : states) {
      auto& statement = bytes.empty() ? d.delete_state : d.put_state;
      statement.bind(1, key);
      if (!bytes.empty()) statement.bind_blob(2, bytes);
      if (int rc = d.step_done(statement); rc != SQLITE_OK) return fail("state", rc);
    }
  }
  if (int rc = d.injected("sources"); rc != SQLITE_OK) return fail("sources", rc);
  // This batch's sources join the unwritten ones; their rows are written
  // now only when due (a second since the last write, many waiting, or rows
  // deleted by eviction, which must not take their seqs with them). Until
  // then each last seq is durable in its newest outbox row (load()).
  const auto now_ms = static_cast<std::int64_t>(model::now_utc_ms());
  auto pending = d.unwritten;
  for (const auto& [source, seq] : batch_max) {
    auto& u = pending[std::string(source)];
    u.last_seq = std::max(u.last_seq, seq);
    u.seen_ms = now_ms;
    u.last_row_id = std::max(u.last_row_id, batch_row[source]);
    if (auto c = batch_class.find(source); c != batch_class.end()) u.class_seq = c->second;
  }
  bool any_evicted = false;
  for (const auto& e : evicted) any_evicted = any_evicted || e.rows > 0;
  const bool write_now = any_evicted || pending.size() >= kSourcesFlushMax ||
                         std::chrono::steady_clock::now() - d.sources_written_at >= kSourcesFlushInterval;
  if (write_now && !pending.empty()) {
    if (int rc = d.write_sources(pending); rc != SQLITE_OK) return fail("sources", rc);
  }
  if (int rc = d.injected("counters"); rc != SQLITE_OK) return fail("counters", rc);
  for (std::size_t i = 0; i < added.size(); ++i) {
    if (int rc = d.bump_counter("evicted", i, evicted[i].evicted); rc != SQLITE_OK) return fail("counters", rc);
    if (int rc = d.bump_counter("refused", i, added[i].refused); rc != SQLITE_OK) return fail("counters", rc);
  }
  if (int rc = d.injected("commit"); rc != SQLITE_OK) return fail("commit", rc);
  if (int rc = sqlite3_exec(d.db.get(), "COMMIT", nullptr, nullptr, nullptr); rc != SQLITE_OK) {
    return fail("commit", d.failed(rc));
  }
  if (deriver != nullptr) deriver->finished(true);
  if (chain != nullptr) chain->finished(true);
  if (write_now) {
    d.sources_written();
  } else {
    d.unwritten = std::move(pending);
  }
  for (auto source : unblocked) {
    d.blocked_from.erase(std::string(source));
    d.blocked_at.erase(std::string(source));
  }
  const auto blocked_now = std::chrono::steady_clock::now();
  for (const auto& [source, seq] : newly_blocked) {
    d.blocked_from[std::string(source)] = seq;
    d.blocked_at[std::string(source)] = blocked_now;
  }
  for (const auto& [source, counts] : batch_class) d.class_last[std::string(source)] = counts;
  for (const auto& [source, seq] : batch_max) {
    auto [it, inserted] = d.last_seq.try_emplace(std::string(source), 0);
    if (inserted) d.sources_bytes += d.source_cost(source);
    it->second = std::max(it->second, seq);  // as the SQL max(last_seq, ?) did
  }
  for (std::size_t i = 0; i < added.size(); ++i) {
    auto& cls = d.stats.by_class[i];
    cls.rows += added[i].rows;
    cls.bytes += added[i].bytes;
    cls.refused += added[i].refused;
    cls.rows -= std::min(cls.rows, evicted[i].rows);
    cls.bytes -= std::min(cls.bytes, evicted[i].bytes);
    cls.evicted += evicted[i].evicted;
    if (evicted[i].evicted > 0) {
      log::warn(kLog, "store full: evicted " + std::to_string(evicted[i].evicted) + " " +
                          std::string(model::priority_name(static_cast<model::Priority>(i))) + " readings");
    }
  }
  d.stats.appended += result.stored + result.derived;
  d.stats.duplicates += result.duplicates;
  return result;
}

void Outbox::set_chain(Deriver* chain) {
  std::lock_guard lock(impl_->mu);
  impl_->chain = chain;
}

Result<DerivedState> Outbox::derived_state() {
  auto& d = *impl_;
  std::lock_guard lock(d.mu);
  DerivedState out;
  int rc;
  while ((rc = d.all_state.step()) == SQLITE_ROW) {
    auto blob = d.all_state.column_blob(1);
    out.emplace_back(d.all_state.column_text(0), std::vector<std::uint8_t>(blob.begin(), blob.end()));
  }
  d.all_state.reset();
  if (rc != SQLITE_DONE) return Error{"store: reading derived state: " + d.db.error_message()};
  return out;
}

std::uint64_t Outbox::last_seq(std::string_view source_id) {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->last_seq.find(std::string(source_id));
  return it == impl_->last_seq.end() ? 0 : it->second;
}

Result<std::vector<StoredRecord>> Outbox::take(std::size_t max_rows, std::size_t max_bytes,
                                               model::Priority min_priority) {
  auto& d = *impl_;
  std::lock_guard lock(d.mu);
  std::vector<StoredRecord> out;
  for (int p = model::kPriorityCount - 1; p >= static_cast<int>(min_priority); --p) {
    auto& cursor = d.cursor[static_cast<std::size_t>(p)];
    sqlite::ResetGuard g(d.take);
    d.take.bind(1, p);
    d.take.bind(2, cursor);
    d.take.bind(3, static_cast<std::int64_t>(max_rows));
    std::size_t bytes = 0;
    int rc;
    while ((rc = d.take.step()) == SQLITE_ROW) {
      auto body = d.take.column_blob(4);
      if (!out.empty() && bytes + body.size() > max_bytes) break;
      StoredRecord r;
      r.id = d.take.column_int(0);
      r.source_id = d.take.column_text(1);
      // Evidence checkpoints travel on a topic of their own: a batch holds
      // either only them or none of them (the row left is taken next).
      if (!out.empty() && model::is_evidence_source(r.source_id) != model::is_evidence_source(out.front().source_id)) {
        break;
      }
      r.seq = static_cast<std::uint64_t>(d.take.column_int(2));
      r.created_utc_ms = static_cast<std::uint64_t>(d.take.column_int(3));
      r.class_seq = static_cast<std::uint64_t>(d.take.column_int(5));
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

Lease Lease::of(std::span<const StoredRecord> rows) {
  Lease l;
  if (rows.empty()) return l;
  l.priority = rows.front().priority;
  l.first_id = rows.front().id;
  l.last_id = rows.back().id;
  return l;
}

Status Outbox::ack(std::span<const Lease> leases) {
  auto& d = *impl_;
  std::lock_guard lock(d.mu);
  if (leases.empty()) return ok_status();
  // Deleting published rows need not be durable at once: if power fails
  // before the next synced commit, the rows come back and are published
  // again (duplicates, never loss). So acks skip the fsync; the next append's
  // synced commit covers them (the WAL is written in order). NORMAL, not
  // OFF: the commit may run the WAL's auto-checkpoint, which under OFF
  // backfilled the database without syncing it, and the next append then
  // restarted the WAL over the frames that were not yet durable in the
  // database: a power cut lost acknowledged readings and left the file
  // malformed (found by the simulated power cuts, store_power_cut_test).
  // Under NORMAL a checkpoint syncs the WAL before and the database after.
  bool full = d.opt.durability == Durability::kFull;
  if (full) (void)d.db.exec("PRAGMA synchronous=NORMAL");
  struct Restore {
    Impl& d;
    bool full;
    ~Restore() {
      if (full) (void)d.db.exec("PRAGMA synchronous=FULL");
    }
  } restore{d, full};
  if (auto s = d.db.exec("BEGIN IMMEDIATE"); !s) return Error{"ack: " + s.error()};
  // Deleted rows take their seqs with them: the sources rows first.
  const bool wrote_sources = !d.unwritten.empty();
  if (wrote_sources && d.write_sources(d.unwritten) != SQLITE_OK) return d.rollback("ack: sources");
  std::array<ClassStats, model::kPriorityCount> removed{};
  for (const auto& lease : leases) {
    if (lease.empty()) continue;
    auto p = static_cast<std::size_t>(lease.priority);
    sqlite::ResetGuard g(d.del);
    d.del.bind(1, static_cast<std::int64_t>(lease.priority));
    d.del.bind(2, lease.first_id);
    d.del.bind(3, lease.last_id);
    int rc;
    while ((rc = d.del.step()) == SQLITE_ROW) {
      ++removed[p].rows;
      removed[p].bytes += accounted(static_cast<std::size_t>(d.del.column_int(0)));
    }
    if (rc != SQLITE_DONE) return d.rollback("ack: delete");
  }
  if (sqlite3_exec(d.db.get(), "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) return d.rollback("ack: commit");
  if (wrote_sources) d.sources_written();
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

Result<MaintenanceReport> Outbox::maintain(std::uint64_t now_utc_ms) {
  auto& d = *impl_;
  std::lock_guard lock(d.mu);
  MaintenanceReport report;
  // Expiry deletes rows and sources: every sources row written first.
  if (auto s = d.flush_sources(); !s) return Error{s.error()};
  for (int p = 0; p < model::kPriorityCount; ++p) {
    auto ttl_ms = static_cast<std::uint64_t>(d.opt.ttl[static_cast<std::size_t>(p)].count()) * 1000;
    if (ttl_ms == 0 || now_utc_ms < ttl_ms) continue;
    auto cutoff = static_cast<std::int64_t>(now_utc_ms - ttl_ms);
    auto& cls = d.stats.by_class[static_cast<std::size_t>(p)];
    while (true) {
      sqlite::ResetGuard g(d.expire);
      d.expire.bind(1, p);
      d.expire.bind(2, cutoff);
      std::uint64_t n = 0;
      int rc;
      while ((rc = d.expire.step()) == SQLITE_ROW) {
        ++n;
        cls.bytes -= std::min(cls.bytes, accounted(static_cast<std::size_t>(d.expire.column_int(0))));
      }
      if (rc != SQLITE_DONE) return Error{sqlite_error(d.db.get(), "expire")};
      cls.rows -= std::min(cls.rows, n);
      cls.expired += n;
      (void)d.bump_counter("expired", static_cast<std::size_t>(p), n);
      report.expired += n;
      if (n == 0) break;
    }
  }
  if (report.expired > 0) log::warn(kLog, "expired " + std::to_string(report.expired) + " readings past their TTL");

  const auto steady_now = std::chrono::steady_clock::now();
  for (auto it = d.blocked_at.begin(); it != d.blocked_at.end();) {
    if (steady_now - it->second >= kForgetUnknownBlockAfter && !d.last_seq.count(it->first)) {
      d.blocked_from.erase(it->first);
      it = d.blocked_at.erase(it);
    } else {
      ++it;
    }
  }

  auto expiry_ms = static_cast<std::uint64_t>(d.opt.source_expiry.count()) * 1000;
  if (expiry_ms > 0 && now_utc_ms > expiry_ms) {
    sqlite::ResetGuard g(d.expire_sources);
    d.expire_sources.bind(1, static_cast<std::int64_t>(now_utc_ms - expiry_ms));
    int rc;
    std::uint64_t n = 0;
    while ((rc = d.expire_sources.step()) == SQLITE_ROW) {
      auto id = d.expire_sources.column_text(0);
      if (d.last_seq.erase(id) > 0) d.sources_bytes -= std::min(d.sources_bytes, d.source_cost(id));
      d.class_last.erase(id);
      d.blocked_from.erase(id);
      d.blocked_at.erase(id);
      report.forgotten_sources.push_back(id);
      ++n;
    }
    if (rc != SQLITE_DONE) return Error{sqlite_error(d.db.get(), "expire sources")};
    d.stats.sources_expired += n;
    report.sources_expired = n;
    if (n > 0) {
      log::info(kLog, "forgot " + std::to_string(n) + " sources idle for more than " +
                          std::to_string(d.opt.source_expiry.count()) + " s with nothing waiting (store.source_expiry_s)");
    }
  }

  if (d.opt.command_max_age.count() > 0 && d.commands_rows > 0) {
    std::uint64_t rows = 0, bytes = 0;
    if (int rc = d.prune_commands_by_age(now_utc_ms, rows, bytes); rc != SQLITE_OK) {
      return Error{"prune commands: " + d.fail_msg};
    }
    d.commands_rows -= std::min(d.commands_rows, rows);
    d.commands_bytes -= std::min(d.commands_bytes, bytes);
    d.stats.commands_pruned += rows;
    report.commands_pruned = rows;
  }

  // Give space back once a backlog has drained: free pages beyond 4 MiB and
  // more than a quarter of the file.
  auto pages = d.db.query_int("PRAGMA page_count");
  auto free_bytes = d.freelist_bytes();
  if (pages && free_bytes > (4u << 20) &&
      free_bytes * 4 > static_cast<std::uint64_t>(*pages * d.page_size)) {
    auto before = d.file_bytes();
    if (auto s = d.db.exec("PRAGMA incremental_vacuum; PRAGMA wal_checkpoint(TRUNCATE);"); !s) {
      return Error{"reclaim: " + s.error()};
    }
    auto after = d.file_bytes();
    report.reclaimed_bytes = before > after ? before - after : 0;
    log::info(kLog, "reclaimed " + std::to_string(report.reclaimed_bytes) + " bytes of free space");
  }
  return report;
}

Result<std::string> Outbox::verify() {
  auto& d = *impl_;
  std::lock_guard lock(d.mu);
  sqlite::Stmt s;
  if (auto st = s.prepare(d.db, "PRAGMA integrity_check"); !st) return Error{st.error()};
  std::string out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) out += (out.empty() ? "" : "\n") + s.column_text(0);
  if (rc != SQLITE_DONE) return Error{sqlite_error(d.db.get(), "integrity_check")};
  return out;
}

Status Outbox::for_each(const std::function<bool(const StoredRecord&)>& visit) {
  auto& d = *impl_;
  std::lock_guard lock(d.mu);
  sqlite::Stmt s;
  if (auto st = s.prepare(d.db, "SELECT id, source_id, seq, created_ms, body, priority, class_seq FROM outbox "
                                "ORDER BY priority DESC, id");
      !st)
    return st;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) {
    StoredRecord r;
    r.id = s.column_int(0);
    r.source_id = s.column_text(1);
    r.seq = static_cast<std::uint64_t>(s.column_int(2));
    r.created_utc_ms = static_cast<std::uint64_t>(s.column_int(3));
    auto body = s.column_blob(4);
    r.body.assign(body.begin(), body.end());
    r.priority = static_cast<model::Priority>(s.column_int(5));
    r.class_seq = static_cast<std::uint64_t>(s.column_int(6));
    if (!visit(r)) return ok_status();
  }
  if (rc != SQLITE_DONE) return Error{sqlite_error(d.db.get(), "dump")};
  return ok_status();
}

std::int64_t Outbox::get_value(const std::string& name) {
  auto& d = *impl_;
  std::lock_guard lock(d.mu);
  sqlite::Stmt s;
  if (!s.prepare(d.db, "SELECT value FROM meta WHERE key = ?")) return 0;
  s.bind(1, "value." + name);
  return s.step() == SQLITE_ROW ? s.column_int(0) : 0;
}

Status Outbox::set_value(const std::string& name, std::int64_t value) {
  auto& d = *impl_;
  std::lock_guard lock(d.mu);
  sqlite::Stmt s;
  if (auto st = s.prepare(d.db, "INSERT INTO meta(key, value) VALUES (?, ?) "
                                "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
      !st)
    return st;
  s.bind(1, "value." + name);
  s.bind(2, value);
  if (s.step() != SQLITE_DONE) return Error{sqlite_error(d.db.get(), "set " + name)};
  return ok_status();
}

std::array<std::uint64_t, model::kPriorityCount> Outbox::rows_by_class() {
  std::lock_guard lock(impl_->mu);
  std::array<std::uint64_t, model::kPriorityCount> out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = impl_->stats.by_class[i].rows;
  return out;
}

OutboxStats Outbox::stats() {
  auto& d = *impl_;
  std::lock_guard lock(d.mu);
  OutboxStats s = d.stats;
  for (int p = 0; p < model::kPriorityCount; ++p) {
    auto& cls = s.by_class[static_cast<std::size_t>(p)];
    cls.oldest_created_ms = 0;
    if (cls.rows == 0) continue;
    sqlite::ResetGuard g(d.oldest);
    d.oldest.bind(1, p);
    if (d.oldest.step() == SQLITE_ROW) cls.oldest_created_ms = static_cast<std::uint64_t>(d.oldest.column_int(0));
  }
  s.file_bytes = d.file_bytes();
  s.sources = d.last_seq.size();
  s.sources_bytes = d.sources_bytes;
  s.commands = d.commands_rows;
  s.commands_bytes = d.commands_bytes;
  return s;
}

Result<std::optional<CommandRecord>> Outbox::find_command(std::string_view command_id) {
  auto& d = *impl_;
  std::lock_guard lock(d.mu);
  sqlite::ResetGuard g(d.find_cmd);
  d.find_cmd.bind(1, command_id);
  int rc = d.find_cmd.step();
  if (rc == SQLITE_DONE) return std::optional<CommandRecord>();
  if (rc != SQLITE_ROW) return Error{sqlite_error(d.db.get(), "find command " + std::string(command_id))};
  CommandRecord c;
  c.command_id = std::string(command_id);
  c.issued_utc_ms = static_cast<std::uint64_t>(d.find_cmd.column_int(0));
  c.received_utc_ms = static_cast<std::uint64_t>(d.find_cmd.column_int(1));
  c.done = !d.find_cmd.column_is_null(2);
  if (c.done) c.reply = d.find_cmd.column_text(2);
  return std::optional<CommandRecord>(std::move(c));
}

Status Outbox::command_started(const CommandRecord& command) {
  auto& d = *impl_;
  std::lock_guard lock(d.mu);
  const std::string what = "record command " + command.command_id;
  // The same order as append(): the transaction, and the in-memory counts
  // only once it has committed.
  if (int rc = sqlite3_exec(d.db.get(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr); rc != SQLITE_OK) {
    return d.command_failure(what + ": begin", d.failed(rc));
  }
  std::uint64_t pruned_rows = 0, pruned_bytes = 0;
  if (int rc = d.prune_commands_by_age(command.received_utc_ms, pruned_rows, pruned_bytes); rc != SQLITE_OK) {
    return d.command_failure(what + ": prune", rc);
  }
  const auto need = command_cost(command.command_id, "");
  const auto share = d.opt.max_bytes / kCommandsShareDivisor;
  const std::uint64_t max_rows = std::max<std::size_t>(1, d.opt.max_commands);
  while (d.commands_rows - pruned_rows >= max_rows || d.commands_bytes - pruned_bytes + need > share) {
    int rc = SQLITE_OK;
    if (!d.prune_oldest_command(-1, pruned_rows, pruned_bytes, rc)) {
      if (rc != SQLITE_OK) return d.command_failure(what + ": prune", rc);
      break;
    }
  }
  // Like a reading: never past the store's limit (readings, sources and
  // commands together, lowered on a disk short of its reserve).
  std::uint64_t total = d.stats.total_bytes() + d.sources_bytes + d.commands_bytes - pruned_bytes;
  if (total + need > d.capacity(total)) {
    (void)d.db.exec("ROLLBACK");
    return Error{what + ": the store is full (" + std::to_string(total) + " bytes of " +
                 std::to_string(d.opt.max_bytes) + " or the disk's free-space reserve)"};
  }
  d.insert_cmd.bind(1, command.command_id);
  d.insert_cmd.bind(2, static_cast<std::int64_t>(command.issued_utc_ms));
  d.insert_cmd.bind(3, static_cast<std::int64_t>(command.received_utc_ms));
  d.insert_cmd.bind(4, static_cast<std::int64_t>(need));
  if (int rc = d.step_done(d.insert_cmd); rc != SQLITE_OK) {
    if ((rc & 0xff) == SQLITE_CONSTRAINT) d.fail_msg = "already recorded";
    return d.command_failure(what, rc);
  }
  if (int rc = sqlite3_exec(d.db.get(), "COMMIT", nullptr, nullptr, nullptr); rc != SQLITE_OK) {
    return d.command_failure(what + ": commit", d.failed(rc));
  }
  d.commands_rows = d.commands_rows - pruned_rows + 1;
  d.commands_bytes = d.commands_bytes - pruned_bytes + need;
  d.stats.commands_pruned += pruned_rows;
  return ok_status();
}

Status Outbox::command_done(std::string_view command_id, std::string_view reply) {
  auto& d = *impl_;
  std::lock_guard lock(d.mu);
  const std::string what = "record the reply of command " + std::string(command_id);
  if (int rc = sqlite3_exec(d.db.get(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr); rc != SQLITE_OK) {
    return d.command_failure(what + ": begin", d.failed(rc));
  }
  std::int64_t row = 0;
  std::uint64_t old_cost = 0;
  {
    sqlite::ResetGuard g(d.cost_cmd);
    d.cost_cmd.bind(1, command_id);
    int rc = d.cost_cmd.step();
    if (rc == SQLITE_DONE) {
      (void)d.db.exec("ROLLBACK");
      return Error{what + ": not recorded as started (or pruned since)"};
    }
    if (rc != SQLITE_ROW) return d.command_failure(what, d.failed(rc));
    row = d.cost_cmd.column_int(0);
    old_cost = static_cast<std::uint64_t>(d.cost_cmd.column_int(1));
  }
  const auto cost = command_cost(command_id, reply);
  const auto share = d.opt.max_bytes / kCommandsShareDivisor;
  std::uint64_t pruned_rows = 0, pruned_bytes = 0;
  // Within the share by forgetting older ids, never this one: its reply is
  // what stops it from running twice. (The reply may take the store past its
  // limit by its own size; a reading's append then sees it counted.)
  while (d.commands_bytes - pruned_bytes - old_cost + cost > share) {
    int rc = SQLITE_OK;
    if (!d.prune_oldest_command(row, pruned_rows, pruned_bytes, rc)) {
      if (rc != SQLITE_OK) return d.command_failure(what + ": prune", rc);
      break;
    }
  }
  d.done_cmd.bind(1, row);
  d.done_cmd.bind(2, reply);
  d.done_cmd.bind(3, static_cast<std::int64_t>(cost));
  if (int rc = d.step_done(d.done_cmd); rc != SQLITE_OK) return d.command_failure(what, rc);
  if (int rc = sqlite3_exec(d.db.get(), "COMMIT", nullptr, nullptr, nullptr); rc != SQLITE_OK) {
    return d.command_failure(what + ": commit", d.failed(rc));
  }
  d.commands_rows -= std::min(d.commands_rows, pruned_rows);
  d.commands_bytes = d.commands_bytes - pruned_bytes - old_cost + cost;
  d.stats.commands_pruned += pruned_rows;
  return ok_status();
}

}  // namespace eport::store
