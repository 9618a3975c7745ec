// eport::geofence geometry: point in polygon on edges and vertices (on the
// boundary counts as inside), holes and concave shapes, circles near the
// antimeridian and the poles, corridors, signed distances against the
// great-circle truth, and segment crossings with their fractions.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "eport/geofence/geometry.h"
#include "eport/geofence/limits.h"
#include "geofence_test_util.h"

using eport::geofence::Geometry;
using eport::geofence::kOnBoundaryM;
using eport::geofence::LatLonE7;
using eport::geofence::unit_vector;
using geofence_test::ll;
using geofence_test::offset;

namespace {

// A 0.002-degree square at Yangshan's latitude, counter-clockwise.
const std::vector<LatLonE7> kSquare = {ll(30.630, 122.050), ll(30.630, 122.052), ll(30.632, 122.052),
                                       ll(30.632, 122.050), ll(30.630, 122.050)};

Geometry square() { return *Geometry::polygon({kSquare}); }

}  // namespace

TEST_CASE("geofence point in polygon: vertices and edges count as inside, 1 m beyond does not", "[geofence]") {
  const Geometry g = square();
  struct Row {
    const char* what;
    LatLonE7 at;
    bool inside;
  };
  const LatLonE7 sw = kSquare[0], se = kSquare[1], ne = kSquare[2], nw = kSquare[3];
  const Row table[] = {
      {"south-west vertex", sw, true},
      {"south-east vertex", se, true},
      {"north-east vertex", ne, true},
      {"north-west vertex", nw, true},
      {"middle of the west edge (a meridian)", ll(30.631, 122.050), true},
      {"middle of the east edge (a meridian)", ll(30.631, 122.052), true},
      {"middle of the south edge", ll(30.630, 122.051), true},
      {"middle of the north edge", ll(30.632, 122.051), true},
      {"centre", ll(30.631, 122.051), true},
      {"1 m west of the west edge", offset(ll(30.631, 122.050), -1, 0), false},
      {"1 m inside the west edge", offset(ll(30.631, 122.050), 1, 0), true},
      {"1 m south of the south edge", offset(ll(30.630, 122.051), 0, -1), false},
      {"1 m north of the north edge", offset(ll(30.632, 122.051), 0, 1), false},
      {"1 m beyond the north-east vertex, diagonally", offset(ne, 0.8, 0.8), false},
      {"far away", ll(31.0, 121.0), false},
  };
  for (const auto& row : table) {
    INFO(row.what);
    CHECK(g.contains(unit_vector(row.at)) == row.inside);
  }
  // On the boundary the signed distance is (about) zero, not just "inside".
  for (const auto& v : kSquare) CHECK(std::abs(g.signed_distance_m(unit_vector(v))) <= kOnBoundaryM);
  CHECK(std::abs(g.signed_distance_m(unit_vector(ll(30.631, 122.050)))) <= kOnBoundaryM);
  // Signed: negative inside, positive outside, in metres (the square is 192 m east-west).
  CHECK(g.signed_distance_m(unit_vector(offset(ll(30.631, 122.050), -30, 0))) == Approx(30).margin(0.05));
  CHECK(g.signed_distance_m(unit_vector(offset(ll(30.631, 122.050), 30, 0))) == Approx(-30).margin(0.05));
}

