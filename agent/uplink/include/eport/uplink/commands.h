// Executing commands from the cloud: the interface through which the agent
// carries them out, the freshness rule (commands.max_age_s), the at-most-once rule that answers a repeated command id
// with its recorded reply instead of executing it again (the ids live in the
// store: store::CommandLog, so a restart does not forget them), and the JSON
// reply.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "eport/codec/command.h"
#include "eport/model/result.h"
#include "eport/store/command_log.h"

namespace eport::uplink {

// Executes accepted commands; implemented by the agent. Returns a JSON value
// describing the result, or an error. Called on the publisher thread: must
// not block for long.
class CommandHandler {
 public:
  virtual ~CommandHandler() = default;
  virtual Result<std::string> execute(const codec::Command& command) = 0;
};

// A command issued more than this ahead of the gateway's clock is refused:
// the sender's clock and this one disagree.
inline constexpr std::chrono::seconds kCommandFutureSkew{60};

// Why a command is too old or too new to run, or "" when it may: refused when
// it has no issued time, was issued more than max_age before now_utc_ms
// (commands.max_age_s), or more than kCommandFutureSkew after it. A max_age
// of 0 turns the check off.
std::string freshness_problem(const codec::Command& command, std::uint64_t now_utc_ms, std::chrono::seconds max_age);

// What answer_once() did with a command.
enum class Answered {
  kExecuted,       // first time seen: recorded, executed, its reply recorded
  kRepeat,         // seen before (also before a restart): its recorded reply again, not executed
  kRepeatUnknown,  // seen before, but the agent stopped before its outcome was recorded: not executed again
  kNotRecorded,    // the store could not record it (full, I/O error): not executed
};

struct Answer {
  Answered what = Answered::kExecuted;
  std::string reply;  // the JSON reply to publish
  bool ok = false;    // the reply says "ok":true
  std::string note;   // for the log: the execution's error, or why it was not executed
};

// Answers one accepted (parsed, fresh, not retained) command at most once
// per command id. In this order, so that a kill -9 at any point cannot run
// it twice:
//   1. look the id up: seen before -> its recorded reply (kRepeat), or, if
//      no outcome was recorded, an error reply saying so (kRepeatUnknown);
//   2. record it as received (committed before anything runs; if that fails
//      the command is refused, kNotRecorded);
//   3. execute();
//   4. record the reply (a failure here is only logged: the id is recorded,
//      so a repeat gets kRepeatUnknown, never a second execution);
//   5. the caller publishes the reply.
// Between 2 and 4 the outcome exists only in memory: a crash there leaves
// the id as "received, outcome unknown". now_utc_ms is the receipt time.
Answer answer_once(store::CommandLog& log, const codec::Command& command, std::uint64_t now_utc_ms,
                   const std::function<Result<std::string>()>& execute);

// One message from the command topic, answered: the reply to publish on the
// reply topic, and how it counts in the publisher's stats.
struct CommandReply {
  std::string reply;
  bool rejected = false;  // counts in commands_rejected
  bool repeated = false;  // counts in commands_repeated
};

// The whole path of one message from the command topic, logged as it goes:
// a retained message is refused without being parsed for more than its id
// (the broker would deliver it again at every reconnect); then
// codec::parse_command() for this gateway (refused with its error),
// freshness_problem() under max_age, and answer_once() over `log`, which
// calls execute() for a command seen for the first time. Never throws;
// every path yields a reply.
CommandReply answer_command(std::span<const std::uint8_t> payload, bool retained, std::string_view gateway_id,
                            std::chrono::seconds max_age, store::CommandLog& log, std::uint64_t now_utc_ms,
                            const std::function<Result<std::string>(const codec::Command&)>& execute);

// {"command_id":"..","ok":true,"result":<json>} or
// {"command_id":"..","ok":false,"error":".."}; without "command_id" when
// command_id is "" (a message whose id could not be read).
std::string reply_json(std::string_view command_id, const Result<std::string>& outcome);

}  // namespace eport::uplink
