"""Telemetry envelopes built in Python from the JSON lines eport-tail prints (the inverse of
eport::codec::reading_to_json), with the flatc-generated builder of schema/telemetry.fbs,
for the Python consumer tests. Also the schema 1.1 lines they use: declared gaps and readings
timed by the gateway, the same lines tests/unit/codec_test.cpp expects from the C++ codec.
Needs python3-flatbuffers and the code that eport_consumer.load_codec() generated."""
import importlib
import json

import flatbuffers

# What eport-tail prints for the readings of gaps_and_gateway_time() in tests/unit/codec_test.cpp.
GAP_LINES = [
    '{"source":"TU-0017","container":"CSQU3054383","seq":119,"time_utc_ms":1795000000000,"kind":"gap",'
    '"first_seq":101,"reason":"unknown"}',
    '{"source":"TU-0017","container":"CSQU3054383","seq":138,"time_utc_ms":1795000000000,"kind":"gap",'
    '"first_seq":120,"reason":"flash_full"}',
    '{"source":"TU-0017","container":"CSQU3054383","seq":157,"time_utc_ms":1795000000000,"kind":"gap",'
    '"first_seq":139,"reason":"unit_reset"}',
    '{"source":"TU-0017","container":"CSQU3054383","seq":176,"time_utc_ms":1795000000000,"kind":"gap",'
    '"first_seq":158,"reason":"expired"}',
    '{"source":"TU-0017","container":"CSQU3054383","seq":195,"time_utc_ms":1795000000000,"kind":"gap",'
    '"first_seq":177,"reason":"rejected_malformed"}',
    '{"source":"TU-0017","container":"CSQU3054383","seq":196,"time_utc_ms":1795000000000,"kind":"gap",'
    '"first_seq":196,"reason":"rejected_malformed"}',
    '{"source":"TU-0017","container":"CSQU3054383","seq":197,"time_utc_ms":1795000000500,'
    '"time_source":"gateway_receive","kind":"door","state":"open"}',
    '{"source":"TU-0017","container":"CSQU3054383","seq":204,"time_utc_ms":1795000000600,'
    '"time_source":"gateway_receive","kind":"gap","first_seq":198,"reason":"unit_reset"}',
    '{"source":"TU-0017","seq":9007199254740991,"time_utc_ms":1795000000700,"kind":"gap",'
    '"first_seq":1,"reason":"expired"}',
    # Other kinds with gateway time, and the gateway's own GNSS (no container).
    '{"source":"TU-0017","container":"CSQU3054383","seq":205,"time_utc_ms":1795000000800,'
    '"time_source":"gateway_receive","kind":"seal","seal_id":"SL00012345","state":"tampered"}',
    '{"source":"TU-0017","container":"CSQU3054383","seq":206,"time_utc_ms":1795000000900,'
    '"time_source":"gateway_receive","kind":"sensor","temperature_centi_c":-1850,"battery_mv":3700}',
    '{"source":"gw-test-01","seq":3,"time_utc_ms":1795000001000,"time_source":"gateway_receive",'
    '"kind":"position","lat_e7":306187233,"lon_e7":1220670000,"fix":1,"satellites":7}',
]

KINDS = {"position": "Position", "seal": "SealEvent", "door": "DoorEvent", "sensor": "SensorSample",
         "gap": "SequenceGap", "evidence": "EvidenceCheckpoint"}
CHECK = {"unchecked": 0, "verified": 1, "bad_signature": 2, "broken_chain": 3, "malformed": 4, "wrong_key": 5,
         "other_source": 6, "replayed": 7, "seq_mismatch": 8,
         "readings_mismatch": 9}

# Schema 1.4: what eport-tail prints for evidence checkpoints (the first is tests/unit/codec_test.cpp's).
EVIDENCE_LINES = [
    '{"source":"TU-0042:ev","seq":1003,"time_utc_ms":1718000002000,"kind":"evidence","n":0,"check":"malformed",'
    '"cose":"d284"}',
    '{"source":"TU-0042:ev","seq":1005,"time_utc_ms":1718000003000,"kind":"evidence","n":2,"check":"verified",'
    '"cose":"' + "d2" * 336 + '"}',
]
SEAL = {"unknown": 0, "sealed": 1, "opened": 2, "tampered": 3}
DOOR = {"unknown": 0, "closed": 1, "open": 2}
REASON = {"unknown": 0, "flash_full": 1, "unit_reset": 2, "expired": 3, "rejected_malformed": 4}
PRIORITY = {"bulk": 0, "telemetry": 1, "event": 2, "alarm": 3}
SENSOR_FIELDS = ["temperature_centi_c", "humidity_centi_pct", "shock_milli_g", "battery_mv", "battery_pct",
                 "reefer_setpoint_centi_c"]


