// SerialSource: the gateway's own GNSS receiver on a tty (USB or UART), read
// with termios in raw 8N1 mode, framed into lines, assembled into Position
// readings and handed to a callback; one gnss::Source. Linux/POSIX only.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "eport/gnss/counters.h"
#include "eport/gnss/fix_assembler.h"
#include "eport/gnss/source.h"
#include "eport/model/reading.h"
#include "eport/model/result.h"

namespace eport::gnss {

struct SerialOptions {
  std::string device;  // e.g. "/dev/ttyACM0", "/dev/serial/by-id/usb-u-blox..."
  int baud = 9600;     // 4800, 9600, 19200, 38400, 57600, 115200 or 230400
  std::size_t max_line_bytes = 256;  // longer lines are dropped (overlong_lines)
};

// True for the baud rates listed in SerialOptions.
bool is_supported_baud(int baud);
// Those rates, ascending (the gnss.baud key's allowed values).
std::vector<int> supported_bauds();

class SerialSource final : public Source {
 public:
  // Opens and configures the tty (O_NOCTTY, raw, 8N1, no flow control,
  // CLOCAL). Fails with a message naming the device and the errno text, or
  // the unsupported baud rate.
  [[nodiscard]] static Result<std::unique_ptr<SerialSource>> open(const SerialOptions& serial,
                                                                  AssemblerOptions assembler,
                                                                  SeqSource next_seq,
                                                                  ReadingHandler on_reading);
  ~SerialSource();
  SerialSource(const SerialSource&) = delete;
  SerialSource& operator=(const SerialSource&) = delete;

  // Source: poll_once() waits for bytes and processes all complete lines
  // that arrived, returning the number of bytes read (0 on timeout), or an
  // error when the device is gone (unplugged: hangup, EIO) - then reopen.
  [[nodiscard]] Result<std::size_t> poll_once(std::chrono::milliseconds timeout) override;
  void flush() override;
  GnssCounters counters() const override;

 private:
  struct Impl;
  explicit SerialSource(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace eport::gnss
