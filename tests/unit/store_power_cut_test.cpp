// [store][power] A power cut, simulated: SIGKILL keeps the page cache, a
// power cut does not. A VFS shim below SQLite (the way SQLite's own crash
// tests do it) keeps, for every file, what each write since that file's last
// xSync replaced; at a random moment ("the cut") every later write, sync and
// delete fails, and afterwards each file is put back to what its last xSync
// made durable: everything not yet synced is gone, as after a real cut.
// Units keep sending while the cut may come: appends of random batches from
// several sources, with publishing (take, ack) in between. After each of
// 1,000 cuts the store reopens without salvage, passes SQLite's integrity
// check, and holds every reading an append had acknowledged (stored) and not
// been acked by the publisher; each source's last seq covers them all.
#include <sqlite3.h>

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "eport/store/outbox.h"
#include "test_util.h"

using namespace eport;

namespace {

// ---- The power-cut VFS ------------------------------------------------------

constexpr const char* kVfsName = "eport-power-cut";
sqlite3_vfs* g_real = nullptr;

// What a file looked like at its last sync: the bytes each later write
// overwrote (in order) and its size then.
struct Undo {
  bool dirty = false;
  sqlite3_int64 synced_size = 0;
  std::vector<std::pair<sqlite3_int64, std::vector<char>>> old_bytes;
};

struct State {
  std::map<std::string, Undo> files;  // by path
  long ops = 0;                       // writes, truncates and syncs so far
  long cut_at = -1;                   // the op at which the power goes; -1: never
  bool dead = false;
};
State g;

struct CutFile {
  sqlite3_file base;
  sqlite3_file* real;  // the default VFS's file, in the same allocation after this struct
  std::string* path;
};

CutFile* cf(sqlite3_file* f) { return reinterpret_cast<CutFile*>(f); }
sqlite3_file* real(sqlite3_file* f) { return cf(f)->real; }

// True once the power is gone (this op and every later one fail).
bool power_gone() {
  if (g.dead) return true;
  if (g.cut_at >= 0 && ++g.ops >= g.cut_at) g.dead = true;
  return g.dead;
}

// Before a file changes: what it was at its last sync, remembered.
void remember(sqlite3_file* f, sqlite3_int64 off, sqlite3_int64 n) {
  auto& u = g.files[*cf(f)->path];
  sqlite3_int64 size = 0;
  real(f)->pMethods->xFileSize(real(f), &size);
  if (!u.dirty) {
    u.dirty = true;
    u.synced_size = size;
  }
  sqlite3_int64 end = std::min(off + n, size);
  if (end <= off) return;
  std::vector<char> old(static_cast<std::size_t>(end - off));
  real(f)->pMethods->xRead(real(f), old.data(), static_cast<int>(old.size()), off);
  u.old_bytes.emplace_back(off, std::move(old));
}

int x_close(sqlite3_file* f) {
  int rc = real(f)->pMethods->xClose(real(f));
  delete cf(f)->path;
  return rc;
}
int x_read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) { return real(f)->pMethods->xRead(real(f), buf, n, off); }
int x_write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  if (power_gone()) return SQLITE_IOERR_WRITE;
  remember(f, off, n);
  return real(f)->pMethods->xWrite(real(f), buf, n, off);
}
int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
  if (power_gone()) return SQLITE_IOERR_TRUNCATE;
  sqlite3_int64 now = 0;
  real(f)->pMethods->xFileSize(real(f), &now);
  remember(f, size, now - size);
  return real(f)->pMethods->xTruncate(real(f), size);
}
int x_sync(sqlite3_file* f, int) {
  if (power_gone()) return SQLITE_IOERR_FSYNC;
  // Durable from here on, in this model of the disk: no real fsync is
  // needed (the test machine's own cache never loses power), which keeps
  // 1,000 cuts fast on any file system.
  g.files[*cf(f)->path] = Undo{};
  return SQLITE_OK;
}
int x_file_size(sqlite3_file* f, sqlite3_int64* size) { return real(f)->pMethods->xFileSize(real(f), size); }
int x_lock(sqlite3_file* f, int level) { return real(f)->pMethods->xLock(real(f), level); }
int x_unlock(sqlite3_file* f, int level) { return real(f)->pMethods->xUnlock(real(f), level); }
int x_check_reserved(sqlite3_file* f, int* out) { return real(f)->pMethods->xCheckReservedLock(real(f), out); }
int x_file_control(sqlite3_file* f, int op, void* arg) { return real(f)->pMethods->xFileControl(real(f), op, arg); }
int x_sector_size(sqlite3_file* f) { return real(f)->pMethods->xSectorSize(real(f)); }
int x_device_chars(sqlite3_file* f) { return real(f)->pMethods->xDeviceCharacteristics(real(f)); }
int x_shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** p) {
  return real(f)->pMethods->xShmMap(real(f), region, size, extend, p);
}
int x_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  return real(f)->pMethods->xShmLock(real(f), offset, n, flags);
}
void x_shm_barrier(sqlite3_file* f) { real(f)->pMethods->xShmBarrier(real(f)); }
int x_shm_unmap(sqlite3_file* f, int del) { return real(f)->pMethods->xShmUnmap(real(f), del); }

