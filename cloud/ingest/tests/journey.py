"""journey: readings of every kind the decoder gives (dicts as
examples/python/eport_consumer.py decodes them, as eport.reading.payload holds them) for
two containers, a reefer and a dry box, one gateway: the shared input of the DCSA and
EPCIS mapping tests and of integration.cloud_api. Times are the readings' own."""
import datetime as _dt
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from eport_ingest import rows  # noqa: E402

SITE, GW = "cnsha", "gw-yangshan-01"
REEFER, DRY = "MSKU1234565", "CSQU3054383"     # ISO 6346, check digits right
T0 = 1795000000000                             # 2026-11-18T11:06:40Z
CUSTODY = f"{GW}:custody"


def readings(n_breadcrumbs: int = 6) -> list:
    """(priority class, reading) in the order a gateway would send them."""
    out = []
    t = T0
    u1, u2 = "tcu-0001", "tcu-0002"

    def add(prio, r):
        out.append((prio, r))
    add("event", {"source": CUSTODY, "container": REEFER, "seq": 1, "time_utc_ms": t, "kind": "event",
                  "event": "pairing", "dcsa": "PAIRING", "subject": u1, "first_seq": 1, "caused_by_seq": 1})
    add("event", {"source": CUSTODY, "container": DRY, "seq": 2, "time_utc_ms": t, "kind": "event",
                  "event": "pairing", "dcsa": "PAIRING", "subject": u2, "first_seq": 1, "caused_by_seq": 1})
    for i in range(n_breadcrumbs):
        for unit, c, lat in ((u1, REEFER, 306269946), (u2, DRY, 306169946)):
            add("telemetry", {"source": unit, "container": c, "seq": i + 1, "time_utc_ms": t + i * 60000,
                              "kind": "position", "lat_e7": lat + i * 1000, "lon_e7": 1220209931 + i * 1500,
                              "speed_cm_s": 420, "heading_cdeg": 9000, "fix": 3, "satellites": 9, "hdop_centi": 90})
    s = n_breadcrumbs
    add("telemetry", {"source": u1, "container": REEFER, "seq": s + 1, "time_utc_ms": t + 30000, "kind": "sensor",
                      "temperature_centi_c": -1850, "humidity_centi_pct": 8520, "battery_mv": 3650,
                      "reefer_setpoint_centi_c": -1800})
    add("telemetry", {"source": u2, "container": DRY, "seq": s + 1, "time_utc_ms": t + 30000, "kind": "sensor",
                      "temperature_centi_c": 2410, "humidity_centi_pct": 6000, "shock_milli_g": 1500, "battery_pct": 87})
    add("telemetry", {"source": u2, "container": DRY, "seq": s + 2, "time_utc_ms": t + 31000, "kind": "sensor",
                      "battery_mv": 3600})     # a battery alone: EPCIS only (no DCSA type)
    add("event", {"source": CUSTODY, "container": REEFER, "seq": 3, "time_utc_ms": t + 60000, "kind": "event",
                  "event": "motion_start", "dcsa": "MOTION_START", "subject": u1, "first_seq": 2, "caused_by_seq": 3,
                  "lat_e7": 306270946, "lon_e7": 1220211431})
    add("event", {"source": CUSTODY, "container": REEFER, "seq": 4, "time_utc_ms": t + 120000, "kind": "event",
                  "event": "geofence_entry", "dcsa": "GEOFENCE_ENTRY", "subject": u1, "first_seq": 3,
                  "caused_by_seq": 4, "zone": "yangshan-4", "lat_e7": 306271946, "lon_e7": 1220212931})
    add("alarm", {"source": CUSTODY, "container": REEFER, "seq": 5, "time_utc_ms": t + 180000, "kind": "event",
                  "event": "excursion_start", "dcsa": "MEASURED", "subject": u1, "first_seq": s + 2,
                  "caused_by_seq": s + 3, "temperature_centi_c": -1510, "setpoint_centi_c": -1800,
                  "band_low_centi_c": -2000, "band_high_centi_c": -1600})
    add("event", {"source": CUSTODY, "container": REEFER, "seq": 6, "time_utc_ms": t + 900000, "kind": "event",
                  "event": "excursion_end", "dcsa": "MEASURED", "subject": u1, "first_seq": s + 2,
                  "caused_by_seq": s + 9, "temperature_centi_c": -1320, "setpoint_centi_c": -1800,
                  "band_low_centi_c": -2000, "band_high_centi_c": -1600, "duration_ms": 720000})
    add("event", {"source": u2, "container": DRY, "seq": s + 3, "time_utc_ms": t + 200000, "kind": "door",
                  "state": "open"})
    add("event", {"source": u2, "container": DRY, "seq": s + 4, "time_utc_ms": t + 260000, "kind": "door",
                  "state": "closed"})
    add("alarm", {"source": u2, "container": DRY, "seq": s + 5, "time_utc_ms": t + 300000, "kind": "seal",
                  "seal_id": "SL00012345", "state": "opened"})
    add("alarm", {"source": CUSTODY, "container": DRY, "seq": 7, "time_utc_ms": t + 300000, "kind": "event",
                  "event": "seal_opened_outside_zone", "subject": u2, "first_seq": s + 5, "caused_by_seq": s + 5,
                  "zone": "yangshan-4", "seal_id": "SL00012345", "expected_seal_id": "SL00012345",
                  "seal_class": "high_security", "lat_e7": 306179946, "lon_e7": 1220217431})
    add("alarm", {"source": u2, "container": DRY, "seq": s + 6, "time_utc_ms": t + 400000, "kind": "seal",
                  "seal_id": "CN2026111800001234", "state": "sealed"})    # longer than DCSA's 15
    add("alarm", {"source": CUSTODY, "container": DRY, "seq": 8, "time_utc_ms": t + 400000, "kind": "event",
                  "event": "seal_mismatch", "subject": u2, "first_seq": s + 6, "caused_by_seq": s + 6,
                  "seal_id": "CN2026111800001234", "expected_seal_id": "SL00012345", "seal_class": "high_security"})
    add("alarm", {"source": u2, "container": DRY, "seq": s + 7, "time_utc_ms": t + 500000, "kind": "seal",
                  "seal_id": "CN2026111800001234", "state": "tampered"})
    add("alarm", {"source": CUSTODY, "container": DRY, "seq": 9, "time_utc_ms": t + 500000, "kind": "event",
                  "event": "seal_tampered", "subject": u2, "first_seq": s + 7, "caused_by_seq": s + 7,
                  "seal_id": "CN2026111800001234"})
    add("event", {"source": CUSTODY, "container": REEFER, "seq": 10, "time_utc_ms": t + 1000000, "kind": "event",
                  "event": "geofence_exit", "dcsa": "GEOFENCE_EXIT", "subject": u1, "first_seq": 10,
                  "caused_by_seq": 11, "zone": "yangshan-4", "interpolated": True,
                  "lat_e7": 306279946, "lon_e7": 1220222931})
    add("event", {"source": CUSTODY, "container": REEFER, "seq": 11, "time_utc_ms": t + 1200000, "kind": "event",
                  "event": "motion_stop", "dcsa": "MOTION_STOP", "subject": u1, "first_seq": 12, "caused_by_seq": 14,
                  "lat_e7": 306289946, "lon_e7": 1220232931})
    add("event", {"source": CUSTODY, "container": DRY, "seq": 12, "time_utc_ms": t + 1300000, "kind": "event",
                  "event": "unpairing", "dcsa": "UNPAIRING", "subject": u2, "first_seq": 0, "caused_by_seq": 0,
                  "command_id": "cmd-77"})
    # Not exported: a declared gap, an evidence checkpoint, a reading on no container, one
    # on a container that is not ISO 6346, a position without a fix, a door in no state
    # the decoder knows, and a reading with no valid clock.
    add("telemetry", {"source": u1, "container": REEFER, "seq": s + 30, "time_utc_ms": t + 1400000, "kind": "gap",
                      "first_seq": s + 20, "reason": "flash_full"})
    add("telemetry", {"source": u1, "container": REEFER, "seq": s + 31, "time_utc_ms": t + 1400000, "kind": "evidence",
                      "n": s + 30, "check": "verified", "cose": "d28443"})
    add("telemetry", {"source": "tcu-0003", "seq": 1, "time_utc_ms": t, "kind": "sensor", "temperature_centi_c": 2000})
    add("telemetry", {"source": "tcu-0004", "container": "MSKU1234566", "seq": 1, "time_utc_ms": t, "kind": "sensor",
                      "temperature_centi_c": 2000})
    add("telemetry", {"source": u1, "container": REEFER, "seq": s + 32, "time_utc_ms": t + 1400000, "kind": "position",
                      "lat_e7": 0, "lon_e7": 0, "fix": 0, "satellites": 0})
    add("event", {"source": u2, "container": DRY, "seq": s + 33, "time_utc_ms": t + 1400000, "kind": "door",
                  "state": "unknown"})
    add("telemetry", {"source": u1, "container": REEFER, "seq": s + 34, "time_utc_ms": 0, "kind": "sensor",
                      "temperature_centi_c": -1800, "reefer_setpoint_centi_c": -1800})
    return out


NOT_EXPORTED = 7    # the last seven readings above, in both standards


def as_row(r: dict) -> rows.Row:
    """A reading as rows.fetch returns it from eport.reading."""
    return rows.Row(site=SITE, gateway=GW, source=r["source"], seq=r["seq"],
                    time=_dt.datetime.fromtimestamp(r["time_utc_ms"] / 1000, _dt.timezone.utc), kind=r["kind"],
                    container=r.get("container"), time_source=r.get("time_source", "source"), payload=r)


def all_rows() -> list:
    return [as_row(r) for _, r in readings()]
