// eport::custody reporting profiles: the built-in table and its order,
// the burst after an excursion, decisions only on a change, the text form
// round trip, and a table of malformed rule texts with their messages.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "eport/custody/profiles.h"

using namespace eport;
using namespace eport::custody;
using namespace std::chrono_literals;

namespace {
constexpr std::uint64_t kT0 = 1795000000000ull;

std::string pick(const CustodyInput& in) { return select_profile(default_profiles(), in).name; }
}  // namespace

TEST_CASE("profiles: the built-in table picks burst, terminal, sea_reefer, sea, land in that order", "[detectors]") {
  CustodyInput land;
  land.time_utc_ms = kT0;
  CHECK(pick(land) == "land");
  CustodyInput moving = land;
  moving.moving = true;
  CHECK(pick(moving) == "land");
  CustodyInput sea = land;
  sea.at_sea = true;
  CHECK(pick(sea) == "sea");
  CHECK(select_profile(default_profiles(), sea).position_interval == 24h);
  CustodyInput sea_reefer = sea;
  sea_reefer.reefer = true;
  CHECK(pick(sea_reefer) == "sea_reefer");
  CustodyInput terminal = sea_reefer;
  terminal.in_terminal_zone = true;
  CHECK(pick(terminal) == "terminal");
  CHECK(select_profile(default_profiles(), terminal).position_interval == 5min);
  CustodyInput burst = terminal;
  burst.excursion_active = true;
  CHECK(pick(burst) == "burst");
  CHECK(select_profile(default_profiles(), burst).sensor_interval == 10min);
  CHECK(select_profile(default_profiles(), land).position_interval == 15min);
}

TEST_CASE("profiles: burst holds for burst_duration after an excursion ended, then the state's own profile", "[detectors]") {
  CustodyInput in;
  in.excursion_ended_utc_ms = kT0;
  in.time_utc_ms = kT0 + 3599999;
  CHECK(pick(in) == "burst");
  in.time_utc_ms = kT0 + 3600000;
  CHECK(pick(in) == "land");
}

TEST_CASE("profiles: the selector reports a source's profile only when it changes", "[detectors]") {
  ProfileSelector sel;
  CustodyInput in;
  in.time_utc_ms = kT0;
  auto first = sel.decide("tcu-1", 1, in);
  REQUIRE(first);
  CHECK(first->profile.name == "land");
  CHECK(first->caused_by_seq == 1);
  CHECK(first->decided_utc_ms == kT0);
  for (std::uint64_t seq = 2; seq < 100; ++seq) CHECK_FALSE(sel.decide("tcu-1", seq, in));
  in.in_terminal_zone = true;
  auto to_terminal = sel.decide("tcu-1", 100, in);
  REQUIRE(to_terminal);
  CHECK(to_terminal->profile.name == "terminal");
  CHECK_FALSE(sel.decide("tcu-1", 100, in));  // the same seq again: a no-op
  CHECK(sel.counters().stale_seq == 1);
  // Another source has its own memory.
  auto other = sel.decide("tcu-2", 1, in);
  REQUIRE(other);
  CHECK(other->profile.name == "terminal");
  CHECK(sel.counters().decisions == 3);
}

TEST_CASE("profiles: the text form round-trips and the built-in text parses", "[detectors]") {
  auto t = parse_profiles(kDefaultProfilesText);
  REQUIRE(t.ok());
  CHECK(t->rules.size() == 5);
  CHECK(*t == default_profiles());
  auto again = parse_profiles(format_profiles(*t));
  REQUIRE(again.ok());
  CHECK(*again == *t);
  auto one_line = parse_profiles("hot when excursion position_s=60 sensor_s=60; rest always position_s=3600 sensor_s=900  # tail");
  REQUIRE(one_line.ok());
  REQUIRE(one_line->rules.size() == 2);
  CHECK(one_line->rules[0].when == std::vector<Condition>{Condition::kExcursion});
  CHECK(one_line->rules[1].profile.sensor_interval == 900s);
  CHECK_FALSE(one_line->rules[1].profile.position_deadband_m);
}

TEST_CASE("profiles: range limits of every key are accepted at the limit and refused past it", "[detectors]") {
  struct Case {
    const char* key;
    std::uint64_t lo, hi;
  };
  for (const Case& c : {Case{"position_s", 10, 604800}, Case{"sensor_s", 10, 604800},
                        Case{"temperature_deadband_centi_c", 0, 2000}, Case{"position_deadband_m", 0, 100000}}) {
    INFO(c.key);
    auto text = [&](std::uint64_t v) {
      std::string s = "p always position_s=600 sensor_s=600";
      std::string k = c.key;
      if (k == "position_s" || k == "sensor_s") {
        auto at = s.find(k + "=600");
        s.replace(at, k.size() + 4, k + "=" + std::to_string(v));
      } else {
        s += " " + k + "=" + std::to_string(v);
      }
      return s;
    };
    CHECK(parse_profiles(text(c.lo)).ok());
    CHECK(parse_profiles(text(c.hi)).ok());
    if (c.lo > 0) {
      auto below = parse_profiles(text(c.lo - 1));
      REQUIRE_FALSE(below.ok());
      CHECK_THAT(below.error(), Catch::Contains("is outside"));
    }
    auto above = parse_profiles(text(c.hi + 1));
    REQUIRE_FALSE(above.ok());
    CHECK_THAT(above.error(), Catch::Contains(std::string(c.key) + " = " + std::to_string(c.hi + 1) + " is outside"));
  }
}

