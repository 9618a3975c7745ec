// Adaptive reporting profiles (issue 13): which reporting schedule a unit
// should run given its custody state (terminal zone, at sea, moving,
// excursion), as a pure decision over a priority-ordered rule list that is
// data, parsed from a small text form for config. ProfileSelector reports
// only changes per source, so the agent sends SETTINGS only when the
// profile changes. Event time only; not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "eport/model/result.h"

namespace eport::custody {

// What a rule can ask about a source. Names in the text form in brackets.
enum class Condition : std::uint8_t {
  kTerminal = 0,   // [terminal] in a terminal zone (from the geofence detector)
  kSea = 1,        // [sea] at sea (an input: the integrator decides, e.g. a sea zone or a vessel's pairing)
  kMoving = 2,     // [moving] MotionDetector says moving
  kStopped = 3,    // [stopped] not moving
  kExcursion = 4,  // [excursion] a reefer excursion is active
  kBurst = 5,      // [burst] an excursion is active or ended less than burst_duration ago
  kReefer = 6,     // [reefer] the source is a reefer (its samples carry a setpoint)
};
std::string_view condition_name(Condition c);

// The source's state at one reading, all in event time.
struct CustodyInput {
  bool in_terminal_zone = false;
  bool at_sea = false;
  bool moving = false;
  bool reefer = false;
  bool excursion_active = false;
  std::optional<std::uint64_t> excursion_ended_utc_ms;  // ExcursionDetector::last_ended_utc_ms
  std::uint64_t time_utc_ms = 0;                        // the reading's time
};

// A schedule and report-by-exception deadbands a unit can apply: between
// its scheduled reports, report early when the temperature moved by at least
// the temperature deadband or the position by at least the position
// deadband since the last report. Absent deadband: none.
struct Profile {
  std::string name;  // [a-z0-9_], 1..32 bytes
  std::chrono::seconds position_interval{900};  // [position_s] 10..604800
  std::chrono::seconds sensor_interval{900};    // [sensor_s] 10..604800
  std::optional<std::uint16_t> temperature_deadband_centi_c;  // [temperature_deadband_centi_c] 0..2000
  std::optional<std::uint32_t> position_deadband_m;           // [position_deadband_m] 0..100000
  bool operator==(const Profile&) const = default;
};

// A rule applies when all its conditions hold; `always` rules have none.
struct ProfileRule {
  Profile profile;
  std::vector<Condition> when;
  bool operator==(const ProfileRule&) const = default;
};

inline constexpr std::size_t kMaxProfileRules = 16;

// The first rule that applies wins; the last rule is an `always` rule, so
// exactly one profile applies to every input.
struct ProfileTable {
  std::vector<ProfileRule> rules;
  // [custody.profile_burst_duration_s] 60..86400: how long `burst` holds
  // after an excursion ended.
  std::chrono::seconds burst_duration{3600};
  bool operator==(const ProfileTable&) const = default;
};

// The built-in table (carriers' schedules): burst 10 min for an hour after
// an excursion, terminal 5 min, sea_reefer 6 h / sensors 1 h, sea 24 h,
// land 15 min. Its text form is kDefaultProfilesText.
extern const std::string_view kDefaultProfilesText;
ProfileTable default_profiles();

// Parses the text form: one rule per line (or separated by ';'), '#' starts
// a comment, tokens separated by blanks:
//   <name> when <condition>[+<condition>...] <key>=<value>...
//   <name> always <key>=<value>...
// keys position_s and sensor_s required, the deadbands optional. The error
// names the rule (its number and name) and what is wrong. burst_duration
// keeps its default (set it from its own config key).
Result<ProfileTable> parse_profiles(std::string_view text);
// The text form of a table; parse_profiles(format_profiles(t)) == t.
std::string format_profiles(const ProfileTable& t);

// The pure decision: the profile of the first rule that applies (for a
// hand-built table where none does: its last rule's; empty: an unnamed
// default Profile).
const Profile& select_profile(const ProfileTable& t, const CustodyInput& in);

// A change of profile for one source: push it with SETTINGS.
struct ProfileDecision {
  std::string source_id;
  Profile profile;
  std::uint64_t decided_utc_ms = 0;  // the time of the reading that changed it
  std::uint64_t caused_by_seq = 0;
  bool operator==(const ProfileDecision&) const = default;
};

struct ProfileCounters {
  std::uint64_t decisions = 0;  // changes reported
  std::uint64_t unchanged = 0;  // inputs that kept the profile
  std::uint64_t stale_seq = 0;
  std::uint64_t restore_errors = 0;
};

// Per-source state: the profile last decided (empty: none yet) and the last
// seq evaluated. Encoding version 1: 1 + 8 + 1 + name bytes, at most 42.
struct ProfileState {
  std::uint64_t last_seq = 0;
  std::string current;
  bool operator==(const ProfileState&) const = default;
};
inline constexpr std::size_t kMaxProfileStateBytes = 1 + 8 + 1 + 32;
std::vector<std::uint8_t> encode(const ProfileState& s);
Result<ProfileState> decode_profile_state(std::span<const std::uint8_t> bytes);

class ProfileSelector {
 public:
  // `table` as given by parse_profiles() or default_profiles().
  explicit ProfileSelector(ProfileTable table = default_profiles());

  // Evaluates the source's state at reading `seq`; returns a decision only
  // when the selected profile differs from the last one decided for the
  // source (the first evaluation of a source always decides). A seq at or
  // below the last evaluated is a no-op.
  std::optional<ProfileDecision> decide(std::string_view source_id, std::uint64_t seq, const CustodyInput& in);

  std::vector<std::uint8_t> save_state(std::string_view source_id) const;
  Status restore_state(std::string_view source_id, std::span<const std::uint8_t> bytes);

  const ProfileTable& table() const { return table_; }
  const ProfileCounters& counters() const { return counters_; }

 private:
  ProfileTable table_;
  std::map<std::string, ProfileState, std::less<>> states_;
  ProfileCounters counters_;
};

}  // namespace eport::custody
