// One gpsd report, as gps_read() left it, into a GpsdAssembler: what
// GpsdSource::poll_once does per report, and what fuzz_gpsd_json drives with
// lines that gps_unpack() decoded. Private to eport_gnss_gpsd (needs gps.h).
#pragma once

#include <gps.h>

#include <optional>
#include <string_view>

#include "eport/gnss/gpsd_mapping.h"
#include "eport/model/reading.h"

namespace eport::gnss::detail {

// `raw` is the JSON line the report came in (its class is taken from there,
// since libgps' `set` mask accumulates across reports); `d` is libgps' state
// after decoding it. Returns the reading of an epoch the report closed.
std::optional<model::Reading> apply_gpsd_report(GpsdAssembler& assembler, const gps_data_t& d,
                                                std::string_view raw);

}  // namespace eport::gnss::detail
