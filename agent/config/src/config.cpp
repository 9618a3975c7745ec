// TOML loading and validation driven by the key-spec table below. Adding a
// key means adding one row here; docs/config.md is checked against
// reference_markdown() by a test.
#include "eport/config/config.h"

#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <sstream>
#include <tuple>

// Debian ships toml++ as a shared library built with exceptions: parse errors
// arrive as toml::parse_error, caught right here at the library boundary.
#include <toml++/toml.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "eport/json/json.h"
#include "eport/model/ids.h"

namespace eport::config {

namespace {

KeySpec str_key(std::string_view key, std::string_view def, std::string_view desc,
                std::function<std::string&(AgentConfig&)> f) {
  KeySpec k;
  k.key = key;
  k.default_text = def;
  k.description = desc;
  k.str = std::move(f);
  return k;
}

KeySpec int_key(std::string_view key, std::string_view def, std::int64_t min, std::int64_t max, std::string_view desc,
                std::function<std::int64_t&(AgentConfig&)> f) {
  KeySpec k;
  k.key = key;
  k.default_text = def;
  k.description = desc;
  k.min = min;
  k.max = max;
  k.integer = std::move(f);
  return k;
}

KeySpec bool_key(std::string_view key, std::string_view def, std::string_view desc,
                 std::function<bool&(AgentConfig&)> f) {
  KeySpec k;
  k.key = key;
  k.default_text = def;
  k.description = desc;
  k.boolean = std::move(f);
  return k;
}

KeySpec with_choices(KeySpec k, std::vector<std::string_view> choices) {
  k.choices = std::move(choices);
  return k;
}
KeySpec with_pattern(KeySpec k, std::string_view pattern) {
  k.pattern_name = pattern;
  return k;
}
KeySpec required(KeySpec k) {
  k.required = true;
  return k;
}

std::vector<KeySpec> build_specs() {
  std::vector<KeySpec> s;
  s.push_back(required(with_pattern(str_key("gateway.id", "", "This gateway's id: MQTT client id, certificate CN and a topic level. Lower-case letters, digits and '-', "
                                            "1-32 characters, so always topic-safe (docs/topics.md).",
                                            [](AgentConfig& c) -> std::string& { return c.gateway.id; }),
                                    "id")));
  s.push_back(required(with_pattern(str_key("gateway.site", "", "The port site this gateway belongs to (a topic level), same rule as gateway.id.",
                                            [](AgentConfig& c) -> std::string& { return c.gateway.site; }),
                                    "id")));
  s.push_back(str_key("bridge.unix_socket", "\"/run/eport-agent/bridge.sock\"",
                      "UNIX socket on which telematics units (or eport-sim) connect. Empty: no UNIX socket.",
                      [](AgentConfig& c) -> std::string& { return c.bridge.unix_socket; }));
  s.push_back(with_pattern(str_key("bridge.tcp_listen", "\"\"",
                                   "host:port on which units connect over TCP, e.g. \"0.0.0.0:7700\". Empty: no TCP listener.",
                                   [](AgentConfig& c) -> std::string& { return c.bridge.tcp_listen; }),
                           "hostport"));
  s.push_back(str_key("bridge.serial_ports", "\"\"",
                      "Comma-separated serial devices (UART, USB-serial), one unit per tty (no multi-drop), e.g. "
                      "\"/dev/ttyUSB0,/dev/ttyAMA1\". Empty: none.",
                      [](AgentConfig& c) -> std::string& { return c.bridge.serial_ports; }));
  s.push_back(int_key("bridge.serial_baud", "115200", 1200, 4000000,
                      "Baud rate of every bridge.serial_ports device (8N1, raw, no flow control); one of Linux's "
                      "standard rates: 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 500000, "
                      "576000, 921600, 1000000, 1500000, 2000000, 3000000, 4000000.",
                      [](AgentConfig& c) -> std::int64_t& { return c.bridge.serial_baud; }));
  s.push_back(int_key("bridge.window", "256", 1, 4096,
                      "Readings a unit may have in flight without an ACK (sent to the unit in WELCOME).",
                      [](AgentConfig& c) -> std::int64_t& { return c.bridge.window; }));
  s.push_back(int_key("bridge.max_units", "2000", 1, 100000, "Connections accepted at once; more are closed at accept.",
                      [](AgentConfig& c) -> std::int64_t& { return c.bridge.max_units; }));
  s.push_back(int_key("bridge.max_units_per_address", "64", 1, 100000,
                      "TCP connections from one IP address at once; more are closed at accept (counted, warned "
                      "about at most every 10 s; docs/security.md).",
                      [](AgentConfig& c) -> std::int64_t& { return c.bridge.max_units_per_address; }));
  s.push_back(int_key("bridge.unix_reserve", "64", 0, 100000,
                      "Slots of bridge.max_units that only units on bridge.unix_socket may take: TCP connections "
                      "never lock local units out.",
                      [](AgentConfig& c) -> std::int64_t& { return c.bridge.unix_reserve; }));
  s.push_back(int_key("bridge.hello_deadline_s", "10", 1, 600,
                      "A socket connection with no accepted HELLO this long after it opened is closed "
                      "(docs/firmware-bridge.md 7.1).",
                      [](AgentConfig& c) -> std::int64_t& { return c.bridge.hello_deadline_s; }));
  s.push_back(int_key("bridge.max_unit_ids_per_link", "16", 1, 100000,
                      "Distinct unit ids one link may say HELLO for within a minute; the link that says one more "
                      "is dropped (docs/firmware-bridge.md 7.1).",
                      [](AgentConfig& c) -> std::int64_t& { return c.bridge.max_unit_ids_per_link; }));
  s.push_back(int_key("bridge.max_seq_jump", "16777216", 1, 9007199254740991,
                      "How far a unit's HELLO (its oldest_seq) may lie beyond the last seq stored of it, and how many "
                      "seqs one DISCARD may declare; beyond, the HELLO or DISCARD is refused with NACK SEQ_RANGE "
                      "(docs/firmware-bridge.md 7.1).",
                      [](AgentConfig& c) -> std::int64_t& { return c.bridge.max_seq_jump; }));
  s.push_back(int_key("bridge.idle_ping_s", "30", 1, 3600,
                      "A unit link silent this long gets a PING (docs/firmware-bridge.md 7.9).",
                      [](AgentConfig& c) -> std::int64_t& { return c.bridge.idle_ping_s; }));
  s.push_back(str_key("bridge.unit_keys", "\"\"",
                      "File of the units' keys (\"UNIT_ID HEX64\" per line, mode 0600; written by eport-pki "
                      "unit-key). A unit listed there must authenticate on every link; units on "
                      "bridge.tcp_listen must authenticate always (docs/security.md). Empty: no keys.",
                      [](AgentConfig& c) -> std::string& { return c.bridge.unit_keys; }));
  s.push_back(bool_key("bridge.insecure_tcp_without_auth", "false",
                       "Lets units on bridge.tcp_listen in without authenticating: anyone on the network can then "
                       "claim any unit id not in bridge.unit_keys (logged as a warning at every start).",
                       [](AgentConfig& c) -> bool& { return c.bridge.insecure_tcp_without_auth; }));
  s.push_back(int_key("bridge.dead_after_ping_s", "10", 1, 600,
                      "Still silent this long after the PING: the link is dead (socket closed, tty session forgotten).",
                      [](AgentConfig& c) -> std::int64_t& { return c.bridge.dead_after_ping_s; }));
  s.push_back(int_key("bridge.position_interval_s", "0", 0, 4294967295,
                      "Position reporting interval sent to every unit in SETTINGS after WELCOME; 0: not sent.",
                      [](AgentConfig& c) -> std::int64_t& { return c.bridge.position_interval_s; }));
  s.push_back(int_key("bridge.sensor_interval_s", "0", 0, 4294967295,
                      "Sensor reporting interval sent to every unit in SETTINGS after WELCOME; 0: not sent.",
                      [](AgentConfig& c) -> std::int64_t& { return c.bridge.sensor_interval_s; }));
  s.push_back(with_pattern(str_key("bridge.unit_intervals", "\"\"",
                                   "Per-unit reporting intervals over the two above: comma-separated "
                                   "UNIT=POSITION_S/SENSOR_S, e.g. \"TU-0042=60/900,TU-0043=30/0\" (0: leave as is).",
                                   [](AgentConfig& c) -> std::string& { return c.bridge.unit_intervals; }),
                           "unit_intervals"));
  s.push_back(str_key("store.path", "\"/var/lib/eport-agent/outbox.db\"",
                      "SQLite outbox file (WAL mode: the -wal and -shm files live beside it).",
                      [](AgentConfig& c) -> std::string& { return c.store.path; }));
  s.push_back(with_choices(
      str_key("store.durability", "\"full\"",
              "\"full\": fsync at every commit, an acknowledged reading survives power loss. \"normal\": survives a "
              "crash of the agent; power loss may lose the last commits. See docs/store.md.",
              [](AgentConfig& c) -> std::string& { return c.store.durability; }),
      {"full", "normal"}));
  s.push_back(int_key("store.commit_interval_ms", "10", 0, 10000,
                      "Group commit: longest a received reading waits before its transaction commits (and it is "
                      "acknowledged).",
                      [](AgentConfig& c) -> std::int64_t& { return c.store.commit_interval_ms; }));
  s.push_back(int_key("store.commit_max_readings", "2000", 1, 100000,
                      "Group commit: most readings in one transaction.",
                      [](AgentConfig& c) -> std::int64_t& { return c.store.commit_max_readings; }));
  s.push_back(int_key("store.max_bytes", "268435456", 1 << 20, 1ll << 40,
                      "Most bytes the waiting readings may take (body + 48 bytes each). When reached, see "
                      "store.when_full.",
                      [](AgentConfig& c) -> std::int64_t& { return c.store.max_bytes; }));
  s.push_back(int_key("store.low_water_pct", "90", 10, 99,
                      "Eviction frees space down to this share of the limit, so it runs in bursts, not per reading.",
                      [](AgentConfig& c) -> std::int64_t& { return c.store.low_water_pct; }));
  s.push_back(int_key("store.min_free_bytes", "67108864", 0, 1ll << 40,
                      "Free space kept on the store's filesystem; below it the store counts as full. Leaves room for "
                      "SQLite's journal so that eviction itself can still run on a full disk.",
                      [](AgentConfig& c) -> std::int64_t& { return c.store.min_free_bytes; }));
  s.push_back(with_choices(
      str_key("store.when_full", "\"refuse\"",
              "\"refuse\": never delete an acknowledged reading; refuse new readings, units keep and resend them. "
              "\"evict\": delete acknowledged readings of the lowest class, oldest first, to make room (never an "
              "alarm while anything lower remains; refuse when nothing may give way): trades the delivery promise "
              "for the newest data (docs/store.md).",
              [](AgentConfig& c) -> std::string& { return c.store.when_full; }),
      {"evict", "refuse"}));
  s.push_back(int_key("store.ttl_alarm_s", "0", 0, 10ll * 365 * 86400, "Delete unsent alarms older than this; 0: never.",
                      [](AgentConfig& c) -> std::int64_t& { return c.store.ttl_alarm_s; }));
  s.push_back(int_key("store.ttl_event_s", "0", 0, 10ll * 365 * 86400, "Delete unsent events older than this; 0: never.",
                      [](AgentConfig& c) -> std::int64_t& { return c.store.ttl_event_s; }));
  s.push_back(int_key("store.ttl_telemetry_s", "0", 0, 10ll * 365 * 86400,
                      "Delete unsent telemetry older than this; 0: never.",
                      [](AgentConfig& c) -> std::int64_t& { return c.store.ttl_telemetry_s; }));
  s.push_back(int_key("store.ttl_bulk_s", "0", 0, 10ll * 365 * 86400, "Delete unsent bulk readings older than this; 0: never.",
                      [](AgentConfig& c) -> std::int64_t& { return c.store.ttl_bulk_s; }));
  s.push_back(int_key("store.startup_check_ms", "2000", 0, 600000,
                      "Time budget of the start-up PRAGMA quick_check; past it the agent starts unverified (logged).",
                      [](AgentConfig& c) -> std::int64_t& { return c.store.startup_check_ms; }));
  s.push_back(int_key("store.source_expiry_s", "2592000", 0, 10ll * 365 * 86400,
                      "A source (unit) with no readings waiting that stored nothing for this long is forgotten "
                      "with its last seq (docs/store.md, Sources); 0: never.",
                      [](AgentConfig& c) -> std::int64_t& { return c.store.source_expiry_s; }));
  s.push_back(int_key("store.maintenance_interval_s", "10", 1, 3600,
                      "How often expiry and space reclaim run.",
                      [](AgentConfig& c) -> std::int64_t& { return c.store.maintenance_interval_s; }));
  for (auto [key, def, field] : {
           std::tuple{"priority.position", "\"telemetry\"", &PriorityConfig::position},
           std::tuple{"priority.sensor", "\"telemetry\"", &PriorityConfig::sensor},
           std::tuple{"priority.seal_tampered", "\"alarm\"", &PriorityConfig::seal_tampered},
           std::tuple{"priority.seal_opened", "\"alarm\"", &PriorityConfig::seal_opened},
           std::tuple{"priority.seal_other", "\"event\"", &PriorityConfig::seal_other},
           std::tuple{"priority.door_open", "\"alarm\"", &PriorityConfig::door_open},
           std::tuple{"priority.door_other", "\"event\"", &PriorityConfig::door_other},
           std::tuple{"priority.gap", "\"event\"", &PriorityConfig::gap},
       }) {
    s.push_back(with_choices(str_key(key, def, "Priority class of this kind of reading (drain order, eviction order, topic); "
                                               "priority.gap: declared sequence gaps.",
                                     [f = field](AgentConfig& c) -> std::string& { return c.priority.*f; }),
                             {"alarm", "event", "telemetry", "bulk"}));
  }
  s.push_back(with_pattern(
      str_key("mqtt.uri", "\"tcp://127.0.0.1:1883\"",
              "Broker URI, or several separated by commas for failover (the first is preferred): tcp:// or "
              "mqtt:// (plain), ssl:// or mqtts:// (TLS 1.2+, needs mqtt.ca_file).",
              [](AgentConfig& c) -> std::string& { return c.mqtt.uri; }),
      "uris"));
  s.push_back(int_key("mqtt.failover_return_s", "300", 10, 86400,
                      "Connected to a broker other than the first: try the first again after this long.",
                      [](AgentConfig& c) -> std::int64_t& { return c.mqtt.failover_return_s; }));
  s.push_back(str_key("mqtt.ca_file", "\"\"", "PEM file of the CA(s) that sign the broker's certificate (TLS).",
                      [](AgentConfig& c) -> std::string& { return c.mqtt.ca_file; }));
  s.push_back(str_key("mqtt.cert_file", "\"\"",
                      "PEM client certificate for mutual TLS (CN = gateway.id with the broker configs of "
                      "broker-config/). Empty: no client certificate.",
                      [](AgentConfig& c) -> std::string& { return c.mqtt.cert_file; }));
  s.push_back(str_key("mqtt.key_file", "\"\"",
                      "PEM private key of mqtt.cert_file (keep it 0600 or 0640 with the agent's group; a key "
                      "others may read is warned about).",
                      [](AgentConfig& c) -> std::string& { return c.mqtt.key_file; }));
  s.push_back(bool_key("mqtt.verify_hostname", "true",
                       "Check that the broker's certificate names the host in mqtt.uri. false is refused unless "
                       "mqtt.insecure_skip_verify_hostname = true.",
                       [](AgentConfig& c) -> bool& { return c.mqtt.verify_hostname; }));
  s.push_back(bool_key("mqtt.insecure_skip_verify_hostname", "false",
                       "Allows mqtt.verify_hostname = false: any certificate from mqtt.ca_file's CA, for any host, is "
                       "then accepted as the broker (logged as a warning at every start). Tests and migrations only.",
                       [](AgentConfig& c) -> bool& { return c.mqtt.insecure_skip_verify_hostname; }));
  s.push_back(bool_key("mqtt.insecure_password_over_tcp", "false",
                       "Allows mqtt.password_file with a tcp:// or mqtt:// broker that is not loopback (127.0.0.0/8, "
                       "::1 or localhost): the password then crosses the network in clear.",
                       [](AgentConfig& c) -> bool& { return c.mqtt.insecure_password_over_tcp; }));
  s.push_back(str_key("mqtt.username", "\"\"", "MQTT user name (an alternative or addition to a client certificate).",
                      [](AgentConfig& c) -> std::string& { return c.mqtt.username; }));
  s.push_back(str_key("mqtt.password_file", "\"\"",
                      "File holding the MQTT password (first line, at most 65535 bytes). The password never "
                      "appears in the config, the logs or the config hash. With a tcp:// or mqtt:// broker that is "
                      "not loopback it is refused, see mqtt.insecure_password_over_tcp.",
                      [](AgentConfig& c) -> std::string& { return c.mqtt.password_file; }));
  s.push_back(str_key("mqtt.client_id", "\"\"", "MQTT client id. Empty: the gateway id.",
                      [](AgentConfig& c) -> std::string& { return c.mqtt.client_id; }));
  s.push_back(int_key("mqtt.keepalive_s", "30", 5, 3600,
                      "MQTT keep-alive interval. With publishes waiting for their PUBACK, a link that acknowledges nothing for this "
                      "long is declared dead and reconnected; an idle link is checked by MQTT PINGs (dead after at most "
                      "twice this).",
                      [](AgentConfig& c) -> std::int64_t& { return c.mqtt.keepalive_s; }));
  s.push_back(int_key("mqtt.connect_timeout_s", "10", 1, 300, "Give up one connection attempt after this long.",
                      [](AgentConfig& c) -> std::int64_t& { return c.mqtt.connect_timeout_s; }));
  s.push_back(int_key("mqtt.reconnect_min_ms", "500", 10, 600000, "First delay before reconnecting; doubles after each failure.",
                      [](AgentConfig& c) -> std::int64_t& { return c.mqtt.reconnect_min_ms; }));
  s.push_back(int_key("mqtt.reconnect_max_ms", "30000", 10, 3600000, "Longest delay between reconnection attempts.",
                      [](AgentConfig& c) -> std::int64_t& { return c.mqtt.reconnect_max_ms; }));
  s.push_back(int_key("mqtt.max_inflight", "16", 1, 1000, "Envelopes published and not yet acknowledged (PUBACK) at once.",
                      [](AgentConfig& c) -> std::int64_t& { return c.mqtt.max_inflight; }));
  s.push_back(with_choices(str_key("publish.compression", "\"zstd\"",
                                   "\"zstd\": compress each envelope (subscribers recognise the zstd magic; "
                                   "docs/schema.md). \"none\": plain FlatBuffers.",
                                   [](AgentConfig& c) -> std::string& { return c.publish.compression; }),
                           {"none", "zstd"}));
  s.push_back(int_key("publish.zstd_level", "3", 1, 19, "zstd level: higher is smaller and slower.",
                      [](AgentConfig& c) -> std::int64_t& { return c.publish.zstd_level; }));
  s.push_back(int_key("publish.max_readings", "500", 1, 10000, "Most readings in one envelope.",
                      [](AgentConfig& c) -> std::int64_t& { return c.publish.max_readings; }));
  s.push_back(int_key("publish.max_bytes", "65536", 256, 4194304, "Envelope size goal in bytes of stored readings.",
                      [](AgentConfig& c) -> std::int64_t& { return c.publish.max_bytes; }));
  s.push_back(int_key("publish.max_age_ms", "1000", 0, 600000,
                      "Longest the publisher waits for a fuller envelope once a reading is waiting; longer means "
                      "fewer bytes per reading on a paid link (docs/benchmarks.md). Alarms never wait.",
                      [](AgentConfig& c) -> std::int64_t& { return c.publish.max_age_ms; }));
  s.push_back(int_key("budget.bytes_per_day", "0", 0, 1ll << 50,
                      "Payload bytes per UTC day; when used up only alarms are sent, the rest waits. 0: no limit.",
                      [](AgentConfig& c) -> std::int64_t& { return c.budget.bytes_per_day; }));
  s.push_back(int_key("budget.bytes_per_month", "0", 0, 1ll << 50,
                      "Payload bytes per UTC calendar month, same rule. 0: no limit.",
                      [](AgentConfig& c) -> std::int64_t& { return c.budget.bytes_per_month; }));
  s.push_back(int_key("budget.max_bytes_per_s", "0", 0, 1ll << 40,
                      "Bandwidth cap for everything but alarms, bytes/s. 0: none.",
                      [](AgentConfig& c) -> std::int64_t& { return c.budget.max_bytes_per_s; }));
  s.push_back(int_key("health.interval_s", "60", 0, 86400,
                      "Publish a health message on eport/v1/<site>/<gateway>/health this often. 0: never.",
                      [](AgentConfig& c) -> std::int64_t& { return c.health.interval_s; }));
  s.push_back(bool_key("commands.enabled", "true",
                       "Accept commands on eport/v1/<site>/<gateway>/cmd (replies on .../reply).",
                       [](AgentConfig& c) -> bool& { return c.commands.enabled; }));
  s.push_back(int_key("commands.max_age_s", "300", 0, 86400,
                      "A command whose issued_utc_ms is older than this, missing, or more than 60 s in the future "
                      "(clocks apart) is refused, not executed. 0: no check.",
                      [](AgentConfig& c) -> std::int64_t& { return c.commands.max_age_s; }));
  s.push_back(with_choices(str_key("gnss.source", "\"none\"",
                                   "The gateway's own position: \"serial\" (an NMEA receiver on gnss.device), \"gpsd\" "
                                   "(a gpsd daemon) or \"none\". Positions go out under gateway.id. See docs/gnss.md.",
                                   [](AgentConfig& c) -> std::string& { return c.gnss.source; }),
                           {"none", "serial", "gpsd"}));
  s.push_back(str_key("gnss.device", "\"/dev/ttyACM0\"", "NMEA 0183 receiver tty (gnss.source = \"serial\").",
                      [](AgentConfig& c) -> std::string& { return c.gnss.device; }));
  s.push_back(int_key("gnss.baud", "9600", 4800, 230400,
                      "Receiver baud rate: 4800, 9600, 19200, 38400, 57600, 115200 or 230400.",
                      [](AgentConfig& c) -> std::int64_t& { return c.gnss.baud; }));
  s.push_back(str_key("gnss.gpsd_host", "\"127.0.0.1\"", "gpsd host (gnss.source = \"gpsd\").",
                      [](AgentConfig& c) -> std::string& { return c.gnss.gpsd_host; }));
  s.push_back(int_key("gnss.gpsd_port", "2947", 1, 65535, "gpsd port.",
                      [](AgentConfig& c) -> std::int64_t& { return c.gnss.gpsd_port; }));
  s.push_back(int_key("gnss.min_interval_ms", "1000", 0, 3600000,
                      "At most one gateway position per this much receiver time; 0: every epoch.",
                      [](AgentConfig& c) -> std::int64_t& { return c.gnss.min_interval_ms; }));
  s.push_back(bool_key("gnss.require_fix", "true", "Publish only epochs with a fix.",
                       [](AgentConfig& c) -> bool& { return c.gnss.require_fix; }));
  s.push_back(bool_key("gnss.require_checksum", "true",
                       "Reject NMEA sentences without a *hh checksum (turn off only for receivers that never send one).",
                       [](AgentConfig& c) -> bool& { return c.gnss.require_checksum; }));
  s.push_back(with_choices(str_key("log.level", "\"info\"", "Least severe level logged to stderr.",
                                   [](AgentConfig& c) -> std::string& { return c.log.level; }),
                           {"error", "warn", "info", "debug"}));
  return s;
}

std::string mode_text(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

bool is_id(std::string_view v) {
  if (v.empty() || v.size() > 32) return false;
  for (std::size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0);
    if (!ok) return false;
  }
  return true;
}

bool parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5) return false;
  long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  return v >= 1 && v <= 65535;
}

