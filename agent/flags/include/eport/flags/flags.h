// Command-line flags for the tools (eport-sim, eport-tail, eport-cmd) and
// eport-agent's subcommands: an argv cursor that hands out each flag and its
// value, and strict number parsing in place of atoi/atof. A number is
// accepted only if the whole text is one ("12x", "", " 5", "0x10" refused),
// within the range of its type ("-1" refused for an unsigned, overflow
// refused), and for reals finite; each error names the flag and the text:
//   bad number for --units: "12x" (not a whole number)
// Plain values, no shared state.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "eport/model/result.h"

namespace eport::flags {

// A whole number in min..max.
[[nodiscard]] Result<std::int64_t> parse_signed(std::string_view flag, std::string_view text,
                                                std::int64_t min = std::numeric_limits<std::int64_t>::min(),
                                                std::int64_t max = std::numeric_limits<std::int64_t>::max());
// A whole number in 0..max: no sign at all.
[[nodiscard]] Result<std::uint64_t> parse_unsigned(std::string_view flag, std::string_view text,
                                                   std::uint64_t max = std::numeric_limits<std::uint64_t>::max());
// A finite decimal number ("2", "0.5", "1e3") of at least `min` (default 0:
// durations, rates and timeouts are never negative).
[[nodiscard]] Result<double> parse_real(std::string_view flag, std::string_view text, double min = 0);

// parse_signed / parse_unsigned over the whole range of T, or parse_real for
// a floating-point T.
template <class T>
[[nodiscard]] Result<T> parse(std::string_view flag, std::string_view text) {
  if constexpr (std::is_floating_point_v<T>) {
    auto v = parse_real(flag, text);
    if (!v) return Error{v.error()};
    return static_cast<T>(*v);
  } else if constexpr (std::is_signed_v<T>) {
    auto v = parse_signed(flag, text, std::numeric_limits<T>::min(), std::numeric_limits<T>::max());
    if (!v) return Error{v.error()};
    return static_cast<T>(*v);
  } else {
    auto v = parse_unsigned(flag, text, std::numeric_limits<T>::max());
    if (!v) return Error{v.error()};
    return static_cast<T>(*v);
  }
}

// A count, size or duration: parse_unsigned up to T's maximum for an
// integral T (so "-1" is refused), parse_real with min 0 for a floating T.
template <class T>
[[nodiscard]] Result<T> parse_non_negative(std::string_view flag, std::string_view text) {
  if constexpr (std::is_floating_point_v<T>) {
    return parse<T>(flag, text);
  } else {
    auto v = parse_unsigned(flag, text, static_cast<std::uint64_t>(std::numeric_limits<T>::max()));
    if (!v) return Error{v.error()};
    return static_cast<T>(*v);
  }
}

// Walks argv from argv[1]:
//   flags::Args args(argc, argv, [](const std::string& why) { usage(why); });
//   while (args.more()) {
//     const std::string a = args.next();
//     if (a == "--units") args.take(o.units);        // strict, non-negative int
//     else if (a == "--broker") args.take(o.broker);  // a string value
//   }
class Args {
 public:
  // Called with the message when take() fails; a tool's usage() that exits.
  using OnError = std::function<void(const std::string&)>;

  Args(int argc, char** argv, OnError on_error = {}, int first = 1)
      : argc_(argc), argv_(argv), i_(first), on_error_(std::move(on_error)) {}

  bool more() const { return i_ < argc_; }
  // The next argument (a flag, or a positional one); it becomes current().
  std::string next();
  const std::string& current() const { return current_; }
  // The argument after current() as its value: "missing value after --x".
  [[nodiscard]] Result<std::string> value();
  // value(), parsed strictly as a non-negative T (parse_non_negative), the
  // error naming current(). Every number the tools take is a count, a size
  // or a duration.
  template <class T>
  [[nodiscard]] Result<T> number() {
    auto v = value();
    if (!v) return Error{v.error()};
    return parse_non_negative<T>(current_, *v);
  }

  // The value of current() into field: a std::string as is, a number
  // through number<T>(). On error calls on_error and leaves field as it was.
  template <class T>
  void take(T& field) {
    if constexpr (std::is_same_v<T, std::string>) {
      auto v = value();
      if (v) field = std::move(*v);
      else if (on_error_) on_error_(v.error());
    } else {
      auto v = number<T>();
      if (v) field = *v;
      else if (on_error_) on_error_(v.error());
    }
  }

 private:
  int argc_;
  char** argv_;
  int i_;
  OnError on_error_;
  std::string current_;
};

}  // namespace eport::flags
