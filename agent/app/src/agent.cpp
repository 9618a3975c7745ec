// app::Agent: builds the parts in custody order, starts them from the sink
// back to the sources and stops them from the sources to the sink; and
// run(), the daemon's life between the stop signals and systemd.
#include "agent.h"

#include <malloc.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <string>
#include <string_view>
#include <utility>

#include "eport/geofence/zones_file.h"
#include "eport/json/json.h"
#include "eport/log/log.h"
#include "eport/model/clock.h"
#include "eport/systemd/notify.h"
#include "eport/units/config_keys.h"
#include "eport/units/evidence_check.h"
#include "eport/uplink/health.h"

#ifndef EPORT_VERSION
#define EPORT_VERSION "0.0.0"
#endif

namespace eport::app {

namespace {
// mqtt.uri as one line for the log: the URIs joined by commas.
std::string broker_list(const AgentConfig& cfg) {
  std::string out;
  for (const auto& uri : cfg.uplink.server_uris) out += (out.empty() ? "" : ",") + uri;
  return out;
}
}  // namespace

namespace {

// What the config allows that an operator should hear about at every start.
void warn_insecure_publisher(const AgentConfig& cfg, const uplink::PublisherOptions& po) {
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
  if (any_tls && !po.tls.verify_hostname) {
    log::warn("agent", "mqtt.verify_hostname = false (mqtt.insecure_skip_verify_hostname): the broker's certificate "
                       "is not checked against its host name; anyone holding a certificate from mqtt.ca_file's CA "
                       "can pose as the broker");
  }
  for (const auto& w : secret_file_warnings(cfg)) log::warn("agent", w);
}

void warn_insecure_units(const units::ServerOptions& uo) {
  if (!uo.tcp_listen.empty() && !uo.tcp_requires_auth) {
    log::warn("agent", "bridge.insecure_tcp_without_auth = true: units on " + uo.tcp_listen +
                           " are not authenticated; anyone on that network can claim any unit id without a key");
  }
}

}  // namespace

Result<std::unique_ptr<Agent>> Agent::create(const AgentConfig& cfg) {
  auto outbox = store::Outbox::open(cfg.store);
  if (!outbox) return Error{outbox.error()};
  log::info("agent", "outbox " + cfg.store.path + " opened with " + std::to_string((*outbox)->stats().total_rows()) +
                         " readings waiting");
  // The files the config names, read once at start (--check-config opened
  // them too).
  uplink::PublisherOptions po = cfg.uplink;
  // One id for this process's birth, offline and health messages: its
  // counters start at 0, and consumers tell runs apart by it.
  po.run_id = uplink::new_run_id();
  log::info("agent", "run id " + po.run_id);
  if (!po.password_file.empty()) {
    auto pw = config::read_secret(po.password_file);
    if (!pw) return Error{"mqtt.password_file: " + pw.error()};
    po.password = std::move(pw).value();
  }
  warn_insecure_publisher(cfg, po);
  units::ServerOptions uo = cfg.units;
  if (!uo.unit_keys_file.empty()) {
    auto keys = units::read_unit_keys(uo.unit_keys_file);
    if (!keys) return Error{"bridge.unit_keys: " + keys.error()};
    uo.auth_keys = std::move(*keys);
    log::info("agent", std::to_string(uo.auth_keys.size()) + " unit keys loaded from " + uo.unit_keys_file);
  }
  if (!uo.evidence_keys_file.empty()) {
    auto keys = units::read_evidence_keys(uo.evidence_keys_file);
    if (!keys) return Error{"bridge.evidence_keys: " + keys.error()};
    uo.evidence_keys = std::move(*keys);
    log::info("agent", std::to_string(uo.evidence_keys.size()) + " evidence keys loaded from " + uo.evidence_keys_file);
  }
  warn_insecure_units(uo);
  std::unique_ptr<events::Engine> engine;
  if (cfg.custody.enabled) {
    std::shared_ptr<const geofence::ZoneSet> zones;
    if (!cfg.custody.zones_file.empty()) {
      auto loaded = geofence::load_zones_file(cfg.custody.zones_file);
      if (!loaded) return Error{"custody.zones_file: " + loaded.error()};
      zones = std::make_shared<const geofence::ZoneSet>(std::move(*loaded));
    }
    auto saved = (*outbox)->derived_state();
    if (!saved) return Error{saved.error()};
    auto source = model::custody_source_id(cfg.gateway.id);
    engine = std::make_unique<events::Engine>(cfg.custody, zones, *saved, (*outbox)->last_seq(source));
    auto st = engine->state();
    log::info("agent", "custody events on as " + source + " (" + std::to_string(saved->size()) +
                           " state rows restored, " +
                           (st.zones_origin == "none" ? std::string("no zones")
                                                      : "zones " + st.zones_version + " from " + st.zones_origin + ": " +
                                                            std::to_string(st.zones) + " zones") +
                           ")");
  }
  std::unique_ptr<evidence::GatewayChains> chains;
  if (!cfg.evidence.gateway_key_file.empty() || !cfg.evidence.custody_key_file.empty()) {
    auto saved = (*outbox)->derived_state();
    if (!saved) return Error{saved.error()};
    auto& box = **outbox;
    auto opened = evidence::GatewayChains::open(cfg.evidence, cfg.gateway.id, *saved,
                                                [&box](std::string_view s) { return box.last_seq(s); });
    if (!opened) return Error{opened.error()};
    chains = std::move(*opened);
  }
  return std::unique_ptr<Agent>(
      new Agent(cfg, std::move(*outbox), std::move(engine), std::move(chains), std::move(po), std::move(uo)));
}

Agent::Agent(const AgentConfig& cfg, std::unique_ptr<store::Outbox> outbox, std::unique_ptr<events::Engine> events,
             std::unique_ptr<evidence::GatewayChains> chains, uplink::PublisherOptions po, units::ServerOptions uo)
    : cfg_(cfg),
      outbox_(std::move(outbox)),
      events_(std::move(events)),
      chains_(std::move(chains)),
      ingest_(cfg_.ingest, *outbox_, [this] { publisher_.notify(); },
              [this](const model::Reading& r) { positions_.observe(r); }, events_.get()),
      server_(
          std::move(uo), ingest_, [this](std::string_view unit) { return outbox_->last_seq(unit); },
          [rules = cfg_.priority](const model::Reading& r) { return model::classify(r, rules); }),
      gnss_(cfg_, ingest_, *outbox_),
      commands_(cfg_, positions_, server_, *outbox_, events_.get()),
      publisher_(std::move(po), *outbox_, &commands_, [this] { return health_members(); }) {
  if (chains_) outbox_->set_chain(chains_.get());
  // Adaptive reporting: the profiles the engine commits go to the units
  // (SETTINGS), and those restored with its state are what each unit gets
  // after its next WELCOME. Precedence: units::AdaptiveSettings.
  if (events_ && cfg_.custody.reporting.adaptive) {
    auto to_units = [this](const std::string& unit, const custody::Profile& p) {
      units::AdaptiveSettings a;
      a.profile = p.name;
      a.intervals = {static_cast<std::uint32_t>(p.position_interval.count()),
                     static_cast<std::uint32_t>(p.sensor_interval.count())};
      a.temperature_deadband_centi_c = p.temperature_deadband_centi_c;
      a.position_deadband_m = p.position_deadband_m;
      server_.set_profile(unit, a);
    };
    for (const auto& [unit, p] : events_->profiles()) to_units(unit, p);
    events_->on_profile(to_units);
  }
}

Agent::~Agent() { stop(); }

Status Agent::start() {
  if (events_) {
    // Units whose store source is gone (forgotten while the agent went down
    // before the engine forgot them too).
    std::vector<std::string> orphans;
    for (const auto& unit : events_->units()) {
      if (outbox_->last_seq(unit) == 0) orphans.push_back(unit);
    }
    if (!orphans.empty()) forget_custody_units(orphans);
  }
  ingest_.start();
  publisher_.start();
  gnss_.start();
  if (auto s = server_.start(); !s) {
    stop();
    return s;
  }
  started_ = true;
  const std::string gnss_name = cfg_.gnss.source == gnss::SourceKind::kSerial ? "serial" : "gpsd";
  log::info("agent", std::string("eport-agent ") + EPORT_VERSION + " running: gateway " + cfg_.gateway.id + " site " +
                         cfg_.gateway.site +
                         (cfg_.units.unix_socket.empty() ? "" : ", units on unix:" + cfg_.units.unix_socket) +
                         (cfg_.units.tcp_listen.empty() ? "" : ", units on tcp:" + cfg_.units.tcp_listen) +
                         ", broker " + broker_list(cfg_) +
                         (cfg_.gnss.source != gnss::SourceKind::kNone ? ", gnss " + gnss_name : ""));
  return ok_status();
}

void Agent::stop() {
  if (stopped_) return;
  stopped_ = true;
  server_.stop();     // no new readings; ACKs for what ingest has committed
  gnss_.stop();       // no new positions
  ingest_.stop();     // commits what it holds, so the units' ACKs above hold
  if (chains_ && started_) {
    // The gateway's own sources end with a checkpoint over their newest
    // records (docs/evidence.md 6 and 13.4): no unverified tail.
    chains_->cover_all_next();
    if (auto r = outbox_->append({}, chains_.get()); !r) {
      log::error("agent", "evidence checkpoint at stop: " + r.error());
    } else if (r->derived > 0) {
      publisher_.notify();
    }
  }
  publisher_.stop();  // PUBACKs of what is in flight, offline status
  if (!started_) return;
  auto is = ingest_.stats();
  const auto& ps = publisher_.stats();
  auto fin = outbox_->stats();
  log::info("agent", "stopped: " + std::to_string(is.stored) + " readings stored, " +
                         std::to_string(server_.stats().readings_duplicate.load()) + " duplicates, " +
                         std::to_string(ps.readings_acked.load()) + " published and acknowledged, " +
                         std::to_string(fin.total_rows()) + " waiting in the outbox");
}

void Agent::maintain() {
  auto m = outbox_->maintain(model::now_utc_ms());
  if (!m) {
    log::error("agent", "store maintenance: " + m.error());
  } else if (events_ && !m->forgotten_sources.empty()) {
    forget_custody_units(m->forgotten_sources);
  }
  // A checkpoint due by the time rule (evidence.checkpoint_every_s) has no
  // record to come with: it gets a transaction of its own.
  if (chains_ && chains_->due(model::now_utc_ms())) {
    if (auto r = outbox_->append({}, chains_.get()); !r) log::error("agent", "evidence checkpoint: " + r.error());
  }
  malloc_trim(0);  // give the heap of a past burst back to the system
}

void Agent::forget_custody_units(const std::vector<std::string>& units) {
  auto n = events_->forget_units(*outbox_, units);
  if (!n) {
    log::error("agent", n.error() + " (tried again at the next start)");
  } else if (*n > 0) {
    log::info("agent", "custody: forgot the state of " + std::to_string(*n) +
                           " units the store forgot (store.source_expiry_s)");
  }
}

std::uint64_t Agent::waiting() const { return outbox_->stats().total_rows(); }

// ,"custody":{...} with custody.enabled, "" without (docs/custody-events.md).
std::string Agent::custody_health() const {
  if (!events_) return "";
  auto c = events_->counters();
  auto st = events_->state();
  json::Object by_event;
  for (std::size_t i = 1; i < std::size(c.by_code); ++i) {
    by_event.add(model::event_code_name(static_cast<model::EventCode>(i)), c.by_code[i]);
  }
  json::Object o;
  o.add("source", events_->source_id())
      .add("zones_version", st.zones_version)
      .add("zones_origin", st.zones_origin)
      .add("zones", static_cast<std::uint64_t>(st.zones))
      .add("expected_seals", static_cast<std::uint64_t>(st.expected_seals))
      .add("paired_by_command", static_cast<std::uint64_t>(st.paired_by_command))
      .add("readings", c.readings)
      .add("events", c.events)
      .add_raw("by_event", std::move(by_event).str())
      .add("rollbacks", c.rollbacks)
      .add("undecodable", c.undecodable)
      .add("bad_state", c.bad_state)
      .add("commands", c.commands)
      .add("commands_refused", c.commands_refused)
      .add("units_forgotten", c.units_forgotten)
      .add("profile_changes", c.profile_changes);
  return ",\"custody\":" + std::move(o).str();
}

std::string Agent::health_members() const {
  const auto& bs = server_.stats();
  auto is = ingest_.stats();
  return "\"bridge\":" + units::health_json(bs) + ",\"evidence\":" + units::evidence_health_json(bs) + ",\"ingest\":{\"stored\":" + std::to_string(is.stored) +
         ",\"duplicates\":" + std::to_string(is.duplicates) + ",\"refused\":" + std::to_string(is.refused) +
         ",\"failed\":" + std::to_string(is.failed) + ",\"commits\":" + std::to_string(is.commits) +
         "},\"gnss\":{\"positions\":" + std::to_string(gnss_.positions()) +
         ",\"not_stored\":" + std::to_string(gnss_.not_stored()) + "}" + custody_health() + gateway_evidence_health();
}

// ,"gateway_evidence":{...} when the gateway signs its own sources, "" otherwise.
std::string Agent::gateway_evidence_health() const {
  if (!chains_) return "";
  auto c = chains_->stats();
  std::string sources = "[";
  for (const auto& s : chains_->sources()) sources += (sources.size() > 1 ? "," : "") + json::quote(s);
  json::Object o;
  o.add_raw("sources", sources + "]")
      .add("linked", c.linked)
      .add("checkpoints", c.checkpoints)
      .add("sign_failures", c.sign_failures)
      .add("restarts", c.restarts);
  return ",\"gateway_evidence\":" + std::move(o).str();
}

int run(const AgentConfig& cfg) {
  log::set_level(cfg.log_level);

  // Block the stop signals before any thread starts, so that only
  // sigtimedwait() below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // The start-up integrity check may take store.startup_check_ms: ask systemd
  // for that much more than TimeoutStartSec= before it starts.
  systemd::notify_extend_timeout(cfg.store.startup_check_budget + std::chrono::seconds(30));
  auto agent = Agent::create(cfg);
  if (!agent) {
    log::error("agent", agent.error());
    return 1;
  }
  if (auto s = (*agent)->start(); !s) {
    log::error("agent", s.error());
    return 1;
  }
  systemd::notify_ready("running: gateway " + cfg.gateway.id + ", broker " + broker_list(cfg));

  // The main thread does the store's housekeeping between signals, and pings
  // systemd's watchdog (WatchdogSec=) at half its interval, after a store call:
  // a wedged outbox stops the pings and systemd restarts the agent.
  using std::chrono::steady_clock;
  const auto maintenance_every = cfg.store.maintenance_interval;
  const auto watchdog = systemd::watchdog_interval();
  const std::chrono::microseconds tick =
      watchdog ? std::min<std::chrono::microseconds>(maintenance_every, *watchdog / 2) : maintenance_every;
  const timespec interval{static_cast<time_t>(tick.count() / 1000000), static_cast<long>(tick.count() % 1000000) * 1000};
  auto next_maintenance = steady_clock::now() + maintenance_every;
  int sig = 0;
  while ((sig = sigtimedwait(&stop_signals, nullptr, &interval)) < 0) {
    if (errno != EAGAIN && errno != EINTR) break;
    if (steady_clock::now() >= next_maintenance) {
      (*agent)->maintain();
      next_maintenance = steady_clock::now() + maintenance_every;
    }
    if (watchdog) {
      auto waiting = (*agent)->waiting();  // blocks if the outbox is wedged
      systemd::notify_status("running: " + std::to_string(waiting) + " readings waiting");
      systemd::notify_watchdog();
    }
  }
  systemd::notify_stopping(sig == SIGTERM ? "SIGTERM: shutting down" : "shutting down");
  log::info("agent", std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") + ", shutting down");
  (*agent)->stop();
  return 0;
}

}  // namespace eport::app
