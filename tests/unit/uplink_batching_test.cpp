// [uplink][batching] The publisher's batching decision (uplink::decide), with
// made-up counts and clocks: alarms never wait for a fuller envelope or for
// the budget, a full envelope or max_age publishes, the in-flight cap and a
// return to the preferred broker hold everything, a used-up budget holds the
// rest, and the wait ends when the oldest waiting rows reach max_age.
#include <catch2/catch.hpp>

#include "eport/uplink/batching.h"

using namespace eport;
using namespace std::chrono_literals;
using model::Priority;
using uplink::BatchingInput;
using uplink::Wait;

namespace {

constexpr auto kNever = BatchingInput::Clock::time_point::max();

uplink::BatchingOptions options() {
  uplink::BatchingOptions o;
  o.max_inflight = 4;
  o.max_readings = 100;
  o.max_age = 1000ms;
  return o;
}

BatchingInput at(BatchingInput::Clock::time_point now) {
  BatchingInput in;
  in.now = now;
  return in;
}

void put(BatchingInput& in, Priority p, std::uint64_t stored, std::uint64_t inflight = 0) {
  in.stored[static_cast<std::size_t>(p)] = stored;
  in.inflight_rows[static_cast<std::size_t>(p)] = inflight;
}

const auto t0 = BatchingInput::Clock::time_point{} + 1000h;

}  // namespace

TEST_CASE("one alarm is published at once, without waiting for max_age or a fuller envelope",
          "[uplink][batching]") {
  auto in = at(t0);
  put(in, Priority::kAlarm, 1);
  put(in, Priority::kTelemetry, 5);
  in.waiting_since = t0;  // just now
  auto d = uplink::decide(options(), in);
  REQUIRE(d.publish);
  CHECK(d.priority == Priority::kAlarm);
  CHECK(d.max_readings == 100);
  CHECK(d.min_priority == Priority::kBulk);
}

TEST_CASE("alarms in flight are not counted as waiting: the rest waits for max_age", "[uplink][batching]") {
  auto in = at(t0 + 200ms);
  put(in, Priority::kAlarm, 3, 3);  // all three in flight already
  put(in, Priority::kTelemetry, 5);
  in.inflight_envelopes = 1;
  in.waiting_since = t0;
  auto d = uplink::decide(options(), in);
  CHECK_FALSE(d.publish);
  CHECK(d.why == Wait::kFilling);
  CHECK(d.wait_until == t0 + 1000ms);  // when the oldest waiting rows reach max_age
  CHECK(uplink::waiting_rows(in) == 5);
}

TEST_CASE("non-alarm rows wait until max_age, then go; a full envelope goes at once", "[uplink][batching]") {
  auto in = at(t0 + 999ms);
  put(in, Priority::kTelemetry, 99);
  in.waiting_since = t0;
  auto d = uplink::decide(options(), in);
  CHECK_FALSE(d.publish);
  CHECK(d.why == Wait::kFilling);
  CHECK(d.wait_until == t0 + 1000ms);

  in.now = t0 + 1000ms;  // max_age reached
  d = uplink::decide(options(), in);
  REQUIRE(d.publish);
  CHECK(d.priority == Priority::kTelemetry);

  in.now = t0 + 1ms;  // young, but max_readings are waiting
  put(in, Priority::kTelemetry, 100);
  d = uplink::decide(options(), in);
  REQUIRE(d.publish);
  CHECK(d.priority == Priority::kTelemetry);

  put(in, Priority::kTelemetry, 100, 1);  // one of them in flight: 99 waiting, young
  CHECK_FALSE(uplink::decide(options(), in).publish);
}

TEST_CASE("the highest class waiting is the one published", "[uplink][batching]") {
  auto in = at(t0 + 5s);
  put(in, Priority::kBulk, 10);
  put(in, Priority::kEvent, 2);
  put(in, Priority::kTelemetry, 7);
  in.waiting_since = t0;
  auto d = uplink::decide(options(), in);
  REQUIRE(d.publish);
  CHECK(d.priority == Priority::kEvent);

  put(in, Priority::kEvent, 2, 2);  // events all in flight
  d = uplink::decide(options(), in);
  REQUIRE(d.publish);
  CHECK(d.priority == Priority::kTelemetry);
}

TEST_CASE("a flush publishes whatever waits, however young", "[uplink][batching]") {
  auto in = at(t0);
  put(in, Priority::kBulk, 1);
  in.waiting_since = t0;
  CHECK_FALSE(uplink::decide(options(), in).publish);
  in.flushing = true;
  auto d = uplink::decide(options(), in);
  REQUIRE(d.publish);
  CHECK(d.priority == Priority::kBulk);
}

TEST_CASE("at the in-flight cap nothing is published, not even an alarm", "[uplink][batching]") {
  auto in = at(t0 + 10s);
  put(in, Priority::kAlarm, 5, 1);
  put(in, Priority::kTelemetry, 500, 300);
  in.inflight_envelopes = 4;  // = max_inflight
  in.waiting_since = t0;
  auto d = uplink::decide(options(), in);
  CHECK_FALSE(d.publish);
  CHECK(d.why == Wait::kInflight);

  in.inflight_envelopes = 3;  // one PUBACK later
  d = uplink::decide(options(), in);
  REQUIRE(d.publish);
  CHECK(d.priority == Priority::kAlarm);
}

TEST_CASE("with the budget used up non-alarms wait and alarms still go", "[uplink][batching]") {
  auto in = at(t0 + 10s);
  put(in, Priority::kTelemetry, 500);  // full and aged: would go
  in.waiting_since = t0;
  in.only_alarms = true;
  auto d = uplink::decide(options(), in);
  CHECK_FALSE(d.publish);
  CHECK(d.why == Wait::kBudget);
  CHECK(d.wait_until == in.now + 5s);  // looks again now and then for the budget to renew

  in.flushing = true;  // a flush does not override the budget either
  CHECK_FALSE(uplink::decide(options(), in).publish);

  put(in, Priority::kAlarm, 1);
  d = uplink::decide(options(), in);
  REQUIRE(d.publish);
  CHECK(d.priority == Priority::kAlarm);
  CHECK(d.min_priority == Priority::kAlarm);  // take() must not hand out telemetry

  in.only_alarms = false;
  CHECK(uplink::decide(options(), in).min_priority == Priority::kBulk);
}

TEST_CASE("returning to the preferred broker holds everything", "[uplink][batching]") {
  auto in = at(t0 + 10s);
  put(in, Priority::kAlarm, 1);
  in.waiting_since = t0;
  in.returning = true;
  auto d = uplink::decide(options(), in);
  CHECK_FALSE(d.publish);
  CHECK(d.why == Wait::kReturning);
}

TEST_CASE("nothing waiting: wait a second; rows evicted while in flight count as none", "[uplink][batching]") {
  auto in = at(t0);
  auto d = uplink::decide(options(), in);
  CHECK_FALSE(d.publish);
  CHECK(d.why == Wait::kNothing);
  CHECK(d.wait_until == t0 + 1s);

  put(in, Priority::kBulk, 2, 5);  // fewer stored than leased: evicted meanwhile
  CHECK(uplink::waiting_rows(in) == 0);
  CHECK(uplink::decide(options(), in).why == Wait::kNothing);

  put(in, Priority::kBulk, 2);  // waiting, but not yet seen waiting (after an envelope found nothing)
  in.waiting_since = kNever;
  d = uplink::decide(options(), in);
  CHECK_FALSE(d.publish);
  CHECK(d.wait_until == t0 + 1s);
}
