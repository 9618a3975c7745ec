// Strict number parsing for flags (std::from_chars over the whole text) and
// the argv cursor; the rules are in flags.h.
#include "eport/flags/flags.h"

#include <charconv>
#include <cmath>
#include <system_error>

namespace eport::flags {

namespace {

Error bad(std::string_view flag, std::string_view text, const std::string& why) {
  return Error{"bad number for " + std::string(flag) + ": \"" + std::string(text) + "\" (" + why + ")"};
}

}  // namespace

Result<std::int64_t> parse_signed(std::string_view flag, std::string_view text, std::int64_t min,
                                  std::int64_t max) {
  if (text.empty()) return bad(flag, text, "empty");
  std::int64_t v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (ec == std::errc::result_out_of_range) return bad(flag, text, "out of range");
  if (ec != std::errc() || p != end) return bad(flag, text, "not a whole number");
  if (v < min || v > max) {
    return bad(flag, text, "out of range " + std::to_string(min) + ".." + std::to_string(max));
  }
  return v;
}

Result<std::uint64_t> parse_unsigned(std::string_view flag, std::string_view text, std::uint64_t max) {
  if (text.empty()) return bad(flag, text, "empty");
  if (text[0] == '-') return bad(flag, text, "negative");
  std::uint64_t v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (ec == std::errc::result_out_of_range) return bad(flag, text, "out of range");
  if (ec != std::errc() || p != end) return bad(flag, text, "not a whole number");
  if (v > max) return bad(flag, text, "out of range 0.." + std::to_string(max));
  return v;
}

Result<double> parse_real(std::string_view flag, std::string_view text, double min) {
  if (text.empty()) return bad(flag, text, "empty");
  double v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (ec == std::errc::result_out_of_range) return bad(flag, text, "out of range");
  if (ec != std::errc() || p != end) return bad(flag, text, "not a number");
  if (!std::isfinite(v)) return bad(flag, text, "not finite");
  if (v < min) return bad(flag, text, min == 0 ? "negative" : "below " + std::to_string(min));
  return v;
}

std::string Args::next() {
  current_ = i_ < argc_ ? argv_[i_] : "";
  ++i_;
  return current_;
}

Result<std::string> Args::value() {
  if (i_ >= argc_) return Error{"missing value after " + current_};
  return std::string(argv_[i_++]);
}

}  // namespace eport::flags
