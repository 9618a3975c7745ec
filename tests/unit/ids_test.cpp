// [ids] The topic-safe id rule (eport/model/ids.h): what passes, what is
// refused, and that the reason names the byte and its position without
// echoing raw control bytes.
#include <catch2/catch.hpp>

#include "eport/model/ids.h"

using namespace eport::model;

namespace {
constexpr const char* kRule = "(not allowed: + # / . * > space, control and non-ASCII bytes)";
}

TEST_CASE("topic-safe ids pass", "[ids]") {
  for (std::string id : {std::string("cnsha"), std::string("gw-yangshan-01"), std::string("GW_01"), std::string("a"),
                         std::string("~!@$%^&()=[]{}|;:'\",<?`\\"), std::string(64, 'x')}) {
    INFO(id);
    CHECK(topic_id_problem(id).empty());
  }
  CHECK(topic_id_problem(std::string(32, 'u'), 32).empty());
}

TEST_CASE("ids that are not topic-safe are refused, naming the byte and its position", "[ids]") {
  struct Case {
    std::string id;
    std::string expected;
  };
  const std::string rule = kRule;
  std::vector<Case> cases = {
      {"", "is empty"},
      {std::string(65, 'x'), "is 65 bytes long (at most 64)"},
      {"gw+01", "contains '+' at byte 3 " + rule},
      {"gw#01", "contains '#' at byte 3 " + rule},
      {"gw/01", "contains '/' at byte 3 " + rule},
      {"gw.01", "contains '.' at byte 3 " + rule},
      {"gw*01", "contains '*' at byte 3 " + rule},
      {"gw>01", "contains '>' at byte 3 " + rule},
      {"gw 01", "contains ' ' at byte 3 " + rule},
      {"gw\t01", "contains '\\x09' at byte 3 " + rule},
      {"gw\x7f" "01", "contains '\\x7F' at byte 3 " + rule},
      {"caf\xc3\xa9", "contains '\\xC3' at byte 4 " + rule},
      {std::string("gw\0" "01", 5), "contains '\\x00' at byte 3 " + rule},
      {".", "contains '.' at byte 1 " + rule},
      {"gw-01.", "contains '.' at byte 6 " + rule},
  };
  for (const auto& c : cases) {
    INFO(quoted_id(c.id));
    CHECK(topic_id_problem(c.id) == c.expected);
  }
}

TEST_CASE("unit ids use the same rule with their own length", "[ids]") {
  CHECK(topic_id_problem(std::string(33, 'u'), 32) == "is 33 bytes long (at most 32)");
  CHECK(topic_id_problem("tcu 0011", 32) == std::string("contains ' ' at byte 4 ") + kRule);
}

TEST_CASE("quoted ids never carry raw control bytes", "[ids]") {
  CHECK(quoted_id("gw-01") == "\"gw-01\"");
  CHECK(quoted_id(std::string("a\0b\x1b\"\\ \xc3", 8)) == "\"a\\x00b\\x1B\\x22\\x5C \\xC3\"");
  CHECK(kMaxTopicIdLength == 64);
}
