// The agent's key table: its own rows (gateway, priority, log) and every
// library's, in the order docs/config.md and packaging/agent.toml show them.
#include "settings.h"

#include "eport/events/config_keys.h"
#include "eport/evidence/config_keys.h"
#include "eport/gnss/receiver_options.h"
#include "eport/ingest/config_keys.h"
#include "eport/store/config_keys.h"
#include "eport/units/config_keys.h"
#include "eport/uplink/config_keys.h"

#ifndef EPORT_VERSION
#define EPORT_VERSION "0.0.0"
#endif

namespace eport::app {

namespace {

config::Keys<AgentConfig> build() {
  using C = AgentConfig;
  config::Keys<C> k;
  k.add(config::required(config::string<C>("gateway.id",
                                           "This gateway's id: MQTT client id, certificate CN and a topic level. "
                                           "Lower-case letters, digits and '-', 1-32 characters, so always "
                                           "topic-safe (docs/topics.md).",
                                           EPORT_OPTION(C, gateway.id), "id")));
  k.add(config::required(config::string<C>("gateway.site",
                                           "The port site this gateway belongs to (a topic level), same rule as "
                                           "gateway.id.",
                                           EPORT_OPTION(C, gateway.site), "id")));
  k.include(units::config_keys(), [](C& c) -> auto& { return c.units; });
  k.include(store::config_keys(), [](C& c) -> auto& { return c.store; });
  k.include(ingest::config_keys(), [](C& c) -> auto& { return c.ingest; });
  const std::vector<std::pair<std::string_view, model::Priority>> classes = {{"alarm", model::Priority::kAlarm},
                                                                             {"event", model::Priority::kEvent},
                                                                             {"telemetry", model::Priority::kTelemetry},
                                                                             {"bulk", model::Priority::kBulk}};
  constexpr std::string_view kPriorityDesc =
      "Priority class of this kind of reading (drain order, eviction order, topic); priority.gap: declared "
      "sequence gaps.";
  // The defaults are model::PriorityRules' own.
  k.add(config::enumeration<C>("priority.position", classes, kPriorityDesc, EPORT_OPTION(C, priority.position)));
  k.add(config::enumeration<C>("priority.sensor", classes, kPriorityDesc, EPORT_OPTION(C, priority.sensor)));
  k.add(config::enumeration<C>("priority.seal_tampered", classes, kPriorityDesc,
                               EPORT_OPTION(C, priority.seal_tampered)));
  k.add(config::enumeration<C>("priority.seal_opened", classes, kPriorityDesc, EPORT_OPTION(C, priority.seal_opened)));
  k.add(config::enumeration<C>("priority.seal_other", classes, kPriorityDesc, EPORT_OPTION(C, priority.seal_other)));
  k.add(config::enumeration<C>("priority.door_open", classes, kPriorityDesc, EPORT_OPTION(C, priority.door_open)));
  k.add(config::enumeration<C>("priority.door_other", classes, kPriorityDesc, EPORT_OPTION(C, priority.door_other)));
  k.add(config::enumeration<C>("priority.gap", classes, kPriorityDesc, EPORT_OPTION(C, priority.gap)));
  k.add(config::enumeration<C>("priority.custody_alarm", classes,
                               "Priority class of the derived custody events that are alarms (excursion start; "
                               "docs/custody-events.md).",
                               EPORT_OPTION(C, priority.custody_alarm)));
  k.add(config::enumeration<C>("priority.custody_event", classes,
                               "Priority class of the other derived custody events (pairing, geofence, motion, "
                               "excursion end).",
                               EPORT_OPTION(C, priority.custody_event)));
  k.include(uplink::config_keys(), [](C& c) -> auto& { return c.uplink; });
  k.include(gnss::config_keys(), [](C& c) -> auto& { return c.gnss; });
  k.include(events::config_keys(), [](C& c) -> auto& { return c.custody; });
  k.include(evidence::config_keys(), [](C& c) -> auto& { return c.evidence; });
  k.add(config::enumeration<C>("log.level",
                               {{"error", log::Level::kError},
                                {"warn", log::Level::kWarn},
                                {"info", log::Level::kInfo},
                                {"debug", log::Level::kDebug}},
                               "Least severe level logged to stderr.", EPORT_OPTION(C, log_level)));
  return k;
}

}  // namespace

const config::Keys<AgentConfig>& settings_keys() {
  static const config::Keys<AgentConfig> keys = build();
  return keys;
}

AgentConfig derived(AgentConfig cfg) {
  cfg.units.gateway_id = cfg.gateway.id;  // reserved: no unit may claim it
  cfg.uplink.gateway_id = cfg.gateway.id;
  cfg.uplink.site_id = cfg.gateway.site;
  if (cfg.uplink.client_id.empty()) cfg.uplink.client_id = cfg.gateway.id;
  // Seen command ids are kept as long as a repeat could still be admitted.
  cfg.store.command_max_age = cfg.uplink.command_max_age;
  cfg.custody.gateway_id = cfg.gateway.id;
  cfg.custody.priority = cfg.priority;
  cfg.uplink.agent_version = EPORT_VERSION;
  cfg.uplink.config_hash = config_hash(cfg);
  return cfg;
}

Result<AgentConfig> load_config_file(const std::string& path) {
  auto cfg = config::load_file(settings_keys(), path);
  if (!cfg) return cfg;
  return derived(std::move(*cfg));
}

Result<AgentConfig> load_config_string(std::string_view toml_text, std::string_view source_name) {
  auto cfg = config::load_string(settings_keys(), toml_text, source_name);
  if (!cfg) return cfg;
  return derived(std::move(*cfg));
}

std::string config_hash(const AgentConfig& cfg) { return config::config_hash(settings_keys(), cfg); }
std::string effective_json(const AgentConfig& cfg) { return config::effective_json(settings_keys(), cfg); }
std::vector<std::string> secret_file_warnings(const AgentConfig& cfg) {
  return config::secret_file_warnings(settings_keys(), cfg);
}
std::string reference_markdown() { return config::reference_markdown(settings_keys()); }
std::string config_template() {
  return config::config_template(settings_keys(),
                                 "agent.toml - every key of eport-agent with its default (eport-agent "
                                 "--config-template).");
}

}  // namespace eport::app