bool is_hostport(std::string_view v) {
  auto colon = v.rfind(':');
  return colon != std::string_view::npos && colon > 0 && parse_port(v.substr(colon + 1));
}

bool is_uri(std::string_view v) {
  for (std::string_view scheme : {"tcp://", "mqtt://", "ssl://", "mqtts://"}) {
    if (v.substr(0, scheme.size()) == scheme) return is_hostport(v.substr(scheme.size()));
  }
  return false;
}

std::vector<std::string> split_commas(const std::string& v) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    auto comma = v.find(',', start);
    auto item = v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    while (!item.empty() && item.front() == ' ') item.erase(0, 1);
    while (!item.empty() && item.back() == ' ') item.pop_back();
    out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

bool is_uri_list(std::string_view v) {
  auto items = split_commas(std::string(v));
  for (const auto& i : items)
    if (!is_uri(i)) return false;
  return !items.empty() && items.size() <= 8;
}

bool is_tls(std::string_view uri) { return uri.substr(0, 6) == "ssl://" || uri.substr(0, 8) == "mqtts://"; }

// The host of scheme://host:port ([v6] brackets removed), or "".
std::string uri_host(std::string_view uri) {
  auto sep = uri.find("://");
  if (sep == std::string_view::npos) return "";
  auto hp = uri.substr(sep + 3);
  auto colon = hp.rfind(':');
  if (colon == std::string_view::npos) return "";
  auto host = hp.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return std::string(host);
}

