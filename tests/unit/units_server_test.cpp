// [units] The agent's bridge server end to end in one process: a real Server
// with Ingest and a temp-file Outbox, units on a real UNIX socket or a pty
// pair. Malformed input of every kind gets its documented NACK or is dropped
// and counted, and the next good frame on the same link still works; lost
// ACKs are answered again; serial ports survive missing and vanished devices.
#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <map>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <thread>
#include <vector>

#include "eport/units/convert.h"
#include "eport/units/net.h"
#include "eport/units/serial.h"
#include "eport/tty/tty.h"
#include "eport/units/server.h"
#include "evidence_openssl.hpp"
#include <epb/evidence.h>
#include "eport/codec/codec.h"
#include "eport/model/clock.h"
#include "eport/ingest/ingest.h"
#include "eport/store/outbox.h"
#include <sqlite3.h>
#include "test_util.h"

using namespace eport;
using namespace std::chrono_literals;

namespace {

constexpr const char* kContainer = "CSQU3054383";  // valid ISO 6346
constexpr const char* kGateway = "gw-test-01";

// An agent in miniature: outbox, ingest, bridge server.
struct Agent {
  test::TempDir dir;
  std::unique_ptr<store::Outbox> outbox;
  std::unique_ptr<ingest::Ingest> ingest;
  std::unique_ptr<units::Server> server;
  std::string socket_path;

  explicit Agent(units::ServerOptions so = {}, ingest::IngestOptions io = {}, store::OutboxOptions oo = {}) {
    oo.path = dir.file("outbox.db");
    oo.min_free_bytes = 0;
    auto ob = store::Outbox::open(oo);
    REQUIRE(ob.ok());
    outbox = std::move(ob).value();
    ingest = std::make_unique<ingest::Ingest>(io, *outbox, nullptr);
    socket_path = dir.file("bridge.sock");
    // Every test server listens on its own socket, never the production path.
    if (so.unix_socket.empty() || so.unix_socket == units::ServerOptions{}.unix_socket) so.unix_socket = socket_path;
    so.gateway_id = kGateway;
    server = std::make_unique<units::Server>(
        so, *ingest, [this](std::string_view unit) { return outbox->last_seq(unit); },
        [](const model::Reading& r) { return model::default_priority(r); });
    ingest->start();
    auto st = server->start();
    REQUIRE(st.ok());
  }
  ~Agent() {
    server->stop();
    ingest->stop();
  }
  std::uint64_t rows() { return outbox->stats().total_rows(); }
  const units::ServerStats& stats() { return server->stats(); }
};

// One unit's end of a link: a socket or a pty master.
struct Link {
  int fd = -1;
  bool tty = false;
  epb_decoder dec;
  std::deque<epb_message> got;
  epb_auth auth{};      // the unit's side of an authenticated session
  bool sealed = false;  // send sealed (after AUTH)

  explicit Link(int f, bool is_tty = false) : fd(f), tty(is_tty) {
    epb_decoder_init(&dec);
    dec.auth = &auth;
  }
  static Link connect(const std::string& socket_path) {
    auto fd = units::net::connect_endpoint("unix:" + socket_path);
    REQUIRE(fd.ok());
    return Link(*fd);
  }
  Link(Link&& o) noexcept : fd(o.fd), tty(o.tty), dec(o.dec), got(std::move(o.got)), auth(o.auth), sealed(o.sealed) {
    o.fd = -1;
    dec.auth = &auth;
  }
  ~Link() {
    if (fd >= 0) close(fd);
  }

  void raw(const std::vector<std::uint8_t>& bytes) {
    std::size_t off = 0;
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (off < bytes.size()) {
      ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
      if (n > 0) {
        off += static_cast<std::size_t>(n);
      } else {
        REQUIRE(std::chrono::steady_clock::now() < deadline);
        std::this_thread::sleep_for(1ms);
      }
    }
  }
  // m as a frame: sealed once the link is authenticated (HELLO and AUTH never are).
  std::vector<std::uint8_t> frame(const epb_message& m) {
    std::vector<std::uint8_t> buf(EPB_MAX_ENCODED);
    auto n = sealed && m.type != EPB_MSG_HELLO && m.type != EPB_MSG_AUTH ? epb_encode_sealed(&m, &auth, buf.data(), buf.size())
                                                                         : epb_encode(&m, buf.data(), buf.size());
    REQUIRE(n > 0);
    buf.resize(n);
    return buf;
  }
  void send(const epb_message& m) { raw(frame(m)); }
  // The next message from the agent, or nullopt after the timeout.
  std::optional<epb_message> next(std::chrono::milliseconds timeout = 3000ms) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (got.empty()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      std::uint8_t buf[4096];
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        return std::nullopt;
      }
      std::size_t off = 0;
      while (off < static_cast<std::size_t>(n)) {
        epb_message m;
        epb_status st;
        off += epb_decoder_feed(&dec, buf + off, static_cast<std::size_t>(n) - off, &m, &st);
        if (st == EPB_OK) got.push_back(m);
      }
    }
    auto m = got.front();
    got.pop_front();
    return m;
  }
  epb_message expect(epb_msg_type type) {
    auto m = next();
    REQUIRE(m.has_value());
    REQUIRE(static_cast<int>(m->type) == static_cast<int>(type));
    return *m;
  }
  // Sends a PING and hands everything before its PONG to `seen`.
  template <class F>
  void expect_silence_allowing(F seen) {
    epb_message ping{};
    ping.type = EPB_MSG_PING;
    ping.m.ping.nonce = 0xBEEF;
    send(ping);
    while (true) {
      auto m = next();
      REQUIRE(m.has_value());
      if (m->type == EPB_MSG_PONG && m->m.ping.nonce == 0xBEEFu) return;
      seen(*m);
    }
  }
  // Proves that the agent answered nothing else before: PONG comes next.
  void expect_silence() {
    epb_message ping{};
    ping.type = EPB_MSG_PING;
    ping.m.ping.nonce = 0xC0FFEE;
    send(ping);
    auto m = expect(EPB_MSG_PONG);
    REQUIRE(m.m.ping.nonce == 0xC0FFEEu);
  }
};

epb_message hello(const std::string& unit, const std::string& container = kContainer, std::uint64_t next_seq = 1) {
  epb_message m{};
  m.type = EPB_MSG_HELLO;
  auto& h = m.m.hello;
  h.unit_id_len = static_cast<std::uint8_t>(unit.size());
  std::memcpy(h.unit_id, unit.data(), unit.size());
  h.container_id_len = static_cast<std::uint8_t>(container.size());
  std::memcpy(h.container_id, container.data(), container.size());
  h.firmware_len = 3;
  std::memcpy(h.firmware, "1.0", 3);
  h.next_seq = next_seq;
  h.oldest_seq = next_seq;  // holds nothing yet
  return m;
}

epb_message reading(std::uint64_t seq) {
  epb_message m{};
  m.type = EPB_MSG_READING;
  auto& r = m.m.reading;
  r.seq = seq;
  r.time_utc_ms = 1795000000000ull + seq;
  r.kind = EPB_READING_SENSOR;
  r.u.sensor.present = EPB_SENSOR_TEMPERATURE | EPB_SENSOR_BATTERY_PCT;
  r.u.sensor.temperature_centi_c = -1800;
  r.u.sensor.battery_pct = 90;
  return m;
}

// A frame around any body: COBS, then 0x00. With crc=true the body gets a
// correct CRC-32C appended first, so content errors can be tested alone.
std::vector<std::uint8_t> frame_of(std::vector<std::uint8_t> body, bool crc = true) {
  if (crc) {
    auto c = epb_crc32c(body.data(), body.size());
    for (int i = 0; i < 4; ++i) body.push_back(static_cast<std::uint8_t>(c >> (8 * i)));
  }
  std::vector<std::uint8_t> out{0};
  std::size_t code_at = 0;
  std::uint8_t code = 1;
  for (auto b : body) {
    if (b == 0) {
      out[code_at] = code;
      code_at = out.size();
      out.push_back(0);
      code = 1;
    } else {
      out.push_back(b);
      if (++code == 0xFF) {
        out[code_at] = code;
        code_at = out.size();
        out.push_back(0);
        code = 1;
      }
    }
  }
  out[code_at] = code;
  out.push_back(0);
  return out;
}

std::vector<std::uint8_t> encoded(const epb_message& m) {
  std::vector<std::uint8_t> buf(EPB_MAX_ENCODED);
  buf.resize(epb_encode(&m, buf.data(), buf.size()));
  return buf;
}

std::uint64_t frame_errors(const units::ServerStats& s, epb_status st) {
  return s.frame_errors[static_cast<std::size_t>(st)].load();
}

template <class F>
void eventually(F f, std::chrono::milliseconds timeout = 5000ms) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!f()) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(10ms);
  }
}

}  // namespace

