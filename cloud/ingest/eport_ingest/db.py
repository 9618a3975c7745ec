"""db: what eport-ingest writes to PostgreSQL, one transaction per batch of messages
(docs/cloud.md section 4). The caller acknowledges the batch's messages only after
store_batch() returned, so a worker killed at any point leaves every acknowledged reading
committed; a redelivered one is dropped by the reading_seq key (site, gateway, source, seq)
and counted in source_stats.duplicates. Depends on psycopg 3 (Debian python3-psycopg)."""

from __future__ import annotations

import datetime as _dt
import io
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

SCHEMA_SQL = Path(__file__).with_name("schema.sql")
# Schema creation takes this advisory lock so that workers starting together do not race
# on CREATE ... IF NOT EXISTS (which is not safe against a concurrent creator).
_SCHEMA_LOCK = 0x65706F7274       # "eport"
_PARTITION_LOCK = 0x65706F7275
_MAX_PY_MS = 253402300799999      # 9999-12-31T23:59:59.999Z, the last time datetime can hold
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def connect(dsn: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True)  # transactions are explicit: conn.transaction()


def init_schema(conn: psycopg.Connection) -> None:
    """Creates or completes the schema; idempotent, safe from several workers at once."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        conn.execute(SCHEMA_SQL.read_text())


def time_text(ms: int) -> str:
    """time_utc_ms as a timestamptz literal; beyond what PostgreSQL's clients can carry
    ('infinity'): kept as it came in the payload's time_utc_ms."""
    if ms < 0 or ms > _MAX_PY_MS:
        return "infinity"
    return (_EPOCH + _dt.timedelta(milliseconds=ms)).isoformat()


def partition_bounds(ms: int, unit: str) -> tuple[str, str, str] | None:
    """(name, from, to) of the partition of eport.reading for a reading time, or None when
    the time falls into a fixed partition (before 2000, from 2100 on)."""
    if ms < 946684800000 or ms >= 4102444800000:
        return None
    t = _EPOCH + _dt.timedelta(milliseconds=ms)
    if unit == "day":
        lo = _dt.datetime(t.year, t.month, t.day, tzinfo=_dt.timezone.utc)
        hi = lo + _dt.timedelta(days=1)
        name = f"reading_{lo:%Y%m%d}"
    else:
        lo = _dt.datetime(t.year, t.month, 1, tzinfo=_dt.timezone.utc)
        hi = _dt.datetime(t.year + (t.month == 12), t.month % 12 + 1, 1, tzinfo=_dt.timezone.utc)
        name = f"reading_{lo:%Y%m}"
    return name, lo.isoformat(), hi.isoformat()


class Partitions:
    """Creates the partitions of eport.reading a batch needs, each once per process."""

    def __init__(self, unit: str = "month"):
        if unit not in ("month", "day"):
            raise ValueError(f"partition unit {unit!r}: month or day")
        self.unit = unit
        self.known: set[str] = set()
        self.lock = threading.Lock()

    def ensure(self, conn: psycopg.Connection, times_ms) -> None:
        need = {}
        for ms in times_ms:
            b = partition_bounds(ms, self.unit)
            if b and b[0] not in self.known:
                need[b[0]] = b
        if not need:
            return
        with self.lock, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PARTITION_LOCK,))
            for name, lo, hi in sorted(need.values()):
                conn.execute(f"CREATE TABLE IF NOT EXISTS eport.{name} PARTITION OF eport.reading "
                             f"FOR VALUES FROM ('{lo}') TO ('{hi}')")
                self.known.add(name)


@dataclass
class DataMessage:
    """One decoded envelope and where it came from (the topic, which the broker's
    permissions authenticate; the envelope's own site/gateway were checked against it)."""
    site: str
    gateway: str
    priority: str
    envelope_seq: int
    readings: list           # dicts as eport_consumer.Codec.decode_payload returns them


@dataclass
class HealthMessage:
    site: str
    gateway: str
    health: dict


@dataclass
class StatusMessage:
    site: str
    gateway: str
    state: str


@dataclass
class Rejected:
    subject: str
    error: str
    payload: bytes


@dataclass
class BatchResult:
    stored: int = 0            # records new in the database
    duplicates: int = 0        # records already there (or twice in this batch)
    gaps: int = 0
    custody_events: int = 0
    checkpoints: int = 0       # evidence checkpoints new in the database
    rejected: int = 0
    health: int = 0
    per_source: dict = field(default_factory=dict)


def _position(r: dict):
    lat, lon = r.get("lat_e7"), r.get("lon_e7")
    if lat is None or lon is None:
        return None
    lat, lon = lat / 1e7, lon / 1e7
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None  # kept in the payload, not as a point
    return f"SRID=4326;POINT({lon:.7f} {lat:.7f})"


