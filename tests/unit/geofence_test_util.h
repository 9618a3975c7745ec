// Helpers of the geofence tests: positions from degrees, points offset by
// metres (great-circle destination, so they work near the poles too), fixes,
// seeded GPS noise and journeys along waypoints.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "eport/geofence/geometry.h"
#include "eport/geofence/limits.h"
#include "eport/geofence/tracker.h"

namespace geofence_test {

using eport::geofence::LatLonE7;

constexpr double kPi = 3.14159265358979323846;

inline LatLonE7 ll(double lat, double lon) {
  return {static_cast<std::int32_t>(std::llround(lat * 1e7)), static_cast<std::int32_t>(std::llround(lon * 1e7))};
}
inline double lat_of(LatLonE7 p) { return p.lat_e7 / 1e7; }
inline double lon_of(LatLonE7 p) { return p.lon_e7 / 1e7; }

// The point distance_m from `from` on initial bearing bearing_deg (0 north, 90 east).
inline LatLonE7 destination(LatLonE7 from, double bearing_deg, double distance_m) {
  const double lat1 = lat_of(from) * kPi / 180, lon1 = lon_of(from) * kPi / 180;
  const double d = distance_m / eport::geofence::kEarthRadiusM, b = bearing_deg * kPi / 180;
  const double lat2 = std::asin(std::sin(lat1) * std::cos(d) + std::cos(lat1) * std::sin(d) * std::cos(b));
  double lon2 = lon1 + std::atan2(std::sin(b) * std::sin(d) * std::cos(lat1), std::cos(d) - std::sin(lat1) * std::sin(lat2));
  lon2 = std::remainder(lon2, 2 * kPi);
  return ll(lat2 * 180 / kPi, lon2 * 180 / kPi);
}
inline LatLonE7 offset(LatLonE7 from, double east_m, double north_m) {
  const double dist = std::hypot(east_m, north_m);
  if (dist == 0) return from;
  return destination(from, std::atan2(east_m, north_m) * 180 / kPi, dist);
}
inline double distance_m(LatLonE7 a, LatLonE7 b) {
  return eport::geofence::great_circle_m(eport::geofence::unit_vector(a), eport::geofence::unit_vector(b));
}

// Initial great-circle bearing from a to b, degrees.
inline double bearing_deg(LatLonE7 a, LatLonE7 b) {
  const double p1 = lat_of(a) * kPi / 180, p2 = lat_of(b) * kPi / 180, dl = (lon_of(b) - lon_of(a)) * kPi / 180;
  return std::atan2(std::sin(dl) * std::cos(p2), std::cos(p1) * std::sin(p2) - std::sin(p1) * std::cos(p2) * std::cos(dl)) *
         180 / kPi;
}

inline eport::geofence::Fix fix(std::uint64_t seq, std::uint64_t time_ms, LatLonE7 at, double hdop = 1.0,
                                eport::model::FixQuality q = eport::model::FixQuality::kGps) {
  eport::geofence::Fix f;
  f.seq = seq;
  f.time_utc_ms = time_ms;
  f.position.lat_e7 = at.lat_e7;
  f.position.lon_e7 = at.lon_e7;
  f.position.fix = q;
  f.position.satellites = 8;
  f.position.hdop_centi = static_cast<std::uint16_t>(std::lround(hdop * 100));
  return f;
}

// A point uniformly distributed in the disc of radius_m around `at`.
inline LatLonE7 jitter(std::mt19937_64& rng, LatLonE7 at, double radius_m) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const double r = radius_m * std::sqrt(u(rng)), a = 2 * kPi * u(rng);
  return offset(at, r * std::cos(a), r * std::sin(a));
}

// Positions every interval_s along waypoints at speed_m_s, pausing pause_s
// at each waypoint; with GPS noise up to noise_m.
inline std::vector<eport::geofence::Fix> journey(const std::vector<LatLonE7>& waypoints, double speed_m_s,
                                                 double interval_s, double pause_s, std::uint64_t start_ms,
                                                 std::uint64_t seed, double noise_m = 5.0) {
  std::mt19937_64 rng(seed);
  std::vector<eport::geofence::Fix> out;
  std::uint64_t seq = 1;
  double t = 0;
  auto emit = [&](LatLonE7 p) {
    out.push_back(fix(seq++, start_ms + static_cast<std::uint64_t>(t * 1000), jitter(rng, p, noise_m)));
    t += interval_s;
  };
  for (std::size_t w = 0; w + 1 < waypoints.size(); ++w) {
    const double leg = distance_m(waypoints[w], waypoints[w + 1]);
    const double bearing = bearing_deg(waypoints[w], waypoints[w + 1]);
    for (double pause = 0; pause < pause_s; pause += interval_s) emit(waypoints[w]);
    for (double s = 0; s < leg; s += speed_m_s * interval_s) emit(destination(waypoints[w], bearing, s));
  }
  emit(waypoints.back());
  return out;
}

}  // namespace geofence_test
