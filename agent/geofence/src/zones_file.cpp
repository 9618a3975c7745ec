// The zones file parser (eport/geofence/zones_file.h): GeoJSON through the
// bounded JSON reader, then every feature checked and turned into a Zone.
// Any problem refuses the whole file, naming the feature and the problem.
#include "eport/geofence/zones_file.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>

#include "eport/json/reader.h"
#include "eport/model/ids.h"

namespace eport::geofence {

namespace {

using json::Value;

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// One feature's problems: "feature 3 (id \"x\"): what".
class FeatureError {
 public:
  explicit FeatureError(std::size_t index) : prefix_("feature " + std::to_string(index)) {}
  void set_id(std::string_view id) { prefix_ += " (id " + model::quoted_id(id) + ")"; }
  Error operator()(const std::string& what) const { return Error{prefix_ + ": " + what}; }

 private:
  std::string prefix_;
};

// A number property: absent gives `fallback`; otherwise lo < v (or lo <= v
// when lo_inclusive) and v <= hi. `integer` also refuses fractions.
Result<double> number_property(const Value& props, const std::string& key, std::optional<double> fallback, double lo,
                               bool lo_inclusive, double hi, bool integer = false) {
  const Value* v = props.find(key);
  const std::string range = std::string(lo_inclusive ? "at least " : "more than ") + num(lo) + ", at most " + num(hi);
  if (v == nullptr || v->is_null()) {
    if (fallback) return *fallback;
    return Error{"missing properties." + key + " (a number, " + range + ")"};
  }
  if (!v->is_number()) return Error{"properties." + key + " is a " + std::string(Value::type_name(v->type())) + ", not a number"};
  const double d = v->as_number();
  if ((lo_inclusive ? d < lo : d <= lo) || d > hi) {
    return Error{"properties." + key + " " + v->text() + " is out of range (" + range + ")"};
  }
  if (integer && d != std::floor(d)) return Error{"properties." + key + " " + v->text() + " is not a whole number"};
  return d;
}

// One [longitude, latitude(, altitude)] position.
Result<LatLonE7> position(const Value& v, const std::string& where) {
  if (!v.is_array() || v.items().size() < 2 || v.items().size() > 3 || !v.items()[0].is_number() ||
      !v.items()[1].is_number() || (v.items().size() == 3 && !v.items()[2].is_number())) {
    return Error{"coordinates: " + where + " is not [longitude, latitude] (numbers, altitude optional)"};
  }
  const double lon = v.items()[0].as_number(), lat = v.items()[1].as_number();
  if (!std::isfinite(lon) || lon < -180.0 || lon > 180.0) {
    return Error{"coordinates: " + where + ": longitude " + v.items()[0].text() + " is out of range (-180 to 180)"};
  }
  if (!std::isfinite(lat) || lat < -90.0 || lat > 90.0) {
    return Error{"coordinates: " + where + ": latitude " + v.items()[1].text() + " is out of range (-90 to 90)"};
  }
  return LatLonE7{static_cast<std::int32_t>(std::llround(lat * 1e7)), static_cast<std::int32_t>(std::llround(lon * 1e7))};
}

Result<std::vector<LatLonE7>> positions(const Value& v, const std::string& what, std::size_t& counted) {
  if (!v.is_array()) return Error{"coordinates: " + what + " is not an array of positions"};
  std::vector<LatLonE7> out;
  for (std::size_t i = 0; i < v.items().size(); ++i) {
    if (++counted > kMaxVerticesPerZone) {
      return Error{"has more than " + std::to_string(kMaxVerticesPerZone) + " positions"};
    }
    auto p = position(v.items()[i], "position " + std::to_string(i) + " of " + what);
    if (!p.ok()) return Error{p.error()};
    out.push_back(*p);
  }
  return out;
}

struct Built {
  Zone zone;
  std::size_t vertices = 0;
};

Result<Built> feature(const Value& f, std::size_t index) {
  FeatureError err(index);
  if (!f.is_object()) return err("is not an object");
  const Value* props = f.find("properties");
  const Value* id = props && props->is_object() ? props->find("id") : nullptr;
  if (id && id->is_string()) err.set_id(id->text());
  const Value* type = f.find("type");
  if (!type || !type->is_string() || type->text() != "Feature") return err("\"type\" must be \"Feature\"");
  if (!props || !props->is_object()) return err("missing \"properties\" object");
  if (!id || !id->is_string()) return err("missing properties.id (a string)");
  if (auto why = model::topic_id_problem(id->text(), kMaxIdBytes); !why.empty()) {
    return err("properties.id " + why);
  }
  Built b;
  b.zone.id = id->text();
  const Value* name = props->find("name");
  if (!name || !name->is_string()) return err("missing properties.name (a string)");
  if (name->text().empty() || name->text().size() > kMaxNameBytes) {
    return err("properties.name is " + std::to_string(name->text().size()) + " bytes (1 to " +
               std::to_string(kMaxNameBytes) + ")");
  }
  b.zone.name = name->text();

  auto buffer = number_property(*props, "buffer_m", kDefaultBufferM, 0, true, kMaxBufferM);
  if (!buffer.ok()) return err(buffer.error());
  b.zone.buffer_m = *buffer;
  auto dwell = number_property(*props, "dwell_s", kDefaultDwellS, 0, true, kMaxDwellS, true);
  if (!dwell.ok()) return err(dwell.error());
  b.zone.dwell = std::chrono::seconds(static_cast<std::int64_t>(*dwell));
  auto hdop = number_property(*props, "max_hdop", kDefaultMaxHdop, 0, false, kMaxMaxHdop);
  if (!hdop.ok()) return err(hdop.error());
  b.zone.max_hdop_centi = static_cast<std::uint16_t>(std::llround(*hdop * 100));

  const Value* geometry = f.find("geometry");
  if (!geometry || !geometry->is_object()) return err("missing \"geometry\" object");
  const Value* gtype = geometry->find("type");
  const Value* coords = geometry->find("coordinates");
  if (!gtype || !gtype->is_string()) return err("geometry has no \"type\" string");
  const std::string& kind = gtype->text();
  if (kind != "Point" && kind != "Polygon" && kind != "LineString") {
    return err("unknown geometry type " + model::quoted_id(kind) +
               " (Point with properties.radius_m, Polygon, or LineString with properties.width_m)");
  }
  if (!coords) return err("geometry has no \"coordinates\"");

  if (kind == "Point") {
    auto radius = number_property(*props, "radius_m", std::nullopt, 0, false, kMaxRadiusM);
    if (!radius.ok()) return err("Point: " + radius.error());
    if (!(*radius > b.zone.buffer_m)) {
      return err("properties.buffer_m " + num(b.zone.buffer_m) + " is not less than properties.radius_m " +
                 num(*radius) + " (no fix could be far enough inside)");
    }
    auto centre = position(*coords, "the point");
    if (!centre.ok()) return err(centre.error());
    auto g = Geometry::circle(*centre, *radius);
    if (!g.ok()) return err("circle " + g.error());
    b.zone.geometry = std::move(*g);
    b.vertices = 1;
  } else if (kind == "LineString") {
    auto width = number_property(*props, "width_m", std::nullopt, 0, false, kMaxCorridorWidthM);
    if (!width.ok()) return err("LineString: " + width.error());
    if (!(*width / 2 > b.zone.buffer_m)) {
      return err("properties.buffer_m " + num(b.zone.buffer_m) + " is not less than half properties.width_m " +
                 num(*width) + " (no fix could be far enough inside)");
    }
    auto line = positions(*coords, "the line", b.vertices);
    if (!line.ok()) return err(line.error());
    auto g = Geometry::corridor(*line, *width);
    if (!g.ok()) return err("corridor " + g.error());
    b.zone.geometry = std::move(*g);
  } else {
    if (!coords->is_array() || coords->items().empty()) return err("coordinates: a Polygon needs an array of rings");
    std::vector<std::vector<LatLonE7>> rings;
    for (std::size_t r = 0; r < coords->items().size(); ++r) {
      auto ring = positions(coords->items()[r], "ring " + std::to_string(r), b.vertices);
      if (!ring.ok()) return err(ring.error());
      rings.push_back(std::move(*ring));
    }
    auto g = Geometry::polygon(rings);
    if (!g.ok()) return err("polygon " + g.error());
    b.zone.geometry = std::move(*g);
  }
  return b;
}

}  // namespace

Result<ZoneSet> parse_zones_file(std::string_view text) {
  if (text.size() > kMaxFileBytes) {
    return Error{"zones file is " + std::to_string(text.size()) + " bytes (at most " + std::to_string(kMaxFileBytes) + ")"};
  }
  json::ReaderLimits limits;
  limits.max_bytes = kMaxFileBytes;
  limits.max_depth = kMaxJsonDepth;
  limits.max_values = 4 * kMaxTotalVertices + 64 * kMaxZones;
  auto doc = json::parse(text, limits);
  if (!doc.ok()) return Error{"zones file is not valid JSON: " + doc.error()};
  const Value& root = *doc;
  if (!root.is_object()) return Error{"zones file: the top level is not an object (a GeoJSON FeatureCollection)"};
  const Value* type = root.find("type");
  if (!type || !type->is_string() || type->text() != "FeatureCollection") {
    return Error{"zones file: \"type\" must be \"FeatureCollection\""};
  }
  const Value* version = root.find("version");
  if (!version || !version->is_string()) {
    return Error{"zones file: missing \"version\" (a string of 1 to " + std::to_string(kMaxVersionBytes) +
                 " printable ASCII characters)"};
  }
  const std::string& v = version->text();
  bool printable = !v.empty() && v.size() <= kMaxVersionBytes;
  for (char c : v) printable = printable && c >= 0x20 && c <= 0x7E;
  if (!printable) {
    return Error{"zones file: \"version\" " + model::quoted_id(v) + " is not 1 to " + std::to_string(kMaxVersionBytes) +
                 " printable ASCII characters"};
  }
  const Value* features = root.find("features");
  if (!features || !features->is_array()) return Error{"zones file: missing \"features\" array"};
  if (features->items().size() > kMaxZones) {
    return Error{"zones file has " + std::to_string(features->items().size()) + " features (at most " +
                 std::to_string(kMaxZones) + " zones)"};
  }
  std::vector<Zone> zones;
  std::map<std::string, std::size_t, std::less<>> seen;
  std::size_t total = 0;
  for (std::size_t i = 0; i < features->items().size(); ++i) {
    auto built = feature(features->items()[i], i);
    if (!built.ok()) return Error{built.error()};
    FeatureError err(i);
    err.set_id(built->zone.id);
    auto [it, fresh] = seen.emplace(built->zone.id, i);
    if (!fresh) return err("duplicate id (feature " + std::to_string(it->second) + " has it too)");
    total += built->vertices;
    if (total > kMaxTotalVertices) {
      return err("brings the file above " + std::to_string(kMaxTotalVertices) + " positions in all");
    }
    zones.push_back(std::move(built->zone));
  }
  return ZoneSet::create(v, std::move(zones));
}

Result<ZoneSet> load_zones_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{path + ": cannot open"};
  std::string text;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxFileBytes) {
      return Error{path + ": zones file is more than " + std::to_string(kMaxFileBytes) + " bytes"};
    }
  }
  auto set = parse_zones_file(text);
  if (!set.ok()) return Error{path + ": " + set.error()};
  return set;
}

}  // namespace eport::geofence
