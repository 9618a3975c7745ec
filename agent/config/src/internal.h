// Helpers shared by the key table (keys.cpp) and the engine (config.cpp);
// not part of eport::config's interface.
#pragma once

#include <chrono>
#include <functional>
#include <type_traits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "eport/config/config.h"

namespace eport::config::detail {

// "a, b ,c" -> {"a", "b", "c"}: split at commas, spaces around items trimmed,
// empty items kept ("a," -> {"a", ""}).
std::vector<std::string> split_commas(const std::string& v);
bool is_tls(std::string_view uri);
// The host of scheme://host:port ([v6] brackets removed), or "".
std::string uri_host(std::string_view uri);

// Binds a key to a field: a callable Field& (AgentConfig&).
template <class F>
using Ref = std::function<F&(AgentConfig&)>;
#define EPORT_FIELD(path) [](::eport::config::AgentConfig& c) -> auto& { return c.path; }

// Row builders: one default each, typed.
KeySpec boolean(std::string_view key, bool def, std::string_view desc, Ref<bool> ref);
KeySpec integer(std::string_view key, std::int64_t def, std::int64_t min, std::int64_t max, std::string_view desc,
                Ref<std::int64_t> ref);
KeySpec string(std::string_view key, std::string def, std::string_view desc, Ref<std::string> ref,
               std::string_view pattern = {});
KeySpec list(std::string_view key, std::vector<std::string> def, std::string_view desc,
             Ref<std::vector<std::string>> ref, std::string_view pattern = {}, bool skip_empty_items = false);

template <class R>
KeySpec duration(std::string_view key, std::int64_t def, std::int64_t min, std::int64_t max, std::string_view desc,
                 R ref) {
  using D = std::remove_reference_t<decltype(ref(std::declval<AgentConfig&>()))>;
  static_assert(std::is_same_v<D, std::chrono::milliseconds> || std::is_same_v<D, std::chrono::seconds>);
  KeySpec k;
  k.key = key;
  k.type = KeyType::kDuration;
  k.description = desc;
  k.default_value = def;
  k.min = min;
  k.max = max;
  k.unit = std::is_same_v<D, std::chrono::milliseconds> ? "ms" : "s";
  k.get = [ref](const AgentConfig& c) -> Value {
    return static_cast<std::int64_t>(ref(const_cast<AgentConfig&>(c)).count());
  };
  k.set = [ref](AgentConfig& c, const Value& v) { ref(c) = D(std::get<std::int64_t>(v)); };
  return k;
}

// An enum key: names in the enum's order; def is one of them.
template <class E, class R>
KeySpec enumeration(std::string_view key, E def, std::vector<std::pair<std::string_view, E>> names,
                    std::string_view desc, R ref) {
  KeySpec k;
  k.key = key;
  k.type = KeyType::kEnum;
  k.description = desc;
  for (const auto& [name, value] : names) {
    k.choices.push_back(name);
    if (value == def) k.default_value = std::string(name);
  }
  k.get = [ref, names](const AgentConfig& c) -> Value {
    for (const auto& [name, value] : names)
      if (value == ref(const_cast<AgentConfig&>(c))) return std::string(name);
    return std::string();
  };
  k.set = [ref, names](AgentConfig& c, const Value& v) {
    for (const auto& [name, value] : names)
      if (name == std::get<std::string>(v)) ref(c) = value;
  };
  return k;
}

}  // namespace eport::config::detail
