// Bridge server: an epoll loop over the listeners, every unit link (socket
// connections and serial ttys alike) and an eventfd that the ingest thread
// signals when readings are committed.
//
// Two kinds of state. Per link (Session): a frame decoder, the unit it
// speaks for after HELLO, the last ACK sent, liveness and SETTINGS timers,
// an output buffer. Per unit (UnitState, by unit id, shared by whichever
// link is its one live session): `committed` (every seq <= it is in the
// store: the only value an ACK ever carries), `expected` (the seq it takes
// next: items are taken strictly in order), the items handed to ingest and
// not yet committed, and a hold after a resendable NACK. A unit's state
// lives while it has a link or items in flight; the store's last seq
// rebuilds it. Serial ports that are missing or lose their device are
// reopened with a backoff.
//
// Authentication (spec section 13): a HELLO that must be authenticated (TCP,
// or a unit with a key) is answered with CHALLENGE and changes nothing until
// a valid AUTH; only then does the unit get its session (takeover, WELCOME),
// and from then on the link's frames are sealed both ways.
#include "eport/units/server.h"

#include <pthread.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "eport/units/convert.h"
#include "eport/units/evidence_check.h"
#include "eport/units/net.h"
#include "eport/units/serial.h"
#include "eport/backoff/backoff.h"
#include "eport/json/json.h"
#include "eport/tty/tty.h"
#include "eport/log/log.h"
#include "eport/model/clock.h"
#include "eport/model/ids.h"

namespace eport::units {

namespace {
using Clock = std::chrono::steady_clock;
constexpr std::string_view kLog = "bridge";
constexpr std::uint64_t kListenUnixTag = 1, kListenTcpTag = 2, kWakeTag = 3, kFirstConnTag = 16;
// Ingest tokens are unit keys; this bit marks a unit's evidence checkpoint.
constexpr std::uint64_t kEvidenceToken = std::uint64_t{1} << 62;
// A serial session that lived this long resets its port's reopen backoff.
constexpr auto kSerialStableAfter = std::chrono::seconds(10);
// Without a free descriptor, accepting waits this long before trying again.
constexpr auto kAcceptPause = std::chrono::milliseconds(200);
// An older-version HELLO is answered at most this often per link.
constexpr auto kVersionRefusalEvery = std::chrono::seconds(10);
// SETTINGS is sent at most this many times per session without an answer.
constexpr int kSettingsAttempts = 5;
// Refused connections and links closed for misbehaviour are warned about at
// most this often (with a count of what happened meanwhile).
constexpr auto kRefusalWarningEvery = std::chrono::seconds(10);
// The window over which max_unit_ids_per_link counts distinct unit ids.
constexpr auto kUnitIdWindow = std::chrono::seconds(60);
}  // namespace

struct Server::Impl : public ingest::CompletionSink {
  struct Session {
    int fd = -1;
    int port = -1;  // index into ports for a serial tty, -1 for a socket
    bool tcp = false;
    std::string address;  // TCP: the peer's IP address (max_units_per_address)
    bool welcomed = false;  // a HELLO was welcomed on it once (hello_deadline)
    Clock::time_point ids_since{};
    std::set<std::string> recent_ids;  // distinct unit ids said HELLO for since ids_since
    Clock::time_point opened{};
    epb_decoder decoder;
    bool hello = false;
    std::uint64_t unit_key = 0;  // its UnitState while hello
    std::string unit_id, container_id;
    std::uint64_t last_acked = 0;
    bool reack = false;  // a resend of acked items: the ACK was lost, send it again
    std::string out;
    bool want_write = false;
    bool closing = false;  // close once the output is flushed
    bool lost = false;     // serial: the device went away (EIO, hang-up)
    // liveness (7.9)
    Clock::time_point last_rx{};
    Clock::time_point ping_sent{};  // {} while no PING is outstanding
    Clock::time_point pong_second{};
    unsigned pongs_this_second = 0;
    Clock::time_point last_version_refusal{};
    // SETTINGS (7.8)
    Intervals settings{};        // what was last sent
    epb_settings wire{};         // ... as sent: with the deadband extension to a unit that takes it
    std::uint32_t features = 0;  // FEATURES (6.7) the unit announced on this link since its HELLO
    int settings_attempts = 0;   // sends without an answer
    bool settings_acked = true;  // nothing to deliver
    Clock::time_point settings_at{};
    // authentication (13): the session key once AUTH verified; the HELLO
    // waiting for its AUTH and the nonce of the CHALLENGE sent for it
    epb_auth auth{};
    bool sealed = false;  // authenticated: every frame both ways is sealed
    bool challenged = false;
    epb_message challenged_hello{};
    std::uint8_t agent_nonce[EPB_NONCE_LEN] = {};
    // evidence (7.15): the checkpoint being reassembled on this link
    epb_evf_reasm evf{};
  };

  // One item taken from a unit: a reading (first == last), a DISCARD, or
  // the gap record of a reading refused as malformed (first == last).
  enum class ItemKind { kReading, kDiscard, kMalformedGap };
  struct Item {
    std::uint64_t first = 0, last = 0;
    ItemKind kind = ItemKind::kReading;
    std::vector<std::uint8_t> canonical;  // a unit with an evidence key: its R, fed to the checker at commit
    bool reading() const { return kind == ItemKind::kReading; }
  };

  struct UnitState {
    std::string id;
    std::uint64_t committed = 0;  // every seq <= this is in the store (or released by the unit)
    std::uint64_t expected = 1;   // the seq taken next
    std::deque<Item> pending;     // handed to ingest, in order, awaiting their outcome
    std::uint64_t hold_seq = 0;   // != 0: refused with a resendable NACK, nothing else is taken until it comes
    std::uint8_t hold_reason = 0;
    std::uint64_t link = 0;       // its live session, 0 if none
    // evidence (7.15): checkpoints of its evidence source by their seq
    std::uint64_t ev_committed = 0;        // highest seq stored (or found stored)
    std::deque<std::uint64_t> ev_pending;  // handed to ingest, awaiting their outcome
  };

  struct Port {
    std::string path;
    std::uint64_t session = 0;  // link id while open, 0 while closed
    Clock::time_point retry_at{};
    backoff::Backoff backoff;   // serial_retry_min doubling to serial_retry_max
    std::string last_error;     // logged once per distinct error, not per retry
  };

  ServerOptions opt;
  ingest::Ingest& ingest;
  std::function<std::uint64_t(std::string_view)> last_stored_seq;
  std::function<model::Priority(const model::Reading&)> priority_of;
  ServerStats stats;
  EvidenceChecker evidence_checker;

  int epfd = -1, unix_fd = -1, tcp_fd = -1, wake_fd = -1;
  std::uint16_t tcp_port = 0;
  std::thread thread;
  std::atomic<bool> stopping{false};
  bool stopped = false;
  std::unordered_map<std::uint64_t, Session> sessions;  // by link id (epoll tag)
  std::size_t socket_sessions = 0, tcp_sessions = 0;
  std::unordered_map<std::string, std::size_t> per_address;  // open TCP links by peer IP
  Clock::time_point last_refusal_warning{};
  std::uint64_t refusals_unwarned = 0;  // since the last warning
  std::string last_refusal;             // what the latest one was
  dev_t unix_dev = 0;
  ino_t unix_ino = 0;  // the socket file we bound: unlinked at exit only if it is still ours
  std::vector<Port> ports;
  std::uint64_t next_conn = kFirstConnTag;
  Clock::time_point accepts_paused_until{}, last_accept_warning{};
  std::unordered_map<std::uint64_t, UnitState> units;      // by key (the ingest token)
  std::unordered_map<std::string, std::uint64_t> unit_keys;  // unit id -> key
  std::uint64_t next_unit_key = 1;
  // Intervals set by cloud commands, over the configured ones (bridge thread).
  std::map<std::string, Intervals> commanded;
  std::optional<Intervals> commanded_all;

  // Filled by the ingest thread, drained by ours.
  std::mutex done_mu;
  std::vector<std::pair<std::uint64_t, ingest::Outcome>> done;

  Impl(ServerOptions o, ingest::Ingest& in, std::function<std::uint64_t(std::string_view)> ls,
       std::function<model::Priority(const model::Reading&)> po)
      : opt(std::move(o)),
        ingest(in),
        last_stored_seq(std::move(ls)),
        priority_of(std::move(po)),
        evidence_checker(opt.evidence_keys) {}

  // --- ingest thread ---
  void completed(std::uint64_t token, ingest::Outcome outcome) override {
    std::lock_guard l(done_mu);
    done.emplace_back(token, outcome);
  }
  void batch_done() override { wake(); }

  void wake() {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = write(wake_fd, &one, sizeof one);
  }

