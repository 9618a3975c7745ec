// eport-agent: wires config, outbox, ingest, bridge server and publisher
// together, then waits for SIGTERM/SIGINT and shuts down in the order that
// loses nothing: stop taking readings, commit what was received, let the
// publisher finish what is in flight, close the store.
#include <malloc.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "eport/units/server.h"
#include "eport/codec/codec.h"
#include "eport/config/config.h"
#include "eport/flags/flags.h"
#include "eport/ingest/ingest.h"
#include "eport/log/log.h"
#include "eport/model/clock.h"
#include "eport/store/outbox.h"
#include "eport/systemd/notify.h"
#include "eport/uplink/publisher.h"
#include "command_handler.h"
#include "gnss_runner.h"

#ifndef EPORT_VERSION
#define EPORT_VERSION "0.0.0"
#endif

namespace {

constexpr const char* kUsage =
    "usage: eport-agent --config FILE                 run the agent\n"
    "       eport-agent --check-config FILE           validate FILE and exit (0: valid)\n"
    "       eport-agent store stats --config FILE     counts, bytes, oldest age and counters per class\n"
    "       eport-agent store verify --config FILE    full integrity check (0: ok)\n"
    "       eport-agent store dump --config FILE [--limit N]  waiting readings as JSON lines, drain order\n"
    "       eport-agent --config-reference            print every config key as Markdown\n"
    "       eport-agent --version\n";

using eport::model::now_utc_ms;

eport::store::OutboxOptions outbox_options(const eport::config::AgentConfig& cfg) {
  using namespace eport;
  store::OutboxOptions so;
  so.path = cfg.store.path;
  so.durability = cfg.store.durability == "normal" ? store::Durability::kNormal : store::Durability::kFull;
  so.max_bytes = static_cast<std::uint64_t>(cfg.store.max_bytes);
  so.low_water_pct = static_cast<std::uint32_t>(cfg.store.low_water_pct);
  so.min_free_bytes = static_cast<std::uint64_t>(cfg.store.min_free_bytes);
  so.when_full = cfg.store.when_full == "refuse" ? store::WhenFull::kRefuse : store::WhenFull::kEvictLowest;
  so.ttl[static_cast<int>(model::Priority::kAlarm)] = std::chrono::seconds(cfg.store.ttl_alarm_s);
  so.ttl[static_cast<int>(model::Priority::kEvent)] = std::chrono::seconds(cfg.store.ttl_event_s);
  so.ttl[static_cast<int>(model::Priority::kTelemetry)] = std::chrono::seconds(cfg.store.ttl_telemetry_s);
  so.ttl[static_cast<int>(model::Priority::kBulk)] = std::chrono::seconds(cfg.store.ttl_bulk_s);
  so.startup_check_budget = std::chrono::milliseconds(cfg.store.startup_check_ms);
  so.source_expiry = std::chrono::seconds(cfg.store.source_expiry_s);
  // Seen command ids are kept as long as a repeat could still be admitted.
  so.command_max_age = std::chrono::seconds(cfg.commands.max_age_s);
  return so;
}

int run(const eport::config::AgentConfig& cfg) {
  using namespace eport;
  log::set_level(cfg.log.level);

  // Block the stop signals before any thread starts, so that only sigwait()
  // below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // Filled in once the bridge and ingest exist; read by the publisher thread.
  std::function<std::string()> health_members = [] { return std::string(); };
  // The start-up integrity check may take store.startup_check_ms: ask systemd
  // for that much more than TimeoutStartSec= before it starts.
  systemd::notify_extend_timeout(std::chrono::milliseconds(cfg.store.startup_check_ms) + std::chrono::seconds(30));
  auto outbox = store::Outbox::open(outbox_options(cfg));
  if (!outbox) {
    log::error("agent", outbox.error());
    return 1;
  }
  auto& ob = **outbox;
  auto initial = ob.stats();
  log::info("agent", "outbox " + cfg.store.path + " opened with " + std::to_string(initial.total_rows()) +
                         " readings waiting");

  uplink::PublisherOptions po;
  po.site_id = cfg.gateway.site;
  po.gateway_id = cfg.gateway.id;
  po.server_uris = config::broker_uris(cfg);
  po.client_id = cfg.mqtt.client_id;
  po.username = cfg.mqtt.username;
  if (!cfg.mqtt.password_file.empty()) {
    auto pw = config::read_secret(cfg.mqtt.password_file);
    if (!pw) {
      log::error("agent", pw.error());
      return 1;
    }
    po.password = std::move(pw).value();
  }
  po.tls = {cfg.mqtt.ca_file, cfg.mqtt.cert_file, cfg.mqtt.key_file, cfg.mqtt.verify_hostname};
  po.keepalive = std::chrono::seconds(cfg.mqtt.keepalive_s);
  po.connect_timeout = std::chrono::seconds(cfg.mqtt.connect_timeout_s);
  po.reconnect_min = std::chrono::milliseconds(cfg.mqtt.reconnect_min_ms);
  po.reconnect_max = std::chrono::milliseconds(cfg.mqtt.reconnect_max_ms);
  po.failover_return = std::chrono::seconds(cfg.mqtt.failover_return_s);
  po.max_inflight = static_cast<std::size_t>(cfg.mqtt.max_inflight);
  po.max_readings = static_cast<std::size_t>(cfg.publish.max_readings);
  po.max_bytes = static_cast<std::size_t>(cfg.publish.max_bytes);
  po.max_age = std::chrono::milliseconds(cfg.publish.max_age_ms);
  po.zstd_level = cfg.publish.compression == "zstd" ? static_cast<int>(cfg.publish.zstd_level) : 0;
  po.budget = {static_cast<std::uint64_t>(cfg.budget.bytes_per_day), static_cast<std::uint64_t>(cfg.budget.bytes_per_month),
               static_cast<std::uint64_t>(cfg.budget.max_bytes_per_s)};
  po.health_interval = std::chrono::seconds(cfg.health.interval_s);
  po.commands = cfg.commands.enabled;
  po.command_max_age = std::chrono::seconds(cfg.commands.max_age_s);
  po.agent_version = EPORT_VERSION;
  po.config_hash = config::config_hash(cfg);
  bool any_tls = false;
  for (const auto& uri : po.server_uris) {
    bool tls = uri.rfind("ssl://", 0) == 0 || uri.rfind("mqtts://", 0) == 0;
    any_tls |= tls;
    if (!tls && !config::is_loopback_uri(uri)) {
      log::warn("agent", "broker " + uri + " is not encrypted: use ssl:// in production" +
                             std::string(po.password.empty() ? "" : " (mqtt.insecure_password_over_tcp: the password "
                                                                    "crosses the network in clear)"));
    }
  }
  if (any_tls && !cfg.mqtt.verify_hostname) {
    log::warn("agent", "mqtt.verify_hostname = false (mqtt.insecure_skip_verify_hostname): the broker's certificate "
                       "is not checked against its host name; anyone holding a certificate from mqtt.ca_file's CA "
                       "can pose as the broker");
  }
  for (const auto& w : config::secret_file_warnings(cfg)) log::warn("agent", w);

  app::LastPositions positions;
  units::Server* server_ptr = nullptr;  // set below; commands arrive only after start
  app::AgentCommands commands(cfg, positions,
                              [&server_ptr](const std::string& unit, std::uint32_t pos_s,
                                            std::uint32_t sensor_s) -> Result<std::size_t> {
                                if (server_ptr == nullptr) return Error{"bridge not running"};
                                return server_ptr->push_settings(unit, pos_s, sensor_s);
                              });
  auto health_extra = [&]() -> std::string { return health_members(); };
  uplink::Publisher publisher(po, ob, &commands, health_extra);

  ingest::IngestOptions io;
  io.commit_interval = std::chrono::milliseconds(cfg.store.commit_interval_ms);
  io.commit_max_readings = static_cast<std::size_t>(cfg.store.commit_max_readings);
  ingest::Ingest ingest(io, ob, [&publisher] { publisher.notify(); },
                        [&positions](const model::Reading& r) { positions.observe(r); });

  units::ServerOptions bo;
  bo.unix_socket = cfg.bridge.unix_socket;
  bo.tcp_listen = cfg.bridge.tcp_listen;
  for (std::size_t start = 0; start < cfg.bridge.serial_ports.size();) {
    auto comma = cfg.bridge.serial_ports.find(',', start);
    auto port = cfg.bridge.serial_ports.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!port.empty()) bo.serial_ports.push_back(port);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  bo.serial_baud = static_cast<int>(cfg.bridge.serial_baud);
  bo.window = static_cast<std::uint16_t>(cfg.bridge.window);
  bo.max_units = static_cast<std::size_t>(cfg.bridge.max_units);
  bo.max_units_per_address = static_cast<std::size_t>(cfg.bridge.max_units_per_address);
  bo.unix_reserve = static_cast<std::size_t>(cfg.bridge.unix_reserve);
  bo.hello_deadline = std::chrono::seconds(cfg.bridge.hello_deadline_s);
  bo.max_unit_ids_per_link = static_cast<std::size_t>(cfg.bridge.max_unit_ids_per_link);
  bo.gateway_id = cfg.gateway.id;
  bo.max_seq_jump = static_cast<std::uint64_t>(cfg.bridge.max_seq_jump);
  bo.idle_ping_after = std::chrono::seconds(cfg.bridge.idle_ping_s);
  bo.dead_after_ping = std::chrono::seconds(cfg.bridge.dead_after_ping_s);
  bo.default_intervals = {static_cast<std::uint32_t>(cfg.bridge.position_interval_s),
                          static_cast<std::uint32_t>(cfg.bridge.sensor_interval_s)};
  if (auto per_unit = config::parse_unit_intervals(cfg.bridge.unit_intervals); per_unit) {  // checked at load
    for (const auto& u : *per_unit) bo.unit_intervals[u.unit_id] = {u.position_s, u.sensor_s};
  }
  if (!cfg.bridge.unit_keys.empty()) {
    auto keys = config::read_unit_keys(cfg.bridge.unit_keys);
    if (!keys) {
      log::error("agent", "bridge.unit_keys: " + keys.error());
      return 1;
    }
    bo.auth_keys = std::move(*keys);
    log::info("agent", std::to_string(bo.auth_keys.size()) + " unit keys loaded from " + cfg.bridge.unit_keys);
  }
  bo.tcp_requires_auth = !cfg.bridge.insecure_tcp_without_auth;
  if (!cfg.bridge.tcp_listen.empty() && !bo.tcp_requires_auth) {
    log::warn("agent", "bridge.insecure_tcp_without_auth = true: units on " + cfg.bridge.tcp_listen +
                           " are not authenticated; anyone on that network can claim any unit id without a key");
  }
  units::Server server(
      bo, ingest, [&ob](std::string_view unit) { return ob.last_seq(unit); },
      [rules = cfg.priority.rules()](const model::Reading& r) { return model::classify(r, rules); });

  app::GnssRunner gnss(cfg, ingest, ob);
  server_ptr = &server;
  health_members = [&]() {
    const auto& bs = server.stats();
    auto is = ingest.stats();
    return "\"bridge\":" + units::health_json(bs) + ",\"ingest\":{\"stored\":" +
           std::to_string(is.stored) + ",\"duplicates\":" + std::to_string(is.duplicates) +
           ",\"refused\":" + std::to_string(is.refused) + ",\"failed\":" + std::to_string(is.failed) +
           ",\"commits\":" + std::to_string(is.commits) + "},\"gnss\":{\"positions\":" +
           std::to_string(gnss.positions()) + ",\"not_stored\":" + std::to_string(gnss.not_stored()) + "}";
  };

  ingest.start();
  publisher.start();
  gnss.start();
  if (auto s = server.start(); !s) {
    log::error("agent", s.error());
    publisher.stop();
    ingest.stop();
    return 1;
  }
  log::info("agent", std::string("eport-agent ") + EPORT_VERSION + " running: gateway " + cfg.gateway.id + " site " +
                         cfg.gateway.site + (cfg.bridge.unix_socket.empty() ? "" : ", units on unix:" + cfg.bridge.unix_socket) +
                         (cfg.bridge.tcp_listen.empty() ? "" : ", units on tcp:" + cfg.bridge.tcp_listen) +
                         ", broker " + cfg.mqtt.uri + (cfg.gnss.source != "none" ? ", gnss " + cfg.gnss.source : ""));

  systemd::notify_ready("running: gateway " + cfg.gateway.id + ", broker " + cfg.mqtt.uri);

  // The main thread does the store's housekeeping between signals, and pings
  // systemd's watchdog (WatchdogSec=) at half its interval, after a store call:
  // a wedged outbox stops the pings and systemd restarts the agent.
  using std::chrono::steady_clock;
  const auto maintenance_every = std::chrono::seconds(cfg.store.maintenance_interval_s);
  const auto watchdog = systemd::watchdog_interval();
  const std::chrono::microseconds tick =
      watchdog ? std::min<std::chrono::microseconds>(maintenance_every, *watchdog / 2) : maintenance_every;
  const timespec interval{static_cast<time_t>(tick.count() / 1000000), static_cast<long>(tick.count() % 1000000) * 1000};
  auto next_maintenance = steady_clock::now() + maintenance_every;
  int sig = 0;
  while ((sig = sigtimedwait(&stop_signals, nullptr, &interval)) < 0) {
    if (errno != EAGAIN && errno != EINTR) break;
    if (steady_clock::now() >= next_maintenance) {
      if (auto m = ob.maintain(now_utc_ms()); !m) log::error("agent", "store maintenance: " + m.error());
      malloc_trim(0);  // give the heap of a past burst back to the system
      next_maintenance = steady_clock::now() + maintenance_every;
    }
    if (watchdog) {
      auto waiting = ob.stats().total_rows();  // blocks if the outbox is wedged
      systemd::notify_status("running: " + std::to_string(waiting) + " readings waiting");
      systemd::notify_watchdog();
    }
  }
  systemd::notify_stopping(sig == SIGTERM ? "SIGTERM: shutting down" : "shutting down");
  log::info("agent", std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") + ", shutting down");

  server.stop();
  gnss.stop();
  ingest.stop();
  publisher.stop();
  auto is = ingest.stats();
  const auto& ps = publisher.stats();
  auto fin = ob.stats();
  log::info("agent", "stopped: " + std::to_string(is.stored) + " readings stored, " +
                         std::to_string(server.stats().readings_duplicate.load()) + " duplicates, " + std::to_string(ps.readings_acked.load()) + " published and acknowledged, " +
                         std::to_string(fin.total_rows()) + " waiting in the outbox");
  return 0;
}

// eport-agent store stats|verify|dump --config FILE [--limit N]
int store_command(int argc, char** argv) {
  using namespace eport;
  std::string sub = argc > 2 ? argv[2] : "";
  std::string config_path;
  long long limit = -1;
  for (int i = 3; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a == "--limit" && i + 1 < argc) {
      auto v = flags::parse<long long>("--limit", argv[++i]);
      if (!v) {
        std::fprintf(stderr, "%s\n", v.error().c_str());
        return 64;
      }
      limit = *v;
    } else {
      std::fputs(kUsage, stderr);
      return 64;
    }
  }
  if ((sub != "stats" && sub != "verify" && sub != "dump") || config_path.empty()) {
    std::fputs(kUsage, stderr);
    return 64;
  }
  auto cfg = config::load_file(config_path);
  if (!cfg) {
    std::fprintf(stderr, "%s\n", cfg.error().c_str());
    return 2;
  }
  log::set_level(cfg->log.level);
  auto ob = store::Outbox::open(outbox_options(*cfg));
  if (!ob) {
    std::fprintf(stderr, "%s\n", ob.error().c_str());
    return 1;
  }
  if (sub == "verify") {
    auto v = (*ob)->verify();
    if (!v) {
      std::fprintf(stderr, "%s\n", v.error().c_str());
      return 1;
    }
    std::printf("%s: %s\n", cfg->store.path.c_str(), v->c_str());
    return *v == "ok" ? 0 : 1;
  }
  if (sub == "dump") {
    long long n = 0;
    auto st = (*ob)->for_each([&](const store::StoredRecord& r) {
      auto reading = codec::decode_reading(r.body);
      std::string body = reading ? codec::reading_to_json(*reading)
                                 : "{\"error\":\"undecodable body: " + reading.error() + "\"}";
      std::printf("{\"id\":%lld,\"priority\":\"%s\",\"created_utc_ms\":%llu,\"reading\":%s}\n",
                  static_cast<long long>(r.id), std::string(model::priority_name(r.priority)).c_str(),
                  static_cast<unsigned long long>(r.created_utc_ms), body.c_str());
      return limit < 0 || ++n < limit;
    });
    if (!st) {
      std::fprintf(stderr, "%s\n", st.error().c_str());
      return 1;
    }
    return 0;
  }
  auto s = (*ob)->stats();
  auto now = now_utc_ms();
  std::printf("store %s: %llu bytes on disk, limit %llu bytes\n", cfg->store.path.c_str(),
              static_cast<unsigned long long>(s.file_bytes), static_cast<unsigned long long>(s.max_bytes));
  std::printf("%-10s %10s %12s %14s %10s %10s %10s\n", "class", "rows", "bytes", "oldest_age_s", "evicted",
              "expired", "refused");
  for (int p = model::kPriorityCount - 1; p >= 0; --p) {
    const auto& c = s.by_class[static_cast<std::size_t>(p)];
    double age = c.oldest_created_ms > 0 && now > c.oldest_created_ms ? (now - c.oldest_created_ms) / 1000.0 : 0.0;
    std::printf("%-10s %10llu %12llu %14.1f %10llu %10llu %10llu\n",
                std::string(model::priority_name(static_cast<model::Priority>(p))).c_str(),
                static_cast<unsigned long long>(c.rows), static_cast<unsigned long long>(c.bytes), age,
                static_cast<unsigned long long>(c.evicted), static_cast<unsigned long long>(c.expired),
                static_cast<unsigned long long>(c.refused));
  }
  std::printf("total      %10llu %12llu\n", static_cast<unsigned long long>(s.total_rows()),
              static_cast<unsigned long long>(s.total_bytes()));
  if (!s.recovered_from.empty()) std::printf("recovered: damaged store moved to %s\n", s.recovered_from.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace eport;
  // Few malloc arenas: the agent's threads allocate little, and per-thread
  // arenas would hold on to memory that one shared arena reuses.
  mallopt(M_ARENA_MAX, 2);
  if (argc == 2 && std::strcmp(argv[1], "--version") == 0) {
    std::printf("eport-agent %s (schema v1)\n", EPORT_VERSION);
    return 0;
  }
  if (argc >= 2 && std::strcmp(argv[1], "store") == 0) return store_command(argc, argv);
  if (argc == 2 && std::strcmp(argv[1], "--config-reference") == 0) {
    std::fputs(config::reference_markdown().c_str(), stdout);
    return 0;
  }
  if (argc == 3 && (std::strcmp(argv[1], "--config") == 0 || std::strcmp(argv[1], "--check-config") == 0)) {
    auto cfg = config::load_file(argv[2]);
    if (!cfg) {
      std::fprintf(stderr, "%s\n", cfg.error().c_str());
      return 2;
    }
    if (std::strcmp(argv[1], "--check-config") == 0) {
      for (const auto& w : config::secret_file_warnings(*cfg)) std::fprintf(stderr, "warning: %s\n", w.c_str());
      std::printf("%s: valid (config hash %s)\n", argv[2], config::config_hash(*cfg).c_str());
      return 0;
    }
    return run(*cfg);
  }
  std::fputs(kUsage, stderr);
  return 64;
}