TEST_CASE("geofence polygon with a hole and a concave polygon", "[geofence]") {
  const std::vector<LatLonE7> hole = {ll(30.6305, 122.0505), ll(30.6315, 122.0505), ll(30.6315, 122.0515),
                                      ll(30.6305, 122.0515), ll(30.6305, 122.0505)};
  const Geometry g = *Geometry::polygon({kSquare, hole});
  CHECK_FALSE(g.contains(unit_vector(ll(30.6310, 122.0510))));  // in the hole
  CHECK(g.contains(unit_vector(ll(30.6305, 122.0510))));        // on the hole's edge: the zone's boundary
  CHECK(g.contains(unit_vector(ll(30.6305, 122.0505))));        // on the hole's vertex
  CHECK(g.contains(unit_vector(ll(30.6302, 122.0510))));        // between the hole and the outer ring
  CHECK(g.signed_distance_m(unit_vector(ll(30.6310, 122.0510))) > 40);  // centre of the hole, ~48 m from its edges

  // A U open to the north: the notch is outside, the arms inside.
  const std::vector<LatLonE7> u = {ll(30.630, 122.050), ll(30.630, 122.053), ll(30.633, 122.053), ll(30.633, 122.052),
                                   ll(30.631, 122.052), ll(30.631, 122.051), ll(30.633, 122.051), ll(30.633, 122.050),
                                   ll(30.630, 122.050)};
  const Geometry gu = *Geometry::polygon({u});
  CHECK_FALSE(gu.contains(unit_vector(ll(30.632, 122.0515))));
  CHECK(gu.contains(unit_vector(ll(30.632, 122.0505))));
  CHECK(gu.contains(unit_vector(ll(30.632, 122.0525))));
  CHECK(gu.contains(unit_vector(ll(30.631, 122.0515))));  // the notch's bottom edge
  CHECK(gu.contains(unit_vector(ll(30.631, 122.051))));   // the notch's reflex vertex
}

TEST_CASE("geofence circles across the antimeridian and at the poles", "[geofence]") {
  // A 200 m circle centred 55 m west of the antimeridian on the equator.
  const Geometry am = *Geometry::circle(ll(0.0, 179.9995), 200);
  CHECK(am.contains(unit_vector(ll(0.0, -179.9990))));   // 167 m away, across the line
  CHECK(am.contains(unit_vector(ll(0.0, 180.0))));
  CHECK(am.contains(unit_vector(ll(0.0, -180.0))));
  CHECK_FALSE(am.contains(unit_vector(ll(0.0, -179.9975))));  // 334 m
  CHECK(am.signed_distance_m(unit_vector(ll(0.0, -179.9975))) == Approx(0.003 * 111195.08 - 200).margin(0.05));
  // A polygon spanning +-180 degrees (edges are the short arcs across the line).
  const Geometry square_am = *Geometry::polygon(
      {{ll(-0.001, 179.999), ll(-0.001, -179.999), ll(0.001, -179.999), ll(0.001, 179.999), ll(-0.001, 179.999)}});
  CHECK(square_am.contains(unit_vector(ll(0.0, 180.0))));
  CHECK(square_am.contains(unit_vector(ll(0.0, -179.9995))));
  CHECK(square_am.contains(unit_vector(ll(0.0005, 179.9995))));
  CHECK_FALSE(square_am.contains(unit_vector(ll(0.0, 179.99))));
  CHECK_FALSE(square_am.contains(unit_vector(ll(0.0, 0.0))));

  // 100 m circle 11 m from the north pole: the pole and the other side of it are inside.
  const Geometry north = *Geometry::circle(ll(89.9999, 0.0), 100);
  CHECK(north.contains(unit_vector(ll(90.0, 0.0))));
  CHECK(north.contains(unit_vector(ll(90.0, 123.0))));
  CHECK(north.contains(unit_vector(ll(89.9999, 180.0))));  // 22 m away, across the pole
  CHECK_FALSE(north.contains(unit_vector(ll(89.999, 90.0))));  // 112 m
  // Centred on the pole: every longitude at 333 m is inside, at 556 m outside.
  const Geometry pole = *Geometry::circle(ll(90.0, 0.0), 500);
  for (double lon = -180; lon < 180; lon += 15) {
    INFO("longitude " << lon);
    CHECK(pole.contains(unit_vector(ll(89.997, lon))));
    CHECK_FALSE(pole.contains(unit_vector(ll(89.995, lon))));
  }
  // A polygon around the south pole contains it.
  const Geometry south = *Geometry::polygon(
      {{ll(-89.99, 0.0), ll(-89.99, 90.0), ll(-89.99, 180.0), ll(-89.99, -90.0), ll(-89.99, 0.0)}});
  CHECK(south.contains(unit_vector(ll(-90.0, 0.0))));
  CHECK(south.contains(unit_vector(ll(-89.995, 45.0))));
  CHECK_FALSE(south.contains(unit_vector(ll(-89.98, 45.0))));
}

