// [config] Every kind of bad config is rejected as a whole, each problem named
// with its line and key; a good one yields exactly the values written.
#include <catch2/catch.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "eport/config/config.h"
#include "eport/units/config_keys.h"
#include "settings.h"

using namespace eport;

namespace {
const std::string kValid = R"([gateway]
id = "gw-yangshan-01"
site = "cnsha"
[bridge]
unix_socket = "/run/eport/bridge.sock"
)";
}

TEST_CASE("a minimal config gets every default", "[config]") {
  auto c = app::load_config_string(kValid, "agent.toml");
  REQUIRE(c.ok());
  CHECK(c->gateway.id == "gw-yangshan-01");
  CHECK(c->gateway.site == "cnsha");
  CHECK(c->uplink.server_uris == std::vector<std::string>{"tcp://127.0.0.1:1883"});
  CHECK(c->uplink.client_id == "gw-yangshan-01");
  CHECK(c->uplink.keepalive == std::chrono::seconds(30));
  CHECK(c->store.durability == store::Durability::kFull);
  CHECK(c->uplink.max_readings == 500);
  CHECK(c->log_level == log::Level::kInfo);
  CHECK(c->gnss.source == gnss::SourceKind::kNone);
  CHECK(c->gnss.require_fix);
  CHECK(c->store.when_full == store::WhenFull::kRefuse);  // never deletes an acknowledged reading unless asked to
  auto rules = c->priority;
  CHECK(rules.seal_tampered == model::Priority::kAlarm);
  CHECK(rules.position == model::Priority::kTelemetry);
}

TEST_CASE("several brokers are kept in order", "[config]") {
  auto c = app::load_config_string(kValid + "[mqtt]\nuri = \"ssl://a.example:8883, mqtts://b.example:8883\"\nca_file = \"/ca\"\n");
  REQUIRE(c.ok());
  CHECK(c->uplink.server_uris == std::vector<std::string>{"ssl://a.example:8883", "mqtts://b.example:8883"});
}

TEST_CASE("priority classes and booleans from the file are used", "[config]") {
  auto c = app::load_config_string(kValid + "[priority]\nposition = \"bulk\"\ndoor_open = \"event\"\n[gnss]\nrequire_fix = false\n");
  REQUIRE(c.ok());
  auto rules = c->priority;
  CHECK(rules.position == model::Priority::kBulk);
  CHECK(rules.door_open == model::Priority::kEvent);
  CHECK(rules.seal_tampered == model::Priority::kAlarm);
  CHECK_FALSE(c->gnss.require_fix);
}

TEST_CASE("values written are the values used", "[config]") {
  auto c = app::load_config_string(kValid + R"([mqtt]
uri = "mqtt://broker.example:8883"
keepalive_s = 60
[store]
path = "/data/outbox.db"
durability = "normal"
[publish]
max_readings = 1000
)");
  REQUIRE(c.ok());
  CHECK(c->uplink.server_uris == std::vector<std::string>{"mqtt://broker.example:8883"});
  CHECK(c->uplink.keepalive == std::chrono::seconds(60));
  CHECK(c->store.path == "/data/outbox.db");
  CHECK(c->store.durability == store::Durability::kNormal);
  CHECK(c->uplink.max_readings == 1000);
}

