"""eport.records: a reading as the DCSA and EPCIS mappings (eport.dcsa, eport.epcis) read it,
one Row per reading: its key (site, gateway, source, seq), its own time, its container, kind
and the decoded payload (the dict eport.decode gives, as eport-tail prints it). eport-ingest
fetches Rows from PostgreSQL (cloud/ingest/eport_ingest/rows.py); Row.of_reading() makes one
from a freshly decoded reading. The rules both mappings share (which readings are exported,
RFC 3339 times) live here once."""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field

UTC = _dt.timezone.utc
# Readings outside these times have no valid clock (time 0 is "no clock", schema.sql
# partitions reading_before_2000 / reading_after_2100): they are not exported.
VALID_FROM = _dt.datetime(2000, 1, 1, tzinfo=UTC)
VALID_TO = _dt.datetime(2100, 1, 1, tzinfo=UTC)
# The kinds a mapping can turn into an event; gaps and evidence checkpoints have no
# counterpart in DCSA or EPCIS (docs/cloud.md section 12.5).
EXPORTED_KINDS = ("position", "door", "seal", "sensor", "event")
_ISO6346 = re.compile(r"^[A-Z]{3}[UJZR][0-9]{7}$")


def iso6346_valid(container: str | None) -> bool:
    """True for an ISO 6346 container number with a correct check digit (MSKU1234565)."""
    if not container or not _ISO6346.match(container):
        return False
    values, n = {}, 10
    for ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        if n % 11 == 0:      # 11, 22, 33 are skipped
            n += 1
        values[ch] = n
        n += 1
    total = sum((values[ch] if ch.isalpha() else int(ch)) << i for i, ch in enumerate(container[:10]))
    return total % 11 % 10 == int(container[10])


def exportable(row: "Row") -> bool:
    """Both mappings' common rule: a reading on an ISO 6346 container with a valid clock."""
    return iso6346_valid(row.container) and VALID_FROM <= row.time < VALID_TO


def rfc3339(t: _dt.datetime) -> str:
    """UTC, milliseconds, 'Z': 2026-11-18T08:26:40.000Z (24 characters; DCSA allows 30)."""
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def parse_rfc3339(text: str) -> _dt.datetime:
    """A strict RFC 3339 date-time with an offset (Z or +hh:mm); ValueError otherwise."""
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})", text)
    if not m:
        raise ValueError(f"{text!r} is not an RFC 3339 date-time with an offset (2026-11-18T08:26:40Z)")
    frac = m.group(7) or ""
    zone = m.group(8)
    if zone in ("Z", "z"):
        tz = UTC
    else:
        hh, mm = int(zone[1:3]), int(zone[4:6])
        if hh > 23 or mm > 59:
            raise ValueError(f"{text!r}: offset out of range")
        tz = _dt.timezone((1 if zone[0] == "+" else -1) * _dt.timedelta(hours=hh, minutes=mm))
    sec = int(m.group(6))
    if sec == 60:         # a leap second: as the last instant of that minute
        sec = 59
    return _dt.datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4)), int(m.group(5)), sec,
                        int((frac[1:] + "000000")[:6]) if frac else 0, tzinfo=tz)


@dataclass(frozen=True)
class Row:
    """One stored reading: its key (site, gateway, source, seq), its own time, the container
    it was on, its kind and the decoded payload (as eport-tail prints it)."""
    site: str
    gateway: str
    source: str
    seq: int
    time: _dt.datetime
    kind: str
    container: str | None = None
    time_source: str = "source"
    payload: dict = field(default_factory=dict)

    @property
    def key(self) -> tuple:
        return (self.time, self.site, self.gateway, self.source, self.seq)

    @property
    def lat_lon(self) -> tuple[float, float] | None:
        """The reading's own coordinates (positions, custody events with a place) in
        decimal degrees, or None when it has none or they are impossible."""
        lat, lon = self.payload.get("lat_e7"), self.payload.get("lon_e7")
        if not isinstance(lat, int) or not isinstance(lon, int):
            return None
        lat, lon = lat / 1e7, lon / 1e7
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            return None
        return lat, lon

    @classmethod
    def of_reading(cls, site: str, gateway: str, reading: dict) -> "Row":
        """The Row of a reading decoded by eport.decode on the topic of (site, gateway)."""
        return cls(site=site, gateway=gateway, source=reading["source"], seq=reading["seq"],
                   time=_dt.datetime.fromtimestamp(reading["time_utc_ms"] / 1000, UTC), kind=reading["kind"],
                   container=reading.get("container"), time_source=reading.get("time_source", "source"),
                   payload=reading)
