// GnssRunner: runs the gateway's own GNSS source (serial NMEA receiver or
// gpsd) on its own thread, reopening it with backoff when it fails, and
// hands its positions to ingest under the gateway's id with sequence
// numbers that continue from the outbox's last stored one.
#pragma once

#include <atomic>
#include <memory>
#include <thread>

#include "settings.h"
#include "eport/ingest/ingest.h"
#include "eport/store/outbox.h"

namespace eport::app {

class GnssRunner : public ingest::CompletionSink {
 public:
  GnssRunner(const AgentConfig& cfg, ingest::Ingest& ingest, store::Outbox& outbox);
  ~GnssRunner() override;  // stop()
  void start();
  void stop();

  void completed(std::uint64_t token, ingest::Outcome outcome) override;

  std::uint64_t positions() const { return positions_; }
  std::uint64_t not_stored() const { return not_stored_; }

 private:
  void run(std::stop_token stop);

  AgentConfig cfg_;
  ingest::Ingest& ingest_;
  std::atomic<std::uint64_t> next_seq_;
  std::atomic<std::uint64_t> positions_{0}, not_stored_{0};
  model::Priority priority_;
  std::jthread thread_;
};

}  // namespace eport::app