TEST_CASE("each config rejection names the line, the key and the problem", "[config]") {
  struct Case {
    std::string text;
    std::string expected;
  };
  std::vector<Case> cases = {
      {kValid + "[mqtt]\nkeepalive_s = 0\n", "agent.toml:7: mqtt.keepalive_s: 0 is out of range 5..3600"},
      {kValid + "[mqtt]\nkeepalive_s = 99999\n", "out of range 5..3600"},
      {kValid + "[mqtt]\nkeepalive_s = \"30\"\n", "agent.toml:7: mqtt.keepalive_s: expected an integer, got a string"},
      {kValid + "[mqtt]\nkeepalive_s = 3.5\n", "expected an integer, got a float"},
      {kValid + "[mqtt]\nkeep_alive = 30\n", "agent.toml:7: mqtt.keep_alive: unknown key"},
      {kValid + "[mqttt]\nuri = \"tcp://a:1\"\n", "mqttt: unknown section"},
      {kValid + "stray = 1\n", "stray: unknown key"},
      {kValid + "[mqtt]\nuri = \"http://broker:80\"\n", "mqtt.uri: \"http://broker:80\" must be one to eight of"},
      {kValid + "[mqtt]\nuri = \"tcp://broker:0\"\n", "host:port, comma-separated"},
      {kValid + "[mqtt]\nuri = \"tcp://broker\"\n", "host:port, comma-separated"},
      {kValid + "[mqtt]\nuri = \"ssl://broker:8883\"\n", "mqtt.ca_file: required with an ssl://"},
      {kValid + "[mqtt]\nuri = \"tcp://a:1,ssl://b:8883,\"\n", "comma-separated"},
      {kValid + "[mqtt]\nuri = \"ssl://b:8883\"\nca_file = \"/ca.pem\"\ncert_file = \"/c.pem\"\n",
       "mqtt.cert_file and mqtt.key_file go together"},
      {kValid + "[mqtt]\ncert_file = \"/c.pem\"\nkey_file = \"/k.pem\"\n", "needs an ssl:// or mqtts:// broker"},
      {kValid + "[mqtt]\npassword_file = \"/pw\"\n", "mqtt.password_file: needs mqtt.username"},
      {kValid + "[publish]\ncompression = \"gzip\"\n", "publish.compression: \"gzip\" is not one of: none, zstd"},
      {kValid + "[health]\ninterval_s = -1\n", "health.interval_s: -1 is out of range"},
      {kValid + "[store]\ndurability = \"sometimes\"\n", "\"sometimes\" is not one of: full, normal"},
      {kValid + "[store]\npath = \"\"\n", "store.path: must not be empty"},
      {kValid + "[log]\nlevel = \"verbose\"\n", "log.level: \"verbose\" is not one of"},
      {kValid + "[bridge]\nwindow = 0\n", ""},  // duplicate table: a TOML syntax error
      {kValid + "[mqtt]\nreconnect_min_ms = 5000\nreconnect_max_ms = 1000\n", "must not exceed mqtt.reconnect_max_ms"},
      {kValid + "[gnss]\nrequire_fix = \"yes\"\n", "agent.toml:7: gnss.require_fix: expected true or false, got a string"},
      {kValid + "[gnss]\nbaud = 9601\n", "gnss.baud: 9601 is not a supported rate"},
      {kValid + "[gnss]\nsource = \"usb\"\n", "gnss.source: \"usb\" is not one of: none, serial, gpsd"},
      {kValid + "[bridge]\n", "TOML syntax error"},
      {kValid.substr(0, kValid.find("[bridge]")) + "[bridge]\nunix_socket = \"/x\"\nserial_baud = 115201\n",
       "bridge.serial_baud: 115201 is not a standard rate"},
      {kValid + "[priority]\nposition = \"urgent\"\n", "priority.position: \"urgent\" is not one of: alarm, event"},
      {kValid + "[store]\nmax_bytes = 1000\n", "store.max_bytes: 1000 is out of range"},
      {kValid + "[store]\nwhen_full = \"drop\"\n", "store.when_full: \"drop\" is not one of: evict, refuse"},
      {"[gateway]\nid = \"GW_01\"\nsite = \"cnsha\"\n[bridge]\nunix_socket=\"/x\"\n", "gateway.id: \"GW_01\" must be 1-32"},
      {"[gateway]\nid = \"-gw\"\nsite = \"cnsha\"\n[bridge]\nunix_socket=\"/x\"\n", "gateway.id"},
      {"[gateway]\nid = \"gw\"\nsite = \"" + std::string(33, 'a') + "\"\n[bridge]\nunix_socket=\"/x\"\n",
       "gateway.site"},
      {"[gateway]\nsite = \"cnsha\"\n[bridge]\nunix_socket=\"/x\"\n", "gateway.id: required key is missing"},
      {"[gateway]\nid = \"gw\"\nsite = \"s\"\n[bridge]\nunix_socket = \"\"\n", "no transport"},
      {kValid + "[bridge]\n", "TOML syntax error"},
      {"[gateway\n", "agent.toml:1: TOML syntax error"},
      {"gateway = 5\n", "gateway: expected a table"},
      {kValid.substr(0, kValid.find("[bridge]")) + "[bridge]\ntcp_listen = \"0.0.0.0\"\n", "bridge.tcp_listen"},
      {kValid.substr(0, kValid.find("[bridge]")) + "[bridge]\nunix_socket = \"/x\"\nunit_intervals = \"TU-1=60\"\n",
       "agent.toml:6: bridge.unit_intervals: \"TU-1=60\" must be UNIT=POSITION_S/SENSOR_S"},
      {kValid.substr(0, kValid.find("[bridge]")) + "[bridge]\nunix_socket = \"/x\"\nunit_intervals = \"TU.1=60/900\"\n",
       "bridge.unit_intervals"},
      {kValid.substr(0, kValid.find("[bridge]")) + "[bridge]\nunix_socket = \"/x\"\nunit_intervals = \"A=1/2,A=3/4\"\n",
       "bridge.unit_intervals"},
      {kValid.substr(0, kValid.find("[bridge]")) + "[bridge]\nunix_socket = \"/x\"\nunit_intervals = \"A=1/4294967296\"\n",
       "bridge.unit_intervals"},
      {kValid.substr(0, kValid.find("[bridge]")) + "[bridge]\nunix_socket = \"/x\"\nmax_seq_jump = 0\n",
       "bridge.max_seq_jump: 0 is out of range"},
      {kValid + "[priority]\ngap = \"urgent\"\n", "priority.gap: \"urgent\" is not one of"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto r = app::load_config_string(c.text, "agent.toml");
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error(), Catch::Contains(c.expected));
  }
}

