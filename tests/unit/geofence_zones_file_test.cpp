// eport::geofence zones file: the sample Shanghai file loads (and a point in
// each terminal is inside its zone), properties and defaults, and the table
// of refused files, each message naming the feature and the problem.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>

#include "eport/geofence/zones_file.h"
#include "geofence_test_util.h"

using eport::geofence::parse_zones_file;
using eport::geofence::unit_vector;
using eport::geofence::Shape;
using geofence_test::ll;

namespace {

std::string collection(const std::string& features, const std::string& version = "\"version\":\"t1\",") {
  return "{\"type\":\"FeatureCollection\"," + version + "\"features\":[" + features + "]}";
}

std::string feature(const std::string& geometry, const std::string& props) {
  return "{\"type\":\"Feature\",\"geometry\":" + geometry + ",\"properties\":{" + props + "}}";
}

const std::string kSquare =
    "{\"type\":\"Polygon\",\"coordinates\":[[[122.05,30.63],[122.052,30.63],[122.052,30.632],[122.05,30.632],[122.05,30.63]]]}";
const std::string kPoint = "{\"type\":\"Point\",\"coordinates\":[122.05,30.63]}";
const std::string kLine = "{\"type\":\"LineString\",\"coordinates\":[[122.05,30.63],[122.06,30.64]]}";

}  // namespace

TEST_CASE("geofence zones file: the Shanghai sample loads, each terminal holds a point of it", "[geofence]") {
  auto set = eport::geofence::load_zones_file(std::string(EPORT_SOURCE_DIR) + "/docs/zones/shanghai-terminals.geojson");
  REQUIRE(set.ok());
  CHECK(set->version() == "shanghai-terminals-2026-12-01");
  REQUIRE(set->zones().size() == 10);
  CHECK(set->zones()[0].id == "donghai-bridge");  // sorted by id
  const auto& bridge = set->zones()[static_cast<std::size_t>(set->find("donghai-bridge"))];
  CHECK(bridge.geometry.shape() == Shape::kCorridor);
  CHECK(bridge.buffer_m == 30);
  CHECK(bridge.dwell.count() == 0);
  const auto& anchorage = set->zones()[static_cast<std::size_t>(set->find("yangshan-anchorage"))];
  CHECK(anchorage.geometry.shape() == Shape::kCircle);
  CHECK(anchorage.max_hdop_centi == 800);
  struct Row {
    const char* id;
    double lat, lon;
  };
  const Row inside[] = {
      {"yangshan-1", 30.638, 122.057},       {"yangshan-2", 30.6355, 122.080},     {"yangshan-3", 30.634, 122.108},
      {"yangshan-4", 30.624, 122.030},       {"donghai-bridge", 30.7525, 121.9960}, {"yangshan-anchorage", 30.59, 122.15},
      {"waigaoqiao-1", 31.357, 121.587},     {"waigaoqiao-2-3", 31.351, 121.613},  {"waigaoqiao-4-5", 31.343, 121.643},
      {"waigaoqiao-anchorage", 31.40, 121.70},
  };
  for (const auto& row : inside) {
    INFO(row.id);
    const auto i = set->find(row.id);
    REQUIRE(i >= 0);
    CHECK(set->zones()[static_cast<std::size_t>(i)].geometry.contains(unit_vector(ll(row.lat, row.lon))));
  }
}

TEST_CASE("geofence zones file: properties, defaults, altitude and unknown members", "[geofence]") {
  auto set = parse_zones_file(collection(
      feature(kSquare, "\"id\":\"sq\",\"name\":\"Square\",\"colour\":\"red\"") + "," +
      feature(kPoint, "\"id\":\"c\",\"name\":\"Circle\",\"radius_m\":200,\"buffer_m\":10,\"dwell_s\":0,\"max_hdop\":2.5") +
      "," + feature("{\"type\":\"LineString\",\"coordinates\":[[122.05,30.63,4.5],[122.06,30.64,4.5]]}",
                    "\"id\":\"l\",\"name\":\"Line\",\"width_m\":80")));
  REQUIRE(set.ok());
  const auto& sq = set->zones()[static_cast<std::size_t>(set->find("sq"))];
  CHECK(sq.buffer_m == eport::geofence::kDefaultBufferM);
  CHECK(sq.dwell.count() == eport::geofence::kDefaultDwellS);
  CHECK(sq.max_hdop_centi == 500);
  CHECK(sq.name == "Square");
  const auto& c = set->zones()[static_cast<std::size_t>(set->find("c"))];
  CHECK(c.buffer_m == 10);
  CHECK(c.dwell.count() == 0);
  CHECK(c.max_hdop_centi == 250);
  CHECK(set->find("l") >= 0);
  CHECK(set->find("nope") == -1);
  CHECK(parse_zones_file(collection(""))->zones().empty());
}

