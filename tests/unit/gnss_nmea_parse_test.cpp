// Parser tests: good sentences of every type and talker, the exact integer
// conversions (angles, speeds, courses, DOP, time, date), and tables of
// malformed sentences, each with the error text it must produce.
#include <catch2/catch.hpp>

#include <cctype>
#include <string>
#include <vector>

#include "eport/gnss/nmea.h"
#include "gnss_test_util.h"

using eport::gnss::Coord;
using eport::gnss::Gga;
using eport::gnss::Gsa;
using eport::gnss::Gsv;
using eport::gnss::parse_sentence;
using eport::gnss::ParseOptions;
using eport::gnss::RejectReason;
using eport::gnss::Rmc;
using eport::gnss::Sentence;
using eport::gnss::Talker;
using eport::gnss::UtcDate;
using eport::gnss::Vtg;
using eport::gnss::testing::with_checksum;
using eport::model::FixQuality;

namespace {

// Parses a body given a correct checksum and CR LF; fails the test on error.
Sentence ok(std::string_view body) {
  auto r = parse_sentence(with_checksum(body) + "\r\n");
  INFO(body);
  if (!r) FAIL(r.error().message);
  return r.value();
}

Gga gga(std::string_view body) { return std::get<Gga>(ok(body).body); }
Rmc rmc(std::string_view body) { return std::get<Rmc>(ok(body).body); }
Vtg vtg(std::string_view body) { return std::get<Vtg>(ok(body).body); }

// The error text for a line, or "(parsed)".
std::string err(std::string_view line, const ParseOptions& o = {}) {
  auto r = parse_sentence(line, o);
  return r ? std::string("(parsed)") : r.error().message;
}

// GGA with one latitude/longitude pair substituted.
std::int32_t lat_of(std::string_view lat, std::string_view ns) {
  return gga("GPGGA,120000," + std::string(lat) + "," + std::string(ns) + ",12203.6,E,1,08,0.9,5.0,M,9.4,M,,")
      .coord->lat_e7;
}
std::int32_t lon_of(std::string_view lon, std::string_view ew) {
  return gga("GPGGA,120000,3037.1234,N," + std::string(lon) + "," + std::string(ew) + ",1,08,0.9,5.0,M,9.4,M,,")
      .coord->lon_e7;
}

const std::string kGga = "GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,";

}  // namespace

TEST_CASE("GGA with a fix yields every field in integer units", "[gnss]") {
  const auto s = ok("GNGGA,235841.00,3039.70780,N,12201.44416,E,1,17,0.99,14.2,M,9.4,M,,");
  CHECK(s.talker == Talker::kGnss);
  const auto& g = std::get<Gga>(s.body);
  CHECK(g.time_ms == ((23U * 60 + 58) * 60 + 41) * 1000U);
  // 39.70780'/60 = 0.66179666.. deg -> 0.6617967; 1.44416'/60 = 0.02406933.. -> 0.0240693
  CHECK(g.coord == Coord{306617967, 1220240693});
  CHECK(g.quality == FixQuality::kGps);
  CHECK(g.satellites == 17);
  CHECK(g.hdop_centi == 99);
  CHECK(g.altitude_cm == 1420);
  CHECK(g.geoid_separation_cm == 940);
}

TEST_CASE("the classic GGA example from the NMEA literature parses with its published checksum", "[gnss]") {
  auto r = parse_sentence("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n");
  REQUIRE(r.ok());
  const auto& g = std::get<Gga>(r->body);
  CHECK(g.time_ms == 45'319'000U);
  CHECK(g.coord == Coord{481173000, 115166667});  // 11 deg 31.000' = 11.51666666.. -> 11.5166667
  CHECK(g.hdop_centi == 90);
}

TEST_CASE("every supported talker is recognised, GB as BeiDou", "[gnss]") {
  const std::string rest = kGga.substr(2);
  CHECK(ok("GP" + rest).talker == Talker::kGps);
  CHECK(ok("GN" + rest).talker == Talker::kGnss);
  CHECK(ok("GL" + rest).talker == Talker::kGlonass);
  CHECK(ok("GA" + rest).talker == Talker::kGalileo);
  CHECK(ok("BD" + rest).talker == Talker::kBeidou);
  CHECK(ok("GB" + rest).talker == Talker::kBeidou);
  CHECK(eport::gnss::talker_name(Talker::kBeidou) == "BD");
}

