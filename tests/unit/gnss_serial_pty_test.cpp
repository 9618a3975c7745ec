// SerialSource against a pseudo-terminal pair: the test writes NMEA bytes to
// the master, the source opens the slave by name as it would /dev/ttyUSB0.
// Covers termios setup, line framing over arbitrary chunks, over-long lines,
// baud validation and the device going away.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "eport/gnss/fix_assembler.h"
#include "eport/gnss/line_framer.h"
#include "eport/gnss/serial_source.h"
#include "eport/tty/tty.h"
#include "gnss_test_util.h"

using eport::gnss::AssemblerOptions;
using eport::gnss::FixAssembler;
using eport::gnss::LineFramer;
using eport::gnss::SerialOptions;
using eport::gnss::SerialSource;
using eport::gnss::testing::data_path;
using eport::gnss::testing::read_file;
using eport::gnss::testing::with_checksum;
using eport::model::Reading;
using namespace std::chrono_literals;

namespace {

// A pty pair (eport::tty, as eport-sim makes them) and the slave's path.
// Both ends are closed on destruction.
struct Pty {
  Pty() {
    auto p = eport::tty::open_pty_pair();
    REQUIRE(p.ok());
    master = p->master;
    keeper = p->slave_keeper;
    slave = p->slave_path;
  }
  ~Pty() {
    close_master();
    if (keeper >= 0) ::close(keeper);
  }
  void close_master() {
    if (master >= 0) ::close(master);
    master = -1;
  }
  // Writes everything, waiting while the pty buffer is full (the master is
  // non-blocking).
  void write_all(std::string_view bytes) const {
    while (!bytes.empty()) {
      const ssize_t n = ::write(master, bytes.data(), std::min<std::size_t>(bytes.size(), 512));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        pollfd p{master, POLLOUT, 0};
        ::poll(&p, 1, 100);
        continue;
      }
      if (n <= 0) FAIL("write to pty master: " << std::strerror(errno));
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  int keeper = -1;
  int master = -1;
  std::string slave;
};

AssemblerOptions options() {
  AssemblerOptions o;
  o.source_id = "gw-yangshan-01";
  o.min_interval = 0ms;
  return o;
}

// Opens the source on the pty slave, collecting readings.
struct Fixture {
  explicit Fixture(int baud = 9600, std::size_t max_line = 256) {
    SerialOptions s;
    s.device = pty.slave;
    s.baud = baud;
    s.max_line_bytes = max_line;
    auto r = SerialSource::open(
        s, options(), [this] { return next_seq++; },
        [this](Reading rd) {
          std::lock_guard lock(mu);
          readings.push_back(std::move(rd));
        });
    if (!r) FAIL(r.error());
    source = std::move(r.value());
  }
  // Polls until `n` readings arrived or 10 s passed.
  void poll_until(std::size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (count() < n && std::chrono::steady_clock::now() < deadline) {
      auto r = source->poll_once(50ms);
      if (!r) FAIL(r.error());
    }
  }
  std::size_t count() {
    std::lock_guard lock(mu);
    return readings.size();
  }

