// [codec] FlatBuffers envelopes and stored readings: every payload kind
// round-trips field by field; damaged or foreign buffers are rejected by the
// Verifier with a message, never read.
#include <catch2/catch.hpp>
#include <sys/resource.h>

#include <chrono>
#include <fstream>
#include <iterator>

#include "eport/codec/codec.h"
#include "eport/codec/topics.h"
#include "eport/schema/telemetry_generated.h"

using namespace eport;
using namespace eport::model;

namespace {
std::vector<Reading> one_of_each() {
  std::vector<Reading> v;
  Reading base{"tcu-0001", "CSQU3054383", 1, 1795000000000ull, Position{}};
  Position full{306187233, 1220670000, 1234, 35999, FixQuality::kRtkFixed, 14, 87};
  Position minimal{-338688000, 1512093000, std::nullopt, std::nullopt, FixQuality::kNoFix, 0, std::nullopt};
  SensorSample sensors{-1850, 8412, 2500, 3700, 42, -1800};
  SensorSample empty{};
  std::vector<Payload> payloads = {full,
                                   minimal,
                                   SealEvent{"SL00012345", SealState::kSealed},
                                   SealEvent{"SL00012345", SealState::kTampered},
                                   DoorEvent{DoorState::kOpen},
                                   DoorEvent{DoorState::kClosed},
                                   sensors,
                                   empty};
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    Reading r = base;
    r.seq = i + 1;
    r.payload = payloads[i];
    v.push_back(r);
  }
  v.back().container_id.clear();  // the gateway's own readings have none
  return v;
}
}  // namespace

TEST_CASE("every payload kind round-trips through an envelope", "[codec]") {
  auto readings = one_of_each();
  codec::EnvelopeHeader h{"cnsha", "gw-01", 42, 1795000000123ull, Priority::kAlarm};
  auto bytes = codec::encode_envelope(h, readings);
  auto env = codec::decode_envelope(bytes);
  REQUIRE(env.ok());
  CHECK(env->header == h);
  REQUIRE(env->readings.size() == readings.size());
  for (std::size_t i = 0; i < readings.size(); ++i) CHECK(env->readings[i] == readings[i]);
}

TEST_CASE("every payload kind round-trips as a stored reading", "[codec]") {
  for (const auto& r : one_of_each()) {
    auto back = codec::decode_reading(codec::encode_reading(r));
    REQUIRE(back.ok());
    CHECK(*back == r);
  }
}

TEST_CASE("the encoder can be reused and repeated ids are stored once", "[codec]") {
  codec::EnvelopeEncoder enc;
  std::vector<Reading> many(100, one_of_each()[6]);
  for (std::size_t i = 0; i < many.size(); ++i) many[i].seq = i + 1;
  std::size_t size_100 = enc.encode({"s", "g", 1, 0, Priority::kTelemetry}, many).size();
  auto distinct = many;
  for (std::size_t i = 0; i < distinct.size(); ++i) {
    distinct[i].source_id = "tcu-" + std::to_string(1000 + i);
    distinct[i].container_id = "CSQU" + std::to_string(3054000 + i);
  }
  std::size_t size_distinct = enc.encode({"s", "g", 1, 0, Priority::kTelemetry}, distinct).size();
  // Shared ids are stored once: each distinct pair costs two more strings
  // (4-byte length, bytes, terminator, padding: 16 bytes each here).
  CHECK(size_distinct - size_100 >= 99 * 32);
  auto second = enc.encode({"s", "g", 2, 0, Priority::kTelemetry}, std::span(many).subspan(0, 1));
  CHECK(second.size() < size_100);
  auto env = codec::decode_envelope(std::vector<std::uint8_t>(second.begin(), second.end()));
  REQUIRE(env.ok());
  CHECK(env->header.envelope_seq == 2);
  CHECK(env->readings.size() == 1);
}

TEST_CASE("damaged and foreign buffers are rejected with a reason", "[codec]") {
  auto good = codec::encode_envelope({"cnsha", "gw-01", 1, 1, Priority::kTelemetry}, one_of_each());
  struct Case {
    const char* name;
    std::vector<std::uint8_t> bytes;
    const char* expected;
  };
  std::vector<Case> cases;
  cases.push_back({"empty", {}, "missing file identifier"});
  cases.push_back({"JSON", {'{', '"', 'a', '"', ':', '1', '}', ' ', ' '}, "missing file identifier"});
  auto truncated = good;
  truncated.resize(good.size() / 2);
  cases.push_back({"truncated", truncated, "verification"});
  auto bad_offset = good;
  bad_offset[0] = 0xFF;  // root offset points outside the buffer
  bad_offset[1] = 0xFF;
  cases.push_back({"root offset out of range", bad_offset, "verification"});
  for (const auto& c : cases) {
    INFO(c.name);
    auto r = codec::decode_envelope(c.bytes);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error(), Catch::Contains(c.expected));
  }
  codec::DecodeLimits small;
  small.max_bytes = 16;
  auto r = codec::decode_envelope(good, small);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error(), Catch::Contains("too large"));
}

