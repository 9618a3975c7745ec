// libFuzzer target for gpsd's JSON reports: arbitrary bytes, split into lines,
// each decoded by libgps' JSON decoder as gps_unpack() (what gps_read() runs
// on a line) does, into
// one gps_data_t that persists across lines, as on a connection, then mapped
// by apply_gpsd_report() into two GpsdAssembler setups. Nothing may crash or
// hit UB in our code, and a Position handed out must be in range. libgps
// itself is not instrumented: its crashes show, its overreads may not.
// Run long: see docs/testing.md.
#include <gps.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "gpsd_report.h"

#include "eport/gnss/gpsd_mapping.h"

// libgps' JSON decoder (exported by libgps.so, declared in gpsd's private
// libgps.h). gps_unpack() calls it in a loop until the line is used up, and
// loops forever when it returns without advancing (found by this fuzzer on
// gpsd 3.22, Debian 12, e.g. {"class":"DEVICES","devices":[{"class":"DEVICE",5}]};
// see docs/testing.md), so the harness runs the same
// loop with a progress check instead of calling gps_unpack().
extern "C" int libgps_json_unpack(const char* buf, struct gps_data_t* gpsdata, const char** end);

namespace {

// gps_unpack() for a JSON line, stopping when the decoder makes no progress.
// Returns false when the line does not decode.
bool unpack_json(const std::string& line, gps_data_t& d) {
  if (line.empty() || line[0] != '{') return false;
  const char* next = line.c_str();
  while (next != nullptr && *next != '\0') {
    const char* before = next;
    if (libgps_json_unpack(next, &d, &next) == -1) return false;
    if (next == before) return false;  // gps_unpack() would spin here
  }
  return true;
}

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void check_reading(const eport::model::Reading& r, std::uint64_t& last_seq) {
  const auto& p = std::get<eport::model::Position>(r.payload);
  check(p.lat_e7 >= -900'000'000 && p.lat_e7 <= 900'000'000);
  check(p.lon_e7 >= -1'800'000'000 && p.lon_e7 <= 1'800'000'000);
  check(!p.heading_cdeg || *p.heading_cdeg < 36000);
  check(static_cast<unsigned>(p.fix) <= 8);
  check(p.fix != eport::model::FixQuality::kNoFix || r.source_id == "lenient");
  check(r.time_utc_ms > 0);
  check(r.seq == last_seq + 1);
  last_seq = r.seq;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  for (const bool strict : {true, false}) {
    eport::gnss::AssemblerOptions o;
    o.source_id = strict ? "strict" : "lenient";
    o.require_fix = strict;
    o.min_interval = std::chrono::milliseconds(strict ? 1000 : 0);
    std::uint64_t seq = 0;
    std::uint64_t last_seq = 0;
    eport::gnss::GpsdAssembler a(o, [&seq] { return ++seq; });
    gps_data_t d{};
    std::size_t pos = 0;
    while (pos < in.size()) {
      std::size_t end = in.find('\n', pos);
      if (end == std::string_view::npos) end = in.size();
      // gps_read() hands out at most its message buffer (4096 bytes with NUL).
      std::string line(in.substr(pos, std::min<std::size_t>(end - pos, 4095)));
      pos = end + 1;
      if (!unpack_json(line, d)) continue;
      if (auto r = eport::gnss::detail::apply_gpsd_report(a, d, line)) check_reading(*r, last_seq);
    }
    if (auto r = a.flush()) check_reading(*r, last_seq);
    check(a.counters().positions == seq);
  }
  return 0;
}
