"""livemap: the port operator's live map (docs/cloud.md section 13), mounted by api.py:
  GET /map              the page (web/map.html, map.js, map.css: plain files, no build step)
  GET /map/zones        the zones file (GeoJSON) the page draws, offline
  GET /map/state        a JSON snapshot: containers (last position, track), recent alarms,
                        gateways (liveness), sources (completeness), and `cursor`
  GET /map/events       server-sent events from that cursor (?since= or Last-Event-ID)
Each takes ?site= (api.py resolves it with the token's sites): the snapshot and the stream
then carry only those sites' gateways, sources, containers and alarms.
One Hub thread per server polls PostgreSQL for rows committed since its last snapshot
(eport.reading.ingest_xid, schema.sql) and hands each poll, formatted once, to every client's
bounded queue; a client too slow to keep up is disconnected and resumes with Last-Event-ID."""

from __future__ import annotations

import datetime as _dt
import json
import os
import queue
import re
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from . import rows

WEB_DIR = Path(__file__).with_name("web")
DEFAULT_ZONES = Path(__file__).resolve().parents[3] / "docs" / "zones" / "shanghai-terminals.geojson"
# Readings the map shows: positions (tracks), and what can be an alarm or a custody event.
MAP_KINDS = ("position", "seal", "door", "event")
ALARM_EVENTS = ("seal_tampered", "seal_mismatch", "seal_opened_outside_zone", "excursion_start")
_SNAPSHOT = re.compile(r"^[0-9]{1,20}:[0-9]{1,20}:([0-9]{1,20}(,[0-9]{1,20})*)?$")
_STATIC = {"map.js": "text/javascript; charset=utf-8", "map.css": "text/css; charset=utf-8"}
# Everything the page loads comes from this server: no tiles, CDNs or fonts (and an injected
# script could not run or call out).
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


@dataclass
class Options:
    zones: Path = DEFAULT_ZONES
    max_clients: int = 32              # concurrent event streams; beyond: 503
    queue_messages: int = 64           # per client; a client this far behind is dropped (it resumes)
    poll_s: float = 0.5                # how often the hub looks for new rows
    heartbeat_s: float = 15.0          # an SSE comment when nothing was sent for this long
    max_rows_per_poll: int = 5000      # more in one poll: clients are told to reload the snapshot
    backlog_rows: int = 5000           # most rows a resuming client is sent; more: reload
    overdue_factor: float = 3.0        # as eport-ingest run: offline after factor x interval_s
    completeness_every_s: float = 5.0  # eport.source_completeness costs a scan of reading_seq
    window_h: float = 720.0            # snapshot: containers and alarms of readings this recent
    track_points: int = 100            # per container in the snapshot
    max_containers: int = 2000
    recent_alarms: int = 100
    max_gateways: int = 5000
    max_sources: int = 5000


def _time(t: _dt.datetime | None) -> str | None:
    if t is None or not (rows.VALID_FROM <= t < rows.VALID_TO):
        return None
    return rows.rfc3339(t)


def _c(v) -> str:
    return "?" if v is None else f"{v / 100:.1f}"


def alarm_of(kind: str, p: dict) -> str | None:
    """The alarm a reading is, as a short text, or None. Custody events (the gateway's
    judgement) and the units' own seal and door reports."""
    if kind == "event":
        e = p.get("event")
        if e == "excursion_start":
            return (f"reefer excursion start: {_c(p.get('temperature_centi_c'))} degC, band "
                    f"{_c(p.get('band_low_centi_c'))}..{_c(p.get('band_high_centi_c'))}")
        if e == "seal_tampered":
            return f"seal {p.get('seal_id', '?')} tampered"
        if e == "seal_mismatch":
            return f"seal mismatch: read {p.get('seal_id', '?')}, expected {p.get('expected_seal_id', '?')}"
        if e == "seal_opened_outside_zone":
            return f"seal {p.get('seal_id', '?')} opened outside an allowed zone ({p.get('zone', '?')})"
        return None
    if kind == "seal" and p.get("state") in ("opened", "tampered"):
        return f"unit reports seal {p.get('seal_id', '?')} {p.get('state')}"
    if kind == "door" and p.get("state") == "open":
        return "door open"
    return None


