// Service-manager notifications for eport-agent under systemd (Type=notify):
// readiness, status line, watchdog keep-alive and stopping, sent over the
// notification protocol of sd_notify(3) itself (src/notify.cpp; no libsystemd).
//
// Every function is thread-safe (each call opens a fresh socket),
// never blocks (one datagram on a local socket, sent with MSG_DONTWAIT) and
// never throws.
// A failure only matters for logging: the agent carries on either way, and
// without NOTIFY_SOCKET (started by hand, in tests, under another init) the
// calls do nothing and report kNoManager.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace eport::systemd {

enum class NotifyOutcome {
  kSent,         // the service manager got the datagram
  kNoManager,    // NOTIFY_SOCKET is not set: not started by systemd (or not Type=notify)
  kFailed,       // NOTIFY_SOCKET is set but sending failed (see error_number)
};

struct NotifyResult {
  NotifyOutcome outcome = NotifyOutcome::kNoManager;
  int error_number = 0;  // errno value when outcome == kFailed, else 0
  bool sent() const { return outcome == NotifyOutcome::kSent; }
};

// READY=1, plus STATUS=<status> when status is not empty. Send it once, after
// the store is open and the listeners accept units.
NotifyResult notify_ready(std::string_view status = {});

// STATUS=<status>: the one-line state shown by `systemctl status`. Newlines in
// status are sent as spaces (a newline would start a new assignment).
NotifyResult notify_status(std::string_view status);

// WATCHDOG=1: "still alive". Required at least every watchdog_interval() when
// the unit has WatchdogSec=; send it from the thread whose progress it vouches for.
NotifyResult notify_watchdog();

// EXTEND_TIMEOUT_USEC=<extra>: asks for more start-up (or stop) time than
// TimeoutStartSec= allows, e.g. while a large outbox is checked at start.
NotifyResult notify_extend_timeout(std::chrono::microseconds extra);

// STOPPING=1 (plus STATUS=<status> when not empty): shutdown has begun.
NotifyResult notify_stopping(std::string_view status = {});

// The watchdog interval systemd expects WATCHDOG=1 within (WatchdogSec= of the
// unit, read from WATCHDOG_USEC/WATCHDOG_PID), or nullopt when there is no
// watchdog for this process. Ping at half this interval.
std::optional<std::chrono::microseconds> watchdog_interval();

}  // namespace eport::systemd
