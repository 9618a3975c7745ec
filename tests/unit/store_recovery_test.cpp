// [store] Recovery: files damaged the way power loss and bad flash damage
// them. A torn or corrupted WAL costs only the transactions after the damage
// (never one whose commit returned); a damaged main file is moved aside,
// its readable rows salvaged, and the agent starts on a fresh store.
#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <filesystem>
#include <fstream>

#include "eport/store/outbox.h"
#include "test_util.h"

using namespace eport;
using eport::model::Priority;
namespace fs = std::filesystem;

namespace {
store::Record rec(std::uint64_t seq) {
  store::Record r;
  r.source_id = "tcu-1";
  r.seq = seq;
  r.priority = Priority::kTelemetry;
  r.created_utc_ms = seq;
  r.body.assign(200, static_cast<std::uint8_t>(seq));
  return r;
}

// Appends `batches` transactions of `per` rows and leaves the connection open
// so that the WAL is not checkpointed away; returns the outbox.
std::unique_ptr<store::Outbox> write_batches(const std::string& path, int batches, int per, bool checkpoint = false) {
  auto ob = store::Outbox::open({path});
  REQUIRE(ob.ok());
  std::uint64_t seq = 1;
  for (int b = 0; b < batches; ++b) {
    std::vector<store::Record> v;
    for (int i = 0; i < per; ++i) v.push_back(rec(seq++));
    REQUIRE((*ob)->append(v).ok());
  }
  if (checkpoint) REQUIRE((*ob)->maintain(0).ok());
  return std::move(ob).value();
}

// What a power cut leaves on disk: a copy of the files as they are now.
void snapshot(const std::string& from, const std::string& to) {
  for (const char* suffix : {"", "-wal"}) {
    if (fs::exists(from + suffix)) fs::copy_file(from + suffix, to + suffix, fs::copy_options::overwrite_existing);
  }
}

void flip_bytes(const std::string& path, std::uintmax_t offset, std::size_t n) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f.good());
  for (std::size_t i = 0; i < n; ++i) {
    f.seekg(static_cast<std::streamoff>(offset + i));
    char c;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(offset + i));
    f.put(static_cast<char>(~c));
  }
}

// Seqs present in a store, in order.
std::vector<std::uint64_t> seqs(store::Outbox& ob) {
  std::vector<std::uint64_t> out;
  REQUIRE(ob.for_each([&](const store::StoredRecord& r) {
    out.push_back(r.seq);
    return true;
  }).ok());
  return out;
}

bool is_prefix(const std::vector<std::uint64_t>& v) {
  for (std::size_t i = 0; i < v.size(); ++i)
    if (v[i] != i + 1) return false;
  return true;
}

std::vector<std::string> corrupt_copies(const test::TempDir& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir.file(""))) {
    if (e.path().filename().string().find(".corrupt-") != std::string::npos) out.push_back(e.path().string());
  }
  return out;
}
}  // namespace

TEST_CASE("a torn last WAL frame loses only the transaction being written", "[store][recovery]") {
  test::TempDir dir;
  auto live = write_batches(dir.file("live.db"), 10, 20);
  snapshot(dir.file("live.db"), dir.file("cut.db"));
  auto wal = fs::file_size(dir.file("cut.db-wal"));
  fs::resize_file(dir.file("cut.db-wal"), wal - 1000);  // the last frame half-written

  auto ob = store::Outbox::open({dir.file("cut.db")});
  REQUIRE(ob.ok());
  auto s = seqs(**ob);
  CHECK(is_prefix(s));
  CHECK(s.size() >= 180);  // at most the last transaction (20 rows) is gone
  CHECK(s.size() < 200);
  CHECK((*ob)->verify().value() == "ok");
  CHECK((*ob)->stats().recovered_from.empty());
}

