// Envelope v2 (schema/telemetry_v2.fbs): readings grouped per source and
// coded in columns of zigzag delta varints; its bounded decoder checks every
// column byte against explicit limits and names what was wrong. The byte
// rules are specified in docs/schema.md ("Envelope v2").
#include <flatbuffers/flatbuffers.h>

#include <array>
#include <limits>
#include <optional>
#include <map>
#include <utility>

#include "eport/codec/codec.h"
#include "eport/schema/telemetry_v2_generated.h"
#include "v1_reading.h"

namespace eport::codec {
namespace fb1 = eport::telemetry::v1;
namespace fb2 = eport::telemetry::v2;

namespace {

// Tag byte of a reading: bits 0-1 kind, bit 2 time source, bits 3-7 zero.
constexpr std::uint8_t kKindPosition = 0, kKindSensor = 1, kKindV1 = 2;
constexpr std::uint8_t kKindMask = 0x03, kTagGatewayReceive = 0x04, kTagReserved = 0xF8;
// Presence bits of the optional fields, per kind.
constexpr std::uint8_t kPosSpeed = 0x01, kPosHeading = 0x02, kPosHdop = 0x04, kPosReserved = 0xF8;
constexpr std::uint8_t kSenTemp = 0x01, kSenHum = 0x02, kSenShock = 0x04, kSenMv = 0x08, kSenPct = 0x10,
                       kSenSetpoint = 0x20, kSenReserved = 0xC0;
constexpr std::size_t kMaxVarintBytes = 10;
// v1 does not bound the header's ids; v2 does (gateway.site and gateway.id
// are at most 32 bytes by the agent's config).
constexpr std::size_t kMaxHeaderIdBytes = 64;

std::uint64_t zigzag(std::int64_t v) {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
std::int64_t unzigzag(std::uint64_t u) { return static_cast<std::int64_t>(u >> 1) ^ -static_cast<std::int64_t>(u & 1); }

void put_varint(std::vector<std::uint8_t>& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<std::uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<std::uint8_t>(v));
}
// A delta modulo 2^64, as a signed zigzag varint: every pair of uint64
// values (and of sign-extended signed ones) round-trips.
void put_delta(std::vector<std::uint8_t>& out, std::uint64_t now, std::uint64_t prev) {
  put_varint(out, zigzag(static_cast<std::int64_t>(now - prev)));
}

// The columns of numeric fields, in their order on the wire.
enum Col : std::size_t {
  kLat, kLon, kSpeed, kHeading, kFix, kSats, kHdop,
  kTemp, kHum, kShock, kMv, kPct, kSetpoint, kColCount
};
struct ColSpec {
  const char* name;
  std::int64_t min, max;
};
constexpr ColSpec kCols[kColCount] = {
    {"lat_e7", std::numeric_limits<std::int32_t>::min(), std::numeric_limits<std::int32_t>::max()},
    {"lon_e7", std::numeric_limits<std::int32_t>::min(), std::numeric_limits<std::int32_t>::max()},
    {"speed_cm_s", 0, 65535},
    {"heading_cdeg", 0, 65535},
    {"fix", 0, 255},
    {"satellites", 0, 255},
    {"hdop_centi", 0, 65535},
    {"temperature_centi_c", -32768, 32767},
    {"humidity_centi_pct", 0, 65535},
    {"shock_milli_g", 0, 65535},
    {"battery_mv", 0, 65535},
    {"battery_pct", 0, 255},
    {"reefer_setpoint_centi_c", -32768, 32767},
};

std::int64_t sx(std::uint64_t v) { return static_cast<std::int64_t>(v); }

// One group's readings (pointers into the encoder's input).
struct GroupBuild {
  const model::Reading* first = nullptr;
  std::vector<const model::Reading*> readings;
};

std::uint8_t tag_of(const model::Reading& r) {
  std::uint8_t kind = std::holds_alternative<model::Position>(r.payload)       ? kKindPosition
                      : std::holds_alternative<model::SensorSample>(r.payload) ? kKindSensor
                                                                               : kKindV1;
  return static_cast<std::uint8_t>(kind | (r.time_source == model::TimeSource::kGatewayReceive ? kTagGatewayReceive : 0));
}

template <class T>
void present(std::uint8_t& bits, std::uint8_t bit, const std::optional<T>& v) {
  if (v) bits = static_cast<std::uint8_t>(bits | bit);
}

void put_string(std::vector<std::uint8_t>& out, std::string_view s) {
  put_varint(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

// Appends group g to the envelope's columns.
void build_columns(const GroupBuild& g, std::uint64_t sent_utc_ms, std::vector<std::uint8_t>& out) {
  const auto& rs = g.readings;
  put_string(out, g.first->source_id);
  put_string(out, g.first->container_id);
  put_varint(out, rs.size());
  put_varint(out, rs[0]->seq);
  put_delta(out, rs[0]->time_utc_ms, sent_utc_ms);
  for (const auto* r : rs) out.push_back(tag_of(*r));
  for (std::size_t i = 1; i < rs.size(); ++i) put_delta(out, rs[i]->seq, rs[i - 1]->seq + 1);
  for (std::size_t i = 1; i < rs.size(); ++i) put_delta(out, rs[i]->time_utc_ms, rs[i - 1]->time_utc_ms);
  for (const auto* r : rs) {
    std::uint8_t bits = 0;
    if (const auto* p = std::get_if<model::Position>(&r->payload)) {
      present(bits, kPosSpeed, p->speed_cm_s);
      present(bits, kPosHeading, p->heading_cdeg);
      present(bits, kPosHdop, p->hdop_centi);
    } else if (const auto* s = std::get_if<model::SensorSample>(&r->payload)) {
      present(bits, kSenTemp, s->temperature_centi_c);
      present(bits, kSenHum, s->humidity_centi_pct);
      present(bits, kSenShock, s->shock_milli_g);
      present(bits, kSenMv, s->battery_mv);
      present(bits, kSenPct, s->battery_pct);
      present(bits, kSenSetpoint, s->reefer_setpoint_centi_c);
    } else {
      continue;
    }
    out.push_back(bits);
  }
  // Column by column: every value present in the column, as the delta from
  // the column's previous value in this group (the first from 0).
  for (std::size_t c = 0; c < kColCount; ++c) {
    std::int64_t prev = 0;
    auto put = [&](std::int64_t v) {
      put_varint(out, zigzag(v - prev));
      prev = v;
    };
    for (const auto* r : rs) {
      if (c <= kHdop) {
        const auto* p = std::get_if<model::Position>(&r->payload);
        if (p == nullptr) continue;
        switch (c) {
          case kLat: put(p->lat_e7); break;
          case kLon: put(p->lon_e7); break;
          case kSpeed: if (p->speed_cm_s) put(*p->speed_cm_s); break;
          case kHeading: if (p->heading_cdeg) put(*p->heading_cdeg); break;
          case kFix: put(static_cast<std::int64_t>(p->fix)); break;
          case kSats: put(p->satellites); break;
          default: if (p->hdop_centi) put(*p->hdop_centi); break;
        }
      } else {
        const auto* s = std::get_if<model::SensorSample>(&r->payload);
        if (s == nullptr) continue;
        std::optional<std::int64_t> v;
        switch (c) {
          case kTemp: if (s->temperature_centi_c) v = *s->temperature_centi_c; break;
          case kHum: if (s->humidity_centi_pct) v = *s->humidity_centi_pct; break;
          case kShock: if (s->shock_milli_g) v = *s->shock_milli_g; break;
          case kMv: if (s->battery_mv) v = *s->battery_mv; break;
          case kPct: if (s->battery_pct) v = *s->battery_pct; break;
          default: if (s->reefer_setpoint_centi_c) v = *s->reefer_setpoint_centi_c; break;
        }
        if (v) put(*v);
      }
    }
  }
}

// Appends group g's class seqs (schema 1.5): the first, then each as the
// delta from the one before plus 1 (0 for the usual consecutive counts).
void build_class_seqs(const GroupBuild& g, std::vector<std::uint8_t>& out) {
  const auto& rs = g.readings;
  put_varint(out, rs[0]->class_seq);
  for (std::size_t i = 1; i < rs.size(); ++i) put_delta(out, rs[i]->class_seq, rs[i - 1]->class_seq + 1);
}

// Groups in order of their first reading; a map keeps the lookup cheap.
std::vector<GroupBuild> group(std::span<const model::Reading> readings) {
  std::vector<GroupBuild> groups;
  std::map<std::pair<std::string_view, std::string_view>, std::size_t> index;
  for (const auto& r : readings) {
    auto [it, fresh] = index.try_emplace({r.source_id, r.container_id}, groups.size());
    if (fresh) groups.push_back(GroupBuild{&r, {}});
    groups[it->second].readings.push_back(&r);
  }
  return groups;
}

}  // namespace

struct EnvelopeEncoderV2::Impl {
  flatbuffers::FlatBufferBuilder builder{16 * 1024};
  std::vector<std::uint8_t> columns;
  std::vector<std::uint8_t> class_seqs;
  std::vector<flatbuffers::Offset<fb1::Reading>> v1;
};

EnvelopeEncoderV2::EnvelopeEncoderV2() : impl_(new Impl) {}
EnvelopeEncoderV2::~EnvelopeEncoderV2() { delete impl_; }

std::span<const std::uint8_t> EnvelopeEncoderV2::encode(const EnvelopeHeader& h,
                                                        std::span<const model::Reading> readings) {
  auto& b = impl_->builder;
  b.Clear();
  impl_->v1.clear();
  impl_->columns.clear();
  impl_->class_seqs.clear();
  auto groups = group(readings);
  bool numbered = false;
  for (const auto& r : readings) numbered = numbered || r.class_seq > 0;
  put_varint(impl_->columns, h.envelope_seq);
  put_varint(impl_->columns, h.sent_utc_ms);
  impl_->columns.push_back(static_cast<std::uint8_t>(h.priority));
  put_varint(impl_->columns, groups.size());
  for (const auto& g : groups) {
    build_columns(g, h.sent_utc_ms, impl_->columns);
    if (numbered) build_class_seqs(g, impl_->class_seqs);
    for (const auto* r : g.readings) {
      if ((tag_of(*r) & kKindMask) != kKindV1) continue;
      if (r->class_seq == 0) {
        impl_->v1.push_back(detail::build_reading(b, *r));
      } else {  // its class_seq travels in class_seqs only
        model::Reading bare = *r;
        bare.class_seq = 0;
        impl_->v1.push_back(detail::build_reading(b, bare));
      }
    }
  }
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb1::Reading>>> v1;
  if (!impl_->v1.empty()) v1 = b.CreateVector(impl_->v1);
  auto cols = b.CreateVector(impl_->columns);
  flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> class_seqs;
  if (numbered) class_seqs = b.CreateVector(impl_->class_seqs);
  flatbuffers::Offset<flatbuffers::String> site, gw;
  if (!h.site_id.empty()) site = b.CreateString(h.site_id);
  if (!h.gateway_id.empty()) gw = b.CreateString(h.gateway_id);
  auto env = fb2::CreateEnvelope(b, cols, v1, site, gw, class_seqs);
  b.Finish(env, fb2::EnvelopeIdentifier());
  return {b.GetBufferPointer(), b.GetSize()};
}

std::vector<std::uint8_t> encode_envelope_v2(const EnvelopeHeader& header, std::span<const model::Reading> readings) {
  EnvelopeEncoderV2 enc;
  auto bytes = enc.encode(header, readings);
  return {bytes.begin(), bytes.end()};
}

std::vector<model::Reading> v2_order(std::span<const model::Reading> readings) {
  std::vector<model::Reading> out;
  out.reserve(readings.size());
  for (const auto& g : group(readings))
    for (const auto* r : g.readings) out.push_back(*r);
  return out;
}

namespace {

// Reads one group's columns, never past their end; every error names the
// field and the reading.
class ColumnReader {
 public:
  explicit ColumnReader(const flatbuffers::Vector<std::uint8_t>& v) : p_(v.data()), end_(v.data() + v.size()) {}
  // A length-prefixed string of at most `max` bytes.
  Result<std::string_view> string(const char* what, std::size_t max) {
    auto n = varint(what, 0);
    if (!n) return Error{n.error()};
    if (*n > max) return Error{std::string(what) + " of " + std::to_string(*n) + " bytes > " + std::to_string(max)};
    if (*n > left()) return Error{std::string(what) + ": columns end inside it"};
    std::string_view s(reinterpret_cast<const char*>(p_), static_cast<std::size_t>(*n));
    p_ += *n;
    return s;
  }
  Result<std::uint64_t> varint(const char* what, std::size_t reading) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < kMaxVarintBytes; ++i) {
      if (p_ == end_) return Error{std::string(what) + ": columns end inside reading " + std::to_string(reading)};
      std::uint8_t byte = *p_++;
      if (i == kMaxVarintBytes - 1 && byte > 1) {  // also: an 11th byte would follow
        return Error{std::string(what) + ": varint of reading " + std::to_string(reading) + " overflows 64 bits"};
      }
      v |= static_cast<std::uint64_t>(byte & 0x7F) << (7 * i);
      if ((byte & 0x80) == 0) return v;
    }
    return Error{std::string(what) + ": varint of reading " + std::to_string(reading) + " overflows 64 bits"};  // not reached
  }
  Result<std::uint8_t> byte(const char* what, std::size_t reading) {
    if (p_ == end_) return Error{std::string(what) + ": columns end inside reading " + std::to_string(reading)};
    return *p_++;
  }
  std::size_t left() const { return static_cast<std::size_t>(end_ - p_); }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
};


struct GroupOut {
  std::vector<model::Reading> readings;
  std::size_t skipped_unknown = 0;
};

std::string in_group(std::size_t g, const std::string& why) { return "group " + std::to_string(g) + ": " + why; }

// Decodes group `gi` from `c`, taking its v1 tables from `v1` at `next_v1`;
// `budget_readings` and `budget_bytes` are what the limits still allow
// (decremented).
Result<GroupOut> read_group(ColumnReader& c, ColumnReader* class_seqs, std::size_t gi, std::uint64_t sent_utc_ms,
                            const flatbuffers::Vector<flatbuffers::Offset<fb1::Reading>>* v1, std::size_t& next_v1,
                            std::size_t& budget_readings, std::size_t& budget_bytes,
                            model::Priority priority) {
  auto fail = [gi](const std::string& why) { return Error{in_group(gi, why)}; };
  auto source_r = c.string("source_id", kMaxSourceIdBytes);
  if (!source_r) return fail(source_r.error());
  if (source_r->empty()) return fail("empty source_id");
  auto container_r = c.string("container_id", kMaxContainerIdBytes);
  if (!container_r) return fail(container_r.error());
  auto count_r = c.varint("count", 0);
  if (!count_r) return fail(count_r.error());
  std::uint64_t n = *count_r;
  if (n == 0) return fail("count 0");
  if (n > budget_readings) {
    return fail("count " + std::to_string(n) + " exceeds the readings limit (" + std::to_string(budget_readings) +
                " left)");
  }
  if (n > c.left()) return fail("count " + std::to_string(n) + " but only " + std::to_string(c.left()) +
                                " bytes of columns left");
  // Each reading will cost at least kDecodedReadingBytes: refuse before allocating anything.
  if (n > budget_bytes / kDecodedReadingBytes) {
    return fail("count " + std::to_string(n) + ": envelope decodes to more than the limit");
  }
  budget_readings -= n;
  const std::size_t count = static_cast<std::size_t>(n);

  std::vector<std::uint64_t> seq(count), time(count);
  std::vector<std::uint8_t> tags(count), bits(count, 0);
  auto seq0 = c.varint("seq", 0);
  if (!seq0) return fail(seq0.error());
  seq[0] = *seq0;
  auto t0 = c.varint("time_utc_ms", 0);
  if (!t0) return fail(t0.error());
  time[0] = sent_utc_ms + static_cast<std::uint64_t>(unzigzag(*t0));
  std::size_t positions = 0, sensors = 0, v1s = 0;
  for (std::size_t i = 0; i < count; ++i) {
    auto t = c.byte("tags", i);
    if (!t) return fail(t.error());
    if ((*t & kTagReserved) != 0) return fail("reading " + std::to_string(i) + ": tag has reserved bits set");
    std::uint8_t kind = *t & kKindMask;
    if (kind == kKindPosition) ++positions;
    else if (kind == kKindSensor) ++sensors;
    else if (kind == kKindV1) ++v1s;
    else return fail("reading " + std::to_string(i) + ": tag of unknown kind 3");
    tags[i] = *t;
  }
  for (std::size_t i = 1; i < count; ++i) {
    auto d = c.varint("seq", i);
    if (!d) return fail(d.error());
    seq[i] = seq[i - 1] + 1 + static_cast<std::uint64_t>(unzigzag(*d));
  }
  for (std::size_t i = 1; i < count; ++i) {
    auto d = c.varint("time_utc_ms", i);
    if (!d) return fail(d.error());
    time[i] = time[i - 1] + static_cast<std::uint64_t>(unzigzag(*d));
  }
  for (std::size_t i = 0; i < count; ++i) {
    if (seq[i] == 0 || seq[i] > model::kMaxSeq) {
      return fail("reading " + std::to_string(i) + ": seq " + std::to_string(seq[i]) + " out of range 1..2^53-1");
    }
  }
  // The group's class seqs, from their own stream (absent: all 0).
  std::vector<std::uint64_t> cs(count, 0);
  if (class_seqs != nullptr) {
    for (std::size_t i = 0; i < count; ++i) {
      auto v = class_seqs->varint("class_seqs", i);
      if (!v) return fail(v.error());
      cs[i] = i == 0 ? *v : cs[i - 1] + 1 + static_cast<std::uint64_t>(unzigzag(*v));
      if (cs[i] > model::kMaxSeq) {
        return fail("reading " + std::to_string(i) + ": class_seq " + std::to_string(cs[i]) +
                    " out of range 0..2^53-1");
      }
    }
  }
  for (std::size_t i = 0; i < count; ++i) {
    std::uint8_t kind = tags[i] & kKindMask;
    if (kind == kKindV1) continue;
    auto b = c.byte("presence", i);
    if (!b) return fail(b.error());
    if ((*b & (kind == kKindPosition ? kPosReserved : kSenReserved)) != 0) {
      return fail("reading " + std::to_string(i) + ": presence has reserved bits set");
    }
    bits[i] = *b;
  }
  // The column values, per reading and column; absent: nullopt.
  std::vector<std::array<std::optional<std::int64_t>, kColCount>> vals(count);
  for (std::size_t col = 0; col < kColCount; ++col) {
    std::int64_t prev = 0;
    for (std::size_t i = 0; i < count; ++i) {
      std::uint8_t kind = tags[i] & kKindMask;
      bool has = false;
      if (kind == kKindPosition && col <= kHdop) {
        has = col == kSpeed ? (bits[i] & kPosSpeed) : col == kHeading ? (bits[i] & kPosHeading)
              : col == kHdop ? (bits[i] & kPosHdop) : true;
      } else if (kind == kKindSensor && col >= kTemp) {
        has = (bits[i] >> (col - kTemp)) & 1;
      }
      if (!has) continue;
      auto d = c.varint(kCols[col].name, i);
      if (!d) return fail(d.error());
      std::int64_t v = sx(static_cast<std::uint64_t>(prev) + static_cast<std::uint64_t>(unzigzag(*d)));
      if (v < kCols[col].min || v > kCols[col].max) {
        return fail("reading " + std::to_string(i) + ": " + kCols[col].name + " " + std::to_string(v) +
                    " out of range " + std::to_string(kCols[col].min) + ".." + std::to_string(kCols[col].max));
      }
      vals[i][col] = v;
      prev = v;
    }
  }
  std::size_t v1_count = v1 ? v1->size() : 0;
  if (v1s > v1_count - std::min(next_v1, v1_count)) {
    return fail(std::to_string(v1s) + " readings of kind v1 but only " + std::to_string(v1_count - next_v1) +
                " v1 tables left");
  }

  GroupOut out;
  out.readings.reserve(count);
  const std::string source_id(*source_r);
  const std::string container_id(*container_r);
  for (std::size_t i = 0; i < count; ++i) {
    std::size_t cost = kDecodedReadingBytes + source_id.size() + container_id.size();
    model::Reading r;
    auto kind = tags[i] & kKindMask;
    if (kind == kKindV1) {
      const auto* t = v1->Get(static_cast<flatbuffers::uoffset_t>(next_v1++));
      if (t != nullptr && t->payload_type() > fb1::Payload::MAX) {  // a newer schema's payload kind
        ++out.skipped_unknown;
        continue;
      }
      auto why = detail::reading_problem(t, /*bounded=*/true, &cost);
      if (!why.empty()) return fail("reading " + std::to_string(i) + ": v1 table: " + why);
      auto back = detail::read_reading(t);
      if (!back) return fail("reading " + std::to_string(i) + ": v1 table: " + back.error());
      r = std::move(back).value();
      if (r.class_seq != 0) return fail("reading " + std::to_string(i) + ": v1 table has a class_seq (v2 carries it in class_seqs)");
      bool gw = (tags[i] & kTagGatewayReceive) != 0;
      if (r.source_id != source_id || r.container_id != container_id || r.seq != seq[i] || r.time_utc_ms != time[i] ||
          (r.time_source == model::TimeSource::kGatewayReceive) != gw) {
        return fail("reading " + std::to_string(i) +
                    ": v1 table's source, container, seq, time or time source differ from the group's");
      }
    } else {
      r.source_id = source_id;
      r.container_id = container_id;
      r.seq = seq[i];
      r.time_utc_ms = time[i];
      r.time_source = (tags[i] & kTagGatewayReceive) ? model::TimeSource::kGatewayReceive : model::TimeSource::kSource;
      const auto& v = vals[i];
      auto u16 = [&](Col col) {
        return v[col] ? std::optional<std::uint16_t>(static_cast<std::uint16_t>(*v[col])) : std::nullopt;
      };
      auto s16 = [&](Col col) {
        return v[col] ? std::optional<std::int16_t>(static_cast<std::int16_t>(*v[col])) : std::nullopt;
      };
      if (kind == kKindPosition) {
        model::Position p;
        p.lat_e7 = static_cast<std::int32_t>(*v[kLat]);
        p.lon_e7 = static_cast<std::int32_t>(*v[kLon]);
        p.speed_cm_s = u16(kSpeed);
        p.heading_cdeg = u16(kHeading);
        p.fix = static_cast<model::FixQuality>(*v[kFix]);
        p.satellites = static_cast<std::uint8_t>(*v[kSats]);
        p.hdop_centi = u16(kHdop);
        r.payload = p;
      } else {
        model::SensorSample s;
        s.temperature_centi_c = s16(kTemp);
        s.humidity_centi_pct = u16(kHum);
        s.shock_milli_g = u16(kShock);
        s.battery_mv = u16(kMv);
        if (v[kPct]) s.battery_pct = static_cast<std::uint8_t>(*v[kPct]);
        s.reefer_setpoint_centi_c = s16(kSetpoint);
        r.payload = s;
      }
    }
    r.class_seq = cs[i];
    if (r.class_seq > 0) r.class_priority = priority;
    if (cost > budget_bytes) return fail("reading " + std::to_string(i) + ": envelope decodes to more than the limit");
    budget_bytes -= cost;
    out.readings.push_back(std::move(r));
  }
  return out;
}

}  // namespace

Result<Envelope> decode_envelope_v2(std::span<const std::uint8_t> bytes, const DecodeLimits& limits) {
  if (bytes.size() > limits.max_bytes) {
    return Error{"envelope too large: " + std::to_string(bytes.size()) + " bytes > " +
                 std::to_string(limits.max_bytes)};
  }
  if (bytes.size() < 8 || !flatbuffers::BufferHasIdentifier(bytes.data(), fb2::EnvelopeIdentifier())) {
    return Error{"not an EPT2 envelope (missing file identifier)"};
  }
  flatbuffers::Verifier verifier(bytes.data(), bytes.size(), limits.max_depth,
                                 /*max_tables=*/limits.max_readings * 4 + 16);
  if (!fb2::VerifyEnvelopeBuffer(verifier)) return Error{"v2 envelope failed FlatBuffers verification"};
  const auto* env = fb2::GetEnvelope(bytes.data());
  Envelope out;
  out.header.schema_version = kSchemaVersionV2;
  out.header.site_id = detail::str(env->site_id());
  out.header.gateway_id = detail::str(env->gateway_id());
  if (out.header.site_id.size() > kMaxHeaderIdBytes || out.header.gateway_id.size() > kMaxHeaderIdBytes) {
    return Error{"site_id or gateway_id longer than " + std::to_string(kMaxHeaderIdBytes) + " bytes"};
  }
  std::size_t budget_bytes = limits.max_decoded_bytes;
  std::size_t header_bytes = out.header.site_id.size() + out.header.gateway_id.size();
  if (header_bytes > budget_bytes) return Error{"envelope decodes to more than the limit (header)"};
  budget_bytes -= header_bytes;
  std::size_t budget_readings = limits.max_readings;
  const auto* v1 = env->v1_readings();
  if (env->columns() == nullptr) return Error{"v2 envelope without columns"};
  ColumnReader c(*env->columns());
  auto envelope_seq = c.varint("envelope_seq", 0);
  if (!envelope_seq) return Error{envelope_seq.error()};
  auto sent = c.varint("sent_utc_ms", 0);
  if (!sent) return Error{sent.error()};
  auto priority = c.byte("priority", 0);
  if (!priority) return Error{priority.error()};
  if (*priority >= model::kPriorityCount) return Error{"priority " + std::to_string(*priority) + " unknown"};
  out.header.envelope_seq = *envelope_seq;
  out.header.sent_utc_ms = *sent;
  out.header.priority = static_cast<model::Priority>(*priority);
  auto groups = c.varint("group count", 0);
  if (!groups) return Error{groups.error()};
  if (*groups > limits.max_readings) {
    return Error{"envelope holds " + std::to_string(*groups) + " groups > limit " + std::to_string(limits.max_readings)};
  }
  std::optional<ColumnReader> class_seqs;
  if (env->class_seqs() != nullptr) class_seqs.emplace(*env->class_seqs());
  std::size_t next_v1 = 0;
  for (std::size_t g = 0; g < *groups; ++g) {
    auto got = read_group(c, class_seqs ? &*class_seqs : nullptr, g, out.header.sent_utc_ms, v1, next_v1,
                          budget_readings, budget_bytes, out.header.priority);
    if (!got) return Error{got.error()};
    out.skipped_unknown += got->skipped_unknown;
    for (auto& r : got->readings) out.readings.push_back(std::move(r));
  }
  if (c.left() != 0) return Error{std::to_string(c.left()) + " bytes after the last group"};
  if (class_seqs && class_seqs->left() != 0) {
    return Error{std::to_string(class_seqs->left()) + " bytes of class_seqs after the last group"};
  }
  if (std::size_t tables = v1 ? v1->size() : 0; next_v1 != tables) {
    return Error{std::to_string(tables) + " v1 tables but " + std::to_string(next_v1) + " readings of kind v1"};
  }
  return out;
}

Result<Envelope> decode_any_envelope(std::span<const std::uint8_t> bytes, const DecodeLimits& limits) {
  if (bytes.size() >= 8 && flatbuffers::BufferHasIdentifier(bytes.data(), fb2::EnvelopeIdentifier())) {
    return decode_envelope_v2(bytes, limits);
  }
  return decode_envelope(bytes, limits);
}

}  // namespace eport::codec
