// eport-sim: a fleet of simulated telematics units, each on its own link to
// the agent's bridge (UNIX socket, TCP, or a pty pair standing in for a
// serial line), behaving as epb v2 firmware must (docs/firmware-bridge.md 7,
// docs/simulator.md): HELLO with next_seq and oldest_seq on every link, no
// reading numbered before WELCOME, items kept until an ACK (or WELCOME's
// last_stored_seq) covers them, go-back-N on NACK and after the ack timeout,
// backoff on STORE_FULL/INTERNAL, SETTINGS_ACK, PING/PONG liveness. Readings
// come from the journey generator (fleet.h) or from a recorded session file.
// Test options declare discards (DISCARD FLASH_FULL) and inject faults on the
// unit->agent direction (dropped, corrupted, reordered READING frames).
// Prints a summary; --acked-log records every acknowledged reading as JSON.
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "eport/units/convert.h"
#include "eport/units/net.h"
#include "eport/model/clock.h"
#include "eport/tty/tty.h"
#include "eport/codec/codec.h"
#include "eport/backoff/backoff.h"
#include "eport/units/config_keys.h"
#include "eport/flags/flags.h"
#include "evidence_openssl.hpp"
#include "fleet.h"
#include "session.h"

#include <epb/evidence.h>
#include <sys/stat.h>

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
volatile sig_atomic_t g_stop = 0;

// Protocol timers (docs/firmware-bridge.md 7.1, 7.5, 7.9).
constexpr milliseconds kHelloWait{5000};         // no WELCOME this long after a HELLO: retry
constexpr milliseconds kHelloBackoffMin{1000};   // then wait 1 s, 2 s, 4 s ... (+/-20 %)
constexpr milliseconds kHelloBackoffMax{60000};
constexpr milliseconds kStoreBackoffMin{1000};   // STORE_FULL / INTERNAL: 1 s doubling ...
constexpr milliseconds kStoreBackoffMax{300000};  // ... to 5 min (+/-20 %)
constexpr milliseconds kIdlePing{30000};         // no frame for 30 s: PING
constexpr milliseconds kPingDead{10000};         // nothing 10 s after that: the link is dead
constexpr milliseconds kNackGrace{2000};         // repeated NACK n this soon after resending n: the same refusal
constexpr milliseconds kReorderHold{500};        // --reorder-every: longest a held frame waits for the next
constexpr milliseconds kEvidenceWaitMin{10000};  // no EVIDENCE_ACK 10 s after a checkpoint: resend it ...
constexpr milliseconds kEvidenceWaitMax{300000}; // ... waiting up to 5 min (+/-20 %) (7.15)

using eport::model::now_utc_ms;
using Backoff = eport::backoff::Backoff;
using BackoffOptions = eport::backoff::Options;

std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

struct Options {
  std::string endpoint = "unix:/tmp/eport-bridge.sock";
  int units = 10;           // units on --connect
  bool units_given = false;
  int pty = 0;              // further units, each on its own pty pair
  std::string pty_list;     // write the pty slave paths there, one per line
  double rate = 1.0;        // readings per second per unit
  long long count = 0;      // readings per unit, 0 = unlimited
  double duration_s = 0;    // 0 = until count reached or SIGINT
  std::uint64_t seed = 1;
  std::string prefix = "tcu";
  std::uint32_t journey_readings = 120;
  // > 0: readings carry a simulated clock instead of the wall clock: unit
  // reading n (from 0) is stamped time_origin_ms + n * time_step_ms, so a
  // journey spans its real duration (custody rules: dwell, debounce) however
  // fast it is sent.
  long long time_step_ms = 0;
  long long time_origin_ms = 1795000000000;  // 2026-11-18T11:06:40Z
  std::string record, replay;
  std::string acked_log;
  std::string summary_json;
  double drain_timeout_s = 30;  // after generating stops, wait this long for acks
  long long ack_timeout_ms = 10000;  // docs/firmware-bridge.md 7.6
  long long drop_acks_every = 0;     // test: ignore every n-th ACK frame
  long long discard_every = 0;       // test: every n-th reading starts a declared-discarded block
  long long discard_count = 3;       // ... of this many readings
  long long corrupt_every = 0;       // test: flip a byte in every n-th READING's first transmission
  long long drop_every = 0;          // test: do not send every n-th READING's first transmission
  long long reorder_every = 0;       // test: swap every n-th READING's first transmission with the next frame
  std::string unit_keys;             // the agent's key file format: keys of the units listed there
  // Evidence (docs/evidence.md, docs/firmware-bridge.md 7.15): each unit's
  // Ed25519 key in DIR/<unit>.key.pem (made if missing), DIR/evidence_keys
  // for the agent's bridge.evidence_keys; a chain and checkpoints per unit.
  std::string evidence_keys;
  long long evidence_every = 32;          // checkpoint every N readings (and at once after seal and door)
  long long evidence_every_ms = 7200000;  // ... or this long after the first uncovered reading
  std::string evidence_log;               // every acknowledged checkpoint, a JSON line each
  long long corrupt_evidence_every = 0;   // test: every n-th checkpoint gets a bad signature
  long long drop_evidence_acks_every = 0; // test: ignore every n-th EVIDENCE_ACK, as if lost
  bool no_features = false;          // behave as a unit without FEATURES (no deadbands; 6.7)
  bool quiet = false;
  bool list_units = false;  // print the fleet (unit, container, origin seal, reefer) and exit
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "eport-sim: %s\n"
               "usage: eport-sim [--connect unix:PATH|tcp:HOST:PORT] [--units N] [--pty N] [--pty-list FILE]\n"
               "                 [--rate R_PER_S] [--count N_PER_UNIT] [--duration S] [--seed N] [--prefix P]\n"
               "                 [--journey-readings N] [--time-step MS [--time-origin MS]]\n"
               "                 [--record FILE | --replay FILE]\n"
               "                 [--acked-log FILE] [--summary-json FILE] [--drain-timeout S] [--ack-timeout MS]\n"
               "                 [--drop-acks-every N] [--discard-every N [--discard-count K]]\n"
               "                 [--corrupt-every N] [--drop-every N] [--reorder-every N] [--unit-keys FILE]\n"
               "                 [--evidence-keys DIR [--evidence-every N] [--evidence-every-ms MS]\n"
               "                  [--evidence-log FILE] [--corrupt-evidence-every N] [--drop-evidence-acks-every N]]\n"
               "                 [--no-features] [--quiet] [--list-units]\n"
               "  --list-units    print each unit of the fleet as JSON (unit, container, the seal of its first\n"
               "                  journey, reefer) and exit: what a cloud knows from bookings\n"
               "  --units N       units connecting to --connect (default 10; 0 with --pty)\n"
               "  --pty N         N more units, each on a new pty pair; the agent opens the slave paths\n"
               "                  (printed, and written one per line to --pty-list FILE)\n"
               "  --time-step MS  stamp each unit's n-th reading time-origin + n*MS (a simulated clock:\n"
               "                  journeys take their real time at any --rate); default: the wall clock\n"
               "  --time-origin MS  UTC ms of each unit's first reading with --time-step (default 1795000000000)\n"
               "  --record FILE   write every generated reading with its time offset (JSON lines)\n"
               "  --replay FILE   send the readings of a recorded session instead of generating\n"
               "  --summary-json FILE  also write the summary as one JSON object\n"
               "  --ack-timeout MS  resend from the oldest unacknowledged item after MS (default 10000)\n"
               "  --drop-acks-every N  test: ignore every N-th ACK frame, as if it were lost\n"
               "  --discard-every N    test: readings N, 2N, ... of each unit each start a block of\n"
               "                       --discard-count K (default 3) readings declared discarded\n"
               "                       (one DISCARD FLASH_FULL) instead of being sent\n"
               "  --corrupt-every N    test: the first transmission of every N-th READING gets a bad CRC\n"
               "  --drop-every N       test: the first transmission of every N-th READING is not sent\n"
               "  --reorder-every N    test: the first transmission of every N-th READING swaps with the next\n"
               "  --unit-keys FILE     keys of units (\"UNIT_ID HEX64\" lines, as bridge.unit_keys): a unit listed\n"
               "                       there answers CHALLENGE and accepts only authenticated sessions\n"
               "  --evidence-keys DIR  evidence: each unit signs checkpoints over its readings (docs/evidence.md)\n"
               "                       with DIR/<unit>.key.pem (Ed25519, made if missing) and sends them (EVIDENCE);\n"
               "                       DIR/evidence_keys is the agent's bridge.evidence_keys file for them\n"
               "                       (with --list-units: the keys are made, then the fleet listed)\n"
               "  --evidence-every N   a checkpoint every N readings (default 32; 0: off), at once after seal and\n"
               "                       door readings, and --evidence-every-ms MS after the first uncovered one\n"
               "  --evidence-log FILE  every checkpoint the agent acknowledged, as JSON lines\n"
               "  --corrupt-evidence-every N  test: every N-th checkpoint goes out with a bad signature\n"
               "  --drop-evidence-acks-every N  test: ignore every N-th EVIDENCE_ACK (the checkpoint is resent after\n"
               "                       --ack-timeout, doubling to 5 min)\n"
               "  --no-features   do not announce FEATURES after WELCOME: an older unit that takes no\n"
               "                  deadbands (by default a unit announces them, and once a SETTINGS with\n"
               "                  deadbands arrived it sends a sample only when its interval is due or it\n"
               "                  moved / changed by the deadband since the last one sent)\n",
               why);
  std::exit(64);
}

