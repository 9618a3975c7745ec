// The agent's in-memory picture of one reading from a telematics unit or the
// gateway itself. Every other library speaks in these types: sources produce
// them, the codec turns them into FlatBuffers, the store keeps them as blobs.
// Plain values only: no library dependency, cheap to copy.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace eport::model {

// GNSS fix quality, numbered as in the NMEA GGA "quality" field.
enum class FixQuality : std::uint8_t {
  kNoFix = 0,
  kGps = 1,
  kDgps = 2,
  kPps = 3,
  kRtkFixed = 4,
  kRtkFloat = 5,
  kEstimated = 6,
  kManual = 7,
  kSimulated = 8,
};

struct Position {
  std::int32_t lat_e7 = 0;  // degrees * 1e7, north positive
  std::int32_t lon_e7 = 0;  // degrees * 1e7, east positive
  std::optional<std::uint16_t> speed_cm_s;    // ground speed, cm/s
  std::optional<std::uint16_t> heading_cdeg;  // course over ground, 0..35999 (0.01 deg)
  FixQuality fix = FixQuality::kNoFix;
  std::uint8_t satellites = 0;                // satellites used in the fix
  std::optional<std::uint16_t> hdop_centi;    // HDOP * 100
  bool operator==(const Position&) const = default;
};

enum class SealState : std::uint8_t { kUnknown = 0, kSealed = 1, kOpened = 2, kTampered = 3 };

struct SealEvent {
  std::string seal_id;  // printed seal number, at most 32 bytes
  SealState state = SealState::kUnknown;
  bool operator==(const SealEvent&) const = default;
};

enum class DoorState : std::uint8_t { kUnknown = 0, kClosed = 1, kOpen = 2 };

struct DoorEvent {
  DoorState state = DoorState::kUnknown;
  bool operator==(const DoorEvent&) const = default;
};

// One sample of the container's sensors. A field is absent when the unit has
// no such sensor or the sensor did not answer.
struct SensorSample {
  std::optional<std::int16_t> temperature_centi_c;   // 0.01 degC
  std::optional<std::uint16_t> humidity_centi_pct;   // 0.01 %RH, 0..10000
  std::optional<std::uint16_t> shock_milli_g;        // peak since last sample, 0.001 g
  std::optional<std::uint16_t> battery_mv;           // millivolts
  std::optional<std::uint8_t> battery_pct;           // 0..100
  std::optional<std::int16_t> reefer_setpoint_centi_c;  // reefer units only
  bool operator==(const SensorSample&) const = default;
};

// Why a range of a source's seqs holds no readings although the record of
// that source is complete: the source (or the gateway, for a reading it had
// to refuse) says so explicitly. Numbered as on the wire (epb DISCARD) and in
// the schema: never renumber.
enum class GapReason : std::uint8_t {
  kUnknown = 0,
  kFlashFull = 1,          // the unit overwrote its oldest unacknowledged readings
  kUnitReset = 2,          // the unit lost its stored readings (reset, flash wiped or replaced)
  kExpired = 3,            // the unit dropped readings older than its retention
  kRejectedMalformed = 4,  // the agent refused the reading as malformed (the frame was intact)
};
std::string_view gap_reason_name(GapReason r);

// A declared gap: seqs first_seq .. Reading::seq (inclusive) of the reading's
// source will never be delivered, for `reason`. Carried in the same stream as
// readings, so that a consumer tells "discarded at the source, declared" from
// "lost in transit" (a gap nobody declared).
struct SequenceGap {
  std::uint64_t first_seq = 0;
  GapReason reason = GapReason::kUnknown;
  bool operator==(const SequenceGap&) const = default;
};

// What a custody event says happened (docs/custody-events.md). Numbered as
// in the schema: never renumber, only append.
enum class EventCode : std::uint8_t {
  kUnknown = 0,
  kPairing = 1,         // a unit was put on a container (Reading.container_id)
  kUnpairing = 2,       // a unit left a container (Reading.container_id: the one it left)
  kGeofenceEntry = 3,   // entered zone_id (after its dwell, or crossed between two fixes)
  kGeofenceExit = 4,    // left zone_id
  kMotionStart = 5,
  kMotionStop = 6,
  kExcursionStart = 7,  // a reefer's temperature left its band for at least the minimum time: an alarm
  kExcursionEnd = 8,    // back in band: duration_ms and the extreme value
  kSealMismatch = 9,           // an alarm: the seal read is not the one expected (seal_id, expected_seal_id)
  kSealOpenedOutsideZone = 10, // an alarm: the seal opened outside every zone allowed for it
  kSealTampered = 11,          // an alarm: the unit reported its seal tampered
};
inline constexpr std::size_t kEventCodeCount = 12;

