// [store][class_seq] The class counts (docs/consuming.md, "Completeness per
// class"): the outbox gives each reading it stores the next count of its
// source in its class, in the transaction that stores it. Refused,
// duplicate and rolled-back readings take no count; derived records are
// counted in their own source and class; the counts continue after a clean
// close, after a crash (the sources rows not yet written), after the rows
// were acknowledged and deleted, and after a migration from store schema 4.
#include <sqlite3.h>

#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "eport/store/outbox.h"
#include "test_util.h"

using namespace eport;
using model::Priority;
using store::AppendOutcome;

namespace {

store::Record rec(const std::string& source, std::uint64_t seq, Priority p) {
  store::Record r;
  r.source_id = source;
  r.seq = seq;
  r.priority = p;
  r.created_utc_ms = 1'795'000'000'000ull + seq;
  r.body.assign(24, static_cast<std::uint8_t>(seq));
  return r;
}

store::OutboxOptions options(const std::string& path) {
  store::OutboxOptions o;
  o.path = path;
  o.min_free_bytes = 0;
  return o;
}

std::unique_ptr<store::Outbox> open(const store::OutboxOptions& o) {
  auto ob = store::Outbox::open(o);
  REQUIRE(ob.ok());
  return std::move(ob).value();
}

// (source, seq) -> (class, class_seq) of every row waiting.
using Counts = std::map<std::pair<std::string, std::uint64_t>, std::pair<Priority, std::uint64_t>>;
Counts counts(store::Outbox& ob) {
  Counts out;
  REQUIRE(ob.for_each([&](const store::StoredRecord& r) {
    out[{r.source_id, r.seq}] = {r.priority, r.class_seq};
    return true;
  }).ok());
  return out;
}

void exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  INFO(sql << ": " << (err ? err : ""));
  sqlite3_free(err);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

// The store's files as a crash would leave them: copied while the outbox is
// open, after its last commit (WAL included), before close writes anything.
std::string crash_copy(const std::string& path, const test::TempDir& dir) {
  std::string copy = dir.file("crashed.db");
  for (const char* suffix : {"", "-wal"}) {
    if (std::filesystem::exists(path + suffix)) {
      std::filesystem::copy_file(path + suffix, copy + suffix, std::filesystem::copy_options::overwrite_existing);
    }
  }
  return copy;
}

// After each stored record of `from`, a derived one of `<from>:d` in class Event.
class EchoDeriver : public store::Deriver {
 public:
  explicit EchoDeriver(std::string from) : from_(std::move(from)) {}
  void stored(const store::Record& r, std::vector<store::Record>& out) override {
    if (r.source_id == from_) out.push_back(rec(from_ + ":d", r.seq, Priority::kEvent));
  }
  void state_changes(store::DerivedState&) override {}
  void finished(bool) override {}

 private:
  std::string from_;
};

}  // namespace

TEST_CASE("each source counts its readings per class, 1, 2, 3, ..., as they are stored", "[store][class_seq]") {
  test::TempDir dir;
  auto ob = open(options(dir.file("outbox.db")));
  std::vector<store::Record> batch = {rec("tcu-1", 1, Priority::kTelemetry), rec("tcu-1", 2, Priority::kAlarm),
                                      rec("tcu-1", 3, Priority::kTelemetry), rec("tcu-2", 1, Priority::kTelemetry),
                                      rec("tcu-1", 4, Priority::kAlarm),     rec("tcu-1", 5, Priority::kBulk)};
  auto r = ob->append(batch);
  REQUIRE(r.ok());
  REQUIRE(r->stored == 6);
  // A duplicate and a reading below the last seq take no count.
  r = ob->append(std::vector<store::Record>{rec("tcu-1", 4, Priority::kAlarm), rec("tcu-1", 6, Priority::kAlarm)});
  REQUIRE(r.ok());
  CHECK(r->outcome == std::vector<AppendOutcome>{AppendOutcome::kDuplicate, AppendOutcome::kStored});
  Counts want = {{{"tcu-1", 1}, {Priority::kTelemetry, 1}}, {{"tcu-1", 2}, {Priority::kAlarm, 1}},
                 {{"tcu-1", 3}, {Priority::kTelemetry, 2}}, {{"tcu-2", 1}, {Priority::kTelemetry, 1}},
                 {{"tcu-1", 4}, {Priority::kAlarm, 2}},     {{"tcu-1", 5}, {Priority::kBulk, 1}},
                 {{"tcu-1", 6}, {Priority::kAlarm, 3}}};
  CHECK(counts(*ob) == want);
  // take() hands them out with the rows.
  auto alarms = ob->take(10, 1 << 20, Priority::kAlarm);
  REQUIRE(alarms.ok());
  std::vector<std::uint64_t> got;
  for (const auto& t : *alarms) got.push_back(t.class_seq);
  CHECK(got == std::vector<std::uint64_t>{1, 2, 3});
}