TEST_CASE("malformed input is answered as documented and the link keeps working", "[units]") {
  Agent agent;
  struct Case {
    const char* name;
    bool hello_first;                       // the bad input comes inside a session
    std::vector<std::uint8_t> bad;
    std::optional<epb_msg_type> answer;     // NACK, or nothing
    std::uint8_t nack_reason = 0;
    std::uint64_t nack_seq = 0;
    std::function<std::uint64_t(const units::ServerStats&)> counter;
    std::uint64_t next_good = 1;  // the seq the next good reading must have
  };
  auto valid_reading = encoded(reading(7));
  constexpr std::uint8_t v = EPB_PROTOCOL_VERSION;
  // A PING body whose CRC does not match.
  auto bad_crc = frame_of({v, EPB_MSG_PING, 1, 2, 3, 4, 0xde, 0xad, 0xbe, 0xef}, false);
  std::vector<std::uint8_t> oversized(300, 0x42);
  oversized.push_back(0);
  std::vector<std::uint8_t> garbage = {0x13, 0x37, 0xde, 0xad, 0xbe, 0xef, 0x99, 0x00};
  auto welcome = [] {
    epb_message m{};
    m.type = EPB_MSG_WELCOME;
    m.m.welcome.window = 4;
    m.m.welcome.utc_ms = 1;
    return encoded(m);
  }();
  // READING of an unknown kind (9), intact CRC, the seq expected next (1):
  // NACK MALFORMED with its seq, recorded as a gap; the next good one is 2.
  std::vector<std::uint8_t> bad_kind = {v, EPB_MSG_READING, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9};
  // READING with seq 0, otherwise fine: malformed but not attributable.
  std::vector<std::uint8_t> seq0 = {v, EPB_MSG_READING, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 1};
  // READING with seq 2^53, one past EPB_SEQ_MAX: not attributable either.
  std::vector<std::uint8_t> seq_huge = {v, EPB_MSG_READING, 0, 0, 0, 0, 0, 0, 0x20, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 1};

  std::vector<Case> cases = {
      {"garbage bytes", true, garbage, std::nullopt, 0, 0,
       [](auto& s) { return frame_errors(s, EPB_ERR_COBS) + frame_errors(s, EPB_ERR_CRC) + frame_errors(s, EPB_ERR_TRUNCATED); }},
      {"oversized frame", true, oversized, std::nullopt, 0, 0, [](auto& s) { return frame_errors(s, EPB_ERR_OVERSIZE); }},
      {"bad CRC", true, bad_crc, std::nullopt, 0, 0, [](auto& s) { return frame_errors(s, EPB_ERR_CRC); }},
      {"truncated body", true, frame_of({v, 3, 0}, false), std::nullopt, 0, 0,
       [](auto& s) { return frame_errors(s, EPB_ERR_TRUNCATED); }},
      {"unknown version", true, frame_of({3, EPB_MSG_PING, 1, 2, 3, 4}), std::nullopt, 0, 0,
       [](auto& s) { return frame_errors(s, EPB_ERR_VERSION); }},
      {"unknown type", true, frame_of({v, 77, 1, 2, 3, 4}), std::nullopt, 0, 0,
       [](auto& s) { return frame_errors(s, EPB_ERR_TYPE); }},
      {"reading of unknown kind", true, frame_of(bad_kind), EPB_MSG_NACK, EPB_NACK_MALFORMED, 1,
       [](auto& s) { return s.refused_malformed.load(); }, 2},
      {"reading with seq 0", true, frame_of(seq0), EPB_MSG_NACK, EPB_NACK_MALFORMED, 0,
       [](auto& s) { return s.refused_malformed.load(); }},
      {"reading with seq 2^53", true, frame_of(seq_huge), EPB_MSG_NACK, EPB_NACK_MALFORMED, 0,
       [](auto& s) { return s.refused_malformed.load(); }},
      {"reading ahead of the seq expected", true, encoded(reading(9)), EPB_MSG_NACK, EPB_NACK_OUT_OF_ORDER, 1,
       [](auto& s) { return s.refused_out_of_order.load(); }},
      {"agent-to-unit message", true, welcome, std::nullopt, 0, 0, [](auto& s) { return s.protocol_errors.load(); }},
      {"reading before HELLO", false, valid_reading, EPB_MSG_NACK, EPB_NACK_NO_HELLO, 7,
       [](auto& s) { return s.protocol_errors.load(); }},
      {"HELLO with a bad ISO 6346 check digit", false, encoded(hello("tcu-1", "CSQU3054384")), EPB_MSG_NACK,
       EPB_NACK_CONTAINER_ID, 0, [](auto& s) { return s.hellos_refused_container_id.load(); }},
      {"HELLO with a lower-case container id", false, encoded(hello("tcu-1", "csqu3054383")), EPB_MSG_NACK,
       EPB_NACK_CONTAINER_ID, 0, [](auto& s) { return s.hellos_refused_container_id.load(); }},
      {"HELLO with a container of category X", false, encoded(hello("tcu-1", "CSQX3054383")), EPB_MSG_NACK,
       EPB_NACK_CONTAINER_ID, 0, [](auto& s) { return s.hellos_refused_container_id.load(); }},
      {"HELLO with the gateway's own id", false, encoded(hello(kGateway)), EPB_MSG_NACK, EPB_NACK_UNIT_ID, 0,
       [](auto& s) { return s.hellos_refused_unit_id.load(); }},
      {"HELLO with a '.' in the unit id", false, encoded(hello("tcu.1")), EPB_MSG_NACK, EPB_NACK_UNIT_ID, 0,
       [](auto& s) { return s.hellos_refused_unit_id.load(); }},
      {"HELLO with a space in the unit id", false, encoded(hello("tcu 1")), EPB_MSG_NACK, EPB_NACK_UNIT_ID, 0,
       [](auto& s) { return s.hellos_refused_unit_id.load(); }},
      {"HELLO with a '#' in the unit id", false, encoded(hello("tcu#1")), EPB_MSG_NACK, EPB_NACK_UNIT_ID, 0,
       [](auto& s) { return s.hellos_refused_unit_id.load(); }},
      {"HELLO with an empty unit id", false,
       frame_of({v, EPB_MSG_HELLO, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}), EPB_MSG_NACK,
       EPB_NACK_MALFORMED, 0, [](auto& s) { return s.hellos_malformed.load(); }},
      {"HELLO whose oldest_seq is above its next_seq", false,
       frame_of({v, EPB_MSG_HELLO, 1, 'u', 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0}), EPB_MSG_NACK,
       EPB_NACK_MALFORMED, 0, [](auto& s) { return s.hellos_malformed.load(); }},
      {"empty frames", true, {0, 0, 0}, std::nullopt, 0, 0, [](auto&) { return std::uint64_t{1}; }},
  };

  int unit = 0;
  for (const auto& c : cases) {
    SECTION(c.name) {
      std::string id = "tcu-m" + std::to_string(unit++);
      auto link = Link::connect(agent.socket_path);
      if (c.hello_first) {
        link.send(hello(id));
        link.expect(EPB_MSG_WELCOME);
      }
      auto before = c.counter(agent.stats());
      link.raw(c.bad);
      if (c.answer) {
        auto m = link.expect(*c.answer);
        CHECK(m.m.nack.reason == c.nack_reason);
        CHECK(m.m.nack.seq == c.nack_seq);
      }
      link.expect_silence();
      if (std::string(c.name) != "empty frames") CHECK(c.counter(agent.stats()) == before + 1);
      // The next good frames on the same link work.
      if (!c.hello_first) {
        link.send(hello(id));
        link.expect(EPB_MSG_WELCOME);
      }
      link.send(reading(c.next_good));
      auto ack = link.expect(EPB_MSG_ACK);
      CHECK(ack.m.ack.seq == c.next_good);
    }
  }
}

TEST_CASE("a resent reading whose ACK was lost is stored once and acknowledged again", "[units]") {
  Agent agent;
  auto link = Link::connect(agent.socket_path);
  link.send(hello("tcu-resend"));
  CHECK(link.expect(EPB_MSG_WELCOME).m.welcome.last_stored_seq == 0);
  for (std::uint64_t s = 1; s <= 3; ++s) link.send(reading(s));
  std::uint64_t acked = 0;
  while (acked < 3) acked = link.expect(EPB_MSG_ACK).m.ack.seq;
  // The unit never saw that ACK: after its timeout it goes back to 1.
  for (std::uint64_t s = 1; s <= 3; ++s) link.send(reading(s));
  CHECK(link.expect(EPB_MSG_ACK).m.ack.seq == 3);
  // The resends may arrive in more than one read, each answered by the same
  // cumulative ACK; anything else before the PONG is wrong.
  epb_message ping{};
  ping.type = EPB_MSG_PING;
  ping.m.ping.nonce = 0xC0FFEE;
  link.send(ping);
  while (true) {
    auto m = link.next();
    REQUIRE(m.has_value());
    if (m->type == EPB_MSG_PONG) break;
    REQUIRE(static_cast<int>(m->type) == static_cast<int>(EPB_MSG_ACK));
    CHECK(m->m.ack.seq == 3);
  }
  CHECK(agent.rows() == 3);
  CHECK(agent.stats().duplicates_on_link.load() == 3);
  CHECK(agent.stats().readings_duplicate.load() == 3);

  // A new link: WELCOME says where to resume, resends are still stored once.
  auto again = Link::connect(agent.socket_path);
  again.send(hello("tcu-resend"));
  CHECK(again.expect(EPB_MSG_WELCOME).m.welcome.last_stored_seq == 3);
  again.send(reading(3));
  again.send(reading(4));
  std::uint64_t last = 0;
  while (last < 4) last = again.expect(EPB_MSG_ACK).m.ack.seq;
  CHECK(agent.rows() == 4);
}

TEST_CASE("over the window: NACK WINDOW, later readings held back until the unit goes back", "[units]") {
  units::ServerOptions so;
  so.window = 2;
  ingest::IngestOptions io;
  io.commit_interval = 400ms;  // readings wait for their commit: the window fills
  Agent agent(so, io);
  auto link = Link::connect(agent.socket_path);
  link.send(hello("tcu-window"));
  link.expect(EPB_MSG_WELCOME);
  for (std::uint64_t s = 1; s <= 4; ++s) link.send(reading(s));
  // 3 is refused, and 4 behind it gets the same NACK: resend from 3.
  for (int i = 0; i < 2; ++i) {
    auto nack = link.expect(EPB_MSG_NACK);
    CHECK(nack.m.nack.seq == 3);
    CHECK(nack.m.nack.reason == EPB_NACK_WINDOW);
  }
  CHECK(link.expect(EPB_MSG_ACK).m.ack.seq == 2);  // never past the refused 3
  CHECK(agent.stats().refused_window.load() == 2);
  link.send(reading(3));
  link.send(reading(4));
  std::uint64_t last = 0;
  while (last < 4) last = link.expect(EPB_MSG_ACK).m.ack.seq;
  CHECK(agent.rows() == 4);
}

TEST_CASE("a store that refuses: NACK STORE_FULL and never an ACK past it", "[units]") {
  store::OutboxOptions oo;
  oo.max_bytes = 1;  // nothing fits
  oo.when_full = store::WhenFull::kRefuse;
  Agent agent({}, {}, oo);
  auto link = Link::connect(agent.socket_path);
  link.send(hello("tcu-full"));
  link.expect(EPB_MSG_WELCOME);
  link.send(reading(1));
  auto nack = link.expect(EPB_MSG_NACK);
  CHECK(nack.m.nack.seq == 1);
  CHECK(nack.m.nack.reason == EPB_NACK_STORE_FULL);
  link.send(reading(2));  // pipelined behind the refused one: the same NACK again
  nack = link.expect(EPB_MSG_NACK);
  CHECK(nack.m.nack.seq == 1);
  CHECK(nack.m.nack.reason == EPB_NACK_STORE_FULL);
  link.expect_silence();
  link.send(reading(1));  // the resend is tried again, and refused again
  nack = link.expect(EPB_MSG_NACK);
  CHECK(nack.m.nack.seq == 1);
  link.expect_silence();
  CHECK(agent.rows() == 0);
}

TEST_CASE("a new HELLO restarts the session; a different unit on the link starts clean", "[units]") {
  Agent agent;
  auto link = Link::connect(agent.socket_path);
  link.send(hello("tcu-a", kContainer, 5));  // a unit first seen here at seq 5
  CHECK(link.expect(EPB_MSG_WELCOME).m.welcome.last_stored_seq == 4);
  link.send(reading(5));
  CHECK(link.expect(EPB_MSG_ACK).m.ack.seq == 5);
  link.send(hello("tcu-b"));
  CHECK(link.expect(EPB_MSG_WELCOME).m.welcome.last_stored_seq == 0);
  link.send(reading(1));
  CHECK(link.expect(EPB_MSG_ACK).m.ack.seq == 1);  // not tcu-a's 5
  link.send(hello("tcu-a"));
  CHECK(link.expect(EPB_MSG_WELCOME).m.welcome.last_stored_seq == 5);
}