// ISO 17712 seal classes. Numbered as in the schema: never renumber.
enum class SealClass : std::uint8_t { kUnknown = 0, kIndicative = 1, kSecurity = 2, kHighSecurity = 3 };
// "indicative", "security", "high_security" ("unknown" for kUnknown).
std::string_view seal_class_name(SealClass c);
std::optional<SealClass> seal_class_from_name(std::string_view name);
// "pairing", "geofence_entry", ...: config, logs, JSON.
std::string_view event_code_name(EventCode c);
// The DCSA Track & Trace v3 event code: PAIRING, UNPAIRING, GEOFENCE_ENTRY,
// GEOFENCE_EXIT, MOTION_START, MOTION_STOP; reefer excursions are MEASURED
// (REEFER events with an alarm, docs/custody-events.md); "" for seal alarms
// (DCSA has no seal event code: the seal goes in equipmentDetails.seals).
std::string_view dcsa_code(EventCode c);

// An event the gateway derived from its sources' readings (pairing,
// geofences, motion, reefer excursions). Carried as a reading of the
// gateway's custody source (custody_source_id()), so that events have their
// own per-source sequence and go through the same custody as readings; the
// reading's container_id is the container the event concerns and its time
// the time the event happened (the first reading that showed it).
struct CustodyEvent {
  EventCode code = EventCode::kUnknown;
  std::string subject_id;           // the unit whose readings showed it
  std::uint64_t first_seq = 0;      // the first of those readings (e.g. the first fix inside the zone)
  std::uint64_t caused_by_seq = 0;  // the one that confirmed it (the rules are deterministic over these)
  std::string zone_id;              // geofence events
  std::optional<std::int32_t> lat_e7, lon_e7;  // where, when known
  bool interpolated = false;        // a crossing between two fixes: time and place interpolated
  bool ended_by_gap = false;        // excursion end: no temperature for longer than the gap limit
  std::optional<std::int16_t> temperature_centi_c;  // excursion: first value out of band (start), extreme (end)
  std::optional<std::int16_t> setpoint_centi_c;
  std::optional<std::int16_t> band_low_centi_c, band_high_centi_c;
  std::optional<std::uint64_t> duration_ms;         // excursion end
  std::string seal_id;           // seal events: the number the unit read, at most 32 bytes
  std::string expected_seal_id;  // seal events: the number the cloud expects ("" if none)
  SealClass seal_class = SealClass::kUnknown;  // seal events: the expected seal's class
  std::string command_id;        // the cloud command that caused it ("" if none)
  bool operator==(const CustodyEvent&) const = default;
};

// What the agent found when it checked a unit's evidence checkpoint
// (docs/evidence.md section 13). Numbered as in the schema: never renumber.
enum class EvidenceCheck : std::uint8_t {
  kUnchecked = 0,     // no key for the unit (bridge.evidence_keys): forwarded unchecked
  kVerified = 1,      // signature and checkpoint chain hold
  kBadSignature = 2,  // parsed, signed under the unit's key id, but the signature does not verify
  kBrokenChain = 3,   // authentic, but n/prev/first do not follow the last accepted checkpoint
  kMalformed = 4,     // not a checkpoint (docs/evidence.md section 5 parsing rules)
  kWrongKey = 5,      // signed under a key id the unit does not have
  kOtherSource = 6,   // a checkpoint of another source
  kReplayed = 7,      // not newer than the last accepted one
  kSeqMismatch = 8,   // authentic, but its `last` is not the seq it was sent under
  kReadingsMismatch = 9,  // authentic, but the readings stored in its range do not hash to its head
                          // (one altered, missing or extra)
};
inline constexpr std::size_t kEvidenceCheckCount = 10;
// "unchecked", "verified", "bad_signature", ...: JSON, logs, health.
std::string_view evidence_check_name(EvidenceCheck c);

// A unit's signed evidence checkpoint (a COSE_Sign1, docs/evidence.md),
// carried as data: a reading of the unit's evidence source
// (evidence_source_id(), seq = the checkpoint's `last`), never evicted,
// published on its own topic. The bytes are exactly what the unit sent.
struct EvidenceCheckpoint {
  std::vector<std::uint8_t> cose;  // 1..336 bytes
  std::uint64_t n = 0;             // its checkpoint number if it parsed, else 0
  EvidenceCheck check = EvidenceCheck::kUnchecked;
  bool operator==(const EvidenceCheckpoint&) const = default;
};
inline constexpr std::size_t kMaxEvidenceBytes = 336;  // EPB_EV_CHECKPOINT_MAX

