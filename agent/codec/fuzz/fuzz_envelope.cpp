// libFuzzer target for the envelope decoder (decode_payload: zstd detection,
// the size limits, the FlatBuffers Verifier, the union and string checks and
// the decoded-size bound) and for stored readings (decode_reading). Arbitrary
// bytes must never crash, leak or hang, and what decodes must re-encode to an
// envelope that decodes to the same readings. Long runs: docs/testing.md.
#include <cstddef>
#include <cstdint>
#include <span>

#include "eport/codec/codec.h"

namespace {
void check(bool ok) {
  if (!ok) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace eport;
  std::span<const std::uint8_t> in(data, size);
  codec::DecodeLimits limits;
  limits.max_decoded_bytes = 8u << 20;  // tighter than the default, so that the bound is reached
  auto env = codec::decode_payload(in, limits);
  if (env) {
    check(env->readings.size() + env->skipped_unknown <= limits.max_readings);
    std::size_t decoded = env->header.site_id.size() + env->header.gateway_id.size();
    for (const auto& r : env->readings) {
      check(!r.source_id.empty() && r.source_id.size() <= codec::kMaxSourceIdBytes);
      check(r.container_id.size() <= codec::kMaxContainerIdBytes);
      decoded += codec::kDecodedReadingBytes + r.source_id.size() + r.container_id.size();
      if (const auto* s = std::get_if<model::SealEvent>(&r.payload)) {
        check(s->seal_id.size() <= codec::kMaxSealIdBytes);
        decoded += s->seal_id.size();
      }
      (void)codec::reading_to_json(r);
    }
    check(decoded <= limits.max_decoded_bytes);
    (void)codec::envelope_header_to_json(env->header);
    // What decoded re-encodes, and decodes to the same readings.
    auto again = codec::encode_envelope(env->header, env->readings);
    auto back = codec::decode_envelope(again);
    check(back.ok());
    check(back->header == env->header);
    check(back->readings == env->readings);
  }
  auto stored = codec::decode_reading(in);
  if (stored) (void)codec::reading_to_json(*stored);
  return 0;
}
