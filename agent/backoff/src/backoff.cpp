// Doubling with a cap, and jitter applied to each delay handed out but
// never to the step itself (see backoff.h).
#include "eport/backoff/backoff.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>

namespace eport::backoff {

Backoff::Backoff(Options options, Rng rng) : options_(options), rng_(std::move(rng)), step_(options.min) {
  options_.max = std::max(options_.max, options_.min);
  options_.jitter = std::clamp(options_.jitter, 0.0, 1.0);
  step_ = options_.min;
  if (!rng_ && options_.jitter > 0) {
    rng_ = [gen = std::minstd_rand(std::random_device{}())]() mutable {
      return std::uniform_real_distribution<double>(0.0, 1.0)(gen);
    };
  }
}

std::chrono::milliseconds Backoff::next() {
  auto delay = step_;
  step_ = std::min(step_ * 2, options_.max);
  if (options_.jitter > 0) {
    const double spread = (rng_() * 2.0 - 1.0) * options_.jitter;  // -jitter .. +jitter
    const double ms = static_cast<double>(delay.count()) * (1.0 + spread);
    delay = std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(std::llround(std::max(ms, 0.0))));
  }
  return delay;
}

}  // namespace eport::backoff
