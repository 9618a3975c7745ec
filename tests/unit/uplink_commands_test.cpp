// [uplink][commands] The command reply path without a store or a broker:
// answer_once() over a fake store::CommandLog that records every call and can
// be told to fail at each step. A new id is recorded before it runs, runs
// once, and its reply is recorded; a repeat gets the recorded reply and does
// not run; an id recorded without an outcome is never run again; a log that
// cannot look up or record refuses to run it. Also the reply JSON, the
// freshness rule (commands.max_age_s) and answer_command(), the whole path of
// one message from the command topic (retained, malformed, foreign, stale).
#include <catch2/catch.hpp>

#include <map>
#include <vector>

#include "eport/codec/command.h"
#include "eport/uplink/commands.h"

using namespace eport;

namespace {

class FakeLog : public store::CommandLog {
 public:
  std::map<std::string, store::CommandRecord, std::less<>> records;
  std::vector<std::string> calls;
  bool fail_find = false, fail_started = false, fail_done = false;

  Result<std::optional<store::CommandRecord>> find_command(std::string_view id) override {
    calls.push_back("find " + std::string(id));
    if (fail_find) return Error{"disk I/O error"};
    auto it = records.find(id);
    if (it == records.end()) return std::optional<store::CommandRecord>();
    return std::optional<store::CommandRecord>(it->second);
  }
  Status command_started(const store::CommandRecord& c) override {
    calls.push_back("started " + c.command_id);
    if (fail_started) return Error{"store full"};
    records[c.command_id] = c;
    return ok_status();
  }
  Status command_done(std::string_view id, std::string_view reply) override {
    calls.push_back("done " + std::string(id));
    if (fail_done) return Error{"disk I/O error"};
    auto& r = records[std::string(id)];
    r.done = true;
    r.reply = std::string(reply);
    return ok_status();
  }
};

codec::Command command(const std::string& id, std::uint64_t issued_ms = 1000) {
  codec::Command c;
  c.command_id = id;
  c.gateway_id = "gw-test-01";
  c.issued_utc_ms = issued_ms;
  c.action = codec::Flush{};
  return c;
}

}  // namespace

TEST_CASE("a new command id is recorded, then executed once, then its reply recorded", "[uplink][commands]") {
  FakeLog log;
  std::vector<std::string> order;
  int runs = 0;
  auto a = uplink::answer_once(log, command("c-1", 900), 1000, [&]() -> Result<std::string> {
    ++runs;
    order = log.calls;  // what the log had seen when execution began
    return std::string("{\"waiting\":3}");
  });
  CHECK(a.what == uplink::Answered::kExecuted);
  CHECK(a.ok);
  CHECK(a.note.empty());
  CHECK(a.reply == "{\"command_id\":\"c-1\",\"ok\":true,\"result\":{\"waiting\":3}}");
  CHECK(runs == 1);
  CHECK(order == std::vector<std::string>{"find c-1", "started c-1"});
  CHECK(log.calls == std::vector<std::string>{"find c-1", "started c-1", "done c-1"});
  CHECK(log.records["c-1"].received_utc_ms == 1000);
  CHECK(log.records["c-1"].issued_utc_ms == 900);
  CHECK(log.records["c-1"].reply == a.reply);
}

TEST_CASE("a repeated command id gets its recorded reply and is not executed again", "[uplink][commands]") {
  FakeLog log;
  int runs = 0;
  auto run = [&]() -> Result<std::string> {
    ++runs;
    return Error{"unit u-9 is not connected"};
  };
  auto first = uplink::answer_once(log, command("c-2"), 1000, run);
  CHECK(first.what == uplink::Answered::kExecuted);
  CHECK_FALSE(first.ok);
  CHECK(first.note == "unit u-9 is not connected");
  CHECK(first.reply == "{\"command_id\":\"c-2\",\"ok\":false,\"error\":\"unit u-9 is not connected\"}");

  auto again = uplink::answer_once(log, command("c-2"), 2000, run);
  CHECK(again.what == uplink::Answered::kRepeat);
  CHECK(again.reply == first.reply);
  CHECK_FALSE(again.ok);  // read back from the recorded reply
  CHECK(runs == 1);
  CHECK(log.calls.back() == "find c-2");

  uplink::answer_once(log, command("c-3"), 3000, [] { return Result<std::string>(std::string()); });
  auto ok_again = uplink::answer_once(log, command("c-3"), 4000, run);
  CHECK(ok_again.what == uplink::Answered::kRepeat);
  CHECK(ok_again.ok);
  CHECK(ok_again.reply == "{\"command_id\":\"c-3\",\"ok\":true,\"result\":{}}");
  CHECK(runs == 1);
}

