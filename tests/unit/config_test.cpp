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
  auto c = config::load_string(kValid, "agent.toml");
  REQUIRE(c.ok());
  CHECK(c->gateway.id == "gw-yangshan-01");
  CHECK(c->gateway.site == "cnsha");
  CHECK(c->mqtt.uri == std::vector<std::string>{"tcp://127.0.0.1:1883"});
  CHECK(c->mqtt.client_id == "gw-yangshan-01");
  CHECK(c->mqtt.keepalive_s == std::chrono::seconds(30));
  CHECK(c->store.durability == config::Durability::kFull);
  CHECK(c->publish.max_readings == 500);
  CHECK(c->log.level == log::Level::kInfo);
  CHECK(c->gnss.source == config::GnssSource::kNone);
  CHECK(c->gnss.require_fix);
  CHECK(c->store.when_full == config::WhenFull::kRefuse);  // never deletes an acknowledged reading unless asked to
  auto rules = c->priority.rules();
  CHECK(rules.seal_tampered == model::Priority::kAlarm);
  CHECK(rules.position == model::Priority::kTelemetry);
}

TEST_CASE("several brokers are kept in order", "[config]") {
  auto c = config::load_string(kValid + "[mqtt]\nuri = \"ssl://a.example:8883, mqtts://b.example:8883\"\nca_file = \"/ca\"\n");
  REQUIRE(c.ok());
  CHECK(config::broker_uris(*c) == std::vector<std::string>{"ssl://a.example:8883", "mqtts://b.example:8883"});
}

TEST_CASE("priority classes and booleans from the file are used", "[config]") {
  auto c = config::load_string(kValid + "[priority]\nposition = \"bulk\"\ndoor_open = \"event\"\n[gnss]\nrequire_fix = false\n");
  REQUIRE(c.ok());
  auto rules = c->priority.rules();
  CHECK(rules.position == model::Priority::kBulk);
  CHECK(rules.door_open == model::Priority::kEvent);
  CHECK(rules.seal_tampered == model::Priority::kAlarm);
  CHECK_FALSE(c->gnss.require_fix);
}

TEST_CASE("values written are the values used", "[config]") {
  auto c = config::load_string(kValid + R"([mqtt]
uri = "mqtt://broker.example:8883"
keepalive_s = 60
[store]
path = "/data/outbox.db"
durability = "normal"
[publish]
max_readings = 1000
)");
  REQUIRE(c.ok());
  CHECK(c->mqtt.uri == std::vector<std::string>{"mqtt://broker.example:8883"});
  CHECK(c->mqtt.keepalive_s == std::chrono::seconds(60));
  CHECK(c->store.path == "/data/outbox.db");
  CHECK(c->store.durability == config::Durability::kNormal);
  CHECK(c->publish.max_readings == 1000);
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
       "agent.toml:6: bridge.unit_intervals: \"TU-1=60\" must be comma-separated UNIT=POSITION_S/SENSOR_S"},
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
    auto r = config::load_string(c.text, "agent.toml");
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error(), Catch::Contains(c.expected));
  }
}

TEST_CASE("per-unit reporting intervals are parsed from bridge.unit_intervals", "[config]") {
  auto c = config::load_string(kValid + "position_interval_s = 900\nunit_intervals = \" TU-0042=60/900, TU-0043=30/0 \"\n");
  REQUIRE(c.ok());
  CHECK(c->bridge.position_interval_s == std::chrono::seconds(900));
  CHECK(c->bridge.sensor_interval_s == std::chrono::seconds(0));
  const auto* u = &c->bridge.unit_intervals;
  REQUIRE(u->size() == 2);
  CHECK((*u)[0].unit_id == "TU-0042");
  CHECK((*u)[0].position_s == 60);
  CHECK((*u)[0].sensor_s == 900);
  CHECK((*u)[1].unit_id == "TU-0043");
  CHECK((*u)[1].sensor_s == 0);
  CHECK(config::parse_unit_intervals("").ok());
  CHECK(c->bridge.max_seq_jump == 16777216);
  CHECK(c->priority.rules().gap == model::Priority::kEvent);
}