TEST_CASE("per-unit reporting intervals are parsed from bridge.unit_intervals", "[config]") {
  auto c = app::load_config_string(kValid + "position_interval_s = 900\nunit_intervals = \" TU-0042=60/900, TU-0043=30/0 \"\n");
  REQUIRE(c.ok());
  CHECK(c->units.default_intervals.position_s == 900);
  CHECK(c->units.default_intervals.sensor_s == 0);
  const auto& u = c->units.unit_intervals;
  REQUIRE(u.size() == 2);
  CHECK(u.at("TU-0042").position_s == 60);
  CHECK(u.at("TU-0042").sensor_s == 900);
  CHECK(u.at("TU-0043").position_s == 30);
  CHECK(u.at("TU-0043").sensor_s == 0);
  CHECK(units::parse_unit_intervals("").ok());
  CHECK(c->units.max_seq_jump == 16777216);
  CHECK(c->priority.gap == model::Priority::kEvent);
}

TEST_CASE("all problems are reported at once, one per line", "[config]") {
  auto r = app::load_config_string(kValid + "[mqtt]\nkeepalive_s = 0\nbogus = 1\n[log]\nlevel = \"loud\"\n", "a.toml");
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error(), Catch::Contains("a.toml:7: mqtt.keepalive_s"));
  CHECK_THAT(r.error(), Catch::Contains("a.toml:8: mqtt.bogus: unknown key"));
  CHECK_THAT(r.error(), Catch::Contains("a.toml:10: log.level"));
  CHECK(std::count(r.error().begin(), r.error().end(), '\n') == 2);
}

TEST_CASE("the reference lists every key and the hash follows the values", "[config]") {
  auto md = app::reference_markdown();
  for (const auto& k : app::settings_keys().keys) CHECK_THAT(md, Catch::Contains("`" + std::string(k.key) + "`"));
  auto a = app::load_config_string(kValid);
  auto b = app::load_config_string(kValid + "[mqtt]\nkeepalive_s = 31\n");
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(app::config_hash(*a) != app::config_hash(*b));
  CHECK(app::config_hash(*a) == app::config_hash(*app::load_config_string(kValid)));
}

