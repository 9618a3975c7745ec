// The one JSON writer: string escaping and a flat object builder for every
// JSON text the agent and its tools emit. A leaf library (no dependencies),
// so the codec, the uplink and the tools all render strings the same way.
//
// Escaping policy (RFC 8259, stricter where it helps a reader of logs):
// - '"' and '\\' are escaped as \" and \\.
// - Every control byte, 0x00..0x1F and DEL 0x7F, is escaped as \u00XX
//   (lowercase hex), \n and \t included. No byte is ever dropped.
// - Valid UTF-8 (bytes >= 0x80 forming well-formed sequences, no overlongs,
//   no surrogates, nothing above U+10FFFF) is copied unchanged.
// - Bytes that do not form well-formed UTF-8 become \ufffd (U+FFFD
//   REPLACEMENT CHARACTER), one for each maximal subpart of an ill-formed
//   sequence (Unicode 15 section 3.9; what Python's "replace" decoding
//   does), so the output is always valid UTF-8 and parses in every JSON
//   reader; the bad bytes themselves are not kept.
// examples/python/eport_consumer.py mirrors this byte for byte.
// Thread-safety: plain functions and values, no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace eport::json {

// Appends s as a quoted JSON string literal to out.
void append_quoted(std::string& out, std::string_view s);

// s as a quoted JSON string literal.
std::string quote(std::string_view s);

// A JSON object written left to right, keys in the order they are added
// (keys are escaped too). Not a DOM: no lookups, no duplicate-key check.
//   json::Object o;
//   o.add("gateway", id).add("time_utc_ms", now);
//   std::string text = std::move(o).str();   // {"gateway":"...","time_utc_ms":...}
class Object {
 public:
  Object& add(std::string_view key, std::string_view value);
  Object& add(std::string_view key, const char* value) { return add(key, std::string_view(value)); }
  Object& add(std::string_view key, const std::string& value) { return add(key, std::string_view(value)); }
  Object& add(std::string_view key, bool value);
  // Any integer type but bool, written in decimal.
  template <class T>
    requires(std::is_integral_v<T> && !std::is_same_v<T, bool>)
  Object& add(std::string_view key, T value) {
    if constexpr (std::is_signed_v<T>) return add_signed(key, static_cast<std::int64_t>(value));
    else return add_unsigned(key, static_cast<std::uint64_t>(value));
  }
  // value is already JSON (a nested object, an array, a number formatted by
  // the caller); it is copied as is.
  Object& add_raw(std::string_view key, std::string_view json_value);

  // The finished text, with the closing brace.
  std::string str() const&;
  std::string str() &&;

 private:
  Object& add_signed(std::string_view key, std::int64_t value);
  Object& add_unsigned(std::string_view key, std::uint64_t value);
  void key(std::string_view k);
  std::string out_ = "{";
};

}  // namespace eport::json
