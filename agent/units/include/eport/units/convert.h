// Conversions between the firmware-bridge wire structs (epb.h, C) and the
// agent's model readings. Used by the agent's bridge server and by eport-sim.
#pragma once

#include <epb/epb.h>

#include "eport/model/reading.h"
#include "eport/model/result.h"

namespace eport::units {

// A unit's reading as it arrived, checked and turned into a model reading
// owned by that unit and its container.
Result<model::Reading> from_wire(const epb_reading& in, std::string_view unit_id, std::string_view container_id);

// The inverse, for simulators and tests. Fails if a field cannot be carried
// (e.g. a seal id longer than EPB_SEAL_ID_MAX).
Result<epb_reading> to_wire(const model::Reading& in);

}  // namespace eport::units