TEST_CASE("all problems are reported at once, one per line", "[config]") {
  auto r = config::load_string(kValid + "[mqtt]\nkeepalive_s = 0\nbogus = 1\n[log]\nlevel = \"loud\"\n", "a.toml");
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error(), Catch::Contains("a.toml:7: mqtt.keepalive_s"));
  CHECK_THAT(r.error(), Catch::Contains("a.toml:8: mqtt.bogus: unknown key"));
  CHECK_THAT(r.error(), Catch::Contains("a.toml:10: log.level"));
  CHECK(std::count(r.error().begin(), r.error().end(), '\n') == 2);
}

TEST_CASE("the reference lists every key and the hash follows the values", "[config]") {
  auto md = config::reference_markdown();
  for (const auto& k : config::key_specs()) CHECK_THAT(md, Catch::Contains("`" + std::string(k.key) + "`"));
  auto a = config::load_string(kValid);
  auto b = config::load_string(kValid + "[mqtt]\nkeepalive_s = 31\n");
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(config::config_hash(*a) != config::config_hash(*b));
  CHECK(config::config_hash(*a) == config::config_hash(*config::load_string(kValid)));
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
    auto r = config::load_string(c.text, "agent.toml");
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error(), Catch::Contains(c.expected));
    CHECK(r.error().find('\x01') == std::string::npos);
  }
  auto ok = config::load_string(with_id("gw-yangshan-01"), "agent.toml");
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
    auto r = config::load_string(kValid + "[mqtt]\nuri = \"" + uri + "\"\nca_file = \"/ca\"\n" + user, "agent.toml");
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error(), Catch::Contains("mqtt.password_file: the password would cross the network in clear") &&
                              Catch::Contains("mqtt.insecure_password_over_tcp"));
    auto allowed = config::load_string(kValid + "[mqtt]\nuri = \"" + uri + "\"\nca_file = \"/ca\"\n" + user +
                                       "insecure_password_over_tcp = true\n");
    CHECK(allowed.ok());
  }
  for (const char* uri : {"tcp://127.0.0.1:1883", "ssl://a.example:8883,mqtts://b.example:8883", "tcp://[::1]:1"}) {
    INFO(uri);
    CHECK(config::load_string(kValid + "[mqtt]\nuri = \"" + uri + "\"\nca_file = \"/ca\"\n" + user).ok());
  }
}

TEST_CASE("verify_hostname = false needs insecure_skip_verify_hostname", "[config][security]") {
  const std::string tls = kValid + "[mqtt]\nuri = \"ssl://b.example:8883\"\nca_file = \"/ca\"\nverify_hostname = false\n";
  auto r = config::load_string(tls, "agent.toml");
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error(), Catch::Contains("mqtt.verify_hostname:") &&
                            Catch::Contains("mqtt.insecure_skip_verify_hostname = true"));
  auto ok = config::load_string(tls + "insecure_skip_verify_hostname = true\n");
  REQUIRE(ok.ok());
  CHECK_FALSE(ok->mqtt.verify_hostname);
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
  REQUIRE(config::load_file(conf(ca, crt, key, pw)).ok());
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
    auto r = config::load_file(file);
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
  auto c = config::defaults();
  c.mqtt.key_file = d.write("gw.key", kPemKey, 0600);
  c.mqtt.password_file = d.write("pw", "secret\n", 0600);
  CHECK(config::secret_file_warnings(c).empty());
  ::chmod(c.mqtt.key_file.c_str(), 0644);
  ::chmod(c.mqtt.password_file.c_str(), 0604);
  auto w = config::secret_file_warnings(c);
  REQUIRE(w.size() == 2);
  CHECK_THAT(w[0], Catch::Contains("mqtt.key_file: " + c.mqtt.key_file + " is readable by every local user (mode 0644)"));
  CHECK_THAT(w[1], Catch::Contains("mqtt.password_file:"));
  // Group-readable by the agent's own group (root:eport-agent 0640) is how
  // the package shares a key with the service: no warning.
  ::chmod(c.mqtt.key_file.c_str(), 0640);
  ::chmod(c.mqtt.password_file.c_str(), 0600);
  REQUIRE(::chown(c.mqtt.key_file.c_str(), static_cast<uid_t>(-1), ::getegid()) == 0);
  CHECK(config::secret_file_warnings(c).empty());
}

