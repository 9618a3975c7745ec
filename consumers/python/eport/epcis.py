"""epcis: GS1 EPCIS 2.0 JSON-LD events and documents (EPCIS-JSON-Schema.json, CBV 2.0)
from stored or decoded readings (eport.records.Row). Pure functions: to_event(row, ids)
gives one ObjectEvent or AssociationEvent, or None when the reading has no EPCIS
counterpart (docs/cloud.md section 12.5); document() and query_document() wrap events.
Every CBV value and identifier form used is defined here once."""

from __future__ import annotations

import datetime as _dt
import re
import uuid
from dataclasses import dataclass
from urllib.parse import quote

from .records import Row, exportable, rfc3339

GS1_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
# Our extension namespace (JSON-LD prefix `eport:`) for what CBV has no term for: the
# custody event's name and the seal numbers. Replace it with a URL you control if you
# publish documents outside your partners.
EPORT_NS = "urn:eport:vocab:"
CONTEXT = [GS1_CONTEXT, {"eport": EPORT_NS}]
SCHEMA_VERSION = "2.0"
UTC_OFFSET = "+00:00"
QUERY_NAME = "SimpleEventQuery"
OBJECT_EVENT, ASSOCIATION_EVENT = "ObjectEvent", "AssociationEvent"
EVENT_TYPES = (OBJECT_EVENT, ASSOCIATION_EVENT)
OBSERVE, ADD, DELETE = "OBSERVE", "ADD", "DELETE"
# CBV 2.0 business steps and dispositions (bare words: the GS1 context expands them)
BIZ_SENSOR_REPORTING, BIZ_ARRIVING, BIZ_DEPARTING = "sensor_reporting", "arriving", "departing"
BIZ_TRANSPORTING, BIZ_INSTALLING, BIZ_REMOVING = "transporting", "installing", "removing"
DISP_OPEN, DISP_CLOSED, DISP_IN_TRANSIT, DISP_NON_CONFORMANT = "container_open", "container_closed", "in_transit", \
    "non_conformant"
DOOR_DISPOSITION = {"open": DISP_OPEN, "closed": DISP_CLOSED}
SEAL_DISPOSITION = {"sealed": DISP_CLOSED, "opened": DISP_OPEN, "tampered": DISP_NON_CONFORMANT}
# custody event -> (bizStep, disposition); None where CBV has no term (docs/cloud.md 12.5)
CUSTODY_CBV = {"geofence_entry": (BIZ_ARRIVING, None), "geofence_exit": (BIZ_DEPARTING, None),
               "motion_start": (BIZ_TRANSPORTING, DISP_IN_TRANSIT), "motion_stop": (None, None),
               "excursion_start": (BIZ_SENSOR_REPORTING, None), "excursion_end": (BIZ_SENSOR_REPORTING, None),
               "seal_mismatch": (None, DISP_NON_CONFORMANT), "seal_opened_outside_zone": (None, DISP_NON_CONFORMANT),
               "seal_tampered": (None, DISP_NON_CONFORMANT)}
PAIRING_CBV = {"pairing": (ADD, BIZ_INSTALLING), "unpairing": (DELETE, BIZ_REMOVING)}
# sensorReport type (CBV measurement type) and UN/ECE Rec. 20 unit per payload field,
# with the factor from our integer unit
SENSOR_REPORTS = (("temperature_centi_c", "Temperature", "CEL", 0.01),
                  ("humidity_centi_pct", "RelativeHumidity", "P1", 0.01),
                  ("shock_milli_g", "Acceleration", "MSK", 9.80665e-3),     # milli-g -> m/s2
                  ("battery_mv", "Voltage", "VLT", 0.001),
                  ("battery_pct", "Dimensionless", "P1", 1))
ANGLE, DEGREES, CRS84 = "Angle", "DD", "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
SPEED, METRES_PER_S = "Speed", "MTS"
ALARM = "ALARM_CONDITION"                      # sensorAlertType
# eventID: a name-based UUID of the reading's key, so the same reading always has the same id
_EVENT_ID_NS = uuid.UUID("5b0e6d8c-3f3e-5a5e-9f4e-6570f72d6564")
_COMPANY_PREFIX = re.compile(r"^[0-9]{6,12}$")


