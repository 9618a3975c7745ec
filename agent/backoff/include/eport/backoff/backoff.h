// Backoff: the retry delay of every reopen and reconnect loop (the unit
// server's serial ports, the GNSS source, eport-sim's sockets): start at
// `min`, double after each failure up to `max`, optionally spread by
// +/- `jitter`, back to `min` on reset(). A value type with no clock of its
// own: callers pass their `now` to schedule() (so tests inject time) and
// may inject the random source. Not thread-safe; one owner per loop.
#pragma once

#include <chrono>
#include <functional>

namespace eport::backoff {

struct Options {
  std::chrono::milliseconds min{500};
  std::chrono::milliseconds max{30000};
  // Fraction of the delay to spread it by, 0 (none) to 1: 0.2 turns a
  // 1000 ms step into a delay uniformly in 800 .. 1200 ms. The doubling
  // works on the undisturbed step, so jitter never accumulates.
  double jitter = 0;
};

class Backoff {
 public:
  // Uniform random numbers in [0, 1). Empty: a generator of its own,
  // seeded from std::random_device (used only when jitter > 0).
  using Rng = std::function<double()>;

  Backoff() : Backoff(Options{}) {}
  explicit Backoff(Options options, Rng rng = {});

  // The delay to wait before the next attempt (after a failure); the step
  // after it doubles, capped at max.
  std::chrono::milliseconds next();

  // now + next(): when the next attempt is due.
  template <class TimePoint>
  TimePoint schedule(TimePoint now) {
    return now + next();
  }

  // After a success: the next delay is min again.
  void reset() { step_ = options_.min; }

  // The undisturbed delay next() starts from.
  std::chrono::milliseconds step() const { return step_; }

  const Options& options() const { return options_; }

 private:
  Options options_;
  Rng rng_;
  std::chrono::milliseconds step_;
};

}  // namespace eport::backoff
