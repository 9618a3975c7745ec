// The uplink's batching decision, pure: from what is waiting in the outbox,
// what is in flight, the clock and the data budget, whether to publish an
// envelope now (and of which class, with at most how many readings) or to
// wait until a given time. No I/O, no threads, no clock of its own: the
// publisher thread calls it once per turn of its loop, and tests call it
// with made-up inputs.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "eport/model/reading.h"

namespace eport::uplink {

struct BatchingOptions {
  std::size_t max_inflight = 16;            // envelopes awaiting PUBACK
  std::size_t max_readings = 500;           // per envelope
  std::chrono::milliseconds max_age{1000};  // wait this long for a fuller envelope (alarms never wait)
};

struct BatchingInput {
  using Clock = std::chrono::steady_clock;
  // Rows per class (index = model::Priority) in the outbox, leased or not.
  std::array<std::uint64_t, model::kPriorityCount> stored{};
  // Of those, rows in envelopes awaiting their PUBACK.
  std::array<std::uint64_t, model::kPriorityCount> inflight_rows{};
  std::size_t inflight_envelopes = 0;
  Clock::time_point now{};
  // Since when rows have been waiting without an envelope: the age of the
  // oldest waiting row as the publisher saw it (it restarts after each
  // envelope published); Clock::time_point::max() = nothing seen waiting.
  Clock::time_point waiting_since = Clock::time_point::max();
  bool only_alarms = false;  // the data budget is used up (Budget::allows_only_alarms)
  bool flushing = false;     // a flush was asked for: publish whatever waits
  bool returning = false;    // going back to the preferred broker: publish nothing new
};

enum class Wait : std::uint8_t {
  kNothing,   // nothing waiting
  kFilling,   // fewer than max_readings waiting, younger than max_age
  kInflight,  // max_inflight envelopes await their PUBACK
  kBudget,    // only non-alarm rows are ready and the budget is used up
  kReturning, // returning to the preferred broker
};

struct BatchingDecision {
  bool publish = false;
  // When publishing: the class expected in the envelope (the highest class
  // waiting that the budget allows), the most readings it takes, and the
  // lowest class Outbox::take() may take from (kAlarm when the budget is
  // used up, else kBulk).
  model::Priority priority = model::Priority::kBulk;
  std::size_t max_readings = 0;
  model::Priority min_priority = model::Priority::kBulk;
  // When not publishing (or if the publish finds nothing): why, and when to
  // look again at the latest (sooner when woken by new rows or a PUBACK).
  Wait why = Wait::kNothing;
  BatchingInput::Clock::time_point wait_until{};
};

// Rows waiting for an envelope (stored minus in flight), per class and in all.
std::uint64_t waiting_rows(const BatchingInput& in, model::Priority p);
std::uint64_t waiting_rows(const BatchingInput& in);

// Publish when below max_inflight and not returning, and: an alarm waits
// (alarms never wait for a fuller envelope, and the budget never holds
// them), or max_readings wait, or rows have waited max_age, or a flush was
// asked for; non-alarm rows then wait while the budget is used up. Otherwise
// wait until the oldest waiting rows reach max_age, 1 s when nothing waits
// (or nothing has been seen waiting yet), 5 s while the budget holds rows.
BatchingDecision decide(const BatchingOptions& options, const BatchingInput& in);

}  // namespace eport::uplink
