// [codec] Envelope v2 (schema/telemetry_v2.fbs, docs/schema.md "Envelope
// v2"): the standard mix and edge values round-trip to the same readings as
// v1; every malformed column is refused with a message naming it; the zstd
// dictionary is the one announced; the worked byte example of docs/schema.md
// is what the encoder writes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include <zstd.h>

#include "eport/codec/codec.h"
#include "eport/codec/topics.h"
#include "eport/schema/telemetry_v2_generated.h"
#include "fleet.h"

using namespace eport;
using namespace eport::model;
namespace fb2 = eport::telemetry::v2;

namespace {

codec::EnvelopeHeader header_v2(std::string site = "cnsha", std::string gw = "gw-01") {
  return {std::move(site), std::move(gw), 42, 1795000000123ull, Priority::kTelemetry, codec::kSchemaVersionV2};
}

std::vector<Reading> every_kind() {
  std::vector<Reading> v;
  Reading base{"tcu-0001", "CSQU3054383", 1, 1795000000000ull, Position{}};
  CustodyEvent custody;
  custody.code = EventCode::kSealMismatch;
  custody.subject_id = "tcu-0001";
  custody.first_seq = 5;
  custody.caused_by_seq = 6;
  custody.zone_id = "yangshan-4";
  custody.lat_e7 = 306269946;
  custody.lon_e7 = 1220209931;
  custody.temperature_centi_c = -1700;
  custody.duration_ms = 60000;
  custody.seal_id = "CN11661086";
  custody.expected_seal_id = "SL51941122";
  custody.seal_class = SealClass::kHighSecurity;
  custody.command_id = "cmd-1";
  std::vector<Payload> payloads = {Position{306187233, 1220670000, 1234, 35999, FixQuality::kRtkFixed, 14, 87},
                                   Position{-338688000, 1512093000, std::nullopt, std::nullopt, FixQuality::kNoFix, 0,
                                            std::nullopt},
                                   SealEvent{"SL00012345", SealState::kTampered},
                                   DoorEvent{DoorState::kOpen},
                                   SensorSample{-1850, 8412, 2500, 3700, 42, -1800},
                                   SensorSample{},
                                   SequenceGap{3, GapReason::kFlashFull},
                                   custody,
                                   EvidenceCheckpoint{{0xd2, 0x84, 0x4d}, 1, EvidenceCheck::kVerified}};
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    Reading r = base;
    r.seq = 10 + i * 3;
    r.time_utc_ms += i * 1000;
    r.payload = payloads[i];
    if (i % 4 == 1) r.time_source = TimeSource::kGatewayReceive;
    v.push_back(r);
  }
  // A second source and the gateway's own (no container), interleaved.
  Reading gw{"gw-01", "", 7, 1795000000500ull, Position{1, 2, 0, 0, FixQuality::kGps, 5, 100}};
  v.insert(v.begin() + 2, gw);
  Reading other{"tcu-0002", "MSKU1234565", 99, 1795000000600ull, SensorSample{2000, std::nullopt, 1, 2, 3, std::nullopt}};
  v.insert(v.begin() + 4, other);
  return v;
}