def _part(text: str) -> str:
    return quote(text, safe="-._~")


@dataclass(frozen=True)
class Ids:
    """How things are named. A container is a GS1 GIAI (urn:epc:id:giai:<prefix>.<ISO 6346
    number>) when the operator gives a GS1 company prefix, else urn:eport:iso6346:<number>;
    units, gateways and zones have no GS1 key here: urn:eport:unit|gateway|zone:..."""
    gs1_company_prefix: str | None = None
    base: str = "urn:eport:"

    def __post_init__(self):
        if self.gs1_company_prefix is not None and not _COMPANY_PREFIX.match(self.gs1_company_prefix):
            raise ValueError(f"GS1 company prefix {self.gs1_company_prefix!r}: 6 to 12 digits")

    def container(self, container: str) -> str:
        if self.gs1_company_prefix:
            return f"urn:epc:id:giai:{self.gs1_company_prefix}.{container}"
        return f"{self.base}iso6346:{container}"

    def unit(self, row: Row, unit: str) -> str:
        return f"{self.base}unit:{_part(row.site)}:{_part(row.gateway)}:{_part(unit)}"

    def gateway(self, row: Row) -> str:
        return f"{self.base}gateway:{_part(row.site)}:{_part(row.gateway)}"

    def zone(self, row: Row, zone: str) -> str:
        return f"{self.base}zone:{_part(row.site)}:{_part(zone)}"

    def container_from_epc(self, epc: str) -> str | None:
        """The ISO 6346 number in one of our container EPCs, or None."""
        for prefix in ((f"urn:epc:id:giai:{self.gs1_company_prefix}.",) if self.gs1_company_prefix else ()) + \
                (f"{self.base}iso6346:",):
            if epc.startswith(prefix):
                return epc[len(prefix):]
        return None


def event_id(row: Row) -> str:
    return f"urn:uuid:{uuid.uuid5(_EVENT_ID_NS, f'{row.site}/{row.gateway}/{row.source}/{row.seq}')}"


def _read_point(row: Row, ids: Ids) -> dict:
    where = row.lat_lon
    if where is not None:
        return {"id": f"geo:{where[0]:.7f},{where[1]:.7f}"}
    return {"id": ids.gateway(row)}


def _event(row: Row, ids: Ids, biz_step=None, disposition=None) -> dict:
    ev = {"type": OBJECT_EVENT, "eventTime": rfc3339(row.time), "eventTimeZoneOffset": UTC_OFFSET,
          "eventID": event_id(row), "epcList": [ids.container(row.container)], "action": OBSERVE}
    if biz_step:
        ev["bizStep"] = biz_step
    if disposition:
        ev["disposition"] = disposition
    ev["readPoint"] = _read_point(row, ids)
    return ev


def _reports(p: dict) -> list:
    out = []
    for key, mtype, uom, factor in SENSOR_REPORTS:
        v = p.get(key)
        if isinstance(v, int) and not isinstance(v, bool):
            out.append({"type": mtype, "value": round(v * factor, 6), "uom": uom})
    return out


def _seal_fields(ev: dict, p: dict) -> None:
    if p.get("seal_id"):
        ev["eport:sealID"] = p["seal_id"]
    if p.get("expected_seal_id"):
        ev["eport:expectedSealID"] = p["expected_seal_id"]