def item(site, gateway, source, seq, t, kind, container, payload) -> dict:
    """One reading as the page gets it. Every string is the device's: the page sets them as
    text, never as markup."""
    p = payload if isinstance(payload, dict) else {}
    r = rows.Row(site, gateway, source, seq, t, kind, container, payload=p)
    ll = r.lat_lon
    if kind == "position" and p.get("fix") == 0:
        ll = None
    out = {"key": f"{site}/{gateway}/{source}/{seq}", "site": site, "gateway": gateway, "source": source,
           "seq": seq, "time": _time(t), "kind": kind, "container": container}
    if ll:
        out["lat"], out["lon"] = round(ll[0], 7), round(ll[1], 7)
    if kind == "event":
        out["event"] = p.get("event")
        if p.get("zone"):
            out["zone"] = p.get("zone")
    elif kind in ("seal", "door"):
        out["state"] = p.get("state")
    a = alarm_of(kind, p)
    if a:
        out["alarm"] = a
    return out


_READING_COLS = "site, gateway, source, seq, time, kind, container, payload"


def _in_sites(sites, col: str = "site") -> tuple[str, list]:
    """(an SQL condition, its arguments) keeping rows of `sites` only (None: every site)."""
    return ("TRUE", []) if sites is None else (f"{col} = ANY(%s)", [list(sites)])


def of_sites(items: list, sites) -> list:
    """The items (dicts with "site") of `sites` (None: all)."""
    return items if sites is None else [i for i in items if i["site"] in sites]


def _gateways(conn, o: Options, sites=None) -> list:
    cond, args = _in_sites(sites, "l.site")
    q = ("SELECT l.site, l.gateway, l.state, l.state_since, l.last_health_at, l.interval_s, "
         "EXTRACT(epoch FROM now() - l.last_health_at)::float8, "
         "(l.state = 'online' AND l.last_health_at < now() - make_interval(secs => l.interval_s * %s)) "
         f"FROM eport.gateway_liveness l WHERE {cond} ORDER BY 1, 2 LIMIT %s")
    out = []
    for site, gw, state, since, last, interval, silent, overdue in conn.execute(
            q, [o.overdue_factor] + args + [o.max_gateways]):
        out.append({"site": site, "gateway": gw,
                    "state": "offline" if state == "offline" or overdue else "online",
                    "stored_state": state, "overdue": bool(overdue), "since": _time(since),
                    "last_health": _time(last), "silent_s": None if silent is None else round(silent),
                    "interval_s": interval})
    # gateways that sent readings but never a health message
    known = {(g["site"], g["gateway"]) for g in out}
    cond, args = _in_sites(sites)
    for site, gw in conn.execute(f"SELECT DISTINCT site, gateway FROM eport.source_stats WHERE {cond} "
                                 "ORDER BY 1, 2 LIMIT %s", args + [o.max_gateways]):
        if len(out) >= o.max_gateways:
            break
        if (site, gw) not in known:
            out.append({"site": site, "gateway": gw, "state": "unknown", "overdue": False, "since": None,
                        "last_health": None, "silent_s": None, "interval_s": None})
    return out


def _sources(conn, o: Options, sites=None) -> list:
    cond, args = _in_sites(sites)
    q = ("SELECT site, gateway, source, received_seqs, declared_gap_seqs, undeclared_gap_seqs, duplicates, "
         f"undeclared_gaps, last_seen FROM eport.source_completeness WHERE {cond} ORDER BY 1, 2, 3 LIMIT %s")
    return [{"site": r[0], "gateway": r[1], "source": r[2], "received": int(r[3]), "declared": int(r[4]),
             "undeclared": int(r[5]), "duplicates": int(r[6]), "undeclared_gaps": r[7], "last_seen": _time(r[8])}
            for r in conn.execute(q, args + [o.max_sources])]


_POSITIONS = ("kind = 'position' AND container IS NOT NULL AND position IS NOT NULL AND time >= {since} "
              "AND time < '2100-01-01' AND COALESCE(payload->>'fix', '1') <> '0'")
_ALARMS = ("((kind = 'event' AND payload->>'event' = ANY(%s)) OR (kind = 'seal' AND payload->>'state' "
           "IN ('opened', 'tampered')) OR (kind = 'door' AND payload->>'state' = 'open'))")