TEST_CASE("an id recorded without an outcome (a crash mid-command) is never executed again", "[uplink][commands]") {
  FakeLog log;
  store::CommandRecord rec;
  rec.command_id = "c-4";
  rec.received_utc_ms = 777;
  log.records["c-4"] = rec;  // started, never done
  int runs = 0;
  auto a = uplink::answer_once(log, command("c-4"), 1000, [&] {
    ++runs;
    return Result<std::string>(std::string("{}"));
  });
  CHECK(a.what == uplink::Answered::kRepeatUnknown);
  CHECK_FALSE(a.ok);
  CHECK(runs == 0);
  CHECK(a.note.find("received at 777") != std::string::npos);
  CHECK(a.reply.rfind("{\"command_id\":\"c-4\",\"ok\":false,\"error\":", 0) == 0);
}

TEST_CASE("a command whose id cannot be looked up or recorded is not executed", "[uplink][commands]") {
  FakeLog log;
  int runs = 0;
  auto run = [&] {
    ++runs;
    return Result<std::string>(std::string("{}"));
  };
  log.fail_find = true;
  auto a = uplink::answer_once(log, command("c-5"), 1000, run);
  CHECK(a.what == uplink::Answered::kNotRecorded);
  CHECK(a.note.find("disk I/O error") != std::string::npos);
  CHECK(log.calls == std::vector<std::string>{"find c-5"});

  log.fail_find = false;
  log.fail_started = true;
  a = uplink::answer_once(log, command("c-5"), 1000, run);
  CHECK(a.what == uplink::Answered::kNotRecorded);
  CHECK_FALSE(a.ok);
  CHECK(a.note.find("store full") != std::string::npos);
  CHECK(a.reply.find("\"ok\":false") != std::string::npos);
  CHECK(runs == 0);
}

TEST_CASE("a reply that cannot be recorded is still published; a repeat is then 'outcome unknown'",
          "[uplink][commands]") {
  FakeLog log;
  log.fail_done = true;
  int runs = 0;
  auto run = [&] {
    ++runs;
    return Result<std::string>(std::string("{\"n\":1}"));
  };
  auto a = uplink::answer_once(log, command("c-6"), 1000, run);
  CHECK(a.what == uplink::Answered::kExecuted);
  CHECK(a.ok);
  CHECK(a.reply == "{\"command_id\":\"c-6\",\"ok\":true,\"result\":{\"n\":1}}");
  CHECK(a.note.find("its reply was not recorded") != std::string::npos);
  auto again = uplink::answer_once(log, command("c-6"), 2000, run);
  CHECK(again.what == uplink::Answered::kRepeatUnknown);
  CHECK(runs == 1);
}

TEST_CASE("reply JSON escapes the id and the error", "[uplink][commands]") {
  CHECK(uplink::reply_json("a\"b", Result<std::string>(Error{"bad \"x\""})) ==
        "{\"command_id\":\"a\\\"b\",\"ok\":false,\"error\":\"bad \\\"x\\\"\"}");
  CHECK(uplink::reply_json("x", Result<std::string>(std::string())) == "{\"command_id\":\"x\",\"ok\":true,\"result\":{}}");
}

TEST_CASE("a reply to a message without a readable command id has no command_id member", "[uplink][commands]") {
  CHECK(uplink::reply_json("", Result<std::string>(Error{"not EPC1"})) == "{\"ok\":false,\"error\":\"not EPC1\"}");
  FakeLog log;
  const std::string garbage = "not a command";
  std::vector<std::uint8_t> payload(garbage.begin(), garbage.end());
  for (bool retained : {false, true}) {
    auto r = uplink::answer_command(payload, retained, "gw-1", std::chrono::seconds(300), log, 1000,
                                    [](const codec::Command&) -> Result<std::string> { return std::string(); });
    CHECK(r.rejected);
    CHECK(r.reply.rfind("{\"ok\":false,\"error\":\"", 0) == 0);
  }
}