def _camel(key):
    return "".join(part.capitalize() for part in key.split("_"))


class Builder:
    """Envelopes from reading dicts. Needs eport_consumer.load_codec() to have run (the generated
    package "eport.telemetry.v1" on sys.path)."""

    def __init__(self):
        names = ["Envelope", "Reading", "Payload", *KINDS.values()]
        self.m = {n: importlib.import_module(f"eport.telemetry.v1.{n}") for n in names}

    def _payload(self, b, r):
        name = KINDS[r["kind"]]
        m = self.m[name]
        seal_id = b.CreateString(r["seal_id"]) if r["kind"] == "seal" else None
        cose = b.CreateByteVector(bytes.fromhex(r["cose"])) if r["kind"] == "evidence" else None
        m.Start(b)
        if r["kind"] == "position":
            m.AddLatE7(b, r["lat_e7"])
            m.AddLonE7(b, r["lon_e7"])
            for key in ("speed_cm_s", "heading_cdeg", "hdop_centi"):
                if key in r:
                    getattr(m, "Add" + _camel(key))(b, r[key])
            m.AddFix(b, r["fix"])
            m.AddSatellites(b, r["satellites"])
        elif r["kind"] == "seal":
            m.AddSealId(b, seal_id)
            m.AddState(b, SEAL[r["state"]])
        elif r["kind"] == "door":
            m.AddState(b, DOOR[r["state"]])
        elif r["kind"] == "sensor":
            for key in SENSOR_FIELDS:
                if key in r:
                    getattr(m, "Add" + _camel(key))(b, r[key])
        elif r["kind"] == "evidence":
            m.AddCose(b, cose)
            m.AddN(b, r["n"])
            m.AddCheck(b, CHECK[r["check"]])
        else:
            m.AddFirstSeq(b, r["first_seq"])
            m.AddReason(b, r.get("reason_value", REASON.get(r["reason"], 0)))
        return getattr(self.m["Payload"].Payload, name), m.End(b)

    def _reading(self, b, r):
        """A reading as a 1.1 writer emits it; "time_source" absent: as a 1.0 writer (no field)."""
        if "payload_type" in r:  # a payload kind from a newer schema: any table will do
            self.m["DoorEvent"].Start(b)
            ptype, payload = r["payload_type"], self.m["DoorEvent"].End(b)
        else:
            ptype, payload = self._payload(b, r)
        source = b.CreateString(r["source"])
        container = b.CreateString(r["container"]) if r.get("container") else None
        R = self.m["Reading"]
        R.Start(b)
        R.AddSourceId(b, source)
        if container is not None:
            R.AddContainerId(b, container)
        R.AddSeq(b, r["seq"])
        R.AddTimeUtcMs(b, r["time_utc_ms"])
        R.AddPayloadType(b, ptype)
        R.AddPayload(b, payload)
        if "time_source_value" in r:
            R.AddTimeSource(b, r["time_source_value"])
        elif r.get("time_source") == "gateway_receive":
            R.AddTimeSource(b, 1)
        if r.get("class_seq"):  # schema 1.5; "class" is the envelope's priority
            R.AddClassSeq(b, r["class_seq"])
        return R.End(b)

    def envelope(self, readings, site="cnsha", gateway="gw-test-01", envelope_seq=1, sent_utc_ms=1795000002000,
                 priority="event"):
        """The bytes of one envelope; readings are dicts (json.loads of eport-tail's lines) or lines."""
        readings = [json.loads(r) if isinstance(r, str) else r for r in readings]
        b = flatbuffers.Builder(1024)
        offsets = [self._reading(b, r) for r in readings]
        E = self.m["Envelope"]
        E.StartReadingsVector(b, len(offsets))
        for o in reversed(offsets):
            b.PrependUOffsetTRelative(o)
        vec = b.EndVector()
        site_off, gw_off = b.CreateString(site), b.CreateString(gateway)
        E.Start(b)
        E.AddSiteId(b, site_off)
        E.AddGatewayId(b, gw_off)
        E.AddEnvelopeSeq(b, envelope_seq)
        E.AddSentUtcMs(b, sent_utc_ms)
        E.AddPriority(b, PRIORITY[priority])
        E.AddReadings(b, vec)
        b.Finish(E.End(b), file_identifier=b"EPT1")
        return bytes(b.Output())
