// libFuzzer target for the agent's config: arbitrary bytes into
// app::load_config_string() (the engine over every library's keys) must
// never crash, leak or hit UB; a config that loads must be accepted by what
// --config-reference and the birth message run on it (effective_json,
// config_hash), its per-unit intervals must survive a round trip, and a
// refusal must say why. Run long: see docs/testing.md.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "eport/units/config_keys.h"
#include "settings.h"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = eport::app::load_config_string(in, "fuzz.toml");
  if (!r.ok()) {
    check(!r.error().empty());
    return 0;
  }
  const auto& c = *r;
  const std::string json = eport::app::effective_json(c);
  check(json.size() >= 2 && json.front() == '{' && json.back() == '}');
  const std::string hash = eport::app::config_hash(c);
  check(!hash.empty());
  check(hash == eport::app::config_hash(c) && hash == c.uplink.config_hash);
  check(!c.uplink.server_uris.empty());
  // The parsed per-unit intervals, written out again as entries (the array
  // form: a unit id may hold a ',', which the older comma-separated form
  // cannot say), parse to the same map.
  std::vector<std::string> entries;
  for (const auto& [unit, i] : c.units.unit_intervals) {
    entries.push_back(unit + "=" + std::to_string(i.position_s) + "/" + std::to_string(i.sensor_s));
  }
  auto again = eport::units::parse_unit_intervals(entries);
  check(again.ok() && *again == c.units.unit_intervals);
  check(!c.gateway.id.empty() && !c.gateway.site.empty());
  return 0;
}