TEST_CASE("geofence zones file: refusals name the feature and the problem", "[geofence]") {
  struct Row {
    std::string file;
    std::string message;
  };
  const std::string sq = "\"id\":\"sq\",\"name\":\"Square\"";
  const Row table[] = {
      {"{\"type\":\"FeatureCollection\",", "zones file is not valid JSON: unexpected end of input, expected a string key at byte 28 (line 1, column 29)"},
      {"[]", "zones file: the top level is not an object (a GeoJSON FeatureCollection)"},
      {"{\"type\":\"Feature\",\"version\":\"1\",\"features\":[]}", "zones file: \"type\" must be \"FeatureCollection\""},
      {collection("", ""), "zones file: missing \"version\" (a string of 1 to 64 printable ASCII characters)"},
      {collection("", "\"version\":\"\","), "zones file: \"version\" \"\" is not 1 to 64 printable ASCII characters"},
      {collection("", "\"version\":\"a\\nb\","), "zones file: \"version\" \"a\\x0Ab\" is not 1 to 64 printable ASCII characters"},
      {"{\"type\":\"FeatureCollection\",\"version\":\"1\"}", "zones file: missing \"features\" array"},
      {collection("{\"a\":1,\"a\":2}"), "zones file is not valid JSON: duplicate key \"a\" (first at byte 56) at byte 62 (line 1, column 63)"},
      {collection("3"), "feature 0: is not an object"},
      {collection("{\"type\":\"Thing\",\"properties\":{\"id\":\"x\"}}"), "feature 0 (id \"x\"): \"type\" must be \"Feature\""},
      {collection("{\"type\":\"Feature\",\"geometry\":" + kSquare + "}"), "feature 0: missing \"properties\" object"},
      {collection(feature(kSquare, "\"name\":\"n\"")), "feature 0: missing properties.id (a string)"},
      {collection(feature(kSquare, "\"id\":\"a/b\",\"name\":\"n\"")),
       "feature 0 (id \"a/b\"): properties.id contains '/' at byte 2 (not allowed: + # / . * > space, control and non-ASCII bytes)"},
      {collection(feature(kSquare, "\"id\":\"" + std::string(65, 'x') + "\",\"name\":\"n\"")),
       "feature 0 (id \"" + std::string(65, 'x') + "\"): properties.id is 65 bytes long (at most 64)"},
      {collection(feature(kSquare, "\"id\":\"sq\"")), "feature 0 (id \"sq\"): missing properties.name (a string)"},
      {collection(feature(kSquare, sq) + "," + feature(kPoint, "\"id\":\"sq\",\"name\":\"n\",\"radius_m\":100")),
       "feature 1 (id \"sq\"): duplicate id (feature 0 has it too)"},
      {collection(feature("null", sq)), "feature 0 (id \"sq\"): missing \"geometry\" object"},
      {collection(feature("{\"type\":\"MultiPolygon\",\"coordinates\":[]}", sq)),
       "feature 0 (id \"sq\"): unknown geometry type \"MultiPolygon\" (Point with properties.radius_m, Polygon, or LineString with properties.width_m)"},
      {collection(feature("{\"type\":\"Polygon\"}", sq)), "feature 0 (id \"sq\"): geometry has no \"coordinates\""},
      {collection(feature(kPoint, sq)), "feature 0 (id \"sq\"): Point: missing properties.radius_m (a number, more than 0, at most 100000)"},
      {collection(feature(kPoint, sq + ",\"radius_m\":0")),
       "feature 0 (id \"sq\"): Point: properties.radius_m 0 is out of range (more than 0, at most 100000)"},
      {collection(feature(kPoint, sq + ",\"radius_m\":1e9")),
       "feature 0 (id \"sq\"): Point: properties.radius_m 1e9 is out of range (more than 0, at most 100000)"},
      {collection(feature(kPoint, sq + ",\"radius_m\":\"100\"")), "feature 0 (id \"sq\"): Point: properties.radius_m is a string, not a number"},
      {collection(feature(kPoint, sq + ",\"radius_m\":20")),
       "feature 0 (id \"sq\"): properties.buffer_m 25 is not less than properties.radius_m 20 (no fix could be far enough inside)"},
      {collection(feature(kLine, sq)), "feature 0 (id \"sq\"): LineString: missing properties.width_m (a number, more than 0, at most 10000)"},
      {collection(feature(kLine, sq + ",\"width_m\":-5")),
       "feature 0 (id \"sq\"): LineString: properties.width_m -5 is out of range (more than 0, at most 10000)"},
      {collection(feature(kLine, sq + ",\"width_m\":40")),
       "feature 0 (id \"sq\"): properties.buffer_m 25 is not less than half properties.width_m 40 (no fix could be far enough inside)"},
      {collection(feature(kSquare, sq + ",\"buffer_m\":-1")),
       "feature 0 (id \"sq\"): properties.buffer_m -1 is out of range (at least 0, at most 1000)"},
      {collection(feature(kSquare, sq + ",\"dwell_s\":1.5")), "feature 0 (id \"sq\"): properties.dwell_s 1.5 is not a whole number"},
      {collection(feature(kSquare, sq + ",\"dwell_s\":86401")),
       "feature 0 (id \"sq\"): properties.dwell_s 86401 is out of range (at least 0, at most 86400)"},
      {collection(feature(kSquare, sq + ",\"max_hdop\":0")),
       "feature 0 (id \"sq\"): properties.max_hdop 0 is out of range (more than 0, at most 99)"},
      {collection(feature("{\"type\":\"Point\",\"coordinates\":[122.05,95]}", sq + ",\"radius_m\":100")),
       "feature 0 (id \"sq\"): coordinates: the point: latitude 95 is out of range (-90 to 90)"},
      {collection(feature("{\"type\":\"Point\",\"coordinates\":[-180.5,30]}", sq + ",\"radius_m\":100")),
       "feature 0 (id \"sq\"): coordinates: the point: longitude -180.5 is out of range (-180 to 180)"},
      {collection(feature("{\"type\":\"Point\",\"coordinates\":[1e999,30]}", sq + ",\"radius_m\":100")),
       "zones file is not valid JSON: number out of range at byte 115 (line 1, column 116)"},
      {collection(feature("{\"type\":\"Polygon\",\"coordinates\":[[[122.05,30.63],[122.052],[122.052,30.632],[122.05,30.63]]]}", sq)),
       "feature 0 (id \"sq\"): coordinates: position 1 of ring 0 is not [longitude, latitude] (numbers, altitude optional)"},
      {collection(feature("{\"type\":\"Polygon\",\"coordinates\":[[[122.05,30.63],[122.052,30.63],[122.05,30.63]]]}", sq)),
       "feature 0 (id \"sq\"): polygon ring 0 has 3 positions (at least 4)"},
      {collection(feature("{\"type\":\"Polygon\",\"coordinates\":[[[122.05,30.63],[122.052,30.63],[122.052,30.632],[122.05,30.632]]]}", sq)),
       "feature 0 (id \"sq\"): polygon ring 0 is not closed (its last position differs from its first)"},
      {collection(feature("{\"type\":\"Polygon\",\"coordinates\":[[[122.05,30.63],[122.052,30.632],[122.052,30.63],[122.05,30.632],[122.05,30.63]]]}", sq)),
       "feature 0 (id \"sq\"): polygon ring 0 intersects itself (edge 0 crosses edge 2)"},
      {collection(feature("{\"type\":\"Polygon\",\"coordinates\":[]}", sq)),
       "feature 0 (id \"sq\"): coordinates: a Polygon needs an array of rings"},
      {collection(feature("{\"type\":\"LineString\",\"coordinates\":[[122.05,30.63]]}", sq + ",\"width_m\":100")),
       "feature 0 (id \"sq\"): corridor line has 1 positions (at least 2)"},
      {collection(feature("{\"type\":\"LineString\",\"coordinates\":[[121.0,30.0],[123.5,30.0]]}", sq + ",\"width_m\":100")),
       "feature 0 (id \"sq\"): corridor extends 120420 m from its centre (at most 100000)"},
  };
  for (const auto& row : table) {
    INFO("file: " << row.file);
    auto r = parse_zones_file(row.file);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() == row.message);
  }
}

