// GpsdSource end to end: gpsfake replays tests/data/yangshan_truck.nmea into
// its own gpsd on a free loopback port; the positions read through libgps must
// match those the NMEA parser gets from the same log; loading libgps at run
// time refuses a missing or foreign library by name and tries a failed load
// again. Exits 77 (ctest SKIP)
// when gpsfake, gpsd or python3-gps are not installed.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "eport/gnss/fix_assembler.h"
#include "eport/gnss/gpsd_source.h"
#include "eport/gnss/line_framer.h"
#include "gnss_test_util.h"
#include "libgps.h"  // agent/gnss/src: the run-time loading of libgps

using eport::gnss::AssemblerOptions;
using eport::gnss::GpsdOptions;
using eport::gnss::GpsdSource;
using eport::gnss::testing::data_path;
using eport::gnss::testing::read_file;
using eport::model::Position;
using eport::model::Reading;
using namespace std::chrono_literals;

namespace {

constexpr const char* kGpsfake = "/usr/bin/gpsfake";
constexpr const char* kPython = "/usr/bin/python3";  // gpsfake's interpreter, with Debian's python3-gps
constexpr const char* kPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Why the test cannot run here, or empty.
std::string missing_prerequisite() {
  if (::access(kGpsfake, X_OK) != 0) return std::string(kGpsfake) + " not found (Debian: gpsd-clients)";
  if (::access("/usr/sbin/gpsd", X_OK) != 0) return "/usr/sbin/gpsd not found (Debian: gpsd)";
  if (std::system("/usr/bin/python3 -c 'import gps.fake' >/dev/null 2>&1") != 0) {
    return "python module gps.fake not importable by /usr/bin/python3 (Debian: python3-gps)";
  }
  return {};
}

std::uint16_t free_loopback_port() {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(s >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  ::close(s);
  return ntohs(a.sin_port);
}

// gpsfake in its own process group (it starts gpsd as a child); killed as a
// group on destruction.
struct Gpsfake {
  Gpsfake(std::uint16_t port, const std::string& log, const std::string& out) {
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::setpgid(0, 0);
      const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      ::setenv("PATH", kPath, 1);
      const std::string p = std::to_string(port);
      // -1: play the log once; -c: seconds between sentences (14 per epoch).
      ::execl(kPython, kPython, kGpsfake, "-q", "-1", "-P", p.c_str(), "-c", "0.004", log.c_str(),
              static_cast<char*>(nullptr));
      std::_Exit(127);
    }
    ::setpgid(pid, pid);
  }
  ~Gpsfake() {
    ::kill(-pid, SIGTERM);
    for (int i = 0; i < 20; ++i) {
      if (::waitpid(pid, nullptr, WNOHANG) == pid) return;
      std::this_thread::sleep_for(100ms);
    }
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  pid_t pid = -1;
};

AssemblerOptions options() {
  AssemblerOptions o;
  o.source_id = "gw-yangshan-01";
  o.min_interval = 0ms;
  return o;
}

}  // namespace

TEST_CASE("gpsd: positions via gpsfake match the NMEA parser's for the same log", "[gnss]") {
  const std::string log = data_path("yangshan_truck.nmea");

  // What the NMEA parser makes of the log, by time.
  std::map<std::uint64_t, Position> expected;
  {
    eport::gnss::FixAssembler a(options(), nullptr);
    eport::gnss::LineFramer f(256);
    auto keep = [&](const std::optional<Reading>& r) {
      if (r) expected[r->time_utc_ms] = std::get<Position>(r->payload);
    };
    f.feed(read_file(log), [&](std::string_view l) { keep(a.feed_line(l)); });
    keep(a.flush());
  }
  REQUIRE(expected.size() == 253);

  const std::uint16_t port = free_loopback_port();
  const std::string out = "/tmp/gnss_gpsfake_" + std::to_string(::getpid()) + ".log";
  Gpsfake fake(port, log, out);

  std::vector<Reading> got;
  std::uint64_t seq = 1;
  std::unique_ptr<GpsdSource> src;
  const auto connect_deadline = std::chrono::steady_clock::now() + 15s;
  std::string last_error;
  while (!src && std::chrono::steady_clock::now() < connect_deadline) {
    auto r = GpsdSource::connect(GpsdOptions{"127.0.0.1", port}, options(), [&seq] { return seq++; },
                                 [&got](Reading rd) { got.push_back(std::move(rd)); });
    if (r) {
      src = std::move(r.value());
    } else {
      last_error = r.error();
      std::this_thread::sleep_for(50ms);
    }
  }
  INFO("gpsfake output in " << out);
  REQUIRE(src != nullptr);

  // Read until the last epoch of the log arrived, gpsd went away, or 60 s.
  const std::uint64_t last_time = expected.rbegin()->first;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = src->poll_once(200ms);
    if (!r) break;  // gpsfake finished and took gpsd down
    if (!got.empty() && got.back().time_utc_ms >= last_time - 1000) break;
  }
  src->flush();
  const auto counters = src->counters();
  INFO("gpsd readings " << got.size() << ", epochs " << counters.epochs << ", no fix " << counters.skipped_no_fix);

