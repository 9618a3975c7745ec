// [store] A failed step of a commit loses nothing: whichever step of
// Outbox::append fails (begin, evict, insert, sources upsert, counters,
// commit) and however (a lock held by another connection, disk full, I/O
// error), nothing of the batch is stored, the failure is counted, and the
// batch's sources are held back at their first new seq, so that later
// readings are refused until the failed one is resent. The faults are real
// where SQLite lets them be: a second connection holding the write lock, and
// a VFS shim below SQLite that fails one chosen read, write, sync or lock of
// the outbox's files. The OutboxOptions::fault hook covers every step with
// every code on top.
#include <sqlite3.h>

#include <catch2/catch.hpp>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "eport/store/outbox.h"
#include "test_util.h"
#include "vfs_shim.h"

using namespace eport;
using eport::model::Priority;
using store::AppendOutcome;

namespace {

// ---- The fault VFS: the default VFS with one armed fault -------------------

enum class Op { kNone, kRead, kWrite, kSync, kWriteLock };
enum class Kind { kMain, kWal, kOther };

struct Plan {
  Op op = Op::kNone;
  Kind kind = Kind::kMain;
  sqlite3_int64 offset = -1;  // kRead: only a read at this offset; -1: any
  int rc = SQLITE_OK;
  int fired = 0;  // the fault fires once, then the files behave again
};
Plan g_plan;
sqlite3_vfs* g_real = nullptr;
constexpr const char* kVfsName = "eport-fault";

struct FaultFile {
  test::vfs::ShimFile shim;
  Kind kind;
};

FaultFile* ff(sqlite3_file* f) { return reinterpret_cast<FaultFile*>(f); }
using test::vfs::real;

bool fire(Op op, sqlite3_file* f, sqlite3_int64 offset = -1) {
  if (g_plan.op != op || g_plan.fired > 0 || g_plan.kind != ff(f)->kind) return false;
  if (g_plan.offset >= 0 && g_plan.offset != offset) return false;
  ++g_plan.fired;
  return true;
}

int x_close(sqlite3_file* f) { return real(f)->pMethods->xClose(real(f)); }
int x_read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  if (fire(Op::kRead, f, off)) return g_plan.rc;
  return real(f)->pMethods->xRead(real(f), buf, n, off);
}
int x_write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  if (fire(Op::kWrite, f)) return g_plan.rc;
  return real(f)->pMethods->xWrite(real(f), buf, n, off);
}
int x_truncate(sqlite3_file* f, sqlite3_int64 size) { return real(f)->pMethods->xTruncate(real(f), size); }
int x_sync(sqlite3_file* f, int flags) {
  if (fire(Op::kSync, f)) return g_plan.rc;
  return real(f)->pMethods->xSync(real(f), flags);
}
int x_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  // The WAL write lock (slot 0, exclusive) is what BEGIN IMMEDIATE takes.
  if (offset == 0 && n == 1 && flags == (SQLITE_SHM_LOCK | SQLITE_SHM_EXCLUSIVE) && fire(Op::kWriteLock, f)) {
    return g_plan.rc;
  }
  return real(f)->pMethods->xShmLock(real(f), offset, n, flags);
}
// Version 2: WAL's shared memory, but no xFetch, so SQLite reads through
// xRead (no memory-mapped I/O passing the shim).
const sqlite3_io_methods kMethods = {
    2,               x_close,        x_read,           x_write,           x_truncate,
    x_sync,          test::vfs::file_size, test::vfs::lock, test::vfs::unlock, test::vfs::check_reserved,
    test::vfs::file_control, test::vfs::sector_size, test::vfs::device_chars, test::vfs::shm_map,
    x_shm_lock,      test::vfs::shm_barrier, test::vfs::shm_unmap, nullptr, nullptr};

