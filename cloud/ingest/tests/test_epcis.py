#!/usr/bin/python3
"""[ingest] eport.epcis (the consumer kit's, used by the ingest) without a database: the validator (the GS1 EPCIS 2.0 JSON
schema of ../shared/standards/gs1-epcis with strict RFC 3339 date-time and RFC 3986 uri
checks) accepts the 21 GS1 examples and refuses each of the 15 must-fail documents of
openepcis; every event the mapping gives for a journey of every reading kind passes, in
an EPCISDocument, an EPCISQueryDocument and alone; every CBV value epcis.py defines is
in the schema's lists; the mapping table of docs/cloud.md section 12.4; what is not
mapped gives nothing; times are the readings' own, in UTC. Skips (77) without the
standards folder, python3-jsonschema or python3-yaml."""
import datetime as _dt
import json
import os
import re
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
import standards  # noqa: E402

if __name__ == "__main__" and standards.missing():
    print(f"SKIP: needs {standards.missing()}")
    sys.exit(77)

import journey  # noqa: E402
from eport_ingest import rows  # noqa: E402
from eport import epcis  # noqa: E402


def events(ids=epcis.Ids()):
    return [(r, epcis.to_event(r, ids)) for r in journey.all_rows()]


def schema_enum(name):
    with open(standards.EPCIS_SCHEMA) as f:
        d = json.load(f)["definitions"][name]
    return next(a["enum"] for a in d["anyOf"] if "enum" in a)


class EpcisValidator(unittest.TestCase):
    def test_the_gs1_examples_pass(self):
        docs = standards.example_documents()
        self.assertEqual(len(docs), 21)
        for path in docs:
            with open(path) as f:
                self.assertEqual(standards.epcis_errors(json.load(f)), [], path)

    def test_every_must_fail_document_fails(self):
        docs = standards.must_fail_documents()
        self.assertEqual(len(docs), 15)
        for path in docs:
            with open(path) as f:
                self.assertNotEqual(standards.epcis_errors(json.load(f)), [], path)

    def test_the_format_checks(self):
        for ok in ("2026-11-18T11:06:40Z", "2026-11-18T11:06:40.123456+05:30", "2024-02-29t00:00:00z"):
            self.assertTrue(standards.is_date_time(ok), ok)
        for bad in ("2026-11-18T11:06:40", "22-07-2026", "2026-11-31T00:00:00Z", "2025-02-29T00:00:00Z",
                    "2026-11-18T24:00:00Z", "2026-11-18T11:06:40+24:00", "2026-11-18 11:06:40Z"):
            self.assertFalse(standards.is_date_time(bad), bad)
        for ok in ("urn:epc:id:sgtin:4012345.011111.9876", "geo:30.6,122.0", "https://id.gs1.org/8004/401234599999",
                   "ni:///sha-256;74f1dc48?ver=CBV2.0", "urn:eport:unit:cnsha:gw-1:gw-1%3Acustody"):
            self.assertTrue(standards.is_uri(ok), ok)
        for bad in ("transforming", "in_transport", "materialType", "urn:a b", "http://x/%zz", ":x"):
            self.assertFalse(standards.is_uri(bad), bad)


