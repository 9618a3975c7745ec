// termios raw mode, the baud table and pty pairs (see tty.h); the reopen
// policy belongs to the callers.
#include "eport/tty/tty.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace eport::tty {

namespace {
std::string sys_error(const std::string& what) { return what + ": " + std::strerror(errno); }
}  // namespace

namespace {
// Linux's standard B* rates: the one list (speed_for, standard_bauds).
constexpr struct {
  int baud;
  speed_t speed;
} kRates[] = {{50, B50},           {75, B75},           {110, B110},         {134, B134},         {150, B150},
              {200, B200},         {300, B300},         {600, B600},         {1200, B1200},       {1800, B1800},
              {2400, B2400},       {4800, B4800},       {9600, B9600},       {19200, B19200},     {38400, B38400},
              {57600, B57600},     {115200, B115200},   {230400, B230400},   {460800, B460800},   {500000, B500000},
              {576000, B576000},   {921600, B921600},   {1000000, B1000000}, {1152000, B1152000}, {1500000, B1500000},
              {2000000, B2000000}, {2500000, B2500000}, {3000000, B3000000}, {3500000, B3500000}, {4000000, B4000000}};
}  // namespace

std::optional<speed_t> speed_for(int baud) {
  for (const auto& r : kRates)
    if (r.baud == baud) return r.speed;
  return std::nullopt;
}

std::vector<int> standard_bauds() {
  std::vector<int> out;
  for (const auto& r : kRates) out.push_back(r.baud);
  return out;
}

std::optional<RawFailure> make_raw(int fd, speed_t speed, cc_t min_bytes) {
  termios t{};
  if (::tcgetattr(fd, &t) != 0) return RawFailure{"tcgetattr", errno};
  ::cfmakeraw(&t);  // no echo, no canonical mode, no CR/NL translation, 8 bits, no parity
  t.c_cflag &= ~static_cast<tcflag_t>(CSIZE | PARENB | CSTOPB | CRTSCTS);
  t.c_cflag |= CS8 | CLOCAL | CREAD;
  t.c_iflag &= ~static_cast<tcflag_t>(IXON | IXOFF | IXANY);
  t.c_cc[VMIN] = min_bytes;
  t.c_cc[VTIME] = 0;
  if (::cfsetispeed(&t, speed) != 0 || ::cfsetospeed(&t, speed) != 0) return RawFailure{"cfsetspeed", errno};
  if (::tcsetattr(fd, TCSANOW, &t) != 0) return RawFailure{"tcsetattr", errno};
  return std::nullopt;
}

Result<PtyPair> open_pty_pair() {
  PtyPair p;
  p.master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (p.master < 0) return Error{sys_error("posix_openpt")};
  char name[128];
  if (::grantpt(p.master) != 0 || ::unlockpt(p.master) != 0 || ::ptsname_r(p.master, name, sizeof name) != 0) {
    auto e = sys_error("grantpt/unlockpt/ptsname");
    ::close(p.master);
    return Error{e};
  }
  p.slave_path = name;
  p.slave_keeper = ::open(name, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (p.slave_keeper < 0) {
    auto e = sys_error("open " + p.slave_path);
    ::close(p.master);
    return Error{e};
  }
  // Raw from the start, so nothing the unit writes before the agent opens
  // the line is echoed back or has its bytes translated.
  if (auto f = make_raw(p.slave_keeper, B115200, 1)) {
    auto e = std::string(f->call) + " " + p.slave_path + ": " + std::strerror(f->error);
    ::close(p.slave_keeper);
    ::close(p.master);
    return Error{e};
  }
  int flags = ::fcntl(p.master, F_GETFL, 0);
  if (flags < 0 || ::fcntl(p.master, F_SETFL, flags | O_NONBLOCK) < 0) {
    auto e = sys_error("fcntl O_NONBLOCK on the pty master");
    ::close(p.slave_keeper);
    ::close(p.master);
    return Error{e};
  }
  return p;
}

}  // namespace eport::tty
