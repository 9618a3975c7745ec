#!/usr/bin/python3
"""Writes the seed corpora of fuzz_envelope and fuzz_command (corpus/envelope, corpus/command).

The files are committed; run this again only to change them. It uses the FlatBuffers Python
runtime's low-level builder (python3-flatbuffers) with the slot numbers of schema/telemetry.fbs
and schema/command.fbs, so that it can also write what eport's own encoders never would: a
payload_type without its table, ids over their bounds, readings sharing one long string. The
hostile files are also test vectors: tests/unit/codec_test.cpp and
tests/integration/test_python_decoder_bounds.py check that the C++ codec and the Python
consumer refuse each one with the same message (EXPECTED below)."""
import os
import sys

import flatbuffers
import zstandard

HERE = os.path.dirname(os.path.abspath(__file__))
POSITION, SEAL, DOOR, SENSOR, GAP = 1, 2, 3, 4, 5
KIND_NAMES = {POSITION: "Position", SEAL: "SealEvent", DOOR: "DoorEvent", SENSOR: "SensorSample", GAP: "SequenceGap"}

# What eport::codec::decode_payload and eport_consumer.Codec.decode_payload answer (None: decodes).
EXPECTED = {
    "missing_table_position.ept": "reading 0: payload type 1 (Position) without its table",
    "missing_table_seal.ept": "reading 0: payload type 2 (SealEvent) without its table",
    "missing_table_door.ept": "reading 0: payload type 3 (DoorEvent) without its table",
    "missing_table_sensor.ept": "reading 0: payload type 4 (SensorSample) without its table",
    "missing_table_gap.ept": "reading 0: payload type 5 (SequenceGap) without its table",
    "long_source_id.ept": "reading 0: source_id of 41 bytes > 40",
    "long_container_id.ept": "reading 1: container_id of 12 bytes > 11",
    "long_seal_id.ept": "reading 0: seal_id of 33 bytes > 32",
    "shared_string_bomb.ept.zst": "reading 0: source_id of 4000 bytes > 40",
    "one_of_each.ept": None,
    "one_of_each.ept.zst": None,
}


def reading(b, source, kind, container=None, seq=1, time_ms=1795000000000, table=True, seal="SL00012345",
            time_source=None, src_off=None):
    """One Reading; src_off: an already written source string (shared by many readings)."""
    payload = None
    if table:
        seal_off = b.CreateString(seal) if kind == SEAL else None
        if kind == POSITION:
            b.StartObject(7)
            b.PrependInt32Slot(0, 306187233, 0)
            b.PrependInt32Slot(1, 1220670000, 0)
            b.PrependUint16Slot(2, 1234, None)
            b.PrependUint8Slot(4, 4, 0)
            b.PrependUint8Slot(5, 14, 0)
        elif kind == SEAL:
            b.StartObject(2)
            b.PrependUOffsetTRelativeSlot(0, seal_off, 0)
            b.PrependUint8Slot(1, 3, 0)
        elif kind == DOOR:
            b.StartObject(1)
            b.PrependUint8Slot(0, 2, 0)
        elif kind == SENSOR:
            b.StartObject(6)
            b.PrependInt16Slot(0, -1850, None)
            b.PrependUint16Slot(3, 3700, None)
        elif kind == GAP:
            # u8 first: with the u64 first this table has the field offsets of the SealEvent
            # above, and python3-flatbuffers 2.0.8 then shares the SealEvent's vtable (it
            # compares field offsets, not the table size): a 12-byte table holding a u64 at 8.
            b.StartObject(2)
            b.PrependUint8Slot(1, 1, 0)
            b.PrependUint64Slot(0, 1, 0)
        else:  # a kind from a newer schema: any table
            b.StartObject(1)
            b.PrependUint8Slot(0, 1, 0)
        payload = b.EndObject()
    src = src_off if src_off is not None else b.CreateString(source)
    cont = b.CreateString(container) if container else None
    b.StartObject(7)
    b.PrependUOffsetTRelativeSlot(0, src, 0)
    if cont is not None:
        b.PrependUOffsetTRelativeSlot(1, cont, 0)
    b.PrependUint64Slot(2, seq, 0)
    b.PrependUint64Slot(3, time_ms, 0)
    b.PrependUint8Slot(4, kind, 0)
    if payload is not None:
        b.PrependUOffsetTRelativeSlot(5, payload, 0)
    if time_source is not None:
        b.PrependUint8Slot(6, time_source, 0)
    return b.EndObject()


def envelope(build_readings, site="cnsha", gateway="gw-test-01"):
    b = flatbuffers.Builder(1024)
    offsets = build_readings(b)
    b.StartVector(4, len(offsets), 4)
    for o in reversed(offsets):
        b.PrependUOffsetTRelative(o)
    vec = b.EndVector()
    s, g = b.CreateString(site), b.CreateString(gateway)
    b.StartObject(7)
    b.PrependUint16Slot(0, 1, 1)
    b.PrependUOffsetTRelativeSlot(1, s, 0)
    b.PrependUOffsetTRelativeSlot(2, g, 0)
    b.PrependUint64Slot(3, 42, 0)
    b.PrependUint64Slot(4, 1795000002000, 0)
    b.PrependUint8Slot(5, 2, 1)
    b.PrependUOffsetTRelativeSlot(6, vec, 0)
    b.Finish(b.EndObject(), file_identifier=b"EPT1")
    return bytes(b.Output())