// Reads all of a file; false (and errno) when it cannot be opened or read.
bool slurp(const std::string& path, std::string& out, std::size_t limit = 1 << 20) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  char buf[4096];
  std::size_t n;
  while (out.size() < limit && (n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  bool ok = !std::ferror(f);
  int e = errno;
  std::fclose(f);
  errno = e;
  return ok;
}

std::string pattern_error(std::string_view pattern) {
  if (pattern == "id") return "must be 1-32 of a-z, 0-9 and '-' (not first)";
  if (pattern == "hostport") return "must be host:port with a port 1-65535";
  if (pattern == "uri") return "must be tcp://host:port or mqtt://host:port";
  if (pattern == "uris") return "must be one to eight of tcp://, mqtt://, ssl:// or mqtts:// host:port, comma-separated";
  if (pattern == "unit_intervals")
    return "must be comma-separated UNIT=POSITION_S/SENSOR_S entries, e.g. \"TU-0042=60/900\" (topic-safe unit ids of "
           "at most 32 bytes, each once; seconds 0..4294967295)";
  return "invalid";
}

bool matches(std::string_view pattern, std::string_view v) {
  if (pattern == "id") return is_id(v);
  if (pattern == "hostport") return is_hostport(v);
  if (pattern == "uri") return is_uri(v);
  if (pattern == "uris") return is_uri_list(v);
  if (pattern == "unit_intervals") return parse_unit_intervals(v).ok();
  return true;
}

std::string unquote(std::string_view def) {
  if (def.size() >= 2 && def.front() == '"' && def.back() == '"') return std::string(def.substr(1, def.size() - 2));
  return std::string(def);
}

void apply_defaults(AgentConfig& c) {
  for (const auto& k : key_specs()) {
    if (k.required) continue;
    if (k.str) {
      k.str(c) = unquote(k.default_text);
    } else if (k.integer) {
      k.integer(c) = std::strtoll(std::string(k.default_text).c_str(), nullptr, 10);
    } else {
      k.boolean(c) = k.default_text == "true";
    }
  }
}

const KeySpec* find_spec(std::string_view key) {
  for (const auto& k : key_specs())
    if (k.key == key) return &k;
  return nullptr;
}

bool is_section(std::string_view name) {
  for (const auto& k : key_specs()) {
    auto dot = k.key.find('.');
    if (k.key.substr(0, dot) == name) return true;
  }
  return false;
}

class Validator {
 public:
  Validator(std::string_view source) : source_(source) {}

  void error(const toml::source_region& where, std::string_view key, const std::string& what) {
    std::ostringstream o;
    o << source_;
    if (where.begin.line > 0) o << ':' << where.begin.line;
    o << ": ";
    if (!key.empty()) o << key << ": ";
    o << what;
    errors_.push_back(o.str());
  }

  void check_leaf(const KeySpec& spec, const toml::node& node, AgentConfig& out) {
    if (spec.str) {
      const auto* v = node.as_string();
      if (v == nullptr) return error(node.source(), spec.key, std::string("expected a string, got ") + type_of(node));
      const std::string& s = v->get();
      if (!spec.choices.empty()) {
        bool found = false;
        std::string list;
        for (auto c : spec.choices) {
          found |= (c == s);
          list += (list.empty() ? "" : ", ") + std::string(c);
        }
        if (!found) return error(node.source(), spec.key, "\"" + s + "\" is not one of: " + list);
      }
      if (spec.pattern_name == "id") {
        // Topic levels: the project-wide topic-safe rule first (the message
        // names the byte and the rule), then this config's stricter id rule.
        if (auto why = model::topic_id_problem(s); !why.empty()) {
          return error(node.source(), spec.key, model::quoted_id(s) + " is not topic-safe: " + why);
        }
      }
      if (!spec.pattern_name.empty() && !(s.empty() && !spec.required) && !matches(spec.pattern_name, s)) {
        return error(node.source(), spec.key, "\"" + s + "\" " + pattern_error(spec.pattern_name));
      }
      spec.str(out) = s;
    } else if (spec.boolean) {
      const auto* v = node.as_boolean();
      if (v == nullptr) return error(node.source(), spec.key, std::string("expected true or false, got ") + type_of(node));
      spec.boolean(out) = v->get();
    } else {
      const auto* v = node.as_integer();
      if (v == nullptr) return error(node.source(), spec.key, std::string("expected an integer, got ") + type_of(node));
      std::int64_t n = v->get();
      if (n < spec.min || n > spec.max) {
        return error(node.source(), spec.key,
                     std::to_string(n) + " is out of range " + std::to_string(spec.min) + ".." + std::to_string(spec.max));
      }
      spec.integer(out) = n;
    }
  }

  static const char* type_of(const toml::node& n) {
    switch (n.type()) {
      case toml::node_type::string: return "a string";
      case toml::node_type::integer: return "an integer";
      case toml::node_type::floating_point: return "a float";
      case toml::node_type::boolean: return "a boolean";
      case toml::node_type::table: return "a table";
      case toml::node_type::array: return "an array";
      default: return "a date/time";
    }
  }

  std::vector<std::string> errors_;
  std::string source_;
};

}  // namespace