def _copy_text(v) -> str:
    if v is None:
        return r"\N"
    s = str(v)
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def store_batch(conn: psycopg.Connection, partitions: Partitions, messages: list,
                health_interval_s: int = 60) -> BatchResult:
    """Writes a batch in one transaction and commits it. Raises psycopg.Error on failure
    (nothing of the batch is then committed: the caller does not acknowledge and retries)."""
    res = BatchResult()
    # Deduplicate inside the batch first: the same reading can arrive in two envelopes.
    rows = {}
    for m in messages:
        if not isinstance(m, DataMessage):
            continue
        for r in m.readings:
            k = (m.site, m.gateway, r["source"], r["seq"])
            if k in rows:
                res.duplicates += 1
                res.per_source.setdefault(k[:3], [0, 0])[1] += 1
                continue
            rows[k] = (m, r)
    keys = sorted(rows)   # one lock order for every worker: no deadlock between two batches
    partitions.ensure(conn, [rows[k][1]["time_utc_ms"] for k in keys])
    with conn.transaction():
        new = set()
        if keys:
            cur = conn.execute(
                "INSERT INTO eport.reading_seq (site, gateway, source, seq, time, is_gap) "
                "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[], %s::timestamptz[], "
                "%s::boolean[]) ORDER BY 1, 2, 3, 4 ON CONFLICT DO NOTHING RETURNING site, gateway, source, seq",
                ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], [k[3] for k in keys],
                 [time_text(rows[k][1]["time_utc_ms"]) for k in keys],
                 [rows[k][1].get("kind") == "gap" for k in keys]))
            new = {tuple(row) for row in cur.fetchall()}
        for k in keys:
            st = res.per_source.setdefault(k[:3], [0, 0])
            if k in new:
                st[0] += 1
            else:
                st[1] += 1
                res.duplicates += 1
        fresh = [k for k in keys if k in new]
        res.stored = len(fresh)
        if fresh:
            buf = io.StringIO()
            for k in fresh:
                m, r = rows[k]
                buf.write("\t".join(_copy_text(v) for v in (
                    m.site, m.gateway, r["source"], r["seq"], time_text(r["time_utc_ms"]),
                    r.get("time_source", "source"), r.get("container"), r.get("kind", "unknown"), m.priority,
                    _position(r), json.dumps(r, separators=(",", ":"), ensure_ascii=False,
                                             default=str), m.envelope_seq)) + "\n")
            with conn.cursor().copy("COPY eport.reading (site, gateway, source, seq, time, time_source, container, "
                                    "kind, priority, position, payload, envelope_seq) FROM STDIN") as cp:
                cp.write(buf.getvalue())
            gaps = [(rows[k], k) for k in fresh if rows[k][1].get("kind") == "gap"]
            if gaps:
                conn.cursor().executemany(
                    "INSERT INTO eport.declared_gap (site, gateway, source, seq, first_seq, last_seq, reason, time) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s::timestamptz) ON CONFLICT DO NOTHING",
                    [(k[0], k[1], k[2], k[3], r["first_seq"], r["seq"], r.get("reason", "unknown"),
                      time_text(r["time_utc_ms"])) for (m, r), k in gaps])
                res.gaps = len(gaps)
            events = [(rows[k], k) for k in fresh if rows[k][1].get("kind") == "event"]
            if events:
                conn.cursor().executemany(
                    "INSERT INTO eport.custody_event (site, gateway, source, seq, time, container, event, dcsa, "
                    "subject, first_seq, caused_by_seq, zone, position, payload) VALUES (%s, %s, %s, %s, "
                    "%s::timestamptz, %s, %s, %s, %s, %s, %s, %s, %s::geography, %s::jsonb) ON CONFLICT DO NOTHING",
                    [(k[0], k[1], k[2], k[3], time_text(r["time_utc_ms"]), r.get("container"), r.get("event"),
                      r.get("dcsa"), r.get("subject"), r.get("first_seq"), r.get("caused_by_seq"), r.get("zone"),
                      _position(r), json.dumps(r, default=str)) for (m, r), k in events])
                res.custody_events = len(events)
            # Evidence checkpoints (docs/evidence.md 13): the COSE_Sign1 as the source signed it,
            # and the range of its chain it covers (payload keys 3 and 4), for a verifier to find.
            checkpoints = [(rows[k], k) for k in fresh if rows[k][1].get("kind") == "evidence"]
            if checkpoints:
                conn.cursor().executemany(
                    "INSERT INTO eport.evidence_checkpoint (site, gateway, source, seq, first_seq, last_seq, time, "
                    "checkpoint, payload) VALUES (%s, %s, %s, %s, %s, %s, %s::timestamptz, %s, %s::jsonb) "
                    "ON CONFLICT DO NOTHING",
                    [(k[0], k[1], k[2], k[3], *_checkpoint_range(r), time_text(r["time_utc_ms"]),
                      _checkpoint_bytes(r), json.dumps(r, default=str)) for (m, r), k in checkpoints])
                res.checkpoints = len(checkpoints)
        if res.per_source:
            src = sorted(res.per_source)
            last_time = {}
            max_seq = {}
            for k in keys:
                r = rows[k][1]
                s = k[:3]
                max_seq[s] = max(max_seq.get(s, 0), r["seq"])
                if k in new:
                    last_time[s] = max(last_time.get(s, -1), r["time_utc_ms"])
            conn.execute(
                "INSERT INTO eport.source_stats AS s (site, gateway, source, readings, duplicates, max_seq, last_seen, "
                "last_time) SELECT a, b, c, n, d, m, now(), t FROM unnest(%s::text[], %s::text[], %s::text[], "
                "%s::bigint[], %s::bigint[], %s::bigint[], %s::timestamptz[]) AS u(a, b, c, n, d, m, t) ORDER BY 1, 2, 3 "
                "ON CONFLICT (site, gateway, source) DO UPDATE SET readings = s.readings + EXCLUDED.readings, "
                "duplicates = s.duplicates + EXCLUDED.duplicates, max_seq = GREATEST(s.max_seq, EXCLUDED.max_seq), "
                "last_seen = EXCLUDED.last_seen, last_time = GREATEST(s.last_time, EXCLUDED.last_time)",
                ([s[0] for s in src], [s[1] for s in src], [s[2] for s in src],
                 [res.per_source[s][0] for s in src], [res.per_source[s][1] for s in src],
                 [max_seq.get(s, 0) for s in src],
                 [time_text(last_time[s]) if s in last_time else None for s in src]))
        for m in messages:
            if isinstance(m, HealthMessage):
                res.health += _store_health(conn, m, health_interval_s)
            elif isinstance(m, StatusMessage):
                conn.execute("INSERT INTO eport.gateway_liveness AS l (site, gateway, state, state_since, interval_s, "
                             "status_hint, status_at) VALUES (%s, %s, 'offline', now(), %s, %s, now()) "
                             "ON CONFLICT (site, gateway) DO UPDATE SET status_hint = EXCLUDED.status_hint, "
                             "status_at = EXCLUDED.status_at", (m.site, m.gateway, health_interval_s, m.state))
            elif isinstance(m, Rejected):
                conn.execute("INSERT INTO eport.rejected_message (subject, error, bytes, payload) VALUES (%s, %s, %s, %s)",
                             (m.subject, m.error, len(m.payload), m.payload[:4096]))
                res.rejected += 1
    return res


