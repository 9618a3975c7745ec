// Zone geometry (eport/geofence/geometry.h): unit vectors, the gnomonic plane
// around each zone, validation of rings at construction, signed distances,
// and the march along a segment that finds where it passes through a zone.
#include "eport/geofence/geometry.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "eport/geofence/limits.h"

namespace eport::geofence {

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kE7ToRad = kPi / 180.0 / 1e7;
// Points farther than this from a zone's centre are not projected (the
// gnomonic plane is unbounded at 90 degrees).
// A ring enclosing less than this is degenerate (a line drawn as a polygon).
constexpr double kMinRingAreaM2 = 1.0;
const double kMinProjectDot = std::cos(60.0 * kPi / 180.0);

double dot(const Vec3& a, const Vec3& b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x};
}
double norm(const Vec3& a) { return std::sqrt(dot(a, a)); }
Vec3 scaled(const Vec3& a, double k) { return {a.x * k, a.y * k, a.z * k}; }

double orient(const PlanePoint& a, const PlanePoint& b, const PlanePoint& c) {
  return (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x);
}
int sign(double v) { return (v > 0) - (v < 0); }
// c is on segment ab, given that a, b, c are collinear.
bool within_box(const PlanePoint& a, const PlanePoint& b, const PlanePoint& c) {
  return c.x >= std::min(a.x, b.x) && c.x <= std::max(a.x, b.x) && c.y >= std::min(a.y, b.y) &&
         c.y <= std::max(a.y, b.y);
}
// Segments ab and cd share at least one point.
bool segments_touch(const PlanePoint& a, const PlanePoint& b, const PlanePoint& c, const PlanePoint& d) {
  if (std::max(a.x, b.x) < std::min(c.x, d.x) || std::max(c.x, d.x) < std::min(a.x, b.x) ||
      std::max(a.y, b.y) < std::min(c.y, d.y) || std::max(c.y, d.y) < std::min(a.y, b.y)) {
    return false;
  }
  const int o1 = sign(orient(a, b, c)), o2 = sign(orient(a, b, d));
  const int o3 = sign(orient(c, d, a)), o4 = sign(orient(c, d, b));
  if (o1 * o2 < 0 && o3 * o4 < 0) return true;
  if (o1 == 0 && within_box(a, b, c)) return true;
  if (o2 == 0 && within_box(a, b, d)) return true;
  if (o3 == 0 && within_box(c, d, a)) return true;
  if (o4 == 0 && within_box(c, d, b)) return true;
  return false;
}
// Consecutive edges ab, bc fold back onto each other (a spike): bc turns
// back and c lies within kOnBoundaryM of the line through ab.
bool folds_back(const PlanePoint& a, const PlanePoint& b, const PlanePoint& c) {
  const double ux = b.x - a.x, uy = b.y - a.y, vx = c.x - b.x, vy = c.y - b.y;
  return ux * vx + uy * vy < 0 && std::abs(ux * vy - uy * vx) <= kOnBoundaryM * std::hypot(ux, uy);
}

double segment_distance2(const PlanePoint& q, const PlanePoint& a, const PlanePoint& b) {
  const double dx = b.x - a.x, dy = b.y - a.y;
  const double len2 = dx * dx + dy * dy;
  double t = len2 > 0 ? ((q.x - a.x) * dx + (q.y - a.y) * dy) / len2 : 0.0;
  t = std::clamp(t, 0.0, 1.0);
  const double ex = a.x + t * dx - q.x, ey = a.y + t * dy - q.y;
  return ex * ex + ey * ey;
}

// Even-odd rule over one closed ring.
bool ring_contains(const std::vector<PlanePoint>& ring, const PlanePoint& q) {
  bool inside = false;
  for (std::size_t i = 0; i + 1 < ring.size(); ++i) {
    const PlanePoint& p1 = ring[i];
    const PlanePoint& p2 = ring[i + 1];
    if ((p1.y > q.y) != (p2.y > q.y)) {
      const double x = p1.x + (q.y - p1.y) * (p2.x - p1.x) / (p2.y - p1.y);
      if (q.x < x) inside = !inside;
    }
  }
  return inside;
}

double ring_area(const std::vector<PlanePoint>& ring) {
  double twice = 0;
  for (std::size_t i = 0; i + 1 < ring.size(); ++i) twice += ring[i].x * ring[i + 1].y - ring[i + 1].x * ring[i].y;
  return std::abs(twice) / 2;
}

std::string metres(double m) { return std::to_string(static_cast<long long>(std::llround(m))); }

