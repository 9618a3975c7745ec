// FlatBuffers encoding and verified decoding of readings and envelopes
// (schema/telemetry.fbs), and their JSON rendering.
#include "eport/codec/codec.h"

#include "eport/codec/command.h"

#include <flatbuffers/flatbuffers.h>

#include <cstdio>

#include "eport/json/json.h"
#include "eport/schema/telemetry_generated.h"
#include "v1_reading.h"

namespace eport::codec {
namespace fb = eport::telemetry::v1;

static_assert(sizeof(model::Reading) <= kDecodedReadingBytes, "DecodeLimits undercounts a decoded reading");

// The v1 Reading table's encoding and checks, shared with envelope v2
// (v1_reading.h), which carries its rare payload kinds as v1 Readings.
namespace detail {

template <class T>
flatbuffers::Optional<T> to_fb(const std::optional<T>& v) {
  return v ? flatbuffers::Optional<T>(*v) : flatbuffers::nullopt;
}

template <class T>
std::optional<T> from_fb(const flatbuffers::Optional<T>& v) {
  return v.has_value() ? std::optional<T>(*v) : std::nullopt;
}

// Strings repeat across the readings of an envelope (unit and container ids):
// CreateSharedString stores each distinct one once.
flatbuffers::Offset<fb::Reading> build_reading(flatbuffers::FlatBufferBuilder& b, const model::Reading& r) {
  auto source = b.CreateSharedString(r.source_id);
  flatbuffers::Offset<flatbuffers::String> container;
  if (!r.container_id.empty()) container = b.CreateSharedString(r.container_id);

  fb::Payload type = fb::Payload::NONE;
  flatbuffers::Offset<void> payload;
  std::visit(
      [&](const auto& p) {
        using P = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<P, model::Position>) {
          type = fb::Payload::Position;
          payload = fb::CreatePosition(b, p.lat_e7, p.lon_e7, to_fb(p.speed_cm_s), to_fb(p.heading_cdeg),
                                       static_cast<fb::FixQuality>(p.fix), p.satellites, to_fb(p.hdop_centi))
                        .Union();
        } else if constexpr (std::is_same_v<P, model::SealEvent>) {
          type = fb::Payload::SealEvent;
          auto seal_id = b.CreateSharedString(p.seal_id);
          payload = fb::CreateSealEvent(b, seal_id, static_cast<fb::SealState>(p.state)).Union();
        } else if constexpr (std::is_same_v<P, model::DoorEvent>) {
          type = fb::Payload::DoorEvent;
          payload = fb::CreateDoorEvent(b, static_cast<fb::DoorState>(p.state)).Union();
        } else if constexpr (std::is_same_v<P, model::SequenceGap>) {
          type = fb::Payload::SequenceGap;
          payload = fb::CreateSequenceGap(b, p.first_seq, static_cast<fb::GapReason>(p.reason)).Union();
        } else if constexpr (std::is_same_v<P, model::CustodyEvent>) {
          type = fb::Payload::CustodyEvent;
          auto subject = b.CreateSharedString(p.subject_id);
          auto optional_string = [&b](const std::string& s) {
            return s.empty() ? flatbuffers::Offset<flatbuffers::String>() : b.CreateSharedString(s);
          };
          auto zone = optional_string(p.zone_id);
          auto seal = optional_string(p.seal_id);
          auto expected = optional_string(p.expected_seal_id);
          auto command = optional_string(p.command_id);
          payload = fb::CreateCustodyEvent(b, static_cast<fb::EventCode>(p.code), subject, p.first_seq,
                                           p.caused_by_seq, zone, to_fb(p.lat_e7), to_fb(p.lon_e7), p.interpolated,
                                           p.ended_by_gap, to_fb(p.temperature_centi_c), to_fb(p.setpoint_centi_c),
                                           to_fb(p.band_low_centi_c), to_fb(p.band_high_centi_c),
                                           to_fb(p.duration_ms), seal, expected,
                                           static_cast<fb::SealClass>(p.seal_class), command)
                        .Union();
        } else if constexpr (std::is_same_v<P, model::EvidenceCheckpoint>) {
          type = fb::Payload::EvidenceCheckpoint;
          auto cose = b.CreateVector(p.cose);
          payload = fb::CreateEvidenceCheckpoint(b, cose, p.n, static_cast<fb::EvidenceCheck>(p.check)).Union();
        } else {
          type = fb::Payload::SensorSample;
          payload = fb::CreateSensorSample(b, to_fb(p.temperature_centi_c), to_fb(p.humidity_centi_pct),
                                           to_fb(p.shock_milli_g), to_fb(p.battery_mv), to_fb(p.battery_pct),
                                           to_fb(p.reefer_setpoint_centi_c))
                        .Union();
        }
      },
      r.payload);
  return fb::CreateReading(b, source, container, r.seq, r.time_utc_ms, type, payload,
                           static_cast<fb::TimeSource>(r.time_source), r.class_seq);
}

std::string str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

const char* payload_name(fb::Payload t) {
  return t <= fb::Payload::MAX ? fb::EnumNamePayload(t) : "?";
}

// Everything in a reading that decoding relies on, checked without copying:
// the source_id, the payload's table for a known payload_type (the Verifier
// accepts an absent table), and with `bounded` (envelopes from outside) the
// id lengths. On success, *cost is what copying it costs (DecodeLimits).
std::string reading_problem(const fb::Reading* in, bool bounded, std::size_t* cost) {
  if (in == nullptr) return "null reading";
  const auto* source = in->source_id();
  if (source == nullptr || source->size() == 0) return "reading without source_id";
  std::size_t bytes = kDecodedReadingBytes + source->size();
  if (bounded && source->size() > kMaxSourceIdBytes) {
    return "source_id of " + std::to_string(source->size()) + " bytes > " + std::to_string(kMaxSourceIdBytes);
  }
  if (const auto* container = in->container_id()) {
    if (bounded && container->size() > kMaxContainerIdBytes) {
      return "container_id of " + std::to_string(container->size()) + " bytes > " +
             std::to_string(kMaxContainerIdBytes);
    }
    bytes += container->size();
  }
  if (bounded && in->class_seq() > model::kMaxSeq) {
    return "class_seq " + std::to_string(in->class_seq()) + " > 2^53-1";
  }
  auto type = in->payload_type();
  if (type == fb::Payload::NONE || type > fb::Payload::MAX) {
    return "unknown or missing payload type " + std::to_string(static_cast<int>(type));
  }
  if (in->payload() == nullptr) {
    return std::string("payload type ") + std::to_string(static_cast<int>(type)) + " (" + payload_name(type) +
           ") without its table";
  }
  if (type == fb::Payload::SealEvent) {
    if (const auto* seal = in->payload_as_SealEvent()->seal_id()) {
      if (bounded && seal->size() > kMaxSealIdBytes) {
        return "seal_id of " + std::to_string(seal->size()) + " bytes > " + std::to_string(kMaxSealIdBytes);
      }
      bytes += seal->size();
    }
  }
  if (type == fb::Payload::CustodyEvent) {
    const auto* e = in->payload_as_CustodyEvent();
    if (const auto* subject = e->subject_id()) {
      if (bounded && subject->size() > kMaxSubjectIdBytes) {
        return "subject_id of " + std::to_string(subject->size()) + " bytes > " + std::to_string(kMaxSubjectIdBytes);
      }
      bytes += subject->size();
    }
    if (const auto* zone = e->zone_id()) {
      if (bounded && zone->size() > kMaxZoneIdBytes) {
        return "zone_id of " + std::to_string(zone->size()) + " bytes > " + std::to_string(kMaxZoneIdBytes);
      }
      bytes += zone->size();
    }
    for (auto [name, text] : {std::pair{"seal_id", e->seal_id()}, std::pair{"expected_seal_id", e->expected_seal_id()}}) {
      if (text == nullptr) continue;
      if (bounded && text->size() > kMaxSealIdBytes) {
        return std::string(name) + " of " + std::to_string(text->size()) + " bytes > " +
               std::to_string(kMaxSealIdBytes);
      }
      bytes += text->size();
    }
    if (const auto* command = e->command_id()) {
      if (bounded && command->size() > kMaxCommandIdBytes) {
        return "command_id of " + std::to_string(command->size()) + " bytes > " + std::to_string(kMaxCommandIdBytes);
      }
      bytes += command->size();
    }
  }
  if (type == fb::Payload::EvidenceCheckpoint) {
    const auto* cose = in->payload_as_EvidenceCheckpoint()->cose();
    if (cose == nullptr || cose->size() == 0) return "evidence checkpoint without its bytes";
    if (cose->size() > model::kMaxEvidenceBytes) {
      return "evidence checkpoint of " + std::to_string(cose->size()) + " bytes > " +
             std::to_string(model::kMaxEvidenceBytes);
    }
    bytes += cose->size();
  }
  if (cost != nullptr) *cost = bytes;
  return {};
}

// Copies a reading that reading_problem() accepted.
Result<model::Reading> read_reading(const fb::Reading* in) {
  if (auto why = reading_problem(in, /*bounded=*/false, nullptr); !why.empty()) return Error{why};
  model::Reading r;
  r.source_id = str(in->source_id());
  r.container_id = str(in->container_id());
  r.seq = in->seq();
  r.time_utc_ms = in->time_utc_ms();
  r.time_source = in->time_source() == fb::TimeSource::GatewayReceive ? model::TimeSource::kGatewayReceive
                                                                      : model::TimeSource::kSource;
  r.class_seq = in->class_seq();
  switch (in->payload_type()) {
    case fb::Payload::Position: {
      const auto* p = in->payload_as_Position();
      model::Position m;
      m.lat_e7 = p->lat_e7();
      m.lon_e7 = p->lon_e7();
      m.speed_cm_s = from_fb(p->speed_cm_s());
      m.heading_cdeg = from_fb(p->heading_cdeg());
      m.fix = static_cast<model::FixQuality>(p->fix());
      m.satellites = p->satellites();
      m.hdop_centi = from_fb(p->hdop_centi());
      r.payload = m;
      break;
    }
    case fb::Payload::SealEvent: {
      const auto* p = in->payload_as_SealEvent();
      r.payload = model::SealEvent{str(p->seal_id()), static_cast<model::SealState>(p->state())};
      break;
    }
    case fb::Payload::DoorEvent:
      r.payload = model::DoorEvent{static_cast<model::DoorState>(in->payload_as_DoorEvent()->state())};
      break;
    case fb::Payload::SensorSample: {
      const auto* p = in->payload_as_SensorSample();
      model::SensorSample m;
      m.temperature_centi_c = from_fb(p->temperature_centi_c());
      m.humidity_centi_pct = from_fb(p->humidity_centi_pct());
      m.shock_milli_g = from_fb(p->shock_milli_g());
      m.battery_mv = from_fb(p->battery_mv());
      m.battery_pct = from_fb(p->battery_pct());
      m.reefer_setpoint_centi_c = from_fb(p->reefer_setpoint_centi_c());
      r.payload = m;
      break;
    }
    case fb::Payload::SequenceGap: {
      const auto* p = in->payload_as_SequenceGap();
      r.payload = model::SequenceGap{p->first_seq(), static_cast<model::GapReason>(p->reason())};
      break;
    }
    case fb::Payload::CustodyEvent: {
      const auto* p = in->payload_as_CustodyEvent();
      model::CustodyEvent e;
      e.code = static_cast<model::EventCode>(p->code());
      e.subject_id = str(p->subject_id());
      e.first_seq = p->first_seq();
      e.caused_by_seq = p->caused_by_seq();
      e.zone_id = str(p->zone_id());
      e.lat_e7 = from_fb(p->lat_e7());
      e.lon_e7 = from_fb(p->lon_e7());
      e.interpolated = p->interpolated();
      e.ended_by_gap = p->ended_by_gap();
      e.temperature_centi_c = from_fb(p->temperature_centi_c());
      e.setpoint_centi_c = from_fb(p->setpoint_centi_c());
      e.band_low_centi_c = from_fb(p->band_low_centi_c());
      e.band_high_centi_c = from_fb(p->band_high_centi_c());
      e.duration_ms = from_fb(p->duration_ms());
      e.seal_id = str(p->seal_id());
      e.expected_seal_id = str(p->expected_seal_id());
      e.seal_class = static_cast<model::SealClass>(p->seal_class());
      e.command_id = str(p->command_id());
      r.payload = std::move(e);
      break;
    }
    case fb::Payload::EvidenceCheckpoint: {
      const auto* p = in->payload_as_EvidenceCheckpoint();
      model::EvidenceCheckpoint e;
      e.cose.assign(p->cose()->begin(), p->cose()->end());
      e.n = p->n();
      e.check = static_cast<model::EvidenceCheck>(p->check());
      r.payload = std::move(e);
      break;
    }
    default:
      // NONE, or a payload kind added by a newer schema: this agent cannot
      // represent it, so it is reported rather than silently changed.
      return Error{"unknown or missing payload type " + std::to_string(static_cast<int>(in->payload_type()))};
  }
  return r;
}

}  // namespace detail
using namespace detail;