Options parse(int argc, char** argv) {
  Options o;
  eport::flags::Args args(argc, argv, [](const std::string& why) { usage(why.c_str()); });
  while (args.more()) {
    const std::string a = args.next();
    if (a == "--connect") args.take(o.endpoint);
    else if (a == "--units") { args.take(o.units); o.units_given = true; }
    else if (a == "--pty") args.take(o.pty);
    else if (a == "--pty-list") args.take(o.pty_list);
    else if (a == "--rate") args.take(o.rate);
    else if (a == "--count") args.take(o.count);
    else if (a == "--duration") args.take(o.duration_s);
    else if (a == "--seed") args.take(o.seed);
    else if (a == "--prefix") args.take(o.prefix);
    else if (a == "--journey-readings") args.take(o.journey_readings);
    else if (a == "--time-step") args.take(o.time_step_ms);
    else if (a == "--time-origin") args.take(o.time_origin_ms);
    else if (a == "--record") args.take(o.record);
    else if (a == "--replay") args.take(o.replay);
    else if (a == "--acked-log") args.take(o.acked_log);
    else if (a == "--summary-json") args.take(o.summary_json);
    else if (a == "--drain-timeout") args.take(o.drain_timeout_s);
    else if (a == "--ack-timeout") args.take(o.ack_timeout_ms);
    else if (a == "--drop-acks-every") args.take(o.drop_acks_every);
    else if (a == "--discard-every") args.take(o.discard_every);
    else if (a == "--discard-count") args.take(o.discard_count);
    else if (a == "--corrupt-every") args.take(o.corrupt_every);
    else if (a == "--drop-every") args.take(o.drop_every);
    else if (a == "--reorder-every") args.take(o.reorder_every);
    else if (a == "--unit-keys") args.take(o.unit_keys);
    else if (a == "--evidence-keys") args.take(o.evidence_keys);
    else if (a == "--evidence-every") args.take(o.evidence_every);
    else if (a == "--evidence-every-ms") args.take(o.evidence_every_ms);
    else if (a == "--evidence-log") args.take(o.evidence_log);
    else if (a == "--corrupt-evidence-every") args.take(o.corrupt_evidence_every);
    else if (a == "--drop-evidence-acks-every") args.take(o.drop_evidence_acks_every);
    else if (a == "--no-features") o.no_features = true;
    else if (a == "--quiet") o.quiet = true;
    else if (a == "--list-units") o.list_units = true;
    else usage(("unknown option " + a).c_str());
  }
  if (o.pty > 0 && !o.units_given) o.units = 0;
  if (o.units < 0 || o.units > 100000) usage("--units must be 0..100000");
  if (o.pty < 0 || o.pty > 1000) usage("--pty must be 0..1000");
  if (o.units + o.pty < 1 && o.replay.empty()) usage("no units: give --units N and/or --pty N");
  if (o.rate <= 0) usage("--rate must be > 0");
  if (o.time_step_ms < 0 || o.time_step_ms > 86400000) usage("--time-step must be 0..86400000 ms");
  if (o.time_origin_ms <= 0) usage("--time-origin must be > 0");
  if (o.ack_timeout_ms < 10) usage("--ack-timeout must be at least 10 ms");
  if (o.journey_readings < eport::sim::kMinJourneyReadings) usage("--journey-readings must be at least 40");
  if (!o.record.empty() && !o.replay.empty()) usage("--record and --replay exclude each other");
  if (o.prefix.size() > 24) usage("--prefix must be at most 24 characters");
  if (o.discard_every > 0) {
    if (o.discard_count < 1 || o.discard_count >= o.discard_every) usage("--discard-count must be 1..--discard-every - 1");
    if (!o.record.empty() || !o.replay.empty()) usage("--discard-every excludes --record and --replay");
  }
  for (long long n : {o.corrupt_every, o.drop_every, o.reorder_every}) {
    if (n == 1) usage("--corrupt-every, --drop-every and --reorder-every must be 0 (off) or at least 2");
  }
  if (o.evidence_every < 0 || o.evidence_every > 100000) usage("--evidence-every must be 0..100000");
  if (o.evidence_every_ms < 0) usage("--evidence-every-ms must be >= 0");
  if (!o.evidence_keys.empty() && (!o.record.empty() || !o.replay.empty())) {
    usage("--evidence-keys excludes --record and --replay");
  }
  return o;
}

// COBS (firmware-bridge section 2), for --corrupt-every: the frame is decoded,
// one body byte flipped and encoded again, so the receiver sees a well-formed
// frame whose CRC fails.
std::vector<std::uint8_t> cobs_decode(const std::uint8_t* in, std::size_t len) {
  std::vector<std::uint8_t> out;
  std::size_t i = 0;
  while (i < len && in[i] != 0) {
    std::uint8_t code = in[i++];
    for (std::uint8_t k = 1; k < code && i < len; ++k) out.push_back(in[i++]);
    if (code != 0xFF && i < len && in[i] != 0) out.push_back(0);
  }
  return out;
}

std::string cobs_frame(const std::vector<std::uint8_t>& body) {
  std::string out;
  out.reserve(body.size() + body.size() / 254 + 2);
  std::size_t code_at = 0;
  out.push_back('\x01');
  std::uint8_t code = 1;
  for (std::uint8_t b : body) {
    if (b == 0) {
      out[code_at] = static_cast<char>(code);
      code_at = out.size();
      out.push_back('\x01');
      code = 1;
      continue;
    }
    out.push_back(static_cast<char>(b));
    if (++code == 0xFF) {
      out[code_at] = static_cast<char>(code);
      code_at = out.size();
      out.push_back('\x01');
      code = 1;
    }
  }
  out[code_at] = static_cast<char>(code);
  out.push_back('\0');
  return out;
}

enum class LinkKind { kSocket, kPty };

// One item of a unit's queue ("flash"): a reading (first == last == seq) or
// a DISCARD first..last. The queue always covers [oldest_seq, next_seq - 1].
struct Item {
  bool discard = false;
  std::uint64_t first = 0, last = 0;
  eport::model::Reading reading;  // !discard
  bool complete = true;           // discard block still growing: not sent yet
  bool ever_sent = false;         // faults hit first transmissions only
  bool malformed = false;         // NACK MALFORMED: never resent, kept until an ACK covers it
};

// A reading generated while the unit had no WELCOME on its link: not
// numbered yet (epb v2 7.1: nothing is numbered before WELCOME).
struct Unnumbered {
  std::uint64_t time_utc_ms = 0;
  std::uint64_t at_ms = 0;  // since the simulation started (--record)
};

