// eport-sim: simulates N telematics units, each with its own connection to
// the agent's bridge, behaving as firmware must: HELLO, readings within the
// window, a reading kept until an ACK covers it, resends after a reconnect.
// Prints a summary; --acked-log records every acknowledged reading as JSON.
#include <poll.h>
#include <sys/socket.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "eport/bridge/convert.h"
#include "eport/bridge/net.h"
#include "eport/codec/codec.h"
#include "fleet.h"

namespace {

using Clock = std::chrono::steady_clock;
volatile sig_atomic_t g_stop = 0;

std::uint64_t now_utc_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

struct Options {
  std::string endpoint = "unix:/tmp/eport-bridge.sock";
  int units = 10;
  double rate = 1.0;        // readings per second per unit
  long long count = 0;      // readings per unit, 0 = unlimited
  double duration_s = 0;    // 0 = until count reached or SIGINT
  std::uint64_t seed = 1;
  std::string prefix = "tcu";
  std::string acked_log;
  double drain_timeout_s = 30;  // after generating stops, wait this long for acks
  bool quiet = false;
};

struct Unit {
  int index = 0;
  std::string id, container;
  int fd = -1;
  bool welcomed = false;
  epb_decoder decoder;
  std::uint64_t next_seq = 1;
  long long generated = 0;
  std::deque<eport::model::Reading> unacked;  // the unit's "flash"
  std::size_t sent = 0;                        // unacked[0..sent) are on the wire
  std::uint16_t window = 1;
  std::string out;
  Clock::time_point next_due{}, retry_at{};
  std::chrono::milliseconds backoff{100};
};

struct Totals {
  std::uint64_t generated = 0, frames_sent = 0, acked = 0, nacked = 0, malformed_dropped = 0, reconnects = 0,
                connect_failures = 0;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "eport-sim: %s\n"
               "usage: eport-sim [--connect unix:PATH|tcp:HOST:PORT] [--units N] [--rate R_PER_S]\n"
               "                 [--count N_PER_UNIT] [--duration S] [--seed N] [--prefix P]\n"
               "                 [--acked-log FILE] [--drain-timeout S] [--quiet]\n",
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
    else if (a == "--units") o.units = static_cast<int>(number(next()));
    else if (a == "--rate") o.rate = number(next());
    else if (a == "--count") o.count = static_cast<long long>(number(next()));
    else if (a == "--duration") o.duration_s = number(next());
    else if (a == "--seed") o.seed = static_cast<std::uint64_t>(number(next()));
    else if (a == "--prefix") o.prefix = next();
    else if (a == "--acked-log") o.acked_log = next();
    else if (a == "--drain-timeout") o.drain_timeout_s = number(next());
    else if (a == "--quiet") o.quiet = true;
    else usage(("unknown option " + a).c_str());
  }
  if (o.units < 1 || o.units > 100000) usage("--units must be 1..100000");
  if (o.rate <= 0) usage("--rate must be > 0");
  return o;
}

class Sim {
 public:
  explicit Sim(Options o) : opt_(std::move(o)) {
    if (!opt_.acked_log.empty()) {
      acked_log_ = std::fopen(opt_.acked_log.c_str(), "w");
      if (acked_log_ == nullptr) usage(("cannot write " + opt_.acked_log).c_str());
    }
    units_.resize(static_cast<std::size_t>(opt_.units));
    auto start = Clock::now();
    auto period = std::chrono::duration<double>(1.0 / opt_.rate);
    for (int i = 0; i < opt_.units; ++i) {
      auto& u = units_[static_cast<std::size_t>(i)];
      u.index = i;
      u.id = eport::sim::unit_id(opt_.prefix, i);
      u.container = eport::sim::container_id(i);
      // Spread the units over one period so they do not all fire together.
      u.next_due = start + std::chrono::duration_cast<Clock::duration>(period * (static_cast<double>(i) / opt_.units));
    }
  }
  ~Sim() {
    if (acked_log_) std::fclose(acked_log_);
    for (auto& u : units_)
      if (u.fd >= 0) close(u.fd);
  }