TEST_CASE("3037.1234,N gives 306187233: angles convert exactly, halves round away from zero", "[gnss]") {
  CHECK(lat_of("3037.1234", "N") == 306187233);   // 30.61872333..
  CHECK(lat_of("3037.1234", "S") == -306187233);
  CHECK(lat_of("3037.123456789", "N") == 306187243);  // 9 decimals: 30.6187242798..
  // 0.0000030' = 0.00000005 deg = exactly half a unit: rounds up, mirrored in the south.
  CHECK(lat_of("0000.0000030", "N") == 1);
  CHECK(lat_of("0000.0000030", "S") == -1);
  CHECK(lat_of("0000.0000029", "N") == 0);
  CHECK(lat_of("9000.0000", "N") == 900000000);
  CHECK(lat_of("037.5", "N") == 6250000);  // a receiver that drops the leading zero
  CHECK(lon_of("12203.6", "E") == 1220600000);
  CHECK(lon_of("18000.0000", "W") == -1800000000);
  CHECK(lon_of("00000.0000", "E") == 0);
}

TEST_CASE("RMC yields time, status, position, speed, course and date", "[gnss]") {
  const auto r = rmc("GNRMC,235822.00,A,3039.88188,N,12201.27744,E,42.765,140.50,140524,,,A,V");
  CHECK(r.time_ms == 86'302'000U);
  CHECK(r.active);
  CHECK(r.coord == Coord{306646980, 1220212907});
  CHECK(r.speed_cm_s == 2200);  // 42.765 kn * 463/9 = 2200.02 cm/s
  CHECK(r.course_cdeg == 14050);
  CHECK(r.date == UtcDate{2024, 5, 14});
  CHECK(r.mode == 'A');

  // NMEA 2.0 (11 fields, no mode), the textbook example with its checksum.
  auto old = parse_sentence("$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A");
  REQUIRE(old.ok());
  const auto& o = std::get<Rmc>(old->body);
  CHECK(o.date == UtcDate{1994, 3, 23});
  CHECK(o.speed_cm_s == 1152);  // 22.4 kn = 1152.36 cm/s
  CHECK(o.course_cdeg == 8440);
  CHECK_FALSE(o.mode.has_value());
}

TEST_CASE("RMC without a fix has empty fields read as absent, never as zero", "[gnss]") {
  const auto r = rmc("GNRMC,235820.00,V,,,,,,,140524,,,N,V");
  CHECK_FALSE(r.active);
  CHECK_FALSE(r.coord.has_value());
  CHECK_FALSE(r.speed_cm_s.has_value());
  CHECK_FALSE(r.course_cdeg.has_value());
  CHECK(r.date == UtcDate{2024, 5, 14});
  CHECK(r.mode == 'N');
}

TEST_CASE("VTG speed prefers km/h, falls back to knots, and course 360 wraps to 0", "[gnss]") {
  auto v = vtg("GPVTG,054.7,T,034.4,M,005.5,N,010.2,K");
  CHECK(v.course_cdeg == 5470);
  CHECK(v.speed_cm_s == 283);  // 10.2 km/h = 283.33 cm/s
  v = vtg("GPVTG,054.7,T,,M,005.5,N,,K,A");
  CHECK(v.speed_cm_s == 283);  // 5.5 kn = 282.94 cm/s
  CHECK(v.mode == 'A');
  CHECK(vtg("GNVTG,140.50,T,,M,42.765,N,79.200,K,A").speed_cm_s == 2200);
  CHECK(vtg("GNVTG,360.00,T,,M,1.0,N,,K,A").course_cdeg == 0);
  CHECK(vtg("GNVTG,359.996,T,,M,1.0,N,,K,A").course_cdeg == 0);  // rounds to 360.00
  CHECK(vtg("GNVTG,,T,,M,0.018,N,,K,A").speed_cm_s == 1);  // 0.926 cm/s
  CHECK(vtg("GNVTG,,T,,M,,N,0.018,K,A").speed_cm_s == 1);  // exactly 0.5 cm/s: rounds up
  const auto none = vtg("GNVTG,,T,,M,,N,,K,N");
  CHECK_FALSE(none.course_cdeg.has_value());
  CHECK_FALSE(none.speed_cm_s.has_value());
}

