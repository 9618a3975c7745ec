// Custody detectors benchmark: ns per reading for motion, reefer
// excursions, all three detectors chained with the profile decision, and
// the state save, next to two baselines measured in the same run on the
// same readings: copying a Reading, and decoding one from its stored
// FlatBuffers form (what the data path already pays per reading).
// Prints figures, asserts nothing. Usage: eport-custody-bench [N] [SOURCES]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "eport/codec/codec.h"
#include "eport/custody/excursion.h"
#include "eport/custody/motion.h"
#include "eport/custody/profiles.h"

namespace {

using Clock = std::chrono::steady_clock;
using eport::model::Reading;

// Sources take turns; each drives east at 10 m/s for 5 min then parks for
// 5 min (1 Hz fixes), and every 60th reading is a reefer sample that leaves
// its band for a while.
std::vector<Reading> make_readings(std::size_t n, std::size_t sources) {
  std::vector<std::string> ids;
  for (std::size_t s = 0; s < sources; ++s) ids.push_back("tcu-" + std::to_string(s));
  std::vector<Reading> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t s = i % sources, k = i / sources;
    Reading r;
    r.source_id = ids[s];
    r.container_id = "MSKU1234565";
    r.seq = k + 1;
    r.time_utc_ms = 1795000000000ull + k * 1000;
    if (k % 60 == 59) {
      eport::model::SensorSample t;
      t.temperature_centi_c = static_cast<std::int16_t>((k / 1800) % 3 == 1 ? -1200 : -1800);
      t.reefer_setpoint_centi_c = -1800;
      r.payload = t;
    } else {
      eport::model::Position p;
      const bool driving = (k / 300) % 2 == 0;
      p.lat_e7 = 309000000 + static_cast<std::int32_t>(s * 1000);
      p.lon_e7 = 1220800000 + static_cast<std::int32_t>((k / 600) * 300 * 1048 + (driving ? (k % 300) * 1048 : 300 * 1048));
      p.speed_cm_s = static_cast<std::uint16_t>(driving ? 1000 : k % 100);
      p.fix = eport::model::FixQuality::kGps;
      p.hdop_centi = 90;
      r.payload = p;
    }
    out.push_back(std::move(r));
  }
  return out;
}

template <class F>
double ns_per(std::size_t n, F&& f) {
  auto t = Clock::now();
  f();
  return std::chrono::duration<double, std::nano>(Clock::now() - t).count() / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 2000000;
  const std::size_t sources = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 100;
  if (n == 0 || sources == 0) {
    std::fprintf(stderr, "usage: eport-custody-bench [N > 0] [SOURCES > 0]\n");
    return 2;
  }
  const auto readings = make_readings(n, sources);
  std::vector<std::vector<std::uint8_t>> stored;
  stored.reserve(n);
  for (const auto& r : readings) stored.push_back(eport::codec::encode_reading(r));

  std::size_t sink = 0;
  const double copy_ns = ns_per(n, [&] {
    std::vector<Reading> copies;
    copies.reserve(1024);
    for (const auto& r : readings) {
      if (copies.size() == 1024) copies.clear();
      copies.push_back(r);
    }
    sink += copies.size();
  });
  const double decode_ns = ns_per(n, [&] {
    for (const auto& b : stored) sink += eport::codec::decode_reading(b).ok() ? 1 : 0;
  });

  eport::custody::MotionDetector motion;
  std::vector<eport::custody::MotionTransition> transitions;
  const double motion_ns = ns_per(n, [&] {
    for (const auto& r : readings) motion.process(r, transitions);
  });
  eport::custody::ExcursionDetector excursion;
  std::vector<eport::custody::ExcursionEvent> excursions;
  const double excursion_ns = ns_per(n, [&] {
    for (const auto& r : readings) excursion.process(r, excursions);
  });
  // All three chained as the agent would: fresh detectors, the profile
  // decided from motion and excursion state at each reading.
  eport::custody::MotionDetector chained_motion;
  eport::custody::ExcursionDetector chained_excursion;
  eport::custody::ProfileSelector profiles;
  std::size_t decisions = 0;
  const double chain_ns = ns_per(n, [&] {
    std::vector<eport::custody::MotionTransition> t;
    std::vector<eport::custody::ExcursionEvent> e;
    for (const auto& r : readings) {
      chained_motion.process(r, t);
      chained_excursion.process(r, e);
      eport::custody::CustodyInput in;
      in.moving = chained_motion.moving(r.source_id);
      in.excursion_active = chained_excursion.active(r.source_id);
      in.excursion_ended_utc_ms = chained_excursion.last_ended_utc_ms(r.source_id);
      in.time_utc_ms = r.time_utc_ms;
      decisions += profiles.decide(r.source_id, r.seq, in) ? 1 : 0;
    }
  });
  std::size_t state_bytes = 0;
  const double save_ns = ns_per(n, [&] {
    for (const auto& r : readings) state_bytes += motion.save_state(r.source_id).size() + excursion.save_state(r.source_id).size();
  });

  std::printf("custody bench: %zu readings, %zu sources (%zu motion transitions, %zu excursion events, %zu profile decisions)\n",
              n, sources, transitions.size(), excursions.size(), decisions);
  std::printf("  baseline copy of a Reading      %8.1f ns/reading\n", copy_ns);
  std::printf("  baseline decode_reading         %8.1f ns/reading\n", decode_ns);
  std::printf("  motion (fresh run)              %8.1f ns/reading\n", motion_ns);
  std::printf("  excursion (fresh run)           %8.1f ns/reading\n", excursion_ns);
  std::printf("  all three chained (+ profiles)  %8.1f ns/reading\n", chain_ns);
  std::printf("  save motion + excursion state   %8.1f ns/reading (%zu bytes each time)\n", save_ns,
              state_bytes / n);
  return sink == 0 ? 1 : 0;
}
