"""dcsa: DCSA Track & Trace 3.0.0 events (tnt-v3.0.0-openapi.yaml, snapshot
v3.0.0-20260525-beta) from stored or decoded readings (eport.records.Row). Pure functions:
to_event(row) gives one `Event` or None when the reading has no DCSA counterpart
(docs/cloud.md section 12.5 says which and why). Every code used is defined here once;
tests/test_dcsa.py checks them against the code lists of the OpenAPI descriptions."""

from __future__ import annotations

import datetime as _dt

from .records import Row, exportable, rfc3339

API_VERSION = "3.0.0"
# EventClassification.eventType
IOT, REEFER, EQUIPMENT, SHIPMENT, TRANSPORT = "IOT", "REEFER", "EQUIPMENT", "SHIPMENT", "TRANSPORT"
EVENT_TYPES = (SHIPMENT, TRANSPORT, EQUIPMENT, IOT, REEFER)
ACTUAL = "ACTUAL"                              # eventClassifier: readings are what happened
SMART_CONTAINER = "SMART_CONTAINER"            # IotDetails.iotEquipmentTechnology
CELSIUS = "CEL"                                # ReeferDetails.temperatureUnit
# IotDetails iotEventType of our readings and custody events (docs/custody-events.md)
DOOR_IOT = {"open": "DOOR_OPENED", "closed": "DOOR_CLOSED"}
POSITION_IOT = "BREADCRUMB"
SEAL_IOT = "DEVICE_STATUS"                     # DCSA has no seal event: the e-seal's status
CUSTODY_IOT = {"pairing": "PAIRING", "unpairing": "UNPAIRING", "geofence_entry": "GEOFENCE_ENTRY",
               "geofence_exit": "GEOFENCE_EXIT", "motion_start": "MOTION_START", "motion_stop": "MOTION_STOP",
               "seal_mismatch": SEAL_IOT, "seal_opened_outside_zone": SEAL_IOT, "seal_tampered": SEAL_IOT}
MEASURED = "MEASURED"                          # reeferEventType
EXCURSION_EVENTS = ("excursion_start", "excursion_end")
# ReeferAlarm.code: DCSA leaves alarm codes to the device maker; these are ours
# (agent/custody dcsa_alarm_code()).
ALARM_ABOVE, ALARM_BELOW = "TEMPERATURE_ABOVE_BAND", "TEMPERATURE_BELOW_BAND"
SEAL_NUMBER_MAX = 15                           # Seal.number maxLength
# Which eventTypes each stored kind can give (the SQL pre-filter of a GET with eventTypes).
KINDS_OF_TYPE = {IOT: ("position", "door", "seal", "event"), REEFER: ("sensor", "event"),
                 EQUIPMENT: (), SHIPMENT: (), TRANSPORT: ()}


def event_id(row: Row) -> str:
    """Unique and stable per reading: the reading's key (site, gateway, source, seq)."""
    return f"eport:{row.site}:{row.gateway}:{row.source}:{row.seq}"


def _celsius(centi):
    return round(centi / 100.0, 2)


def _base(row: Row, classification: dict) -> dict:
    t = rfc3339(row.time)
    ev = {"eventID": event_id(row),
          # The reading's own time. A stored event is never updated, so it was last
          # updated when it was created, at the reading's time (never arrival time).
          "eventDateTime": t, "eventUpdatedDateTime": t,
          "eventClassification": {"eventType": classification.pop("eventType"), "eventClassifier": ACTUAL,
                                  **classification},
          "equipmentDetails": {"equipmentReference": row.container}}
    where = row.lat_lon
    if where is not None:
        ev["eventLocation"] = {"geoCoordinate": {"latitude": f"{where[0]:.7f}", "longitude": f"{where[1]:.7f}"}}
    return ev


def _iot(row: Row, code: str, reason: str | None = None) -> dict:
    ev = _base(row, {"eventType": IOT, "iotEventType": code})
    ev["iotDetails"] = {"iotEquipmentTechnology": SMART_CONTAINER}
    if reason:
        ev["reason"] = reason[:250]
    return ev


def _seals(ev: dict, *numbers) -> None:
    seals = [{"number": n} for n in numbers if n and len(n) <= SEAL_NUMBER_MAX]
    if seals:
        ev["equipmentDetails"]["seals"] = seals


