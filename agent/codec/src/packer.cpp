// EnvelopePacker (eport/codec/packer.h): the one place that decides how a
// batch of readings becomes the payload the agent publishes.
#include "eport/codec/packer.h"

namespace eport::codec {

std::vector<std::uint8_t> EnvelopePacker::pack(EnvelopeHeader header, std::span<const model::Reading> readings) {
  if (format_ == EnvelopeFormat::kV2) {
    header.site_id.clear();
    header.gateway_id.clear();
    auto bytes = v2_.encode(header, readings);
    if (zstd_level_ > 0) return compress_v2(bytes, zstd_level_);
    return {bytes.begin(), bytes.end()};
  }
  auto bytes = v1_.encode(header, readings);
  if (zstd_level_ > 0) return compress(bytes, zstd_level_);
  return {bytes.begin(), bytes.end()};
}

}  // namespace eport::codec
