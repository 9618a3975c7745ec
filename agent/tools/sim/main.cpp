// eport-sim: a fleet of simulated telematics units, each on its own link to
// the agent's bridge (UNIX socket, TCP, or a pty pair standing in for a
// serial line), behaving as firmware must: HELLO, readings within the window,
// a reading kept until an ACK covers it, go-back-N after an ack timeout or a
// NACK, resends after a reconnect. Readings come from the journey generator
// (fleet.h) or from a recorded session file. Prints a summary; --acked-log
// records every acknowledged reading as JSON. docs/simulator.md has the CLI.
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <string>
#include <vector>

#include "eport/bridge/convert.h"
#include "eport/bridge/net.h"
#include "eport/bridge/serial.h"
#include "eport/codec/codec.h"
#include "fleet.h"
#include "session.h"

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
volatile sig_atomic_t g_stop = 0;

std::uint64_t now_utc_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
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
  std::string record, replay;
  std::string acked_log;
  double drain_timeout_s = 30;  // after generating stops, wait this long for acks
  long long ack_timeout_ms = 10000;  // docs/firmware-bridge.md 7.4
  long long drop_acks_every = 0;     // test: ignore every n-th ACK frame
  bool quiet = false;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "eport-sim: %s\n"
               "usage: eport-sim [--connect unix:PATH|tcp:HOST:PORT] [--units N] [--pty N] [--pty-list FILE]\n"
               "                 [--rate R_PER_S] [--count N_PER_UNIT] [--duration S] [--seed N] [--prefix P]\n"
               "                 [--journey-readings N] [--record FILE | --replay FILE]\n"
               "                 [--acked-log FILE] [--drain-timeout S] [--ack-timeout MS]\n"
               "                 [--drop-acks-every N] [--quiet]\n"
               "  --units N       units connecting to --connect (default 10; 0 with --pty)\n"
               "  --pty N         N more units, each on a new pty pair; the agent opens the slave paths\n"
               "                  (printed, and written one per line to --pty-list FILE)\n"
               "  --record FILE   write every generated reading with its time offset (JSON lines)\n"
               "  --replay FILE   send the readings of a recorded session instead of generating\n"
               "  --ack-timeout MS  resend from the oldest unacknowledged reading after MS (default 10000)\n"
               "  --drop-acks-every N  test: ignore every N-th ACK frame, as if it were lost\n",
               why);
  std::exit(64);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value after " + a).c_str());
      return argv[++i];
    };
    auto number = [&](const std::string& v) {
      char* end = nullptr;
      double d = std::strtod(v.c_str(), &end);
      if (end == v.c_str() || *end != '\0' || d < 0) usage(("bad number for " + a + ": " + v).c_str());
      return d;
    };
    if (a == "--connect") o.endpoint = next();
    else if (a == "--units") { o.units = static_cast<int>(number(next())); o.units_given = true; }
    else if (a == "--pty") o.pty = static_cast<int>(number(next()));
    else if (a == "--pty-list") o.pty_list = next();
    else if (a == "--rate") o.rate = number(next());
    else if (a == "--count") o.count = static_cast<long long>(number(next()));
    else if (a == "--duration") o.duration_s = number(next());
    else if (a == "--seed") o.seed = static_cast<std::uint64_t>(number(next()));
    else if (a == "--prefix") o.prefix = next();
    else if (a == "--journey-readings") o.journey_readings = static_cast<std::uint32_t>(number(next()));
    else if (a == "--record") o.record = next();
    else if (a == "--replay") o.replay = next();
    else if (a == "--acked-log") o.acked_log = next();
    else if (a == "--drain-timeout") o.drain_timeout_s = number(next());
    else if (a == "--ack-timeout") o.ack_timeout_ms = static_cast<long long>(number(next()));
    else if (a == "--drop-acks-every") o.drop_acks_every = static_cast<long long>(number(next()));
    else if (a == "--quiet") o.quiet = true;
    else usage(("unknown option " + a).c_str());
  }
  if (o.pty > 0 && !o.units_given) o.units = 0;
  if (o.units < 0 || o.units > 100000) usage("--units must be 0..100000");
  if (o.pty < 0 || o.pty > 1000) usage("--pty must be 0..1000");
  if (o.units + o.pty < 1 && o.replay.empty()) usage("no units: give --units N and/or --pty N");
  if (o.rate <= 0) usage("--rate must be > 0");
  if (o.ack_timeout_ms < 10) usage("--ack-timeout must be at least 10 ms");
  if (o.journey_readings < eport::sim::kMinJourneyReadings) usage("--journey-readings must be at least 40");
  if (!o.record.empty() && !o.replay.empty()) usage("--record and --replay exclude each other");
  if (o.prefix.size() > 24) usage("--prefix must be at most 24 characters");
  return o;
}

