// eport-agent: wires config, outbox, ingest, bridge server and publisher
// together, then waits for SIGTERM/SIGINT and shuts down in the order that
// loses nothing: stop taking readings, commit what was received, let the
// publisher finish what is in flight, close the store.
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "eport/bridge/server.h"
#include "eport/config/config.h"
#include "eport/ingest/ingest.h"
#include "eport/log/log.h"
#include "eport/store/outbox.h"
#include "eport/uplink/publisher.h"

#ifndef EPORT_VERSION
#define EPORT_VERSION "0.0.0"
#endif

namespace {

constexpr const char* kUsage =
    "usage: eport-agent --config FILE        run the agent\n"
    "       eport-agent --check-config FILE  validate FILE and exit (0: valid)\n"
    "       eport-agent --config-reference   print every config key as Markdown\n"
    "       eport-agent --version\n";

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

  store::OutboxOptions so;
  so.path = cfg.store.path;
  so.durability = cfg.store.durability == "normal" ? store::Durability::kNormal : store::Durability::kFull;
  auto outbox = store::Outbox::open(so);
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
  po.server_uri = cfg.mqtt.uri;
  po.client_id = cfg.mqtt.client_id;
  po.keepalive = std::chrono::seconds(cfg.mqtt.keepalive_s);
  po.connect_timeout = std::chrono::seconds(cfg.mqtt.connect_timeout_s);
  po.reconnect_min = std::chrono::milliseconds(cfg.mqtt.reconnect_min_ms);
  po.reconnect_max = std::chrono::milliseconds(cfg.mqtt.reconnect_max_ms);
  po.max_inflight = static_cast<std::size_t>(cfg.mqtt.max_inflight);
  po.max_readings = static_cast<std::size_t>(cfg.publish.max_readings);
  po.max_bytes = static_cast<std::size_t>(cfg.publish.max_bytes);
  po.max_age = std::chrono::milliseconds(cfg.publish.max_age_ms);
  po.agent_version = EPORT_VERSION;
  po.config_hash = config::config_hash(cfg);
  uplink::Publisher publisher(po, ob);

  ingest::IngestOptions io;
  io.commit_interval = std::chrono::milliseconds(cfg.store.commit_interval_ms);
  io.commit_max_readings = static_cast<std::size_t>(cfg.store.commit_max_readings);
  ingest::Ingest ingest(io, ob, [&publisher] { publisher.notify(); });

  bridge::ServerOptions bo;
  bo.unix_socket = cfg.bridge.unix_socket;
  bo.tcp_listen = cfg.bridge.tcp_listen;
  bo.window = static_cast<std::uint16_t>(cfg.bridge.window);
  bo.max_units = static_cast<std::size_t>(cfg.bridge.max_units);
  bo.gateway_id = cfg.gateway.id;
  bridge::Server server(
      bo, ingest, [&ob](std::string_view unit) { return ob.last_seq(unit); },
      [](const model::Reading& r) { return model::default_priority(r); });

  ingest.start();
  publisher.start();
  if (auto s = server.start(); !s) {
    log::error("agent", s.error());
    publisher.stop();
    ingest.stop();
    return 1;
  }
  log::info("agent", std::string("eport-agent ") + EPORT_VERSION + " running: gateway " + cfg.gateway.id + " site " +
                         cfg.gateway.site + (cfg.bridge.unix_socket.empty() ? "" : ", units on unix:" + cfg.bridge.unix_socket) +
                         (cfg.bridge.tcp_listen.empty() ? "" : ", units on tcp:" + cfg.bridge.tcp_listen) +
                         ", broker " + cfg.mqtt.uri);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  log::info("agent", std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") + ", shutting down");

  server.stop();
  ingest.stop();
  publisher.stop();
  auto is = ingest.stats();
  const auto& ps = publisher.stats();
  auto fin = ob.stats();
  log::info("agent", "stopped: " + std::to_string(is.stored) + " readings stored, " + std::to_string(is.duplicates) +
                         " duplicates, " + std::to_string(ps.readings_acked.load()) + " published and acknowledged, " +
                         std::to_string(fin.total_rows()) + " waiting in the outbox");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace eport;
  if (argc == 2 && std::strcmp(argv[1], "--version") == 0) {
    std::printf("eport-agent %s (schema v1)\n", EPORT_VERSION);
    return 0;
  }
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
      std::printf("%s: valid (config hash %s)\n", argv[2], config::config_hash(*cfg).c_str());
      return 0;
    }
    return run(*cfg);
  }
  std::fputs(kUsage, stderr);
  return 64;
}
