// A zone set: the zones in force, each with its geometry and tracker rules
// (buffer, dwell, HDOP gate), sorted by id, with its version string and its
// spatial index. Built all at once (zones_file.h parses one from GeoJSON);
// never modified afterwards, so a tracker can hold it by shared_ptr while a
// new set is parsed elsewhere.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "eport/geofence/geometry.h"
#include "eport/geofence/limits.h"
#include "eport/geofence/spatial_index.h"
#include "eport/model/result.h"

namespace eport::geofence {

struct Zone {
  std::string id;    // topic-safe (model::topic_id_problem), at most kMaxIdBytes
  std::string name;  // for people, UTF-8, at most kMaxNameBytes
  Geometry geometry;
  double buffer_m = kDefaultBufferM;                           // hysteresis distance
  std::chrono::seconds dwell{kDefaultDwellS};                  // minimum stay before an ENTRY counts
  std::uint16_t max_hdop_centi = static_cast<std::uint16_t>(kDefaultMaxHdop * 100);  // HDOP gate * 100
};

class ZoneSet {
 public:
  // Sorts the zones by id and builds the index. Refused: duplicate ids.
  static Result<ZoneSet> create(std::string version, std::vector<Zone> zones);

  const std::string& version() const { return version_; }
  const std::vector<Zone>& zones() const { return zones_; }  // sorted by id
  // The position of zone `id` in zones(), or -1.
  std::ptrdiff_t find(std::string_view id) const;
  std::size_t vertex_count() const;

  // Indices (ascending, so in id order) of every zone that p is within
  // buffer_m of, or inside, and possibly a few more. A zone not listed is
  // more than its buffer_m outside.
  void candidates(const Vec3& p, std::vector<std::uint32_t>& out) const { index_.query_point(p, out); }
  // The same for every point of the great-circle segment a-b.
  void candidates_along(const Vec3& a, const Vec3& b, std::vector<std::uint32_t>& out) const {
    index_.query_cap(segment_cap(a, b), out);
  }

 private:
  std::string version_;
  std::vector<Zone> zones_;
  SpatialIndex index_;
};

}  // namespace eport::geofence
