// Bridge server: an epoll loop over the listeners, every unit link (socket
// connections and serial ttys alike) and an eventfd that the ingest thread
// signals when readings are committed. Per link: a frame decoder, the unit's
// identity after HELLO, the seqs submitted and not yet committed (in order),
// a hold after a resendable NACK, and an output buffer. Serial ports that
// are missing or lose their device are reopened with a backoff.
#include "eport/bridge/server.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
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

#include "eport/bridge/convert.h"
#include "eport/bridge/net.h"
#include "eport/bridge/serial.h"
#include "eport/log/log.h"

namespace eport::bridge {

namespace {
using Clock = std::chrono::steady_clock;
constexpr std::string_view kLog = "bridge";
constexpr std::uint64_t kListenUnixTag = 1, kListenTcpTag = 2, kWakeTag = 3, kFirstConnTag = 16;
// Ingest tokens carry the link id and the low bits of its session
// generation, so outcomes of a session that a new HELLO replaced are
// recognised and ignored.
constexpr unsigned kGenerationBits = 16;
constexpr std::uint64_t kGenerationMask = (1u << kGenerationBits) - 1;
// A serial session that lived this long resets its port's reopen backoff.
constexpr auto kSerialStableAfter = std::chrono::seconds(10);
// Without a free descriptor, accepting waits this long before trying again.
constexpr auto kAcceptPause = std::chrono::milliseconds(200);

std::uint64_t now_utc_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}
}  // namespace

struct Server::Impl : public ingest::CompletionSink {
  struct Session {
    int fd = -1;
    int port = -1;                        // index into ports for a serial tty, -1 for a socket
    Clock::time_point opened{};
    std::uint64_t generation = 0;         // bumped by every accepted HELLO
    epb_decoder decoder;
    bool hello = false;
    std::string unit_id, container_id;
    std::uint64_t last_submitted = 0;     // every seq <= this is resolved or in pending
    std::uint64_t hold_seq = 0;           // != 0: refused with a resendable NACK, awaiting its resend
    std::deque<std::uint64_t> pending;    // seqs submitted, awaiting commit, in order
    std::uint64_t ack_to_send = 0;        // highest committed seq not yet acked
    std::uint64_t last_acked = 0;
    bool reack = false;                   // a resend of acked readings: the ACK was lost, send it again
    std::string out;
    bool want_write = false;
    bool closing = false;  // close once the output is flushed
    bool lost = false;     // serial: the device went away (EIO, hang-up)
  };

  struct Port {
    std::string path;
    std::uint64_t session = 0;  // link id while open, 0 while closed
    Clock::time_point retry_at{};
    std::chrono::milliseconds backoff{};
    std::string last_error;     // logged once per distinct error, not per retry
  };

  ServerOptions opt;
  ingest::Ingest& ingest;
  std::function<std::uint64_t(std::string_view)> last_stored_seq;
  std::function<model::Priority(const model::Reading&)> priority_of;
  ServerStats stats;

  int epfd = -1, unix_fd = -1, tcp_fd = -1, wake_fd = -1;
  std::uint16_t tcp_port = 0;
  std::thread thread;
  std::atomic<bool> stopping{false};
  bool stopped = false;
  std::unordered_map<std::uint64_t, Session> sessions;  // by link id (epoll tag)
  std::size_t socket_sessions = 0;
  std::vector<Port> ports;
  std::uint64_t next_conn = kFirstConnTag;
  Clock::time_point accepts_paused_until{}, last_accept_warning{};

  // Filled by the ingest thread, drained by ours.
  std::mutex done_mu;
  std::vector<std::pair<std::uint64_t, ingest::Outcome>> done;