TEST_CASE("flipping any single byte never crashes the decoder", "[codec]") {
  auto good = codec::encode_envelope({"cnsha", "gw-01", 1, 1, Priority::kEvent}, one_of_each());
  std::size_t rejected = 0;
  for (std::size_t i = 0; i < good.size(); ++i) {
    for (std::uint8_t flip : {0x01, 0x80, 0xFF}) {
      auto copy = good;
      copy[i] = static_cast<std::uint8_t>(copy[i] ^ flip);
      auto r = codec::decode_envelope(copy);  // must return, ok or not
      if (!r.ok()) ++rejected;
    }
  }
  CHECK(rejected > 0);
}

TEST_CASE("JSON lines carry every present field and leave absent ones out", "[codec]") {
  auto readings = one_of_each();
  CHECK(codec::reading_to_json(readings[0]) ==
        R"({"source":"tcu-0001","container":"CSQU3054383","seq":1,"time_utc_ms":1795000000000,"kind":"position",)"
        R"("lat_e7":306187233,"lon_e7":1220670000,"speed_cm_s":1234,"heading_cdeg":35999,"fix":4,"satellites":14,)"
        R"("hdop_centi":87})");
  CHECK(codec::reading_to_json(readings[3]) ==
        R"({"source":"tcu-0001","container":"CSQU3054383","seq":4,"time_utc_ms":1795000000000,"kind":"seal",)"
        R"("seal_id":"SL00012345","state":"tampered"})");
  CHECK(codec::reading_to_json(readings[7]) ==
        R"({"source":"tcu-0001","seq":8,"time_utc_ms":1795000000000,"kind":"sensor"})");
  Reading odd = readings[2];
  odd.payload = SealEvent{"a\"b\\c\n", SealState::kOpened};
  // Every control byte as \u00XX (eport::json), the newline included.
  CHECK_THAT(codec::reading_to_json(odd), Catch::Contains(R"("seal_id":"a\"b\\c\u000a")"));
}

TEST_CASE("data topics are built and parsed by the documented scheme", "[codec]") {
  CHECK(codec::topics::data("cnsha", "gw-01", Priority::kAlarm) == "eport/v1/cnsha/gw-01/data/alarm");
  CHECK(codec::topics::status("cnsha", "gw-01") == "eport/v1/cnsha/gw-01/status");
  auto t = codec::topics::parse_data("eport/v1/cnsha/gw-01/data/telemetry");
  REQUIRE(t.has_value());
  CHECK(t->site == "cnsha");
  CHECK(t->gateway == "gw-01");
  CHECK(t->priority == Priority::kTelemetry);
  for (const char* bad : {"eport/v1/cnsha/gw-01/data/urgent", "eport/v2/cnsha/gw-01/data/alarm",
                          "eport/v1/cnsha/gw-01/status", "eport/v1//gw-01/data/alarm", "eport/v1/a/b/data/alarm/x"}) {
    CHECK_FALSE(codec::topics::parse_data(bad).has_value());
  }
}

TEST_CASE("zstd-compressed envelopes are recognised and decode to the same readings", "[codec]") {
  std::vector<Reading> many;
  for (std::uint64_t i = 1; i <= 200; ++i) {
    auto r = one_of_each()[i % 8];
    r.seq = i;
    r.time_utc_ms += i * 1000;
    many.push_back(r);
  }
  codec::EnvelopeHeader h{"cnsha", "gw-01", 7, 1795000000000ull, Priority::kTelemetry};
  auto plain = codec::encode_envelope(h, many);
  auto packed = codec::compress(plain);
  CHECK(codec::is_compressed(packed));
  CHECK_FALSE(codec::is_compressed(plain));
  CHECK(packed.size() < plain.size() / 2);
  auto a = codec::decode_payload(plain);
  auto b = codec::decode_payload(packed);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(b->header == h);
  CHECK(b->readings == many);
  CHECK(a->readings == b->readings);
}

TEST_CASE("a hostile zstd frame is refused, never inflated past the limit", "[codec]") {
  std::vector<std::uint8_t> zeros(3 << 20, 0);
  auto bomb = codec::compress(zeros, 19);
  codec::DecodeLimits limits;
  limits.max_bytes = 1 << 20;
  auto r = codec::decode_payload(bomb, limits);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error(), Catch::Contains("decompresses to"));
  auto garbage = codec::compress(std::vector<std::uint8_t>(100, 7));
  garbage.resize(garbage.size() - 3);  // truncated frame
  auto g = codec::decode_payload(garbage);
  REQUIRE_FALSE(g.ok());
  CHECK_THAT(g.error(), Catch::Contains("zstd payload"));
  auto not_env = codec::decode_payload(codec::compress(std::vector<std::uint8_t>(100, 7)));
  REQUIRE_FALSE(not_env.ok());
  CHECK_THAT(not_env.error(), Catch::Contains("EPT1"));
}

