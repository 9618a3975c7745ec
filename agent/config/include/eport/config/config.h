// The agent's configuration: a TOML file validated as a whole before anything
// starts. One table of key specs (key, type, default, range, description)
// drives parsing, validation, the --help text and docs/config.md, so they
// cannot disagree. The only library that links toml++.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <array>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "eport/log/log.h"
#include "eport/model/reading.h"
#include "eport/model/result.h"

namespace eport::config {

// Every field below is set from the key table (agent/config/src/keys.cpp),
// which holds the one default of each key: a default-constructed
// AgentConfig is empty, defaults() or load_*() fill it in. Durations carry
// their unit in their type (the key name says it too: _ms, _s); enum keys are
// C++ enums; list keys are vectors (TOML arrays, or the comma-separated
// string form older configs use).

enum class Durability { kFull, kNormal };       // store.durability
enum class WhenFull { kEvict, kRefuse };        // store.when_full
enum class Compression { kNone, kZstd };        // publish.compression
enum class GnssSource { kNone, kSerial, kGpsd };  // gnss.source

struct GatewayConfig {
  std::string id;    // [a-z0-9][a-z0-9-]{0,31}; MQTT client id and topic level
  std::string site;  // same pattern; topic level
};

// One entry of bridge.unit_intervals.
struct UnitIntervals {
  std::string unit_id;
  std::uint32_t position_s = 0, sensor_s = 0;
};
// Parses bridge.unit_intervals in its comma-separated string form; the error
// names the entry that is wrong.
Result<std::vector<UnitIntervals>> parse_unit_intervals(std::string_view text);
// The same for a list of entries (the TOML array form).
Result<std::vector<UnitIntervals>> parse_unit_intervals(const std::vector<std::string>& entries);

struct BridgeConfig {
  std::string unix_socket;                // "" disables
  std::string tcp_listen;                 // "host:port", "" disables
  std::vector<std::string> serial_ports;  // tty paths; empty: none
  std::int64_t serial_baud{};
  std::int64_t window{};
  std::int64_t max_units{};
  std::int64_t max_units_per_address{};
  std::int64_t unix_reserve{};
  std::chrono::seconds hello_deadline_s{};
  std::int64_t max_unit_ids_per_link{};
  std::int64_t max_seq_jump{};
  std::chrono::seconds idle_ping_s{};
  std::chrono::seconds dead_after_ping_s{};
  std::chrono::seconds position_interval_s{};
  std::chrono::seconds sensor_interval_s{};
  std::vector<UnitIntervals> unit_intervals;  // validated at load
  std::string unit_keys;                      // path of the unit key file: read_unit_keys()
  bool insecure_tcp_without_auth{};           // TCP units need not authenticate
};

struct StoreConfig {
  std::string path;
  Durability durability{};
  std::chrono::milliseconds commit_interval_ms{};
  std::int64_t commit_max_readings{};
  std::int64_t max_bytes{};
  std::int64_t low_water_pct{};
  std::int64_t min_free_bytes{};
  WhenFull when_full{};
  std::chrono::seconds ttl_alarm_s{}, ttl_event_s{}, ttl_telemetry_s{}, ttl_bulk_s{};
  std::chrono::milliseconds startup_check_ms{};
  std::chrono::seconds source_expiry_s{};
  std::chrono::seconds maintenance_interval_s{};
};

// The priority class of each kind of reading (priority.*).
struct PriorityConfig : model::PriorityRules {
  const model::PriorityRules& rules() const { return *this; }
};

struct MqttConfig {
  std::vector<std::string> uri;  // one to eight broker URIs: the first is preferred
  std::string ca_file, cert_file, key_file;
  bool verify_hostname{};
  bool insecure_skip_verify_hostname{};  // required for verify_hostname = false
  bool insecure_password_over_tcp{};     // required for a password with a non-loopback tcp:// broker
  std::string username;
  std::string password_file;  // the password itself is never in the config
  std::chrono::seconds failover_return_s{};
  std::string client_id;  // "" in the file -> gateway id
  std::chrono::seconds keepalive_s{};
  std::chrono::seconds connect_timeout_s{};
  std::chrono::milliseconds reconnect_min_ms{};
  std::chrono::milliseconds reconnect_max_ms{};
  std::int64_t max_inflight{};
};

struct PublishConfig {
  Compression compression{};
  std::int64_t zstd_level{};
  std::int64_t max_readings{};
  std::int64_t max_bytes{};
  std::chrono::milliseconds max_age_ms{};
};

struct BudgetConfig {
  std::int64_t bytes_per_day{}, bytes_per_month{}, max_bytes_per_s{};
};

struct HealthConfig {
  std::chrono::seconds interval_s{};
};

struct CommandsConfig {
  bool enabled{};
  std::chrono::seconds max_age_s{};
};

struct GnssConfig {
  GnssSource source{};
  std::string device;
  std::int64_t baud{};
  std::string gpsd_host;
  std::int64_t gpsd_port{};
  std::chrono::milliseconds min_interval_ms{};
  bool require_fix{};
  bool require_checksum{};
};

struct LogConfig {
  log::Level level{};
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

// The key table (the Fluent Bit config-map habit): one row per key with its
// type, its one default, its range or allowed values and its description.
// It drives parsing, validation, --config-reference, --config-template, the
// effective JSON and the config hash.
enum class KeyType {
  kBoolean,
  kInteger,   // inclusive range, optionally an allowed set
  kDuration,  // an integer count of `unit` (the key name ends in _ms or _s), inclusive range
  kEnum,      // a string out of `choices`, held as a C++ enum
  kString,    // optionally checked by a named pattern
  kList,      // a TOML array of strings, or (legacy) one comma-separated string
};

// A key's value as the table handles it: bool, integer (durations: the count
// in the key's unit), string (enums: the name), list of strings.
using Value = std::variant<bool, std::int64_t, std::string, std::vector<std::string>>;

struct KeySpec {
  std::string_view key;  // dotted path, e.g. "mqtt.keepalive_s"
  KeyType type = KeyType::kString;
  std::string_view description;
  bool required = false;  // no default: the file must set it
  Value default_value;    // the one default of this key
  std::int64_t min = 0, max = 0;        // integers and durations, inclusive
  std::vector<std::int64_t> allowed;    // integers: the only values accepted (empty: any in range)
  std::string_view allowed_name;        // what a value outside `allowed` is not, e.g. "a standard rate"
  std::string_view unit;                // durations: "ms" or "s"
  std::vector<std::string_view> choices;  // enums: the names, in the enum's order
  std::string_view pattern_name;        // strings and lists: a named rule ("id", "uris", "hostport", ...)
  bool skip_empty_items = false;        // lists: "a,,b" and "a," hold no empty item
  // Reads and writes the bound AgentConfig field. set is given only values
  // that passed validation.
  std::function<Value(const AgentConfig&)> get;
  std::function<void(AgentConfig&, const Value&)> set;
  std::string type_name() const;
};

// A rule over several keys. A problem is reported at keys[0], with the line
// of the first of keys the file sets: "agent.toml:12: mqtt.key_file: ...".
struct CrossKeyRule {
  std::vector<std::string_view> keys;
  std::string_view description;  // for the reference (Markdown)
  // The problems of this rule in a config that passed every key check; empty: fine.
  std::function<std::vector<std::string>(const AgentConfig&)> check;
};

const std::vector<KeySpec>& key_specs();
const std::vector<CrossKeyRule>& cross_key_rules();

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

// Markdown table of every key, then the cross-key rules (docs/config.md
// embeds it verbatim).
std::string reference_markdown();

// A complete agent.toml: every key with its default, commented out, and its
// description, range and type as comments; required keys set to "" (they
// must be filled in). packaging/agent.toml is checked against it.
std::string config_template();

// The effective config as one JSON object {"section.key": value, ...}:
// durations as their count in the key's unit, enums by name, lists as one
// comma-separated string (the form consumers of GetConfig already read).
// Holds no secret: passwords live only in mqtt.password_file.
std::string effective_json(const AgentConfig& config);

// Stable hash of the effective config (FNV-1a over key=value lines), for
// the birth message: lets the cloud see which config a gateway runs.
std::string config_hash(const AgentConfig& config);

}  // namespace eport::config
