// [bridge] Readings survive model -> firmware-bridge frame -> model intact,
// and invalid wire content is refused with a reason.
#include <catch2/catch.hpp>

#include "eport/units/convert.h"

using namespace eport;
using namespace eport::model;

TEST_CASE("every payload kind survives a frame encode and decode", "[units]") {
  std::vector<Payload> payloads = {
      Position{306187233, 1220670000, 1234, 35999, FixQuality::kGps, 9, 120},
      Position{-1, -1, std::nullopt, std::nullopt, FixQuality::kNoFix, 0, std::nullopt},
      SealEvent{"SL00012345", SealState::kTampered},
      DoorEvent{DoorState::kOpen},
      SensorSample{-1850, 8412, 2500, 3700, 42, -1800},
      SensorSample{std::nullopt, std::nullopt, std::nullopt, 3300, std::nullopt, std::nullopt},
  };
  std::uint64_t seq = 1;
  for (const auto& p : payloads) {
    Reading r{"tcu-0001", "CSQU3054383", seq++, 1795000000000ull, p};
    auto w = units::to_wire(r);
    REQUIRE(w.ok());
    epb_message m{};
    m.type = EPB_MSG_READING;
    m.m.reading = *w;
    std::uint8_t frame[EPB_MAX_ENCODED];
    std::size_t n = epb_encode(&m, frame, sizeof frame);
    REQUIRE(n > 0);
    REQUIRE(frame[n - 1] == 0);
    epb_decoder d;
    epb_decoder_init(&d);
    epb_message out;
    epb_status st;
    epb_decoder_feed(&d, frame, n, &out, &st);
    REQUIRE(st == EPB_OK);
    auto back = units::from_wire(out.m.reading, "tcu-0001", "CSQU3054383");
    REQUIRE(back.ok());
    CHECK(*back == r);
  }
}

TEST_CASE("wire readings that cannot be valid are refused", "[units]") {
  epb_reading w{};
  w.seq = 0;
  w.kind = EPB_READING_DOOR;
  CHECK_THAT(units::from_wire(w, "u", "").error(), Catch::Contains("seq 0"));
  w.seq = 5;
  w.kind = EPB_READING_POSITION;
  w.u.position.lat_e7 = 900000001;
  CHECK_THAT(units::from_wire(w, "u", "").error(), Catch::Contains("latitude"));
  w.u.position.lat_e7 = 0;
  w.u.position.lon_e7 = -1800000001;
  CHECK_THAT(units::from_wire(w, "u", "").error(), Catch::Contains("longitude"));
  w.kind = 9;
  CHECK_THAT(units::from_wire(w, "u", "").error(), Catch::Contains("unknown reading kind"));
  Reading long_seal{"u", "", 1, 0, SealEvent{std::string(40, 'X'), SealState::kSealed}};
  CHECK_FALSE(units::to_wire(long_seal).ok());
}
