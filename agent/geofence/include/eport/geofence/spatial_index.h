// The spatial index of a zone set: each zone is a spherical cap (its centre
// and its extent plus its buffer), filed in a uniform grid of
// kIndexCellDeg-degree cells (a sorted vector of (cell, zone) pairs, so it is
// compact and deterministic). A query returns, in ascending order, a
// superset of the zones whose cap holds the point (or overlaps the segment's
// cap), so 1,000 zones cost a binary search and a few dot products per fix.
// Zones near the poles or covering more than kMaxCellsPerZone cells are
// checked on every query instead.
// Thread-safety: immutable after construction; concurrent queries are fine.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "eport/geofence/geometry.h"

namespace eport::geofence {

struct Cap {
  Vec3 centre;
  double radius_rad = 0;  // angular radius
};

class SpatialIndex {
 public:
  SpatialIndex() = default;
  explicit SpatialIndex(std::vector<Cap> caps);

  // Zones (indices into the caps given) whose cap contains p, ascending.
  void query_point(const Vec3& p, std::vector<std::uint32_t>& out) const;
  // Zones whose cap overlaps `cap`, ascending.
  void query_cap(const Cap& cap, std::vector<std::uint32_t>& out) const;
  std::size_t zone_count() const { return caps_.size(); }
  std::size_t everywhere_count() const { return everywhere_.size(); }

 private:
  std::vector<Cap> caps_;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> cells_;  // (cell key, zone), sorted
  std::vector<std::uint32_t> everywhere_;                       // ascending
};

// The cap of the great-circle segment a-b: its midpoint and half its length.
Cap segment_cap(const Vec3& a, const Vec3& b);

}  // namespace eport::geofence
