// The zones file: a GeoJSON FeatureCollection (RFC 7946) with a top-level
// "version" string, one Feature per zone (Point + properties.radius_m: a
// circle; Polygon; LineString + properties.width_m: a corridor). The format,
// every property, every limit and every refusal: docs/geofences.md.
// All or nothing: a file yields a whole new ZoneSet or an error naming the
// feature (its index in "features", from 0, and its id when it has one) and
// what is wrong, e.g.
//   feature 3 (id "yangshan-2"): polygon ring 0 intersects itself (edge 1 crosses edge 3)
#pragma once

#include <string>
#include <string_view>

#include "eport/geofence/zones.h"
#include "eport/model/result.h"

namespace eport::geofence {

[[nodiscard]] Result<ZoneSet> parse_zones_file(std::string_view text);
// Reads and parses the file at path (at most kMaxFileBytes); errors start
// with the path.
[[nodiscard]] Result<ZoneSet> load_zones_file(const std::string& path);

}  // namespace eport::geofence