TEST_CASE("a reading of a payload kind from a newer schema is skipped, the rest kept", "[codec]") {
  namespace fb = eport::telemetry::v1;
  flatbuffers::FlatBufferBuilder b;
  auto src = b.CreateString("tcu-1");
  auto door = fb::CreateDoorEvent(b, fb::DoorState::Open);
  auto known = fb::CreateReading(b, src, 0, 1, 1000, fb::Payload::DoorEvent, door.Union());
  auto future_table = fb::CreateDoorEvent(b, fb::DoorState::Closed);  // any table will do
  auto unknown = fb::CreateReading(b, src, 0, 2, 2000, static_cast<fb::Payload>(9), future_table.Union());
  std::vector<flatbuffers::Offset<fb::Reading>> rs = {known, unknown};
  auto env = fb::CreateEnvelope(b, 1, b.CreateString("cnsha"), b.CreateString("gw"), 1, 1, fb::Priority::Alarm,
                                b.CreateVector(rs));
  b.Finish(env, fb::EnvelopeIdentifier());
  auto r = codec::decode_envelope(std::span<const std::uint8_t>(b.GetBufferPointer(), b.GetSize()));
  REQUIRE(r.ok());
  CHECK(r->skipped_unknown == 1);
  REQUIRE(r->readings.size() == 1);
  CHECK(r->readings[0].seq == 1);
}

namespace {
// Length in bytes of the vtable of a table (4 + 2 per field up to the last one written).
flatbuffers::voffset_t vtable_size(const void* table) {
  const auto* t = static_cast<const std::uint8_t*>(table);
  return flatbuffers::ReadScalar<flatbuffers::voffset_t>(t - flatbuffers::ReadScalar<flatbuffers::soffset_t>(t));
}

// Schema 1.1: a declared gap of each reason, and readings whose time is the
// agent's receive time (the unit had no valid clock).
std::vector<Reading> gaps_and_gateway_time() {
  std::vector<Reading> v;
  std::uint64_t seq = 100;
  for (GapReason reason : {GapReason::kUnknown, GapReason::kFlashFull, GapReason::kUnitReset, GapReason::kExpired,
                           GapReason::kRejectedMalformed}) {
    Reading r{"TU-0017", "CSQU3054383", 0, 1795000000000ull, SequenceGap{seq + 1, reason}};
    seq += 19;
    r.seq = seq;  // the gap covers first_seq .. seq
    v.push_back(r);
  }
  Reading one{"TU-0017", "CSQU3054383", seq + 1, 1795000000000ull, SequenceGap{seq + 1, GapReason::kRejectedMalformed}};
  v.push_back(one);  // a single refused reading: first_seq == seq
  Reading at_gw{"TU-0017", "CSQU3054383", seq + 2, 1795000000500ull, DoorEvent{DoorState::kOpen}};
  at_gw.time_source = TimeSource::kGatewayReceive;
  v.push_back(at_gw);
  Reading gap_at_gw{"TU-0017", "CSQU3054383", seq + 9, 1795000000600ull, SequenceGap{seq + 3, GapReason::kUnitReset}};
  gap_at_gw.time_source = TimeSource::kGatewayReceive;
  v.push_back(gap_at_gw);
  Reading max_seq{"TU-0017", "", kMaxSeq, 1795000000700ull, SequenceGap{1, GapReason::kExpired}};
  v.push_back(max_seq);
  return v;
}
}  // namespace

TEST_CASE("declared gaps and gateway receive time round-trip through an envelope", "[codec]") {
  auto readings = gaps_and_gateway_time();
  codec::EnvelopeHeader h{"cnsha", "gw-01", 43, 1795000000999ull, Priority::kEvent};
  auto env = codec::decode_envelope(codec::encode_envelope(h, readings));
  REQUIRE(env.ok());
  CHECK(env->skipped_unknown == 0);
  REQUIRE(env->readings.size() == readings.size());
  for (std::size_t i = 0; i < readings.size(); ++i) {
    INFO(codec::reading_to_json(readings[i]));
    CHECK(env->readings[i] == readings[i]);
  }
  CHECK(std::get<SequenceGap>(env->readings[1].payload).reason == GapReason::kFlashFull);
  CHECK(env->readings[6].time_source == TimeSource::kGatewayReceive);
  CHECK(env->readings[0].time_source == TimeSource::kSource);
}

TEST_CASE("declared gaps and gateway receive time round-trip as stored readings", "[codec]") {
  for (const auto& r : gaps_and_gateway_time()) {
    INFO(codec::reading_to_json(r));
    auto back = codec::decode_reading(codec::encode_reading(r));
    REQUIRE(back.ok());
    CHECK(*back == r);
  }
}

