// Flash wear benchmark: bytes this process writes to the storage device per
// stored reading (/proc/self/io write_bytes: pages handed to the block
// layer, WAL, database and -shm alike), through the real group commit
// (ingest) into the outbox with its shipped durability, while a publisher
// thread takes and acknowledges as the agent's does (every
// publish.max_age_ms). By commit window and rate, each next to the floor the
// durability of an ACK needs: one 4 KiB page per commit plus the encoded
// readings (issue 16). Prints figures, asserts nothing.
// Usage: eport-flash-bench [--seconds S] [--windows 0,10,...] [--rates 100,...]
//                          [--sources N] [--max-window-ms M] [--dir DIR] [--csv FILE]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "eport/codec/codec.h"
#include "eport/ingest/ingest.h"
#include "eport/store/outbox.h"
#include "fleet.h"

namespace {

using Clock = std::chrono::steady_clock;

// write_bytes of this process so far (0 where /proc/self/io is not there).
std::uint64_t write_bytes() {
  std::ifstream in("/proc/self/io");
  std::string key;
  std::uint64_t value = 0;
  while (in >> key >> value) {
    if (key == "write_bytes:") return value;
  }
  return 0;
}

std::vector<long> parse_list(const char* s) {
  std::vector<long> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::strtol(item.c_str(), nullptr, 10));
  return out;
}

struct Sink : eport::ingest::CompletionSink {
  std::atomic<std::uint64_t> done{0};
  void completed(std::uint64_t, eport::ingest::Outcome) override { done.fetch_add(1, std::memory_order_relaxed); }
};

struct Row {
  long window_ms = 0;
  long rate = 0;
  std::uint64_t readings = 0;
  std::uint64_t commits = 0;
  std::uint64_t body_bytes = 0;
  std::uint64_t written = 0;
  double per_reading() const { return static_cast<double>(written) / static_cast<double>(readings); }
  double floor() const {
    return (4096.0 * static_cast<double>(commits) + static_cast<double>(body_bytes)) / static_cast<double>(readings);
  }
};

