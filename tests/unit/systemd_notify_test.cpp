// [systemd] What the agent tells systemd arrives as systemd would read it: the
// test binds its own datagram socket, points NOTIFY_SOCKET at it and checks
// every datagram (a path and, as systemd may hand out, an abstract name).
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

#include "eport/systemd/notify.h"

using namespace eport;
using namespace std::chrono_literals;

namespace {

// A stand-in for systemd's notification socket, in its own temporary
// directory; sets NOTIFY_SOCKET for its lifetime.
class FakeNotifySocket {
 public:
  FakeNotifySocket() {
    char tmpl[] = "/tmp/eport-notify.XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/notify.sock";
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path_.size() < sizeof(addr.sun_path));
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    REQUIRE(bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0);
    setenv("NOTIFY_SOCKET", path_.c_str(), 1);
  }
  ~FakeNotifySocket() {
    unsetenv("NOTIFY_SOCKET");
    close(fd_);
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }
  FakeNotifySocket(const FakeNotifySocket&) = delete;
  FakeNotifySocket& operator=(const FakeNotifySocket&) = delete;

  // The next datagram, or nullopt if none arrives within timeout.
  std::optional<std::string> receive(std::chrono::milliseconds timeout = 2000ms) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    char buf[4096];
    ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
  }

 private:
  std::string dir_;
  std::string path_;
  int fd_ = -1;
};

}  // namespace

TEST_CASE("ready, status, watchdog and stopping arrive as systemd reads them", "[systemd]") {
  FakeNotifySocket sock;

  CHECK(systemd::notify_ready("running: 0 units").sent());
  CHECK(sock.receive() == "READY=1\nSTATUS=running: 0 units");

  CHECK(systemd::notify_ready().sent());
  CHECK(sock.receive() == "READY=1");

  CHECK(systemd::notify_status("12 units, 3 waiting").sent());
  CHECK(sock.receive() == "STATUS=12 units, 3 waiting");

  CHECK(systemd::notify_watchdog().sent());
  CHECK(sock.receive() == "WATCHDOG=1");

  CHECK(systemd::notify_extend_timeout(30s).sent());
  CHECK(sock.receive() == "EXTEND_TIMEOUT_USEC=30000000");

  CHECK(systemd::notify_stopping("SIGTERM").sent());
  CHECK(sock.receive() == "STOPPING=1\nSTATUS=SIGTERM");
}

TEST_CASE("a newline in a status cannot smuggle in another assignment", "[systemd]") {
  FakeNotifySocket sock;
  CHECK(systemd::notify_status("broker down\nREADY=1\r\nWATCHDOG=1").sent());
  CHECK(sock.receive() == "STATUS=broker down READY=1  WATCHDOG=1");
}

TEST_CASE("without NOTIFY_SOCKET nothing is sent and the caller is told so", "[systemd]") {
  unsetenv("NOTIFY_SOCKET");
  auto r = systemd::notify_ready("x");
  CHECK(r.outcome == systemd::NotifyOutcome::kNoManager);
  CHECK(r.error_number == 0);
  CHECK(systemd::notify_watchdog().outcome == systemd::NotifyOutcome::kNoManager);
}

TEST_CASE("a NOTIFY_SOCKET that nobody listens on is reported as a failure", "[systemd]") {
  setenv("NOTIFY_SOCKET", "/nonexistent-eport-dir/notify.sock", 1);
  auto r = systemd::notify_watchdog();
  unsetenv("NOTIFY_SOCKET");
  CHECK(r.outcome == systemd::NotifyOutcome::kFailed);
  CHECK(r.error_number != 0);
}

TEST_CASE("a manager that stopped reading gets a failure (EAGAIN), never a blocked agent thread", "[systemd]") {
  FakeNotifySocket manager;  // read only at the end: its queue fills up
  std::atomic<bool> done{false};
  systemd::NotifyResult last{};
  int sent = 0;
  std::thread sender([&] {
    for (int i = 0; i < 100000; ++i) {
      last = systemd::notify_watchdog();
      if (last.outcome != systemd::NotifyOutcome::kSent) break;
      ++sent;
    }
    done = true;
  });
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!done && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  const bool blocked = !done;
  while (!done) (void)manager.receive(10ms);  // a blocked sender goes on once the queue drains
  sender.join();
  CHECK_FALSE(blocked);
  CHECK(sent > 0);
  CHECK(last.outcome == systemd::NotifyOutcome::kFailed);
  CHECK(last.error_number == EAGAIN);
}

