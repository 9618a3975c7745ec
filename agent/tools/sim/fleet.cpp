// Container journeys for eport-sim: geography of Yangshan, the phases of an
// import journey, and the events along it (origin seal, customs inspection,
// the one tampered seal), sensor samples and battery drain. Stateless: each
// reading is computed from (seed, unit index, seq) alone.
#include "fleet.h"

#include <algorithm>
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

constexpr const char* kOwners[] = {"MSK", "CSQ", "COS", "EVE", "OOL", "HLX", "CMA", "ONE"};

struct LatLon {
  double lat = 0, lon = 0;
};

// Placed inside the zones of docs/zones/shanghai-terminals.geojson (the
// sample zones file the demo and the custody tests use), which are drawn by
// hand from open map data: approximate, good enough for plausible tracks
// and geofence events, not for navigation. The quay, yard, inspection area
// and gate lie in zone yangshan-4 (phase IV, the automated terminal); the
// truck route follows the donghai-bridge corridor's centre line, vertex by
// vertex, from the Yangshan end to Luchao.
constexpr LatLon kAnchorage{30.560, 122.230};   // outer anchorage, east of the islands
constexpr LatLon kChannel{30.600, 122.140};     // approach channel
constexpr LatLon kTurning{30.6130, 122.0330};   // turning basin off the berth
constexpr LatLon kBerth{30.6195, 122.0300};     // phase IV quay
constexpr LatLon kApron{30.6208, 122.0310};     // quay apron under the cranes
constexpr LatLon kYardOrigin{30.6225, 122.0250};  // first yard block; blocks extend north-east
constexpr LatLon kInspection{30.6270, 122.0210};  // customs inspection area
constexpr LatLon kGate{30.6295, 122.0400};        // terminal gate
constexpr LatLon kBridge[] = {{30.6460, 122.0440}, {30.6700, 122.0330}, {30.7250, 122.0120},
                              {30.7800, 121.9800}, {30.8300, 121.9450}, {30.8710, 121.9140}};  // to Luchao

// Phase boundaries as shares of a journey.
constexpr double kQuayStart = 0.20, kYardStart = 0.27, kGateStart = 0.70, kTruckStart = 0.76;
constexpr double kInspectionAt = 0.45;  // customs opens the container (inspected journeys)
constexpr double kTamperAt = 0.86;      // on the bridge: the tampered seal (one unit, once)

constexpr double kPi = 3.14159265358979323846;
constexpr double kMetresPerDegLat = 111320.0;

double metres(LatLon a, LatLon b) {
  double dy = (b.lat - a.lat) * kMetresPerDegLat;
  double dx = (b.lon - a.lon) * kMetresPerDegLat * std::cos(a.lat * kPi / 180.0);
  return std::sqrt(dx * dx + dy * dy);
}

// Course over ground from a to b, centidegrees clockwise from north.
std::uint16_t bearing_cdeg(LatLon a, LatLon b) {
  double dy = b.lat - a.lat;
  double dx = (b.lon - a.lon) * std::cos(a.lat * kPi / 180.0);
  double deg = std::atan2(dx, dy) * 180.0 / kPi;
  if (deg < 0) deg += 360.0;
  return static_cast<std::uint16_t>(std::lround(deg * 100.0) % 36000);
}

struct Fix {
  LatLon at;
  std::uint16_t heading_cdeg = 0;
  bool moving = false;
};

// Position at share t (0..1) along a polyline, with the heading of the leg.
template <std::size_t N>
Fix along(const LatLon (&path)[N], double t) {
  double total = 0;
  for (std::size_t i = 1; i < N; ++i) total += metres(path[i - 1], path[i]);
  double want = std::clamp(t, 0.0, 1.0) * total;
  for (std::size_t i = 1; i < N; ++i) {
    double leg = metres(path[i - 1], path[i]);
    if (want <= leg || i == N - 1) {
      double f = leg > 0 ? std::clamp(want / leg, 0.0, 1.0) : 1.0;
      LatLon p{path[i - 1].lat + (path[i].lat - path[i - 1].lat) * f,
               path[i - 1].lon + (path[i].lon - path[i - 1].lon) * f};
      return {p, bearing_cdeg(path[i - 1], path[i]), true};
    }
    want -= leg;
  }
  return {path[N - 1], 0, false};
}