struct Unit {
  int index = 0;
  std::string id, container;
  LinkKind kind = LinkKind::kSocket;
  int fd = -1;             // socket, or the pty master
  int keeper = -1;         // pty: the slave end held open (see tty::PtyPair)
  std::string pty_path;
  bool welcomed = false;
  Clock::time_point hello_due{};  // !welcomed: when to send HELLO (again)
  Backoff hello_backoff{BackoffOptions{kHelloBackoffMin, kHelloBackoffMax, 0}};  // jittered by jitter()
  epb_decoder decoder;
  std::mt19937_64 rng;
  std::uint64_t next_seq = 1;
  long long generated = 0;       // readings generated (numbered or not)
  long long numbered = 0;        // readings numbered (the --discard-every count)
  long long discard_left = 0;    // readings still to go into the current discard block
  std::deque<Unnumbered> unnumbered;
  std::deque<Item> held;         // the unit's "flash"
  std::size_t sent = 0;          // held[0..sent) are in flight; held[sent] is sent next
  std::uint16_t window = 1;
  std::string out;
  Clock::time_point next_due{}, retry_at{};
  Backoff backoff{BackoffOptions{milliseconds(100), milliseconds(2000), 0}};  // socket reconnect
  Clock::time_point flight_since{};  // ack timer of the oldest item in flight
  // Go-back-N on a resendable NACK n: repeated NACKs for n are one refusal.
  std::uint64_t rewind_seq = 0;
  std::optional<Clock::time_point> rewind_resent;  // when n went out again
  bool window_wait = false;      // NACK WINDOW: wait for the next ACK or the ack timeout
  Clock::time_point window_wait_since{};
  // STORE_FULL / INTERNAL backoff for seq hold_seq.
  std::uint64_t hold_seq = 0;    // 0: none
  Backoff hold_backoff{BackoffOptions{kStoreBackoffMin, kStoreBackoffMax, 0}};  // jittered by jitter()
  Clock::time_point hold_until{};
  bool hold_resent = false;      // hold_seq went out again since its last refusal
  // Liveness (7.9).
  Clock::time_point last_rx{};
  std::optional<Clock::time_point> ping_sent;
  std::uint32_t ping_nonce = 0;
  // Intervals in force (SETTINGS / SETTINGS_ACK).
  std::uint32_t position_interval_s = 1, sensor_interval_s = 1;
  // Report by exception (SETTINGS with deadbands, 6.4): once deadbands
  // arrived, samples are sent when their interval is due or the value moved
  // by the deadband since the last one sent; the others are not numbered.
  epb_settings deadbands{};  // extended == 0: none received, every sample is sent
  std::uint64_t skipped = 0;  // samples not sent: the journey goes on by sample, not by seq
  std::optional<eport::model::Reading> last_position, last_temperature;  // the last ones sent
  // Fault injection.
  std::uint64_t first_tx = 0;    // READING first transmissions so far
  std::string reorder_frame;     // held back, goes out after the next READING
  Clock::time_point reorder_deadline{};
  std::uint64_t acks_seen = 0;
  std::deque<eport::sim::session::Entry> script;  // --replay
  // Authentication (docs/firmware-bridge.md 13): a unit with a key accepts
  // only sealed sessions; the HELLO its AUTH proves.
  bool has_key = false;
  std::array<std::uint8_t, EPB_KEY_LEN> key{};
  epb_auth auth{};
  bool sealed = false;
  epb_message hello{};
  // Evidence (7.15): the chain over its numbered readings, the checkpoints
  // held until EVIDENCE_ACK, the one in flight and its resend backoff.
  bool evidence = false;
  bool chain_started = false;
  epb_ev_chain chain{};
  std::shared_ptr<EVP_PKEY> ev_key;
  epb_ev_signer signer{};
  struct Checkpoint {
    std::uint64_t seq = 0, n = 0;  // its last covered seq (the EVIDENCE key), its number
    std::vector<std::uint8_t> bytes;
  };
  std::deque<Checkpoint> ev_held;
  bool ev_in_flight = false;
  Clock::time_point ev_resend_at{};
  Backoff ev_backoff{BackoffOptions{kEvidenceWaitMin, kEvidenceWaitMax, 0}};  // jittered by jitter()
  std::uint64_t acked_upto = 0;  // highest seq an ACK or WELCOME covered
  std::uint64_t ev_made = 0;
  std::uint64_t ev_acks_seen = 0;
};

struct Totals {
  std::uint64_t generated = 0, frames_sent = 0, acked = 0, nacked = 0, malformed = 0, reconnects = 0,
                connect_failures = 0, resent = 0, ack_timeouts = 0, acks_dropped = 0, hellos = 0, settings = 0,
                hellos_refused = 0, declared_discarded = 0, discards = 0, discards_acked = 0, corrupted = 0,
                dropped = 0, reordered = 0, pings = 0, links_dead = 0, new_sessions = 0, auth_ok = 0,
                auth_refused = 0, unauthenticated_ignored = 0, evidence_made = 0, evidence_acked = 0,
                evidence_sent = 0, evidence_resent = 0, evidence_corrupted = 0, evidence_acks_dropped = 0,
                suppressed = 0;
};

class Sim {
 public:
  explicit Sim(Options o) : opt_(std::move(o)) {
    if (!opt_.acked_log.empty()) {
      acked_log_ = std::fopen(opt_.acked_log.c_str(), "w");
      if (acked_log_ == nullptr) usage(("cannot write " + opt_.acked_log).c_str());
    }
    std::vector<std::deque<eport::sim::session::Entry>> scripts;
    if (!opt_.replay.empty()) load_replay(scripts);
    eport::sim::FleetOptions fo;
    fo.seed = opt_.seed;
    fo.units = opt_.units + opt_.pty;
    fo.journey_readings = opt_.journey_readings;
    fleet_ = eport::sim::Fleet(fo);
    if (!opt_.record.empty()) {
      record_ = std::fopen(opt_.record.c_str(), "w");
      if (record_ == nullptr) usage(("cannot write " + opt_.record).c_str());
      eport::sim::session::Header h{opt_.seed, fo.units, opt_.prefix, opt_.journey_readings, opt_.rate};
      std::fprintf(record_, "%s\n", eport::sim::session::header_line(h).c_str());
    }
    int total = opt_.units + opt_.pty;
    units_.resize(static_cast<std::size_t>(total));
    auto start = Clock::now();
    auto period = std::chrono::duration<double>(1.0 / opt_.rate);
    auto interval = static_cast<std::uint32_t>(std::max(1L, std::lround(1.0 / opt_.rate)));
    for (int i = 0; i < total; ++i) {
      auto& u = units_[static_cast<std::size_t>(i)];
      u.index = i;
      u.id = eport::sim::unit_id(opt_.prefix, i);
      u.container = eport::sim::container_id(i);
      u.kind = i < opt_.units ? LinkKind::kSocket : LinkKind::kPty;
      u.rng.seed(mix64(opt_.seed ^ mix64(static_cast<std::uint64_t>(i) + 0x51a7ull)));
      u.position_interval_s = u.sensor_interval_s = interval;
      new_decoder(u);
      if (!scripts.empty() && !scripts[static_cast<std::size_t>(i)].empty()) {
        u.script = std::move(scripts[static_cast<std::size_t>(i)]);
        u.id = u.script.front().reading.source_id;
        u.container = u.script.front().reading.container_id;
        u.next_seq = u.script.front().reading.seq;
      }
      // Spread the units over one period so they do not all fire together.
      u.next_due = start + std::chrono::duration_cast<Clock::duration>(period * (static_cast<double>(i) / total));
    }
    if (!opt_.unit_keys.empty()) {
      auto keys = eport::units::read_unit_keys(opt_.unit_keys);
      if (!keys) usage(("--unit-keys: " + keys.error()).c_str());
      for (auto& u : units_) {
        if (auto k = keys->find(u.id); k != keys->end()) {
          u.has_key = true;
          u.key = k->second;
        }
      }
    }
    if (!opt_.evidence_keys.empty()) setup_evidence();
    open_ptys();
  }
  ~Sim() {
    if (acked_log_) std::fclose(acked_log_);
    if (evidence_log_) std::fclose(evidence_log_);
    if (record_) std::fclose(record_);
    for (auto& u : units_) {
      if (u.fd >= 0) close(u.fd);
      if (u.keeper >= 0) close(u.keeper);
    }
  }

