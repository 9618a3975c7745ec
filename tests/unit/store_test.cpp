// [store] The outbox: what goes in comes out in drain order (highest class
// first, FIFO within a class), leaves only when acknowledged, survives
// reopening, and recognises resends by source + seq.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include "eport/store/outbox.h"
#include "test_util.h"

using namespace eport;
using eport::model::Priority;

namespace {
store::Record rec(const std::string& source, std::uint64_t seq, Priority p = Priority::kTelemetry,
                  std::size_t body_size = 40) {
  store::Record r;
  r.source_id = source;
  r.seq = seq;
  r.priority = p;
  r.created_utc_ms = 1000 + seq;
  r.body.assign(body_size, static_cast<std::uint8_t>(seq));
  return r;
}

std::unique_ptr<store::Outbox> open(const test::TempDir& dir, store::OutboxOptions o = {}) {
  o.path = dir.file("outbox.db");
  auto ob = store::Outbox::open(o);
  REQUIRE(ob.ok());
  return std::move(ob).value();
}

eport::Status ack_rows(store::Outbox& ob, const std::vector<store::StoredRecord>& rows) {
  auto lease = store::Lease::of(rows);
  return ob.ack(std::span(&lease, 1));
}
}  // namespace

TEST_CASE("an empty outbox takes nothing", "[store]") {
  test::TempDir dir;
  auto ob = open(dir);
  auto rows = ob->take(100, 1 << 20);
  REQUIRE(rows.ok());
  CHECK(rows->empty());
  CHECK(ob->stats().total_rows() == 0);
  CHECK(ob->append({}).ok());
}

TEST_CASE("insert, take a batch, ack: rows leave only when acknowledged", "[store]") {
  test::TempDir dir;
  auto ob = open(dir);
  std::vector<store::Record> in;
  for (std::uint64_t s = 1; s <= 10; ++s) in.push_back(rec("tcu-1", s));
  auto res = ob->append(in);
  REQUIRE(res.ok());
  CHECK(res->stored == 10);
  CHECK(res->duplicates == 0);

  auto batch = ob->take(4, 1 << 20);
  REQUIRE(batch.ok());
  REQUIRE(batch->size() == 4);
  for (std::size_t i = 0; i < 4; ++i) {
    CHECK((*batch)[i].seq == i + 1);
    CHECK((*batch)[i].body == in[i].body);
    CHECK((*batch)[i].source_id == "tcu-1");
  }
  // Leased rows are not taken twice.
  auto next = ob->take(100, 1 << 20);
  REQUIRE(next->size() == 6);
  CHECK(next->front().seq == 5);
  CHECK(ob->take(100, 1 << 20)->empty());

  REQUIRE(ack_rows(*ob, *batch).ok());
  CHECK(ob->stats().total_rows() == 6);
  CHECK(ob->stats().acked == 4);
  // Unacknowledged rows come back after a release (reconnect).
  ob->release_all();
  auto again = ob->take(100, 1 << 20);
  REQUIRE(again->size() == 6);
  CHECK(again->front().seq == 5);
}

TEST_CASE("drain order: highest class first, FIFO within a class", "[store]") {
  test::TempDir dir;
  auto ob = open(dir);
  REQUIRE(ob->append(std::vector<store::Record>{rec("a", 1, Priority::kTelemetry), rec("a", 2, Priority::kAlarm),
                                                rec("b", 1, Priority::kBulk), rec("a", 3, Priority::kEvent),
                                                rec("b", 2, Priority::kAlarm), rec("a", 4, Priority::kTelemetry)})
              .ok());
  std::vector<std::pair<Priority, std::string>> order;
  while (true) {
    auto b = ob->take(100, 1 << 20);
    REQUIRE(b.ok());
    if (b->empty()) break;
    for (const auto& r : *b) {
      CHECK(r.priority == b->front().priority);  // one class per batch
      order.emplace_back(r.priority, r.source_id + "/" + std::to_string(r.seq));
    }
  }
  std::vector<std::pair<Priority, std::string>> expected = {
      {Priority::kAlarm, "a/2"},     {Priority::kAlarm, "b/2"},     {Priority::kEvent, "a/3"},
      {Priority::kTelemetry, "a/1"}, {Priority::kTelemetry, "a/4"}, {Priority::kBulk, "b/1"}};
  CHECK(order == expected);
}