class EpcisMapping(unittest.TestCase):
    def test_every_event_passes_in_documents_and_alone(self):
        evs = [e for _, e in events() if e is not None]
        self.assertGreater(len(evs), 20)
        self.assertEqual(standards.epcis_errors(epcis.document(evs)), [])
        self.assertEqual(standards.epcis_errors(epcis.query_document(evs)), [])
        for e in evs:
            self.assertEqual(standards.epcis_errors(dict(e, **{"@context": epcis.CONTEXT})), [], json.dumps(e))
        gs1 = [e for _, e in events(epcis.Ids(gs1_company_prefix="4012345")) if e is not None]
        self.assertEqual(standards.epcis_errors(epcis.document(gs1)), [])
        self.assertEqual(gs1[0]["parentID"], "urn:epc:id:giai:4012345.MSKU1234565")

    def test_every_cbv_value_defined_is_in_the_schema(self):
        steps = {epcis.BIZ_SENSOR_REPORTING, epcis.BIZ_ARRIVING, epcis.BIZ_DEPARTING, epcis.BIZ_TRANSPORTING,
                 epcis.BIZ_INSTALLING, epcis.BIZ_REMOVING} | {s for s, _ in epcis.CUSTODY_CBV.values() if s} | \
            {s for _, s in epcis.PAIRING_CBV.values()}
        self.assertLessEqual(steps, set(schema_enum("bizStep")))
        disp = set(epcis.DOOR_DISPOSITION.values()) | set(epcis.SEAL_DISPOSITION.values()) | \
            {d for _, d in epcis.CUSTODY_CBV.values() if d}
        self.assertLessEqual(disp, set(schema_enum("disposition")))
        self.assertLessEqual({t for _, t, _, _ in epcis.SENSOR_REPORTS} | {epcis.ANGLE, epcis.SPEED},
                             set(schema_enum("measurementType")))
        self.assertIn(epcis.ALARM, schema_enum("sensorAlertType"))
        for _, _, uom, _ in epcis.SENSOR_REPORTS:
            self.assertRegex(uom, r"^[A-Z0-9]{2,3}$")

    def test_the_mapping_table(self):
        got = {}
        for r, e in events():
            if e is None:
                continue
            what = r.payload.get("event") or f"{r.kind}:{r.payload.get('state', '')}"
            got.setdefault(what, (e["type"], e["action"], e.get("bizStep"), e.get("disposition"),
                                  bool(e.get("sensorElementList"))))
        O, A = "ObjectEvent", "AssociationEvent"
        self.assertEqual(got, {
            "pairing": (A, "ADD", "installing", None, False), "unpairing": (A, "DELETE", "removing", None, False),
            "position:": (O, "OBSERVE", "sensor_reporting", None, True),
            "sensor:": (O, "OBSERVE", "sensor_reporting", None, True),
            "motion_start": (O, "OBSERVE", "transporting", "in_transit", False),
            "motion_stop": (O, "OBSERVE", None, None, False),
            "geofence_entry": (O, "OBSERVE", "arriving", None, False),
            "geofence_exit": (O, "OBSERVE", "departing", None, False),
            "excursion_start": (O, "OBSERVE", "sensor_reporting", None, True),
            "excursion_end": (O, "OBSERVE", "sensor_reporting", None, True),
            "door:open": (O, "OBSERVE", None, "container_open", False),
            "door:closed": (O, "OBSERVE", None, "container_closed", False),
            "seal:opened": (O, "OBSERVE", None, "container_open", False),
            "seal:sealed": (O, "OBSERVE", None, "container_closed", False),
            "seal:tampered": (O, "OBSERVE", None, "non_conformant", False),
            "seal_opened_outside_zone": (O, "OBSERVE", None, "non_conformant", False),
            "seal_mismatch": (O, "OBSERVE", None, "non_conformant", False),
            "seal_tampered": (O, "OBSERVE", None, "non_conformant", False)})

    def test_sensor_reports_units_and_excursions(self):
        evs = [(r, e) for r, e in events() if e is not None]
        reefer = next(e for r, e in evs if r.kind == "sensor" and r.container == journey.REEFER)
        self.assertEqual(reefer["sensorElementList"][0]["sensorReport"],
                         [{"type": "Temperature", "value": -18.5, "uom": "CEL"},
                          {"type": "RelativeHumidity", "value": 85.2, "uom": "P1"},
                          {"type": "Voltage", "value": 3.65, "uom": "VLT"}])
        dry = next(e for r, e in evs if r.kind == "sensor" and r.container == journey.DRY)
        self.assertEqual([(s["type"], s["value"]) for s in dry["sensorElementList"][0]["sensorReport"]],
                         [("Temperature", 24.1), ("RelativeHumidity", 60.0), ("Acceleration", 14.709975),
                          ("Dimensionless", 87)])
        by = {r.payload.get("event"): e for r, e in evs if r.kind == "event"}
        end = by["excursion_end"]["sensorElementList"][0]
        self.assertEqual(end["sensorMetadata"]["startTime"], "2026-11-18T11:09:40.000Z")
        self.assertEqual(end["sensorMetadata"]["endTime"], "2026-11-18T11:21:40.000Z")
        self.assertEqual(end["sensorReport"], [{"type": "Temperature", "exception": "ALARM_CONDITION", "uom": "CEL",
                                                "maxValue": -13.2}])
        self.assertEqual(by["geofence_entry"]["bizLocation"], {"id": "urn:eport:zone:cnsha:yangshan-4"})
        self.assertEqual(by["seal_mismatch"]["eport:expectedSealID"], "SL00012345")
        self.assertEqual(by["seal_mismatch"]["readPoint"], {"id": "urn:eport:gateway:cnsha:gw-yangshan-01"})

    def test_what_has_no_epcis_counterpart_gives_nothing(self):
        none = [(r.kind, r.source, r.seq) for r, e in events() if e is None]
        self.assertEqual(len(none), journey.NOT_EXPORTED, none)

    def test_times_ids_and_containers(self):
        evs = [(r, e) for r, e in events() if e is not None]
        for r, e in evs:
            want = _dt.datetime.fromtimestamp(r.payload["time_utc_ms"] / 1000, _dt.timezone.utc)
            self.assertTrue(e["eventTime"].endswith("Z"))
            self.assertEqual(rows.parse_rfc3339(e["eventTime"]), want)
            self.assertEqual(e["eventTimeZoneOffset"], "+00:00")
            self.assertRegex(e["eventID"], r"^urn:uuid:[0-9a-f-]{36}$")
            epc = e.get("parentID") or e["epcList"][0]
            self.assertEqual(epcis.Ids().container_from_epc(epc), r.container)
        self.assertEqual(len({e["eventID"] for _, e in evs}), len(evs))
        self.assertEqual([e["eventID"] for _, e in evs], [e["eventID"] for _, e in events() if e is not None])
        with self.assertRaises(ValueError):
            epcis.Ids(gs1_company_prefix="40123x")
        self.assertTrue(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", epcis.document([])["creationDate"]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
