// eport::systemd: thin wrapper over libsystemd's sd_notify()/sd_watchdog_enabled().
// EPORT_HAVE_LIBSYSTEMD is defined by CMake when pkg-config found libsystemd;
// otherwise the same functions compile to no-ops reporting kUnsupported.
#include "eport/systemd/notify.h"

#include <cstdint>
#include <string>

#ifdef EPORT_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace eport::systemd {

namespace {

#ifdef EPORT_HAVE_LIBSYSTEMD
// One assignment per line in the notify protocol: a newline inside a value
// would be read as the start of another assignment.
std::string one_line(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

NotifyResult send(const std::string& state) {
  // unset_environment = 0: later calls (watchdog pings) need NOTIFY_SOCKET too.
  int r = sd_notify(0, state.c_str());
  if (r > 0) return {NotifyOutcome::kSent, 0};
  if (r == 0) return {NotifyOutcome::kNoManager, 0};
  return {NotifyOutcome::kFailed, -r};
}

std::string with_status(std::string head, std::string_view status) {
  if (!status.empty()) {
    head += "\nSTATUS=";
    head += one_line(status);
  }
  return head;
}
#endif

}  // namespace

#ifdef EPORT_HAVE_LIBSYSTEMD

bool built_with_libsystemd() { return true; }

NotifyResult notify_ready(std::string_view status) { return send(with_status("READY=1", status)); }

NotifyResult notify_status(std::string_view status) { return send("STATUS=" + one_line(status)); }

NotifyResult notify_watchdog() { return send("WATCHDOG=1"); }

NotifyResult notify_extend_timeout(std::chrono::microseconds extra) {
  return send("EXTEND_TIMEOUT_USEC=" + std::to_string(extra.count() > 0 ? extra.count() : 0));
}

NotifyResult notify_stopping(std::string_view status) { return send(with_status("STOPPING=1", status)); }

std::optional<std::chrono::microseconds> watchdog_interval() {
  std::uint64_t usec = 0;
  // > 0 only if WATCHDOG_USEC is set and WATCHDOG_PID (when set) is this process.
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    return std::chrono::microseconds(static_cast<std::chrono::microseconds::rep>(usec));
  }
  return std::nullopt;
}

#else  // built without libsystemd

bool built_with_libsystemd() { return false; }
NotifyResult notify_ready(std::string_view) { return {}; }
NotifyResult notify_status(std::string_view) { return {}; }
NotifyResult notify_watchdog() { return {}; }
NotifyResult notify_extend_timeout(std::chrono::microseconds) { return {}; }
NotifyResult notify_stopping(std::string_view) { return {}; }
std::optional<std::chrono::microseconds> watchdog_interval() { return std::nullopt; }

#endif

}  // namespace eport::systemd
