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

std::optional<speed_t> speed_for(int baud) {
  switch (baud) {
    case 50: return B50;
    case 75: return B75;
    case 110: return B110;
    case 134: return B134;
    case 150: return B150;
    case 200: return B200;
    case 300: return B300;
    case 600: return B600;
    case 1200: return B1200;
    case 1800: return B1800;
    case 2400: return B2400;
    case 4800: return B4800;
    case 9600: return B9600;
    case 19200: return B19200;
    case 38400: return B38400;
    case 57600: return B57600;
    case 115200: return B115200;
    case 230400: return B230400;
    case 460800: return B460800;
    case 500000: return B500000;
    case 576000: return B576000;
    case 921600: return B921600;
    case 1000000: return B1000000;
    case 1152000: return B1152000;
    case 1500000: return B1500000;
    case 2000000: return B2000000;
    case 2500000: return B2500000;
    case 3000000: return B3000000;
    case 3500000: return B3500000;
    case 4000000: return B4000000;
    default: return std::nullopt;
  }
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
