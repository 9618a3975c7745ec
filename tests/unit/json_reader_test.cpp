// eport::json reader: what it accepts (the DOM, member order, numbers as
// double plus their text, escapes and UTF-8), and the table of malformed
// texts it refuses, each with the message and the place it names.
#include <catch2/catch.hpp>

#include <string>

#include "eport/json/reader.h"

using eport::json::parse;
using eport::json::ReaderLimits;
using eport::json::Value;

TEST_CASE("json reader builds the DOM with member order, numbers and their text", "[json][reader]") {
  auto r = parse(" {\"z\": 1.50e1, \"a\": [true, false, null], \"s\": \"\\u00e9\\ud83d\\ude80\\n\\/\", \"o\": {}}\n");
  REQUIRE(r.ok());
  const Value& v = *r;
  REQUIRE(v.is_object());
  REQUIRE(v.members().size() == 4);
  CHECK(v.members()[0].key == "z");  // document order, not sorted
  CHECK(v.members()[1].key == "a");
  CHECK(v.find("z")->as_number() == 15.0);
  CHECK(v.find("z")->text() == "1.50e1");
  CHECK(v.find("z")->offset() == 7);
  REQUIRE(v.find("a")->items().size() == 3);
  CHECK(v.find("a")->items()[0].as_bool());
  CHECK(v.find("a")->items()[1].is_bool());
  CHECK(v.find("a")->items()[2].is_null());
  CHECK(v.find("s")->text() == "\xc3\xa9\xf0\x9f\x9a\x80\n/");
  CHECK(v.find("o")->is_object());
  CHECK(v.find("missing") == nullptr);
  CHECK(parse("-0")->as_number() == 0.0);
  CHECK(parse("1e-400")->as_number() == 0.0);  // underflow is zero, not an error
  CHECK(parse("\"\xe6\xb8\xaf\"")->text() == "\xe6\xb8\xaf");
}

TEST_CASE("json reader refuses malformed text naming the problem and its byte, line and column", "[json][reader]") {
  struct Row {
    std::string in;
    std::string message;
  };
  const Row table[] = {
      {"", "unexpected end of input, expected a value at byte 0 (line 1, column 1)"},
      {"[1] x", "unexpected 'x' after the JSON value at byte 4 (line 1, column 5)"},
      {"{} {}", "unexpected '{' after the JSON value at byte 3 (line 1, column 4)"},
      {"{\"id\":1,\n \"id\":2}", "duplicate key \"id\" (first at byte 1) at byte 10 (line 2, column 2)"},
      {"[01]", "number with a leading zero at byte 1 (line 1, column 2)"},
      {"[-01]", "number with a leading zero at byte 1 (line 1, column 2)"},
      {"[NaN]", "NaN and Infinity are not JSON numbers at byte 1 (line 1, column 2)"},
      {"[-Infinity]", "NaN and Infinity are not JSON numbers at byte 1 (line 1, column 2)"},
      {"[1e400]", "number out of range at byte 1 (line 1, column 2)"},
      {"[1.]", "unexpected ']', expected a digit after the decimal point at byte 3 (line 1, column 4)"},
      {"[1e]", "unexpected ']', expected a digit in the exponent at byte 3 (line 1, column 4)"},
      {"[+1]", "unexpected '+', expected a value at byte 1 (line 1, column 2)"},
      {"[.5]", "unexpected '.', expected a value at byte 1 (line 1, column 2)"},
      {"\"\\ud800\"", "lone high surrogate \\u escape in a string at byte 1 (line 1, column 2)"},
      {"\"\\ud800\\u0041\"", "lone high surrogate \\u escape in a string at byte 1 (line 1, column 2)"},
      {"\"\\udc00\"", "lone low surrogate \\u escape in a string at byte 1 (line 1, column 2)"},
      {"\"\\u12g4\"", "invalid hex digit in \\u escape at byte 5 (line 1, column 6)"},
      {"\"\\x\"", "invalid escape \\x in a string at byte 1 (line 1, column 2)"},
      {"\"\xc0\xaf\"", "invalid UTF-8 byte 0xC0 in a string at byte 1 (line 1, column 2)"},
      {"\"\xed\xa0\x80\"", "invalid UTF-8 byte 0xED in a string at byte 1 (line 1, column 2)"},
      {"\"ab\xe6\xb8\"", "invalid UTF-8 byte 0xE6 in a string at byte 3 (line 1, column 4)"},
      {"\"a\tb\"", "control byte 0x09 in a string (escape it) at byte 2 (line 1, column 3)"},
      {"\"abc", "unterminated string (opened at byte 0) at byte 4 (line 1, column 5)"},
      {"[1,]", "unexpected ']', expected a value at byte 3 (line 1, column 4)"},
      {"[1 2]", "unexpected '2', expected ',' or ']' at byte 3 (line 1, column 4)"},
      {"{\"a\" 1}", "unexpected '1', expected ':' at byte 5 (line 1, column 6)"},
      {"{\"a\":1,}", "unexpected '}', expected a string key at byte 7 (line 1, column 8)"},
      {"{a:1}", "unexpected 'a', expected a string key at byte 1 (line 1, column 2)"},
      {"[tru]", "unexpected 't', expected a value at byte 1 (line 1, column 2)"},
      {"// c\n1", "unexpected '/', expected a value at byte 0 (line 1, column 1)"},
      {"\xef\xbb\xbf{}", "unexpected 0xEF, expected a value at byte 0 (line 1, column 1)"},
      {"{\"a\":[1,\n2,\n", "unexpected end of input, expected a value at byte 12 (line 3, column 1)"},
  };
  for (const auto& row : table) {
    INFO("input: " << row.in);
    auto r = parse(row.in);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() == row.message);
  }
}

TEST_CASE("json reader enforces the caller's limits on bytes, depth and values", "[json][reader]") {
  ReaderLimits limits;
  limits.max_bytes = 8;
  CHECK(parse("[1,2,3,4]", limits).error() == "input is 9 bytes (at most 8)");
  limits = {};
  limits.max_depth = 3;
  CHECK(parse("[[[1]]]", limits).ok());
  CHECK(parse("[[[[1]]]]", limits).error() == "nesting deeper than 3 levels at byte 3 (line 1, column 4)");
  CHECK(parse("{\"a\":{\"b\":{\"c\":{}}}}", limits).error() ==
        "nesting deeper than 3 levels at byte 15 (line 1, column 16)");
  limits = {};
  limits.max_values = 4;
  CHECK(parse("[1,2,3]", limits).ok());
  CHECK(parse("[1,2,3,4]", limits).error() == "more than 4 values at byte 7 (line 1, column 8)");
  // Hostile nesting far beyond any limit is refused, not a stack overflow,
  // even when the caller asks for more than the cap.
  limits = {};
  limits.max_depth = 1 << 30;
  const std::string deep(100000, '[');
  auto r = parse(deep, limits);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().rfind("nesting deeper than 512 levels at byte 512", 0) == 0);
}