// The centre of a set of positions: their normalised mean unit vector.
bool centre_of(const std::vector<LatLonE7>& points, Vec3& out) {
  Vec3 sum;
  for (const auto& p : points) {
    const Vec3 u = unit_vector(p);
    sum = {sum.x + u.x, sum.y + u.y, sum.z + u.z};
  }
  const double n = norm(sum);
  if (!(n > 1e-9 * static_cast<double>(points.size()))) return false;
  out = scaled(sum, 1.0 / n);
  return true;
}

Result<double> extent_of(const Vec3& centre, const std::vector<LatLonE7>& points, double margin_m) {
  double far = 0;
  for (const auto& p : points) far = std::max(far, great_circle_m(centre, unit_vector(p)));
  far += margin_m;
  if (far > kMaxZoneExtentM) {
    return Error{"extends " + metres(far) + " m from its centre (at most " + metres(kMaxZoneExtentM) + ")"};
  }
  return far;
}

}  // namespace

Vec3 unit_vector(LatLonE7 p) {
  const double lat = p.lat_e7 * kE7ToRad, lon = p.lon_e7 * kE7ToRad;
  const double cl = std::cos(lat);
  return {cl * std::cos(lon), cl * std::sin(lon), std::sin(lat)};
}

double great_circle_m(const Vec3& a, const Vec3& b) {
  return kEarthRadiusM * std::atan2(norm(cross(a, b)), dot(a, b));
}

TangentPlane::TangentPlane(const Vec3& centre) : c_(centre) {
  Vec3 east = cross(Vec3{0, 0, 1}, c_);
  const double n = norm(east);
  east = n > 1e-12 ? scaled(east, 1.0 / n) : Vec3{0, 1, 0};  // at a pole any east will do
  e_ = east;
  n_ = cross(c_, e_);
}

bool TangentPlane::project(const Vec3& p, PlanePoint& out) const {
  const double w = dot(p, c_);
  if (w < kMinProjectDot) return false;
  out = {kEarthRadiusM * dot(p, e_) / w, kEarthRadiusM * dot(p, n_) / w};
  return true;
}

Vec3 TangentPlane::unproject(const PlanePoint& q) const {
  const Vec3 v{c_.x + (q.x * e_.x + q.y * n_.x) / kEarthRadiusM, c_.y + (q.x * e_.y + q.y * n_.y) / kEarthRadiusM,
               c_.z + (q.x * e_.z + q.y * n_.z) / kEarthRadiusM};
  return scaled(v, 1.0 / norm(v));
}

Result<Geometry> Geometry::circle(LatLonE7 centre, double radius_m) {
  if (!(radius_m > 0) || radius_m > kMaxZoneExtentM) {
    return Error{"radius " + metres(radius_m) + " m is out of range (more than 0, at most " + metres(kMaxZoneExtentM) +
                 ")"};
  }
  Geometry g;
  g.shape_ = Shape::kCircle;
  g.plane_ = TangentPlane(unit_vector(centre));
  g.radius_m_ = radius_m;
  g.extent_m_ = radius_m;
  return g;
}

