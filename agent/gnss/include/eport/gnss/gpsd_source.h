// GpsdSource: positions from a gpsd daemon over its JSON socket (libgps), for
// gateways where gpsd already owns the receiver. Library eport::gnss_gpsd,
// built only when libgps is found; libgps stays out of this header. One
// gnss::Source.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "eport/gnss/counters.h"
#include "eport/gnss/fix_assembler.h"
#include "eport/gnss/source.h"
#include "eport/model/result.h"

namespace eport::gnss {

struct GpsdOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 2947;
};

class GpsdSource final : public Source {
 public:
  // Connects and asks for JSON watch reports (WATCH_ENABLE | WATCH_JSON).
  // Fails with a message naming host:port and libgps' reason.
  [[nodiscard]] static Result<std::unique_ptr<GpsdSource>> connect(const GpsdOptions& gpsd,
                                                                   AssemblerOptions assembler,
                                                                   SeqSource next_seq,
                                                                   ReadingHandler on_reading);
  ~GpsdSource();  // closes the connection
  GpsdSource(const GpsdSource&) = delete;
  GpsdSource& operator=(const GpsdSource&) = delete;

  // Source: poll_once() waits for reports and processes all that arrived,
  // returning the number of reports read (0 on timeout), or an error when
  // gpsd closed the connection - then reconnect.
  [[nodiscard]] Result<std::size_t> poll_once(std::chrono::milliseconds timeout) override;
  void flush() override;
  GnssCounters counters() const override;

 private:
  struct Impl;
  explicit GpsdSource(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace eport::gnss
