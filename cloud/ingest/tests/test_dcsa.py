#!/usr/bin/python3
"""[ingest] eport.dcsa (the consumer kit's, used by the ingest) without a database: every event the mapping gives for a
journey of every reading kind passes the DCSA T&T 3.0.0 OpenAPI component schemas
(../shared/standards/dcsa/tnt-v300) with the description-only code lists as enums and
unknown properties refused; every code dcsa.py defines is in DCSA's lists; the mapping
table of docs/cloud.md section 12.4; what is not mapped gives nothing; times are the
readings' own, in UTC. The strict validator itself refuses the published example that
still uses the codes of before SD-2920. Skips (77) without the standards folder,
python3-jsonschema or python3-yaml."""
import datetime as _dt
import json
import os
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
from eport import dcsa  # noqa: E402


def events():
    return [(r, dcsa.to_event(r)) for r in journey.all_rows()]


class DcsaMapping(unittest.TestCase):
    def test_every_event_passes_the_openapi_schema_with_strict_codes(self):
        evs = [e for _, e in events() if e is not None]
        self.assertGreater(len(evs), 20)
        self.assertEqual(standards.dcsa_errors({"events": evs}), [])
        for e in evs:
            self.assertEqual(standards.dcsa_errors(e, root="Event"), [], json.dumps(e))
        # and the plain schema too (what a consumer without strict codes checks)
        self.assertEqual(standards.dcsa_errors({"events": evs}, strict=False), [])

    def test_every_code_defined_is_in_the_dcsa_code_lists(self):
        lists = {p: standards.dcsa_code_list("EventClassification", p)
                 for p in ("eventType", "eventClassifier", "iotEventType", "reeferEventType")}
        self.assertEqual(set(dcsa.EVENT_TYPES), set(lists["eventType"]))
        self.assertIn(dcsa.ACTUAL, lists["eventClassifier"])
        iot = set(dcsa.DOOR_IOT.values()) | set(dcsa.CUSTODY_IOT.values()) | {dcsa.POSITION_IOT, dcsa.SEAL_IOT}
        self.assertLessEqual(iot, set(lists["iotEventType"]))
        self.assertIn(dcsa.MEASURED, lists["reeferEventType"])
        self.assertIn(dcsa.SMART_CONTAINER, standards.dcsa_code_list("IotDetails", "iotEquipmentTechnology"))
        self.assertIn(dcsa.CELSIUS, standards.dcsa_code_list("ReeferDetails", "temperatureUnit"))
        self.assertEqual(set(dcsa.KINDS_OF_TYPE), set(dcsa.EVENT_TYPES))

    def test_the_mapping_table(self):
        got = {}
        for r, e in events():
            if e is None:
                continue
            c = e["eventClassification"]
            what = r.payload.get("event") or f"{r.kind}:{r.payload.get('state', '')}"
            got.setdefault(what, (c["eventType"], c.get("iotEventType") or c.get("reeferEventType")))
        self.assertEqual(got, {
            "pairing": ("IOT", "PAIRING"), "unpairing": ("IOT", "UNPAIRING"),
            "position:": ("IOT", "BREADCRUMB"), "sensor:": ("REEFER", "MEASURED"),
            "motion_start": ("IOT", "MOTION_START"), "motion_stop": ("IOT", "MOTION_STOP"),
            "geofence_entry": ("IOT", "GEOFENCE_ENTRY"), "geofence_exit": ("IOT", "GEOFENCE_EXIT"),
            "excursion_start": ("REEFER", "MEASURED"), "excursion_end": ("REEFER", "MEASURED"),
            "door:open": ("IOT", "DOOR_OPENED"), "door:closed": ("IOT", "DOOR_CLOSED"),
            "seal:opened": ("IOT", "DEVICE_STATUS"), "seal:sealed": ("IOT", "DEVICE_STATUS"),
            "seal:tampered": ("IOT", "DEVICE_STATUS"), "seal_opened_outside_zone": ("IOT", "DEVICE_STATUS"),
            "seal_mismatch": ("IOT", "DEVICE_STATUS"), "seal_tampered": ("IOT", "DEVICE_STATUS")})

    def test_what_has_no_dcsa_counterpart_gives_nothing(self):
        none = [(r.kind, r.source, r.seq) for r, e in events() if e is None]
        # the journey's seven never-exported readings, and the dry box's sensor samples
        self.assertEqual(len(none), journey.NOT_EXPORTED + 2, none)
        self.assertIn(("gap", "tcu-0001", 36), none)
        self.assertIn(("evidence", "tcu-0001", 37), none)
        self.assertEqual([k for k in none if k[1] == "tcu-0002" and k[0] == "sensor"],
                         [("sensor", "tcu-0002", 7), ("sensor", "tcu-0002", 8)])

    def test_times_are_the_readings_own_in_utc(self):
        for r, e in events():
            if e is None:
                continue
            want = _dt.datetime.fromtimestamp(r.payload["time_utc_ms"] / 1000, _dt.timezone.utc)
            self.assertTrue(e["eventDateTime"].endswith("Z"))
            self.assertEqual(rows.parse_rfc3339(e["eventDateTime"]), want)
            self.assertEqual(e["eventUpdatedDateTime"], e["eventDateTime"])
            self.assertLessEqual(len(e["eventDateTime"]), 30)

    def test_excursions_carry_the_alarm_with_its_dates(self):
        by = {r.payload.get("event"): e for r, e in events() if r.kind == "event"}
        start, end = by["excursion_start"]["reeferDetails"], by["excursion_end"]["reeferDetails"]
        self.assertEqual(start["alarms"], [{"code": "TEMPERATURE_ABOVE_BAND",
                                            "description": "temperature above the band -20.00..-16.00 degC (first value)",
                                            "startDateTime": "2026-11-18T11:09:40.000Z"}])
        self.assertEqual((start["numberOfActiveAlarms"], start["internalSetpointTemperature"]), (1, -18.0))
        self.assertEqual(start["temperatureProbeMeasurements"][0]["measuredTemperatureValue"], -15.1)
        self.assertEqual((end["alarms"][0]["startDateTime"], end["alarms"][0]["endDateTime"]),
                         ("2026-11-18T11:09:40.000Z", "2026-11-18T11:21:40.000Z"))
        self.assertEqual(end["numberOfActiveAlarms"], 0)
        below = journey.as_row(dict(journey.readings()[0][1], kind="event", event="excursion_start",
                                    temperature_centi_c=-2300, band_low_centi_c=-2000, band_high_centi_c=-1600))
        self.assertEqual(dcsa.to_event(below)["reeferDetails"]["alarms"][0]["code"], "TEMPERATURE_BELOW_BAND")

    def test_seals_and_places(self):
        evs = [(r, e) for r, e in events() if e is not None]
        opened = next(e for r, e in evs if r.kind == "seal" and r.payload["state"] == "opened")
        self.assertEqual(opened["equipmentDetails"]["seals"], [{"number": "SL00012345"}])
        self.assertEqual(opened["reason"], "e-seal SL00012345 opened")
        long = next(e for r, e in evs if r.kind == "seal" and r.payload["state"] == "sealed")
        self.assertNotIn("seals", long["equipmentDetails"])       # 18 characters > Seal.number's 15
        entry = next(e for r, e in evs if r.payload.get("event") == "geofence_entry")
        self.assertEqual(entry["eventLocation"], {"geoCoordinate": {"latitude": "30.6271946", "longitude": "122.0212931"},
                                                  "locationName": "yangshan-4"})
        self.assertEqual(len({e["eventID"] for _, e in evs}), len(evs))

    def test_the_strict_validator_refuses_old_codes_unknown_codes_and_properties(self):
        with open(os.path.join(standards.STANDARDS, "dcsa", "examples-20260130", "tnt-300-request-iot.json")) as f:
            old = json.load(f)
        self.assertNotEqual(standards.dcsa_errors(old), [])          # eventTypeCode, DRO: before SD-2920
        self.assertEqual(standards.dcsa_errors(old, strict=False), [])  # the published schema accepts it
        ev = dcsa.to_event(journey.all_rows()[0])
        for broken in (dict(ev, eventClassification=dict(ev["eventClassification"], iotEventType="DRO")),
                       dict(ev, eventClassification=dict(ev["eventClassification"], eventClassifier="ACT")),
                       dict(ev, containerNumber="MSKU1234565"),
                       dict(ev, eventDateTime="2026-11-18 11:06:40"),
                       dict(ev, eventDateTime="2026-11-31T11:06:40Z"),
                       dict(ev, equipmentDetails={"equipmentReference": "MSKU12345650"})):
            self.assertNotEqual(standards.dcsa_errors({"events": [broken]}), [], broken)

    def test_iso6346_and_rfc3339_helpers(self):
        self.assertTrue(rows.iso6346_valid("MSKU1234565"))
        for bad in ("MSKU1234566", "MSKU123456", "msku1234565", "MSKX1234565", "", None):
            self.assertFalse(rows.iso6346_valid(bad), bad)
        self.assertEqual(rows.parse_rfc3339("2026-11-18T12:06:40.5+01:00"),
                         _dt.datetime(2026, 11, 18, 11, 6, 40, 500000, tzinfo=_dt.timezone.utc))
        for bad in ("2026-11-18T11:06:40", "2026-11-18", "2026-13-01T00:00:00Z", "2026-11-18T11:06:40+25:00", "x"):
            with self.assertRaises(ValueError):
                rows.parse_rfc3339(bad)


if __name__ == "__main__":
    unittest.main(verbosity=2)
