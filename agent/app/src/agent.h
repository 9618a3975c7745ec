// app::Agent: owns the agent's parts and runs them in custody order
// (docs/architecture.md, "Agent: construction, start and stop"). Members are
// declared, so constructed, in the order of the data path: outbox, ingest,
// unit server, GNSS runner, then the command handler and the publisher that
// read from all of them. A part only ever holds references to parts declared
// before it, with one exception spelled out at ingest_: its commit callback
// wakes the publisher, which exists by the time any callback can run,
// because callbacks run on ingest's thread and that thread starts in
// start(), which a caller can only reach on a fully constructed Agent.
//
// Threads: start(), stop() and maintain() are called from one thread (main);
// the parts run their own threads between start() and stop().
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "eport/events/engine.h"
#include "eport/ingest/ingest.h"
#include "eport/model/result.h"
#include "eport/store/outbox.h"
#include "eport/units/server.h"
#include "eport/uplink/publisher.h"
#include "command_handler.h"
#include "gnss_runner.h"
#include "settings.h"

namespace eport::app {

class Agent {
 public:
  // Opens the outbox (the start-up integrity check may take
  // store.startup_check_ms), reads the files the config names (password,
  // unit keys), logs the config's security warnings and builds every part.
  // cfg is a loaded config (load_config_file: derived() applied).
  // Nothing runs yet. Fails naming the store, file or key.
  static Result<std::unique_ptr<Agent>> create(const AgentConfig& cfg);
  ~Agent();  // stop()
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Starts the parts from the sink back to the sources: ingest (so that a
  // reading handed over has a committer), the publisher, the GNSS runner,
  // and last the unit server, the only part that acknowledges readings to
  // units. Fails if the unit server cannot bind its listeners; then what
  // was started is stopped again, in stop()'s order.
  Status start();
  // Stops in custody order, so that nothing acknowledged is lost and as
  // much as possible is published: the unit server first (no new readings;
  // it sends the ACKs of what ingest committed), the GNSS runner, ingest
  // (commits what it holds), then the publisher (waits up to 3 s for the
  // PUBACKs of what is in flight, publishes the offline status). Logs a
  // one-line summary. Idempotent; the outbox closes with the Agent.
  void stop();

  // Store housekeeping (expiry, reclaim) and giving the heap of a past
  // burst back to the system. Main thread, between signals.
  void maintain();
  // Readings waiting in the outbox. Blocks if the outbox is wedged (what
  // the systemd watchdog ping relies on).
  std::uint64_t waiting() const;

 private:
  // The custody engine forgets units the store forgot (logged; a failure is retried at the next start).
  void forget_custody_units(const std::vector<std::string>& units);
  Agent(const AgentConfig& cfg, std::unique_ptr<store::Outbox> outbox, std::unique_ptr<events::Engine> events,
        std::unique_ptr<evidence::GatewayChains> chains, uplink::PublisherOptions po, units::ServerOptions uo);
  // The "bridge", "ingest" and "gnss" members of the health message
  // (publisher thread).
  std::string health_members() const;
  std::string custody_health() const;
  std::string gateway_evidence_health() const;

  const AgentConfig cfg_;
  const std::unique_ptr<store::Outbox> outbox_;  // never null
  // The custody event engine (null with custody.enabled = false): runs
  // inside ingest's commits, in the outbox's transactions.
  const std::unique_ptr<events::Engine> events_;
  // The gateway's own evidence chains (null when no evidence key is
  // configured): the outbox's chain, in every transaction.
  const std::unique_ptr<evidence::GatewayChains> chains_;
  LastPositions positions_;                      // fed by ingest's submit hook
  // Wakes publisher_ after each commit (the one reference to a later
  // member; see the file comment).
  ingest::Ingest ingest_;
  units::Server server_;  // hands readings to ingest_, resumes units from outbox_
  GnssRunner gnss_;       // hands the gateway's positions to ingest_
  AgentCommands commands_;  // SetIntervals through server_ (as units::UnitSettings)
  uplink::Publisher publisher_;  // drains outbox_, executes commands_, reports health_members()
  bool started_ = false;
  bool stopped_ = false;
};

// Runs the agent until SIGTERM or SIGINT: blocks the stop signals before any
// thread starts, creates and starts the Agent, tells systemd it is ready,
// runs store maintenance and the watchdog ping on this thread, then stops.
// Returns the process exit code (0 after a clean stop, 1 if it could not
// start).
int run(const AgentConfig& cfg);

}  // namespace eport::app