// A v2 envelope with the given columns (and v1 tables), built by hand.
std::vector<std::uint8_t> v2_with(const std::vector<std::uint8_t>& columns, const std::vector<Reading>& v1 = {},
                                  bool with_columns = true,
                                  const std::optional<std::vector<std::uint8_t>>& class_seqs = std::nullopt) {
  // The v1 tables are taken from a real encoding of those readings.
  flatbuffers::FlatBufferBuilder b;
  std::vector<flatbuffers::Offset<eport::telemetry::v1::Reading>> tables;
  std::vector<std::vector<std::uint8_t>> stored;
  for (const auto& r : v1) stored.push_back(codec::encode_reading(r));
  // Re-encoding through the public API is not possible for nested tables:
  // copy each stored Reading's fields instead.
  for (const auto& s : stored) {
    const auto* t = flatbuffers::GetRoot<eport::telemetry::v1::Reading>(s.data());
    auto src = b.CreateString(t->source_id()->str());
    flatbuffers::Offset<flatbuffers::String> cont;
    if (t->container_id()) cont = b.CreateString(t->container_id()->str());
    auto door = eport::telemetry::v1::CreateDoorEvent(b, eport::telemetry::v1::DoorState::Open);
    tables.push_back(eport::telemetry::v1::CreateReading(b, src, cont, t->seq(), t->time_utc_ms(),
                                                         eport::telemetry::v1::Payload::DoorEvent, door.Union(),
                                                         eport::telemetry::v1::TimeSource::Source, t->class_seq()));
  }
  auto cols = with_columns ? b.CreateVector(columns) : flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>>();
  auto vt = tables.empty() ? flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<eport::telemetry::v1::Reading>>>()
                           : b.CreateVector(tables);
  flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> cs;
  if (class_seqs) cs = b.CreateVector(*class_seqs);
  b.Finish(fb2::CreateEnvelope(b, cols, vt, 0, 0, cs), fb2::EnvelopeIdentifier());
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

// Readings as the store hands them out: numbered per source in the envelope's class.
std::vector<Reading> numbered(std::vector<Reading> rs, Priority p, std::uint64_t first = 1) {
  std::map<std::string, std::uint64_t> next;
  for (auto& r : rs) {
    auto& n = next.try_emplace(r.source_id, first).first->second;
    r.class_seq = n++;
    r.class_priority = p;
  }
  return rs;
}

// Columns of one group of one position reading, "tcu-1" without container,
// seq 5, at the envelope's time; `reading` replaces the default tail.
std::vector<std::uint8_t> one_group(std::vector<std::uint8_t> reading) {
  // Built in place (not insert() after the list): GCC 12 for armhf warns a false -Warray-bounds there.
  reading.insert(reading.begin(), {0x07, 0x64, 0x01, 0x01, 0x05, 't', 'c', 'u', '-', '1', 0x00, 0x01, 0x05, 0x00});
  return reading;
}
// tag position, presence none, lat 1, lon -1, fix 1, satellites 8
const std::vector<std::uint8_t> kPositionTail = {0x00, 0x00, 0x02, 0x01, 0x02, 0x10};

std::string hex(std::span<const std::uint8_t> bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (auto c : bytes) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

}  // namespace

TEST_CASE("v2: every payload kind and both time sources round-trip, grouped per source", "[codec]") {
  auto readings = every_kind();
  auto h = header_v2();
  auto bytes = codec::encode_envelope_v2(h, readings);
  auto env = codec::decode_envelope_v2(bytes);
  REQUIRE(env.ok());
  CHECK(env->header == h);
  auto expect = codec::v2_order(readings);
  REQUIRE(env->readings.size() == readings.size());
  for (std::size_t i = 0; i < expect.size(); ++i) CHECK(env->readings[i] == expect[i]);
  // Grouping keeps each source's order and puts the groups in order of first appearance.
  CHECK(expect[0].source_id == "tcu-0001");
  CHECK(expect[9].source_id == "gw-01");
  CHECK(expect[10].source_id == "tcu-0002");
  // decode_payload and decode_any_envelope tell v1 from v2 by the identifier.
  auto v1 = codec::encode_envelope(h, readings);
  CHECK(codec::decode_payload(v1)->readings == readings);
  CHECK(codec::decode_payload(bytes)->readings == expect);
  CHECK(codec::decode_any_envelope(bytes)->readings == expect);
  CHECK(codec::decode_payload(codec::compress_v2(bytes))->readings == expect);
  CHECK(codec::decode_payload(codec::compress(bytes))->readings == expect);
}

TEST_CASE("v2: the standard mix decodes to the same readings as v1 at every batch size", "[codec]") {
  auto mix = sim::standard_mix(20, 30);
  codec::EnvelopeEncoder v1;
  codec::EnvelopeEncoderV2 v2;
  for (std::size_t batch : {std::size_t{1}, std::size_t{10}, std::size_t{77}, std::size_t{600}}) {
    for (std::size_t at = 0; at < mix.size(); at += batch) {
      std::span<const Reading> b(mix.data() + at, std::min(batch, mix.size() - at));
      codec::EnvelopeHeader h{"cnsha", "gw-yangshan-01", at, b.back().time_utc_ms + 50, Priority::kTelemetry};
      auto one = codec::decode_envelope(v1.encode(h, b));
      REQUIRE(one.ok());
      auto two = codec::decode_payload(codec::compress_v2(v2.encode(h, b)));
      REQUIRE(two.ok());
      CHECK(two->readings == codec::v2_order(one->readings));
      std::vector<Reading> sorted_one = one->readings, sorted_two = two->readings;
      auto key = [](const Reading& a, const Reading& c) { return std::tie(a.source_id, a.seq) < std::tie(c.source_id, c.seq); };
      std::sort(sorted_one.begin(), sorted_one.end(), key);
      std::sort(sorted_two.begin(), sorted_two.end(), key);
      CHECK(sorted_one == sorted_two);
    }
  }
}

TEST_CASE("v2: edge values round-trip at every range limit", "[codec]") {
  const auto i32min = std::numeric_limits<std::int32_t>::min(), i32max = std::numeric_limits<std::int32_t>::max();
  std::vector<Reading> rs = {
      {"a", "", kMaxSeq - 3, 0, Position{900000000, 1800000000, 0, 35999, FixQuality::kSimulated, 255, 65535}},
      {"a", "", kMaxSeq - 2, std::numeric_limits<std::uint64_t>::max(),
       Position{-900000000, -1800000000, 65535, 0, FixQuality::kNoFix, 0, 0}},
      {"a", "", kMaxSeq - 1, 1, Position{i32min, i32max, std::nullopt, std::nullopt, FixQuality::kGps, 1, std::nullopt}},
      {"a", "", kMaxSeq, 0, Position{i32max, i32min, 1, 1, FixQuality::kGps, 1, 1}},
      {"b", "CSQU3054383", 1, 1795000000000ull, SensorSample{-32768, 0, 65535, 0, 255, 32767}},
      {"b", "CSQU3054383", 2, 1795000000000ull, SensorSample{32767, 65535, 0, 65535, 0, -32768}},
      {"b", "CSQU3054383", 3, 1795000000000ull, SensorSample{}},
      {std::string(codec::kMaxSourceIdBytes, 's'), "CSQU3054383", 1, 5, SensorSample{0, std::nullopt, 0, std::nullopt, 0, std::nullopt}},
  };
  // Seqs out of order within a source still round-trip (deltas are signed).
  rs.push_back({"c", "", 100, 10, DoorEvent{DoorState::kClosed}});
  rs.push_back({"c", "", 50, 5, DoorEvent{DoorState::kOpen}});
  for (std::uint64_t sent : {std::uint64_t{0}, std::uint64_t{1795000000123ull}, std::numeric_limits<std::uint64_t>::max()}) {
    codec::EnvelopeHeader h{"", "", std::numeric_limits<std::uint64_t>::max(), sent, Priority::kBulk, codec::kSchemaVersionV2};
    auto env = codec::decode_envelope_v2(codec::encode_envelope_v2(h, rs));
    REQUIRE(env.ok());
    CHECK(env->header == h);
    CHECK(env->readings == codec::v2_order(rs));
  }
  SECTION("one reading, and an envelope without readings") {
    auto one = codec::decode_envelope_v2(codec::encode_envelope_v2(header_v2(), std::span(rs.data(), 1)));
    REQUIRE(one.ok());
    CHECK(one->readings == std::vector<Reading>{rs[0]});
    auto none = codec::decode_envelope_v2(codec::encode_envelope_v2(header_v2(), {}));
    REQUIRE(none.ok());
    CHECK(none->readings.empty());
  }
  SECTION("exactly max_readings decodes, one more is refused") {
    codec::DecodeLimits limits;
    limits.max_readings = 1000;
    std::vector<Reading> many;
    for (std::uint64_t i = 1; i <= 1000; ++i)
      many.push_back({"tcu-" + std::to_string(i % 7), "", i, 1795000000000ull + i, Position{1, 2, 3, 4, FixQuality::kGps, 5, 6}});
    auto ok = codec::decode_envelope_v2(codec::encode_envelope_v2(header_v2(), many), limits);
    REQUIRE(ok.ok());
    CHECK(ok->readings.size() == 1000);
    many.push_back({"tcu-1", "", 5000, 1, Position{}});
    auto refused = codec::decode_envelope_v2(codec::encode_envelope_v2(header_v2(), many), limits);
    REQUIRE_FALSE(refused.ok());
    CHECK_THAT(refused.error(), Catch::Contains("exceeds the readings limit"));
  }
  SECTION("seqs past 1..2^53-1 are refused") {
    for (std::uint64_t bad : {std::uint64_t{0}, kMaxSeq + 1}) {
      Reading r{"a", "", bad, 1, Position{}};
      auto env = codec::decode_envelope_v2(codec::encode_envelope_v2(header_v2(), std::span(&r, 1)));
      REQUIRE_FALSE(env.ok());
      CHECK_THAT(env.error(), Catch::Contains("group 0: reading 0: seq " + std::to_string(bad) + " out of range 1..2^53-1"));
    }
  }
}

TEST_CASE("v2: malformed envelopes are refused with a message naming what was wrong", "[codec]") {
  struct Case {
    const char* name;
    std::vector<std::uint8_t> bytes;
    const char* expected;
  };
  std::vector<std::uint8_t> over(10, 0xFF);
  over.back() = 0x02;
  std::vector<std::uint8_t> too_long(11, 0x80);
  auto long_source = std::vector<std::uint8_t>{0x07, 0x64, 0x01, 0x01, 41};
  long_source.insert(long_source.end(), 41, 'x');
  Reading door{"tcu-1", "", 5, 100, DoorEvent{DoorState::kOpen}};
  Reading door_seq6 = door;
  door_seq6.seq = 6;
  Reading door_counted = door;
  door_counted.class_seq = 3;
  std::vector<Case> cases = {
      {"empty buffer", {}, "not an EPT2 envelope"},
      {"a v1 envelope", codec::encode_envelope(header_v2(), every_kind()), "not an EPT2 envelope"},
      {"no columns", v2_with({}, {}, false), "v2 envelope without columns"},
      {"empty columns", v2_with({}), "envelope_seq: columns end inside reading 0"},
      {"varint past 64 bits", v2_with(over), "envelope_seq: varint of reading 0 overflows 64 bits"},
      {"varint of 11 bytes", v2_with(too_long), "envelope_seq: varint of reading 0 overflows 64 bits"},
      {"no priority", v2_with({0x07, 0x64}), "priority: columns end"},
      {"unknown priority", v2_with({0x07, 0x64, 0x04, 0x00}), "priority 4 unknown"},
      {"no group count", v2_with({0x07, 0x64, 0x01}), "group count: columns end"},
      {"more groups than readings allowed", v2_with({0x07, 0x64, 0x01, 0xA1, 0x8D, 0x06}), "groups > limit 100000"},
      {"missing group", v2_with({0x07, 0x64, 0x01, 0x01}), "group 0: source_id: columns end"},
      {"empty source_id", v2_with({0x07, 0x64, 0x01, 0x01, 0x00, 0x00}), "group 0: empty source_id"},
      {"source_id over 40 bytes", v2_with(long_source), "group 0: source_id of 41 bytes > 40"},
      {"source_id past the end", v2_with({0x07, 0x64, 0x01, 0x01, 0x05, 't', 'c'}), "group 0: source_id: columns end inside it"},
      {"container_id over 11 bytes", v2_with({0x07, 0x64, 0x01, 0x01, 0x01, 'a', 12}), "group 0: container_id of 12 bytes > 11"},
      {"count 0", v2_with({0x07, 0x64, 0x01, 0x01, 0x01, 'a', 0x00, 0x00}), "group 0: count 0"},
      {"count past the bytes left", v2_with({0x07, 0x64, 0x01, 0x01, 0x01, 'a', 0x00, 0x7F, 0x01, 0x00}),
       "group 0: count 127 but only 2 bytes of columns left"},
      {"no base time", v2_with({0x07, 0x64, 0x01, 0x01, 0x01, 'a', 0x00, 0x01, 0x05}),
       "group 0: time_utc_ms: columns end inside reading 0"},
      {"tag with reserved bits", v2_with(one_group({0x08, 0x00, 0x02, 0x01, 0x02, 0x10})),
       "group 0: reading 0: tag has reserved bits set"},
      {"tag of kind 3", v2_with(one_group({0x03, 0x00, 0x02, 0x01, 0x02, 0x10})), "group 0: reading 0: tag of unknown kind 3"},
      {"presence with reserved bits", v2_with(one_group({0x00, 0x08, 0x02, 0x01, 0x02, 0x10})),
       "group 0: reading 0: presence has reserved bits set"},
      {"sensor presence with reserved bits", v2_with(one_group({0x01, 0x40})),
       "group 0: reading 0: presence has reserved bits set"},
      {"lat_e7 past int32", v2_with(one_group({0x00, 0x00, 0x80, 0x80, 0x80, 0x80, 0x10, 0x01, 0x02, 0x10})),
       "group 0: reading 0: lat_e7 2147483648 out of range -2147483648..2147483647"},
      {"satellites past 255", v2_with(one_group({0x00, 0x00, 0x02, 0x01, 0x02, 0x80, 0x04})),
       "group 0: reading 0: satellites 256 out of range 0..255"},
      {"truncated column", v2_with(one_group({0x00, 0x00, 0x02, 0x01, 0x02})), "group 0: satellites: columns end inside reading 0"},
      {"trailing byte", v2_with(one_group({0x00, 0x00, 0x02, 0x01, 0x02, 0x10, 0x00})), "1 bytes after the last group"},
      {"kind v1 without its table", v2_with(one_group({0x02})), "group 0: 1 readings of kind v1 but only 0 v1 tables left"},
      {"a v1 table too many", v2_with(one_group(kPositionTail), {door}), "1 v1 tables but 0 readings of kind v1"},
      {"a v1 table of another seq", v2_with(one_group({0x02}), {door_seq6}),
       "group 0: reading 0: v1 table's source, container, seq, time or time source differ from the group's"},
      // Schema 1.5: class_seqs.
      {"class_seqs empty", v2_with(one_group(kPositionTail), {}, true, std::vector<std::uint8_t>{}),
       "group 0: class_seqs: columns end inside reading 0"},
      {"class_seq past 2^53-1",
       v2_with(one_group(kPositionTail), {}, true, std::vector<std::uint8_t>{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10}),
       "group 0: reading 0: class_seq 9007199254740992 out of range 0..2^53-1"},
      {"class_seq varint past 64 bits", v2_with(one_group(kPositionTail), {}, true, over),
       "group 0: class_seqs: varint of reading 0 overflows 64 bits"},
      {"a class_seqs byte after the last group", v2_with(one_group(kPositionTail), {}, true, std::vector<std::uint8_t>{0x01, 0x00}),
       "1 bytes of class_seqs after the last group"},
      {"a v1 table with its own class_seq", v2_with(one_group({0x02}), {door_counted}, true, std::vector<std::uint8_t>{0x03}),
       "group 0: reading 0: v1 table has a class_seq (v2 carries it in class_seqs)"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    auto r = codec::decode_envelope_v2(c.bytes);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error(), Catch::Contains(c.expected));
  }
  // The hand-made group itself is good, and so is its v1 twin.
  auto good = codec::decode_envelope_v2(v2_with(one_group(kPositionTail)));
  REQUIRE(good.ok());
  REQUIRE(good->readings.size() == 1);
  CHECK(good->header.envelope_seq == 7);
  CHECK(good->header.sent_utc_ms == 100);
  CHECK(good->readings[0] == Reading{"tcu-1", "", 5, 100, Position{1, -1, std::nullopt, std::nullopt, FixQuality::kGps, 8, std::nullopt}});
  auto good_door = codec::decode_envelope_v2(v2_with(one_group({0x02}), {door}));
  REQUIRE(good_door.ok());
  CHECK(good_door->readings == std::vector<Reading>{door});
}

TEST_CASE("v2: class seqs (schema 1.5) round-trip for every kind, in a stream of their own", "[codec]") {
  auto h = header_v2();
  h.priority = Priority::kEvent;
  auto rs = numbered(every_kind(), Priority::kEvent, 17);
  rs[3].class_seq += 5;  // a hole (evicted readings), and a count not in seq order is carried as it is
  rs[5].class_seq = 0;   // a row from before store v5 in the same envelope
  auto bytes = codec::encode_envelope_v2(h, rs);
  const auto* env = fb2::GetEnvelope(bytes.data());
  REQUIRE(env->class_seqs() != nullptr);
  for (const auto* t : *env->v1_readings()) CHECK(t->class_seq() == 0);  // carried in class_seqs only
  auto back = codec::decode_envelope_v2(bytes);
  REQUIRE(back.ok());
  auto want = codec::v2_order(rs);
  for (auto& r : want) {
    if (r.class_seq == 0) r.class_priority = Priority::kTelemetry;  // unnumbered: no class
  }
  CHECK(back->readings == want);
  // JSON: the class and the count right after seq.
  CHECK_THAT(codec::reading_to_json(back->readings[0]),
             Catch::StartsWith(R"({"source":"tcu-0001","container":"CSQU3054383","seq":10,"class":"event","class_seq":17,"time_utc_ms":)"));
  // Unnumbered readings: no class_seqs at all (the worked example's bytes stay as they are).
  auto plain = codec::encode_envelope_v2(h, every_kind());
  CHECK(fb2::GetEnvelope(plain.data())->class_seqs() == nullptr);
  CHECK(plain.size() < bytes.size());
  // The usual case costs one varint per group and a zero byte per further reading.
  auto mix = sim::standard_mix(10, 5);
  auto counted = numbered(mix, Priority::kTelemetry, 1000);
  auto a = codec::encode_envelope_v2(header_v2(), mix), b = codec::encode_envelope_v2(header_v2(), counted);
  std::set<std::string> sources;  // one group per source here
  for (const auto& r : mix) sources.insert(r.source_id);
  CHECK(b.size() - a.size() <= 12 + sources.size() * 2 + mix.size());
}

TEST_CASE("v2: the limits on size and decoded bytes hold", "[codec]") {
  auto bytes = codec::encode_envelope_v2(header_v2(), every_kind());
  codec::DecodeLimits small;
  small.max_bytes = 16;
  CHECK_THAT(codec::decode_envelope_v2(bytes, small).error(), Catch::Contains("too large"));
  codec::DecodeLimits tight;
  tight.max_decoded_bytes = 3 * codec::kDecodedReadingBytes;
  auto r = codec::decode_envelope_v2(bytes, tight);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error(), Catch::Contains("envelope decodes to more than the limit"));
  // A group's count is held against the bound before anything is allocated for it.
  std::vector<std::uint8_t> cols = {0x07, 0x64, 0x01, 0x01, 0x01, 'a', 0x00, 20};
  cols.resize(cols.size() + 40, 0x00);
  codec::DecodeLimits ten;
  ten.max_decoded_bytes = 10 * codec::kDecodedReadingBytes;
  auto big = codec::decode_envelope_v2(v2_with(cols), ten);
  REQUIRE_FALSE(big.ok());
  CHECK_THAT(big.error(), Catch::Contains("group 0: count 20: envelope decodes to more than the limit"));
}

