// Bytes per reading on the wire (MQTT 3.1.1 PUBLISH: fixed header, remaining
// length, topic, packet id, payload; PUBACK separately) for one fixed mix of
// simulated readings, encoded as our envelope (by batch size), our envelope
// with zstd, one JSON message per reading, and Sparkplug B DDATA. Figures only;
// exits non-zero only if an envelope fails to decode back to its readings.
// With --rates, instead: per gateway reading rate, the envelopes the
// publisher would form at its defaults (publish.max_age_ms, max_readings,
// max_bytes of eport::uplink::PublisherOptions) and the total bytes per
// reading of v1+zstd, v2+dictionary, JSON and Sparkplug B, as a table and,
// with --csv, as CSV (scripts/bench-plots.sh plots it).
// Usage: eport-wire-bench [UNITS [READINGS_PER_UNIT]] [--rates R1,R2,... [--csv FILE]]   (default 50 200)
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "eport/codec/codec.h"
#include "eport/codec/topics.h"
#include "eport/model/reading.h"
#include "eport/uplink/publisher.h"
#include "fleet.h"
#include "sparkplug_b.pb.h"

namespace {

namespace model = eport::model;
namespace codec = eport::codec;
namespace spb = org::eclipse::tahu::protobuf;

constexpr const char* kSite = "cnsha";
constexpr const char* kGateway = "gw-yangshan-01";
// The publisher's defaults (publish.max_readings, publish.max_bytes,
// publish.max_age_ms, publish.zstd_level), owned by eport::uplink::PublisherOptions.
const eport::uplink::PublisherOptions& publish_defaults() {
  static const eport::uplink::PublisherOptions o{};
  return o;
}
const std::size_t kPublishMaxBytes = publish_defaults().max_bytes;  // stored bodies per envelope
const std::size_t kDefaultBatch = publish_defaults().max_readings;
constexpr std::size_t kPubackBytes = 4;  // fixed header 2 + packet id 2

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// ---- MQTT 3.1.1 framing ----------------------------------------------------

std::size_t varint_len(std::size_t n) {
  std::size_t len = 1;
  while (n >= 128) {
    n /= 128;
    ++len;
  }
  return len;
}

// A whole PUBLISH packet: 1 byte type/flags, the remaining length as a
// varint, then topic (2-byte length + bytes), packet id (QoS > 0), payload.
std::size_t publish_bytes(std::size_t topic_len, std::size_t payload_len, int qos) {
  std::size_t remaining = 2 + topic_len + (qos > 0 ? 2 : 0) + payload_len;
  return 1 + varint_len(remaining) + remaining;
}

// The same PUBLISH over MQTT 5 with a topic alias (mqtt.protocol_version =
// "5"): the first publish of a topic in a connection names it and sets its
// alias, every later one has an empty topic; both carry a property length
// (1 byte) and the Topic Alias property (0x23 + 2 bytes). A PUBACK of a
// success without properties is 4 bytes, as in 3.1.1 (MQTT 5, 3.4.2.1).
std::size_t publish_bytes_v5_alias(std::size_t topic_len, std::size_t payload_len, bool names_topic) {
  std::size_t remaining = 2 + (names_topic ? topic_len : 0) + 2 + 1 + 3 + payload_len;
  return 1 + varint_len(remaining) + remaining;
}

// Totals of one way of sending the readings.
struct Tally {
  std::string name;
  std::size_t readings = 0;
  std::size_t messages = 0;
  std::size_t payload = 0;
  std::size_t publish = 0;  // whole PUBLISH packets, QoS 1
  void add(std::size_t topic_len, std::size_t payload_len, std::size_t n_readings) {
    ++messages;
    readings += n_readings;
    payload += payload_len;
    publish += publish_bytes(topic_len, payload_len, 1);
  }
  // One QoS 1 PUBLISH over MQTT 5 with a topic alias (one connection).
  void add_v5_alias(std::size_t topic_len, std::size_t payload_len, std::size_t n_readings, bool names_topic) {
    ++messages;
    readings += n_readings;
    payload += payload_len;
    publish += publish_bytes_v5_alias(topic_len, payload_len, names_topic);
  }
  double per(std::size_t v) const { return static_cast<double>(v) / static_cast<double>(readings); }
  double payload_pr() const { return per(payload); }
  double publish_pr() const { return per(publish); }
  double puback_pr() const { return per(messages * kPubackBytes); }
  double total_pr() const { return per(publish + messages * kPubackBytes); }
  // Sparkplug publishes DDATA at QoS 0: no packet id, no PUBACK.
  double qos0_pr() const { return per(publish - 2 * messages); }
};

// ---- the fixed mix -----------------------------------------------------------

// Store order as the agent sees it: every unit reports every 10 s, the
// units' clocks a little apart (eport::sim::standard_mix, seed 1, units from 0).
std::vector<model::Reading> make_mix(int units, int per_unit) { return eport::sim::standard_mix(units, per_unit, 1, 0); }

// ---- our envelopes -------------------------------------------------------------

// The envelopes the publisher would send for these readings: the readings of
// one class in store order, at most `batch` readings and about
// publish.max_bytes of stored bodies each (the outbox's take()), each
// numbered in its class as the store numbers it (class_seq, schema 1.5).
struct Batch {
  model::Priority priority;
  std::vector<model::Reading> readings;
};

std::vector<Batch> batches(const std::vector<model::Reading>& mix, std::size_t batch) {
  std::vector<Batch> out;
  for (int p = model::kPriorityCount - 1; p >= 0; --p) {
    auto prio = static_cast<model::Priority>(p);
    Batch cur{prio, {}};
    std::size_t bytes = 0;
    std::map<std::string, std::uint64_t> counted;  // per source, its class_seq so far in this class
    for (const auto& r : mix) {
      if (model::default_priority(r) != prio) continue;
      std::size_t body = codec::encode_reading(r).size();
      if (!cur.readings.empty() && (cur.readings.size() >= batch || bytes + body > kPublishMaxBytes)) {
        out.push_back(std::move(cur));
        cur = Batch{prio, {}};
        bytes = 0;
      }
      cur.readings.push_back(r);
      cur.readings.back().class_seq = ++counted[r.source_id];
      cur.readings.back().class_priority = prio;
      bytes += body;
    }
    if (!cur.readings.empty()) out.push_back(std::move(cur));
  }
  return out;
}

// Readings per envelope of a gateway that keeps up with `rate` readings/s:
// the publisher sends once the first waiting reading is max_age old, so an
// envelope holds about rate x max_age readings, at most max_readings (and
// batches() caps it at publish.max_bytes). The same for every class.
std::size_t live_batch(double rate, std::chrono::milliseconds max_age, std::size_t max_readings) {
  auto n = static_cast<std::size_t>(rate * static_cast<double>(max_age.count()) / 1000.0);
  return std::min(max_readings, std::max<std::size_t>(1, n));
}

struct EnvelopeRow {
  std::size_t batch;
  Tally plain;
  std::vector<Tally> zstd;  // one per level
  Tally zstd_default;       // at publish.zstd_level's default (the agent's v1 envelopes)
};

constexpr int kLevels[] = {1, 3, 9};

bool measure_envelopes(const std::vector<model::Reading>& mix, std::size_t batch, EnvelopeRow& row) {
  row.batch = batch;
  row.plain.name = "envelope, batch " + std::to_string(batch);
  for (int level : kLevels) row.zstd.push_back(Tally{"envelope+zstd-" + std::to_string(level) + ", batch " + std::to_string(batch)});
  const int level = publish_defaults().zstd_level;
  row.zstd_default.name = "envelope+zstd-" + std::to_string(level) + ", batch " + std::to_string(batch);
  const int* measured = std::find(std::begin(kLevels), std::end(kLevels), level);
  codec::EnvelopeEncoder enc;
  std::uint64_t envelope_seq = 1000000;
  for (const auto& b : batches(mix, batch)) {
    codec::EnvelopeHeader h{kSite, kGateway, envelope_seq++, b.readings.back().time_utc_ms + 50, b.priority};
    auto bytes = enc.encode(h, b.readings);
    auto topic = codec::topics::data(kSite, kGateway, b.priority);
    row.plain.add(topic.size(), bytes.size(), b.readings.size());
    auto back = codec::decode_envelope(bytes);
    if (!back || back->readings != b.readings || back->header != h) {
      std::fprintf(stderr, "envelope of batch %zu does not decode back: %s\n", batch,
                   back ? "readings differ" : back.error().c_str());
      return false;
    }
    for (std::size_t i = 0; i < std::size(kLevels); ++i) {
      auto z = codec::compress(bytes, kLevels[i]);
      row.zstd[i].add(topic.size(), z.size(), b.readings.size());
      if (kLevels + i == measured) row.zstd_default.add(topic.size(), z.size(), b.readings.size());
      auto zb = codec::decode_payload(z);
      if (!codec::is_compressed(z) || !zb || zb->readings.size() != b.readings.size()) {
        std::fprintf(stderr, "zstd-%d envelope of batch %zu does not decode back\n", kLevels[i], batch);
        return false;
      }
    }
    if (measured == std::end(kLevels)) row.zstd_default.add(topic.size(), codec::compress(bytes, level).size(), b.readings.size());
  }
  return true;
}

// Envelope v2 (schema/telemetry_v2.fbs) of the same batches: plain, zstd-3
// without a dictionary, and zstd-3 with the v2 dictionary (what the agent
// sends with publish.envelope_format = "v2"). Each must decode back to the
// batch's readings in v2 order.
struct V2Row {
  std::size_t batch;
  Tally plain, zstd, dict, dict9;
  Tally dict_mqtt5;    // dict_default over MQTT 5 with topic aliases (one connection)
  Tally dict_default;  // with the v2 dictionary at publish.zstd_level's default: what the agent sends
};

bool measure_v2(const std::vector<model::Reading>& mix, std::size_t batch, V2Row& row) {
  row.batch = batch;
  row.plain.name = "envelope v2, batch " + std::to_string(batch);
  row.zstd.name = "envelope v2+zstd-3, batch " + std::to_string(batch);
  row.dict.name = "envelope v2+zstd-3+dictionary, batch " + std::to_string(batch);
  row.dict9.name = "envelope v2+zstd-9+dictionary, batch " + std::to_string(batch);
  const int level = publish_defaults().zstd_level;
  row.dict_default.name = "envelope v2+zstd-" + std::to_string(level) + "+dictionary, batch " + std::to_string(batch);
  row.dict_mqtt5.name = "envelope v2+zstd-" + std::to_string(publish_defaults().zstd_level) +
                        "+dictionary, MQTT 5 topic alias, batch " + std::to_string(batch);
  codec::EnvelopeEncoderV2 enc;
  std::uint64_t envelope_seq = 1000000;
  std::set<std::string> named;  // topics the connection has named (their alias set)
  for (const auto& b : batches(mix, batch)) {
    // As the publisher sends v2: the site and gateway ids only in the topic.
    codec::EnvelopeHeader h{"", "", envelope_seq++, b.readings.back().time_utc_ms + 50, b.priority};
    auto bytes = enc.encode(h, b.readings);
    auto topic = codec::topics::data(kSite, kGateway, b.priority);
    row.plain.add(topic.size(), bytes.size(), b.readings.size());
    auto z = codec::compress(bytes, 3);
    row.zstd.add(topic.size(), z.size(), b.readings.size());
    auto zd = codec::compress_v2(bytes, 3);
    row.dict.add(topic.size(), zd.size(), b.readings.size());
    row.dict9.add(topic.size(), codec::compress_v2(bytes, 9).size(), b.readings.size());
    const auto default_size = level == 3 ? zd.size() : codec::compress_v2(bytes, level).size();
    row.dict_default.add(topic.size(), default_size, b.readings.size());
    row.dict_mqtt5.add_v5_alias(topic.size(), default_size, b.readings.size(), named.insert(topic).second);
    auto expect = codec::v2_order(b.readings);
    h = codec::EnvelopeHeader{kSite, kGateway, h.envelope_seq, h.sent_utc_ms, h.priority, codec::kSchemaVersionV2};
    for (auto payload : {std::span<const std::uint8_t>(bytes), std::span<const std::uint8_t>(z),
                         std::span<const std::uint8_t>(zd)}) {
      auto back = codec::decode_payload_on(topic, payload);
      if (!back || back->readings != expect || back->header != h) {
        std::fprintf(stderr, "v2 envelope of batch %zu does not decode back: %s\n", batch,
                     back ? "readings differ" : back.error().c_str());
        return false;
      }
    }
  }
  return true;
}

// CPU nanoseconds per reading to encode the envelopes of one batch size and
// to compress them at each level: best of 5 rounds.
std::vector<double> cpu_ns_per_reading(const std::vector<model::Reading>& mix, std::size_t batch) {
  auto bs = batches(mix, batch);
  codec::EnvelopeEncoder enc;
  std::vector<std::vector<std::uint8_t>> envelopes;
  std::vector<double> best(1 + std::size(kLevels), 1e30);
  for (int round = 0; round < 5; ++round) {
    auto t = Clock::now();
    for (const auto& b : bs) {
      auto bytes = enc.encode(codec::EnvelopeHeader{kSite, kGateway, 1, b.readings.back().time_utc_ms, b.priority}, b.readings);
      if (round == 0) envelopes.emplace_back(bytes.begin(), bytes.end());
    }
    best[0] = std::min(best[0], seconds_since(t));
    for (std::size_t i = 0; i < std::size(kLevels); ++i) {
      auto tz = Clock::now();
      for (const auto& e : envelopes) (void)codec::compress(e, kLevels[i]);
      best[i + 1] = std::min(best[i + 1], seconds_since(tz));
    }
  }
  for (auto& v : best) v = v * 1e9 / static_cast<double>(mix.size());
  return best;
}

// The same for envelope v2: encode, zstd-3 with the v2 dictionary, and
// decoding (decompress + decode_envelope_v2) next to v1's decode_payload.
struct V2Cpu {
  double encode = 1e30, compress = 1e30, decode = 1e30, decode_v1 = 1e30;
};
V2Cpu cpu_ns_per_reading_v2(const std::vector<model::Reading>& mix, std::size_t batch) {
  auto bs = batches(mix, batch);
  codec::EnvelopeEncoder enc1;
  codec::EnvelopeEncoderV2 enc2;
  std::vector<std::vector<std::uint8_t>> v1z, v2, v2z;
  for (const auto& b : bs) {
    codec::EnvelopeHeader h{kSite, kGateway, 1, b.readings.back().time_utc_ms, b.priority};
    auto one = enc1.encode(h, b.readings);
    v1z.push_back(codec::compress(one, 3));
    auto two = enc2.encode(codec::EnvelopeHeader{"", "", 1, h.sent_utc_ms, b.priority}, b.readings);
    v2.emplace_back(two.begin(), two.end());
  }
  V2Cpu best;
  for (int round = 0; round < 5; ++round) {
    auto t = Clock::now();
    for (const auto& b : bs) (void)enc2.encode(codec::EnvelopeHeader{"", "", 1, b.readings.back().time_utc_ms, b.priority}, b.readings);
    best.encode = std::min(best.encode, seconds_since(t));
    t = Clock::now();
    v2z.clear();
    for (const auto& e : v2) v2z.push_back(codec::compress_v2(e, 3));
    best.compress = std::min(best.compress, seconds_since(t));
    t = Clock::now();
    for (const auto& z : v2z) (void)codec::decode_payload(z);
    best.decode = std::min(best.decode, seconds_since(t));
    t = Clock::now();
    for (const auto& z : v1z) (void)codec::decode_payload(z);
    best.decode_v1 = std::min(best.decode_v1, seconds_since(t));
  }
  for (double* v : {&best.encode, &best.compress, &best.decode, &best.decode_v1}) *v = *v * 1e9 / static_cast<double>(mix.size());
  return best;
}

// Envelope v2 with the dictionary at each zstd level, one batch size: total
// B/reading on the wire (MQTT 3.1.1) and compression CPU ns/reading (best of
// 5), to choose publish.zstd_level for the busy gateway.
struct V2Level {
  int level;
  double total_pr, ns;
};
std::vector<V2Level> v2_by_level(const std::vector<model::Reading>& mix, std::size_t batch) {
  auto bs = batches(mix, batch);
  codec::EnvelopeEncoderV2 enc;
  std::vector<std::vector<std::uint8_t>> v2;
  std::vector<std::string> topics;
  for (const auto& b : bs) {
    auto e = enc.encode(codec::EnvelopeHeader{"", "", 1000000, b.readings.back().time_utc_ms + 50, b.priority}, b.readings);
    v2.emplace_back(e.begin(), e.end());
    topics.push_back(codec::topics::data(kSite, kGateway, b.priority));
  }
  std::vector<V2Level> out;
  for (int level = 1; level <= 12; ++level) {
    Tally t;
    double best = 1e30;
    for (int round = 0; round < 5; ++round) {
      auto start = Clock::now();
      std::vector<std::size_t> sizes;
      for (const auto& e : v2) sizes.push_back(codec::compress_v2(e, level).size());
      best = std::min(best, seconds_since(start));
      if (round == 0)
        for (std::size_t i = 0; i < v2.size(); ++i) t.add(topics[i].size(), sizes[i], bs[i].readings.size());
    }
    out.push_back({level, t.total_pr(), best * 1e9 / static_cast<double>(mix.size())});
  }
  return out;
}

// ---- JSON, one message per reading ---------------------------------------------

Tally measure_json(const std::vector<model::Reading>& mix) {
  Tally t{"JSON, 1 message per reading"};
  const std::string prefix = std::string(codec::topics::kRoot) + "/" + kSite + "/" + kGateway + "/";
  for (const auto& r : mix) {
    auto payload = codec::reading_to_json(r);
    auto topic = prefix + r.source_id + "/json";
    t.add(topic.size(), payload.size(), 1);
  }
  return t;
}

// ---- Sparkplug B DDATA, one message per reading ----------------------------------

enum class SpMode { kNames, kAliases, kAliasesNoMetricTime };

// One tag per field of a reading; the alias is its index here (bound by the DBIRTH).
struct Tag {
  const char* name;
  spb::DataType type;
};
constexpr Tag kTags[] = {
    {"seq", spb::UInt64},           {"lat_e7", spb::Int32},         {"lon_e7", spb::Int32},
    {"speed_cm_s", spb::UInt16},    {"heading_cdeg", spb::UInt16},  {"fix", spb::UInt8},
    {"satellites", spb::UInt8},     {"hdop_centi", spb::UInt16},    {"seal_id", spb::String},
    {"seal_state", spb::UInt8},     {"door_state", spb::UInt8},     {"temperature_centi_c", spb::Int16},
    {"humidity_centi_pct", spb::UInt16}, {"shock_milli_g", spb::UInt16}, {"battery_mv", spb::UInt16},
    {"battery_pct", spb::UInt8},    {"reefer_setpoint_centi_c", spb::Int16},
};
std::size_t tag_index(std::string_view name) {
  for (std::size_t i = 0; i < std::size(kTags); ++i)
    if (name == kTags[i].name) return i;
  std::abort();
}

class SparkplugWriter {
 public:
  SparkplugWriter(SpMode mode, bool birth) : mode_(mode), birth_(birth) {}

