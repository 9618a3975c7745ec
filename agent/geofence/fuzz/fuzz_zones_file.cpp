// libFuzzer target for the zones file parser: arbitrary bytes into
// parse_zones_file() must never crash, leak or hit UB; a refusal must say
// why; a zone set that parses must answer the tracker's questions (signed
// distance, containment, crossings, the index) for points of its own
// vertices without trouble, and the index must never miss a zone the point
// is inside.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "eport/geofence/tracker.h"
#include "eport/geofence/zones_file.h"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = eport::geofence::parse_zones_file(in);
  if (!r.ok()) {
    check(!r.error().empty());
    return 0;
  }
  using namespace eport::geofence;
  const ZoneSet& set = *r;
  check(!set.version().empty());
  std::vector<std::uint32_t> near;
  for (std::uint32_t i = 0; i < set.zones().size(); ++i) {
    const Zone& z = set.zones()[i];
    check(set.find(z.id) == static_cast<std::ptrdiff_t>(i));
    const Vec3 c = z.geometry.centre();
    const double d = z.geometry.signed_distance_m(c);
    check(d == d);  // not NaN
    set.candidates(c, near);
    if (z.geometry.contains(c)) check(std::find(near.begin(), near.end(), i) != near.end());
    // A segment across the zone's centre.
    const Vec3 a{c.x + 1e-4, c.y - 1e-4, c.z};
    const Vec3 b{c.x - 1e-4, c.y + 1e-4, c.z};
    (void)z.geometry.crossings(a, b, z.buffer_m);
  }
  Tracker t(std::make_shared<const ZoneSet>(set));
  std::uint64_t seq = 1;
  for (const auto& z : set.zones()) {
    (void)z;
    Fix f;
    f.seq = seq++;
    f.time_utc_ms = 1000 * seq;
    f.position.fix = eport::model::FixQuality::kGps;
    auto out = t.process("fuzz", f);
    check(out.size() <= 2 * set.zones().size());
  }
  auto again = decode_state(t.save_state("fuzz"));
  check(again.ok());
  return 0;
}