TEST_CASE("geofence signed distances match the great-circle truth within the documented bound", "[geofence]") {
  // Circles are exact; polygons and corridors within 2.5e-4 of the distance
  // (plus the 1e-7 degree grid) up to 100 km from their centre.
  const LatLonE7 c = ll(30.63, 122.05);
  const Geometry circle = *Geometry::circle(c, 1000);
  for (double d : {0.0, 10.0, 500.0, 990.0, 1010.0, 5000.0, 50000.0}) {
    const LatLonE7 p = offset(c, d * 0.6, d * 0.8);
    INFO("distance " << d);
    CHECK(circle.signed_distance_m(unit_vector(p)) == Approx(geofence_test::distance_m(c, p) - 1000).margin(0.02));
  }
  // A long north-south corridor: 30 km from its centre a point 60 m east of
  // the meridian line is 60 - 50 = 10 m outside.
  const Geometry corridor = *Geometry::corridor({ll(30.4, 122.0), ll(30.9, 122.0)}, 100);
  const LatLonE7 far_north = ll(30.9, 122.0);
  CHECK(corridor.signed_distance_m(unit_vector(offset(far_north, 60, -1000))) == Approx(10).margin(0.02));
  CHECK(corridor.signed_distance_m(unit_vector(offset(ll(30.4, 122.0), -20, 1000))) == Approx(-30).margin(0.02));
}

TEST_CASE("geofence corridors: within width/2 of the polyline, round at the ends", "[geofence]") {
  const LatLonE7 a = ll(30.70, 122.00), b = offset(a, 1000, 0), c = offset(b, 0, 1000);
  const Geometry g = *Geometry::corridor({a, b, c}, 100);
  struct Row {
    const char* what;
    LatLonE7 at;
    bool inside;
  };
  const Row table[] = {
      {"on the line", offset(a, 500, 0), true},
      {"49 m north of the first leg", offset(a, 500, 49), true},
      {"51 m south of the first leg", offset(a, 500, -51), false},
      {"exactly 50 m off (the boundary)", offset(a, 500, 50), true},
      {"49 m beyond the start", offset(a, -49, 0), true},
      {"51 m beyond the start", offset(a, -51, 0), false},
      {"35 m diagonally past the end (49.5 m)", offset(c, 35, 35), true},
      {"outside the bend, 49 m from the corner", offset(b, 34.6, -34.6), true},
      {"inside the bend", offset(b, -30, 30), true},
      {"200 m inside the bend", offset(b, -200, 200), false},
  };
  for (const auto& row : table) {
    INFO(row.what);
    CHECK(g.contains(unit_vector(row.at)) == row.inside);
  }
}

