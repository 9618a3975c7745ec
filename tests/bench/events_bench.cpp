// Custody event benchmark: the cost per reading of all custody rules
// together (pairing, geofences over the sample Shanghai zones, motion,
// reefer excursions, their state written in the same transaction), next to
// the ingest path alone (Outbox::append of the same batches without the
// engine) measured in the same run on the same readings: simulated journeys
// around Yangshan (eport-sim's fleet) on a 30 s clock. Prints figures,
// asserts nothing. Usage: eport-events-bench [READINGS] [UNITS]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "eport/codec/codec.h"
#include "eport/events/engine.h"
#include "eport/geofence/zones_file.h"
#include "eport/store/outbox.h"
#include "fleet.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Run {
  double ns_per_reading = 0;
  std::size_t events = 0;
};

Run run(const std::string& dir, const std::vector<std::vector<eport::store::Record>>& batches, bool with_events,
        std::shared_ptr<const eport::geofence::ZoneSet> zones) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  eport::store::OutboxOptions o;
  o.path = dir + "/outbox.db";
  o.durability = eport::store::Durability::kNormal;  // the rules' cost, not the disk's
  o.max_bytes = 1ull << 40;
  o.min_free_bytes = 0;
  auto ob = eport::store::Outbox::open(o);
  if (!ob) {
    std::fprintf(stderr, "%s\n", ob.error().c_str());
    std::exit(1);
  }
  std::unique_ptr<eport::events::Engine> engine;
  if (with_events) {
    eport::events::EngineOptions eo;
    eo.enabled = true;
    eo.gateway_id = "gw-bench";
    engine = std::make_unique<eport::events::Engine>(eo, zones, eport::store::DerivedState{}, 0);
  }
  std::size_t readings = 0, derived = 0;
  auto t0 = Clock::now();
  for (const auto& b : batches) {
    auto r = (*ob)->append(b, engine.get());
    if (!r) {
      std::fprintf(stderr, "append: %s\n", r.error().c_str());
      std::exit(1);
    }
    readings += r->stored;
    derived += r->derived;
  }
  double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
  return {ns / static_cast<double>(readings), derived};
}

}  // namespace

int main(int argc, char** argv) {
  const long long count = argc > 1 ? std::atoll(argv[1]) : 200000;
  const int units = argc > 2 ? std::atoi(argv[2]) : 100;
  if (count <= 0 || units <= 0) {
    std::fprintf(stderr, "usage: eport-events-bench [READINGS] [UNITS]\n");
    return 64;
  }
  auto zones_file = std::string(EPORT_SOURCE_DIR) + "/docs/zones/shanghai-terminals.geojson";
  auto set = eport::geofence::load_zones_file(zones_file);
  if (!set) {
    std::fprintf(stderr, "%s\n", set.error().c_str());
    return 1;
  }
  auto zones = std::make_shared<const eport::geofence::ZoneSet>(std::move(*set));

  // Batches as ingest commits them: 2000 readings, units interleaved.
  eport::sim::FleetOptions fo;
  fo.units = units;
  eport::sim::Fleet fleet(fo);
  std::vector<std::vector<eport::store::Record>> batches(1);
  const long long per_unit = (count + units - 1) / units;
  for (long long seq = 1; seq <= per_unit; ++seq) {
    for (int u = 0; u < units; ++u) {
      char id[16], box[16];
      std::snprintf(id, sizeof id, "tcu-%04d", u);
      std::snprintf(box, sizeof box, "MSKU%06d", u);  // check digits do not matter here
      auto r = fleet.reading(u, id, box, static_cast<std::uint64_t>(seq), 1795000000000ull + seq * 30000);
      eport::store::Record rec;
      rec.source_id = r.source_id;
      rec.seq = r.seq;
      rec.priority = eport::model::default_priority(r);
      rec.created_utc_ms = r.time_utc_ms;
      rec.body = eport::codec::encode_reading(r);
      if (batches.back().size() == 2000) batches.emplace_back();
      batches.back().push_back(std::move(rec));
    }
  }
  const std::string dir = std::filesystem::temp_directory_path() / ("eport-events-bench-" + std::to_string(::getpid()));
  auto alone = run(dir + "/alone", batches, false, zones);
  auto rules = run(dir + "/rules", batches, true, zones);
  std::filesystem::remove_all(dir);
  std::printf("eport-events-bench: %lld readings of %d units, %zu zones (%s), batches of 2000, durability normal\n",
              per_unit * units, units, zones->zones().size(), zones->version().c_str());
  std::printf("  ingest path alone (append, no rules)        %8.0f ns/reading\n", alone.ns_per_reading);
  std::printf("  with every custody rule (events, state)     %8.0f ns/reading  (+%.0f ns: the rules' cost; %zu events)\n",
              rules.ns_per_reading, rules.ns_per_reading - alone.ns_per_reading, rules.events);
  return 0;
}
