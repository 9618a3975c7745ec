// Bridge benchmark, on one core (the process pins itself to one CPU): epb
// frames/s through the stream decoder; readings/s acknowledged by the agent's
// bridge + ingest + outbox path (a real Server, Ingest and Outbox on a temp
// file, simulated units over UNIX sockets, ACK after commit); next to raw
// batched SQLite inserts of the same rows measured in the same run. Prints
// figures, asserts nothing. Usage: eport-bridge-bench [READINGS] [UNITS] [DIR]
#include <poll.h>
#include <sched.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "eport/units/convert.h"
#include "eport/units/net.h"
#include "eport/units/server.h"
#include "eport/codec/codec.h"
#include "eport/ingest/ingest.h"
#include "eport/log/log.h"
#include "eport/store/outbox.h"
#include "fleet.h"

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Workload {
  int units = 0;
  std::vector<std::string> ids, containers;
  std::vector<std::vector<eport::model::Reading>> readings;        // per unit, seq order
  std::vector<std::vector<std::vector<std::uint8_t>>> frames;      // the same, as epb frames
};

Workload make_workload(std::uint64_t n, int units) {
  Workload w;
  w.units = units;
  eport::sim::FleetOptions fo;
  fo.seed = 7;
  fo.units = units;
  eport::sim::Fleet fleet(fo);
  w.readings.resize(static_cast<std::size_t>(units));
  w.frames.resize(static_cast<std::size_t>(units));
  for (int u = 0; u < units; ++u) {
    w.ids.push_back(eport::sim::unit_id("tcu", u));
    w.containers.push_back(eport::sim::container_id(u));
  }
  for (std::uint64_t i = 0; i < n; ++i) {
    auto u = static_cast<std::size_t>(i % static_cast<std::uint64_t>(units));
    auto seq = i / static_cast<std::uint64_t>(units) + 1;
    auto r = fleet.reading(static_cast<int>(u), w.ids[u], w.containers[u], seq, 1795000000000ull + i);
    auto wire = eport::units::to_wire(r);
    epb_message m{};
    m.type = EPB_MSG_READING;
    m.m.reading = *wire;
    std::vector<std::uint8_t> f(EPB_MAX_ENCODED);
    f.resize(epb_encode(&m, f.data(), f.size()));
    w.frames[u].push_back(std::move(f));
    w.readings[u].push_back(std::move(r));
  }
  return w;
}

// The epb stream decoder alone: every frame of the workload in one buffer,
// fed in 4 KiB chunks as a read() would deliver them.
void decoder_rate(const Workload& w) {
  std::vector<std::uint8_t> stream;
  std::uint64_t frames = 0;
  for (const auto& unit : w.frames)
    for (const auto& f : unit) {
      stream.insert(stream.end(), f.begin(), f.end());
      ++frames;
    }
  int rounds = std::max<int>(1, static_cast<int>(20'000'000 / std::max<std::size_t>(1, stream.size())));
  std::uint64_t ok = 0;
  epb_decoder d;
  epb_decoder_init(&d);
  auto t = Clock::now();
  for (int r = 0; r < rounds; ++r) {
    for (std::size_t at = 0; at < stream.size(); at += 4096) {
      std::size_t len = std::min<std::size_t>(4096, stream.size() - at), off = 0;
      while (off < len) {
        epb_message m;
        epb_status st;
        off += epb_decoder_feed(&d, stream.data() + at + off, len - off, &m, &st);
        if (st == EPB_OK) ++ok;
      }
    }
  }
  double s = seconds_since(t);
  std::printf("  epb decoder, 4 KiB chunks:                             %10.0f frames/s  (%.0f MB/s, %.1f bytes/frame)\n",
              static_cast<double>(ok) / s, static_cast<double>(stream.size()) * rounds / s / 1e6,
              static_cast<double>(stream.size()) / static_cast<double>(frames));
  if (ok != frames * static_cast<std::uint64_t>(rounds)) std::printf("  (decoder: %llu of %llu frames decoded!)\n",
                                                                      static_cast<unsigned long long>(ok),
                                                                      static_cast<unsigned long long>(frames * rounds));
}