TEST_CASE("a serial unit on a pty pair: handshake, readings, line lost and found again", "[units][serial]") {
  test::TempDir links;
  auto tty_link = links.file("ttyUSB0");  // a stable name, as udev gives, pointing at the pty
  auto pair = eport::tty::open_pty_pair();
  REQUIRE(pair.ok());
  std::filesystem::create_symlink(pair->slave_path, tty_link);

  units::ServerOptions so;
  so.serial_ports = {tty_link, links.file("ttyUSB9")};  // the second one is missing
  so.serial_baud = 4000000;
  so.serial_retry_min = 20ms;
  so.serial_retry_max = 100ms;
  Agent agent(so);
  CHECK(agent.stats().serial_opens.load() == 1);
  CHECK(agent.stats().serial_open_failures.load() >= 1);

  {
    Link unit(pair->master, true);
    unit.raw({0});
    unit.send(hello("tcu-serial"));
    unit.expect(EPB_MSG_WELCOME);
    for (std::uint64_t s = 1; s <= 20; ++s) unit.send(reading(s));
    std::uint64_t last = 0;
    while (last < 20) last = unit.expect(EPB_MSG_ACK).m.ack.seq;
    // A garbled byte on the line, then a good frame.
    unit.raw({0x55, 0xAA, 0x00});
    unit.send(reading(21));
    CHECK(unit.expect(EPB_MSG_ACK).m.ack.seq == 21);
  }  // closes the master: the line hangs up and the pty vanishes
  close(pair->slave_keeper);
  eventually([&] { return agent.stats().serial_link_losses.load() == 1; });
  auto failures = agent.stats().serial_open_failures.load();
  eventually([&] { return agent.stats().serial_open_failures.load() > failures; });  // retried, not crashed

  // The device comes back (a new pty behind the same name).
  auto pair2 = eport::tty::open_pty_pair();
  REQUIRE(pair2.ok());
  std::filesystem::remove(tty_link);
  std::filesystem::create_symlink(pair2->slave_path, tty_link);
  eventually([&] { return agent.stats().serial_opens.load() == 2; });
  Link unit(pair2->master, true);
  unit.send(hello("tcu-serial"));
  CHECK(unit.expect(EPB_MSG_WELCOME).m.welcome.last_stored_seq == 21);
  unit.send(reading(22));
  CHECK(unit.expect(EPB_MSG_ACK).m.ack.seq == 22);
  close(pair2->slave_keeper);
  CHECK(agent.rows() == 22);
}

TEST_CASE("serial configuration that can never work fails at start", "[units][serial]") {
  test::TempDir dir;
  auto ob = store::Outbox::open({.path = dir.file("o.db"), .min_free_bytes = 0});
  REQUIRE(ob.ok());
  ingest::Ingest ingest({}, **ob, nullptr);
  auto make = [&](units::ServerOptions so) {
    return std::make_unique<units::Server>(so, ingest, [](std::string_view) { return std::uint64_t{0}; },
                                            [](const model::Reading&) { return model::Priority::kTelemetry; });
  };
  units::ServerOptions bad_baud;
  bad_baud.serial_ports = {"/dev/null"};
  bad_baud.serial_baud = 12345;
  auto s1 = make(bad_baud)->start();
  REQUIRE(!s1.ok());
  CHECK_THAT(s1.error(), Catch::Contains("12345"));
  units::ServerOptions twice;
  twice.serial_ports = {"/dev/ttyX", "/dev/ttyX"};
  auto s2 = make(twice)->start();
  REQUIRE(!s2.ok());
  CHECK_THAT(s2.error(), Catch::Contains("twice"));
  CHECK(eport::tty::speed_for(4000000).has_value());
  CHECK(eport::tty::speed_for(115200).has_value());
  CHECK(!eport::tty::speed_for(100000).has_value());
  auto not_tty = units::serial::open_port("/dev/null", 115200);
  REQUIRE(!not_tty.ok());
  CHECK_THAT(not_tty.error(), Catch::Contains("not a terminal"));
}

// --- epb v2 custody rules (docs/firmware-bridge.md 7.4): an ACK never covers
// a seq that is not in the store, whatever the line drops, corrupts or reorders.

namespace {

// The rows of one unit in the store, decoded, in store order.
std::vector<model::Reading> stored_of(Agent& agent, const std::string& unit) {
  std::vector<model::Reading> out;
  REQUIRE(agent.outbox
              ->for_each([&](const store::StoredRecord& row) {
                if (row.source_id != unit) return true;
                auto r = codec::decode_reading(row.body);
                REQUIRE(r.ok());
                out.push_back(*r);
                return true;
              })
              .ok());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.seq < b.seq; });
  return out;
}

epb_message discard(std::uint64_t first, std::uint64_t last, std::uint8_t reason) {
  epb_message m{};
  m.type = EPB_MSG_DISCARD;
  m.m.discard.first_seq = first;
  m.m.discard.last_seq = last;
  m.m.discard.reason = reason;
  return m;
}

// Collects what the agent sends until `done` says so.
template <class F>
std::vector<epb_message> collect_until(Link& link, F done) {
  std::vector<epb_message> got;
  while (true) {
    auto m = link.next();
    REQUIRE(m.has_value());
    got.push_back(*m);
    if (done(*m)) return got;
  }
}

std::uint64_t settled(const units::ServerStats& s) {
  return s.readings_stored + s.readings_duplicate + units::refused_total(s);
}

}  // namespace

TEST_CASE("seq 20, 22, 21 in one write: the agent asks for 21 and all three are stored", "[units][custody]") {
  Agent agent;
  auto link = Link::connect(agent.socket_path);
  link.send(hello("tcu-order", kContainer, 20));
  CHECK(link.expect(EPB_MSG_WELCOME).m.welcome.last_stored_seq == 19);
  std::vector<std::uint8_t> burst;
  for (std::uint64_t s : {20, 22, 21}) {
    auto f = encoded(reading(s));
    burst.insert(burst.end(), f.begin(), f.end());
  }
  link.raw(burst);
  auto got = collect_until(link, [](const epb_message& m) { return m.type == EPB_MSG_ACK && m.m.ack.seq == 21; });
  bool asked_for_21 = false;
  for (const auto& m : got) {
    if (m.type == EPB_MSG_NACK) {
      CHECK(m.m.nack.seq == 21);
      CHECK(m.m.nack.reason == EPB_NACK_OUT_OF_ORDER);
      asked_for_21 = true;
    }
    if (m.type == EPB_MSG_ACK) CHECK(m.m.ack.seq <= 21);  // never 22: it was not taken
  }
  CHECK(asked_for_21);
  // The unit goes back to 21 (go-back-N): 21 is a duplicate, 22 is stored.
  link.send(reading(21));
  link.send(reading(22));
  std::uint64_t last = 0;
  while (last < 22) last = link.expect(EPB_MSG_ACK).m.ack.seq;
  auto rows = stored_of(agent, "tcu-order");
  REQUIRE(rows.size() == 3);
  CHECK(rows[0].seq == 20);
  CHECK(rows[1].seq == 21);
  CHECK(rows[2].seq == 22);
  CHECK(agent.stats().readings_received.load() == settled(agent.stats()));
}

TEST_CASE("a corrupted frame is never covered by an ACK; the unit is told where to resume", "[units][custody]") {
  Agent agent;
  auto link = Link::connect(agent.socket_path);
  link.send(hello("tcu-noisy"));
  link.expect(EPB_MSG_WELCOME);
  std::vector<std::uint8_t> burst;
  for (std::uint64_t s = 1; s <= 10; ++s) {
    auto f = encoded(reading(s));
    if (s == 5) f[f.size() - 3] ^= 0x40;  // a bit flipped in its CRC on the line
    burst.insert(burst.end(), f.begin(), f.end());
  }
  link.raw(burst);
  // 6..10 each get NACK(5, OUT_OF_ORDER); 1..4 are acknowledged, no ACK reaches 5.
  int nacks = 0;
  std::uint64_t acked = 0;
  auto got = collect_until(link, [&](const epb_message& m) {
    if (m.type == EPB_MSG_NACK) ++nacks;
    if (m.type == EPB_MSG_ACK) acked = m.m.ack.seq;
    return nacks == 5 && acked == 4;
  });
  for (const auto& m : got) {
    if (m.type == EPB_MSG_ACK) CHECK(m.m.ack.seq <= 4);
    if (m.type == EPB_MSG_NACK) {
      CHECK(m.m.nack.seq == 5);
      CHECK(m.m.nack.reason == EPB_NACK_OUT_OF_ORDER);
    }
  }
  link.expect_silence();
  CHECK(agent.stats().frame_errors[EPB_ERR_CRC].load() == 1);
  CHECK(agent.rows() == 4);
  for (std::uint64_t s = 5; s <= 10; ++s) link.send(reading(s));
  std::uint64_t last = 0;
  while (last < 10) last = link.expect(EPB_MSG_ACK).m.ack.seq;
  CHECK(stored_of(agent, "tcu-noisy").size() == 10);
  CHECK(agent.stats().readings_received.load() == settled(agent.stats()));
  CHECK(agent.stats().readings_received.load() == 15);  // 9 intact first sends + 6 resends
}

TEST_CASE("a declared discard becomes a gap record in the store and is acknowledged", "[units][custody]") {
  Agent agent;
  auto link = Link::connect(agent.socket_path);
  link.send(hello("tcu-gap"));
  link.expect(EPB_MSG_WELCOME);
  link.send(reading(1));
  link.send(reading(2));
  link.send(discard(3, 5, EPB_DISCARD_FLASH_FULL));
  link.send(reading(6));
  std::uint64_t last = 0;
  while (last < 6) last = link.expect(EPB_MSG_ACK).m.ack.seq;
  auto rows = stored_of(agent, "tcu-gap");
  REQUIRE(rows.size() == 4);
  const auto* gap = std::get_if<model::SequenceGap>(&rows[2].payload);
  REQUIRE(gap != nullptr);
  CHECK(gap->first_seq == 3);
  CHECK(rows[2].seq == 5);
  CHECK(gap->reason == model::GapReason::kFlashFull);
  CHECK(rows[2].container_id == kContainer);
  CHECK(agent.stats().seqs_declared_discarded.load() == 3);
  CHECK(agent.stats().discards_recorded.load() == 1);
  // A resent DISCARD (its ACK was lost) is a duplicate, acknowledged again.
  link.send(discard(3, 5, EPB_DISCARD_FLASH_FULL));
  CHECK(link.expect(EPB_MSG_ACK).m.ack.seq == 6);
  CHECK(agent.rows() == 4);
  // A DISCARD that jumps past bridge.max_seq_jump is refused and changes nothing.
  link.send(discard(7, 7 + (std::uint64_t{1} << 30), EPB_DISCARD_EXPIRED));
  auto nack = link.expect(EPB_MSG_NACK);
  CHECK(nack.m.nack.reason == EPB_NACK_SEQ_RANGE);
  CHECK(nack.m.nack.seq == 7);
  link.send(reading(7));
  CHECK(link.expect(EPB_MSG_ACK).m.ack.seq == 7);
}

TEST_CASE("a malformed reading in order is recorded as a gap declared by the gateway", "[units][custody]") {
  Agent agent;
  auto link = Link::connect(agent.socket_path);
  link.send(hello("tcu-bad"));
  link.expect(EPB_MSG_WELCOME);
  link.send(reading(1));
  // Door state 3 does not exist: intact frame, invalid content, seq 2.
  link.raw(frame_of({EPB_PROTOCOL_VERSION, EPB_MSG_READING, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 3}));
  link.send(reading(3));
  auto got = collect_until(link, [](const epb_message& m) { return m.type == EPB_MSG_ACK && m.m.ack.seq == 3; });
  bool told = false;
  for (const auto& m : got) told |= m.type == EPB_MSG_NACK && m.m.nack.seq == 2 && m.m.nack.reason == EPB_NACK_MALFORMED;
  CHECK(told);
  auto rows = stored_of(agent, "tcu-bad");
  REQUIRE(rows.size() == 3);
  const auto* gap = std::get_if<model::SequenceGap>(&rows[1].payload);
  REQUIRE(gap != nullptr);
  CHECK(gap->first_seq == 2);
  CHECK(gap->reason == model::GapReason::kRejectedMalformed);
  CHECK(rows[1].time_source == model::TimeSource::kGatewayReceive);
  CHECK(agent.stats().refused_malformed.load() == 1);
  CHECK(agent.stats().discards_recorded.load() == 0);  // declared by the gateway, not a unit's DISCARD
}

