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
  // The largest action's bound here; the others' after the action is known.
  if (payload.size() > kMaxZonesCommandBytes) {
    *why = "command too large: " + std::to_string(payload.size()) + " bytes > " +
           std::to_string(kMaxZonesCommandBytes);
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
  // The Verifier accepts an absent table or string (VerifyTable(nullptr) is
  // true), so every one is checked here before it is read.
  if (c->command_id() == nullptr) return Error{"command without command_id"};
  if (c->gateway_id() == nullptr) return Error{"command without gateway_id"};
  Command out;
  out.command_id = c->command_id()->str();
  out.issued_utc_ms = c->issued_utc_ms();
  if (out.command_id.empty() || out.command_id.size() > kMaxCommandIdBytes) {
    return Error{"command_id must be 1-64 bytes"};
  }
  if (c->gateway_id()->size() > kMaxIdBytes) {
    return Error{"command gateway_id of " + std::to_string(c->gateway_id()->size()) + " bytes > " +
                 std::to_string(kMaxIdBytes)};
  }
  out.gateway_id = c->gateway_id()->str();
  if (out.gateway_id != gateway_id) {
    return Error{"command addressed to gateway \"" + out.gateway_id + "\", this is \"" + std::string(gateway_id) +
                 "\""};
  }
  if (c->action_type() != fc::Action::ReplaceZones && payload.size() > kMaxCommandBytes) {
    return Error{"command too large: " + std::to_string(payload.size()) + " bytes > " +
                 std::to_string(kMaxCommandBytes)};
  }
  // A string that must be at most `max` bytes (absent reads as "").
  auto bounded = [](const flatbuffers::String* s, std::size_t max, std::string_view what) -> Result<std::string> {
    if (s != nullptr && s->size() > max) {
      return Error{std::string(what) + " of " + std::to_string(s->size()) + " bytes > " + std::to_string(max)};
    }
    return str(s);
  };
  switch (c->action_type()) {
    case fc::Action::ExpectSeal: {
      const auto* a = c->action_as_ExpectSeal();
      if (a == nullptr) return Error{"ExpectSeal command without its ExpectSeal table"};
      ExpectSeal e;
      auto container = bounded(a->container_id(), kMaxContainerIdBytes, "ExpectSeal: container_id");
      if (!container) return Error{container.error()};
      e.container_id = std::move(*container);
      if (e.container_id.empty()) return Error{"ExpectSeal without container_id"};
      auto seal = bounded(a->seal_id(), kMaxSealIdBytes, "ExpectSeal: seal_id");
      if (!seal) return Error{seal.error()};
      e.seal_id = std::move(*seal);
      if (a->seal_class() > 3) {
        return Error{"ExpectSeal: seal_class " + std::to_string(a->seal_class()) +
                     " is not an ISO 17712 class (0 unknown, 1 indicative, 2 security, 3 high security)"};
      }
      e.seal_class = a->seal_class();
      if (const auto* zones = a->allowed_zones()) {
        if (zones->size() > kMaxAllowedZones) {
          return Error{"ExpectSeal: " + std::to_string(zones->size()) + " allowed_zones > " +
                       std::to_string(kMaxAllowedZones)};
        }
        for (const auto* z : *zones) {
          auto zone = bounded(z, kMaxZoneIdBytes, "ExpectSeal: an allowed zone id");
          if (!zone) return Error{zone.error()};
          if (zone->empty()) return Error{"ExpectSeal: an empty allowed zone id"};
          e.allowed_zones.push_back(std::move(*zone));
        }
      }
      out.action = std::move(e);
      break;
    }
    case fc::Action::PairUnit: {
      const auto* a = c->action_as_PairUnit();
      if (a == nullptr) return Error{"PairUnit command without its PairUnit table"};
      auto unit = bounded(a->unit_id(), kMaxIdBytes, "PairUnit: unit_id");
      if (!unit) return Error{unit.error()};
      if (unit->empty()) return Error{"PairUnit without unit_id"};
      auto container = bounded(a->container_id(), kMaxContainerIdBytes, "PairUnit: container_id");
      if (!container) return Error{container.error()};
      out.action = PairUnit{std::move(*unit), std::move(*container)};
      break;
    }
    case fc::Action::ReplaceZones: {
      const auto* a = c->action_as_ReplaceZones();
      if (a == nullptr) return Error{"ReplaceZones command without its ReplaceZones table"};
      auto geojson = bounded(a->geojson(), kMaxZonesGeojsonBytes, "ReplaceZones: geojson");
      if (!geojson) return Error{geojson.error()};
      auto sha = bounded(a->sha256(), 64, "ReplaceZones: sha256");
      if (!sha) return Error{sha.error()};
      if (!geojson->empty() && sha->size() != 64) {
        return Error{"ReplaceZones: sha256 must be the 64 hex digits of the geojson's SHA-256"};
      }
      out.action = ReplaceZones{std::move(*geojson), std::move(*sha)};
      break;
    }
    case fc::Action::SetIntervals: {
      const auto* a = c->action_as_SetIntervals();
      if (a == nullptr) return Error{"SetIntervals command without its SetIntervals table"};
      // unit_id absent or empty: every connected unit (schema/command.fbs).
      if (a->unit_id() != nullptr && a->unit_id()->size() > kMaxIdBytes) {
        return Error{"SetIntervals: unit_id of " + std::to_string(a->unit_id()->size()) + " bytes > " +
                     std::to_string(kMaxIdBytes)};
      }
      SetIntervals s{str(a->unit_id()), a->position_interval_s(), a->sensor_interval_s()};
      if (s.position_interval_s == 0 && s.sensor_interval_s == 0) return Error{"SetIntervals changes nothing"};
      if (s.position_interval_s > 86400 || s.sensor_interval_s > 86400) {
        return Error{"SetIntervals: intervals must be at most 86400 s"};
      }
      out.action = s;
      break;
    }
    case fc::Action::RequestPosition: {
      const auto* a = c->action_as_RequestPosition();
      if (a == nullptr) return Error{"RequestPosition command without its RequestPosition table"};
      // source_id absent or empty: the gateway itself (schema/command.fbs).
      if (a->source_id() != nullptr && a->source_id()->size() > kMaxIdBytes) {
        return Error{"RequestPosition: source_id of " + std::to_string(a->source_id()->size()) + " bytes > " +
                     std::to_string(kMaxIdBytes)};
      }
      out.action = RequestPosition{str(a->source_id())};
      break;
    }
    case fc::Action::Flush:
      // Empty tables: nothing is read from them, but a type without its table
      // is malformed all the same, refused like the others.
      if (c->action_as_Flush() == nullptr) return Error{"Flush command without its Flush table"};
      out.action = Flush{};
      break;
    case fc::Action::GetConfig:
      if (c->action_as_GetConfig() == nullptr) return Error{"GetConfig command without its GetConfig table"};
      out.action = GetConfig{};
      break;
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
  return id.size() <= kMaxCommandIdBytes ? id : "";
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
          action =
              fc::CreateSetIntervals(b, b.CreateString(a.unit_id), a.position_interval_s, a.sensor_interval_s).Union();
        } else if constexpr (std::is_same_v<A, RequestPosition>) {
          type = fc::Action::RequestPosition;
          action = fc::CreateRequestPosition(b, b.CreateString(a.source_id)).Union();
        } else if constexpr (std::is_same_v<A, ExpectSeal>) {
          type = fc::Action::ExpectSeal;
          std::vector<flatbuffers::Offset<flatbuffers::String>> zones;
          for (const auto& z : a.allowed_zones) zones.push_back(b.CreateString(z));
          action = fc::CreateExpectSeal(b, b.CreateString(a.container_id), b.CreateString(a.seal_id), a.seal_class,
                                        b.CreateVector(zones))
                       .Union();
        } else if constexpr (std::is_same_v<A, PairUnit>) {
          type = fc::Action::PairUnit;
          action = fc::CreatePairUnit(b, b.CreateString(a.unit_id), b.CreateString(a.container_id)).Union();
        } else if constexpr (std::is_same_v<A, ReplaceZones>) {
          type = fc::Action::ReplaceZones;
          action = fc::CreateReplaceZones(b, b.CreateString(a.geojson), b.CreateString(a.sha256)).Union();
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
