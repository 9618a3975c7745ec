// Plausible readings for simulated container telematics units around the
// Shanghai Yangshan Deep-Water Port: a moving position, sensor samples with a
// draining battery, and now and then seal and door events. Deterministic for
// a given seed, unit index and sequence number.
#pragma once

#include <cstdint>
#include <string>

#include "eport/model/reading.h"

namespace eport::sim {

// "tcu-0007" style unit ids and a valid ISO 6346 container number per unit.
std::string unit_id(const std::string& prefix, int index);
std::string container_id(int index);

// The reading a unit produces as its seq-th reading (seq >= 1).
model::Reading make_reading(std::uint64_t seed, int unit_index, const std::string& unit, const std::string& container,
                            std::uint64_t seq, std::uint64_t time_utc_ms);

}  // namespace eport::sim