std::int32_t e7(double deg) { return static_cast<std::int32_t>(std::lround(deg * 1e7)); }

}  // namespace

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::kVessel: return "vessel";
    case Phase::kQuay: return "quay";
    case Phase::kYard: return "yard";
    case Phase::kGate: return "gate";
    case Phase::kTruck: return "truck";
  }
  return "?";
}

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

Fleet::Fleet(FleetOptions options) : opt_(options) {
  opt_.journey_readings = std::max(opt_.journey_readings, kMinJourneyReadings);
  if (opt_.units > 0) tampered_unit_ = static_cast<int>(mix(opt_.seed ^ 0x7a3be5ull) % static_cast<std::uint64_t>(opt_.units));
}

std::uint64_t Fleet::hash(int unit_index, std::uint64_t a, std::uint64_t b) const {
  return mix(opt_.seed ^ mix(static_cast<std::uint64_t>(unit_index) * 1000003ull + a * 0x51ed27ull + mix(b)));
}

std::uint32_t Fleet::offset(int unit_index) const {
  return static_cast<std::uint32_t>(hash(unit_index, 0xabcdef) % opt_.journey_readings);
}

Fleet::Where Fleet::where(int unit_index, std::uint64_t seq) const {
  std::uint64_t k = (seq == 0 ? 0 : seq - 1) + offset(unit_index);
  return {k / opt_.journey_readings, static_cast<std::uint32_t>(k % opt_.journey_readings)};
}

Phase Fleet::phase_of(int unit_index, std::uint64_t seq) const {
  double t = static_cast<double>(where(unit_index, seq).k) / opt_.journey_readings;
  if (t < kQuayStart) return Phase::kVessel;
  if (t < kYardStart) return Phase::kQuay;
  if (t < kGateStart) return Phase::kYard;
  if (t < kTruckStart) return Phase::kGate;
  return Phase::kTruck;
}

bool Fleet::is_reefer(int unit_index) const { return opt_.reefer_every > 0 && unit_index % opt_.reefer_every == 0; }

bool Fleet::inspected(int unit_index, std::uint64_t journey) const { return hash(unit_index, 0x1125, journey) % 4 == 0; }

std::string Fleet::origin_seal(int unit_index, std::uint64_t seq) const {
  char id[16];
  std::snprintf(id, sizeof id, "SL%08llu",
                static_cast<unsigned long long>(hash(unit_index, where(unit_index, seq).journey, 1) % 100000000));
  return id;
}

std::uint64_t Fleet::tampered_seq() const {
  if (tampered_unit_ < 0) return 0;
  // The first journey whose tamper point comes at or after seq 1.
  auto at = static_cast<std::uint64_t>(kTamperAt * opt_.journey_readings);
  auto off = offset(tampered_unit_);
  std::uint64_t k = at >= off ? at : at + opt_.journey_readings;
  return k - off + 1;
}