  void begin(std::uint64_t payload_time_ms, std::uint64_t seq) {
    p_.Clear();
    p_.set_timestamp(payload_time_ms);
    p_.set_seq(seq);
  }
  // Int8..Int32 go into the uint32 int_value as two's complement (as Tahu does).
  void i32(const char* name, std::int32_t v, std::uint64_t t) { metric(name, t)->set_int_value(static_cast<std::uint32_t>(v)); }
  void u32(const char* name, std::uint32_t v, std::uint64_t t) { metric(name, t)->set_int_value(v); }
  void u64(const char* name, std::uint64_t v, std::uint64_t t) { metric(name, t)->set_long_value(v); }
  void str(const char* name, const std::string& v, std::uint64_t t) { metric(name, t)->set_string_value(v); }
  std::string bytes() const { return p_.SerializeAsString(); }
  spb::Payload& payload() { return p_; }

 private:
  spb::Payload::Metric* metric(const char* name, std::uint64_t t) {
    auto* m = p_.add_metrics();
    std::size_t i = tag_index(name);
    if (birth_) {  // DBIRTH: name, alias, datatype, timestamp
      m->set_name(name);
      m->set_alias(i);
      m->set_datatype(static_cast<std::uint32_t>(kTags[i].type));
      m->set_timestamp(t);
      return m;
    }
    if (mode_ == SpMode::kNames)
      m->set_name(name);
    else
      m->set_alias(i);
    if (mode_ != SpMode::kAliasesNoMetricTime) m->set_timestamp(t);  // Sparkplug 3.0: every metric in DDATA
    return m;
  }
  SpMode mode_;
  bool birth_;
  spb::Payload p_;
};

// The fields of one reading as metrics. The container id is a static
// attribute of the device: it goes in the DBIRTH, not in every DDATA.
void reading_metrics(SparkplugWriter& w, const model::Reading& r) {
  auto t = r.time_utc_ms;
  w.u64("seq", r.seq, t);
  std::visit(
      [&](const auto& p) {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, model::Position>) {
          w.i32("lat_e7", p.lat_e7, t);
          w.i32("lon_e7", p.lon_e7, t);
          if (p.speed_cm_s) w.u32("speed_cm_s", *p.speed_cm_s, t);
          if (p.heading_cdeg) w.u32("heading_cdeg", *p.heading_cdeg, t);
          w.u32("fix", static_cast<std::uint32_t>(p.fix), t);
          w.u32("satellites", p.satellites, t);
          if (p.hdop_centi) w.u32("hdop_centi", *p.hdop_centi, t);
        } else if constexpr (std::is_same_v<T, model::SealEvent>) {
          w.str("seal_id", p.seal_id, t);
          w.u32("seal_state", static_cast<std::uint32_t>(p.state), t);
        } else if constexpr (std::is_same_v<T, model::DoorEvent>) {
          w.u32("door_state", static_cast<std::uint32_t>(p.state), t);
        } else if constexpr (std::is_same_v<T, model::SequenceGap>) {
          w.u64("gap_first_seq", p.first_seq, t);
          w.u32("gap_reason", static_cast<std::uint32_t>(p.reason), t);
        } else if constexpr (std::is_same_v<T, model::CustodyEvent>) {
          w.u32("event_code", static_cast<std::uint32_t>(p.code), t);
          w.str("event_subject", p.subject_id, t);
          w.u64("event_caused_by_seq", p.caused_by_seq, t);
          if (!p.zone_id.empty()) w.str("event_zone", p.zone_id, t);
        } else if constexpr (std::is_same_v<T, model::EvidenceCheckpoint>) {
          w.u64("evidence_n", p.n, t);
        } else {
          if (p.temperature_centi_c) w.i32("temperature_centi_c", *p.temperature_centi_c, t);
          if (p.humidity_centi_pct) w.u32("humidity_centi_pct", *p.humidity_centi_pct, t);
          if (p.shock_milli_g) w.u32("shock_milli_g", *p.shock_milli_g, t);
          if (p.battery_mv) w.u32("battery_mv", *p.battery_mv, t);
          if (p.battery_pct) w.u32("battery_pct", *p.battery_pct, t);
          if (p.reefer_setpoint_centi_c) w.i32("reefer_setpoint_centi_c", *p.reefer_setpoint_centi_c, t);
        }
      },
      r.payload);
}