// The baseline: the same rows, 1000 per transaction, one prepared statement,
// WAL, same table and index as the outbox (as tests/bench/store_bench.cpp).
double raw_sqlite(const std::string& path, const Workload& w, bool full) {
  sqlite3* db;
  sqlite3_open(path.c_str(), &db);
  std::string pragmas = std::string("PRAGMA journal_mode=WAL; PRAGMA synchronous=") + (full ? "FULL;" : "NORMAL;");
  sqlite3_exec(db,
               (pragmas +
                "CREATE TABLE outbox(id INTEGER PRIMARY KEY AUTOINCREMENT, priority INTEGER NOT NULL,"
                " source_id TEXT NOT NULL, seq INTEGER NOT NULL, created_ms INTEGER NOT NULL, body BLOB NOT NULL);"
                "CREATE INDEX outbox_drain ON outbox(priority, id);")
                   .c_str(),
               nullptr, nullptr, nullptr);
  sqlite3_stmt* ins;
  sqlite3_prepare_v2(db, "INSERT INTO outbox(priority, source_id, seq, created_ms, body) VALUES (?,?,?,?,?)", -1, &ins,
                     nullptr);
  // Rows in arrival order (round robin over units), bodies encoded up front.
  std::vector<const eport::model::Reading*> rows;
  std::size_t per_unit = w.readings.empty() ? 0 : w.readings[0].size();
  for (std::size_t i = 0; i < per_unit; ++i)
    for (const auto& unit : w.readings)
      if (i < unit.size()) rows.push_back(&unit[i]);
  std::vector<std::vector<std::uint8_t>> bodies;
  for (const auto* r : rows) bodies.push_back(eport::codec::encode_reading(*r));
  auto t = Clock::now();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& r = *rows[i];
    if (i % 1000 == 0) sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    sqlite3_bind_int(ins, 1, static_cast<int>(eport::model::default_priority(r)));
    sqlite3_bind_text(ins, 2, r.source_id.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 3, static_cast<sqlite3_int64>(r.seq));
    sqlite3_bind_int64(ins, 4, static_cast<sqlite3_int64>(r.time_utc_ms));
    sqlite3_bind_blob(ins, 5, bodies[i].data(), static_cast<int>(bodies[i].size()), SQLITE_STATIC);
    sqlite3_step(ins);
    sqlite3_reset(ins);
    if (i % 1000 == 999 || i + 1 == rows.size()) sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  }
  double s = seconds_since(t);
  sqlite3_finalize(ins);
  sqlite3_close(db);
  return static_cast<double>(rows.size()) / s;
}

// Simulated units on one thread: HELLO, then readings within the window,
// each unit's readings freed by the agent's cumulative ACKs.
struct BenchUnit {
  int fd = -1;
  epb_decoder dec;
  bool welcomed = false;
  std::uint16_t window = 1;
  std::size_t next = 0;   // index of the next frame to send
  std::uint64_t acked = 0;
  std::string out;
};

struct PathResult {
  double readings_per_s = 0;
  std::uint64_t commits = 0, stored = 0;
};

