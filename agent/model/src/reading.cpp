// Names, priorities and ISO 6346 validation for the model types.
#include "eport/model/reading.h"

#include <array>

namespace eport::model {

std::string_view kind_name(Kind k) {
  switch (k) {
    case Kind::kPosition: return "position";
    case Kind::kSeal: return "seal";
    case Kind::kDoor: return "door";
    case Kind::kSensor: return "sensor";
    case Kind::kGap: return "gap";
    case Kind::kEvent: return "event";
    case Kind::kEvidence: return "evidence";
  }
  return "unknown";
}

std::string_view event_code_name(EventCode c) {
  switch (c) {
    case EventCode::kUnknown: break;
    case EventCode::kPairing: return "pairing";
    case EventCode::kUnpairing: return "unpairing";
    case EventCode::kGeofenceEntry: return "geofence_entry";
    case EventCode::kGeofenceExit: return "geofence_exit";
    case EventCode::kMotionStart: return "motion_start";
    case EventCode::kMotionStop: return "motion_stop";
    case EventCode::kExcursionStart: return "excursion_start";
    case EventCode::kExcursionEnd: return "excursion_end";
    case EventCode::kSealMismatch: return "seal_mismatch";
    case EventCode::kSealOpenedOutsideZone: return "seal_opened_outside_zone";
    case EventCode::kSealTampered: return "seal_tampered";
  }
  return "unknown";
}

std::string_view dcsa_code(EventCode c) {
  switch (c) {
    case EventCode::kUnknown: break;
    case EventCode::kPairing: return "PAIRING";
    case EventCode::kUnpairing: return "UNPAIRING";
    case EventCode::kGeofenceEntry: return "GEOFENCE_ENTRY";
    case EventCode::kGeofenceExit: return "GEOFENCE_EXIT";
    case EventCode::kMotionStart: return "MOTION_START";
    case EventCode::kMotionStop: return "MOTION_STOP";
    case EventCode::kExcursionStart:
    case EventCode::kExcursionEnd: return "MEASURED";
    case EventCode::kSealMismatch:
    case EventCode::kSealOpenedOutsideZone:
    case EventCode::kSealTampered: break;
  }
  return "";
}

namespace {
constexpr std::array<std::string_view, 4> kSealClassNames = {"unknown", "indicative", "security", "high_security"};
}

std::string_view seal_class_name(SealClass c) {
  auto i = static_cast<std::size_t>(c);
  return i < kSealClassNames.size() ? kSealClassNames[i] : "unknown";
}

std::optional<SealClass> seal_class_from_name(std::string_view name) {
  for (std::size_t i = 0; i < kSealClassNames.size(); ++i) {
    if (kSealClassNames[i] == name) return static_cast<SealClass>(i);
  }
  return std::nullopt;
}

std::string custody_source_id(std::string_view gateway_id) { return std::string(gateway_id) + ":custody"; }

std::string_view gap_reason_name(GapReason r) {
  switch (r) {
    case GapReason::kUnknown: return "unknown";
    case GapReason::kFlashFull: return "flash_full";
    case GapReason::kUnitReset: return "unit_reset";
    case GapReason::kExpired: return "expired";
    case GapReason::kRejectedMalformed: return "rejected_malformed";
  }
  return "unknown";
}

namespace {
constexpr std::array<std::string_view, kPriorityCount> kPriorityNames = {"bulk", "telemetry", "event",
                                                                         "alarm"};
}

std::string_view priority_name(Priority p) {
  auto i = static_cast<std::size_t>(p);
  return i < kPriorityNames.size() ? kPriorityNames[i] : "unknown";
}

std::optional<Priority> priority_from_name(std::string_view name) {
  for (std::size_t i = 0; i < kPriorityNames.size(); ++i) {
    if (kPriorityNames[i] == name) return static_cast<Priority>(i);
  }
  return std::nullopt;
}

std::string_view evidence_check_name(EvidenceCheck c) {
  switch (c) {
    case EvidenceCheck::kUnchecked: return "unchecked";
    case EvidenceCheck::kVerified: return "verified";
    case EvidenceCheck::kBadSignature: return "bad_signature";
    case EvidenceCheck::kBrokenChain: return "broken_chain";
    case EvidenceCheck::kMalformed: return "malformed";
    case EvidenceCheck::kWrongKey: return "wrong_key";
    case EvidenceCheck::kOtherSource: return "other_source";
    case EvidenceCheck::kReplayed: return "replayed";
    case EvidenceCheck::kSeqMismatch: return "seq_mismatch";
    case EvidenceCheck::kReadingsMismatch: return "readings_mismatch";
  }
  return "unknown";
}

std::string evidence_source_id(std::string_view unit_id) { return std::string(unit_id) + ":ev"; }

bool is_evidence_source(std::string_view source_id) {
  return source_id.size() > 3 && source_id.substr(source_id.size() - 3) == ":ev";
}

Priority classify(const Reading& r, const PriorityRules& rules) {
  // Evidence is never evicted, whatever [priority] says: always an alarm.
  if (std::holds_alternative<EvidenceCheckpoint>(r.payload)) return Priority::kAlarm;
  if (const auto* seal = std::get_if<SealEvent>(&r.payload)) {
    if (seal->state == SealState::kTampered) return rules.seal_tampered;
    if (seal->state == SealState::kOpened) return rules.seal_opened;
    return rules.seal_other;
  }
  if (const auto* door = std::get_if<DoorEvent>(&r.payload)) {
    return door->state == DoorState::kOpen ? rules.door_open : rules.door_other;
  }
  if (std::holds_alternative<Position>(r.payload)) return rules.position;
  if (std::holds_alternative<SequenceGap>(r.payload)) return rules.gap;
  if (const auto* e = std::get_if<CustodyEvent>(&r.payload)) {
    switch (e->code) {
      case EventCode::kExcursionStart:
      case EventCode::kSealMismatch:
      case EventCode::kSealOpenedOutsideZone:
      case EventCode::kSealTampered: return rules.custody_alarm;
      default: return rules.custody_event;
    }
  }
  return rules.sensor;
}

bool is_valid_iso6346(std::string_view id) {
  // Owner code (3 letters), category (U, J or Z), 6-digit serial, check digit.
  if (id.size() != 11) return false;
  int sum = 0;
  for (std::size_t i = 0; i < 10; ++i) {
    char c = id[i];
    int value;
    if (i < 4) {
      if (c < 'A' || c > 'Z') return false;
      // Letter values skip multiples of 11: A=10, B=12 .. K=21, L=23 ...
      value = 10 + (c - 'A');
      value += (value - 1) / 10;  // insert the skipped 11, 22, 33
      if (i == 3 && c != 'U' && c != 'J' && c != 'Z') return false;
    } else {
      if (c < '0' || c > '9') return false;
      value = c - '0';
    }
    sum += value << i;
  }
  char check = id[10];
  if (check < '0' || check > '9') return false;
  return (sum % 11) % 10 == check - '0';
}

}  // namespace eport::model