  // Settings to push to units, from the publisher thread (cloud commands);
  // carried out on the bridge thread, which owns the sessions.
  struct SettingsRequest {
    std::string unit_id;  // "" = every unit
    Intervals intervals;
    std::promise<std::size_t> told;
  };
  std::vector<std::shared_ptr<SettingsRequest>> settings_requests;  // guarded by done_mu
  // Profiles from the custody engine (ingest thread), and those in force.
  std::vector<std::pair<std::string, AdaptiveSettings>> profile_requests;  // guarded by done_mu
  std::map<std::string, AdaptiveSettings> profiles;                        // bridge thread

  // The intervals a unit should run with: a cloud command's, else the
  // profile the custody engine chose for it, else its own configured entry,
  // else the configured default.
  Intervals intervals_for(const std::string& unit) const {
    Intervals base = opt.default_intervals;
    if (auto it = opt.unit_intervals.find(unit); it != opt.unit_intervals.end()) base = it->second;
    auto merge = [](Intervals b, const Intervals& over) {
      if (over.position_s != 0) b.position_s = over.position_s;
      if (over.sensor_s != 0) b.sensor_s = over.sensor_s;
      return b;
    };
    if (auto it = profiles.find(unit); it != profiles.end()) base = merge(base, it->second.intervals);
    if (commanded_all) base = merge(base, *commanded_all);
    if (auto it = commanded.find(unit); it != commanded.end()) base = merge(base, it->second);
    return base;
  }

  void push_pending_settings() {
    std::vector<std::shared_ptr<SettingsRequest>> todo;
    std::vector<std::pair<std::string, AdaptiveSettings>> chosen;
    {
      std::lock_guard l(done_mu);
      todo.swap(settings_requests);
      chosen.swap(profile_requests);
    }
    for (auto& [unit, p] : chosen) {
      profiles[unit] = p;
      for (auto& [id, s] : sessions) {
        if (!s.hello || s.closing || s.unit_id != unit) continue;
        // Only a change of what the unit should run is sent (a profile
        // whose intervals a command overrides changes nothing).
        if (same(wire_for(s), s.wire)) continue;
        log::info(kLog, "unit " + unit + ": reporting profile " + p.profile);
        start_settings(s);
      }
    }
    for (auto& r : todo) {
      auto merge_into = [](Intervals& into, const Intervals& v) {
        if (v.position_s != 0) into.position_s = v.position_s;
        if (v.sensor_s != 0) into.sensor_s = v.sensor_s;
      };
      if (r->unit_id.empty()) {
        if (!commanded_all) commanded_all = Intervals{};
        merge_into(*commanded_all, r->intervals);
        for (auto& [unit, v] : commanded) merge_into(v, r->intervals);
      } else {
        merge_into(commanded[r->unit_id], r->intervals);
      }
      std::size_t n = 0;
      for (auto& [id, s] : sessions) {
        if (!s.hello || s.closing || (!r->unit_id.empty() && s.unit_id != r->unit_id)) continue;
        start_settings(s);
        ++n;
      }
      r->told.set_value(n);
    }
  }

  // What SETTINGS should carry to the unit of session s: its intervals and,
  // for a unit that announced EPB_FEATURE_DEADBANDS and has a profile, the
  // profile's deadbands (6.4; an absent deadband is sent as off).
  epb_settings wire_for(const Session& s) const {
    epb_settings w{};
    auto want = intervals_for(s.unit_id);
    w.position_interval_s = want.position_s;
    w.sensor_interval_s = want.sensor_s;
    auto it = profiles.find(s.unit_id);
    if ((s.features & EPB_FEATURE_DEADBANDS) && it != profiles.end()) {
      const auto& p = it->second;
      w.extended = 1;
      if (p.temperature_deadband_centi_c) {
        w.deadbands |= EPB_DEADBAND_TEMPERATURE;
        w.temperature_deadband_centi_c =
            std::min<std::uint16_t>(*p.temperature_deadband_centi_c, EPB_TEMPERATURE_DEADBAND_MAX);
      }
      if (p.position_deadband_m) {
        w.deadbands |= EPB_DEADBAND_POSITION;
        w.position_deadband_m = std::min<std::uint32_t>(*p.position_deadband_m, EPB_POSITION_DEADBAND_MAX);
      }
    }
    return w;
  }
  static bool same(const epb_settings& a, const epb_settings& b) {
    return a.position_interval_s == b.position_interval_s && a.sensor_interval_s == b.sensor_interval_s &&
           a.extended == b.extended && a.deadbands == b.deadbands &&
           a.temperature_deadband_centi_c == b.temperature_deadband_centi_c &&
           a.position_deadband_m == b.position_deadband_m;
  }

  // Sends the unit's intervals now and keeps resending them until it
  // answers SETTINGS_ACK (7.8).
  void start_settings(Session& s) {
    auto want = intervals_for(s.unit_id);
    auto wire = wire_for(s);
    if (want.empty() && !wire.extended) return;
    s.settings = want;
    s.wire = wire;
    s.settings_acked = false;
    s.settings_attempts = 0;
    send_settings(s);
  }

  void send_settings(Session& s) {
    epb_message m{};
    m.type = EPB_MSG_SETTINGS;
    m.m.settings = s.wire;
    send(s, m);
    ++s.settings_attempts;
    s.settings_at = Clock::now();
    ++stats.settings_sent;
  }

  // --- bridge thread ---
  static std::string who(const Session& s) { return s.unit_id.empty() ? std::string("unknown") : s.unit_id; }
  std::string link_name(const Session& s) const {
    if (s.port >= 0) return "serial " + ports[static_cast<std::size_t>(s.port)].path;
    return s.unit_id.empty() ? std::string("a new connection") : "unit " + s.unit_id;
  }

  void add_fd(int fd, std::uint64_t tag, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = tag;
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
  }

  Session& new_session(int fd, int port, bool tcp = false, std::string address = {}) {
    auto id = next_conn++;
    Session& s = sessions[id];
    s.fd = fd;
    s.port = port;
    s.tcp = tcp;
    if (tcp) {
      ++tcp_sessions;
      ++per_address[address];
      s.address = std::move(address);
    }
    s.opened = s.last_rx = Clock::now();
    epb_decoder_init(&s.decoder);
    s.decoder.auth = &s.auth;  // sessions live in a node map: the address is stable
    add_fd(fd, id, EPOLLIN | (port < 0 ? EPOLLRDHUP : 0u));
    ++stats.connections_active;
    if (port < 0) {
      ++socket_sessions;
    } else {
      ports[static_cast<std::size_t>(port)].session = id;
    }
    return s;
  }

  void accept_all(int listen_fd, std::uint64_t tag) {
    while (true) {
      sockaddr_storage peer{};
      socklen_t peer_len = sizeof peer;
      int fd = accept4(listen_fd, reinterpret_cast<sockaddr*>(&peer), &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // Out of descriptors: the pending connection stays in the backlog
          // and the listener stays readable. Stop watching it for a moment
          // instead of spinning, and say what to raise.
          auto now = Clock::now();
          if (now - last_accept_warning >= std::chrono::seconds(10)) {
            log::warn(kLog, std::string("accept: ") + std::strerror(errno) + " with " +
                                std::to_string(sessions.size()) +
                                " links open; pausing accepts (raise LimitNOFILE / ulimit -n for bridge.max_units)");
            last_accept_warning = now;
          }
          epoll_event ev{};
          ev.data.u64 = tag;
          epoll_ctl(epfd, EPOLL_CTL_MOD, listen_fd, &ev);
          accepts_paused_until = now + kAcceptPause;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          log::warn(kLog, std::string("accept: ") + std::strerror(errno));
        }
        return;
      }
      bool tcp = tag == kListenTcpTag;
      std::string address = tcp ? address_of(peer) : std::string();
      // TCP never takes the slots reserved for local UNIX units.
      std::size_t reserve = unix_fd >= 0 ? std::min(opt.unix_reserve, opt.max_units) : 0;
      if (socket_sessions >= opt.max_units || (tcp && tcp_sessions >= opt.max_units - reserve)) {
        ++stats.connections_refused;
        ++stats.refused_max_units;
        close(fd);
        refusal(std::string(tcp ? "TCP" : "UNIX") + " connection refused: " + std::to_string(socket_sessions) +
                " links open (bridge.max_units " + std::to_string(opt.max_units) +
                (tcp ? ", of which bridge.unix_reserve " + std::to_string(reserve) + " are for UNIX units" : "") + ")");
        continue;
      }
      if (tcp && per_address[address] >= opt.max_units_per_address) {
        ++stats.connections_refused;
        ++stats.refused_per_address;
        close(fd);
        refusal("TCP connection from " + address + " refused: it has " + std::to_string(per_address[address]) +
                " open (bridge.max_units_per_address)");
        continue;
      }
      new_session(fd, -1, tcp, std::move(address));
      ++stats.connections_accepted;
    }
  }