const std::vector<KeySpec>& key_specs() {
  static const std::vector<KeySpec> specs = build_specs();
  return specs;
}

AgentConfig defaults() {
  AgentConfig c;
  apply_defaults(c);
  c.gateway.id = "gw-dev";
  c.gateway.site = "dev";
  return c;
}

namespace {

// Parses and validates into out; the problems found, each a full line. With a
// TOML syntax error, syntax_ok is false and out holds only defaults.
std::vector<std::string> load_impl(std::string_view text, std::string_view source_name, AgentConfig& out,
                                   bool& syntax_ok) {
  apply_defaults(out);
  syntax_ok = false;
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    return {std::string(source_name) + ":" + std::to_string(e.source().begin.line) + ": TOML syntax error: " +
            std::string(e.description())};
  }
  syntax_ok = true;
  Validator v(source_name);
  std::map<std::string_view, bool> seen;

  for (const auto& [section_key, section_node] : root) {
    std::string_view section = section_key.str();
    const auto* table = section_node.as_table();
    if (table == nullptr || !is_section(section)) {
      if (table == nullptr && find_spec(section) == nullptr && !is_section(section)) {
        v.error(section_node.source(), section, "unknown key");
      } else if (table == nullptr) {
        v.error(section_node.source(), section, "expected a table [" + std::string(section) + "]");
      } else {
        v.error(section_node.source(), section, "unknown section");
      }
      continue;
    }
    for (const auto& [leaf_key, leaf_node] : *table) {
      std::string full = std::string(section) + "." + std::string(leaf_key.str());
      const KeySpec* spec = find_spec(full);
      if (spec == nullptr) {
        v.error(leaf_node.source(), full, "unknown key");
        continue;
      }
      seen[spec->key] = true;
      v.check_leaf(*spec, leaf_node, out);
    }
  }
  for (const auto& k : key_specs()) {
    if (k.required && !seen[k.key]) v.error(toml::source_region{}, k.key, "required key is missing");
  }
  if (out.mqtt.reconnect_min_ms > out.mqtt.reconnect_max_ms) {
    v.error(toml::source_region{}, "mqtt.reconnect_min_ms", "must not exceed mqtt.reconnect_max_ms");
  }
  if (out.bridge.unix_socket.empty() && out.bridge.tcp_listen.empty() && out.bridge.serial_ports.empty()) {
    v.error(toml::source_region{}, "bridge",
            "no transport: set bridge.unix_socket, bridge.tcp_listen or bridge.serial_ports");
  }
  if (!out.bridge.unix_socket.empty() && !out.bridge.tcp_listen.empty() &&
      out.bridge.unix_reserve >= out.bridge.max_units) {
    v.error(toml::source_region{}, "bridge.unix_reserve",
            "must be below bridge.max_units (" + std::to_string(out.bridge.max_units) +
                ") when TCP is served too, or no TCP unit can ever connect");
  }
  for (auto baud : {out.gnss.baud}) {
    if (baud != 4800 && baud != 9600 && baud != 19200 && baud != 38400 && baud != 57600 && baud != 115200 &&
        baud != 230400) {
      v.error(toml::source_region{}, "gnss.baud", std::to_string(baud) + " is not a supported rate");
    }
  }
  {
    static constexpr std::int64_t kRates[] = {1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200,
                                              230400, 460800, 500000, 576000, 921600, 1000000, 1500000,
                                              2000000, 3000000, 4000000};
    if (std::find(std::begin(kRates), std::end(kRates), out.bridge.serial_baud) == std::end(kRates)) {
      v.error(toml::source_region{}, "bridge.serial_baud",
              std::to_string(out.bridge.serial_baud) + " is not a standard rate");
    }
  }
  bool any_tls = false;
  for (const auto& u : split_commas(out.mqtt.uri)) any_tls |= is_tls(u);
  if (any_tls && out.mqtt.ca_file.empty()) {
    v.error(toml::source_region{}, "mqtt.ca_file", "required with an ssl:// or mqtts:// broker");
  }
  if (out.mqtt.cert_file.empty() != out.mqtt.key_file.empty()) {
    v.error(toml::source_region{}, "mqtt.key_file", "mqtt.cert_file and mqtt.key_file go together");
  }
  if (!any_tls && !out.mqtt.cert_file.empty()) {
    v.error(toml::source_region{}, "mqtt.cert_file", "a client certificate needs an ssl:// or mqtts:// broker");
  }
  if (!out.mqtt.password_file.empty() && out.mqtt.username.empty()) {
    v.error(toml::source_region{}, "mqtt.password_file", "needs mqtt.username");
  }
  for (const auto& u : split_commas(out.mqtt.uri)) {
    auto host = uri_host(u);
    if (host == "invalid" || (host.size() > 8 && host.compare(host.size() - 8, 8, ".invalid") == 0)) {
      v.error(toml::source_region{}, "mqtt.uri",
              u + " is a placeholder (.invalid never resolves): set your broker's host name");
    }
  }
  if (any_tls && !out.mqtt.verify_hostname && !out.mqtt.insecure_skip_verify_hostname) {
    v.error(toml::source_region{}, "mqtt.verify_hostname",
            "false accepts a certificate issued for any other host as the broker; set "
            "mqtt.insecure_skip_verify_hostname = true to allow it");
  }
  if (!out.mqtt.password_file.empty() && !out.mqtt.insecure_password_over_tcp) {
    for (const auto& u : split_commas(out.mqtt.uri)) {
      if (!is_tls(u) && !is_loopback_uri(u)) {
        v.error(toml::source_region{}, "mqtt.password_file",
                "the password would cross the network in clear to " + u +
                    " (not TLS, not loopback): use ssl:// or set mqtt.insecure_password_over_tcp = true");
      }
    }
  }
  if (!out.bridge.tcp_listen.empty() && out.bridge.unit_keys.empty() && !out.bridge.insecure_tcp_without_auth) {
    v.error(toml::source_region{}, "bridge.tcp_listen",
            "units on TCP must authenticate: set bridge.unit_keys (eport-pki unit-key), or "
            "bridge.insecure_tcp_without_auth = true to let any unit id in");
  }
  if (out.gnss.source == "serial" && out.gnss.device.empty()) {
    v.error(toml::source_region{}, "gnss.device", "must be set when gnss.source = \"serial\"");
  }
  if (out.store.path.empty()) v.error(toml::source_region{}, "store.path", "must not be empty");
  if (out.mqtt.client_id.empty()) out.mqtt.client_id = out.gateway.id;
  return v.errors_;
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string all;
  for (const auto& e : lines) all += (all.empty() ? "" : "\n") + e;
  return all;
}

}  // namespace