std::string sparkplug_topic(const char* type, const std::string& device) {
  return std::string("spBv1.0/") + kSite + "/" + type + "/" + kGateway + "/" + device;
}

bool measure_sparkplug(const std::vector<model::Reading>& mix, SpMode mode, Tally& t) {
  t.name = mode == SpMode::kNames     ? "Sparkplug B DDATA, metric names"
           : mode == SpMode::kAliases ? "Sparkplug B DDATA, aliases"
                                      : "Sparkplug B DDATA, aliases, no metric time";
  SparkplugWriter w(mode, false);
  std::uint64_t seq = 0;  // per edge node, 0..255
  for (const auto& r : mix) {
    w.begin(r.time_utc_ms + 50, seq);
    seq = (seq + 1) % 256;
    reading_metrics(w, r);
    auto bytes = w.bytes();
    spb::Payload back;
    if (!back.ParseFromString(bytes) || back.metrics_size() != w.payload().metrics_size()) {
      std::fprintf(stderr, "Sparkplug payload does not parse back\n");
      return false;
    }
    t.add(sparkplug_topic("DDATA", r.source_id).size(), bytes.size(), 1);
  }
  return true;
}

// What a DBIRTH costs once per device and session (every tag a unit can have,
// with name, alias, datatype, timestamp and a value; the container id as a
// String metric). Not counted per reading.
std::size_t dbirth_bytes(const model::Reading& r) {
  SparkplugWriter w(SpMode::kAliases, true);
  w.begin(r.time_utc_ms, 0);
  for (const auto& tag : kTags) {
    if (tag.type == spb::String)
      w.str(tag.name, "SL00000000", r.time_utc_ms);
    else if (tag.type == spb::UInt64)
      w.u64(tag.name, 0, r.time_utc_ms);
    else
      w.u32(tag.name, 0, r.time_utc_ms);
  }
  auto* c = w.payload().add_metrics();
  c->set_name("container_id");
  c->set_datatype(spb::String);
  c->set_timestamp(r.time_utc_ms);
  c->set_string_value(r.container_id);
  auto topic = sparkplug_topic("DBIRTH", r.source_id);
  return publish_bytes(topic.size(), w.bytes().size(), 0);
}