TEST_CASE("a corrupted WAL frame cuts the log there; the store stays consistent", "[store][recovery]") {
  test::TempDir dir;
  auto live = write_batches(dir.file("live.db"), 10, 20);
  snapshot(dir.file("live.db"), dir.file("cut.db"));
  auto wal = fs::file_size(dir.file("cut.db-wal"));
  flip_bytes(dir.file("cut.db-wal"), wal / 2, 16);

  auto ob = store::Outbox::open({dir.file("cut.db")});
  REQUIRE(ob.ok());
  auto s = seqs(**ob);
  CHECK(is_prefix(s));  // whole transactions only, in order
  CHECK(s.size() < 200);
  CHECK((*ob)->verify().value() == "ok");
  // The sources table went back in time with the rows: resends are stored again.
  CHECK((*ob)->last_seq("tcu-1") == (s.empty() ? 0 : s.back()));
}

TEST_CASE("a file that is not a database is moved aside and replaced", "[store][recovery]") {
  test::TempDir dir;
  {
    std::ofstream f(dir.file("outbox.db"), std::ios::binary);
    f << std::string(8192, 'x');
  }
  auto ob = store::Outbox::open({dir.file("outbox.db")});
  REQUIRE(ob.ok());
  auto st = (*ob)->stats();
  CHECK_THAT(st.recovered_from, Catch::Contains(dir.file("outbox.db.corrupt-")));
  CHECK(st.total_rows() == 0);
  REQUIRE(corrupt_copies(dir).size() == 1);
  CHECK(fs::file_size(corrupt_copies(dir)[0]) == 8192);  // kept as it was, for forensics
  CHECK((*ob)->append(std::vector<store::Record>{rec(1)}).ok());
}

TEST_CASE("a damaged page in the main file: moved aside, readable rows salvaged", "[store][recovery]") {
  test::TempDir dir;
  {
    auto live = write_batches(dir.file("outbox.db"), 50, 20, /*checkpoint=*/true);
  }
  REQUIRE(!fs::exists(dir.file("outbox.db-wal")));
  auto size = fs::file_size(dir.file("outbox.db"));
  flip_bytes(dir.file("outbox.db"), size - 3 * 4096 + 10, 64);  // a leaf page near the end

  auto ob = store::Outbox::open({dir.file("outbox.db")});
  REQUIRE(ob.ok());
  auto st = (*ob)->stats();
  REQUIRE_FALSE(st.recovered_from.empty());
  INFO("salvaged " << st.salvaged << " of 1000 rows");
  CHECK(st.salvaged > 500);
  CHECK(st.salvaged < 1000);
  CHECK(st.total_rows() == st.salvaged);
  CHECK((*ob)->verify().value() == "ok");
  // The per-source sequence survives, so resends are still recognised.
  CHECK((*ob)->last_seq("tcu-1") >= 1000 - 40);
}

TEST_CASE("a truncated main file is moved aside and what reads is salvaged", "[store][recovery]") {
  test::TempDir dir;
  { auto live = write_batches(dir.file("outbox.db"), 50, 20, /*checkpoint=*/true); }
  fs::resize_file(dir.file("outbox.db"), fs::file_size(dir.file("outbox.db")) / 2);
  auto ob = store::Outbox::open({dir.file("outbox.db")});
  REQUIRE(ob.ok());
  auto st = (*ob)->stats();
  CHECK_FALSE(st.recovered_from.empty());
  CHECK((*ob)->verify().value() == "ok");
  CHECK((*ob)->append(std::vector<store::Record>{rec(5000)}).ok());
}

TEST_CASE("a locked database is an error, never mistaken for corruption", "[store][recovery]") {
  test::TempDir dir;
  { auto ob = store::Outbox::open({dir.file("outbox.db")}); REQUIRE(ob.ok()); }
  sqlite3* other = nullptr;
  REQUIRE(sqlite3_open(dir.file("outbox.db").c_str(), &other) == SQLITE_OK);
  REQUIRE(sqlite3_exec(other, "PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE;", nullptr, nullptr, nullptr) == SQLITE_OK);
  store::OutboxOptions o;
  o.path = dir.file("outbox.db");
  o.busy_timeout = std::chrono::milliseconds(100);
  auto ob = store::Outbox::open(o);
  CHECK_FALSE(ob.ok());
  CHECK(corrupt_copies(dir).empty());
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
}
