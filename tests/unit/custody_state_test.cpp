// eport::custody state persistence and ordering: a journey cut at every
// reading, its states saved and restored into fresh detectors, gives the
// same events as an uninterrupted run (and a resent reading after the cut
// repeats nothing); interleaved sources give each source's own events;
// malformed state bytes are refused and leave the state as it was.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "custody_test_util.h"
#include "eport/custody/excursion.h"
#include "eport/custody/motion.h"
#include "eport/custody/profiles.h"

using namespace eport;
using namespace eport::custody;
using namespace eport::test::custody;

namespace {

struct Events {
  std::vector<MotionTransition> motion;
  std::vector<ExcursionEvent> excursions;
  std::vector<ProfileDecision> profiles;
  bool operator==(const Events&) const = default;
};

// The three detectors as the agent would chain them: motion and excursion
// first, then the profile decision from their state at that reading.
struct Chain {
  MotionDetector motion;
  ExcursionDetector excursion;
  ProfileSelector profiles;

  void feed(const model::Reading& r, Events& out) {
    motion.process(r, out.motion);
    excursion.process(r, out.excursions);
    CustodyInput in;
    in.moving = motion.moving(r.source_id);
    in.reefer = true;
    in.excursion_active = excursion.active(r.source_id);
    in.excursion_ended_utc_ms = excursion.last_ended_utc_ms(r.source_id);
    in.time_utc_ms = r.time_utc_ms;
    if (auto d = profiles.decide(r.source_id, r.seq, in)) out.profiles.push_back(*d);
  }
  struct Saved {
    std::vector<std::uint8_t> motion, excursion, profile;
  };
  Saved save(const std::string& src) const {
    return {motion.save_state(src), excursion.save_state(src), profiles.save_state(src)};
  }
  void restore(const std::string& src, const Saved& s) {
    REQUIRE(motion.restore_state(src, s.motion).ok());
    REQUIRE(excursion.restore_state(src, s.excursion).ok());
    REQUIRE(profiles.restore_state(src, s.profile).ok());
  }
};

// A reefer truck journey: positions at 1 Hz, and a temperature sample a
// minute with a 15-minute excursion while driving, and one last sample
// two hours after the journey.
std::vector<model::Reading> reefer_journey(const std::string& src, std::uint64_t seed) {
  Journey j = journey(src, seed);
  std::vector<model::Reading> out;
  std::uint64_t seq = 1;
  for (std::size_t i = 0; i < j.readings.size(); ++i) {
    auto r = j.readings[i];
    r.seq = seq++;
    if (i % 60 == 30) {
      const std::uint64_t minute = i / 60;
      const auto v = static_cast<std::int16_t>(minute >= 8 && minute < 23 ? -1200 - static_cast<int>(minute) : -1800);
      out.push_back(temperature(src, seq++, r.time_utc_ms, v, std::int16_t{-1800}));
    }
    out.push_back(std::move(r));
  }
  // Two hours later, in band: the burst after the excursion is over.
  out.push_back(temperature(src, seq, out.back().time_utc_ms + 7200000, -1800, std::int16_t{-1800}));
  return out;
}

Events run_all(const std::vector<model::Reading>& rs) {
  Chain c;
  Events e;
  for (const auto& r : rs) c.feed(r, e);
  return e;
}

// Interleaves two streams by a fixed pseudo-random choice, keeping each
// stream's own order.
std::vector<model::Reading> interleave(const std::vector<model::Reading>& a, const std::vector<model::Reading>& b,
                                       std::uint64_t seed) {
  Noise n(seed);
  std::vector<model::Reading> out;
  std::size_t i = 0, k = 0;
  while (i < a.size() || k < b.size()) {
    const bool take_a = k == b.size() || (i < a.size() && (n.next() & 3) != 0);
    out.push_back(take_a ? a[i++] : b[k++]);
  }
  return out;
}

template <class E>
std::vector<E> of_source(const std::vector<E>& all, const std::string& src) {
  std::vector<E> out;
  std::copy_if(all.begin(), all.end(), std::back_inserter(out), [&](const E& e) { return e.source_id == src; });
  return out;
}

}  // namespace

TEST_CASE("custody state: the test journey has motion, excursion and profile events to protect", "[detectors]") {
  const Events e = run_all(reefer_journey("tcu-1", 5));
  CHECK(e.motion.size() == 2);
  CHECK(e.excursions.size() == 2);
  CHECK(e.profiles.size() == 3);  // land, burst, land again after the hour
}

TEST_CASE("custody state: interleaved sources give each source the events it has alone", "[detectors]") {
  const auto a = reefer_journey("tcu-a", 1);
  const auto b = reefer_journey("tcu-b", 2);
  const Events alone_a = run_all(a), alone_b = run_all(b);
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    const Events mixed = run_all(interleave(a, b, seed));
    CHECK(of_source(mixed.motion, "tcu-a") == alone_a.motion);
    CHECK(of_source(mixed.motion, "tcu-b") == alone_b.motion);
    CHECK(of_source(mixed.excursions, "tcu-a") == alone_a.excursions);
    CHECK(of_source(mixed.excursions, "tcu-b") == alone_b.excursions);
    CHECK(of_source(mixed.profiles, "tcu-a") == alone_a.profiles);
    CHECK(of_source(mixed.profiles, "tcu-b") == alone_b.profiles);
  }
}

