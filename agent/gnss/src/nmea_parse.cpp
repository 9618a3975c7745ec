// parse_sentence(): framing (length, bytes, '$', checksum, address) and the
// field layouts of GGA, RMC, VTG, GSA and GSV. Field numbers in error
// messages count from 1 after the address, as in the NMEA 0183 tables.
#include <algorithm>
#include <array>
#include <cstdio>
#include <limits>
#include <string>

#include "eport/gnss/nmea.h"
#include "nmea_number.h"

namespace eport::gnss {
namespace {

using detail::Decimal;

constexpr std::size_t kMaxFields = 24;  // GSV, the widest, has 21 incl. address

NmeaError fail(RejectReason r, std::string msg) { return NmeaError{r, std::move(msg)}; }

std::string hex2(unsigned v) {
  char buf[3];
  std::snprintf(buf, sizeof buf, "%02X", v & 0xFFU);
  return buf;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::optional<Talker> talker_from(std::string_view t) {
  if (t == "GP") return Talker::kGps;
  if (t == "GN") return Talker::kGnss;
  if (t == "GL") return Talker::kGlonass;
  if (t == "GA") return Talker::kGalileo;
  if (t == "BD" || t == "GB") return Talker::kBeidou;
  return std::nullopt;
}

// Reads the fields of one sentence; helpers do nothing once one has failed,
// so a parser is a straight list of calls followed by one check.
class Fields {
 public:
  Fields(std::string_view type, const std::array<std::string_view, kMaxFields>& f, std::size_t n)
      : type_(type), f_(f), n_(n) {}

  bool failed() const { return error_.has_value(); }
  NmeaError take_error() { return std::move(*error_); }
  std::string_view at(std::size_t i) const { return i < n_ ? f_[i] : std::string_view{}; }
  std::size_t count() const { return n_ - 1; }  // data fields, without the address

  void error(RejectReason r, std::size_t i, std::string_view name, std::string_view problem) {
    if (failed()) return;
    std::string msg(type_);
    msg += ": field " + std::to_string(i) + " (" + std::string(name) + ") " + std::string(problem);
    if (!at(i).empty()) msg += ": '" + std::string(at(i)) + "'";
    error_ = fail(r, std::move(msg));
  }

  template <class T>
  void uint(std::size_t i, std::string_view name, std::uint64_t max, std::optional<T>& out) {
    std::string_view s = at(i);
    if (failed() || s.empty()) return;
    Decimal d;
    if (const char* p = detail::parse_decimal(s, &d); p || d.frac_digits > 0 || s.find('.') != s.npos) {
      error(RejectReason::kBadField, i, name, p ? p : "not an integer");
      return;
    }
    if (d.mantissa > max) return error(RejectReason::kOutOfRange, i, name, "out of range");
    out = static_cast<T>(d.mantissa);
  }

  // Decimal field times mul/div, rounded half up, at most max.
  template <class T>
  void scaled(std::size_t i, std::string_view name, std::uint64_t mul, std::uint64_t div,
              std::uint64_t max, std::optional<T>& out) {
    std::string_view s = at(i);
    if (failed() || s.empty()) return;
    Decimal d;
    if (const char* p = detail::parse_decimal(s, &d)) return error(RejectReason::kBadField, i, name, p);
    auto v = detail::scale(d, mul, div);
    if (!v || *v > max) return error(RejectReason::kOutOfRange, i, name, "out of range");
    out = static_cast<T>(*v);
  }

  void signed_cm(std::size_t i, std::string_view name, std::optional<std::int32_t>& out) {
    std::string_view s = at(i);
    if (failed() || s.empty()) return;
    Decimal d;
    bool neg = false;
    if (const char* p = detail::parse_signed_decimal(s, &d, &neg)) {
      return error(RejectReason::kBadField, i, name, p);
    }
    auto v = detail::scale(d, 100, 1);  // half away from zero once the sign is applied
    if (!v || *v > static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max())) {
      return error(RejectReason::kOutOfRange, i, name, "out of range");
    }
    out = neg ? -static_cast<std::int32_t>(*v) : static_cast<std::int32_t>(*v);
  }

  // Course over ground in 0.01 deg; 360.00 reads as 0.
  void course(std::size_t i, std::string_view name, std::optional<std::uint16_t>& out) {
    std::optional<std::uint32_t> v;
    scaled(i, name, 100, 1, 36000, v);
    if (v) out = static_cast<std::uint16_t>(*v % 36000);
  }

  void time(std::size_t i, std::optional<std::uint32_t>& out) {
    if (failed() || at(i).empty()) return;
    std::uint32_t ms = 0;
    if (const char* p = detail::parse_time_of_day(at(i), &ms)) {
      return error(RejectReason::kBadField, i, "time", p);
    }
    out = ms;
  }

  void date(std::size_t i, std::optional<UtcDate>& out) {
    if (failed() || at(i).empty()) return;
    UtcDate d;
    if (const char* p = detail::parse_date(at(i), &d)) return error(RejectReason::kBadField, i, "date", p);
    out = d;
  }

  // Latitude at i, N/S at i+1, longitude at i+2, E/W at i+3: all four or none.
  void coord(std::size_t i, std::optional<Coord>& out) {
    if (failed()) return;
    static constexpr std::array<std::string_view, 4> kNames = {"latitude", "N/S", "longitude", "E/W"};
    std::size_t present = 0;
    for (std::size_t k = 0; k < 4; ++k) present += at(i + k).empty() ? 0 : 1;
    if (present == 0) return;
    if (present != 4) {
      for (std::size_t k = 0; k < 4; ++k) {
        if (at(i + k).empty()) {
          return error(RejectReason::kBadField, i + k, kNames[k],
                       "empty while the rest of the position is set");
        }
      }
    }
    std::int64_t lat = 0;
    std::int64_t lon = 0;
    if (const char* p = detail::parse_angle_e7(at(i), 2, &lat)) {
      return error(RejectReason::kBadField, i, "latitude", p);
    }
    if (lat > 900'000'000) return error(RejectReason::kOutOfRange, i, "latitude", "out of range (> 90 deg)");
    const std::string_view ns = at(i + 1);
    if (ns != "N" && ns != "S") return error(RejectReason::kBadField, i + 1, "N/S", "not N or S");
    if (const char* p = detail::parse_angle_e7(at(i + 2), 3, &lon)) {
      return error(RejectReason::kBadField, i + 2, "longitude", p);
    }
    if (lon > 1'800'000'000) {
      return error(RejectReason::kOutOfRange, i + 2, "longitude", "out of range (> 180 deg)");
    }
    const std::string_view ew = at(i + 3);
    if (ew != "E" && ew != "W") return error(RejectReason::kBadField, i + 3, "E/W", "not E or W");
    out = Coord{static_cast<std::int32_t>(ns == "S" ? -lat : lat),
                static_cast<std::int32_t>(ew == "W" ? -lon : lon)};
  }

  // A one-letter field from `allowed`, or empty.
  void letter(std::size_t i, std::string_view name, std::string_view allowed, std::optional<char>& out) {
    std::string_view s = at(i);
    if (failed() || s.empty()) return;
    if (s.size() != 1 || allowed.find(s[0]) == std::string_view::npos) {
      return error(RejectReason::kBadField, i, name, "not one of " + std::string(allowed));
    }
    out = s[0];
  }

  // A unit letter that must be `unit` when present.
  void unit(std::size_t i, std::string_view name, char unit) {
    std::optional<char> c;
    letter(i, name, std::string_view(&unit, 1), c);
  }

 private:
  std::string_view type_;
  const std::array<std::string_view, kMaxFields>& f_;
  std::size_t n_;
  std::optional<NmeaError> error_;
};

constexpr std::uint64_t kMaxU16 = std::numeric_limits<std::uint16_t>::max();

// Knots to cm/s: 1 kn = 1852 m / 3600 s = 463/9 cm/s.
constexpr std::uint64_t kKnotMul = 463;
constexpr std::uint64_t kKnotDiv = 9;
// km/h to cm/s: 100000 cm / 3600 s = 250/9 cm/s.
constexpr std::uint64_t kKmhMul = 250;
constexpr std::uint64_t kKmhDiv = 9;

std::optional<NmeaError> parse_gga(Fields& f, Gga& g) {
  f.time(1, g.time_ms);
  f.coord(2, g.coord);
  std::optional<std::uint8_t> q;
  f.uint(6, "quality", 8, q);
  if (q) g.quality = static_cast<model::FixQuality>(*q);
  f.uint(7, "satellites", 99, g.satellites);
  f.scaled(8, "HDOP", 100, 1, kMaxU16, g.hdop_centi);
  f.signed_cm(9, "altitude", g.altitude_cm);
  f.unit(10, "altitude unit", 'M');
  f.signed_cm(11, "geoid separation", g.geoid_separation_cm);
  f.unit(12, "geoid unit", 'M');
  // 13 (DGPS age) and 14 (DGPS station) are not used.
  if (f.failed()) return f.take_error();
  return std::nullopt;
}

std::optional<NmeaError> parse_rmc(Fields& f, Rmc& r) {
  f.time(1, r.time_ms);
  std::optional<char> status;
  f.letter(2, "status", "AV", status);
  r.active = status == 'A';
  f.coord(3, r.coord);
  f.scaled(7, "speed", kKnotMul, kKnotDiv, kMaxU16, r.speed_cm_s);
  f.course(8, "course", r.course_cdeg);
  f.date(9, r.date);
  // 10-11: magnetic variation, not used.
  f.letter(12, "mode", "ADEFMNPRS", r.mode);
  if (f.failed()) return f.take_error();
  return std::nullopt;
}

std::optional<NmeaError> parse_vtg(Fields& f, Vtg& v) {
  f.course(1, "course", v.course_cdeg);
  f.unit(2, "T", 'T');
  std::optional<std::uint16_t> magnetic;
  f.course(3, "magnetic course", magnetic);
  f.unit(4, "M", 'M');
  std::optional<std::uint16_t> knots;
  std::optional<std::uint16_t> kmh;
  f.scaled(5, "speed knots", kKnotMul, kKnotDiv, kMaxU16, knots);
  f.unit(6, "N", 'N');
  f.scaled(7, "speed km/h", kKmhMul, kKmhDiv, kMaxU16, kmh);
  f.unit(8, "K", 'K');
  f.letter(9, "mode", "ADEFMNPRS", v.mode);
  if (f.failed()) return f.take_error();
  v.speed_cm_s = kmh ? kmh : knots;
  return std::nullopt;
}

std::optional<NmeaError> parse_gsa(Fields& f, Gsa& g) {
  f.letter(1, "selection mode", "AM", g.selection);
  f.uint(2, "fix type", 3, g.fix_type);
  if (g.fix_type && *g.fix_type == 0) f.error(RejectReason::kOutOfRange, 2, "fix type", "out of range");
  for (std::size_t i = 3; i <= 14; ++i) {
    std::optional<std::uint16_t> id;
    f.uint(i, "satellite id", 999, id);
    if (id) g.used_ids[g.used_count++] = *id;
  }
  f.scaled(15, "PDOP", 100, 1, kMaxU16, g.pdop_centi);
  f.scaled(16, "HDOP", 100, 1, kMaxU16, g.hdop_centi);
  f.scaled(17, "VDOP", 100, 1, kMaxU16, g.vdop_centi);
  f.uint(18, "system id", 15, g.system_id);
  if (f.failed()) return f.take_error();
  return std::nullopt;
}

std::optional<NmeaError> parse_gsv(Fields& f, Gsv& g) {
  std::optional<std::uint8_t> total;
  std::optional<std::uint8_t> number;
  f.uint(1, "total messages", 9, total);
  f.uint(2, "message number", 9, number);
  if (!f.failed() && (!total || *total == 0)) {
    f.error(RejectReason::kBadField, 1, "total messages", "missing");
  }
  if (!f.failed() && (!number || *number == 0 || *number > *total)) {
    f.error(RejectReason::kBadField, 2, "message number", "not in 1..total messages");
  }
  f.uint(3, "satellites in view", 99, g.in_view);
  const std::size_t blocks = (f.count() - 3) / 4;
  for (std::size_t b = 0; b < blocks; ++b) {
    const std::size_t i = 4 + 4 * b;
    std::optional<std::uint16_t> id;
    SatelliteInView s;
    f.uint(i, "satellite id", 999, id);
    f.uint(i + 1, "elevation", 90, s.elevation_deg);
    f.uint(i + 2, "azimuth", 359, s.azimuth_deg);
    f.uint(i + 3, "SNR", 99, s.snr_db);
    if (!id) continue;  // padding block
    s.id = *id;
    g.satellites[g.count++] = s;
  }
  if ((f.count() - 3) % 4 == 1) f.uint(f.count(), "signal id", 15, g.signal_id);
  if (f.failed()) return f.take_error();
  g.total_messages = *total;
  g.message_number = *number;
  return std::nullopt;
}

struct Layout {
  std::string_view type;
  std::size_t min_fields;
  std::size_t max_fields;
};

constexpr std::array<Layout, 5> kLayouts = {{
    {"GGA", 14, 14},
    {"RMC", 11, 13},  // 12: NMEA 2.3 mode, 13: NMEA 4.10 navigational status
    {"VTG", 8, 9},    // 9: NMEA 2.3 mode
    {"GSA", 17, 18},  // 18: NMEA 4.10 system id
    {"GSV", 3, 20},   // 3 + 4 per satellite (0..4), + NMEA 4.10 signal id
}};

}  // namespace

std::string_view reject_reason_name(RejectReason r) {
  static constexpr std::array<std::string_view, kRejectReasonCount> kNames = {
      "empty",          "too_long",         "bad_byte",       "no_dollar",
      "missing_checksum", "bad_checksum_format", "bad_checksum", "bad_address",
      "unknown_talker", "unsupported_type", "field_count",    "bad_field",
      "out_of_range"};
  const auto i = static_cast<std::size_t>(r);
  return i < kNames.size() ? kNames[i] : "unknown";
}

std::string_view talker_name(Talker t) {
  switch (t) {
    case Talker::kGps: return "GP";
    case Talker::kGnss: return "GN";
    case Talker::kGlonass: return "GL";
    case Talker::kGalileo: return "GA";
    case Talker::kBeidou: return "BD";
  }
  return "??";
}

ParseResult parse_sentence(std::string_view line, const ParseOptions& options) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.empty()) return fail(RejectReason::kEmpty, "empty line");
  if (line.size() + 2 > options.max_length) {
    return fail(RejectReason::kTooLong, "too long (>" + std::to_string(options.max_length) +
                                            " chars): " + std::to_string(line.size() + 2) + " with CR LF");
  }
  for (std::size_t i = 0; i < line.size(); ++i) {
    const auto c = static_cast<unsigned char>(line[i]);
    if (c < 0x20 || c > 0x7E) {
      return fail(RejectReason::kBadByte, "invalid byte 0x" + hex2(c) + " at offset " + std::to_string(i));
    }
    if (i > 0 && (c == '$' || c == '!')) {
      return fail(RejectReason::kBadByte,
                  std::string("reserved character '") + static_cast<char>(c) + "' at offset " +
                      std::to_string(i));
    }
  }
  if (line.front() != '$') {
    return fail(RejectReason::kNoDollar, std::string("does not start with '$': '") +
                                             std::string(line.substr(0, 8)) + "'");
  }

  std::string_view body = line.substr(1);
  const std::size_t star = body.find('*');
  if (star == std::string_view::npos) {
    if (options.require_checksum) return fail(RejectReason::kMissingChecksum, "missing checksum (*hh)");
  } else {
    const std::string_view given = body.substr(star + 1);
    body = body.substr(0, star);
    const int hi = given.size() == 2 ? hex_value(given[0]) : -1;
    const int lo = given.size() == 2 ? hex_value(given[1]) : -1;
    if (hi < 0 || lo < 0) {
      return fail(RejectReason::kBadChecksumFormat,
                  "checksum field not two hex digits: '" + std::string(given) + "'");
    }
    unsigned sum = 0;
    for (char c : body) sum ^= static_cast<unsigned char>(c);
    const auto got = static_cast<unsigned>(hi * 16 + lo);
    if (sum != got) {
      return fail(RejectReason::kBadChecksum, "bad checksum: expected " + hex2(sum) + " got " + hex2(got));
    }
  }

  const std::string_view address = body.substr(0, body.find(','));
  if (!address.empty() && address.front() == 'P') {
    return fail(RejectReason::kBadAddress, "proprietary sentence " + std::string(address) + " not supported");
  }
  const bool address_ok =
      address.size() == 5 && std::all_of(address.begin(), address.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      });
  if (!address_ok) return fail(RejectReason::kBadAddress, "bad address field '" + std::string(address) + "'");
  const auto talker = talker_from(address.substr(0, 2));
  if (!talker) {
    return fail(RejectReason::kUnknownTalker,
                "unknown talker " + std::string(address.substr(0, 2)) + " in " + std::string(address));
  }
  const std::string_view type = address.substr(2);
  const auto layout = std::find_if(kLayouts.begin(), kLayouts.end(),
                                   [&](const Layout& l) { return l.type == type; });
  if (layout == kLayouts.end()) {
    return fail(RejectReason::kUnsupportedType, "unsupported sentence type " + std::string(type));
  }

  std::array<std::string_view, kMaxFields> fields{};
  std::size_t n = 0;
  for (std::size_t start = 0;;) {
    const std::size_t comma = body.find(',', start);
    if (n == kMaxFields) {
      return fail(RejectReason::kFieldCount, std::string(type) + ": too many fields: more than " +
                                                 std::to_string(kMaxFields - 1));
    }
    const std::size_t len = comma == std::string_view::npos ? std::string_view::npos : comma - start;
    fields[n++] = body.substr(start, len);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  const std::size_t data_fields = n - 1;
  std::string expected = std::to_string(layout->min_fields);
  if (layout->max_fields != layout->min_fields) expected += " to " + std::to_string(layout->max_fields);
  if (data_fields < layout->min_fields) {
    return fail(RejectReason::kFieldCount, std::string(type) + ": truncated: " + std::to_string(data_fields) +
                                               " fields, expected " + expected);
  }
  if (data_fields > layout->max_fields) {
    return fail(RejectReason::kFieldCount, std::string(type) + ": too many fields: " +
                                               std::to_string(data_fields) + ", expected " + expected);
  }
  if (type == "GSV" && (data_fields - 3) % 4 > 1) {
    return fail(RejectReason::kFieldCount, "GSV: " + std::to_string(data_fields) +
                                               " fields, expected 3 + 4 per satellite (+1 signal id)");
  }

  Fields f(type, fields, n);
  Sentence s;
  s.talker = *talker;
  std::optional<NmeaError> err;
  if (type == "GGA") {
    err = parse_gga(f, s.body.emplace<Gga>());
  } else if (type == "RMC") {
    err = parse_rmc(f, s.body.emplace<Rmc>());
  } else if (type == "VTG") {
    err = parse_vtg(f, s.body.emplace<Vtg>());
  } else if (type == "GSA") {
    err = parse_gsa(f, s.body.emplace<Gsa>());
  } else {
    err = parse_gsv(f, s.body.emplace<Gsv>());
  }
  if (err) return std::move(*err);
  return s;
}

std::uint64_t utc_ms(const UtcDate& date, std::uint32_t ms_of_day) {
  // Howard Hinnant's days_from_civil, for the proleptic Gregorian calendar.
  const int m = date.month;
  const int y = date.year - (m <= 2 ? 1 : 0);
  const int era = y / 400;  // years here are >= 1980
  const int yoe = y - era * 400;
  const int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + date.day - 1;
  const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const std::int64_t days = static_cast<std::int64_t>(era) * 146097 + doe - 719468;
  return static_cast<std::uint64_t>(days) * 86'400'000ULL + ms_of_day;
}

}  // namespace eport::gnss