TEST_CASE("site and gateway ids that are not topic-safe are refused, naming the key and the rule", "[config]") {
  const std::string rule = "(not allowed: + # / . * > space, control and non-ASCII bytes)";
  auto with_id = [](const std::string& id) {
    return "[gateway]\nid = \"" + id + "\"\nsite = \"cnsha\"\n[bridge]\nunix_socket = \"/x\"\n";
  };
  struct Case {
    std::string text;
    std::string expected;
  };
  std::vector<Case> cases = {
      {with_id("gw.01"), "agent.toml:2: gateway.id: \"gw.01\" is not topic-safe: contains '.' at byte 3 " + rule},
      {with_id("gw 01"), "agent.toml:2: gateway.id: \"gw 01\" is not topic-safe: contains ' ' at byte 3 " + rule},
      {with_id("gw/01"), "agent.toml:2: gateway.id: \"gw/01\" is not topic-safe: contains '/' at byte 3 " + rule},
      {with_id("a+b"), "agent.toml:2: gateway.id: \"a+b\" is not topic-safe: contains '+' at byte 2 " + rule},
      {with_id(""), "agent.toml:2: gateway.id: \"\" is not topic-safe: is empty"},
      {with_id(std::string(65, 'a')),
       "agent.toml:2: gateway.id: \"" + std::string(65, 'a') + "\" is not topic-safe: is 65 bytes long (at most 64)"},
      {with_id("gw\\u0001x"), "gateway.id: \"gw\\x01x\" is not topic-safe: contains '\\x01' at byte 3 " + rule},
      {"[gateway]\nid = \"gw-01\"\nsite = \"cn.sha\"\n[bridge]\nunix_socket = \"/x\"\n",
       "agent.toml:3: gateway.site: \"cn.sha\" is not topic-safe: contains '.' at byte 3 " + rule},
      {"[gateway]\nid = \"gw-01\"\nsite = \"cn#\"\n[bridge]\nunix_socket = \"/x\"\n",
       "agent.toml:3: gateway.site: \"cn#\" is not topic-safe: contains '#' at byte 3"},
      // Topic-safe but outside this config's stricter rule: still refused, by that rule.
      {with_id("GW_01"), "agent.toml:2: gateway.id: \"GW_01\" must be 1-32 of a-z, 0-9 and '-' (not first)"},
      {with_id(std::string(40, 'a')), "must be 1-32 of a-z"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto r = app::load_config_string(c.text, "agent.toml");
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error(), Catch::Contains(c.expected));
    CHECK(r.error().find('\x01') == std::string::npos);
  }
  auto ok = app::load_config_string(with_id("gw-yangshan-01"), "agent.toml");
  REQUIRE(ok.ok());
  CHECK(ok->gateway.id == "gw-yangshan-01");
  CHECK(ok->gateway.site == "cnsha");
}

// --- TLS and configuration hygiene (issue 11) ---

namespace {
struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/eport-config-test-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string write(const std::string& name, const std::string& text, mode_t mode = 0600) {
    std::string p = path + "/" + name;
    std::ofstream(p) << text;
    ::chmod(p.c_str(), mode);
    return p;
  }
};
const std::string kPemCert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const std::string kPemKey = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
}  // namespace

TEST_CASE("loopback is the parsed host exactly: 127.0.0.0/8, ::1 or localhost", "[config][security]") {
  for (const char* u : {"tcp://127.0.0.1:1883", "tcp://127.255.3.4:1", "mqtt://localhost:1883", "tcp://[::1]:1883"}) {
    INFO(u);
    CHECK(config::is_loopback_uri(u));
  }
  for (const char* u : {"tcp://127.attacker.example:1883", "tcp://localhost.attacker.example:1883",
                        "tcp://128.0.0.1:1883", "tcp://[::2]:1883", "tcp://10.127.0.1:1883", "tcp://127.0.0.1.nip.io:1",
                        "tcp://[::ffff:10.0.0.1]:1883", "tcp://0x7f000001:1883"}) {
    INFO(u);
    CHECK_FALSE(config::is_loopback_uri(u));
  }
}

TEST_CASE("a password is refused with any non-TLS broker that is not loopback", "[config][security]") {
  const std::string user = "username = \"gw\"\npassword_file = \"/pw\"\n";
  for (const char* uri : {"tcp://127.attacker.example:1883", "ssl://a.example:8883,tcp://b.example:1883",
                          "mqtt://10.0.0.1:1883"}) {
    INFO(uri);
    auto r = app::load_config_string(kValid + "[mqtt]\nuri = \"" + uri + "\"\nca_file = \"/ca\"\n" + user, "agent.toml");
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error(), Catch::Contains("mqtt.password_file: the password would cross the network in clear") &&
                              Catch::Contains("mqtt.insecure_password_over_tcp"));
    auto allowed = app::load_config_string(kValid + "[mqtt]\nuri = \"" + uri + "\"\nca_file = \"/ca\"\n" + user +
                                       "insecure_password_over_tcp = true\n");
    CHECK(allowed.ok());
  }
  for (const char* uri : {"tcp://127.0.0.1:1883", "ssl://a.example:8883,mqtts://b.example:8883", "tcp://[::1]:1"}) {
    INFO(uri);
    CHECK(app::load_config_string(kValid + "[mqtt]\nuri = \"" + uri + "\"\nca_file = \"/ca\"\n" + user).ok());
  }
}

