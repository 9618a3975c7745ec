// Bridge server: an epoll loop over the listeners, every unit connection and
// an eventfd that the ingest thread signals when readings are committed.
// Per connection: a frame decoder, the unit's identity after HELLO, the seqs
// submitted and not yet committed (in order), and an output buffer.
#include "eport/bridge/server.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "eport/bridge/convert.h"
#include "eport/bridge/net.h"
#include "eport/log/log.h"

namespace eport::bridge {

namespace {
constexpr std::string_view kLog = "bridge";
constexpr std::uint64_t kListenUnixTag = 1, kListenTcpTag = 2, kWakeTag = 3, kFirstConnTag = 16;

std::uint64_t now_utc_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}
}  // namespace

struct Server::Impl : public ingest::CompletionSink {
  struct Session {
    int fd = -1;
    epb_decoder decoder;
    bool hello = false;
    std::string unit_id, container_id;
    std::uint64_t last_submitted = 0;     // highest seq handed to ingest
    std::deque<std::uint64_t> pending;    // seqs submitted, awaiting commit, in order
    std::uint64_t ack_to_send = 0;        // highest committed seq not yet acked
    std::uint64_t last_acked = 0;
    std::string out;
    bool want_write = false;
    bool closing = false;  // close once the output is flushed
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
  std::unordered_map<std::uint64_t, Session> sessions;  // by connection id (epoll tag)
  std::uint64_t next_conn = kFirstConnTag;

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
  void batch_done() override {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = write(wake_fd, &one, sizeof one);
  }

  // --- bridge thread ---
  void add_fd(int fd, std::uint64_t tag, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = tag;
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
  }

  void accept_all(int listen_fd) {
    while (true) {
      int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          log::warn(kLog, std::string("accept: ") + std::strerror(errno));
        }
        return;
      }
      if (sessions.size() >= opt.max_units) {
        ++stats.connections_refused;
        close(fd);
        continue;
      }
      auto id = next_conn++;
      Session& s = sessions[id];
      s.fd = fd;
      epb_decoder_init(&s.decoder);
      add_fd(fd, id, EPOLLIN | EPOLLRDHUP);
      ++stats.connections_accepted;
      ++stats.connections_active;
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

  void on_hello(Session& s, const epb_hello& h) {
    std::string unit(h.unit_id, h.unit_id_len);
    std::string container(h.container_id, h.container_id_len);
    if (unit.empty() || unit == opt.gateway_id) {
      ++stats.protocol_errors;
      log::warn(kLog, "HELLO refused: unit id \"" + unit + "\" is empty or the gateway's own");
      send_nack(s, 0, EPB_NACK_MALFORMED);
      s.closing = true;
      return;
    }
    if (!container.empty() && !model::is_valid_iso6346(container)) {
      ++stats.protocol_errors;
      log::warn(kLog, "HELLO from " + unit + " refused: container id \"" + container + "\" fails ISO 6346");
      send_nack(s, 0, EPB_NACK_MALFORMED);
      s.closing = true;
      return;
    }
    s.hello = true;
    s.unit_id = std::move(unit);
    s.container_id = std::move(container);
    auto stored = last_stored_seq(s.unit_id);
    s.last_submitted = stored;
    s.last_acked = stored;
    epb_message m{};
    m.type = EPB_MSG_WELCOME;
    m.m.welcome.last_stored_seq = stored;
    m.m.welcome.window = opt.window;
    m.m.welcome.utc_ms = now_utc_ms();
    send(s, m);
    log::debug(kLog, "unit " + s.unit_id + " connected, resumes after seq " + std::to_string(stored));
  }

  void on_reading(std::uint64_t id, Session& s, const epb_reading& w) {
    ++stats.readings_received;
    if (!s.hello) {
      ++stats.protocol_errors;
      send_nack(s, w.seq, EPB_NACK_NO_HELLO);
      return;
    }
    if (s.pending.size() >= opt.window) {
      send_nack(s, w.seq, EPB_NACK_WINDOW);
      return;
    }
    auto r = from_wire(w, s.unit_id, s.container_id);
    if (!r) {
      ++stats.readings_rejected;
      log::warn(kLog, "reading " + std::to_string(w.seq) + " from " + s.unit_id + " rejected: " + r.error());
      send_nack(s, w.seq, EPB_NACK_MALFORMED);
      return;
    }
    if (w.seq <= s.last_submitted) {
      // A resend of something already stored or on its way: acknowledge it
      // once what came before it is committed.
      ++stats.readings_duplicate;
      if (s.pending.empty()) {
        s.ack_to_send = std::max(s.ack_to_send, std::max(s.last_acked, w.seq));
      }
      return;
    }
    auto priority = priority_of(*r);
    if (!ingest.submit(std::move(r).value(), priority, this, id)) {
      send_nack(s, w.seq, EPB_NACK_INTERNAL);
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
        break;
    }
  }