def _checkpoint_bytes(r):
    try:
        return bytes.fromhex(r.get("cose", ""))
    except ValueError:
        return None


def _checkpoint_range(r):
    """(first, last) of a checkpoint's payload (docs/evidence.md 5, keys 3 and 4), or (None, None)
    when it does not parse: kept as sent, the verifier names what is wrong with it."""
    raw = _checkpoint_bytes(r)
    try:
        import cbor2
        msg = cbor2.loads(raw)
        payload = cbor2.loads(msg.value[2])
        return int(payload[3]), int(payload[4])
    except Exception:  # noqa: BLE001 (no cbor2, or not a checkpoint: the range is unknown)
        return None, None


def _store_health(conn, m: HealthMessage, interval_s: int) -> int:
    """A health message marks its gateway online (with a liveness_event when it was not).
    A health older (by the gateway's own clock) than the latest one stored changes nothing:
    a redelivered old heartbeat must not revive a gateway."""
    t = m.health.get("time_utc_ms")
    t = t if isinstance(t, int) and not isinstance(t, bool) else 0
    conn.execute("INSERT INTO eport.gateway_liveness (site, gateway, state, state_since, interval_s) "
                 "VALUES (%s, %s, 'offline', now(), %s) ON CONFLICT DO NOTHING", (m.site, m.gateway, interval_s))
    row = conn.execute("SELECT state, (extract(epoch FROM last_health_utc) * 1000)::bigint FROM eport.gateway_liveness "
                       "WHERE site = %s AND gateway = %s FOR UPDATE", (m.site, m.gateway)).fetchone()
    state, last = row
    if last is not None and t <= last:
        return 0
    conn.execute("UPDATE eport.gateway_liveness SET state = 'online', "
                 "state_since = CASE WHEN state = 'online' THEN state_since ELSE now() END, last_health_at = now(), "
                 "last_health_utc = %s::timestamptz, health = %s::jsonb WHERE site = %s AND gateway = %s",
                 (time_text(t), json.dumps(m.health), m.site, m.gateway))
    if state != "online":
        conn.execute("INSERT INTO eport.liveness_event (site, gateway, state, at, reason) "
                     "VALUES (%s, %s, 'online', now(), 'health')", (m.site, m.gateway))
    return 1
