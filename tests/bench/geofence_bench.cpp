// Geofence benchmark: nanoseconds per position through the tracker with 10
// zones (the Shanghai sample file) and with 1,000 zones (random circles,
// squares and corridors around Yangshan), with the spatial index and with
// the brute-force scan of every zone measured in the same run as the
// baseline. Prints figures, asserts nothing (the transitions of both runs
// are compared and printed). Usage: eport-geofence-bench [POSITIONS] [ZONES_FILE]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "eport/geofence/tracker.h"
#include "eport/geofence/zones_file.h"

namespace {

using namespace eport::geofence;
using Clock = std::chrono::steady_clock;

LatLonE7 ll(double lat, double lon) {
  return {static_cast<std::int32_t>(std::llround(lat * 1e7)), static_cast<std::int32_t>(std::llround(lon * 1e7))};
}
LatLonE7 offset(LatLonE7 p, double east_m, double north_m) {
  const double lat = p.lat_e7 / 1e7;
  return ll(lat + north_m / 111195.08, p.lon_e7 / 1e7 + east_m / (111195.08 * std::cos(lat * 3.14159265358979 / 180)));
}

std::shared_ptr<const ZoneSet> random_zones(std::size_t n) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> lat(30.40, 30.95), lon(121.85, 122.30), size(50, 400);
  std::vector<Zone> zs;
  for (std::size_t i = 0; i < n; ++i) {
    const LatLonE7 c = ll(lat(rng), lon(rng));
    const double s = size(rng);
    Zone z;
    z.id = "z" + std::to_string(i);
    z.name = z.id;
    if (i % 3 == 0) {
      z.geometry = *Geometry::circle(c, s);
    } else if (i % 3 == 1) {
      z.geometry = *Geometry::polygon({{offset(c, -s, -s), offset(c, s, -s), offset(c, s, s), offset(c, -s, s), offset(c, -s, -s)}});
    } else {
      z.geometry = *Geometry::corridor({offset(c, -s, 0), offset(c, s, s)}, 120);
    }
    zs.push_back(std::move(z));
  }
  return std::make_shared<const ZoneSet>(std::move(*ZoneSet::create("bench", std::move(zs))));
}

struct Input {
  std::string source;
  Fix fix;
};

// 100 units driving random legs across the area, a fix every 30 s at 12 m/s.
std::vector<Input> positions(std::size_t n) {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> lat(30.40, 30.95), lon(121.85, 122.30), turn(-0.5, 0.5);
  constexpr std::size_t kUnits = 100;
  std::vector<LatLonE7> at(kUnits);
  std::vector<double> heading(kUnits);
  std::vector<std::uint64_t> seq(kUnits, 0);
  std::vector<std::string> ids;
  for (std::size_t u = 0; u < kUnits; ++u) {
    at[u] = ll(lat(rng), lon(rng));
    heading[u] = turn(rng) * 12;
    ids.push_back("tcu-" + std::to_string(u));
  }
  std::vector<Input> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t u = i % kUnits;
    heading[u] += turn(rng);
    at[u] = offset(at[u], 360 * std::sin(heading[u]), 360 * std::cos(heading[u]));
    Fix f;
    f.seq = ++seq[u];
    f.time_utc_ms = 1795000000000ull + f.seq * 30000;
    f.position.lat_e7 = at[u].lat_e7;
    f.position.lon_e7 = at[u].lon_e7;
    f.position.fix = eport::model::FixQuality::kGps;
    f.position.hdop_centi = 90;
    out.push_back({ids[u], f});
  }
  return out;
}

struct Run {
  double ns_per_position;
  std::size_t transitions;
};

Run measure(const std::shared_ptr<const ZoneSet>& zones, const std::vector<Input>& in, bool index) {
  Tracker t(zones, {.use_spatial_index = index});
  std::vector<Transition> out;
  const auto start = Clock::now();
  for (const auto& p : in) t.process(p.source, p.fix, out);
  const double s = std::chrono::duration<double>(Clock::now() - start).count();
  return {s * 1e9 / static_cast<double>(in.size()), out.size()};
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 200000;
  const std::string file = argc > 2 ? argv[2] : std::string(EPORT_SOURCE_DIR) + "/docs/zones/shanghai-terminals.geojson";
  auto sample = load_zones_file(file);
  if (!sample.ok()) {
    std::fprintf(stderr, "%s\n", sample.error().c_str());
    return 1;
  }
  const auto ten = std::make_shared<const ZoneSet>(std::move(*sample));
  const auto thousand = random_zones(1000);
  const auto in = positions(n);
  std::printf("geofence tracker, %zu positions from 100 units (ns per position, one core)\n", n);
  std::printf("%-32s %10s %14s %20s %9s %12s\n", "zones", "vertices", "index ns/pos", "brute force ns/pos", "speed-up",
              "transitions");
  const std::string file_row = std::to_string(ten->zones().size()) + " (" + file.substr(file.find_last_of('/') + 1) + ")";
  for (const auto& [name, set] : {std::pair{file_row.c_str(), ten}, std::pair{"1000 (random, Yangshan area)", thousand}}) {
    const Run indexed = measure(set, in, true);
    const Run brute = measure(set, in, false);
    std::printf("%-32s %10zu %14.0f %20.0f %8.1fx %5zu / %zu\n", name, set->vertex_count(), indexed.ns_per_position,
                brute.ns_per_position, brute.ns_per_position / indexed.ns_per_position, indexed.transitions,
                brute.transitions);
  }
  return 0;
}
