// Terminal plumbing written once: the termios raw 8N1 setup, the table of
// standard baud rates and pseudo-terminal pairs. Used by the unit server's
// serial ports (agent/units), the GNSS serial source (agent/gnss), eport-sim
// and the tests; each caller keeps its own open and reopen policy and its own
// error wording. Plain functions, no shared state; the caller owns every
// descriptor.
#pragma once

#include <optional>
#include <string>
#include <vector>
#include <string_view>

#include <termios.h>

#include "eport/model/result.h"

namespace eport::tty {

// The termios speed constant for a standard baud rate (50 .. 4000000), or
// nullopt for a rate that is not one of Linux's standard B* constants.
std::optional<speed_t> speed_for(int baud);
// Those rates, ascending.
std::vector<int> standard_bauds();

// Which termios call failed and its errno.
struct RawFailure {
  std::string_view call;  // "tcgetattr", "cfsetspeed" or "tcsetattr"
  int error = 0;          // errno
};

// Sets fd to raw mode: no echo, no canonical mode, no CR/NL translation,
// 8 data bits, no parity, 1 stop bit, no hardware or software flow control,
// CLOCAL (modem lines ignored), CREAD, VMIN=min_bytes/VTIME=0 and both
// speeds to `speed`. nullopt on success, else the call that failed.
std::optional<RawFailure> make_raw(int fd, speed_t speed, cc_t min_bytes);

// A pseudo-terminal pair standing in for a serial line. `master` is the
// unit's end (eport-sim writes frames there); the agent opens `slave_path`
// like any tty. `slave_keeper` is a descriptor of the slave that the creator
// keeps open so the line exists (and stays raw, 115200 baud, VMIN=1) while
// the agent closes and reopens its end; closing `master` hangs the line up
// and removes `slave_path`. Both descriptors are non-blocking and
// close-on-exec; the caller owns them. Fails naming the system call and error.
struct PtyPair {
  int master = -1;
  int slave_keeper = -1;
  std::string slave_path;
};
Result<PtyPair> open_pty_pair();

}  // namespace eport::tty