TEST_CASE("lower-case checksum digits are accepted", "[gnss]") {
  std::string line = with_checksum("GPVTG,054.7,T,034.4,M,005.5,N,010.2,K");
  line[line.size() - 2] = static_cast<char>(std::tolower(line[line.size() - 2]));
  line[line.size() - 1] = static_cast<char>(std::tolower(line[line.size() - 1]));
  CHECK(parse_sentence(line).ok());
}

TEST_CASE("GSA: used satellite ids, DOPs and the NMEA 4.10 system id", "[gnss]") {
  auto g = std::get<Gsa>(ok("GNGSA,A,3,02,05,12,13,15,18,,,,,,,1.35,0.84,1.05,1").body);
  CHECK(g.selection == 'A');
  CHECK(g.fix_type == 3);
  CHECK(g.used_count == 6);
  CHECK(g.used_ids[5] == 18);
  CHECK(g.pdop_centi == 135);
  CHECK(g.hdop_centi == 84);
  CHECK(g.vdop_centi == 105);
  CHECK(g.system_id == 1);
  g = std::get<Gsa>(ok("GPGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1").body);  // NMEA 3.0, gaps
  CHECK(g.used_count == 5);
  CHECK(g.used_ids[2] == 9);
  CHECK_FALSE(g.system_id.has_value());
  g = std::get<Gsa>(ok("GNGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99,4").body);
  CHECK(g.fix_type == 1);
  CHECK(g.used_count == 0);
  CHECK(g.hdop_centi == 9999);
}

TEST_CASE("GSV: satellites in view per constellation, with and without signal id", "[gnss]") {
  auto s = ok("GPGSV,2,1,08,02,24,074,42,05,56,185,,12,41,084,35,13,59,121,44,1");
  auto g = std::get<Gsv>(s.body);
  CHECK(g.total_messages == 2);
  CHECK(g.message_number == 1);
  CHECK(g.in_view == 8);
  CHECK(g.count == 4);
  CHECK(g.satellites[0].id == 2);
  CHECK(g.satellites[0].elevation_deg == 24);
  CHECK(g.satellites[0].azimuth_deg == 74);
  CHECK(g.satellites[0].snr_db == 42);
  CHECK_FALSE(g.satellites[1].snr_db.has_value());  // in view, not tracked
  CHECK(g.signal_id == 1);
  g = std::get<Gsv>(ok("GPGSV,3,3,11,22,42,067,42").body);
  CHECK(g.count == 1);
  CHECK_FALSE(g.signal_id.has_value());
  g = std::get<Gsv>(ok("GLGSV,1,1,00").body);
  CHECK(g.count == 0);
  CHECK(ok("GAGSV,1,1,04,04,38,148,,11,23,047,,19,15,343,,36,70,252,,7").talker == Talker::kGalileo);
  CHECK(ok("BDGSV,2,2,06,26,11,242,,39,38,003,,1").talker == Talker::kBeidou);
  CHECK(ok("GBGSV,1,1,01,26,11,242,30,1").talker == Talker::kBeidou);
}