TEST_CASE("custody state: cut at every reading, restored and continued, gives the uninterrupted run's events", "[detectors]") {
  const auto rs = interleave(reefer_journey("tcu-a", 8), reefer_journey("tcu-b", 9), 4);
  const Events whole = run_all(rs);
  for (std::size_t cut = 0; cut <= rs.size(); ++cut) {
    Chain before;
    Events got;
    for (std::size_t i = 0; i < cut; ++i) before.feed(rs[i], got);
    // What the agent committed with reading cut - 1, read back after a kill -9.
    const auto saved_a = before.save("tcu-a"), saved_b = before.save("tcu-b");
    Chain after;
    after.restore("tcu-a", saved_a);
    after.restore("tcu-b", saved_b);
    // Units resend what they had no ACK for: the last readings again, then on.
    for (std::size_t i = cut >= 3 ? cut - 3 : 0; i < rs.size(); ++i) after.feed(rs[i], got);
    if (!(got == whole)) {
      FAIL("cut at reading " << cut << " differs");
    }
  }
  SUCCEED("every cut point");
}

TEST_CASE("custody state: encodings are deterministic and bounded", "[detectors]") {
  MotionState m;
  m.last_seq = 77;
  m.moving = true;
  m.pending = true;
  m.pending_lat_e7 = -900000000;
  CHECK(encode(m) == encode(m));
  CHECK(encode(m).size() == kMotionStateBytes);
  CHECK(encode(MotionState{}).size() == kMotionStateBytes);
  auto m2 = decode_motion_state(encode(m));
  REQUIRE(m2.ok());
  CHECK(*m2 == m);
  ExcursionState x;
  x.phase = ExcursionPhase::kActive;
  x.direction = ExcursionDirection::kBelow;
  x.extreme_centi_c = -32768;
  x.has_ended = true;
  x.last_ended_ms = ~0ull;
  CHECK(encode(x).size() == kExcursionStateBytes);
  auto x2 = decode_excursion_state(encode(x));
  REQUIRE(x2.ok());
  CHECK(*x2 == x);
  ProfileState p{5, std::string(32, 'z')};
  CHECK(encode(p).size() == kMaxProfileStateBytes);
  auto p2 = decode_profile_state(encode(p));
  REQUIRE(p2.ok());
  CHECK(*p2 == p);
}

TEST_CASE("custody state: malformed bytes are refused, counted, and leave the state as it was", "[detectors]") {
  MotionDetector d;
  std::vector<MotionTransition> out;
  d.process(position("tcu-1", 9, kT0, kYardLat, kYardLon, 0), out);
  const auto good = d.save_state("tcu-1");
  auto bad = good;
  bad[0] = 2;
  CHECK_THAT(d.restore_state("tcu-1", bad).error(), Catch::Contains("unknown version 2"));
  bad = good;
  bad[17] = 2;  // has_anchor
  CHECK_THAT(d.restore_state("tcu-1", bad).error(), Catch::Contains("neither 0 nor 1"));
  CHECK_THAT(d.restore_state("tcu-1", std::vector<std::uint8_t>(good.begin(), good.end() - 1)).error(),
             Catch::Contains("51 bytes, expected 52"));
  CHECK_THAT(d.restore_state("tcu-1", {}).error(), Catch::Contains("source tcu-1"));
  CHECK(d.counters().restore_errors == 4);
  CHECK(d.save_state("tcu-1") == good);

  ExcursionDetector e;
  auto xs = e.save_state("r");
  xs[18] = 3;  // phase
  CHECK_THAT(e.restore_state("r", xs).error(), Catch::Contains("out of range"));
  xs.push_back(0);
  CHECK_THAT(e.restore_state("r", xs).error(), Catch::Contains("expected 75"));

  ProfileSelector s;
  auto ps = encode(ProfileState{1, "land"});
  ps[9] = 10;  // the name's length byte claims more than there is
  CHECK_THAT(s.restore_state("tcu-1", ps).error(), Catch::Contains("malformed"));
  CHECK_THAT(s.restore_state("tcu-1", {}).error(), Catch::Contains("empty"));
  CHECK_THAT(s.restore_state("tcu-1", std::vector<std::uint8_t>(43, 1)).error(), Catch::Contains("at most 42"));
}

TEST_CASE("custody state: a source never seen saves a fresh state", "[detectors]") {
  MotionDetector d;
  CHECK(d.save_state("nobody") == encode(MotionState{}));
  ExcursionDetector e;
  CHECK(e.save_state("nobody") == encode(ExcursionState{}));
  CHECK_FALSE(e.last_ended_utc_ms("nobody"));
}