def _reefer(row: Row, temperature_centi=None, setpoint_centi=None, humidity_centi=None) -> dict:
    ev = _base(row, {"eventType": REEFER, "reeferEventType": MEASURED})
    d = {"temperatureUnit": CELSIUS}
    if setpoint_centi is not None:
        d["internalSetpointTemperature"] = _celsius(setpoint_centi)
    if temperature_centi is not None:
        d["temperatureProbeMeasurements"] = [{"measuredTemperatureValue": _celsius(temperature_centi),
                                              "probeLabel": row.payload.get("subject") or row.source}]
    if humidity_centi is not None:
        d["measuredParameters"] = {"humidityPercentage": round(humidity_centi / 100.0, 2)}
    ev["reeferDetails"] = d
    return ev


def _excursion(row: Row) -> dict | None:
    p = row.payload
    t, lo, hi = p.get("temperature_centi_c"), p.get("band_low_centi_c"), p.get("band_high_centi_c")
    if t is None or lo is None or hi is None:
        return None
    above = t > hi        # START: the first value out of band; END: the extreme
    band = f"{_celsius(lo):.2f}..{_celsius(hi):.2f} degC"
    ev = _reefer(row, t, p.get("setpoint_centi_c"))
    d = ev["reeferDetails"]
    alarm = {"code": ALARM_ABOVE if above else ALARM_BELOW}
    if p["event"] == "excursion_start":
        alarm["description"] = f"temperature {'above' if above else 'below'} the band {band} (first value)"
        alarm["startDateTime"] = rfc3339(row.time)
        d["numberOfActiveAlarms"] = 1
    else:
        duration_ms = p.get("duration_ms")
        if not isinstance(duration_ms, int) or duration_ms < 0:
            return None
        alarm["description"] = (f"temperature {'above' if above else 'below'} the band {band} ended "
                                f"{'by a gap in the samples' if p.get('ended_by_gap') else 'back in band'}"
                                f" (extreme value)")
        alarm["startDateTime"] = rfc3339(row.time - _dt.timedelta(milliseconds=duration_ms))
        alarm["endDateTime"] = rfc3339(row.time)
        d["numberOfActiveAlarms"] = 0
    d["alarms"] = [alarm]
    ev["reason"] = f"reefer excursion {'start' if p['event'] == 'excursion_start' else 'end'}"
    return ev


def to_event(row: Row) -> dict | None:
    """The DCSA T&T 3.0 Event of one stored reading, or None (no counterpart in DCSA, or
    the container is not an ISO 6346 number, which DCSA's equipmentReference expects,
    or the reading has no valid clock)."""
    if not exportable(row):
        return None
    p = row.payload
    if row.kind == "position":
        if row.lat_lon is None or p.get("fix", 0) == 0:
            return None       # a position without a fix says nowhere
        return _iot(row, POSITION_IOT)
    if row.kind == "door":
        code = DOOR_IOT.get(p.get("state"))
        return _iot(row, code) if code else None
    if row.kind == "seal":
        state = p.get("state")
        if state not in ("sealed", "opened", "tampered"):
            return None
        ev = _iot(row, SEAL_IOT, f"e-seal {p['seal_id']} {state}" if p.get("seal_id") else f"e-seal {state}")
        _seals(ev, p.get("seal_id"))
        return ev
    if row.kind == "sensor":
        # Only a reefer's sample (it carries its setpoint) is a REEFER event. A dry box's
        # temperature, humidity, shock or battery has no DCSA event type.
        if p.get("reefer_setpoint_centi_c") is None:
            return None
        if p.get("temperature_centi_c") is None and p.get("humidity_centi_pct") is None:
            return None
        return _reefer(row, p.get("temperature_centi_c"), p.get("reefer_setpoint_centi_c"),
                       p.get("humidity_centi_pct"))
    if row.kind == "event":
        name = p.get("event")
        if name in EXCURSION_EVENTS:
            return _excursion(row)
        code = CUSTODY_IOT.get(name)
        if code is None:
            return None
        reason = name.replace("_", " ")
        if name.startswith("seal_"):
            reason = f"{reason}: e-seal {p['seal_id']} read" if p.get("seal_id") else f"{reason}: no seal number read"
            if p.get("expected_seal_id"):
                reason += f", {p['expected_seal_id']} expected"
            if p.get("zone"):
                reason += f", in zone {p['zone']}"
        elif name.startswith(("pairing", "unpairing")):
            reason = f"{reason} of IoT device {p.get('subject', '')}"
        ev = _iot(row, code, reason)
        if p.get("zone"):
            ev.setdefault("eventLocation", {})["locationName"] = p["zone"][:100]
        if name.startswith("seal_"):
            _seals(ev, p.get("seal_id"))
        return ev
    return None


def event_type(ev: dict) -> str:
    return ev["eventClassification"]["eventType"]
