// Zone geometry on the sphere: circles, polygons (outer ring, optional holes)
// and corridors (a polyline with a width), built from lat/lon in 1e-7 degrees
// as model::Position carries them, and the three questions the tracker asks:
// how far is a point from the boundary (signed, negative inside), is it
// inside, and where does the segment between two fixes pass through a zone.
//
// Method: each zone has a centre (the normalised sum of its vertices' unit
// vectors) and a gnomonic (tangent-plane) projection around it, in metres.
// The gnomonic projection maps great circles to straight lines, so polygon
// edges and the path between two fixes are the shorter great-circle arcs,
// and point-in-polygon in the plane is exact on the sphere. It is computed
// from 3-D unit vectors, so nothing is special at the antimeridian or the
// poles. Error bound: within kMaxZoneExtentM (100 km) of the centre the
// plane's scale differs from the sphere's by less than (100/6371)^2 = 2.5e-4,
// so a signed distance d is exact to within 2.5e-4 * |d| (6 mm at 25 m);
// circles use the exact great-circle distance. The sphere itself differs
// from WGS 84 by up to 0.5 % of a distance (12 cm at 25 m).
// Thread-safety: Geometry is immutable after construction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "eport/model/result.h"

namespace eport::geofence {

struct LatLonE7 {
  std::int32_t lat_e7 = 0;  // degrees * 1e7, -90e7..90e7
  std::int32_t lon_e7 = 0;  // degrees * 1e7, -180e7..180e7
  bool operator==(const LatLonE7&) const = default;
};

struct Vec3 {
  double x = 0, y = 0, z = 0;
};

// The unit vector of a position (earth-centred, earth-fixed, unit sphere).
Vec3 unit_vector(LatLonE7 p);
// Great-circle distance between two unit vectors, metres.
double great_circle_m(const Vec3& a, const Vec3& b);

struct PlanePoint {
  double x = 0, y = 0;  // metres in a zone's tangent plane
};

// The gnomonic projection around a centre: x east, y north, metres.
class TangentPlane {
 public:
  TangentPlane() = default;
  explicit TangentPlane(const Vec3& centre);
  // False when p is more than 60 degrees from the centre (no useful image).
  bool project(const Vec3& p, PlanePoint& out) const;
  Vec3 unproject(const PlanePoint& q) const;
  const Vec3& centre() const { return c_; }

 private:
  Vec3 c_{1, 0, 0}, e_{0, 1, 0}, n_{0, 0, 1};
};

enum class Shape : std::uint8_t { kCircle, kPolygon, kCorridor };

// Where a segment passes through a zone: fractions 0..1 of the way from the
// first fix to the second (along the great circle) at which it crosses the
// boundary inwards and outwards.
struct Crossing {
  double enter_fraction = 0;
  double exit_fraction = 0;
};

class Geometry {
 public:
  // centre and radius_m > 0. Callers check ranges (zones_file does).
  static Result<Geometry> circle(LatLonE7 centre, double radius_m);
  // rings[0] is the outer ring, the rest are holes; each ring is closed
  // (last position == first) with at least 4 positions. Refused: unclosed or
  // short rings, repeated consecutive positions, zero area, a ring that
  // intersects itself or another ring, a hole not inside the outer ring or
  // inside another hole, a shape reaching beyond kMaxZoneExtentM. Messages
  // name the ring and the edges (0-based), e.g.
  // "ring 0 intersects itself (edge 1 crosses edge 3)".
  static Result<Geometry> polygon(const std::vector<std::vector<LatLonE7>>& rings);
  // line with at least 2 positions, no repeated consecutive positions;
  // width_m > 0 (every point within width_m / 2 of the line is inside).
  static Result<Geometry> corridor(const std::vector<LatLonE7>& line, double width_m);

  Shape shape() const { return shape_; }
  const Vec3& centre() const { return plane_.centre(); }
  // Farthest boundary point from the centre, metres (great-circle).
  double extent_m() const { return extent_m_; }
  std::size_t vertex_count() const;

  // Signed distance to the boundary, metres: negative inside, positive
  // outside, about 0 on the boundary. Points more than 60 degrees from the
  // centre get a lower bound of their true distance (still positive).
  double signed_distance_m(const Vec3& p) const;
  // On the boundary counts as inside: signed distance <= kOnBoundaryM.
  bool contains(const Vec3& p) const;
  // The parts of the great-circle segment a->b that are inside the zone and
  // reach at least min_depth_m deep (signed distance <= -min_depth_m
  // somewhere in them), in order along the segment. Empty if the segment is
  // longer than kMaxCrossingSegmentM or misses the zone.
  std::vector<Crossing> crossings(const Vec3& a, const Vec3& b, double min_depth_m) const;

 private:
  double plane_distance(const PlanePoint& q) const;  // signed, metres
  Shape shape_ = Shape::kCircle;
  TangentPlane plane_;
  double radius_m_ = 0;      // circle
  double half_width_m_ = 0;  // corridor
  double extent_m_ = 0;
  std::vector<std::vector<PlanePoint>> rings_;  // polygon: outer then holes, closed; corridor: the line
};

}  // namespace eport::geofence
