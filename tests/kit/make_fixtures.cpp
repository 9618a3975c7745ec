// make_fixtures: writes one telemetry payload per schema version the agent can send
// (1.0 .. 1.5) with the agent's own encoder (eport::codec), and the JSON lines eport-tail
// prints for it, for tests/kit/test_kit.sh: the installed C++ library and the installed
// Python package must decode every one to exactly those lines.
//
// Each version's payload holds only what that version could carry. The encoder writes no
// field that holds its default and FlatBuffers vtables end at the last field written, so
// these are the bytes a writer of that version emits (a 1.0 reading has 1.0's vtable:
// docs/schema.md "Schema 1.1"). 1.2 is also written zstd-compressed.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "eport/codec/codec.h"

namespace {
using namespace eport::model;

Reading at(std::string source, std::string container, std::uint64_t seq, std::uint64_t t, Payload p) {
  Reading r;
  r.source_id = std::move(source);
  r.container_id = std::move(container);
  r.seq = seq;
  r.time_utc_ms = t;
  r.payload = std::move(p);
  return r;
}

std::vector<Reading> v1_0() {  // position, seal, door, sensor; every reading with the unit's own time
  Position pos{306187233, 1220670000, 512, 9000, FixQuality::kGps, 9, 87};
  SensorSample s;
  s.temperature_centi_c = -1850;
  s.humidity_centi_pct = 6520;
  s.battery_mv = 3700;
  s.battery_pct = 88;
  s.reefer_setpoint_centi_c = -1800;
  SensorSample shock;
  shock.shock_milli_g = 2400;
  return {at("TU-0001", "MSKU1234565", 1, 1795000000000, pos),
          at("TU-0001", "MSKU1234565", 2, 1795000001000, SealEvent{"SL00012345", SealState::kSealed}),
          at("TU-0001", "MSKU1234565", 3, 1795000002000, DoorEvent{DoorState::kOpen}),
          at("TU-0001", "MSKU1234565", 4, 1795000003000, s),
          at("TU-0001", "MSKU1234565", 5, 1795000004000, shock),
          at("gw-01", "", 17, 1795000005000, Position{306187000, 1220670100, {}, {}, FixQuality::kDgps, 12, {}})};
}

std::vector<Reading> v1_1() {  // declared gaps, readings timed by the gateway
  auto gap = at("TU-0017", "CSQU3054383", 138, 1795000000000, SequenceGap{120, GapReason::kFlashFull});
  auto door = at("TU-0017", "CSQU3054383", 139, 1795000000500, DoorEvent{DoorState::kClosed});
  door.time_source = TimeSource::kGatewayReceive;
  auto reset = at("TU-0017", "CSQU3054383", 204, 1795000000600, SequenceGap{198, GapReason::kUnitReset});
  reset.time_source = TimeSource::kGatewayReceive;
  return {gap, door, reset, at("TU-0017", "", kMaxSeq, 1795000000700, SequenceGap{1, GapReason::kExpired})};
}

std::vector<Reading> v1_2() {  // custody events (pairing, geofence, excursion)
  CustodyEvent pairing;
  pairing.code = EventCode::kPairing;
  pairing.subject_id = "TU-0001";
  pairing.first_seq = 1;
  pairing.caused_by_seq = 1;
  CustodyEvent entry;
  entry.code = EventCode::kGeofenceEntry;
  entry.subject_id = "TU-0001";
  entry.first_seq = 6;
  entry.caused_by_seq = 8;
  entry.zone_id = "yard-b";
  entry.lat_e7 = 306190000;
  entry.lon_e7 = 1220680000;
  entry.interpolated = true;
  CustodyEvent end;
  end.code = EventCode::kExcursionEnd;
  end.subject_id = "TU-0002";
  end.first_seq = 40;
  end.caused_by_seq = 52;
  end.ended_by_gap = true;
  end.temperature_centi_c = -1420;
  end.setpoint_centi_c = -1800;
  end.band_low_centi_c = -2000;
  end.band_high_centi_c = -1600;
  end.duration_ms = 1800000;
  return {at("gw-01:custody", "MSKU1234565", 1, 1795000000000, pairing),
          at("gw-01:custody", "MSKU1234565", 2, 1795000010000, entry),
          at("gw-01:custody", "TGHU1234560", 3, 1795000020000, end)};
}

std::vector<Reading> v1_3() {  // seal events of custody, the command that caused an event
  CustodyEvent mismatch;
  mismatch.code = EventCode::kSealMismatch;
  mismatch.subject_id = "TU-0001";
  mismatch.first_seq = 9;
  mismatch.caused_by_seq = 9;
  mismatch.zone_id = "gate-in";
  mismatch.seal_id = "SL00099999";
  mismatch.expected_seal_id = "SL00012345";
  mismatch.seal_class = SealClass::kHighSecurity;
  mismatch.command_id = "cmd-7f3a";
  return {at("gw-01:custody", "MSKU1234565", 4, 1795000030000, mismatch)};
}

std::vector<Reading> v1_4() {  // units' evidence checkpoints
  EvidenceCheckpoint ev;
  ev.cose = {0xd2, 0x84, 0x43, 0xa1, 0x01, 0x27};
  ev.n = 3;
  ev.check = EvidenceCheck::kVerified;
  return {at("TU-0001:ev", "", 5, 1795000040000, ev)};
}

std::vector<Reading> v1_5() {  // the gateway's class counts, in the envelope's class (Event)
  auto door = at("TU-0042", "MSKU1234565", 131, 1795000050000, DoorEvent{DoorState::kClosed});
  door.class_seq = 7;
  door.class_priority = Priority::kEvent;
  auto seal = at("TU-0042", "MSKU1234565", 132, 1795000051000, SealEvent{"SL51941122", SealState::kSealed});
  seal.class_seq = 8;
  seal.class_priority = Priority::kEvent;
  return {door, seal};
}

bool write(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  return static_cast<bool>(f);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_fixtures OUT_DIR\n";
    return 64;
  }
  const std::string dir = argv[1];
  struct Version {
    const char* name;
    std::vector<Reading> readings;
    bool zstd;
  };
  const Version versions[] = {{"1.0", v1_0(), false}, {"1.1", v1_1(), false}, {"1.2", v1_2(), true},
                              {"1.3", v1_3(), false}, {"1.4", v1_4(), false}, {"1.5", v1_5(), true}};
  std::uint64_t envelope_seq = 1;
  for (const auto& v : versions) {
    eport::codec::EnvelopeHeader h{"cnsha", "gw-01", envelope_seq++, 1795000099000, Priority::kEvent};
    auto bytes = eport::codec::encode_envelope(h, v.readings);
    if (v.zstd) bytes = eport::codec::compress(bytes);
    std::string lines;
    for (const auto& r : v.readings) lines += eport::codec::reading_to_json(r) + "\n";
    const std::string base = dir + "/schema-" + v.name;
    if (!write(base + ".ept", std::string(bytes.begin(), bytes.end())) || !write(base + ".jsonl", lines)) {
      std::cerr << "make_fixtures: cannot write " << base << "\n";
      return 1;
    }
  }
  return 0;
}
