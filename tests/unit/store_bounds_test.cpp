// [store] Bounds: when full the outbox evicts the lowest class first, oldest
// first, never an alarm while anything lower remains; when nothing may give
// way it refuses, and a refused reading holds back its source's later ones.
// Also expiry by TTL and giving space back after a drain.
#include <catch2/catch.hpp>

#include <filesystem>

#include "eport/store/outbox.h"
#include "test_util.h"

using namespace eport;
using eport::model::Priority;
using store::AppendOutcome;

namespace {
constexpr std::size_t kBody = 52;  // + 48 overhead = 100 accounted bytes per row

store::Record rec(const std::string& source, std::uint64_t seq, Priority p, std::uint64_t created = 1000) {
  store::Record r;
  r.source_id = source;
  r.seq = seq;
  r.priority = p;
  r.created_utc_ms = created;
  r.body.assign(kBody, static_cast<std::uint8_t>(seq));
  return r;
}

std::unique_ptr<store::Outbox> open_bounded(const test::TempDir& dir, std::uint64_t max_bytes,
                                            store::WhenFull when_full = store::WhenFull::kEvictLowest) {
  store::OutboxOptions o;
  o.path = dir.file("outbox.db");
  o.max_bytes = max_bytes;
  o.low_water_pct = 90;
  o.min_free_bytes = 0;  // this test is about max_bytes
  o.source_row_bytes = 0;  // and about reading rows: sources are counted in store_sources_test.cpp
  o.when_full = when_full;
  auto ob = store::Outbox::open(o);
  REQUIRE(ob.ok());
  return std::move(ob).value();
}

std::uint64_t rows(store::Outbox& ob, Priority p) { return ob.stats().by_class[static_cast<int>(p)].rows; }

void fill(store::Outbox& ob, const std::string& source, Priority p, std::uint64_t from, std::uint64_t n) {
  std::vector<store::Record> v;
  for (std::uint64_t i = 0; i < n; ++i) v.push_back(rec(source, from + i, p));
  auto r = ob.append(v);
  REQUIRE(r.ok());
  REQUIRE(r->stored == n);
}
}  // namespace

TEST_CASE("a full outbox evicts the lowest class first, oldest first", "[store]") {
  test::TempDir dir;
  auto ob = open_bounded(dir, 100 * 100);  // room for 100 rows
  fill(*ob, "bulk", Priority::kBulk, 1, 30);
  fill(*ob, "tele", Priority::kTelemetry, 1, 60);
  fill(*ob, "alarm", Priority::kAlarm, 1, 10);
  REQUIRE(ob->stats().total_rows() == 100);

  // One more telemetry reading: bulk gives way, down to the low-water mark.
  auto r = ob->append(std::vector<store::Record>{rec("tele", 61, Priority::kTelemetry)});
  REQUIRE(r.ok());
  CHECK(r->outcome[0] == AppendOutcome::kStored);
  auto st = ob->stats();
  CHECK(st.by_class[static_cast<int>(Priority::kBulk)].evicted == 11);  // 101 rows -> 90
  CHECK(rows(*ob, Priority::kBulk) == 19);
  CHECK(rows(*ob, Priority::kTelemetry) == 61);
  CHECK(rows(*ob, Priority::kAlarm) == 10);
  CHECK(st.total_bytes() <= 100 * 100);
  // The oldest bulk rows went first.
  bool first = true;
  REQUIRE(ob->for_each([&](const store::StoredRecord& row) {
    if (row.priority == Priority::kBulk && first) {
      CHECK(row.seq == 12);
      first = false;
    }
    return true;
  }).ok());
}

TEST_CASE("alarms are never evicted while anything lower remains, and get in when full", "[store]") {
  test::TempDir dir;
  auto ob = open_bounded(dir, 100 * 50);
  fill(*ob, "tele", Priority::kTelemetry, 1, 40);
  fill(*ob, "alarm", Priority::kAlarm, 1, 10);
  // 30 more alarms into a full store: telemetry makes room every time.
  for (std::uint64_t s = 11; s <= 40; ++s) {
    auto r = ob->append(std::vector<store::Record>{rec("alarm", s, Priority::kAlarm)});
    REQUIRE(r.ok());
    CHECK(r->outcome[0] == AppendOutcome::kStored);
  }
  CHECK(rows(*ob, Priority::kAlarm) == 40);
  CHECK(rows(*ob, Priority::kTelemetry) <= 10);
  CHECK(ob->stats().by_class[static_cast<int>(Priority::kAlarm)].evicted == 0);
}

TEST_CASE("when only alarms remain, lower classes are refused and alarms are kept", "[store]") {
  test::TempDir dir;
  auto ob = open_bounded(dir, 100 * 20);
  fill(*ob, "alarm", Priority::kAlarm, 1, 20);
  auto r = ob->append(std::vector<store::Record>{rec("tele", 1, Priority::kTelemetry)});
  REQUIRE(r.ok());
  CHECK(r->outcome[0] == AppendOutcome::kRefused);
  // A new alarm is refused too (backpressure), never by evicting an alarm.
  r = ob->append(std::vector<store::Record>{rec("alarm", 21, Priority::kAlarm)});
  REQUIRE(r.ok());
  CHECK(r->outcome[0] == AppendOutcome::kRefused);
  auto st = ob->stats();
  CHECK(st.by_class[static_cast<int>(Priority::kAlarm)].rows == 20);
  CHECK(st.by_class[static_cast<int>(Priority::kAlarm)].evicted == 0);
  CHECK(st.by_class[static_cast<int>(Priority::kTelemetry)].refused == 1);
  CHECK(st.by_class[static_cast<int>(Priority::kAlarm)].refused == 1);
}