// Version 2: WAL's shared memory (the -shm file is rebuilt from the WAL at
// the first open after a cut, as after a real one), no xFetch: every page
// goes through xWrite.
const sqlite3_io_methods kMethods = {
    2,           x_close,        x_read,         x_write,     x_truncate,    x_sync,
    x_file_size, x_lock,         x_unlock,       x_check_reserved, x_file_control, x_sector_size,
    x_device_chars, x_shm_map,   x_shm_lock,     x_shm_barrier, x_shm_unmap, nullptr,
    nullptr};

int x_open(sqlite3_vfs*, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  auto* f = cf(file);
  f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + sizeof(CutFile));
  f->path = new std::string(name != nullptr ? name : "");
  int rc = g_real->xOpen(g_real, name, f->real, flags, out_flags);
  if (f->real->pMethods == nullptr) {
    delete f->path;
    f->base.pMethods = nullptr;
  } else {
    f->base.pMethods = &kMethods;
  }
  return rc;
}

int x_delete(sqlite3_vfs*, const char* name, int sync_dir) {
  if (power_gone()) return SQLITE_IOERR_DELETE;
  return g_real->xDelete(g_real, name, sync_dir);
}

void register_vfs() {
  static bool done = [] {
    g_real = sqlite3_vfs_find(nullptr);
    static sqlite3_vfs vfs = *g_real;
    vfs.zName = kVfsName;
    vfs.szOsFile = static_cast<int>(sizeof(CutFile)) + g_real->szOsFile;
    vfs.xOpen = x_open;
    vfs.xDelete = x_delete;
    vfs.pNext = nullptr;
    return sqlite3_vfs_register(&vfs, 0) == SQLITE_OK;
  }();
  REQUIRE(done);
}

// The cut's aftermath: every file back to what its last sync made durable.
void lose_unsynced() {
  for (auto& [path, u] : g.files) {
    if (!u.dirty || !std::filesystem::exists(path)) continue;
    std::FILE* f = std::fopen(path.c_str(), "r+b");
    REQUIRE(f != nullptr);
    for (auto it = u.old_bytes.rbegin(); it != u.old_bytes.rend(); ++it) {
      REQUIRE(std::fseek(f, static_cast<long>(it->first), SEEK_SET) == 0);
      REQUIRE(std::fwrite(it->second.data(), 1, it->second.size(), f) == it->second.size());
    }
    std::fclose(f);
    std::filesystem::resize_file(path, static_cast<std::uintmax_t>(u.synced_size));
  }
  g = State{};
}

// ---- The scenario -------------------------------------------------------------

store::Record reading(const std::string& source, std::uint64_t seq, std::mt19937& rng) {
  store::Record r;
  r.source_id = source;
  r.seq = seq;
  r.priority = seq % 17 == 0 ? model::Priority::kAlarm : model::Priority::kTelemetry;
  r.created_utc_ms = 1'795'000'000'000ull + seq;
  r.body.assign(20 + rng() % 60, static_cast<std::uint8_t>(seq));
  return r;
}

struct Run {
  std::map<std::string, std::uint64_t> next_seq;      // per source, the next seq to send
  std::set<std::pair<std::string, std::uint64_t>> acknowledged;  // stored and not published since
  long ops = 0;  // VFS ops the run made
};