TEST_CASE("commands older than commands.max_age_s, without a time, or from the future are refused",
          "[uplink][commands]") {
  using std::chrono::seconds;
  const std::uint64_t now = 1'800'000'000'000;
  CHECK(uplink::freshness_problem(command("f", now), now, seconds(300)).empty());
  CHECK(uplink::freshness_problem(command("f", now - 300'000), now, seconds(300)).empty());  // exactly max age
  CHECK(uplink::freshness_problem(command("f", now - 300'001), now, seconds(300)) ==
        "stale command refused: issued 300 s ago, more than commands.max_age_s (300)");
  CHECK(uplink::freshness_problem(command("f", 0), now, seconds(300)) ==
        "stale command refused: it has no issued_utc_ms");
  CHECK(uplink::freshness_problem(command("f", now + 60'000), now, seconds(300)).empty());
  CHECK(uplink::freshness_problem(command("f", now + 61'000), now, seconds(300)) ==
        "command refused: issued 61 s in the future (the sender's clock and this gateway's differ by more than 60 s)");
  CHECK(uplink::freshness_problem(command("f", 0), now, seconds(0)).empty());  // check off
}

TEST_CASE("answer_command: a fresh command runs once; its repeat is answered, counted, not run",
          "[uplink][commands]") {
  FakeLog log;
  const std::uint64_t now = 1'800'000'000'000;
  int runs = 0;
  auto run = [&](const codec::Command& c) -> Result<std::string> {
    ++runs;
    CHECK(c.command_id == "c-10");
    return std::string("{\"waiting\":0}");
  };
  auto bytes = codec::encode_command(command("c-10", now - 1000));
  auto r = uplink::answer_command(bytes, false, "gw-test-01", std::chrono::seconds(300), log, now, run);
  CHECK(r.reply == "{\"command_id\":\"c-10\",\"ok\":true,\"result\":{\"waiting\":0}}");
  CHECK_FALSE(r.rejected);
  CHECK_FALSE(r.repeated);
  auto again = uplink::answer_command(bytes, false, "gw-test-01", std::chrono::seconds(300), log, now + 5, run);
  CHECK(again.reply == r.reply);
  CHECK(again.repeated);
  CHECK_FALSE(again.rejected);
  CHECK(runs == 1);
}

TEST_CASE("answer_command refuses retained, malformed, foreign and stale commands without running them",
          "[uplink][commands]") {
  FakeLog log;
  const std::uint64_t now = 1'800'000'000'000;
  int runs = 0;
  auto run = [&](const codec::Command&) -> Result<std::string> {
    ++runs;
    return std::string("{}");
  };
  const auto max_age = std::chrono::seconds(300);

  auto retained = uplink::answer_command(codec::encode_command(command("c-11", now)), true, "gw-test-01", max_age,
                                         log, now, run);
  CHECK(retained.rejected);
  CHECK(retained.reply.rfind("{\"command_id\":\"c-11\",\"ok\":false,\"error\":\"retained command refused", 0) == 0);

  std::vector<std::uint8_t> junk = {1, 2, 3, 4, 5, 6, 7, 8};
  auto malformed = uplink::answer_command(junk, false, "gw-test-01", max_age, log, now, run);
  CHECK(malformed.rejected);
  CHECK(malformed.reply.find("\"ok\":false") != std::string::npos);

  auto foreign = uplink::answer_command(codec::encode_command(command("c-12", now)), false, "gw-other-02", max_age,
                                        log, now, run);
  CHECK(foreign.rejected);
  CHECK(foreign.reply.rfind("{\"command_id\":\"c-12\",\"ok\":false,", 0) == 0);

  auto stale = uplink::answer_command(codec::encode_command(command("c-13", now - 301'000)), false, "gw-test-01",
                                      max_age, log, now, run);
  CHECK(stale.rejected);
  CHECK(stale.reply.find("stale command refused: issued 301 s ago") != std::string::npos);

  CHECK(runs == 0);
  CHECK(log.records.empty());  // none of them was recorded as seen either
}

TEST_CASE("answer_command counts a failed execution as rejected, an unknown outcome as both", "[uplink][commands]") {
  FakeLog log;
  const std::uint64_t now = 1'800'000'000'000;
  auto fail = [](const codec::Command&) -> Result<std::string> { return Error{"no such unit"}; };
  auto r = uplink::answer_command(codec::encode_command(command("c-14", now)), false, "gw-test-01",
                                  std::chrono::seconds(300), log, now, fail);
  CHECK(r.rejected);
  CHECK_FALSE(r.repeated);
  CHECK(r.reply == "{\"command_id\":\"c-14\",\"ok\":false,\"error\":\"no such unit\"}");

  store::CommandRecord rec;
  rec.command_id = "c-15";
  log.records["c-15"] = rec;  // received before a crash, no outcome
  r = uplink::answer_command(codec::encode_command(command("c-15", now)), false, "gw-test-01",
                             std::chrono::seconds(300), log, now, fail);
  CHECK(r.rejected);
  CHECK(r.repeated);
}