TEST_CASE("one live session per unit id: the newest HELLO wins; a seq jump is refused", "[units][custody]") {
  Agent agent;
  auto first = Link::connect(agent.socket_path);
  first.send(hello("tcu-twin"));
  first.expect(EPB_MSG_WELCOME);
  for (std::uint64_t s = 1; s <= 5; ++s) first.send(reading(s));
  std::uint64_t last = 0;
  while (last < 5) last = first.expect(EPB_MSG_ACK).m.ack.seq;

  // A second link claims the unit with a counter far beyond what is stored.
  auto rogue = Link::connect(agent.socket_path);
  rogue.send(hello("tcu-twin", kContainer, std::uint64_t{1} << 50));
  auto nack = rogue.expect(EPB_MSG_NACK);
  CHECK(nack.m.nack.seq == 0);
  CHECK(nack.m.nack.reason == EPB_NACK_SEQ_RANGE);
  rogue.send(reading(std::uint64_t{1} << 50));
  CHECK(rogue.expect(EPB_MSG_NACK).m.nack.reason == EPB_NACK_NO_HELLO);
  first.send(reading(6));
  CHECK(first.expect(EPB_MSG_ACK).m.ack.seq == 6);  // the real unit is untouched

  // The same unit again on a new link (e.g. after a half-open TCP link): it
  // takes over, the old link is closed.
  auto second = Link::connect(agent.socket_path);
  second.send(hello("tcu-twin", kContainer, 7));
  CHECK(second.expect(EPB_MSG_WELCOME).m.welcome.last_stored_seq == 6);
  CHECK(!first.next(2000ms).has_value());  // closed by the agent
  second.send(reading(7));
  CHECK(second.expect(EPB_MSG_ACK).m.ack.seq == 7);
  CHECK(agent.stats().takeovers.load() == 1);
  CHECK(stored_of(agent, "tcu-twin").size() == 7);
}

TEST_CASE("a reading without a clock is stored with the gateway's time and flagged", "[units][custody]") {
  Agent agent;
  auto link = Link::connect(agent.socket_path);
  link.send(hello("tcu-clockless"));
  link.expect(EPB_MSG_WELCOME);
  auto m = reading(1);
  m.m.reading.time_utc_ms = 0;
  auto before = model::now_utc_ms();
  link.send(m);
  CHECK(link.expect(EPB_MSG_ACK).m.ack.seq == 1);
  auto rows = stored_of(agent, "tcu-clockless");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].time_source == model::TimeSource::kGatewayReceive);
  CHECK(rows[0].time_utc_ms >= before);
  CHECK(rows[0].time_utc_ms <= model::now_utc_ms());
}

TEST_CASE("a unit speaking epb v1 gets a refusal framed in v1", "[units]") {
  Agent agent;
  auto link = Link::connect(agent.socket_path);
  // A v1 HELLO: unit "old-1", no container, firmware "0.9", next_seq 1.
  std::vector<std::uint8_t> v1 = {1, EPB_MSG_HELLO, 5, 'o', 'l', 'd', '-', '1', 0, 3, '0', '.', '9', 1, 0, 0, 0, 0, 0, 0, 0};
  link.raw(frame_of(v1));
  // Read the raw answer: one frame whose body says version 1, NACK, seq 0, MALFORMED.
  std::vector<std::uint8_t> bytes;
  auto deadline = std::chrono::steady_clock::now() + 3s;
  while (bytes.empty() || bytes.back() != 0) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    pollfd p{link.fd, POLLIN, 100};
    if (poll(&p, 1, 100) <= 0) continue;
    std::uint8_t b[256];
    auto n = ::read(link.fd, b, sizeof b);
    REQUIRE(n > 0);
    bytes.insert(bytes.end(), b, b + n);
  }
  std::uint8_t expected[EPB_MAX_ENCODED];
  auto n = epb_encode_version_refusal(1, expected, sizeof expected);
  CHECK(bytes == std::vector<std::uint8_t>(expected, expected + n));
  CHECK(agent.stats().hellos_refused_version.load() == 1);
}

TEST_CASE("a silent link gets a PING and is closed when nothing comes back", "[units]") {
  units::ServerOptions so;
  so.idle_ping_after = 300ms;
  so.dead_after_ping = 300ms;
  Agent agent(so);
  auto link = Link::connect(agent.socket_path);
  link.send(hello("tcu-quiet"));
  link.expect(EPB_MSG_WELCOME);
  auto ping = link.expect(EPB_MSG_PING);
  (void)ping;
  CHECK(!link.next(3000ms).has_value());  // closed
  eventually([&] { return agent.stats().links_dead.load() == 1; });
  eventually([&] { return agent.stats().connections_active.load() == 0; });
  // A link that answers stays up.
  auto lively = Link::connect(agent.socket_path);
  lively.send(hello("tcu-lively"));
  lively.expect(EPB_MSG_WELCOME);
  for (int i = 0; i < 3; ++i) {
    auto p = lively.expect(EPB_MSG_PING);
    epb_message pong{};
    pong.type = EPB_MSG_PONG;
    pong.m.ping = p.m.ping;
    lively.send(pong);
  }
  CHECK(agent.stats().links_dead.load() == 1);
}

TEST_CASE("SETTINGS follow WELCOME and are resent until the unit answers SETTINGS_ACK", "[units]") {
  units::ServerOptions so;
  so.default_intervals = {60, 900};
  so.unit_intervals["tcu-reefer"] = {30, 120};
  so.settings_retry = 300ms;
  Agent agent(so);
  auto link = Link::connect(agent.socket_path);
  link.send(hello("tcu-dry"));
  link.expect(EPB_MSG_WELCOME);
  auto s1 = link.expect(EPB_MSG_SETTINGS);
  CHECK(s1.m.settings.position_interval_s == 60);
  CHECK(s1.m.settings.sensor_interval_s == 900);
  auto s2 = link.expect(EPB_MSG_SETTINGS);  // no answer: sent again
  CHECK(s2.m.settings.position_interval_s == 60);
  epb_message ack{};
  ack.type = EPB_MSG_SETTINGS_ACK;
  ack.m.settings = s2.m.settings;
  link.send(ack);
  std::this_thread::sleep_for(700ms);
  link.expect_silence();  // no more SETTINGS
  CHECK(agent.stats().settings_acked.load() == 1);

  auto reefer = Link::connect(agent.socket_path);
  reefer.send(hello("tcu-reefer"));
  reefer.expect(EPB_MSG_WELCOME);
  auto r = reefer.expect(EPB_MSG_SETTINGS);
  CHECK(r.m.settings.position_interval_s == 30);
  CHECK(r.m.settings.sensor_interval_s == 120);

  // A new session of the same unit is told again.
  auto again = Link::connect(agent.socket_path);
  again.send(hello("tcu-dry"));
  again.expect(EPB_MSG_WELCOME);
  CHECK(again.expect(EPB_MSG_SETTINGS).m.settings.position_interval_s == 60);
}

TEST_CASE("an adaptive profile reaches the unit with SETTINGS, deadbands only to a unit that announced them",
          "[units][reporting]") {
  units::ServerOptions so;
  so.default_intervals = {60, 900};
  so.settings_retry = 10s;
  Agent agent(so);
  units::AdaptiveSettings terminal;
  terminal.profile = "terminal";
  terminal.intervals = {300, 300};
  terminal.temperature_deadband_centi_c = 50;
  terminal.position_deadband_m = 25;
  auto answer = [](Link& l, const epb_message& settings) {
    epb_message ack{};
    ack.type = EPB_MSG_SETTINGS_ACK;
    ack.m.settings = settings.m.settings;
    l.send(ack);
  };

  // An older unit (no FEATURES): configured intervals after WELCOME, then the
  // profile's intervals in the 8-byte form when the engine chooses it.
  auto old_unit = Link::connect(agent.socket_path);
  old_unit.send(hello("tcu-old"));
  old_unit.expect(EPB_MSG_WELCOME);
  auto first = old_unit.expect(EPB_MSG_SETTINGS);
  CHECK(first.m.settings.position_interval_s == 60);
  answer(old_unit, first);
  agent.server->set_profile("tcu-old", terminal);
  auto pushed = old_unit.expect(EPB_MSG_SETTINGS);
  CHECK(pushed.m.settings.position_interval_s == 300);
  CHECK(pushed.m.settings.sensor_interval_s == 300);
  CHECK(pushed.m.settings.extended == 0);
  answer(old_unit, pushed);
  // The same profile again changes nothing: no SETTINGS.
  agent.server->set_profile("tcu-old", terminal);
  old_unit.expect_silence();

  // A new unit announces deadbands: after FEATURES it gets the 15-byte form.
  auto new_unit = Link::connect(agent.socket_path);
  agent.server->set_profile("tcu-new", terminal);  // chosen before it connects (e.g. restored at start)
  std::this_thread::sleep_for(200ms);              // taken by the bridge thread before the HELLO
  new_unit.send(hello("tcu-new"));
  new_unit.expect(EPB_MSG_WELCOME);
  auto plain = new_unit.expect(EPB_MSG_SETTINGS);  // the profile wins over the configured intervals
  CHECK(plain.m.settings.position_interval_s == 300);
  CHECK(plain.m.settings.extended == 0);
  epb_message features{};
  features.type = EPB_MSG_FEATURES;
  features.m.features.features = EPB_FEATURE_DEADBANDS | 0x80000000u;  // an unknown bit is ignored
  new_unit.send(features);
  auto ext = new_unit.expect(EPB_MSG_SETTINGS);
  CHECK(ext.m.settings.extended == 1);
  CHECK(ext.m.settings.deadbands == (EPB_DEADBAND_TEMPERATURE | EPB_DEADBAND_POSITION));
  CHECK(ext.m.settings.temperature_deadband_centi_c == 50);
  CHECK(ext.m.settings.position_deadband_m == 25);
  answer(new_unit, ext);
  new_unit.expect_silence();

  // Precedence: a cloud command's intervals win over the profile's; the
  // deadbands stay the profile's.
  REQUIRE(agent.server->push_settings("tcu-new", 30, 0).ok());
  auto commanded = new_unit.expect(EPB_MSG_SETTINGS);
  CHECK(commanded.m.settings.position_interval_s == 30);
  CHECK(commanded.m.settings.sensor_interval_s == 300);
  CHECK(commanded.m.settings.position_deadband_m == 25);
  answer(new_unit, commanded);
  units::AdaptiveSettings land = terminal;
  land.profile = "land";
  land.intervals = {900, 900};
  land.temperature_deadband_centi_c.reset();
  land.position_deadband_m = 200;
  agent.server->set_profile("tcu-new", land);
  auto after = new_unit.expect(EPB_MSG_SETTINGS);
  CHECK(after.m.settings.position_interval_s == 30);   // still the command's
  CHECK(after.m.settings.sensor_interval_s == 900);    // the new profile's
  CHECK(after.m.settings.deadbands == EPB_DEADBAND_POSITION);  // no temperature deadband: off
  CHECK(after.m.settings.temperature_deadband_centi_c == 0);
  CHECK(after.m.settings.position_deadband_m == 200);
}

