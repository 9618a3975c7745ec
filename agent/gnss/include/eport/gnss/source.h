// gnss::Source: what every source of the gateway's own position offers
// (SerialSource: NMEA from a tty; GpsdSource: reports from gpsd), so the
// agent's GNSS runner opens one and runs it without knowing which. A source
// hands each assembled Position reading to its ReadingHandler.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <stop_token>

#include "eport/gnss/counters.h"
#include "eport/model/reading.h"
#include "eport/model/result.h"

namespace eport::gnss {

// Called with each assembled reading, on the thread that runs poll_once() or
// run(). Must not block for long: the source's input keeps filling meanwhile.
using ReadingHandler = std::function<void(model::Reading)>;

class Source {
 public:
  virtual ~Source() = default;

  // Waits up to `timeout` for input and processes all of it that arrived.
  // Returns how much was read (bytes or reports; 0 on timeout), or an error
  // when the input is gone (device unplugged, gpsd closed) - then reopen.
  [[nodiscard]] virtual Result<std::size_t> poll_once(std::chrono::milliseconds timeout) = 0;

  // Hands out the reading of the open epoch, if any (end of input).
  virtual void flush() = 0;

  // A snapshot; safe to call from any thread.
  virtual GnssCounters counters() const = 0;

  // Calls poll_once() until `stop` is requested (returns an empty optional)
  // or the source fails (returns the error); flushes the open epoch either way.
  [[nodiscard]] std::optional<Error> run(std::stop_token stop,
                                         std::chrono::milliseconds poll = std::chrono::milliseconds(200));
};

}  // namespace eport::gnss
