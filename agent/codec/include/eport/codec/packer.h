// EnvelopePacker: a batch of readings -> the MQTT payload the agent sends,
// in the envelope format and compression the configuration chose. It owns
// the rules of packing (v2 leaves the site and gateway to the topic; v2 is
// compressed with the v2 dictionary, v1 without one), so that the publisher
// and the benchmarks that measure its work build the same bytes.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "eport/codec/codec.h"

namespace eport::codec {

class EnvelopePacker {
 public:
  // zstd_level 0: no compression; otherwise the zstd level (1..22).
  EnvelopePacker(EnvelopeFormat format, int zstd_level) : format_(format), zstd_level_(zstd_level) {}

  // The payload of one envelope of `readings` under `header`, encoded as
  // EnvelopeEncoder or EnvelopeEncoderV2 encode it; under v2 the header's
  // site and gateway ids are left out (the topic carries them,
  // docs/schema.md "Envelope v2").
  std::vector<std::uint8_t> pack(EnvelopeHeader header, std::span<const model::Reading> readings);

 private:
  EnvelopeFormat format_;
  int zstd_level_;
  EnvelopeEncoder v1_;
  EnvelopeEncoderV2 v2_;
};

}  // namespace eport::codec
