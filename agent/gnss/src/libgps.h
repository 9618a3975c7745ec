// The six libgps functions GpsdSource calls, loaded with dlopen() when a
// gpsd source first connects, not linked: the agent then maps libgps and
// what it pulls in (libdbus, libsystemd and theirs, about 1.1 MiB resident
// together with eport::systemd's former libsystemd; docs/benchmarks.md,
// memory budget) only on a gateway with gnss.source = "gpsd". The soname is
// the one the build found (EPORT_LIBGPS_SONAME, read from libgps.so by
// CMake), so the structures of the gps.h compiled against match the library.
#pragma once

#include <gps.h>

#include <mutex>
#include <optional>

#include "eport/model/result.h"

namespace eport::gnss::detail {

struct LibGps {
  decltype(&::gps_open) open;
  decltype(&::gps_close) close;
  decltype(&::gps_stream) stream;
  decltype(&::gps_read) read;
  decltype(&::gps_waiting) waiting;
  decltype(&::gps_errstr) errstr;
};

// Loads libgps (EPORT_LIBGPS_SONAME) once per process: later calls return
// the same table. A failure is not kept ("libgps.so.28 could not be loaded
// (<dlerror>): install libgps28"): the next call tries again, so a libgps
// installed while the agent runs is picked up by gnss_runner's next retry.
// Thread-safe; the library stays loaded until the process ends.
Result<const LibGps*> libgps();

// One attempt at `soname`, not kept.
Result<LibGps> load_libgps(const char* soname);

// What libgps() keeps: the first table that loaded; a failure is not kept,
// so the next get() tries again. Thread-safe.
class LibGpsOnce {
 public:
  Result<const LibGps*> get(const char* soname);

 private:
  std::mutex mu_;
  std::optional<LibGps> loaded_;
};

}  // namespace eport::gnss::detail
