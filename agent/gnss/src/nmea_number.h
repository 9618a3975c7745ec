// Exact integer arithmetic for NMEA number fields (decimals, ddmm.mmmm angles,
// hhmmss times, ddmmyy dates). Internal to eport_gnss; no floating point, so
// a field always maps to the same integer on every platform.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "eport/gnss/nmea.h"

namespace eport::gnss::detail {

// "123.456" is {123456, 3}.
struct Decimal {
  std::uint64_t mantissa = 0;
  int frac_digits = 0;
};

inline constexpr int kMaxDigits = 18;      // mantissa stays below 1e18
inline constexpr int kMaxFracDigits = 9;

// Each returns nullptr on success, else the problem as it appears in an error
// message after the field name ("not a number", "minutes >= 60").

// Digits with at most one '.', at least one digit, no sign, no exponent.
const char* parse_decimal(std::string_view s, Decimal* out);
// As parse_decimal with an optional leading '-'.
const char* parse_signed_decimal(std::string_view s, Decimal* out, bool* negative);

// round(d * mul / div), halves rounded up; nullopt if an intermediate would
// overflow. div must be 1..1e9.
std::optional<std::uint64_t> scale(Decimal d, std::uint64_t mul, std::uint64_t div);

// "ddmm.mmmm" (max_deg_digits 2) or "dddmm.mmmm" (3): the magnitude in
// degrees * 1e7, rounded half up. Leading degree zeros may be omitted.
const char* parse_angle_e7(std::string_view s, int max_deg_digits, std::int64_t* out_e7);

// "hhmmss" or "hhmmss.s...": milliseconds since midnight. Digits after the
// millisecond are truncated; second 60 (a leap second) reads as 59.999.
const char* parse_time_of_day(std::string_view s, std::uint32_t* out_ms);

// "ddmmyy", checked against the month's length.
const char* parse_date(std::string_view s, UtcDate* out);

}  // namespace eport::gnss::detail
