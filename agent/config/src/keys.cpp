// The agent's key table: one row per key (type, the one default, range or
// allowed values, description, the AgentConfig field it sets) and the rules
// over several keys. Adding a key means adding one row here and its field in
// config.h; docs/config.md (--config-reference) and packaging/agent.toml
// (--config-template) are checked against this table by tests.
#include <algorithm>
#include <string>

#include "eport/model/reading.h"
#include "internal.h"

namespace eport::config {

namespace {

using namespace detail;

constexpr std::int64_t kTenYears_s = 10ll * 365 * 86400;

std::vector<KeySpec> build_specs() {
  std::vector<KeySpec> s;
  auto required = [](KeySpec k) {
    k.required = true;
    return k;
  };
  auto allowed = [](KeySpec k, std::vector<std::int64_t> values, std::string_view name) {
    k.allowed = std::move(values);
    k.allowed_name = name;
    return k;
  };
  s.push_back(required(string("gateway.id", "",
                              "This gateway's id: MQTT client id, certificate CN and a topic level. Lower-case letters, "
                              "digits and '-', 1-32 characters, so always topic-safe (docs/topics.md).",
                              EPORT_FIELD(gateway.id), "id")));
  s.push_back(required(string("gateway.site", "",
                              "The port site this gateway belongs to (a topic level), same rule as gateway.id.",
                              EPORT_FIELD(gateway.site), "id")));
  s.push_back(string("bridge.unix_socket", "/run/eport-agent/bridge.sock",
                     "UNIX socket on which telematics units (or eport-sim) connect. Empty: no UNIX socket.",
                     EPORT_FIELD(bridge.unix_socket)));
  s.push_back(string("bridge.tcp_listen", "",
                     "host:port on which units connect over TCP, e.g. \"0.0.0.0:7700\". Empty: no TCP listener.",
                     EPORT_FIELD(bridge.tcp_listen), "hostport"));
  s.push_back(list("bridge.serial_ports", {},
                   "Serial devices (UART, USB-serial), one unit per tty (no multi-drop), e.g. "
                   "[\"/dev/ttyUSB0\", \"/dev/ttyAMA1\"] (or the older form \"/dev/ttyUSB0,/dev/ttyAMA1\"). "
                   "Empty: none.",
                   EPORT_FIELD(bridge.serial_ports), {}, true));
  s.push_back(allowed(integer("bridge.serial_baud", 115200, 1200, 4000000,
                              "Baud rate of every bridge.serial_ports device (8N1, raw, no flow control); one of "
                              "Linux's standard rates.",
                              EPORT_FIELD(bridge.serial_baud)),
                      {1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600,
                       1000000, 1500000, 2000000, 3000000, 4000000},
                      "a standard rate"));
  s.push_back(integer("bridge.window", 256, 1, 4096,
                      "Readings a unit may have in flight without an ACK (sent to the unit in WELCOME).",
                      EPORT_FIELD(bridge.window)));
  s.push_back(integer("bridge.max_units", 2000, 1, 100000, "Connections accepted at once; more are closed at accept.",
                      EPORT_FIELD(bridge.max_units)));
  s.push_back(integer("bridge.max_units_per_address", 64, 1, 100000,
                      "TCP connections from one IP address at once; more are closed at accept (counted, warned "
                      "about at most every 10 s; docs/security.md).",
                      EPORT_FIELD(bridge.max_units_per_address)));
  s.push_back(integer("bridge.unix_reserve", 64, 0, 100000,
                      "Slots of bridge.max_units that only units on bridge.unix_socket may take: TCP connections "
                      "never lock local units out.",
                      EPORT_FIELD(bridge.unix_reserve)));
  s.push_back(duration("bridge.hello_deadline_s", 10, 1, 600,
                       "A socket connection with no accepted HELLO this long after it opened is closed "
                       "(docs/firmware-bridge.md 7.1).",
                       EPORT_FIELD(bridge.hello_deadline_s)));
  s.push_back(integer("bridge.max_unit_ids_per_link", 16, 1, 100000,
                      "Distinct unit ids one link may say HELLO for within a minute; the link that says one more "
                      "is dropped (docs/firmware-bridge.md 7.1).",
                      EPORT_FIELD(bridge.max_unit_ids_per_link)));
  s.push_back(integer("bridge.max_seq_jump", 16777216, 1, 9007199254740991,
                      "How far a unit's HELLO (its oldest_seq) may lie beyond the last seq stored of it, and how many "
                      "seqs one DISCARD may declare; beyond, the HELLO or DISCARD is refused with NACK SEQ_RANGE "
                      "(docs/firmware-bridge.md 7.1).",
                      EPORT_FIELD(bridge.max_seq_jump)));
  s.push_back(duration("bridge.idle_ping_s", 30, 1, 3600,
                       "A unit link silent this long gets a PING (docs/firmware-bridge.md 7.9).",
                       EPORT_FIELD(bridge.idle_ping_s)));
  s.push_back(string("bridge.unit_keys", "",
                     "File of the units' keys (\"UNIT_ID HEX64\" per line, mode 0600; written by eport-pki "
                     "unit-key). A unit listed there must authenticate on every link; units on "
                     "bridge.tcp_listen must authenticate always (docs/security.md). Empty: no keys.",
                     EPORT_FIELD(bridge.unit_keys)));
  s.push_back(boolean("bridge.insecure_tcp_without_auth", false,
                      "Lets units on bridge.tcp_listen in without authenticating: anyone on the network can then "
                      "claim any unit id not in bridge.unit_keys (logged as a warning at every start).",
                      EPORT_FIELD(bridge.insecure_tcp_without_auth)));
  s.push_back(duration("bridge.dead_after_ping_s", 10, 1, 600,
                       "Still silent this long after the PING: the link is dead (socket closed, tty session forgotten).",
                       EPORT_FIELD(bridge.dead_after_ping_s)));
  s.push_back(duration("bridge.position_interval_s", 0, 0, 4294967295,
                       "Position reporting interval sent to every unit in SETTINGS after WELCOME; 0: not sent.",
                       EPORT_FIELD(bridge.position_interval_s)));
  s.push_back(duration("bridge.sensor_interval_s", 0, 0, 4294967295,
                       "Sensor reporting interval sent to every unit in SETTINGS after WELCOME; 0: not sent.",
                       EPORT_FIELD(bridge.sensor_interval_s)));
  {
    // Held parsed (UnitIntervals); the table sees the entries as strings.
    KeySpec k;
    k.key = "bridge.unit_intervals";
    k.type = KeyType::kList;
    k.description =
        "Per-unit reporting intervals over the two above: UNIT=POSITION_S/SENSOR_S entries, e.g. "
        "[\"TU-0042=60/900\", \"TU-0043=30/0\"] (or the older form \"TU-0042=60/900,TU-0043=30/0\"; 0: leave as is).";
    k.default_value = std::vector<std::string>{};
    k.pattern_name = "unit_intervals";
    k.skip_empty_items = true;
    k.get = [](const AgentConfig& c) -> Value {
      std::vector<std::string> out;
      for (const auto& u : c.bridge.unit_intervals) {
        out.push_back(u.unit_id + "=" + std::to_string(u.position_s) + "/" + std::to_string(u.sensor_s));
      }
      return out;
    };
    k.set = [](AgentConfig& c, const Value& v) {
      auto parsed = parse_unit_intervals(std::get<std::vector<std::string>>(v));
      c.bridge.unit_intervals = parsed ? std::move(*parsed) : std::vector<UnitIntervals>{};
    };
    s.push_back(std::move(k));
  }
  s.push_back(string("store.path", "/var/lib/eport-agent/outbox.db",
                     "SQLite outbox file (WAL mode: the -wal and -shm files live beside it).",
                     EPORT_FIELD(store.path)));
  s.push_back(enumeration("store.durability", Durability::kFull,
                          {{"full", Durability::kFull}, {"normal", Durability::kNormal}},
                          "\"full\": fsync at every commit, an acknowledged reading survives power loss. \"normal\": "
                          "survives a crash of the agent; power loss may lose the last commits. See docs/store.md.",
                          EPORT_FIELD(store.durability)));
  s.push_back(duration("store.commit_interval_ms", 10, 0, 10000,
                       "Group commit: longest a received reading waits before its transaction commits (and it is "
                       "acknowledged).",
                       EPORT_FIELD(store.commit_interval_ms)));
  s.push_back(integer("store.commit_max_readings", 2000, 1, 100000, "Group commit: most readings in one transaction.",
                      EPORT_FIELD(store.commit_max_readings)));
  s.push_back(integer("store.max_bytes", 268435456, 1 << 20, 1ll << 40,
                      "Most bytes the waiting readings may take (body + 48 bytes each). When reached, see "
                      "store.when_full.",
                      EPORT_FIELD(store.max_bytes)));
  s.push_back(integer("store.low_water_pct", 90, 10, 99,
                      "Eviction frees space down to this share of the limit, so it runs in bursts, not per reading.",
                      EPORT_FIELD(store.low_water_pct)));
  s.push_back(integer("store.min_free_bytes", 67108864, 0, 1ll << 40,
                      "Free space kept on the store's filesystem; below it the store counts as full. Leaves room for "
                      "SQLite's journal so that eviction itself can still run on a full disk.",
                      EPORT_FIELD(store.min_free_bytes)));
  s.push_back(enumeration(
      "store.when_full", WhenFull::kRefuse, {{"evict", WhenFull::kEvict}, {"refuse", WhenFull::kRefuse}},
      "\"refuse\": never delete an acknowledged reading; refuse new readings, units keep and resend them. "
      "\"evict\": delete acknowledged readings of the lowest class, oldest first, to make room (never an "
      "alarm while anything lower remains; refuse when nothing may give way): trades the delivery promise "
      "for the newest data (docs/store.md).",
      EPORT_FIELD(store.when_full)));
  s.push_back(duration("store.ttl_alarm_s", 0, 0, kTenYears_s, "Delete unsent alarms older than this; 0: never.",
                       EPORT_FIELD(store.ttl_alarm_s)));
  s.push_back(duration("store.ttl_event_s", 0, 0, kTenYears_s, "Delete unsent events older than this; 0: never.",
                       EPORT_FIELD(store.ttl_event_s)));
  s.push_back(duration("store.ttl_telemetry_s", 0, 0, kTenYears_s,
                       "Delete unsent telemetry older than this; 0: never.", EPORT_FIELD(store.ttl_telemetry_s)));
  s.push_back(duration("store.ttl_bulk_s", 0, 0, kTenYears_s,
                       "Delete unsent bulk readings older than this; 0: never.", EPORT_FIELD(store.ttl_bulk_s)));
  s.push_back(duration("store.startup_check_ms", 2000, 0, 600000,
                       "Time budget of the start-up PRAGMA quick_check; past it the agent starts unverified (logged).",
                       EPORT_FIELD(store.startup_check_ms)));
  s.push_back(duration("store.source_expiry_s", 2592000, 0, kTenYears_s,
                       "A source (unit) with no readings waiting that stored nothing for this long is forgotten "
                       "with its last seq (docs/store.md, Sources); 0: never.",
                       EPORT_FIELD(store.source_expiry_s)));
  s.push_back(duration("store.maintenance_interval_s", 10, 1, 3600, "How often expiry and space reclaim run.",
                       EPORT_FIELD(store.maintenance_interval_s)));
  const std::vector<std::pair<std::string_view, model::Priority>> classes = {{"alarm", model::Priority::kAlarm},
                                                                             {"event", model::Priority::kEvent},
                                                                             {"telemetry", model::Priority::kTelemetry},
                                                                             {"bulk", model::Priority::kBulk}};
  constexpr std::string_view kPriorityDesc =
      "Priority class of this kind of reading (drain order, eviction order, topic); priority.gap: declared "
      "sequence gaps.";
  // The defaults are model::PriorityRules' own.
  const model::PriorityRules d;
  s.push_back(enumeration("priority.position", d.position, classes, kPriorityDesc, EPORT_FIELD(priority.position)));
  s.push_back(enumeration("priority.sensor", d.sensor, classes, kPriorityDesc, EPORT_FIELD(priority.sensor)));
  s.push_back(enumeration("priority.seal_tampered", d.seal_tampered, classes, kPriorityDesc,
                          EPORT_FIELD(priority.seal_tampered)));
  s.push_back(enumeration("priority.seal_opened", d.seal_opened, classes, kPriorityDesc,
                          EPORT_FIELD(priority.seal_opened)));
  s.push_back(enumeration("priority.seal_other", d.seal_other, classes, kPriorityDesc, EPORT_FIELD(priority.seal_other)));
  s.push_back(enumeration("priority.door_open", d.door_open, classes, kPriorityDesc, EPORT_FIELD(priority.door_open)));
  s.push_back(enumeration("priority.door_other", d.door_other, classes, kPriorityDesc, EPORT_FIELD(priority.door_other)));
  s.push_back(enumeration("priority.gap", d.gap, classes, kPriorityDesc, EPORT_FIELD(priority.gap)));
  s.push_back(list("mqtt.uri", {"tcp://127.0.0.1:1883"},
                   "Broker URI, or several for failover (the first is preferred): tcp:// or mqtt:// (plain), ssl:// "
                   "or mqtts:// (TLS 1.2+, needs mqtt.ca_file). One string, an array, or (older form) one string "
                   "with the URIs separated by commas.",
                   EPORT_FIELD(mqtt.uri), "uris"));
  s.push_back(duration("mqtt.failover_return_s", 300, 10, 86400,
                       "Connected to a broker other than the first: try the first again after this long.",
                       EPORT_FIELD(mqtt.failover_return_s)));
  s.push_back(string("mqtt.ca_file", "", "PEM file of the CA(s) that sign the broker's certificate (TLS).",
                     EPORT_FIELD(mqtt.ca_file)));
  s.push_back(string("mqtt.cert_file", "",
                     "PEM client certificate for mutual TLS (CN = gateway.id with the broker configs of "
                     "broker-config/). Empty: no client certificate.",
                     EPORT_FIELD(mqtt.cert_file)));
  s.push_back(string("mqtt.key_file", "",
                     "PEM private key of mqtt.cert_file (keep it 0600 or 0640 with the agent's group; a key "
                     "others may read is warned about).",
                     EPORT_FIELD(mqtt.key_file)));
  s.push_back(boolean("mqtt.verify_hostname", true,
                      "Check that the broker's certificate names the host in mqtt.uri. false is refused unless "
                      "mqtt.insecure_skip_verify_hostname = true.",
                      EPORT_FIELD(mqtt.verify_hostname)));
  s.push_back(boolean("mqtt.insecure_skip_verify_hostname", false,
                      "Allows mqtt.verify_hostname = false: any certificate from mqtt.ca_file's CA, for any host, is "
                      "then accepted as the broker (logged as a warning at every start). Tests and migrations only.",
                      EPORT_FIELD(mqtt.insecure_skip_verify_hostname)));
  s.push_back(boolean("mqtt.insecure_password_over_tcp", false,
                      "Allows mqtt.password_file with a tcp:// or mqtt:// broker that is not loopback (127.0.0.0/8, "
                      "::1 or localhost): the password then crosses the network in clear.",
                      EPORT_FIELD(mqtt.insecure_password_over_tcp)));
  s.push_back(string("mqtt.username", "", "MQTT user name (an alternative or addition to a client certificate).",
                     EPORT_FIELD(mqtt.username)));
  s.push_back(string("mqtt.password_file", "",
                     "File holding the MQTT password (first line, at most 65535 bytes). The password never "
                     "appears in the config, the logs or the config hash. With a tcp:// or mqtt:// broker that is "
                     "not loopback it is refused, see mqtt.insecure_password_over_tcp.",
                     EPORT_FIELD(mqtt.password_file)));
  s.push_back(string("mqtt.client_id", "", "MQTT client id. Empty: the gateway id.", EPORT_FIELD(mqtt.client_id)));
  s.push_back(duration("mqtt.keepalive_s", 30, 5, 3600,
                       "MQTT keep-alive interval. With publishes waiting for their PUBACK, a link that acknowledges "
                       "nothing for this long is declared dead and reconnected; an idle link is checked by MQTT "
                       "PINGs (dead after at most twice this).",
                       EPORT_FIELD(mqtt.keepalive_s)));
  s.push_back(duration("mqtt.connect_timeout_s", 10, 1, 300, "Give up one connection attempt after this long.",
                       EPORT_FIELD(mqtt.connect_timeout_s)));
  s.push_back(duration("mqtt.reconnect_min_ms", 500, 10, 600000,
                       "First delay before reconnecting; doubles after each failure.",
                       EPORT_FIELD(mqtt.reconnect_min_ms)));
  s.push_back(duration("mqtt.reconnect_max_ms", 30000, 10, 3600000, "Longest delay between reconnection attempts.",
                       EPORT_FIELD(mqtt.reconnect_max_ms)));
  s.push_back(integer("mqtt.max_inflight", 16, 1, 1000, "Envelopes published and not yet acknowledged (PUBACK) at once.",
                      EPORT_FIELD(mqtt.max_inflight)));
  s.push_back(enumeration("publish.compression", Compression::kZstd,
                          {{"none", Compression::kNone}, {"zstd", Compression::kZstd}},
                          "\"zstd\": compress each envelope (subscribers recognise the zstd magic; docs/schema.md). "
                          "\"none\": plain FlatBuffers.",
                          EPORT_FIELD(publish.compression)));
  s.push_back(integer("publish.zstd_level", 3, 1, 19, "zstd level: higher is smaller and slower.",
                      EPORT_FIELD(publish.zstd_level)));
  s.push_back(integer("publish.max_readings", 500, 1, 10000, "Most readings in one envelope.",
                      EPORT_FIELD(publish.max_readings)));
  s.push_back(integer("publish.max_bytes", 65536, 256, 4194304, "Envelope size goal in bytes of stored readings.",
                      EPORT_FIELD(publish.max_bytes)));
  s.push_back(duration("publish.max_age_ms", 1000, 0, 600000,
                       "Longest the publisher waits for a fuller envelope once a reading is waiting; longer means "
                       "fewer bytes per reading on a paid link (docs/benchmarks.md). Alarms never wait.",
                       EPORT_FIELD(publish.max_age_ms)));
  s.push_back(integer("budget.bytes_per_day", 0, 0, 1ll << 50,
                      "Payload bytes per UTC day; when used up only alarms are sent, the rest waits. 0: no limit.",
                      EPORT_FIELD(budget.bytes_per_day)));
  s.push_back(integer("budget.bytes_per_month", 0, 0, 1ll << 50,
                      "Payload bytes per UTC calendar month, same rule. 0: no limit.",
                      EPORT_FIELD(budget.bytes_per_month)));
  s.push_back(integer("budget.max_bytes_per_s", 0, 0, 1ll << 40,
                      "Bandwidth cap for everything but alarms, bytes/s. 0: none.", EPORT_FIELD(budget.max_bytes_per_s)));
  s.push_back(duration("health.interval_s", 60, 0, 86400,
                       "Publish a health message on eport/v1/<site>/<gateway>/health this often. 0: never.",
                       EPORT_FIELD(health.interval_s)));
  s.push_back(boolean("commands.enabled", true,
                      "Accept commands on eport/v1/<site>/<gateway>/cmd (replies on .../reply).",
                      EPORT_FIELD(commands.enabled)));
  s.push_back(duration("commands.max_age_s", 300, 0, 86400,
                       "A command whose issued_utc_ms is older than this, missing, or more than 60 s in the future "
                       "(clocks apart) is refused, not executed. 0: no check.",
                       EPORT_FIELD(commands.max_age_s)));
  s.push_back(enumeration("gnss.source", GnssSource::kNone,
                          {{"none", GnssSource::kNone}, {"serial", GnssSource::kSerial}, {"gpsd", GnssSource::kGpsd}},
                          "The gateway's own position: \"serial\" (an NMEA receiver on gnss.device), \"gpsd\" (a gpsd "
                          "daemon) or \"none\". Positions go out under gateway.id. See docs/gnss.md.",
                          EPORT_FIELD(gnss.source)));
  s.push_back(string("gnss.device", "/dev/ttyACM0", "NMEA 0183 receiver tty (gnss.source = \"serial\").",
                     EPORT_FIELD(gnss.device)));
  s.push_back(allowed(integer("gnss.baud", 9600, 4800, 230400, "Receiver baud rate.", EPORT_FIELD(gnss.baud)),
                      {4800, 9600, 19200, 38400, 57600, 115200, 230400}, "a supported rate"));
  s.push_back(string("gnss.gpsd_host", "127.0.0.1", "gpsd host (gnss.source = \"gpsd\").", EPORT_FIELD(gnss.gpsd_host)));
  s.push_back(integer("gnss.gpsd_port", 2947, 1, 65535, "gpsd port.", EPORT_FIELD(gnss.gpsd_port)));
  s.push_back(duration("gnss.min_interval_ms", 1000, 0, 3600000,
                       "At most one gateway position per this much receiver time; 0: every epoch.",
                       EPORT_FIELD(gnss.min_interval_ms)));
  s.push_back(boolean("gnss.require_fix", true, "Publish only epochs with a fix.", EPORT_FIELD(gnss.require_fix)));
  s.push_back(boolean("gnss.require_checksum", true,
                      "Reject NMEA sentences without a *hh checksum (turn off only for receivers that never send one).",
                      EPORT_FIELD(gnss.require_checksum)));
  s.push_back(enumeration("log.level", log::Level::kInfo,
                          {{"error", log::Level::kError},
                           {"warn", log::Level::kWarn},
                           {"info", log::Level::kInfo},
                           {"debug", log::Level::kDebug}},
                          "Least severe level logged to stderr.", EPORT_FIELD(log.level)));
  return s;
}

using Problems = std::vector<std::string>;

Problems when(bool bad, std::string what) { return bad ? Problems{std::move(what)} : Problems{}; }

bool any_tls(const AgentConfig& c) {
  return std::any_of(c.mqtt.uri.begin(), c.mqtt.uri.end(), [](const std::string& u) { return is_tls(u); });
}

std::vector<CrossKeyRule> build_rules() {
  std::vector<CrossKeyRule> r;
  r.push_back({{"mqtt.reconnect_min_ms", "mqtt.reconnect_max_ms"},
               "`mqtt.reconnect_min_ms` must not exceed `mqtt.reconnect_max_ms`.", [](const AgentConfig& c) {
                 return when(c.mqtt.reconnect_min_ms > c.mqtt.reconnect_max_ms, "must not exceed mqtt.reconnect_max_ms");
               }});
  r.push_back({{"bridge", "bridge.unix_socket", "bridge.tcp_listen", "bridge.serial_ports"},
               "At least one of `bridge.unix_socket`, `bridge.tcp_listen` and `bridge.serial_ports` must be set.",
               [](const AgentConfig& c) {
                 return when(c.bridge.unix_socket.empty() && c.bridge.tcp_listen.empty() && c.bridge.serial_ports.empty(),
                             "no transport: set bridge.unix_socket, bridge.tcp_listen or bridge.serial_ports");
               }});
  r.push_back({{"bridge.unix_reserve", "bridge.max_units", "bridge.unix_socket", "bridge.tcp_listen"},
               "`bridge.unix_reserve` must be below `bridge.max_units` when both `bridge.unix_socket` and "
               "`bridge.tcp_listen` are set.",
               [](const AgentConfig& c) {
                 return when(!c.bridge.unix_socket.empty() && !c.bridge.tcp_listen.empty() &&
                                 c.bridge.unix_reserve >= c.bridge.max_units,
                             "must be below bridge.max_units (" + std::to_string(c.bridge.max_units) +
                                 ") when TCP is served too, or no TCP unit can ever connect");
               }});
  r.push_back({{"mqtt.ca_file", "mqtt.uri"}, "`mqtt.ca_file` is required with an ssl:// or mqtts:// broker.",
               [](const AgentConfig& c) {
                 return when(any_tls(c) && c.mqtt.ca_file.empty(), "required with an ssl:// or mqtts:// broker");
               }});
  r.push_back({{"mqtt.key_file", "mqtt.cert_file"}, "`mqtt.cert_file` and `mqtt.key_file` go together.",
               [](const AgentConfig& c) {
                 return when(c.mqtt.cert_file.empty() != c.mqtt.key_file.empty(),
                             "mqtt.cert_file and mqtt.key_file go together");
               }});
  r.push_back({{"mqtt.cert_file", "mqtt.uri"}, "`mqtt.cert_file` needs an ssl:// or mqtts:// broker.",
               [](const AgentConfig& c) {
                 return when(!any_tls(c) && !c.mqtt.cert_file.empty(),
                             "a client certificate needs an ssl:// or mqtts:// broker");
               }});
  r.push_back({{"mqtt.password_file", "mqtt.username"}, "`mqtt.password_file` needs `mqtt.username`.",
               [](const AgentConfig& c) {
                 return when(!c.mqtt.password_file.empty() && c.mqtt.username.empty(), "needs mqtt.username");
               }});
  r.push_back({{"mqtt.uri"}, "A broker host `invalid` or ending in `.invalid` is a placeholder and refused.",
               [](const AgentConfig& c) {
                 Problems p;
                 for (const auto& u : c.mqtt.uri) {
                   auto host = uri_host(u);
                   if (host == "invalid" || (host.size() > 8 && host.compare(host.size() - 8, 8, ".invalid") == 0)) {
                     p.push_back(u + " is a placeholder (.invalid never resolves): set your broker's host name");
                   }
                 }
                 return p;
               }});
  r.push_back({{"mqtt.verify_hostname", "mqtt.insecure_skip_verify_hostname", "mqtt.uri"},
               "`mqtt.verify_hostname = false` with a TLS broker needs `mqtt.insecure_skip_verify_hostname = true`.",
               [](const AgentConfig& c) {
                 return when(any_tls(c) && !c.mqtt.verify_hostname && !c.mqtt.insecure_skip_verify_hostname,
                             "false accepts a certificate issued for any other host as the broker; set "
                             "mqtt.insecure_skip_verify_hostname = true to allow it");
               }});
  r.push_back({{"mqtt.password_file", "mqtt.insecure_password_over_tcp", "mqtt.uri"},
               "`mqtt.password_file` with a tcp:// or mqtt:// broker that is not loopback needs "
               "`mqtt.insecure_password_over_tcp = true`.",
               [](const AgentConfig& c) {
                 Problems p;
                 if (c.mqtt.password_file.empty() || c.mqtt.insecure_password_over_tcp) return p;
                 for (const auto& u : c.mqtt.uri) {
                   if (!is_tls(u) && !is_loopback_uri(u)) {
                     p.push_back("the password would cross the network in clear to " + u +
                                 " (not TLS, not loopback): use ssl:// or set mqtt.insecure_password_over_tcp = true");
                   }
                 }
                 return p;
               }});
  r.push_back({{"bridge.tcp_listen", "bridge.unit_keys", "bridge.insecure_tcp_without_auth"},
               "`bridge.tcp_listen` needs `bridge.unit_keys` (units on TCP must authenticate, "
               "docs/firmware-bridge.md section 13), or `bridge.insecure_tcp_without_auth = true`.",
               [](const AgentConfig& c) {
                 return when(!c.bridge.tcp_listen.empty() && c.bridge.unit_keys.empty() &&
                                 !c.bridge.insecure_tcp_without_auth,
                             "units on TCP must authenticate: set bridge.unit_keys (eport-pki unit-key), or "
                             "bridge.insecure_tcp_without_auth = true to let any unit id in");
               }});
  r.push_back({{"gnss.device", "gnss.source"}, "`gnss.device` must be set when `gnss.source = \"serial\"`.",
               [](const AgentConfig& c) {
                 return when(c.gnss.source == GnssSource::kSerial && c.gnss.device.empty(),
                             "must be set when gnss.source = \"serial\"");
               }});
  r.push_back({{"store.path"}, "`store.path` must not be empty.",
               [](const AgentConfig& c) { return when(c.store.path.empty(), "must not be empty"); }});
  return r;
}

}  // namespace

const std::vector<KeySpec>& key_specs() {
  static const std::vector<KeySpec> specs = build_specs();
  return specs;
}

const std::vector<CrossKeyRule>& cross_key_rules() {
  static const std::vector<CrossKeyRule> rules = build_rules();
  return rules;
}

}  // namespace eport::config