model::Reading Fleet::reading(int unit_index, const std::string& unit, const std::string& container, std::uint64_t seq,
                              std::uint64_t time_utc_ms) const {
  model::Reading r;
  r.source_id = unit;
  r.container_id = container;
  r.seq = seq;
  r.time_utc_ms = time_utc_ms;

  const auto L = opt_.journey_readings;
  const auto [journey, k] = where(unit_index, seq);
  const double t = static_cast<double>(k) / L;
  const std::uint64_t h = hash(unit_index, seq, 0x5eed);
  auto at = [L](double share) { return static_cast<std::uint32_t>(share * L); };
  char id[32];

  // --- events at fixed points of the journey ---
  // Sealed at origin: the seal number is reported as the journey starts.
  const std::string origin_seal = Fleet::origin_seal(unit_index, seq);
  if (k == 0) {
    r.payload = model::SealEvent{origin_seal, model::SealState::kSealed};
    return r;
  }
  if (k == 1) {
    r.payload = model::DoorEvent{model::DoorState::kClosed};
    return r;
  }
  if (inspected(unit_index, journey)) {
    // Customs: the officer cuts the seal, opens the doors, closes them and
    // puts a customs seal on.
    const auto i = at(kInspectionAt);
    const auto closes = i + std::max<std::uint32_t>(3, at(0.05));
    std::snprintf(id, sizeof id, "CN%08llu", static_cast<unsigned long long>(hash(unit_index, journey, 2) % 100000000));
    if (k == i) {
      r.payload = model::SealEvent{origin_seal, model::SealState::kOpened};
      return r;
    }
    if (k == i + 1) {
      r.payload = model::DoorEvent{model::DoorState::kOpen};
      return r;
    }
    if (k == closes) {
      r.payload = model::DoorEvent{model::DoorState::kClosed};
      return r;
    }
    if (k == closes + 1) {
      r.payload = model::SealEvent{id, model::SealState::kSealed};
      return r;
    }
  }
  if (unit_index == tampered_unit_) {
    // The one tampered case of the fleet, once: the seal is broken on the
    // road and the doors opened and closed again.
    auto ts = tampered_seq();
    if (seq == ts) {
      r.payload = model::SealEvent{origin_seal, model::SealState::kTampered};
      return r;
    }
    if (seq == ts + 1) {
      r.payload = model::DoorEvent{model::DoorState::kOpen};
      return r;
    }
    if (seq == ts + 3) {
      r.payload = model::DoorEvent{model::DoorState::kClosed};
      return r;
    }
  }

  const Phase phase = phase_of(unit_index, seq);
  const bool reefer = is_reefer(unit_index);

  if (h % 100 < 60) {
    // --- position ---
    Fix f;
    std::uint16_t speed = 0;
    // Each container has its own slot: vessel bay, yard block and row.
    double bay = static_cast<double>(unit_index % 24) * 0.00004;
    int block = unit_index % 12, row = (unit_index / 12) % 8;
    LatLon slot{kYardOrigin.lat + (block / 4) * 0.0016 + row * 0.00012, kYardOrigin.lon + (block % 4) * 0.0022};
    auto share = [&](double from, double to) { return (t - from) / (to - from); };
    bool inspected_now = inspected(unit_index, journey) && t >= kInspectionAt;
    switch (phase) {
      case Phase::kVessel: {
        const LatLon path[] = {kAnchorage, kChannel, kTurning, kBerth};
        double s = share(0, kQuayStart);
        f = along(path, s);
        f.at.lat += bay;
        speed = static_cast<std::uint16_t>(650 * (1.0 - s) + 20);  // ~12.6 kn slowing to a stop
        break;
      }
      case Phase::kQuay: {
        const LatLon path[] = {LatLon{kBerth.lat + bay, kBerth.lon}, kApron};
        f = along(path, share(kQuayStart, kYardStart));
        speed = static_cast<std::uint16_t>(50 + (h >> 8) % 250);  // crane and AGV
        break;
      }
      case Phase::kYard: {
        double s = share(kYardStart, kGateStart);
        if (s < 0.15) {
          const LatLon path[] = {kApron, slot};
          f = along(path, s / 0.15);
          speed = static_cast<std::uint16_t>(300 + (h >> 8) % 200);
        } else if (inspected_now && t < kInspectionAt + 0.04) {
          const LatLon path[] = {slot, kInspection};
          f = along(path, (t - kInspectionAt) / 0.04);
          speed = static_cast<std::uint16_t>(250 + (h >> 8) % 200);
        } else {
          f.at = inspected_now ? kInspection : slot;  // stacked: parked, GNSS jitter only
        }
        break;
      }
      case Phase::kGate: {
        double s = share(kGateStart, kTruckStart);
        LatLon from = inspected(unit_index, journey) ? kInspection : slot;
        if (s < 0.4) {
          const LatLon path[] = {from, kGate};
          f = along(path, s / 0.4);
          speed = static_cast<std::uint16_t>(400 + (h >> 8) % 300);
        } else {
          f.at = kGate;  // queueing for the gate check
          speed = static_cast<std::uint16_t>((h >> 8) % 80);
        }
        break;
      }
      case Phase::kTruck: {
        const LatLon path[] = {kGate, kBridge[0], kBridge[1], kBridge[2], kBridge[3], kBridge[4], kBridge[5]};
        f = along(path, share(kTruckStart, 1.0));
        speed = static_cast<std::uint16_t>(1600 + (h >> 8) % 600);  // 58..79 km/h, limit 80
        break;
      }
    }
    // A few metres of GNSS noise.
    double jitter_lat = (static_cast<double>((h >> 16) % 2001) - 1000.0) * 0.00000004;
    double jitter_lon = (static_cast<double>((h >> 28) % 2001) - 1000.0) * 0.00000004;
    model::Position p;
    p.lat_e7 = e7(f.at.lat + jitter_lat);
    p.lon_e7 = e7(f.at.lon + jitter_lon);
    p.speed_cm_s = speed;
    p.heading_cdeg = f.moving ? f.heading_cdeg : static_cast<std::uint16_t>((h >> 40) % 36000);
    p.fix = model::FixQuality::kGps;
    bool stacked = phase == Phase::kYard || phase == Phase::kQuay;  // steel around: fewer satellites
    p.satellites = static_cast<std::uint8_t>((stacked ? 5 : 9) + (h >> 44) % 6);
    p.hdop_centi = static_cast<std::uint16_t>((stacked ? 140 : 70) + (h >> 50) % (stacked ? 260 : 60));
    r.payload = p;
    return r;
  }

  // --- sensor sample ---
  model::SensorSample s;
  if (reefer) {
    // Frozen (-18 C) or chilled (+4 C) cargo. Excursions: unplugged while
    // the crane moves it, and on some journeys a power cut at the yard's
    // reefer rack (up to +6 C, then the unit pulls it down again).
    std::int16_t setpoint = (unit_index / std::max(1, opt_.reefer_every)) % 2 == 0 ? -1800 : 400;
    int temp = setpoint + static_cast<int>((h >> 12) % 81) - 40;
    if (phase == Phase::kQuay) temp += static_cast<int>(static_cast<double>(k - at(kQuayStart)) * 30.0);
    if (hash(unit_index, journey, 3) % 3 == 0) {
      double start = 0.50, peak = 0.56, end = 0.64;
      if (t >= start && t < peak) temp += static_cast<int>(600.0 * (t - start) / (peak - start));
      if (t >= peak && t < end) temp += static_cast<int>(600.0 * (end - t) / (end - peak));
    }
    s.temperature_centi_c = static_cast<std::int16_t>(temp);
    s.reefer_setpoint_centi_c = setpoint;
    s.humidity_centi_pct = static_cast<std::uint16_t>(8000 + (h >> 24) % 1500);
  } else {
    // Dry box: ambient, warmer in the sun on land than at sea.
    double day = std::sin(2.0 * kPi * t);
    int base = phase == Phase::kVessel ? 2100 : 2500;
    s.temperature_centi_c = static_cast<std::int16_t>(base + static_cast<int>(500 * day) + static_cast<int>((h >> 12) % 200));
    s.humidity_centi_pct = static_cast<std::uint16_t>((phase == Phase::kVessel ? 7500 : 5500) + (h >> 24) % 2000);
  }
  std::uint64_t shock_max = phase == Phase::kQuay ? 4000 : phase == Phase::kTruck ? 1500 : 200;
  s.shock_milli_g = static_cast<std::uint16_t>((h >> 36) % shock_max);
  // Battery: a per-unit charge at the start, a slow drain per reading
  // (reefer units are powered by the reefer most of the time).
  int full_mv = 3950 + static_cast<int>(hash(unit_index, 4) % 200);
  auto drain = static_cast<int>(std::min<std::uint64_t>(seq / (reefer ? 160 : 40), 900));
  int mv = std::max(3300, full_mv - drain);
  s.battery_mv = static_cast<std::uint16_t>(mv);
  s.battery_pct = static_cast<std::uint8_t>(std::clamp((mv - 3300) * 100 / (4150 - 3300), 0, 100));
  r.payload = s;
  return r;
}

model::Reading make_reading(std::uint64_t seed, int unit_index, const std::string& unit, const std::string& container,
                            std::uint64_t seq, std::uint64_t time_utc_ms) {
  FleetOptions o;
  o.seed = seed;
  return Fleet(o).reading(unit_index, unit, container, seq, time_utc_ms);
}

std::vector<model::Reading> standard_mix(int units, int per_unit, std::uint64_t seed, int first_unit, std::uint64_t t0) {
  std::vector<std::string> ids, containers;
  for (int u = first_unit; u < first_unit + units; ++u) {
    ids.push_back(unit_id("tcu", u));
    containers.push_back(container_id(u));
  }
  std::vector<model::Reading> out;
  out.reserve(static_cast<std::size_t>(units) * static_cast<std::size_t>(per_unit));
  for (int s = 1; s <= per_unit; ++s)
    for (int u = 0; u < units; ++u)
      out.push_back(make_reading(seed, first_unit + u, ids[static_cast<std::size_t>(u)],
                                 containers[static_cast<std::size_t>(u)], static_cast<std::uint64_t>(s),
                                 t0 + static_cast<std::uint64_t>(s) * 10000 + static_cast<std::uint64_t>(u) * 37));
  return out;
}

}  // namespace eport::sim
