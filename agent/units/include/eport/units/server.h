// The agent side of the firmware bridge: serves telematics units on a UNIX
// socket, TCP and serial ttys, decodes their frames (epb v2), runs the
// HELLO/WELCOME handshake, takes each unit's readings and declared gaps
// strictly in seq order, hands them to ingest, and sends cumulative ACKs
// that never cover a seq it has not committed (docs/firmware-bridge.md 7).
// One epoll thread serves every unit.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <epb/epb.h>
#include <epb/evidence.h>

#include "eport/ingest/ingest.h"
#include "eport/model/result.h"
#include "eport/units/unit_settings.h"

namespace eport::units {

// Reporting intervals pushed to units with SETTINGS; 0 leaves a value as the
// unit has it.
struct Intervals {
  std::uint32_t position_s = 0;
  std::uint32_t sensor_s = 0;
  bool empty() const { return position_s == 0 && sensor_s == 0; }
  bool operator==(const Intervals&) const = default;
};

// A reporting profile the custody engine chose for a unit (adaptive
// reporting, docs/custody-events.md): its intervals and report-by-exception
// deadbands. Precedence of what a unit is sent: a cloud SetIntervals command
// > this profile > the configured intervals (bridge.*interval*).
struct AdaptiveSettings {
  std::string profile;  // its name, for the log
  Intervals intervals;
  std::optional<std::uint16_t> temperature_deadband_centi_c;
  std::optional<std::uint32_t> position_deadband_m;
  bool operator==(const AdaptiveSettings&) const = default;
};

struct ServerOptions {
  // Every field a config key sets ([bridge], src/config_keys.cpp) has its
  // one default here.
  std::string unix_socket = "/run/eport-agent/bridge.sock";  // "" = none
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
  // Admission (docs/security.md): TCP connections from one IP address at
  // once; slots of max_units that only UNIX-socket units may take (when a
  // UNIX socket is served); how long a socket link may go without a
  // welcomed HELLO before it is closed; how many distinct unit ids one link
  // may say HELLO for within a minute before it is dropped. Refusals are
  // counted and warned about at most once per 10 s.
  std::size_t max_units_per_address = 64;
  std::size_t unix_reserve = 64;
  std::chrono::milliseconds hello_deadline{10000};
  std::size_t max_unit_ids_per_link = 16;
  // Bytes read from one link per wake-up of the loop, so that one fast
  // sender cannot starve the others.
  std::size_t read_budget_bytes = 64 * 1024;
  std::string gateway_id;   // reserved: no unit may claim it
  std::size_t max_output_bytes = 256 * 1024;  // a unit that stops reading is dropped beyond this
  // How far a HELLO's oldest_seq may lie beyond the last seq this agent has
  // of a unit it knows, and how many seqs one DISCARD may declare; beyond
  // that the HELLO or DISCARD is refused with NACK SEQ_RANGE (7.1, 7.4).
  std::uint64_t max_seq_jump = std::uint64_t{1} << 24;
  // Liveness (7.9): a link silent this long gets a PING; silent for
  // dead_after_ping more, it is dead (socket closed, tty session forgotten).
  std::chrono::milliseconds idle_ping_after{30000};
  std::chrono::milliseconds dead_after_ping{10000};
  // SETTINGS (7.8): sent after WELCOME when a unit has intervals configured,
  // and again every settings_retry until the unit answers SETTINGS_ACK.
  Intervals default_intervals;                     // every unit without its own entry
  std::map<std::string, Intervals> unit_intervals; // by unit id
  std::chrono::milliseconds settings_retry{10000};
  unsigned max_pongs_per_second = 10;              // PINGs beyond this per link are dropped
  // Unit authentication (docs/firmware-bridge.md section 13): a unit with a
  // key here proves it on every link; on TCP every unit must (one without
  // a key is refused) unless tcp_requires_auth is false.
  std::map<std::string, std::array<std::uint8_t, EPB_KEY_LEN>> auth_keys;
  bool tcp_requires_auth = true;
  // The file auth_keys is read from (bridge.unit_keys; read_unit_keys()):
  // the Agent reads it before the server is built.
  std::string unit_keys_file;
  // Evidence (docs/firmware-bridge.md 7.15, docs/evidence.md 13): the units'
  // public checkpoint keys, read from evidence_keys_file (bridge.evidence_keys;
  // read_evidence_keys()) by the Agent. A unit without a key has its
  // checkpoints stored and forwarded unchecked.
  std::map<std::string, epb_ev_key> evidence_keys;
  std::string evidence_keys_file;
};

// Counters, readable from any thread.
struct ServerStats {
  std::atomic<std::uint64_t> connections_accepted{0};
  std::atomic<std::uint64_t> connections_refused{0};  // all refusals at accept: the two below
  std::atomic<std::uint64_t> refused_max_units{0};    // every slot taken (for TCP: every slot but the UNIX reserve)
  std::atomic<std::uint64_t> refused_per_address{0};  // over max_units_per_address from one IP
  std::atomic<std::uint64_t> refusal_warnings{0};     // warnings logged about refusals (at most one per 10 s)
  std::atomic<std::uint64_t> hello_timeouts{0};       // links closed for no welcomed HELLO within hello_deadline
  std::atomic<std::uint64_t> links_dropped_unit_ids{0};  // over max_unit_ids_per_link distinct ids in a minute
  std::atomic<std::uint64_t> links_dropped_output{0};    // output over max_output_bytes: the peer does not read
  std::atomic<std::uint64_t> read_budget_yields{0};      // reads cut at read_budget_bytes to serve other links
  std::atomic<std::uint64_t> connections_active{0};   // sockets and open serial ports
  std::atomic<std::uint64_t> serial_opens{0};         // successful opens of a serial port, first and re-
  std::atomic<std::uint64_t> serial_open_failures{0}; // attempts that failed (missing device, ...)
  std::atomic<std::uint64_t> serial_link_losses{0};   // open ports closed by EIO/hang-up
  std::atomic<std::uint64_t> frames_ok{0};
  std::array<std::atomic<std::uint64_t>, 16> frame_errors{};  // by epb_status (garbage, CRC, oversize, ...)
  // Every READING frame with a good CRC counts once in readings_received and,
  // once settled, once in exactly one of stored, duplicate or a refused_*
  // cause: received = stored + duplicate + refused (+ those awaiting their
  // commit). A resend is received again.
  std::atomic<std::uint64_t> readings_received{0};
  std::atomic<std::uint64_t> readings_stored{0};
  std::atomic<std::uint64_t> readings_duplicate{0};     // already in custody (on the link or found by the store)
  std::atomic<std::uint64_t> duplicates_on_link{0};     // the part of readings_duplicate that never reached ingest
  std::atomic<std::uint64_t> refused_no_hello{0};       // before WELCOME on the link
  std::atomic<std::uint64_t> refused_out_of_order{0};   // not the seq expected next, or behind a hold
  std::atomic<std::uint64_t> refused_window{0};
  std::atomic<std::uint64_t> refused_store_full{0};
  std::atomic<std::uint64_t> refused_internal{0};       // ingest queue full or a store error
  std::atomic<std::uint64_t> refused_malformed{0};      // intact frame, invalid content (recorded as a gap if attributable)
  std::atomic<std::uint64_t> discards_received{0};      // DISCARD frames
  std::atomic<std::uint64_t> discards_recorded{0};      // gap records committed from DISCARDs
  std::atomic<std::uint64_t> seqs_declared_discarded{0};
  std::atomic<std::uint64_t> discards_refused{0};       // SEQ_RANGE, or before WELCOME
  std::atomic<std::uint64_t> nacks_sent{0};
  std::atomic<std::uint64_t> protocol_errors{0};        // wrong-direction messages, refused HELLOs, undecodable content
  std::atomic<std::uint64_t> wrong_direction{0};        // agent-to-unit messages sent by a unit
  std::atomic<std::uint64_t> hellos_refused{0};         // all of the four below
  std::atomic<std::uint64_t> hellos_refused_unit_id{0};
  std::atomic<std::uint64_t> hellos_refused_container_id{0};
  std::atomic<std::uint64_t> hellos_refused_seq_range{0};
  std::atomic<std::uint64_t> hellos_refused_version{0};  // an older epb version: answered in its own version
  std::atomic<std::uint64_t> hellos_malformed{0};        // intact frame, invalid HELLO content
  std::atomic<std::uint64_t> hellos_refused_auth{0};     // CHALLENGE not answered with a valid AUTH
  std::atomic<std::uint64_t> auth_challenges{0};         // CHALLENGEs sent
  std::atomic<std::uint64_t> auth_ok{0};                 // sessions authenticated
  std::atomic<std::uint64_t> auth_no_key{0};             // the part of hellos_refused_auth for ids without a key
  std::atomic<std::uint64_t> unsealed_dropped{0};        // unsealed frames on an authenticated link (not HELLO/AUTH)
  std::atomic<std::uint64_t> takeovers{0};               // a HELLO for a unit live on another link: that link closed
  std::atomic<std::uint64_t> links_dead{0};              // silent past the liveness rule
  std::atomic<std::uint64_t> pings_sent{0};
  std::atomic<std::uint64_t> pings_dropped{0};           // over max_pongs_per_second
  std::atomic<std::uint64_t> settings_sent{0};
  std::atomic<std::uint64_t> settings_acked{0};
  std::atomic<std::uint64_t> backpressure_pauses{0};     // 1 ms pauses while ingest was behind
  // Evidence checkpoints (7.15; health "evidence"): fragments and the
  // checkpoints they make, what became of them, and the agent's verdicts.
  std::atomic<std::uint64_t> ev_fragments{0};
  std::atomic<std::uint64_t> ev_fragments_duplicate{0};
  std::atomic<std::uint64_t> ev_fragments_dropped{0};    // out of order, abandoned, or before WELCOME
  std::atomic<std::uint64_t> ev_checkpoints_received{0}; // reassembled
  std::atomic<std::uint64_t> ev_checkpoints_stored{0};
  std::atomic<std::uint64_t> ev_checkpoints_duplicate{0}; // already stored: acknowledged again
  std::atomic<std::uint64_t> ev_checkpoints_refused{0};  // ingest or store refused: not acknowledged
  std::atomic<std::uint64_t> ev_acks_sent{0};
  std::atomic<std::uint64_t> ev_heads_checked{0};    // the readings stored here hashed to the head (or did not)
  std::atomic<std::uint64_t> ev_heads_unchecked{0};  // a keyed unit's checkpoint whose range the agent had not whole
  std::array<std::atomic<std::uint64_t>, model::kEvidenceCheckCount> ev_checks{};  // by model::EvidenceCheck
};

// Sum of the refused_* counters.
std::uint64_t refused_total(const ServerStats& st);
// The "bridge" member of the health message (docs/topics.md): a JSON object.
std::string health_json(const ServerStats& st);
// The "evidence" member of the health message: a JSON object.
std::string evidence_health_json(const ServerStats& st);

class Server final : public UnitSettings {
 public:
  // last_stored_seq(unit) tells WELCOME where a reconnecting unit resumes;
  // priority_of classifies each reading. Both are called on the bridge thread.
  Server(ServerOptions options, ingest::Ingest& ingest, std::function<std::uint64_t(std::string_view)> last_stored_seq,
         std::function<model::Priority(const model::Reading&)> priority_of);
  ~Server() override;  // stop()
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
  // Sets the reporting intervals (0 = unchanged) of one unit, or of every
  // unit when unit_id is empty, for as long as this process runs (over the
  // configured ones), and sends SETTINGS to the units connected now; units
  // that connect later get them after WELCOME. Any thread; returns how many
  // connected units it went to once the bridge thread has queued the frames.
  Result<std::size_t> push_settings(const std::string& unit_id, std::uint32_t position_interval_s,
                                    std::uint32_t sensor_interval_s) override;
  // Sets the profile the custody engine chose for a unit, for as long as
  // this process runs: the unit connected now gets SETTINGS if what it
  // should run changed, a unit connecting later gets them after WELCOME.
  // Does not wait (queued for the bridge thread): safe to call under the
  // outbox's lock, and before start().
  void set_profile(const std::string& unit_id, const AdaptiveSettings& settings);
  const ServerStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace eport::units