TEST_CASE("a reading written by schema 1.0 (no time_source field) decodes with time_source Source", "[codec]") {
  namespace fb = eport::telemetry::v1;
  flatbuffers::FlatBufferBuilder b;
  auto src = b.CreateString("tcu-1");
  auto door = fb::CreateDoorEvent(b, fb::DoorState::Closed);
  // What a 1.0 writer emits: the six fields of 1.0, nothing after payload.
  fb::ReadingBuilder rb(b);
  rb.add_source_id(src);
  rb.add_seq(7);
  rb.add_time_utc_ms(1795000000000ull);
  rb.add_payload_type(fb::Payload::DoorEvent);
  rb.add_payload(door.Union());
  auto reading = rb.Finish();
  std::vector<flatbuffers::Offset<fb::Reading>> rs = {reading};
  auto env = fb::CreateEnvelope(b, 1, b.CreateString("cnsha"), b.CreateString("gw"), 1, 1, fb::Priority::Event,
                                b.CreateVector(rs));
  b.Finish(env, fb::EnvelopeIdentifier());
  std::span<const std::uint8_t> bytes(b.GetBufferPointer(), b.GetSize());
  // The Reading's vtable has 1.0's length: 4 bytes of sizes + 6 fields.
  const auto* root = fb::GetEnvelope(bytes.data());
  CHECK(vtable_size(root->readings()->Get(0)) == 4 + 2 * 6);
  auto r = codec::decode_envelope(bytes);
  REQUIRE(r.ok());
  REQUIRE(r->readings.size() == 1);
  CHECK(r->readings[0].time_source == TimeSource::kSource);
  CHECK(r->readings[0] == Reading{"tcu-1", "", 7, 1795000000000ull, DoorEvent{DoorState::kClosed}});
  CHECK(codec::reading_to_json(r->readings[0]) ==
        R"({"source":"tcu-1","seq":7,"time_utc_ms":1795000000000,"kind":"door","state":"closed"})");
  // Source is the default: a 1.1 writer leaves it off the wire too, GatewayReceive is written.
  Reading src_time{"tcu-1", "", 8, 1, DoorEvent{DoorState::kOpen}};
  Reading gw_time = src_time;
  gw_time.time_source = TimeSource::kGatewayReceive;
  auto stored_src = codec::encode_reading(src_time);
  auto stored_gw = codec::encode_reading(gw_time);
  auto vt_size = [](const std::vector<std::uint8_t>& buf) {
    return vtable_size(flatbuffers::GetRoot<fb::Reading>(buf.data()));
  };
  CHECK(vt_size(stored_src) == 4 + 2 * 6);
  CHECK(vt_size(stored_gw) == 4 + 2 * 7);
}

TEST_CASE("a time_source or gap reason from a newer schema decodes as Source and unknown", "[codec]") {
  namespace fb = eport::telemetry::v1;
  flatbuffers::FlatBufferBuilder b;
  auto src = b.CreateString("tcu-1");
  auto gap = fb::CreateSequenceGap(b, 5, static_cast<fb::GapReason>(200));
  auto reading = fb::CreateReading(b, src, 0, 9, 1000, fb::Payload::SequenceGap, gap.Union(),
                                   static_cast<fb::TimeSource>(9));
  b.Finish(reading);
  auto r = codec::decode_reading(std::span<const std::uint8_t>(b.GetBufferPointer(), b.GetSize()));
  REQUIRE(r.ok());
  CHECK(r->time_source == TimeSource::kSource);
  CHECK(codec::reading_to_json(*r) ==
        R"({"source":"tcu-1","seq":9,"time_utc_ms":1000,"kind":"gap","first_seq":5,"reason":"unknown"})");
}

TEST_CASE("JSON lines of declared gaps and gateway receive time", "[codec]") {
  auto v = gaps_and_gateway_time();
  CHECK(codec::reading_to_json(v[0]) ==
        R"({"source":"TU-0017","container":"CSQU3054383","seq":119,"time_utc_ms":1795000000000,"kind":"gap",)"
        R"("first_seq":101,"reason":"unknown"})");
  CHECK(codec::reading_to_json(v[1]) ==
        R"({"source":"TU-0017","container":"CSQU3054383","seq":138,"time_utc_ms":1795000000000,"kind":"gap",)"
        R"("first_seq":120,"reason":"flash_full"})");
  CHECK_THAT(codec::reading_to_json(v[2]), Catch::EndsWith(R"("kind":"gap","first_seq":139,"reason":"unit_reset"})"));
  CHECK_THAT(codec::reading_to_json(v[3]), Catch::EndsWith(R"("kind":"gap","first_seq":158,"reason":"expired"})"));
  CHECK_THAT(codec::reading_to_json(v[4]),
             Catch::EndsWith(R"("kind":"gap","first_seq":177,"reason":"rejected_malformed"})"));
  CHECK(codec::reading_to_json(v[6]) ==
        R"({"source":"TU-0017","container":"CSQU3054383","seq":197,"time_utc_ms":1795000000500,)"
        R"("time_source":"gateway_receive","kind":"door","state":"open"})");
  CHECK(codec::reading_to_json(v[7]) ==
        R"({"source":"TU-0017","container":"CSQU3054383","seq":204,"time_utc_ms":1795000000600,)"
        R"("time_source":"gateway_receive","kind":"gap","first_seq":198,"reason":"unit_reset"})");
  CHECK(codec::reading_to_json(v[8]) ==
        R"({"source":"TU-0017","seq":9007199254740991,"time_utc_ms":1795000000700,"kind":"gap",)"
        R"("first_seq":1,"reason":"expired"})");
  // time_source Source (the default) is left out, as before 1.1.
  CHECK(codec::reading_to_json(v[0]).find("time_source") == std::string::npos);
}