TEST_CASE("a refused reading holds back its source's later readings until it is resent", "[store]") {
  test::TempDir dir;
  auto ob = open_bounded(dir, 100 * 10);
  fill(*ob, "alarm", Priority::kAlarm, 1, 10);
  // tcu-1 sends telemetry 1 (refused: only alarms left) then an alarm 2.
  auto r = ob->append(std::vector<store::Record>{rec("tcu-1", 1, Priority::kTelemetry), rec("tcu-1", 2, Priority::kAlarm)});
  REQUIRE(r.ok());
  CHECK(r->outcome[0] == AppendOutcome::kRefused);
  CHECK(r->outcome[1] == AppendOutcome::kRefused);  // never stored ahead of seq 1
  CHECK(ob->last_seq("tcu-1") == 0);               // WELCOME tells the unit to resume at 1
  // Still held back in a later batch.
  auto all = ob->take(100, 1 << 20);
  auto first = store::Lease::of(std::span(all->data(), 1));
  REQUIRE(ob->ack(std::span(&first, 1)).ok());  // one alarm published: room for one
  r = ob->append(std::vector<store::Record>{rec("tcu-1", 2, Priority::kAlarm)});
  CHECK(r->outcome[0] == AppendOutcome::kRefused);
  // The unit resends from seq 1: both go in.
  auto second = store::Lease::of(std::span(all->data() + 1, 1));
  REQUIRE(ob->ack(std::span(&second, 1)).ok());
  r = ob->append(std::vector<store::Record>{rec("tcu-1", 1, Priority::kTelemetry), rec("tcu-1", 2, Priority::kAlarm)});
  REQUIRE(r.ok());
  CHECK(r->outcome == std::vector<AppendOutcome>{AppendOutcome::kStored, AppendOutcome::kStored});
  CHECK(ob->last_seq("tcu-1") == 2);
}

TEST_CASE("when_full = refuse never evicts anything", "[store]") {
  test::TempDir dir;
  auto ob = open_bounded(dir, 100 * 10, store::WhenFull::kRefuse);
  fill(*ob, "bulk", Priority::kBulk, 1, 10);
  auto r = ob->append(std::vector<store::Record>{rec("alarm", 1, Priority::kAlarm)});
  REQUIRE(r.ok());
  CHECK(r->outcome[0] == AppendOutcome::kRefused);
  CHECK(rows(*ob, Priority::kBulk) == 10);
  CHECK(ob->stats().by_class[static_cast<int>(Priority::kBulk)].evicted == 0);
}

TEST_CASE("rows older than their class's TTL expire, others stay", "[store]") {
  test::TempDir dir;
  store::OutboxOptions o;
  o.path = dir.file("outbox.db");
  o.ttl[static_cast<int>(Priority::kTelemetry)] = std::chrono::seconds(60);
  auto opened = store::Outbox::open(o);
  REQUIRE(opened.ok());
  auto& ob = **opened;
  REQUIRE(ob.append(std::vector<store::Record>{rec("a", 1, Priority::kTelemetry, 1'000'000),
                                               rec("a", 2, Priority::kTelemetry, 1'050'000),
                                               rec("a", 3, Priority::kAlarm, 1'000'000)})
              .ok());
  auto m = ob.maintain(1'100'000);  // 100 s after the first: only seq 1 is past 60 s
  REQUIRE(m.ok());
  CHECK(m->expired == 1);
  auto st = ob.stats();
  CHECK(st.by_class[static_cast<int>(Priority::kTelemetry)].rows == 1);
  CHECK(st.by_class[static_cast<int>(Priority::kTelemetry)].expired == 1);
  CHECK(st.by_class[static_cast<int>(Priority::kTelemetry)].oldest_created_ms == 1'050'000);
  CHECK(st.by_class[static_cast<int>(Priority::kAlarm)].rows == 1);  // no TTL for alarms
}

TEST_CASE("the file shrinks again after a backlog drains", "[store]") {
  test::TempDir dir;
  store::OutboxOptions o;
  o.path = dir.file("outbox.db");
  o.durability = store::Durability::kNormal;
  auto opened = store::Outbox::open(o);
  REQUIRE(opened.ok());
  auto& ob = **opened;
  std::vector<store::Record> batch;
  for (std::uint64_t s = 1; s <= 100000; ++s) batch.push_back(rec("tcu", s, Priority::kTelemetry));
  REQUIRE(ob.append(batch).ok());
  REQUIRE(ob.maintain(0).ok());
  auto full = ob.stats().file_bytes;
  CHECK(full > 10'000'000);
  while (true) {
    auto b = ob.take(5000, 1 << 24);
    REQUIRE(b.ok());
    if (b->empty()) break;
    auto lease = store::Lease::of(*b);
    REQUIRE(ob.ack(std::span(&lease, 1)).ok());
  }
  auto m = ob.maintain(0);
  REQUIRE(m.ok());
  auto drained = ob.stats().file_bytes;
  INFO("file " << full << " bytes full, " << drained << " bytes drained");
  CHECK(drained < full / 10);
  CHECK(m->reclaimed_bytes > 0);
  CHECK(ob.verify().value() == "ok");
}