TEST_CASE("verify_hostname = false needs insecure_skip_verify_hostname", "[config][security]") {
  const std::string tls = kValid + "[mqtt]\nuri = \"ssl://b.example:8883\"\nca_file = \"/ca\"\nverify_hostname = false\n";
  auto r = app::load_config_string(tls, "agent.toml");
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error(), Catch::Contains("mqtt.verify_hostname:") &&
                            Catch::Contains("mqtt.insecure_skip_verify_hostname = true"));
  auto ok = app::load_config_string(tls + "insecure_skip_verify_hostname = true\n");
  REQUIRE(ok.ok());
  CHECK_FALSE(ok->uplink.tls.verify_hostname);
}

TEST_CASE("CA, certificate, key and password files are opened at load, errors name key and path", "[config][security]") {
  TempDir d;
  auto ca = d.write("ca.crt", kPemCert), crt = d.write("gw.crt", kPemCert), key = d.write("gw.key", kPemKey);
  auto pw = d.write("pw", "secret\n");
  int n = 0;
  auto conf = [&](const std::string& ca_, const std::string& crt_, const std::string& key_, const std::string& pw_) {
    return d.write("agent-" + std::to_string(++n) + ".toml", kValid + "[mqtt]\nuri = \"ssl://b.example:8883\"\nca_file = \"" + ca_ +
                                     "\"\ncert_file = \"" + crt_ + "\"\nkey_file = \"" + key_ +
                                     "\"\nusername = \"gw\"\npassword_file = \"" + pw_ + "\"\n");
  };
  REQUIRE(app::load_config_file(conf(ca, crt, key, pw)).ok());
  auto missing = d.path + "/missing.pem";
  auto garbage = d.write("garbage.pem", "not a certificate\n");
  auto empty_pw = d.write("empty-pw", "\n");
  std::vector<std::pair<std::string, std::string>> cases = {
      {conf(missing, crt, key, pw), "mqtt.ca_file: cannot read " + missing + ": No such file or directory"},
      {conf(ca, missing, key, pw), "mqtt.cert_file: cannot read " + missing},
      {conf(ca, crt, missing, pw), "mqtt.key_file: cannot read " + missing},
      {conf(ca, crt, key, missing), "mqtt.password_file: cannot read " + missing},
      {conf(garbage, crt, key, pw), "mqtt.ca_file: " + garbage + " holds no PEM certificate"},
      {conf(ca, key, key, pw), "mqtt.cert_file: " + key + " holds no PEM certificate"},
      {conf(ca, crt, crt, pw), "mqtt.key_file: " + crt + " holds no PEM private key"},
      {conf(ca, crt, key, empty_pw), "mqtt.password_file: " + empty_pw + ": the first line (the password) is empty"},
  };
  for (const auto& [file, expected] : cases) {
    INFO(expected);
    auto r = app::load_config_file(file);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error(), Catch::Contains(expected));
  }
}

TEST_CASE("a long password is read whole or refused, never truncated", "[config][security]") {
  TempDir d;
  std::string p2000(2000, 'p');
  auto r = config::read_secret(d.write("pw", p2000 + "\r\nsecond line\n"));
  REQUIRE(r.ok());
  CHECK(*r == p2000);  // was cut to 1023 bytes
  auto too_long = config::read_secret(d.write("pw2", std::string(config::kMaxPasswordBytes + 1, 'x')));
  REQUIRE_FALSE(too_long.ok());
  CHECK_THAT(too_long.error(), Catch::Contains("longer than 65535 bytes") && Catch::Contains("not truncated"));
  CHECK(config::read_secret(d.write("pw3", std::string(config::kMaxPasswordBytes, 'x'))).ok());
}

