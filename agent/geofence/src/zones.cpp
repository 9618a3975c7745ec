// ZoneSet (eport/geofence/zones.h): sorting by id, the duplicate-id check and
// the caps that feed the spatial index (extent + buffer + 1 m).
#include "eport/geofence/zones.h"

#include <algorithm>

namespace eport::geofence {

Result<ZoneSet> ZoneSet::create(std::string version, std::vector<Zone> zones) {
  std::stable_sort(zones.begin(), zones.end(), [](const Zone& a, const Zone& b) { return a.id < b.id; });
  for (std::size_t i = 1; i < zones.size(); ++i) {
    if (zones[i].id == zones[i - 1].id) return Error{"duplicate zone id \"" + zones[i].id + "\""};
  }
  ZoneSet set;
  set.version_ = std::move(version);
  std::vector<Cap> caps;
  caps.reserve(zones.size());
  for (const auto& z : zones) {
    caps.push_back({z.geometry.centre(), (z.geometry.extent_m() + z.buffer_m + 1.0) / kEarthRadiusM});
  }
  set.zones_ = std::move(zones);
  set.index_ = SpatialIndex(std::move(caps));
  return set;
}

std::ptrdiff_t ZoneSet::find(std::string_view id) const {
  auto it = std::lower_bound(zones_.begin(), zones_.end(), id, [](const Zone& z, std::string_view k) { return z.id < k; });
  if (it == zones_.end() || it->id != id) return -1;
  return it - zones_.begin();
}

std::size_t ZoneSet::vertex_count() const {
  std::size_t n = 0;
  for (const auto& z : zones_) n += z.geometry.vertex_count();
  return n;
}

}  // namespace eport::geofence
