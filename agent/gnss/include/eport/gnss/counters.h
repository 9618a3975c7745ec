// Counters kept by the GNSS sources: lines rejected per reason, epochs seen,
// positions emitted and why epochs were skipped. Plain values; each source
// hands out a copy (see its counters() for thread-safety).
#pragma once

#include <array>
#include <cstdint>
#include <numeric>

#include "eport/gnss/nmea.h"

namespace eport::gnss {

struct GnssCounters {
  // Input
  std::uint64_t lines = 0;           // lines handed to the parser
  std::uint64_t sentences = 0;       // lines parsed into a sentence
  std::array<std::uint64_t, kRejectReasonCount> rejected{};  // by RejectReason
  std::uint64_t overlong_lines = 0;  // serial: dropped before parsing (line buffer full)
  // Epochs (one receiver time each)
  std::uint64_t epochs = 0;            // closed epochs
  std::uint64_t positions = 0;         // readings handed out
  std::uint64_t skipped_no_fix = 0;    // no fix (require_fix) or no coordinates
  std::uint64_t skipped_no_date = 0;   // no RMC date seen yet: time unknown
  std::uint64_t skipped_interval = 0;  // closer than min_interval to the last position
  std::uint64_t stale_sentences = 0;   // time of an epoch already closed, or no epoch open
  std::uint64_t time_went_back = 0;    // a position older than the previous one (receiver reset)

  std::uint64_t rejected_total() const {
    return std::accumulate(rejected.begin(), rejected.end(), std::uint64_t{0});
  }
  std::uint64_t rejected_for(RejectReason r) const { return rejected[static_cast<std::size_t>(r)]; }
  bool operator==(const GnssCounters&) const = default;
};

}  // namespace eport::gnss
