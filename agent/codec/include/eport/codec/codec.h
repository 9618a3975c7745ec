// The codec turns model readings into the FlatBuffers wire format of
// schema/telemetry.fbs and back. It is the only library that links
// FlatBuffers. Everything that arrives from outside passes the FlatBuffers
// Verifier with explicit limits before a single field is read.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "eport/model/reading.h"
#include "eport/model/result.h"

namespace eport::codec {

inline constexpr std::uint16_t kSchemaVersion = 1;
inline constexpr const char* kFileIdentifier = "EPT1";

struct EnvelopeHeader {
  std::string site_id;
  std::string gateway_id;
  std::uint64_t envelope_seq = 0;
  std::uint64_t sent_utc_ms = 0;
  model::Priority priority = model::Priority::kTelemetry;
  std::uint16_t schema_version = kSchemaVersion;
  bool operator==(const EnvelopeHeader&) const = default;
};

struct Envelope {
  EnvelopeHeader header;
  std::vector<model::Reading> readings;
  // Readings with a payload kind this build does not know (added by a newer
  // schema): skipped, the rest of the envelope is kept (docs/schema.md).
  std::size_t skipped_unknown = 0;
};

// Limits applied when verifying a buffer from outside. Everything is checked
// before anything is copied; the first limit exceeded refuses the envelope.
struct DecodeLimits {
  std::size_t max_bytes = 4u << 20;      // larger buffers are rejected unread
  std::size_t max_readings = 100000;
  std::size_t max_depth = 16;
  // What decoding may copy: kDecodedReadingBytes per reading plus the bytes
  // of every string copied (a string shared by many readings counts once per
  // reading: that is what the copies cost), plus the header's strings.
  std::size_t max_decoded_bytes = 32u << 20;
};

// The fixed cost of one decoded reading in DecodeLimits::max_decoded_bytes
// (at least sizeof(model::Reading); the Python consumer counts the same).
inline constexpr std::size_t kDecodedReadingBytes = 384;
// The longest ids an envelope's readings may carry (docs/schema.md): longer
// refuses the envelope.
// Units' ids are at most 32 bytes; the gateway's custody source
// ("<gateway id>:custody", model::custody_source_id) at most 40.
inline constexpr std::size_t kMaxSourceIdBytes = 40;
inline constexpr std::size_t kMaxContainerIdBytes = 11;  // ISO 6346
inline constexpr std::size_t kMaxSealIdBytes = 32;
inline constexpr std::size_t kMaxSubjectIdBytes = 32;  // CustodyEvent.subject_id: a unit id
inline constexpr std::size_t kMaxZoneIdBytes = 64;     // CustodyEvent.zone_id (docs/geofences.md)

// Builds envelopes, reusing one FlatBufferBuilder between calls so that a
// steady publisher does not allocate per envelope. Not thread-safe.
class EnvelopeEncoder {
 public:
  EnvelopeEncoder();
  ~EnvelopeEncoder();
  EnvelopeEncoder(const EnvelopeEncoder&) = delete;
  EnvelopeEncoder& operator=(const EnvelopeEncoder&) = delete;

  // Encodes header and readings; the returned bytes stay valid until the
  // next call. Readings keep their order.
  std::span<const std::uint8_t> encode(const EnvelopeHeader& header,
                                       std::span<const model::Reading> readings);

 private:
  struct Impl;
  Impl* impl_;
};

std::vector<std::uint8_t> encode_envelope(const EnvelopeHeader& header,
                                          std::span<const model::Reading> readings);

// Verifies then decodes. The error names the first problem found
// ("too large", "not an EPT1 buffer", "failed verification",
// "reading 3: payload type 1 (Position) without its table",
// "reading 0: source_id of 40 bytes > 32", "envelope decodes to more than ...").
Result<Envelope> decode_envelope(std::span<const std::uint8_t> bytes, const DecodeLimits& limits = {});

// ---- Envelope v2 (schema/telemetry_v2.fbs; rules: docs/schema.md, "Envelope v2")
// The same readings and header, grouped per (source_id, container_id) and
// coded in columns of zigzag delta varints; seal, door, gap, custody and
// evidence readings ride inside as v1 Reading tables. Same topics as v1: the
// file identifier tells them apart.
inline constexpr std::uint16_t kSchemaVersionV2 = 2;
inline constexpr const char* kFileIdentifierV2 = "EPT2";

// Which envelope the publisher builds (publish.envelope_format).
enum class EnvelopeFormat : std::uint8_t { kV1 = 1, kV2 = 2 };

class EnvelopeEncoderV2 {
 public:
  EnvelopeEncoderV2();
  ~EnvelopeEncoderV2();
  EnvelopeEncoderV2(const EnvelopeEncoderV2&) = delete;
  EnvelopeEncoderV2& operator=(const EnvelopeEncoderV2&) = delete;

