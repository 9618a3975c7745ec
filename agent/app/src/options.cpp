// config::AgentConfig -> each library's Options, field by field: the one
// place where a config key becomes a library setting (casts, units,
// string-to-enum). GnssRunner reads its [gnss] keys from the config itself.
#include "options.h"

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

#include "eport/log/log.h"

#ifndef EPORT_VERSION
#define EPORT_VERSION "0.0.0"
#endif

namespace eport::app {

store::OutboxOptions outbox_options(const config::AgentConfig& cfg) {
  store::OutboxOptions so;
  so.path = cfg.store.path;
  so.durability = cfg.store.durability == config::Durability::kNormal ? store::Durability::kNormal : store::Durability::kFull;
  so.max_bytes = static_cast<std::uint64_t>(cfg.store.max_bytes);
  so.low_water_pct = static_cast<std::uint32_t>(cfg.store.low_water_pct);
  so.min_free_bytes = static_cast<std::uint64_t>(cfg.store.min_free_bytes);
  so.when_full = cfg.store.when_full == config::WhenFull::kRefuse ? store::WhenFull::kRefuse : store::WhenFull::kEvictLowest;
  so.ttl[static_cast<int>(model::Priority::kAlarm)] = cfg.store.ttl_alarm_s;
  so.ttl[static_cast<int>(model::Priority::kEvent)] = cfg.store.ttl_event_s;
  so.ttl[static_cast<int>(model::Priority::kTelemetry)] = cfg.store.ttl_telemetry_s;
  so.ttl[static_cast<int>(model::Priority::kBulk)] = cfg.store.ttl_bulk_s;
  so.startup_check_budget = cfg.store.startup_check_ms;
  so.source_expiry = cfg.store.source_expiry_s;
  // Seen command ids are kept as long as a repeat could still be admitted.
  so.command_max_age = cfg.commands.max_age_s;
  return so;
}

ingest::IngestOptions ingest_options(const config::AgentConfig& cfg) {
  ingest::IngestOptions io;
  io.commit_interval = cfg.store.commit_interval_ms;
  io.commit_max_readings = static_cast<std::size_t>(cfg.store.commit_max_readings);
  return io;
}

Result<uplink::PublisherOptions> publisher_options(const config::AgentConfig& cfg) {
  uplink::PublisherOptions po;
  po.site_id = cfg.gateway.site;
  po.gateway_id = cfg.gateway.id;
  po.server_uris = config::broker_uris(cfg);
  po.client_id = cfg.mqtt.client_id;
  po.username = cfg.mqtt.username;
  if (!cfg.mqtt.password_file.empty()) {
    auto pw = config::read_secret(cfg.mqtt.password_file);
    if (!pw) return Error{pw.error()};
    po.password = std::move(pw).value();
  }
  po.tls = {cfg.mqtt.ca_file, cfg.mqtt.cert_file, cfg.mqtt.key_file, cfg.mqtt.verify_hostname};
  po.keepalive = cfg.mqtt.keepalive_s;
  po.connect_timeout = cfg.mqtt.connect_timeout_s;
  po.reconnect_min = cfg.mqtt.reconnect_min_ms;
  po.reconnect_max = cfg.mqtt.reconnect_max_ms;
  po.failover_return = cfg.mqtt.failover_return_s;
  po.max_inflight = static_cast<std::size_t>(cfg.mqtt.max_inflight);
  po.max_readings = static_cast<std::size_t>(cfg.publish.max_readings);
  po.max_bytes = static_cast<std::size_t>(cfg.publish.max_bytes);
  po.max_age = cfg.publish.max_age_ms;
  po.zstd_level = cfg.publish.compression == config::Compression::kZstd ? static_cast<int>(cfg.publish.zstd_level) : 0;
  po.budget = {static_cast<std::uint64_t>(cfg.budget.bytes_per_day), static_cast<std::uint64_t>(cfg.budget.bytes_per_month),
               static_cast<std::uint64_t>(cfg.budget.max_bytes_per_s)};
  po.health_interval = cfg.health.interval_s;
  po.commands = cfg.commands.enabled;
  po.command_max_age = cfg.commands.max_age_s;
  po.agent_version = EPORT_VERSION;
  po.config_hash = config::config_hash(cfg);
  return po;
}

Result<units::ServerOptions> units_options(const config::AgentConfig& cfg) {
  units::ServerOptions bo;
  bo.unix_socket = cfg.bridge.unix_socket;
  bo.tcp_listen = cfg.bridge.tcp_listen;
  bo.serial_ports = cfg.bridge.serial_ports;
  bo.serial_baud = static_cast<int>(cfg.bridge.serial_baud);
  bo.window = static_cast<std::uint16_t>(cfg.bridge.window);
  bo.max_units = static_cast<std::size_t>(cfg.bridge.max_units);
  bo.max_units_per_address = static_cast<std::size_t>(cfg.bridge.max_units_per_address);
  bo.unix_reserve = static_cast<std::size_t>(cfg.bridge.unix_reserve);
  bo.hello_deadline = cfg.bridge.hello_deadline_s;
  bo.max_unit_ids_per_link = static_cast<std::size_t>(cfg.bridge.max_unit_ids_per_link);
  bo.gateway_id = cfg.gateway.id;
  bo.max_seq_jump = static_cast<std::uint64_t>(cfg.bridge.max_seq_jump);
  bo.idle_ping_after = cfg.bridge.idle_ping_s;
  bo.dead_after_ping = cfg.bridge.dead_after_ping_s;
  bo.default_intervals = {static_cast<std::uint32_t>(cfg.bridge.position_interval_s.count()),
                          static_cast<std::uint32_t>(cfg.bridge.sensor_interval_s.count())};
  for (const auto& u : cfg.bridge.unit_intervals) bo.unit_intervals[u.unit_id] = {u.position_s, u.sensor_s};
  if (!cfg.bridge.unit_keys.empty()) {
    auto keys = config::read_unit_keys(cfg.bridge.unit_keys);
    if (!keys) return Error{"bridge.unit_keys: " + keys.error()};
    bo.auth_keys = std::move(*keys);
    log::info("agent", std::to_string(bo.auth_keys.size()) + " unit keys loaded from " + cfg.bridge.unit_keys);
  }
  bo.tcp_requires_auth = !cfg.bridge.insecure_tcp_without_auth;
  return bo;
}

}  // namespace eport::app
