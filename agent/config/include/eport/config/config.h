// The config engine: parses and validates a TOML file against the rows of
// config::Keys<T> (keys.h), and renders the same rows as the reference
// (docs/config.md), a commented template (packaging/agent.toml), the
// effective JSON and the config hash, so none of them can disagree with
// what is accepted. It names no key: every key is declared by the library
// it configures, over that library's own Options. The only library that
// links toml++.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "eport/config/keys.h"
#include "eport/model/result.h"

namespace eport::config {

namespace detail {

// Keys<T> bound to one target object, with T erased, for the engine's one
// (non-template) implementation.
struct Bound {
  std::vector<const KeyMeta*> keys;
  std::function<Value(std::size_t key)> get;
  std::function<void(std::size_t key, const Value&)> set;
  std::vector<std::pair<const std::vector<std::string_view>*, std::string_view>> rules;  // keys, description
  std::function<std::vector<std::string>(std::size_t rule)> check;
};

template <class T>
Bound bind(const Keys<T>& table, T* target) {
  Bound b;
  for (const auto& k : table.keys) b.keys.push_back(&k);
  b.get = [&table, target](std::size_t i) { return table.keys[i].get(*target); };
  b.set = [&table, target](std::size_t i, const Value& v) { table.keys[i].set(*target, v); };
  for (const auto& r : table.rules) b.rules.emplace_back(&r.keys, r.description);
  b.check = [&table, target](std::size_t i) { return table.rules[i].check(*target); };
  return b;
}

// Parses and validates into the bound target (which holds the defaults);
// the problems found, each a full line. With a TOML syntax error,
// syntax_ok is false.
std::vector<std::string> load(const Bound& b, std::string_view text, std::string_view source_name, bool& syntax_ok);
// The config file's text; the error names the path and why it cannot be read.
Result<std::string> read_config_text(const std::string& path);
std::vector<std::string> check_files(const Bound& b);
std::vector<std::string> secret_file_warnings(const Bound& b);
std::string reference_markdown(const Bound& b);
std::string config_template(const Bound& b, std::string_view title);
std::string effective_json(const Bound& b);
std::string config_hash(const Bound& b);
std::string join_lines(const std::vector<std::string>& lines);

}  // namespace detail

// Parses and validates. On failure the error lists every problem, one per
// line, each naming the file, line and key: "agent.toml:7: mqtt.keepalive_s:
// 0 is out of range 1..3600". Keys the file does not set keep their
// defaults (a default-constructed T).
template <class T>
Result<T> load_string(const Keys<T>& keys, std::string_view toml_text, std::string_view source_name = "<string>") {
  T out{};
  bool syntax_ok = false;
  auto errors = detail::load(detail::bind(keys, &out), toml_text, source_name, syntax_ok);
  if (!errors.empty()) return Error{detail::join_lines(errors)};
  return out;
}

// load_string on a file, which then also opens every file a key names
// (check_files): what --check-config and a start both run.
template <class T>
Result<T> load_file(const Keys<T>& keys, const std::string& path) {
  auto text = detail::read_config_text(path);
  if (!text) return Error{text.error()};
  T out{};
  bool syntax_ok = false;
  auto b = detail::bind(keys, &out);
  auto errors = detail::load(b, *text, path, syntax_ok);
  // The files are checked even when other keys are wrong: every problem at once.
  if (syntax_ok) {
    for (const auto& e : detail::check_files(b)) errors.push_back(path + ": " + e);
  }
  if (!errors.empty()) return Error{detail::join_lines(errors)};
  return out;
}

// Opens each file a key names: a PEM certificate, a PEM private key, a
// password (read_secret) or the library's own check. One "key: problem
// naming the path" per failure; empty when all are usable.
template <class T>
std::vector<std::string> check_files(const Keys<T>& keys, const T& config) {
  return detail::check_files(detail::bind(keys, const_cast<T*>(&config)));
}

// A secret file (private key, password, other secrets) readable by others,
// or by a group that is not this process's effective group: one warning each.
template <class T>
std::vector<std::string> secret_file_warnings(const Keys<T>& keys, const T& config) {
  return detail::secret_file_warnings(detail::bind(keys, const_cast<T*>(&config)));
}

// Markdown table of every key, then the rules over several keys.
template <class T>
std::string reference_markdown(const Keys<T>& keys) {
  T probe{};
  return detail::reference_markdown(detail::bind(keys, &probe));
}

// A complete config file: every key with its default, commented out, and
// its description, range and type as comments; required keys set to "".
template <class T>
std::string config_template(const Keys<T>& keys, std::string_view title) {
  T probe{};
  return detail::config_template(detail::bind(keys, &probe), title);
}

// The effective config as one JSON object {"section.key": value, ...}:
// durations as their count in the key's unit, enums by name, lists as one
// comma-separated string. Holds no secret as long as no key holds one (a
// password lives in a file a key names).
template <class T>
std::string effective_json(const Keys<T>& keys, const T& config) {
  return detail::effective_json(detail::bind(keys, const_cast<T*>(&config)));
}

// Stable hash of the effective config (FNV-1a over key=value lines, in the
// table's order): which config a gateway runs.
template <class T>
std::string config_hash(const Keys<T>& keys, const T& config) {
  return detail::config_hash(detail::bind(keys, const_cast<T*>(&config)));
}

// MQTT's limit on a password (a 16-bit length).
inline constexpr std::size_t kMaxPasswordBytes = 65535;
// The first line of a password file, without its line end. Refused, not
// truncated, when longer than kMaxPasswordBytes; refused when empty.
Result<std::string> read_secret(const std::string& path);

// A file that holds secrets: refused when every local user may read it.
// The message names the path and its mode.
Status refuse_world_readable(const std::string& path, std::string_view what);

// True when the URI's host is, exactly, an IPv4 address in 127.0.0.0/8,
// ::1 or "localhost" (tcp://127.attacker.example is not).
bool is_loopback_uri(std::string_view uri);
bool is_tls_uri(std::string_view uri);  // ssl:// or mqtts://
std::string uri_host(std::string_view uri);  // the host of scheme://host:port ([v6] brackets removed), or ""

// "a, b ,c" -> {"a", "b", "c"}: split at commas, spaces around items
// trimmed, empty items kept ("a," -> {"a", ""}).
std::vector<std::string> split_commas(const std::string& v);

}  // namespace eport::config