// ---------------------------------------------------------------------------
// Hostile envelopes that pass the Verifier (issue 11): a payload_type without
// its table, ids over their documented length, readings sharing one string
// so that a small envelope would decode to a huge one.
namespace {
namespace fbt = eport::telemetry::v1;

struct HostileReading {
  std::string source = "tcu-1";
  std::string container;
  fbt::Payload type = fbt::Payload::DoorEvent;
  bool table = true;
  std::string seal = "SL00012345";
};

// An envelope of `count` readings that all share the strings of `r` (stored
// once, referenced by every reading), as a hostile gateway can write it.
std::vector<std::uint8_t> hostile_envelope(const HostileReading& r, std::size_t count = 1) {
  flatbuffers::FlatBufferBuilder b;
  auto src = b.CreateString(r.source);
  auto container = r.container.empty() ? flatbuffers::Offset<flatbuffers::String>() : b.CreateString(r.container);
  auto seal = r.type == fbt::Payload::SealEvent && r.table ? b.CreateString(r.seal)
                                                           : flatbuffers::Offset<flatbuffers::String>();
  flatbuffers::Offset<void> payload;
  if (r.table) {
    switch (r.type) {
      case fbt::Payload::Position: payload = fbt::CreatePosition(b, 1, 2).Union(); break;
      case fbt::Payload::SealEvent: payload = fbt::CreateSealEvent(b, seal, fbt::SealState::Sealed).Union(); break;
      case fbt::Payload::DoorEvent: payload = fbt::CreateDoorEvent(b, fbt::DoorState::Open).Union(); break;
      case fbt::Payload::SensorSample: payload = fbt::CreateSensorSample(b).Union(); break;
      case fbt::Payload::SequenceGap: payload = fbt::CreateSequenceGap(b, 1).Union(); break;
      default: break;
    }
  }
  std::vector<flatbuffers::Offset<fbt::Reading>> rs;
  for (std::size_t i = 0; i < count; ++i) {
    fbt::ReadingBuilder rb(b);
    rb.add_source_id(src);
    if (!container.IsNull()) rb.add_container_id(container);
    rb.add_seq(i + 1);
    rb.add_time_utc_ms(1795000000000ull);
    rb.add_payload_type(r.type);
    if (!payload.IsNull()) rb.add_payload(payload);
    rs.push_back(rb.Finish());
  }
  auto env = fbt::CreateEnvelope(b, 1, b.CreateString("cnsha"), b.CreateString("gw-test-01"), 1, 1,
                                 fbt::Priority::Event, b.CreateVector(rs));
  b.Finish(env, fbt::EnvelopeIdentifier());
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

template <class F>
std::vector<std::uint8_t> hostile(F&& set, std::size_t count = 1) {
  HostileReading r;
  set(r);
  return hostile_envelope(r, count);
}

bool passes_verifier(const std::vector<std::uint8_t>& bytes) {
  flatbuffers::Verifier v(bytes.data(), bytes.size(), 16, 1u << 20);
  return fbt::VerifyEnvelopeBuffer(v);
}
}  // namespace

TEST_CASE("a reading whose payload_type names a member without its table refuses the envelope", "[codec]") {
  for (const auto& tn :
       {std::pair{fbt::Payload::Position, "Position"}, std::pair{fbt::Payload::SealEvent, "SealEvent"},
        std::pair{fbt::Payload::DoorEvent, "DoorEvent"}, std::pair{fbt::Payload::SensorSample, "SensorSample"},
        std::pair{fbt::Payload::SequenceGap, "SequenceGap"}}) {
    // Plain copies: clang 14 cannot capture structured bindings in lambdas.
    const auto type = tn.first;
    const std::string name = tn.second;
    CAPTURE(name);
    auto bytes = hostile([&](HostileReading& p) {
      p.container = "CSQU3054383";
      p.type = type;
      p.table = false;
    });
    CHECK(bytes.size() < 200);  // the size of the envelope that made eport-tail
                                // segfault (144 bytes)
    REQUIRE(passes_verifier(bytes));
    auto r = codec::decode_payload(bytes);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() ==
          "reading 0: payload type " + std::to_string(static_cast<int>(type)) + " (" + name + ") without its table");
    auto z = codec::decode_payload(codec::compress(bytes));  // the same compressed
    REQUIRE_FALSE(z.ok());
    CHECK(z.error() == r.error());
    // With its table, the same envelope decodes.
    CHECK(codec::decode_payload(hostile([&](HostileReading& p) {
            p.container = "CSQU3054383";
            p.type = type;
          })).ok());

    // The same reading as a stored (standalone) Reading buffer.
    flatbuffers::FlatBufferBuilder b;
    auto src = b.CreateString("tcu-1");
    fbt::ReadingBuilder rb(b);
    rb.add_source_id(src);
    rb.add_seq(1);
    rb.add_payload_type(type);
    b.Finish(rb.Finish());
    auto stored = codec::decode_reading(std::span<const std::uint8_t>(b.GetBufferPointer(), b.GetSize()));
    REQUIRE_FALSE(stored.ok());
    CHECK_THAT(stored.error(), Catch::Contains("without its table"));
  }
}