def _custody(row: Row, ids: Ids) -> dict | None:
    p = row.payload
    name = p.get("event")
    if name in PAIRING_CBV:
        subject = p.get("subject")
        if not subject:
            return None
        action, step = PAIRING_CBV[name]
        ev = {"type": ASSOCIATION_EVENT, "eventTime": rfc3339(row.time), "eventTimeZoneOffset": UTC_OFFSET,
              "eventID": event_id(row), "parentID": ids.container(row.container),
              "childEPCs": [ids.unit(row, subject)], "action": action, "bizStep": step,
              "readPoint": _read_point(row, ids), "eport:custodyEvent": name}
        return ev
    if name not in CUSTODY_CBV:
        return None
    step, disposition = CUSTODY_CBV[name]
    ev = _event(row, ids, step, disposition)
    zone = p.get("zone")
    if zone and name != "geofence_exit":     # where the container is now (after an exit: not there)
        ev["bizLocation"] = {"id": ids.zone(row, zone)}
    elif zone and row.lat_lon is None:       # an exit without a place: observed at the zone's edge
        ev["readPoint"] = {"id": ids.zone(row, zone)}
    if name in ("excursion_start", "excursion_end"):
        t, lo, hi = p.get("temperature_centi_c"), p.get("band_low_centi_c"), p.get("band_high_centi_c")
        if t is None or lo is None or hi is None:
            return None
        meta = {"deviceID": ids.unit(row, p.get("subject") or row.source)}
        report = {"type": "Temperature", "exception": ALARM, "uom": "CEL"}
        if name == "excursion_start":
            meta["startTime"] = rfc3339(row.time)
            report["value"] = round(t / 100.0, 2)          # the first value out of band
        else:
            d = p.get("duration_ms")
            if not isinstance(d, int) or d < 0:
                return None
            meta["startTime"] = rfc3339(row.time - _dt.timedelta(milliseconds=d))
            meta["endTime"] = rfc3339(row.time)
            report["maxValue" if t > hi else "minValue"] = round(t / 100.0, 2)   # the extreme
        ev["sensorElementList"] = [{"sensorMetadata": meta, "sensorReport": [report]}]
    if name.startswith("seal_"):
        _seal_fields(ev, p)
    ev["eport:custodyEvent"] = name
    return ev


def to_event(row: Row, ids: Ids = Ids()) -> dict | None:
    """The EPCIS 2.0 event of one stored reading, or None (no counterpart, or the container
    is not an ISO 6346 number, or the reading has no valid clock)."""
    if not exportable(row):
        return None
    p = row.payload
    if row.kind == "sensor":
        reports = _reports(p)
        if not reports:
            return None
        ev = _event(row, ids, BIZ_SENSOR_REPORTING)
        ev["sensorElementList"] = [{"sensorMetadata": {"deviceID": ids.unit(row, row.source)},
                                    "sensorReport": reports}]
        return ev
    if row.kind == "position":
        where = row.lat_lon
        if where is None or p.get("fix", 0) == 0:
            return None
        reports = [{"type": ANGLE, "value": round(where[0], 7), "component": "latitude", "uom": DEGREES,
                    "coordinateReferenceSystem": CRS84},
                   {"type": ANGLE, "value": round(where[1], 7), "component": "longitude", "uom": DEGREES,
                    "coordinateReferenceSystem": CRS84}]
        if isinstance(p.get("speed_cm_s"), int):
            reports.append({"type": SPEED, "value": round(p["speed_cm_s"] / 100.0, 2), "uom": METRES_PER_S})
        ev = _event(row, ids, BIZ_SENSOR_REPORTING)
        ev["sensorElementList"] = [{"sensorMetadata": {"deviceID": ids.unit(row, row.source)},
                                    "sensorReport": reports}]
        return ev
    if row.kind == "door":
        disposition = DOOR_DISPOSITION.get(p.get("state"))
        return _event(row, ids, None, disposition) if disposition else None
    if row.kind == "seal":
        disposition = SEAL_DISPOSITION.get(p.get("state"))
        if not disposition:
            return None
        ev = _event(row, ids, None, disposition)
        _seal_fields(ev, p)
        ev["eport:sealState"] = p["state"]
        return ev
    if row.kind == "event":
        return _custody(row, ids)
    return None


def _now() -> str:
    return rfc3339(_dt.datetime.now(_dt.timezone.utc))


def document(events: list, creation_date: str | None = None) -> dict:
    """An EPCISDocument (capture / file export)."""
    return {"@context": CONTEXT, "type": "EPCISDocument", "schemaVersion": SCHEMA_VERSION,
            "creationDate": creation_date or _now(), "epcisBody": {"eventList": events}}


def query_document(events: list, creation_date: str | None = None) -> dict:
    """An EPCISQueryDocument (the answer of GET /epcis/events)."""
    return {"@context": CONTEXT, "type": "EPCISQueryDocument", "schemaVersion": SCHEMA_VERSION,
            "creationDate": creation_date or _now(),
            "epcisBody": {"queryResults": {"queryName": QUERY_NAME, "resultsBody": {"eventList": events}}}}