PathResult bridge_path(const std::string& dir, const Workload& w, eport::store::Durability durability) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  eport::store::OutboxOptions oo;
  oo.path = dir + "/outbox.db";
  oo.durability = durability;
  oo.max_bytes = 1ull << 40;
  oo.min_free_bytes = 0;
  auto ob = eport::store::Outbox::open(oo);
  if (!ob) {
    std::fprintf(stderr, "%s\n", ob.error().c_str());
    std::exit(1);
  }
  // The agent's defaults (store.commit_interval_ms, store.commit_max_readings).
  eport::ingest::Ingest ingest(eport::ingest::IngestOptions{}, **ob, nullptr);
  eport::units::ServerOptions so;
  so.unix_socket = dir + "/bridge.sock";
  so.gateway_id = "gw-bench";
  so.max_units = static_cast<std::size_t>(w.units) + 10;
  eport::units::Server server(
      so, ingest, [&ob](std::string_view unit) { return (*ob)->last_seq(unit); },
      [](const eport::model::Reading& r) { return eport::model::default_priority(r); });
  ingest.start();
  if (auto st = server.start(); !st) {
    std::fprintf(stderr, "%s\n", st.error().c_str());
    std::exit(1);
  }

  std::vector<BenchUnit> units(static_cast<std::size_t>(w.units));
  std::uint64_t total = 0;
  for (std::size_t u = 0; u < units.size(); ++u) {
    auto fd = eport::units::net::connect_endpoint("unix:" + so.unix_socket);
    if (!fd) {
      std::fprintf(stderr, "%s\n", fd.error().c_str());
      std::exit(1);
    }
    units[u].fd = *fd;
    epb_decoder_init(&units[u].dec);
    epb_message m{};
    m.type = EPB_MSG_HELLO;
    m.m.hello.unit_id_len = static_cast<std::uint8_t>(w.ids[u].size());
    std::memcpy(m.m.hello.unit_id, w.ids[u].data(), w.ids[u].size());
    m.m.hello.container_id_len = static_cast<std::uint8_t>(w.containers[u].size());
    std::memcpy(m.m.hello.container_id, w.containers[u].data(), w.containers[u].size());
    m.m.hello.next_seq = 1;
    m.m.hello.oldest_seq = 1;
    std::uint8_t buf[EPB_MAX_ENCODED];
    units[u].out.assign(reinterpret_cast<const char*>(buf), epb_encode(&m, buf, sizeof buf));
    total += w.frames[u].size();
  }

  std::uint64_t acked = 0;
  std::vector<pollfd> pfds(units.size());
  auto t = Clock::now();
  while (acked < total) {
    for (std::size_t u = 0; u < units.size(); ++u) {
      auto& b = units[u];
      if (b.welcomed) {
        while (b.next < w.frames[u].size() && b.next - b.acked < b.window) {
          const auto& f = w.frames[u][b.next++];
          b.out.append(reinterpret_cast<const char*>(f.data()), f.size());
        }
      }
      while (!b.out.empty()) {
        ssize_t n = ::send(b.fd, b.out.data(), b.out.size(), MSG_NOSIGNAL);
        if (n <= 0) break;
        b.out.erase(0, static_cast<std::size_t>(n));
      }
      pfds[u] = {b.fd, static_cast<short>(POLLIN | (b.out.empty() ? 0 : POLLOUT)), 0};
    }
    if (poll(pfds.data(), pfds.size(), 100) <= 0) continue;
    for (std::size_t u = 0; u < units.size(); ++u) {
      if ((pfds[u].revents & POLLIN) == 0) continue;
      auto& b = units[u];
      std::uint8_t buf[8192];
      ssize_t n = recv(b.fd, buf, sizeof buf, 0);
      if (n <= 0) continue;
      std::size_t off = 0;
      while (off < static_cast<std::size_t>(n)) {
        epb_message m;
        epb_status st;
        off += epb_decoder_feed(&b.dec, buf + off, static_cast<std::size_t>(n) - off, &m, &st);
        if (st != EPB_OK) continue;
        if (m.type == EPB_MSG_WELCOME) {
          b.welcomed = true;
          b.window = m.m.welcome.window;
        } else if (m.type == EPB_MSG_ACK && m.m.ack.seq > b.acked) {
          acked += m.m.ack.seq - b.acked;  // seq i+1 is frame i: acked == frames freed
          b.acked = m.m.ack.seq;
        } else if (m.type == EPB_MSG_NACK) {
          std::fprintf(stderr, "  unexpected NACK %s for seq %llu\n", epb_nack_reason_name(m.m.nack.reason),
                       static_cast<unsigned long long>(m.m.nack.seq));
        }
      }
    }
  }
  double s = seconds_since(t);
  for (auto& b : units) close(b.fd);
  server.stop();
  ingest.stop();
  auto st = ingest.stats();
  return {static_cast<double>(acked) / s, st.commits, st.stored};
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 500000;
  int units = argc > 2 ? std::atoi(argv[2]) : 200;
  std::string dir = argc > 3 ? argv[3] : std::filesystem::temp_directory_path().string() + "/eport-bridge-bench";
  if (n == 0 || units < 1) {
    std::fprintf(stderr, "usage: eport-bridge-bench [READINGS>0] [UNITS>0] [DIR]\n");
    return 64;
  }
  eport::log::set_level(eport::log::Level::kWarn);
  // One core for everything: this thread (the units), the bridge thread and
  // the ingest thread all inherit this affinity.
  int cpu = sched_getcpu();
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu < 0 ? 0 : cpu, &one);
  bool pinned = sched_setaffinity(0, sizeof one, &one) == 0;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::printf("bridge benchmark: %llu readings from %d units (fleet journeys), %s\n",
              static_cast<unsigned long long>(n), units,
              pinned ? ("pinned to CPU " + std::to_string(cpu < 0 ? 0 : cpu)).c_str() : "NOT pinned (sched_setaffinity failed)");
  auto w = make_workload(n, units);
  decoder_rate(w);
  for (auto durability : {eport::store::Durability::kFull, eport::store::Durability::kNormal}) {
    bool full = durability == eport::store::Durability::kFull;
    const char* name = full ? "FULL" : "NORMAL";
    double raw = raw_sqlite(dir + "/raw-" + name + ".db", w, full);
    auto r = bridge_path(dir + "/agent-" + name, w, durability);
    std::printf("  raw SQLite, 1000 rows/transaction, synchronous=%-6s:  %10.0f rows/s\n", name, raw);
    std::printf("  acknowledged by bridge+ingest+outbox, synchronous=%-6s %10.0f readings/s  (%.0f%% of raw; %llu "
                "commits, %.0f readings each)\n",
                name, r.readings_per_s, 100.0 * r.readings_per_s / raw, static_cast<unsigned long long>(r.commits),
                static_cast<double>(r.stored) / static_cast<double>(std::max<std::uint64_t>(1, r.commits)));
  }
  std::filesystem::remove_all(dir);
  return 0;
}
