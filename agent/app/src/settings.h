// The agent's whole configuration: the Options of every library it wires,
// as each library's own config keys fill them, plus the few keys that
// belong to the agent itself (gateway identity, priority classes, log
// level). app::settings_keys() assembles the table, in the order of
// docs/config.md; eport::config's engine does the rest.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "eport/config/config.h"
#include "eport/evidence/gateway_chains.h"
#include "eport/events/engine.h"
#include "eport/gnss/receiver_options.h"
#include "eport/ingest/ingest.h"
#include "eport/log/log.h"
#include "eport/model/reading.h"
#include "eport/store/outbox.h"
#include "eport/units/server.h"
#include "eport/uplink/publisher.h"

namespace eport::app {

struct GatewayIdentity {
  std::string id;    // gateway.id: [a-z0-9][a-z0-9-]{0,31}; MQTT client id and topic level
  std::string site;  // gateway.site: same pattern; topic level
};

struct AgentConfig {
  GatewayIdentity gateway;
  units::ServerOptions units;        // [bridge]
  store::OutboxOptions store;        // [store]
  ingest::IngestOptions ingest;      // [store] commit_*
  model::PriorityRules priority;     // [priority]
  uplink::PublisherOptions uplink;   // [mqtt] [publish] [budget] [health] [commands]
  gnss::ReceiverOptions gnss;        // [gnss]
  events::EngineOptions custody;     // [custody]
  evidence::EvidenceOptions evidence;  // [evidence]
  log::Level log_level = log::Level::kInfo;  // [log]
};

const config::Keys<AgentConfig>& settings_keys();

// The parts as the Agent builds them: the config's Options plus what
// follows from other keys (gateway.id and gateway.site where a library
// needs them, commands.max_age_s for the store's seen-command ids, the
// priority classes for the custody events, the config hash for the birth
// message). Reads no file.
AgentConfig derived(AgentConfig cfg);

// config::load_file / load_string over settings_keys(), then derived().
Result<AgentConfig> load_config_file(const std::string& path);
Result<AgentConfig> load_config_string(std::string_view toml_text, std::string_view source_name = "<string>");

std::string config_hash(const AgentConfig& cfg);
std::string effective_json(const AgentConfig& cfg);
std::vector<std::string> secret_file_warnings(const AgentConfig& cfg);
std::string reference_markdown();
std::string config_template();

}  // namespace eport::app