  Pty pty;
  std::uint64_t next_seq = 1;
  std::mutex mu;
  std::vector<Reading> readings;
  std::unique_ptr<SerialSource> source;
};

std::vector<Reading> parser_replay(const std::string& bytes) {
  std::uint64_t seq = 1;
  FixAssembler a(options(), [&seq] { return seq++; });
  LineFramer f(256);
  std::vector<Reading> out;
  f.feed(bytes, [&](std::string_view l) {
    if (auto r = a.feed_line(l)) out.push_back(*r);
  });
  if (auto r = a.flush()) out.push_back(*r);
  return out;
}

}  // namespace

TEST_CASE("serial: a log written to a pty yields the same readings as the parser replay", "[gnss]") {
  Fixture f(115200);
  const std::string log = read_file(data_path("yangshan_truck.nmea"));
  const auto expected = parser_replay(log);
  REQUIRE(expected.size() == 253);
  // A writer thread: the pty buffer holds only a few KB.
  std::jthread writer([&] { f.pty.write_all(log); });
  // Read every line (the last epoch closes only on flush, so count lines).
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (f.source->counters().lines < 3640 && std::chrono::steady_clock::now() < deadline) {
    REQUIRE(f.source->poll_once(50ms).ok());
  }
  writer.join();
  f.source->flush();
  REQUIRE(f.readings.size() == expected.size());
  CHECK(f.readings == expected);
  const auto c = f.source->counters();
  CHECK(c.lines == 3640);
  CHECK(c.rejected_total() == 0);
  CHECK(c.overlong_lines == 0);
}

TEST_CASE("serial: the tty is set to raw 8N1 at the requested baud rate", "[gnss]") {
  for (const int baud : {4800, 9600, 19200, 38400, 57600, 115200, 230400}) {
    Fixture f(baud);
    const int fd = ::open(f.pty.slave.c_str(), O_RDWR | O_NOCTTY);
    REQUIRE(fd >= 0);
    termios t{};
    REQUIRE(::tcgetattr(fd, &t) == 0);
    ::close(fd);
    INFO("baud " << baud);
    const speed_t want = baud == 4800     ? B4800
                         : baud == 9600   ? B9600
                         : baud == 19200  ? B19200
                         : baud == 38400  ? B38400
                         : baud == 57600  ? B57600
                         : baud == 115200 ? B115200
                                          : B230400;
    CHECK(::cfgetispeed(&t) == want);
    CHECK(::cfgetospeed(&t) == want);
    CHECK((t.c_cflag & CSIZE) == CS8);
    CHECK((t.c_cflag & (PARENB | CSTOPB | CRTSCTS)) == 0);
    CHECK((t.c_lflag & (ICANON | ECHO | ISIG)) == 0);
    CHECK((t.c_iflag & (ICRNL | IXON)) == 0);
  }
}

TEST_CASE("serial: an over-long line is dropped and counted, reading resumes at the next line", "[gnss]") {
  Fixture f(9600, 128);
  std::string epoch1 = with_checksum("GNRMC,120000.00,A,3037.12340,N,12203.60000,E,0.5,,140524,,,A,V") + "\r\n";
  std::string epoch2 = with_checksum("GNRMC,120001.00,A,3037.12341,N,12203.60000,E,0.5,,140524,,,A,V") + "\r\n";
  // 1000 bytes of noise without a newline, ending mid-way into a sentence.
  const std::string noise = std::string(1000, 'Z') + "$GNRMC,1200";
  f.pty.write_all(epoch1 + noise + "\r\n" + epoch2);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (f.source->counters().lines < 2 && std::chrono::steady_clock::now() < deadline) {
    REQUIRE(f.source->poll_once(50ms).ok());
  }
  f.source->flush();
  REQUIRE(f.readings.size() == 2);
  CHECK(std::get<eport::model::Position>(f.readings[1].payload).lat_e7 == 306187235);
  const auto c = f.source->counters();
  CHECK(c.overlong_lines == 1);
  CHECK(c.lines == 2);  // the noise never reached the parser
}

TEST_CASE("serial: bytes split anywhere across reads still frame correctly", "[gnss]") {
  Fixture f;
  const std::string log = read_file(data_path("yangshan_truck.nmea")).substr(0, 14 * 80 * 6);
  const auto expected = parser_replay(log);
  REQUIRE(expected.size() >= 3);
  for (std::size_t i = 0; i < log.size(); i += 7) {  // 7-byte writes, read as they come
    f.pty.write_all(log.substr(i, 7));
    REQUIRE(f.source->poll_once(0ms).ok());
  }
  const auto lines = static_cast<std::uint64_t>(std::count(log.begin(), log.end(), '\n'));
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (f.source->counters().lines < lines && std::chrono::steady_clock::now() < deadline) {
    REQUIRE(f.source->poll_once(50ms).ok());
  }
  f.source->flush();
  CHECK(f.source->counters().lines == lines);
  CHECK(f.readings == expected);
}

TEST_CASE("serial: bad configuration and missing devices fail with a message", "[gnss]") {
  SerialOptions s;
  s.device = "/dev/null";
  s.baud = 31250;
  auto r = SerialSource::open(s, options(), nullptr, nullptr);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error() ==
        "serial /dev/null: unsupported baud rate 31250 (use 4800, 9600, 19200, 38400, 57600, 115200 or 230400)");
  CHECK_FALSE(eport::gnss::is_supported_baud(0));

  s.baud = 9600;
  r = SerialSource::open(s, options(), nullptr, nullptr);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error() == "serial /dev/null: not a tty");

  s.device = "/dev/ttyGNSS-does-not-exist";
  r = SerialSource::open(s, options(), nullptr, nullptr);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error() == "serial /dev/ttyGNSS-does-not-exist: open: No such file or directory");

  s.device = "/dev/null";
  s.max_line_bytes = 40;
  r = SerialSource::open(s, options(), nullptr, nullptr);
  REQUIRE_FALSE(r.ok());
}

TEST_CASE("serial: run() returns an error when the device goes away, nothing when stopped", "[gnss]") {
  SECTION("hangup") {
    Fixture f;
    std::optional<eport::Error> result;
    std::jthread t([&](std::stop_token st) { result = f.source->run(st, 50ms); });
    f.pty.write_all(with_checksum("GNRMC,120000.00,A,3037.12340,N,12203.60000,E,0.5,,140524,,,A,V") + "\r\n");
    std::this_thread::sleep_for(100ms);
    f.pty.close_master();  // like unplugging the USB receiver
    t.join();
    REQUIRE(result.has_value());
    CHECK(result->message.rfind("serial " + f.pty.slave + ": ", 0) == 0);
    CHECK(f.readings.size() == 1);  // the open epoch was flushed on the way out
  }
  SECTION("stop requested") {
    Fixture f;
    std::optional<eport::Error> result{eport::Error{"not run"}};
    std::jthread t([&](std::stop_token st) { result = f.source->run(st, 20ms); });
    std::this_thread::sleep_for(100ms);
    t.request_stop();
    t.join();
    CHECK_FALSE(result.has_value());
  }
}