Result<Geometry> Geometry::polygon(const std::vector<std::vector<LatLonE7>>& rings) {
  if (rings.empty()) return Error{"has no rings"};
  for (std::size_t r = 0; r < rings.size(); ++r) {
    const auto& ring = rings[r];
    const std::string name = "ring " + std::to_string(r);
    if (ring.size() < 4) {
      return Error{name + " has " + std::to_string(ring.size()) + " positions (at least 4)"};
    }
    if (!(ring.front() == ring.back())) return Error{name + " is not closed (its last position differs from its first)"};
    for (std::size_t i = 1; i < ring.size(); ++i) {
      if (ring[i] == ring[i - 1]) {
        return Error{name + ": position " + std::to_string(i) + " repeats position " + std::to_string(i - 1)};
      }
    }
  }
  Geometry g;
  g.shape_ = Shape::kPolygon;
  Vec3 centre;
  const std::vector<LatLonE7> outer(rings[0].begin(), rings[0].end() - 1);
  if (!centre_of(outer, centre)) return Error{"has no centre (its positions cancel out)"};
  g.plane_ = TangentPlane(centre);
  std::vector<LatLonE7> all;
  for (const auto& ring : rings) all.insert(all.end(), ring.begin(), ring.end());
  auto extent = extent_of(centre, all, 0.0);
  if (!extent.ok()) return Error{extent.error()};
  g.extent_m_ = *extent;
  for (const auto& ring : rings) {
    std::vector<PlanePoint> projected(ring.size());
    for (std::size_t i = 0; i < ring.size(); ++i) g.plane_.project(unit_vector(ring[i]), projected[i]);
    g.rings_.push_back(std::move(projected));
  }
  // Each ring: no fold-back at a vertex, no contact between edges that are
  // not neighbours (O(n^2), n <= kMaxVerticesPerZone), a non-zero area.
  for (std::size_t r = 0; r < g.rings_.size(); ++r) {
    const auto& p = g.rings_[r];
    const std::size_t edges = p.size() - 1;
    const std::string name = "ring " + std::to_string(r);
    for (std::size_t i = 0; i < edges; ++i) {
      const std::size_t next = (i + 1) % edges;
      if (folds_back(p[i], p[i + 1], p[next + 1])) {
        return Error{name + " intersects itself (edge " + std::to_string(i) + " folds back onto edge " +
                     std::to_string(next) + ")"};
      }
      for (std::size_t j = i + 2; j < edges; ++j) {
        if (i == 0 && j == edges - 1) continue;  // neighbours across the closing vertex
        if (segments_touch(p[i], p[i + 1], p[j], p[j + 1])) {
          return Error{name + " intersects itself (edge " + std::to_string(i) + " crosses edge " + std::to_string(j) +
                       ")"};
        }
      }
    }
    if (ring_area(p) < kMinRingAreaM2) return Error{name + " has zero area (less than 1 m2)"};
  }
  // Rings do not touch each other; every hole lies inside the outer ring and
  // outside the other holes.
  for (std::size_t r = 1; r < g.rings_.size(); ++r) {
    for (std::size_t s = 0; s < r; ++s) {
      const auto& a = g.rings_[r];
      const auto& b = g.rings_[s];
      for (std::size_t i = 0; i + 1 < a.size(); ++i) {
        for (std::size_t j = 0; j + 1 < b.size(); ++j) {
          if (segments_touch(a[i], a[i + 1], b[j], b[j + 1])) {
            return Error{"ring " + std::to_string(r) + " touches or crosses ring " + std::to_string(s) + " (edge " +
                         std::to_string(i) + " of ring " + std::to_string(r) + ", edge " + std::to_string(j) +
                         " of ring " + std::to_string(s) + ")"};
          }
        }
      }
    }
    if (!ring_contains(g.rings_[0], g.rings_[r][0])) {
      return Error{"ring " + std::to_string(r) + " (a hole) is not inside ring 0"};
    }
    for (std::size_t s = 1; s < g.rings_.size(); ++s) {
      if (s != r && ring_contains(g.rings_[s], g.rings_[r][0])) {
        return Error{"ring " + std::to_string(r) + " (a hole) is inside ring " + std::to_string(s) + " (another hole)"};
      }
    }
  }
  return g;
}

Result<Geometry> Geometry::corridor(const std::vector<LatLonE7>& line, double width_m) {
  if (line.size() < 2) return Error{"line has " + std::to_string(line.size()) + " positions (at least 2)"};
  for (std::size_t i = 1; i < line.size(); ++i) {
    if (line[i] == line[i - 1]) {
      return Error{"line: position " + std::to_string(i) + " repeats position " + std::to_string(i - 1)};
    }
  }
  if (!(width_m > 0) || width_m > kMaxCorridorWidthM) {
    return Error{"width " + metres(width_m) + " m is out of range (more than 0, at most " + metres(kMaxCorridorWidthM) +
                 ")"};
  }
  Geometry g;
  g.shape_ = Shape::kCorridor;
  Vec3 centre;
  if (!centre_of(line, centre)) return Error{"has no centre (its positions cancel out)"};
  g.plane_ = TangentPlane(centre);
  g.half_width_m_ = width_m / 2;
  auto extent = extent_of(centre, line, g.half_width_m_);
  if (!extent.ok()) return Error{extent.error()};
  g.extent_m_ = *extent;
  std::vector<PlanePoint> projected(line.size());
  for (std::size_t i = 0; i < line.size(); ++i) g.plane_.project(unit_vector(line[i]), projected[i]);
  g.rings_.push_back(std::move(projected));
  return g;
}

std::size_t Geometry::vertex_count() const {
  std::size_t n = shape_ == Shape::kCircle ? 1 : 0;
  for (const auto& r : rings_) n += r.size();
  return n;
}