TEST_CASE("an alarm arriving during a telemetry backlog is taken next", "[store]") {
  test::TempDir dir;
  auto ob = open(dir);
  std::vector<store::Record> backlog;
  for (std::uint64_t s = 1; s <= 50; ++s) backlog.push_back(rec("a", s));
  REQUIRE(ob->append(backlog).ok());
  REQUIRE(ob->take(10, 1 << 20)->size() == 10);
  REQUIRE(ob->append(std::vector<store::Record>{rec("b", 1, Priority::kAlarm)}).ok());
  auto next = ob->take(10, 1 << 20);
  REQUIRE(next->size() == 1);
  CHECK(next->front().priority == Priority::kAlarm);
}

TEST_CASE("take respects the byte budget but always returns one row", "[store]") {
  test::TempDir dir;
  auto ob = open(dir);
  REQUIRE(ob->append(std::vector<store::Record>{rec("a", 1, Priority::kTelemetry, 600),
                                                rec("a", 2, Priority::kTelemetry, 600),
                                                rec("a", 3, Priority::kTelemetry, 600)})
              .ok());
  CHECK(ob->take(100, 1000)->size() == 1);
  CHECK(ob->take(100, 100)->size() == 1);  // larger than the budget: still one
  CHECK(ob->take(100, 1200)->size() == 1);
}

TEST_CASE("a resent reading is stored once, also across reopening", "[store]") {
  test::TempDir dir;
  {
    auto ob = open(dir);
    auto r1 = ob->append(std::vector<store::Record>{rec("tcu-7", 1), rec("tcu-7", 2), rec("tcu-7", 2)});
    REQUIRE(r1.ok());
    CHECK(r1->stored == 2);
    CHECK(r1->duplicates == 1);
    CHECK(r1->outcome == std::vector<store::AppendOutcome>{store::AppendOutcome::kStored, store::AppendOutcome::kStored,
                                                           store::AppendOutcome::kDuplicate});
    CHECK(ob->last_seq("tcu-7") == 2);
    CHECK(ob->last_seq("nobody") == 0);
    // Published and deleted: the seq is still remembered.
    auto all = ob->take(10, 1 << 20);
    REQUIRE(ack_rows(*ob, *all).ok());
  }
  auto ob = open(dir);
  CHECK(ob->last_seq("tcu-7") == 2);
  auto r2 = ob->append(std::vector<store::Record>{rec("tcu-7", 1), rec("tcu-7", 3)});
  REQUIRE(r2.ok());
  CHECK(r2->stored == 1);
  CHECK(r2->duplicates == 1);
  CHECK(ob->stats().total_rows() == 1);
}

TEST_CASE("rows and counters survive closing and reopening", "[store]") {
  test::TempDir dir;
  {
    auto ob = open(dir);
    REQUIRE(ob->append(std::vector<store::Record>{rec("a", 1, Priority::kAlarm, 10), rec("a", 2, Priority::kBulk, 30)})
                .ok());
  }
  auto ob = open(dir);
  auto st = ob->stats();
  CHECK(st.by_class[static_cast<int>(Priority::kAlarm)].rows == 1);
  CHECK(st.by_class[static_cast<int>(Priority::kAlarm)].bytes == 10 + store::kRowOverheadBytes);
  CHECK(st.by_class[static_cast<int>(Priority::kBulk)].rows == 1);
  CHECK(st.by_class[static_cast<int>(Priority::kBulk)].bytes == 30 + store::kRowOverheadBytes);
  auto rows = ob->take(10, 1 << 20);
  REQUIRE(rows->size() == 1);
  CHECK(rows->front().seq == 1);
}

TEST_CASE("row ids are never reused after the outbox empties", "[store]") {
  test::TempDir dir;
  auto ob = open(dir);
  REQUIRE(ob->append(std::vector<store::Record>{rec("a", 1), rec("a", 2)}).ok());
  auto first = ob->take(10, 1 << 20);
  REQUIRE(ack_rows(*ob, *first).ok());
  REQUIRE(ob->append(std::vector<store::Record>{rec("a", 3)}).ok());
  auto second = ob->take(10, 1 << 20);  // no release in between: the cursor must not hide it
  REQUIRE(second->size() == 1);
  CHECK(second->front().id > first->back().id);
}

