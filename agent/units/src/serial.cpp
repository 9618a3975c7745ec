// Opening a bridge serial port (raw 8N1 through eport::tty, no flow control,
// CLOCAL). The server owns the reopen policy; this file only opens and
// configures.
#include "eport/units/serial.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "eport/tty/tty.h"

namespace eport::units::serial {

Result<int> open_port(const std::string& path, int baud) {
  auto speed = tty::speed_for(baud);
  if (!speed) return Error{"serial " + path + ": " + std::to_string(baud) + " is not a standard baud rate"};
  int fd = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Error{"open serial " + path + ": " + std::strerror(errno)};
  if (!isatty(fd)) {
    close(fd);
    return Error{"serial " + path + ": not a terminal device"};
  }
  if (auto f = tty::make_raw(fd, *speed, 1)) {
    close(fd);
    return Error{std::string(f->call) + " " + path + ": " + std::strerror(f->error)};
  }
  tcflush(fd, TCIOFLUSH);
  return fd;
}

}  // namespace eport::units::serial
