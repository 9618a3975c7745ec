// The committed form of MotionState (version 1, kMotionStateBytes bytes):
// see state_bytes.h for the encoding rules.
#include <string>

#include "eport/custody/motion.h"
#include "state_bytes.h"

namespace eport::custody {
namespace {
constexpr std::uint8_t kVersion = 1;

bool flag(bytes::Reader& in, bool& out) {
  std::uint8_t v = in.u8();
  out = v == 1;
  return v <= 1;
}
}  // namespace

std::vector<std::uint8_t> encode(const MotionState& s) {
  bytes::Writer w;
  w.u8(kVersion);
  w.u64(s.last_seq);
  w.u64(s.last_time_ms);
  w.u8(s.has_anchor ? 1 : 0);
  w.u8(s.moving ? 1 : 0);
  w.i32(s.anchor_lat_e7);
  w.i32(s.anchor_lon_e7);
  w.u8(s.pending ? 1 : 0);
  w.u64(s.pending_seq);
  w.u64(s.pending_time_ms);
  w.i32(s.pending_lat_e7);
  w.i32(s.pending_lon_e7);
  return w.take();
}

Result<MotionState> decode_motion_state(std::span<const std::uint8_t> data) {
  if (data.size() != kMotionStateBytes)
    return Error{"custody motion state: " + std::to_string(data.size()) + " bytes, expected " +
                 std::to_string(kMotionStateBytes)};
  bytes::Reader in(data);
  if (std::uint8_t v = in.u8(); v != kVersion)
    return Error{"custody motion state: unknown version " + std::to_string(v)};
  MotionState s;
  s.last_seq = in.u64();
  s.last_time_ms = in.u64();
  bool flags_ok = flag(in, s.has_anchor);
  flags_ok = flag(in, s.moving) && flags_ok;
  s.anchor_lat_e7 = in.i32();
  s.anchor_lon_e7 = in.i32();
  flags_ok = flag(in, s.pending) && flags_ok;
  s.pending_seq = in.u64();
  s.pending_time_ms = in.u64();
  s.pending_lat_e7 = in.i32();
  s.pending_lon_e7 = in.i32();
  if (!flags_ok) return Error{"custody motion state: a flag byte is neither 0 nor 1"};
  if (!in.done()) return Error{"custody motion state: malformed"};
  return s;
}

}  // namespace eport::custody
