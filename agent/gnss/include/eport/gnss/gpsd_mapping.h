// GpsdAssembler: turns gpsd's TPV and SKY reports (as libgps decodes them)
// into Position readings, one per fix time, with the same options and
// counters as FixAssembler. Pure code without libgps, so it is unit-tested
// here; GpsdSource (eport_gnss_gpsd) feeds it from a gpsd connection.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>

#include "eport/gnss/counters.h"
#include "eport/gnss/fix_assembler.h"
#include "eport/model/reading.h"

namespace eport::gnss {

// The TPV fields used, in libgps units. Doubles are NaN when gpsd left them
// out. mode and status carry gps.h's MODE_* and STATUS_* values.
struct GpsdTpv {
  int mode = 0;    // 0 not seen, 1 no fix, 2 2D, 3 3D
  int status = 0;  // 0 unknown/no fix, 1 fix, 2 DGPS, 3 RTK fixed, 4 RTK float,
                   // 5 DR, 6 GNSS+DR, 7 time only, 8 simulated, 9 P(Y)
  std::optional<std::uint64_t> time_utc_ms;  // empty when gpsd has no time
  double lat_deg = NAN;
  double lon_deg = NAN;
  double speed_m_s = NAN;
  double track_deg = NAN;  // true course
};

struct GpsdSky {
  double hdop = NAN;
  int satellites_used = -1;  // -1: not reported
};

// Maps gpsd's fix status to the model's NMEA-numbered quality.
model::FixQuality fix_from_gpsd(int mode, int status);

class GpsdAssembler {
 public:
  // options.parse is not used.
  GpsdAssembler(AssemblerOptions options, SeqSource next_seq);

  // gpsd sends several TPVs per epoch as sentences arrive; the last one for
  // a time wins. Returns the reading of the previous epoch when the time
  // changes.
  std::optional<model::Reading> on_tpv(const GpsdTpv& tpv);
  // SKY for the epoch of the latest TPV.
  void on_sky(const GpsdSky& sky);
  std::optional<model::Reading> flush();

  const GnssCounters& counters() const { return counters_; }

 private:
  AssemblerOptions options_;
  SeqSource next_seq_;
  GnssCounters counters_;
  std::optional<GpsdTpv> tpv_;
  GpsdSky sky_;
  std::optional<std::uint64_t> last_closed_ms_;
  std::optional<std::uint64_t> last_emitted_ms_;
};

}  // namespace eport::gnss
