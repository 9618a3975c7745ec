// libFuzzer target for the command parser (parse_command, command_id_of):
// arbitrary bytes on the cmd topic must never crash the agent, and a command
// that parses names this gateway, has a bounded id and round-trips through
// encode_command. Long runs: docs/testing.md.
#include <cstddef>
#include <cstdint>
#include <span>

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
  auto again = codec::parse_command(codec::encode_command(*c), kGateway);
  check(again.ok());
  check(again->command_id == c->command_id && again->issued_utc_ms == c->issued_utc_ms);
  check(again->action.index() == c->action.index());
  return 0;
}
