// Carrying out cloud commands in the agent.
#include "command_handler.h"

#include "eport/codec/codec.h"

namespace eport::app {

void LastPositions::observe(const model::Reading& r) {
  if (!std::holds_alternative<model::Position>(r.payload)) return;
  std::lock_guard l(mu_);
  auto it = last_.find(r.source_id);
  if (it == last_.end()) {
    if (last_.size() >= 100000) return;  // bounded: far above any real fleet
    last_.emplace(r.source_id, r);
  } else if (r.seq >= it->second.seq) {
    it->second = r;
  }
}

std::string LastPositions::json(const std::string& source_id) const {
  std::lock_guard l(mu_);
  auto it = last_.find(source_id);
  return it == last_.end() ? std::string() : codec::reading_to_json(it->second);
}

Result<std::string> AgentCommands::execute(const codec::Command& command) {
  if (const auto* s = std::get_if<codec::SetIntervals>(&command.action)) {
    auto told = units_.push_settings(s->unit_id, s->position_interval_s, s->sensor_interval_s);
    if (!told) return Error{told.error()};
    if (!s->unit_id.empty() && *told == 0) return Error{"unit \"" + s->unit_id + "\" is not connected"};
    return std::string("{\"units\":" + std::to_string(*told) + "}");
  }
  if (const auto* p = std::get_if<codec::RequestPosition>(&command.action)) {
    auto source = p->source_id.empty() ? cfg_.gateway.id : p->source_id;
    auto json = positions_.json(source);
    if (json.empty()) return Error{"no position known for \"" + source + "\""};
    return json;
  }
  if (std::holds_alternative<codec::ExpectSeal>(command.action) ||
      std::holds_alternative<codec::PairUnit>(command.action) ||
      std::holds_alternative<codec::ReplaceZones>(command.action)) {
    if (events_ == nullptr) return Error{"custody commands need custody.enabled = true"};
    return events_->run_command(outbox_, command);
  }
  if (std::holds_alternative<codec::GetConfig>(command.action)) {
    return std::string("{\"config_hash\":\"" + config_hash(cfg_) + "\",\"config\":" +
                       effective_json(cfg_) + "}");
  }
  return Error{"unsupported action"};
}

}  // namespace eport::app
