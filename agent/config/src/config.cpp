// The config engine: TOML parsing and validation, the reference, the
// template, the effective JSON and the hash, all driven by the rows it is
// given (keys.h). Nothing here names a key.
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

bool is_tls_uri(std::string_view uri) { return uri.substr(0, 6) == "ssl://" || uri.substr(0, 8) == "mqtts://"; }

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

std::string KeyMeta::type_name() const {
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
  return "invalid";
}

// What a string or list key requires, for messages and the reference.
std::string rule_text(const KeyMeta& k) {
  if (!k.check_text.empty()) return std::string(k.check_text);
  return k.pattern_name.empty() ? std::string() : pattern_error(k.pattern_name);
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

// The index of a key in the bound rows, or -1.
long find_key(const detail::Bound& b, std::string_view key) {
  for (std::size_t i = 0; i < b.keys.size(); ++i)
    if (b.keys[i]->key == key) return static_cast<long>(i);
  return -1;
}

bool is_section(const detail::Bound& b, std::string_view name) {
  for (const auto* k : b.keys) {
    auto dot = k->key.find('.');
    if (k->key.substr(0, dot) == name) return true;
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

  // Validates one leaf; sets it (set) only when it is good.
  void check_leaf(const KeyMeta& spec, const toml::node& node, const std::function<void(const Value&)>& set) {
    switch (spec.type) {
      case KeyType::kBoolean: {
        const auto* v = node.as_boolean();
        if (v == nullptr) return error(node.source(), spec.key, std::string("expected true or false, got ") + type_of(node));
        return set(v->get());
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
        return set(n);
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
        return set(s);
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
        if (spec.check) {
          if (auto why = spec.check(s); !why.empty()) return error(node.source(), spec.key, "\"" + s + "\": " + why);
        }
        return set(s);
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
        if (spec.check) {
          if (auto why = spec.check(items); !why.empty()) {
            std::string shown = node.as_string() ? toml_text(node.as_string()->get()) : toml_text(items);
            return error(node.source(), spec.key, shown + " " + rule_text(spec) + " (" + why + ")");
          }
        }
        return set(items);
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

namespace detail {

std::vector<std::string> load(const Bound& b, std::string_view text, std::string_view source_name, bool& syntax_ok) {
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
    if (table == nullptr || !is_section(b, section)) {
      if (table == nullptr && find_key(b, section) < 0 && !is_section(b, section)) {
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
      long i = find_key(b, full);
      if (i < 0) {
        v.error(leaf_node.source(), full, "unknown key");
        continue;
      }
      const KeyMeta& spec = *b.keys[static_cast<std::size_t>(i)];
      seen[spec.key] = true;
      lines[spec.key] = leaf_node.source();
      v.check_leaf(spec, leaf_node, [&](const Value& value) { b.set(static_cast<std::size_t>(i), value); });
    }
  }
  for (const auto* k : b.keys) {
    if (k->required && !seen[k->key]) v.error(toml::source_region{}, k->key, "required key is missing");
  }
  // Rules over several keys see a refused value as its default, as the agent
  // would; every problem is reported at once.
  for (std::size_t r = 0; r < b.rules.size(); ++r) {
    auto problems = b.check(r);
    if (problems.empty()) continue;
    const auto& keys = *b.rules[r].first;
    toml::source_region where{};  // no line only when the file sets none of the rule's keys
    for (auto key : keys) {
      if (auto at = lines.find(key); at != lines.end()) {
        where = at->second;
        break;
      }
    }
    for (const auto& p : problems) v.error(where, keys.front(), p);
  }
  return v.errors_;
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string all;
  for (const auto& e : lines) all += (all.empty() ? "" : "\n") + e;
  return all;
}

Result<std::string> read_config_text(const std::string& path) {
  std::string text;
  if (!slurp(path, text, std::size_t(16) << 20)) return Error{path + ": cannot open config file: " + std::strerror(errno)};
  return text;
}

}  // namespace detail

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

Status refuse_world_readable(const std::string& path, std::string_view what) {
  struct stat st{};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & S_IROTH) != 0) {
    return Error{path + " is readable by every local user (mode " + mode_text(st.st_mode) + "): it holds " +
                 std::string(what) + "; chmod 600"};
  }
  return ok_status();
}

namespace {

bool is_secret(FileKind f) { return f == FileKind::kPrivateKey || f == FileKind::kPassword || f == FileKind::kSecretOther; }

// The problem with a PEM file that must hold a certificate or a private key, or "".
std::string pem_problem(const std::string& path, bool want_key) {
  std::string text;
  if (!slurp(path, text)) return "cannot read " + path + ": " + std::strerror(errno);
  for (std::size_t at = text.find("-----BEGIN "); at != std::string::npos; at = text.find("-----BEGIN ", at + 1)) {
    auto end = text.find("-----", at + 11);
    if (end == std::string::npos) break;
    std::string label = text.substr(at + 11, end - at - 11);
    if (want_key ? label.size() >= 11 && label.compare(label.size() - 11, 11, "PRIVATE KEY") == 0
                 : label == "CERTIFICATE" || label == "TRUSTED CERTIFICATE") {
      return "";
    }
  }
  return path + " holds no PEM " +
         (want_key ? "private key (-----BEGIN ... PRIVATE KEY-----)" : "certificate (-----BEGIN CERTIFICATE-----)");
}

}  // namespace

namespace detail {

std::vector<std::string> check_files(const Bound& b) {
  std::vector<std::string> errors;
  for (std::size_t i = 0; i < b.keys.size(); ++i) {
    const KeyMeta& k = *b.keys[i];
    if (k.file == FileKind::kNone) continue;
    auto v = b.get(i);
    const auto* path = std::get_if<std::string>(&v);
    if (path == nullptr || path->empty()) continue;
    std::string problem;
    switch (k.file) {
      case FileKind::kNone: break;
      case FileKind::kCertificate: problem = pem_problem(*path, false); break;
      case FileKind::kPrivateKey: problem = pem_problem(*path, true); break;
      case FileKind::kPassword:
        if (auto pw = read_secret(*path); !pw) problem = pw.error();
        break;
      case FileKind::kSecretOther:
      case FileKind::kChecked:
        if (k.read_check) problem = k.read_check(*path);
        break;
    }
    if (!problem.empty()) errors.push_back(std::string(k.key) + ": " + problem);
  }
  return errors;
}

std::vector<std::string> secret_file_warnings(const Bound& b) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < b.keys.size(); ++i) {
    const KeyMeta& k = *b.keys[i];
    if (!is_secret(k.file)) continue;
    auto v = b.get(i);
    const auto* path = std::get_if<std::string>(&v);
    struct stat st{};
    if (path == nullptr || path->empty() || ::stat(path->c_str(), &st) != 0) continue;
    if ((st.st_mode & S_IROTH) != 0) {
      out.push_back(std::string(k.key) + ": " + *path + " is readable by every local user (mode " +
                    mode_text(st.st_mode) + "): chmod o-rwx");
    } else if ((st.st_mode & S_IRGRP) != 0 && st.st_gid != ::getegid()) {
      out.push_back(std::string(k.key) + ": " + *path + " is readable by group " + std::to_string(st.st_gid) +
                    ", not the agent's own group (mode " + mode_text(st.st_mode) + "): chmod g-rwx or chgrp");
    }
  }
  return out;
}

}  // namespace detail

namespace {

// The "range / values" of a key, in Markdown.
std::string range_text(const KeyMeta& k) {
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
    case KeyType::kList: return rule_text(k);
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

namespace detail {

std::string reference_markdown(const Bound& b) {
  std::string out = "| key | type | default | range / values | description |\n|---|---|---|---|---|\n";
  for (const auto* k : b.keys) {
    out += "| `" + std::string(k->key) + "` | " + k->type_name() + " | " +
           (k->required ? std::string("required") : "`" + toml_text(k->default_value) + "`") + " | " + range_text(*k) +
           " | " + std::string(k->description) + " |\n";
  }
  out += "\nRules over several keys (each problem is reported at the first key named, with the line of the first of "
         "its keys that the file sets):\n";
  for (const auto& r : b.rules) out += "- " + std::string(r.second) + "\n";
  return out;
}

std::string config_template(const Bound& b, std::string_view title) {
  std::string out =
      "# " + std::string(title) +
      "\n"
      "# A line '#key = value' shows the default: remove the '#' to change it.\n"
      "# Keys without a default (REQUIRED) are set to \"\" and must be filled in.\n"
      "# Unknown keys are errors. Validate with: eport-agent --check-config FILE\n";
  std::string_view section;
  for (const auto* k : b.keys) {
    auto dot = k->key.find('.');
    auto sec = k->key.substr(0, dot);
    auto leaf = k->key.substr(dot + 1);
    if (sec != section) {
      out += "\n[" + std::string(sec) + "]\n";
      section = sec;
    } else {
      out += "\n";
    }
    out += comment(k->description);
    auto range = range_text(*k);
    std::string plain;
    for (char ch : range)
      if (ch != '`') plain += ch;
    out += comment(k->type_name() + (plain.empty() ? "" : ", " + plain));
    if (k->required) {
      out += "# REQUIRED\n" + std::string(leaf) + " = \"\"\n";
    } else {
      out += "#" + std::string(leaf) + " = " + toml_text(k->default_value) + "\n";
    }
  }
  return out;
}

std::string effective_json(const Bound& b) {
  // Strings through eport::json: control bytes escaped, never dropped.
  std::string out = "{";
  for (std::size_t i = 0; i < b.keys.size(); ++i) {
    out += (out.size() > 1 ? "," : "") + json::quote(b.keys[i]->key) + ":";
    auto v = b.get(i);
    out += std::holds_alternative<std::string>(v) || std::holds_alternative<std::vector<std::string>>(v)
               ? json::quote(plain_text(v))
               : plain_text(v);
  }
  return out + "}";
}

std::string config_hash(const Bound& b) {
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&](std::string_view s) {
    for (unsigned char ch : s) {
      h ^= ch;
      h *= 1099511628211ull;
    }
  };
  for (std::size_t i = 0; i < b.keys.size(); ++i) {
    mix(b.keys[i]->key);
    mix("=");
    mix(plain_text(b.get(i)));
    mix("\n");
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, h);
  return buf;
}

}  // namespace detail

}  // namespace eport::config