  void read_from(std::uint64_t id, Session& s) {
    std::uint8_t buf[16384];
    while (!s.closing) {
      ssize_t n = recv(s.fd, buf, sizeof buf, 0);
      if (n == 0) {
        s.closing = true;
        s.out.clear();
        return;
      }
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          s.closing = true;
          s.out.clear();
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
          log::debug(kLog, "frame from " + (s.unit_id.empty() ? std::string("unknown unit") : s.unit_id) +
                               " dropped: " + epb_status_name(st));
        }
      }
    }
  }

  void flush(std::uint64_t id, Session& s) {
    if (s.ack_to_send > s.last_acked) {
      epb_message m{};
      m.type = EPB_MSG_ACK;
      m.m.ack.seq = s.ack_to_send;
      send(s, m);
      s.last_acked = s.ack_to_send;
    }
    while (!s.out.empty()) {
      ssize_t n = ::send(s.fd, s.out.data(), s.out.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        s.closing = true;
        s.out.clear();
        break;
      }
      s.out.erase(0, static_cast<std::size_t>(n));
    }
    if (s.out.size() > opt.max_output_bytes) {
      log::warn(kLog, "unit " + s.unit_id + " does not read its acks; dropping the connection");
      s.closing = true;
      s.out.clear();
    }
    bool want = !s.out.empty();
    if (want != s.want_write) {
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0u);
      ev.data.u64 = id;
      epoll_ctl(epfd, EPOLL_CTL_MOD, s.fd, &ev);
      s.want_write = want;
    }
  }

  void close_session(std::uint64_t id) {
    auto it = sessions.find(id);
    if (it == sessions.end()) return;
    epoll_ctl(epfd, EPOLL_CTL_DEL, it->second.fd, nullptr);
    close(it->second.fd);
    sessions.erase(it);
    --stats.connections_active;
  }

  void drain_completions() {
    std::vector<std::pair<std::uint64_t, ingest::Outcome>> batch;
    {
      std::lock_guard l(done_mu);
      batch.swap(done);
    }
    for (auto [id, outcome] : batch) {
      auto it = sessions.find(id);
      if (it == sessions.end() || it->second.pending.empty()) continue;  // unit gone: it resends on reconnect
      Session& s = it->second;
      auto seq = s.pending.front();
      s.pending.pop_front();
      if (outcome == ingest::Outcome::kRefused) {
        // Backpressure: the unit keeps it and resends later. The store holds
        // this unit's later readings back too, so no ACK can pass over it.
        send_nack(s, seq, EPB_NACK_STORE_FULL);
        continue;
      }
      if (outcome == ingest::Outcome::kFailed) {
        // Go-back-N: the unit reconnects and resumes from last_stored_seq.
        send_nack(s, seq, EPB_NACK_INTERNAL);
        s.closing = true;
        continue;
      }
      if (outcome == ingest::Outcome::kDuplicate) ++stats.readings_duplicate;
      ++stats.readings_acked;
      s.ack_to_send = std::max(s.ack_to_send, seq);
    }
  }

  void run() {
    std::vector<epoll_event> events(256);
    while (!stopping) {
      int n = epoll_wait(epfd, events.data(), static_cast<int>(events.size()), 200);
      if (n < 0 && errno != EINTR) {
        log::error(kLog, std::string("epoll_wait: ") + std::strerror(errno));
        break;
      }
      // Backpressure: with enough waiting for a commit, leave unit input in
      // the socket buffers (units then stall at their window) until ingest
      // catches up; acks keep flowing meanwhile.
      bool paused = ingest.queued() > ingest.high_water();
      for (int i = 0; i < n; ++i) {
        auto tag = events[static_cast<std::size_t>(i)].data.u64;
        auto ev = events[static_cast<std::size_t>(i)].events;
        if (tag == kListenUnixTag) {
          accept_all(unix_fd);
        } else if (tag == kListenTcpTag) {
          accept_all(tcp_fd);
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
      std::vector<std::uint64_t> to_close;
      for (auto& [id, s] : sessions) {
        flush(id, s);
        if (s.closing && s.out.empty()) to_close.push_back(id);
      }
      for (auto id : to_close) close_session(id);
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
  if (!impl_->opt.unix_socket.empty()) unlink(impl_->opt.unix_socket.c_str());
}

Status Server::start() {
  auto& d = *impl_;
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
  d.thread = std::thread([this] { impl_->run(); });
  return ok_status();
}

void Server::stop() {
  auto& d = *impl_;
  if (d.stopping.exchange(true)) return;
  if (d.thread.joinable()) d.thread.join();
  // Send the acks of whatever was committed, so units can free it.
  d.drain_completions();
  std::vector<std::uint64_t> ids;
  for (auto& [id, s] : d.sessions) {
    d.flush(id, s);
    ids.push_back(id);
  }
  for (auto id : ids) d.close_session(id);
}

std::uint16_t Server::tcp_port() const { return impl_->tcp_port; }
const ServerStats& Server::stats() const { return impl_->stats; }

}  // namespace eport::bridge
