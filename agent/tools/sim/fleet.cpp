// Reading generator for eport-sim: mostly positions and sensor samples, with
// seal and door events mixed in (a small share of them alarms).
#include "fleet.h"

#include <cmath>
#include <cstdio>

namespace eport::sim {

namespace {

// splitmix64: a fast, well-mixed hash for deterministic per-reading values.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Yangshan Deep-Water Port, phase IV quay (approx. 30.617 N, 122.067 E).
constexpr double kPortLat = 30.617;
constexpr double kPortLon = 122.067;
constexpr const char* kOwners[] = {"MSK", "CSQ", "COS", "EVE", "OOL", "HLX", "CMA", "ONE"};

}  // namespace

std::string unit_id(const std::string& prefix, int index) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%s-%04d", prefix.c_str(), index);
  return buf;
}

std::string container_id(int index) {
  // Owner code + U + 6-digit serial, then the ISO 6346 check digit.
  char base[11];
  std::snprintf(base, sizeof base, "%sU%06d", kOwners[index % 8], (index * 7919) % 1000000);
  for (int check = 0; check <= 9; ++check) {
    std::string candidate = std::string(base) + static_cast<char>('0' + check);
    if (model::is_valid_iso6346(candidate)) return candidate;
  }
  return std::string(base) + "0";  // unreachable: one digit always matches
}

model::Reading make_reading(std::uint64_t seed, int unit_index, const std::string& unit, const std::string& container,
                            std::uint64_t seq, std::uint64_t time_utc_ms) {
  std::uint64_t h = mix(seed ^ mix(static_cast<std::uint64_t>(unit_index) * 1000003ull + seq));
  model::Reading r;
  r.source_id = unit;
  r.container_id = container;
  r.seq = seq;
  r.time_utc_ms = time_utc_ms;
  unsigned pick = static_cast<unsigned>(h % 1000);
  if (pick < 600) {
    // Drift in a yard block around the quay, a few hundred metres.
    double angle = static_cast<double>(seq % 360) * 3.14159265358979 / 180.0 + unit_index;
    double radius = 0.002 + static_cast<double>(unit_index % 17) * 0.0003;
    model::Position p;
    p.lat_e7 = static_cast<std::int32_t>(std::lround((kPortLat + radius * std::sin(angle)) * 1e7));
    p.lon_e7 = static_cast<std::int32_t>(std::lround((kPortLon + radius * std::cos(angle)) * 1e7));
    p.speed_cm_s = static_cast<std::uint16_t>((h >> 10) % 1500);
    p.heading_cdeg = static_cast<std::uint16_t>((h >> 20) % 36000);
    p.fix = model::FixQuality::kGps;
    p.satellites = static_cast<std::uint8_t>(6 + (h >> 30) % 10);
    p.hdop_centi = static_cast<std::uint16_t>(70 + (h >> 34) % 150);
    r.payload = p;
  } else if (pick < 980) {
    model::SensorSample s;
    bool reefer = unit_index % 4 == 0;
    s.temperature_centi_c = static_cast<std::int16_t>(reefer ? -1800 + static_cast<int>((h >> 12) % 300)
                                                             : 1800 + static_cast<int>((h >> 12) % 1500));
    s.humidity_centi_pct = static_cast<std::uint16_t>(4000 + (h >> 24) % 5000);
    s.shock_milli_g = static_cast<std::uint16_t>((h >> 36) % 2500);
    auto drain = static_cast<std::uint16_t>(std::min<std::uint64_t>(seq / 50, 600));
    s.battery_mv = static_cast<std::uint16_t>(4150 - drain);
    s.battery_pct = static_cast<std::uint8_t>(100 - std::min<std::uint64_t>(seq / 300, 95));
    if (reefer) s.reefer_setpoint_centi_c = -1800;
    r.payload = s;
  } else if (pick < 994) {
    model::DoorEvent d;
    d.state = (h >> 40) % 2 == 0 ? model::DoorState::kClosed : model::DoorState::kOpen;
    r.payload = d;
  } else {
    model::SealEvent s;
    char seal[24];
    std::snprintf(seal, sizeof seal, "SL%08d", (unit_index * 104729) % 100000000);
    s.seal_id = seal;
    unsigned k = static_cast<unsigned>((h >> 44) % 10);
    s.state = k < 6 ? model::SealState::kSealed : (k < 9 ? model::SealState::kOpened : model::SealState::kTampered);
    r.payload = s;
  }
  return r;
}

}  // namespace eport::sim