TEST_CASE("geofence zones file: limits on zones and vertices are enforced", "[geofence]") {
  using namespace eport::geofence;
  std::string many;
  for (std::size_t i = 0; i <= kMaxZones; ++i) {
    many += (i ? "," : "") + feature(kPoint, "\"id\":\"z" + std::to_string(i) + "\",\"name\":\"n\",\"radius_m\":100");
  }
  CHECK(parse_zones_file(collection(many)).error() == "zones file has 2001 features (at most 2000 zones)");
  std::string ring = "[";
  for (std::size_t i = 0; i <= kMaxVerticesPerZone; ++i) ring += (i ? "," : "") + std::string("[122.05,30.63]");
  ring += "]";
  CHECK(parse_zones_file(collection(feature("{\"type\":\"Polygon\",\"coordinates\":[" + ring + "]}",
                                            "\"id\":\"big\",\"name\":\"n\"")))
            .error() == "feature 0 (id \"big\"): has more than 2000 positions");
  CHECK(parse_zones_file(std::string(kMaxFileBytes + 1, ' ')).error() == "zones file is 4194305 bytes (at most 4194304)");
}

TEST_CASE("geofence zones file: the example in docs/geofences.md parses as documented", "[geofence]") {
  std::ifstream in(std::string(EPORT_SOURCE_DIR) + "/docs/geofences.md");
  std::stringstream doc;
  doc << in.rdbuf();
  const std::string text = doc.str();
  const auto start = text.find("```json\n");
  REQUIRE(start != std::string::npos);
  const auto end = text.find("```", start + 8);
  REQUIRE(end != std::string::npos);
  auto set = parse_zones_file(text.substr(start + 8, end - start - 8));
  REQUIRE(set.ok());
  CHECK(set->version() == "terminals-2026-12-01");
  REQUIRE(set->zones().size() == 3);
  CHECK(set->zones()[static_cast<std::size_t>(set->find("donghai-bridge"))].geometry.shape() == Shape::kCorridor);
  CHECK(set->zones()[static_cast<std::size_t>(set->find("yangshan-anchorage"))].dwell.count() == 600);
}
