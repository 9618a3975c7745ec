// The agent's side of cloud commands: what each accepted command does.
// SetIntervals goes to the units over the firmware bridge, RequestPosition
// answers from the latest position seen per source, GetConfig reports the
// effective config (which holds no secret). Flush is handled by the
// publisher itself.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>

#include "eport/config/config.h"
#include "eport/model/reading.h"
#include "eport/uplink/commands.h"

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

class AgentCommands : public uplink::CommandHandler {
 public:
  // push_settings(unit_id or "" for all, position_s, sensor_s) returns how
  // many units were told.
  using PushSettings = std::function<Result<std::size_t>(const std::string&, std::uint32_t, std::uint32_t)>;

  AgentCommands(const config::AgentConfig& cfg, const LastPositions& positions, PushSettings push)
      : cfg_(cfg), positions_(positions), push_(std::move(push)) {}
  Result<std::string> execute(const codec::Command& command) override;

 private:
  const config::AgentConfig& cfg_;
  const LastPositions& positions_;
  PushSettings push_;
};

}  // namespace eport::app
