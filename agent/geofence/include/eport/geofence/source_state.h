// What the tracker remembers about one source, and its byte encoding, so the
// agent can commit it in the same SQLite transaction as the readings that
// changed it: after a kill -9 the state matches the stored readings exactly,
// and the next fix neither repeats nor loses a transition.
//
// Encoding, version 1 (all integers little-endian, fixed width):
//   u8 version (1) | u64 last_seq | u8 has_last_fix
//   [u64 seq | u64 time_utc_ms | i32 lat_e7 | i32 lon_e7 | u8 has_hdop | u16 hdop_centi]  if has_last_fix
//   u16 zone count | per zone, ascending by id: u8 id length | id bytes | u8 phase (1 pending, 2 inside)
//                    | u64 since_time_ms | u64 since_seq
// Deterministic: one state has exactly one encoding (absent fields are 0).
// Size: at most 39 + 82 * count bytes; count is at most kMaxZones.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "eport/geofence/geometry.h"
#include "eport/model/result.h"

namespace eport::geofence {

inline constexpr std::uint8_t kStateVersion = 1;

enum class Phase : std::uint8_t {
  kPending = 1,  // inside by more than buffer_m, waiting for dwell_s; since = the first such fix
  kInside = 2,   // ENTRY reported; since = the ENTRY's time and first seq
};

struct ZoneMembership {
  std::string zone_id;
  Phase phase = Phase::kPending;
  std::uint64_t since_time_ms = 0;
  std::uint64_t since_seq = 0;
  bool operator==(const ZoneMembership&) const = default;
};

// The last fix used for transitions (valid, not stale): one end of the next
// crossing segment.
struct LastFix {
  std::uint64_t seq = 0;
  std::uint64_t time_utc_ms = 0;
  LatLonE7 at;
  std::optional<std::uint16_t> hdop_centi;
  bool operator==(const LastFix&) const = default;
};

struct SourceState {
  std::uint64_t last_seq = 0;  // highest seq processed (any fix, used or not)
  std::optional<LastFix> last_fix;
  std::vector<ZoneMembership> zones;  // pending or inside only, ascending by id
  bool operator==(const SourceState&) const = default;
};

std::vector<std::uint8_t> encode_state(const SourceState& state);
// Refused: another version, truncated or trailing bytes, a phase other than
// 1 or 2, ids not topic-safe or not strictly ascending, more than kMaxZones.
[[nodiscard]] Result<SourceState> decode_state(std::span<const std::uint8_t> bytes);

}  // namespace eport::geofence
