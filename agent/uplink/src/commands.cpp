// Reply cache and reply formatting for cloud commands.
#include "eport/uplink/commands.h"

#include "eport/codec/codec.h"

namespace eport::uplink {

const std::string* ReplyCache::find(const std::string& command_id) const {
  auto it = replies_.find(command_id);
  return it == replies_.end() ? nullptr : &it->second;
}

void ReplyCache::put(const std::string& command_id, std::string reply) {
  if (replies_.count(command_id) == 0) {
    order_.push_back(command_id);
    if (order_.size() > capacity_) {
      replies_.erase(order_.front());
      order_.pop_front();
    }
  }
  replies_[command_id] = std::move(reply);
}

std::string reply_json(std::string_view command_id, const Result<std::string>& outcome) {
  std::string out = "{\"command_id\":" + codec::json_string(command_id);
  if (outcome) {
    out += ",\"ok\":true,\"result\":" + (outcome->empty() ? std::string("{}") : *outcome) + "}";
  } else {
    out += ",\"ok\":false,\"error\":" + codec::json_string(outcome.error()) + "}";
  }
  return out;
}

}  // namespace eport::uplink