struct EnvelopeEncoder::Impl {
  flatbuffers::FlatBufferBuilder builder{16 * 1024};
  std::vector<flatbuffers::Offset<fb::Reading>> offsets;
};

EnvelopeEncoder::EnvelopeEncoder() : impl_(new Impl) {}
EnvelopeEncoder::~EnvelopeEncoder() { delete impl_; }

std::span<const std::uint8_t> EnvelopeEncoder::encode(const EnvelopeHeader& h,
                                                      std::span<const model::Reading> readings) {
  auto& b = impl_->builder;
  b.Clear();
  impl_->offsets.clear();
  impl_->offsets.reserve(readings.size());
  for (const auto& r : readings) impl_->offsets.push_back(build_reading(b, r));
  auto vec = b.CreateVector(impl_->offsets);
  auto site = b.CreateString(h.site_id);
  auto gw = b.CreateString(h.gateway_id);
  fb::EnvelopeBuilder eb(b);
  eb.add_schema_version(h.schema_version);
  eb.add_site_id(site);
  eb.add_gateway_id(gw);
  eb.add_envelope_seq(h.envelope_seq);
  eb.add_sent_utc_ms(h.sent_utc_ms);
  eb.add_priority(static_cast<fb::Priority>(h.priority));
  eb.add_readings(vec);
  b.Finish(eb.Finish(), fb::EnvelopeIdentifier());
  return {b.GetBufferPointer(), b.GetSize()};
}

