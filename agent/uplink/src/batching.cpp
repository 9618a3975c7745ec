// The batching decision (batching.h): when the publisher sends an envelope.
#include "eport/uplink/batching.h"

namespace eport::uplink {

std::uint64_t waiting_rows(const BatchingInput& in, model::Priority p) {
  auto i = static_cast<std::size_t>(p);
  // Rows evicted or expired while leased can leave fewer stored than in flight.
  return in.stored[i] > in.inflight_rows[i] ? in.stored[i] - in.inflight_rows[i] : 0;
}

std::uint64_t waiting_rows(const BatchingInput& in) {
  std::uint64_t n = 0;
  for (int p = 0; p < model::kPriorityCount; ++p) n += waiting_rows(in, static_cast<model::Priority>(p));
  return n;
}

BatchingDecision decide(const BatchingOptions& opt, const BatchingInput& in) {
  using Clock = BatchingInput::Clock;
  constexpr auto never = Clock::time_point::max();
  BatchingDecision d;
  auto waiting = waiting_rows(in);
  bool alarm_waiting = waiting_rows(in, model::Priority::kAlarm) > 0;
  bool room = in.inflight_envelopes < opt.max_inflight;

  d.wait_until = waiting > 0 && in.waiting_since != never ? in.waiting_since + opt.max_age
                                                           : in.now + std::chrono::seconds(1);
  if (waiting > 0 && room && in.only_alarms) d.wait_until = in.now + std::chrono::seconds(5);  // re-check now and then

  bool full = waiting >= opt.max_readings;
  bool aged = waiting > 0 && in.waiting_since != never && in.now - in.waiting_since >= opt.max_age;
  bool ready = full || aged || alarm_waiting || (in.flushing && waiting > 0);
  if (waiting == 0) {
    d.why = Wait::kNothing;
  } else if (in.returning) {
    d.why = Wait::kReturning;
  } else if (!room) {
    d.why = Wait::kInflight;
  } else if (!ready) {
    d.why = Wait::kFilling;
  } else if (in.only_alarms && !alarm_waiting) {
    d.why = Wait::kBudget;
  } else {
    d.publish = true;
    d.min_priority = in.only_alarms ? model::Priority::kAlarm : model::Priority::kBulk;
    d.max_readings = opt.max_readings;
    for (int p = model::kPriorityCount - 1; p >= 0; --p) {
      if (waiting_rows(in, static_cast<model::Priority>(p)) > 0) {
        d.priority = static_cast<model::Priority>(p);
        break;
      }
    }
  }
  return d;
}

}  // namespace eport::uplink
