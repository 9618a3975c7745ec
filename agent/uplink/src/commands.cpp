// Cloud commands: the path of one message from the command topic to its
// reply (retained refused, parse, the freshness rule of commands.max_age_s,
// at most once per command id through the store's record of seen ids,
// store::CommandLog), and the JSON reply.
#include "eport/uplink/commands.h"

#include "eport/codec/codec.h"
#include "eport/log/log.h"

namespace eport::uplink {

std::string freshness_problem(const codec::Command& cmd, std::uint64_t now, std::chrono::seconds max_age) {
  if (max_age.count() <= 0) return "";
  constexpr auto kFutureSkewMs = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(kCommandFutureSkew).count());
  auto max_age_ms = static_cast<std::uint64_t>(max_age.count()) * 1000;
  if (cmd.issued_utc_ms == 0) return "stale command refused: it has no issued_utc_ms";
  if (cmd.issued_utc_ms + max_age_ms < now) {
    return "stale command refused: issued " + std::to_string((now - cmd.issued_utc_ms) / 1000) +
           " s ago, more than commands.max_age_s (" + std::to_string(max_age.count()) + ")";
  }
  if (cmd.issued_utc_ms > now + kFutureSkewMs) {
    return "command refused: issued " + std::to_string((cmd.issued_utc_ms - now) / 1000) +
           " s in the future (the sender's clock and this gateway's differ by more than 60 s)";
  }
  return "";
}

Answer answer_once(store::CommandLog& log, const codec::Command& command, std::uint64_t now_utc_ms,
                   const std::function<Result<std::string>()>& execute) {
  const auto& id = command.command_id;
  Answer a;
  auto refuse = [&](Answered what, std::string why) {
    a.what = what;
    a.ok = false;
    a.note = why;
    a.reply = reply_json(id, Result<std::string>(Error{std::move(why)}));
    return a;
  };
  auto seen = log.find_command(id);
  if (!seen) {
    return refuse(Answered::kNotRecorded, "not executed: its id cannot be looked up in the store (" + seen.error() +
                                              "), so a repeat could not be told apart");
  }
  if (*seen) {
    const auto& rec = **seen;
    if (rec.done) {
      a.what = Answered::kRepeat;
      a.reply = rec.reply;
      a.ok = rec.reply.rfind("{\"command_id\":" + codec::json_string(id) + ",\"ok\":true", 0) == 0;
      a.note = "a repeat: answered with the reply recorded at " + std::to_string(rec.received_utc_ms) +
               ", not executed again";
      return a;
    }
    return refuse(Answered::kRepeatUnknown,
                  "not executed again: this command id was received at " + std::to_string(rec.received_utc_ms) +
                      " (UTC ms) and handed to execution, but the agent stopped before its outcome was recorded; "
                      "it may or may not have run (send a new command id to run it again)");
  }
  store::CommandRecord rec;
  rec.command_id = id;
  rec.issued_utc_ms = command.issued_utc_ms;
  rec.received_utc_ms = now_utc_ms;
  if (auto s = log.command_started(rec); !s) {
    return refuse(Answered::kNotRecorded, "not executed: " + s.error() +
                                              " (every command id is recorded before it runs, so that it runs once)");
  }
  auto outcome = execute();
  a.what = Answered::kExecuted;
  a.ok = static_cast<bool>(outcome);
  if (!outcome) a.note = outcome.error();
  a.reply = reply_json(id, outcome);
  if (auto s = log.command_done(id, a.reply); !s) {
    a.note += (a.note.empty() ? "" : "; ") + std::string("its reply was not recorded (") + s.error() +
              "): a repeat will be answered as 'outcome unknown'";
  }
  return a;
}

CommandReply answer_command(std::span<const std::uint8_t> payload, bool retained, std::string_view gateway_id,
                            std::chrono::seconds max_age, store::CommandLog& store, std::uint64_t now,
                            const std::function<Result<std::string>(const codec::Command&)>& execute) {
  constexpr std::string_view kLog = "uplink";
  CommandReply r;
  if (retained) {
    // A retained command would be delivered again after every reconnect
    // and restart, and executed each time: never executed, answered.
    // (The broker sets the flag only on messages from its retained store:
    // docs/topics.md.)
    r.rejected = true;
    std::string why =
        "retained command refused: commands must be published without the retain flag (the broker "
        "delivers a retained one again at every reconnect); clear it with an empty retained message";
    auto id = codec::command_id_of(payload);
    log::warn(kLog, "command " + (id.empty() ? std::string("(no readable id)") : id) + " rejected: " + why);
    r.reply = reply_json(id, Result<std::string>(Error{why}));
    return r;
  }
  auto cmd = codec::parse_command(payload, gateway_id);
  if (!cmd) {
    r.rejected = true;
    log::warn(kLog, "command rejected: " + cmd.error());
    r.reply = reply_json(codec::command_id_of(payload), Result<std::string>(Error{cmd.error()}));
    return r;
  }
  if (auto stale = freshness_problem(*cmd, now, max_age); !stale.empty()) {
    r.rejected = true;
    log::warn(kLog, "command " + cmd->command_id + " rejected: " + stale);
    r.reply = reply_json(cmd->command_id, Result<std::string>(Error{stale}));
    return r;
  }
  // At most once per command id, also across restarts: the id is
  // committed to the store before the command runs (answer_once()).
  auto answer = answer_once(store, *cmd, now, [&] { return execute(*cmd); });
  switch (answer.what) {
    case Answered::kExecuted:
      if (!answer.ok) r.rejected = true;
      if (answer.ok) {
        log::info(kLog, "command " + cmd->command_id + " done" + (answer.note.empty() ? "" : "; " + answer.note));
      } else {
        log::info(kLog, "command " + cmd->command_id + " failed: " + answer.note);
      }
      break;
    case Answered::kRepeat:
      r.repeated = true;
      log::info(kLog, "command " + cmd->command_id + " repeated: " + answer.note);
      break;
    case Answered::kRepeatUnknown:
      r.repeated = true;
      r.rejected = true;
      log::warn(kLog, "command " + cmd->command_id + " repeated: " + answer.note);
      break;
    case Answered::kNotRecorded:
      r.rejected = true;
      log::error(kLog, "command " + cmd->command_id + " rejected: " + answer.note);
      break;
  }
  r.reply = std::move(answer.reply);
  return r;
}

std::string reply_json(std::string_view command_id, const Result<std::string>& outcome) {
  // No id that could be read: no "command_id" member (never "": no command has that id).
  std::string out = command_id.empty() ? "{" : "{\"command_id\":" + codec::json_string(command_id) + ",";
  if (outcome) {
    out += "\"ok\":true,\"result\":" + (outcome->empty() ? std::string("{}") : *outcome) + "}";
  } else {
    out += "\"ok\":false,\"error\":" + codec::json_string(outcome.error()) + "}";
  }
  return out;
}

}  // namespace eport::uplink
