// Commands from the cloud (schema/command.fbs) as plain values, and their
// verified decoding: FlatBuffers Verifier with limits, file identifier EPC1,
// the addressed gateway, a known action. The error names the problem.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "eport/model/result.h"

namespace eport::codec {

struct SetIntervals {
  std::string unit_id;  // "" = all units
  std::uint32_t position_interval_s = 0;
  std::uint32_t sensor_interval_s = 0;
};
struct RequestPosition {
  std::string source_id;  // "" = the gateway
};
struct Flush {};
struct GetConfig {};
// Custody commands (docs/custody-events.md): checked here for form; the
// custody engine checks them against its state.
struct ExpectSeal {
  std::string container_id;
  std::string seal_id;          // "" = no seal expected any more
  std::uint8_t seal_class = 0;  // model::SealClass, 0..3
  std::vector<std::string> allowed_zones;
};
struct PairUnit {
  std::string unit_id;
  std::string container_id;  // "" = unpair
};
struct ReplaceZones {
  std::string geojson;  // "" = back to custody.zones_file
  std::string sha256;   // lowercase hex of geojson's SHA-256
};
using Action = std::variant<SetIntervals, RequestPosition, Flush, GetConfig, ExpectSeal, PairUnit, ReplaceZones>;

struct Command {
  std::string command_id;  // 1..64 bytes
  std::string gateway_id;
  std::uint64_t issued_utc_ms = 0;
  Action action;
};

inline constexpr std::size_t kMaxCommandBytes = 4096;  // every action but ReplaceZones
inline constexpr std::size_t kMaxZonesCommandBytes = 256 * 1024 + 4096;  // ReplaceZones: its GeoJSON and the rest
inline constexpr std::size_t kMaxZonesGeojsonBytes = 256 * 1024;
inline constexpr std::size_t kMaxAllowedZones = 16;  // ExpectSeal.allowed_zones
inline constexpr std::size_t kMaxCommandIdBytes = 64;
inline constexpr std::size_t kMaxIdBytes = 32;  // gateway_id, unit_id, source_id (as gateway.id and unit ids)

// Everything in a command comes from outside: parse_command() checks every
// table and string it reads is present (the FlatBuffers Verifier accepts an
// absent one) and bounded before it is copied. Required: command_id (1..64
// bytes), gateway_id (this gateway), the table of the action named by
// action_type. Optional (absent = empty): SetIntervals.unit_id,
// RequestPosition.source_id, each at most 32 bytes. A command is at most
// kMaxCommandBytes, a ReplaceZones at most kMaxZonesCommandBytes.

// Verifies and decodes a command received by gateway `gateway_id`.
Result<Command> parse_command(std::span<const std::uint8_t> payload, std::string_view gateway_id);

// Builds a command payload (cloud side, tests).
std::vector<std::uint8_t> encode_command(const Command& command);

// The command id of a payload that failed parse_command, if one can be read
// safely (for the error reply); "" otherwise.
std::string command_id_of(std::span<const std::uint8_t> payload);


}  // namespace eport::codec
