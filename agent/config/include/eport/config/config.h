// The agent's configuration: a TOML file validated as a whole before anything
// starts. One table of key specs (key, type, default, range, description)
// drives parsing, validation, the --help text and docs/config.md, so they
// cannot disagree. The only library that links toml++.
#pragma once

#include <cstdint>
#include <functional>
#include <array>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "eport/model/reading.h"
#include "eport/model/result.h"

namespace eport::config {

struct GatewayConfig {
  std::string id;    // [a-z0-9][a-z0-9-]{0,31}; MQTT client id and topic level
  std::string site;  // same pattern; topic level
};

struct BridgeConfig {
  std::string unix_socket;  // "" disables
  std::string tcp_listen;   // "host:port", "" disables
  std::string serial_ports; // comma-separated tty paths, "" disables
  std::int64_t serial_baud = 115200;
  std::int64_t window = 256;
  std::int64_t max_units = 2000;
  std::int64_t max_units_per_address = 64;
  std::int64_t unix_reserve = 64;
  std::int64_t hello_deadline_s = 10;
  std::int64_t max_unit_ids_per_link = 16;
  std::int64_t max_seq_jump = 16777216;
  std::int64_t idle_ping_s = 30;
  std::int64_t dead_after_ping_s = 10;
  std::int64_t position_interval_s = 0;
  std::int64_t sensor_interval_s = 0;
  std::string unit_intervals;  // "UNIT=POS/SENSOR,...": parse_unit_intervals()
  std::string unit_keys;       // path of the unit key file: read_unit_keys()
  bool insecure_tcp_without_auth = false;  // TCP units need not authenticate
};

// One entry of bridge.unit_intervals.
struct UnitIntervals {
  std::string unit_id;
  std::uint32_t position_s = 0, sensor_s = 0;
};
// Parses bridge.unit_intervals; the error names the entry that is wrong.
Result<std::vector<UnitIntervals>> parse_unit_intervals(std::string_view text);

struct StoreConfig {
  std::string path;
  std::string durability;  // "full" | "normal"
  std::int64_t commit_interval_ms = 10;
  std::int64_t commit_max_readings = 2000;
  std::int64_t max_bytes = 256ll << 20;
  std::int64_t low_water_pct = 90;
  std::int64_t min_free_bytes = 64ll << 20;
  std::string when_full;  // "evict" | "refuse"
  std::int64_t ttl_alarm_s = 0, ttl_event_s = 0, ttl_telemetry_s = 0, ttl_bulk_s = 0;
  std::int64_t startup_check_ms = 2000;
  std::int64_t source_expiry_s = 2592000;
  std::int64_t maintenance_interval_s = 10;
};

// Priority class names ("alarm", "event", "telemetry", "bulk") per kind of reading.
struct PriorityConfig {
  std::string position, sensor, seal_tampered, seal_opened, seal_other, door_open, door_other, gap;
  model::PriorityRules rules() const;
};

struct MqttConfig {
  std::string uri;        // one URI, or several separated by commas: the first is preferred
  std::string ca_file, cert_file, key_file;
  bool verify_hostname = true;
  bool insecure_skip_verify_hostname = false;  // required for verify_hostname = false
  bool insecure_password_over_tcp = false;     // required for a password with a non-loopback tcp:// broker
  std::string username;
  std::string password_file;  // the password itself is never in the config
  std::int64_t failover_return_s = 300;
  std::string client_id;  // "" -> gateway id
  std::int64_t keepalive_s = 30;
  std::int64_t connect_timeout_s = 10;
  std::int64_t reconnect_min_ms = 500;
  std::int64_t reconnect_max_ms = 30000;
  std::int64_t max_inflight = 16;
};

struct PublishConfig {
  std::string compression;  // "none" | "zstd"
  std::int64_t zstd_level = 3;
  std::int64_t max_readings = 500;
  std::int64_t max_bytes = 65536;
  std::int64_t max_age_ms = 1000;
};

struct BudgetConfig {
  std::int64_t bytes_per_day = 0, bytes_per_month = 0, max_bytes_per_s = 0;
};

struct HealthConfig {
  std::int64_t interval_s = 60;
};

struct CommandsConfig {
  bool enabled = true;
  std::int64_t max_age_s = 300;
};

struct GnssConfig {
  std::string source;  // "none" | "serial" | "gpsd"
  std::string device;
  std::int64_t baud = 9600;
  std::string gpsd_host;
  std::int64_t gpsd_port = 2947;
  std::int64_t min_interval_ms = 1000;
  bool require_fix = true;
  bool require_checksum = true;
};

struct LogConfig {
  std::string level;  // error | warn | info | debug
};

struct AgentConfig {
  GatewayConfig gateway;
  BridgeConfig bridge;
  StoreConfig store;
  MqttConfig mqtt;
  PublishConfig publish;
  PriorityConfig priority;
  BudgetConfig budget;
  HealthConfig health;
  CommandsConfig commands;
  GnssConfig gnss;
  LogConfig log;
};

// The broker URIs of mqtt.uri, in order.
std::vector<std::string> broker_uris(const AgentConfig& config);

// One configuration key. Exactly one of the accessors is set.
struct KeySpec {
  std::string_view key;          // dotted path, e.g. "mqtt.keepalive_s"
  std::string_view default_text; // as written in TOML; "" with required = true
  std::string_view description;
  bool required = false;
  std::int64_t min = 0, max = 0;           // integers, inclusive
  std::vector<std::string_view> choices;   // strings restricted to a set
  std::string_view pattern_name;           // strings checked by a named rule ("id", "uri", "hostport")
  std::function<std::string&(AgentConfig&)> str;
  std::function<std::int64_t&(AgentConfig&)> integer;
  std::function<bool&(AgentConfig&)> boolean;
  std::string_view type_name() const { return str ? "string" : (integer ? "integer" : "boolean"); }
};

const std::vector<KeySpec>& key_specs();

// Parses and validates. On failure the error lists every problem, one per
// line, each naming the file, line and key: "agent.toml:7: mqtt.keepalive_s:
// 0 is out of range 1..3600". load_file also opens the files the config
// names (check_files): what --check-config and a start both run.
Result<AgentConfig> load_file(const std::string& path);
Result<AgentConfig> load_string(std::string_view toml_text, std::string_view source_name = "<string>");

// Opens mqtt.ca_file, cert_file and key_file (each must hold a PEM
// certificate, or a PEM private key) and reads mqtt.password_file. One
// "key: problem naming the path" per failure; empty when all are usable.
std::vector<std::string> check_files(const AgentConfig& config);

// mqtt.key_file or mqtt.password_file readable by others, or by a group that
// is not this process's effective group: one warning each.
std::vector<std::string> secret_file_warnings(const AgentConfig& config);

// MQTT's limit on a password (a 16-bit length).
inline constexpr std::size_t kMaxPasswordBytes = 65535;
// The first line of a password file, without its line end. Refused, not
// truncated, when longer than kMaxPasswordBytes; refused when empty.
Result<std::string> read_secret(const std::string& path);

// The unit key file (bridge.unit_keys; docs/security.md): one unit per
// line, "UNIT_ID HEX" with a topic-safe unit id and 64 hex digits (a 32-byte
// key); blank lines and lines starting with '#' are skipped. Refused, naming
// the line, for any other line, a unit listed twice, or a file that every
// local user may read. Map: unit id -> key.
Result<std::map<std::string, std::array<std::uint8_t, 32>>> read_unit_keys(const std::string& path);

// True when the URI's host is, exactly, an IPv4 address in 127.0.0.0/8,
// ::1 or "localhost" (tcp://127.attacker.example is not).
bool is_loopback_uri(std::string_view uri);

// A config with every default applied and gateway id/site set; for tests.
AgentConfig defaults();

// Markdown table of every key (docs/config.md embeds it verbatim).
std::string reference_markdown();

// The effective config as one JSON object {"section.key": value, ...}.
// Holds no secret: passwords live only in mqtt.password_file.
std::string effective_json(const AgentConfig& config);

// Stable hash of the effective config (FNV-1a over key=value lines), for
// the birth message: lets the cloud see which config a gateway runs.
std::string config_hash(const AgentConfig& config);

}  // namespace eport::config