TEST_CASE("a commit that fails on a locked store: NACK INTERNAL, no ACK past it, nothing lost", "[units][custody]") {
  store::OutboxOptions oo;
  oo.busy_timeout = 50ms;
  Agent agent({}, {}, oo);
  auto link = Link::connect(agent.socket_path);
  link.send(hello("tcu-locked"));
  link.expect(EPB_MSG_WELCOME);
  for (std::uint64_t s = 1; s <= 3; ++s) link.send(reading(s));
  std::uint64_t last = 0;
  while (last < 3) last = link.expect(EPB_MSG_ACK).m.ack.seq;

  // Another process holds the database's write lock.
  sqlite3* other = nullptr;
  REQUIRE(sqlite3_open(agent.dir.file("outbox.db").c_str(), &other) == SQLITE_OK);
  REQUIRE(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
  for (std::uint64_t s = 4; s <= 8; ++s) link.send(reading(s));
  auto nack = link.expect(EPB_MSG_NACK);
  CHECK(nack.m.nack.seq == 4);
  CHECK(nack.m.nack.reason == EPB_NACK_INTERNAL);
  // The unit resends from 4 while the lock is still held: refused again.
  for (std::uint64_t s = 4; s <= 8; ++s) link.send(reading(s));
  auto again = link.expect(EPB_MSG_NACK);
  CHECK(again.m.nack.seq == 4);
  REQUIRE(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(other);
  // Drain whatever else was said about the refused burst: never an ACK past 3.
  link.expect_silence_allowing([](const epb_message& m) {
    if (m.type == EPB_MSG_ACK) CHECK(m.m.ack.seq == 3);
    if (m.type == EPB_MSG_NACK) CHECK(m.m.nack.seq == 4);
  });
  for (std::uint64_t s = 4; s <= 8; ++s) link.send(reading(s));
  while (last < 8) {
    auto m = link.expect(EPB_MSG_ACK);
    last = m.m.ack.seq;
  }
  auto rows = stored_of(agent, "tcu-locked");
  REQUIRE(rows.size() == 8);
  for (std::size_t i = 0; i < rows.size(); ++i) CHECK(rows[i].seq == i + 1);
  CHECK(agent.outbox->stats().commit_failures >= 1);
  CHECK(agent.stats().refused_internal.load() >= 5);
  CHECK(agent.stats().readings_received.load() == settled(agent.stats()));
}

// --- Hardening (issue 11): floods, idle sockets, id churn, a second agent ---

namespace {

// How much the resident set may grow in the flood test: under ASan freed
// memory sits in its quarantine (256 MiB by default) and counts as resident.
#if defined(__SANITIZE_ADDRESS__)
constexpr std::uint64_t kRssSlackKib = (256 + 32) * 1024;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr std::uint64_t kRssSlackKib = (256 + 32) * 1024;
#else
constexpr std::uint64_t kRssSlackKib = 32 * 1024;
#endif
#else
constexpr std::uint64_t kRssSlackKib = 32 * 1024;
#endif

// This process's resident set, from /proc/self/status (the server runs in
// it), in KiB.
std::uint64_t rss_kib() {
  FILE* f = std::fopen("/proc/self/status", "r");
  REQUIRE(f != nullptr);
  char line[256];
  std::uint64_t kib = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, "VmRSS:", 6) == 0) kib = std::strtoull(line + 6, nullptr, 10);
  }
  std::fclose(f);
  return kib;
}

// A TCP connection to the agent's port, as a Link.
Link connect_tcp(std::uint16_t port) {
  auto fd = units::net::connect_endpoint("tcp:127.0.0.1:" + std::to_string(port));
  REQUIRE(fd.ok());
  return Link(*fd);
}

// True once the agent has closed the link (EOF or reset), within the timeout.
bool closed_by_agent(Link& l, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{l.fd, POLLIN, 0};
    if (poll(&p, 1, 20) <= 0) continue;
    std::uint8_t buf[4096];
    ssize_t n = ::read(l.fd, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("many units sending at once: what waits for a commit stays bounded, and everything is stored",
          "[units][hardening]") {
  // 40 units each write 250 readings in one go, while the store commits at
  // most 20 per transaction: the server stops reading unit input once
  // ingest holds its high water, before every read and not once per
  // wake-up. What waits for a commit is then at most the high water plus
  // the frames of one read (16 KiB); before, one wake-up read every ready
  // link's budget (64 KiB each) at once.
  ingest::IngestOptions io;
  io.commit_max_readings = 20;
  Agent agent({}, io);
  constexpr int kUnits = 40;
  constexpr std::uint64_t kEach = 250;
  std::vector<Link> links;
  std::vector<std::vector<std::uint8_t>> bursts;
  for (int u = 0; u < kUnits; ++u) {
    links.push_back(Link::connect(agent.socket_path));
    links.back().send(hello("tcu-burst-" + std::to_string(u)));
    links.back().expect(EPB_MSG_WELCOME);
    std::vector<std::uint8_t> burst;
    for (std::uint64_t s = 1; s <= kEach; ++s) {
      auto f = encoded(reading(s));
      burst.insert(burst.end(), f.begin(), f.end());
    }
    bursts.push_back(std::move(burst));
  }
  const std::size_t frame = encoded(reading(1)).size();
  const std::size_t bound = agent.ingest->high_water() + 16384 / frame + 1;

  std::atomic<bool> sampling{true};
  std::size_t most = 0;
  std::thread sampler([&] {
    while (sampling) most = std::max(most, agent.ingest->queued());
  });
  for (int u = 0; u < kUnits; ++u) links[static_cast<std::size_t>(u)].raw(bursts[static_cast<std::size_t>(u)]);
  for (auto& link : links) {
    std::uint64_t last = 0;
    while (last < kEach) {
      auto m = link.next(10000ms);
      REQUIRE(m.has_value());
      REQUIRE(static_cast<int>(m->type) == static_cast<int>(EPB_MSG_ACK));
      last = m->m.ack.seq;
    }
  }
  sampling = false;
  sampler.join();
  INFO("most readings waiting for a commit: " << most << ", bound " << bound);
  CHECK(most <= bound);
  CHECK(agent.stats().backpressure_pauses.load() > 0);
  CHECK(agent.rows() == kUnits * kEach);
}

TEST_CASE("a client that floods and never reads does not stall other units or grow memory", "[units][hardening]") {
  Agent agent;
  // Two flooders that never read, sending over and over: one PINGs (each
  // would earn a PONG) and garbage (frame errors); the other readings
  // before HELLO too (each earns a NACK, which piles up unread).
  epb_message ping{};
  ping.type = EPB_MSG_PING;
  auto p = encoded(ping);
  auto r = encoded(reading(5));
  std::vector<std::uint8_t> garbage = {0x13, 0x37, 0xde, 0xad, 0xbe, 0xef, 0x99, 0x00};
  std::vector<std::uint8_t> quiet_chunk, nacked_chunk;
  while (quiet_chunk.size() < 64 * 1024) {
    quiet_chunk.insert(quiet_chunk.end(), p.begin(), p.end());
    quiet_chunk.insert(quiet_chunk.end(), garbage.begin(), garbage.end());
  }
  while (nacked_chunk.size() < 64 * 1024) {
    nacked_chunk.insert(nacked_chunk.end(), p.begin(), p.end());
    nacked_chunk.insert(nacked_chunk.end(), garbage.begin(), garbage.end());
    nacked_chunk.insert(nacked_chunk.end(), r.begin(), r.end());
  }
  // Warm up the allocator before measuring: one session's worth of traffic.
  {
    auto warm = Link::connect(agent.socket_path);
    warm.send(hello("tcu-warm"));
    warm.expect(EPB_MSG_WELCOME);
    warm.send(reading(1));
    warm.expect(EPB_MSG_ACK);
  }
  auto rss_before = rss_kib();
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> flooded{0};
  std::vector<Link> flooders;
  flooders.push_back(Link::connect(agent.socket_path));
  flooders.push_back(Link::connect(agent.socket_path));
  std::vector<std::thread> threads;
  struct Joiner {  // a failed REQUIRE below must not leave the threads running
    std::atomic<bool>& stop;
    std::vector<std::thread>& t;
    ~Joiner() {
      stop = true;
      for (auto& th : t) th.join();
    }
  } joiner{stop, threads};
  for (std::size_t i = 0; i < flooders.size(); ++i) {
    int fd = flooders[i].fd;
    const auto& chunk = i == 0 ? quiet_chunk : nacked_chunk;
    int one_mib = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &one_mib, sizeof one_mib);
    threads.emplace_back([&, fd] {
      while (!stop) {
        ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
        if (n > 0) {
          flooded += static_cast<std::uint64_t>(n);
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
          pollfd pf{fd, POLLOUT, 0};
          poll(&pf, 1, 5);
        } else {
          break;  // the agent dropped us
        }
      }
    });
  }
  auto unit = Link::connect(agent.socket_path);
  unit.send(hello("tcu-real"));
  unit.expect(EPB_MSG_WELCOME);
  std::chrono::milliseconds worst{0};
  for (std::uint64_t seq = 1; seq <= 30; ++seq) {
    auto t0 = std::chrono::steady_clock::now();
    unit.send(reading(seq));
    auto ack = unit.next(2000ms);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    worst = std::max(worst, took);
    REQUIRE(ack.has_value());
    REQUIRE(static_cast<int>(ack->type) == EPB_MSG_ACK);
    CHECK(ack->m.ack.seq == seq);
    CHECK(took < 1000ms);
    std::this_thread::sleep_for(20ms);
  }
  stop = true;
  for (auto& th : threads) th.join();
  threads.clear();
  auto rss_after = rss_kib();
  const auto& st = agent.stats();
  INFO("flooded " << flooded.load() << " bytes; worst ACK " << worst.count() << " ms; RSS " << rss_before << " -> "
                  << rss_after << " KiB; " << st.read_budget_yields.load() << " read budget yields, "
                  << st.pings_dropped.load() << " PINGs dropped");
  CHECK(rss_after < rss_before + kRssSlackKib);
  // The one whose NACKs piled up unread was dropped; PINGs were throttled;
  // the fast sender was read in turns with the others.
  CHECK(st.links_dropped_output.load() == 1);
  CHECK(st.pings_dropped.load() > 0);
  CHECK(st.read_budget_yields.load() > 0);
  CHECK(agent.outbox->last_seq("tcu-real") == 30);
}

TEST_CASE("idle TCP connections beyond the per-address cap are refused, counted and warned about once", "[units][hardening]") {
  units::ServerOptions so;
  so.tcp_listen = "127.0.0.1:0";
  so.tcp_requires_auth = false;  // admission, not authentication, is under test
  so.max_units_per_address = 3;
  Agent agent(so);
  auto port = agent.server->tcp_port();
  std::vector<Link> idle;
  for (int i = 0; i < 3; ++i) idle.push_back(connect_tcp(port));
  eventually([&] { return agent.stats().connections_accepted.load() == 3; });
  std::vector<Link> extra;
  for (int i = 0; i < 5; ++i) extra.push_back(connect_tcp(port));
  for (auto& l : extra) CHECK(closed_by_agent(l, 2000ms));
  const auto& st = agent.stats();
  CHECK(st.refused_per_address.load() == 5);
  CHECK(st.connections_refused.load() == 5);
  CHECK(st.refusal_warnings.load() == 1);  // not one per refusal: at most one per 10 s
  // The connections within the cap work: one of them says HELLO and sends.
  idle[0].send(hello("tcu-capped"));
  idle[0].expect(EPB_MSG_WELCOME);
  idle[0].send(reading(1));
  CHECK(idle[0].expect(EPB_MSG_ACK).m.ack.seq == 1);
  // A slot freed is a slot taken again.
  idle.pop_back();
  eventually([&] { return agent.stats().connections_active.load() == 2; });
  auto again = connect_tcp(port);
  again.send(hello("tcu-again"));
  again.expect(EPB_MSG_WELCOME);
}

TEST_CASE("a connection that never says HELLO is closed at the deadline; welcomed ones stay", "[units][hardening]") {
  units::ServerOptions so;
  so.hello_deadline = 600ms;
  Agent agent(so);
  auto silent = Link::connect(agent.socket_path);
  auto refused = Link::connect(agent.socket_path);  // says HELLO, but one that is refused
  auto unit = Link::connect(agent.socket_path);
  refused.send(hello("BAD ID"));
  CHECK(refused.expect(EPB_MSG_NACK).m.nack.reason == EPB_NACK_UNIT_ID);
  unit.send(hello("tcu-hello"));
  unit.expect(EPB_MSG_WELCOME);
  auto t0 = std::chrono::steady_clock::now();
  CHECK(closed_by_agent(silent, 3000ms));
  CHECK(std::chrono::steady_clock::now() - t0 < 2000ms);
  CHECK(closed_by_agent(refused, 1000ms));
  std::this_thread::sleep_for(1000ms);  // well past the deadline
  unit.expect_silence();
  unit.send(reading(1));
  CHECK(unit.expect(EPB_MSG_ACK).m.ack.seq == 1);
  CHECK(agent.stats().hello_timeouts.load() == 2);
}

TEST_CASE("with TCP at its share of max_units, a UNIX unit still gets in", "[units][hardening]") {
  units::ServerOptions so;
  so.tcp_listen = "127.0.0.1:0";
  so.tcp_requires_auth = false;  // admission, not authentication, is under test
  so.max_units = 4;
  so.unix_reserve = 2;
  Agent agent(so);
  std::vector<Link> tcp;
  for (int i = 0; i < 4; ++i) tcp.push_back(connect_tcp(agent.server->tcp_port()));
  CHECK(closed_by_agent(tcp[3], 2000ms));
  CHECK(closed_by_agent(tcp[2], 2000ms));
  CHECK(agent.stats().refused_max_units.load() == 2);
  std::vector<Link> local;
  for (int i = 0; i < 2; ++i) {
    local.push_back(Link::connect(agent.socket_path));
    local.back().send(hello("tcu-local-" + std::to_string(i)));
    local.back().expect(EPB_MSG_WELCOME);
  }
  // Now every slot is taken: UNIX too is refused.
  auto fifth = Link::connect(agent.socket_path);
  CHECK(closed_by_agent(fifth, 2000ms));
  // The TCP ones within their share work.
  tcp[0].send(hello("tcu-tcp"));
  tcp[0].expect(EPB_MSG_WELCOME);
}

TEST_CASE("a link that says HELLO for too many unit ids in a minute is dropped", "[units][hardening]") {
  units::ServerOptions so;
  so.max_unit_ids_per_link = 3;
  Agent agent(so);
  auto churn = Link::connect(agent.socket_path);
  for (const char* id : {"tcu-a", "tcu-b", "tcu-c", "tcu-a", "tcu-b"}) {  // repeats do not count
    churn.send(hello(id));
    churn.expect(EPB_MSG_WELCOME);
  }
  churn.send(hello("tcu-d"));
  CHECK(closed_by_agent(churn, 2000ms));
  CHECK(agent.stats().links_dropped_unit_ids.load() == 1);
  // tcu-d itself is welcome on a link of its own.
  auto d = Link::connect(agent.socket_path);
  d.send(hello("tcu-d"));
  d.expect(EPB_MSG_WELCOME);
}

TEST_CASE("50,000 unit ids over TCP links: bounded state, bounded sources in the store", "[units][hardening]") {
  units::ServerOptions so;
  so.tcp_listen = "127.0.0.1:0";
  so.tcp_requires_auth = false;  // admission, not authentication, is under test
  store::OutboxOptions oo;
  oo.max_bytes = 1 << 20;
  Agent agent(so, {}, oo);
  std::uint64_t welcomed = 0, links = 0;
  int id = 0;
  auto t0 = std::chrono::steady_clock::now();
  while (id < 50000 && std::chrono::steady_clock::now() - t0 < 20s) {
    auto l = connect_tcp(agent.server->tcp_port());
    ++links;
    while (id < 50000) {
      l.send(hello("x" + std::to_string(id++)));
      auto m = l.next(2000ms);
      if (!m || m->type != EPB_MSG_WELCOME) break;
      ++welcomed;
      l.send(reading(1));
    }
    if (links >= 200) break;  // enough to see the bound; each link is cut at 16 ids
  }
  agent.server->stop();
  agent.ingest->stop();
  INFO(welcomed << " welcomed over " << links << " links");
  CHECK(welcomed <= links * so.max_unit_ids_per_link);
  CHECK(agent.stats().links_dropped_unit_ids.load() >= links - 1);
  auto st = agent.outbox->stats();
  CHECK(st.sources_bytes <= oo.max_bytes / 4);
  CHECK(st.total_bytes() + st.sources_bytes <= oo.max_bytes);
}

TEST_CASE("a second server on a live socket path refuses; only a stale socket is replaced", "[units][hardening]") {
  Agent first;
  units::ServerOptions so;
  so.unix_socket = first.socket_path;
  {
    units::Server second(
        so, *first.ingest, [](std::string_view) { return std::uint64_t{0}; },
        [](const model::Reading& r) { return model::default_priority(r); });
    auto st = second.start();
    REQUIRE_FALSE(st.ok());
    CHECK_THAT(st.error(), Catch::Contains("another agent serves unix:" + first.socket_path));
  }  // its destructor must not unlink the first one's socket
  auto unit = Link::connect(first.socket_path);
  unit.send(hello("tcu-first"));
  unit.expect(EPB_MSG_WELCOME);

  // A stale socket file (bound, never served: connect is refused) is replaced.
  test::TempDir dir;
  auto stale = dir.file("stale.sock");
  {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, stale.c_str());
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    close(fd);
  }
  auto fd = units::net::listen_unix(stale);
  REQUIRE(fd.ok());
  close(*fd);
}