Row run(long window_ms, long max_window_ms, long rate, int sources, double seconds, const std::string& dir) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  eport::store::OutboxOptions o;  // shipped defaults: durability full, WAL
  o.path = dir + "/outbox.db";
  o.min_free_bytes = 0;
  auto ob = eport::store::Outbox::open(o);
  if (!ob) {
    std::fprintf(stderr, "%s\n", ob.error().c_str());
    std::exit(1);
  }
  eport::sim::Fleet fleet({.seed = 1, .units = sources});
  std::vector<std::string> ids, containers;
  for (int u = 0; u < sources; ++u) {
    ids.push_back(eport::sim::unit_id("tcu", u));
    containers.push_back(eport::sim::container_id(u));
  }
  const auto n = static_cast<std::uint64_t>(static_cast<double>(rate) * seconds);
  // Readings made up front: the figure is the store's, not the generator's.
  std::vector<eport::model::Reading> readings;
  std::uint64_t body_bytes = 0;
  readings.reserve(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    int u = static_cast<int>(i % static_cast<std::uint64_t>(sources));
    readings.push_back(fleet.reading(u, ids[static_cast<std::size_t>(u)], containers[static_cast<std::size_t>(u)],
                                     i / static_cast<std::uint64_t>(sources) + 1, 1795000000000ull + i));
    body_bytes += eport::codec::encode_reading(readings.back()).size();
  }

  Sink sink;
  eport::ingest::IngestOptions io;
  io.commit_interval = std::chrono::milliseconds(window_ms);
  io.commit_interval_max = std::chrono::milliseconds(std::max(window_ms, max_window_ms));
  eport::ingest::Ingest ingest(io, **ob, nullptr);
  std::atomic<bool> stop{false};
  // The agent's publisher: what waits is sent once it is publish.max_age_ms
  // (200) old; here every 200 ms, 500 readings per envelope, then acked.
  std::thread publisher([&] {
    while (!stop.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      while (true) {
        auto batch = (*ob)->take(500, 65536);
        if (!batch || batch->empty()) break;
        auto lease = eport::store::Lease::of(*batch);
        (void)(*ob)->ack(std::span(&lease, 1));
      }
    }
  });
  const auto before = write_bytes();
  ingest.start();
  const auto t0 = Clock::now();
  for (std::uint64_t i = 0; i < n; ++i) {
    // Paced: reading i is due at i / rate seconds.
    auto due = t0 + std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 * static_cast<double>(i) / static_cast<double>(rate)));
    std::this_thread::sleep_until(due);
    auto p = eport::model::default_priority(readings[i]);
    while (!ingest.submit(readings[i], p, &sink, i)) std::this_thread::yield();
  }
  while (sink.done.load() < n) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ingest.stop();
  // Let the publisher drain what is left, as the agent would.
  std::this_thread::sleep_for(std::chrono::milliseconds(450));
  stop = true;
  publisher.join();
  Row row;
  row.written = write_bytes() - before;
  row.window_ms = window_ms;
  row.rate = rate;
  row.readings = ingest.stats().stored;
  row.commits = ingest.stats().commits;
  row.body_bytes = body_bytes;
  ob->reset();
  std::filesystem::remove_all(dir);
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 10;
  std::vector<long> windows = {0, 10, 50, 100, 250};
  std::vector<long> rates = {100, 1000, 5000};
  int sources = 50;
  long max_window_ms = 0;
  std::string dir = std::filesystem::temp_directory_path().string() + "/eport-flash-bench";
  std::string csv;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--seconds") seconds = std::strtod(argv[i + 1], nullptr);
    else if (a == "--windows") windows = parse_list(argv[i + 1]);
    else if (a == "--rates") rates = parse_list(argv[i + 1]);
    else if (a == "--sources") sources = std::atoi(argv[i + 1]);
    else if (a == "--max-window-ms") max_window_ms = std::strtol(argv[i + 1], nullptr, 10);
    else if (a == "--dir") dir = argv[i + 1];
    else if (a == "--csv") csv = argv[i + 1];
    else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (write_bytes() == 0 && !std::ifstream("/proc/self/io")) {
    std::fprintf(stderr, "/proc/self/io is not readable here: no figures\n");
    return 1;
  }
  std::printf("flash wear: bytes written to the device per stored reading (/proc/self/io write_bytes), "
              "%d sources, %.0f s per case, store defaults (durability full, WAL)%s\n",
              sources, seconds,
              max_window_ms > 0 ? (", commit window may grow to " + std::to_string(max_window_ms) + " ms").c_str() : "");
  std::printf("floor = (4096 B x commits + encoded readings) / readings\n\n");
  std::printf("| window ms | readings/s | readings | commits | readings/commit | written B/reading | floor B/reading | "
              "ratio |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  std::FILE* out = csv.empty() ? nullptr : std::fopen(csv.c_str(), "w");
  if (out) std::fprintf(out, "window_ms,rate,readings,commits,written_per_reading,floor_per_reading,ratio\n");
  for (long r : rates) {
    for (long w : windows) {
      Row row = run(w, max_window_ms, r, sources, seconds, dir);
      std::printf("| %ld | %ld | %llu | %llu | %.1f | %.0f | %.0f | %.2f |\n", w, r,
                  static_cast<unsigned long long>(row.readings), static_cast<unsigned long long>(row.commits),
                  static_cast<double>(row.readings) / static_cast<double>(std::max<std::uint64_t>(1, row.commits)),
                  row.per_reading(), row.floor(), row.per_reading() / row.floor());
      std::fflush(stdout);
      if (out) {
        std::fprintf(out, "%ld,%ld,%llu,%llu,%.1f,%.1f,%.3f\n", w, r, static_cast<unsigned long long>(row.readings),
                     static_cast<unsigned long long>(row.commits), row.per_reading(), row.floor(),
                     row.per_reading() / row.floor());
      }
    }
  }
  if (out) std::fclose(out);
  return 0;
}
