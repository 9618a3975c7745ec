// Drain benchmark: the real eport-agent drains an N-reading backlog (default
// 1,000,000) from its outbox to a mosquitto started on a free loopback port,
// next to two baselines measured in the same run against the same broker: a
// raw Paho publish loop of the very envelopes the agent sent, and one JSON
// message per reading, both QoS 1 with the agent's in-flight bound. Prints
// readings/s, MB/s and the agent's peak RSS; asserts nothing.
// Usage: eport-drain-bench [N] [--agent PATH] [--mosquitto PATH] [--inflight K]
//                          [--set section.key=value]... [--keep]
// --set adds a key to the agent's config (e.g. --set store.durability=\"normal\"
// or --set publish.max_readings=1000; the value is TOML).
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mqtt/async_client.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "eport/codec/codec.h"
#include "eport/codec/packer.h"
#include "eport/codec/topics.h"
#include "eport/store/outbox.h"
#include "eport/uplink/publisher.h"
#include "fleet.h"

namespace {

namespace fs = std::filesystem;
namespace model = eport::model;
namespace codec = eport::codec;
using Clock = std::chrono::steady_clock;

constexpr const char* kSite = "cnsha";
constexpr const char* kGateway = "gw-drain-01";
constexpr int kUnits = 500;

double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::uint64_t now_utc_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

// ---- the backlog: reading i of N ------------------------------------------------

struct Fleet {
  std::vector<std::string> ids, containers;
  Fleet() {
    for (int u = 0; u < kUnits; ++u) {
      ids.push_back(eport::sim::unit_id("tcu", u));
      containers.push_back(eport::sim::container_id(u));
    }
  }
  model::Reading reading(std::uint64_t i) const {
    auto u = static_cast<std::size_t>(i % kUnits);
    return eport::sim::make_reading(7, static_cast<int>(u), ids[u], containers[u], i / kUnits + 1,
                                    1795000000000ull + i * 20);
  }
};

// ---- processes ---------------------------------------------------------------------

int free_port() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  close(s);
  return ntohs(a.sin_port);
}

bool wait_port(int port, std::chrono::seconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    int rc = connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    close(s);
    if (rc == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// fork + exec with stdout/stderr to a log file. Only async-signal-safe calls
// between fork and exec: Paho threads may already be running.
pid_t spawn(const std::vector<std::string>& args, const std::string& log_path) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fd, 1);
    dup2(fd, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fd);
  return pid;
}

bool exited(pid_t pid) { return waitpid(pid, nullptr, WNOHANG) == pid; }

void stop(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  for (int i = 0; i < 200; ++i) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

// One field of /proc/PID/status in KiB (VmRSS, VmHWM, RssAnon, RssFile).
long status_kib(pid_t pid, const char* field) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  std::size_t n = std::strlen(field);
  while (std::getline(f, line))
    if (line.compare(0, n, field) == 0 && line.size() > n && line[n] == ':') return std::atol(line.c_str() + n + 1);
  return 0;
}

