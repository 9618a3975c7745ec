// The uplink publisher: drains the outbox into FlatBuffers envelopes and
// publishes them to the broker at QoS 1, deleting rows only after the broker's
// PUBACK. Owns the MQTT connection: reconnects with backoff, publishes a
// retained birth message on connect and leaves a retained last will. The only
// library that links Paho; Paho exceptions stop here.
//
// Threads: one publisher thread (start()/stop()), plus Paho's own callback
// thread, which only records events and never blocks.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "eport/store/outbox.h"

namespace eport::uplink {

struct PublisherOptions {
  std::string site_id;
  std::string gateway_id;
  std::string server_uri = "tcp://127.0.0.1:1883";
  std::string client_id;  // defaults to gateway_id
  std::chrono::seconds keepalive{30};
  std::chrono::seconds connect_timeout{10};
  std::chrono::milliseconds reconnect_min{500};
  std::chrono::milliseconds reconnect_max{30000};
  std::size_t max_inflight = 16;      // envelopes awaiting PUBACK
  std::size_t max_readings = 500;     // per envelope
  std::size_t max_bytes = 65536;      // per envelope, of stored bodies
  std::chrono::milliseconds max_age{200};  // wait for a fuller envelope
  std::string agent_version;
  std::string config_hash;
};

struct PublisherStats {
  std::atomic<std::uint64_t> envelopes_published{0};
  std::atomic<std::uint64_t> envelopes_acked{0};
  std::atomic<std::uint64_t> readings_acked{0};
  std::atomic<std::uint64_t> bytes_published{0};  // payload bytes
  std::atomic<std::uint64_t> connects{0};
  std::atomic<std::uint64_t> connection_losses{0};
  std::atomic<std::uint64_t> undecodable_rows{0};  // stored bodies that failed to decode (kept, counted)
  std::atomic<bool> connected{false};
};

class Publisher {
 public:
  Publisher(PublisherOptions options, store::Outbox& outbox);
  ~Publisher();  // stops if running
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  void start();
  // Wakes the publisher: new readings are in the outbox.
  void notify();
  // Stops: waits up to drain_timeout for in-flight envelopes to be
  // acknowledged, publishes the retained offline status, disconnects.
  // Unacknowledged readings stay in the outbox for the next run.
  void stop(std::chrono::milliseconds drain_timeout = std::chrono::milliseconds(3000));

  const PublisherStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace eport::uplink
