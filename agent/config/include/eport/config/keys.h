// How a library declares its config keys (the Fluent Bit config-map habit):
// one typed row per key, bound to a field of the library's own Options, and
// rules over several of its keys. The row's default is the field's value in
// a default-constructed Options, so a key has exactly one default: the
// library's member initializer. eport::config's engine (config.h) parses,
// validates, documents and hashes whatever rows it is given; the agent
// assembles the rows of every library (agent/app/src/settings.cpp).
//
// A library writes, in its own config_keys.cpp:
//   config::Keys<store::OutboxOptions> keys;
//   keys.add(config::integer<OutboxOptions>("store.low_water_pct", 10, 99, "Eviction frees...",
//                                           EPORT_OPTION(OutboxOptions, low_water_pct)));
// Header only; no TOML here.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace eport::config {

enum class KeyType {
  kBoolean,
  kInteger,   // inclusive range, optionally an allowed set
  kDuration,  // an integer count of `unit` (the key name ends in _ms or _s), inclusive range
  kEnum,      // a string out of `choices`, held as a C++ enum
  kString,    // optionally checked by a named pattern or the library's own check
  kList,      // a TOML array of strings, or (legacy) one comma-separated string
};

// A key's value as the engine handles it: bool, integer (durations: the count
// in the key's unit), string (enums: the name), list of strings.
using Value = std::variant<bool, std::int64_t, std::string, std::vector<std::string>>;

// What the file a path key names must hold; load_file opens it (check
// files), and a secret one readable by others is warned about.
enum class FileKind {
  kNone,         // not a path, or a path the agent creates (store.path, sockets)
  kCertificate,  // PEM certificate(s)
  kPrivateKey,   // PEM private key; secret
  kPassword,     // a password file (read_secret); secret
  kSecretOther,  // read by the library's own `read_check` (e.g. unit keys); secret
  kChecked,      // read by the library's own `read_check` (e.g. a zones file); not secret
};

// Everything about a key but how it reaches its field.
struct KeyMeta {
  std::string_view key;  // dotted path, e.g. "mqtt.keepalive_s"; the section is what is before the dot
  KeyType type = KeyType::kString;
  std::string_view description;
  bool required = false;  // no default: the file must set it
  Value default_value;    // the field's value in a default-constructed Options
  std::int64_t min = 0, max = 0;          // integers and durations, inclusive
  std::vector<std::int64_t> allowed;      // integers: the only values accepted (empty: any in range)
  std::string_view allowed_name;          // what a value outside `allowed` is not, e.g. "a standard rate"
  std::string_view unit;                  // durations: "ms" or "s"
  std::vector<std::string_view> choices;  // enums: the names, in the enum's order
  std::string_view pattern_name;          // strings and lists: a rule the engine knows ("id", "uris", "hostport")
  // Strings and lists: a rule of the library's own; the problem with the
  // value ("" when fine) and, for the reference, what it requires.
  std::function<std::string(const Value&)> check;
  std::string_view check_text;
  bool skip_empty_items = false;  // lists: "a,,b" and "a," hold no empty item
  FileKind file = FileKind::kNone;
  // kSecretOther, kChecked: reads the file as the library will at start; the problem, or "".
  std::function<std::string(const std::string& path)> read_check;
  std::string type_name() const;
};

// A row bound to a field of T.
template <class T>
struct Key : KeyMeta {
  std::function<Value(const T&)> get;
  std::function<void(T&, const Value&)> set;  // given only values that passed validation
};

// A rule over several keys. A problem is reported at keys[0], with the line
// of the first of keys the file sets: "agent.toml:12: mqtt.key_file: ...".
template <class T>
struct Rule {
  std::vector<std::string_view> keys;
  std::string_view description;  // for the reference (Markdown)
  // The problems of this rule in a config that passed every key check; empty: fine.
  std::function<std::vector<std::string>(const T&)> check;
};