TEST_CASE("envelope sequence numbers continue at +1 after a clean close", "[store]") {
  test::TempDir dir;
  std::uint64_t last;
  {
    auto ob = open(dir);
    CHECK(ob->next_envelope_seq() == 1);
    CHECK(ob->next_envelope_seq() == 2);
    last = ob->next_envelope_seq();
  }
  {
    auto ob = open(dir);
    CHECK(ob->next_envelope_seq() == last + 1);  // the reserved block was given back, no gap
  }
  {
    auto ob = open(dir);  // opened and closed without publishing: nothing changes
  }
  auto ob = open(dir);
  CHECK(ob->next_envelope_seq() == last + 2);
  // More than one block in one run: still +1 after the close.
  for (int i = 0; i < 2100; ++i) last = ob->next_envelope_seq();
  ob.reset();
  ob = open(dir);
  CHECK(ob->next_envelope_seq() == last + 1);
}

TEST_CASE("a database from a newer agent is refused, not altered", "[store]") {
  test::TempDir dir;
  { auto ob = open(dir); }
  {
    // Pretend a future version wrote it.
    auto ob = store::Outbox::open({dir.file("outbox.db")});
    REQUIRE(ob.ok());
  }
  std::string cmd = "sqlite3 " + dir.file("outbox.db") + " 'PRAGMA user_version=99' 2>/dev/null";
  if (std::system(cmd.c_str()) != 0) {
    WARN("sqlite3 CLI not installed; skipping the newer-schema check");
    return;
  }
  auto ob = store::Outbox::open({dir.file("outbox.db")});
  REQUIRE_FALSE(ob.ok());
  CHECK_THAT(ob.error(), Catch::Contains("newer than this agent"));
}

TEST_CASE("an unwritable location fails with the path in the message", "[store]") {
  auto ob = store::Outbox::open({"/nonexistent-dir/outbox.db"});
  REQUIRE_FALSE(ob.ok());
  CHECK_THAT(ob.error(), Catch::Contains("/nonexistent-dir/outbox.db"));
}

TEST_CASE("a new outbox and its WAL are created 0600 whatever the umask", "[store][security]") {
  test::TempDir dir;
  mode_t old = ::umask(022);  // as when run by hand, outside systemd's UMask=0007
  auto ob = open(dir);
  ::umask(old);
  REQUIRE(ob->append(std::vector<store::Record>{rec("tcu-1", 1)}).ok());
  for (const char* name : {"outbox.db", "outbox.db-wal", "outbox.db-shm"}) {
    INFO(name);
    struct stat st{};
    REQUIRE(::stat(dir.file(name).c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }
}

TEST_CASE("evidence rows travel in batches of their own, in order, and no alarm TTL expires them", "[store][evidence]") {
  test::TempDir dir;
  store::OutboxOptions o;
  o.ttl[static_cast<int>(Priority::kAlarm)] = std::chrono::seconds(60);
  auto ob = open(dir, o);
  REQUIRE(ob->append(std::vector<store::Record>{rec("a", 1, Priority::kAlarm), rec("a:ev", 1, Priority::kAlarm),
                                                rec("a:ev", 2, Priority::kAlarm), rec("b", 1, Priority::kAlarm),
                                                rec("b:ev", 5, Priority::kAlarm)})
              .ok());
  std::vector<std::vector<std::string>> batches;
  while (true) {
    auto b = ob->take(100, 1 << 20);
    REQUIRE(b.ok());
    if (b->empty()) break;
    std::vector<std::string> batch;
    for (const auto& r : *b) batch.push_back(r.source_id + "/" + std::to_string(r.seq));
    batches.push_back(batch);
  }
  CHECK(batches == std::vector<std::vector<std::string>>{{"a/1"}, {"a:ev/1", "a:ev/2"}, {"b/1"}, {"b:ev/5"}});
  ob->release_all();
  // Long past the alarm TTL: the readings expire, the checkpoints stay.
  auto m = ob->maintain(10'000'000);
  REQUIRE(m.ok());
  CHECK(m->expired == 2);
  auto left = ob->take(100, 1 << 20);
  REQUIRE(left.ok());
  REQUIRE(left->size() == 3);
  for (const auto& r : *left) CHECK(model::is_evidence_source(r.source_id));
}