TEST_CASE("refused and rolled-back readings take no count", "[store][class_seq]") {
  test::TempDir dir;
  auto o = options(dir.file("outbox.db"));
  std::string fail_at;
  o.fault = [&](std::string_view step) { return step == fail_at ? SQLITE_IOERR : SQLITE_OK; };
  auto ob = open(o);
  REQUIRE(ob->append(std::vector<store::Record>{rec("tcu-1", 1, Priority::kAlarm)}).ok());
  for (const char* step : {"insert", "sources", "counters", "commit"}) {
    INFO("failing step " << step);
    fail_at = step;
    CHECK_FALSE(ob->append(std::vector<store::Record>{rec("tcu-1", 2, Priority::kAlarm)}).ok());
    fail_at.clear();
  }
  // seq 0 is refused: no count either.
  auto r = ob->append(std::vector<store::Record>{rec("tcu-1", 0, Priority::kAlarm), rec("tcu-1", 2, Priority::kAlarm)});
  REQUIRE(r.ok());
  CHECK(r->outcome == std::vector<AppendOutcome>{AppendOutcome::kRefused, AppendOutcome::kStored});
  CHECK(counts(*ob)[{"tcu-1", 2}] == std::pair{Priority::kAlarm, std::uint64_t{2}});
}

TEST_CASE("derived records are counted in their own source and class, with their cause", "[store][class_seq]") {
  test::TempDir dir;
  auto ob = open(options(dir.file("outbox.db")));
  EchoDeriver deriver("tcu-1");
  for (std::uint64_t seq = 1; seq <= 3; ++seq) {
    REQUIRE(ob->append(std::vector<store::Record>{rec("tcu-1", seq, Priority::kTelemetry)}, &deriver).ok());
  }
  auto c = counts(*ob);
  for (std::uint64_t seq = 1; seq <= 3; ++seq) {
    CHECK(c[{"tcu-1", seq}] == std::pair{Priority::kTelemetry, seq});
    CHECK(c[{"tcu-1:d", seq}] == std::pair{Priority::kEvent, seq});
  }
}

TEST_CASE("the counts continue after close, a crash, acknowledged rows and a migration from schema 4",
          "[store][class_seq]") {
  test::TempDir dir;
  auto o = options(dir.file("outbox.db"));
  {
    auto ob = open(o);
    REQUIRE(ob->append(std::vector<store::Record>{rec("tcu-1", 1, Priority::kAlarm), rec("tcu-1", 2, Priority::kAlarm),
                                                  rec("tcu-1", 3, Priority::kTelemetry)})
                .ok());
  }
  SECTION("a clean close") {
    auto ob = open(o);
    REQUIRE(ob->append(std::vector<store::Record>{rec("tcu-1", 4, Priority::kAlarm)}).ok());
    CHECK(counts(*ob)[{"tcu-1", 4}] == std::pair{Priority::kAlarm, std::uint64_t{3}});
  }
  SECTION("a crash: the newest rows carry the counts the sources rows do not have yet") {
    auto ob = open(o);
    REQUIRE(ob->append(std::vector<store::Record>{rec("tcu-1", 4, Priority::kAlarm), rec("tcu-2", 1, Priority::kAlarm)})
                .ok());
    auto crashed = options(crash_copy(o.path, dir));
    ob.reset();
    auto again = open(crashed);
    REQUIRE(again->append(std::vector<store::Record>{rec("tcu-1", 5, Priority::kAlarm), rec("tcu-2", 2, Priority::kAlarm),
                                                     rec("tcu-1", 6, Priority::kTelemetry)})
                .ok());
    auto c = counts(*again);
    CHECK(c[{"tcu-1", 5}] == std::pair{Priority::kAlarm, std::uint64_t{4}});
    CHECK(c[{"tcu-2", 2}] == std::pair{Priority::kAlarm, std::uint64_t{2}});
    CHECK(c[{"tcu-1", 6}] == std::pair{Priority::kTelemetry, std::uint64_t{2}});
  }
  SECTION("every row acknowledged and deleted, then a crash") {
    auto ob = open(o);
    for (auto p : {Priority::kAlarm, Priority::kTelemetry}) {
      auto taken = ob->take(10, 1 << 20, p);
      REQUIRE(taken.ok());
      REQUIRE(ob->ack(std::vector<store::Lease>{store::Lease::of(*taken)}).ok());
    }
    REQUIRE(counts(*ob).empty());
    auto crashed = options(crash_copy(o.path, dir));
    ob.reset();
    auto again = open(crashed);
    REQUIRE(again->append(std::vector<store::Record>{rec("tcu-1", 4, Priority::kAlarm)}).ok());
    CHECK(counts(*again)[{"tcu-1", 4}] == std::pair{Priority::kAlarm, std::uint64_t{3}});
  }
  SECTION("a store of schema 4: its waiting rows stay unnumbered, new ones count from 1") {
    exec(o.path,
         "ALTER TABLE outbox DROP COLUMN class_seq; ALTER TABLE sources DROP COLUMN class_seq_0; "
         "ALTER TABLE sources DROP COLUMN class_seq_1; ALTER TABLE sources DROP COLUMN class_seq_2; "
         "ALTER TABLE sources DROP COLUMN class_seq_3; PRAGMA user_version = 4;");
    auto ob = open(o);
    REQUIRE(ob->append(std::vector<store::Record>{rec("tcu-1", 4, Priority::kAlarm)}).ok());
    auto c = counts(*ob);
    CHECK(c[{"tcu-1", 1}] == std::pair{Priority::kAlarm, std::uint64_t{0}});
    CHECK(c[{"tcu-1", 3}] == std::pair{Priority::kTelemetry, std::uint64_t{0}});
    CHECK(c[{"tcu-1", 4}] == std::pair{Priority::kAlarm, std::uint64_t{1}});
    CHECK(ob->last_seq("tcu-1") == 4);
  }
}