TEST_CASE("ids longer than their documented maximum refuse the envelope", "[codec]") {
  auto r = codec::decode_envelope(hostile([&](HostileReading& p) { p.source = std::string(41, 's'); }));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error() == "reading 0: source_id of 41 bytes > 40");
  r = codec::decode_envelope(hostile([&](HostileReading& p) { p.container = "CSQU30543830"; }));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error() == "reading 0: container_id of 12 bytes > 11");
  r = codec::decode_envelope(hostile([&](HostileReading& p) {
    p.type = fbt::Payload::SealEvent;
    p.seal = std::string(33, 'x');
  }));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error() == "reading 0: seal_id of 33 bytes > 32");
  // At the maximum: accepted.
  auto ok = codec::decode_envelope(hostile([&](HostileReading& p) {
    p.source = std::string(32, 's');
    p.container = "CSQU3054383";
    p.type = fbt::Payload::SealEvent;
    p.seal = std::string(32, 'x');
  }));
  REQUIRE(ok.ok());
  CHECK(ok->readings.at(0).source_id.size() == 32);
}

TEST_CASE("an envelope whose readings share one long string is refused quickly and memory stays small", "[codec]") {
  // 10,000 readings referencing one 4,000-byte source_id: a 360 KB envelope
  // (a few KB compressed) that, copied per reading, decoded to 40 MB.
  auto bytes = hostile([&](HostileReading& p) { p.source = std::string(4000, 'S'); }, 10000);
  CHECK(bytes.size() < 500'000);
  REQUIRE(passes_verifier(bytes));
  auto max_rss_kib = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
  };
  auto zst = codec::compress(bytes);
  auto rss0 = max_rss_kib();
  auto t0 = std::chrono::steady_clock::now();
  auto r = codec::decode_payload(zst);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error() == "reading 0: source_id of 4000 bytes > 40");
  CHECK(ms < 1000);
  CHECK(max_rss_kib() - rss0 < 20 * 1024);  // the envelope itself, not 40 MB of copies

  // Ids within their bounds, but more readings than the decoded-size limit
  // allows: refused before anything is copied, at the reading that crosses it.
  auto many = hostile(
      [&](HostileReading& p) {
        p.source = std::string(32, 'S');
        p.container = "CSQU3054383";
      },
      20000);
  codec::DecodeLimits limits;
  limits.max_decoded_bytes = 1u << 20;
  auto cut = codec::decode_payload(many, limits);
  REQUIRE_FALSE(cut.ok());
  std::size_t per = codec::kDecodedReadingBytes + 32 + 11;
  std::size_t at = ((1u << 20) - 15) / per;  // header strings: "cnsha" + "gw-test-01"
  CHECK(cut.error() ==
        "envelope decodes to more than 1048576 bytes (limit reached at reading " + std::to_string(at) + ")");
  // The default limits decode it (20,000 x 203 bytes < 32 MiB).
  auto full = codec::decode_payload(many);
  REQUIRE(full.ok());
  CHECK(full->readings.size() == 20000);
  // And the reading count is bounded the same way, before copying.
  limits = {};
  limits.max_readings = 19999;
  auto counted = codec::decode_payload(many, limits);
  REQUIRE_FALSE(counted.ok());
  CHECK(counted.error() == "envelope holds 20000 readings > limit 19999");
}

TEST_CASE("the hostile seed envelopes of fuzz_envelope are refused with the documented messages", "[codec]") {
  // The same files and messages as tests/integration/test_python_decoder_bounds.py checks for
  // the Python consumer (agent/codec/fuzz/gen_corpus.py: EXPECTED).
  const std::pair<const char*, const char*> cases[] = {
      {"missing_table_position.ept", "reading 0: payload type 1 (Position) without its table"},
      {"missing_table_seal.ept", "reading 0: payload type 2 (SealEvent) without its table"},
      {"missing_table_door.ept", "reading 0: payload type 3 (DoorEvent) without its table"},
      {"missing_table_sensor.ept", "reading 0: payload type 4 (SensorSample) without its table"},
      {"missing_table_gap.ept", "reading 0: payload type 5 (SequenceGap) without its table"},
      {"long_source_id.ept", "reading 0: source_id of 41 bytes > 40"},
      {"long_container_id.ept", "reading 1: container_id of 12 bytes > 11"},
      {"long_seal_id.ept", "reading 0: seal_id of 33 bytes > 32"},
      {"shared_string_bomb.ept.zst", "reading 0: source_id of 4000 bytes > 40"},
      {"one_of_each.ept", nullptr},
      {"one_of_each.ept.zst", nullptr},
  };
  for (auto [name, expected] : cases) {
    CAPTURE(name);
    std::ifstream f(std::string(EPORT_SOURCE_DIR) + "/agent/codec/fuzz/corpus/envelope/" + name, std::ios::binary);
    REQUIRE(f);
    std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto r = codec::decode_payload(bytes);
    if (expected == nullptr) {
      REQUIRE(r.ok());
      CHECK(r->readings.size() == 6);
      CHECK(r->skipped_unknown == 1);
    } else {
      REQUIRE_FALSE(r.ok());
      CHECK(r.error() == expected);
    }
  }
}