TEST_CASE("a key or password file readable by others is warned about", "[config][security]") {
  TempDir d;
  auto c = *app::load_config_string("[gateway]\nid = \"gw-dev\"\nsite = \"dev\"\n");
  c.uplink.tls.key_file = d.write("gw.key", kPemKey, 0600);
  c.uplink.password_file = d.write("pw", "secret\n", 0600);
  CHECK(app::secret_file_warnings(c).empty());
  ::chmod(c.uplink.tls.key_file.c_str(), 0644);
  ::chmod(c.uplink.password_file.c_str(), 0604);
  auto w = app::secret_file_warnings(c);
  REQUIRE(w.size() == 2);
  CHECK_THAT(w[0], Catch::Contains("mqtt.key_file: " + c.uplink.tls.key_file + " is readable by every local user (mode 0644)"));
  CHECK_THAT(w[1], Catch::Contains("mqtt.password_file:"));
  // Group-readable by the agent's own group (root:eport-agent 0640) is how
  // the package shares a key with the service: no warning.
  ::chmod(c.uplink.tls.key_file.c_str(), 0640);
  ::chmod(c.uplink.password_file.c_str(), 0600);
  REQUIRE(::chown(c.uplink.tls.key_file.c_str(), static_cast<uid_t>(-1), ::getegid()) == 0);
  CHECK(app::secret_file_warnings(c).empty());
}

TEST_CASE("a .invalid broker host is a placeholder; load_file reports it with the missing files", "[config][security]") {
  auto r = app::load_config_string(kValid + "[mqtt]\nuri = \"ssl://broker.invalid:8883\"\nca_file = \"/ca\"\n");
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error(), Catch::Contains("mqtt.uri: ssl://broker.invalid:8883 is a placeholder"));
  TempDir d;
  auto f = d.write("agent.toml", kValid + "[mqtt]\nuri = \"ssl://broker.invalid:8883\"\nca_file = \"" + d.path +
                                     "/ca.crt\"\n");
  auto all = app::load_config_file(f);
  REQUIRE_FALSE(all.ok());
  CHECK_THAT(all.error(), Catch::Contains("is a placeholder") && Catch::Contains("mqtt.ca_file: cannot read " + d.path));
}

TEST_CASE("list keys take a TOML array or the older comma-separated string, with the same result", "[config]") {
  const std::string base = kValid.substr(0, kValid.find("[bridge]"));
  auto array = app::load_config_string(base + R"([bridge]
unix_socket = "/x"
serial_ports = ["/dev/ttyUSB0", "/dev/ttyUSB1"]
unit_intervals = ["TU-0042=60/900", "TU-0043=30/0"]
[mqtt]
uri = ["ssl://a.example:8883", "mqtts://b.example:8883"]
ca_file = "/ca"
)");
  auto commas = app::load_config_string(base + R"([bridge]
unix_socket = "/x"
serial_ports = "/dev/ttyUSB0,/dev/ttyUSB1,"
unit_intervals = "TU-0042=60/900, TU-0043=30/0"
[mqtt]
uri = "ssl://a.example:8883,mqtts://b.example:8883"
ca_file = "/ca"
)");
  REQUIRE(array.ok());
  REQUIRE(commas.ok());
  CHECK(array->units.serial_ports == std::vector<std::string>{"/dev/ttyUSB0", "/dev/ttyUSB1"});
  CHECK(commas->units.serial_ports == array->units.serial_ports);
  CHECK(array->uplink.server_uris == commas->uplink.server_uris);
  REQUIRE(array->units.unit_intervals.size() == 2);
  CHECK(array->units.unit_intervals.at("TU-0043").position_s == 30);
  CHECK(app::config_hash(*array) == app::config_hash(*commas));
  CHECK(app::effective_json(*array) == app::effective_json(*commas));

  auto bad = app::load_config_string(kValid + "[mqtt]\nuri = [\"tcp://a:1\", 5]\n", "agent.toml");
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error(), Catch::Contains("agent.toml:7: mqtt.uri: expected an array of strings, got an integer in it"));
  auto none = app::load_config_string(kValid + "[mqtt]\nuri = []\n", "agent.toml");
  REQUIRE_FALSE(none.ok());
  CHECK_THAT(none.error(), Catch::Contains("agent.toml:7: mqtt.uri: [] must be one to eight of"));
}

