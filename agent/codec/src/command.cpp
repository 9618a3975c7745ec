// Verified decoding and encoding of cloud commands (schema/command.fbs).
#include "eport/codec/command.h"

#include <flatbuffers/flatbuffers.h>

#include <cstdio>

#include "eport/codec/codec.h"
#include "eport/schema/command_generated.h"

namespace eport::codec {
namespace fc = eport::command::v1;

namespace {
std::string str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

const fc::Command* verified_root(std::span<const std::uint8_t> payload, std::string* why) {
  if (payload.size() > kMaxCommandBytes) {
    *why = "command too large: " + std::to_string(payload.size()) + " bytes > " + std::to_string(kMaxCommandBytes);
    return nullptr;
  }
  if (payload.size() < 8 || !flatbuffers::BufferHasIdentifier(payload.data(), fc::CommandIdentifier())) {
    *why = "not an EPC1 command (missing file identifier)";
    return nullptr;
  }
  flatbuffers::Verifier v(payload.data(), payload.size(), 8, 64);
  if (!fc::VerifyCommandBuffer(v)) {
    *why = "command failed FlatBuffers verification";
    return nullptr;
  }
  return fc::GetCommand(payload.data());
}
}  // namespace

Result<Command> parse_command(std::span<const std::uint8_t> payload, std::string_view gateway_id) {
  std::string why;
  const auto* c = verified_root(payload, &why);
  if (c == nullptr) return Error{why};
  Command out;
  out.command_id = str(c->command_id());
  out.gateway_id = str(c->gateway_id());
  out.issued_utc_ms = c->issued_utc_ms();
  if (out.command_id.empty() || out.command_id.size() > 64) return Error{"command_id must be 1-64 bytes"};
  if (out.gateway_id != gateway_id) {
    return Error{"command addressed to gateway \"" + out.gateway_id + "\", this is \"" + std::string(gateway_id) + "\""};
  }
  switch (c->action_type()) {
    case fc::Action::SetIntervals: {
      const auto* a = c->action_as_SetIntervals();
      SetIntervals s{str(a->unit_id()), a->position_interval_s(), a->sensor_interval_s()};
      if (s.position_interval_s == 0 && s.sensor_interval_s == 0) return Error{"SetIntervals changes nothing"};
      if (s.position_interval_s > 86400 || s.sensor_interval_s > 86400) {
        return Error{"SetIntervals: intervals must be at most 86400 s"};
      }
      out.action = s;
      break;
    }
    case fc::Action::RequestPosition:
      out.action = RequestPosition{str(c->action_as_RequestPosition()->source_id())};
      break;
    case fc::Action::Flush: out.action = Flush{}; break;
    case fc::Action::GetConfig: out.action = GetConfig{}; break;
    default:
      return Error{"unknown or missing action " + std::to_string(static_cast<int>(c->action_type()))};
  }
  return out;
}

std::string command_id_of(std::span<const std::uint8_t> payload) {
  std::string why;
  const auto* c = verified_root(payload, &why);
  if (c == nullptr) return "";
  auto id = str(c->command_id());
  return id.size() <= 64 ? id : "";
}

std::vector<std::uint8_t> encode_command(const Command& command) {
  flatbuffers::FlatBufferBuilder b(256);
  fc::Action type = fc::Action::NONE;
  flatbuffers::Offset<void> action;
  std::visit(
      [&](const auto& a) {
        using A = std::decay_t<decltype(a)>;
        if constexpr (std::is_same_v<A, SetIntervals>) {
          type = fc::Action::SetIntervals;
          action = fc::CreateSetIntervals(b, b.CreateString(a.unit_id), a.position_interval_s, a.sensor_interval_s)
                       .Union();
        } else if constexpr (std::is_same_v<A, RequestPosition>) {
          type = fc::Action::RequestPosition;
          action = fc::CreateRequestPosition(b, b.CreateString(a.source_id)).Union();
        } else if constexpr (std::is_same_v<A, Flush>) {
          type = fc::Action::Flush;
          action = fc::CreateFlush(b).Union();
        } else {
          type = fc::Action::GetConfig;
          action = fc::CreateGetConfig(b).Union();
        }
      },
      command.action);
  auto id = b.CreateString(command.command_id);
  auto gw = b.CreateString(command.gateway_id);
  b.Finish(fc::CreateCommand(b, id, gw, command.issued_utc_ms, type, action), fc::CommandIdentifier());
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

}  // namespace eport::codec
