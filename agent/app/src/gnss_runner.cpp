// The GNSS source loop: open the configured gnss::Source, run it until error
// or stop, back off (eport::backoff), reopen.
#include "gnss_runner.h"

#include <pthread.h>

#include <chrono>
#include <memory>

#include "eport/backoff/backoff.h"
#include "eport/gnss/serial_source.h"
#include "eport/gnss/source.h"
#include "eport/log/log.h"
#ifdef EPORT_HAVE_GPSD
#include "eport/gnss/gpsd_source.h"
#endif

namespace eport::app {

namespace {
constexpr std::string_view kLog = "gnss";
}

GnssRunner::GnssRunner(const AgentConfig& cfg, ingest::Ingest& ingest, store::Outbox& outbox)
    : cfg_(cfg), ingest_(ingest), next_seq_(outbox.last_seq(cfg.gateway.id) + 1) {
  model::Reading probe;
  probe.payload = model::Position{};
  priority_ = model::classify(probe, cfg.priority);
}

GnssRunner::~GnssRunner() { stop(); }

void GnssRunner::start() {
  if (cfg_.gnss.source == gnss::SourceKind::kNone) return;
  thread_ = std::jthread([this](std::stop_token st) {
    pthread_setname_np(pthread_self(), "ep-gnss");  // in top, perf and /proc/PID/task/*/comm
    run(st);
  });
}

void GnssRunner::stop() {
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();
  }
}

void GnssRunner::completed(std::uint64_t, ingest::Outcome outcome) {
  if (outcome == ingest::Outcome::kRefused || outcome == ingest::Outcome::kFailed) ++not_stored_;
}

void GnssRunner::run(std::stop_token stop) {
  gnss::AssemblerOptions ao;
  ao.source_id = cfg_.gateway.id;
  ao.require_fix = cfg_.gnss.require_fix;
  ao.min_interval = cfg_.gnss.min_interval;
  ao.parse.require_checksum = cfg_.gnss.require_checksum;
  auto next_seq = [this] { return next_seq_.fetch_add(1); };
  auto on_reading = [this](model::Reading r) {
    ++positions_;
    // The gateway's own readings are not acknowledged to anyone: when the
    // store refuses one it is counted and the next fix replaces it.
    if (!ingest_.submit(std::move(r), priority_, this, 0)) ++not_stored_;
  };
  // Opens the configured source (logging what it reads from); an empty
  // pointer when gpsd is configured but the agent was built without libgps.
  auto open = [&]() -> Result<std::unique_ptr<gnss::Source>> {
    if (cfg_.gnss.source == gnss::SourceKind::kSerial) {
      gnss::SerialOptions so;
      so.device = cfg_.gnss.device;
      so.baud = cfg_.gnss.baud;
      auto src = gnss::SerialSource::open(so, ao, next_seq, on_reading);
      if (!src) return Error{src.error()};
      log::info(kLog, "reading NMEA from " + so.device);
      return std::unique_ptr<gnss::Source>(std::move(*src));
    }
#ifdef EPORT_HAVE_GPSD
    gnss::GpsdOptions go;
    go.host = cfg_.gnss.gpsd_host;
    go.port = cfg_.gnss.gpsd_port;
    auto src = gnss::GpsdSource::connect(go, ao, next_seq, on_reading);
    if (!src) return Error{src.error()};
    log::info(kLog, "reading positions from gpsd at " + go.host + ":" + std::to_string(go.port));
    return std::unique_ptr<gnss::Source>(std::move(*src));
#else
    return std::unique_ptr<gnss::Source>();  // none: built without libgps
#endif
  };
  backoff::Backoff backoff(backoff::Options{std::chrono::milliseconds(500), std::chrono::milliseconds(30000), 0});
  while (!stop.stop_requested()) {
    std::optional<Error> failed;
    auto src = open();
    if (!src) {
      failed = Error{src.error()};
    } else if (!*src) {
      log::error(kLog, "gnss.source = \"gpsd\" but this agent was built without libgps");
      return;
    } else {
      backoff.reset();
      failed = (*src)->run(stop);
    }
    if (!failed) return;  // stop requested
    const auto delay = backoff.next();
    log::warn(kLog, failed->message + "; retrying in " + std::to_string(delay.count()) + " ms");
    auto until = std::chrono::steady_clock::now() + delay;
    while (!stop.stop_requested() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

}  // namespace eport::app