TEST_CASE("a .invalid broker host is a placeholder; load_file reports it with the missing files", "[config][security]") {
  auto r = config::load_string(kValid + "[mqtt]\nuri = \"ssl://broker.invalid:8883\"\nca_file = \"/ca\"\n");
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error(), Catch::Contains("mqtt.uri: ssl://broker.invalid:8883 is a placeholder"));
  TempDir d;
  auto f = d.write("agent.toml", kValid + "[mqtt]\nuri = \"ssl://broker.invalid:8883\"\nca_file = \"" + d.path +
                                     "/ca.crt\"\n");
  auto all = config::load_file(f);
  REQUIRE_FALSE(all.ok());
  CHECK_THAT(all.error(), Catch::Contains("is a placeholder") && Catch::Contains("mqtt.ca_file: cannot read " + d.path));
}

TEST_CASE("list keys take a TOML array or the older comma-separated string, with the same result", "[config]") {
  const std::string base = kValid.substr(0, kValid.find("[bridge]"));
  auto array = config::load_string(base + R"([bridge]
unix_socket = "/x"
serial_ports = ["/dev/ttyUSB0", "/dev/ttyUSB1"]
unit_intervals = ["TU-0042=60/900", "TU-0043=30/0"]
[mqtt]
uri = ["ssl://a.example:8883", "mqtts://b.example:8883"]
ca_file = "/ca"
)");
  auto commas = config::load_string(base + R"([bridge]
unix_socket = "/x"
serial_ports = "/dev/ttyUSB0,/dev/ttyUSB1,"
unit_intervals = "TU-0042=60/900, TU-0043=30/0"
[mqtt]
uri = "ssl://a.example:8883,mqtts://b.example:8883"
ca_file = "/ca"
)");
  REQUIRE(array.ok());
  REQUIRE(commas.ok());
  CHECK(array->bridge.serial_ports == std::vector<std::string>{"/dev/ttyUSB0", "/dev/ttyUSB1"});
  CHECK(commas->bridge.serial_ports == array->bridge.serial_ports);
  CHECK(config::broker_uris(*array) == config::broker_uris(*commas));
  REQUIRE(array->bridge.unit_intervals.size() == 2);
  CHECK(array->bridge.unit_intervals[1].position_s == 30);
  CHECK(config::config_hash(*array) == config::config_hash(*commas));
  CHECK(config::effective_json(*array) == config::effective_json(*commas));

  auto bad = config::load_string(kValid + "[mqtt]\nuri = [\"tcp://a:1\", 5]\n", "agent.toml");
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error(), Catch::Contains("agent.toml:7: mqtt.uri: expected an array of strings, got an integer in it"));
  auto none = config::load_string(kValid + "[mqtt]\nuri = []\n", "agent.toml");
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
    auto r = config::load_string(c.text, "agent.toml");
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error(), Catch::Contains(c.expected));
  }
  for (const auto& rule : config::cross_key_rules()) {
    CHECK_FALSE(rule.keys.empty());
    CHECK_THAT(config::reference_markdown(), Catch::Contains(std::string(rule.description)));
  }
}

TEST_CASE("the template holds every key with its default and loads to the defaults", "[config]") {
  auto text = config::config_template();
  for (const auto& k : config::key_specs()) {
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
  auto c = config::load_string(filled, "template.toml");
  REQUIRE(c.ok());
  auto minimal = config::load_string("[gateway]\nid = \"gw-dev\"\nsite = \"dev\"\n");
  REQUIRE(minimal.ok());
  CHECK(config::config_hash(*c) == config::config_hash(*minimal));
  CHECK(config::effective_json(*c) == config::effective_json(*minimal));
  // As printed (required keys empty) it is refused, naming them.
  auto as_is = config::load_string(text, "template.toml");
  REQUIRE_FALSE(as_is.ok());
  CHECK_THAT(as_is.error(), Catch::Contains("gateway.id"));
}