Result<AgentConfig> load_string(std::string_view text, std::string_view source_name) {
  AgentConfig out;
  bool syntax_ok = false;
  auto errors = load_impl(text, source_name, out, syntax_ok);
  if (!errors.empty()) return Error{join_lines(errors)};
  return out;
}

bool is_loopback_uri(std::string_view uri) {
  auto host = uri_host(uri);
  if (host == "localhost") return true;
  in_addr a4{};
  if (::inet_pton(AF_INET, host.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  in6_addr a6{};
  if (::inet_pton(AF_INET6, host.c_str(), &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
  return false;
}

Result<std::string> read_secret(const std::string& path) {
  std::string text;
  if (!slurp(path, text, kMaxPasswordBytes + 3)) return Error{"cannot read " + path + ": " + std::strerror(errno)};
  auto eol = text.find('\n');
  std::string line = text.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.size() > kMaxPasswordBytes) {
    return Error{path + ": the password is longer than " + std::to_string(kMaxPasswordBytes) +
                 " bytes (MQTT's limit); it is not truncated"};
  }
  if (line.empty()) return Error{path + ": the first line (the password) is empty"};
  return line;
}

std::vector<std::string> check_files(const AgentConfig& c) {
  std::vector<std::string> errors;
  auto pem = [&](std::string_view key, const std::string& path, std::string_view what) {
    if (path.empty()) return;
    std::string text;
    if (!slurp(path, text)) {
      errors.push_back(std::string(key) + ": cannot read " + path + ": " + std::strerror(errno));
      return;
    }
    bool found = false;
    for (std::size_t at = text.find("-----BEGIN "); at != std::string::npos; at = text.find("-----BEGIN ", at + 1)) {
      auto end = text.find("-----", at + 11);
      if (end == std::string::npos) break;
      std::string label = text.substr(at + 11, end - at - 11);
      if (what == "key" ? label.size() >= 11 && label.compare(label.size() - 11, 11, "PRIVATE KEY") == 0
                        : label == "CERTIFICATE" || label == "TRUSTED CERTIFICATE") {
        found = true;
        break;
      }
    }
    if (!found) {
      errors.push_back(std::string(key) + ": " + path + " holds no PEM " +
                       (what == "key" ? "private key (-----BEGIN ... PRIVATE KEY-----)"
                                      : "certificate (-----BEGIN CERTIFICATE-----)"));
    }
  };
  pem("mqtt.ca_file", c.mqtt.ca_file, "certificate");
  pem("mqtt.cert_file", c.mqtt.cert_file, "certificate");
  pem("mqtt.key_file", c.mqtt.key_file, "key");
  if (!c.mqtt.password_file.empty()) {
    if (auto pw = read_secret(c.mqtt.password_file); !pw) errors.push_back("mqtt.password_file: " + pw.error());
  }
  if (!c.bridge.unit_keys.empty()) {
    if (auto keys = read_unit_keys(c.bridge.unit_keys); !keys) errors.push_back("bridge.unit_keys: " + keys.error());
  }
  return errors;
}

Result<std::map<std::string, std::array<std::uint8_t, 32>>> read_unit_keys(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & S_IROTH) != 0) {
    return Error{path + " is readable by every local user (mode " + mode_text(st.st_mode) +
                 "): it holds the units' keys; chmod 600"};
  }
  std::string text;
  if (!slurp(path, text, std::size_t(16) << 20)) return Error{"cannot read " + path + ": " + std::strerror(errno)};
  std::map<std::string, std::array<std::uint8_t, 32>> keys;
  std::size_t line_no = 0;
  for (std::size_t at = 0; at < text.size();) {
    auto eol = text.find('\n', at);
    std::string line = text.substr(at, eol == std::string::npos ? std::string::npos : eol - at);
    at = eol == std::string::npos ? text.size() : eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    auto where = path + ":" + std::to_string(line_no) + ": ";
    std::istringstream words(line);
    std::string unit, hex, extra;
    words >> unit >> hex >> extra;
    if (hex.empty() || !extra.empty()) return Error{where + "expected \"UNIT_ID HEX\" (two fields)"};
    if (auto problem = model::topic_id_problem(unit, 32); !problem.empty()) {
      return Error{where + "unit id " + model::quoted_id(unit) + " " + problem};
    }
    if (hex.size() != 64 || hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
      return Error{where + "the key of unit " + unit + " is not 64 hex digits (32 bytes)"};
    }
    std::array<std::uint8_t, 32> key{};
    for (std::size_t i = 0; i < 32; ++i) key[i] = static_cast<std::uint8_t>(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
    if (!keys.emplace(unit, key).second) return Error{where + "unit " + unit + " is listed twice"};
  }
  return keys;
}

std::vector<std::string> secret_file_warnings(const AgentConfig& c) {
  std::vector<std::string> out;
  for (auto [key, path] : {std::pair<std::string_view, const std::string*>{"mqtt.key_file", &c.mqtt.key_file},
                           std::pair<std::string_view, const std::string*>{"mqtt.password_file", &c.mqtt.password_file},
                           std::pair<std::string_view, const std::string*>{"bridge.unit_keys", &c.bridge.unit_keys}}) {
    struct stat st{};
    if (path->empty() || ::stat(path->c_str(), &st) != 0) continue;
    if ((st.st_mode & S_IROTH) != 0) {
      out.push_back(std::string(key) + ": " + *path + " is readable by every local user (mode " +
                    mode_text(st.st_mode) + "): chmod o-rwx");
    } else if ((st.st_mode & S_IRGRP) != 0 && st.st_gid != ::getegid()) {
      out.push_back(std::string(key) + ": " + *path + " is readable by group " + std::to_string(st.st_gid) +
                    ", not the agent's own group (mode " + mode_text(st.st_mode) + "): chmod g-rwx or chgrp");
    }
  }
  return out;
}

Result<AgentConfig> load_file(const std::string& path) {
  std::string text;
  if (!slurp(path, text, std::size_t(16) << 20)) return Error{path + ": cannot open config file: " + std::strerror(errno)};
  AgentConfig out;
  bool syntax_ok = false;
  auto errors = load_impl(text, path, out, syntax_ok);
  // The files are checked even when other keys are wrong: every problem at once.
  if (syntax_ok) {
    for (const auto& e : check_files(out)) errors.push_back(path + ": " + e);
  }
  if (!errors.empty()) return Error{join_lines(errors)};
  return out;
}

std::string reference_markdown() {
  std::string out = "| key | type | default | range / values | description |\n|---|---|---|---|---|\n";
  for (const auto& k : key_specs()) {
    std::string range;
    if (k.boolean) {
      range = "`true`, `false`";
    } else if (k.integer) {
      range = std::to_string(k.min) + " .. " + std::to_string(k.max);
    } else if (!k.choices.empty()) {
      for (auto c : k.choices) range += (range.empty() ? "" : ", ") + std::string("`") + std::string(c) + "`";
    } else if (!k.pattern_name.empty()) {
      range = pattern_error(k.pattern_name);
    }
    out += "| `" + std::string(k.key) + "` | " + std::string(k.type_name()) + " | " +
           (k.required ? std::string("required") : "`" + std::string(k.default_text) + "`") + " | " + range + " | " +
           std::string(k.description) + " |\n";
  }
  return out;
}

std::vector<std::string> broker_uris(const AgentConfig& config) { return split_commas(config.mqtt.uri); }

model::PriorityRules PriorityConfig::rules() const {
  auto p = [](const std::string& name) { return model::priority_from_name(name).value_or(model::Priority::kTelemetry); };
  model::PriorityRules r;
  r.position = p(position);
  r.sensor = p(sensor);
  r.seal_tampered = p(seal_tampered);
  r.seal_opened = p(seal_opened);
  r.seal_other = p(seal_other);
  r.door_open = p(door_open);
  r.door_other = p(door_other);
  r.gap = p(gap);
  return r;
}

Result<std::vector<UnitIntervals>> parse_unit_intervals(std::string_view text) {
  std::vector<UnitIntervals> out;
  auto number = [](std::string_view d, std::uint32_t& v) {
    if (d.empty() || d.size() > 10 || d.find_first_not_of("0123456789") != std::string_view::npos) return false;
    auto n = std::strtoull(std::string(d).c_str(), nullptr, 10);
    if (n > 4294967295ull) return false;
    v = static_cast<std::uint32_t>(n);
    return true;
  };
  for (const auto& raw : split_commas(std::string(text))) {
    std::string_view e = raw;
    while (!e.empty() && e.front() == ' ') e.remove_prefix(1);
    while (!e.empty() && e.back() == ' ') e.remove_suffix(1);
    if (e.empty()) continue;
    auto eq = e.find('=');
    auto slash = e.find('/', eq == std::string_view::npos ? 0 : eq);
    if (eq == std::string_view::npos || slash == std::string_view::npos) return Error{"entry \"" + std::string(e) + "\""};
    UnitIntervals u;
    u.unit_id = std::string(e.substr(0, eq));
    if (!model::topic_id_problem(u.unit_id, 32).empty()) return Error{"unit id in \"" + std::string(e) + "\""};
    if (!number(e.substr(eq + 1, slash - eq - 1), u.position_s) || !number(e.substr(slash + 1), u.sensor_s)) {
      return Error{"seconds in \"" + std::string(e) + "\""};
    }
    for (const auto& seen : out) {
      if (seen.unit_id == u.unit_id) return Error{"unit " + u.unit_id + " listed twice"};
    }
    out.push_back(std::move(u));
  }
  return out;
}

std::string effective_json(const AgentConfig& config) {
  AgentConfig copy = config;
  json::Object out;  // strings through eport::json: control bytes escaped, not dropped
  for (const auto& k : key_specs()) {
    if (k.str) out.add(k.key, k.str(copy));
    else if (k.integer) out.add(k.key, k.integer(copy));
    else out.add(k.key, k.boolean(copy));
  }
  return std::move(out).str();
}

std::string config_hash(const AgentConfig& config) {
  AgentConfig copy = config;
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&](std::string_view s) {
    for (unsigned char ch : s) {
      h ^= ch;
      h *= 1099511628211ull;
    }
  };
  for (const auto& k : key_specs()) {
    mix(k.key);
    mix("=");
    mix(k.str ? k.str(copy) : k.integer ? std::to_string(k.integer(copy)) : (k.boolean(copy) ? "true" : "false"));
    mix("\n");
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, h);
  return buf;
}

}  // namespace eport::config