int x_open(sqlite3_vfs*, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  auto* f = ff(file);
  f->shim.real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + sizeof(FaultFile));
  f->kind = (flags & SQLITE_OPEN_MAIN_DB) ? Kind::kMain : (flags & SQLITE_OPEN_WAL) ? Kind::kWal : Kind::kOther;
  int rc = g_real->xOpen(g_real, name, f->shim.real, flags, out_flags);
  // SQLite calls xClose whenever pMethods is set, even after a failed open.
  f->shim.base.pMethods = f->shim.real->pMethods != nullptr ? &kMethods : nullptr;
  return rc;
}

void register_fault_vfs() {
  static bool done = [] {
    g_real = sqlite3_vfs_find(nullptr);
    static sqlite3_vfs vfs = *g_real;
    vfs.zName = kVfsName;
    vfs.szOsFile = static_cast<int>(sizeof(FaultFile)) + g_real->szOsFile;
    vfs.xOpen = x_open;
    vfs.pNext = nullptr;
    return sqlite3_vfs_register(&vfs, 0) == SQLITE_OK;
  }();
  REQUIRE(done);
}

void arm(Op op, Kind kind, int rc, sqlite3_int64 offset = -1) { g_plan = Plan{op, kind, offset, rc, 0}; }
void disarm() { g_plan = Plan{}; }

// ---- A second connection to the same file ---------------------------------

class Other {
 public:
  explicit Other(const std::string& path) {
    REQUIRE(sqlite3_open(path.c_str(), &db_) == SQLITE_OK);
    sqlite3_busy_timeout(db_, 2000);
  }
  ~Other() { sqlite3_close(db_); }
  Other(const Other&) = delete;
  Other& operator=(const Other&) = delete;
  void exec(const std::string& sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    INFO(sql << ": " << (err ? err : ""));
    sqlite3_free(err);
    REQUIRE(rc == SQLITE_OK);
  }
  sqlite3_int64 integer(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(s) == SQLITE_ROW);
    auto v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
  }

 private:
  sqlite3* db_ = nullptr;
};

// ---- The scenario ----------------------------------------------------------

constexpr std::size_t kBody = 52;  // + 48 overhead = 100 accounted bytes per row
constexpr std::uint64_t kRoom = 30;  // rows

store::Record rec(const std::string& source, std::uint64_t seq, Priority p = Priority::kTelemetry) {
  store::Record r;
  r.source_id = source;
  r.seq = seq;
  r.priority = p;
  r.created_utc_ms = 1000 + seq;
  r.body.assign(kBody, static_cast<std::uint8_t>(seq));
  return r;
}

std::vector<store::Record> tcu(std::uint64_t from, std::uint64_t to) {
  std::vector<store::Record> v;
  for (auto s = from; s <= to; ++s) v.push_back(rec("tcu", s));
  return v;
}

std::vector<std::uint64_t> stored_seqs(store::Outbox& ob, const std::string& source) {
  std::vector<std::uint64_t> seqs;
  REQUIRE(ob.for_each([&](const store::StoredRecord& r) {
    if (r.source_id == source) seqs.push_back(r.seq);
    return true;
  }).ok());
  return seqs;
}

// The step the OutboxOptions::fault hook fails next (once), and with what.
struct Hook {
  std::string step;
  int rc = SQLITE_OK;
};

store::OutboxOptions options(const test::TempDir& dir, Hook* hook) {
  store::OutboxOptions o;
  o.when_full = store::WhenFull::kEvictLowest;  // the evict step is one of those under test
  o.path = dir.file("outbox.db");
  o.vfs = kVfsName;
  o.busy_timeout = std::chrono::milliseconds(100);
  o.max_bytes = kRoom * 100;
  o.min_free_bytes = 0;
  o.source_row_bytes = 0;  // the room is counted in reading rows
  if (hook != nullptr) {
    o.fault = [hook](std::string_view step) {
      if (hook->rc == SQLITE_OK || step != hook->step) return SQLITE_OK;
      int rc = hook->rc;
      hook->rc = SQLITE_OK;  // once
      return rc;
    };
  }
  return o;
}

