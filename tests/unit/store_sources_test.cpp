// [store] Sources (a source's last seq, kept after its readings are gone)
// count against max_bytes and may take at most a quarter of it, so that a
// stream of new unit ids cannot grow the store past its bound; idle sources
// with nothing waiting expire. And one store serves one agent: a second
// open of the same store fails while the first holds its lock.
#include <catch2/catch.hpp>

#include <sqlite3.h>
#include <unistd.h>

#include "eport/model/clock.h"
#include "eport/store/outbox.h"
#include "test_util.h"

using namespace eport;
using eport::model::Priority;
using store::AppendOutcome;

namespace {

store::Record rec(const std::string& source, std::uint64_t seq) {
  store::Record r;
  r.source_id = source;
  r.seq = seq;
  r.priority = Priority::kTelemetry;
  r.created_utc_ms = 1000;
  r.body.assign(20, 0x42);
  return r;
}

store::OutboxOptions options(const test::TempDir& dir) {
  store::OutboxOptions o;
  o.path = dir.file("outbox.db");
  o.min_free_bytes = 0;
  return o;
}

std::int64_t sql_count(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  auto n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

void ack_everything(store::Outbox& ob) {
  while (true) {
    auto rows = ob.take(10000, 1 << 30);
    REQUIRE(rows.ok());
    if (rows->empty()) return;
    auto lease = store::Lease::of(*rows);
    REQUIRE(ob.ack(std::span(&lease, 1)).ok());
  }
}

}  // namespace

TEST_CASE("50,000 new source ids cannot grow the sources past their share of max_bytes", "[store][sources]") {
  test::TempDir dir;
  auto o = options(dir);
  o.max_bytes = 1 << 20;
  auto ob = std::move(store::Outbox::open(o)).value();
  REQUIRE(ob->append(std::vector<store::Record>{rec("tcu-real", 1)}).ok());
  std::uint64_t stored = 0, refused = 0;
  for (int batch = 0; batch < 50; ++batch) {
    std::vector<store::Record> v;
    for (int i = 0; i < 1000; ++i) v.push_back(rec("attacker-" + std::to_string(batch * 1000 + i), 1));
    auto r = ob->append(v);
    REQUIRE(r.ok());
    stored += r->stored;
    refused += r->refused;
    ack_everything(*ob);  // even drained, their last seqs stay: only the share bounds them
  }
  auto st = ob->stats();
  INFO(stored << " stored, " << refused << " refused; " << st.sources << " sources, " << st.sources_bytes << " bytes");
  CHECK(refused > 0);
  CHECK(st.sources_refused == refused);
  CHECK(st.sources_bytes <= o.max_bytes / 4);
  CHECK(st.sources == stored + 1);
  CHECK(sql_count(o.path, "SELECT count(*) FROM sources") == static_cast<std::int64_t>(st.sources));
  CHECK(st.file_bytes < 2 * o.max_bytes);
  // A known source is never refused for the share: its row exists already.
  auto r = ob->append(std::vector<store::Record>{rec("tcu-real", 2)});
  REQUIRE(r.ok());
  CHECK(r->outcome[0] == AppendOutcome::kStored);
  CHECK(ob->last_seq("tcu-real") == 2);
}

TEST_CASE("idle sources with nothing waiting expire; active ones keep their last seq", "[store][sources]") {
  test::TempDir dir;
  auto o = options(dir);
  o.source_expiry = std::chrono::seconds(60);
  const auto now = model::now_utc_ms();
  {
    auto ob = std::move(store::Outbox::open(o)).value();
    REQUIRE(ob->append(std::vector<store::Record>{rec("idle", 7)}).ok());
    ack_everything(*ob);  // published: nothing of "idle" waits
    REQUIRE(ob->append(std::vector<store::Record>{rec("waiting", 3)}).ok());  // not published
    auto before = ob->stats().sources_bytes;
    auto report = ob->maintain(now + 30'000);  // not idle long enough yet
    REQUIRE(report.ok());
    CHECK(report->sources_expired == 0);
    report = ob->maintain(now + 61'000);
    REQUIRE(report.ok());
    CHECK(report->sources_expired == 1);
    CHECK(ob->last_seq("idle") == 0);     // forgotten: its next HELLO's oldest_seq restarts it
    CHECK(ob->last_seq("waiting") == 3);  // a reading waits: kept however idle
    auto st = ob->stats();
    CHECK(st.sources == 1);
    CHECK(st.sources_expired == 1);
    CHECK(st.sources_bytes < before);
    // A source that stores again is seen again.
    REQUIRE(ob->append(std::vector<store::Record>{rec("idle", 8)}).ok());
    CHECK(ob->last_seq("idle") == 8);
  }
  // Persisted: a restart sees the same.
  auto ob = std::move(store::Outbox::open(o)).value();
  CHECK(ob->last_seq("idle") == 8);
  CHECK(ob->last_seq("waiting") == 3);
  CHECK(ob->stats().sources == 2);
}

TEST_CASE("source_expiry 0 keeps every source", "[store][sources]") {
  test::TempDir dir;
  auto o = options(dir);
  o.source_expiry = std::chrono::seconds(0);
  auto ob = std::move(store::Outbox::open(o)).value();
  REQUIRE(ob->append(std::vector<store::Record>{rec("old", 1)}).ok());
  ack_everything(*ob);
  REQUIRE(ob->maintain(model::now_utc_ms() + 10ull * 365 * 86400 * 1000).ok());
  CHECK(ob->last_seq("old") == 1);
}

TEST_CASE("a store of schema v1 is migrated: its sources keep their last seq and are seen at open", "[store][sources]") {
  test::TempDir dir;
  auto o = options(dir);
  o.source_expiry = std::chrono::seconds(60);
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(o.path.c_str(), &db) == SQLITE_OK);
    const char* v1 =
        "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, priority INTEGER NOT NULL, source_id TEXT NOT "
        "NULL, seq INTEGER NOT NULL, created_ms INTEGER NOT NULL, body BLOB NOT NULL);"
        "CREATE INDEX outbox_drain ON outbox(priority, id);"
        "CREATE TABLE sources (source_id TEXT PRIMARY KEY, last_seq INTEGER NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
        "INSERT INTO meta VALUES ('envelope_seq_reserved', 1);"
        "INSERT INTO sources VALUES ('drained', 41), ('busy', 9);"
        "INSERT INTO outbox(priority, source_id, seq, created_ms, body) VALUES (1, 'busy', 9, 1, x'00');"
        "PRAGMA user_version = 1;";
    REQUIRE(sqlite3_exec(db, v1, nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  auto ob = std::move(store::Outbox::open(o)).value();
  CHECK(ob->last_seq("drained") == 41);
  CHECK(ob->last_seq("busy") == 9);
  CHECK(sql_count(o.path, "PRAGMA user_version") == 5);  // v1 -> v2 -> v3 (commands) -> v4 (derived state)
  // Seen at open, not at the epoch: nothing expires at once.
  REQUIRE(ob->maintain(model::now_utc_ms()).ok());
  CHECK(ob->last_seq("drained") == 41);
  // Idle past the expiry: a source that cannot tell which rows are its own
  // (migrated) waits until every row it may have is gone.
  REQUIRE(ob->maintain(model::now_utc_ms() + 61'000).ok());
  CHECK(ob->last_seq("drained") == 41);
  CHECK(ob->last_seq("busy") == 9);
  ack_everything(*ob);
  REQUIRE(ob->maintain(model::now_utc_ms() + 61'000).ok());
  CHECK(ob->last_seq("drained") == 0);
  CHECK(ob->last_seq("busy") == 0);
}

TEST_CASE("a second open of the same store fails naming the path and the holder's pid", "[store][lock]") {
  test::TempDir dir;
  auto o = options(dir);
  auto first = store::Outbox::open(o);
  REQUIRE(first.ok());
  auto second = store::Outbox::open(o);
  REQUIRE_FALSE(second.ok());
  CHECK_THAT(second.error(), Catch::Contains(o.path));
  CHECK_THAT(second.error(), Catch::Contains("in use by another agent (pid " + std::to_string(getpid()) + ")"));
  CHECK_THAT(second.error(), Catch::Contains(o.path + ".lock"));
  // The first is untouched and works.
  REQUIRE((*first)->append(std::vector<store::Record>{rec("tcu", 1)}).ok());
  first = Error{"closed"};  // releases the lock
  auto third = store::Outbox::open(o);
  REQUIRE(third.ok());
  CHECK((*third)->last_seq("tcu") == 1);
}

TEST_CASE("last seqs committed but not yet written to the sources table come back from the newest rows "
          "after a crash",
          "[store][sources]") {
  // The sources rows are written at most once a second and with every
  // deletion (flash wear, docs/store.md): a crash in between must not lose
  // a last seq. The files copied while the store is open are what a crash
  // leaves (WAL mode, every commit synced).
  test::TempDir dir, crashed;
  auto o = options(dir);
  auto ob = std::move(store::Outbox::open(o)).value();
  REQUIRE(ob->append(std::vector<store::Record>{rec("a", 1), rec("b", 1)}).ok());
  ack_everything(*ob);  // deletion: the sources rows are written now (a 1, b 1)
  for (std::uint64_t s = 2; s <= 5; ++s) {
    REQUIRE(ob->append(std::vector<store::Record>{rec("a", s)}).ok());
  }
  REQUIRE(ob->append(std::vector<store::Record>{rec("c", 7)}).ok());  // a new source, its row not written yet
  for (const char* suffix : {"", "-wal"}) {
    std::filesystem::copy_file(o.path + suffix, crashed.file("outbox.db") + suffix);
  }
  auto again = std::move(store::Outbox::open(options(crashed))).value();
  CHECK(again->last_seq("a") == 5);
  CHECK(again->last_seq("b") == 1);
  CHECK(again->last_seq("c") == 7);
  CHECK(again->stats().sources == 3);
  auto r = again->append(std::vector<store::Record>{rec("a", 5), rec("c", 7), rec("a", 6)});
  REQUIRE(r.ok());
  CHECK(r->outcome == std::vector<AppendOutcome>{AppendOutcome::kDuplicate, AppendOutcome::kDuplicate,
                                                 AppendOutcome::kStored});
  // Once the rows are gone, the sources table holds what they carried.
  ack_everything(*again);
  again.reset();
  CHECK(sql_count(crashed.file("outbox.db"), "SELECT last_seq FROM sources WHERE source_id = 'a'") == 6);
  CHECK(sql_count(crashed.file("outbox.db"), "SELECT last_seq FROM sources WHERE source_id = 'c'") == 7);
}
