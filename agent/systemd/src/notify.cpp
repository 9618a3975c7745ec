// eport::systemd: the service manager's notification protocol, spoken
// directly (sd_notify(3), "Notes"): one datagram of newline-separated
// assignments to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or an
// abstract name written with a leading '@'), and the watchdog interval from
// $WATCHDOG_USEC / $WATCHDOG_PID as sd_watchdog_enabled(3) reads them. No
// libsystemd: linking it (and libgps, which pulls libdbus and libsystemd)
// mapped eight more libraries into the agent, about 1.1 MiB resident
// (docs/benchmarks.md, memory budget).
#include "eport/systemd/notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace eport::systemd {

namespace {

// One assignment per line in the notify protocol: a newline inside a value
// would be read as the start of another assignment.
std::string one_line(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

// Closes a descriptor when it goes out of scope.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

NotifyResult send(const std::string& state) {
  const char* where = std::getenv("NOTIFY_SOCKET");
  if (where == nullptr || *where == '\0') return {NotifyOutcome::kNoManager, 0};
  const std::string_view name(where);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // A path, or '@' for Linux's abstract namespace (the name starts with a
  // NUL byte then). Anything else (systemd 254's vsock: addresses) is not
  // spoken here.
  if ((name.front() != '/' && name.front() != '@') || name.size() >= sizeof(addr.sun_path)) {
    return {NotifyOutcome::kFailed, EAFNOSUPPORT};
  }
  std::memcpy(addr.sun_path, name.data(), name.size());
  if (name.front() == '@') addr.sun_path[0] = '\0';
  // An abstract name's length is its bytes exactly; a path's includes its NUL.
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + (name.front() == '/' ? 1 : 0));
  Fd sock{::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
  if (sock.fd < 0) return {NotifyOutcome::kFailed, errno};
  // The manager reads the sender's pid from the socket (SO_PASSCRED on its
  // side). MSG_DONTWAIT: a manager whose queue is full (stalled) gets an
  // EAGAIN failure, never a blocked agent thread.
  if (::sendto(sock.fd, state.data(), state.size(), MSG_NOSIGNAL | MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&addr),
               len) < 0) {
    return {NotifyOutcome::kFailed, errno};
  }
  return {NotifyOutcome::kSent, 0};
}

std::string with_status(std::string head, std::string_view status) {
  if (!status.empty()) {
    head += "\nSTATUS=";
    head += one_line(status);
  }
  return head;
}

// A whole decimal number, or nullopt (empty, a sign, trailing bytes, overflow).
std::optional<std::uint64_t> parse_u64(const char* s) {
  if (s == nullptr) return std::nullopt;
  const std::string_view v(s);
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || end != v.data() + v.size()) return std::nullopt;
  return n;
}

}  // namespace

NotifyResult notify_ready(std::string_view status) { return send(with_status("READY=1", status)); }

NotifyResult notify_status(std::string_view status) { return send("STATUS=" + one_line(status)); }

NotifyResult notify_watchdog() { return send("WATCHDOG=1"); }

NotifyResult notify_extend_timeout(std::chrono::microseconds extra) {
  return send("EXTEND_TIMEOUT_USEC=" + std::to_string(extra.count() > 0 ? extra.count() : 0));
}

NotifyResult notify_stopping(std::string_view status) { return send(with_status("STOPPING=1", status)); }

std::optional<std::chrono::microseconds> watchdog_interval() {
  // As sd_watchdog_enabled(): WATCHDOG_USEC a positive number and, when
  // WATCHDOG_PID is set, that pid this process (else the variables were
  // inherited from a parent that systemd watches).
  const auto usec = parse_u64(std::getenv("WATCHDOG_USEC"));
  if (!usec || *usec == 0 || *usec > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
  if (const char* pid_text = std::getenv("WATCHDOG_PID"); pid_text != nullptr) {
    const auto pid = parse_u64(pid_text);
    if (!pid || *pid != static_cast<std::uint64_t>(::getpid())) return std::nullopt;
  }
  return std::chrono::microseconds(static_cast<std::chrono::microseconds::rep>(*usec));
}

}  // namespace eport::systemd