TEST_CASE("at shutdown the server unlinks its socket only if the file is still its own", "[units][hardening]") {
  test::TempDir dir;
  auto path = dir.file("taken.sock");
  {
    units::ServerOptions so;
    so.unix_socket = path;
    Agent agent(so);
    // An operator removes it and something else binds the path meanwhile.
    REQUIRE(unlink(path.c_str()) == 0);
    auto other = units::net::listen_unix(path);
    REQUIRE(other.ok());
    close(*other);
  }
  struct stat st{};
  CHECK(lstat(path.c_str(), &st) == 0);  // still there: not ours to remove
  {
    units::ServerOptions so;
    so.unix_socket = dir.file("own.sock");
    Agent agent(so);
  }
  CHECK(lstat(dir.file("own.sock").c_str(), &st) != 0);  // ours: removed
}

TEST_CASE("a seq jump refused for a unit known only from the store leaves no dangling state", "[units][hardening]") {
  // Found by fuzz_unit_session (ASan: heap-use-after-free in on_hello): the
  // refusal's log line read the unit's state after forgetting it.
  units::ServerOptions so;
  so.max_seq_jump = 100;
  Agent agent(so);
  {
    auto unit = Link::connect(agent.socket_path);
    unit.send(hello("tcu-jump"));
    unit.expect(EPB_MSG_WELCOME);
    unit.send(reading(1));
    CHECK(unit.expect(EPB_MSG_ACK).m.ack.seq == 1);
  }
  eventually([&] { return agent.stats().connections_active.load() == 0; });  // its state is forgotten
  auto again = Link::connect(agent.socket_path);
  again.send(hello("tcu-jump", kContainer, 1 + 100 + 2));  // oldest_seq 103: 101 beyond seq 1
  auto nack = again.expect(EPB_MSG_NACK);
  CHECK(nack.m.nack.reason == EPB_NACK_SEQ_RANGE);
  CHECK(agent.stats().hellos_refused_seq_range.load() == 1);
  again.send(hello("tcu-jump", kContainer, 2));
  CHECK(again.expect(EPB_MSG_WELCOME).m.welcome.last_stored_seq == 1);
}

// ---- unit authentication (docs/firmware-bridge.md section 13) ----

namespace {

using Key = std::array<std::uint8_t, EPB_KEY_LEN>;

Key key_of(std::uint8_t fill) {
  Key k;
  k.fill(fill);
  return k;
}

// The unit side of 13.2: HELLO, CHALLENGE, AUTH with `key`; on success the
// link seals from then on. Returns what the agent answered to the AUTH.
epb_message authenticate(Link& l, const epb_message& h, const Key& key) {
  l.sealed = false;
  epb_auth_clear(&l.auth);
  l.send(h);
  auto c = l.expect(EPB_MSG_CHALLENGE);
  CHECK(c.sealed == 0);
  epb_message a{};
  a.type = EPB_MSG_AUTH;
  for (std::size_t i = 0; i < EPB_NONCE_LEN; ++i) a.m.auth.unit_nonce[i] = static_cast<std::uint8_t>(0x30 + i);
  std::uint8_t sk[EPB_SHA256_LEN];
  epb_auth_session_key(key.data(), h.m.hello.unit_id, h.m.hello.unit_id_len, c.m.challenge.agent_nonce,
                       a.m.auth.unit_nonce, sk);
  REQUIRE(epb_auth_proof(sk, &h, a.m.auth.proof) == 1);
  l.send(a);
  epb_auth_start(&l.auth, sk, 1);
  l.sealed = true;
  auto answer = l.next();
  REQUIRE(answer.has_value());
  if (answer->type != EPB_MSG_WELCOME) {
    l.sealed = false;
    epb_auth_clear(&l.auth);
  }
  return *answer;
}

units::ServerOptions tcp_with_keys(std::map<std::string, Key> keys) {
  units::ServerOptions so;
  so.tcp_listen = "127.0.0.1:0";
  for (auto& [id, k] : keys) so.auth_keys[id] = k;
  return so;
}

}  // namespace

