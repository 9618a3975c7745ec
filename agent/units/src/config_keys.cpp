// The unit server's config key rows (docs/config.md, [bridge]), the
// bridge.unit_intervals parser and the unit key file reader.
#include "eport/units/config_keys.h"

#include "eport/units/evidence_check.h"

#include <cstdio>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "eport/config/config.h"
#include "eport/model/ids.h"
#include "eport/tty/tty.h"

namespace eport::units {

namespace {

// tty's standard rates from `lowest` up (slower lines carry no unit).
std::vector<std::int64_t> standard_rates_from(int lowest) {
  std::vector<std::int64_t> out;
  for (int b : tty::standard_bauds())
    if (b >= lowest) out.push_back(b);
  return out;
}

config::Keys<ServerOptions> build() {
  using O = ServerOptions;
  config::Keys<O> k;
  k.add(config::string<O>("bridge.unix_socket",
                          "UNIX socket on which telematics units (or eport-sim) connect. Empty: no UNIX socket.",
                          EPORT_OPTION(O, unix_socket)));
  k.add(config::string<O>("bridge.tcp_listen",
                          "host:port on which units connect over TCP, e.g. \"0.0.0.0:7700\". Empty: no TCP listener.",
                          EPORT_OPTION(O, tcp_listen), "hostport"));
  k.add(config::list<O>("bridge.serial_ports",
                        "Serial devices (UART, USB-serial), one unit per tty (no multi-drop), e.g. "
                        "[\"/dev/ttyUSB0\", \"/dev/ttyAMA1\"] (or the older form \"/dev/ttyUSB0,/dev/ttyAMA1\"). "
                        "Empty: none.",
                        EPORT_OPTION(O, serial_ports), {}, true));
  k.add(config::allowed(config::integer<O>("bridge.serial_baud", 1200, 4000000,
                                           "Baud rate of every bridge.serial_ports device (8N1, raw, no flow "
                                           "control); one of Linux's standard rates.",
                                           EPORT_OPTION(O, serial_baud)),
                        standard_rates_from(1200), "a standard rate"));
  k.add(config::integer<O>("bridge.window", 1, 4096,
                           "Readings a unit may have in flight without an ACK (sent to the unit in WELCOME).",
                           EPORT_OPTION(O, window)));
  k.add(config::integer<O>("bridge.max_units", 1, 100000, "Connections accepted at once; more are closed at accept.",
                           EPORT_OPTION(O, max_units)));
  k.add(config::integer<O>("bridge.max_units_per_address", 1, 100000,
                           "TCP connections from one IP address at once; more are closed at accept (counted, warned "
                           "about at most every 10 s; docs/security.md).",
                           EPORT_OPTION(O, max_units_per_address)));
  k.add(config::integer<O>("bridge.unix_reserve", 0, 100000,
                           "Slots of bridge.max_units that only units on bridge.unix_socket may take: TCP connections "
                           "never lock local units out.",
                           EPORT_OPTION(O, unix_reserve)));
  k.add(config::duration<O>("bridge.hello_deadline_s", 1, 600,
                            "A socket connection with no accepted HELLO this long after it opened is closed "
                            "(docs/firmware-bridge.md 7.1).",
                            EPORT_OPTION(O, hello_deadline)));
  k.add(config::integer<O>("bridge.max_unit_ids_per_link", 1, 100000,
                           "Distinct unit ids one link may say HELLO for within a minute; the link that says one more "
                           "is dropped (docs/firmware-bridge.md 7.1).",
                           EPORT_OPTION(O, max_unit_ids_per_link)));
  k.add(config::integer<O>("bridge.max_seq_jump", 1, 9007199254740991,
                           "How far a unit's HELLO (its oldest_seq) may lie beyond the last seq stored of it, and how "
                           "many seqs one DISCARD may declare; beyond, the HELLO or DISCARD is refused with NACK "
                           "SEQ_RANGE (docs/firmware-bridge.md 7.1).",
                           EPORT_OPTION(O, max_seq_jump)));
  k.add(config::duration<O>("bridge.idle_ping_s", 1, 3600,
                            "A unit link silent this long gets a PING (docs/firmware-bridge.md 7.9).",
                            EPORT_OPTION(O, idle_ping_after)));
  {
    auto keys = config::string<O>("bridge.unit_keys",
                                  "File of the units' keys (\"UNIT_ID HEX64\" per line, mode 0600; written by "
                                  "eport-pki unit-key). A unit listed there must authenticate on every link; units on "
                                  "bridge.tcp_listen must authenticate always (docs/security.md). Empty: no keys.",
                                  EPORT_OPTION(O, unit_keys_file), {}, config::FileKind::kSecretOther);
    keys.read_check = [](const std::string& path) {
      auto read = read_unit_keys(path);
      return read ? std::string() : read.error();
    };
    k.add(std::move(keys));
  }
  {
    auto keys = config::string<O>("bridge.evidence_keys",
                                  "File of the units' evidence public keys (\"UNIT_ID ALG KID_HEX PUBKEY_HEX\" per "
                                  "line, ALG ed25519 or es256, as epb-evidence keygen prints them): the agent checks "
                                  "their checkpoints' signatures, chain and heads, counts and alarms (docs/evidence.md "
                                  "section 13). Empty: checkpoints are forwarded unchecked.",
                                  EPORT_OPTION(O, evidence_keys_file), {}, config::FileKind::kChecked);
    keys.read_check = [](const std::string& path) {
      auto read = read_evidence_keys(path);
      return read ? std::string() : read.error();
    };
    k.add(std::move(keys));
  }
  {
    // The file says what is given up (authentication); the option says what
    // is required.
    config::Key<O> insecure;
    static_cast<config::KeyMeta&>(insecure) = config::boolean<O>(
        "bridge.insecure_tcp_without_auth",
        "Lets units on bridge.tcp_listen in without authenticating: anyone on the network can then claim any unit id "
        "not in bridge.unit_keys (logged as a warning at every start).",
        EPORT_OPTION(O, tcp_requires_auth));
    insecure.default_value = !O{}.tcp_requires_auth;
    insecure.get = [](const O& o) -> config::Value { return !o.tcp_requires_auth; };
    insecure.set = [](O& o, const config::Value& v) { o.tcp_requires_auth = !std::get<bool>(v); };
    k.add(std::move(insecure));
  }
  k.add(config::duration<O>("bridge.dead_after_ping_s", 1, 600,
                            "Still silent this long after the PING: the link is dead (socket closed, tty session "
                            "forgotten).",
                            EPORT_OPTION(O, dead_after_ping)));
  k.add(config::duration<O>("bridge.position_interval_s", 0, 4294967295,
                            "Position reporting interval sent to every unit in SETTINGS after WELCOME; 0: not sent.",
                            EPORT_OPTION(O, default_intervals.position_s)));
  k.add(config::duration<O>("bridge.sensor_interval_s", 0, 4294967295,
                            "Sensor reporting interval sent to every unit in SETTINGS after WELCOME; 0: not sent.",
                            EPORT_OPTION(O, default_intervals.sensor_s)));
  {
    // Held parsed; the table sees the entries as strings.
    config::Key<O> intervals;
    intervals.key = "bridge.unit_intervals";
    intervals.type = config::KeyType::kList;
    intervals.description =
        "Per-unit reporting intervals over the two above: UNIT=POSITION_S/SENSOR_S entries, e.g. "
        "[\"TU-0042=60/900\", \"TU-0043=30/0\"] (or the older form \"TU-0042=60/900,TU-0043=30/0\"; 0: leave as is).";
    intervals.default_value = std::vector<std::string>{};
    intervals.skip_empty_items = true;
    intervals.check_text =
        "must be UNIT=POSITION_S/SENSOR_S entries, e.g. \"TU-0042=60/900\" (topic-safe unit ids of at most 32 bytes, "
        "each once; seconds 0..4294967295)";
    intervals.check = [](const config::Value& v) {
      auto parsed = parse_unit_intervals(std::get<std::vector<std::string>>(v));
      return parsed ? std::string() : parsed.error();
    };
    intervals.get = [](const O& o) -> config::Value {
      std::vector<std::string> out;
      for (const auto& [unit, i] : o.unit_intervals) {
        out.push_back(unit + "=" + std::to_string(i.position_s) + "/" + std::to_string(i.sensor_s));
      }
      return out;
    };
    intervals.set = [](O& o, const config::Value& v) {
      auto parsed = parse_unit_intervals(std::get<std::vector<std::string>>(v));
      o.unit_intervals = parsed ? std::move(*parsed) : std::map<std::string, Intervals>{};
    };
    k.add(std::move(intervals));
  }
  k.rule({"bridge", "bridge.unix_socket", "bridge.tcp_listen", "bridge.serial_ports"},
         "At least one of `bridge.unix_socket`, `bridge.tcp_listen` and `bridge.serial_ports` must be set.",
         [](const O& o) {
           return config::problem_if(o.unix_socket.empty() && o.tcp_listen.empty() && o.serial_ports.empty(),
                                     "no transport: set bridge.unix_socket, bridge.tcp_listen or bridge.serial_ports");
         });
  k.rule({"bridge.unix_reserve", "bridge.max_units", "bridge.unix_socket", "bridge.tcp_listen"},
         "`bridge.unix_reserve` must be below `bridge.max_units` when both `bridge.unix_socket` and "
         "`bridge.tcp_listen` are set.",
         [](const O& o) {
           return config::problem_if(!o.unix_socket.empty() && !o.tcp_listen.empty() && o.unix_reserve >= o.max_units,
                                     "must be below bridge.max_units (" + std::to_string(o.max_units) +
                                         ") when TCP is served too, or no TCP unit can ever connect");
         });
  k.rule({"bridge.tcp_listen", "bridge.unit_keys", "bridge.insecure_tcp_without_auth"},
         "`bridge.tcp_listen` needs `bridge.unit_keys` (units on TCP must authenticate, docs/firmware-bridge.md section "
         "13), or `bridge.insecure_tcp_without_auth = true`.",
         [](const O& o) {
           return config::problem_if(!o.tcp_listen.empty() && o.unit_keys_file.empty() && o.tcp_requires_auth,
                                     "units on TCP must authenticate: set bridge.unit_keys (eport-pki unit-key), or "
                                     "bridge.insecure_tcp_without_auth = true to let any unit id in");
         });
  return k;
}

// Reads all of a file of at most `limit` bytes; false (and errno) when it
// cannot be opened or read.
bool slurp(const std::string& path, std::string& out, std::size_t limit) {
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

}  // namespace

const config::Keys<ServerOptions>& config_keys() {
  static const config::Keys<ServerOptions> keys = build();
  return keys;
}

Result<std::map<std::string, Intervals>> parse_unit_intervals(std::string_view text) {
  return parse_unit_intervals(config::split_commas(std::string(text)));
}

Result<std::map<std::string, Intervals>> parse_unit_intervals(const std::vector<std::string>& entries) {
  std::map<std::string, Intervals> out;
  auto number = [](std::string_view d, std::uint32_t& v) {
    if (d.empty() || d.size() > 10 || d.find_first_not_of("0123456789") != std::string_view::npos) return false;
    auto n = std::strtoull(std::string(d).c_str(), nullptr, 10);
    if (n > 4294967295ull) return false;
    v = static_cast<std::uint32_t>(n);
    return true;
  };
  for (const auto& raw : entries) {
    std::string_view e = raw;
    while (!e.empty() && e.front() == ' ') e.remove_prefix(1);
    while (!e.empty() && e.back() == ' ') e.remove_suffix(1);
    if (e.empty()) continue;
    auto eq = e.find('=');
    auto slash = e.find('/', eq == std::string_view::npos ? 0 : eq);
    if (eq == std::string_view::npos || slash == std::string_view::npos) return Error{"entry \"" + std::string(e) + "\""};
    std::string unit(e.substr(0, eq));
    if (!model::topic_id_problem(unit, 32).empty()) return Error{"unit id in \"" + std::string(e) + "\""};
    Intervals i;
    if (!number(e.substr(eq + 1, slash - eq - 1), i.position_s) || !number(e.substr(slash + 1), i.sensor_s)) {
      return Error{"seconds in \"" + std::string(e) + "\""};
    }
    if (!out.emplace(unit, i).second) return Error{"unit " + unit + " listed twice"};
  }
  return out;
}

Result<std::map<std::string, std::array<std::uint8_t, 32>>> read_unit_keys(const std::string& path) {
  if (auto open = config::refuse_world_readable(path, "the units' keys"); !open) return Error{open.error()};
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

}  // namespace eport::units
