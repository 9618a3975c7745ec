// [log] Text from outside can never forge a log line: control bytes in a
// component or message are written as \xNN, one entry stays one line.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "eport/log/log.h"
#include "test_util.h"

using namespace eport;

namespace {
// Everything log::write puts on stderr while `f` runs.
template <class F>
std::string captured_stderr(F f) {
  test::TempDir dir;
  auto path = dir.file("stderr.txt");
  std::fflush(stderr);
  int saved = dup(STDERR_FILENO);
  FILE* out = std::fopen(path.c_str(), "w");
  REQUIRE(out != nullptr);
  dup2(fileno(out), STDERR_FILENO);
  f();
  std::fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  std::fclose(out);
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

TEST_CASE("a command id with a newline cannot forge a second log line", "[log]") {
  std::string forged = "c-1\n2026-12-01T00:00:00.000Z error store: outbox wiped\x1b[2J";
  auto text = captured_stderr([&] { log::warn("uplink", "command " + forged + " refused"); });
  CHECK(std::count(text.begin(), text.end(), '\n') == 1);
  CHECK(text.find("c-1\\x0a2026-12-01T00:00:00.000Z error store: outbox wiped\\x1b[2J refused") != std::string::npos);
  CHECK(text.find('\x1b') == std::string::npos);
}

TEST_CASE("escape_control keeps printable text and escapes every control byte", "[log]") {
  CHECK(log::escape_control("unit TU-0042 /dev/ttyUSB0 ü") == "unit TU-0042 /dev/ttyUSB0 ü");
  CHECK(log::escape_control(std::string("a\0b", 3)) == "a\\x00b");
  CHECK(log::escape_control("\t\r\x7f") == "\\x09\\x0d\\x7f");
}
