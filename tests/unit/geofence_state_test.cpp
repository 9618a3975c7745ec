// eport::geofence source state encoding: a round trip gives the same state
// and the same bytes (one encoding per state), and damaged or foreign bytes
// are refused with a reason instead of being half-restored.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "eport/geofence/source_state.h"

using eport::geofence::decode_state;
using eport::geofence::encode_state;
using eport::geofence::LastFix;
using eport::geofence::Phase;
using eport::geofence::SourceState;

namespace {

SourceState sample() {
  SourceState s;
  s.last_seq = 9007199254740991ull;  // kMaxSeq
  s.last_fix = LastFix{41, 1795000000000ull, {-899999999, -1799999999}, std::uint16_t{250}};
  s.zones = {{"donghai-bridge", Phase::kInside, 1795000000000ull, 40}, {"yangshan-1", Phase::kPending, 1795000060000ull, 41}};
  return s;
}

}  // namespace

TEST_CASE("geofence state round-trips to the same state and the same bytes", "[geofence]") {
  const auto bytes = encode_state(sample());
  CHECK(bytes.size() == 39 + (1 + 14 + 17) + (1 + 10 + 17));
  auto back = decode_state(bytes);
  REQUIRE(back.ok());
  CHECK(*back == sample());
  CHECK(encode_state(*back) == bytes);
  // The empty state (an unknown source).
  auto empty = decode_state(encode_state(SourceState{}));
  REQUIRE(empty.ok());
  CHECK(*empty == SourceState{});
  CHECK(encode_state(SourceState{}).size() == 12);
  // A fix without HDOP stays without HDOP.
  SourceState no_hdop = sample();
  no_hdop.last_fix->hdop_centi.reset();
  CHECK(*decode_state(encode_state(no_hdop)) == no_hdop);
}

TEST_CASE("geofence state refuses other versions and damaged bytes", "[geofence]") {
  const auto good = encode_state(sample());
  auto with = [&](std::size_t at, std::uint8_t v) {
    auto b = good;
    b[at] = v;
    return b;
  };
  CHECK(decode_state(with(0, 2)).error() == "geofence state has version 2 (this agent reads 1)");
  CHECK(decode_state(std::vector<std::uint8_t>{}).error() == "geofence state is truncated");
  CHECK(decode_state(std::vector<std::uint8_t>(good.begin(), good.end() - 1)).error() == "geofence state is truncated");
  auto longer = good;
  longer.push_back(0);
  CHECK(decode_state(longer).error() == "geofence state has trailing bytes");
  const std::size_t first_phase = 39 + 1 + 14;
  CHECK(decode_state(with(first_phase, 3)).error() == "geofence state: bad phase 3");
  CHECK(decode_state(with(39 + 1 + 7, '/')).error() == "geofence state: bad zone id");  // "donghai/bridge"
  CHECK(decode_state(with(9, 2)).error() == "geofence state: bad last-fix flag");
  SourceState unordered = sample();
  std::swap(unordered.zones[0], unordered.zones[1]);
  CHECK(decode_state(encode_state(unordered)).error() == "geofence state: zones not in ascending order");
}
