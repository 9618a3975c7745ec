// Serial transport helpers for the bridge: opening a tty (UART, USB-serial)
// as a raw 8N1 byte stream for epb frames, and pseudo-terminal pairs that let
// eport-sim and the tests stand in for a unit wired to the gateway.
#pragma once

#include <optional>
#include <string>

#include <termios.h>

#include "eport/model/result.h"

namespace eport::units::serial {

// The termios speed constant for a standard baud rate (50 .. 4000000), or
// nullopt for a rate that is not one of Linux's standard B* constants.
std::optional<speed_t> speed_for(int baud);

// Opens `path` non-blocking, close-on-exec and without making it the
// controlling terminal, then sets raw mode: 8 data bits, no parity, 1 stop
// bit, no hardware or software flow control, CLOCAL (modem lines ignored),
// CREAD, VMIN=1/VTIME=0, both speeds to `baud`. Discards whatever the driver
// had buffered before the open (bytes sent while nobody listened are stale
// on a serial line). The caller owns the descriptor. Fails naming the device
// and the system error (e.g. ENOENT for an unplugged USB adapter) or an
// unsupported baud rate.
Result<int> open_port(const std::string& path, int baud);

// A pseudo-terminal pair standing in for a serial line. `master` is the
// unit's end (eport-sim writes frames there); the agent opens `slave_path`
// like any tty. `slave_keeper` is a descriptor of the slave that the creator
// keeps open so the line exists (and stays raw) while the agent closes and
// reopens its end; closing `master` hangs the line up and removes
// `slave_path`. Both descriptors are non-blocking and close-on-exec; the
// caller owns them.
struct PtyPair {
  int master = -1;
  int slave_keeper = -1;
  std::string slave_path;
};
Result<PtyPair> open_pty_pair();

}  // namespace eport::units::serial