TEST_CASE("geofence segment crossings: a sparse segment through a zone, with fractions", "[geofence]") {
  const LatLonE7 c = ll(30.63, 122.05);
  const Geometry circle = *Geometry::circle(c, 100);
  const auto from = unit_vector(offset(c, -5000, 0)), to = unit_vector(offset(c, 5000, 0));
  auto through = circle.crossings(from, to, 25);
  REQUIRE(through.size() == 1);
  CHECK(through[0].enter_fraction == Approx(0.49).margin(1e-4));  // 4900 m of 10000
  CHECK(through[0].exit_fraction == Approx(0.51).margin(1e-4));
  // The other way round.
  auto back = circle.crossings(to, from, 25);
  REQUIRE(back.size() == 1);
  CHECK(back[0].enter_fraction == Approx(0.49).margin(1e-4));
  // 90 m off-centre: only 10 m deep, less than a 25 m buffer: no crossing.
  CHECK(circle.crossings(unit_vector(offset(c, -5000, 90)), unit_vector(offset(c, 5000, 90)), 25).empty());
  CHECK(circle.crossings(unit_vector(offset(c, -5000, 90)), unit_vector(offset(c, 5000, 90)), 5).size() == 1);
  // Missing by 50 m.
  CHECK(circle.crossings(unit_vector(offset(c, -5000, 150)), unit_vector(offset(c, 5000, 150)), 0).empty());
  // Ending short of the zone.
  CHECK(circle.crossings(from, unit_vector(offset(c, -200, 0)), 25).empty());
  // Longer than kMaxCrossingSegmentM (50 km): nothing can be said.
  CHECK(circle.crossings(unit_vector(offset(c, -30000, 0)), unit_vector(offset(c, 30000, 0)), 25).empty());
  // A U crossed through both arms: two crossings, in order along the segment.
  const std::vector<LatLonE7> u = {ll(30.630, 122.050), ll(30.630, 122.053), ll(30.633, 122.053), ll(30.633, 122.052),
                                   ll(30.631, 122.052), ll(30.631, 122.051), ll(30.633, 122.051), ll(30.633, 122.050),
                                   ll(30.630, 122.050)};
  const Geometry gu = *Geometry::polygon({u});
  auto arms = gu.crossings(unit_vector(ll(30.632, 122.040)), unit_vector(ll(30.632, 122.063)), 25);
  REQUIRE(arms.size() == 2);
  CHECK(arms[0].enter_fraction < arms[0].exit_fraction);
  CHECK(arms[0].exit_fraction < arms[1].enter_fraction);
  CHECK(arms[1].enter_fraction < arms[1].exit_fraction);
  CHECK(arms[0].enter_fraction == Approx(10.0 / 23).margin(1e-3));
  // Across the antimeridian.
  const Geometry am = *Geometry::circle(ll(0.0, 180.0), 100);
  auto across = am.crossings(unit_vector(ll(0.0, 179.97)), unit_vector(ll(0.0, -179.97)), 25);
  REQUIRE(across.size() == 1);
  CHECK(across[0].enter_fraction == Approx(0.5 - 100 / (0.06 * 111195.08)).margin(1e-3));
  // A segment running exactly along an edge (the worst case for the march)
  // finishes: bounded work, and the edge counts as inside but not deep.
  const Geometry sq = square();
  CHECK(sq.crossings(unit_vector(ll(30.630, 122.040)), unit_vector(ll(30.630, 122.062)), 25).empty());
  // A corridor crossed at right angles.
  const Geometry bridge = *Geometry::corridor({offset(c, 0, -3000), offset(c, 0, 3000)}, 200);
  CHECK(bridge.crossings(from, to, 30).size() == 1);
}

TEST_CASE("geofence geometry refuses bad rings, lines and sizes naming the ring and the edges", "[geofence]") {
  struct Row {
    std::vector<std::vector<LatLonE7>> rings;
    std::string message;
  };
  const LatLonE7 a = ll(30.630, 122.050), b = ll(30.630, 122.052), c = ll(30.632, 122.052), d = ll(30.632, 122.050);
  const Row table[] = {
      {{{a, b, c}}, "ring 0 has 3 positions (at least 4)"},
      {{{a, b, c, d}}, "ring 0 is not closed (its last position differs from its first)"},
      {{{a, b, b, c, a}}, "ring 0: position 2 repeats position 1"},
      {{{a, c, b, d, a}}, "ring 0 intersects itself (edge 0 crosses edge 2)"},
      {{{a, b, ll(30.630, 122.051), a}}, "ring 0 intersects itself (edge 0 folds back onto edge 1)"},
      {{{a, b, c, d, a}, {a, ll(30.631, 122.051), ll(30.631, 122.0505), a}},
       "ring 1 touches or crosses ring 0 (edge 0 of ring 1, edge 0 of ring 0)"},
      {{{a, b, c, d, a}, {ll(30.64, 122.06), ll(30.64, 122.061), ll(30.641, 122.061), ll(30.64, 122.06)}},
       "ring 1 (a hole) is not inside ring 0"},
      {{{ll(30.0, 122.0), ll(30.0, 124.0), ll(31.5, 124.0), ll(30.0, 122.0)}},
       "extends 139465 m from its centre (at most 100000)"},
  };
  for (const auto& row : table) {
    INFO("expected: " << row.message);
    auto g = Geometry::polygon(row.rings);
    REQUIRE_FALSE(g.ok());
    CHECK(g.error() == row.message);
  }
  CHECK(Geometry::corridor({a}, 10).error() == "line has 1 positions (at least 2)");
  CHECK(Geometry::corridor({a, a}, 10).error() == "line: position 1 repeats position 0");
  CHECK(Geometry::corridor({a, b}, 0).error() == "width 0 m is out of range (more than 0, at most 10000)");
  CHECK(Geometry::circle(a, -1).error() == "radius -1 m is out of range (more than 0, at most 100000)");
}
