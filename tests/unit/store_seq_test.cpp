// [store] The seq range: seqs are 1..model::kMaxSeq (2^53 - 1). The outbox
// refuses and counts anything else without holding back the source's valid
// readings, never lets such a value reach SQLite, and its in-memory last seq
// always equals what the sources table says, also after reopening.
#include <sqlite3.h>

#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "eport/store/outbox.h"
#include "test_util.h"

using namespace eport;
using eport::model::kMaxSeq;
using store::AppendOutcome;

namespace {
store::Record rec(const std::string& source, std::uint64_t seq) {
  store::Record r;
  r.source_id = source;
  r.seq = seq;
  r.priority = model::Priority::kTelemetry;
  r.created_utc_ms = 1000;
  r.body.assign(20, 7);
  return r;
}

std::unique_ptr<store::Outbox> open(const test::TempDir& dir) {
  store::OutboxOptions o;
  o.path = dir.file("outbox.db");
  o.min_free_bytes = 0;
  auto ob = store::Outbox::open(o);
  REQUIRE(ob.ok());
  return std::move(ob).value();
}

// Straight from the file, as another SQLite client sees it.
std::map<std::string, std::int64_t> sources_table(const std::string& path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT source_id, last_seq FROM sources", -1, &s, nullptr) == SQLITE_OK);
  std::map<std::string, std::int64_t> out;
  while (sqlite3_step(s) == SQLITE_ROW) {
    out[reinterpret_cast<const char*>(sqlite3_column_text(s, 0))] = sqlite3_column_int64(s, 1);
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
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

std::vector<std::uint64_t> stored_seqs(store::Outbox& ob, const std::string& source) {
  std::vector<std::uint64_t> seqs;
  REQUIRE(ob.for_each([&](const store::StoredRecord& r) {
    if (r.source_id == source) seqs.push_back(r.seq);
    return true;
  }).ok());
  return seqs;
}
}  // namespace

TEST_CASE("seq 0 and seqs above kMaxSeq are refused and counted, the source's valid readings still go in",
          "[store][seq]") {
  test::TempDir dir;
  auto ob = open(dir);
  constexpr auto kTop = std::numeric_limits<std::uint64_t>::max();
  auto r = ob->append(std::vector<store::Record>{rec("a", 1), rec("a", 0), rec("a", kMaxSeq + 1),
                                                 rec("a", std::uint64_t{1} << 63), rec("a", kTop), rec("a", 2)});
  REQUIRE(r.ok());
  CHECK(r->outcome == std::vector<AppendOutcome>{AppendOutcome::kStored, AppendOutcome::kRefused,
                                                 AppendOutcome::kRefused, AppendOutcome::kRefused,
                                                 AppendOutcome::kRefused, AppendOutcome::kStored});
  CHECK(r->stored == 2);
  CHECK(r->refused == 4);
  CHECK(r->duplicates == 0);
  CHECK(ob->stats().invalid_seq == 4);
  CHECK(ob->stats().by_class[static_cast<int>(model::Priority::kTelemetry)].refused == 0);  // not for lack of room
  CHECK(ob->last_seq("a") == 2);
  // Not held back: the next one goes in, and an invalid first reading of a
  // new source leaves no trace of it.
  r = ob->append(std::vector<store::Record>{rec("b", 0), rec("a", 3), rec("b", kTop)});
  REQUIRE(r.ok());
  CHECK(r->outcome ==
        std::vector<AppendOutcome>{AppendOutcome::kRefused, AppendOutcome::kStored, AppendOutcome::kRefused});
  CHECK(ob->stats().invalid_seq == 6);
  CHECK(stored_seqs(*ob, "a") == std::vector<std::uint64_t>{1, 2, 3});
  CHECK(stored_seqs(*ob, "b").empty());
  CHECK(ob->last_seq("b") == 0);
  ob.reset();
  auto table = sources_table(dir.file("outbox.db"));
  CHECK(table == std::map<std::string, std::int64_t>{{"a", 3}});
}

TEST_CASE("kMaxSeq is stored, and last_seq agrees with the sources table after reopening", "[store][seq]") {
  test::TempDir dir;
  {
    auto ob = open(dir);
    REQUIRE(ob->append(std::vector<store::Record>{rec("a", kMaxSeq - 1), rec("a", kMaxSeq)}).value().stored == 2);
    CHECK(ob->last_seq("a") == kMaxSeq);
  }
  CHECK(sources_table(dir.file("outbox.db")).at("a") == static_cast<std::int64_t>(kMaxSeq));
  auto ob = open(dir);
  CHECK(ob->last_seq("a") == kMaxSeq);
  CHECK(stored_seqs(*ob, "a") == std::vector<std::uint64_t>{kMaxSeq - 1, kMaxSeq});
  auto r = ob->append(std::vector<store::Record>{rec("a", kMaxSeq), rec("a", kMaxSeq + 1)});
  REQUIRE(r.ok());
  CHECK(r->outcome == std::vector<AppendOutcome>{AppendOutcome::kDuplicate, AppendOutcome::kRefused});
  CHECK(ob->last_seq("a") == kMaxSeq);
}

TEST_CASE("the in-memory last seq and the sources table agree for any mix of seqs, also after reopening",
          "[store][seq]") {
  test::TempDir dir;
  std::mt19937_64 rng(20261126);
  const std::vector<std::string> sources = {"s0", "s1", "s2", "s3"};
  // Candidate seqs: small, near the top of the range, and out of it.
  auto pick = [&](std::uint64_t last) -> std::uint64_t {
    switch (rng() % 8) {
      case 0: return 0;
      case 1: return kMaxSeq + 1 + rng() % 1000;
      case 2: return (std::uint64_t{1} << 63) + rng() % 1000;
      case 3: return last > 0 ? last - rng() % std::min<std::uint64_t>(last, 3) : 1;  // a resend
      case 4: return kMaxSeq - rng() % 64;
      default: return last < kMaxSeq ? last + 1 + rng() % 4 : kMaxSeq;
    }
  };
  std::map<std::string, std::uint64_t> expected;
  for (int round = 0; round < 3; ++round) {
    auto ob = open(dir);
    for (const auto& s : sources) CHECK(ob->last_seq(s) == expected[s]);
    for (int batch = 0; batch < 40; ++batch) {
      std::vector<store::Record> in;
      for (int i = 0; i < 8; ++i) {
        const auto& s = sources[rng() % sources.size()];
        in.push_back(rec(s, pick(std::max(expected[s], ob->last_seq(s)))));
      }
      auto r = ob->append(in);
      REQUIRE(r.ok());
      for (std::size_t i = 0; i < in.size(); ++i) {
        bool valid = in[i].seq >= 1 && in[i].seq <= kMaxSeq;
        if (!valid) CHECK(r->outcome[i] == AppendOutcome::kRefused);
        if (r->outcome[i] == AppendOutcome::kStored) {
          CHECK(valid);
          CHECK(in[i].seq > expected[in[i].source_id]);
          expected[in[i].source_id] = in[i].seq;
        }
      }
      for (const auto& s : sources) CHECK(ob->last_seq(s) == expected[s]);
    }
    ob.reset();
    auto table = sources_table(dir.file("outbox.db"));
    for (const auto& [s, seq] : table) {
      CHECK(seq >= 1);
      CHECK(static_cast<std::uint64_t>(seq) == expected[s]);
    }
  }
}

TEST_CASE("a store with seqs out of range from an older agent opens with them brought into range", "[store][seq]") {
  test::TempDir dir;
  { auto ob = open(dir); }
  auto path = dir.file("outbox.db");
  // Written by an agent that had no seq range: 2^63 went in as a negative
  // integer, 2^60 as itself (with a valid reading of that source waiting).
  exec(path,
       "INSERT INTO sources(source_id, last_seq) VALUES ('neg', -9223372036854775808), ('big', 1152921504606846976), ('ok', 5);"
       "INSERT INTO outbox(priority, source_id, seq, created_ms, body) VALUES (1, 'big', 7, 1, x'00');");
  auto ob = open(dir);
  CHECK(ob->last_seq("neg") == 0);
  CHECK(ob->last_seq("big") == 7);
  CHECK(ob->last_seq("ok") == 5);
  auto r = ob->append(std::vector<store::Record>{rec("neg", 1), rec("big", 8)});
  REQUIRE(r.ok());
  CHECK(r->stored == 2);
  ob.reset();
  CHECK(sources_table(path) == std::map<std::string, std::int64_t>{{"neg", 1}, {"big", 8}, {"ok", 5}});
}