TEST_CASE("profiles: malformed rule texts are refused with a message naming the rule and the fault", "[detectors]") {
  struct Case {
    const char* text;
    const char* message;
  };
  const std::string seventeen = [] {
    std::string s;
    for (int i = 0; i < 16; ++i) s += "p" + std::to_string(i) + " when sea position_s=60 sensor_s=60\n";
    return s + "last always position_s=60 sensor_s=60\n";
  }();
  const Case cases[] = {
      {"", "none given"},
      {"  # only a comment\n\n", "none given"},
      {"Land always position_s=900 sensor_s=900", "rule 1: name 'Land' is not 1..32 of [a-z0-9_]"},
      {"a_name_that_is_longer_than_32_bytes always position_s=900 sensor_s=900", "is not 1..32"},
      {"land position_s=900 sensor_s=900", "rule 1 (land): expected 'when <conditions>' or 'always'"},
      {"land", "expected 'when <conditions>' or 'always'"},
      {"hot when position_s=60 sensor_s=60", "'when' without conditions"},
      {"hot when", "'when' without conditions"},
      {"hot when flying position_s=60 sensor_s=60", "unknown condition 'flying'"},
      {"hot when sea+ position_s=60 sensor_s=60", "unknown condition ''"},
      {"hot when sea+sea position_s=60 sensor_s=60", "condition 'sea' twice"},
      {"hot when moving+stopped position_s=60 sensor_s=60", "'moving+stopped' can never apply"},
      {"land always position_s=900 sensor_s=900 colour=red", "unknown key 'colour'"},
      {"land always position_s=900 sensor_s=900 fast", "'fast' is not key=value"},
      {"land always position_s=900 position_s=60 sensor_s=900", "position_s given twice"},
      {"land always position_s=15m sensor_s=900", "position_s = '15m' is not a whole number"},
      {"land always position_s=-1 sensor_s=900", "position_s = '-1' is not a whole number"},
      {"land always position_s= sensor_s=900", "position_s = '' is not a whole number"},
      {"land always position_s=99999999999999999999999 sensor_s=900", "is not a whole number"},
      {"land always position_s=9 sensor_s=900", "position_s = 9 is outside 10..604800"},
      {"land always sensor_s=900", "rule 1 (land): position_s is missing"},
      {"land always position_s=900", "sensor_s is missing"},
      {"sea when sea position_s=60 sensor_s=60", "the last rule (sea) is not 'always'"},
      {"land always position_s=900 sensor_s=900\nsea when sea position_s=60 sensor_s=60",
       "rule 2 (sea): unreachable after the 'always' rule land"},
      {"sea when sea position_s=60 sensor_s=60\nsea always position_s=60 sensor_s=60", "rule 2 (sea): name used twice"},
      {seventeen.c_str(), "more than 16"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto t = parse_profiles(c.text);
    REQUIRE_FALSE(t.ok());
    CHECK_THAT(t.error(), Catch::Contains(c.message));
  }
}

TEST_CASE("profiles: after a restart with a changed table, a restored profile is kept or replaced by name", "[detectors]") {
  ProfileSelector before;
  CustodyInput in;
  in.time_utc_ms = kT0;
  REQUIRE(before.decide("tcu-1", 1, in));
  const auto saved = before.save_state("tcu-1");
  // Same table: the restored source keeps its profile, no SETTINGS again.
  ProfileSelector same;
  REQUIRE(same.restore_state("tcu-1", saved).ok());
  CHECK_FALSE(same.decide("tcu-1", 2, in));
  // A table whose catch-all is named differently: one new decision.
  auto t = parse_profiles("inland always position_s=1800 sensor_s=1800");
  REQUIRE(t.ok());
  ProfileSelector changed(*t);
  REQUIRE(changed.restore_state("tcu-1", saved).ok());
  auto d = changed.decide("tcu-1", 2, in);
  REQUIRE(d);
  CHECK(d->profile.name == "inland");
}

TEST_CASE("profiles: a hand-built empty table selects an unnamed profile and decides nothing", "[detectors]") {
  ProfileSelector sel(ProfileTable{});
  CHECK_FALSE(sel.decide("tcu-1", 1, CustodyInput{}));
  CHECK(select_profile(ProfileTable{}, CustodyInput{}).name.empty());
}