TEST_CASE("a TCP unit proves its key, and everything on its link is sealed both ways", "[units][auth]") {
  Agent agent(tcp_with_keys({{"tcu-a1", key_of(0x11)}}));
  auto l = connect_tcp(agent.server->tcp_port());
  auto w = authenticate(l, hello("tcu-a1"), key_of(0x11));
  REQUIRE(w.type == EPB_MSG_WELCOME);
  CHECK(w.sealed == 1);
  l.send(reading(1));
  auto ack = l.expect(EPB_MSG_ACK);
  CHECK(ack.sealed == 1);
  CHECK(ack.m.ack.seq == 1);
  CHECK(agent.outbox->last_seq("tcu-a1") == 1);
  const auto& st = agent.stats();
  CHECK(st.auth_challenges.load() == 1);
  CHECK(st.auth_ok.load() == 1);
  CHECK(units::health_json(st).find("\"auth\":{\"challenges\":1,\"ok\":1,") != std::string::npos);
}

TEST_CASE("an impostor with the wrong key is refused and the real unit keeps its session", "[units][auth]") {
  Agent agent(tcp_with_keys({{"tcu-a2", key_of(0x22)}}));
  auto real = connect_tcp(agent.server->tcp_port());
  REQUIRE(authenticate(real, hello("tcu-a2"), key_of(0x22)).type == EPB_MSG_WELCOME);
  real.send(reading(1));
  CHECK(real.expect(EPB_MSG_ACK).m.ack.seq == 1);

  // Same id, a guessed key, and an oldest_seq that would release seqs.
  auto impostor = connect_tcp(agent.server->tcp_port());
  auto h = hello("tcu-a2", kContainer, 500);
  auto answer = authenticate(impostor, h, key_of(0x23));
  REQUIRE(answer.type == EPB_MSG_NACK);
  CHECK(answer.sealed == 0);
  CHECK(answer.m.nack.seq == 0);
  CHECK(answer.m.nack.reason == EPB_NACK_AUTH);
  // Its unsealed readings on its own link get nothing stored.
  impostor.send(reading(500));
  CHECK(impostor.expect(EPB_MSG_NACK).m.nack.reason == EPB_NACK_NO_HELLO);

  // No takeover, no jump: the real unit goes on from 2.
  real.send(reading(2));
  CHECK(real.expect(EPB_MSG_ACK).m.ack.seq == 2);
  const auto& st = agent.stats();
  CHECK(st.takeovers.load() == 0);
  CHECK(st.hellos_refused_auth.load() == 1);
  CHECK(st.auth_no_key.load() == 0);
  CHECK(agent.outbox->last_seq("tcu-a2") == 2);
}

TEST_CASE("on TCP a unit without a key is challenged like any other, then refused", "[units][auth]") {
  Agent agent(tcp_with_keys({{"tcu-keyed", key_of(0x33)}}));
  auto l = connect_tcp(agent.server->tcp_port());
  auto answer = authenticate(l, hello("tcu-nokey"), key_of(0x33));
  REQUIRE(answer.type == EPB_MSG_NACK);
  CHECK(answer.m.nack.reason == EPB_NACK_AUTH);
  CHECK(agent.stats().auth_no_key.load() == 1);
  CHECK(agent.rows() == 0);
}

TEST_CASE("tcp_requires_auth = false lets a TCP unit without a key in, unsealed", "[units][auth]") {
  auto so = tcp_with_keys({});
  so.tcp_requires_auth = false;
  Agent agent(so);
  auto l = connect_tcp(agent.server->tcp_port());
  l.send(hello("tcu-open"));
  auto w = l.expect(EPB_MSG_WELCOME);
  CHECK(w.sealed == 0);
  CHECK(agent.stats().auth_challenges.load() == 0);
}

TEST_CASE("a unit with a key authenticates on the UNIX socket too; one without keeps local trust",
          "[bridge][auth]") {
  units::ServerOptions so;
  so.auth_keys["tcu-local-keyed"] = key_of(0x44);
  Agent agent(so);
  auto keyed = Link::connect(agent.socket_path);
  keyed.send(hello("tcu-local-keyed"));
  keyed.expect(EPB_MSG_CHALLENGE);
  auto plain = Link::connect(agent.socket_path);
  plain.send(hello("tcu-local-plain"));
  CHECK(plain.expect(EPB_MSG_WELCOME).sealed == 0);
  auto again = Link::connect(agent.socket_path);
  CHECK(authenticate(again, hello("tcu-local-keyed"), key_of(0x44)).type == EPB_MSG_WELCOME);
}

TEST_CASE("on an authenticated link unsealed, replayed and altered frames are dropped and counted",
          "[bridge][auth]") {
  Agent agent(tcp_with_keys({{"tcu-a5", key_of(0x55)}}));
  auto l = connect_tcp(agent.server->tcp_port());
  REQUIRE(authenticate(l, hello("tcu-a5"), key_of(0x55)).type == EPB_MSG_WELCOME);
  auto first = l.frame(reading(1));
  l.raw(first);
  CHECK(l.expect(EPB_MSG_ACK).m.ack.seq == 1);

  // Unsealed: an injected reading is not taken, not answered.
  l.sealed = false;
  l.send(reading(2));
  l.sealed = true;
  // Replayed: the same sealed bytes again.
  l.raw(first);
  // Altered: a sealed reading 2 with one payload byte changed (crc fixed).
  auto altered = l.frame(reading(2));
  {
    std::vector<std::uint8_t> body(altered.begin(), altered.end() - 1);
    // COBS-decode, flip the temperature's low byte, re-frame with a good crc.
    std::vector<std::uint8_t> plain;
    for (std::size_t i = 0; i < body.size();) {
      std::uint8_t code = body[i++];
      for (std::uint8_t k = 1; k < code && i < body.size(); ++k) plain.push_back(body[i++]);
      if (code < 0xFF && i < body.size()) plain.push_back(0);
    }
    plain.resize(plain.size() - 4);
    plain[2 + 18] ^= 0x01;
    altered = frame_of(plain);
  }
  l.raw(altered);
  l.expect_silence();  // sealed PING/PONG still work: nothing was answered before
  const auto& st = agent.stats();
  eventually([&] { return st.unsealed_dropped.load() == 1; });
  CHECK(st.frame_errors[EPB_ERR_AUTH].load() == 2);
  CHECK(agent.outbox->last_seq("tcu-a5") == 1);
  // The genuine reading 2 still goes in.
  l.send(reading(2));
  CHECK(l.expect(EPB_MSG_ACK).m.ack.seq == 2);
}

TEST_CASE("AUTH without a CHALLENGE changes nothing", "[units][auth]") {
  Agent agent(tcp_with_keys({{"tcu-a6", key_of(0x66)}}));
  auto l = connect_tcp(agent.server->tcp_port());
  epb_message a{};
  a.type = EPB_MSG_AUTH;
  l.send(a);
  l.expect_silence();
  CHECK(agent.stats().protocol_errors.load() == 1);
  CHECK(agent.stats().auth_ok.load() == 0);
}

// ---- evidence checkpoints (docs/firmware-bridge.md 7.15, docs/evidence.md 13) ----

namespace {

// A unit with an evidence chain and an Ed25519 key (the reference signer).
struct EvidenceUnit {
  std::string id;
  epb_ossl::Pkey key = epb_ossl::generate(EPB_EV_ALG_EDDSA);
  epb_ev_chain chain{};
  epb_ev_signer signer{};
  epb_ev_key pub{};
  explicit EvidenceUnit(std::string unit) : id(std::move(unit)) {
    REQUIRE(key);
    REQUIRE(epb_ossl::signer(key.get(), "", &signer));
    REQUIRE(epb_ossl::public_key(key.get(), "", &pub));
    REQUIRE(epb_ev_chain_init(&chain, id.c_str(), static_cast<std::uint8_t>(id.size()), 1) == EPB_EV_OK);
  }
  epb_message take(std::uint64_t seq) {
    auto m = reading(seq);
    REQUIRE(epb_ev_append(&chain, &m.m.reading, seq, 0) == EPB_EV_OK);
    return m;
  }
  std::vector<std::uint8_t> checkpoint() {
    std::vector<std::uint8_t> ck(EPB_EV_CHECKPOINT_MAX);
    std::size_t len = 0;
    REQUIRE(epb_ev_make_checkpoint(&chain, &signer, 1795000009000ull, nullptr, ck.data(), ck.size(), &len) ==
            EPB_EV_OK);
    ck.resize(len);
    return ck;
  }
};

std::vector<epb_message> fragments(std::uint64_t seq, const std::vector<std::uint8_t>& ck) {
  std::vector<epb_message> out;
  for (unsigned i = 0; i < epb_evf_count(ck.size()); ++i) {
    epb_message m;
    REQUIRE(epb_evf_fragment(seq, ck.data(), ck.size(), i, &m) == 1);
    out.push_back(m);
  }
  return out;
}

units::ServerOptions with_key(const EvidenceUnit& u) {
  units::ServerOptions so;
  so.evidence_keys[u.id] = u.pub;
  return so;
}

// Sends readings first..last and waits until an ACK covers them.
void send_acked(Link& link, EvidenceUnit& unit, std::uint64_t first, std::uint64_t last) {
  for (auto s = first; s <= last; ++s) link.send(unit.take(s));
  std::uint64_t acked = 0;
  while (acked < last) acked = link.expect(EPB_MSG_ACK).m.ack.seq;
}

// The evidence rows of the store, decoded, in drain order.
std::vector<model::Reading> evidence_rows(store::Outbox& outbox) {
  std::vector<model::Reading> out;
  auto rows = outbox.take(1000, 1 << 20);
  REQUIRE(rows.ok());
  for (const auto& r : *rows) {
    auto d = codec::decode_reading(r.body);
    REQUIRE(d.ok());
    if (std::holds_alternative<model::EvidenceCheckpoint>(d->payload)) out.push_back(*d);
  }
  outbox.release_all();
  return out;
}

std::uint64_t checks(const units::ServerStats& st, model::EvidenceCheck c) {
  return st.ev_checks[static_cast<std::size_t>(c)].load();
}

}  // namespace

TEST_CASE("a checkpoint in fragments is stored once, verified, and acknowledged after its commit", "[units][evidence]") {
  EvidenceUnit unit("tcu-ev1");
  Agent agent(with_key(unit));
  auto link = Link::connect(agent.socket_path);
  link.send(hello(unit.id));
  link.expect(EPB_MSG_WELCOME);
  send_acked(link, unit, 1, 3);
  auto ck = unit.checkpoint();
  REQUIRE(ck.size() > EPB_EVF_DATA_MAX);  // more than one fragment
  for (const auto& f : fragments(3, ck)) link.send(f);
  CHECK(link.expect(EPB_MSG_EVIDENCE_ACK).m.evidence_ack.seq == 3);
  // The ACK came after the commit: the row is there.
  auto rows = evidence_rows(*agent.outbox);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].source_id == "tcu-ev1:ev");
  CHECK(rows[0].seq == 3);
  CHECK(rows[0].container_id.empty());
  const auto& e = std::get<model::EvidenceCheckpoint>(rows[0].payload);
  CHECK(e.cose == ck);
  CHECK(e.n == 1);
  CHECK(e.check == model::EvidenceCheck::kVerified);
  CHECK(rows[0].time_utc_ms == 1795000009000ull);
  CHECK(model::default_priority(rows[0]) == model::Priority::kAlarm);
  // Resent (its ACK lost): acknowledged again at once, stored once.
  for (const auto& f : fragments(3, ck)) link.send(f);
  CHECK(link.expect(EPB_MSG_EVIDENCE_ACK).m.evidence_ack.seq == 3);
  CHECK(evidence_rows(*agent.outbox).size() == 1);
  // The next one follows on: verified too.
  send_acked(link, unit, 4, 9);
  auto ck2 = unit.checkpoint();
  for (const auto& f : fragments(9, ck2)) link.send(f);
  CHECK(link.expect(EPB_MSG_EVIDENCE_ACK).m.evidence_ack.seq == 9);
  CHECK(checks(agent.stats(), model::EvidenceCheck::kVerified) == 2);
  CHECK(agent.stats().ev_checkpoints_stored.load() == 2);
  CHECK(agent.stats().ev_checkpoints_duplicate.load() == 1);
  CHECK(agent.stats().ev_heads_checked.load() == 2);  // every reading of both ranges was stored here
  CHECK(evidence_rows(*agent.outbox).size() == 2);
  auto health = units::evidence_health_json(agent.stats());
  CHECK(health.find("\"good\":2") != std::string::npos);
  CHECK(health.find("\"bad\":0") != std::string::npos);
  // The readings themselves are untouched by it.
  CHECK(agent.outbox->last_seq("tcu-ev1") == 9);
}

