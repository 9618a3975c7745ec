// The one JSON reader: RFC 8259 text into a small DOM, for JSON that arrives
// from outside (zones files, commands). Bounded by limits the caller gives
// (input bytes, nesting depth, total values), depth-bounded recursion so that
// hostile input cannot overflow the stack, and strict: no trailing garbage,
// no duplicate object keys, no invalid UTF-8 or lone surrogates in strings,
// no leading zeros, no NaN/Infinity, no comments, no byte order mark.
// Errors name what is wrong and where: "<what> at byte 12 (line 2, column 5)"
// (byte offsets count from 0, lines and columns from 1, columns in bytes).
// Thread-safety: values are immutable after parse; share them freely.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "eport/model/result.h"

namespace eport::json {

// Hard limits of one parse. The defaults suit a configuration-sized document.
struct ReaderLimits {
  std::size_t max_bytes = 1 << 20;    // input longer than this is refused before parsing
  std::size_t max_depth = 64;         // arrays/objects nested deeper are refused (capped at kMaxDepthCap)
  std::size_t max_values = 1 << 20;   // every value counts (scalars, arrays, objects; keys do not)
};

// Nesting is never allowed deeper than this, whatever ReaderLimits says: each
// level costs one stack frame of the parser.
inline constexpr std::size_t kMaxDepthCap = 512;

struct Member;

class Value {
 public:
  enum class Type : std::uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_number() const { return type_ == Type::kNumber; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }

  // Each accessor is valid only for its type (checked by an assert-free
  // fallback: the wrong type gives false / 0 / empty).
  bool as_bool() const { return type_ == Type::kBool && bool_; }
  double as_number() const { return type_ == Type::kNumber ? number_ : 0.0; }
  // For numbers: the literal as written ("1.50e3"); for strings: the decoded
  // UTF-8 text.
  const std::string& text() const { return text_; }
  const std::vector<Value>& items() const { return items_; }      // arrays
  const std::vector<Member>& members() const;                      // objects, in document order
  // The member named `key` of an object, or nullptr (also for non-objects).
  const Value* find(std::string_view key) const;

  // Where the value starts in the input (byte offset from 0).
  std::size_t offset() const { return offset_; }

  static std::string_view type_name(Type t);

 private:
  friend class Parser;
  Type type_ = Type::kNull;
  bool bool_ = false;
  double number_ = 0.0;
  std::size_t offset_ = 0;
  std::string text_;
  std::vector<Value> items_;
  std::vector<Member> members_;
};

struct Member {
  std::string key;
  Value value;
};

inline const std::vector<Member>& Value::members() const { return members_; }

// Parses exactly one JSON text (surrounding whitespace allowed). The error
// names the problem and its place, e.g.
//   "duplicate key \"id\" (first at byte 3) at byte 17 (line 2, column 5)".
[[nodiscard]] Result<Value> parse(std::string_view text, const ReaderLimits& limits = {});

// "at byte N (line L, column C)" for offset in text: the suffix of every
// reader error, for callers that report problems found in a parsed value.
std::string describe_offset(std::string_view text, std::size_t offset);

}  // namespace eport::json
