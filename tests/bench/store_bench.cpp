// Store benchmark: readings/s into the outbox through group commit (ingest),
// next to raw batched SQLite inserts of the same rows measured in the same
// run; drain readings/s; file size before and after the drain. Prints
// figures, asserts nothing. Usage: eport-store-bench [N] [DIR]
#include <sqlite3.h>
#include <sys/resource.h>

#include <atomic>
#include <thread>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "eport/codec/codec.h"
#include "eport/ingest/ingest.h"
#include "eport/store/outbox.h"
#include "fleet.h"

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

eport::model::Reading reading(std::uint64_t i) {
  int unit = static_cast<int>(i % 500);
  static std::vector<std::string> ids, containers;
  if (ids.empty()) {
    for (int u = 0; u < 500; ++u) {
      ids.push_back(eport::sim::unit_id("tcu", u));
      containers.push_back(eport::sim::container_id(u));
    }
  }
  return eport::sim::make_reading(7, unit, ids[static_cast<std::size_t>(unit)], containers[static_cast<std::size_t>(unit)],
                                  i / 500 + 1, 1795000000000ull + i);
}

// The baseline: the same rows, 1000 per transaction, one prepared statement,
// WAL with synchronous=FULL, same table and index as the outbox.
double raw_sqlite(const std::string& path, std::uint64_t n) {
  sqlite3* db;
  sqlite3_open(path.c_str(), &db);
  sqlite3_exec(db,
               "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
               "CREATE TABLE outbox(id INTEGER PRIMARY KEY AUTOINCREMENT, priority INTEGER NOT NULL,"
               " source_id TEXT NOT NULL, seq INTEGER NOT NULL, created_ms INTEGER NOT NULL, body BLOB NOT NULL);"
               "CREATE INDEX outbox_drain ON outbox(priority, id);",
               nullptr, nullptr, nullptr);
  sqlite3_stmt* ins;
  sqlite3_prepare_v2(db, "INSERT INTO outbox(priority, source_id, seq, created_ms, body) VALUES (?,?,?,?,?)", -1, &ins,
                     nullptr);
  // Bodies are encoded up front: the baseline measures SQLite alone.
  std::vector<std::vector<std::uint8_t>> bodies;
  std::vector<eport::model::Reading> rs;
  for (std::uint64_t i = 0; i < n; ++i) {
    rs.push_back(reading(i));
    bodies.push_back(eport::codec::encode_reading(rs.back()));
  }
  auto t = Clock::now();
  for (std::uint64_t i = 0; i < n; ++i) {
    if (i % 1000 == 0) sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    sqlite3_bind_int(ins, 1, static_cast<int>(eport::model::default_priority(rs[i])));
    sqlite3_bind_text(ins, 2, rs[i].source_id.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 3, static_cast<sqlite3_int64>(rs[i].seq));
    sqlite3_bind_int64(ins, 4, static_cast<sqlite3_int64>(rs[i].time_utc_ms));
    sqlite3_bind_blob(ins, 5, bodies[i].data(), static_cast<int>(bodies[i].size()), SQLITE_STATIC);
    sqlite3_step(ins);
    sqlite3_reset(ins);
    if (i % 1000 == 999 || i + 1 == n) sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  }
  double s = seconds_since(t);
  sqlite3_finalize(ins);
  sqlite3_close(db);
  return static_cast<double>(n) / s;
}

struct CountingSink : eport::ingest::CompletionSink {
  std::atomic<std::uint64_t> done{0};
  void completed(std::uint64_t, eport::ingest::Outcome) override { done.fetch_add(1, std::memory_order_relaxed); }
};

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000000;
  std::string dir = argc > 2 ? argv[2] : std::filesystem::temp_directory_path().string() + "/eport-store-bench";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::printf("store benchmark: %llu readings (positions, sensors, seal and door events from 500 units)\n",
              static_cast<unsigned long long>(n));

  double raw = raw_sqlite(dir + "/raw.db", n);
  std::printf("  raw SQLite, 1000 rows/transaction, WAL, synchronous=FULL: %10.0f rows/s\n", raw);

  for (auto durability : {eport::store::Durability::kFull, eport::store::Durability::kNormal}) {
    const char* name = durability == eport::store::Durability::kFull ? "full" : "normal";
    std::string path = dir + "/outbox-" + name + ".db";
    eport::store::OutboxOptions o;
    o.path = path;
    o.durability = durability;
    o.max_bytes = 1ull << 40;
    o.min_free_bytes = 0;
    auto ob = eport::store::Outbox::open(o);
    if (!ob) {
      std::fprintf(stderr, "%s\n", ob.error().c_str());
      return 1;
    }
    CountingSink sink;
    // Readings are made up front here too: the figure is the store's.
    std::vector<eport::model::Reading> readings;
    readings.reserve(n);
    for (std::uint64_t i = 0; i < n; ++i) readings.push_back(reading(i));
    {
      eport::ingest::Ingest ingest({std::chrono::milliseconds(10), 2000, 200000}, **ob, nullptr);
      ingest.start();
      auto t = Clock::now();
      for (std::uint64_t i = 0; i < n; ++i) {
        auto p = eport::model::default_priority(readings[i]);
        while (!ingest.submit(readings[i], p, &sink, i)) std::this_thread::yield();
      }
      while (sink.done.load() < n) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      double s = seconds_since(t);
      ingest.stop();
      auto st = ingest.stats();
      std::printf("  outbox via ingest (group commit, durability=%s):   %10.0f readings/s  (%.0f%% of raw; %llu "
                  "commits, %.0f readings each)\n",
                  name, static_cast<double>(n) / s, 100.0 * static_cast<double>(n) / s / raw,
                  static_cast<unsigned long long>(st.commits),
                  static_cast<double>(st.stored) / static_cast<double>(std::max<std::uint64_t>(1, st.commits)));
    }
    if (durability == eport::store::Durability::kNormal) continue;
    (void)(*ob)->maintain(0);
    auto before = (*ob)->stats().file_bytes;
    auto t = Clock::now();
    std::uint64_t drained = 0;
    while (true) {
      auto batch = (*ob)->take(500, 1 << 20);
      if (!batch || batch->empty()) break;
      for (auto& r : *batch) {
        auto decoded = eport::codec::decode_reading(r.body);  // as the publisher does
        if (decoded) ++drained;
      }
      auto lease = eport::store::Lease::of(*batch);
      (void)(*ob)->ack(std::span(&lease, 1));
    }
    double s = seconds_since(t);
    std::printf("  drain (take 500, decode, ack):                      %10.0f readings/s\n",
                static_cast<double>(drained) / s);
    (void)(*ob)->maintain(0);
    auto after = (*ob)->stats().file_bytes;
    std::printf("  file size: %.1f MiB with %llu readings waiting, %.2f MiB after the drain\n",
                static_cast<double>(before) / 1048576.0, static_cast<unsigned long long>(n),
                static_cast<double>(after) / 1048576.0);
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("  (benchmark process peak RSS %.1f MiB, holding the baseline's rows in memory)\n",
              static_cast<double>(ru.ru_maxrss) / 1024.0);
  std::filesystem::remove_all(dir);
  return 0;
}