TEST_CASE("corrupted, dropped, reordered, duplicated fragments and a flood store nothing until a whole resend",
          "[units][evidence]") {
  EvidenceUnit unit("tcu-ev2");
  Agent agent(with_key(unit));
  auto link = Link::connect(agent.socket_path);
  for (auto s = 1; s <= 5; ++s) (void)unit.take(static_cast<std::uint64_t>(s));
  auto ck = unit.checkpoint();
  auto f = fragments(5, ck);
  REQUIRE(f.size() >= 2);
  // Before WELCOME: dropped, unanswered.
  for (const auto& x : f) link.send(x);
  link.expect_silence();
  CHECK(agent.stats().ev_fragments_dropped.load() == f.size());
  link.send(hello(unit.id));
  link.expect(EPB_MSG_WELCOME);
  for (auto s = 1; s <= 5; ++s) link.send(reading(static_cast<std::uint64_t>(s)));
  std::uint64_t acked = 0;
  while (acked < 5) acked = link.expect(EPB_MSG_ACK).m.ack.seq;

  std::vector<std::uint8_t> junk(EPB_EV_CHECKPOINT_MAX, 0x5a);
  auto abandon = [&] { link.send(fragments(99, junk)[1]); };  // a stray fragment: whatever was pending is dropped
  // Dropped: the first fragment missing.
  for (std::size_t i = 1; i < f.size(); ++i) link.send(f[i]);
  link.expect_silence();
  // Corrupted: the last fragment's frame with one byte flipped (bad CRC).
  auto bad = link.frame(f.back());
  bad[bad.size() / 2] ^= 0x01;
  for (std::size_t i = 0; i + 1 < f.size(); ++i) link.send(f[i]);
  link.raw(bad);
  abandon();
  link.expect_silence();
  // Reordered: the last before the others.
  link.send(f.back());
  for (std::size_t i = 0; i + 1 < f.size(); ++i) link.send(f[i]);
  abandon();
  link.expect_silence();
  // A flood of fragments that never complete (offsets past 0 of ever new
  // checkpoints): nothing grows, nothing is stored.
  for (std::uint64_t s = 100; s < 2100; ++s) link.send(fragments(s, junk)[1 + s % 3]);
  link.expect_silence();
  CHECK(evidence_rows(*agent.outbox).empty());
  CHECK(agent.stats().ev_checkpoints_received.load() == 0);
  // Duplicated fragments in a whole resend: complete, stored once.
  link.send(f[0]);
  link.send(f[0]);
  for (std::size_t i = 1; i < f.size(); ++i) {
    link.send(f[i]);
    link.send(f[i]);
  }
  CHECK(link.expect(EPB_MSG_EVIDENCE_ACK).m.evidence_ack.seq == 5);
  auto rows = evidence_rows(*agent.outbox);
  REQUIRE(rows.size() == 1);
  CHECK(std::get<model::EvidenceCheckpoint>(rows[0].payload).cose == ck);
  CHECK(std::get<model::EvidenceCheckpoint>(rows[0].payload).check == model::EvidenceCheck::kVerified);
  CHECK(agent.stats().ev_fragments_duplicate.load() >= 1);
  CHECK(agent.stats().ev_fragments_dropped.load() > 2000);
}

TEST_CASE("a bad signature or a broken chain is counted and alarmed, and still stored and forwarded",
          "[units][evidence]") {
  EvidenceUnit unit("tcu-ev3");
  Agent agent(with_key(unit));
  auto link = Link::connect(agent.socket_path);
  link.send(hello(unit.id));
  link.expect(EPB_MSG_WELCOME);
  send_acked(link, unit, 1, 2);
  auto ck = unit.checkpoint();
  ck[ck.size() - 1] ^= 0x01;  // the signature's last byte
  for (const auto& f : fragments(2, ck)) link.send(f);
  CHECK(link.expect(EPB_MSG_EVIDENCE_ACK).m.evidence_ack.seq == 2);
  // The unit drops a checkpoint: the next one does not follow on.
  send_acked(link, unit, 3, 4);
  (void)unit.checkpoint();
  send_acked(link, unit, 5, 6);
  auto ck3 = unit.checkpoint();
  for (const auto& f : fragments(6, ck3)) link.send(f);
  CHECK(link.expect(EPB_MSG_EVIDENCE_ACK).m.evidence_ack.seq == 6);
  // Not a checkpoint at all, and another unit's: forwarded as sent.
  send_acked(link, unit, 7, 7);
  std::vector<std::uint8_t> junk(40, 0x11);
  for (const auto& f : fragments(7, junk)) link.send(f);
  CHECK(link.expect(EPB_MSG_EVIDENCE_ACK).m.evidence_ack.seq == 7);
  auto rows = evidence_rows(*agent.outbox);
  REQUIRE(rows.size() == 3);
  CHECK(std::get<model::EvidenceCheckpoint>(rows[0].payload).check == model::EvidenceCheck::kBadSignature);
  CHECK(std::get<model::EvidenceCheckpoint>(rows[0].payload).cose == ck);
  CHECK(std::get<model::EvidenceCheckpoint>(rows[1].payload).check == model::EvidenceCheck::kVerified);
  CHECK(std::get<model::EvidenceCheckpoint>(rows[2].payload).check == model::EvidenceCheck::kMalformed);
  CHECK(std::get<model::EvidenceCheckpoint>(rows[2].payload).n == 0);
  CHECK(checks(agent.stats(), model::EvidenceCheck::kBadSignature) == 1);
  CHECK(checks(agent.stats(), model::EvidenceCheck::kMalformed) == 1);
  // The first checkpoint after the bad one is the first accepted: nothing to
  // follow yet, so it verifies; a checkpoint that skips one is a broken chain.
  send_acked(link, unit, 8, 8);
  (void)unit.checkpoint();  // withheld
  send_acked(link, unit, 9, 9);
  auto ck5 = unit.checkpoint();
  for (const auto& f : fragments(9, ck5)) link.send(f);
  CHECK(link.expect(EPB_MSG_EVIDENCE_ACK).m.evidence_ack.seq == 9);
  CHECK(checks(agent.stats(), model::EvidenceCheck::kBrokenChain) == 1);
  auto health = units::evidence_health_json(agent.stats());
  CHECK(health.find("\"bad\":3") != std::string::npos);
}

TEST_CASE("a unit without an evidence key: forwarded unchecked, a full store: no EVIDENCE_ACK", "[units][evidence]") {
  EvidenceUnit unit("tcu-ev4");
  {
    Agent agent;  // no keys
    auto link = Link::connect(agent.socket_path);
    link.send(hello(unit.id));
    link.expect(EPB_MSG_WELCOME);
    send_acked(link, unit, 1, 1);
    auto ck = unit.checkpoint();
    for (const auto& f : fragments(1, ck)) link.send(f);
    CHECK(link.expect(EPB_MSG_EVIDENCE_ACK).m.evidence_ack.seq == 1);
    auto rows = evidence_rows(*agent.outbox);
    REQUIRE(rows.size() == 1);
    CHECK(std::get<model::EvidenceCheckpoint>(rows[0].payload).check == model::EvidenceCheck::kUnchecked);
  }
  store::OutboxOptions oo;
  oo.max_bytes = 1;  // nothing fits
  Agent full(with_key(unit), {}, oo);
  auto link = Link::connect(full.socket_path);
  link.send(hello(unit.id, kContainer, 2));
  link.expect(EPB_MSG_WELCOME);
  (void)unit.take(2);
  auto ck = unit.checkpoint();
  for (const auto& f : fragments(2, ck)) link.send(f);
  link.expect_silence();  // refused: never acknowledged, the unit keeps it
  eventually([&] { return full.stats().ev_checkpoints_refused.load() == 1; });
  CHECK(full.stats().ev_acks_sent.load() == 0);
}

TEST_CASE("a unit id ending in :ev is refused: it names a unit's evidence source", "[units][evidence]") {
  Agent agent;
  auto link = Link::connect(agent.socket_path);
  link.send(hello("tcu-1:ev"));
  auto nack = link.expect(EPB_MSG_NACK);
  CHECK(nack.m.nack.reason == EPB_NACK_UNIT_ID);
}

TEST_CASE("the head over the readings stored here: an altered or missing reading is a readings mismatch",
          "[units][evidence]") {
  EvidenceUnit unit("tcu-ev5");
  Agent agent(with_key(unit));
  auto link = Link::connect(agent.socket_path);
  link.send(hello(unit.id));
  link.expect(EPB_MSG_WELCOME);
  send_acked(link, unit, 1, 4);
  for (const auto& f : fragments(4, unit.checkpoint())) link.send(f);
  CHECK(link.expect(EPB_MSG_EVIDENCE_ACK).m.evidence_ack.seq == 4);
  // Reading 6 on the wire is not the one the unit's chain holds.
  (void)unit.take(5);
  (void)unit.take(6);
  link.send(reading(5));
  auto altered = reading(6);
  altered.m.reading.u.sensor.temperature_centi_c = 2500;
  link.send(altered);
  std::uint64_t acked = 0;
  while (acked < 6) acked = link.expect(EPB_MSG_ACK).m.ack.seq;
  for (const auto& f : fragments(6, unit.checkpoint())) link.send(f);
  CHECK(link.expect(EPB_MSG_EVIDENCE_ACK).m.evidence_ack.seq == 6);
  // The next range verifies from that checkpoint's head.
  send_acked(link, unit, 7, 8);
  for (const auto& f : fragments(8, unit.checkpoint())) link.send(f);
  CHECK(link.expect(EPB_MSG_EVIDENCE_ACK).m.evidence_ack.seq == 8);
  auto rows = evidence_rows(*agent.outbox);
  REQUIRE(rows.size() == 3);
  CHECK(std::get<model::EvidenceCheckpoint>(rows[0].payload).check == model::EvidenceCheck::kVerified);
  CHECK(std::get<model::EvidenceCheckpoint>(rows[1].payload).check == model::EvidenceCheck::kReadingsMismatch);
  CHECK(std::get<model::EvidenceCheckpoint>(rows[2].payload).check == model::EvidenceCheck::kVerified);
  CHECK(agent.stats().ev_heads_checked.load() == 3);
  CHECK(agent.stats().ev_heads_unchecked.load() == 0);
}