// CPU seconds (user + system) of a process, and of each of its threads
// ("name/tid" -> seconds), from /proc.
double cpu_seconds(const std::string& stat_path, std::string* name = nullptr) {
  std::ifstream f(stat_path);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto open = s.find('('), close = s.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return 0;
  if (name) *name = s.substr(open + 1, close - open - 1);
  // After ") ": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15)
  std::vector<std::string> fields;
  std::size_t pos = close + 2;
  while (pos < s.size() && fields.size() < 13) {
    auto sp = s.find(' ', pos);
    fields.push_back(s.substr(pos, sp - pos));
    if (sp == std::string::npos) break;
    pos = sp + 1;
  }
  if (fields.size() < 13) return 0;
  return static_cast<double>(std::atoll(fields[11].c_str()) + std::atoll(fields[12].c_str())) /
         static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::string thread_cpu(pid_t pid) {
  std::string out;
  std::error_code ec;
  for (const auto& t : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::string name;
    double s = cpu_seconds(t.path().string() + "/stat", &name);
    if (s >= 0.05) out += " " + name + "/" + t.path().filename().string() + " " + std::to_string(s).substr(0, 5) + " s;";
  }
  return out;
}

std::string tail_of(const std::string& path, std::size_t bytes = 2000) {
  std::ifstream f(path);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return s.size() > bytes ? s.substr(s.size() - bytes) : s;
}

// ---- the counting subscriber ---------------------------------------------------------

// Subscribes to every data topic and every per-reading JSON topic and counts
// what arrives: readings (envelopes are decoded: also zstd ones), messages,
// payload bytes, time of the first and the last message of the current phase.
// Optionally keeps the envelopes (the raw loop republishes exactly those).
class Counter {
 public:
  explicit Counter(const std::string& uri) : cli_(uri, "eport-drain-bench-sub", mqtt::create_options(MQTTVERSION_3_1_1)) {
    cli_.set_message_callback([this](mqtt::const_message_ptr m) { on_message(std::move(m)); });
    auto co = mqtt::connect_options_builder().clean_session(true).keep_alive_interval(std::chrono::seconds(60)).finalize();
    cli_.connect(co)->wait();
    cli_.subscribe(std::string("eport/v1/+/+/data/#"), 1)->wait();
    cli_.subscribe(std::string("eport/v1/+/+/+/json"), 1)->wait();
  }
  ~Counter() {
    try {
      cli_.disconnect()->wait_for(std::chrono::seconds(2));
    } catch (const mqtt::exception&) {
    }
  }

  struct Phase {
    std::uint64_t readings = 0, messages = 0, bytes = 0;
    std::uint64_t undecodable = 0;
    Clock::time_point first{}, last{};
    double decode_s = 0;
  };

  void reset(bool capture) {
    std::lock_guard l(mu_);
    p_ = Phase{};
    capture_ = capture;
    captured_.clear();
  }
  // Waits until `readings` have arrived, the deadline passes or give_up() is true.
  template <class F>
  bool wait_for(std::uint64_t readings, Clock::time_point deadline, F give_up) {
    std::unique_lock l(mu_);
    while (p_.readings < readings) {
      if (Clock::now() >= deadline || give_up()) return false;
      cv_.wait_for(l, std::chrono::milliseconds(100));
    }
    return true;
  }
  Phase phase() {
    std::lock_guard l(mu_);
    return p_;
  }
  std::vector<mqtt::const_message_ptr> take_captured() {
    std::lock_guard l(mu_);
    return std::move(captured_);
  }

 private:
  void on_message(mqtt::const_message_ptr m) {
    const auto& payload = m->get_payload_ref();
    bool json = m->get_topic().size() > 5 && m->get_topic().compare(m->get_topic().size() - 5, 5, "/json") == 0;
    std::uint64_t n = 1;
    double dt = 0;
    if (!json) {
      auto t0 = Clock::now();
      auto env = codec::decode_payload(
          std::span(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()));
      dt = secs(Clock::now() - t0);
      n = env ? env->readings.size() : 0;
    }
    auto now = Clock::now();
    {
      std::lock_guard l(mu_);
      if (p_.messages == 0) p_.first = now;
      p_.last = now;
      ++p_.messages;
      p_.readings += n;
      p_.bytes += payload.size();
      p_.decode_s += dt;
      if (!json && n == 0) ++p_.undecodable;
      if (capture_ && !json) captured_.push_back(m);
    }
    cv_.notify_all();
  }

  mqtt::async_client cli_;
  std::mutex mu_;
  std::condition_variable cv_;
  Phase p_;
  bool capture_ = false;
  std::vector<mqtt::const_message_ptr> captured_;
};

// ---- the baselines: a plain Paho QoS 1 publish loop ---------------------------------------

// Publishes every message at QoS 1 with at most `inflight` unacknowledged,
// waiting on the oldest token when the window is full. Returns the seconds
// from the first publish to the last PUBACK.
template <class Next>
double paho_loop(const std::string& uri, const char* client_id, std::size_t count, std::size_t inflight, Next next) {
  mqtt::async_client cli(uri, client_id, mqtt::create_options(MQTTVERSION_3_1_1));
  auto co = mqtt::connect_options_builder()
                .clean_session(true)
                .keep_alive_interval(std::chrono::seconds(60))
                .max_inflight(static_cast<int>(inflight) + 4)
                .finalize();
  cli.connect(co)->wait();
  std::deque<mqtt::delivery_token_ptr> window;
  auto t0 = Clock::now();
  for (std::size_t i = 0; i < count; ++i) {
    if (window.size() >= inflight) {
      window.front()->wait();
      window.pop_front();
    }
    window.push_back(cli.publish(next(i)));
  }
  for (auto& t : window) t->wait();
  double s = secs(Clock::now() - t0);
  cli.disconnect()->wait();
  return s;
}

// ---- the outbox alone, no network ----------------------------------------------------------

// Drains a copy of the backlog the way the publisher does, without MQTT:
// take a batch, optionally decode every stored reading and encode the
// envelope, ack the batch. Returns the readings drained, envelope (or body)
// bytes and seconds.
struct StoreLoop {
  std::uint64_t readings = 0, batches = 0, bytes = 0;
  double seconds = 0;
};
StoreLoop store_loop(const std::string& path, eport::store::Durability durability, std::size_t max_readings,
                     std::size_t max_bytes, bool codec_too, codec::EnvelopeFormat format, int zstd_level) {
  StoreLoop out;
  eport::store::OutboxOptions so;
  so.path = path;
  so.durability = durability;
  so.max_bytes = 1ull << 40;
  so.min_free_bytes = 0;
  auto ob = eport::store::Outbox::open(so);
  if (!ob) {
    std::fprintf(stderr, "outbox copy: %s\n", ob.error().c_str());
    return out;
  }
  codec::EnvelopePacker packer(format, zstd_level);  // the publisher's
  std::vector<model::Reading> batch;
  auto t = Clock::now();
  while (true) {
    auto rows = (*ob)->take(max_readings, max_bytes);
    if (!rows || rows->empty()) break;
    if (codec_too) {
      batch.clear();
      for (const auto& r : *rows) {
        auto x = codec::decode_reading(r.body);
        if (!x) continue;
        x->class_seq = r.class_seq;  // as the publisher numbers them (schema 1.5)
        x->class_priority = r.priority;
        batch.push_back(std::move(x).value());
      }
      codec::EnvelopeHeader h{kSite, kGateway, (*ob)->next_envelope_seq(), now_utc_ms(), rows->front().priority};
      out.bytes += packer.pack(std::move(h), batch).size();
    } else {
      for (const auto& r : *rows) out.bytes += r.body.size();
    }
    auto lease = eport::store::Lease::of(*rows);
    if (auto st = (*ob)->ack(std::span(&lease, 1)); !st) {
      std::fprintf(stderr, "outbox copy ack: %s\n", st.error().c_str());
      break;
    }
    out.readings += rows->size();
    ++out.batches;
  }
  out.seconds = secs(Clock::now() - t);
  return out;
}

void copy_store(const std::string& from, const std::string& to) {
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::error_code ec;
    fs::remove(to + suffix, ec);
    if (fs::exists(from + suffix)) fs::copy_file(from + suffix, to + suffix, ec);
  }
}

