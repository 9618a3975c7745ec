// SerialSource: raw 8N1 (eport::tty) at the receivers' baud rates and the
// poll/read loop that feeds LineFramer -> FixAssembler. Readings are handed
// to the callback after the lock is released, so the callback may call
// counters().
#include "eport/gnss/serial_source.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <utility>
#include <vector>

#include "assembling.h"

#include "eport/gnss/line_framer.h"
#include "eport/tty/tty.h"

namespace eport::gnss {
namespace {

// The rates GNSS receivers use; the termios constant comes from eport::tty.
constexpr int kGnssBauds[] = {4800, 9600, 19200, 38400, 57600, 115200, 230400};

std::optional<speed_t> speed_for(int baud) {
  for (int b : kGnssBauds) {
    if (b == baud) return tty::speed_for(baud);
  }
  return std::nullopt;
}

Error errno_error(const std::string& what, const std::string& device) {
  return Error{"serial " + device + ": " + what + ": " + std::strerror(errno)};
}

}  // namespace

bool is_supported_baud(int baud) { return speed_for(baud).has_value(); }

std::vector<int> supported_bauds() { return {std::begin(kGnssBauds), std::end(kGnssBauds)}; }

struct SerialSource::Impl {
  Impl(int f, std::string dev, AssemblerOptions a, SeqSource seq, ReadingHandler h, std::size_t max_line)
      : fd(f), device(std::move(dev)), core(std::move(h), std::move(a), std::move(seq)), framer(max_line) {}
  ~Impl() {
    if (fd >= 0) ::close(fd);
  }

  int fd;
  std::string device;
  detail::Assembling<FixAssembler> core;
  LineFramer framer;  // guarded by core.mu
};

SerialSource::SerialSource(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SerialSource::~SerialSource() = default;

Result<std::unique_ptr<SerialSource>> SerialSource::open(const SerialOptions& serial,
                                                         AssemblerOptions assembler, SeqSource next_seq,
                                                         ReadingHandler on_reading) {
  const auto speed = speed_for(serial.baud);
  if (!speed) {
    return Error{"serial " + serial.device + ": unsupported baud rate " + std::to_string(serial.baud) +
                 " (use 4800, 9600, 19200, 38400, 57600, 115200 or 230400)"};
  }
  if (serial.max_line_bytes < 82) {
    return Error{"serial " + serial.device + ": max_line_bytes " + std::to_string(serial.max_line_bytes) +
                 " is below the NMEA sentence length (82)"};
  }
  const int fd = ::open(serial.device.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return errno_error("open", serial.device);
  auto impl = std::make_unique<Impl>(fd, serial.device, std::move(assembler), std::move(next_seq),
                                     std::move(on_reading), serial.max_line_bytes);
  if (!::isatty(fd)) return Error{"serial " + serial.device + ": not a tty"};
  // VMIN=0: non-blocking reads; poll() does the waiting.
  if (auto f = tty::make_raw(fd, *speed, 0)) {
    return Error{"serial " + serial.device + ": " + std::string(f->call) + ": " + std::strerror(f->error)};
  }
  return std::unique_ptr<SerialSource>(new SerialSource(std::move(impl)));
}

Result<std::size_t> SerialSource::poll_once(std::chrono::milliseconds timeout) {
  pollfd p{impl_->fd, POLLIN, 0};
  const int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (n < 0) {
    if (errno == EINTR) return std::size_t{0};
    return errno_error("poll", impl_->device);
  }
  if (n == 0) return std::size_t{0};
  if ((p.revents & POLLIN) == 0) {
    return Error{"serial " + impl_->device + ": device hung up or failed (poll events 0x" +
                 std::to_string(p.revents) + ")"};
  }
  std::array<char, 4096> buf;
  const ssize_t got = ::read(impl_->fd, buf.data(), buf.size());
  if (got < 0) {
    if (errno == EAGAIN || errno == EINTR) return std::size_t{0};
    return errno_error("read", impl_->device);
  }
  if (got == 0) return Error{"serial " + impl_->device + ": end of file (device gone)"};
  std::vector<model::Reading> ready;
  {
    std::lock_guard lock(impl_->core.mu);
    impl_->framer.feed(std::string_view(buf.data(), static_cast<std::size_t>(got)),
                       [&](std::string_view line) {
                         if (auto r = impl_->core.assembler.feed_line(line)) ready.push_back(std::move(*r));
                       });
    impl_->core.assembler.counters().overlong_lines = impl_->framer.overlong_lines();
  }
  impl_->core.deliver(ready);
  return static_cast<std::size_t>(got);
}

void SerialSource::flush() { impl_->core.flush(); }

GnssCounters SerialSource::counters() const { return impl_->core.counters(); }

}  // namespace eport::gnss