// The keys and rules of one library (T: its Options) or of the whole agent.
template <class T>
struct Keys {
  std::vector<Key<T>> keys;
  std::vector<Rule<T>> rules;
  Keys& add(Key<T> k) {
    keys.push_back(std::move(k));
    return *this;
  }
  Keys& rule(std::vector<std::string_view> names, std::string_view description,
             std::function<std::vector<std::string>(const T&)> check) {
    rules.push_back({std::move(names), description, std::move(check)});
    return *this;
  }
  // Appends another library's keys, reached through `part` (a callable
  // Part& (T&)), e.g. the agent's settings taking the store's keys.
  template <class Part, class Proj>
  Keys& include(const Keys<Part>& other, Proj part) {
    for (const auto& k : other.keys) {
      Key<T> lifted;
      static_cast<KeyMeta&>(lifted) = k;
      lifted.get = [part, get = k.get](const T& t) { return get(part(const_cast<T&>(t))); };
      lifted.set = [part, set = k.set](T& t, const Value& v) { set(part(t), v); };
      keys.push_back(std::move(lifted));
    }
    for (const auto& r : other.rules) {
      rules.push_back({r.keys, r.description,
                       [part, check = r.check](const T& t) { return check(part(const_cast<T&>(t))); }});
    }
    return *this;
  }
};

// A rule's answer: one problem when bad, none otherwise.
inline std::vector<std::string> problem_if(bool bad, std::string what) {
  return bad ? std::vector<std::string>{std::move(what)} : std::vector<std::string>{};
}

// Binds a row to a field: EPORT_OPTION(store::OutboxOptions, max_bytes).
#define EPORT_OPTION(Options, path) [](Options& o) -> auto& { return o.path; }

namespace detail {

template <class T, class F>
using FieldOf = std::remove_reference_t<decltype(std::declval<F>()(std::declval<T&>()))>;

template <class D>
struct is_duration : std::false_type {};
template <class R, class P>
struct is_duration<std::chrono::duration<R, P>> : std::true_type {};

// A row's range must fit its field, or set() would wrap: a mistake in a
// table, found by the first test that builds it.
template <class N>
void require_fits(std::string_view key, std::int64_t min, std::int64_t max) {
  bool fits = min <= max && (std::is_signed_v<N> ? min >= static_cast<std::int64_t>(std::numeric_limits<N>::min())
                                                 : min >= 0);
  if constexpr (sizeof(N) < 8 || std::is_signed_v<N>) {
    fits = fits && max <= static_cast<std::int64_t>(std::numeric_limits<N>::max());
  }
  if (!fits) throw std::logic_error("config key " + std::string(key) + ": range does not fit its field");
}

}  // namespace detail

template <class T, class F>
Key<T> boolean(std::string_view key, std::string_view desc, F field) {
  static_assert(std::is_same_v<detail::FieldOf<T, F>, bool>);
  Key<T> k;
  k.key = key;
  k.type = KeyType::kBoolean;
  k.description = desc;
  T probe{};
  k.default_value = field(probe);
  k.get = [field](const T& t) -> Value { return field(const_cast<T&>(t)); };
  k.set = [field](T& t, const Value& v) { field(t) = std::get<bool>(v); };
  return k;
}

// An integer field of any width; the range must fit it.
template <class T, class F>
Key<T> integer(std::string_view key, std::int64_t min, std::int64_t max, std::string_view desc, F field) {
  using N = detail::FieldOf<T, F>;
  static_assert(std::is_integral_v<N> && !std::is_same_v<N, bool>);
  detail::require_fits<N>(key, min, max);
  Key<T> k;
  k.key = key;
  k.type = KeyType::kInteger;
  k.description = desc;
  k.min = min;
  k.max = max;
  T probe{};
  k.default_value = static_cast<std::int64_t>(field(probe));
  k.get = [field](const T& t) -> Value { return static_cast<std::int64_t>(field(const_cast<T&>(t))); };
  k.set = [field](T& t, const Value& v) { field(t) = static_cast<N>(std::get<std::int64_t>(v)); };
  return k;
}

template <class T>
Key<T> allowed(Key<T> k, std::vector<std::int64_t> values, std::string_view name) {
  k.allowed = std::move(values);
  k.allowed_name = name;
  return k;
}

