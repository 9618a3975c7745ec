// The v1 Reading table (schema/telemetry.fbs) as codec.cpp builds, checks and
// reads it, for envelope v2 (envelope_v2.cpp), which carries its rare payload
// kinds as v1 Readings. Internal to eport::codec.
#pragma once

#include <flatbuffers/flatbuffers.h>

#include <string>

#include "eport/model/reading.h"
#include "eport/model/result.h"
#include "eport/schema/telemetry_generated.h"

namespace eport::codec::detail {

flatbuffers::Offset<telemetry::v1::Reading> build_reading(flatbuffers::FlatBufferBuilder& b, const model::Reading& r);
// "" if the reading can be decoded; with `bounded`, ids over their bounds
// are problems too. On success *cost is what copying it costs (DecodeLimits).
std::string reading_problem(const telemetry::v1::Reading* in, bool bounded, std::size_t* cost);
Result<model::Reading> read_reading(const telemetry::v1::Reading* in);
std::string str(const flatbuffers::String* s);
const char* payload_name(telemetry::v1::Payload t);

}  // namespace eport::codec::detail