  static std::string address_of(const sockaddr_storage& ss) {
    char buf[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, buf, sizeof buf);
    } else if (ss.ss_family == AF_INET6) {
      const auto& a6 = reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr;
      if (IN6_IS_ADDR_V4MAPPED(&a6)) {
        inet_ntop(AF_INET, reinterpret_cast<const std::uint8_t*>(&a6) + 12, buf, sizeof buf);
      } else {
        inet_ntop(AF_INET6, &a6, buf, sizeof buf);
      }
    }
    return buf;
  }

  // A refused connection or a link closed for misbehaviour: warned about at
  // most once per kRefusalWarningEvery, with how many happened meanwhile.
  void refusal(std::string what) {
    ++refusals_unwarned;
    last_refusal = std::move(what);
    warn_refusals(Clock::now());
  }
  void warn_refusals(Clock::time_point now) {
    if (refusals_unwarned == 0) return;
    if (last_refusal_warning != Clock::time_point{} && now - last_refusal_warning < kRefusalWarningEvery) return;
    log::warn(kLog, last_refusal + (refusals_unwarned > 1 ? " (and " + std::to_string(refusals_unwarned - 1) +
                                                                 " more refusals since the last warning)"
                                                           : std::string()));
    ++stats.refusal_warnings;
    refusals_unwarned = 0;
    last_refusal_warning = now;
  }

  // Opens every closed serial port whose retry time has come.
  void open_ports(Clock::time_point now) {
    for (std::size_t i = 0; i < ports.size(); ++i) {
      Port& p = ports[i];
      if (p.session != 0 || now < p.retry_at) continue;
      auto fd = serial::open_port(p.path, opt.serial_baud);
      if (!fd) {
        ++stats.serial_open_failures;
        if (fd.error() != p.last_error) {
          log::warn(kLog, fd.error() + "; retrying every " + std::to_string(opt.serial_retry_max.count()) +
                              " ms at most");
          p.last_error = fd.error();
        }
        p.retry_at = p.backoff.schedule(now);
        continue;
      }
      ++stats.serial_opens;
      log::info(kLog, "serial " + p.path + " open at " + std::to_string(opt.serial_baud) + " baud 8N1");
      p.last_error.clear();
      new_session(*fd, static_cast<int>(i));
    }
  }

  // Sealed on an authenticated link, unless plain (the answer to a HELLO
  // or AUTH being refused: the unit has no session key for it yet).
  void send(Session& s, const epb_message& m, bool plain = false) {
    std::uint8_t buf[EPB_MAX_ENCODED];
    std::size_t n = s.sealed && !plain ? epb_encode_sealed(&m, &s.auth, buf, sizeof buf)
                                       : epb_encode(&m, buf, sizeof buf);
    if (n == 0) {
      log::error(kLog, "cannot encode message type " + std::to_string(m.type));
      return;
    }
    s.out.append(reinterpret_cast<const char*>(buf), n);
  }

  void send_nack(Session& s, std::uint64_t seq, std::uint8_t reason, bool plain = false) {
    epb_message m{};
    m.type = EPB_MSG_NACK;
    m.m.nack.seq = seq;
    m.m.nack.reason = reason;
    send(s, m, plain);
    ++stats.nacks_sent;
  }

  Session* live_session(const UnitState& u) {
    if (u.link == 0) return nullptr;
    auto it = sessions.find(u.link);
    return it == sessions.end() || it->second.closing ? nullptr : &it->second;
  }

  // Forgets a unit's state once nothing refers to it any more: no live
  // session and nothing in flight. The store's last seq rebuilds it.
  void maybe_forget(std::uint64_t key) {
    auto it = units.find(key);
    if (it == units.end() || it->second.link != 0 || !it->second.pending.empty() || !it->second.ev_pending.empty()) {
      return;
    }
    unit_keys.erase(it->second.id);
    units.erase(it);
  }

  // The link no longer speaks for its unit (closed, new HELLO, dead).
  void detach(std::uint64_t id, Session& s) {
    if (!s.hello) return;
    s.hello = false;
    if (auto it = units.find(s.unit_key); it != units.end() && it->second.link == id) {
      it->second.link = 0;
      maybe_forget(s.unit_key);
    }
    s.unit_key = 0;
  }

  void refuse_hello(Session& s, std::uint8_t reason, std::atomic<std::uint64_t>& counter, const std::string& why) {
    ++stats.protocol_errors;
    ++stats.hellos_refused;
    ++counter;
    log::warn(kLog, "HELLO on " + link_name(s) + " refused (" + epb_nack_reason_name(reason) + "): " + why);
    send_nack(s, 0, reason, true);
  }

  bool needs_auth(const Session& s, const std::string& unit) const {
    return (s.tcp && opt.tcp_requires_auth) || opt.auth_keys.count(unit) != 0;
  }

  // A HELLO that must be authenticated: CHALLENGE, and nothing else changes
  // until its AUTH (13.2). Also for a unit without a key, so that the
  // answer does not tell which ids have one.
  void challenge(Session& s, const epb_message& hello) {
    epb_message m{};
    m.type = EPB_MSG_CHALLENGE;
    if (getrandom(s.agent_nonce, sizeof s.agent_nonce, 0) != static_cast<ssize_t>(sizeof s.agent_nonce)) {
      log::error(kLog, std::string("getrandom: ") + std::strerror(errno) + "; HELLO on " + link_name(s) + " dropped");
      return;
    }
    std::memcpy(m.m.challenge.agent_nonce, s.agent_nonce, sizeof s.agent_nonce);
    s.challenged = true;
    s.challenged_hello = hello;
    ++stats.auth_challenges;
    send(s, m, true);
  }

  void on_auth(std::uint64_t id, Session& s, const epb_auth_msg& a) {
    if (!s.challenged) {
      ++stats.protocol_errors;
      log::debug(kLog, link_name(s) + " sent AUTH without a CHALLENGE");
      return;
    }
    s.challenged = false;
    const epb_hello& h = s.challenged_hello.m.hello;
    std::string unit(h.unit_id, h.unit_id_len);
    auto key = opt.auth_keys.find(unit);
    std::uint8_t sk[EPB_SHA256_LEN], proof[EPB_PROOF_LEN];
    // The same work with or without a key, so that the answer's timing does
    // not tell which unit ids have one either.
    static const std::array<std::uint8_t, EPB_KEY_LEN> kNoKey{};
    const std::uint8_t* k = key != opt.auth_keys.end() ? key->second.data() : kNoKey.data();
    epb_auth_session_key(k, h.unit_id, h.unit_id_len, s.agent_nonce, a.unit_nonce, sk);
    bool ok = epb_auth_proof(sk, &s.challenged_hello, proof) == 1 &&
              epb_auth_equal(proof, a.proof, EPB_PROOF_LEN) == 1 && key != opt.auth_keys.end();
    if (!ok) {
      ++stats.protocol_errors;
      ++stats.hellos_refused;
      ++stats.hellos_refused_auth;
      if (key == opt.auth_keys.end()) ++stats.auth_no_key;
      refusal("unit " + unit + " on " + (s.tcp ? "TCP from " + s.address : link_name(s)) +
              " failed authentication: " +
              (key == opt.auth_keys.end() ? std::string("no key for it in bridge.unit_keys")
                                          : std::string("its proof does not match its key")));
      send_nack(s, 0, EPB_NACK_AUTH, true);
      std::memset(sk, 0, sizeof sk);
      return;
    }
    epb_auth_start(&s.auth, sk, 0);
    std::memset(sk, 0, sizeof sk);
    s.sealed = true;
    ++stats.auth_ok;
    epb_message hello = s.challenged_hello;
    welcome(id, s, hello.m.hello);
  }

  void on_hello(std::uint64_t id, Session& s, const epb_hello& h) {
    std::string unit(h.unit_id, h.unit_id_len);
    std::string container(h.container_id, h.container_id_len);
    // Refusals change nothing: the link keeps whatever session it had and a
    // corrected HELLO is welcome (7.1).
    if (auto problem = model::topic_id_problem(unit, EPB_UNIT_ID_MAX); !problem.empty()) {
      return refuse_hello(s, EPB_NACK_UNIT_ID, stats.hellos_refused_unit_id,
                          "unit id " + model::quoted_id(unit) + " " + problem);
    }
    if (unit == opt.gateway_id) {
      return refuse_hello(s, EPB_NACK_UNIT_ID, stats.hellos_refused_unit_id,
                          "unit id \"" + unit + "\" is the gateway's own id");
    }
    if (unit == model::custody_source_id(opt.gateway_id)) {
      return refuse_hello(s, EPB_NACK_UNIT_ID, stats.hellos_refused_unit_id,
                          "unit id \"" + unit + "\" is the gateway's custody event source");
    }
    if (model::is_evidence_source(unit)) {
      return refuse_hello(s, EPB_NACK_UNIT_ID, stats.hellos_refused_unit_id,
                          "unit id \"" + unit + "\" ends in \":ev\", reserved for units' evidence sources");
    }
    if (!container.empty() && !model::is_valid_iso6346(container)) {
      return refuse_hello(s, EPB_NACK_CONTAINER_ID, stats.hellos_refused_container_id,
                          "container id " + model::quoted_id(container) +
                              " is not an ISO 6346 code (4 capital letters ending in U, J or Z, 6 digits, "
                              "check digit)");
    }
    // A link speaks for one unit; one that cycles through unit ids is not a
    // unit, and each id would cost state here and a sources row in the store.
    if (!s.recent_ids.count(unit)) {
      auto now = Clock::now();
      if (now - s.ids_since >= kUnitIdWindow) {
        s.recent_ids.clear();
        s.ids_since = now;
      }
      if (s.recent_ids.size() >= opt.max_unit_ids_per_link) {
        ++stats.protocol_errors;
        ++stats.links_dropped_unit_ids;
        refusal(link_name(s) + " said HELLO for more than " + std::to_string(opt.max_unit_ids_per_link) +
                " unit ids within a minute (bridge.max_unit_ids_per_link): dropped");
        detach(id, s);
        link_down(s);
        return;
      }
      s.recent_ids.insert(unit);
    }
    if (needs_auth(s, unit)) {
      epb_message hello{};
      hello.type = EPB_MSG_HELLO;
      hello.m.hello = h;
      return challenge(s, hello);
    }
    // Not authenticated: a sealed session this link had ends here.
    s.challenged = false;
    s.sealed = false;
    epb_auth_clear(&s.auth);
    welcome(id, s, h);
  }

  // Gives the unit its session on this link (7.1 step 3): a HELLO that passed
  // every check, and its AUTH where one was needed.
  void welcome(std::uint64_t id, Session& s, const epb_hello& h) {
    std::string unit(h.unit_id, h.unit_id_len);
    std::string container(h.container_id, h.container_id_len);
    std::uint64_t key;
    bool created = false;
    if (auto k = unit_keys.find(unit); k != unit_keys.end()) {
      key = k->second;
    } else {
      key = next_unit_key++;
      created = true;
      UnitState u;
      u.id = unit;
      u.committed = last_stored_seq(unit);
      u.expected = u.committed + 1;
      u.ev_committed = last_stored_seq(model::evidence_source_id(unit));
      units.emplace(key, std::move(u));
      unit_keys[unit] = key;
    }
    UnitState& u = units.at(key);
    if (u.committed > 0 && h.oldest_seq > u.committed && h.oldest_seq - u.committed - 1 > opt.max_seq_jump) {
      auto committed = u.committed;  // u is gone after maybe_forget()
      if (created) maybe_forget(key);
      return refuse_hello(s, EPB_NACK_SEQ_RANGE, stats.hellos_refused_seq_range,
                          "unit " + unit + " holds readings from seq " + std::to_string(h.oldest_seq) +
                              " on, more than bridge.max_seq_jump (" + std::to_string(opt.max_seq_jump) +
                              ") beyond the last seq stored here, " + std::to_string(committed));
    }
    // One live session per unit: the newest HELLO wins (7.11).
    if (u.link != 0 && u.link != id) {
      if (auto it = sessions.find(u.link); it != sessions.end()) {
        Session& old = it->second;
        log::info(kLog, "unit " + unit + " said HELLO on " + link_name(s) + " while live on another link; closing that one");
        ++stats.takeovers;
        old.hello = false;
        old.unit_key = 0;
        if (old.port >= 0) {
          old.out.clear();  // a tty stays open: its next reading gets NO_HELLO
        } else {
          link_down(old);
        }
      }
      u.link = 0;
    }
    if (s.hello && s.unit_key != key) detach(id, s);
    // Everything below oldest_seq the unit has released: another agent (or
    // this one) acknowledged it.
    if (h.oldest_seq > 0 && h.oldest_seq - 1 > u.committed) {
      u.committed = h.oldest_seq - 1;
      u.expected = std::max(u.expected, u.committed + 1);
      if (u.hold_seq != 0 && u.hold_seq <= u.committed) u.hold_seq = 0;
    }
    u.link = id;
    s.hello = true;
    s.welcomed = true;
    s.unit_key = key;
    s.unit_id = std::move(unit);
    s.container_id = std::move(container);
    s.features = 0;  // announced anew after each WELCOME (6.7)
    s.wire = {};
    s.last_acked = u.committed;
    s.reack = false;
    epb_message m{};
    m.type = EPB_MSG_WELCOME;
    m.m.welcome.last_stored_seq = u.committed;
    m.m.welcome.window = opt.window;
    m.m.welcome.utc_ms = model::now_utc_ms();
    send(s, m);
    log::debug(kLog, link_name(s) + ": unit " + s.unit_id + " welcomed, resumes after seq " + std::to_string(u.committed));
    start_settings(s);
  }

  // Counts a refused reading under its cause.
  void count_refused(std::uint8_t reason) {
    switch (reason) {
      case EPB_NACK_NO_HELLO: ++stats.refused_no_hello; break;
      case EPB_NACK_WINDOW: ++stats.refused_window; break;
      case EPB_NACK_STORE_FULL: ++stats.refused_store_full; break;
      case EPB_NACK_INTERNAL: ++stats.refused_internal; break;
      case EPB_NACK_MALFORMED: ++stats.refused_malformed; break;
      default: ++stats.refused_out_of_order; break;
    }
  }

  // A resendable refusal at `seq` (7.4): nothing is taken until the unit
  // comes back to it. Only the lowest hold counts.
  void hold(Session& s, UnitState& u, std::uint64_t seq, std::uint8_t reason) {
    if (u.hold_seq == 0 || seq < u.hold_seq) {
      u.hold_seq = seq;
      u.hold_reason = reason;
    }
    u.expected = std::min(u.expected, seq);
    send_nack(s, u.hold_seq, u.hold_reason);
  }

  // What to do with an item a unit sent (7.4). Returns the seq from which
  // it is taken (>= first), or 0 when it is not taken: answered already.
  std::uint64_t admit(Session& s, UnitState& u, std::uint64_t first, std::uint64_t last, bool reading) {
    if (last < u.expected) {
      // Already in custody or on its way: store nothing, ACK it once it is
      // committed (at once if it is).
      if (reading) {
        ++stats.readings_duplicate;
        ++stats.duplicates_on_link;
      }
      if (last <= u.committed) s.reack = true;
      return 0;
    }
    if (u.hold_seq != 0 && first > u.hold_seq) {
      // Pipelined behind a refused item: the same NACK again (7.4 d).
      if (reading) count_refused(u.hold_reason);
      send_nack(s, u.hold_seq, u.hold_reason);
      return 0;
    }
    if (first > u.expected) {
      if (reading) ++stats.refused_out_of_order;
      hold(s, u, u.expected, EPB_NACK_OUT_OF_ORDER);
      return 0;
    }
    if (u.pending.size() >= opt.window) {
      if (reading) ++stats.refused_window;
      hold(s, u, u.expected, EPB_NACK_WINDOW);
      return 0;
    }
    return u.expected;  // first <= expected <= last
  }

  // Hands an item to ingest; on a full queue it is refused (INTERNAL).
  void submit(Session& s, std::uint64_t key, UnitState& u, model::Reading r, Item item) {
    auto priority = priority_of(r);
    if (!ingest.submit(std::move(r), priority, this, key)) {
      if (item.reading()) ++stats.refused_internal;
      hold(s, u, item.first, EPB_NACK_INTERNAL);
      return;
    }
    if (u.hold_seq != 0 && u.hold_seq == item.first) u.hold_seq = 0;  // the held item is back
    u.expected = item.last + 1;
    u.pending.push_back(std::move(item));
  }

  model::Reading gap_record(const Session& s, std::uint64_t first, std::uint64_t last, model::GapReason reason) {
    model::Reading r;
    r.source_id = s.unit_id;
    r.container_id = s.container_id;
    r.seq = last;
    r.time_utc_ms = model::now_utc_ms();
    r.time_source = model::TimeSource::kGatewayReceive;
    r.payload = model::SequenceGap{first, reason};
    return r;
  }

  void on_reading(Session& s, const epb_reading& w) {
    ++stats.readings_received;
    if (!s.hello) {
      ++stats.protocol_errors;
      ++stats.refused_no_hello;
      send_nack(s, w.seq, EPB_NACK_NO_HELLO);
      return;
    }
    auto key = s.unit_key;
    UnitState& u = units.at(key);
    auto r = from_wire(w, s.unit_id, s.container_id);
    if (!r) {
      // Decodable but not representable (the decoder checks the same
      // ranges, so this is rare): as a malformed reading.
      log::warn(kLog, "reading " + std::to_string(w.seq) + " from " + s.unit_id + " refused: " + r.error());
      on_malformed_reading(s, w.seq);
      return;
    }
    auto from = admit(s, u, w.seq, w.seq, true);
    if (from == 0) return;
    if (r->time_utc_ms == 0) {  // the unit has no valid clock (7.7)
      r->time_utc_ms = model::now_utc_ms();
      r->time_source = model::TimeSource::kGatewayReceive;
    }
    Item item{w.seq, w.seq, ItemKind::kReading, {}};
    if (evidence_checker.has_key(s.unit_id)) {
      std::uint8_t canonical[EPB_EV_READING_MAX];
      auto n = epb_ev_reading_bytes(&w, canonical, sizeof canonical);
      item.canonical.assign(canonical, canonical + n);
    }
    submit(s, key, u, std::move(r).value(), std::move(item));
  }

  // An intact READING frame whose content is invalid (7.5 MALFORMED): in
  // order, it is recorded as a gap declared by the gateway, so that the
  // unit's custody passes on and the cloud sees why the seq is missing.
  void on_malformed_reading(Session& s, std::uint64_t seq) {
    if (!s.hello) {
      ++stats.protocol_errors;
      ++stats.refused_no_hello;
      send_nack(s, seq <= EPB_SEQ_MAX ? seq : 0, EPB_NACK_NO_HELLO);
      return;
    }
    if (seq == 0 || seq > EPB_SEQ_MAX) {
      ++stats.refused_malformed;
      send_nack(s, 0, EPB_NACK_MALFORMED);
      return;
    }
    auto key = s.unit_key;
    UnitState& u = units.at(key);
    auto from = admit(s, u, seq, seq, true);
    if (from == 0) return;
    ++stats.refused_malformed;
    send_nack(s, seq, EPB_NACK_MALFORMED);
    submit(s, key, u, gap_record(s, seq, seq, model::GapReason::kRejectedMalformed), Item{seq, seq, ItemKind::kMalformedGap, {}});
  }

  void on_discard(Session& s, const epb_discard& d) {
    ++stats.discards_received;
    if (!s.hello) {
      ++stats.protocol_errors;
      ++stats.discards_refused;
      send_nack(s, d.first_seq, EPB_NACK_NO_HELLO);
      return;
    }
    auto key = s.unit_key;
    UnitState& u = units.at(key);
    if (d.last_seq >= u.expected && d.last_seq - u.expected > opt.max_seq_jump) {
      ++stats.discards_refused;
      log::warn(kLog, "DISCARD " + std::to_string(d.first_seq) + ".." + std::to_string(d.last_seq) + " from " +
                          s.unit_id + " refused: it reaches more than bridge.max_seq_jump (" +
                          std::to_string(opt.max_seq_jump) + ") beyond the next expected seq " +
                          std::to_string(u.expected));
      send_nack(s, d.first_seq, EPB_NACK_SEQ_RANGE);
      return;
    }
    auto from = admit(s, u, d.first_seq, d.last_seq, false);
    if (from == 0) return;
    log::info(kLog, "unit " + s.unit_id + " declares seqs " + std::to_string(from) + ".." + std::to_string(d.last_seq) +
                        " discarded (" + std::string(model::gap_reason_name(static_cast<model::GapReason>(d.reason))) + ")");
    stats.seqs_declared_discarded += d.last_seq - from + 1;
    submit(s, key, u, gap_record(s, from, d.last_seq, static_cast<model::GapReason>(d.reason)),
           Item{from, d.last_seq, ItemKind::kDiscard, {}});
  }

  void on_settings_ack(Session& s, const epb_settings& a) {
    if (!s.hello || s.settings_acked) return;
    s.settings_acked = true;
    ++stats.settings_acked;
    const auto& want = s.settings;
    if ((want.position_s != 0 && a.position_interval_s != want.position_s) ||
        (want.sensor_s != 0 && a.sensor_interval_s != want.sensor_s)) {
      log::info(kLog, "unit " + s.unit_id + " runs at position " + std::to_string(a.position_interval_s) +
                          " s, sensor " + std::to_string(a.sensor_interval_s) + " s instead of the " +
                          std::to_string(want.position_s) + "/" + std::to_string(want.sensor_s) + " s it was sent");
    }
    if (s.wire.extended && a.extended &&
        (a.deadbands != s.wire.deadbands || a.temperature_deadband_centi_c != s.wire.temperature_deadband_centi_c ||
         a.position_deadband_m != s.wire.position_deadband_m)) {
      log::info(kLog, "unit " + s.unit_id + " runs deadbands " + std::to_string(a.temperature_deadband_centi_c) +
                          " centi-degC / " + std::to_string(a.position_deadband_m) + " m (flags " +
                          std::to_string(a.deadbands) + ") instead of those it was sent");
    }
  }

  // FEATURES (6.7): what the unit takes beyond the base protocol. A unit
  // that takes deadbands gets its profile's now, if it has one.
  void on_features(Session& s, const epb_features& f) {
    if (!s.hello) return;
    s.features = f.features;
    log::debug(kLog, "unit " + s.unit_id + " announces features " + std::to_string(f.features));
    if (!same(wire_for(s), s.wire)) start_settings(s);
  }

  void on_ping(Session& s, const epb_ping& p) {
    auto now = Clock::now();
    if (now - s.pong_second >= std::chrono::seconds(1)) {
      s.pong_second = now;
      s.pongs_this_second = 0;
    }
    if (++s.pongs_this_second > opt.max_pongs_per_second) {
      ++stats.pings_dropped;
      return;
    }
    epb_message pong{};
    pong.type = EPB_MSG_PONG;
    pong.m.ping = p;
    send(s, pong);
  }

  void send_evidence_ack(Session& s, std::uint64_t seq) {
    epb_message m{};
    m.type = EPB_MSG_EVIDENCE_ACK;
    m.m.evidence_ack.seq = seq;
    send(s, m);
    ++stats.ev_acks_sent;
  }

  // One EVIDENCE fragment (7.15): reassembled per link; a complete
  // checkpoint is checked, stored as a record of the unit's evidence source
  // and acknowledged after its commit, whatever the check found.
  void on_evidence(Session& s, const epb_evidence& f) {
    ++stats.ev_fragments;
    if (!s.hello) {
      ++stats.protocol_errors;
      ++stats.ev_fragments_dropped;
      return;
    }
    switch (epb_evf_feed(&s.evf, &f)) {
      case EPB_EVF_MORE: return;
      case EPB_EVF_DUPLICATE: ++stats.ev_fragments_duplicate; return;
      case EPB_EVF_RESTARTED:
      case EPB_EVF_GAP: ++stats.ev_fragments_dropped; return;
      case EPB_EVF_COMPLETE: break;
    }
    ++stats.ev_checkpoints_received;
    const std::uint64_t seq = s.evf.seq;
    // Kept as it is: a repeat of its fragments is then a duplicate, not a gap.
    std::vector<std::uint8_t> cose(s.evf.buf, s.evf.buf + s.evf.total_len);
    auto key = s.unit_key;
    UnitState& u = units.at(key);
    if (seq <= u.ev_committed) {
      ++stats.ev_checkpoints_duplicate;
      send_evidence_ack(s, seq);  // committed already: the ACK was lost
      return;
    }
    if (!u.ev_pending.empty() && seq <= u.ev_pending.back()) {
      ++stats.ev_checkpoints_duplicate;  // on its way to the store: its ACK follows the commit
      return;
    }
    auto verdict = evidence_checker.check(s.unit_id, seq, cose);
    ++stats.ev_checks[static_cast<std::size_t>(verdict.check)];
    if (verdict.head_checked) {
      ++stats.ev_heads_checked;
    } else if (evidence_checker.has_key(s.unit_id)) {
      ++stats.ev_heads_unchecked;
    }
    if (verdict.check != model::EvidenceCheck::kVerified && verdict.check != model::EvidenceCheck::kUnchecked) {
      log::error(kLog, "ALARM: evidence checkpoint " + std::to_string(verdict.n) + " (up to seq " +
                           std::to_string(seq) + ") of unit " + s.unit_id + ": " +
                           std::string(model::evidence_check_name(verdict.check)) +
                           (verdict.detail.empty() ? std::string() : " (" + verdict.detail + ")") +
                           "; stored and forwarded as sent");
    }
    model::Reading r;
    r.source_id = model::evidence_source_id(s.unit_id);
    r.seq = seq;
    // No container: a checkpoint concerns the unit, and the custody engine
    // leaves records of no container alone.
    if (verdict.time_ms != 0) {
      r.time_utc_ms = verdict.time_ms;
    } else {
      r.time_utc_ms = model::now_utc_ms();
      r.time_source = model::TimeSource::kGatewayReceive;
    }
    r.payload = model::EvidenceCheckpoint{std::move(cose), verdict.n, verdict.check};
    if (!ingest.submit(std::move(r), model::Priority::kAlarm, this, key | kEvidenceToken)) {
      ++stats.ev_checkpoints_refused;  // not answered: the unit resends on its timer
      return;
    }
    u.ev_pending.push_back(seq);
  }

  void on_message(std::uint64_t id, Session& s, const epb_message& m) {
    switch (m.type) {
      case EPB_MSG_HELLO: on_hello(id, s, m.m.hello); break;
      case EPB_MSG_READING: on_reading(s, m.m.reading); break;
      case EPB_MSG_DISCARD: on_discard(s, m.m.discard); break;
      case EPB_MSG_SETTINGS_ACK: on_settings_ack(s, m.m.settings); break;
      case EPB_MSG_FEATURES: on_features(s, m.m.features); break;
      case EPB_MSG_PING: on_ping(s, m.m.ping); break;
      case EPB_MSG_PONG: break;
      case EPB_MSG_AUTH: on_auth(id, s, m.m.auth); break;
      case EPB_MSG_EVIDENCE: on_evidence(s, m.m.evidence); break;
      default:
        // Agent-to-unit messages have no business arriving here (7.10).
        ++stats.protocol_errors;
        ++stats.wrong_direction;
        log::debug(kLog, link_name(s) + " sent an agent-to-unit message (type " + std::to_string(m.type) + ")");
        break;
    }
  }

  // A frame that decoded up to its content (good CRC), but whose content is
  // invalid or of another protocol version.
  void on_bad_frame(Session& s, epb_status st, const epb_message& m) {
    if (st == EPB_ERR_PAYLOAD && m.type == EPB_MSG_READING) {
      ++stats.readings_received;
      on_malformed_reading(s, m.m.reading.seq);
    } else if (st == EPB_ERR_PAYLOAD && (m.type == EPB_MSG_HELLO || m.type == EPB_MSG_DISCARD)) {
      ++stats.protocol_errors;
      if (m.type == EPB_MSG_HELLO) ++stats.hellos_malformed;
      if (m.type == EPB_MSG_DISCARD) ++stats.discards_refused;
      send_nack(s, 0, EPB_NACK_MALFORMED);
    } else if (st == EPB_ERR_VERSION && m.type == EPB_MSG_HELLO && s.decoder.last_version >= 1 &&
               s.decoder.last_version < EPB_PROTOCOL_VERSION) {
      auto now = Clock::now();
      if (s.last_version_refusal != Clock::time_point{} && now - s.last_version_refusal < kVersionRefusalEvery) return;
      s.last_version_refusal = now;
      ++stats.protocol_errors;
      ++stats.hellos_refused;
      ++stats.hellos_refused_version;
      log::warn(kLog, link_name(s) + " speaks epb version " + std::to_string(s.decoder.last_version) +
                          "; this agent speaks version " + std::to_string(EPB_PROTOCOL_VERSION) +
                          " only: update the unit's firmware (docs/firmware-bridge.md, section 3)");
      std::uint8_t buf[EPB_MAX_ENCODED];
      auto n = epb_encode_version_refusal(s.decoder.last_version, buf, sizeof buf);
      s.out.append(reinterpret_cast<const char*>(buf), n);
    }
  }

  void link_down(Session& s) {
    s.closing = true;
    s.out.clear();
    if (s.port >= 0) s.lost = true;
  }

  // Enough is waiting for a commit: unit input stays in the socket and tty
  // buffers (units stall at their window) until ingest catches up.
  bool ingest_backlogged() const { return ingest.queued() > ingest.high_water(); }

  void read_from(std::uint64_t id, Session& s) {
    std::uint8_t buf[16384];
    std::size_t budget = std::max<std::size_t>(opt.read_budget_bytes, 1);
    while (!s.closing) {
      // A link whose answers pile up unread is not read further (flush()
      // drops it); one that sends fast is read again on the next wake-up,
      // after every other ready link had its turn (epoll is level-triggered).
      if (s.out.size() > opt.max_output_bytes) return;
      // Backpressure, checked before every read and not only once per
      // wake-up: a wake-up with many ready links would otherwise queue a
      // read budget of each (100 units: tens of thousands of readings, MiBs).
      if (ingest_backlogged()) return;
      if (budget == 0) {
        ++stats.read_budget_yields;
        return;
      }
      std::size_t want = std::min(sizeof buf, budget);
      ssize_t n = s.port >= 0 ? ::read(s.fd, buf, want) : recv(s.fd, buf, want, 0);
      if (n == 0) {  // peer closed; on a tty: hang-up
        link_down(s);
        return;
      }
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          if (s.port >= 0) log::warn(kLog, link_name(s) + ": " + std::strerror(errno) + "; reopening");
          link_down(s);
        }
        return;
      }
      budget -= static_cast<std::size_t>(n);
      std::size_t off = 0;
      while (off < static_cast<std::size_t>(n) && !s.closing) {
        epb_message m;
        epb_status st;
        off += epb_decoder_feed(&s.decoder, buf + off, static_cast<std::size_t>(n) - off, &m, &st);
        if (st == EPB_NEED_MORE) continue;
        if (st == EPB_OK && s.sealed && !m.sealed && m.type != EPB_MSG_HELLO && m.type != EPB_MSG_AUTH) {
          // On an authenticated link only HELLO and AUTH (a new handshake)
          // may come unsealed (13.4): anything else may be injected.
          ++stats.unsealed_dropped;
          refusal(link_name(s) + " sent an unsealed frame (type " + std::to_string(m.type) +
                  ") on an authenticated link: dropped");
        } else if (st == EPB_OK) {
          ++stats.frames_ok;
          s.last_rx = Clock::now();
          s.ping_sent = {};
          on_message(id, s, m);
        } else if (st == EPB_ERR_AUTH) {
          ++stats.frame_errors[static_cast<std::size_t>(st)];
          refusal(link_name(s) + " sent a sealed frame that is not authentic (bad tag, replayed or no session): "
                                 "dropped");
        } else {
          ++stats.frame_errors[static_cast<std::size_t>(st)];
          on_bad_frame(s, st, m);
          log::debug(kLog, "frame from " + link_name(s) + " dropped: " + epb_status_name(st));
        }
      }
    }
  }

  void flush(std::uint64_t id, Session& s) {
    if (s.hello && !s.closing) {
      // The ACK carries the unit's committed seq and nothing else (7.4).
      auto committed = units.at(s.unit_key).committed;
      if (committed > s.last_acked || (s.reack && committed > 0)) {
        epb_message m{};
        m.type = EPB_MSG_ACK;
        m.m.ack.seq = committed;
        send(s, m);
        s.last_acked = committed;
      }
    }
    s.reack = false;
    while (!s.out.empty()) {
      ssize_t n = s.port >= 0 ? ::write(s.fd, s.out.data(), s.out.size())
                              : ::send(s.fd, s.out.data(), s.out.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        link_down(s);
        break;
      }
      s.out.erase(0, static_cast<std::size_t>(n));
    }
    if (s.out.size() > opt.max_output_bytes) {
      ++stats.links_dropped_output;
      refusal(link_name(s) + " does not read what the agent sends (over " + std::to_string(opt.max_output_bytes) +
              " bytes waiting); dropping the link");
      link_down(s);
    }
    bool want = !s.out.empty();
    if (want != s.want_write) {
      epoll_event ev{};
      ev.events = EPOLLIN | (s.port < 0 ? EPOLLRDHUP : 0u) | (want ? EPOLLOUT : 0u);
      ev.data.u64 = id;
      epoll_ctl(epfd, EPOLL_CTL_MOD, s.fd, &ev);
      s.want_write = want;
    }
  }

  void close_session(std::uint64_t id) {
    auto it = sessions.find(id);
    if (it == sessions.end()) return;
    Session& s = it->second;
    detach(id, s);
    epoll_ctl(epfd, EPOLL_CTL_DEL, s.fd, nullptr);
    close(s.fd);
    if (s.port >= 0) {
      Port& p = ports[static_cast<std::size_t>(s.port)];
      p.session = 0;
      auto now = Clock::now();
      if (now - s.opened >= kSerialStableAfter) p.backoff.reset();
      p.retry_at = p.backoff.schedule(now);
      if (s.lost) {
        ++stats.serial_link_losses;
        log::warn(kLog, "serial " + p.path + " lost (unit " + who(s) + "); reopening");
      }
    } else {
      --socket_sessions;
      if (s.tcp) {
        --tcp_sessions;
        if (auto a = per_address.find(s.address); a != per_address.end() && --a->second == 0) per_address.erase(a);
      }
    }
    sessions.erase(it);
    --stats.connections_active;
  }

  // The outcome of a checkpoint handed to ingest (7.15): EVIDENCE_ACK once
  // it is committed; nothing on a refusal (the unit resends).
  void evidence_completed(std::uint64_t key, ingest::Outcome outcome, std::vector<std::uint64_t>& touched) {
    auto it = units.find(key);
    if (it == units.end() || it->second.ev_pending.empty()) {
      log::error(kLog, "an ingest outcome for a checkpoint of a unit with none in flight");
      return;
    }
    UnitState& u = it->second;
    auto seq = u.ev_pending.front();
    u.ev_pending.pop_front();
    touched.push_back(key);
    if (outcome == ingest::Outcome::kRefused || outcome == ingest::Outcome::kFailed) {
      ++stats.ev_checkpoints_refused;
      return;
    }
    ++(outcome == ingest::Outcome::kDuplicate ? stats.ev_checkpoints_duplicate : stats.ev_checkpoints_stored);
    u.ev_committed = std::max(u.ev_committed, seq);
    if (Session* s = live_session(u); s != nullptr) send_evidence_ack(*s, seq);
  }

  void drain_completions() {
    std::vector<std::pair<std::uint64_t, ingest::Outcome>> batch;
    {
      std::lock_guard l(done_mu);
      batch.swap(done);
    }
    std::vector<std::uint64_t> touched;
    for (auto [token, outcome] : batch) {
      if ((token & kEvidenceToken) != 0) {
        evidence_completed(token & ~kEvidenceToken, outcome, touched);
        continue;
      }
      auto key = token;
      auto it = units.find(key);
      if (it == units.end() || it->second.pending.empty()) {
        log::error(kLog, "an ingest outcome for a unit with nothing in flight");
        continue;
      }
      UnitState& u = it->second;
      Item item = u.pending.front();
      u.pending.pop_front();
      touched.push_back(key);
      if (outcome == ingest::Outcome::kRefused || outcome == ingest::Outcome::kFailed) {
        // Backpressure or a store error: the unit keeps it and resends
        // later. The store holds this unit's later items back too, so no
        // ACK can pass over it.
        std::uint8_t reason = outcome == ingest::Outcome::kRefused ? EPB_NACK_STORE_FULL : EPB_NACK_INTERNAL;
        if (item.reading()) count_refused(reason);
        bool lowers = u.hold_seq == 0 || item.first < u.hold_seq;
        if (lowers) {
          u.hold_seq = item.first;
          u.hold_reason = reason;
        }
        u.expected = std::min(u.expected, item.first);
        if (Session* s = live_session(u); s != nullptr && lowers) send_nack(*s, u.hold_seq, u.hold_reason);
        continue;
      }
      if (item.reading()) {
        ++(outcome == ingest::Outcome::kDuplicate ? stats.readings_duplicate : stats.readings_stored);
        if (outcome == ingest::Outcome::kStored && !item.canonical.empty()) {
          evidence_checker.reading(u.id, item.first, item.canonical);
        }
      } else if (item.kind == ItemKind::kDiscard) {
        ++stats.discards_recorded;
      }
      if (item.first <= u.committed + 1) {
        u.committed = std::max(u.committed, item.last);
      } else {
        // Cannot happen while the store keeps each source in order; never
        // acknowledge past a hole if it does.
        log::error(kLog, "unit " + u.id + ": seq " + std::to_string(item.first) + " committed after a hole at " +
                             std::to_string(u.committed + 1) + "; not acknowledged");
      }
    }
    for (auto key : touched) maybe_forget(key);
  }

  // PINGs for silent links, the dead-link rule and SETTINGS retries (7.8, 7.9).
  void check_timers(Clock::time_point now) {
    warn_refusals(now);
    for (auto& [id, s] : sessions) {
      if (s.closing) continue;
      // A socket that never got a unit welcomed holds a slot for nothing
      // (7.1): closed at the HELLO deadline. A tty stays open: it is the port.
      if (s.port < 0 && !s.welcomed && now - s.opened >= opt.hello_deadline) {
        ++stats.hello_timeouts;
        refusal(link_name(s) + (s.tcp ? " from " + s.address : std::string()) + " sent no accepted HELLO within " +
                std::to_string(opt.hello_deadline.count()) + " ms: closed");
        link_down(s);
        continue;
      }
      if (s.ping_sent == Clock::time_point{}) {
        if (now - s.last_rx >= opt.idle_ping_after) {
          epb_message m{};
          m.type = EPB_MSG_PING;
          m.m.ping.nonce = static_cast<std::uint32_t>(id);
          send(s, m);
          s.ping_sent = now;
          ++stats.pings_sent;
        }
      } else if (now - s.ping_sent >= opt.dead_after_ping) {
        // A tty with no unit on it stays quiet: no warning or count every 40 s.
        if (s.hello || s.port < 0) ++stats.links_dead;
        (s.hello ? log::warn : log::debug)(
            kLog, link_name(s) + " silent for " +
                      std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(now - s.last_rx).count()) +
                      " ms and no answer to a PING: " + (s.port >= 0 ? "session forgotten" : "closing"));
        detach(id, s);
        s.ping_sent = {};
        s.last_rx = now;
        if (s.port < 0) link_down(s);
        continue;
      }
      if (s.hello && !s.settings_acked && now - s.settings_at >= opt.settings_retry) {
        if (s.settings_attempts >= kSettingsAttempts) {
          log::warn(kLog, "unit " + s.unit_id + " did not answer SETTINGS " + std::to_string(kSettingsAttempts) +
                              " times; trying again in its next session");
          s.settings_acked = true;
        } else {
          send_settings(s);
        }
      }
    }
  }

  Clock::time_point last_timer_check{};

  void run() {
    std::vector<epoll_event> events(256);
    while (!stopping) {
      int n = epoll_wait(epfd, events.data(), static_cast<int>(events.size()), ports.empty() ? 200 : 50);
      if (n < 0 && errno != EINTR) {
        log::error(kLog, std::string("epoll_wait: ") + std::strerror(errno));
        break;
      }
      // Backpressure: with enough waiting for a commit, leave unit input in
      // the socket and tty buffers (units then stall at their window) until
      // ingest catches up; acks keep flowing meanwhile.
      bool paused = ingest_backlogged();
      for (int i = 0; i < n; ++i) {
        auto tag = events[static_cast<std::size_t>(i)].data.u64;
        auto ev = events[static_cast<std::size_t>(i)].events;
        if (tag == kListenUnixTag) {
          accept_all(unix_fd, tag);
        } else if (tag == kListenTcpTag) {
          accept_all(tcp_fd, tag);
        } else if (tag == kWakeTag) {
          std::uint64_t v;
          [[maybe_unused]] auto r = read(wake_fd, &v, sizeof v);
        } else if (auto it = sessions.find(tag); it != sessions.end()) {
          if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
            paused = paused || ingest_backlogged();
            if (!paused) read_from(tag, it->second);
          }
        }
      }
      if (paused) {
        ++stats.backpressure_pauses;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      drain_completions();
      push_pending_settings();
      auto now = Clock::now();
      if (now - last_timer_check >= std::chrono::milliseconds(200)) {
        check_timers(now);
        last_timer_check = now;
      }
      std::vector<std::uint64_t> to_close;
      for (auto& [id, s] : sessions) {
        flush(id, s);
        if (s.closing && s.out.empty()) to_close.push_back(id);
      }
      for (auto id : to_close) close_session(id);
      if (!ports.empty()) open_ports(Clock::now());
      if (accepts_paused_until != Clock::time_point{} && Clock::now() >= accepts_paused_until) {
        accepts_paused_until = {};
        for (auto [fd, tag] : {std::pair{unix_fd, kListenUnixTag}, std::pair{tcp_fd, kListenTcpTag}}) {
          if (fd < 0) continue;
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.u64 = tag;
          epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
        }
      }
    }
  }
};

