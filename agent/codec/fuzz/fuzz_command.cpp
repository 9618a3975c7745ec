// libFuzzer target for the command parser (parse_command, command_id_of):
// arbitrary bytes on the cmd topic must never crash the agent, and a command
// that parses names this gateway, has a bounded id and round-trips through
// encode_command. Long runs: docs/testing.md.
#include <cstddef>
#include <cstdint>
#include <span>

#include "eport/codec/codec.h"
#include "eport/codec/command.h"

namespace {
void check(bool ok) {
  if (!ok) __builtin_trap();
}
constexpr const char* kGateway = "gw-test-01";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace eport;
  std::span<const std::uint8_t> in(data, size);
  auto id = codec::command_id_of(in);
  check(id.size() <= codec::kMaxCommandIdBytes);
  auto c = codec::parse_command(in, kGateway);
  if (!c) return 0;
  check(c->gateway_id == kGateway);
  check(!c->command_id.empty() && c->command_id.size() <= codec::kMaxCommandIdBytes);
  check(c->command_id == id);
  if (const auto* s = std::get_if<codec::SetIntervals>(&c->action)) {
    check(s->unit_id.size() <= codec::kMaxIdBytes);
    check(s->position_interval_s <= 86400 && s->sensor_interval_s <= 86400);
    check(s->position_interval_s != 0 || s->sensor_interval_s != 0);
  }
  if (const auto* p = std::get_if<codec::RequestPosition>(&c->action)) check(p->source_id.size() <= codec::kMaxIdBytes);
  if (const auto* e = std::get_if<codec::ExpectSeal>(&c->action)) {
    check(!e->container_id.empty() && e->container_id.size() <= codec::kMaxContainerIdBytes);
    check(e->seal_id.size() <= codec::kMaxSealIdBytes && e->seal_class <= 3);
    check(e->allowed_zones.size() <= codec::kMaxAllowedZones);
    for (const auto& z : e->allowed_zones) check(!z.empty() && z.size() <= codec::kMaxZoneIdBytes);
  }
  if (const auto* p = std::get_if<codec::PairUnit>(&c->action)) {
    check(!p->unit_id.empty() && p->unit_id.size() <= codec::kMaxIdBytes);
    check(p->container_id.size() <= codec::kMaxContainerIdBytes);
  }
  if (const auto* z = std::get_if<codec::ReplaceZones>(&c->action)) {
    check(z->geojson.size() <= codec::kMaxZonesGeojsonBytes);
    check(z->geojson.empty() || z->sha256.size() == 64);
  }
  if (!std::holds_alternative<codec::ReplaceZones>(c->action)) check(in.size() <= codec::kMaxCommandBytes);
  auto again = codec::parse_command(codec::encode_command(*c), kGateway);
  check(again.ok());
  check(again->command_id == c->command_id && again->issued_utc_ms == c->issued_utc_ms);
  check(again->action.index() == c->action.index());
  return 0;
}