TEST_CASE("v2: flipping or cutting any byte never crashes the decoder", "[codec]") {
  auto good = codec::encode_envelope_v2(header_v2(), every_kind());
  std::size_t rejected = 0;
  for (std::size_t i = 0; i < good.size(); ++i) {
    for (std::uint8_t flip : {0x01, 0x80, 0xFF}) {
      auto copy = good;
      copy[i] = static_cast<std::uint8_t>(copy[i] ^ flip);
      if (!codec::decode_envelope_v2(copy).ok()) ++rejected;
    }
    // A cut buffer is refused, unless only trailing padding was cut.
    std::vector<std::uint8_t> cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(i));
    auto r = codec::decode_envelope_v2(cut);
    if (r.ok()) CHECK((good.size() - i < 4 && r->readings == codec::v2_order(every_kind())));
  }
  CHECK(rejected > 0);
}

TEST_CASE("v2: ids left out are the topic's, ids that differ from the topic's are refused", "[codec]") {
  auto readings = every_kind();
  auto topic = codec::topics::data("cnsha", "gw-01", Priority::kTelemetry);
  auto bare = codec::compress_v2(codec::encode_envelope_v2(header_v2("", ""), readings));
  auto plain = codec::decode_payload(bare);
  REQUIRE(plain.ok());
  CHECK(plain->header.site_id.empty());
  auto on = codec::decode_payload_on(topic, bare);
  REQUIRE(on.ok());
  CHECK(on->header == header_v2());
  CHECK(codec::decode_payload_on(topic, codec::encode_envelope_v2(header_v2(), readings)).ok());
  auto other = codec::decode_payload_on(topic, codec::encode_envelope_v2(header_v2("cnsha", "gw-02"), readings));
  REQUIRE_FALSE(other.ok());
  CHECK_THAT(other.error(), Catch::Contains("v2 envelope's gateway_id gw-02 is not its topic's gw-01"));
  CHECK_THAT(codec::decode_payload_on("somewhere/else", bare).error(), Catch::Contains("names no site and gateway"));
  // v1 is as decode_payload gives it.
  auto v1 = codec::encode_envelope(codec::EnvelopeHeader{"x", "y", 1, 1, Priority::kTelemetry}, readings);
  CHECK(codec::decode_payload_on(topic, v1)->header.gateway_id == "y");
}