double Geometry::plane_distance(const PlanePoint& q) const {
  switch (shape_) {
    case Shape::kCircle:
      // The gnomonic radius is R tan(rho / R): atan gives the exact great-circle rho.
      return kEarthRadiusM * std::atan(std::hypot(q.x, q.y) / kEarthRadiusM) - radius_m_;
    case Shape::kCorridor: {
      double best = std::numeric_limits<double>::infinity();
      const auto& line = rings_[0];
      for (std::size_t i = 0; i + 1 < line.size(); ++i) best = std::min(best, segment_distance2(q, line[i], line[i + 1]));
      return std::sqrt(best) - half_width_m_;
    }
    case Shape::kPolygon: {
      double best = std::numeric_limits<double>::infinity();
      bool inside = false;
      for (const auto& ring : rings_) {
        if (ring_contains(ring, q)) inside = !inside;
        for (std::size_t i = 0; i + 1 < ring.size(); ++i) best = std::min(best, segment_distance2(q, ring[i], ring[i + 1]));
      }
      const double d = std::sqrt(best);
      return inside ? -d : d;
    }
  }
  return std::numeric_limits<double>::infinity();
}

double Geometry::signed_distance_m(const Vec3& p) const {
  PlanePoint q;
  if (!plane_.project(p, q)) return great_circle_m(p, plane_.centre()) - extent_m_;
  return plane_distance(q);
}

bool Geometry::contains(const Vec3& p) const { return signed_distance_m(p) <= kOnBoundaryM; }

std::vector<Crossing> Geometry::crossings(const Vec3& a, const Vec3& b, double min_depth_m) const {
  std::vector<Crossing> out;
  const double total = great_circle_m(a, b);
  if (!(total > 0) || total > kMaxCrossingSegmentM) return out;
  PlanePoint pa, pb;
  if (!plane_.project(a, pa) || !plane_.project(b, pb)) return out;
  const double dx = pb.x - pa.x, dy = pb.y - pa.y;
  const double len = std::hypot(dx, dy);
  if (!(len > 0)) return out;
  const double ux = dx / len, uy = dy / len;
  // Clip to the disc that holds the zone's image (radius R tan(extent / R), plus a metre).
  const double rc = kEarthRadiusM * std::tan(extent_m_ / kEarthRadiusM) + 1.0;
  const double along = -(pa.x * ux + pa.y * uy);  // s of the point nearest the centre
  const double off2 = (pa.x + along * ux) * (pa.x + along * ux) + (pa.y + along * uy) * (pa.y + along * uy);
  if (off2 > rc * rc) return out;
  const double half = std::sqrt(rc * rc - off2);
  const double s0 = std::max(0.0, along - half), s1 = std::min(len, along + half);
  if (s0 >= s1) return out;

  auto at = [&](double s) { return PlanePoint{pa.x + s * ux, pa.y + s * uy}; };
  // Every evaluation counts against one budget, bisections included, so a
  // segment running along an edge costs at most kMaxCrossingSteps of them.
  std::size_t budget = kMaxCrossingSteps;
  auto dist = [&](double s) {
    if (budget > 0) --budget;
    return plane_distance(at(s));
  };
  // The boundary between s_out (outside) and s_in (inside), by bisection.
  auto boundary = [&](double lo, double hi, bool lo_inside) {
    for (int k = 0; k < 40 && budget > 0; ++k) {
      const double mid = (lo + hi) / 2;
      if ((dist(mid) <= 0) == lo_inside) lo = mid;
      else hi = mid;
    }
    return (lo + hi) / 2;
  };
  auto fraction = [&](double s) {
    if (s <= 0) return 0.0;
    if (s >= len) return 1.0;
    return std::clamp(great_circle_m(a, plane_.unproject(at(s))) / total, 0.0, 1.0);
  };
  constexpr double kMinStepM = 0.05;
  double s = s0, d = dist(s);
  bool inside = d <= 0;
  double enter = s, deepest = d;
  // Sphere tracing: the signed distance changes by at most 1 m per metre, so
  // a step of d (outside) cannot jump over the zone; inside, half the depth
  // samples the depth finely enough to tell whether it reaches min_depth_m.
  while (s < s1 && budget > 0) {
    const double ns = std::min(s1, s + std::max(inside ? -d / 2 : d, kMinStepM));
    const double nd = dist(ns);
    if (!inside && nd <= 0) {
      enter = boundary(s, ns, false);
      inside = true;
      deepest = nd;
    } else if (inside && nd > 0) {
      if (deepest <= -min_depth_m) out.push_back({fraction(enter), fraction(boundary(s, ns, true))});
      inside = false;
    }
    if (inside) deepest = std::min(deepest, nd);
    s = ns;
    d = nd;
  }
  if (inside && deepest <= -min_depth_m) out.push_back({fraction(enter), fraction(s)});
  return out;
}

}  // namespace eport::geofence