TEST_CASE("a custody event survives the stored form and an envelope, field for field, and its JSON names the DCSA code",
          "[codec]") {
  model::Reading r;
  r.source_id = model::custody_source_id("gw-yangshan-01");  // 22 + 8 bytes: within kMaxSourceIdBytes
  r.container_id = "MSKU1234565";
  r.seq = 7;
  r.time_utc_ms = 1795000000000;
  model::CustodyEvent e;
  e.code = model::EventCode::kExcursionEnd;
  e.subject_id = "TU-0042";
  e.first_seq = 10;
  e.caused_by_seq = 25;
  e.temperature_centi_c = -1150;
  e.setpoint_centi_c = -1800;
  e.band_low_centi_c = -2000;
  e.band_high_centi_c = -1600;
  e.duration_ms = 900000;
  e.ended_by_gap = true;
  r.payload = e;
  auto stored = codec::decode_reading(codec::encode_reading(r));
  REQUIRE(stored.ok());
  CHECK(*stored == r);
  auto env = codec::decode_envelope(codec::encode_envelope({"cnsha", "gw-yangshan-01", 1, 2, model::Priority::kEvent},
                                                           std::vector<model::Reading>{r}));
  REQUIRE(env.ok());
  REQUIRE(env->readings.size() == 1);
  CHECK(env->readings[0] == r);
  CHECK(codec::reading_to_json(r) ==
        "{\"source\":\"gw-yangshan-01:custody\",\"container\":\"MSKU1234565\",\"seq\":7,\"time_utc_ms\":1795000000000,"
        "\"kind\":\"event\",\"event\":\"excursion_end\",\"dcsa\":\"MEASURED\",\"subject\":\"TU-0042\",\"first_seq\":10,"
        "\"caused_by_seq\":25,\"ended_by_gap\":true,\"temperature_centi_c\":-1150,\"setpoint_centi_c\":-1800,"
        "\"band_low_centi_c\":-2000,\"band_high_centi_c\":-1600,\"duration_ms\":900000}");
  model::CustodyEvent entry;
  entry.code = model::EventCode::kGeofenceEntry;
  entry.zone_id = "yangshan-phase-4";
  CHECK(model::dcsa_code(entry.code) == "GEOFENCE_ENTRY");
  r.payload = entry;
  CHECK(model::default_priority(r) == model::Priority::kEvent);
  e.code = model::EventCode::kExcursionStart;
  r.payload = e;
  CHECK(model::default_priority(r) == model::Priority::kAlarm);
}

TEST_CASE("a seal event (schema 1.3) keeps both numbers, the class and the command, is an alarm, and has no DCSA code",
          "[codec]") {
  model::Reading r;
  r.source_id = model::custody_source_id("gw-yangshan-01");
  r.container_id = "MSKU1234565";
  r.seq = 8;
  r.time_utc_ms = 1795000000000;
  model::CustodyEvent e;
  e.code = model::EventCode::kSealMismatch;
  e.subject_id = "TU-0042";
  e.first_seq = e.caused_by_seq = 31;
  e.seal_id = std::string(32, 'S');  // at the bound
  e.expected_seal_id = "SL00012345";
  e.seal_class = model::SealClass::kHighSecurity;
  e.command_id = std::string(64, 'c');  // at the bound
  r.payload = e;
  auto stored = codec::decode_reading(codec::encode_reading(r));
  REQUIRE(stored.ok());
  CHECK(*stored == r);
  CHECK(model::default_priority(r) == model::Priority::kAlarm);
  CHECK(codec::reading_to_json(r) ==
        "{\"source\":\"gw-yangshan-01:custody\",\"container\":\"MSKU1234565\",\"seq\":8,\"time_utc_ms\":1795000000000,"
        "\"kind\":\"event\",\"event\":\"seal_mismatch\",\"subject\":\"TU-0042\",\"first_seq\":31,\"caused_by_seq\":31,"
        "\"seal_id\":\"" + std::string(32, 'S') + "\",\"expected_seal_id\":\"SL00012345\",\"seal_class\":\"high_security\","
        "\"command_id\":\"" + std::string(64, 'c') + "\"}");
  for (auto code : {model::EventCode::kSealOpenedOutsideZone, model::EventCode::kSealTampered}) {
    e.code = code;
    r.payload = e;
    CHECK(model::default_priority(r) == model::Priority::kAlarm);
    CHECK(model::dcsa_code(code).empty());
  }
  // One byte past a bound refuses the envelope, naming the field.
  for (auto [field, over] : {std::pair{"seal_id", 33}, std::pair{"expected_seal_id", 33}, std::pair{"command_id", 65}}) {
    CAPTURE(field);
    auto bad = e;
    if (std::string(field) == "seal_id") bad.seal_id.assign(over, 'S');
    if (std::string(field) == "expected_seal_id") bad.expected_seal_id.assign(over, 'S');
    if (std::string(field) == "command_id") bad.command_id.assign(over, 'c');
    r.payload = bad;
    auto env = codec::decode_envelope(codec::encode_envelope({"cnsha", "gw-yangshan-01", 1, 2, model::Priority::kAlarm},
                                                             std::vector<model::Reading>{r}));
    REQUIRE_FALSE(env.ok());
    CHECK(env.error().find(std::string(field) + " of " + std::to_string(over) + " bytes") != std::string::npos);
  }
  CHECK(model::seal_class_from_name("security") == model::SealClass::kSecurity);
  CHECK_FALSE(model::seal_class_from_name("secure").has_value());
}

