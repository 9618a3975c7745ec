// The agent's side of cloud commands: what each accepted command does.
// SetIntervals goes to the units over the firmware bridge, RequestPosition
// answers from the latest position seen per source, GetConfig reports the
// effective config (which holds no secret), the custody commands
// (ExpectSeal, PairUnit, ReplaceZones) go to the custody event engine. Flush
// is handled by the publisher itself.
#pragma once

#include <mutex>
#include <string>
#include <unordered_map>

#include "eport/events/engine.h"
#include "eport/model/reading.h"
#include "eport/store/outbox.h"
#include "eport/units/unit_settings.h"
#include "eport/uplink/commands.h"
#include "settings.h"

namespace eport::app {

// Latest position per source, fed by ingest's submit hook (any thread).
class LastPositions {
 public:
  void observe(const model::Reading& r);
  // {"source":..,"seq":..,"time_utc_ms":..,"lat_e7":..,...} or "" if none.
  std::string json(const std::string& source_id) const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, model::Reading> last_;
};

// Called on the publisher thread. Holds references: cfg, positions and
// units must outlive it (in app::Agent they are constructed before it).
// events may be null (custody.enabled = false): its commands are refused.
class AgentCommands : public uplink::CommandHandler {
 public:
  AgentCommands(const AgentConfig& cfg, const LastPositions& positions, units::UnitSettings& units,
                store::Outbox& outbox, events::Engine* events)
      : cfg_(cfg), positions_(positions), units_(units), outbox_(outbox), events_(events) {}
  Result<std::string> execute(const codec::Command& command) override;

 private:
  const AgentConfig& cfg_;
  const LastPositions& positions_;
  units::UnitSettings& units_;
  store::Outbox& outbox_;
  events::Engine* events_;
};

}  // namespace eport::app
