// FixAssembler: merges the NMEA sentences of one receiver epoch (same UTC
// time) into one eport::model::Reading with a Position payload. Fed line by
// line by the serial source, the fuzzer and the tests; no I/O, no threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "eport/gnss/counters.h"
#include "eport/gnss/nmea.h"
#include "eport/model/reading.h"

namespace eport::gnss {

namespace detail {
// The sentences gathered for one receiver time (FixAssembler's state).
// Outside the class: clang rejects optional<nested struct with default
// member initialisers> inside its enclosing class.
struct AssemblerEpoch {
  std::uint32_t time_ms = 0;
  std::optional<Gga> gga;
  std::optional<Rmc> rmc;
  std::optional<Vtg> vtg;
  std::optional<std::uint8_t> gsa_fix_type;
  std::optional<std::uint16_t> gsa_hdop_centi;
  unsigned gsa_used = 0;
};
}  // namespace detail

// Returns the next sequence number for the gateway's own readings. Called
// exactly once per reading handed out, never for skipped epochs. The agent
// owns and persists the counter.
using SeqSource = std::function<std::uint64_t()>;

struct AssemblerOptions {
  std::string source_id;  // the gateway's id, <= 32 bytes (copied into each Reading)
  // Hand out only epochs with a fix (quality != 0). Off: epochs that have
  // coordinates but no fix are handed out too, with fix = kNoFix. An epoch
  // without coordinates is never handed out.
  bool require_fix = true;
  // At most one position per this much receiver time; 0 = every epoch.
  std::chrono::milliseconds min_interval{1000};
  ParseOptions parse;
};

// How the fields of an epoch are chosen (details in docs/gnss.md):
//   time     RMC date (else the last date seen, rolled over at midnight) + time
//   lat/lon  GGA, else RMC
//   fix      GGA quality, else RMC status/mode, else GSA fix type
//   speed    VTG (km/h, else knots), else RMC
//   heading  VTG, else RMC
//   sats     GGA, else the sum of the GSA id lists of the epoch
//   hdop     GGA, else GSA
// An epoch opens with the first GGA or RMC carrying a new time and closes
// when one with another time arrives (or on flush()): a position is handed
// out one epoch late. VTG, GSA (and GSV, which is only counted) attach to the
// open epoch.
class FixAssembler {
 public:
  FixAssembler(AssemblerOptions options, SeqSource next_seq);

  // Parses one line (counted in counters().rejected when bad) and feeds it.
  // Returns the reading of the epoch this line closed, if any.
  std::optional<model::Reading> feed_line(std::string_view line);
  std::optional<model::Reading> feed(const Sentence& sentence);
  // Closes the open epoch (end of input, source stopping).
  std::optional<model::Reading> flush();

  const GnssCounters& counters() const { return counters_; }
  GnssCounters& counters() { return counters_; }
  const AssemblerOptions& options() const { return options_; }

 private:
  using Epoch = detail::AssemblerEpoch;

  std::optional<model::Reading> open_epoch(std::uint32_t time_ms);
  std::optional<model::Reading> close_epoch();

  AssemblerOptions options_;
  SeqSource next_seq_;
  GnssCounters counters_;
  std::optional<Epoch> epoch_;
  std::optional<std::uint32_t> last_closed_time_ms_;
  std::optional<std::uint64_t> last_epoch_utc_ms_;  // last epoch whose date was known
  std::optional<std::uint64_t> last_emitted_ms_;
};

}  // namespace eport::gnss
