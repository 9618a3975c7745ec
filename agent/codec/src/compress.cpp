// zstd framing of envelopes: compress on the way out, detect and decompress
// (with a size limit, so a hostile frame cannot balloon) on the way in.
#include <zstd.h>

#include <algorithm>
#include <memory>

#include "eport/codec/codec.h"

namespace eport::codec {

namespace {
constexpr std::uint8_t kZstdMagic[4] = {0x28, 0xB5, 0x2F, 0xFD};
}

bool is_compressed(std::span<const std::uint8_t> payload) {
  return payload.size() >= 4 && std::equal(payload.begin(), payload.begin() + 4, kZstdMagic);
}

std::vector<std::uint8_t> compress(std::span<const std::uint8_t> envelope, int level) {
  // One context per thread, reused (compression runs once per envelope) and
  // freed when the thread ends.
  struct Free {
    void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
  };
  thread_local std::unique_ptr<ZSTD_CCtx, Free> owned(ZSTD_createCCtx());
  ZSTD_CCtx* ctx = owned.get();
  std::vector<std::uint8_t> out(ZSTD_compressBound(envelope.size()));
  ZSTD_CCtx_setParameter(ctx, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(ctx, ZSTD_c_contentSizeFlag, 1);
  ZSTD_CCtx_setParameter(ctx, ZSTD_c_checksumFlag, 0);
  std::size_t n = ZSTD_compress2(ctx, out.data(), out.size(), envelope.data(), envelope.size());
  if (ZSTD_isError(n)) return {envelope.begin(), envelope.end()};  // cannot happen with a bound-sized buffer
  out.resize(n);
  return out;
}

Result<Envelope> decode_payload(std::span<const std::uint8_t> payload, const DecodeLimits& limits) {
  if (!is_compressed(payload)) return decode_envelope(payload, limits);
  unsigned long long size = ZSTD_getFrameContentSize(payload.data(), payload.size());
  if (size == ZSTD_CONTENTSIZE_ERROR) return Error{"zstd payload: not a valid zstd frame"};
  if (size == ZSTD_CONTENTSIZE_UNKNOWN) return Error{"zstd payload: frame without content size"};
  if (size > limits.max_bytes) {
    return Error{"zstd payload: decompresses to " + std::to_string(size) + " bytes > " +
                 std::to_string(limits.max_bytes)};
  }
  std::vector<std::uint8_t> plain(static_cast<std::size_t>(size));
  std::size_t n = ZSTD_decompress(plain.data(), plain.size(), payload.data(), payload.size());
  if (ZSTD_isError(n) || n != plain.size()) {
    return Error{std::string("zstd payload: ") + (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "size mismatch")};
  }
  return decode_envelope(plain, limits);
}

}  // namespace eport::codec
