// Exact integer conversions of NMEA number fields; see nmea_number.h and the
// rounding rules in docs/gnss.md. Every input length is bounded by the
// caller's 82-character sentence limit, but nothing here relies on it.
#include "nmea_number.h"

#include <array>
#include <limits>

namespace eport::gnss::detail {
namespace {

constexpr std::array<std::uint64_t, 10> kPow10 = {
    1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
    100000000ULL, 1000000000ULL};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool all_digits(std::string_view s) {
  for (char c : s) {
    if (!is_digit(c)) return false;
  }
  return true;
}

unsigned two_digits(std::string_view s, std::size_t at) {
  return static_cast<unsigned>(s[at] - '0') * 10U + static_cast<unsigned>(s[at + 1] - '0');
}

bool is_leap(unsigned y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned days_in_month(unsigned y, unsigned m) {
  static constexpr std::array<unsigned, 12> kDays = {31, 28, 31, 30, 31, 30,
                                                     31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

}  // namespace

const char* parse_decimal(std::string_view s, Decimal* out) {
  Decimal d;
  bool dot = false;
  int digits = 0;
  for (char c : s) {
    if (c == '.') {
      if (dot) return "not a number";
      dot = true;
      continue;
    }
    if (!is_digit(c)) return "not a number";
    // Leading zeros do not count against the digit limit.
    if (digits > 0 || c != '0' || dot) ++digits;
    if (digits > kMaxDigits) return "has too many digits";
    d.mantissa = d.mantissa * 10 + static_cast<std::uint64_t>(c - '0');
    if (dot && ++d.frac_digits > kMaxFracDigits) return "has too many decimals";
  }
  if (s.empty() || (dot && s.size() == 1)) return "not a number";
  *out = d;
  return nullptr;
}

const char* parse_signed_decimal(std::string_view s, Decimal* out, bool* negative) {
  *negative = !s.empty() && s.front() == '-';
  if (*negative) s.remove_prefix(1);
  return parse_decimal(s, out);
}

std::optional<std::uint64_t> scale(Decimal d, std::uint64_t mul, std::uint64_t div) {
  const std::uint64_t den = div * kPow10[static_cast<std::size_t>(d.frac_digits)];
  constexpr std::uint64_t kLimit = std::numeric_limits<std::uint64_t>::max() / 4;
  if (mul != 0 && d.mantissa > kLimit / mul) return std::nullopt;
  const std::uint64_t num = d.mantissa * mul;
  // floor((2*num + den) / (2*den)) == round-half-up of num/den, exactly.
  return (2 * num + den) / (2 * den);
}

const char* parse_angle_e7(std::string_view s, int max_deg_digits, std::int64_t* out_e7) {
  const std::size_t dot = s.find('.');
  const std::size_t int_len = dot == std::string_view::npos ? s.size() : dot;
  if (!all_digits(s.substr(0, int_len))) return "not a number";
  const auto max_len = static_cast<std::size_t>(max_deg_digits) + 2;
  if (int_len < 3 || int_len > max_len) {
    return max_deg_digits == 2 ? "not in ddmm.mmmm form" : "not in dddmm.mmmm form";
  }
  Decimal minutes;
  if (const char* p = parse_decimal(s.substr(int_len - 2), &minutes)) return p;
  std::uint64_t degrees = 0;
  for (char c : s.substr(0, int_len - 2)) degrees = degrees * 10 + static_cast<std::uint64_t>(c - '0');
  if (minutes.mantissa >= 60 * kPow10[static_cast<std::size_t>(minutes.frac_digits)]) {
    return "minutes >= 60";
  }
  // minutes < 60 * 10^9, so minutes * 1e7 < 6e17: no overflow possible.
  const auto frac_e7 = scale(minutes, 10'000'000ULL, 60);
  if (!frac_e7) return "has too many digits";
  *out_e7 = static_cast<std::int64_t>(degrees * 10'000'000ULL + *frac_e7);
  return nullptr;
}

const char* parse_time_of_day(std::string_view s, std::uint32_t* out_ms) {
  if (s.size() < 6 || !all_digits(s.substr(0, 6)) || (s.size() > 6 && s[6] != '.')) {
    return "not in hhmmss.ss form";
  }
  const std::string_view frac = s.size() > 7 ? s.substr(7) : std::string_view{};
  if (!all_digits(frac) || frac.size() > kMaxFracDigits) return "not in hhmmss.ss form";
  const unsigned hh = two_digits(s, 0);
  const unsigned mm = two_digits(s, 2);
  const unsigned ss = two_digits(s, 4);
  if (hh > 23 || mm > 59 || ss > 60) return "out of range";
  unsigned ms = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    ms = ms * 10 + (i < frac.size() ? static_cast<unsigned>(frac[i] - '0') : 0U);
  }
  if (ss == 60) ms = 999;  // leap second: stay inside the minute
  *out_ms = ((hh * 60 + mm) * 60 + (ss == 60 ? 59 : ss)) * 1000 + ms;
  return nullptr;
}

const char* parse_date(std::string_view s, UtcDate* out) {
  if (s.size() != 6 || !all_digits(s)) return "not in ddmmyy form";
  const unsigned dd = two_digits(s, 0);
  const unsigned mo = two_digits(s, 2);
  const unsigned yy = two_digits(s, 4);
  const unsigned year = yy >= 80 ? 1900 + yy : 2000 + yy;
  if (mo < 1 || mo > 12 || dd < 1 || dd > days_in_month(year, mo)) return "out of range";
  out->year = static_cast<std::uint16_t>(year);
  out->month = static_cast<std::uint8_t>(mo);
  out->day = static_cast<std::uint8_t>(dd);
  return nullptr;
}

}  // namespace eport::gnss::detail