std::uint64_t refused_total(const ServerStats& st) {
  return st.refused_no_hello + st.refused_out_of_order + st.refused_window + st.refused_store_full +
         st.refused_internal + st.refused_malformed;
}

std::string evidence_health_json(const ServerStats& st) {
  auto n = [](const std::atomic<std::uint64_t>& v) { return v.load(); };
  json::Object checks;
  std::uint64_t bad = 0;
  for (std::size_t i = 0; i < model::kEvidenceCheckCount; ++i) {
    auto c = static_cast<model::EvidenceCheck>(i);
    checks.add(std::string(model::evidence_check_name(c)), n(st.ev_checks[i]));
    if (c != model::EvidenceCheck::kVerified && c != model::EvidenceCheck::kUnchecked) bad += n(st.ev_checks[i]);
  }
  json::Object o;
  o.add("checkpoints_received", n(st.ev_checkpoints_received))
      .add("checkpoints_stored", n(st.ev_checkpoints_stored))
      .add("checkpoints_duplicate", n(st.ev_checkpoints_duplicate))
      .add("checkpoints_refused", n(st.ev_checkpoints_refused))
      .add("acks_sent", n(st.ev_acks_sent))
      .add("good", n(st.ev_checks[static_cast<std::size_t>(model::EvidenceCheck::kVerified)]))
      .add("bad", bad)
      .add("unchecked", n(st.ev_checks[static_cast<std::size_t>(model::EvidenceCheck::kUnchecked)]))
      .add("heads_checked", n(st.ev_heads_checked))
      .add("heads_unchecked", n(st.ev_heads_unchecked))
      .add_raw("by_check", std::move(checks).str())
      .add("fragments", n(st.ev_fragments))
      .add("fragments_duplicate", n(st.ev_fragments_duplicate))
      .add("fragments_dropped", n(st.ev_fragments_dropped));
  return std::move(o).str();
}

