// [model] ISO 6346 validation and the built-in priority classes.
#include <catch2/catch.hpp>

#include "eport/model/reading.h"

using namespace eport::model;

TEST_CASE("ISO 6346 container numbers are checked by their check digit", "[model]") {
  CHECK(is_valid_iso6346("CSQU3054383"));  // the standard's own example
  CHECK(is_valid_iso6346("MSKU9070323"));
  CHECK_FALSE(is_valid_iso6346("CSQU3054384"));  // wrong check digit
  CHECK_FALSE(is_valid_iso6346("CSQX3054383"));  // category must be U, J or Z
  CHECK_FALSE(is_valid_iso6346("csqu3054383"));  // lower case
  CHECK_FALSE(is_valid_iso6346("CSQU305438"));   // too short
  CHECK_FALSE(is_valid_iso6346(""));
}

TEST_CASE("seal tamper, seal opened and door open are alarms", "[model]") {
  Reading r;
  r.payload = SealEvent{"S1", SealState::kTampered};
  CHECK(default_priority(r) == Priority::kAlarm);
  r.payload = SealEvent{"S1", SealState::kOpened};
  CHECK(default_priority(r) == Priority::kAlarm);
  r.payload = SealEvent{"S1", SealState::kSealed};
  CHECK(default_priority(r) == Priority::kEvent);
  r.payload = DoorEvent{DoorState::kOpen};
  CHECK(default_priority(r) == Priority::kAlarm);
  r.payload = DoorEvent{DoorState::kClosed};
  CHECK(default_priority(r) == Priority::kEvent);
  r.payload = Position{};
  CHECK(default_priority(r) == Priority::kTelemetry);
  r.payload = SensorSample{};
  CHECK(default_priority(r) == Priority::kTelemetry);
}

TEST_CASE("priority names round-trip", "[model]") {
  for (int i = 0; i < kPriorityCount; ++i) {
    auto p = static_cast<Priority>(i);
    CHECK(priority_from_name(priority_name(p)) == p);
  }
  CHECK_FALSE(priority_from_name("urgent").has_value());
}