// ---- output ------------------------------------------------------------------------

void print_row(const Tally& t, double json_total) {
  std::printf("| %-44s | %9zu | %8.1f | %8.1f | %8.1f | %8.1f | %7.2f | %8.1f | %6.3f |\n", t.name.c_str(), t.messages,
              static_cast<double>(t.readings) / static_cast<double>(t.messages), t.payload_pr(),
              t.publish_pr() - t.payload_pr(), t.publish_pr(), t.puback_pr(), t.total_pr(), t.total_pr() / json_total);
}

// ---- by reading rate (--rates) ------------------------------------------------------

// Comma-separated positive numbers; empty on any other text.
std::vector<double> parse_rates(std::string_view s) {
  std::vector<double> out;
  while (!s.empty()) {
    auto comma = s.find(',');
    auto item = s.substr(0, comma);
    double v = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (ec != std::errc() || end != item.data() + item.size() || !(v > 0) || v > 1e9) return {};
    out.push_back(v);
    s = comma == std::string_view::npos ? std::string_view() : s.substr(comma + 1);
  }
  return out;
}

// A gateway receiving `rate` readings/s of the mix, the publisher at its
// defaults: the envelopes of live_batch(rate, max_age, max_readings) per
// class (as Table 1b and the issue 16 cases), total B/reading (PUBLISH +
// PUBACK) of each format. JSON and Sparkplug B send one message per reading
// whatever the rate.
int run_rates(const std::vector<model::Reading>& mix, const std::vector<double>& rates, const std::string& csv) {
  const auto& d = publish_defaults();
  Tally json = measure_json(mix);
  std::vector<Tally> sp(3);
  if (!measure_sparkplug(mix, SpMode::kNames, sp[0]) || !measure_sparkplug(mix, SpMode::kAliases, sp[1]) ||
      !measure_sparkplug(mix, SpMode::kAliasesNoMetricTime, sp[2]))
    return 1;
  std::FILE* out = nullptr;
  if (!csv.empty()) {
    out = std::fopen(csv.c_str(), "w");
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", csv.c_str());
      return 1;
    }
    std::fprintf(out, "# eport-wire-bench --rates, %zu readings: publisher defaults max_age_ms=%lld max_readings=%zu "
                      "max_bytes=%zu zstd_level=%d envelope_format=v%d compression=%s; total B/reading (PUBLISH + "
                      "PUBACK, QoS 1)\n",
                 mix.size(), static_cast<long long>(d.max_age.count()), d.max_readings, d.max_bytes, d.zstd_level,
                 static_cast<int>(d.envelope_format), d.compression == eport::uplink::Compression::kZstd ? "zstd" : "none");
    std::fprintf(out, "rate,readings_per_envelope,envelopes,v1,v1_zstd,v2,v2_dict,json,sparkplug_names,"
                      "sparkplug_aliases,sparkplug_aliases_no_metric_time,v2_dict_mqtt5\n");
  }
  std::printf("By reading rate, publisher defaults (publish.max_age_ms = %lld, publish.max_readings = %zu, "
              "publish.max_bytes = %zu, zstd level %d): total B/reading (PUBLISH + PUBACK)\n",
              static_cast<long long>(d.max_age.count()), d.max_readings, d.max_bytes, d.zstd_level);
  std::printf("| readings/s | readings/env | envelopes | v1 | v1+zstd-%d | v2 | v2+zstd-%d+dictionary | JSON | "
              "Sparkplug B, names | Sparkplug B, aliases | Sparkplug B, aliases, no metric time | v2+dictionary, MQTT 5 "
              "topic alias |\n",
              d.zstd_level, d.zstd_level);
  std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (double rate : rates) {
    std::size_t b = live_batch(rate, d.max_age, d.max_readings);
    EnvelopeRow r1;
    V2Row r2;
    if (!measure_envelopes(mix, b, r1) || !measure_v2(mix, b, r2)) {
      if (out) std::fclose(out);
      return 1;
    }
    double per_env = static_cast<double>(r1.plain.readings) / static_cast<double>(r1.plain.messages);
    std::printf("| %g | %.1f | %zu | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |\n", rate, per_env,
                r1.plain.messages, r1.plain.total_pr(), r1.zstd_default.total_pr(), r2.plain.total_pr(),
                r2.dict_default.total_pr(), json.total_pr(), sp[0].total_pr(), sp[1].total_pr(), sp[2].total_pr(),
                r2.dict_mqtt5.total_pr());
    if (out)
      std::fprintf(out, "%g,%.2f,%zu,%.2f,%.2f,%.2f,%.2f,%.2f,%.2f,%.2f,%.2f,%.2f\n", rate, per_env, r1.plain.messages,
                   r1.plain.total_pr(), r1.zstd_default.total_pr(), r2.plain.total_pr(), r2.dict_default.total_pr(),
                   json.total_pr(), sp[0].total_pr(), sp[1].total_pr(), sp[2].total_pr(), r2.dict_mqtt5.total_pr());
  }
  if (out && std::fclose(out) != 0) {
    std::fprintf(stderr, "cannot write %s\n", csv.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  GOOGLE_PROTOBUF_VERIFY_VERSION;
  int units = 50;
  int per_unit = 200;
  std::vector<double> rates;
  std::string csv;
  bool bad = false;
  int positional = 0;
  for (int i = 1; i < argc && !bad; ++i) {
    std::string_view a = argv[i];
    if (a == "--rates" && i + 1 < argc) {
      rates = parse_rates(argv[++i]);
      bad = rates.empty();
    } else if (a == "--csv" && i + 1 < argc) {
      csv = argv[++i];
    } else if (!a.starts_with("--") && positional < 2) {
      (positional++ == 0 ? units : per_unit) = std::atoi(argv[i]);
    } else {
      bad = true;
    }
  }
  if (bad || (!csv.empty() && rates.empty()) || units < 1 || units > 100000 || per_unit < 1 || per_unit > 100000) {
    std::fprintf(stderr, "usage: eport-wire-bench [UNITS [READINGS_PER_UNIT]] [--rates R1,R2,... [--csv FILE]]\n");
    return 2;
  }
  auto mix = make_mix(units, per_unit);
  std::map<std::string, std::size_t> kinds;
  std::map<std::string, std::size_t> classes;
  for (const auto& r : mix) {
    ++kinds[std::string(model::kind_name(model::kind_of(r.payload)))];
    ++classes[std::string(model::priority_name(model::default_priority(r)))];
  }
  std::printf("eport-wire-bench: %zu readings from %d simulated units x %d readings (eport-sim's generator, seed 1)\n",
              mix.size(), units, per_unit);
  std::printf("  kinds:");
  for (auto& [k, n] : kinds) std::printf(" %s %zu", k.c_str(), n);
  std::printf("; classes:");
  for (auto& [k, n] : classes) std::printf(" %s %zu", k.c_str(), n);
  std::printf("\n  wire = MQTT 3.1.1 PUBLISH at QoS 1 (fixed header + remaining length + topic + packet id + payload);"
              " PUBACK (4 B per message) shown apart; TCP/IP and TLS overhead not counted\n\n");
  if (!rates.empty()) {
    int rc = run_rates(mix, rates, csv);
    google::protobuf::ShutdownProtobufLibrary();
    return rc;
  }

  Tally json = measure_json(mix);
  const double json_total = json.total_pr();

  // Table 1: envelope size against batch size.
  const std::size_t kBatches[] = {1, 10, 50, 100, 200, 500, 1000};
  std::vector<EnvelopeRow> rows;
  for (auto b : kBatches) {
    EnvelopeRow row;
    if (!measure_envelopes(mix, b, row)) return 1;
    rows.push_back(std::move(row));
  }
  std::printf("Envelope bytes per reading by batch size (publish.max_readings; publish.max_bytes = %zu caps an envelope at"
              " about that much of stored readings)\n",
              kPublishMaxBytes);
  std::printf("| max_readings | envelopes | readings/env | payload B/rdg | PUBLISH B/rdg | +PUBACK | total B/rdg | zstd-1 "
              "total | zstd-3 total | zstd-9 total | total vs JSON | zstd-3 vs JSON |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& r : rows) {
    std::printf("| %zu | %zu | %.1f | %.1f | %.1f | %.2f | %.1f | %.1f | %.1f | %.1f | %.3f | %.3f |\n", r.batch,
                r.plain.messages, static_cast<double>(r.plain.readings) / static_cast<double>(r.plain.messages),
                r.plain.payload_pr(), r.plain.publish_pr(), r.plain.puback_pr(), r.plain.total_pr(),
                r.zstd[0].total_pr(), r.zstd[1].total_pr(), r.zstd[2].total_pr(), r.plain.total_pr() / json_total,
                r.zstd[1].total_pr() / json_total);
  }
  // The knee: the smallest batch within 10% of the best total (with and without zstd-3).
  double best = 1e9, best_z = 1e9;
  for (const auto& r : rows) {
    best = std::min(best, r.plain.total_pr());
    best_z = std::min(best_z, r.zstd[1].total_pr());
  }
  std::size_t knee = 0, knee_z = 0;
  for (const auto& r : rows) {
    if (!knee && r.plain.total_pr() <= best * 1.10) knee = r.batch;
    if (!knee_z && r.zstd[1].total_pr() <= best_z * 1.10) knee_z = r.batch;
  }
  std::printf("smallest batch within 10%% of the best bytes/reading: %zu uncompressed (best %.1f B), %zu with zstd-3 "
              "(best %.1f B)\n\n",
              knee, best, knee_z, best_z);

  // Table 1b: live traffic. A gateway that is keeping up sends an envelope
  // when publish.max_age_ms has passed since the first waiting reading, so
  // an envelope holds about (telemetry readings/s x max_age) readings.
  const double kRates[] = {10, 50, 500};
  const int kAges[] = {200, 1000, 2000, 5000, 10000};
  std::printf("Live traffic: zstd-3 total B/reading (readings per envelope) by publish.max_age_ms and the gateway's "
              "reading rate\n| max_age_ms |");
  for (double r : kRates) std::printf(" %.0f readings/s |", r);
  std::printf("\n|---:|");
  for (std::size_t i = 0; i < std::size(kRates); ++i) std::printf("---:|");
  std::printf("\n");
  for (int age : kAges) {
    std::printf("| %d |", age);
    for (double rate : kRates) {
      auto b = live_batch(rate, std::chrono::milliseconds(age), kDefaultBatch);
      EnvelopeRow row;
      if (!measure_envelopes(mix, b, row)) return 1;
      std::printf(" %.1f (%zu) |", row.zstd[1].total_pr(), b);
    }
    std::printf("\n");
  }
  std::printf("\n");

  // Table 1c: envelope v2 next to v1, same batches, same run.
  std::printf("Envelope v2 next to v1: total B/reading (PUBLISH + PUBACK), same readings, same run\n");
  std::printf("| max_readings | readings/env | v1 | v1+zstd-3 | v2 | v2+zstd-3 | v2+zstd-3+dictionary | v2+dict vs v1+zstd-3 | v2+dict, MQTT 5 alias |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  std::map<std::size_t, double> v2_total, v2_total9, v2_total5;  // v2_total: at the default level
  for (const auto& r : rows) {
    V2Row v;
    if (!measure_v2(mix, r.batch, v)) return 1;
    v2_total[r.batch] = v.dict_default.total_pr();
    v2_total9[r.batch] = v.dict9.total_pr();
    v2_total5[r.batch] = v.dict_mqtt5.total_pr();
    std::printf("| %zu | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.3f | %.1f |\n", r.batch,
                static_cast<double>(r.plain.readings) / static_cast<double>(r.plain.messages), r.plain.total_pr(),
                r.zstd[1].total_pr(), v.plain.total_pr(), v.zstd.total_pr(), v.dict.total_pr(),
                v.dict.total_pr() / r.zstd[1].total_pr(), v.dict_mqtt5.total_pr());
  }
  // The three cases of issue 16: a lone reading, a quiet gateway (10
  // readings/s, max_age_ms 1000: 10 per envelope), a busy one (500).
  struct Case {
    const char* name;
    std::size_t batch;
    double goal;
  };
  const Case kCases[] = {{"1 reading per envelope (lone unit, alarm)", 1, 100},
                         {"quiet gateway, 10 readings/s, max_age_ms 1000",
                          live_batch(10, std::chrono::milliseconds(1000), kDefaultBatch), 25},
                         {"busy gateway, 500 readings per envelope", 500, 12}};
  std::printf("\nIssue 16 goals, total B/reading on the wire (v2 at publish.zstd_level's default, %d):\n| case | v1 (none) | "
              "v1+zstd-3 | v2+dictionary | goal | met | v2+zstd-9+dictionary | v2+dictionary, MQTT 5 alias | met |\n"
              "|---|---:|---:|---:|---:|---|---:|---:|---|\n",
              publish_defaults().zstd_level);
  for (const auto& c : kCases) {
    const EnvelopeRow* r1 = nullptr;
    for (const auto& r : rows)
      if (r.batch == c.batch) r1 = &r;
    double v2 = v2_total.at(c.batch);
    double v5 = v2_total5.at(c.batch);
    std::printf("| %s | %.1f | %.1f | %.1f | %.0f | %s | %.1f | %.1f | %s |\n", c.name, r1->plain.total_pr(),
                r1->zstd[1].total_pr(), v2, c.goal, v2 <= c.goal ? "yes" : "NO", v2_total9.at(c.batch), v5,
                v5 <= c.goal ? "yes" : "NO");
  }
  std::printf("\n");

  // Table 2: every format, the envelope at the default batch size.
  std::vector<Tally> sp(3);
  if (!measure_sparkplug(mix, SpMode::kNames, sp[0]) || !measure_sparkplug(mix, SpMode::kAliases, sp[1]) ||
      !measure_sparkplug(mix, SpMode::kAliasesNoMetricTime, sp[2]))
    return 1;
  const EnvelopeRow* def = nullptr;
  for (const auto& r : rows)
    if (r.batch == kDefaultBatch) def = &r;
  std::printf("Every format, same %zu readings (envelope v1 at publish.max_readings = %zu, the default; zstd levels 1, 3 "
              "and 9; the agent's default level is %d)\n",
              mix.size(), kDefaultBatch, publish_defaults().zstd_level);
  std::printf("| %-44s | %9s | %8s | %8s | %8s | %8s | %7s | %8s | %6s |\n", "format", "messages", "rdg/msg", "payload",
              "framing", "PUBLISH", "PUBACK", "total", "vs JSON");
  std::printf("|%s|---:|---:|---:|---:|---:|---:|---:|---:|\n", std::string(46, '-').c_str());
  print_row(def->plain, json_total);
  for (const auto& z : def->zstd) print_row(z, json_total);
  print_row(json, json_total);
  for (const auto& s : sp) print_row(s, json_total);
  std::printf("(bytes per reading; framing = PUBLISH minus payload; total = PUBLISH + PUBACK)\n");
  auto ns = cpu_ns_per_reading(mix, kDefaultBatch);
  std::printf("CPU per reading on this machine (batch %zu, best of 5): encode %.0f ns; zstd level 1 %.0f ns, level 3 %.0f "
              "ns, level 9 %.0f ns\n",
              kDefaultBatch, ns[0], ns[1], ns[2], ns[3]);
  auto v2ns = cpu_ns_per_reading_v2(mix, kDefaultBatch);
  std::printf("Envelope v2, same batches: encode %.0f ns, zstd level 3 with the v2 dictionary %.0f ns; decoding "
              "(decompress + verify + decode) v2 %.0f ns, v1 %.0f ns\n",
              v2ns.encode, v2ns.compress, v2ns.decode, v2ns.decode_v1);
  std::printf("\nEnvelope v2 with the dictionary by zstd level (publish.zstd_level), batch %zu: total B/reading "
              "(MQTT 3.1.1) and compression CPU per reading (best of 5)\n| level | B/reading | ns/reading |\n|---:|---:|---:|\n",
              kDefaultBatch);
  for (const auto& l : v2_by_level(mix, kDefaultBatch)) std::printf("| %d | %.2f | %.0f |\n", l.level, l.total_pr, l.ns);
  std::printf("\n");
  std::printf("Sparkplug B: metric timestamps are required in DDATA by Sparkplug 3.0; the last row leaves them out to show "
              "the format's floor. The specification publishes DDATA at QoS 0 (at-most-once): then %.1f / %.1f / %.1f B "
              "per reading. A DBIRTH (once per unit and session, not counted) is %zu B.\n",
              sp[0].qos0_pr(), sp[1].qos0_pr(), sp[2].qos0_pr(), dbirth_bytes(mix.front()));
  double ratio = def->plain.total_pr() / json_total;
  double ratio_z = def->zstd[1].total_pr() / json_total;
  std::printf("\ngoal (issue 5): at most 1/5 of JSON per reading, on the wire. Envelope v1 (publish.compression = "
              "zstd, level 3, batch %zu): %.3f of JSON (1/%.1f) %s; without compression: %.3f (1/%.1f) %s\n",
              kDefaultBatch, ratio_z, 1.0 / ratio_z, ratio_z <= 0.2 ? "met" : "NOT met", ratio, 1.0 / ratio,
              ratio <= 0.2 ? "met" : "NOT met");
  google::protobuf::ShutdownProtobufLibrary();
  return 0;
}