TEST_CASE("rules over several keys name the file, the line and the key", "[config]") {
  struct Case {
    std::string text;
    std::string expected;
  };
  const std::string base = kValid.substr(0, kValid.find("[bridge]"));
  std::vector<Case> cases = {
      {kValid + "[mqtt]\nreconnect_min_ms = 5000\nreconnect_max_ms = 1000\n",
       "agent.toml:7: mqtt.reconnect_min_ms: must not exceed mqtt.reconnect_max_ms"},
      {kValid + "[mqtt]\nreconnect_max_ms = 100\n", "agent.toml:7: mqtt.reconnect_min_ms: must not exceed"},
      {kValid + "[mqtt]\nuri = \"ssl://broker:8883\"\n", "agent.toml:7: mqtt.ca_file: required with an ssl://"},
      {kValid + "[mqtt]\nuri = \"ssl://b:8883\"\nca_file = \"/ca.pem\"\ncert_file = \"/c.pem\"\n",
       "agent.toml:9: mqtt.key_file: mqtt.cert_file and mqtt.key_file go together"},
      {kValid + "[mqtt]\npassword_file = \"/pw\"\n", "agent.toml:7: mqtt.password_file: needs mqtt.username"},
      {base + "[bridge]\nunix_socket = \"\"\n", "agent.toml:5: bridge: no transport"},
      {base + "[bridge]\nunix_socket = \"/x\"\ntcp_listen = \"0.0.0.0:7700\"\n",
       "agent.toml:6: bridge.tcp_listen: units on TCP must authenticate"},
      {kValid + "[gnss]\nsource = \"serial\"\ndevice = \"\"\n",
       "agent.toml:8: gnss.device: must be set when gnss.source"},
      {kValid + "[store]\npath = \"\"\n", "agent.toml:7: store.path: must not be empty"},
      {kValid + "[gnss]\nbaud = 9601\n", "agent.toml:7: gnss.baud: 9601 is not a supported rate"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto r = app::load_config_string(c.text, "agent.toml");
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error(), Catch::Contains(c.expected));
  }
  for (const auto& rule : app::settings_keys().rules) {
    CHECK_FALSE(rule.keys.empty());
    CHECK_THAT(app::reference_markdown(), Catch::Contains(std::string(rule.description)));
  }
}

TEST_CASE("the template holds every key with its default and loads to the defaults", "[config]") {
  auto text = app::config_template();
  for (const auto& k : app::settings_keys().keys) {
    auto leaf = std::string(k.key.substr(k.key.find('.') + 1));
    CHECK_THAT(text, Catch::Contains("\n" + std::string(k.required ? "" : "#") + leaf + " = "));
  }
  // Uncomment every default, fill in the two required ids: exactly the defaults.
  std::string filled;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.size() > 1 && line[0] == '#' && line[1] != ' ' && line.find(" = ") != std::string::npos) line.erase(0, 1);
    if (line == "id = \"\"") line = "id = \"gw-dev\"";
    if (line == "site = \"\"") line = "site = \"dev\"";
    filled += line + "\n";
  }
  auto c = app::load_config_string(filled, "template.toml");
  REQUIRE(c.ok());
  auto minimal = app::load_config_string("[gateway]\nid = \"gw-dev\"\nsite = \"dev\"\n");
  REQUIRE(minimal.ok());
  CHECK(app::config_hash(*c) == app::config_hash(*minimal));
  CHECK(app::effective_json(*c) == app::effective_json(*minimal));
  // As printed (required keys empty) it is refused, naming them.
  auto as_is = app::load_config_string(text, "template.toml");
  REQUIRE_FALSE(as_is.ok());
  CHECK_THAT(as_is.error(), Catch::Contains("gateway.id"));
}

namespace {
// A library's Options as any library declares them: the engine knows nothing
// of the agent.
enum class Mode { kSlow, kFast };
struct ToyOptions {
  std::uint16_t port = 7700;
  std::chrono::milliseconds timeout{2500};
  Mode mode = Mode::kFast;
  std::vector<std::string> names = {"a"};
  bool enabled = true;
};
config::Keys<ToyOptions> toy_keys() {
  using O = ToyOptions;
  config::Keys<O> k;
  k.add(config::integer<O>("toy.port", 1, 65535, "Port.", EPORT_OPTION(O, port)));
  k.add(config::duration<O>("toy.timeout_s", 1, 60, "Timeout.", EPORT_OPTION(O, timeout)));
  k.add(config::enumeration<O>("toy.mode", {{"slow", Mode::kSlow}, {"fast", Mode::kFast}}, "Mode.",
                               EPORT_OPTION(O, mode)));
  k.add(config::list<O>("toy.names", "Names.", EPORT_OPTION(O, names)));
  k.add(config::boolean<O>("toy.enabled", "On.", EPORT_OPTION(O, enabled)));
  k.rule({"toy.mode", "toy.port"}, "`toy.mode = \"slow\"` needs a port below 1024.", [](const O& o) {
    return config::problem_if(o.mode == Mode::kSlow && o.port >= 1024, "slow needs a port below 1024");
  });
  return k;
}
}  // namespace