def one_of_each(b):
    c = "CSQU3054383"
    return [reading(b, "tcu-0001", POSITION, c, 1), reading(b, "tcu-0001", SEAL, c, 2),
            reading(b, "tcu-0001", DOOR, c, 3), reading(b, "tcu-0001", SENSOR, c, 4, time_source=1),
            reading(b, "tcu-0001", GAP, c, 9), reading(b, "tcu-0001", 9, c, 10),  # newer kind: skipped
            reading(b, "gw-test-01", POSITION, None, 5)]


def shared_bomb(b):
    src = b.CreateString("S" * 4000)
    return [reading(b, None, DOOR, None, 1, src_off=src) for _ in range(2000)]  # 8 MB if copied per reading


def envelopes():
    out = {"one_of_each.ept": envelope(one_of_each)}
    for kind, name in ((POSITION, "position"), (SEAL, "seal"), (DOOR, "door"), (SENSOR, "sensor"), (GAP, "gap")):
        # The 144-byte envelope of issue 11: payload_type set, no table.
        out[f"missing_table_{name}.ept"] = envelope(lambda b, k=kind: [reading(b, "tcu-1", k, "CSQU3054383",
                                                                                table=False)])
    out["long_source_id.ept"] = envelope(lambda b: [reading(b, "s" * 41, DOOR)])
    out["long_container_id.ept"] = envelope(lambda b: [reading(b, "tcu-1", DOOR, "CSQU3054383"),
                                                       reading(b, "tcu-1", DOOR, "CSQU30543830", 2)])
    out["long_seal_id.ept"] = envelope(lambda b: [reading(b, "tcu-1", SEAL, seal="x" * 33)])
    z = zstandard.ZstdCompressor(level=19, write_content_size=True)
    out["one_of_each.ept.zst"] = z.compress(out["one_of_each.ept"])
    out["shared_string_bomb.ept.zst"] = z.compress(envelope(shared_bomb))
    b = flatbuffers.Builder(256)  # a standalone stored Reading (decode_reading)
    b.Finish(reading(b, "tcu-0001", SENSOR, "CSQU3054383", 7))
    out["stored_reading.bin"] = bytes(b.Output())
    return out


ACTIONS = {"set_intervals": 1, "request_position": 2, "flush": 3, "get_config": 4}


def command(action, cid="c-1", gateway="gw-test-01", table=True, inner=None, command_id=True):
    b = flatbuffers.Builder(256)
    t = ACTIONS[action]
    act = None
    if table:
        inner_off = b.CreateString(inner) if inner is not None else None
        if t == 1:
            b.StartObject(3)
            if inner_off is not None:
                b.PrependUOffsetTRelativeSlot(0, inner_off, 0)
            b.PrependUint32Slot(1, 30, 0)
            b.PrependUint32Slot(2, 120, 0)
        elif t == 2:
            b.StartObject(1)
            if inner_off is not None:
                b.PrependUOffsetTRelativeSlot(0, inner_off, 0)
        else:
            b.StartObject(0)
        act = b.EndObject()
    idoff = b.CreateString(cid) if command_id else None
    gw = b.CreateString(gateway) if gateway is not None else None
    b.StartObject(5)
    if idoff is not None:
        b.PrependUOffsetTRelativeSlot(0, idoff, 0)
    if gw is not None:
        b.PrependUOffsetTRelativeSlot(1, gw, 0)
    b.PrependUint64Slot(2, 1795000000000, 0)
    b.PrependUint8Slot(3, t, 0)
    if act is not None:
        b.PrependUOffsetTRelativeSlot(4, act, 0)
    b.Finish(b.EndObject(), file_identifier=b"EPC1")
    return bytes(b.Output())


def commands():
    out = {}
    for a in ACTIONS:
        out[f"{a}.epc"] = command(a, inner="tcu-0002" if a in ("set_intervals", "request_position") else None)
        out[f"{a}_missing_table.epc"] = command(a, table=False)
    out["no_command_id.epc"] = command("flush", command_id=False)
    out["no_gateway_id.epc"] = command("flush", gateway=None)
    out["other_gateway.epc"] = command("get_config", gateway="gw-other")
    out["long_unit_id.epc"] = command("set_intervals", inner="u" * 33)
    return out


def main():
    for sub, files in (("envelope", envelopes()), ("command", commands())):
        d = os.path.join(HERE, "corpus", sub)
        os.makedirs(d, exist_ok=True)
        for name, data in sorted(files.items()):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
            print(f"{sub}/{name}: {len(data)} bytes")


if __name__ == "__main__":
    sys.exit(main())
