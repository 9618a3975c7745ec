// Equirectangular distance: the longitude difference is wrapped to
// -180..180 degrees so that two fixes either side of the antimeridian are
// close, and scaled by the cosine of the mean latitude.
#include "geo.h"

#include <cmath>

namespace eport::custody::geo {
namespace {
constexpr double kEarthRadiusM = 6371008.8;  // mean radius (IUGG)
constexpr double kE7ToRad = 3.14159265358979323846 / 180.0 / 1e7;
constexpr std::int64_t kFullTurnE7 = 3600000000;
}  // namespace

double distance_m(std::int32_t lat1_e7, std::int32_t lon1_e7, std::int32_t lat2_e7, std::int32_t lon2_e7) {
  std::int64_t dlon = std::int64_t{lon2_e7} - lon1_e7;
  if (dlon > kFullTurnE7 / 2) dlon -= kFullTurnE7;
  if (dlon < -kFullTurnE7 / 2) dlon += kFullTurnE7;
  const double mean_lat = (static_cast<double>(lat1_e7) + static_cast<double>(lat2_e7)) / 2.0 * kE7ToRad;
  const double x = static_cast<double>(dlon) * kE7ToRad * std::cos(mean_lat);
  const double y = static_cast<double>(std::int64_t{lat2_e7} - lat1_e7) * kE7ToRad;
  return kEarthRadiusM * std::sqrt(x * x + y * y);
}

}  // namespace eport::custody::geo
