// The custody event engine's config keys ([custody]): on/off, the zones
// file, the motion and reefer excursion rules' parameters and adaptive
// reporting (profiles, zone classes), one row per EngineOptions field.
#pragma once

#include "eport/config/keys.h"
#include "eport/events/engine.h"

namespace eport::events {

const config::Keys<EngineOptions>& config_keys();

}  // namespace eport::events