  // gpsd misses the first cycles while it identifies the device; the rest
  // must all be there.
  REQUIRE(got.size() >= 200);
  std::size_t satellites_reported = 0;
  for (const Reading& r : got) {
    INFO("time " << r.time_utc_ms);
    CHECK(r.source_id == "gw-yangshan-01");
    const auto it = expected.find(r.time_utc_ms);
    REQUIRE(it != expected.end());
    const Position& e = it->second;
    const auto& p = std::get<Position>(r.payload);
    // gpsd holds degrees as doubles and prints 9 decimals: allow 1e-7 deg (1.1 cm).
    CHECK(std::abs(p.lat_e7 - e.lat_e7) <= 1);
    CHECK(std::abs(p.lon_e7 - e.lon_e7) <= 1);
    CHECK(p.fix == e.fix);
    // Speed: gpsd m/s with 3 decimals vs our VTG km/h; 1 cm/s.
    REQUIRE(p.speed_cm_s.has_value());
    REQUIRE(e.speed_cm_s.has_value());
    CHECK(std::abs(int{*p.speed_cm_s} - int{*e.speed_cm_s}) <= 1);
    // Course: 0.01 deg, absent when the log leaves it empty (stopped).
    CHECK(p.heading_cdeg.has_value() == e.heading_cdeg.has_value());
    if (p.heading_cdeg && e.heading_cdeg) CHECK(std::abs(int{*p.heading_cdeg} - int{*e.heading_cdeg}) <= 1);
    // HDOP: gpsd passes the receiver's 2-decimal value through; lags by at
    // most the SKY of the same epoch, so compare when present.
    if (p.hdop_centi) CHECK(std::abs(int{*p.hdop_centi} - int{*e.hdop_centi}) <= 1);
    // Satellites: gpsd 3.22 counts the used flags of its sky view, which it
    // does not fill for every GN-talker GSA; not compared, only sanity.
    if (p.satellites > 0) ++satellites_reported;
    CHECK(p.satellites <= 32);
  }
  CHECK(satellites_reported > 0);
  CHECK(counters.positions == got.size());
  std::remove(out.c_str());  // kept only when a REQUIRE stopped the test
}

TEST_CASE("libgps: a missing or foreign library is refused by name; the real one loads once", "[gnss]") {
  auto missing = eport::gnss::detail::load_libgps("libeport-absent.so.3");
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error(), Catch::Contains("libeport-absent.so.3 could not be loaded") &&
                                  Catch::Contains("install libeport-absent3 for gnss.source = \"gpsd\""));
  auto foreign = eport::gnss::detail::load_libgps("libc.so.6");
  REQUIRE_FALSE(foreign);
  CHECK_THAT(foreign.error(), Catch::Contains("libc.so.6 lacks gps_open, gps_close, gps_stream, gps_read, "
                                              "gps_waiting, gps_errstr: not the libgps this agent was built for"));
  auto first = eport::gnss::detail::libgps();
  REQUIRE(first);
  CHECK((*first)->open != nullptr);
  auto again = eport::gnss::detail::libgps();
  REQUIRE(again);
  CHECK(*again == *first);
}

TEST_CASE("libgps: a load that failed is tried again, one that worked is kept", "[gnss]") {
  // The real library's file, under a name that does not exist yet.
  auto real = eport::gnss::detail::libgps();
  REQUIRE(real);
  Dl_info info{};
  REQUIRE(dladdr(reinterpret_cast<void*>((*real)->open), &info) != 0);
  REQUIRE(info.dli_fname != nullptr);
  char dir_template[] = "/tmp/eport-libgps-XXXXXX";
  REQUIRE(mkdtemp(dir_template) != nullptr);
  const std::string later = std::string(dir_template) + "/libgps-installed-later.so.1";

  eport::gnss::detail::LibGpsOnce once;
  auto before = once.get(later.c_str());  // not installed yet
  REQUIRE_FALSE(before);
  CHECK_THAT(before.error(), Catch::Contains("could not be loaded"));
  REQUIRE(symlink(info.dli_fname, later.c_str()) == 0);  // "installed" while running
  auto after = once.get(later.c_str());
  REQUIRE(after);
  CHECK((*after)->open == (*real)->open);
  REQUIRE(unlink(later.c_str()) == 0);  // gone again: the table that worked is kept
  auto kept = once.get(later.c_str());
  REQUIRE(kept);
  CHECK(*kept == *after);
  rmdir(dir_template);
}

int main(int argc, char* argv[]) {
  if (const std::string why = missing_prerequisite(); !why.empty()) {
    std::printf("SKIPPED: gpsd test: %s\n", why.c_str());
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
