// libFuzzer target for the TOML config loader: arbitrary bytes into
// load_string() must never crash, leak or hit UB; a config that loads must be
// accepted by what --config-reference and the birth message run on it
// (effective_json, config_hash, broker_uris, parse_unit_intervals), and a
// refusal must say why. Run long: see docs/testing.md.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "eport/config/config.h"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = eport::config::load_string(in, "fuzz.toml");
  if (!r.ok()) {
    check(!r.error().empty());
    return 0;
  }
  const auto& c = *r;
  const std::string json = eport::config::effective_json(c);
  check(json.size() >= 2 && json.front() == '{' && json.back() == '}');
  const std::string hash = eport::config::config_hash(c);
  check(!hash.empty());
  check(hash == eport::config::config_hash(c));
  check(!eport::config::broker_uris(c).empty());
  // The parsed per-unit intervals, written out again, parse to the same list.
  std::string entries;
  for (const auto& u : c.bridge.unit_intervals) {
    entries += (entries.empty() ? "" : ",") + u.unit_id + "=" + std::to_string(u.position_s) + "/" +
               std::to_string(u.sensor_s);
  }
  auto again = eport::config::parse_unit_intervals(entries);
  check(again.ok() && again->size() == c.bridge.unit_intervals.size());
  check(!c.gateway.id.empty() && !c.gateway.site.empty());
  (void)c.priority.rules();
  return 0;
}
