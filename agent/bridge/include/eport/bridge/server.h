// The agent side of the firmware bridge: serves telematics units on a UNIX
// socket, TCP and serial ttys, decodes their frames (epb), runs the
// HELLO/WELCOME handshake, hands readings to ingest, and sends cumulative
// ACKs only after ingest reports them committed. One epoll thread serves
// every unit.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
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
  // Serial ttys, one unit per device (point to point; a multi-drop line with
  // several units on one tty is not supported). Opened raw 8N1 at
  // serial_baud, no flow control, CLOCAL. A device that is missing at start
  // or disappears later (EIO, hang-up: an unplugged USB adapter) is logged
  // and reopened with a backoff of serial_retry_min doubling to
  // serial_retry_max; it never stops the agent.
  std::vector<std::string> serial_ports;
  int serial_baud = 115200;  // a standard rate, 50 .. 4000000
  std::chrono::milliseconds serial_retry_min{200};
  std::chrono::milliseconds serial_retry_max{5000};
  std::uint16_t window = 256;
  std::size_t max_units = 2000;  // socket connections at once (serial ports not counted)
  std::string gateway_id;   // reserved: no unit may claim it
  std::size_t max_output_bytes = 256 * 1024;  // a unit that stops reading is dropped beyond this
};

// Counters, readable from any thread.
struct ServerStats {
  std::atomic<std::uint64_t> connections_accepted{0};
  std::atomic<std::uint64_t> connections_refused{0};  // over max_units
  std::atomic<std::uint64_t> connections_active{0};   // sockets and open serial ports
  std::atomic<std::uint64_t> serial_opens{0};         // successful opens of a serial port, first and re-
  std::atomic<std::uint64_t> serial_open_failures{0}; // attempts that failed (missing device, ...)
  std::atomic<std::uint64_t> serial_link_losses{0};   // open ports closed by EIO/hang-up
  std::atomic<std::uint64_t> frames_ok{0};
  std::array<std::atomic<std::uint64_t>, 16> frame_errors{};  // by epb_status (garbage, CRC, oversize, ...)
  std::atomic<std::uint64_t> readings_received{0};
  std::atomic<std::uint64_t> readings_acked{0};      // stored or duplicate, acknowledged
  std::atomic<std::uint64_t> readings_duplicate{0};  // all duplicates: on the link and found by the store
  std::atomic<std::uint64_t> duplicates_on_link{0};  // resends caught by the bridge, never reaching ingest
  std::atomic<std::uint64_t> readings_rejected{0};   // invalid content, nacked MALFORMED
  std::atomic<std::uint64_t> readings_held_back{0};  // dropped unanswered after a resendable NACK (7.4)
  std::atomic<std::uint64_t> nacks_sent{0};
  std::atomic<std::uint64_t> protocol_errors{0};     // reading before HELLO, refused HELLO, agent-only types
  std::atomic<std::uint64_t> hellos_refused{0};      // bad unit id (empty, the gateway's) or container id
  std::atomic<std::uint64_t> backpressure_pauses{0}; // 1 ms pauses while ingest was behind
};

class Server {
 public:
  // last_stored_seq(unit) tells WELCOME where a reconnecting unit resumes;
  // priority_of classifies each reading. Both are called on the bridge thread.
  Server(ServerOptions options, ingest::Ingest& ingest, std::function<std::uint64_t(std::string_view)> last_stored_seq,
         std::function<model::Priority(const model::Reading&)> priority_of);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listeners, opens the serial ports it can and starts the
  // thread. Fails naming the address for a listener that cannot bind, and
  // for a serial configuration that can never work (a non-standard baud
  // rate, a device listed twice); a serial device that cannot be opened now
  // is only logged and retried.
  Status start();
  // Sends the ACKs of whatever was committed, closes every link and logs a
  // one-line summary ("bridge stopped: ... N duplicates ..."). Idempotent.
  void stop();
  // The TCP port actually bound (useful with port 0), or 0.
  std::uint16_t tcp_port() const;
  // Sends SETTINGS (reporting intervals; 0 = unchanged) to one unit, or to
  // every connected unit when unit_id is empty. Any thread; returns how many
  // units it went to once the bridge thread has queued the frames.
  Result<std::size_t> push_settings(const std::string& unit_id, std::uint32_t position_interval_s,
                                    std::uint32_t sensor_interval_s);
  const ServerStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace eport::bridge
