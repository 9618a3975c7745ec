// The unit server's config keys ([bridge]: the section keeps the name
// operators know), one row per ServerOptions field, and the two files the
// section deals in: per-unit reporting intervals and the unit key file.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "eport/config/keys.h"
#include "eport/model/result.h"
#include "eport/units/server.h"

namespace eport::units {

const config::Keys<ServerOptions> & config_keys();

// bridge.unit_intervals entries "UNIT=POSITION_S/SENSOR_S" (blank entries
// skipped); the error names the entry that is wrong.
Result<std::map<std::string, Intervals>> parse_unit_intervals(const std::vector<std::string>& entries);
// The same in its comma-separated string form.
Result<std::map<std::string, Intervals>> parse_unit_intervals(std::string_view text);

// The unit key file (bridge.unit_keys; docs/security.md): one unit per
// line, "UNIT_ID HEX" with a topic-safe unit id and 64 hex digits (a 32-byte
// key); blank lines and lines starting with '#' are skipped. Refused, naming
// the line, for any other line, a unit listed twice, or a file that every
// local user may read. Map: unit id -> key.
Result<std::map<std::string, std::array<std::uint8_t, 32>>> read_unit_keys(const std::string& path);

}  // namespace eport::units
