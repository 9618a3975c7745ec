// Distances between two fixes for the custody detectors: metres on a local
// equirectangular projection, exact enough for the tens to thousands of
// metres that motion debouncing compares (error < 0.1 % below 10 km).
#pragma once

#include <cstdint>

namespace eport::custody::geo {

// Distance in metres between two points given in degrees * 1e7.
double distance_m(std::int32_t lat1_e7, std::int32_t lon1_e7, std::int32_t lat2_e7, std::int32_t lon2_e7);

}  // namespace eport::custody::geo