// A duration: the key name says its unit (_ms or _s); the field is a
// std::chrono duration (converted exactly, so it must be at least as fine
// as the key's unit) or an integer count in the key's unit.
template <class T, class F>
Key<T> duration(std::string_view key, std::int64_t min, std::int64_t max, std::string_view desc, F field) {
  using D = detail::FieldOf<T, F>;
  const bool ms = key.size() > 3 && key.substr(key.size() - 3) == "_ms";
  if (!ms && !(key.size() > 2 && key.substr(key.size() - 2) == "_s")) {
    throw std::logic_error("config key " + std::string(key) + ": a duration's name ends in _ms or _s");
  }
  Key<T> k;
  k.key = key;
  k.type = KeyType::kDuration;
  k.description = desc;
  k.min = min;
  k.max = max;
  k.unit = ms ? "ms" : "s";
  if constexpr (detail::is_duration<D>::value) {
    static_assert(std::ratio_less_equal_v<typename D::period, std::ratio<1>>, "field coarser than a second");
    if (ms && std::ratio_greater_v<typename D::period, std::milli>) {
      throw std::logic_error("config key " + std::string(key) + ": field coarser than the key's unit");
    }
    auto to_count = [ms](D d) -> std::int64_t {
      return ms ? std::chrono::duration_cast<std::chrono::milliseconds>(d).count()
                : std::chrono::duration_cast<std::chrono::seconds>(d).count();
    };
    T probe{};
    k.default_value = to_count(field(probe));
    k.get = [field, to_count](const T& t) -> Value { return to_count(field(const_cast<T&>(t))); };
    k.set = [field, ms](T& t, const Value& v) {
      auto n = std::get<std::int64_t>(v);
      field(t) = ms ? std::chrono::duration_cast<D>(std::chrono::milliseconds(n))
                    : std::chrono::duration_cast<D>(std::chrono::seconds(n));
    };
  } else {
    static_assert(std::is_integral_v<D> && !std::is_same_v<D, bool>, "a duration field or an integer count");
    detail::require_fits<D>(key, min, max);
    T probe{};
    k.default_value = static_cast<std::int64_t>(field(probe));
    k.get = [field](const T& t) -> Value { return static_cast<std::int64_t>(field(const_cast<T&>(t))); };
    k.set = [field](T& t, const Value& v) { field(t) = static_cast<D>(std::get<std::int64_t>(v)); };
  }
  return k;
}

// An enum key: its names, in the enum's order.
template <class T, class F, class E = detail::FieldOf<T, F>>
Key<T> enumeration(std::string_view key, std::vector<std::pair<std::string_view, E>> names, std::string_view desc,
                   F field) {
  Key<T> k;
  k.key = key;
  k.type = KeyType::kEnum;
  k.description = desc;
  T probe{};
  for (const auto& [name, value] : names) {
    k.choices.push_back(name);
    if (value == field(probe)) k.default_value = std::string(name);
  }
  if (!std::holds_alternative<std::string>(k.default_value)) {
    throw std::logic_error("config key " + std::string(key) + ": the default has no name");
  }
  k.get = [field, names](const T& t) -> Value {
    for (const auto& [name, value] : names)
      if (value == field(const_cast<T&>(t))) return std::string(name);
    return std::string();
  };
  k.set = [field, names](T& t, const Value& v) {
    for (const auto& [name, value] : names)
      if (name == std::get<std::string>(v)) field(t) = value;
  };
  return k;
}

template <class T, class F>
Key<T> string(std::string_view key, std::string_view desc, F field, std::string_view pattern = {},
              FileKind file = FileKind::kNone) {
  static_assert(std::is_same_v<detail::FieldOf<T, F>, std::string>);
  Key<T> k;
  k.key = key;
  k.type = KeyType::kString;
  k.description = desc;
  k.pattern_name = pattern;
  k.file = file;
  T probe{};
  k.default_value = field(probe);
  k.get = [field](const T& t) -> Value { return field(const_cast<T&>(t)); };
  k.set = [field](T& t, const Value& v) { field(t) = std::get<std::string>(v); };
  return k;
}

template <class T, class F>
Key<T> list(std::string_view key, std::string_view desc, F field, std::string_view pattern = {},
            bool skip_empty_items = false) {
  static_assert(std::is_same_v<detail::FieldOf<T, F>, std::vector<std::string>>);
  Key<T> k;
  k.key = key;
  k.type = KeyType::kList;
  k.description = desc;
  k.pattern_name = pattern;
  k.skip_empty_items = skip_empty_items;
  T probe{};
  k.default_value = field(probe);
  k.get = [field](const T& t) -> Value { return field(const_cast<T&>(t)); };
  k.set = [field](T& t, const Value& v) { field(t) = std::get<std::vector<std::string>>(v); };
  return k;
}

template <class T>
Key<T> required(Key<T> k) {
  k.required = true;
  return k;
}

}  // namespace eport::config
