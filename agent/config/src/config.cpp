// The config engine: TOML parsing and validation, the reference, the
// template, the effective JSON and the hash, all driven by the key table of
// keys.cpp. Nothing here names a key except the pattern rules.
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
#include "internal.h"

namespace eport::config {

namespace detail {

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

bool is_tls(std::string_view uri) { return uri.substr(0, 6) == "ssl://" || uri.substr(0, 8) == "mqtts://"; }

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

KeySpec boolean(std::string_view key, bool def, std::string_view desc, Ref<bool> ref) {
  KeySpec k;
  k.key = key;
  k.type = KeyType::kBoolean;
  k.description = desc;
  k.default_value = def;
  k.get = [ref](const AgentConfig& c) -> Value { return ref(const_cast<AgentConfig&>(c)); };
  k.set = [ref](AgentConfig& c, const Value& v) { ref(c) = std::get<bool>(v); };
  return k;
}

KeySpec integer(std::string_view key, std::int64_t def, std::int64_t min, std::int64_t max, std::string_view desc,
                Ref<std::int64_t> ref) {
  KeySpec k;
  k.key = key;
  k.type = KeyType::kInteger;
  k.description = desc;
  k.default_value = def;
  k.min = min;
  k.max = max;
  k.get = [ref](const AgentConfig& c) -> Value { return ref(const_cast<AgentConfig&>(c)); };
  k.set = [ref](AgentConfig& c, const Value& v) { ref(c) = std::get<std::int64_t>(v); };
  return k;
}

KeySpec string(std::string_view key, std::string def, std::string_view desc, Ref<std::string> ref,
               std::string_view pattern) {
  KeySpec k;
  k.key = key;
  k.type = KeyType::kString;
  k.description = desc;
  k.default_value = std::move(def);
  k.pattern_name = pattern;
  k.get = [ref](const AgentConfig& c) -> Value { return ref(const_cast<AgentConfig&>(c)); };
  k.set = [ref](AgentConfig& c, const Value& v) { ref(c) = std::get<std::string>(v); };
  return k;
}

KeySpec list(std::string_view key, std::vector<std::string> def, std::string_view desc,
             Ref<std::vector<std::string>> ref, std::string_view pattern, bool skip_empty_items) {
  KeySpec k;
  k.key = key;
  k.type = KeyType::kList;
  k.description = desc;
  k.default_value = std::move(def);
  k.pattern_name = pattern;
  k.skip_empty_items = skip_empty_items;
  k.get = [ref](const AgentConfig& c) -> Value { return ref(const_cast<AgentConfig&>(c)); };
  k.set = [ref](AgentConfig& c, const Value& v) { ref(c) = std::get<std::vector<std::string>>(v); };
  return k;
}

}  // namespace detail

using detail::split_commas;
using detail::uri_host;

std::string KeySpec::type_name() const {
  switch (type) {
    case KeyType::kBoolean: return "boolean";
    case KeyType::kInteger: return "integer";
    case KeyType::kDuration: return "integer (" + std::string(unit) + ")";
    case KeyType::kEnum:
    case KeyType::kString: return "string";
    case KeyType::kList: return "array of strings";
  }
  return "string";
}

namespace {

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

// A list key's items, as a whole.
bool list_matches(std::string_view pattern, const std::vector<std::string>& items) {
  if (pattern == "uris") {
    for (const auto& i : items)
      if (!is_uri(i)) return false;
    return !items.empty() && items.size() <= 8;
  }
  if (pattern == "unit_intervals") return parse_unit_intervals(items).ok();
  return true;
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
  return true;
}

// A value as TOML writes it.
std::string toml_text(const Value& v) {
  auto quote = [](const std::string& s) {
    std::string out = "\"";
    for (char ch : s) {
      if (ch == '"' || ch == '\\') out += '\\';
      out += ch;
    }
    return out + "\"";
  };
  if (const auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (const auto* s = std::get_if<std::string>(&v)) return quote(*s);
  std::string out = "[";
  for (const auto& item : std::get<std::vector<std::string>>(v)) out += (out.size() > 1 ? ", " : "") + quote(item);
  return out + "]";
}

// A value as the effective JSON and the hash hold it: lists joined by commas.
std::string plain_text(const Value& v) {
  if (const auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  std::string out;
  for (const auto& item : std::get<std::vector<std::string>>(v)) out += (out.empty() ? "" : ",") + item;
  return out;
}

void apply_defaults(AgentConfig& c) {
  for (const auto& k : key_specs()) {
    if (!k.required) k.set(c, k.default_value);
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
    switch (spec.type) {
      case KeyType::kBoolean: {
        const auto* v = node.as_boolean();
        if (v == nullptr) return error(node.source(), spec.key, std::string("expected true or false, got ") + type_of(node));
        return spec.set(out, v->get());
      }
      case KeyType::kInteger:
      case KeyType::kDuration: {
        const auto* v = node.as_integer();
        if (v == nullptr) return error(node.source(), spec.key, std::string("expected an integer, got ") + type_of(node));
        std::int64_t n = v->get();
        if (n < spec.min || n > spec.max) {
          return error(node.source(), spec.key,
                       std::to_string(n) + " is out of range " + std::to_string(spec.min) + ".." + std::to_string(spec.max));
        }
        if (!spec.allowed.empty() && std::find(spec.allowed.begin(), spec.allowed.end(), n) == spec.allowed.end()) {
          return error(node.source(), spec.key, std::to_string(n) + " is not " + std::string(spec.allowed_name));
        }
        return spec.set(out, n);
      }
      case KeyType::kEnum: {
        const auto* v = node.as_string();
        if (v == nullptr) return error(node.source(), spec.key, std::string("expected a string, got ") + type_of(node));
        const std::string& s = v->get();
        if (std::find(spec.choices.begin(), spec.choices.end(), s) == spec.choices.end()) {
          std::string list;
          for (auto c : spec.choices) list += (list.empty() ? "" : ", ") + std::string(c);
          return error(node.source(), spec.key, "\"" + s + "\" is not one of: " + list);
        }
        return spec.set(out, s);
      }
      case KeyType::kString: {
        const auto* v = node.as_string();
        if (v == nullptr) return error(node.source(), spec.key, std::string("expected a string, got ") + type_of(node));
        const std::string& s = v->get();
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
        return spec.set(out, s);
      }
      case KeyType::kList: {
        // A TOML array of strings, or one string: a single item, or (the form
        // older configs use) items separated by commas.
        std::vector<std::string> items;
        if (const auto* str = node.as_string()) {
          items = split_commas(str->get());
        } else if (const auto* arr = node.as_array()) {
          for (const auto& item : *arr) {
            const auto* s = item.as_string();
            if (s == nullptr) {
              return error(item.source(), spec.key, std::string("expected an array of strings, got ") + type_of(item) +
                                                        " in it");
            }
            items.push_back(s->get());
          }
        } else {
          return error(node.source(), spec.key,
                       std::string("expected a string, got ") + type_of(node) + " (or an array of strings)");
        }
        if (spec.skip_empty_items) {
          items.erase(std::remove(items.begin(), items.end(), std::string()), items.end());
        }
        if (!spec.pattern_name.empty() && !list_matches(spec.pattern_name, items)) {
          std::string shown = node.as_string() ? toml_text(node.as_string()->get()) : toml_text(items);
          return error(node.source(), spec.key, shown + " " + pattern_error(spec.pattern_name));
        }
        return spec.set(out, items);
      }
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
  std::map<std::string_view, toml::source_region> lines;  // where each key is set

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
      lines[spec->key] = leaf_node.source();
      v.check_leaf(*spec, leaf_node, out);
    }
  }
  for (const auto& k : key_specs()) {
    if (k.required && !seen[k.key]) v.error(toml::source_region{}, k.key, "required key is missing");
  }
  // Rules over several keys see a refused value as its default, as the agent
  // would; every problem is reported at once.
  for (const auto& rule : cross_key_rules()) {
    auto problems = rule.check(out);
    if (problems.empty()) continue;
    toml::source_region where{};  // no line only when the file sets none of the rule's keys
    for (auto key : rule.keys) {
      if (auto at = lines.find(key); at != lines.end()) {
        where = at->second;
        break;
      }
    }
    for (const auto& p : problems) v.error(where, rule.keys.front(), p);
  }
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

namespace {

// The "range / values" of a key, in Markdown.
std::string range_text(const KeySpec& k) {
  std::string range;
  switch (k.type) {
    case KeyType::kBoolean: return "`true`, `false`";
    case KeyType::kInteger:
    case KeyType::kDuration:
      if (k.allowed.empty()) return std::to_string(k.min) + " .. " + std::to_string(k.max);
      range = "one of ";
      for (auto v : k.allowed) range += (range.size() == 7 ? "" : ", ") + std::to_string(v);
      return range;
    case KeyType::kEnum:
      for (auto c : k.choices) range += (range.empty() ? "" : ", ") + std::string("`") + std::string(c) + "`";
      return range;
    case KeyType::kString:
    case KeyType::kList: return k.pattern_name.empty() ? "" : pattern_error(k.pattern_name);
  }
  return range;
}

// Wraps text into "# " comment lines of at most 79 columns.
std::string comment(std::string_view text) {
  std::string out, line;
  std::size_t at = 0;
  while (at < text.size()) {
    auto space = text.find(' ', at);
    auto word = text.substr(at, space == std::string_view::npos ? std::string_view::npos : space - at);
    at = space == std::string_view::npos ? text.size() : space + 1;
    if (!line.empty() && line.size() + 1 + word.size() > 77) {
      out += "# " + line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + std::string(word);
  }
  if (!line.empty()) out += "# " + line + "\n";
  return out;
}

}  // namespace

std::string reference_markdown() {
  std::string out = "| key | type | default | range / values | description |\n|---|---|---|---|---|\n";
  for (const auto& k : key_specs()) {
    out += "| `" + std::string(k.key) + "` | " + k.type_name() + " | " +
           (k.required ? std::string("required") : "`" + toml_text(k.default_value) + "`") + " | " + range_text(k) +
           " | " + std::string(k.description) + " |\n";
  }
  out += "\nRules over several keys (each problem is reported at the first key named, with the line of the first of "
         "its keys that the file sets):\n";
  for (const auto& r : cross_key_rules()) out += "- " + std::string(r.description) + "\n";
  return out;
}

std::string config_template() {
  std::string out =
      "# agent.toml - every key of eport-agent with its default (eport-agent --config-template).\n"
      "# A line '#key = value' shows the default: remove the '#' to change it.\n"
      "# Keys without a default (REQUIRED) are set to \"\" and must be filled in.\n"
      "# Unknown keys are errors. Validate with: eport-agent --check-config FILE\n";
  std::string_view section;
  for (const auto& k : key_specs()) {
    auto dot = k.key.find('.');
    auto sec = k.key.substr(0, dot);
    auto leaf = k.key.substr(dot + 1);
    if (sec != section) {
      out += "\n[" + std::string(sec) + "]\n";
      section = sec;
    } else {
      out += "\n";
    }
    out += comment(k.description);
    auto range = range_text(k);
    std::string plain;
    for (char ch : range)
      if (ch != '`') plain += ch;
    out += comment(k.type_name() + (plain.empty() ? "" : ", " + plain));
    if (k.required) {
      out += "# REQUIRED\n" + std::string(leaf) + " = \"\"\n";
    } else {
      out += "#" + std::string(leaf) + " = " + toml_text(k.default_value) + "\n";
    }
  }
  return out;
}

std::vector<std::string> broker_uris(const AgentConfig& config) { return config.mqtt.uri; }

Result<std::vector<UnitIntervals>> parse_unit_intervals(std::string_view text) {
  return parse_unit_intervals(split_commas(std::string(text)));
}

Result<std::vector<UnitIntervals>> parse_unit_intervals(const std::vector<std::string>& entries) {
  std::vector<UnitIntervals> out;
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
  // Strings through eport::json: control bytes escaped, never dropped.
  std::string out = "{";
  for (const auto& k : key_specs()) {
    out += (out.size() > 1 ? "," : "") + json::quote(k.key) + ":";
    auto v = k.get(config);
    out += std::holds_alternative<std::string>(v) || std::holds_alternative<std::vector<std::string>>(v)
               ? json::quote(plain_text(v))
               : plain_text(v);
  }
  return out + "}";
}

std::string config_hash(const AgentConfig& config) {
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
    mix(plain_text(k.get(config)));
    mix("\n");
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, h);
  return buf;
}

}  // namespace eport::config
