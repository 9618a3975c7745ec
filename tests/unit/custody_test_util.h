// Helpers of the custody tests: readings made to order, a deterministic
// noise source (same numbers on every platform), a parked unit with GPS
// noise, a truck journey with known departure and arrival times, and a
// reefer temperature trace.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "eport/model/reading.h"

namespace eport::test::custody {

inline constexpr std::uint64_t kT0 = 1795000000000ull;  // 2026-11-17, ms
inline constexpr std::int32_t kYardLat = 309000000;     // 30.9 N (Yangshan-ish)
inline constexpr std::int32_t kYardLon = 1220800000;    // 122.08 E
// E7 units per metre at the yard's latitude.
inline constexpr double kLatPerM = 89.932;
inline constexpr double kLonPerM = 104.77;

// splitmix64: a fixed sequence of numbers, whatever the standard library.
class Noise {
 public:
  explicit Noise(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [lo, hi].
  double uniform(double lo, double hi) { return lo + (hi - lo) * static_cast<double>(next() >> 11) / 9007199254740991.0; }

 private:
  std::uint64_t s_;
};

inline model::Reading position(const std::string& src, std::uint64_t seq, std::uint64_t t_ms, std::int32_t lat,
                               std::int32_t lon, std::optional<std::uint16_t> speed_cm_s,
                               model::FixQuality fix = model::FixQuality::kGps,
                               std::optional<std::uint16_t> hdop = std::uint16_t{90}) {
  model::Position p;
  p.lat_e7 = lat;
  p.lon_e7 = lon;
  p.speed_cm_s = speed_cm_s;
  p.fix = fix;
  p.hdop_centi = hdop;
  p.satellites = 9;
  return model::Reading{src, "MSKU1234565", seq, t_ms, p, model::TimeSource::kSource};
}

inline model::Reading temperature(const std::string& src, std::uint64_t seq, std::uint64_t t_ms,
                                  std::optional<std::int16_t> centi_c, std::optional<std::int16_t> setpoint) {
  model::SensorSample s;
  s.temperature_centi_c = centi_c;
  s.reefer_setpoint_centi_c = setpoint;
  s.battery_mv = 3600;
  return model::Reading{src, "MSKU1234565", seq, t_ms, s, model::TimeSource::kSource};
}

// A fix within +/- noise_m metres (north and east each) of (lat, lon), with
// a speed field jittering in 0..max_speed_cm_s.
inline model::Reading noisy_fix(Noise& n, const std::string& src, std::uint64_t seq, std::uint64_t t_ms,
                                std::int32_t lat, std::int32_t lon, double noise_m = 15,
                                double max_speed_cm_s = 100) {
  const auto dlat = static_cast<std::int32_t>(n.uniform(-noise_m, noise_m) * kLatPerM);
  const auto dlon = static_cast<std::int32_t>(n.uniform(-noise_m, noise_m) * kLonPerM);
  const auto speed = static_cast<std::uint16_t>(n.uniform(0, max_speed_cm_s));
  return position(src, seq, t_ms, lat + dlat, lon + dlon, speed);
}

// A truck parked in the yard for 5 min (1 Hz fixes, +/- 15 m, speed 0..1
// m/s), leaving at departure_ms (accelerating 1 m/s per second to 10 m/s,
// eastwards), driving 10 min, braking to a halt at arrival_ms and parked
// there for 10 min. Seqs from first_seq.
struct Journey {
  std::vector<model::Reading> readings;
  std::uint64_t departure_ms = 0;  // the first fix with speed > 0 that is not jitter
  std::uint64_t arrival_ms = 0;    // the first fix of the parked phase at the destination
};

inline Journey journey(const std::string& src, std::uint64_t seed, std::uint64_t t0 = kT0,
                       std::uint64_t first_seq = 1) {
  Noise n(seed);
  Journey j;
  std::uint64_t seq = first_seq, t = t0;
  for (int i = 0; i < 300; ++i, t += 1000) j.readings.push_back(noisy_fix(n, src, seq++, t, kYardLat, kYardLon));
  j.departure_ms = t;
  double east_m = 0, speed = 0;
  for (int i = 0; i < 600 + 10; ++i, t += 1000) {
    speed = i < 10 ? i + 1 : (i >= 600 ? 10.0 - (i - 600 + 1) : 10.0);
    east_m += speed;
    const auto lon = kYardLon + static_cast<std::int32_t>(east_m * kLonPerM + n.uniform(-3, 3) * kLonPerM);
    const auto lat = kYardLat + static_cast<std::int32_t>(n.uniform(-3, 3) * kLatPerM);
    j.readings.push_back(position(src, seq++, t, lat, lon, static_cast<std::uint16_t>(speed * 100)));
  }
  j.arrival_ms = t;
  const auto dest_lon = kYardLon + static_cast<std::int32_t>(east_m * kLonPerM);
  for (int i = 0; i < 600; ++i, t += 1000) j.readings.push_back(noisy_fix(n, src, seq++, t, kYardLat, dest_lon));
  return j;
}

}  // namespace eport::test::custody
