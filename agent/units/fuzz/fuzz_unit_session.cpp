// libFuzzer target for the unit session state machine (docs/testing.md): a
// real bridge Server, Ingest and Outbox in this process (store on tmpfs),
// driven over its real UNIX socket by up to two links whose frames are
// decoded from the fuzz input: HELLOs for one of two unit ids (oldest_seq
// near 1, near the stored seq, near EPB_SEQ_MAX, anywhere), readings in
// order, near 1, near EPB_SEQ_MAX, jumps and repeats, bursts, DISCARDs,
// PINGs, agent-to-unit messages, raw bytes, link closes and storms of up to
// 65,536 HELLOs. Unit "a" of every input has a key at the agent (section 13
// of the spec): its HELLOs are challenged, and the harness answers with the
// right key, a wrong one or not at all, as the input says; an authenticated
// link then seals what it sends. Invariants, checked on every message the
// agent sends:
//  - a unit with a key is never welcomed or acknowledged unsealed, nor on a
//    link whose AUTH was wrong or missing;
//  - no ACK (and no WELCOME) ever carries a seq above what that unit has in
//    custody: the Outbox's last_seq for it, or below an oldest_seq it said
//    in a HELLO (seqs it released);
//  - no crash, no sanitizer report, memory within libFuzzer's -rss_limit_mb.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "eport/units/net.h"
#include "eport/units/server.h"
#include "eport/ingest/ingest.h"
#include "eport/log/log.h"
#include "eport/model/reading.h"
#include "eport/store/outbox.h"
#include "epb/epb.h"

using namespace eport;
using namespace std::chrono_literals;

namespace {

// One agent serves kInputsPerAgent inputs (starting one costs more than
// most inputs); each input has unit ids of its own, so that what an earlier
// one stored does not decide what this one sees, beyond the store's fill.
constexpr int kInputsPerAgent = 64;
constexpr const char* kContainer = "CSQU3054383";

[[noreturn]] void invariant_broken(const std::string& what) {
  std::fprintf(stderr, "INVARIANT BROKEN: %s\n", what.c_str());
  std::abort();
}

// The input, read front to back; zeros once it runs out.
struct Input {
  const std::uint8_t* p;
  std::size_t n;
  std::uint8_t byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  std::uint64_t u64() {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = v << 8 | byte();
    return v;
  }
  bool empty() const { return n == 0; }
};

struct Agent {
  std::string dir;
  std::unique_ptr<store::Outbox> outbox;
  std::unique_ptr<ingest::Ingest> ingest;
  std::unique_ptr<units::Server> server;
  std::string socket_path;

  // Keys for unit "a" of the kInputsPerAgent inputs this agent serves.
  static std::array<std::uint8_t, EPB_KEY_LEN> key_of(const std::string& unit) {
    std::array<std::uint8_t, EPB_KEY_LEN> k{};
    epb_sha256(reinterpret_cast<const std::uint8_t*>(unit.data()), unit.size(), k.data());
    return k;
  }
  static std::string keyed_unit(std::uint64_t input) { return "i" + std::to_string(input) + "-a"; }