TEST_CASE("the engine works on any library's Options: defaults are the Options' own initializers", "[config][engine]") {
  const auto keys = toy_keys();
  // A row's default is read from a default-constructed Options.
  CHECK(std::get<std::int64_t>(keys.keys[0].default_value) == 7700);
  CHECK(std::get<std::int64_t>(keys.keys[1].default_value) == 2);  // 2500 ms, as whole seconds
  CHECK(std::get<std::string>(keys.keys[2].default_value) == "fast");
  auto empty = config::load_string(keys, "", "toy.toml");
  REQUIRE(empty.ok());
  CHECK(empty->port == 7700);
  CHECK(empty->timeout == std::chrono::milliseconds(2500));  // untouched when the file does not set it
  auto set = config::load_string(keys, "[toy]\nport = 80\ntimeout_s = 7\nmode = \"slow\"\nnames = [\"x\", \"y\"]\n");
  REQUIRE(set.ok());
  CHECK(set->port == 80);
  CHECK(set->timeout == std::chrono::seconds(7));
  CHECK(set->mode == Mode::kSlow);
  CHECK(set->names == std::vector<std::string>{"x", "y"});
  // Ranges, enums and rules over the library's own keys name file, line and key.
  auto bad = config::load_string(keys, "[toy]\nmode = \"slow\"\nport = 65536\nenabled = 1\n", "toy.toml");
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error(), Catch::Contains("toy.toml:3: toy.port: 65536 is out of range 1..65535"));
  CHECK_THAT(bad.error(), Catch::Contains("toy.toml:4: toy.enabled: expected true or false"));
  auto rule = config::load_string(keys, "[toy]\nmode = \"slow\"\n", "toy.toml");
  REQUIRE_FALSE(rule.ok());
  CHECK_THAT(rule.error(), Catch::Contains("toy.toml:2: toy.mode: slow needs a port below 1024"));
  CHECK_THAT(config::reference_markdown(keys), Catch::Contains("| `toy.timeout_s` | integer (s) | `2` | 1 .. 60 |"));
  CHECK(config::effective_json(keys, *set) ==
        "{\"toy.port\":80,\"toy.timeout_s\":7,\"toy.mode\":\"slow\",\"toy.names\":\"x,y\",\"toy.enabled\":true}");
}

TEST_CASE("a row whose range does not fit its field is a table mistake, caught when the table is built", "[config][engine]") {
  using O = ToyOptions;
  CHECK_THROWS_WITH(config::integer<O>("toy.port", 0, 70000, "Port.", EPORT_OPTION(O, port)),
                    Catch::Contains("toy.port: range does not fit its field"));
  CHECK_THROWS_WITH(config::duration<O>("toy.timeout", 1, 60, "Timeout.", EPORT_OPTION(O, timeout)),
                    Catch::Contains("ends in _ms or _s"));
  // Every library's table builds (each row checked against its field).
  CHECK_NOTHROW(app::settings_keys());
}

TEST_CASE("every key's default is its library's Options initializer, so a library alone and the agent agree", "[config]") {
  auto c = app::load_config_string("[gateway]\nid = \"gw-dev\"\nsite = \"dev\"\n");
  REQUIRE(c.ok());
  app::AgentConfig untouched;
  untouched.gateway = {"gw-dev", "dev"};
  untouched = app::derived(untouched);
  CHECK(app::effective_json(*c) == app::effective_json(untouched));
  CHECK(c->store.when_full == store::OutboxOptions{}.when_full);
  CHECK(c->units.unix_socket == units::ServerOptions{}.unix_socket);
  CHECK(c->uplink.compression == uplink::PublisherOptions{}.compression);
  // What derived() adds from other libraries' keys.
  CHECK(c->units.gateway_id == "gw-dev");
  CHECK(c->uplink.site_id == "dev");
  CHECK(c->uplink.client_id == "gw-dev");
  auto longer = app::load_config_string("[gateway]\nid = \"gw-dev\"\nsite = \"dev\"\n[commands]\nmax_age_s = 900\n");
  REQUIRE(longer.ok());
  CHECK(longer->store.command_max_age == std::chrono::seconds(900));
}
