// The fleet simulator's reading generator: every simulated telematics unit is
// fitted to one container that travels an import journey through the
// Shanghai Yangshan Deep-Water Port (vessel -> quay -> yard -> gate -> truck
// over the Donghai Bridge), over and over, with seal and door events, reefer
// temperatures with excursions and a draining battery. Every reading is a
// pure function of (seed, unit index, seq): deterministic for a given seed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "eport/model/reading.h"

namespace eport::sim {

// "tcu-0007" style unit ids and a valid ISO 6346 container number per unit.
std::string unit_id(const std::string& prefix, int index);
std::string container_id(int index);

// Where a container is in its journey.
enum class Phase : std::uint8_t { kVessel, kQuay, kYard, kGate, kTruck };
const char* phase_name(Phase p);

struct FleetOptions {
  std::uint64_t seed = 1;
  // Units in the fleet. Exactly one of them (chosen by the seed) has its
  // seal tampered with on the road once; 0: nobody does.
  int units = 0;
  // Readings one journey takes, vessel to truck (at least kMinJourneyReadings).
  // At 1 reading/s the default is a 2-minute journey; every unit starts at
  // its own point of it, so a fleet is spread over all phases at once.
  std::uint32_t journey_readings = 120;
  int reefer_every = 4;  // every n-th unit (index % n == 0) is a reefer; 0: none
};
inline constexpr std::uint32_t kMinJourneyReadings = 40;

class Fleet {
 public:
  explicit Fleet(FleetOptions options);

  // The reading that unit `unit_index` produces as its seq-th reading
  // (seq >= 1). `time_utc_ms` is stamped as given.
  model::Reading reading(int unit_index, const std::string& unit, const std::string& container, std::uint64_t seq,
                         std::uint64_t time_utc_ms) const;

  Phase phase_of(int unit_index, std::uint64_t seq) const;
  bool is_reefer(int unit_index) const;
  bool inspected(int unit_index, std::uint64_t journey) const;  // customs opens this journey's container
  // The seal number put on at the origin of the journey the seq-th reading
  // belongs to (what a shipper's booking would tell the cloud).
  std::string origin_seal(int unit_index, std::uint64_t seq) const;
  int tampered_unit() const { return tampered_unit_; }          // -1: none
  std::uint64_t tampered_seq() const;                           // seq of the TAMPERED event, 0: none
  const FleetOptions& options() const { return opt_; }

 private:
  struct Where {
    std::uint64_t journey;
    std::uint32_t k;  // reading index within the journey, 0 .. journey_readings-1
  };
  Where where(int unit_index, std::uint64_t seq) const;
  std::uint32_t offset(int unit_index) const;
  std::uint64_t hash(int unit_index, std::uint64_t a, std::uint64_t b = 0) const;

  FleetOptions opt_;
  int tampered_unit_ = -1;
};

// The reading of a one-unit-agnostic fleet (no tampered case) with default
// options: what the store and bridge benchmarks use for realistic rows.
model::Reading make_reading(std::uint64_t seed, int unit_index, const std::string& unit, const std::string& container,
                            std::uint64_t seq, std::uint64_t time_utc_ms);

// The standard mix of the wire benchmark and of the v2 dictionary's
// training: units first_unit .. first_unit+units-1 (ids unit_id("tcu", i),
// container_id(i)) each reporting every 10 s from t0, their clocks 37 ms
// apart, per_unit readings each, in store order (round by round).
std::vector<model::Reading> standard_mix(int units, int per_unit, std::uint64_t seed = 1, int first_unit = 0,
                                         std::uint64_t t0 = 1795000000000ull);

}  // namespace eport::sim