// Units send batches, the publisher takes and acks some, until `batches`
// batches were sent or the power went.
void drive(store::Outbox& ob, Run& run, std::mt19937& rng, int batches) {
  static const std::vector<std::string> kSources = {"tcu-0001", "tcu-0002", "tcu-0003", "tcu-0004"};
  for (int b = 0; b < batches && !g.dead; ++b) {
    std::vector<store::Record> batch;
    std::size_t n = 1 + rng() % 12;
    for (std::size_t i = 0; i < n; ++i) {
      const auto& s = kSources[rng() % kSources.size()];
      auto& next = run.next_seq.try_emplace(s, 1).first->second;
      batch.push_back(reading(s, next++, rng));
    }
    auto r = ob.append(batch);
    if (!r) {
      // Nothing of a failed append is stored, nothing acknowledged: the
      // units send those seqs again (next time round).
      for (const auto& rec : batch) run.next_seq[rec.source_id] = std::min(run.next_seq[rec.source_id], rec.seq);
      continue;
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (r->outcome[i] == store::AppendOutcome::kStored) {
        run.acknowledged.emplace(batch[i].source_id, batch[i].seq);
      } else if (r->outcome[i] == store::AppendOutcome::kRefused) {
        auto& next = run.next_seq[batch[i].source_id];
        next = std::min(next, batch[i].seq);
      }
    }
    if (rng() % 3 == 0) {
      auto taken = ob.take(1 + rng() % 20, 1 << 20);
      if (taken && !taken->empty() && ob.ack(std::vector<store::Lease>{store::Lease::of(*taken)})) {
        for (const auto& t : *taken) run.acknowledged.erase({t.source_id, t.seq});
      }
    }
  }
}

}  // namespace

TEST_CASE("1,000 simulated power cuts while units send: every acknowledged reading survives, integrity holds",
          "[store][power]") {
  register_vfs();
  std::mt19937 rng(20261201);
  // How many VFS ops an undisturbed run makes: the cuts fall anywhere in it.
  long ops_per_run = 0;
  {
    test::TempDir dir;
    store::OutboxOptions o;
    o.path = dir.file("outbox.db");
    o.min_free_bytes = 0;
    o.vfs = kVfsName;
    g = State{};
    g.cut_at = -1;
    auto ob = store::Outbox::open(o);
    REQUIRE(ob.ok());
    Run run;
    long before = g.ops;
    g.cut_at = 1L << 40;  // counting, never cutting
    drive(**ob, run, rng, 40);
    ops_per_run = g.ops - before;
    g = State{};
  }
  REQUIRE(ops_per_run > 50);

  int cuts = 0, reopened_with_rows = 0;
  std::size_t checked = 0;
  for (int i = 0; i < 1000; ++i) {
    test::TempDir dir;
    store::OutboxOptions o;
    o.path = dir.file("outbox.db");
    o.min_free_bytes = 0;
    o.vfs = kVfsName;
    Run run;
    // A first life up to a cut somewhere, a second life after it (its own
    // cut too, half of the time), then the check.
    for (int life = 0; life < 2; ++life) {
      g.cut_at = life == 1 && rng() % 2 ? -1 : static_cast<long>(1 + rng() % static_cast<unsigned>(ops_per_run));
      {
        auto ob = store::Outbox::open(o);
        if (!ob) {
          // The power went while it opened: that is a cut too.
          REQUIRE(g.dead);
        } else {
          INFO("cut " << i << " life " << life);
          REQUIRE((*ob)->stats().recovered_from.empty());  // never a salvage: the store was intact
          // Everything acknowledged before is there (also after the first life's cut).
          std::set<std::pair<std::string, std::uint64_t>> present;
          REQUIRE((*ob)->for_each([&](const store::StoredRecord& r) {
                          present.emplace(r.source_id, r.seq);
                          return true;
                        })
                      .ok());
          for (const auto& a : run.acknowledged) {
            INFO("acknowledged " << a.first << " seq " << a.second);
            REQUIRE(present.count(a));
            REQUIRE((*ob)->last_seq(a.first) >= a.second);
          }
          checked += run.acknowledged.size();
          if (!present.empty()) ++reopened_with_rows;
          // The units resend from the store's last seq (its WELCOME).
          for (auto& [s, next] : run.next_seq) next = (*ob)->last_seq(s) + 1;
          drive(**ob, run, rng, 40);
        }
      }  // closed: with the power gone nothing more reaches the disk
      if (g.dead) ++cuts;
      lose_unsynced();
    }
    // The last check: the store after everything, with SQLite's full integrity check.
    {
      auto ob = store::Outbox::open(o);
      REQUIRE(ob.ok());
      REQUIRE((*ob)->stats().recovered_from.empty());
      std::set<std::pair<std::string, std::uint64_t>> present;
      REQUIRE((*ob)->for_each([&](const store::StoredRecord& r) {
                      present.emplace(r.source_id, r.seq);
                      return true;
                    })
                  .ok());
      for (const auto& a : run.acknowledged) REQUIRE(present.count(a));
      checked += run.acknowledged.size();
    }
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(o.path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    CHECK(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))) == "ok");
    sqlite3_finalize(st);
    sqlite3_close(db);
  }
  CHECK(cuts >= 1000);
  CHECK(reopened_with_rows > 500);
  CHECK(checked > 10000);
  std::printf("store power cuts: %d cuts, %zu acknowledged readings checked after them, all there\n", cuts, checked);
}
