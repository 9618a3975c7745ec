// NMEA 0183 sentence parser for the gateway's own GNSS receiver: one line in,
// one typed sentence (GGA, RMC, VTG, GSA, GSV) or a named rejection out.
// Pure function, no I/O, never throws on bad input; FixAssembler builds on it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "eport/model/reading.h"

namespace eport::gnss {

// Why a line was rejected. The numeric value indexes GnssCounters::rejected:
// append only.
enum class RejectReason : std::uint8_t {
  kEmpty = 0,            // nothing but CR/LF
  kTooLong,              // more than ParseOptions::max_length chars incl. CR LF
  kBadByte,              // a byte outside printable ASCII (NUL, 0xFF, TAB...)
  kNoDollar,             // does not start with '$'
  kMissingChecksum,      // no "*hh" and ParseOptions::require_checksum
  kBadChecksumFormat,    // "*" not followed by exactly two hex digits
  kBadChecksum,          // checksum does not match
  kBadAddress,           // address field not 5 letters/digits, or proprietary
  kUnknownTalker,        // talker not GP, GN, GL, GA, BD, GB
  kUnsupportedType,      // GLL, ZDA, TXT...: valid NMEA we do not use
  kFieldCount,           // too few (truncated) or too many fields
  kBadField,             // a field that is not what its position requires
  kOutOfRange,           // a well-formed number outside its range
};
inline constexpr std::size_t kRejectReasonCount = 13;

// Short stable name ("bad_checksum"), for counters in logs and metrics.
std::string_view reject_reason_name(RejectReason r);

struct NmeaError {
  RejectReason reason = RejectReason::kBadField;
  std::string message;  // e.g. "bad checksum: expected 4F got 4E"
};

enum class Talker : std::uint8_t {
  kGps,      // GP
  kGnss,     // GN: combined solution
  kGlonass,  // GL
  kGalileo,  // GA
  kBeidou,   // BD, and GB (NMEA 4.11 spelling)
};
std::string_view talker_name(Talker t);  // "GP", "GN", "GL", "GA", "BD"

struct UtcDate {
  std::uint16_t year = 1970;  // 4 digits; NMEA yy 80..99 -> 19yy, 00..79 -> 20yy
  std::uint8_t month = 1;     // 1..12
  std::uint8_t day = 1;       // 1..31, checked against the month
  bool operator==(const UtcDate&) const = default;
};

// Milliseconds since 1970-01-01T00:00:00Z for a date and a time of day,
// leap-free (POSIX) UTC.
std::uint64_t utc_ms(const UtcDate& date, std::uint32_t ms_of_day);

// Latitude and longitude, both or neither (a sentence with one of them empty
// is rejected).
struct Coord {
  std::int32_t lat_e7 = 0;  // degrees * 1e7, north positive
  std::int32_t lon_e7 = 0;  // degrees * 1e7, east positive
  bool operator==(const Coord&) const = default;
};

// Every optional below is empty when its field is empty (no fix, not
// reported): an empty field is never read as zero.
struct Gga {
  std::optional<std::uint32_t> time_ms;  // ms since 00:00 UTC
  std::optional<Coord> coord;
  std::optional<model::FixQuality> quality;  // field 6, 0..8
  std::optional<std::uint8_t> satellites;    // used in the fix, 0..99
  std::optional<std::uint16_t> hdop_centi;   // HDOP * 100
  std::optional<std::int32_t> altitude_cm;   // above mean sea level
  std::optional<std::int32_t> geoid_separation_cm;
  bool operator==(const Gga&) const = default;
};

struct Rmc {
  std::optional<std::uint32_t> time_ms;
  bool active = false;  // status 'A'; 'V' or empty: receiver warning
  std::optional<Coord> coord;
  std::optional<std::uint16_t> speed_cm_s;    // from knots
  std::optional<std::uint16_t> course_cdeg;   // true, 0..35999
  std::optional<UtcDate> date;
  std::optional<char> mode;                   // NMEA 2.3+: A D E F M N P R S
  bool operator==(const Rmc&) const = default;
};

struct Vtg {
  std::optional<std::uint16_t> course_cdeg;  // true, 0..35999
  // km/h field if present (finer: 0.1 km/h = 2.8 cm/s), else the knots field.
  std::optional<std::uint16_t> speed_cm_s;
  std::optional<char> mode;
  bool operator==(const Vtg&) const = default;
};

struct Gsa {
  std::optional<char> selection;       // 'A' automatic, 'M' manual
  std::optional<std::uint8_t> fix_type;  // 1 no fix, 2 2D, 3 3D
  std::uint8_t used_count = 0;         // non-empty satellite id fields, 0..12
  std::array<std::uint16_t, 12> used_ids{};  // first used_count are valid
  std::optional<std::uint16_t> pdop_centi;
  std::optional<std::uint16_t> hdop_centi;
  std::optional<std::uint16_t> vdop_centi;
  std::optional<std::uint8_t> system_id;  // NMEA 4.10: 1 GPS 2 GLONASS 3 Galileo 4 BeiDou
  bool operator==(const Gsa&) const = default;
};

struct SatelliteInView {
  std::uint16_t id = 0;
  std::optional<std::uint8_t> elevation_deg;  // 0..90
  std::optional<std::uint16_t> azimuth_deg;   // 0..359
  std::optional<std::uint8_t> snr_db;         // 0..99, empty when not tracked
  bool operator==(const SatelliteInView&) const = default;
};

struct Gsv {
  std::uint8_t total_messages = 1;  // 1..9
  std::uint8_t message_number = 1;  // 1..total_messages
  std::optional<std::uint8_t> in_view;
  std::uint8_t count = 0;  // satellite blocks in this message, 0..4
  std::array<SatelliteInView, 4> satellites{};
  std::optional<std::uint8_t> signal_id;  // NMEA 4.10
  bool operator==(const Gsv&) const = default;
};

struct Sentence {
  Talker talker = Talker::kGps;
  std::variant<Gga, Rmc, Vtg, Gsa, Gsv> body;
  bool operator==(const Sentence&) const = default;
};

struct ParseOptions {
  // Accept a sentence without "*hh". Off by default: on a serial line the
  // checksum is the only protection against corrupted digits.
  bool require_checksum = true;
  // NMEA 0183 limit, counting '$' and the CR LF (which need not be present).
  std::size_t max_length = 82;
};

// A Sentence or the NmeaError that says why not.
class [[nodiscard]] ParseResult {
 public:
  ParseResult(Sentence s) : v_(std::move(s)) {}   // NOLINT(google-explicit-constructor)
  ParseResult(NmeaError e) : v_(std::move(e)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  const Sentence& value() const { return std::get<0>(v_); }  // precondition: ok()
  const Sentence* operator->() const { return &value(); }
  const NmeaError& error() const { return std::get<1>(v_); }  // precondition: !ok()

 private:
  std::variant<Sentence, NmeaError> v_;
};

// Parses one sentence. Trailing CR and LF are ignored; any other byte outside
// 0x20..0x7E is an error. Checks, in order: length, bytes, '$', checksum,
// address, field count, then each field. Never throws, never reads outside
// `line`.
ParseResult parse_sentence(std::string_view line, const ParseOptions& options = {});

}  // namespace eport::gnss
