// libFuzzer target for the envelope v2 decoder (decode_envelope_v2 and
// decode_payload with the v2 dictionary: the varint reader, every column's
// range check, the group and v1-table bookkeeping, the limits). Arbitrary
// bytes must never crash, leak, hang or read past the buffer, and what
// decodes must re-encode to a v2 envelope that decodes to the same readings.
// Seeds: fuzz/corpus/envelope_v2 (written by encode_envelope_v2; see
// tests/unit/codec_v2_test.cpp, "the fuzz seeds"). Long runs: docs/testing.md.
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
  limits.max_readings = 20000;
  limits.max_decoded_bytes = 8u << 20;
  for (bool compressed : {false, true}) {
    auto env = compressed ? codec::decode_payload(in, limits) : codec::decode_envelope_v2(in, limits);
    if (!env || env->header.schema_version != codec::kSchemaVersionV2) continue;
    check(env->readings.size() + env->skipped_unknown <= limits.max_readings);
    std::size_t decoded = env->header.site_id.size() + env->header.gateway_id.size();
    for (const auto& r : env->readings) {
      check(!r.source_id.empty() && r.source_id.size() <= codec::kMaxSourceIdBytes);
      check(r.container_id.size() <= codec::kMaxContainerIdBytes);
      check(r.seq >= 1 && r.seq <= model::kMaxSeq);
      decoded += codec::kDecodedReadingBytes + r.source_id.size() + r.container_id.size();
      (void)codec::reading_to_json(r);
    }
    check(decoded <= limits.max_decoded_bytes);
    auto again = codec::encode_envelope_v2(env->header, env->readings);
    auto back = codec::decode_envelope_v2(again, limits);
    check(back.ok());
    check(back->header == env->header);
    check(back->readings == env->readings);
  }
  return 0;
}