TEST_CASE("time and date fields: fractions, leap second, leap day, century", "[gnss]") {
  CHECK(gga("GPGGA,235959.999,,,,,0,,,,,,,,").time_ms == 86'399'999U);
  CHECK(gga("GPGGA,123456.7891,,,,,0,,,,,,,,").time_ms == 45'296'789U);  // truncated to ms
  CHECK(gga("GPGGA,235960.00,,,,,0,,,,,,,,").time_ms == 86'399'999U);    // leap second
  CHECK(rmc("GPRMC,000000,V,,,,,,,290224,,").date == UtcDate{2024, 2, 29});
  CHECK(rmc("GPRMC,000000,V,,,,,,,010180,,").date == UtcDate{1980, 1, 1});
  CHECK(rmc("GPRMC,000000,V,,,,,,,311279,,").date == UtcDate{2079, 12, 31});
  CHECK(eport::gnss::utc_ms(UtcDate{1970, 1, 1}, 0) == 0);
  CHECK(eport::gnss::utc_ms(UtcDate{2024, 5, 15}, 49'000) == 1'715'731'249'000ULL);
  CHECK(eport::gnss::utc_ms(UtcDate{2000, 3, 1}, 0) == 951'868'800'000ULL);
}

TEST_CASE("DOP, altitude and speed round half up on the magnitude", "[gnss]") {
  CHECK(gga("GPGGA,120000,,,,,0,,0.995,,,,,,").hdop_centi == 100);
  CHECK(gga("GPGGA,120000,,,,,0,,0.994,,,,,,").hdop_centi == 99);
  CHECK(gga("GPGGA,120000,,,,,0,,,-12.345,M,,,,").altitude_cm == -1235);
  CHECK(gga("GPGGA,120000,,,,,0,,,12.344,M,,,,").altitude_cm == 1234);
  CHECK(rmc("GPRMC,120000,A,3037.1234,N,12203.6,E,1273.9,,140524,,").speed_cm_s == 65535);  // 655.35 m/s
}

TEST_CASE("a sentence with every data field empty parses with nothing set", "[gnss]") {
  const auto g = gga("GPGGA,,,,,,,,,,,,,,");
  CHECK(g == Gga{});
}

TEST_CASE("GGA with one field emptied: absent, or rejected when it breaks the position", "[gnss]") {
  // Fields of kGga after the address, numbered from 1 as in the error texts.
  const std::vector<std::string> fields = {"123519", "4807.038", "N", "01131.000", "E", "1", "08",
                                           "0.9", "545.4", "M", "46.9", "M", "", ""};
  struct Row {
    std::size_t field;
    std::string expect;  // error text, or "" when it must parse
  };
  const std::vector<Row> rows = {
      {1, ""},
      {2, "GGA: field 2 (latitude) empty while the rest of the position is set"},
      {3, "GGA: field 3 (N/S) empty while the rest of the position is set"},
      {4, "GGA: field 4 (longitude) empty while the rest of the position is set"},
      {5, "GGA: field 5 (E/W) empty while the rest of the position is set"},
      {6, ""}, {7, ""}, {8, ""}, {9, ""}, {10, ""}, {11, ""}, {12, ""}, {13, ""}, {14, ""},
  };
  for (const auto& row : rows) {
    std::string body = "GPGGA";
    for (std::size_t i = 0; i < fields.size(); ++i) body += "," + (i + 1 == row.field ? std::string() : fields[i]);
    INFO("field " << row.field << ": " << body);
    auto r = parse_sentence(with_checksum(body));
    if (row.expect.empty()) {
      REQUIRE(r.ok());
      const auto& g = std::get<Gga>(r->body);
      switch (row.field) {
        case 1: CHECK_FALSE(g.time_ms.has_value()); break;
        case 6: CHECK_FALSE(g.quality.has_value()); break;
        case 7: CHECK_FALSE(g.satellites.has_value()); break;
        case 8: CHECK_FALSE(g.hdop_centi.has_value()); break;
        case 9: CHECK_FALSE(g.altitude_cm.has_value()); break;
        case 11: CHECK_FALSE(g.geoid_separation_cm.has_value()); break;
        default: CHECK(g.coord.has_value()); break;
      }
    } else {
      REQUIRE_FALSE(r.ok());
      CHECK(r.error().message == row.expect);
      CHECK(r.error().reason == RejectReason::kBadField);
    }
  }
}

TEST_CASE("RMC, VTG, GSA and GSV with one field emptied parse with that field absent", "[gnss]") {
  const std::vector<std::pair<std::string, std::vector<std::string>>> sentences = {
      {"GNRMC", {"235822.00", "A", "", "", "", "", "42.765", "140.50", "140524", "", "", "A", "V"}},
      {"GNVTG", {"140.50", "T", "", "M", "42.765", "N", "79.200", "K", "A"}},
      {"GNGSA", {"A", "3", "02", "05", "12", "", "", "", "", "", "", "", "", "", "1.35", "0.84", "1.05", "1"}},
      {"GPGSV", {"2", "1", "08", "02", "24", "074", "42", "05", "56", "185", "30", "1"}},
  };
  for (const auto& [address, fields] : sentences) {
    for (std::size_t k = 0; k < fields.size(); ++k) {
      std::string body = address;
      for (std::size_t i = 0; i < fields.size(); ++i) body += "," + (i == k ? std::string() : fields[i]);
      INFO(body);
      auto r = parse_sentence(with_checksum(body));
      // GSV's message counters are the only fields that must be present.
      if (address == "GPGSV" && k < 2) {
        CHECK_FALSE(r.ok());
      } else {
        CHECK(r.ok());
      }
    }
  }
}

TEST_CASE("malformed sentences are rejected with a message naming the fault", "[gnss]") {
  struct Row {
    std::string line;
    RejectReason reason;
    std::string message;
  };
  const std::string nul_line("$GPGGA,1235\0" "19,4807.038,N*47", 27);
  const std::vector<Row> rows = {
      // framing
      {"\r\n", RejectReason::kEmpty, "empty line"},
      {"$GPTXT," + std::string(80, 'A') + "*00", RejectReason::kTooLong, "too long (>82 chars): 92 with CR LF"},
      {nul_line, RejectReason::kBadByte, "invalid byte 0x00 at offset 11"},
      {"\xff\xfe$GPGGA,123519*47", RejectReason::kBadByte, "invalid byte 0xFF at offset 0"},
      {"$GPGGA,\t123519*47", RejectReason::kBadByte, "invalid byte 0x09 at offset 7"},
      {"$GPGGA,123519$GPRMC,123519*47", RejectReason::kBadByte, "reserved character '$' at offset 13"},
      {"GPGGA,123519,4807.038,N*47", RejectReason::kNoDollar, "does not start with '$': 'GPGGA,12'"},
      {"!AIVDM,1,1,,A,13aEOK?P00PD2wVMdLDRhgvL289?,0*26", RejectReason::kNoDollar,
       "does not start with '$': '!AIVDM,1'"},
      // checksum
      {"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*48", RejectReason::kBadChecksum,
       "bad checksum: expected 47 got 48"},
      {"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,", RejectReason::kMissingChecksum,
       "missing checksum (*hh)"},
      {"$GPGGA,123519,4807.0", RejectReason::kMissingChecksum, "missing checksum (*hh)"},  // cut mid-line
      {"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*4G", RejectReason::kBadChecksumFormat,
       "checksum field not two hex digits: '4G'"},
      {"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*4", RejectReason::kBadChecksumFormat,
       "checksum field not two hex digits: '4'"},
      {"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*", RejectReason::kBadChecksumFormat,
       "checksum field not two hex digits: ''"},
      {"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*470", RejectReason::kBadChecksumFormat,
       "checksum field not two hex digits: '470'"},
      // address
      {with_checksum("XXGGA,123519,,,,,0,,,,,,,,"), RejectReason::kUnknownTalker, "unknown talker XX in XXGGA"},
      {with_checksum("GPGLL,4916.45,N,12311.12,W,225444,A"), RejectReason::kUnsupportedType,
       "unsupported sentence type GLL"},
      {with_checksum("GNZDA,201530.00,04,07,2002,00,00"), RejectReason::kUnsupportedType,
       "unsupported sentence type ZDA"},
      {with_checksum("PUBX,00,081350.00,4717.113210,N"), RejectReason::kBadAddress,
       "proprietary sentence PUBX not supported"},
      {with_checksum("GPGG,123519"), RejectReason::kBadAddress, "bad address field 'GPGG'"},
      {with_checksum("gpgga,123519"), RejectReason::kBadAddress, "bad address field 'gpgga'"},
      {with_checksum(""), RejectReason::kBadAddress, "bad address field ''"},
      // field count
      {with_checksum("GPGGA,123519,4807.038,N"), RejectReason::kFieldCount, "GGA: truncated: 3 fields, expected 14"},
      {with_checksum("GPGGA"), RejectReason::kFieldCount, "GGA: truncated: 0 fields, expected 14"},
      {with_checksum(kGga + ",7"), RejectReason::kFieldCount, "GGA: too many fields: 15, expected 14"},
      {with_checksum("GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394"), RejectReason::kFieldCount,
       "RMC: truncated: 9 fields, expected 11 to 13"},
      {with_checksum("GPGSV,1,1,01,05,45,123"), RejectReason::kFieldCount,
       "GSV: 6 fields, expected 3 + 4 per satellite (+1 signal id)"},
      {with_checksum("GPGSV" + std::string(24, ',')), RejectReason::kFieldCount, "GSV: too many fields: more than 23"},
      // non-numeric fields
      {with_checksum("GPGGA,123519,4807.038,N,01131.000,E,x,08,0.9,545.4,M,46.9,M,,"), RejectReason::kBadField,
       "GGA: field 6 (quality) not a number: 'x'"},
      {with_checksum("GPGGA,123519,4807.038,N,01131.000,E,1.5,08,0.9,545.4,M,46.9,M,,"), RejectReason::kBadField,
       "GGA: field 6 (quality) not an integer: '1.5'"},
      {with_checksum("GPGGA,123519,4807.038,N,01131.000,E,1,ab,0.9,545.4,M,46.9,M,,"), RejectReason::kBadField,
       "GGA: field 7 (satellites) not a number: 'ab'"},
      {with_checksum("GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9.1,545.4,M,46.9,M,,"), RejectReason::kBadField,
       "GGA: field 8 (HDOP) not a number: '0.9.1'"},
      {with_checksum("GPGGA,123519,4807.038,N,01131.000,E,1,08,-0.9,545.4,M,46.9,M,,"), RejectReason::kBadField,
       "GGA: field 8 (HDOP) not a number: '-0.9'"},
      {with_checksum("GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,1e3,M,46.9,M,,"), RejectReason::kBadField,
       "GGA: field 9 (altitude) not a number: '1e3'"},
      {with_checksum("GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,F,46.9,M,,"), RejectReason::kBadField,
       "GGA: field 10 (altitude unit) not one of M: 'F'"},
      {with_checksum("GPGGA,12:35:19,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"), RejectReason::kBadField,
       "GGA: field 1 (time) not in hhmmss.ss form: '12:35:19'"},
      {with_checksum("GPGGA,123519,48O7.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"), RejectReason::kBadField,
       "GGA: field 2 (latitude) not a number: '48O7.038'"},
      {with_checksum("GPGGA,123519,48,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"), RejectReason::kBadField,
       "GGA: field 2 (latitude) not in ddmm.mmmm form: '48'"},
      {with_checksum("GPGGA,123519,4807.0000000001,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"),
       RejectReason::kBadField, "GGA: field 2 (latitude) has too many decimals: '4807.0000000001'"},
      {with_checksum("GPGGA,123519,4807.038,X,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"), RejectReason::kBadField,
       "GGA: field 3 (N/S) not N or S: 'X'"},
      {with_checksum("GPGGA,123519,4807.038,N,01131.000,e,1,08,0.9,545.4,M,46.9,M,,"), RejectReason::kBadField,
       "GGA: field 5 (E/W) not E or W: 'e'"},
      {with_checksum("GPRMC,123519,X,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W"), RejectReason::kBadField,
       "RMC: field 2 (status) not one of AV: 'X'"},
      {with_checksum("GPRMC,123519,A,4807.038,N,01131.000,E,fast,084.4,230394,003.1,W"), RejectReason::kBadField,
       "RMC: field 7 (speed) not a number: 'fast'"},
      {with_checksum("GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,23.394,003.1,W"), RejectReason::kBadField,
       "RMC: field 9 (date) not in ddmmyy form: '23.394'"},
      {with_checksum("GPVTG,054.7,X,034.4,M,005.5,N,010.2,K"), RejectReason::kBadField,
       "VTG: field 2 (T) not one of T: 'X'"},
      {with_checksum("GPGSA,A,3,04,x5,,09,12,,,24,,,,,2.5,1.3,2.1"), RejectReason::kBadField,
       "GSA: field 4 (satellite id) not a number: 'x5'"},
      {with_checksum("GPGSV,2,3,08,02,24,074,42"), RejectReason::kBadField,
       "GSV: field 2 (message number) not in 1..total messages: '3'"},
      // out of range
      {with_checksum("GPGGA,123519,9100.000,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"), RejectReason::kOutOfRange,
       "GGA: field 2 (latitude) out of range (> 90 deg): '9100.000'"},
      {with_checksum("GPGGA,123519,9000.001,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"), RejectReason::kOutOfRange,
       "GGA: field 2 (latitude) out of range (> 90 deg): '9000.001'"},
      {with_checksum("GPGGA,123519,4807.038,N,18100.000,E,1,08,0.9,545.4,M,46.9,M,,"), RejectReason::kOutOfRange,
       "GGA: field 4 (longitude) out of range (> 180 deg): '18100.000'"},
      {with_checksum("GPGGA,123519,4860.000,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"), RejectReason::kBadField,
       "GGA: field 2 (latitude) minutes >= 60: '4860.000'"},
      {with_checksum("GPGGA,123519,4807.038,N,01160.5,E,1,08,0.9,545.4,M,46.9,M,,"), RejectReason::kBadField,
       "GGA: field 4 (longitude) minutes >= 60: '01160.5'"},
      {with_checksum("GPGGA,123519,4807.038,N,01131.000,E,9,08,0.9,545.4,M,46.9,M,,"), RejectReason::kOutOfRange,
       "GGA: field 6 (quality) out of range: '9'"},
      {with_checksum("GPGGA,246000,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"), RejectReason::kBadField,
       "GGA: field 1 (time) out of range: '246000'"},
      {with_checksum("GPGGA,123519,4807.038,N,01131.000,E,1,08,700,545.4,M,46.9,M,,"), RejectReason::kOutOfRange,
       "GGA: field 8 (HDOP) out of range: '700'"},
      {with_checksum("GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,310224,003.1,W"), RejectReason::kBadField,
       "RMC: field 9 (date) out of range: '310224'"},
      {with_checksum("GPRMC,123519,A,4807.038,N,01131.000,E,022.4,360.01,230394,003.1,W"), RejectReason::kOutOfRange,
       "RMC: field 8 (course) out of range: '360.01'"},
      {with_checksum("GPRMC,123519,A,4807.038,N,01131.000,E,2000,084.4,230394,003.1,W"), RejectReason::kOutOfRange,
       "RMC: field 7 (speed) out of range: '2000'"},
      {with_checksum("GPVTG,,T,,M,1234567890123456789,N,,K"), RejectReason::kBadField,
       "VTG: field 5 (speed knots) has too many digits: '1234567890123456789'"},
      {with_checksum("GPGSA,A,0,04,05,,09,12,,,24,,,,,2.5,1.3,2.1"), RejectReason::kOutOfRange,
       "GSA: field 2 (fix type) out of range: '0'"},
      {with_checksum("GPGSV,1,1,01,05,91,123,40"), RejectReason::kOutOfRange,
       "GSV: field 5 (elevation) out of range: '91'"},
  };
  for (const auto& row : rows) {
    INFO(row.line);
    auto r = parse_sentence(row.line);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message == row.message);
    CHECK(eport::gnss::reject_reason_name(r.error().reason) == eport::gnss::reject_reason_name(row.reason));
  }
}

TEST_CASE("length limit is 82 characters counting CR LF, and configurable", "[gnss]") {
  // 80 characters without CR LF is the longest accepted.
  std::string body = "GPGSV,1,1,04,01,01,001,01,02,02,002,02,03,03,003,03,04,04,004,04,1";
  while (with_checksum(body).size() < 80) body.insert(10, "0");  // pad the satellites-in-view digits
  REQUIRE(with_checksum(body).size() == 80);
  auto at_limit = parse_sentence(with_checksum(body) + "\r\n");
  INFO((at_limit ? std::string() : at_limit.error().message));
  CHECK(at_limit.ok());
  body.insert(10, "0");
  CHECK(err(with_checksum(body) + "\r\n") == "too long (>82 chars): 83 with CR LF");
  ParseOptions wide;
  wide.max_length = 100;
  CHECK(parse_sentence(with_checksum(body), wide).ok());
}

TEST_CASE("a missing checksum is accepted only in lenient mode", "[gnss]") {
  ParseOptions lenient;
  lenient.require_checksum = false;
  CHECK(parse_sentence("$" + kGga, lenient).ok());
  CHECK(err("$" + kGga) == "missing checksum (*hh)");
  // A present checksum is still checked.
  CHECK(err("$" + kGga + "*00", lenient) == "bad checksum: expected 47 got 00");
}

TEST_CASE("CR and LF are stripped in any combination", "[gnss]") {
  const std::string s = with_checksum(kGga);
  CHECK(parse_sentence(s).ok());
  CHECK(parse_sentence(s + "\n").ok());
  CHECK(parse_sentence(s + "\r").ok());
  CHECK(parse_sentence(s + "\r\r\n").ok());
  CHECK(err(s + "\r\nX") == "invalid byte 0x0D at offset 65");
}