std::string health_json(const ServerStats& st) {
  auto n = [](const std::atomic<std::uint64_t>& v) { return v.load(); };
  json::Object refused;
  refused.add("no_hello", n(st.refused_no_hello)).add("out_of_order", n(st.refused_out_of_order))
      .add("window", n(st.refused_window)).add("store_full", n(st.refused_store_full))
      .add("internal", n(st.refused_internal)).add("malformed", n(st.refused_malformed));
  json::Object hellos;
  hellos.add("unit_id", n(st.hellos_refused_unit_id)).add("container_id", n(st.hellos_refused_container_id))
      .add("seq_range", n(st.hellos_refused_seq_range)).add("version", n(st.hellos_refused_version))
      .add("malformed", n(st.hellos_malformed)).add("auth", n(st.hellos_refused_auth));
  json::Object auth;
  auth.add("challenges", n(st.auth_challenges)).add("ok", n(st.auth_ok)).add("no_key", n(st.auth_no_key))
      .add("unsealed_dropped", n(st.unsealed_dropped)).add("frames_not_authentic", n(st.frame_errors[EPB_ERR_AUTH]));
  json::Object admission;
  admission.add("refused_max_units", n(st.refused_max_units)).add("refused_per_address", n(st.refused_per_address))
      .add("hello_timeouts", n(st.hello_timeouts)).add("dropped_unit_ids", n(st.links_dropped_unit_ids))
      .add("dropped_output", n(st.links_dropped_output)).add("pings_dropped", n(st.pings_dropped));
  json::Object o;
  o.add("units_connected", n(st.connections_active)).add("readings_received", n(st.readings_received))
      .add("readings_stored", n(st.readings_stored)).add("readings_duplicate", n(st.readings_duplicate))
      .add_raw("readings_refused", std::move(refused).str())
      .add("readings_acked", n(st.readings_stored) + n(st.readings_duplicate))
      .add("discards_received", n(st.discards_received)).add("discards_recorded", n(st.discards_recorded))
      .add("seqs_declared_discarded", n(st.seqs_declared_discarded)).add("discards_refused", n(st.discards_refused))
      .add_raw("hellos_refused", std::move(hellos).str())
      .add_raw("auth", std::move(auth).str())
      .add("takeovers", n(st.takeovers)).add("links_dead", n(st.links_dead)).add("nacks_sent", n(st.nacks_sent))
      .add("settings_sent", n(st.settings_sent)).add("settings_acked", n(st.settings_acked))
      .add("protocol_errors", n(st.protocol_errors))
      .add_raw("admission", std::move(admission).str());
  return std::move(o).str();
}

