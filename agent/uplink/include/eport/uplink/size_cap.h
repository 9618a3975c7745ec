// The largest envelope the publisher sends to a broker that refuses large
// ones without saying its limit in the CONNACK (MQTT 5 PUBACK 0x95, e.g.
// mosquitto's message_size_limit), learned from its refusals and
// acknowledgements. Pure: no I/O, no clock; the publisher thread feeds it
// and tests call it with made-up sizes. Rules: docs/operators.md (MQTT
// version, Message size).
#pragma once

#include <cstddef>
#include <cstdint>

namespace eport::uplink {

class EnvelopeSizeCap {
 public:
  // What a refusal taught.
  enum class Refusal : std::uint8_t {
    kCapLowered,     // a split envelope will stay at or below limit() from now on
    kOneReading,     // an envelope of one reading cannot be split: its class waits for a larger limit
    kNothingToLearn, // no size known (0 bytes)
  };

  // The broker refused an envelope of `bytes` payload bytes holding `readings`
  // readings (0: not known any more, e.g. reported after the connection was
  // lost) as too large. The cap becomes half its size, but never less than
  // the largest envelope the broker acknowledged that is smaller than it, nor
  // 1, and never rises on a refusal.
  Refusal refused(std::size_t bytes, std::size_t readings);
  // The broker acknowledged an envelope of `bytes`: it takes that size, so
  // the cap (once there is one) rises to it (one reading above the cap goes
  // unsplit and may be acknowledged).
  void acknowledged(std::size_t bytes);

  // SIZE_MAX until the first refusal that lowered it.
  std::size_t limit() const { return cap_; }
  bool learned() const { return cap_ != SIZE_MAX; }
  std::size_t largest_acknowledged() const { return largest_acked_; }

 private:
  std::size_t cap_ = SIZE_MAX;
  std::size_t largest_acked_ = 0;
};

}  // namespace eport::uplink