enum class LinkKind { kSocket, kPty };

struct Unit {
  int index = 0;
  std::string id, container;
  LinkKind kind = LinkKind::kSocket;
  int fd = -1;             // socket, or the pty master
  int keeper = -1;         // pty: the slave end held open (see serial::PtyPair)
  std::string pty_path;
  bool welcomed = false;
  Clock::time_point hello_due{};  // !welcomed: when to send HELLO (again)
  milliseconds hello_backoff{1000};
  epb_decoder decoder;
  std::uint64_t next_seq = 1;
  long long generated = 0;
  std::deque<eport::model::Reading> unacked;  // the unit's "flash"
  std::size_t sent = 0;                        // unacked[0..sent) are on the wire
  std::uint16_t window = 1;
  std::string out;
  Clock::time_point next_due{}, retry_at{};
  milliseconds backoff{100};
  // Ack timeout: when the oldest reading in flight was sent (or last progress).
  Clock::time_point flight_since{};
  bool heard = true;            // a frame arrived since the last ack timeout
  int silent_timeouts = 0;
  Clock::time_point paused_until{};  // after a NACK: send nothing new before
  milliseconds nack_backoff{250};
  int out_of_order = 0;
  std::uint64_t acks_seen = 0;
  std::deque<eport::sim::session::Entry> script;  // --replay
};

