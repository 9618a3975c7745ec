// Adaptive reporting inside the custody event engine (issue 13): after each
// unit reading the engine processed, the unit's custody state (in a terminal
// or sea zone, moving, reefer, excursion) selects a reporting profile
// (eport::custody's ProfileSelector); a change is held until the store's
// transaction commits and then handed to a sink (the agent: the unit server,
// which sends SETTINGS). The selected profile is part of the unit's saved
// state, so a kill -9 neither loses nor repeats a change. Owned by the
// Engine: same thread, same lock (the outbox's); not thread-safe itself.
// docs/custody-events.md, "Adaptive reporting".
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "eport/custody/excursion.h"
#include "eport/custody/motion.h"
#include "eport/custody/profiles.h"
#include "eport/geofence/tracker.h"
#include "eport/model/reading.h"

namespace eport::events {

// The built-in profile table (custody::kDefaultProfilesText) on one line,
// rules separated by "; ": the default of custody.profiles.
inline constexpr std::string_view kDefaultProfilesLine =
    "burst when burst position_s=600 sensor_s=600 temperature_deadband_centi_c=50; "
    "terminal when terminal position_s=300 sensor_s=300 position_deadband_m=25; "
    "sea_reefer when sea+reefer position_s=21600 sensor_s=3600 temperature_deadband_centi_c=50; "
    "sea when sea position_s=86400 sensor_s=86400 position_deadband_m=5000; "
    "land always position_s=900 sensor_s=900 position_deadband_m=200";

// [custody] keys of adaptive reporting (config_keys.cpp); every default here.
struct ReportingOptions {
  bool adaptive = false;  // custody.adaptive_reporting: select and push profiles
  // custody.profiles: the table in custody::parse_profiles' text form.
  std::string profiles{kDefaultProfilesLine};
  std::chrono::seconds burst_duration{3600};  // custody.profile_burst_duration_s, 60..86400
  // custody.terminal_zones / custody.sea_zones: zone id patterns ('*'
  // matches any run of characters). A unit inside (ENTRY reported, not
  // pending) a zone matching a sea pattern is at sea; else inside one
  // matching a terminal pattern, in a terminal zone. Sea patterns win.
  std::vector<std::string> terminal_zones{"*"};
  std::vector<std::string> sea_zones{"*anchorage*"};
};

// Whether zone id `id` matches `pattern` ('*': any run of characters, also
// empty; every other character as itself).
bool zone_matches(std::string_view pattern, std::string_view id);

// Called after each commit that changed a unit's profile, once per change,
// in the order of the decisions: on the ingest thread, under the outbox's
// lock, so it must not block (queue and return).
using ProfileSink = std::function<void(const std::string& unit, const custody::Profile&)>;

class Reporting {
 public:
  // options.profiles must parse (the config checks it); if it does not, the
  // built-in table is used and the problem logged.
  explicit Reporting(const ReportingOptions& options);

  bool enabled() const { return options_.adaptive; }
  void set_sink(ProfileSink sink) { sink_ = std::move(sink); }

  // After the engine's detectors processed reading r of a unit on a
  // container: selects the unit's profile; a change is held as pending.
  void observe(const model::Reading& r, const geofence::Tracker& zones, const custody::MotionDetector& motion,
               const custody::ExcursionDetector& excursions);
  // The transaction ended: committed, the pending changes go to the sink;
  // rolled back, they are forgotten (the engine restores the units' state).
  // Returns how many went to the sink.
  std::size_t finished(bool committed);

  // A unit's reporting state (empty with adaptive reporting off: nothing to
  // keep). Version 1: u8 version (1) | u8 flags (bit 0: reefer) | the
  // ProfileSelector's state (10..42 bytes).
  std::vector<std::uint8_t> save(const std::string& unit) const;
  // Empty bytes: the unit starts afresh (its next reading decides). False:
  // malformed (the state in memory is then undefined for that unit).
  bool restore(const std::string& unit, std::span<const std::uint8_t> bytes);

  // The profile last decided for each unit that has one in the current
  // table (for the unit server at start: what to send after WELCOME).
  std::map<std::string, custody::Profile> current() const;

  const custody::ProfileTable& table() const { return selector_.table(); }

 private:
  ReportingOptions options_;
  custody::ProfileSelector selector_;
  std::set<std::string> units_;    // units with a reporting state
  std::set<std::string> reefers_;  // units whose samples carried a setpoint
  std::vector<custody::ProfileDecision> pending_;
  ProfileSink sink_;
};

}  // namespace eport::events