def _containers(conn, o: Options, since: str, sites) -> dict:
    """The tracks of the max_containers containers seen most recently: the set is chosen in
    SQL first, so the rows read are at most max_containers x track_points whatever the
    number of sites."""
    cond, args = _in_sites(sites)
    pos = conn.execute(
        f"WITH recent AS (SELECT container FROM eport.reading WHERE {_POSITIONS.format(since=since)} AND {cond} "
        "GROUP BY container ORDER BY max(time) DESC, container LIMIT %s) "
        f"SELECT {_READING_COLS} FROM (SELECT {_READING_COLS}, row_number() OVER "
        "(PARTITION BY container ORDER BY time DESC, seq DESC) AS rn FROM eport.reading "
        f"WHERE {_POSITIONS.format(since=since)} AND {cond} AND container IN (SELECT container FROM recent)) t "
        "WHERE rn <= %s ORDER BY container, time, seq", args + [o.max_containers] + args + [o.track_points]).fetchall()
    containers: dict = {}
    for r in pos:
        it = item(*r)
        if "lat" not in it:
            continue
        c = containers.setdefault(r[6], {"container": r[6], "track": []})
        c["track"].append([it["lat"], it["lon"], it["time"]])
        c["last"] = it
    if containers:
        for r in conn.execute(
                f"SELECT DISTINCT ON (container) {_READING_COLS} FROM eport.reading WHERE kind = 'event' "
                f"AND container = ANY(%s) AND {cond} AND time >= {since} AND time < '2100-01-01' "
                "ORDER BY container, time DESC, seq DESC", [list(containers)] + args):
            containers[r[6]]["last_event"] = item(*r)
    return containers


def state(conn, o: Options, sites=None) -> dict:
    """The snapshot of GET /map/state, of `sites` (None: every site), read in one REPEATABLE
    READ transaction, so that its cursor (the transaction's snapshot) says exactly which
    rows it includes. Every list is bounded by Options, whatever the number of sites."""
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    try:
        cursor = conn.execute("SELECT pg_current_snapshot()::text").fetchone()[0]
        since = f"now() - make_interval(secs => {float(o.window_h) * 3600})"
        containers = _containers(conn, o, since, sites)
        cond, args = _in_sites(sites)
        alarms = [item(*r) for r in conn.execute(
            f"SELECT {_READING_COLS} FROM eport.reading WHERE {_ALARMS} AND {cond} AND time >= {since} "
            "ORDER BY time DESC, received_at DESC LIMIT %s", [list(ALARM_EVENTS)] + args + [o.recent_alarms])]
        cs = sorted(containers.values(), key=lambda c: c["last"]["time"] or "", reverse=True)[:o.max_containers]
        out = {"cursor": cursor, "containers": cs, "alarms": alarms, "gateways": _gateways(conn, o, sites),
               "sources": _sources(conn, o, sites), "overdue_factor": o.overdue_factor,
               "sites": None if sites is None else list(sites),
               "limits": {"track_points": o.track_points, "recent_alarms": o.recent_alarms,
                          "window_h": o.window_h, "containers": o.max_containers, "gateways": o.max_gateways,
                          "sources": o.max_sources}}
    finally:
        conn.execute("COMMIT")
    return out


def new_rows(conn, since: str, upto: str | None, limit: int, sites=None) -> list:
    """Map readings committed after snapshot `since` (and, with `upto`, visible in that
    snapshot), of `sites` (None: all), at most limit + 1 (so the caller sees that there
    were more)."""
    sql = (f"SELECT {_READING_COLS} FROM eport.reading WHERE ingest_xid >= pg_snapshot_xmin(%(s)s::pg_snapshot) "
           "AND NOT pg_visible_in_snapshot(ingest_xid, %(s)s::pg_snapshot) AND kind = ANY(%(k)s) ")
    if upto is not None:
        sql += "AND pg_visible_in_snapshot(ingest_xid, %(u)s::pg_snapshot) "
    if sites is not None:
        sql += "AND site = ANY(%(sites)s) "
    sql += "ORDER BY received_at, time, source, seq LIMIT %(n)s"
    return conn.execute(sql, {"s": since, "u": upto, "k": list(MAP_KINDS), "n": limit + 1,
                              "sites": None if sites is None else list(sites)}).fetchall()


def sse(event: str, data, event_id: str | None = None) -> bytes:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))   # one line: no newline inside
    return ((f"id: {event_id}\n" if event_id else "") + f"event: {event}\ndata: {text}\n\n").encode()


class Client:
    def __init__(self, n: int, snapshot: str | None, sites=None):
        self.queue: queue.Queue = queue.Queue(maxsize=n)
        self.snapshot = snapshot        # the hub's snapshot when it joined: the hub sends what follows
        self.sites = sites              # a tuple, or None: every site
        self.dropped = False