  int run() {
    auto start = Clock::now();
    auto period = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / opt_.rate));
    bool generating = true;
    Clock::time_point drain_deadline{};
    std::vector<pollfd> pfds;
    std::vector<Unit*> polled;
    while (true) {
      auto now = Clock::now();
      if (generating && (g_stop || (opt_.duration_s > 0 && now - start >= std::chrono::duration<double>(opt_.duration_s)) ||
                         all_generated())) {
        generating = false;
        drain_deadline = now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt_.drain_timeout_s));
      }
      if (!generating && (all_acked() || now >= drain_deadline || g_stop > 1)) break;
      for (auto& u : units_) {
        if (u.fd < 0 && now >= u.retry_at) connect_unit(u);
        while (generating && now >= u.next_due && (opt_.count == 0 || u.generated < opt_.count)) {
          u.unacked.push_back(eport::sim::make_reading(opt_.seed, u.index, u.id, u.container, u.next_seq++, now_utc_ms()));
          ++u.generated;
          ++totals_.generated;
          u.next_due += period;
        }
        if (u.fd >= 0 && u.welcomed) fill_window(u);
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
        "eport-sim: units=%d generated=%llu acked=%llu unacked=%llu nacked=%llu frames_sent=%llu reconnects=%llu\n",
        opt_.units, static_cast<unsigned long long>(totals_.generated), static_cast<unsigned long long>(totals_.acked),
        static_cast<unsigned long long>(pending), static_cast<unsigned long long>(totals_.nacked),
        static_cast<unsigned long long>(totals_.frames_sent), static_cast<unsigned long long>(totals_.reconnects));
    std::fflush(stdout);
    return pending == 0 ? 0 : 3;
  }

 private:
  bool all_generated() const {
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

  void drop_connection(Unit& u) {
    if (u.fd >= 0) close(u.fd);
    u.fd = -1;
    u.welcomed = false;
    u.sent = 0;  // everything unacked is resent after the next WELCOME
    u.out.clear();
    u.retry_at = Clock::now() + u.backoff;
    u.backoff = std::min(u.backoff * 2, std::chrono::milliseconds(2000));
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
    epb_message m{};
    m.type = EPB_MSG_HELLO;
    auto& h = m.m.hello;
    h.unit_id_len = static_cast<std::uint8_t>(std::min<std::size_t>(u.id.size(), EPB_UNIT_ID_MAX));
    std::memcpy(h.unit_id, u.id.data(), h.unit_id_len);
    h.container_id_len = static_cast<std::uint8_t>(u.container.size());
    std::memcpy(h.container_id, u.container.data(), u.container.size());
    const char fw[] = "sim-1.0";
    h.firmware_len = sizeof fw - 1;
    std::memcpy(h.firmware, fw, sizeof fw - 1);
    h.next_seq = u.next_seq;
    // A leading 0x00 resynchronises the receiver, as firmware does after reset.
    u.out.push_back('\0');
    send(u, m);
    if (u.backoff > std::chrono::milliseconds(100)) ++totals_.reconnects;
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

  void fill_window(Unit& u) {
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
      ++u.sent;
    }
  }

  void flush(Unit& u) {
    while (!u.out.empty()) {
      ssize_t n = ::send(u.fd, u.out.data(), u.out.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) drop_connection(u);
        return;
      }
      u.out.erase(0, static_cast<std::size_t>(n));
    }
  }

  // Frees every reading with seq <= upto: the agent has it in custody.
  void release(Unit& u, std::uint64_t upto) {
    while (!u.unacked.empty() && u.unacked.front().seq <= upto) {
      if (acked_log_) {
        auto line = eport::codec::reading_to_json(u.unacked.front());
        std::fprintf(acked_log_, "%s\n", line.c_str());
      }
      u.unacked.pop_front();
      if (u.sent > 0) --u.sent;
      ++totals_.acked;
    }
  }

  void on_message(Unit& u, const epb_message& m) {
    switch (m.type) {
      case EPB_MSG_WELCOME:
        u.welcomed = true;
        u.window = std::max<std::uint16_t>(1, m.m.welcome.window);
        u.backoff = std::chrono::milliseconds(100);
        release(u, m.m.welcome.last_stored_seq);
        if (u.next_seq <= m.m.welcome.last_stored_seq) u.next_seq = m.m.welcome.last_stored_seq + 1;
        u.sent = 0;
        break;
      case EPB_MSG_ACK:
        release(u, m.m.ack.seq);
        break;
      case EPB_MSG_NACK: {
        ++totals_.nacked;
        if (m.m.nack.reason == EPB_NACK_MALFORMED) {
          for (auto it = u.unacked.begin(); it != u.unacked.end(); ++it) {
            if (it->seq == m.m.nack.seq) {
              if (static_cast<std::size_t>(it - u.unacked.begin()) < u.sent) --u.sent;
              u.unacked.erase(it);
              ++totals_.malformed_dropped;
              break;
            }
          }
        } else {
          // Window, store full, internal: resend from the first unacked later.
          u.sent = 0;
          drop_connection(u);
        }
        break;
      }
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
      ssize_t n = recv(u.fd, buf, sizeof buf, 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        drop_connection(u);
        return;
      }
      if (n < 0) return;
      std::size_t off = 0;
      while (off < static_cast<std::size_t>(n) && u.fd >= 0) {
        epb_message m;
        epb_status st;
        off += epb_decoder_feed(&u.decoder, buf + off, static_cast<std::size_t>(n) - off, &m, &st);
        if (st == EPB_OK) on_message(u, m);
      }
    }
  }

  Options opt_;
  std::vector<Unit> units_;
  Totals totals_;
  std::FILE* acked_log_ = nullptr;
};

}  // namespace

int main(int argc, char** argv) {
  Options opt = parse(argc, argv);
  struct sigaction sa{};
  sa.sa_handler = [](int) { g_stop = g_stop + 1; };
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  Sim sim(opt);
  return sim.run();
}
