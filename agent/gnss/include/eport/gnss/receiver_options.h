// The gateway's own GNSS receiver as the agent's config describes it
// ([gnss]): which source, its device or gpsd address, and what is kept. One
// default per field, read by the key rows (src/config_keys.cpp); the agent's
// GNSS runner turns it into a Source.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "eport/config/keys.h"

namespace eport::gnss {

enum class SourceKind { kNone, kSerial, kGpsd };

struct ReceiverOptions {
  SourceKind source = SourceKind::kNone;
  std::string device = "/dev/ttyACM0";  // kSerial: NMEA 0183 receiver tty
  int baud = 9600;                      // kSerial: a rate is_supported_baud() accepts
  std::string gpsd_host = "127.0.0.1";  // kGpsd
  std::uint16_t gpsd_port = 2947;
  std::chrono::milliseconds min_interval{1000};  // at most one position per this much receiver time
  bool require_fix = true;
  bool require_checksum = true;
};

const config::Keys<ReceiverOptions>& config_keys();

}  // namespace eport::gnss
