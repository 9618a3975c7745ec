// UnitSettings: the one thing the rest of the agent may ask of the unit
// server besides readings: change units' reporting intervals. Cloud commands
// (SetIntervals) reach the units through this narrow interface, so the
// command handler depends on it alone and not on the whole Server.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "eport/model/result.h"

namespace eport::units {

class UnitSettings {
 public:
  virtual ~UnitSettings() = default;
  // Sets the reporting intervals (0 = unchanged) of one unit, or of every
  // unit when unit_id is empty, and tells the units connected now. Any
  // thread; returns how many connected units it went to, or an error (e.g.
  // the server is not running).
  virtual Result<std::size_t> push_settings(const std::string& unit_id, std::uint32_t position_interval_s,
                                            std::uint32_t sensor_interval_s) = 0;
};

}  // namespace eport::units