struct Totals {
  std::uint64_t generated = 0, frames_sent = 0, acked = 0, nacked = 0, malformed_dropped = 0, reconnects = 0,
                connect_failures = 0, resent = 0, ack_timeouts = 0, acks_dropped = 0, hellos = 0, settings = 0;
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
    for (int i = 0; i < total; ++i) {
      auto& u = units_[static_cast<std::size_t>(i)];
      u.index = i;
      u.id = eport::sim::unit_id(opt_.prefix, i);
      u.container = eport::sim::container_id(i);
      u.kind = i < opt_.units ? LinkKind::kSocket : LinkKind::kPty;
      epb_decoder_init(&u.decoder);
      if (!scripts.empty() && !scripts[static_cast<std::size_t>(i)].empty()) {
        u.script = std::move(scripts[static_cast<std::size_t>(i)]);
        u.id = u.script.front().reading.source_id;
        u.container = u.script.front().reading.container_id;
        u.next_seq = u.script.front().reading.seq;
      }
      // Spread the units over one period so they do not all fire together.
      u.next_due = start + std::chrono::duration_cast<Clock::duration>(period * (static_cast<double>(i) / total));
    }
    open_ptys();
  }
  ~Sim() {
    if (acked_log_) std::fclose(acked_log_);
    if (record_) std::fclose(record_);
    for (auto& u : units_) {
      if (u.fd >= 0) close(u.fd);
      if (u.keeper >= 0) close(u.keeper);
    }
  }

  int run() {
    start_ = Clock::now();
    auto period = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / opt_.rate));
    bool generating = true;
    Clock::time_point drain_deadline{};
    std::vector<pollfd> pfds;
    std::vector<Unit*> polled;
    while (true) {
      auto now = Clock::now();
      if (generating && (g_stop || (opt_.duration_s > 0 && now - start_ >= std::chrono::duration<double>(opt_.duration_s)) ||
                         all_generated())) {
        generating = false;
        drain_deadline = now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt_.drain_timeout_s));
      }
      if (!generating && (all_acked() || now >= drain_deadline || g_stop > 1)) break;
      for (auto& u : units_) {
        if (u.kind == LinkKind::kSocket && u.fd < 0 && now >= u.retry_at) connect_unit(u);
        if (generating) generate(u, now, period);
        if (u.fd < 0) continue;
        if (!u.welcomed) {
          if (now >= u.hello_due) send_hello(u, now);
          continue;
        }
        check_ack_timeout(u, now);
        if (u.fd >= 0 && u.welcomed && now >= u.paused_until) fill_window(u, now);
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
    std::uint64_t pending = 0;
    for (auto& u : units_) pending += u.unacked.size();
    std::printf(
        "eport-sim: units=%d generated=%llu acked=%llu unacked=%llu nacked=%llu frames_sent=%llu reconnects=%llu "
        "pty_units=%d resent=%llu ack_timeouts=%llu acks_dropped=%llu settings=%llu\n",
        static_cast<int>(units_.size()), static_cast<unsigned long long>(totals_.generated),
        static_cast<unsigned long long>(totals_.acked), static_cast<unsigned long long>(pending),
        static_cast<unsigned long long>(totals_.nacked), static_cast<unsigned long long>(totals_.frames_sent),
        static_cast<unsigned long long>(totals_.reconnects), opt_.pty,
        static_cast<unsigned long long>(totals_.resent), static_cast<unsigned long long>(totals_.ack_timeouts),
        static_cast<unsigned long long>(totals_.acks_dropped), static_cast<unsigned long long>(totals_.settings));
    std::fflush(stdout);
    return pending == 0 ? 0 : 3;
  }

 private:
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
      auto p = eport::bridge::serial::open_pty_pair();
      if (!p) {
        std::fprintf(stderr, "eport-sim: %s\n", p.error().c_str());
        std::exit(1);
      }
      u.fd = p->master;
      u.keeper = p->slave_keeper;
      u.pty_path = p->slave_path;
      u.hello_due = Clock::now();
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
      if (!u.unacked.empty()) return false;
    return true;
  }

  void generate(Unit& u, Clock::time_point now, Clock::duration period) {
    if (!opt_.replay.empty()) {
      while (!u.script.empty() && now - start_ >= milliseconds(u.script.front().at_ms)) {
        u.unacked.push_back(std::move(u.script.front().reading));
        u.script.pop_front();
        u.next_seq = u.unacked.back().seq + 1;
        ++u.generated;
        ++totals_.generated;
      }
      return;
    }
    while (now >= u.next_due && (opt_.count == 0 || u.generated < opt_.count)) {
      u.unacked.push_back(fleet_.reading(u.index, u.id, u.container, u.next_seq++, now_utc_ms()));
      ++u.generated;
      ++totals_.generated;
      u.next_due += period;
      if (record_) {
        auto at = std::chrono::duration_cast<milliseconds>(now - start_).count();
        auto line = eport::sim::session::entry_line({static_cast<std::uint64_t>(at), u.index, u.unacked.back()});
        if (line) std::fprintf(record_, "%s\n", line->c_str());
      }
    }
  }

  void drop_connection(Unit& u) {
    if (u.kind == LinkKind::kPty) {
      restart_session(u);
      return;
    }
    if (u.fd >= 0) close(u.fd);
    u.fd = -1;
    u.welcomed = false;
    u.sent = 0;  // everything unacked is resent after the next WELCOME
    u.out.clear();
    u.retry_at = Clock::now() + u.backoff;
    u.backoff = std::min(u.backoff * 2, milliseconds(2000));
  }

  // A tty stays open: a new session is a new HELLO on the same line.
  void restart_session(Unit& u) {
    u.welcomed = false;
    u.sent = 0;
    u.hello_due = Clock::now();
  }

  void connect_unit(Unit& u) {
    auto fd = eport::bridge::net::connect_endpoint(opt_.endpoint);
    if (!fd) {
      ++totals_.connect_failures;
      if (!opt_.quiet && totals_.connect_failures == 1) std::fprintf(stderr, "eport-sim: %s (retrying)\n", fd.error().c_str());
      drop_connection(u);
      return;
    }
    u.fd = *fd;
    epb_decoder_init(&u.decoder);
    if (u.backoff > milliseconds(100)) ++totals_.reconnects;
    u.hello_backoff = milliseconds(5000);  // the connection shows the agent is there: the spec's 5 s
    send_hello(u, Clock::now());
  }

  void send_hello(Unit& u, Clock::time_point now) {
    epb_message m{};
    m.type = EPB_MSG_HELLO;
    auto& h = m.m.hello;
    h.unit_id_len = static_cast<std::uint8_t>(std::min<std::size_t>(u.id.size(), EPB_UNIT_ID_MAX));
    std::memcpy(h.unit_id, u.id.data(), h.unit_id_len);
    h.container_id_len = static_cast<std::uint8_t>(u.container.size());
    std::memcpy(h.container_id, u.container.data(), u.container.size());
    const char fw[] = "sim-2.0";
    h.firmware_len = sizeof fw - 1;
    std::memcpy(h.firmware, fw, sizeof fw - 1);
    h.next_seq = std::max<std::uint64_t>(1, u.next_seq);
    // A leading 0x00 resynchronises the receiver, as firmware does after reset.
    u.out.push_back('\0');
    send(u, m);
    ++totals_.hellos;
    // No WELCOME: HELLO again, backing off. A pty line is "up" with nobody
    // listening, so its first retries come sooner than the spec's 5 s.
    u.hello_due = now + u.hello_backoff;
    u.hello_backoff = std::min(u.hello_backoff * 2, milliseconds(u.kind == LinkKind::kPty ? 4000 : 60000));
  }

  void send(Unit& u, const epb_message& m) {
    std::uint8_t buf[EPB_MAX_ENCODED];
    std::size_t n = epb_encode(&m, buf, sizeof buf);
    if (n == 0) {
      std::fprintf(stderr, "eport-sim: cannot encode message type %d\n", m.type);
      return;
    }
    u.out.append(reinterpret_cast<const char*>(buf), n);
    ++totals_.frames_sent;
  }

  void fill_window(Unit& u, Clock::time_point now) {
    while (u.sent < u.unacked.size() && u.sent < u.window) {
      auto w = eport::bridge::to_wire(u.unacked[u.sent]);
      if (!w) {
        std::fprintf(stderr, "eport-sim: %s\n", w.error().c_str());
        u.unacked.erase(u.unacked.begin() + static_cast<long>(u.sent));
        continue;
      }
      epb_message m{};
      m.type = EPB_MSG_READING;
      m.m.reading = *w;
      send(u, m);
      if (u.sent == 0) u.flight_since = now;
      ++u.sent;
    }
  }

  // Go-back-N (7.4): the oldest reading in flight got neither ACK nor NACK
  // in time; send it and everything after it again. Twice without hearing
  // anything at all: the link is dead.
  void check_ack_timeout(Unit& u, Clock::time_point now) {
    if (u.sent == 0 || now - u.flight_since < milliseconds(opt_.ack_timeout_ms)) return;
    ++totals_.ack_timeouts;
    if (!u.heard && ++u.silent_timeouts >= 2) {
      u.silent_timeouts = 0;
      drop_connection(u);
      return;
    }
    if (u.heard) u.silent_timeouts = 0;
    u.heard = false;
    totals_.resent += u.sent;
    u.sent = 0;
    u.flight_since = now;
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

  // Frees every reading with seq <= upto: the agent has it in custody.
  void release(Unit& u, std::uint64_t upto, Clock::time_point now) {
    bool progress = false;
    while (!u.unacked.empty() && u.unacked.front().seq <= upto) {
      if (acked_log_) {
        auto line = eport::codec::reading_to_json(u.unacked.front());
        std::fprintf(acked_log_, "%s\n", line.c_str());
      }
      u.unacked.pop_front();
      if (u.sent > 0) --u.sent;
      ++totals_.acked;
      progress = true;
    }
    if (progress) {
      u.flight_since = now;
      u.nack_backoff = milliseconds(250);
      u.out_of_order = 0;
    }
  }

  void on_message(Unit& u, const epb_message& m) {
    auto now = Clock::now();
    switch (m.type) {
      case EPB_MSG_WELCOME:
        u.welcomed = true;
        u.window = std::max<std::uint16_t>(1, m.m.welcome.window);
        u.backoff = milliseconds(100);
        u.hello_backoff = milliseconds(1000);
        u.sent = 0;
        u.paused_until = {};
        release(u, m.m.welcome.last_stored_seq, now);
        if (opt_.replay.empty() && u.next_seq <= m.m.welcome.last_stored_seq) u.next_seq = m.m.welcome.last_stored_seq + 1;
        break;
      case EPB_MSG_ACK:
        if (opt_.drop_acks_every > 0 && ++u.acks_seen % static_cast<std::uint64_t>(opt_.drop_acks_every) == 0) {
          ++totals_.acks_dropped;  // "lost on the way": the ack timeout recovers it
          return;
        }
        release(u, m.m.ack.seq, now);
        u.paused_until = {};
        break;
      case EPB_MSG_NACK: {
        ++totals_.nacked;
        const auto seq = m.m.nack.seq;
        switch (m.m.nack.reason) {
          case EPB_NACK_MALFORMED:
            if (seq == 0) {
              if (!opt_.quiet) std::fprintf(stderr, "eport-sim: %s: the agent refused our HELLO\n", u.id.c_str());
              break;
            }
            for (auto it = u.unacked.begin(); it != u.unacked.end(); ++it) {
              if (it->seq == seq) {
                if (static_cast<std::size_t>(it - u.unacked.begin()) < u.sent) --u.sent;
                u.unacked.erase(it);
                ++totals_.malformed_dropped;
                break;
              }
            }
            break;
          case EPB_NACK_NO_HELLO:
            restart_session(u);
            break;
          case EPB_NACK_WINDOW:
            // Wait for the next ACK (or the ack timeout), then resend from it.
            totals_.resent += u.sent;
            u.sent = 0;
            u.paused_until = now + milliseconds(opt_.ack_timeout_ms);
            break;
          case EPB_NACK_OUT_OF_ORDER:
            if (++u.out_of_order >= 2) {
              u.out_of_order = 0;
              restart_session(u);
            } else {
              totals_.resent += u.sent;
              u.sent = 0;
            }
            break;
          default: {
            // Store full, internal error: keep it, back off, resend from it.
            totals_.resent += u.sent;
            u.sent = 0;
            auto jitter = milliseconds(static_cast<long>(seq % 97));
            u.paused_until = now + u.nack_backoff + jitter;
            u.nack_backoff = std::min(u.nack_backoff * 2, milliseconds(5000));
            break;
          }
        }
        break;
      }
      case EPB_MSG_SETTINGS:
        // Reporting intervals from the cloud (via the agent). The simulator
        // keeps its configured rate; it records what a unit would apply.
        ++totals_.settings;
        if (!opt_.quiet) {
          std::fprintf(stderr, "eport-sim: %s: SETTINGS position_interval_s=%u sensor_interval_s=%u\n", u.id.c_str(),
                       m.m.settings.position_interval_s, m.m.settings.sensor_interval_s);
        }
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
          if (!lost) u.heard = true;
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
  std::FILE* acked_log_ = nullptr;
  std::FILE* record_ = nullptr;
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
  Sim sim(opt);
  return sim.run();
}
