// Profile selection: the first rule whose conditions all hold, and the
// per-source memory of the last decision that turns it into changes only.
#include <algorithm>
#include <string>

#include "eport/custody/profiles.h"
#include "state_bytes.h"

namespace eport::custody {
namespace {

constexpr std::uint8_t kStateVersion = 1;

bool holds(Condition c, const CustodyInput& in, std::chrono::seconds burst) {
  switch (c) {
    case Condition::kTerminal: return in.in_terminal_zone;
    case Condition::kSea: return in.at_sea;
    case Condition::kMoving: return in.moving;
    case Condition::kStopped: return !in.moving;
    case Condition::kExcursion: return in.excursion_active;
    case Condition::kBurst:
      if (in.excursion_active) return true;
      // An end stamped after the input's time (a replay that restored newer
      // state) still counts as recent.
      return in.excursion_ended_utc_ms &&
             (in.time_utc_ms < *in.excursion_ended_utc_ms ||
              in.time_utc_ms - *in.excursion_ended_utc_ms < static_cast<std::uint64_t>(burst.count()) * 1000);
    case Condition::kReefer: return in.reefer;
  }
  return false;
}

}  // namespace

const Profile& select_profile(const ProfileTable& t, const CustodyInput& in) {
  for (const auto& rule : t.rules) {
    if (std::all_of(rule.when.begin(), rule.when.end(),
                    [&](Condition c) { return holds(c, in, t.burst_duration); }))
      return rule.profile;
  }
  // parse_profiles guarantees a final `always` rule; a table built by hand
  // without one gets its last rule, or an unnamed profile when empty.
  static const Profile kNone{};
  return t.rules.empty() ? kNone : t.rules.back().profile;
}

std::vector<std::uint8_t> encode(const ProfileState& s) {
  bytes::Writer w;
  w.u8(kStateVersion);
  w.u64(s.last_seq);
  w.str(s.current.substr(0, 32));
  return w.take();
}

Result<ProfileState> decode_profile_state(std::span<const std::uint8_t> data) {
  if (data.size() > kMaxProfileStateBytes)
    return Error{"custody profile state: " + std::to_string(data.size()) + " bytes, at most " +
                 std::to_string(kMaxProfileStateBytes)};
  bytes::Reader in(data);
  if (std::uint8_t v = in.u8(); v != kStateVersion) {
    if (in.failed()) return Error{"custody profile state: empty"};
    return Error{"custody profile state: unknown version " + std::to_string(v)};
  }
  ProfileState s;
  s.last_seq = in.u64();
  s.current = in.str();
  if (!in.done()) return Error{"custody profile state: malformed"};
  return s;
}

ProfileSelector::ProfileSelector(ProfileTable table) : table_(std::move(table)) {}

std::optional<ProfileDecision> ProfileSelector::decide(std::string_view source_id, std::uint64_t seq,
                                                       const CustodyInput& in) {
  auto it = states_.find(source_id);
  if (it == states_.end()) it = states_.emplace(std::string(source_id), ProfileState{}).first;
  ProfileState& s = it->second;
  if (seq <= s.last_seq) {
    ++counters_.stale_seq;
    return std::nullopt;
  }
  s.last_seq = seq;
  const Profile& p = select_profile(table_, in);
  if (p.name == s.current) {
    ++counters_.unchanged;
    return std::nullopt;
  }
  s.current = p.name;
  ++counters_.decisions;
  return ProfileDecision{std::string(source_id), p, in.time_utc_ms, seq};
}

std::vector<std::uint8_t> ProfileSelector::save_state(std::string_view source_id) const {
  auto it = states_.find(source_id);
  return encode(it == states_.end() ? ProfileState{} : it->second);
}

Status ProfileSelector::restore_state(std::string_view source_id, std::span<const std::uint8_t> bytes) {
  auto s = decode_profile_state(bytes);
  if (!s) {
    ++counters_.restore_errors;
    return Error{s.error() + " (source " + std::string(source_id) + ")"};
  }
  auto it = states_.find(source_id);
  if (it == states_.end()) it = states_.emplace(std::string(source_id), ProfileState{}).first;
  it->second = std::move(*s);
  return ok_status();
}

}  // namespace eport::custody
