// The uniform-grid index of zone caps (eport/geofence/spatial_index.h).
// Cells are kIndexCellDeg square in latitude/longitude, keyed
// row * columns + column; longitudes wrap, so a cap across the antimeridian
// is filed in the cells on both sides.
#include "eport/geofence/spatial_index.h"

#include <algorithm>
#include <cmath>

#include "eport/geofence/limits.h"

namespace eport::geofence {

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kDeg = 180.0 / kPi;
const std::int64_t kRows = static_cast<std::int64_t>(std::lround(180.0 / kIndexCellDeg));
const std::int64_t kColumns = static_cast<std::int64_t>(std::lround(360.0 / kIndexCellDeg));
constexpr double kSlackRad = 1e-9;  // rounding margin on every cap

double dot(const Vec3& a, const Vec3& b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
double lat_deg(const Vec3& p) { return std::asin(std::clamp(p.z, -1.0, 1.0)) * kDeg; }
double lon_deg(const Vec3& p) { return std::atan2(p.y, p.x) * kDeg; }

std::int64_t row_of(double lat) {
  return std::clamp(static_cast<std::int64_t>(std::floor((lat + 90.0) / kIndexCellDeg)), std::int64_t{0}, kRows - 1);
}
std::int64_t column_of(double lon) {
  const auto c = static_cast<std::int64_t>(std::floor((lon + 180.0) / kIndexCellDeg));
  return ((c % kColumns) + kColumns) % kColumns;
}
std::uint32_t key(std::int64_t row, std::int64_t column) { return static_cast<std::uint32_t>(row * kColumns + column); }

// The cells a cap touches, or false if it should be checked everywhere.
bool cells_of(const Cap& cap, std::vector<std::uint32_t>& out) {
  const double lat = lat_deg(cap.centre), lon = lon_deg(cap.centre);
  const double r = cap.radius_rad * kDeg;
  if (lat + r >= kIndexPolarLatDeg || lat - r <= -kIndexPolarLatDeg) return false;
  // The longitude half-width of a cap: sin(dlon) = sin(r) / cos(lat).
  const double s = std::sin(cap.radius_rad) / std::cos(lat / kDeg);
  if (s >= 1.0) return false;
  const double dlon = std::asin(s) * kDeg;
  const std::int64_t r0 = row_of(lat - r), r1 = row_of(lat + r);
  const auto c0 = static_cast<std::int64_t>(std::floor((lon - dlon + 180.0) / kIndexCellDeg));
  const auto c1 = static_cast<std::int64_t>(std::floor((lon + dlon + 180.0) / kIndexCellDeg));
  const std::int64_t columns = std::min(c1 - c0 + 1, kColumns);
  if (static_cast<std::uint64_t>((r1 - r0 + 1) * columns) > kMaxCellsPerZone) return false;
  for (std::int64_t row = r0; row <= r1; ++row) {
    for (std::int64_t k = 0; k < columns; ++k) out.push_back(key(row, (((c0 + k) % kColumns) + kColumns) % kColumns));
  }
  return true;
}

bool caps_overlap(const Cap& a, const Cap& b) {
  const double reach = a.radius_rad + b.radius_rad + 2 * kSlackRad;
  if (reach >= kPi) return true;
  return dot(a.centre, b.centre) >= std::cos(reach);
}

}  // namespace

SpatialIndex::SpatialIndex(std::vector<Cap> caps) : caps_(std::move(caps)) {
  std::vector<std::uint32_t> cells;
  for (std::uint32_t z = 0; z < caps_.size(); ++z) {
    cells.clear();
    Cap padded = caps_[z];
    padded.radius_rad += kSlackRad;
    if (!cells_of(padded, cells)) {
      everywhere_.push_back(z);
      continue;
    }
    for (auto c : cells) cells_.emplace_back(c, z);
  }
  std::sort(cells_.begin(), cells_.end());
  cells_.erase(std::unique(cells_.begin(), cells_.end()), cells_.end());
}

void SpatialIndex::query_point(const Vec3& p, std::vector<std::uint32_t>& out) const {
  out.clear();
  const std::uint32_t k = key(row_of(lat_deg(p)), column_of(lon_deg(p)));
  auto lo = std::lower_bound(cells_.begin(), cells_.end(), std::make_pair(k, std::uint32_t{0}));
  auto keep = [&](std::uint32_t z) {
    const Cap& c = caps_[z];
    return c.radius_rad + kSlackRad >= kPi || dot(p, c.centre) >= std::cos(c.radius_rad + kSlackRad);
  };
  // Merge the cell's zones and the everywhere list, both ascending.
  auto e = everywhere_.begin();
  for (; lo != cells_.end() && lo->first == k; ++lo) {
    for (; e != everywhere_.end() && *e < lo->second; ++e) {
      if (keep(*e)) out.push_back(*e);
    }
    if (keep(lo->second)) out.push_back(lo->second);
  }
  for (; e != everywhere_.end(); ++e) {
    if (keep(*e)) out.push_back(*e);
  }
}

void SpatialIndex::query_cap(const Cap& cap, std::vector<std::uint32_t>& out) const {
  out.clear();
  std::vector<std::uint32_t> cells;
  Cap padded = cap;
  padded.radius_rad += kSlackRad;
  if (!cells_of(padded, cells)) {
    for (std::uint32_t z = 0; z < caps_.size(); ++z) {
      if (caps_overlap(caps_[z], cap)) out.push_back(z);
    }
    return;
  }
  for (auto k : cells) {
    auto lo = std::lower_bound(cells_.begin(), cells_.end(), std::make_pair(k, std::uint32_t{0}));
    for (; lo != cells_.end() && lo->first == k; ++lo) {
      if (caps_overlap(caps_[lo->second], cap)) out.push_back(lo->second);
    }
  }
  for (auto z : everywhere_) {
    if (caps_overlap(caps_[z], cap)) out.push_back(z);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
}

Cap segment_cap(const Vec3& a, const Vec3& b) {
  Vec3 mid{a.x + b.x, a.y + b.y, a.z + b.z};
  const double n = std::sqrt(dot(mid, mid));
  if (!(n > 1e-12)) return {a, kPi};  // antipodal: everything
  mid = {mid.x / n, mid.y / n, mid.z / n};
  return {mid, great_circle_m(a, b) / 2 / kEarthRadiusM};
}

}  // namespace eport::geofence