class Hub:
    """One poller for every client: memory is O(clients x queue_messages) references to
    messages formatted once per site scope, and the database sees one poll per poll_s
    whatever the number of clients (plus a gateway read per distinct site scope)."""

    def __init__(self, dsn: str, o: Options):
        self.dsn, self.o = dsn, o
        self.lock = threading.Lock()
        self.clients: set = set()
        self.snapshot: str | None = None
        self.gateways: dict = {}        # site scope (a Client's sites) -> the gateways last sent
        self.sources: dict = {}         # site scope -> the sources (completeness) last sent
        self.error: str | None = None
        self.polls = 0
        self._completeness_at = 0.0
        self._thread = threading.Thread(target=self._run, name="eport-map-hub", daemon=True)
        self._thread.start()

    def register(self, sites=None) -> Client | None:
        with self.lock:
            if len(self.clients) >= self.o.max_clients:
                return None
            c = Client(self.o.queue_messages, self.snapshot, sites)
            self.clients.add(c)
            return c

    def unregister(self, c: Client) -> None:
        with self.lock:
            self.clients.discard(c)

    def _broadcast(self, msg, scopes=None) -> None:
        """msg (bytes, or a function of a site scope giving bytes or None, called once per
        scope) to every client, or to the clients of `scopes`."""
        made: dict = {}
        with self.lock:
            for c in list(self.clients):
                if scopes is not None and c.sites not in scopes:
                    continue
                if callable(msg):
                    if c.sites not in made:
                        made[c.sites] = msg(c.sites)
                    m = made[c.sites]
                else:
                    m = msg
                if m is None:
                    continue
                try:
                    c.queue.put_nowait(m)
                except queue.Full:        # too slow: it is closed and resumes from its last id
                    c.dropped = True
                    self.clients.discard(c)

    def scopes(self) -> set:
        with self.lock:
            return {c.sites for c in self.clients}

    def _run(self):
        conn = None
        while True:
            t0 = time.monotonic()
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.dsn, autocommit=True)
                self._poll(conn)
                if self.error:
                    self.error = None
                    self._broadcast(sse("status", {"db": "ok"}))
            except psycopg.Error as e:
                msg = f"database: {str(e).strip()[:200]}"
                if msg != self.error:
                    print(json.dumps({"event": "map_db_error", "error": msg}), file=sys.stderr, flush=True)
                    self._broadcast(sse("status", {"db": msg}))
                self.error = msg
                try:
                    if conn is not None:
                        conn.close()
                except psycopg.Error:
                    pass
                conn = None
                time.sleep(min(5.0, self.o.poll_s * 4))
            time.sleep(max(0.0, self.o.poll_s - (time.monotonic() - t0)))

    def _poll(self, conn):
        o = self.o
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            cur = conn.execute("SELECT pg_current_snapshot()::text").fetchone()[0]
            prev = self.snapshot
            found = []
            if prev is not None:    # also without clients: one may be joining from `prev`
                found = new_rows(conn, prev, None, o.max_rows_per_poll)
            scopes = self.scopes()
            gws = {k: _gateways(conn, o, k) for k in scopes}
            now = time.monotonic()
            srcs = None
            if now - self._completeness_at >= o.completeness_every_s:
                srcs = {k: _sources(conn, o, k) for k in scopes}
                self._completeness_at = now
        finally:
            conn.execute("COMMIT")
        with self.lock:
            self.snapshot = cur
            self.polls += 1
        if len(found) > o.max_rows_per_poll:
            self._broadcast(sse("reset", {"reason": f"more than {o.max_rows_per_poll} new readings in one poll"}, cur))
        elif found:
            items = [item(*r) for r in found]

            def readings(sites):    # nothing of theirs: the id alone, so that they resume from here
                mine = of_sites(items, sites)
                return sse("readings", mine, cur) if mine else f"id: {cur}\n\n".encode()
            self._broadcast(readings)
        self._send_changed("gateways", self.gateways, gws, steady=True)
        if srcs is not None:
            self._send_changed("sources", self.sources, srcs)
        with self.lock:     # scopes without clients are forgotten
            for views in (self.gateways, self.sources):
                for k in set(views) - {c.sites for c in self.clients}:
                    del views[k]

    def _send_changed(self, event: str, last: dict, now: dict, steady=False) -> None:
        """Sends each scope's list to its clients when it changed since last sent."""
        def same(a, b):     # gateways' silent_s grows every second: a change of state is what is sent
            if steady:
                a, b = ([{k: v for k, v in x.items() if k != "silent_s"} for x in g] for g in (a, b))
            return a == b
        for k, v in now.items():
            if k not in last or not same(v, last[k]):
                last[k] = v
                self._broadcast(sse(event, v), {k})


