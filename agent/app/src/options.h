// The translation of the agent's config (config::AgentConfig) into each
// library's Options: one function per library, all in options.cpp. Reading
// the files a key names (mqtt.password_file, bridge.unit_keys) is part of the
// translation, so those two can fail; the message names the key or file.
#pragma once

#include "eport/config/config.h"
#include "eport/ingest/ingest.h"
#include "eport/model/result.h"
#include "eport/store/outbox.h"
#include "eport/units/server.h"
#include "eport/uplink/publisher.h"

namespace eport::app {

store::OutboxOptions outbox_options(const config::AgentConfig& cfg);
ingest::IngestOptions ingest_options(const config::AgentConfig& cfg);
// Reads mqtt.password_file.
Result<uplink::PublisherOptions> publisher_options(const config::AgentConfig& cfg);
// Reads bridge.unit_keys (and logs how many keys it loaded).
Result<units::ServerOptions> units_options(const config::AgentConfig& cfg);

}  // namespace eport::app
