// zstd framing of envelopes: compress on the way out (v2: with the v2
// dictionary, announced by its id), detect and decompress (with a size limit,
// so a hostile frame cannot balloon; a frame naming an unknown dictionary is
// refused) on the way in, then decode by file identifier.
// ZSTD_createCDict_advanced and ZSTD_getCParams: zstd's "experimental"
// API, exported by Debian's libzstd1 (1.5.x); the compression parameters'
// struct has kept its layout since 1.0.
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include <algorithm>
#include <memory>

#include "eport/codec/codec.h"
#include "eport/codec/topics.h"

#include <tuple>

namespace eport::codec {

namespace {
constexpr std::uint8_t kZstdMagic[4] = {0x28, 0xB5, 0x2F, 0xFD};

// The committed dictionary file's bytes (v2_dictionary_data.inc is made by
// agent/codec/CMakeLists.txt from schema/eport_v2_dict_1.zdict), with a
// trailing 0 so that the array is never empty.
constexpr unsigned char kDictionary[] = {
#include "v2_dictionary_data.inc"
    0};

struct FreeCDict {
  void operator()(ZSTD_CDict* d) const { ZSTD_freeCDict(d); }
};
struct FreeDDict {
  void operator()(ZSTD_DDict* d) const { ZSTD_freeDDict(d); }
};
struct FreeDCtx {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

ZSTD_CCtx* thread_cctx() {
  // One context per thread, reused (compression runs once per envelope) and
  // freed when the thread ends.
  struct Free {
    void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
  };
  thread_local std::unique_ptr<ZSTD_CCtx, Free> owned(ZSTD_createCCtx());
  return owned.get();
}
}  // namespace

std::span<const std::uint8_t> v2_dictionary() { return {kDictionary, sizeof kDictionary - 1}; }

bool is_compressed(std::span<const std::uint8_t> payload) {
  return payload.size() >= 4 && std::equal(payload.begin(), payload.begin() + 4, kZstdMagic);
}

std::vector<std::uint8_t> compress(std::span<const std::uint8_t> envelope, int level) {
  ZSTD_CCtx* ctx = thread_cctx();
  ZSTD_CCtx_reset(ctx, ZSTD_reset_session_and_parameters);
  std::vector<std::uint8_t> out(ZSTD_compressBound(envelope.size()));
  ZSTD_CCtx_setParameter(ctx, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(ctx, ZSTD_c_contentSizeFlag, 1);
  ZSTD_CCtx_setParameter(ctx, ZSTD_c_checksumFlag, 0);
  std::size_t n = ZSTD_compress2(ctx, out.data(), out.size(), envelope.data(), envelope.size());
  if (ZSTD_isError(n)) return {envelope.begin(), envelope.end()};  // cannot happen with a bound-sized buffer
  out.resize(n);
  return out;
}

namespace {
// The v2 dictionary digested for `level`, with match tables for what an
// envelope v2 is (about 10 KB for the busy gateway's 500 readings) and not
// the level's defaults for an input of unknown size, which ZSTD_createCDict
// assumes: a 32 KiB window and 2^15-entry hash and chain tables. The
// compressing context takes the dictionary's parameters, so this also sizes
// it: 503 KiB for both against 887 KiB, for 0.04 % more compressed bytes at
// level 6 and no more time (2^14 entries: 311 KiB, but 0.1 % more bytes,
// which puts the busy gateway over its 12 B/reading; docs/benchmarks.md).
ZSTD_CDict* new_v2_cdict(int level) {
  constexpr unsigned kWindowLog = 15, kHashLog = 15, kChainLog = 15;
  const auto dict = v2_dictionary();
  ZSTD_compressionParameters p = ZSTD_getCParams(level, 64 * 1024, dict.size());
  p.windowLog = std::min(p.windowLog, kWindowLog);
  p.hashLog = std::min(p.hashLog, kHashLog);
  p.chainLog = std::min(p.chainLog, kChainLog);
  return ZSTD_createCDict_advanced(dict.data(), dict.size(), ZSTD_dlm_byRef, ZSTD_dct_auto, p, ZSTD_defaultCMem);
}
}  // namespace

std::vector<std::uint8_t> compress_v2(std::span<const std::uint8_t> envelope, int level) {
  // The digested dictionary, once per thread and level.
  thread_local std::unique_ptr<ZSTD_CDict, FreeCDict> cdict;
  thread_local int cdict_level = 0;
  if (!cdict || cdict_level != level) {
    cdict.reset(new_v2_cdict(level));
    cdict_level = level;
  }
  ZSTD_CCtx* ctx = thread_cctx();
  ZSTD_CCtx_reset(ctx, ZSTD_reset_session_and_parameters);
  std::vector<std::uint8_t> out(ZSTD_compressBound(envelope.size()));
  ZSTD_CCtx_setParameter(ctx, ZSTD_c_contentSizeFlag, 1);
  ZSTD_CCtx_setParameter(ctx, ZSTD_c_checksumFlag, 0);
  ZSTD_CCtx_setParameter(ctx, ZSTD_c_dictIDFlag, 1);
  ZSTD_CCtx_refCDict(ctx, cdict.get());
  std::size_t n = ZSTD_compress2(ctx, out.data(), out.size(), envelope.data(), envelope.size());
  ZSTD_CCtx_refCDict(ctx, nullptr);
  if (ZSTD_isError(n)) return {envelope.begin(), envelope.end()};  // cannot happen with a bound-sized buffer
  out.resize(n);
  return out;
}

Result<Envelope> decode_payload(std::span<const std::uint8_t> payload, const DecodeLimits& limits) {
  if (!is_compressed(payload)) return decode_any_envelope(payload, limits);
  unsigned long long size = ZSTD_getFrameContentSize(payload.data(), payload.size());
  if (size == ZSTD_CONTENTSIZE_ERROR) return Error{"zstd payload: not a valid zstd frame"};
  if (size == ZSTD_CONTENTSIZE_UNKNOWN) return Error{"zstd payload: frame without content size"};
  if (size > limits.max_bytes) {
    return Error{"zstd payload: decompresses to " + std::to_string(size) + " bytes > " +
                 std::to_string(limits.max_bytes)};
  }
  unsigned dict_id = ZSTD_getDictID_fromFrame(payload.data(), payload.size());
  if (dict_id != 0 && dict_id != kV2DictionaryId) {
    return Error{"zstd payload: compressed with dictionary " + std::to_string(dict_id) +
                 ", which this decoder does not have (it knows " + std::to_string(kV2DictionaryId) + ")"};
  }
  std::vector<std::uint8_t> plain(static_cast<std::size_t>(size));
  std::size_t n = 0;
  if (dict_id == 0) {
    n = ZSTD_decompress(plain.data(), plain.size(), payload.data(), payload.size());
  } else {
    thread_local std::unique_ptr<ZSTD_DCtx, FreeDCtx> dctx(ZSTD_createDCtx());
    thread_local std::unique_ptr<ZSTD_DDict, FreeDDict> ddict(
        ZSTD_createDDict(v2_dictionary().data(), v2_dictionary().size()));
    n = ZSTD_decompress_usingDDict(dctx.get(), plain.data(), plain.size(), payload.data(), payload.size(),
                                   ddict.get());
  }
  if (ZSTD_isError(n) || n != plain.size()) {
    return Error{std::string("zstd payload: ") + (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "size mismatch")};
  }
  return decode_any_envelope(plain, limits);
}

Result<Envelope> decode_payload_on(std::string_view topic, std::span<const std::uint8_t> payload,
                                   const DecodeLimits& limits) {
  auto env = decode_payload(payload, limits);
  if (!env || env->header.schema_version != kSchemaVersionV2) return env;
  auto ids = topics::parse_gateway(topic);
  if (!ids) return Error{"v2 envelope on a topic that names no site and gateway: " + std::string(topic)};
  for (auto [name, field, want] : {std::tuple{"site_id", &env->header.site_id, &ids->site},
                                   std::tuple{"gateway_id", &env->header.gateway_id, &ids->gateway}}) {
    if (field->empty()) {
      *field = *want;
    } else if (*field != *want) {
      return Error{std::string("v2 envelope's ") + name + " " + *field + " is not its topic's " + *want};
    }
  }
  return env;
}

}  // namespace eport::codec
