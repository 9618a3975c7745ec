// The record of cloud command ids already seen, with their replies: what lets
// the uplink answer a command delivered twice (QoS 1, a sender's retry, also
// after a restart) again without executing it again. The Outbox implements it
// in its SQLite file (docs/store.md "Commands"); the uplink sees only this
// interface, so a test can put a fake in its place.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "eport/model/result.h"

namespace eport::store {

struct CommandRecord {
  std::string command_id;
  std::uint64_t issued_utc_ms = 0;    // the command's own issued time (the sender's clock)
  std::uint64_t received_utc_ms = 0;  // when this gateway recorded it, before executing it
  // False: recorded as received and handed to execution, but no outcome was
  // recorded (the agent stopped in between): it may or may not have run.
  bool done = false;
  std::string reply;  // the JSON reply that was published, when done
};

class CommandLog {
 public:
  virtual ~CommandLog() = default;

  // The record of a command id, or nullopt if it was never seen (or has been
  // pruned: older than the commands' max age, or pushed out by newer ones).
  // An error only if the store cannot be read.
  virtual Result<std::optional<CommandRecord>> find_command(std::string_view command_id) = 0;

  // Records a command as received, durably (committed as the store's
  // durability setting commits), before it is executed: from here on a
  // repeat finds it, also after a kill -9. Makes room first by pruning the
  // oldest records. An error (store full, I/O error, or the id recorded
  // already) means: do not execute it.
  virtual Status command_started(const CommandRecord& command) = 0;

  // Records the reply of a command recorded by command_started(): done.
  virtual Status command_done(std::string_view command_id, std::string_view reply) = 0;
};

}  // namespace eport::store