std::vector<std::uint8_t> encode_envelope(const EnvelopeHeader& header, std::span<const model::Reading> readings) {
  EnvelopeEncoder enc;
  auto bytes = enc.encode(header, readings);
  return {bytes.begin(), bytes.end()};
}

Result<Envelope> decode_envelope(std::span<const std::uint8_t> bytes, const DecodeLimits& limits) {
  if (bytes.size() > limits.max_bytes) {
    return Error{"envelope too large: " + std::to_string(bytes.size()) + " bytes > " +
                 std::to_string(limits.max_bytes)};
  }
  if (bytes.size() < 8 || !flatbuffers::BufferHasIdentifier(bytes.data(), fb::EnvelopeIdentifier())) {
    return Error{"not an EPT1 envelope (missing file identifier)"};
  }
  flatbuffers::Verifier verifier(bytes.data(), bytes.size(), limits.max_depth,
                                 /*max_tables=*/limits.max_readings * 4 + 16);
  if (!fb::VerifyEnvelopeBuffer(verifier)) return Error{"envelope failed FlatBuffers verification"};
  const auto* env = fb::GetEnvelope(bytes.data());
  Envelope out;
  // What decoding will copy is added up and checked first, reading by
  // reading, without copying anything: a small envelope whose readings all
  // share one string must not decode to gigabytes.
  std::size_t decoded = (env->site_id() ? env->site_id()->size() : 0) +
                        (env->gateway_id() ? env->gateway_id()->size() : 0);
  const auto* rs = env->readings();
  if (rs != nullptr) {
    if (rs->size() > limits.max_readings) {
      return Error{"envelope holds " + std::to_string(rs->size()) + " readings > limit " +
                   std::to_string(limits.max_readings)};
    }
    for (flatbuffers::uoffset_t i = 0; i < rs->size(); ++i) {
      const auto* in = rs->Get(i);
      if (in != nullptr && in->payload_type() > fb::Payload::MAX) continue;  // skipped below, not copied
      std::size_t cost = 0;
      auto why = reading_problem(in, /*bounded=*/true, &cost);
      if (!why.empty()) return Error{"reading " + std::to_string(i) + ": " + why};
      decoded += cost;
      if (decoded > limits.max_decoded_bytes) {
        return Error{"envelope decodes to more than " + std::to_string(limits.max_decoded_bytes) +
                     " bytes (limit reached at reading " + std::to_string(i) + ")"};
      }
    }
  }
  out.header.schema_version = env->schema_version();
  out.header.site_id = str(env->site_id());
  out.header.gateway_id = str(env->gateway_id());
  out.header.envelope_seq = env->envelope_seq();
  out.header.sent_utc_ms = env->sent_utc_ms();
  out.header.priority = static_cast<model::Priority>(env->priority());
  if (rs != nullptr) {
    out.readings.reserve(rs->size());
    for (flatbuffers::uoffset_t i = 0; i < rs->size(); ++i) {
      const auto* in = rs->Get(i);
      if (in != nullptr && in->payload_type() > fb::Payload::MAX) {
        ++out.skipped_unknown;  // a newer schema's payload kind
        continue;
      }
      auto r = read_reading(in);
      if (!r) return Error{"reading " + std::to_string(i) + ": " + r.error()};
      if (r->class_seq > 0) r->class_priority = out.header.priority;
      out.readings.push_back(std::move(r).value());
    }
  }
  return out;
}