  // As EnvelopeEncoder::encode; header.schema_version is ignored (v2 writes 2).
  std::span<const std::uint8_t> encode(const EnvelopeHeader& header, std::span<const model::Reading> readings);

 private:
  struct Impl;
  Impl* impl_;
};

std::vector<std::uint8_t> encode_envelope_v2(const EnvelopeHeader& header, std::span<const model::Reading> readings);

// Verifies then decodes a v2 envelope (uncompressed). The readings come out
// group by group (groups in order of their first reading), each group in its
// order: a source's readings keep their order, the interleaving of sources
// does not survive (v2_order() gives the order to expect). The header's
// schema_version is 2. Errors name the group, the reading and the column.
Result<Envelope> decode_envelope_v2(std::span<const std::uint8_t> bytes, const DecodeLimits& limits = {});

// The order in which a v2 envelope of `readings` decodes them.
std::vector<model::Reading> v2_order(std::span<const model::Reading> readings);

// v1 or v2 by the file identifier (uncompressed bytes).
Result<Envelope> decode_any_envelope(std::span<const std::uint8_t> bytes, const DecodeLimits& limits = {});

// One reading as a standalone FlatBuffer (root: Reading). This is the form
// readings take in the store, so stores written by an older agent stay
// readable under the schema evolution rules.
std::vector<std::uint8_t> encode_reading(const model::Reading& reading);
Result<model::Reading> decode_reading(std::span<const std::uint8_t> bytes);

// JSON rendering for people and scripts (eport-tail, logs). One object per
// reading, keys in a fixed order; absent optional fields are left out.
std::string reading_to_json(const model::Reading& reading);
std::string envelope_header_to_json(const EnvelopeHeader& header);

// A JSON string literal for s (eport::json::quote: every control byte as
// \u00XX, invalid UTF-8 as \ufffd; the policy is in eport/json/json.h).
std::string json_string(std::string_view s);

}  // namespace eport::codec

namespace eport::codec {

// Optional zstd compression of a whole envelope. A compressed payload is a
// standard zstd frame, recognised by its magic number (28 B5 2F FD), which can
// never begin an envelope (those carry "EPT1" at bytes 4..7 and a small root
// offset at 0..3). decode_payload() accepts both forms, and both envelope
// versions (by file identifier after decompression).
std::vector<std::uint8_t> compress(std::span<const std::uint8_t> envelope, int level = 3);
// The zstd dictionary of envelope v2 (schema/eport_v2_dict_1.zdict, a
// protocol constant), announced by its id in every frame compressed with it.
// A decoder refuses a frame naming a dictionary it does not have.
inline constexpr std::uint32_t kV2DictionaryId = 32769;
std::span<const std::uint8_t> v2_dictionary();
// A v2 envelope compressed with the v2 dictionary (id in the frame header).
std::vector<std::uint8_t> compress_v2(std::span<const std::uint8_t> envelope, int level = 3);
bool is_compressed(std::span<const std::uint8_t> payload);
Result<Envelope> decode_payload(std::span<const std::uint8_t> payload, const DecodeLimits& limits = {});
// As decode_payload, for a payload received on `topic`. A v2 envelope may
// leave out site_id and gateway_id (the agent does: the topic carries them,
// and the broker's ACL binds them to the gateway's identity); the decoded
// header then takes them from the topic. A v2 envelope whose ids differ from
// the topic's is refused. v1 envelopes are as decode_payload gives them.
Result<Envelope> decode_payload_on(std::string_view topic, std::span<const std::uint8_t> payload,
                                   const DecodeLimits& limits = {});

}  // namespace eport::codec
