// [uplink] EnvelopeSizeCap (eport/uplink/size_cap.h): the envelope size the
// publisher keeps to after a broker refused one as too large (PUBACK 0x95),
// as docs/operators.md (Message size) promises: half the refused size, never
// below what the broker acknowledged, risen by an acknowledged envelope of
// one reading above it, untouched by a refused envelope of one reading.
#include <catch2/catch.hpp>

#include <cstdint>

#include "eport/uplink/size_cap.h"

using eport::uplink::EnvelopeSizeCap;
using Refusal = EnvelopeSizeCap::Refusal;

TEST_CASE("size cap: no limit until a refusal; acknowledgements alone set none", "[uplink]") {
  EnvelopeSizeCap cap;
  CHECK_FALSE(cap.learned());
  CHECK(cap.limit() == SIZE_MAX);
  cap.acknowledged(70000);
  CHECK(cap.limit() == SIZE_MAX);
  CHECK(cap.largest_acknowledged() == 70000);
}

TEST_CASE("size cap: a refused envelope halves the limit, refusals only lower it", "[uplink]") {
  EnvelopeSizeCap cap;
  CHECK(cap.refused(14000, 500) == Refusal::kCapLowered);
  CHECK(cap.limit() == 7000);
  // A larger envelope refused later (it was in flight already) does not raise it.
  CHECK(cap.refused(16000, 500) == Refusal::kCapLowered);
  CHECK(cap.limit() == 7000);
  // A part at the limit refused again: half of it.
  CHECK(cap.refused(7000, 250) == Refusal::kCapLowered);
  CHECK(cap.limit() == 3500);
  // Its readings not known any more (reported after the connection was lost): still halves.
  CHECK(cap.refused(3000, 0) == Refusal::kCapLowered);
  CHECK(cap.limit() == 1500);
}

TEST_CASE("size cap: never below the largest envelope acknowledged under the refused size", "[uplink]") {
  EnvelopeSizeCap cap;
  cap.acknowledged(9000);
  CHECK(cap.refused(12000, 500) == Refusal::kCapLowered);
  CHECK(cap.limit() == 9000);  // not 6000: the broker took 9000
  // An acknowledgement larger than the refused size says nothing about it.
  EnvelopeSizeCap other;
  other.acknowledged(20000);
  CHECK(other.refused(12000, 500) == Refusal::kCapLowered);
  CHECK(other.limit() == 6000);
}

TEST_CASE("size cap: an envelope of one reading acknowledged above the cap raises it", "[uplink]") {
  EnvelopeSizeCap cap;
  REQUIRE(cap.refused(600, 40) == Refusal::kCapLowered);
  REQUIRE(cap.limit() == 300);
  cap.acknowledged(250);
  CHECK(cap.limit() == 300);  // below: no change
  cap.acknowledged(420);      // one reading, sent unsplit, and the broker took it
  CHECK(cap.limit() == 420);
  CHECK(cap.largest_acknowledged() == 420);
}

TEST_CASE("size cap: a refused envelope of one reading, or of no known size, changes nothing", "[uplink]") {
  EnvelopeSizeCap cap;
  CHECK(cap.refused(5000, 1) == Refusal::kOneReading);
  CHECK_FALSE(cap.learned());
  CHECK(cap.refused(0, 500) == Refusal::kNothingToLearn);
  CHECK_FALSE(cap.learned());
  REQUIRE(cap.refused(2000, 10) == Refusal::kCapLowered);
  CHECK(cap.refused(5000, 1) == Refusal::kOneReading);
  CHECK(cap.limit() == 1000);
}

TEST_CASE("size cap: the limit never reaches 0", "[uplink]") {
  EnvelopeSizeCap cap;
  CHECK(cap.refused(1, 2) == Refusal::kCapLowered);
  CHECK(cap.limit() == 1);
  CHECK(cap.refused(1, 2) == Refusal::kCapLowered);
  CHECK(cap.limit() == 1);
}