// tcu 1..3 are stored and the outbox is full (bulk rows fill it), so that
// appending tcu 4 runs every step: begin, evict, insert, sources, counters,
// commit. `fault` arranges for one of them to fail; `clear` removes the
// cause. Then: appending tcu 4 fails at `step`, 5..8 are held back, 4..8
// resent all go in, and the store holds exactly 1..8, also after reopening.
void failed_step_loses_nothing(const std::string& step, const std::function<void(const std::string& path)>& fault,
                               const std::function<void()>& clear, Hook* hook = nullptr) {
  register_fault_vfs();
  disarm();
  test::TempDir dir;
  auto opt = options(dir, hook);
  {
    auto opened = store::Outbox::open(opt);
    REQUIRE(opened.ok());
    auto& ob = **opened;
    auto r = ob.append(tcu(1, 3));
    REQUIRE(r.ok());
    REQUIRE(r->stored == 3);
    std::vector<store::Record> bulk;
    for (std::uint64_t s = 1; s <= kRoom - 3; ++s) bulk.push_back(rec("bulk", s, Priority::kBulk));
    r = ob.append(bulk);
    REQUIRE(r.ok());
    REQUIRE(r->stored == kRoom - 3);
    REQUIRE(ob.stats().commit_failures == 0);

    fault(opt.path);
    r = ob.append(tcu(4, 4));
    clear();
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error(), Catch::StartsWith("append: " + step + ": "));
    CHECK(ob.stats().commit_failures == 1);
    CHECK(ob.last_seq("tcu") == 3);
    CHECK(stored_seqs(ob, "tcu") == std::vector<std::uint64_t>{1, 2, 3});

    // The fault is gone, but 4 has not come again: its successors wait.
    r = ob.append(tcu(5, 8));
    REQUIRE(r.ok());
    CHECK(r->outcome == std::vector<AppendOutcome>(4, AppendOutcome::kRefused));
    CHECK(ob.last_seq("tcu") == 3);

    // The unit resends from 4, as NACK asks.
    r = ob.append(tcu(4, 8));
    REQUIRE(r.ok());
    CHECK(r->outcome == std::vector<AppendOutcome>(5, AppendOutcome::kStored));
    CHECK(stored_seqs(ob, "tcu") == std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8});
    CHECK(ob.last_seq("tcu") == 8);
    CHECK(ob.stats().commit_failures == 1);
    CHECK(ob.verify().value() == "ok");
  }
  opt.vfs.clear();
  opt.fault = nullptr;
  auto reopened = store::Outbox::open(opt);
  REQUIRE(reopened.ok());
  CHECK((*reopened)->last_seq("tcu") == 8);
  CHECK(stored_seqs(**reopened, "tcu") == std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8});
}

// Makes the next read of a table's (or index's) root page fail: the pages
// are checkpointed into the main file and the outbox's page cache is made
// stale by a write of page 1 from another connection, so the step that first
// touches that b-tree reads it through the VFS.
std::function<void(const std::string&)> fail_reading(std::string btree, int rc) {
  return [btree = std::move(btree), rc](const std::string& path) {
    Other other(path);
    other.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    other.exec("PRAGMA user_version = 5");  // the schema version it has: touches page 1 only
    auto page_size = other.integer("PRAGMA page_size");
    auto root = other.integer("SELECT rootpage FROM sqlite_schema WHERE name = '" + btree + "'");
    REQUIRE(root > 1);
    arm(Op::kRead, Kind::kMain, rc, (root - 1) * page_size);
  };
}

void expect_fired() { CHECK(g_plan.fired == 1); }

}  // namespace

TEST_CASE("begin fails while another connection holds the write lock: nothing is lost", "[store][faults]") {
  std::unique_ptr<Other> locker;
  failed_step_loses_nothing(
      "begin", [&](const std::string& path) {
        locker = std::make_unique<Other>(path);
        locker->exec("BEGIN IMMEDIATE");
      },
      [&] {
        locker->exec("ROLLBACK");
        locker.reset();
      });
}

TEST_CASE("begin fails with an I/O error taking the WAL write lock: nothing is lost", "[store][faults]") {
  failed_step_loses_nothing("begin", [](const std::string&) { arm(Op::kWriteLock, Kind::kMain, SQLITE_IOERR_LOCK); },
                            expect_fired);
}