Server::Server(ServerOptions options, ingest::Ingest& ingest,
               std::function<std::uint64_t(std::string_view)> last_stored_seq,
               std::function<model::Priority(const model::Reading&)> priority_of)
    : impl_(std::make_unique<Impl>(std::move(options), ingest, std::move(last_stored_seq), std::move(priority_of))) {}

Server::~Server() {
  stop();
  for (int fd : {impl_->unix_fd, impl_->tcp_fd, impl_->wake_fd, impl_->epfd}) {
    if (fd >= 0) close(fd);
  }
  if (impl_->unix_fd >= 0) {
    // Only the socket file this server bound: another agent may have
    // replaced it meanwhile (it is refused while we serve, but an operator
    // may have removed ours by hand).
    struct stat st{};
    if (lstat(impl_->opt.unix_socket.c_str(), &st) == 0 && st.st_dev == impl_->unix_dev &&
        st.st_ino == impl_->unix_ino) {
      unlink(impl_->opt.unix_socket.c_str());
    }
  }
}

Status Server::start() {
  auto& d = *impl_;
  if (!d.opt.serial_ports.empty()) {
    if (!tty::speed_for(d.opt.serial_baud)) {
      return Error{"bridge: serial baud rate " + std::to_string(d.opt.serial_baud) +
                   " is not a standard rate (50 .. 4000000, e.g. 9600, 115200, 921600)"};
    }
    std::set<std::string> seen;
    for (const auto& path : d.opt.serial_ports) {
      if (!seen.insert(path).second) return Error{"bridge: serial port " + path + " is listed twice"};
      Impl::Port p;
      p.path = path;
      p.backoff = backoff::Backoff(backoff::Options{d.opt.serial_retry_min, d.opt.serial_retry_max, 0});
      d.ports.push_back(std::move(p));
    }
  }
  d.epfd = epoll_create1(EPOLL_CLOEXEC);
  d.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (d.epfd < 0 || d.wake_fd < 0) return Error{std::string("epoll/eventfd: ") + std::strerror(errno)};
  d.add_fd(d.wake_fd, kWakeTag, EPOLLIN);
  if (!d.opt.unix_socket.empty()) {
    auto fd = net::listen_unix(d.opt.unix_socket);
    if (!fd) return Error{"bridge: " + fd.error()};
    d.unix_fd = *fd;
    struct stat st{};
    if (lstat(d.opt.unix_socket.c_str(), &st) == 0) {
      d.unix_dev = st.st_dev;
      d.unix_ino = st.st_ino;
    }
    d.add_fd(d.unix_fd, kListenUnixTag, EPOLLIN);
  }
  if (!d.opt.tcp_listen.empty()) {
    auto fd = net::listen_tcp(d.opt.tcp_listen);
    if (!fd) return Error{"bridge: " + fd.error()};
    d.tcp_fd = *fd;
    d.tcp_port = net::local_port(d.tcp_fd);
    d.add_fd(d.tcp_fd, kListenTcpTag, EPOLLIN);
  }
  d.open_ports(Clock::now());  // before the thread exists; missing devices are retried by it
  d.thread = std::thread([this] {
    pthread_setname_np(pthread_self(), "ep-units");  // in top, perf and /proc/PID/task/*/comm
    impl_->run();
  });
  return ok_status();
}