  explicit Agent(std::uint64_t first_input) {
    std::string base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path().string();
    std::string tmpl = base + "/eport-fuzz-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    dir = tmpl;
    store::OutboxOptions oo;
    oo.path = dir + "/outbox.db";
    oo.durability = store::Durability::kNormal;
    oo.min_free_bytes = 0;
    oo.max_bytes = 1 << 20;  // small: refusals (STORE_FULL) are part of the game
    oo.startup_check_budget = 0ms;
    auto ob = store::Outbox::open(oo);
    if (!ob) invariant_broken("outbox: " + ob.error());
    outbox = std::move(ob).value();
    ingest::IngestOptions io;
    io.commit_interval = 1ms;
    ingest = std::make_unique<ingest::Ingest>(io, *outbox, nullptr);
    socket_path = dir + "/bridge.sock";
    units::ServerOptions so;
    so.unix_socket = socket_path;
    so.gateway_id = "gw-fuzz";
    so.window = 8;  // small: WINDOW refusals too
    so.max_seq_jump = std::uint64_t{1} << 20;
    so.hello_deadline = 60s;
    so.idle_ping_after = 60s;
    for (std::uint64_t i = first_input; i < first_input + kInputsPerAgent; ++i) so.auth_keys[keyed_unit(i)] = key_of(keyed_unit(i));
    server = std::make_unique<units::Server>(
        so, *ingest, [this](std::string_view unit) { return outbox->last_seq(unit); },
        [](const model::Reading& r) { return model::default_priority(r); });
    ingest->start();
    if (auto st = server->start(); !st) invariant_broken("server: " + st.error());
  }
  ~Agent() {
    server->stop();
    ingest->stop();
    server.reset();
    ingest.reset();
    outbox.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

struct Harness;

struct Link {
  int fd = -1;
  epb_decoder dec;
  std::deque<std::string> hellos;  // unit id of each HELLO awaiting WELCOME or refusal
  std::string unit;                // the unit of its latest WELCOME, "" if none or unknown
  std::uint64_t next_seq = 1;  // what its unit sends next (the harness's guess)
  // Authentication: how to answer the next CHALLENGE (0 right key, 1 wrong
  // key, 2 not at all), the HELLO it is for, and the session once sealed.
  std::uint8_t auth_mode = 0;
  epb_message last_hello{};
  bool authenticated = false;  // its latest AUTH used the right key
  epb_auth auth{};
  bool sealed = false;
};

struct Harness {
  Agent& agent;
  std::string prefix;  // of this input's unit ids
  std::array<std::string, 2> units;
  std::array<Link, 2> links;
  // Per unit: the highest seq it released by a HELLO's oldest_seq (oldest - 1).
  std::map<std::string, std::uint64_t> released;
  std::uint64_t acks = 0;

  Harness(Agent& a, std::uint64_t input) : agent(a), prefix("i" + std::to_string(input)) {
    units = {prefix + "-a", prefix + "-b"};
  }
  ~Harness() {
    for (auto& l : links) close_link(l);
  }

  void open_link(Link& l) {
    close_link(l);
    auto fd = units::net::connect_endpoint("unix:" + agent.socket_path);
    if (!fd) return;  // refused (should not happen): ops on it are no-ops
    l.fd = *fd;
    epb_decoder_init(&l.dec);
    l.dec.auth = &l.auth;  // links live in a std::array: stable addresses
    l.hellos.clear();
    l.unit.clear();
    l.sealed = false;
    l.authenticated = false;
    epb_auth_clear(&l.auth);
  }
  void close_link(Link& l) {
    if (l.fd >= 0) close(l.fd);
    l.fd = -1;
  }

  std::uint64_t bound(const std::string& unit) {
    auto r = released.find(unit);
    return std::max(agent.outbox->last_seq(unit), r == released.end() ? 0 : r->second);
  }

  void check_seq(const Link& l, std::uint64_t seq, const char* what) {
    if (l.unit.empty()) return;  // a HELLO the fuzzer made of raw bytes: unit unknown
    std::uint64_t b = bound(l.unit);
    if (seq > b) {
      invariant_broken(std::string(what) + " " + std::to_string(seq) + " for " + l.unit +
                       " above its custody bound " + std::to_string(b));
    }
  }

  bool keyed(const std::string& unit) const { return unit == units[0]; }

  // A unit with a key gets WELCOME and ACK only sealed, after a right AUTH.
  void check_auth(const Link& l, const epb_message& m, const char* what) {
    if (l.unit.empty() || !keyed(l.unit)) return;
    if (!m.sealed || !l.authenticated) {
      invariant_broken(std::string(what) + " for " + l.unit + (m.sealed ? " after a wrong AUTH" : " unsealed"));
    }
  }

  void on_challenge(Link& l, const epb_challenge& c) {
    if (l.auth_mode == 2 || l.last_hello.type != EPB_MSG_HELLO) return;
    const auto& h = l.last_hello.m.hello;
    std::string id(h.unit_id, h.unit_id_len);
    auto key = Agent::key_of(id);
    if (l.auth_mode == 1) key[0] ^= 1;
    epb_message a{};
    a.type = EPB_MSG_AUTH;
    for (std::size_t i = 0; i < EPB_NONCE_LEN; ++i) a.m.auth.unit_nonce[i] = static_cast<std::uint8_t>(acks + i);
    std::uint8_t sk[EPB_SHA256_LEN];
    epb_auth_session_key(key.data(), h.unit_id, h.unit_id_len, c.agent_nonce, a.m.auth.unit_nonce, sk);
    epb_auth_proof(sk, &l.last_hello, a.m.auth.proof);
    l.sealed = false;
    send(l, a);
    epb_auth_start(&l.auth, sk, 1);
    l.sealed = true;
    l.authenticated = l.auth_mode == 0;
  }

  void on_message(Link& l, const epb_message& m) {
    switch (m.type) {
      case EPB_MSG_CHALLENGE:
        on_challenge(l, m.m.challenge);
        break;
      case EPB_MSG_WELCOME: {
        // Which HELLO it answers: a sealed WELCOME can only answer a keyed
        // unit's (after its AUTH), an unsealed one only an unkeyed unit's.
        // HELLOs skipped over were superseded by a later one before their
        // AUTH (the agent then drops them without an answer).
        bool keyed_pending = false;
        while (!l.hellos.empty() && keyed(l.hellos.front()) != (m.sealed != 0)) {
          keyed_pending |= keyed(l.hellos.front());
          l.hellos.pop_front();
        }
        if (!l.hellos.empty()) {
          l.unit = l.hellos.front();
          l.hellos.pop_front();
        } else if (!m.sealed && keyed_pending) {
          invariant_broken("an unsealed WELCOME while only HELLOs of a unit with a key were waiting");
        } else {
          l.unit.clear();  // a HELLO of its raw bytes: unknown unit
        }
        if (!m.sealed) l.sealed = false;  // the agent ended any sealed session of the link
        check_seq(l, m.m.welcome.last_stored_seq, "WELCOME");
        check_auth(l, m, "WELCOME");
        l.next_seq = m.m.welcome.last_stored_seq + 1;
        break;
      }
      case EPB_MSG_NACK:
        if (m.m.nack.seq == 0 && (m.m.nack.reason == EPB_NACK_SEQ_RANGE || m.m.nack.reason == EPB_NACK_UNIT_ID ||
                                  m.m.nack.reason == EPB_NACK_CONTAINER_ID || m.m.nack.reason == EPB_NACK_AUTH) &&
            !l.hellos.empty()) {
          l.hellos.pop_front();  // that HELLO was refused; the session stays as it was
        }
        break;
      case EPB_MSG_ACK:
        ++acks;
        check_seq(l, m.m.ack.seq, "ACK");
        check_auth(l, m, "ACK");
        break;
      default:
        break;
    }
  }

  // Reads whatever the agent sent on every link; true if anything came.
  bool pump(int timeout_ms) {
    pollfd p[2];
    int n = 0;
    for (auto& l : links) {
      if (l.fd >= 0) p[n++] = {l.fd, POLLIN, 0};
    }
    if (n == 0) return false;
    if (poll(p, static_cast<nfds_t>(n), timeout_ms) <= 0) return false;
    bool got = false;
    for (auto& l : links) {
      if (l.fd < 0) continue;
      std::uint8_t buf[16384];
      ssize_t r = recv(l.fd, buf, sizeof buf, MSG_DONTWAIT);
      if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        close_link(l);  // the agent closed it (takeover, drop)
        got = true;
        continue;
      }
      if (r < 0) continue;
      got = true;
      std::size_t off = 0;
      while (off < static_cast<std::size_t>(r)) {
        epb_message m;
        epb_status st;
        off += epb_decoder_feed(&l.dec, buf + off, static_cast<std::size_t>(r) - off, &m, &st);
        if (st == EPB_OK) on_message(l, m);
      }
    }
    return got;
  }

  // Writes all of it, reading meanwhile (the agent drops a link that does
  // not read its answers).
  void raw(Link& l, const std::uint8_t* data, std::size_t size) {
    std::size_t off = 0;
    auto deadline = std::chrono::steady_clock::now() + 2s;
    while (off < size && l.fd >= 0) {
      ssize_t w = ::send(l.fd, data + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0) {
        off += static_cast<std::size_t>(w);
        continue;
      }
      if (w < 0 && errno != EAGAIN && errno != EINTR) {
        close_link(l);
        return;
      }
      if (std::chrono::steady_clock::now() > deadline) return;  // the agent holds back (backpressure)
      pump(1);
    }
  }
  void send(Link& l, const epb_message& m) {
    std::uint8_t buf[EPB_MAX_ENCODED];
    std::size_t n = l.sealed && m.type != EPB_MSG_HELLO && m.type != EPB_MSG_AUTH
                        ? epb_encode_sealed(&m, &l.auth, buf, sizeof buf)
                        : epb_encode(&m, buf, sizeof buf);
    if (n > 0) raw(l, buf, n);
  }

  // Until the agent has answered everything: ingest idle and nothing more
  // arriving for a while.
  void settle() {
    auto deadline = std::chrono::steady_clock::now() + 2s;
    int quiet = 0;
    while (std::chrono::steady_clock::now() < deadline && quiet < 3) {
      bool got = pump(2);
      quiet = (!got && agent.ingest->queued() == 0) ? quiet + 1 : 0;
    }
  }

  std::uint64_t pick_seq(Input& in, const Link& l) {
    std::uint8_t mode = in.byte();
    switch (mode % 6) {
      case 0: return l.next_seq;
      case 1: return 1 + mode / 6 % 4;
      case 2: return EPB_SEQ_MAX - mode / 6 % 4;
      case 3: return l.next_seq + mode / 6;
      case 4: return l.next_seq > 1 ? l.next_seq - 1 - mode / 6 % 4 : 1;
      default: return (in.u64() % EPB_SEQ_MAX) + 1;
    }
  }

  epb_message hello(int unit, std::uint64_t oldest, std::uint64_t next) const {
    epb_message m{};
    m.type = EPB_MSG_HELLO;
    auto& h = m.m.hello;
    const auto& id = units[static_cast<std::size_t>(unit)];
    h.unit_id_len = static_cast<std::uint8_t>(id.size());
    std::memcpy(h.unit_id, id.data(), id.size());
    h.container_id_len = static_cast<std::uint8_t>(std::strlen(kContainer));
    std::memcpy(h.container_id, kContainer, h.container_id_len);
    h.firmware_len = 2;
    std::memcpy(h.firmware, "fz", 2);
    h.next_seq = next;
    h.oldest_seq = oldest;
    return m;
  }

  void say_hello(Link& l, int unit, std::uint64_t oldest, std::uint64_t next) {
    if (l.fd < 0) open_link(l);
    if (l.fd < 0) return;
    auto& r = released[units[static_cast<std::size_t>(unit)]];
    r = std::max(r, oldest - 1);
    l.hellos.push_back(units[static_cast<std::size_t>(unit)]);
    // A delimiter first, as units do (7.1): raw bytes before must not swallow
    // this HELLO, or its WELCOME would be taken for the next one's.
    static constexpr std::uint8_t kDelimiter = 0;
    raw(l, &kDelimiter, 1);
    l.last_hello = hello(unit, oldest, next);
    l.sealed = false;  // every HELLO ends the unit's session key (13.3)
    l.authenticated = false;
    epb_auth_clear(&l.auth);
    send(l, l.last_hello);
  }

  static epb_message reading(std::uint64_t seq, std::uint8_t kind) {
    epb_message m{};
    m.type = EPB_MSG_READING;
    auto& r = m.m.reading;
    r.seq = seq;
    r.time_utc_ms = kind & 1 ? 0 : 1795000000000ull + seq % 1000;  // 0: the unit has no clock
    r.kind = EPB_READING_SENSOR;
    r.u.sensor.present = EPB_SENSOR_TEMPERATURE;
    r.u.sensor.temperature_centi_c = static_cast<std::int16_t>(kind);
    return m;
  }

  void run(Input in) {
    bool stormed = false;
    while (!in.empty()) {
      std::uint8_t op = in.byte();
      Link& l = links[op >> 7];
      switch (op & 7) {
        case 0: {  // HELLO
          int unit = (op >> 3) & 1;
          std::uint8_t mode = in.byte();
          std::uint64_t oldest;
          switch (mode % 4) {
            case 0: oldest = 1; break;
            case 1: oldest = agent.outbox->last_seq(units[static_cast<std::size_t>(unit)]) + 1 + mode / 4 % 8; break;
            case 2: oldest = EPB_SEQ_MAX - mode / 4 % 8; break;
            default: oldest = in.u64() % EPB_SEQ_MAX + 1; break;
          }
          std::uint64_t next = std::min<std::uint64_t>(EPB_SEQ_MAX, oldest + in.byte());
          l.auth_mode = static_cast<std::uint8_t>((op >> 4) % 3);
          say_hello(l, unit, oldest, next);
          break;
        }
        case 1: {  // one READING
          if (l.fd < 0) break;
          auto seq = pick_seq(in, l);
          send(l, reading(seq, in.byte()));
          if (seq >= l.next_seq && seq < EPB_SEQ_MAX) l.next_seq = seq + 1;
          break;
        }
        case 2: {  // DISCARD
          if (l.fd < 0) break;
          auto first = pick_seq(in, l);
          std::uint64_t span = in.byte();
          epb_message m{};
          m.type = EPB_MSG_DISCARD;
          m.m.discard.first_seq = first;
          m.m.discard.last_seq = std::min<std::uint64_t>(EPB_SEQ_MAX, first + span);
          m.m.discard.reason = static_cast<std::uint8_t>(1 + in.byte() % EPB_DISCARD_REASON_MAX);
          send(l, m);
          if (m.m.discard.last_seq >= l.next_seq && m.m.discard.last_seq < EPB_SEQ_MAX) {
            l.next_seq = m.m.discard.last_seq + 1;
          }
          break;
        }
        case 3: {  // a burst of readings in order
          if (l.fd < 0) break;
          int count = in.byte() % 64;
          std::vector<std::uint8_t> out;
          for (int i = 0; i < count && l.next_seq <= EPB_SEQ_MAX; ++i) {
            std::uint8_t buf[EPB_MAX_ENCODED];
            auto m = reading(l.next_seq++, static_cast<std::uint8_t>(i));
            auto n = l.sealed ? epb_encode_sealed(&m, &l.auth, buf, sizeof buf) : epb_encode(&m, buf, sizeof buf);
            out.insert(out.end(), buf, buf + n);
          }
          raw(l, out.data(), out.size());
          break;
        }
        case 4: {  // raw bytes
          if (l.fd < 0) open_link(l);
          std::size_t n = in.byte() % 64;
          std::vector<std::uint8_t> bytes;
          while (n-- > 0) bytes.push_back(in.byte());
          if (l.fd >= 0) raw(l, bytes.data(), bytes.size());
          break;
        }
        case 5: {  // PING, SETTINGS_ACK or a message of the wrong direction
          if (l.fd < 0) break;
          epb_message m{};
          std::uint8_t which = in.byte();
          static constexpr epb_msg_type kTypes[] = {EPB_MSG_PING, EPB_MSG_SETTINGS_ACK, EPB_MSG_PONG, EPB_MSG_ACK,
                                                    EPB_MSG_WELCOME, EPB_MSG_NACK, EPB_MSG_TIME_SYNC,
                                                    EPB_MSG_SETTINGS};
          m.type = kTypes[which % 8];
          if (m.type == EPB_MSG_WELCOME) m.m.welcome.window = 1;
          if (m.type == EPB_MSG_NACK) m.m.nack.reason = 1;
          send(l, m);
          break;
        }
        case 6:  // close the link (the unit goes away) and maybe reopen it
          close_link(l);
          if (op & 8) open_link(l);
          break;
        case 7: {  // settle, or (once per input, op 0x0F, 0x1F, 0x8F, 0x9F) a storm of HELLOs
          if ((op & 0x68) != 0x08 || stormed) {
            settle();
            break;
          }
          stormed = true;
          if (l.fd < 0) open_link(l);
          if (l.fd < 0) break;
          std::size_t count = std::size_t{1} << (in.byte() % 17);  // 1 .. 65,536
          bool distinct = op & 16;
          std::vector<std::uint8_t> out{0};  // a delimiter first, as before any HELLO
          for (std::size_t i = 0; i < count; ++i) {
            epb_message m;
            if (distinct) {
              std::string id = prefix + "-s" + std::to_string(i);
              m = hello(0, 1, 1);
              m.m.hello.unit_id_len = static_cast<std::uint8_t>(id.size());
              std::memcpy(m.m.hello.unit_id, id.data(), id.size());
              l.hellos.push_back(id);
            } else {
              int unit = static_cast<int>(i & 1);
              m = hello(unit, 1, 1);
              l.hellos.push_back(units[static_cast<std::size_t>(unit)]);
            }
            std::uint8_t buf[EPB_MAX_ENCODED];
            auto n = epb_encode(&m, buf, sizeof buf);
            out.insert(out.end(), buf, buf + n);
          }
          raw(l, out.data(), out.size());
          break;
        }
      }
      pump(0);
    }
    settle();
  }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  log::set_level(log::Level::kError);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 4096) return -1;
  static std::unique_ptr<Agent> agent;
  static std::uint64_t inputs = 0;
  if (inputs % kInputsPerAgent == 0) {
    agent.reset();
    agent = std::make_unique<Agent>(inputs);
  }
  Harness h(*agent, inputs++);
  h.open_link(h.links[0]);
  h.run(Input{data, size});
  return 0;
}
