// eport::backoff: doubling from min to max, reset, jitter bounds, all with
// an injected clock (plain time points) and an injected random source.
#include <catch2/catch.hpp>

#include <chrono>
#include <vector>

#include "eport/backoff/backoff.h"

using eport::backoff::Backoff;
using eport::backoff::Options;
using namespace std::chrono_literals;

TEST_CASE("backoff doubles from min to max and stays there", "[backoff]") {
  Backoff b(Options{500ms, 4000ms, 0});
  std::vector<std::chrono::milliseconds> got;
  for (int i = 0; i < 6; ++i) got.push_back(b.next());
  CHECK(got == std::vector<std::chrono::milliseconds>{500ms, 1000ms, 2000ms, 4000ms, 4000ms, 4000ms});
}

TEST_CASE("backoff reset starts again at min", "[backoff]") {
  Backoff b(Options{100ms, 2000ms, 0});
  (void)b.next();
  (void)b.next();
  CHECK(b.step() == 400ms);
  b.reset();
  CHECK(b.next() == 100ms);
  CHECK(b.next() == 200ms);
}

TEST_CASE("backoff schedules the next attempt from the caller's clock", "[backoff]") {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point t0{};  // an injected "now", not the real clock
  Backoff b(Options{1000ms, 3000ms, 0});
  auto due = b.schedule(t0);
  CHECK(due - t0 == 1000ms);
  due = b.schedule(due);
  CHECK(due - t0 == 3000ms);
  due = b.schedule(due);
  CHECK(due - t0 == 6000ms);  // capped at 3000 ms
}

TEST_CASE("backoff jitter stays within +/- the fraction and never accumulates", "[backoff]") {
  std::vector<double> draws{0.0, 0.5, 0.999999, 0.25};
  std::size_t i = 0;
  Backoff b(Options{1000ms, 60000ms, 0.2}, [&] { return draws[i++ % draws.size()]; });
  CHECK(b.next() == 800ms);    // 1000 ms, draw 0 -> -20 %
  CHECK(b.next() == 2000ms);   // 2000 ms, draw 0.5 -> 0 %
  CHECK(b.next() == 4800ms);   // 4000 ms, draw ~1 -> +20 %
  CHECK(b.next() == 7200ms);   // 8000 ms, draw 0.25 -> -10 %
  CHECK(b.step() == 16000ms);  // the step itself is undisturbed
}

TEST_CASE("backoff with max below min uses min", "[backoff]") {
  Backoff b(Options{2000ms, 1000ms, 0});
  CHECK(b.next() == 2000ms);
  CHECK(b.next() == 2000ms);
}
