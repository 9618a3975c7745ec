// Serial transport for the bridge: opening a tty (UART, USB-serial) as a raw
// 8N1 byte stream for epb frames. The termios setup, the baud table and the
// pseudo-terminal pairs that let eport-sim and the tests stand in for a unit
// are eport::tty's (agent/tty).
#pragma once

#include <string>

#include "eport/model/result.h"

namespace eport::units::serial {

// Opens `path` non-blocking, close-on-exec and without making it the
// controlling terminal, then sets raw mode: 8 data bits, no parity, 1 stop
// bit, no hardware or software flow control, CLOCAL (modem lines ignored),
// CREAD, VMIN=1/VTIME=0, both speeds to `baud`. Discards whatever the driver
// had buffered before the open (bytes sent while nobody listened are stale
// on a serial line). The caller owns the descriptor. Fails naming the device
// and the system error (e.g. ENOENT for an unplugged USB adapter) or an
// unsupported baud rate.
Result<int> open_port(const std::string& path, int baud);

}  // namespace eport::units::serial