TEST_CASE("the watchdog interval is systemd's only for the process it names", "[systemd]") {
  unsetenv("WATCHDOG_USEC");
  unsetenv("WATCHDOG_PID");
  CHECK_FALSE(systemd::watchdog_interval().has_value());

  setenv("WATCHDOG_USEC", "20000000", 1);  // WatchdogSec=20
  CHECK(systemd::watchdog_interval() == std::chrono::microseconds(20'000'000));

  setenv("WATCHDOG_PID", std::to_string(getpid()).c_str(), 1);
  CHECK(systemd::watchdog_interval() == std::chrono::microseconds(20'000'000));

  // Inherited from a parent that systemd watches: not ours to ping.
  setenv("WATCHDOG_PID", std::to_string(getpid() + 1).c_str(), 1);
  CHECK_FALSE(systemd::watchdog_interval().has_value());

  setenv("WATCHDOG_PID", std::to_string(getpid()).c_str(), 1);
  setenv("WATCHDOG_USEC", "0", 1);
  CHECK_FALSE(systemd::watchdog_interval().has_value());
  unsetenv("WATCHDOG_USEC");
  unsetenv("WATCHDOG_PID");
}

TEST_CASE("an abstract NOTIFY_SOCKET (@name) is reached in Linux's abstract namespace", "[systemd]") {
  const std::string name = "eport-notify-test-" + std::to_string(getpid());
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path + 1, name.data(), name.size());  // sun_path[0] = NUL: abstract
  REQUIRE(bind(fd, reinterpret_cast<const sockaddr*>(&addr),
               static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size())) == 0);
  setenv("NOTIFY_SOCKET", ("@" + name).c_str(), 1);
  CHECK(systemd::notify_ready("abstract").sent());
  unsetenv("NOTIFY_SOCKET");
  pollfd p{fd, POLLIN, 0};
  REQUIRE(poll(&p, 1, 2000) == 1);
  char buf[256];
  ssize_t n = recv(fd, buf, sizeof(buf), 0);
  close(fd);
  CHECK(std::string(buf, static_cast<std::size_t>(n > 0 ? n : 0)) == "READY=1\nSTATUS=abstract");
}

TEST_CASE("a NOTIFY_SOCKET that is neither a path nor @name is refused, not guessed at", "[systemd]") {
  for (const char* v : {"vsock:2:1234", "relative/notify.sock"}) {
    setenv("NOTIFY_SOCKET", v, 1);
    auto r = systemd::notify_watchdog();
    CHECK(r.outcome == systemd::NotifyOutcome::kFailed);
    CHECK(r.error_number == EAFNOSUPPORT);
  }
  // Longer than sun_path holds.
  setenv("NOTIFY_SOCKET", ("/" + std::string(200, 'x')).c_str(), 1);
  CHECK(systemd::notify_watchdog().outcome == systemd::NotifyOutcome::kFailed);
  unsetenv("NOTIFY_SOCKET");
}

TEST_CASE("a malformed WATCHDOG_USEC or WATCHDOG_PID means no watchdog", "[systemd]") {
  unsetenv("WATCHDOG_PID");
  for (const char* v : {"", "-5", "20s", " 20", "20 ", "99999999999999999999999", "0x10"}) {
    setenv("WATCHDOG_USEC", v, 1);
    CHECK_FALSE(systemd::watchdog_interval().has_value());
  }
  setenv("WATCHDOG_USEC", "1000000", 1);
  for (const char* v : {"", "abc", "-1"}) {
    setenv("WATCHDOG_PID", v, 1);
    CHECK_FALSE(systemd::watchdog_interval().has_value());
  }
  unsetenv("WATCHDOG_USEC");
  unsetenv("WATCHDOG_PID");
}