using Payload = std::variant<Position, SealEvent, DoorEvent, SensorSample, SequenceGap, CustodyEvent, EvidenceCheckpoint>;

// Kind names, as used in config files, logs and JSON output.
enum class Kind : std::uint8_t { kPosition = 0, kSeal = 1, kDoor = 2, kSensor = 3, kGap = 4, kEvent = 5, kEvidence = 6 };
inline Kind kind_of(const Payload& p) { return static_cast<Kind>(p.index()); }
std::string_view kind_name(Kind k);

// Whose clock time_utc_ms comes from.
enum class TimeSource : std::uint8_t {
  kSource = 0,          // the source's own clock when it took the reading
  kGatewayReceive = 1,  // the source had no valid clock (sent 0): the agent's clock when it received it
};

// Highest seq any source may use: 2^53 - 1, so that a seq fits a signed
// 64-bit SQLite integer and a JavaScript number exactly. Seqs start at 1.
inline constexpr std::uint64_t kMaxSeq = (std::uint64_t{1} << 53) - 1;

// Priority classes, highest first when the outbox drains. The numeric value
// is stored on disk: never renumber.
enum class Priority : std::uint8_t { kBulk = 0, kTelemetry = 1, kEvent = 2, kAlarm = 3 };
constexpr int kPriorityCount = 4;
std::string_view priority_name(Priority p);
std::optional<Priority> priority_from_name(std::string_view name);

struct Reading {
  std::string source_id;     // telematics unit id (or the gateway's own id), <= 32 bytes
  std::string container_id;  // ISO 6346, e.g. "MSKU1234565"; empty for the gateway
  std::uint64_t seq = 0;     // per-source, strictly increasing, 1..kMaxSeq, kept across restarts
  std::uint64_t time_utc_ms = 0;  // milliseconds since 1970-01-01T00:00:00Z
  Payload payload;
  TimeSource time_source = TimeSource::kSource;
  // The gateway's count of this source's readings in one class: 1, 2, 3, ...
  // without holes, given by the store in the transaction that stores the
  // reading (docs/consuming.md, "Completeness per class"). 0: not numbered (a
  // reading not stored yet, or from a store or schema before 1.5). Same range
  // as seq.
  std::uint64_t class_seq = 0;
  // The class class_seq counts in (on the wire: the envelope's priority).
  // Meaningful only when class_seq > 0.
  Priority class_priority = Priority::kTelemetry;
  bool operator==(const Reading&) const = default;
};

// Which priority class each kind of reading goes to (config [priority]).
// The defaults are the built-in classification: seal tampered or opened and
// door open are alarms, other seal and door events are events, the rest is
// telemetry.
struct PriorityRules {
  Priority position = Priority::kTelemetry;
  Priority sensor = Priority::kTelemetry;
  Priority seal_tampered = Priority::kAlarm;
  Priority seal_opened = Priority::kAlarm;
  Priority seal_other = Priority::kEvent;  // sealed, unknown
  Priority door_open = Priority::kAlarm;
  Priority door_other = Priority::kEvent;  // closed, unknown
  Priority gap = Priority::kEvent;         // declared sequence gaps
  Priority custody_alarm = Priority::kAlarm;  // derived: excursion start, seal alarms
  Priority custody_event = Priority::kEvent;  // derived: pairing, geofence, motion, excursion end
};

// The source id under which a gateway's derived custody events travel:
// "<gateway id>:custody" (a ':' no gateway id has; reserved: no unit may claim it).
std::string custody_source_id(std::string_view gateway_id);

// The source id under which a unit's evidence checkpoints travel:
// "<unit id>:ev" (at most 35 bytes: unit ids are at most 32). Reserved: the
// bridge refuses a unit id ending in ":ev". Their seqs are the checkpoints'
// `last` seqs.
std::string evidence_source_id(std::string_view unit_id);
// True for an id evidence_source_id() makes (ends with ":ev").
bool is_evidence_source(std::string_view source_id);

Priority classify(const Reading& r, const PriorityRules& rules);
inline Priority default_priority(const Reading& r) { return classify(r, PriorityRules{}); }

// True for a valid ISO 6346 container number (owner code, category,
// serial, check digit).
bool is_valid_iso6346(std::string_view container_id);

}  // namespace eport::model
