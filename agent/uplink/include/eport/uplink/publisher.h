// The uplink publisher: drains the outbox into FlatBuffers envelopes
// (optionally zstd-compressed) and publishes them to the broker at QoS 1,
// deleting rows only after the broker's PUBACK. Owns the MQTT connection:
// TLS, failover across several brokers with return to the preferred one,
// reconnect with jittered exponential backoff, a retained birth message and
// last will, periodic health, a data budget, and commands from the cloud.
// The only library that links Paho; only its connection part
// (src/connection.cpp) includes Paho, and Paho exceptions stop there.
//
// Threads: one publisher thread (start()/stop()), plus Paho's own callback
// thread, which only records events and never blocks.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "eport/codec/codec.h"
#include "eport/model/result.h"
#include "eport/store/outbox.h"
#include "eport/uplink/commands.h"

namespace eport::uplink {

struct TlsOptions {
  std::string ca_file;    // trust anchors for the broker's certificate; required for ssl://
  std::string cert_file;  // client certificate (mutual TLS); "" = none
  std::string key_file;   // its private key
  bool verify_hostname = true;
};

struct BudgetOptions {
  std::uint64_t bytes_per_day = 0;    // 0 = unlimited; UTC days
  std::uint64_t bytes_per_month = 0;  // 0 = unlimited; UTC calendar months
  std::uint64_t max_bytes_per_s = 0;  // bandwidth cap, 0 = none
};

// The MQTT protocol version the uplink speaks (mqtt.protocol_version).
enum class MqttVersion { k3_1_1, k5 };

// How envelopes are packed (publish.compression).
enum class Compression { kNone, kZstd };

// Every field a config key sets ([mqtt], [publish], [budget], [health],
// [commands]; src/config_keys.cpp) has its one default here.
struct PublisherOptions {
  std::string site_id;     // gateway.site (the agent's own key)
  std::string gateway_id;  // gateway.id (the agent's own key)
  std::vector<std::string> server_uris = {"tcp://127.0.0.1:1883"};  // first = preferred
  std::string client_id;  // defaults to gateway_id
  std::string username;   // "" = none
  std::string password;   // never logged; read from password_file by the agent
  std::string password_file;
  // Config acknowledgements of an insecure choice (checked by the key rules,
  // warned about at start): verify_hostname = false with TLS, a password
  // over a plain non-loopback link.
  bool insecure_skip_verify_hostname = false;
  bool insecure_password_over_tcp = false;
  TlsOptions tls;
  // 3.1.1 works with every broker of docs/operators.md; 5 (Mosquitto 2,
  // EMQX, HiveMQ) adds topic aliases (about 40 bytes less per envelope) and
  // PUBACK reason codes (a refused envelope is resent, not taken as
  // acknowledged). nats-server and RabbitMQ 3.10 speak only 3.1.1.
  MqttVersion mqtt_version = MqttVersion::k3_1_1;
  std::chrono::seconds keepalive{30};
  std::chrono::seconds connect_timeout{10};
  std::chrono::milliseconds reconnect_min{500};
  std::chrono::milliseconds reconnect_max{30000};
  // After the broker refused this gateway's own certificate (revoked,
  // expired, another CA): the wait before the next attempt, as waiting
  // reconnect_max would only hammer the broker.
  std::chrono::seconds certificate_refused_retry{300};
  // Warn (log, at start and daily) when the gateway's certificate
  // (tls.cert_file) expires within this many days; 0: never.
  std::uint32_t certificate_warn_days = 30;
  std::chrono::seconds failover_return{300};  // retry the preferred broker after this long elsewhere
  std::size_t max_inflight = 16;              // envelopes awaiting PUBACK
  std::size_t max_readings = 500;             // per envelope
  std::size_t max_bytes = 65536;              // per envelope, of stored bodies
  std::chrono::milliseconds max_age{1000};    // wait for a fuller envelope (alarms never wait)
  Compression compression = Compression::kZstd;
  // With kZstd. 6: the busy gateway's envelope v2 reaches 12 bytes per
  // reading (12.00, against 12.30 at 3) for 0.15 us more CPU per reading
  // (docs/benchmarks.md, "by zstd level").
  int zstd_level = 6;
  // publish.envelope_format: v2 (schema/telemetry_v2.fbs: per-source
  // columns, the v2 zstd dictionary, site and gateway ids only in the topic),
  // which every consumer of this tree reads; v1 (schema/telemetry.fbs) for
  // subscribers that read only v1.
  codec::EnvelopeFormat envelope_format = codec::EnvelopeFormat::kV2;
  // The zstd level envelopes are compressed with; 0: not compressed.
  int packing_level() const { return compression == Compression::kZstd ? zstd_level : 0; }
  BudgetOptions budget;
  std::chrono::seconds health_interval{60};   // 0 = no health messages
  bool commands = true;                       // subscribe to the command topic
  // A command issued longer ago than this (or with no issued time, or more
  // than kCommandFutureSkew ahead of this clock) is refused. 0: no check.
  std::chrono::seconds command_max_age{300};
  std::string agent_version;
  std::string config_hash;
  // This agent process's run id (health.h, new_run_id()); "" = the publisher
  // draws one.
  std::string run_id;
};

struct PublisherStats {
  std::atomic<std::uint64_t> envelopes_published{0};
  std::atomic<std::uint64_t> envelopes_acked{0};
  std::atomic<std::uint64_t> envelopes_refused{0};  // MQTT 5 PUBACKs with an error reason code
  std::atomic<std::uint64_t> readings_acked{0};
  std::atomic<std::uint64_t> bytes_published{0};  // MQTT payload bytes
  std::atomic<std::uint64_t> connects{0};
  std::atomic<std::uint64_t> connect_failures{0};
  std::atomic<std::uint64_t> certificate_refusals{0};  // attempts the broker refused for our certificate
  std::atomic<std::int64_t> certificate_not_after_s{0};  // tls.cert_file's notAfter (Unix s); 0: none or unreadable
  std::atomic<std::uint64_t> connection_losses{0};
  std::atomic<std::uint64_t> failovers{0};        // connected to a broker other than the preferred
  std::atomic<std::uint64_t> undecodable_rows{0}; // stored bodies that failed to decode (dropped, logged)
  std::atomic<std::uint64_t> budget_held{0};      // times non-alarm data waited for the budget
  std::atomic<std::uint64_t> commands_received{0};
  std::atomic<std::uint64_t> commands_rejected{0};
  std::atomic<std::uint64_t> commands_repeated{0};  // ids seen before: answered again, not executed
  std::atomic<bool> connected{false};
};

class Publisher {
 public:
  // `commands` executes accepted commands (may be null: then every command
  // is answered with an error). `health_extra` returns more JSON members for
  // the health message (e.g. "\"bridge\":{...}"), or "".
  Publisher(PublisherOptions options, store::Outbox& outbox, CommandHandler* commands = nullptr,
            std::function<std::string()> health_extra = nullptr);
  ~Publisher();  // stops if running
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  void start();
  // Wakes the publisher: new readings are in the outbox.
  void notify();
  // Publishes everything waiting now, without waiting for fuller envelopes.
  void flush();
  // Stops: waits up to drain_timeout for in-flight envelopes to be
  // acknowledged, publishes the retained offline status, disconnects.
  // Unacknowledged readings stay in the outbox for the next run.
  void stop(std::chrono::milliseconds drain_timeout = std::chrono::milliseconds(3000));

  const PublisherStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Validates a broker URI: tcp://, mqtt://, ssl:// or mqtts:// host:port.
bool is_broker_uri(std::string_view uri);

}  // namespace eport::uplink
