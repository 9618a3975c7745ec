// The custody event engine's config key rows (docs/config.md, [custody];
// the rules themselves: docs/custody-events.md, docs/geofences.md), adaptive
// reporting's included.
#include "eport/events/config_keys.h"

#include "eport/custody/profiles.h"
#include "eport/geofence/zones_file.h"

namespace eport::events {

namespace {

config::Keys<EngineOptions> build() {
  using O = EngineOptions;
  config::Keys<O> k;
  k.add(config::boolean<O>("custody.enabled",
                           "Derive custody events (pairing, seal alarms, geofence entry and exit, motion start and "
                           "stop, reefer excursions; docs/custody-events.md) from the units' readings and send them "
                           "as readings of the source \"<gateway.id>:custody\" (schema 1.3); accept the custody "
                           "commands (ExpectSeal, PairUnit, ReplaceZones). Off by default until every consumer reads "
                           "schema 1.3.",
                           EPORT_OPTION(O, enabled)));
  {
    auto zones = config::string<O>("custody.zones_file",
                                   "GeoJSON file of the zones whose entry and exit are reported (docs/geofences.md; "
                                   "docs/zones/shanghai-terminals.geojson is a sample). Empty: no geofences. Zones put in force by "
                                   "a ReplaceZones command win over it until one with no GeoJSON.",
                                   EPORT_OPTION(O, zones_file), {}, config::FileKind::kChecked);
    zones.read_check = [](const std::string& path) {
      auto set = geofence::load_zones_file(path);
      return set ? std::string() : set.error();
    };
    k.add(std::move(zones));
  }
  k.add(config::integer<O>("custody.motion_start_speed_cm_s", 50, 5000,
                           "A fix at or above this speed counts towards MOTION_START.",
                           EPORT_OPTION(O, motion.start_speed_cm_s)));
  k.add(config::integer<O>("custody.motion_start_distance_m", 20, 10000,
                           "A fix farther than this from where the unit stopped counts towards MOTION_START, also "
                           "without a speed.",
                           EPORT_OPTION(O, motion.start_distance_m)));
  k.add(config::duration<O>("custody.motion_start_debounce_s", 0, 600,
                            "How long fixes must keep counting towards starting before MOTION_START.",
                            EPORT_OPTION(O, motion.start_debounce)));
  k.add(config::integer<O>("custody.motion_stop_speed_cm_s", 10, 5000,
                           "A fix below this speed (or without one) counts towards MOTION_STOP if it is also within "
                           "custody.motion_stop_radius_m of the first fix of the stop.",
                           EPORT_OPTION(O, motion.stop_speed_cm_s)));
  k.add(config::integer<O>("custody.motion_stop_radius_m", 10, 10000, "See custody.motion_stop_speed_cm_s.",
                           EPORT_OPTION(O, motion.stop_radius_m)));
  k.add(config::duration<O>("custody.motion_stop_debounce_s", 10, 3600,
                            "How long fixes must keep counting towards stopping before MOTION_STOP.",
                            EPORT_OPTION(O, motion.stop_debounce)));
  k.add(config::integer<O>("custody.motion_max_hdop_centi", 100, 5000,
                           "Fixes with a larger HDOP (x100), and fixes without a fix, are not used for motion.",
                           EPORT_OPTION(O, motion.max_hdop_centi)));
  k.add(config::integer<O>("custody.reefer_tolerance_centi_c", 10, 2000,
                           "Reefer band: the unit's setpoint +/- this (0.01 degC); a value on the edge is inside.",
                           EPORT_OPTION(O, excursion.tolerance_centi_c)));
  k.add(config::integer<O>("custody.reefer_hysteresis_centi_c", 0, 2000,
                           "An excursion ends only at a value at least this far back inside the band.",
                           EPORT_OPTION(O, excursion.hysteresis_centi_c)));
  k.add(config::duration<O>("custody.reefer_min_duration_s", 0, 86400,
                            "Out of band at least this long: the excursion starts (an alarm). Shorter spikes give "
                            "nothing.",
                            EPORT_OPTION(O, excursion.min_duration)));
  k.add(config::duration<O>("custody.reefer_max_gap_s", 60, 604800,
                            "Temperature samples further apart than this end the tracking (an active excursion ends, "
                            "flagged ended_by_gap).",
                            EPORT_OPTION(O, excursion.max_gap)));
  // Adaptive reporting (reporting.h, docs/custody-events.md "Adaptive reporting").
  k.add(config::boolean<O>("custody.adaptive_reporting",
                           "Select each unit's reporting profile (custody.profiles) from its custody state after "
                           "every reading and push a changed profile to the unit with SETTINGS. Needs "
                           "custody.enabled. A cloud SetIntervals command still wins over the profile.",
                           EPORT_OPTION(O, reporting.adaptive)));
  {
    auto profiles = config::string<O>(
        "custody.profiles",
        "The reporting profiles, first matching rule wins: rules separated by ';' or new lines, each "
        "`<name> when <condition>[+<condition>...] position_s=N sensor_s=N [temperature_deadband_centi_c=N] "
        "[position_deadband_m=N]` or `<name> always ...` (the last rule); conditions terminal, sea, moving, "
        "stopped, excursion, burst, reefer (docs/custody-events.md).",
        EPORT_OPTION(O, reporting.profiles));
    profiles.check = [](const config::Value& v) {
      auto t = custody::parse_profiles(std::get<std::string>(v));
      return t ? std::string() : t.error();
    };
    profiles.check_text = "a profile table that parses (at most 16 rules, the last one `always`)";
    k.add(std::move(profiles));
  }
  k.add(config::duration<O>("custody.profile_burst_duration_s", 60, 86400,
                            "The `burst` condition holds during a reefer excursion and this long after it ended.",
                            EPORT_OPTION(O, reporting.burst_duration)));
  k.add(config::list<O>("custody.terminal_zones",
                        "Zone ids (custody.zones_file) that are terminal zones for the `terminal` condition; '*' "
                        "matches any characters. A unit counts once its ENTRY is reported.",
                        EPORT_OPTION(O, reporting.terminal_zones), {}, true));
  k.add(config::list<O>("custody.sea_zones",
                        "Zone ids that mean \"at sea\" for the `sea` condition (anchorages, sea lanes); '*' matches "
                        "any characters. A zone matching both lists is a sea zone.",
                        EPORT_OPTION(O, reporting.sea_zones), {}, true));
  k.rule({"custody.adaptive_reporting", "custody.enabled"},
         "`custody.adaptive_reporting` needs `custody.enabled` (the engine selects the profiles).", [](const O& o) {
           return config::problem_if(o.reporting.adaptive && !o.enabled, "needs custody.enabled = true");
         });
  k.rule({"custody.motion_stop_speed_cm_s", "custody.motion_start_speed_cm_s"},
         "`custody.motion_stop_speed_cm_s` must be below `custody.motion_start_speed_cm_s`.", [](const O& o) {
           return config::problem_if(o.motion.stop_speed_cm_s >= o.motion.start_speed_cm_s,
                                     "must be below custody.motion_start_speed_cm_s");
         });
  k.rule({"custody.reefer_hysteresis_centi_c", "custody.reefer_tolerance_centi_c"},
         "`custody.reefer_hysteresis_centi_c` must not exceed `custody.reefer_tolerance_centi_c`.", [](const O& o) {
           return config::problem_if(o.excursion.hysteresis_centi_c > o.excursion.tolerance_centi_c,
                                     "must not exceed custody.reefer_tolerance_centi_c");
         });
  return k;
}

}  // namespace

const config::Keys<EngineOptions>& config_keys() {
  static const config::Keys<EngineOptions> keys = build();
  return keys;
}

}  // namespace eport::events
