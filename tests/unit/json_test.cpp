// eport::json: the escaping table (every control byte, quotes, backslash,
// DEL, UTF-8 kept, invalid UTF-8 replaced) and the object writer.
#include <catch2/catch.hpp>

#include <string>

#include "eport/json/json.h"

using eport::json::quote;

TEST_CASE("json escapes every control byte as \\u00XX and never drops one", "[json]") {
  struct Row {
    std::string in;
    std::string out;
  };
  const Row table[] = {
      {"", "\"\""},
      {"plain TU-0042", "\"plain TU-0042\""},
      {std::string("\0", 1), "\"\\u0000\""},
      {std::string("a\0b", 3), "\"a\\u0000b\""},
      {"\x01", "\"\\u0001\""},
      {"\x1f", "\"\\u001f\""},
      {"\n\r\t", "\"\\u000a\\u000d\\u0009\""},
      {"\x7f", "\"\\u007f\""},
      {" ", "\" \""},
      {"~", "\"~\""},
      {"\"", "\"\\\"\""},
      {"\\", "\"\\\\\""},
      {"say \"hi\"\\", "\"say \\\"hi\\\"\\\\\""},
      {"/", "\"/\""},
  };
  for (const auto& row : table) {
    INFO("input bytes: " << row.in.size());
    CHECK(quote(row.in) == row.out);
  }
  // Each of the 32 bytes below 0x20 comes out as the six characters \u00XX.
  for (int c = 0; c < 0x20; ++c) CHECK(quote(std::string(1, static_cast<char>(c))).size() == 8);
}

TEST_CASE("json keeps valid UTF-8 and replaces each ill-formed subpart with one U+FFFD", "[json]") {
  CHECK(quote("ü") == "\"ü\"");                      // 2 bytes
  CHECK(quote("港") == "\"港\"");                    // 3 bytes
  CHECK(quote("\xF0\x9F\x9A\xA2") == "\"\xF0\x9F\x9A\xA2\"");  // U+1F6A2, 4 bytes
  CHECK(quote("\xff") == "\"\\ufffd\"");               // never a UTF-8 byte
  CHECK(quote("a\xc3") == "\"a\\ufffd\"");             // truncated sequence
  CHECK(quote("\xe6\xb8") == "\"\\ufffd\"");           // truncated 3-byte sequence: one subpart
  CHECK(quote("\xe6\xb8x") == "\"\\ufffdx\"");         // ... followed by ASCII
  CHECK(quote("\xef\xbf\xbd") == "\"\xef\xbf\xbd\"");  // a genuine U+FFFD stays as it is
  CHECK(quote("\xc0\xaf") == "\"\\ufffd\\ufffd\"");    // overlong '/'
  CHECK(quote("\xed\xa0\x80") == "\"\\ufffd\\ufffd\\ufffd\"");  // surrogate U+D800
  CHECK(quote("\xf4\x90\x80\x80") == "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");  // above U+10FFFF
  CHECK(quote("\x80x") == "\"\\ufffdx\"");             // lone continuation byte
}

TEST_CASE("json object writes keys in order with escaped keys and values", "[json]") {
  eport::json::Object o;
  o.add("gateway", "gw\x01").add("n", 42).add("big", std::uint64_t{18446744073709551615ull}).add("neg", -7);
  o.add("ok", true).add_raw("queue", "{\"alarm\":1}").add("k\"ey", std::string("v"));
  CHECK(std::move(o).str() ==
        "{\"gateway\":\"gw\\u0001\",\"n\":42,\"big\":18446744073709551615,\"neg\":-7,\"ok\":true,"
        "\"queue\":{\"alarm\":1},\"k\\\"ey\":\"v\"}");
  CHECK(eport::json::Object().str() == "{}");
}