std::vector<std::uint8_t> encode_reading(const model::Reading& reading) {
  // One builder per thread, reused: this runs once per reading on ingest.
  thread_local flatbuffers::FlatBufferBuilder b(512);
  b.Clear();
  b.Finish(build_reading(b, reading));
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

Result<model::Reading> decode_reading(std::span<const std::uint8_t> bytes) {
  flatbuffers::Verifier verifier(bytes.data(), bytes.size(), 8, 64);
  if (!verifier.VerifyBuffer<fb::Reading>(nullptr)) return Error{"stored reading failed FlatBuffers verification"};
  return read_reading(flatbuffers::GetRoot<fb::Reading>(bytes.data()));
}

namespace {

void append_escaped(std::string& out, std::string_view s) { json::append_quoted(out, s); }

template <class T>
void field(std::string& out, std::string_view key, const T& v) {
  out += ",\"";
  out += key;
  out += "\":";
  if constexpr (std::is_same_v<T, std::string>) {
    append_escaped(out, v);
  } else {
    out += std::to_string(v);
  }
}

template <class T>
void opt_field(std::string& out, std::string_view key, const std::optional<T>& v) {
  if (v) field(out, key, static_cast<long long>(*v));
}

std::string_view seal_state_name(model::SealState s) {
  switch (s) {
    case model::SealState::kSealed: return "sealed";
    case model::SealState::kOpened: return "opened";
    case model::SealState::kTampered: return "tampered";
    default: return "unknown";
  }
}

std::string_view door_state_name(model::DoorState s) {
  switch (s) {
    case model::DoorState::kClosed: return "closed";
    case model::DoorState::kOpen: return "open";
    default: return "unknown";
  }
}

}  // namespace

std::string reading_to_json(const model::Reading& r) {
  std::string out = "{\"source\":";
  append_escaped(out, r.source_id);
  if (!r.container_id.empty()) field(out, "container", r.container_id);
  field(out, "seq", r.seq);
  if (r.class_seq > 0) {
    field(out, "class", std::string(model::priority_name(r.class_priority)));
    field(out, "class_seq", r.class_seq);
  }
  field(out, "time_utc_ms", r.time_utc_ms);
  if (r.time_source == model::TimeSource::kGatewayReceive) field(out, "time_source", std::string("gateway_receive"));
  out += ",\"kind\":\"";
  out += model::kind_name(model::kind_of(r.payload));
  out += '"';
  std::visit(
      [&](const auto& p) {
        using P = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<P, model::Position>) {
          field(out, "lat_e7", p.lat_e7);
          field(out, "lon_e7", p.lon_e7);
          opt_field(out, "speed_cm_s", p.speed_cm_s);
          opt_field(out, "heading_cdeg", p.heading_cdeg);
          field(out, "fix", static_cast<int>(p.fix));
          field(out, "satellites", static_cast<int>(p.satellites));
          opt_field(out, "hdop_centi", p.hdop_centi);
        } else if constexpr (std::is_same_v<P, model::SealEvent>) {
          field(out, "seal_id", p.seal_id);
          field(out, "state", std::string(seal_state_name(p.state)));
        } else if constexpr (std::is_same_v<P, model::DoorEvent>) {
          field(out, "state", std::string(door_state_name(p.state)));
        } else if constexpr (std::is_same_v<P, model::SequenceGap>) {
          field(out, "first_seq", p.first_seq);
          field(out, "reason", std::string(model::gap_reason_name(p.reason)));
        } else if constexpr (std::is_same_v<P, model::CustodyEvent>) {
          field(out, "event", std::string(model::event_code_name(p.code)));
          if (auto dcsa = model::dcsa_code(p.code); !dcsa.empty()) field(out, "dcsa", std::string(dcsa));
          field(out, "subject", p.subject_id);
          field(out, "first_seq", p.first_seq);
          field(out, "caused_by_seq", p.caused_by_seq);
          if (!p.zone_id.empty()) field(out, "zone", p.zone_id);
          opt_field(out, "lat_e7", p.lat_e7);
          opt_field(out, "lon_e7", p.lon_e7);
          if (p.interpolated) out += ",\"interpolated\":true";
          if (p.ended_by_gap) out += ",\"ended_by_gap\":true";
          opt_field(out, "temperature_centi_c", p.temperature_centi_c);
          opt_field(out, "setpoint_centi_c", p.setpoint_centi_c);
          opt_field(out, "band_low_centi_c", p.band_low_centi_c);
          opt_field(out, "band_high_centi_c", p.band_high_centi_c);
          opt_field(out, "duration_ms", p.duration_ms);
          if (!p.seal_id.empty()) field(out, "seal_id", p.seal_id);
          if (!p.expected_seal_id.empty()) field(out, "expected_seal_id", p.expected_seal_id);
          if (p.seal_class != model::SealClass::kUnknown) {
            field(out, "seal_class", std::string(model::seal_class_name(p.seal_class)));
          }
          if (!p.command_id.empty()) field(out, "command_id", p.command_id);
        } else if constexpr (std::is_same_v<P, model::EvidenceCheckpoint>) {
          field(out, "n", p.n);
          field(out, "check", std::string(model::evidence_check_name(p.check)));
          static const char kHex[] = "0123456789abcdef";
          std::string hex;
          hex.reserve(p.cose.size() * 2);
          for (auto byte : p.cose) {
            hex += kHex[byte >> 4];
            hex += kHex[byte & 0x0f];
          }
          field(out, "cose", hex);
        } else {
          opt_field(out, "temperature_centi_c", p.temperature_centi_c);
          opt_field(out, "humidity_centi_pct", p.humidity_centi_pct);
          opt_field(out, "shock_milli_g", p.shock_milli_g);
          opt_field(out, "battery_mv", p.battery_mv);
          opt_field(out, "battery_pct", p.battery_pct);
          opt_field(out, "reefer_setpoint_centi_c", p.reefer_setpoint_centi_c);
        }
      },
      r.payload);
  out += '}';
  return out;
}

std::string json_string(std::string_view s) { return json::quote(s); }

std::string envelope_header_to_json(const EnvelopeHeader& h) {
  std::string out = "{\"site\":";
  append_escaped(out, h.site_id);
  field(out, "gateway", h.gateway_id);
  field(out, "envelope_seq", h.envelope_seq);
  field(out, "sent_utc_ms", h.sent_utc_ms);
  field(out, "priority", std::string(model::priority_name(h.priority)));
  field(out, "schema_version", static_cast<int>(h.schema_version));
  out += '}';
  return out;
}

}  // namespace eport::codec