void Server::stop() {
  auto& d = *impl_;
  if (d.stopped) return;
  d.stopped = true;
  d.stopping = true;
  if (d.wake_fd >= 0) d.wake();  // out of epoll_wait now, not at its timeout
  if (d.thread.joinable()) d.thread.join();
  // Send the acks of whatever was committed, so units can free it.
  d.drain_completions();
  std::vector<std::uint64_t> ids;
  for (auto& [id, s] : d.sessions) {
    d.flush(id, s);
    ids.push_back(id);
  }
  for (auto id : ids) d.close_session(id);
  if (d.epfd < 0) return;  // never started
  const auto& st = d.stats;
  std::uint64_t frame_errors = 0;
  for (const auto& e : st.frame_errors) frame_errors += e.load();
  log::info(kLog, "bridge stopped: " + std::to_string(st.connections_accepted.load()) + " connections, " +
                      std::to_string(st.serial_opens.load()) + " serial opens, " +
                      std::to_string(st.readings_received.load()) + " readings received, " +
                      std::to_string(st.readings_stored.load()) + " stored, " +
                      std::to_string(st.readings_duplicate.load()) + " duplicates, " +
                      std::to_string(refused_total(st)) + " refused, " +
                      std::to_string(st.seqs_declared_discarded.load()) + " seqs declared discarded, " +
                      std::to_string(st.nacks_sent.load()) + " nacks, " + std::to_string(frame_errors) +
                      " frame errors, " + std::to_string(st.protocol_errors.load()) + " protocol errors");
}

Result<std::size_t> Server::push_settings(const std::string& unit_id, std::uint32_t position_interval_s,
                                          std::uint32_t sensor_interval_s) {
  auto& d = *impl_;
  if (d.stopping || !d.thread.joinable()) return Error{"the bridge is not running"};
  auto req = std::make_shared<Impl::SettingsRequest>();
  req->unit_id = unit_id;
  req->intervals = Intervals{position_interval_s, sensor_interval_s};
  auto told = req->told.get_future();
  {
    std::lock_guard l(d.done_mu);
    d.settings_requests.push_back(req);
  }
  d.wake();
  if (told.wait_for(std::chrono::seconds(2)) != std::future_status::ready) {
    return Error{"the bridge did not answer within 2 s"};
  }
  return told.get();
}

void Server::set_profile(const std::string& unit_id, const AdaptiveSettings& settings) {
  auto& d = *impl_;
  {
    std::lock_guard l(d.done_mu);
    d.profile_requests.emplace_back(unit_id, settings);
  }
  d.wake();
}

std::uint16_t Server::tcp_port() const { return impl_->tcp_port; }
const ServerStats& Server::stats() const { return impl_->stats; }

}  // namespace eport::units