TEST_CASE("v2: the zstd dictionary is the committed one, announced by its id; an unknown id is refused", "[codec]") {
  std::ifstream f(std::string(EPORT_SOURCE_DIR) + "/schema/eport_v2_dict_1.zdict", std::ios::binary);
  std::vector<std::uint8_t> committed((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto dict = codec::v2_dictionary();
  REQUIRE(committed.size() > 1000);
  CHECK(std::vector<std::uint8_t>(dict.begin(), dict.end()) == committed);
  CHECK(ZSTD_getDictID_fromDict(dict.data(), dict.size()) == codec::kV2DictionaryId);
  auto bytes = codec::encode_envelope_v2(header_v2(), every_kind());
  auto z = codec::compress_v2(bytes);
  CHECK(ZSTD_getDictID_fromFrame(z.data(), z.size()) == codec::kV2DictionaryId);
  // The same frame, as if made with dictionary 32770: refused, not guessed.
  auto renamed = z;
  REQUIRE((renamed[4] & 0x03) == 2);  // Frame_Header_Descriptor: a 2-byte Dictionary_ID
  std::size_t at = (renamed[4] & 0x20) ? 5 : 6;  // after the Window_Descriptor unless single-segment
  REQUIRE(renamed[at] == (codec::kV2DictionaryId & 0xFF));
  renamed[at] = static_cast<std::uint8_t>(renamed[at] + 1);
  auto r = codec::decode_payload(renamed);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error(), Catch::Contains("compressed with dictionary 32770, which this decoder does not have"));
  // Without the dictionary, a plain zstd decoder cannot read it.
  std::vector<std::uint8_t> out(bytes.size());
  CHECK(ZSTD_isError(ZSTD_decompress(out.data(), out.size(), z.data(), z.size())));
}

TEST_CASE("v2: the worked byte example of docs/schema.md is what the encoder writes", "[codec]") {
  // The example's reading and header, as docs/schema.md states them.
  Reading r{"tcu-0001", "CSQU3054383", 42, 1795000000000ull,
            Position{306187233, 1220670000, 1234, 9000, FixQuality::kGps, 9, 87}};
  Reading s{"tcu-0001", "CSQU3054383", 43, 1795000010000ull, SensorSample{-1850, 8412, std::nullopt, 3700, 42, -1800}};
  Reading t{"tcu-0001", "CSQU3054383", 45, 1795000020000ull,
            Position{306187300, 1220669900, 1240, 9010, FixQuality::kGps, 9, 90}};
  std::vector<Reading> rs = {r, s, t};
  codec::EnvelopeHeader h{"", "", 7, 1795000020050ull, Priority::kTelemetry, codec::kSchemaVersionV2};
  auto bytes = codec::encode_envelope_v2(h, rs);
  std::ifstream f(std::string(EPORT_SOURCE_DIR) + "/docs/schema.md");
  std::string doc((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto begin = doc.find("<!-- v2 example bytes -->");
  REQUIRE(begin != std::string::npos);
  auto fence = doc.find("```", begin);
  auto end = doc.find("```", fence + 3);
  REQUIRE(end != std::string::npos);
  // Every hex pair of the block's lines, before each line's "#" comment.
  std::string in_doc;
  std::istringstream lines(doc.substr(fence + 3, end - fence - 3));
  for (std::string line; std::getline(lines, line);) {
    line = line.substr(0, line.find('#'));
    for (char c : line)
      if (std::isxdigit(static_cast<unsigned char>(c))) in_doc += static_cast<char>(std::tolower(c));
  }
  CHECK(in_doc == hex(bytes));
  auto back = codec::decode_envelope_v2(bytes);
  REQUIRE(back.ok());
  CHECK(back->readings == rs);
}

TEST_CASE("v2: the fuzz seeds and their JSON lines are the codec's (EPORT_WRITE_FUZZ_SEEDS=1 rewrites them)", "[codec]") {
  auto mix = sim::standard_mix(10, 5);
  auto every = every_kind();
  std::vector<std::pair<std::string, std::vector<std::uint8_t>>> seeds = {
      {"every_kind.ept2", codec::encode_envelope_v2(header_v2(), every)},
      {"every_kind.ept2.zst", codec::compress_v2(codec::encode_envelope_v2(header_v2("", ""), every))},
      {"one_position.ept2", codec::encode_envelope_v2(header_v2("", ""), std::span(mix.data(), 1))},
      {"mix_50.ept2.zst", codec::compress_v2(codec::encode_envelope_v2(header_v2("", ""), mix))},
      // Schema 1.5: numbered as the store numbers them, with a hole.
      {"numbered_mix.ept2.zst", codec::compress_v2(codec::encode_envelope_v2(header_v2("", ""), [&] {
         auto rs = numbered(mix, Priority::kTelemetry, 41);
         int nth = 0;  // 3 readings of the first source evicted before its third
         for (auto& r : rs) {
           if (r.source_id == rs[0].source_id && ++nth >= 3) r.class_seq += 3;
         }
         return rs;
       }()))},
  };
  const std::string dir = std::string(EPORT_SOURCE_DIR) + "/agent/codec/fuzz/corpus/envelope_v2/";
  const bool write = std::getenv("EPORT_WRITE_FUZZ_SEEDS") != nullptr;
  for (const auto& [name, bytes] : seeds) {
    INFO(name);
    if (write) {
      std::ofstream(dir + name, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                         static_cast<std::streamsize>(bytes.size()));
    }
    std::ifstream f(dir + name, std::ios::binary);
    std::vector<std::uint8_t> committed((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    CHECK(committed == bytes);
    // What eport-tail prints for it on a telemetry topic of cnsha/gw-01: the lines the
    // Python kit's decoder must print too (tests/integration/test_python_v2.py).
    auto env = codec::decode_payload_on(codec::topics::data("cnsha", "gw-01", Priority::kTelemetry), committed);
    REQUIRE(env.ok());
    std::string lines = codec::envelope_header_to_json(env->header) + "\n";
    for (const auto& r : env->readings) lines += codec::reading_to_json(r) + "\n";
    const std::string json_path = std::string(EPORT_SOURCE_DIR) + "/tests/data/envelope_v2/" + name + ".jsonl";
    if (write) std::ofstream(json_path, std::ios::binary) << lines;
    std::ifstream j(json_path, std::ios::binary);
    CHECK(std::string((std::istreambuf_iterator<char>(j)), std::istreambuf_iterator<char>()) == lines);
  }
}