// ---- figures ---------------------------------------------------------------------------------

struct Row {
  std::string name;
  Counter::Phase p;
  double publisher_s = 0;  // raw loops: first publish to last PUBACK
  bool complete = false;
  double in_process_s = -1;  // rows measured without MQTT: their own wall time
  double seconds() const { return in_process_s >= 0 ? in_process_s : secs(p.last - p.first); }
  double rps() const { return seconds() > 0 ? static_cast<double>(p.readings) / seconds() : 0; }
  double mbps() const { return seconds() > 0 ? static_cast<double>(p.bytes) / seconds() / 1e6 : 0; }
};

void print_row(const Row& r, double raw_rps) {
  std::printf("| %-46s | %9llu | %8llu | %8.2f | %11.0f | %6.1f | %6.3f |%s\n", r.name.c_str(),
              static_cast<unsigned long long>(r.p.readings), static_cast<unsigned long long>(r.p.messages),
              r.seconds(), r.rps(), r.mbps(), raw_rps > 0 ? r.rps() / raw_rps : 0.0,
              r.complete ? "" : " INCOMPLETE");
}

std::string self_dir() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : p.parent_path().string();
}

std::string find_mosquitto() {
  for (const char* p : {"/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"})
    if (access(p, X_OK) == 0) return p;
  return "mosquitto";
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t n = 1000000;
  std::string agent_bin = self_dir() + "/../../agent/app/eport-agent";
  std::string mosquitto = find_mosquitto();
  std::size_t inflight = 16;  // mqtt.max_inflight default
  bool keep = false;
  std::map<std::string, std::string> extra;  // section -> "key = value" lines for the agent's config
  std::string settings;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--agent" && i + 1 < argc) agent_bin = argv[++i];
    else if (a == "--mosquitto" && i + 1 < argc) mosquitto = argv[++i];
    else if (a == "--inflight" && i + 1 < argc) inflight = std::strtoul(argv[++i], nullptr, 10);
    else if (a == "--keep") keep = true;
    else if (a == "--set" && i + 1 < argc) {
      std::string kv = argv[++i];
      auto dot = kv.find('.'), eq = kv.find('=');
      if (dot == std::string::npos || eq == std::string::npos || dot > eq) {
        std::fprintf(stderr, "--set wants section.key=value, got %s\n", kv.c_str());
        return 2;
      }
      extra[kv.substr(0, dot)] += kv.substr(dot + 1, eq - dot - 1) + " = " + kv.substr(eq + 1) + "\n";
      settings += " " + kv;
    }
    else if (!a.empty() && a[0] != '-') n = std::strtoull(a.c_str(), nullptr, 10);
    else {
      std::fprintf(stderr, "usage: eport-drain-bench [N] [--agent PATH] [--mosquitto PATH] [--inflight K] "
                           "[--set section.key=value]... [--keep]\n");
      return 2;
    }
  }
  auto setting = [&](const std::string& section, const std::string& key, const std::string& dflt) {
    auto& lines = extra[section];
    auto at = lines.find(key + " = ");
    if (at == std::string::npos || (at > 0 && lines[at - 1] != '\n')) return dflt;
    auto v = lines.substr(at + key.size() + 3);
    return v.substr(0, v.find('\n'));
  };
  // The agent's defaults, where --set does not say otherwise.
  const eport::uplink::PublisherOptions publish_defaults{};
  const eport::store::OutboxOptions store_defaults{};
  const bool normal_default = store_defaults.durability == eport::store::Durability::kNormal;
  const auto durability = setting("store", "durability", normal_default ? "\"normal\"" : "\"full\"") == "\"normal\""
                              ? eport::store::Durability::kNormal
                              : eport::store::Durability::kFull;
  const std::size_t max_readings =
      std::strtoul(setting("publish", "max_readings", std::to_string(publish_defaults.max_readings)).c_str(), nullptr, 10);
  const std::size_t max_bytes =
      std::strtoul(setting("publish", "max_bytes", std::to_string(publish_defaults.max_bytes)).c_str(), nullptr, 10);
  const bool zstd_default = publish_defaults.compression == eport::uplink::Compression::kZstd;
  const int zstd_level = setting("publish", "compression", zstd_default ? "\"zstd\"" : "\"none\"") == "\"zstd\""
                             ? std::atoi(setting("publish", "zstd_level", std::to_string(publish_defaults.zstd_level)).c_str())
                             : 0;
  const bool v2_default = publish_defaults.envelope_format == codec::EnvelopeFormat::kV2;
  const auto format = setting("publish", "envelope_format", v2_default ? "\"v2\"" : "\"v1\"") == "\"v1\""
                          ? codec::EnvelopeFormat::kV1
                          : codec::EnvelopeFormat::kV2;
  if (n == 0 || inflight == 0 || access(agent_bin.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "eport-drain-bench: need N > 0, K > 0 and an executable eport-agent (%s)\n", agent_bin.c_str());
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  char tmpl[] = "/tmp/eport-drain-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  chmod(dir.c_str(), 0777);  // mosquitto drops to its own user when started as root
  Fleet fleet;
  std::printf("eport-drain-bench: %llu readings from %d simulated units; QoS 1, at most %zu envelopes/messages in "
              "flight; agent config defaults%s%s; work dir %s\n",
              static_cast<unsigned long long>(n), kUnits, inflight, settings.empty() ? "" : " but", settings.c_str(),
              dir.c_str());

  // 1. The backlog: the agent's own outbox, filled through the store library
  //    (as ingest would, classes by the built-in rules).
  auto t_fill = Clock::now();
  {
    eport::store::OutboxOptions so;
    so.path = dir + "/outbox.db";
    so.durability = eport::store::Durability::kNormal;
    so.max_bytes = 1ull << 40;
    so.min_free_bytes = 0;
    auto ob = eport::store::Outbox::open(so);
    if (!ob) {
      std::fprintf(stderr, "outbox: %s\n", ob.error().c_str());
      return 1;
    }
    std::vector<eport::store::Record> recs;
    for (std::uint64_t i = 0; i < n; ++i) {
      auto r = fleet.reading(i);
      recs.push_back({r.source_id, r.seq, model::default_priority(r), now_utc_ms(), codec::encode_reading(r)});
      if (recs.size() == 5000 || i + 1 == n) {
        auto res = (*ob)->append(recs);
        if (!res) {
          std::fprintf(stderr, "outbox append: %s\n", res.error().c_str());
          return 1;
        }
        recs.clear();
      }
    }
  }
  std::uintmax_t db_bytes = fs::file_size(dir + "/outbox.db");
  std::printf("backlog: %llu readings in the outbox (%.1f MiB) in %.1f s\n", static_cast<unsigned long long>(n),
              static_cast<double>(db_bytes) / 1048576.0, secs(Clock::now() - t_fill));

  // 2. The outbox alone, on copies of the backlog: the ceiling the store sets.
  std::vector<Row> store_rows;
  for (bool codec_too : {false, true}) {
    copy_store(dir + "/outbox.db", dir + "/copy.db");
    auto r = store_loop(dir + "/copy.db", durability, max_readings, max_bytes, codec_too, format, zstd_level);
    Row row{codec_too ? (zstd_level > 0 ? "no network: take+decode+encode+zstd+ack" : "no network: take+decode+encode+ack")
                      : "no network: outbox take+ack only",
            {}, 0, r.readings == n};
    row.p.readings = r.readings;
    row.p.messages = r.batches;
    row.p.bytes = r.bytes;
    row.in_process_s = r.seconds;
    store_rows.push_back(row);
    copy_store("/dev/null/none", dir + "/copy.db");  // removes the copy
  }

  // 3. The broker and the counting subscriber.
  int port = free_port();
  std::string uri = "tcp://127.0.0.1:" + std::to_string(port);
  {
    std::ofstream c(dir + "/mosquitto.conf");
    c << "listener " << port << " 127.0.0.1\nallow_anonymous true\nuser root\n"
      << "max_queued_messages 0\nmax_inflight_messages 0\npersistence false\n";
  }
  pid_t broker = spawn({mosquitto, "-c", dir + "/mosquitto.conf"}, dir + "/mosquitto.log");
  if (!wait_port(port, std::chrono::seconds(10))) {
    std::fprintf(stderr, "mosquitto did not start: %s\n", tail_of(dir + "/mosquitto.log").c_str());
    stop(broker);
    return 1;
  }
  int rc = 0;
  std::vector<Row> rows;
  long hwm_kib = 0, peak_sampled_kib = 0, anon_kib = 0, file_kib = 0;
  double to_first_s = 0, agent_cpu_s = 0;
  std::string agent_threads;
  try {
    Counter counter(uri);
    auto deadline_for = [&](double per_s) {
      return Clock::now() + std::chrono::seconds(60 + static_cast<long>(static_cast<double>(n) / per_s));
    };

    // 4. The agent, started with the backlog waiting and the broker up.
    {
      std::ofstream c(dir + "/agent.toml");
      c << "[gateway]\nid = \"" << kGateway << "\"\nsite = \"" << kSite << "\"\n" << extra["gateway"]
        << "[bridge]\nunix_socket = \"" << dir << "/bridge.sock\"\n" << extra["bridge"]
        << "[store]\npath = \"" << dir << "/outbox.db\"\nmax_bytes = 1099511627776\nmin_free_bytes = 0\n"
        << extra["store"] << "[mqtt]\nuri = \"" << uri << "\"\nmax_inflight = " << inflight
        << "\nreconnect_min_ms = 100\nreconnect_max_ms = 1000\n" << extra["mqtt"]
        << "[log]\nlevel = \"info\"\n" << extra["log"];
      for (const auto& [section, lines] : extra)
        if (section != "gateway" && section != "bridge" && section != "store" && section != "mqtt" && section != "log")
          c << "[" << section << "]\n" << lines;
    }
    counter.reset(true);
    auto t_start = Clock::now();
    pid_t agent = spawn({agent_bin, "--config", dir + "/agent.toml"}, dir + "/agent.log");
    std::atomic<bool> sampling{true};
    std::thread sampler([&] {
      while (sampling) {
        peak_sampled_kib = std::max(peak_sampled_kib, status_kib(agent, "VmRSS"));
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    });
    Row a{"eport-agent: outbox -> envelopes -> Paho", {}, 0, false};
    a.complete = counter.wait_for(n, deadline_for(2000), [&] { return exited(agent); });
    agent_cpu_s = cpu_seconds("/proc/" + std::to_string(agent) + "/stat");
    agent_threads = thread_cpu(agent);
    hwm_kib = status_kib(agent, "VmHWM");
    anon_kib = status_kib(agent, "RssAnon");
    file_kib = status_kib(agent, "RssFile");
    sampling = false;
    sampler.join();
    a.p = counter.phase();
    to_first_s = secs(a.p.first - t_start);
    stop(agent);
    if (!a.complete) {
      std::fprintf(stderr, "agent drain incomplete (%llu of %llu readings); agent log:\n%s\n",
                   static_cast<unsigned long long>(a.p.readings), static_cast<unsigned long long>(n),
                   tail_of(dir + "/agent.log").c_str());
      rc = 1;
    }
    rows.push_back(a);
    auto envelopes = counter.take_captured();

    // 5. The same envelopes through a plain Paho loop.
    if (!envelopes.empty()) {
      std::uint64_t readings = a.p.readings;
      counter.reset(false);
      Row r{"raw Paho loop, the agent's envelopes", {}, 0, false};
      r.publisher_s = paho_loop(uri, "eport-drain-bench-raw", envelopes.size(), inflight, [&](std::size_t i) {
        return mqtt::make_message(envelopes[i]->get_topic(), envelopes[i]->get_payload_ref(), 1, false);
      });
      r.complete = counter.wait_for(readings, deadline_for(2000), [] { return false; });
      r.p = counter.phase();
      rows.push_back(r);
    }
    envelopes.clear();

    // 6. One JSON message per reading (serialised in the loop, as a gateway would).
    {
      counter.reset(false);
      Row j{"JSON, 1 message per reading, raw Paho loop", {}, 0, false};
      const std::string prefix = std::string(codec::topics::kRoot) + "/" + kSite + "/" + kGateway + "/";
      j.publisher_s = paho_loop(uri, "eport-drain-bench-json", n, inflight, [&](std::size_t i) {
        auto r = fleet.reading(i);
        return mqtt::make_message(prefix + r.source_id + "/json", codec::reading_to_json(r), 1, false);
      });
      j.complete = counter.wait_for(n, deadline_for(1000), [] { return false; });
      j.p = counter.phase();
      rows.push_back(j);
    }
  } catch (const mqtt::exception& e) {
    std::fprintf(stderr, "MQTT: %s\n", e.what());
    rc = 1;
  }
  stop(broker);

  // 7. The table.
  double raw_rps = rows.size() > 1 ? rows[1].rps() : 0;
  std::printf("\n| %-46s | %9s | %8s | %8s | %11s | %6s | %6s |\n", "path (measured at the subscriber)", "readings",
              "messages", "seconds", "readings/s", "MB/s", "vs raw");
  std::printf("|%s|---:|---:|---:|---:|---:|---:|\n", std::string(48, '-').c_str());
  for (const auto& r : rows) print_row(r, raw_rps);
  for (const auto& r : store_rows) print_row(r, raw_rps);
  std::printf("(time = first to last message at a QoS 1 subscriber on the same broker; MB/s = MQTT payload bytes. "
              "\"no network\" rows: the store library alone on a copy of the backlog, durability %s, %zu readings / %zu "
              "bytes per take, envelope %s, zstd level %d (0: none), wall time in this process; MB/s = envelope or stored "
              "bytes)\n",
              durability == eport::store::Durability::kFull ? "full" : "normal", max_readings, max_bytes,
              format == codec::EnvelopeFormat::kV2 ? "v2" : "v1", zstd_level);
  if (!rows.empty()) {
    const auto& a = rows[0];
    std::printf("agent: first envelope %.2f s after start (opening a %.0f MiB store); CPU from start to the last envelope "
                "%.2f s (threads:%s); subscriber decode time %.2f s\n",
                to_first_s, static_cast<double>(db_bytes) / 1048576.0, agent_cpu_s, agent_threads.c_str(), a.p.decode_s);
    for (std::size_t i = 1; i < rows.size(); ++i)
      std::printf("%s: publisher first publish to last PUBACK %.2f s\n", rows[i].name.c_str(), rows[i].publisher_s);
    std::printf("agent peak RSS: VmHWM %.1f MiB (sampled VmRSS peak %.1f MiB; at the end %.1f MiB heap/stacks + %.1f "
                "MiB mapped files)\n",
                static_cast<double>(hwm_kib) / 1024, static_cast<double>(peak_sampled_kib) / 1024,
                static_cast<double>(anon_kib) / 1024, static_cast<double>(file_kib) / 1024);
  }
  if (rows.size() == 3) {
    double agent_vs_raw = rows[0].rps() / rows[1].rps();
    double agent_vs_json = rows[0].rps() / rows[2].rps();
    double hwm_mib = static_cast<double>(hwm_kib) / 1024;
    std::printf("\ngoals (issue 5): agent >= 80%% of the raw Paho loop: %.0f%% %s; agent >= 10x JSON per reading: %.1fx "
                "%s; agent peak RSS <= 16 MiB: %.1f MiB %s\n",
                agent_vs_raw * 100, agent_vs_raw >= 0.8 ? "met" : "NOT met", agent_vs_json,
                agent_vs_json >= 10 ? "met" : "NOT met", hwm_mib, hwm_mib <= 16 ? "met" : "NOT met");
  }
  if (keep || rc != 0)
    std::printf("work dir kept: %s\n", dir.c_str());
  else
    fs::remove_all(dir);
  return rc;
}