  Impl(ServerOptions o, ingest::Ingest& in, std::function<std::uint64_t(std::string_view)> ls,
       std::function<model::Priority(const model::Reading&)> po)
      : opt(std::move(o)), ingest(in), last_stored_seq(std::move(ls)), priority_of(std::move(po)) {}

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
    std::uint32_t position_interval_s = 0, sensor_interval_s = 0;
    std::promise<std::size_t> told;
  };
  std::vector<std::shared_ptr<SettingsRequest>> settings_requests;  // guarded by done_mu

  void push_pending_settings() {
    std::vector<std::shared_ptr<SettingsRequest>> todo;
    {
      std::lock_guard l(done_mu);
      todo.swap(settings_requests);
    }
    for (auto& r : todo) {
      std::size_t n = 0;
      epb_message m{};
      m.type = EPB_MSG_SETTINGS;
      m.m.settings.position_interval_s = r->position_interval_s;
      m.m.settings.sensor_interval_s = r->sensor_interval_s;
      for (auto& [id, s] : sessions) {
        if (!s.hello || s.closing || (!r->unit_id.empty() && s.unit_id != r->unit_id)) continue;
        send(s, m);
        ++n;
      }
      r->told.set_value(n);
    }
  }

  // --- bridge thread ---
  static std::string who(const Session& s) { return s.unit_id.empty() ? std::string("unknown unit") : s.unit_id; }
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

  Session& new_session(int fd, int port) {
    auto id = next_conn++;
    Session& s = sessions[id];
    s.fd = fd;
    s.port = port;
    s.opened = Clock::now();
    epb_decoder_init(&s.decoder);
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
      int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
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
      if (socket_sessions >= opt.max_units) {
        ++stats.connections_refused;
        close(fd);
        continue;
      }
      new_session(fd, -1);
      ++stats.connections_accepted;
    }
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
        p.retry_at = now + p.backoff;
        p.backoff = std::min(p.backoff * 2, opt.serial_retry_max);
        continue;
      }
      ++stats.serial_opens;
      log::info(kLog, "serial " + p.path + " open at " + std::to_string(opt.serial_baud) + " baud 8N1");
      p.last_error.clear();
      new_session(*fd, static_cast<int>(i));
    }
  }

  void send(Session& s, const epb_message& m) {
    std::uint8_t buf[EPB_MAX_ENCODED];
    std::size_t n = epb_encode(&m, buf, sizeof buf);
    if (n == 0) {
      log::error(kLog, "cannot encode message type " + std::to_string(m.type));
      return;
    }
    s.out.append(reinterpret_cast<const char*>(buf), n);
  }

  void send_nack(Session& s, std::uint64_t seq, epb_nack_reason reason) {
    epb_message m{};
    m.type = EPB_MSG_NACK;
    m.m.nack.seq = seq;
    m.m.nack.reason = static_cast<std::uint8_t>(reason);
    send(s, m);
    ++stats.nacks_sent;
  }

  // A resendable refusal of `seq` (7.4): nothing at or after it may be
  // acknowledged or taken as a duplicate until the unit goes back to it.
  static void hold(Session& s, std::uint64_t seq) {
    s.hold_seq = s.hold_seq == 0 ? seq : std::min(s.hold_seq, seq);
    s.last_submitted = std::min(s.last_submitted, seq - 1);
  }

  void on_hello(Session& s, const epb_hello& h) {
    std::string unit(h.unit_id, h.unit_id_len);
    std::string container(h.container_id, h.container_id_len);
    std::string why;
    if (unit.empty() || unit == opt.gateway_id) {
      why = "unit id \"" + unit + "\" is empty or the gateway's own";
    } else if (!container.empty() && !model::is_valid_iso6346(container)) {
      why = "container id \"" + container + "\" fails ISO 6346";
    }
    if (!why.empty()) {
      // Not attributable to a reading: NACK seq 0. The link stays open and
      // keeps whatever session it had; a corrected HELLO is welcome.
      ++stats.protocol_errors;
      ++stats.hellos_refused;
      log::warn(kLog, "HELLO on " + link_name(s) + " refused: " + why);
      send_nack(s, 0, EPB_NACK_MALFORMED);
      return;
    }
    // A (new) session: forget the link's in-flight state (7.1 step 5).
    // Outcomes still due for the old one carry the old generation.
    ++s.generation;
    s.hello = true;
    s.unit_id = std::move(unit);
    s.container_id = std::move(container);
    auto stored = last_stored_seq(s.unit_id);
    s.pending.clear();
    s.hold_seq = 0;
    s.reack = false;
    s.last_submitted = stored;
    s.last_acked = stored;
    s.ack_to_send = stored;
    epb_message m{};
    m.type = EPB_MSG_WELCOME;
    m.m.welcome.last_stored_seq = stored;
    m.m.welcome.window = opt.window;
    m.m.welcome.utc_ms = now_utc_ms();
    send(s, m);
    log::debug(kLog, link_name(s) + ": unit " + s.unit_id + " welcomed, resumes after seq " + std::to_string(stored));
  }

  void on_reading(std::uint64_t id, Session& s, const epb_reading& w) {
    ++stats.readings_received;
    if (!s.hello) {
      ++stats.protocol_errors;
      send_nack(s, w.seq, EPB_NACK_NO_HELLO);
      return;
    }
    if (s.hold_seq != 0) {
      // Readings pipelined behind a refused one: the unit goes back to it
      // (go-back-N) and sends them again.
      if (w.seq > s.hold_seq) {
        ++stats.readings_held_back;
        return;
      }
      s.hold_seq = 0;
    }
    if (w.seq <= s.last_submitted) {
      // A resend of something stored or on its way (its ACK was lost, or the
      // unit timed out): store nothing, acknowledge it once what came before
      // it is committed.
      ++stats.readings_duplicate;
      ++stats.duplicates_on_link;
      ++stats.readings_acked;
      if (s.pending.empty()) {
        s.ack_to_send = std::max({s.ack_to_send, s.last_acked, s.last_submitted});
        s.reack = true;
      }
      return;
    }
    if (s.pending.size() >= opt.window) {
      send_nack(s, w.seq, EPB_NACK_WINDOW);
      hold(s, w.seq);
      return;
    }
    auto r = from_wire(w, s.unit_id, s.container_id);
    if (!r) {
      ++stats.readings_rejected;
      log::warn(kLog, "reading " + std::to_string(w.seq) + " from " + s.unit_id + " rejected: " + r.error());
      send_nack(s, w.seq, EPB_NACK_MALFORMED);
      return;
    }
    auto priority = priority_of(*r);
    auto token = (id << kGenerationBits) | (s.generation & kGenerationMask);
    if (!ingest.submit(std::move(r).value(), priority, this, token)) {
      send_nack(s, w.seq, EPB_NACK_INTERNAL);
      hold(s, w.seq);
      return;
    }
    s.pending.push_back(w.seq);
    s.last_submitted = w.seq;
  }

  void on_message(std::uint64_t id, Session& s, const epb_message& m) {
    switch (m.type) {
      case EPB_MSG_HELLO: on_hello(s, m.m.hello); break;
      case EPB_MSG_READING: on_reading(id, s, m.m.reading); break;
      case EPB_MSG_PING: {
        epb_message pong{};
        pong.type = EPB_MSG_PONG;
        pong.m.ping = m.m.ping;
        send(s, pong);
        break;
      }
      case EPB_MSG_PONG: break;
      default:
        // Agent-to-unit messages have no business arriving here.
        ++stats.protocol_errors;
        log::debug(kLog, link_name(s) + " sent an agent-to-unit message (type " + std::to_string(m.type) + ")");
        break;
    }
  }

  void link_down(Session& s) {
    s.closing = true;
    s.out.clear();
    if (s.port >= 0) s.lost = true;
  }

  void read_from(std::uint64_t id, Session& s) {
    std::uint8_t buf[16384];
    while (!s.closing) {
      ssize_t n = s.port >= 0 ? ::read(s.fd, buf, sizeof buf) : recv(s.fd, buf, sizeof buf, 0);
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
      std::size_t off = 0;
      while (off < static_cast<std::size_t>(n)) {
        epb_message m;
        epb_status st;
        off += epb_decoder_feed(&s.decoder, buf + off, static_cast<std::size_t>(n) - off, &m, &st);
        if (st == EPB_OK) {
          ++stats.frames_ok;
          on_message(id, s, m);
        } else if (st != EPB_NEED_MORE) {
          ++stats.frame_errors[static_cast<std::size_t>(st)];
          if (st == EPB_ERR_PAYLOAD && m.type == EPB_MSG_READING && m.m.reading.seq != 0) {
            // Intact frame, invalid content: tell the unit not to resend it.
            ++stats.readings_rejected;
            send_nack(s, m.m.reading.seq, EPB_NACK_MALFORMED);
          }
          log::debug(kLog, "frame from " + link_name(s) + " dropped: " + epb_status_name(st));
        }
      }
    }
  }

  void flush(std::uint64_t id, Session& s) {
    if (s.ack_to_send > s.last_acked || (s.reack && s.ack_to_send > 0)) {
      epb_message m{};
      m.type = EPB_MSG_ACK;
      m.m.ack.seq = std::max(s.ack_to_send, s.last_acked);
      send(s, m);
      s.last_acked = m.m.ack.seq;
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
      log::warn(kLog, link_name(s) + " does not read its acks; dropping the link");
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
    epoll_ctl(epfd, EPOLL_CTL_DEL, s.fd, nullptr);
    close(s.fd);
    if (s.port >= 0) {
      Port& p = ports[static_cast<std::size_t>(s.port)];
      p.session = 0;
      auto now = Clock::now();
      if (now - s.opened >= kSerialStableAfter) p.backoff = opt.serial_retry_min;
      p.retry_at = now + p.backoff;
      p.backoff = std::min(p.backoff * 2, opt.serial_retry_max);
      if (s.lost) {
        ++stats.serial_link_losses;
        log::warn(kLog, "serial " + p.path + " lost (unit " + who(s) + "); reopening");
      }
    } else {
      --socket_sessions;
    }
    sessions.erase(it);
    --stats.connections_active;
  }

  void drain_completions() {
    std::vector<std::pair<std::uint64_t, ingest::Outcome>> batch;
    {
      std::lock_guard l(done_mu);
      batch.swap(done);
    }
    for (auto [token, outcome] : batch) {
      auto it = sessions.find(token >> kGenerationBits);
      // Link gone or session restarted: the unit resends after its WELCOME.
      if (it == sessions.end() || (it->second.generation & kGenerationMask) != (token & kGenerationMask)) continue;
      Session& s = it->second;
      if (s.pending.empty()) continue;
      auto seq = s.pending.front();
      s.pending.pop_front();
      if (outcome == ingest::Outcome::kRefused || outcome == ingest::Outcome::kFailed) {
        // Backpressure or a store error: the unit keeps it and resends later.
        // The store holds this unit's later readings back too, so no ACK can
        // pass over it.
        send_nack(s, seq, outcome == ingest::Outcome::kRefused ? EPB_NACK_STORE_FULL : EPB_NACK_INTERNAL);
        hold(s, seq);
        continue;
      }
      if (outcome == ingest::Outcome::kDuplicate) ++stats.readings_duplicate;
      ++stats.readings_acked;
      if (s.hold_seq != 0 && seq >= s.hold_seq) continue;  // committed, but never ACK past a hole
      s.ack_to_send = std::max(s.ack_to_send, seq);
    }
  }

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
      bool paused = ingest.queued() > ingest.high_water();
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
          if (!paused && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) read_from(tag, it->second);
        }
      }
      if (paused) {
        ++stats.backpressure_pauses;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      drain_completions();
      push_pending_settings();
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

Server::Server(ServerOptions options, ingest::Ingest& ingest,
               std::function<std::uint64_t(std::string_view)> last_stored_seq,
               std::function<model::Priority(const model::Reading&)> priority_of)
    : impl_(std::make_unique<Impl>(std::move(options), ingest, std::move(last_stored_seq), std::move(priority_of))) {}

Server::~Server() {
  stop();
  for (int fd : {impl_->unix_fd, impl_->tcp_fd, impl_->wake_fd, impl_->epfd}) {
    if (fd >= 0) close(fd);
  }
  if (impl_->unix_fd >= 0) unlink(impl_->opt.unix_socket.c_str());
}

Status Server::start() {
  auto& d = *impl_;
  if (!d.opt.serial_ports.empty()) {
    if (!serial::speed_for(d.opt.serial_baud)) {
      return Error{"bridge: serial baud rate " + std::to_string(d.opt.serial_baud) +
                   " is not a standard rate (50 .. 4000000, e.g. 9600, 115200, 921600)"};
    }
    std::set<std::string> seen;
    for (const auto& path : d.opt.serial_ports) {
      if (!seen.insert(path).second) return Error{"bridge: serial port " + path + " is listed twice"};
      Impl::Port p;
      p.path = path;
      p.backoff = d.opt.serial_retry_min;
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
  d.thread = std::thread([this] { impl_->run(); });
  return ok_status();
}

void Server::stop() {
  auto& d = *impl_;
  if (d.stopped) return;
  d.stopped = true;
  d.stopping = true;
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
                      std::to_string(st.readings_acked.load()) + " acknowledged, " +
                      std::to_string(st.readings_duplicate.load()) + " duplicates, " +
                      std::to_string(st.readings_rejected.load()) + " rejected, " +
                      std::to_string(st.nacks_sent.load()) + " nacks, " + std::to_string(frame_errors) +
                      " frame errors, " + std::to_string(st.protocol_errors.load()) + " protocol errors");
}

Result<std::size_t> Server::push_settings(const std::string& unit_id, std::uint32_t position_interval_s,
                                          std::uint32_t sensor_interval_s) {
  auto& d = *impl_;
  if (d.stopping || !d.thread.joinable()) return Error{"the bridge is not running"};
  auto req = std::make_shared<Impl::SettingsRequest>();
  req->unit_id = unit_id;
  req->position_interval_s = position_interval_s;
  req->sensor_interval_s = sensor_interval_s;
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

std::uint16_t Server::tcp_port() const { return impl_->tcp_port; }
const ServerStats& Server::stats() const { return impl_->stats; }

}  // namespace eport::bridge