TEST_CASE("evict fails with an I/O error reading the outbox: nothing is lost", "[store][faults]") {
  failed_step_loses_nothing("evict", fail_reading("outbox", SQLITE_IOERR_READ), expect_fired);
}

TEST_CASE("insert fails with an I/O error reading sqlite_sequence: nothing is lost", "[store][faults]") {
  failed_step_loses_nothing("insert", fail_reading("sqlite_sequence", SQLITE_IOERR_READ), expect_fired);
}

TEST_CASE("the sources upsert fails with an I/O error: nothing is lost", "[store][faults]") {
  failed_step_loses_nothing("sources", fail_reading("sources", SQLITE_IOERR_READ), expect_fired);
}

TEST_CASE("the counter update fails with an I/O error: nothing is lost", "[store][faults]") {
  failed_step_loses_nothing("counters", fail_reading("meta", SQLITE_IOERR_READ), expect_fired);
}

TEST_CASE("commit fails with the disk full writing the WAL: nothing is lost", "[store][faults]") {
  failed_step_loses_nothing("commit", [](const std::string&) { arm(Op::kWrite, Kind::kWal, SQLITE_FULL); },
                            expect_fired);
}

TEST_CASE("commit fails with an I/O error writing the WAL: nothing is lost", "[store][faults]") {
  failed_step_loses_nothing("commit", [](const std::string&) { arm(Op::kWrite, Kind::kWal, SQLITE_IOERR_WRITE); },
                            expect_fired);
}

TEST_CASE("commit fails with an I/O error syncing the WAL: nothing is lost", "[store][faults]") {
  failed_step_loses_nothing("commit", [](const std::string&) { arm(Op::kSync, Kind::kWal, SQLITE_IOERR_FSYNC); },
                            expect_fired);
}

TEST_CASE("any step failing with busy, disk full or an I/O error loses nothing", "[store][faults]") {
  auto step = GENERATE(as<std::string>{}, "begin", "evict", "insert", "sources", "counters", "commit");
  auto rc = GENERATE(SQLITE_BUSY, SQLITE_FULL, SQLITE_IOERR);
  INFO("step " << step << " fails with " << sqlite3_errstr(rc));
  Hook hook;
  failed_step_loses_nothing(step, [&](const std::string&) { hook = Hook{step, rc}; },
                            [&] { CHECK(hook.rc == SQLITE_OK); },  // it fired
                            &hook);
}

TEST_CASE("a failed batch holds back every source in it, each at its first new seq", "[store][faults]") {
  test::TempDir dir;
  Hook hook;
  auto opt = options(dir, &hook);
  opt.vfs.clear();
  opt.max_bytes = 1 << 20;
  auto opened = store::Outbox::open(opt);
  REQUIRE(opened.ok());
  auto& ob = **opened;
  REQUIRE(ob.append(std::vector<store::Record>{rec("a", 1), rec("b", 1)}).ok());
  hook = Hook{"commit", SQLITE_IOERR};
  // a: 2, 3 new; b: 1 a duplicate, 2 new; c: first reading.
  auto r = ob.append(std::vector<store::Record>{rec("a", 2), rec("b", 1), rec("a", 3), rec("b", 2), rec("c", 5)});
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error(), Catch::Contains("commit"));
  CHECK(ob.stats().commit_failures == 1);
  r = ob.append(std::vector<store::Record>{rec("a", 3), rec("b", 3), rec("c", 6), rec("b", 1)});
  REQUIRE(r.ok());
  CHECK(r->outcome == std::vector<AppendOutcome>{AppendOutcome::kRefused, AppendOutcome::kRefused,
                                                 AppendOutcome::kRefused, AppendOutcome::kDuplicate});
  r = ob.append(std::vector<store::Record>{rec("a", 2), rec("a", 3), rec("b", 2), rec("c", 5), rec("c", 6)});
  REQUIRE(r.ok());
  CHECK(r->stored == 5);
  CHECK(ob.last_seq("a") == 3);
  CHECK(ob.last_seq("b") == 2);
  CHECK(ob.last_seq("c") == 6);
}