  int run() {
    start_ = Clock::now();
    auto period = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / opt_.rate));
    Clock::time_point drain_deadline{};
    std::vector<pollfd> pfds;
    std::vector<Unit*> polled;
    while (true) {
      auto now = Clock::now();
      if (generating_ && (g_stop || (opt_.duration_s > 0 && now - start_ >= std::chrono::duration<double>(opt_.duration_s)) ||
                          all_generated())) {
        generating_ = false;
        // A discard block cut short by the end of generation is declared as it is.
        for (auto& u : units_) {
          for (auto& it : u.held) it.complete = true;
          u.discard_left = 0;
          if (u.welcomed) number_readings(u);  // and the last checkpoint (evidence)
        }
        drain_deadline = now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt_.drain_timeout_s));
      }
      if (!generating_ && (all_acked() || now >= drain_deadline || g_stop > 1)) break;
      for (auto& u : units_) {
        if (u.kind == LinkKind::kSocket && u.fd < 0 && now >= u.retry_at) connect_unit(u, now);
        if (generating_) generate(u, now, period);
        if (u.fd < 0) continue;
        if (!u.welcomed) {
          if (now >= u.hello_due) send_hello(u, now);
          continue;
        }
        check_liveness(u, now);
        if (u.fd < 0 || !u.welcomed) continue;
        check_ack_timeout(u, now);
        fill_window(u, now);
        send_evidence(u, now);
        if (!u.reorder_frame.empty() && now >= u.reorder_deadline) {
          u.out += u.reorder_frame;  // nothing came to swap it with: it goes out late, alone
          u.reorder_frame.clear();
        }
      }
      pfds.clear();
      polled.clear();
      for (auto& u : units_) {
        if (u.fd >= 0) flush(u);
        if (u.fd < 0) continue;
        pfds.push_back({u.fd, static_cast<short>(POLLIN | (u.out.empty() ? 0 : POLLOUT)), 0});
        polled.push_back(&u);
      }
      int rc = poll(pfds.data(), pfds.size(), 5);
      if (rc < 0 && errno != EINTR) break;
      for (std::size_t i = 0; i < pfds.size(); ++i) {
        if (pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) read_unit(*polled[i]);
      }
    }
    if (record_) {
      // Readings never numbered (the unit never had WELCOME) go into the
      // session file with the seqs they get next, as the unit would number them.
      for (auto& u : units_) number_readings(u);
    }
    return summary();
  }

 private:
  using ull = unsigned long long;

  int summary() {
    std::uint64_t pending = 0, discards_pending = 0, ev_pending = 0;
    for (auto& u : units_) {
      pending += u.unnumbered.size();
      for (const auto& it : u.held) ++(it.discard ? discards_pending : pending);
      ev_pending += u.ev_held.size();
    }
    const Totals& t = totals_;
    std::printf(
        "eport-sim: units=%d generated=%llu acked=%llu unacked=%llu nacked=%llu frames_sent=%llu reconnects=%llu "
        "pty_units=%d resent=%llu ack_timeouts=%llu acks_dropped=%llu settings=%llu declared_discarded=%llu "
        "discards=%llu discards_acked=%llu discards_unacked=%llu faults_corrupted=%llu faults_dropped=%llu "
        "faults_reordered=%llu hellos=%llu hellos_refused=%llu new_sessions=%llu malformed=%llu pings=%llu "
        "links_dead=%llu auth_ok=%llu auth_refused=%llu unauthenticated_ignored=%llu evidence_made=%llu "
        "evidence_acked=%llu evidence_unacked=%llu evidence_resent=%llu evidence_corrupted=%llu "
        "evidence_acks_dropped=%llu suppressed=%llu\n",
        static_cast<int>(units_.size()), ull{t.generated}, ull{t.acked}, ull{pending}, ull{t.nacked},
        ull{t.frames_sent}, ull{t.reconnects}, opt_.pty, ull{t.resent}, ull{t.ack_timeouts}, ull{t.acks_dropped},
        ull{t.settings}, ull{t.declared_discarded}, ull{t.discards}, ull{t.discards_acked}, ull{discards_pending},
        ull{t.corrupted}, ull{t.dropped}, ull{t.reordered}, ull{t.hellos}, ull{t.hellos_refused},
        ull{t.new_sessions}, ull{t.malformed}, ull{t.pings}, ull{t.links_dead}, ull{t.auth_ok}, ull{t.auth_refused},
        ull{t.unauthenticated_ignored}, ull{t.evidence_made}, ull{t.evidence_acked}, ull{ev_pending},
        ull{t.evidence_resent}, ull{t.evidence_corrupted}, ull{t.evidence_acks_dropped}, ull{t.suppressed});
    std::fflush(stdout);
    if (!opt_.summary_json.empty()) {
      std::FILE* f = std::fopen(opt_.summary_json.c_str(), "w");
      if (f == nullptr) {
        std::fprintf(stderr, "eport-sim: cannot write %s\n", opt_.summary_json.c_str());
      } else {
        std::fprintf(f,
                     "{\"units\":%d,\"pty_units\":%d,\"generated\":%llu,\"acked\":%llu,\"unacked\":%llu,"
                     "\"declared_discarded\":%llu,\"discards\":%llu,\"discards_acked\":%llu,\"discards_unacked\":%llu,"
                     "\"faults\":{\"corrupted\":%llu,\"dropped\":%llu,\"reordered\":%llu},"
                     "\"nacked\":%llu,\"frames_sent\":%llu,\"reconnects\":%llu,\"resent\":%llu,\"ack_timeouts\":%llu,"
                     "\"acks_dropped\":%llu,\"settings\":%llu,\"hellos\":%llu,\"hellos_refused\":%llu,"
                     "\"new_sessions\":%llu,\"malformed\":%llu,\"pings\":%llu,\"links_dead\":%llu,"
                     "\"auth\":{\"ok\":%llu,\"refused\":%llu,\"unauthenticated_ignored\":%llu},"
                     "\"evidence\":{\"made\":%llu,\"acked\":%llu,\"unacked\":%llu,\"sent\":%llu,\"resent\":%llu,"
                     "\"corrupted\":%llu},\"suppressed\":%llu,\"ok\":%s}\n",
                     static_cast<int>(units_.size()), opt_.pty, ull{t.generated}, ull{t.acked}, ull{pending},
                     ull{t.declared_discarded}, ull{t.discards}, ull{t.discards_acked}, ull{discards_pending},
                     ull{t.corrupted}, ull{t.dropped}, ull{t.reordered}, ull{t.nacked}, ull{t.frames_sent},
                     ull{t.reconnects}, ull{t.resent}, ull{t.ack_timeouts}, ull{t.acks_dropped}, ull{t.settings},
                     ull{t.hellos}, ull{t.hellos_refused}, ull{t.new_sessions}, ull{t.malformed}, ull{t.pings},
                     ull{t.links_dead}, ull{t.auth_ok}, ull{t.auth_refused}, ull{t.unauthenticated_ignored},
                     ull{t.evidence_made}, ull{t.evidence_acked}, ull{ev_pending}, ull{t.evidence_sent},
                     ull{t.evidence_resent}, ull{t.evidence_corrupted}, ull{t.suppressed},
                     pending + discards_pending + ev_pending == 0 ? "true" : "false");
        std::fclose(f);
      }
    }
    return pending + discards_pending + ev_pending == 0 ? 0 : 3;
  }

  void load_replay(std::vector<std::deque<eport::sim::session::Entry>>& scripts) {
    std::ifstream in(opt_.replay);
    if (!in) usage(("cannot read " + opt_.replay).c_str());
    std::string line;
    if (!std::getline(in, line)) usage(("empty session file " + opt_.replay).c_str());
    auto h = eport::sim::session::parse_header(line);
    if (!h) usage((opt_.replay + ": " + h.error()).c_str());
    opt_.seed = h->seed;
    opt_.prefix = h->prefix;
    opt_.journey_readings = std::max(h->journey_readings, eport::sim::kMinJourneyReadings);
    // The recorded units keep their indices; --pty N puts the last N on ptys.
    int total = h->units;
    if (opt_.pty > total) usage("--pty is larger than the number of recorded units");
    opt_.units = total - opt_.pty;
    scripts.resize(static_cast<std::size_t>(total));
    std::size_t lineno = 1;
    while (std::getline(in, line)) {
      ++lineno;
      if (line.empty()) continue;
      auto e = eport::sim::session::parse_entry(line);
      if (!e) usage((opt_.replay + ":" + std::to_string(lineno) + ": " + e.error()).c_str());
      if (e->unit < 0 || e->unit >= total) usage((opt_.replay + ":" + std::to_string(lineno) + ": unit out of range").c_str());
      scripts[static_cast<std::size_t>(e->unit)].push_back(std::move(e).value());
    }
    opt_.count = 0;
    for (const auto& s : scripts) opt_.count = std::max<long long>(opt_.count, static_cast<long long>(s.size()));
  }

  void open_ptys() {
    std::vector<std::string> paths;
    for (auto& u : units_) {
      if (u.kind != LinkKind::kPty) continue;
      auto p = eport::tty::open_pty_pair();
      if (!p) {
        std::fprintf(stderr, "eport-sim: %s\n", p.error().c_str());
        std::exit(1);
      }
      u.fd = p->master;
      u.keeper = p->slave_keeper;
      u.pty_path = p->slave_path;
      u.hello_due = Clock::now();
      u.last_rx = Clock::now();
      paths.push_back(u.pty_path);
      std::printf("eport-sim: serial unit %s on %s\n", u.id.c_str(), u.pty_path.c_str());
    }
    if (paths.empty()) return;
    std::string joined;
    for (const auto& p : paths) joined += (joined.empty() ? "" : ",") + p;
    std::printf("eport-sim: agent config: [bridge] serial_ports = \"%s\"\n", joined.c_str());
    std::fflush(stdout);
    if (!opt_.pty_list.empty()) {
      // Written whole, then renamed: a reader never sees half a list.
      std::string tmp = opt_.pty_list + ".tmp";
      std::FILE* f = std::fopen(tmp.c_str(), "w");
      if (f == nullptr) usage(("cannot write " + tmp).c_str());
      for (const auto& p : paths) std::fprintf(f, "%s\n", p.c_str());
      std::fclose(f);
      if (std::rename(tmp.c_str(), opt_.pty_list.c_str()) != 0) usage(("cannot write " + opt_.pty_list).c_str());
    }
  }


  bool all_generated() const {
    if (!opt_.replay.empty()) {
      for (const auto& u : units_)
        if (!u.script.empty()) return false;
      return true;
    }
    if (opt_.count == 0) return false;
    for (const auto& u : units_)
      if (u.generated < opt_.count) return false;
    return true;
  }
  bool all_acked() const {
    for (const auto& u : units_)
      if (!u.held.empty() || !u.unnumbered.empty() || !u.ev_held.empty()) return false;
    return true;
  }

  // +/-20 % from the unit's own seeded generator (not Backoff's jitter), so a
  // --seed run draws the same numbers as before.
  milliseconds jitter(Unit& u, milliseconds d) {
    std::uniform_real_distribution<double> f(0.8, 1.2);
    return milliseconds(static_cast<long long>(static_cast<double>(d.count()) * f(u.rng)));
  }

  void generate(Unit& u, Clock::time_point now, Clock::duration period) {
    if (!opt_.replay.empty()) {
      // Recorded readings carry their seqs: they join the queue once the
      // unit has WELCOME (its HELLO says where the next one starts).
      while (u.welcomed && !u.script.empty() && now - start_ >= milliseconds(u.script.front().at_ms)) {
        Item it;
        it.first = it.last = u.script.front().reading.seq;
        it.reading = std::move(u.script.front().reading);
        u.script.pop_front();
        u.next_seq = it.last + 1;
        u.held.push_back(std::move(it));
        ++u.generated;
        ++totals_.generated;
      }
      return;
    }
    while (now >= u.next_due && (opt_.count == 0 || u.generated < opt_.count)) {
      auto at = static_cast<std::uint64_t>(std::chrono::duration_cast<milliseconds>(now - start_).count());
      auto stamp = opt_.time_step_ms > 0
                       ? static_cast<std::uint64_t>(opt_.time_origin_ms + u.generated * opt_.time_step_ms)
                       : now_utc_ms();
      u.unnumbered.push_back({stamp, at});
      ++u.generated;
      ++totals_.generated;
      u.next_due += period;
    }
    if (u.welcomed) number_readings(u);
  }

  // Report by exception: whether a sample goes out under the deadbands in
  // force: seals, doors and the first of each kind always; a position when
  // its interval is due or it is at least the position deadband away from
  // the last one sent; a temperature likewise with the temperature deadband.
  static bool report_now(const Unit& u, const eport::model::Reading& r) {
    const auto& d = u.deadbands;
    auto due = [&](const std::optional<eport::model::Reading>& last, std::uint32_t interval_s) {
      return !last || r.time_utc_ms < last->time_utc_ms ||
             r.time_utc_ms - last->time_utc_ms >= std::uint64_t{interval_s} * 1000;
    };
    if (const auto* p = std::get_if<eport::model::Position>(&r.payload)) {
      if (due(u.last_position, u.position_interval_s)) return true;
      if (!(d.deadbands & EPB_DEADBAND_POSITION)) return false;
      const auto& q = std::get<eport::model::Position>(u.last_position->payload);
      return distance_m(*p, q) >= d.position_deadband_m;
    }
    if (const auto* t = std::get_if<eport::model::SensorSample>(&r.payload); t && t->temperature_centi_c) {
      if (due(u.last_temperature, u.sensor_interval_s)) return true;
      if (!(d.deadbands & EPB_DEADBAND_TEMPERATURE)) return false;
      const auto& last = *std::get<eport::model::SensorSample>(u.last_temperature->payload).temperature_centi_c;
      return std::abs(int{*t->temperature_centi_c} - int{last}) >= int{d.temperature_deadband_centi_c};
    }
    return true;
  }
  // Great-circle distance (haversine), metres.
  static double distance_m(const eport::model::Position& a, const eport::model::Position& b) {
    constexpr double kRad = 3.14159265358979323846 / 180.0 / 1e7, kEarthM = 6371008.8;
    const double la1 = a.lat_e7 * kRad, la2 = b.lat_e7 * kRad;
    const double dla = la2 - la1, dlo = (b.lon_e7 - a.lon_e7) * kRad;
    const double h = std::sin(dla / 2) * std::sin(dla / 2) + std::cos(la1) * std::cos(la2) * std::sin(dlo / 2) * std::sin(dlo / 2);
    return 2 * kEarthM * std::asin(std::min(1.0, std::sqrt(h)));
  }

  // Gives the readings generated so far their seqs (only with WELCOME on the
  // link, so that next_seq is in step with the agent), folding the blocks
  // that --discard-every declares discarded into one DISCARD each.
  void number_readings(Unit& u) {
    while (!u.unnumbered.empty()) {
      auto g = u.unnumbered.front();
      u.unnumbered.pop_front();
      if (u.deadbands.extended && u.discard_left == 0) {
        auto sample = fleet_.reading(u.index, u.id, u.container, u.next_seq + u.skipped, g.time_utc_ms);
        if (!report_now(u, sample)) {
          ++u.skipped;
          ++totals_.suppressed;
          continue;
        }
      }
      const std::uint64_t seq = u.next_seq++;
      ++u.numbered;
      if (opt_.discard_every > 0 && u.discard_left == 0 && u.numbered % opt_.discard_every == 0) {
        u.discard_left = opt_.discard_count;
        Item it;
        it.discard = true;
        it.first = it.last = seq;
        it.complete = false;
        u.held.push_back(std::move(it));
        ++totals_.discards;
      } else if (u.discard_left > 0 && !u.held.empty() && u.held.back().discard && !u.held.back().complete) {
        u.held.back().last = seq;
      } else {
        u.discard_left = 0;
        Item it;
        it.first = it.last = seq;
        it.reading = fleet_.reading(u.index, u.id, u.container, seq + u.skipped, g.time_utc_ms);
        it.reading.seq = seq;
        if (std::holds_alternative<eport::model::Position>(it.reading.payload)) u.last_position = it.reading;
        if (const auto* t = std::get_if<eport::model::SensorSample>(&it.reading.payload); t && t->temperature_centi_c)
          u.last_temperature = it.reading;
        if (u.evidence) chain_append(u, it.reading);
        if (record_) {
          auto line = eport::sim::session::entry_line({g.at_ms, u.index, it.reading});
          if (line) std::fprintf(record_, "%s\n", line->c_str());
        }
        u.held.push_back(std::move(it));
        continue;
      }
      ++totals_.declared_discarded;
      if (--u.discard_left == 0) u.held.back().complete = true;
    }
    if (!generating_ && u.discard_left > 0) {  // generation is over: the block ends here
      u.discard_left = 0;
      if (!u.held.empty()) u.held.back().complete = true;
    }
    // A planned shutdown: the last readings get their checkpoint too.
    if (u.evidence && !generating_ && u.chain_started && u.chain.count > 0) make_checkpoint(u);
  }

  // ---- evidence (docs/evidence.md 6, docs/firmware-bridge.md 7.15) ----

  void setup_evidence() {
    const std::string& dir = opt_.evidence_keys;
    ::mkdir(dir.c_str(), 0700);
    std::string listing;
    for (auto& u : units_) {
      std::string path = dir + "/" + u.id + ".key.pem";
      std::string err;
      epb_ossl::Pkey key;
      if (::access(path.c_str(), R_OK) == 0) {
        key = epb_ossl::read_private_pem(path, &err);
      } else {
        key = epb_ossl::generate(EPB_EV_ALG_EDDSA);
        if (key && (!epb_ossl::write_private_pem(key.get(), path, &err) ||
                    !epb_ossl::write_public_pem(key.get(), dir + "/" + u.id + ".pub.pem", &err))) {
          key.reset();
        }
      }
      if (!key) usage(("--evidence-keys: " + (err.empty() ? "cannot make a key for " + u.id : err)).c_str());
      epb_ev_key pub{};
      if (!epb_ossl::public_key(key.get(), "", &pub)) usage(("--evidence-keys: bad key " + path).c_str());
      u.ev_key = std::shared_ptr<EVP_PKEY>(key.release(), epb_ossl::PkeyFree{});
      if (!epb_ossl::signer(u.ev_key.get(), "", &u.signer)) usage(("--evidence-keys: bad key " + path).c_str());
      u.evidence = true;
      // The first resend after --ack-timeout (10 s by default, as 7.15 says).
      u.ev_backoff = Backoff{BackoffOptions{milliseconds(opt_.ack_timeout_ms), kEvidenceWaitMax, 0}};
      static constexpr char kHex[] = "0123456789abcdef";
      auto hex = [](const std::uint8_t* b, std::size_t n) {
        std::string out;
        for (std::size_t i = 0; i < n; ++i) {
          out += kHex[b[i] >> 4];
          out += kHex[b[i] & 15];
        }
        return out;
      };
      listing += u.id + " " + (pub.alg == EPB_EV_ALG_EDDSA ? "ed25519" : "es256") + " " + hex(pub.kid, pub.kid_len) +
                 " " + hex(pub.pub, pub.pub_len) + "\n";
    }
    // Written whole, then renamed: the agent never reads half a file.
    std::string file = dir + "/evidence_keys", tmp = file + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "w");
    if (f == nullptr || std::fputs(listing.c_str(), f) < 0 || std::fclose(f) != 0 ||
        std::rename(tmp.c_str(), file.c_str()) != 0) {
      usage(("cannot write " + file).c_str());
    }
    if (!opt_.evidence_log.empty()) {
      evidence_log_ = std::fopen(opt_.evidence_log.c_str(), "w");
      if (evidence_log_ == nullptr) usage(("cannot write " + opt_.evidence_log).c_str());
    }
  }

  static std::uint64_t mono_ms() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<milliseconds>(Clock::now().time_since_epoch()).count());
  }

  // Appends a numbered reading to the unit's chain (before it is first
  // sent), and makes a checkpoint when one is due.
  void chain_append(Unit& u, const eport::model::Reading& r) {
    auto w = eport::units::to_wire(r);
    if (!w) return;
    if (!u.chain_started) {
      if (epb_ev_chain_init(&u.chain, u.id.c_str(), static_cast<std::uint8_t>(u.id.size()), w->seq) != EPB_EV_OK) {
        usage(("cannot start an evidence chain for " + u.id).c_str());
      }
      u.chain_started = true;
    }
    if (epb_ev_append(&u.chain, &*w, mono_ms(), 0) != EPB_EV_OK) {
      log_unit(u, "reading " + std::to_string(w->seq) + " could not join the evidence chain");
      return;
    }
    if (opt_.evidence_every == 0) return;
    epb_ev_policy policy{static_cast<std::uint32_t>(opt_.evidence_every),
                         static_cast<std::uint32_t>(std::min<long long>(opt_.evidence_every_ms, UINT32_MAX))};
    if (epb_ev_due(&u.chain, &policy, mono_ms())) make_checkpoint(u);
  }

  void make_checkpoint(Unit& u) {
    Unit::Checkpoint ck;
    ck.bytes.resize(EPB_EV_CHECKPOINT_MAX);
    std::size_t len = 0;
    const std::uint64_t last = u.chain.last_seq;
    if (epb_ev_make_checkpoint(&u.chain, &u.signer, now_utc_ms(), nullptr, ck.bytes.data(), ck.bytes.size(), &len) !=
        EPB_EV_OK) {
      log_unit(u, "could not make a checkpoint");
      return;
    }
    ck.bytes.resize(len);
    ck.seq = last;
    ck.n = u.chain.ckpt_n;
    ++u.ev_made;
    ++totals_.evidence_made;
    if (opt_.corrupt_evidence_every > 0 && u.ev_made % static_cast<std::uint64_t>(opt_.corrupt_evidence_every) == 0) {
      ck.bytes.back() ^= 0x01;  // the signature's last byte: the id (and the next prev) do not change
      ++totals_.evidence_corrupted;
    }
    u.ev_held.push_back(std::move(ck));
  }

  // One checkpoint at a time, once an ACK covers its readings, all its
  // fragments back to back; again after the backoff without EVIDENCE_ACK.
  void send_evidence(Unit& u, Clock::time_point now) {
    if (!u.evidence || u.ev_held.empty()) return;
    const auto& ck = u.ev_held.front();
    if (u.acked_upto < ck.seq) return;
    if (u.ev_in_flight && now < u.ev_resend_at) return;
    if (u.ev_in_flight) ++totals_.evidence_resent;
    for (unsigned i = 0; i < epb_evf_count(ck.bytes.size()); ++i) {
      epb_message m;
      if (epb_evf_fragment(ck.seq, ck.bytes.data(), ck.bytes.size(), i, &m) != 1) return;
      send(u, m);
    }
    ++totals_.evidence_sent;
    u.ev_in_flight = true;
    u.ev_resend_at = now + jitter(u, u.ev_backoff.next());
  }

  void on_evidence_ack(Unit& u, std::uint64_t seq) {
    if (u.ev_held.empty() || u.ev_held.front().seq != seq) return;  // a late repeat
    if (opt_.drop_evidence_acks_every > 0 &&
        ++u.ev_acks_seen % static_cast<std::uint64_t>(opt_.drop_evidence_acks_every) == 0) {
      ++totals_.evidence_acks_dropped;  // "lost on the way": the resend recovers it
      return;
    }
    const auto& ck = u.ev_held.front();
    if (evidence_log_) {
      static constexpr char kHex[] = "0123456789abcdef";
      std::string hex;
      for (auto b : ck.bytes) {
        hex += kHex[b >> 4];
        hex += kHex[b & 15];
      }
      std::fprintf(evidence_log_, "{\"unit\":\"%s\",\"seq\":%llu,\"n\":%llu,\"cose\":\"%s\"}\n", u.id.c_str(),
                   ull{ck.seq}, ull{ck.n}, hex.c_str());
      std::fflush(evidence_log_);
    }
    u.ev_held.pop_front();
    u.ev_in_flight = false;
    u.ev_backoff.reset();
    ++totals_.evidence_acked;
  }

  // Link gone (socket closed) or dead: a socket unit reconnects, a pty unit
  // starts a new session on the same line.
  void drop_connection(Unit& u) {
    if (u.kind == LinkKind::kPty) {
      restart_session(u);
      return;
    }
    if (u.fd >= 0) close(u.fd);
    u.fd = -1;
    reset_link_state(u);
    u.out.clear();
    u.retry_at = u.backoff.schedule(Clock::now());
  }

  void reset_link_state(Unit& u) {
    u.welcomed = false;
    u.sent = 0;  // everything held is resent after the next WELCOME
    u.window_wait = false;
    u.rewind_seq = 0;
    u.rewind_resent.reset();
    u.hold_seq = 0;
    u.hold_backoff.reset();
    u.hold_until = {};
    u.ping_sent.reset();
    u.reorder_frame.clear();
    u.ev_in_flight = false;  // a new link: the oldest held checkpoint goes again after WELCOME
    u.ev_backoff.reset();
  }

  // A new session on the same link (a tty stays open; NACK NO_HELLO; a
  // broken state): HELLO now, then the HELLO schedule.
  void restart_session(Unit& u) {
    reset_link_state(u);
    ++totals_.new_sessions;
    u.hello_due = Clock::now();
  }

  void connect_unit(Unit& u, Clock::time_point now) {
    auto fd = eport::units::net::connect_endpoint(opt_.endpoint);
    if (!fd) {
      ++totals_.connect_failures;
      if (!opt_.quiet && totals_.connect_failures == 1) std::fprintf(stderr, "eport-sim: %s (retrying)\n", fd.error().c_str());
      drop_connection(u);
      return;
    }
    u.fd = *fd;
    new_decoder(u);
    if (u.backoff.step() > milliseconds(100)) ++totals_.reconnects;
    u.last_rx = now;
    send_hello(u, now);  // every new link starts with 0x00 HELLO
  }

  // A fresh decoder for a new link; sealed frames verify against u.auth.
  static void new_decoder(Unit& u) {
    epb_decoder_init(&u.decoder);
    u.decoder.auth = &u.auth;
  }

  // Every HELLO ends the session it had: its key is forgotten (13.3).
  void end_auth(Unit& u) {
    epb_auth_clear(&u.auth);
    u.sealed = false;
  }

  // CHALLENGE: a unit with a key answers AUTH and seals from then on.
  void on_challenge(Unit& u, const epb_challenge& c) {
    if (!u.has_key) {
      ++totals_.auth_refused;
      log_unit(u, "the agent requires authentication and this unit has no key (--unit-keys)");
      return;
    }
    epb_message a{};
    a.type = EPB_MSG_AUTH;
    for (auto& b : a.m.auth.unit_nonce) b = static_cast<std::uint8_t>(u.rng());  // firmware: its TRNG
    std::uint8_t sk[EPB_SHA256_LEN];
    epb_auth_session_key(u.key.data(), u.hello.m.hello.unit_id, u.hello.m.hello.unit_id_len, c.agent_nonce,
                         a.m.auth.unit_nonce, sk);
    epb_auth_proof(sk, &u.hello, a.m.auth.proof);
    end_auth(u);
    send(u, a);  // AUTH itself is never sealed
    epb_auth_start(&u.auth, sk, 1);
    std::memset(sk, 0, sizeof sk);
    u.sealed = true;
  }

  void send_hello(Unit& u, Clock::time_point now) {
    end_auth(u);
    epb_message m{};
    m.type = EPB_MSG_HELLO;
    auto& h = m.m.hello;
    h.unit_id_len = static_cast<std::uint8_t>(std::min<std::size_t>(u.id.size(), EPB_UNIT_ID_MAX));
    std::memcpy(h.unit_id, u.id.data(), h.unit_id_len);
    h.container_id_len = static_cast<std::uint8_t>(u.container.size());
    std::memcpy(h.container_id, u.container.data(), u.container.size());
    const char fw[] = "sim-3.0";
    h.firmware_len = sizeof fw - 1;
    std::memcpy(h.firmware, fw, sizeof fw - 1);
    h.next_seq = std::max<std::uint64_t>(1, u.next_seq);
    h.oldest_seq = u.held.empty() ? h.next_seq : u.held.front().first;
    u.hello = m;
    // A leading 0x00 resynchronises the receiver, as firmware does after reset.
    u.out.push_back('\0');
    send(u, m);
    ++totals_.hellos;
    // HELLO schedule (7.1.5): no WELCOME within 5 s, wait 1 s, 2 s, 4 s ...
    // (at most 60 s, +/-20 %) and say HELLO again; WELCOME resets it.
    u.hello_due = now + kHelloWait + jitter(u, u.hello_backoff.next());
  }

  // Sealed in an authenticated session (HELLO and AUTH never are).
  static std::size_t encode(Unit& u, const epb_message& m, std::uint8_t* buf, std::size_t cap) {
    if (u.sealed && m.type != EPB_MSG_HELLO && m.type != EPB_MSG_AUTH) return epb_encode_sealed(&m, &u.auth, buf, cap);
    return epb_encode(&m, buf, cap);
  }

  void send(Unit& u, const epb_message& m) {
    std::uint8_t buf[EPB_MAX_ENCODED];
    std::size_t n = encode(u, m, buf, sizeof buf);
    if (n == 0) {
      std::fprintf(stderr, "eport-sim: cannot encode message type %d\n", m.type);
      return;
    }
    u.out.append(reinterpret_cast<const char*>(buf), n);
    ++totals_.frames_sent;
  }

  // One READING frame onto the wire, through the fault injector when it is
  // the reading's first transmission.
  void send_reading(Unit& u, const epb_message& m, bool first_tx, Clock::time_point now) {
    std::uint8_t buf[EPB_MAX_ENCODED];
    std::size_t n = encode(u, m, buf, sizeof buf);
    if (n == 0) {
      std::fprintf(stderr, "eport-sim: cannot encode reading %llu\n", ull{m.m.reading.seq});
      return;
    }
    std::string frame(reinterpret_cast<const char*>(buf), n);
    if (first_tx) {
      const std::uint64_t k = ++u.first_tx;
      auto hit = [k](long long every) { return every > 0 && k % static_cast<std::uint64_t>(every) == 0; };
      if (hit(opt_.drop_every)) {
        ++totals_.dropped;  // lost on the line
        return;
      }
      if (hit(opt_.corrupt_every)) {
        auto body = cobs_decode(buf, n);
        if (body.size() > 6) {
          // One payload byte (after version and type, before the CRC).
          std::size_t at = 2 + static_cast<std::size_t>(u.rng() % (body.size() - 6));
          body[at] = static_cast<std::uint8_t>(body[at] ^ (1u << (u.rng() % 8)));
          frame = cobs_frame(body);
          ++totals_.corrupted;
        }
      } else if (hit(opt_.reorder_every) && u.reorder_frame.empty()) {
        u.reorder_frame = std::move(frame);  // goes out after the next READING
        u.reorder_deadline = now + kReorderHold;
        ++totals_.frames_sent;
        return;
      }
    }
    u.out += frame;
    ++totals_.frames_sent;
    if (!u.reorder_frame.empty()) {
      u.out += u.reorder_frame;
      u.reorder_frame.clear();
      ++totals_.reordered;
    }
  }

  void fill_window(Unit& u, Clock::time_point now) {
    if (u.window_wait && now - u.window_wait_since >= milliseconds(opt_.ack_timeout_ms)) u.window_wait = false;
    if (u.window_wait || (u.hold_seq != 0 && now < u.hold_until)) return;
    while (u.sent < u.held.size() && u.sent < u.window) {
      Item& it = u.held[u.sent];
      if (!it.complete) break;  // a discard block still growing: seq order
      if (it.malformed) {       // the agent recorded it as a gap: never resend
        ++u.sent;
        continue;
      }
      epb_message m{};
      if (it.discard) {
        m.type = EPB_MSG_DISCARD;
        m.m.discard.first_seq = it.first;
        m.m.discard.last_seq = it.last;
        m.m.discard.reason = EPB_DISCARD_FLASH_FULL;
        send(u, m);
      } else {
        auto w = eport::units::to_wire(it.reading);
        if (!w) {
          // Cannot happen with generated readings; a unit would have to declare it.
          std::fprintf(stderr, "eport-sim: %s\n", w.error().c_str());
          it.malformed = true;
          ++u.sent;
          continue;
        }
        m.type = EPB_MSG_READING;
        m.m.reading = *w;
        send_reading(u, m, !it.ever_sent, now);
      }
      if (it.ever_sent) ++totals_.resent;
      it.ever_sent = true;
      if (u.sent == 0) u.flight_since = now;
      if (u.rewind_seq != 0 && it.first <= u.rewind_seq && u.rewind_seq <= it.last) u.rewind_resent = now;
      if (u.hold_seq != 0 && it.first <= u.hold_seq && u.hold_seq <= it.last) u.hold_resent = true;
      ++u.sent;
    }
  }

  // Ack timeout (7.6): the oldest item in flight got neither an ACK nor a
  // NACK in time: go back to it and send everything from there again.
  void check_ack_timeout(Unit& u, Clock::time_point now) {
    if (u.sent == 0 || now - u.flight_since < milliseconds(opt_.ack_timeout_ms)) return;
    ++totals_.ack_timeouts;
    u.sent = 0;
    u.window_wait = false;
    u.flight_since = now;
  }

  // Liveness (7.9): 30 s without a frame, PING; 10 s more, the link is dead.
  void check_liveness(Unit& u, Clock::time_point now) {
    if (u.ping_sent) {
      if (now - *u.ping_sent >= kPingDead) {
        ++totals_.links_dead;
        if (!opt_.quiet) std::fprintf(stderr, "eport-sim: %s: link dead (no answer to PING)\n", u.id.c_str());
        drop_connection(u);
      }
      return;
    }
    if (now - u.last_rx >= kIdlePing) {
      epb_message m{};
      m.type = EPB_MSG_PING;
      m.m.ping.nonce = ++u.ping_nonce;
      send(u, m);
      ++totals_.pings;
      u.ping_sent = now;
    }
  }

  void flush(Unit& u) {
    if (u.kind == LinkKind::kPty && u.out.size() > 64 * 1024) {
      // Nobody reads the line (agent down): a UART would just lose the bytes.
      u.out.clear();
    }
    while (!u.out.empty()) {
      ssize_t n = u.kind == LinkKind::kPty ? ::write(u.fd, u.out.data(), u.out.size())
                                           : ::send(u.fd, u.out.data(), u.out.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) drop_connection(u);
        return;
      }
      u.out.erase(0, static_cast<std::size_t>(n));
    }
  }

  // Frees every item with seq <= upto: the agent has it in custody.
  void release(Unit& u, std::uint64_t upto, Clock::time_point now) {
    u.acked_upto = std::max(u.acked_upto, upto);
    bool progress = false;
    while (!u.held.empty() && u.held.front().first <= upto) {
      Item& it = u.held.front();
      if (it.discard && it.last > upto) {  // partly covered: keep the rest declared
        it.first = upto + 1;
        break;
      }
      if (it.discard) {
        ++totals_.discards_acked;
      } else {
        if (acked_log_) {
          auto line = eport::codec::reading_to_json(it.reading);
          std::fprintf(acked_log_, "%s\n", line.c_str());
        }
        ++totals_.acked;
      }
      u.held.pop_front();
      if (u.sent > 0) --u.sent;
      progress = true;
    }
    if (progress) u.flight_since = now;  // the ack timer restarts when an ACK advances
    if (u.hold_seq != 0 && upto >= u.hold_seq) {
      u.hold_seq = 0;
      u.hold_backoff.reset();
      u.hold_until = {};
    }
    if (u.rewind_seq != 0 && upto >= u.rewind_seq) {
      u.rewind_seq = 0;
      u.rewind_resent.reset();
    }
  }

  // Index of the held item that contains seq, or -1.
  long find_item(const Unit& u, std::uint64_t seq) const {
    if (u.held.empty() || seq < u.held.front().first || seq > u.held.back().last) return -1;
    // Items are contiguous and in order; most of them are single readings.
    auto it = std::lower_bound(u.held.begin(), u.held.end(), seq,
                               [](const Item& x, std::uint64_t s) { return x.last < s; });
    if (it == u.held.end() || it->first > seq) return -1;
    return static_cast<long>(it - u.held.begin());
  }

  void log_unit(const Unit& u, const std::string& what) {
    if (!opt_.quiet) std::fprintf(stderr, "eport-sim: %s: %s\n", u.id.c_str(), what.c_str());
  }

  // NACK n with OUT_OF_ORDER, WINDOW, STORE_FULL or INTERNAL: go back to n.
  void resend_from(Unit& u, std::uint64_t n, std::uint8_t reason, Clock::time_point now) {
    long idx = find_item(u, n);
    if (idx < 0) {
      if (n < (u.held.empty() ? u.next_seq : u.held.front().first)) return;  // already covered by an ACK: stale
      // The agent expects a seq this unit never numbered: its state is broken.
      log_unit(u, "NACK " + std::to_string(n) + " for a seq it does not hold: new session");
      restart_session(u);
      return;
    }
    auto at = static_cast<std::size_t>(idx);
    if (reason == EPB_NACK_STORE_FULL || reason == EPB_NACK_INTERNAL) {
      // One refusal per resend of n: NACKs for n before n went out again are
      // the same refusal. The backoff doubles per refused resend.
      if (u.hold_seq == n && !u.hold_resent) {
        u.sent = std::min(u.sent, at);
        return;
      }
      if (u.hold_seq != n) {
        u.hold_seq = n;
        u.hold_backoff.reset();
      }
      u.hold_resent = false;
      u.hold_until = now + jitter(u, u.hold_backoff.next());
      u.sent = std::min(u.sent, at);
      return;
    }
    // OUT_OF_ORDER, WINDOW: the NACKs for n that answer frames sent before n
    // went out again mean the same thing: one go-back.
    if (u.rewind_seq == n && (!u.rewind_resent || now - *u.rewind_resent < kNackGrace)) {
      u.sent = std::min(u.sent, at);
      return;
    }
    u.rewind_seq = n;
    u.rewind_resent.reset();
    u.sent = std::min(u.sent, at);
    if (reason == EPB_NACK_WINDOW) {  // resend from n after the next ACK (or the ack timeout)
      u.window_wait = true;
      u.window_wait_since = now;
    }
  }

  void on_message(Unit& u, const epb_message& m) {
    auto now = Clock::now();
    // A unit with a key trusts only its authenticated session: anything
    // unsealed but a CHALLENGE or a refusal of its HELLO (NACK seq 0) may be
    // forged, and an ACK would make it free readings (13.4).
    if (u.has_key && !m.sealed && m.type != EPB_MSG_CHALLENGE && !(m.type == EPB_MSG_NACK && m.m.nack.seq == 0) &&
        m.type != EPB_MSG_PING && m.type != EPB_MSG_PONG) {
      ++totals_.unauthenticated_ignored;
      return;
    }
    switch (m.type) {
      case EPB_MSG_CHALLENGE:
        on_challenge(u, m.m.challenge);
        break;
      case EPB_MSG_WELCOME: {
        if (u.sealed) ++totals_.auth_ok;
        const auto ls = m.m.welcome.last_stored_seq;
        reset_link_state(u);
        u.welcomed = true;
        u.window = std::max<std::uint16_t>(1, m.m.welcome.window);
        u.backoff.reset();
        u.hello_backoff.reset();
        release(u, ls, now);
        if (opt_.replay.empty() && u.next_seq <= ls) u.next_seq = ls + 1;
        if (!opt_.no_features) {  // 6.7: what this unit takes beyond the base protocol
          epb_message f{};
          f.type = EPB_MSG_FEATURES;
          f.m.features.features = EPB_FEATURE_DEADBANDS | (u.evidence ? EPB_FEATURE_EVIDENCE : 0u);
          send(u, f);
        }
        number_readings(u);  // resumes from the oldest held item above last_stored_seq
        break;
      }
      case EPB_MSG_ACK:
        if (opt_.drop_acks_every > 0 && ++u.acks_seen % static_cast<std::uint64_t>(opt_.drop_acks_every) == 0) {
          ++totals_.acks_dropped;  // "lost on the way": the ack timeout recovers it
          return;
        }
        if (!u.welcomed) return;
        release(u, m.m.ack.seq, now);
        u.window_wait = false;
        break;
      case EPB_MSG_NACK: {
        ++totals_.nacked;
        const auto seq = m.m.nack.seq;
        const auto reason = m.m.nack.reason;
        const std::string why = epb_nack_reason_name(reason);
        if (seq == 0) {
          // Not attributable: a refused HELLO (or DISCARD content). Logged; the
          // HELLO schedule retries (the operator may fix the configuration).
          if (!u.welcomed || reason != EPB_NACK_MALFORMED) ++totals_.hellos_refused;
          if (reason == EPB_NACK_AUTH) {
            ++totals_.auth_refused;
            end_auth(u);
          }
          log_unit(u, "the agent refused our HELLO (next_seq " + std::to_string(u.next_seq) + "): " + why);
          break;
        }
        u.flight_since = now;  // a NACK answers the ack timer too
        switch (reason) {
          case EPB_NACK_MALFORMED: {
            ++totals_.malformed;
            long idx = find_item(u, seq);
            if (idx >= 0) u.held[static_cast<std::size_t>(idx)].malformed = true;  // kept until an ACK covers it
            log_unit(u, "reading " + std::to_string(seq) + " refused as malformed (recorded as a gap)");
            break;
          }
          case EPB_NACK_NO_HELLO:
            if (u.welcomed) log_unit(u, "NACK " + std::to_string(seq) + " NO_HELLO: the agent lost our session; HELLO again");
            restart_session(u);
            break;
          case EPB_NACK_OUT_OF_ORDER:
          case EPB_NACK_WINDOW:
          case EPB_NACK_STORE_FULL:
          case EPB_NACK_INTERNAL:
            resend_from(u, seq, reason, now);
            break;
          case EPB_NACK_SEQ_RANGE:
            log_unit(u, "DISCARD from " + std::to_string(seq) + " refused (seq range): new session");
            restart_session(u);
            break;
          default:
            log_unit(u, "NACK " + std::to_string(seq) + ": " + why);
            break;
        }
        break;
      }
      case EPB_MSG_SETTINGS: {
        // Reporting intervals from the cloud (via the agent): applied (0 =
        // unchanged) and answered with the intervals now in force. The
        // simulator keeps generating at --rate.
        ++totals_.settings;
        if (m.m.settings.position_interval_s != 0) u.position_interval_s = m.m.settings.position_interval_s;
        if (m.m.settings.sensor_interval_s != 0) u.sensor_interval_s = m.m.settings.sensor_interval_s;
        if (m.m.settings.extended) u.deadbands = m.m.settings;  // 6.4: the deadbands exactly as sent
        if (!opt_.quiet) {
          std::fprintf(stderr, "eport-sim: %s: SETTINGS position_interval_s=%u sensor_interval_s=%u%s\n", u.id.c_str(),
                       m.m.settings.position_interval_s, m.m.settings.sensor_interval_s,
                       m.m.settings.extended
                           ? (" deadbands=" + std::to_string(m.m.settings.deadbands) +
                              " temperature_deadband_centi_c=" + std::to_string(m.m.settings.temperature_deadband_centi_c) +
                              " position_deadband_m=" + std::to_string(m.m.settings.position_deadband_m))
                                 .c_str()
                           : "");
        }
        epb_message a{};
        a.type = EPB_MSG_SETTINGS_ACK;
        a.m.settings.position_interval_s = u.position_interval_s;
        a.m.settings.sensor_interval_s = u.sensor_interval_s;
        if (m.m.settings.extended) {  // an extended SETTINGS is answered in kind (6.6)
          a.m.settings.extended = 1;
          a.m.settings.deadbands = u.deadbands.deadbands;
          a.m.settings.temperature_deadband_centi_c = u.deadbands.temperature_deadband_centi_c;
          a.m.settings.position_deadband_m = u.deadbands.position_deadband_m;
        }
        send(u, a);
        break;
      }
      case EPB_MSG_EVIDENCE_ACK:
        on_evidence_ack(u, m.m.evidence_ack.seq);
        break;
      case EPB_MSG_PING: {
        epb_message pong{};
        pong.type = EPB_MSG_PONG;
        pong.m.ping = m.m.ping;
        send(u, pong);
        break;
      }
      default:
        break;
    }
  }

  void read_unit(Unit& u) {
    std::uint8_t buf[8192];
    while (u.fd >= 0) {
      ssize_t n = u.kind == LinkKind::kPty ? ::read(u.fd, buf, sizeof buf) : recv(u.fd, buf, sizeof buf, 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        if (u.kind == LinkKind::kPty) return;  // the line itself never goes away while we hold it
        drop_connection(u);
        return;
      }
      if (n < 0) return;
      std::size_t off = 0;
      while (off < static_cast<std::size_t>(n) && u.fd >= 0) {
        epb_message m;
        epb_status st;
        off += epb_decoder_feed(&u.decoder, buf + off, static_cast<std::size_t>(n) - off, &m, &st);
        if (st == EPB_OK) {
          bool lost = m.type == EPB_MSG_ACK && opt_.drop_acks_every > 0 &&
                      (u.acks_seen + 1) % static_cast<std::uint64_t>(opt_.drop_acks_every) == 0;
          if (!lost) {
            u.last_rx = Clock::now();
            u.ping_sent.reset();
          }
          on_message(u, m);
        }
      }
    }
  }

  Options opt_;
  eport::sim::Fleet fleet_{eport::sim::FleetOptions{}};
  std::vector<Unit> units_;
  Totals totals_;
  Clock::time_point start_{};
  bool generating_ = true;
  std::FILE* acked_log_ = nullptr;
  std::FILE* record_ = nullptr;
  std::FILE* evidence_log_ = nullptr;
};

}  // namespace

int main(int argc, char** argv) {
  Options opt = parse(argc, argv);
  struct sigaction sa{};
  sa.sa_handler = [](int) { g_stop = g_stop + 1; };
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // A large fleet needs a descriptor per unit: take what the hard limit allows.
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  if (opt.list_units) {
    if (!opt.evidence_keys.empty()) Sim keys(opt);  // makes the keys and DIR/evidence_keys
    eport::sim::FleetOptions fo;
    fo.seed = opt.seed;
    fo.units = opt.units + opt.pty;
    fo.journey_readings = opt.journey_readings;
    eport::sim::Fleet fleet(fo);
    for (int i = 0; i < fo.units; ++i) {
      std::printf("{\"unit\":\"%s\",\"container\":\"%s\",\"seal\":\"%s\",\"reefer\":%s}\n",
                  eport::sim::unit_id(opt.prefix, i).c_str(), eport::sim::container_id(i).c_str(),
                  fleet.origin_seal(i, 1).c_str(), fleet.is_reefer(i) ? "true" : "false");
    }
    return 0;
  }
  Sim sim(opt);
  return sim.run();
}
