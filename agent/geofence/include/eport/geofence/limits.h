// Every limit and default of eport::geofence in one place: the zones file's
// size and shape caps, the property ranges and defaults, and the geometric
// tolerances. docs/geofences.md quotes these numbers; change them here only.
#pragma once

#include <cstddef>
#include <cstdint>

namespace eport::geofence {

// Mean Earth radius (IUGG), metres. All distances are on this sphere.
inline constexpr double kEarthRadiusM = 6371008.8;

// --- zones file ---
inline constexpr std::size_t kMaxFileBytes = 4 * 1024 * 1024;
inline constexpr std::size_t kMaxZones = 2000;
inline constexpr std::size_t kMaxVerticesPerZone = 2000;    // all rings of a polygon, or a corridor's line
inline constexpr std::size_t kMaxTotalVertices = 200000;
inline constexpr std::size_t kMaxJsonDepth = 16;             // GeoJSON polygons need 7
inline constexpr std::size_t kMaxIdBytes = 64;               // properties.id, topic-safe
inline constexpr std::size_t kMaxNameBytes = 128;            // properties.name, UTF-8
inline constexpr std::size_t kMaxVersionBytes = 64;          // top-level "version", printable ASCII

// --- zone size ---
// No boundary point of a zone lies farther than this from the zone's centre
// (great-circle): keeps the projection error below 2.5e-4 of a distance.
inline constexpr double kMaxZoneExtentM = 100000.0;
inline constexpr double kMaxRadiusM = 100000.0;        // circles: 0 < radius_m <= this
inline constexpr double kMaxCorridorWidthM = 10000.0;  // corridors: 0 < width_m <= this

// --- per-zone properties: defaults and ranges ---
inline constexpr double kDefaultBufferM = 25.0;  // hysteresis
inline constexpr double kMaxBufferM = 1000.0;    // 0 <= buffer_m <= this
inline constexpr std::uint32_t kDefaultDwellS = 60;
inline constexpr std::uint32_t kMaxDwellS = 86400;  // 0 <= dwell_s <= this, whole seconds
inline constexpr double kDefaultMaxHdop = 5.0;
inline constexpr double kMaxMaxHdop = 99.0;  // 0 < max_hdop <= this

// --- geometry ---
// A point this close to a zone's boundary (or closer) counts as inside:
// coordinates have a resolution of 1e-7 degrees (1.1 cm), so "on the
// boundary" cannot mean exactly on it.
inline constexpr double kOnBoundaryM = 0.05;
// Crossings are looked for only on segments between two fixes at most this
// far apart (great-circle); longer gaps say nothing about the path taken.
inline constexpr double kMaxCrossingSegmentM = 50000.0;
// The crossing search marches along the segment; at most this many distance
// evaluations (steps and bisections) per zone and segment, so the work is
// bounded whatever the shape (a segment along an edge included).
inline constexpr std::size_t kMaxCrossingSteps = 20000;

// --- spatial index ---
inline constexpr double kIndexCellDeg = 0.25;          // grid cell, degrees of latitude and longitude
inline constexpr std::size_t kMaxCellsPerZone = 4096;  // a zone covering more cells is checked for every fix
inline constexpr double kIndexPolarLatDeg = 85.0;      // zones reaching beyond this latitude likewise

}  // namespace eport::geofence
