// Executing commands from the cloud: the interface through which the agent
// carries them out, the idempotency window that answers a repeated command
// id without executing it again, and the JSON reply.
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <unordered_map>

#include "eport/codec/command.h"
#include "eport/model/result.h"

namespace eport::uplink {

// Executes accepted commands; implemented by the agent. Returns a JSON value
// describing the result, or an error. Called on the publisher thread: must
// not block for long.
class CommandHandler {
 public:
  virtual ~CommandHandler() = default;
  virtual Result<std::string> execute(const codec::Command& command) = 0;
};

// Remembers the replies to the last `capacity` command ids (in memory: a
// restart forgets them), so that a command delivered twice is answered
// again but executed once.
class ReplyCache {
 public:
  explicit ReplyCache(std::size_t capacity = 1024) : capacity_(capacity) {}
  const std::string* find(const std::string& command_id) const;
  void put(const std::string& command_id, std::string reply);

 private:
  std::size_t capacity_;
  std::deque<std::string> order_;
  std::unordered_map<std::string, std::string> replies_;
};

// {"command_id":"..","ok":true,"result":<json>} or
// {"command_id":"..","ok":false,"error":".."}
std::string reply_json(std::string_view command_id, const Result<std::string>& outcome);

}  // namespace eport::uplink