class LiveMap:
    """What api.py mounts under /map."""

    def __init__(self, dsn: str, o: Options = Options()):
        self.dsn, self.o = dsn, o
        self.zones_bytes = Path(o.zones).read_bytes()
        json.loads(self.zones_bytes)            # a broken zones file is an error at start
        self.hub = Hub(dsn, o)

    def handle(self, h, path: str, params: dict, sites=None) -> None:
        """h is api._Handler; sites the request's scope (a tuple, or None: every site)."""
        if path in ("/map", "/map/"):
            return self._file(h, WEB_DIR / "map.html", "text/html; charset=utf-8")
        name = path[len("/map/"):]
        if name in _STATIC:
            return self._file(h, WEB_DIR / name, _STATIC[name])
        if name == "zones":
            return self._bytes(h, 200, self.zones_bytes, "application/geo+json")
        if name == "state":
            try:
                with psycopg.connect(self.dsn, autocommit=True) as conn:
                    body = state(conn, self.o, sites)
            except psycopg.Error as e:
                return self._json(h, 503, {"error": f"database: {str(e).strip()[:300]}"})
            return self._json(h, 200, body)
        if name == "events":
            return self._events(h, params, sites)
        return self._json(h, 404, {"error": f"no such resource {path} (/map, /map/state, /map/events, /map/zones)"})

    def _bytes(self, h, status, data: bytes, ctype: str, headers=()):
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        h.send_header("Content-Security-Policy", CSP)
        h.send_header("X-Content-Type-Options", "nosniff")
        h.send_header("Cache-Control", "no-cache")
        for k, v in headers:
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _file(self, h, p: Path, ctype: str):
        self._bytes(h, 200, p.read_bytes(), ctype)

    def _json(self, h, status, body, headers=()):
        self._bytes(h, status, json.dumps(body, ensure_ascii=False).encode(), "application/json", headers)

    def _events(self, h, params, sites):
        since = h.headers.get("Last-Event-ID") or (params.get("since") or [None])[0]
        if since is not None and (len(since) > 65536 or not _SNAPSHOT.match(since)):
            return self._json(h, 400, {"error": "since / Last-Event-ID: not a cursor this server gave out"})
        c = self.hub.register(sites)
        if c is None:
            return self._json(h, 503, {"error": f"too many map clients (at most {self.o.max_clients})"},
                              [("Retry-After", "10")])
        try:
            h.send_response(200)
            h.send_header("Content-Type", "text/event-stream; charset=utf-8")
            h.send_header("Cache-Control", "no-cache")
            h.send_header("X-Accel-Buffering", "no")      # nginx: do not buffer the stream
            h.send_header("Content-Security-Policy", CSP)
            h.end_headers()
            out = [b"retry: 2000\n\n"]
            if since is None or c.snapshot is None:
                # nothing to resume from (or the hub has not polled yet): the page reloads /map/state
                out.append(sse("reset", {"reason": "no cursor to resume from"}, c.snapshot))
            else:
                try:
                    with psycopg.connect(self.dsn, autocommit=True) as conn:
                        back = new_rows(conn, since, c.snapshot, self.o.backlog_rows, sites)
                except psycopg.Error:
                    back = None
                if back is None or len(back) > self.o.backlog_rows:
                    out.append(sse("reset", {"reason": "too far behind to resume"}, c.snapshot))
                elif back:
                    out.append(sse("readings", [item(*r) for r in back], c.snapshot))
                else:
                    out.append(f"id: {c.snapshot}\n\n".encode())
            gws, srcs = self.hub.gateways.get(sites), self.hub.sources.get(sites)
            if gws is not None:         # else the hub's next poll sends them
                out.append(sse("gateways", gws))
            if srcs:
                out.append(sse("sources", srcs))
            h.wfile.write(b"".join(out))
            h.wfile.flush()
            while not c.dropped:
                try:
                    msg = c.queue.get(timeout=self.o.heartbeat_s)
                except queue.Empty:
                    msg = b": keep-alive\n\n"     # proxies close idle streams
                h.wfile.write(msg)
                h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError, OSError):
            pass
        finally:
            self.hub.unregister(c)
        h.close_connection = True
