// eport::flags: strict number parsing ("12x", "", "-1" for an unsigned,
// overflow, non-finite reals all refused, naming the flag) and the argv
// cursor's missing-value message.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "eport/flags/flags.h"

namespace flags = eport::flags;

TEST_CASE("flags accept whole numbers within the type's range", "[flags]") {
  CHECK(*flags::parse<int>("--units", "12") == 12);
  CHECK(*flags::parse<int>("--units", "0") == 0);
  CHECK(*flags::parse<long long>("--count", "-5") == -5);
  CHECK(*flags::parse<std::uint64_t>("--seed", "18446744073709551615") == 18446744073709551615ull);
  CHECK(*flags::parse<std::uint32_t>("--position", "4294967295") == 4294967295u);
  CHECK(*flags::parse<double>("--rate", "0.5") == 0.5);
  CHECK(*flags::parse<double>("--duration", "1e3") == 1000.0);
}

TEST_CASE("flags refuse malformed, negative and overflowing numbers, naming the flag", "[flags]") {
  struct Row {
    std::string flag, text, error;
  };
  const std::vector<Row> table = {
      {"--units", "12x", "bad number for --units: \"12x\" (not a whole number)"},
      {"--units", "", "bad number for --units: \"\" (empty)"},
      {"--units", " 5", "bad number for --units: \" 5\" (not a whole number)"},
      {"--units", "1.5", "bad number for --units: \"1.5\" (not a whole number)"},
      {"--units", "0x10", "bad number for --units: \"0x10\" (not a whole number)"},
      {"--units", "2147483648", "bad number for --units: \"2147483648\" (out of range -2147483648..2147483647)"},
      {"--seed", "-1", "bad number for --seed: \"-1\" (negative)"},
      {"--seed", "18446744073709551616", "bad number for --seed: \"18446744073709551616\" (out of range)"},
      {"--position", "4294967296", "bad number for --position: \"4294967296\" (out of range 0..4294967295)"},
      {"--rate", "abc", "bad number for --rate: \"abc\" (not a number)"},
      {"--rate", "-0.5", "bad number for --rate: \"-0.5\" (negative)"},
      {"--rate", "inf", "bad number for --rate: \"inf\" (not finite)"},
      {"--rate", "nan", "bad number for --rate: \"nan\" (not finite)"},
      {"--rate", "2s", "bad number for --rate: \"2s\" (not a number)"},
      {"--rate", "1e999", "bad number for --rate: \"1e999\" (out of range)"},
  };
  for (const auto& row : table) {
    INFO(row.flag << " " << row.text);
    std::string got;
    if (row.flag == "--units") got = flags::parse<int>(row.flag, row.text).error();
    else if (row.flag == "--seed") got = flags::parse<std::uint64_t>(row.flag, row.text).error();
    else if (row.flag == "--position") got = flags::parse<std::uint32_t>(row.flag, row.text).error();
    else got = flags::parse<double>(row.flag, row.text).error();
    CHECK(got == row.error);
  }
}

TEST_CASE("flags args hand out flags, values and a missing-value error", "[flags]") {
  std::vector<std::string> words = {"eport-sim", "--units", "3", "--rate", "2.5", "--quiet", "--count"};
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  flags::Args args(static_cast<int>(argv.size()), argv.data());
  REQUIRE(args.more());
  CHECK(args.next() == "--units");
  CHECK(*args.number<int>() == 3);
  CHECK(args.next() == "--rate");
  CHECK(*args.number<double>() == 2.5);
  CHECK(args.next() == "--quiet");
  CHECK(args.next() == "--count");
  auto missing = args.number<long long>();
  REQUIRE_FALSE(missing);
  CHECK(missing.error() == "missing value after --count");
  CHECK_FALSE(args.more());
}

TEST_CASE("flags counts refuse a minus sign also for signed types", "[flags]") {
  CHECK(*flags::parse_non_negative<long long>("--count", "40") == 40);
  CHECK(flags::parse_non_negative<long long>("--count", "-1").error() ==
        "bad number for --count: \"-1\" (negative)");
  CHECK(flags::parse_non_negative<int>("--units", "2147483648").error() ==
        "bad number for --units: \"2147483648\" (out of range 0..2147483647)");
  CHECK(flags::parse_non_negative<double>("--duration", "-2").error() ==
        "bad number for --duration: \"-2\" (negative)");
}
