// The agent side of the firmware bridge: accepts telematics units on a UNIX
// socket and/or TCP, decodes their frames (epb), runs the HELLO/WELCOME
// handshake, hands readings to ingest, and sends cumulative ACKs only after
// ingest reports them committed. One epoll thread serves every unit.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "eport/ingest/ingest.h"
#include "eport/model/result.h"

namespace eport::bridge {

struct ServerOptions {
  std::string unix_socket;  // "" = none
  std::string tcp_listen;   // "host:port", "" = none; port 0 picks a free port
  std::vector<std::string> serial_ports;  // tty devices, one byte stream each
  int serial_baud = 115200;
  std::uint16_t window = 256;
  std::size_t max_units = 2000;
  std::string gateway_id;   // reserved: no unit may claim it
  std::size_t max_output_bytes = 256 * 1024;  // a unit that stops reading is dropped beyond this
};

// Counters, readable from any thread.
struct ServerStats {
  std::atomic<std::uint64_t> connections_accepted{0};
  std::atomic<std::uint64_t> connections_refused{0};  // over max_units
  std::atomic<std::uint64_t> connections_active{0};
  std::atomic<std::uint64_t> frames_ok{0};
  std::array<std::atomic<std::uint64_t>, 16> frame_errors{};  // by epb_status
  std::atomic<std::uint64_t> readings_received{0};
  std::atomic<std::uint64_t> readings_acked{0};      // stored or duplicate, acknowledged
  std::atomic<std::uint64_t> readings_duplicate{0};
  std::atomic<std::uint64_t> readings_rejected{0};   // invalid content, nacked MALFORMED
  std::atomic<std::uint64_t> nacks_sent{0};
  std::atomic<std::uint64_t> protocol_errors{0};     // e.g. reading before HELLO, bad HELLO
  std::atomic<std::uint64_t> backpressure_pauses{0}; // 1 ms pauses while ingest was behind
};

class Server {
 public:
  // last_stored_seq(unit) tells WELCOME where a reconnecting unit resumes;
  // priority_of classifies each reading.
  Server(ServerOptions options, ingest::Ingest& ingest, std::function<std::uint64_t(std::string_view)> last_stored_seq,
         std::function<model::Priority(const model::Reading&)> priority_of);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listeners and starts the thread. Fails naming the address.
  Status start();
  void stop();
  // The TCP port actually bound (useful with port 0), or 0.
  std::uint16_t tcp_port() const;
  const ServerStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace eport::bridge
