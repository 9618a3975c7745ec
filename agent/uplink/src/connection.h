// The uplink's MQTT connection: the only part of the agent's uplink that
// includes Paho and the only one that catches its exceptions. One connect
// attempt goes to exactly one broker (paho.mqtt.c #1187 workaround, see
// connection.cpp), with the retained birth and will on the status topic and
// the command subscription; publishes return a Result instead of throwing.
// Paho's callbacks reach the publisher only through ConnectionEvents.
//
// Threads: every method is called from the publisher thread; the
// ConnectionEvents methods run on Paho's callback thread and must only record
// and wake (never block, never call the Connection back: paho.mqtt.cpp #241).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "eport/model/result.h"
#include "eport/uplink/publisher.h"

namespace eport::uplink {

// Identifies one data publish until its PUBACK; compared, never dereferenced.
using DeliveryKey = const void*;

// What Paho tells us, on Paho's thread.
class ConnectionEvents {
 public:
  virtual ~ConnectionEvents() = default;
  virtual void connection_lost(const std::string& cause) = 0;
  // The PUBACK of a publish_data() delivery.
  virtual void delivered(DeliveryKey key) = 0;
  // A publish_data() delivery failed: the connection went (reason_code 0),
  // or an MQTT 5 broker answered with a PUBACK reason code of 0x80 or more
  // (not authorized, quota exceeded, ...: the envelope was not accepted).
  // payload_bytes: the envelope's size, as Paho holds it (0 if unknown),
  // so a refusal that arrives after its delivery was forgotten still says
  // how large the refused envelope was.
  virtual void delivery_failed(DeliveryKey key, int reason_code, std::size_t payload_bytes) = 0;
  virtual void message(std::string topic, std::vector<std::uint8_t> payload, bool retained) = 0;
};

// A data publish handed to Paho: `keep` holds Paho's token alive until the
// PUBACK (or until the connection is dropped); `key` is what delivered()
// reports.
struct Delivery {
  DeliveryKey key = nullptr;
  std::shared_ptr<void> keep;
};

// True for ssl:// and mqtts://.
bool is_tls_uri(std::string_view uri);
// The URI as Paho C writes it: mqtt:// -> tcp://, mqtts:// -> ssl://.
std::string paho_uri(const std::string& uri);

class Connection {
 public:
  // Installs the TLS floor first if any broker is TLS (tls.h: before Paho
  // creates an SSL_CTX), then creates the client for the first URI, without
  // Paho persistence or offline buffer. `events` must outlive the Connection.
  Connection(const PublisherOptions& options, std::string status_topic, std::string will_json,
             std::string cmd_topic, ConnectionEvents& events);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  enum class Attempt { kConnected, kFailed, kFailedAfterConnect };
  // One attempt at one broker: connect, publish birth() (called once
  // connected, so that its time is the connection's) retained on the status
  // topic, subscribe to commands (if enabled). On failure `error` holds
  // Paho's message (plus the TLS diagnosis when a handshake failed).
  Attempt connect_to(const std::string& uri, const std::function<std::string()>& birth, std::string& error);
  // The URI Paho reports for the current connection (Paho's spelling).
  const std::string& connected_uri() const { return connected_uri_; }
  // After a failed attempt: the alert with which the broker refused this
  // gateway's own certificate ("certificate revoked", ...), or "".
  const std::string& certificate_refused() const { return certificate_refused_; }

  // The most payload bytes a data PUBLISH on `topic` may carry on this
  // connection: from the broker's Maximum Packet Size (MQTT 5 CONNACK
  // property 0x27) less the PUBLISH's own framing, counted as if the topic
  // were named and an alias set (the larger case); SIZE_MAX when the broker
  // named no limit (always over 3.1.1).
  std::size_t payload_limit(const std::string& topic) const;
  // The broker's Maximum Packet Size (0: none named).
  std::uint32_t maximum_packet_size() const { return maximum_packet_size_; }

  // A data envelope at QoS 1, not retained, with a topic alias when the
  // connection is MQTT 5 and the broker accepts aliases. An error means not
  // connected: nothing was handed to Paho.
  Result<Delivery> publish_data(const std::string& topic, std::span<const std::uint8_t> bytes);
  // A JSON message at QoS 1 (status, health, replies); not waited for.
  Status publish_json(const std::string& topic, const std::string& json, bool retained);

  // Drops the link now (PUBACK watchdog): disconnect with no wait, 100 ms.
  void abort();
  // Clean disconnect, waiting up to `timeout`; errors are swallowed.
  void disconnect(std::chrono::milliseconds timeout);
  // Publishes `offline_json` retained on the status topic and disconnects,
  // waiting up to 2 s for each.
  Status close(const std::string& offline_json);

 private:
  struct Paho;
  const PublisherOptions& opt_;
  std::string status_topic_, will_json_, cmd_topic_;
  std::string connected_uri_;
  std::string certificate_refused_;
  // MQTT 5 topic aliases of this network connection: topic -> alias 1..max,
  // and the broker's Topic Alias Maximum from its CONNACK (0: none).
  std::unordered_map<std::string, std::uint16_t> topic_aliases_;
  std::uint16_t topic_alias_maximum_ = 0;
  // The broker's Maximum Packet Size from its CONNACK (MQTT 5; 0: none).
  std::uint32_t maximum_packet_size_ = 0;
  std::unique_ptr<Paho> paho_;
};

}  // namespace eport::uplink