TEST_CASE("an evidence checkpoint (schema 1.4) keeps its bytes, number and check, is an alarm, and prints as hex",
          "[codec][evidence]") {
  model::Reading r;
  r.source_id = model::evidence_source_id(std::string(32, 'u'));  // 35 bytes: within kMaxSourceIdBytes
  r.seq = 1003;
  r.time_utc_ms = 1718000002000;
  model::EvidenceCheckpoint e;
  e.cose.assign(model::kMaxEvidenceBytes, 0xd2);  // at the bound
  e.n = 1;
  e.check = model::EvidenceCheck::kBadSignature;
  r.payload = e;
  CHECK(model::is_evidence_source(r.source_id));
  CHECK_FALSE(model::is_evidence_source("tcu-1"));
  CHECK_FALSE(model::is_evidence_source(":ev"));
  CHECK(model::kind_name(model::kind_of(r.payload)) == "evidence");
  auto stored = codec::decode_reading(codec::encode_reading(r));
  REQUIRE(stored.ok());
  CHECK(*stored == r);
  auto env = codec::decode_envelope(codec::encode_envelope({"cnsha", "gw-yangshan-01", 1, 2, model::Priority::kAlarm},
                                                           std::vector<model::Reading>{r}));
  REQUIRE(env.ok());
  REQUIRE(env->readings.size() == 1);
  CHECK(env->readings[0] == r);
  // Evidence is never evicted: always the alarm class, whatever [priority] says.
  model::PriorityRules rules;
  rules.sensor = rules.position = model::Priority::kBulk;
  CHECK(model::classify(r, rules) == model::Priority::kAlarm);
  model::Reading small = r;
  small.source_id = "TU-0042:ev";
  small.payload = model::EvidenceCheckpoint{{0xd2, 0x84}, 0, model::EvidenceCheck::kMalformed};
  CHECK(codec::reading_to_json(small) ==
        "{\"source\":\"TU-0042:ev\",\"seq\":1003,\"time_utc_ms\":1718000002000,\"kind\":\"evidence\",\"n\":0,"
        "\"check\":\"malformed\",\"cose\":\"d284\"}");
  // Longer than any checkpoint, or empty: refused in an envelope.
  e.cose.assign(model::kMaxEvidenceBytes + 1, 0xd2);
  r.payload = e;
  CHECK_FALSE(codec::decode_envelope(codec::encode_envelope({"cnsha", "gw", 1, 2, model::Priority::kAlarm},
                                                            std::vector<model::Reading>{r}))
                  .ok());
  e.cose.clear();
  r.payload = e;
  CHECK_FALSE(codec::decode_reading(codec::encode_reading(r)).ok());
}

TEST_CASE("a class seq (schema 1.5) round-trips through an envelope, prints after seq, and is bounded", "[codec]") {
  codec::EnvelopeHeader h{"cnsha", "gw-01", 44, 1795000000999ull, Priority::kAlarm};
  Reading door{"TU-0042", "MSKU1234565", 123, 1795001441000ull, DoorEvent{DoorState::kOpen}};
  door.class_seq = 4;
  door.class_priority = Priority::kAlarm;
  Reading old = door;  // a row stored before store v5: unnumbered
  old.seq = 124;
  old.class_seq = 0;
  old.class_priority = Priority::kTelemetry;
  auto env = codec::decode_envelope(codec::encode_envelope(h, std::vector<Reading>{door, old}));
  REQUIRE(env.ok());
  CHECK(env->readings == std::vector<Reading>{door, old});
  CHECK(codec::reading_to_json(env->readings[0]) ==
        R"({"source":"TU-0042","container":"MSKU1234565","seq":123,"class":"alarm","class_seq":4,"time_utc_ms":1795001441000,"kind":"door","state":"open"})");
  CHECK(codec::reading_to_json(env->readings[1]) ==
        R"({"source":"TU-0042","container":"MSKU1234565","seq":124,"time_utc_ms":1795001441000,"kind":"door","state":"open"})");
  // The stored form carries it too (what the store is given has 0: the store numbers it).
  auto stored = codec::decode_reading(codec::encode_reading(door));
  REQUIRE(stored.ok());
  CHECK(stored->class_seq == 4);
  // At 2^53-1 it decodes; above, the envelope is refused.
  door.class_seq = kMaxSeq;
  CHECK(codec::decode_envelope(codec::encode_envelope(h, std::vector<Reading>{door})).ok());
  door.class_seq = kMaxSeq + 1;
  auto refused = codec::decode_envelope(codec::encode_envelope(h, std::vector<Reading>{door}));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error() == "reading 0: class_seq 9007199254740992 > 2^53-1");
}
