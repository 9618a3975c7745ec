// [store][commands] Seen command ids (store::CommandLog in the outbox's
// SQLite file): a command id recorded before a restart is found after it
// with its reply; at most max_commands rows and a sixteenth of max_bytes,
// the oldest forgotten first; ids that commands.max_age_s can no longer
// admit are pruned; the rows count against max_bytes like the readings; a
// store of schema v2 (the agent before this table) opens and gains it. And
// [uplink][commands]: uplink::answer_once() over a real store executes a
// command id at most once, also across a reopen and after a "crash" between
// recording and executing.
#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <filesystem>
#include <fstream>

#include "eport/model/clock.h"
#include "eport/store/outbox.h"
#include "eport/uplink/commands.h"
#include "test_util.h"

using namespace eport;
using eport::model::Priority;

namespace {

store::OutboxOptions options(const test::TempDir& dir) {
  store::OutboxOptions o;
  o.path = dir.file("outbox.db");
  o.min_free_bytes = 0;
  return o;
}

std::unique_ptr<store::Outbox> open(const store::OutboxOptions& o) {
  auto ob = store::Outbox::open(o);
  REQUIRE(ob.ok());
  return std::move(ob).value();
}

store::CommandRecord started(const std::string& id, std::uint64_t received_ms, std::uint64_t issued_ms = 0) {
  store::CommandRecord c;
  c.command_id = id;
  c.received_utc_ms = received_ms;
  c.issued_utc_ms = issued_ms == 0 ? received_ms : issued_ms;
  return c;
}

std::int64_t sql_int(const std::string& path, const std::string& sql) {
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

bool found(store::Outbox& ob, const std::string& id) {
  auto f = ob.find_command(id);
  REQUIRE(f.ok());
  return f->has_value();
}

store::Record reading(const std::string& source, std::uint64_t seq, std::size_t body = 1000) {
  store::Record r;
  r.source_id = source;
  r.seq = seq;
  r.priority = Priority::kTelemetry;
  r.created_utc_ms = 1000;
  r.body.assign(body, 0x42);
  return r;
}

codec::Command flush_command(const std::string& id, std::uint64_t issued_ms) {
  codec::Command c;
  c.command_id = id;
  c.gateway_id = "gw-test-01";
  c.issued_utc_ms = issued_ms;
  c.action = codec::Flush{};
  return c;
}

}  // namespace

TEST_CASE("a command id recorded before a restart is found after it, with its reply", "[store][commands]") {
  test::TempDir dir;
  auto o = options(dir);
  const auto now = model::now_utc_ms();
  {
    auto ob = open(o);
    CHECK_FALSE(found(*ob, "c-1"));
    REQUIRE(ob->command_started(started("c-1", now, now - 2000)).ok());
    REQUIRE(ob->command_done("c-1", R"({"command_id":"c-1","ok":true,"result":{"units":4}})").ok());
    REQUIRE(ob->command_started(started("c-2", now + 1)).ok());  // "killed" before its outcome was recorded
    // The same id cannot be recorded as started twice: it would run twice.
    auto again = ob->command_started(started("c-1", now + 2));
    REQUIRE_FALSE(again.ok());
    CHECK_THAT(again.error(), Catch::Contains("c-1") && Catch::Contains("already recorded"));
    CHECK_FALSE(ob->command_done("c-9", "{}").ok());  // never started
  }
  auto ob = open(o);
  auto c1 = ob->find_command("c-1");
  REQUIRE(c1.ok());
  REQUIRE(c1->has_value());
  CHECK((*c1)->done);
  CHECK((*c1)->reply == R"({"command_id":"c-1","ok":true,"result":{"units":4}})");
  CHECK((*c1)->received_utc_ms == now);
  CHECK((*c1)->issued_utc_ms == now - 2000);
  auto c2 = ob->find_command("c-2");
  REQUIRE(c2.ok());
  REQUIRE(c2->has_value());
  CHECK_FALSE((*c2)->done);
  CHECK((*c2)->reply.empty());
  CHECK_FALSE(found(*ob, "c-3"));
  auto st = ob->stats();
  CHECK(st.commands == 2);
  CHECK(st.commands_bytes == 2 * store::kCommandRowOverheadBytes + 3 + 3 +
                                 std::string(R"({"command_id":"c-1","ok":true,"result":{"units":4}})").size());
  CHECK(sql_int(o.path, "SELECT count(*) FROM commands") == 2);
}

TEST_CASE("at most 1024 command ids are kept, the oldest forgotten first", "[store][commands]") {
  test::TempDir dir;
  auto o = options(dir);
  o.durability = store::Durability::kNormal;  // 1030 commits
  REQUIRE(o.max_commands == 1024);
  const auto now = model::now_utc_ms();
  {
    auto ob = open(o);
    for (int i = 0; i < 1030; ++i) {
      auto id = "c-" + std::to_string(i);
      REQUIRE(ob->command_started(started(id, now + static_cast<std::uint64_t>(i))).ok());
      REQUIRE(ob->command_done(id, R"({"ok":true})").ok());
    }
    auto st = ob->stats();
    CHECK(st.commands == 1024);
    CHECK(st.commands_pruned == 6);
  }
  auto ob = open(o);
  CHECK(sql_int(o.path, "SELECT count(*) FROM commands") == 1024);
  CHECK(ob->stats().commands == 1024);
  for (int i = 0; i < 6; ++i) CHECK_FALSE(found(*ob, "c-" + std::to_string(i)));
  CHECK(found(*ob, "c-6"));
  CHECK(found(*ob, "c-1029"));
  CHECK(ob->stats().commands_bytes ==
        static_cast<std::uint64_t>(sql_int(o.path, "SELECT sum(cost) FROM commands")));
}

TEST_CASE("command ids commands.max_age_s can no longer admit are pruned", "[store][commands]") {
  test::TempDir dir;
  auto o = options(dir);
  o.command_max_age = std::chrono::seconds(300);
  const auto now = model::now_utc_ms();
  auto ob = open(o);
  REQUIRE(ob->command_started(started("old", now - 400'000)).ok());
  // Issued long ago but received recently (a sender whose clock is behind,
  // within the window it was admitted in): kept until its receipt is too old.
  REQUIRE(ob->command_started(started("late", now - 200'000, now - 350'000)).ok());
  CHECK(ob->stats().commands == 2);
  auto report = ob->maintain(now);
  REQUIRE(report.ok());
  CHECK(report->commands_pruned == 1);
  CHECK_FALSE(found(*ob, "old"));
  CHECK(found(*ob, "late"));
  REQUIRE(ob->command_started(started("new", now)).ok());
  // Recording a new one prunes too (by its receipt time), without maintain().
  REQUIRE(ob->command_started(started("newer", now + 150'000)).ok());
  CHECK_FALSE(found(*ob, "late"));
  CHECK(found(*ob, "new"));
  CHECK(ob->stats().commands == 2);
  CHECK(ob->stats().commands_pruned == 2);
  // commands.max_age_s = 0 (no freshness check): kept until pushed out.
  o.command_max_age = std::chrono::seconds(0);
  ob.reset();
  ob = open(o);
  REQUIRE(ob->maintain(now + 10ull * 365 * 86400 * 1000).ok());
  CHECK(found(*ob, "new"));
}

TEST_CASE("command ids count against max_bytes and take at most a sixteenth of it", "[store][commands]") {
  test::TempDir dir;
  auto o = options(dir);
  o.max_bytes = 1 << 20;
  o.when_full = store::WhenFull::kRefuse;
  o.durability = store::Durability::kNormal;
  const auto now = model::now_utc_ms();
  auto ob = open(o);
  const std::string big(4000, 'x');  // a GetConfig reply is about this size
  for (int i = 0; i < 40; ++i) {
    auto id = "c-" + std::to_string(i);
    REQUIRE(ob->command_started(started(id, now + static_cast<std::uint64_t>(i))).ok());
    REQUIRE(ob->command_done(id, big).ok());
  }
  auto st = ob->stats();
  INFO(st.commands << " commands, " << st.commands_bytes << " bytes");
  CHECK(st.commands_bytes <= o.max_bytes / 16);
  CHECK(st.commands < 40);
  CHECK(st.commands_pruned == 40 - st.commands);
  CHECK(found(*ob, "c-39"));
  CHECK_FALSE(found(*ob, "c-0"));
  // The readings get what the commands leave: refused once readings,
  // sources and commands together reach max_bytes.
  std::uint64_t seq = 0;
  while (true) {
    auto r = ob->append(std::vector<store::Record>{reading("tcu-1", ++seq)});
    REQUIRE(r.ok());
    if (r->refused > 0) break;
    REQUIRE(seq < 2000);
  }
  st = ob->stats();
  CHECK(st.total_bytes() + st.sources_bytes + st.commands_bytes <= o.max_bytes);
  CHECK(st.total_bytes() + st.sources_bytes + st.commands_bytes + 1000 + store::kRowOverheadBytes > o.max_bytes);
  // Full: a new command id cannot be recorded, so it must not run. (Unless
  // forgetting older ids makes the room: not when the readings took it.)
  auto full = ob->command_started(started("c-full", now + 100));
  if (full.ok()) {
    // The share was full too: an older id gave way, the total stays within the bound.
    st = ob->stats();
    CHECK(st.total_bytes() + st.sources_bytes + st.commands_bytes <= o.max_bytes);
  } else {
    CHECK_THAT(full.error(), Catch::Contains("store is full"));
    CHECK_FALSE(found(*ob, "c-full"));
  }
}

TEST_CASE("a full store refuses to record a new command id", "[store][commands]") {
  test::TempDir dir;
  auto o = options(dir);
  o.max_bytes = 1 << 20;
  o.when_full = store::WhenFull::kRefuse;
  o.durability = store::Durability::kNormal;
  auto ob = open(o);
  std::uint64_t seq = 0;
  while (true) {  // readings up to the limit, to the byte as near as 1 KiB rows allow
    auto r = ob->append(std::vector<store::Record>{reading("tcu-1", ++seq)});
    REQUIRE(r.ok());
    if (r->refused > 0) break;
  }
  for (std::size_t body = 512; body >= 1; body /= 2) {
    while (true) {
      auto r = ob->append(std::vector<store::Record>{reading("tcu-1", seq, body)});
      REQUIRE(r.ok());
      if (r->refused > 0) break;
      ++seq;
    }
  }
  auto full = ob->command_started(started("c-1", model::now_utc_ms()));
  REQUIRE_FALSE(full.ok());
  CHECK_THAT(full.error(), Catch::Contains("c-1") && Catch::Contains("store is full"));
  CHECK_FALSE(found(*ob, "c-1"));
  CHECK(ob->stats().commands == 0);
}

TEST_CASE("a store of schema v2 is migrated: it keeps its readings and gains the commands table", "[store][commands]") {
  test::TempDir dir;
  auto o = options(dir);
  {
    // Exactly what the agent before this table created (schema v1, then v2).
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(o.path.c_str(), &db) == SQLITE_OK);
    const char* v2 =
        "PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL;"
        "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, priority INTEGER NOT NULL, source_id TEXT NOT "
        "NULL, seq INTEGER NOT NULL, created_ms INTEGER NOT NULL, body BLOB NOT NULL);"
        "CREATE INDEX outbox_drain ON outbox(priority, id);"
        "CREATE TABLE sources (source_id TEXT PRIMARY KEY, last_seq INTEGER NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
        "INSERT INTO meta VALUES ('envelope_seq_reserved', 2048);"
        "ALTER TABLE sources ADD COLUMN seen_ms INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE sources ADD COLUMN last_row_id INTEGER NOT NULL DEFAULT 0;"
        "INSERT INTO sources VALUES ('tcu-1', 9, 1, 1);"
        "INSERT INTO outbox(priority, source_id, seq, created_ms, body) VALUES (1, 'tcu-1', 9, 1, x'00');"
        "PRAGMA user_version = 2;";
    REQUIRE(sqlite3_exec(db, v2, nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  const auto now = model::now_utc_ms();
  {
    auto ob = open(o);
    CHECK(sql_int(o.path, "PRAGMA user_version") == 5);  // every migration up to the current schema
    CHECK(sql_int(o.path, "SELECT count(*) FROM sqlite_schema WHERE name = 'commands'") == 1);
    CHECK(ob->stats().total_rows() == 1);
    CHECK(ob->last_seq("tcu-1") == 9);
    CHECK(ob->next_envelope_seq() >= 2048);
    CHECK(ob->stats().commands == 0);
    REQUIRE(ob->command_started(started("c-1", now)).ok());
    REQUIRE(ob->command_done("c-1", "{}").ok());
    CHECK(ob->verify().value() == "ok");
  }
  auto ob = open(o);  // v3 now: opens as it is
  CHECK(found(*ob, "c-1"));
  CHECK(ob->stats().total_rows() == 1);
}

TEST_CASE("answer_once executes a command id once, also across a reopen of the store", "[uplink][commands]") {
  test::TempDir dir;
  auto o = options(dir);
  const auto now = model::now_utc_ms();
  int runs = 0;
  auto execute = [&]() -> Result<std::string> {
    ++runs;
    return std::string("{\"units\":" + std::to_string(runs) + "}");
  };
  std::string first_reply;
  {
    auto ob = open(o);
    auto a = uplink::answer_once(*ob, flush_command("c-1", now), now, execute);
    CHECK(a.what == uplink::Answered::kExecuted);
    CHECK(a.ok);
    CHECK(a.reply == R"({"command_id":"c-1","ok":true,"result":{"units":1}})");
    first_reply = a.reply;
    auto b = uplink::answer_once(*ob, flush_command("c-1", now + 10), now + 10, execute);
    CHECK(b.what == uplink::Answered::kRepeat);
    CHECK(b.ok);
    CHECK(b.reply == first_reply);
    CHECK(runs == 1);
    // An error outcome is recorded too: answered again, not retried.
    auto fail = [&]() -> Result<std::string> {
      ++runs;
      return Error{"unit \"tcu-42\" is not connected"};
    };
    auto e1 = uplink::answer_once(*ob, flush_command("c-2", now), now, fail);
    CHECK(e1.what == uplink::Answered::kExecuted);
    CHECK_FALSE(e1.ok);
    auto e2 = uplink::answer_once(*ob, flush_command("c-2", now), now, fail);
    CHECK(e2.what == uplink::Answered::kRepeat);
    CHECK_FALSE(e2.ok);
    CHECK(e2.reply == e1.reply);
    CHECK(runs == 2);
    // Killed after recording c-3 and before its outcome was recorded.
    REQUIRE(ob->command_started(started("c-3", now)).ok());
  }
  auto ob = open(o);  // a restart
  auto a = uplink::answer_once(*ob, flush_command("c-1", now + 20), now + 20, execute);
  CHECK(a.what == uplink::Answered::kRepeat);
  CHECK(a.reply == first_reply);
  auto u = uplink::answer_once(*ob, flush_command("c-3", now + 20), now + 20, execute);
  CHECK(u.what == uplink::Answered::kRepeatUnknown);
  CHECK_FALSE(u.ok);
  CHECK_THAT(u.reply, Catch::Contains(R"("command_id":"c-3","ok":false)") &&
                          Catch::Contains("stopped before its outcome was recorded"));
  CHECK(runs == 2);
  auto n = uplink::answer_once(*ob, flush_command("c-4", now + 20), now + 20, execute);
  CHECK(n.what == uplink::Answered::kExecuted);
  CHECK(runs == 3);
}

TEST_CASE("answer_once does not execute a command whose id the store cannot record", "[uplink][commands]") {
  test::TempDir dir;
  auto o = options(dir);
  o.max_bytes = 1 << 20;
  o.when_full = store::WhenFull::kRefuse;
  o.durability = store::Durability::kNormal;
  auto ob = open(o);
  std::uint64_t seq = 0;
  for (std::size_t body = 1024; body >= 1; body /= 2) {
    while (true) {
      auto r = ob->append(std::vector<store::Record>{reading("tcu-1", seq + 1, body)});
      REQUIRE(r.ok());
      if (r->refused > 0) break;
      ++seq;
    }
  }
  int runs = 0;
  const auto now = model::now_utc_ms();
  auto a = uplink::answer_once(*ob, flush_command("c-1", now), now, [&]() -> Result<std::string> {
    ++runs;
    return std::string("{}");
  });
  CHECK(a.what == uplink::Answered::kNotRecorded);
  CHECK_FALSE(a.ok);
  CHECK_THAT(a.reply, Catch::Contains("not executed") && Catch::Contains("store is full"));
  CHECK(runs == 0);
}

TEST_CASE("a damaged store's command ids are salvaged with its readings", "[store][commands][recovery]") {
  test::TempDir dir;
  auto o = options(dir);
  const auto now = model::now_utc_ms();
  {
    auto ob = open(o);
    REQUIRE(ob->command_started(started("c-done", now)).ok());
    REQUIRE(ob->command_done("c-done", R"({"command_id":"c-done","ok":true,"result":{}})").ok());
    REQUIRE(ob->command_started(started("c-open", now)).ok());
    for (std::uint64_t s = 1; s <= 2000; ++s) REQUIRE(ob->append(std::vector<store::Record>{reading("tcu-1", s, 200)}).ok());
    REQUIRE(ob->maintain(0).ok());  // checkpoint: everything in the main file
  }
  // A damaged leaf page near the end (readings); the commands table,
  // created with the schema, lives near the start and still reads.
  REQUIRE_FALSE(std::filesystem::exists(o.path + "-wal"));
  {
    std::fstream f(o.path, std::ios::in | std::ios::out | std::ios::binary);
    REQUIRE(f.good());
    auto at = static_cast<std::streamoff>(std::filesystem::file_size(o.path) - 3 * 4096 + 10);
    f.seekp(at);
    for (int i = 0; i < 64; ++i) f.put(static_cast<char>(0xA5));
  }
  auto ob = open(o);
  auto st = ob->stats();
  REQUIRE_FALSE(st.recovered_from.empty());
  CHECK(st.salvaged > 0);
  CHECK(st.commands == 2);
  auto done = ob->find_command("c-done");
  REQUIRE(done.ok());
  REQUIRE(done->has_value());
  CHECK((*done)->done);
  CHECK((*done)->reply == R"({"command_id":"c-done","ok":true,"result":{}})");
  auto open_one = ob->find_command("c-open");
  REQUIRE(open_one.ok());
  REQUIRE(open_one->has_value());
  CHECK_FALSE((*open_one)->done);
}
