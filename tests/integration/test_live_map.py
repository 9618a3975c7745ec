"""The live map (docs/cloud.md section 13) in Debian's headless Chromium: a throw-away
PostgreSQL 15 + PostGIS (pgtest) gets the journey (cloud/ingest/tests/journey.py) and two
gateways' health through db.store_batch, one of them overdue (eport.mark_overdue);
`eport-ingest serve` runs on loopback; Chromium opens /map through the DevTools protocol
(a small client on the standard library below). Checked: the zones and terminal outlines are
drawn, the offline gateway is shown offline, an alarm (seal tampered, its seal number carrying
markup) stored after the page loaded appears within 2 s, as text (no element injected), no
request leaves the server, a stream resumes with Last-Event-ID, heartbeats arrive, a client
beyond --map-max-clients gets 503. The server runs with --tokens-file (docs/cloud.md
section 15): the page is opened as /map?token=...&site=cnsha, exchanged for an HttpOnly
cookie and the token stripped from the URL; a second site's gateway, container and alarm
stay off the page. The snapshot's bounds are checked with many sites. Saves a screenshot
in the work dir. Skips (77) without chromium, PostgreSQL 15, PostGIS or psycopg."""
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

SOURCE = os.environ.get("EPORT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
INGEST_DIR = Path(SOURCE) / "cloud" / "ingest"
INGEST = INGEST_DIR / "eport-ingest"
sys.path.insert(0, str(INGEST_DIR))
sys.path.insert(0, str(INGEST_DIR / "tests"))
from eport_ingest import pgtest  # noqa: E402

SKIP = 77
CHROMIUM = os.environ.get("EPORT_CHROMIUM", "/usr/bin/chromium")
for why in (pgtest.missing(), "" if os.path.exists(CHROMIUM) else f"{CHROMIUM} (apt-get install chromium)"):
    if why:
        print(f"SKIP: needs {why}", flush=True)
        sys.exit(SKIP)

import journey  # noqa: E402
from eport_ingest import db, livemap  # noqa: E402

EVIL_SEAL = '<img src=x onerror="window.__pwned=1">SL9'
OTHER_SITE, OTHER_GW, OTHER_BOX = "nlrtm", "gw-rtm-01", "TGHU1234560"


def log(msg):
    print(f"[live_map] {msg}", flush=True)


class CDP:
    """Chrome DevTools Protocol over one WebSocket (RFC 6455, client side, text frames)."""

    def __init__(self, ws_url):
        hostport, path = ws_url[len("ws://"):].split("/", 1)
        host, port = hostport.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        resp = b""
        while b"\r\n\r\n" not in resp:
            resp += self.sock.recv(4096)
        head, self.buf = resp.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        self.n = 0
        self.events = []

    def _read(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(1 << 20)
            if not d:
                raise ConnectionError("devtools closed")
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _recv(self):
        data = b""
        while True:
            b0, b1 = self._read(2)
            ln = b1 & 0x7F
            if ln == 126:
                ln = struct.unpack(">H", self._read(2))[0]
            elif ln == 127:
                ln = struct.unpack(">Q", self._read(8))[0]
            data += self._read(ln)
            if b0 & 0x80:
                return json.loads(data)

    def call(self, method, **params):
        self.n += 1
        payload = json.dumps({"id": self.n, "method": method, "params": params}).encode()
        mask = os.urandom(4)
        ln = len(payload)
        head = bytes([0x81]) + (bytes([0x80 | ln]) if ln < 126 else bytes([0x80 | 126]) + struct.pack(">H", ln)
                                if ln < 65536 else bytes([0x80 | 127]) + struct.pack(">Q", ln))
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        while True:
            m = self._recv()
            if m.get("id") == self.n:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m["result"]
            self.events.append(m)

    def js(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expr}: {r['exceptionDetails']}")
        return r["result"].get("value")


def store(conn, parts, readings, eseq):
    return db.store_batch(conn, parts, [db.DataMessage(journey.SITE, journey.GW, prio, eseq + i, [r])
                                        for i, (prio, r) in enumerate(readings)])


def make_token(work):
    p = subprocess.run([sys.executable, str(INGEST), "token", "operator", "--append", str(work / "tokens.txt")],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def start_server(pg, work):
    err = open(work / "serve.log", "w")
    srv = subprocess.Popen([sys.executable, str(INGEST), "serve", "--dsn", pg.dsn, "--listen", "127.0.0.1:0",
                            "--tokens-file", str(work / "tokens.txt"),
                            "--map-max-clients", "3", "--map-heartbeat-s", "1", "--map-poll-s", "0.25"], stderr=err)
    deadline = time.monotonic() + 30
    while not (work / "serve.log").read_text().strip():
        assert srv.poll() is None and time.monotonic() < deadline, "eport-ingest serve did not start"
        time.sleep(0.05)
    port = json.loads((work / "serve.log").read_text().splitlines()[0])["port"]
    return srv, err, f"http://127.0.0.1:{port}"


def start_chromium(work):
    prof = work / "profile"
    ch = subprocess.Popen([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-extensions", "--disable-background-networking", "--disable-sync",
                           "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                           f"--user-data-dir={prof}", "--window-size=1500,950", "about:blank"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = ch.stderr.readline()
        if "DevTools listening on " in line:
            port = line.split("ws://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]
            break
        assert line or ch.poll() is None, "chromium exited"
    else:
        raise AssertionError("chromium did not open its DevTools port")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
        page = [t for t in json.loads(r.read()) if t["type"] == "page"][0]
    return ch, CDP(page["webSocketDebuggerUrl"])


def wait_js(cdp, expr, timeout_s, what):
    t0 = time.monotonic()
    while True:
        v = cdp.js(expr)
        if v:
            return time.monotonic() - t0, v
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"{what}: not on the page after {timeout_s} s")
        time.sleep(0.02)


def stream_lines(url, headers=None, seconds=3.0):
    """What an SSE stream sends in `seconds` (status, text), over a plain socket."""
    hostport, path = url[len("http://"):].split("/", 1)
    host, port = hostport.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=0.2)
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    sock.sendall(f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\n{extra}\r\n".encode())
    got, t0 = b"", time.monotonic()
    while time.monotonic() - t0 < seconds:
        try:
            d = sock.recv(65536)
            if not d:
                break
            got += d
        except (socket.timeout, TimeoutError):
            pass
    sock.close()
    text = got.decode()
    return int(text.split(" ", 2)[1]), text


def other_site(conn, parts, now_ms, seq):
    """The other site's container (a position now) and its gateway's health."""
    pos = {"source": "tcu-9001", "container": OTHER_BOX, "seq": seq, "time_utc_ms": now_ms, "kind": "position",
           "lat_e7": 306200000, "lon_e7": 1220300000, "fix": 3, "satellites": 8, "hdop_centi": 90}
    db.store_batch(conn, parts, [db.DataMessage(OTHER_SITE, OTHER_GW, "telemetry", seq, [pos]),
                                 db.HealthMessage(OTHER_SITE, OTHER_GW, {"time_utc_ms": now_ms})], health_interval_s=60)


def many_sites(conn, parts):
    """The snapshot's row limits hold with many sites: 60 sites, each a gateway, a container
    and an alarm, against limits smaller than that."""
    now = int(time.time() * 1000) - 3600_000
    batch = []
    for i in range(60):
        site = f"site-{i:02d}"
        box = f"ZZZU{i:06d}"
        batch.append(db.DataMessage(site, "gw-1", "telemetry", 1, [
            {"source": "u-1", "container": box, "seq": 1, "time_utc_ms": now + i, "kind": "position",
             "lat_e7": 306200000 + i, "lon_e7": 1220300000, "fix": 3},
            {"source": "u-1", "container": box, "seq": 2, "time_utc_ms": now + i, "kind": "door", "state": "open"}]))
        batch.append(db.HealthMessage(site, "gw-1", {"time_utc_ms": now}))
    db.store_batch(conn, parts, batch, health_interval_s=60)
    o = livemap.Options(max_containers=7, recent_alarms=5, max_gateways=9, max_sources=11, track_points=3)
    st = livemap.state(conn, o)
    assert (len(st["containers"]), len(st["alarms"]), len(st["gateways"]), len(st["sources"])) == (7, 5, 9, 11), \
        [len(st[k]) for k in ("containers", "alarms", "gateways", "sources")]
    assert all(len(c["track"]) <= 3 for c in st["containers"])
    one = livemap.state(conn, o, ("site-07",))
    assert [c["container"] for c in one["containers"]] == ["ZZZU000007"] and \
        {g["site"] for g in one["gateways"] + one["sources"] + one["alarms"]} == {"site-07"}, one
    newest = max(c["last"]["time"] for c in livemap.state(conn, livemap.Options())["containers"])
    assert st["containers"][0]["last"]["time"] == newest, "the containers kept are the most recent"
    conn.execute("DELETE FROM eport.reading WHERE site LIKE 'site-%'")
    conn.execute("DELETE FROM eport.gateway_liveness WHERE site LIKE 'site-%'")
    conn.execute("DELETE FROM eport.source_stats WHERE site LIKE 'site-%'")
    conn.execute("DELETE FROM eport.reading_seq WHERE site LIKE 'site-%'")
    log("60 sites: the snapshot keeps to its limits (7 containers, 5 alarms, 9 gateways, 11 sources, 3 track "
        "points), the most recent first; ?site= gives that site's only")


def main():
    work = Path(tempfile.mkdtemp(prefix="eport-live-map-"))
    with pgtest.TempPostgres() as pg:
        conn = db.connect(pg.dsn)
        db.init_schema(conn)
        parts = db.Partitions()
        many_sites(conn, parts)
        store(conn, parts, journey.readings(20), 1)
        db.store_batch(conn, parts, [db.HealthMessage(journey.SITE, journey.GW, {"time_utc_ms": int(time.time() * 1000)}),
                                     db.HealthMessage(journey.SITE, "gw-quay-02", {"time_utc_ms": 1795000000000})],
                       health_interval_s=60)
        other_site(conn, parts, int(time.time() * 1000), 1)
        token = make_token(work)
        auth = {"Authorization": f"Bearer {token}"}
        conn.execute("UPDATE eport.gateway_liveness SET last_health_at = now() - interval '10 minutes' "
                     "WHERE gateway = 'gw-quay-02'")
        assert conn.execute("SELECT eport.mark_overdue(3)").fetchone()[0] == 1
        srv, err, base = start_server(pg, work)
        ch = None
        try:
            log(f"eport-ingest serve on {base}")
            ch, cdp = start_chromium(work)
            cdp.call("Network.enable")
            cdp.call("Runtime.enable")
            cdp.call("Emulation.setDeviceMetricsOverride", width=1500, height=950, deviceScaleFactor=1, mobile=False)
            status, _ = stream_lines(base + "/map", {}, 0.5)
            assert status == 401, status
            cdp.call("Page.navigate", url=f"{base}/map?token={token}&site={journey.SITE}")
            wait_js(cdp, "(document.getElementById('conn') || {}).textContent === 'live'", 15, "the live stream")
            href, cookies = cdp.js("[location.href, document.cookie]")
            assert href == f"{base}/map?site={journey.SITE}" and token not in cookies, (href, cookies)
            assert cdp.js("document.querySelector('h1').textContent") == f"e-port live map: site {journey.SITE}"
            log(f"/map?token=... exchanged for an HttpOnly cookie (not in document.cookie), the page at {href}")
            n_zones = cdp.js("document.querySelectorAll('#zones [data-zone]').length")
            want = len(json.loads((Path(SOURCE) / "docs/zones/shanghai-terminals.geojson").read_text())["features"])
            assert n_zones == want, (n_zones, want)
            assert cdp.js("!!document.querySelector('#zones [data-zone=\"yangshan-4\"]') && "
                          "document.querySelectorAll('#outlines [data-terminal]').length >= 2")
            log(f"{n_zones} zones and the terminal outlines drawn")
            assert cdp.js("document.querySelectorAll('#dots circle').length") == 2
            assert cdp.js("document.querySelectorAll('#tracks polyline').length") == 2
            gw = cdp.js("(() => { const r = document.querySelector('#gateways tr[data-gateway=\"gw-quay-02\"]');"
                        " return r && [r.className, r.textContent]; })()")
            assert gw and gw[0] == "offline" and "offline" in gw[1], gw
            ok = cdp.js("document.querySelector('#gateways tr[data-gateway=\"gw-yangshan-01\"]').className")
            assert ok == "online", ok
            log(f"gw-quay-02 shown offline ({gw[1]!r}), gw-yangshan-01 online")
            assert cdp.js(f"document.querySelector('#gateways tr[data-gateway=\"{OTHER_GW}\"]') === null")
            n_before = cdp.js("document.querySelectorAll('#alarms li').length")
            with urllib.request.urlopen(urllib.request.Request(f"{base}/map/state?site={OTHER_SITE}", headers=auth),
                                        timeout=10) as r:
                there = json.loads(r.read())
            assert [c["container"] for c in there["containers"]] == [OTHER_BOX] and \
                [g["gateway"] for g in there["gateways"]] == [OTHER_GW], there
            with urllib.request.urlopen(urllib.request.Request(f"{base}/map/state?site={journey.SITE}",
                                                               headers=auth), timeout=10) as r:
                cursor = json.loads(r.read())["cursor"]
            # the alarm, stored now; its seal number is markup that must stay text
            alarm = [("alarm", {"source": "tcu-0001", "container": journey.REEFER, "seq": 900,
                                "time_utc_ms": int(time.time() * 1000), "kind": "seal", "seal_id": EVIL_SEAL,
                                "state": "tampered"}),
                     ("alarm", {"source": journey.CUSTODY, "container": journey.REEFER, "seq": 900,
                                "time_utc_ms": int(time.time() * 1000), "kind": "event", "event": "seal_tampered",
                                "subject": "tcu-0001", "first_seq": 900, "caused_by_seq": 900,
                                "seal_id": EVIL_SEAL})]
            t_store = time.monotonic()
            res = store(conn, parts, alarm, 10000)
            assert res.stored == 2, res
            other = {"source": "tcu-9001", "container": OTHER_BOX, "seq": 2, "time_utc_ms": int(time.time() * 1000),
                     "kind": "seal", "seal_id": "SL-RTM", "state": "tampered"}
            db.store_batch(conn, parts, [db.DataMessage(OTHER_SITE, OTHER_GW, "alarm", 2, [other])])
            key = f"{journey.SITE}/{journey.GW}/{journey.CUSTODY}/900"
            expr = (f"(() => {{ const li = document.querySelector('#alarms li[data-key=\"{key}\"]');"
                    " return li && li.textContent; })()")
            _, text = wait_js(cdp, expr, 5, "the seal tampered alarm")
            elapsed = time.monotonic() - t_store
            log(f"seal tampered alarm on the page {elapsed * 1000:.0f} ms after it was stored: {text!r}")
            assert elapsed < 2.0, f"the alarm took {elapsed:.2f} s (at most 2 s)"
            assert EVIL_SEAL in text and "tampered" in text, text
            assert cdp.js("document.querySelectorAll('#alarms img, aside img').length") == 0
            assert cdp.js("window.__pwned === undefined")
            assert cdp.js("document.querySelectorAll('#alarms li').length") == n_before + 2, "only this site's alarms"
            assert cdp.js("document.body.textContent.indexOf('SL-RTM') < 0 && "
                          f"document.body.textContent.indexOf('{OTHER_BOX}') < 0"), "another site's data on the page"
            assert cdp.js("getComputedStyle(document.querySelector('#alarms li')).borderLeftColor") == "rgb(213, 0, 0)"
            assert cdp.js("document.querySelector('#dots circle.alarm') !== null")
            cdp.js("document.getElementById('fit-containers').click()")
            time.sleep(1.2)
            shot = work / "live-map.png"
            shot.write_bytes(base64.b64decode(cdp.call("Page.captureScreenshot", format="png")["data"]))
            log(f"screenshot: {shot}")
            urls = {e["params"]["request"]["url"] for e in cdp.events if e.get("method") == "Network.requestWillBeSent"}
            outside = [u for u in urls if not u.startswith(base)]
            assert not outside, f"the page loaded from elsewhere: {outside}"
            errors = [e for e in cdp.events if e.get("method") == "Runtime.exceptionThrown"]
            assert not errors, errors[:2]
            log(f"every request went to the server ({len(urls)} URLs), no script errors")
            # the stream: resume from a cursor, heartbeats, the client limit
            status, text = stream_lines(f"{base}/map/events?site={journey.SITE}", dict(auth, **{"Last-Event-ID": cursor}),
                                        2.5)
            assert status == 200 and EVIL_SEAL.replace('"', '\\"') in text and ": keep-alive" in text, text[:500]
            assert "SL-RTM" not in text and OTHER_GW not in text, "another site's readings in a site's stream"
            log("Last-Event-ID from before the alarm: resumed with it; keep-alive comments every 1 s")
            time.sleep(3)     # the closed stream is noticed at its next keep-alive write
            events = urllib.request.Request(base + "/map/events", headers=auth)
            held = [urllib.request.urlopen(events, timeout=10) for _ in range(2)]   # 3 with the page
            try:
                urllib.request.urlopen(events, timeout=10)
                raise AssertionError("a 4th client was accepted beyond --map-max-clients 3")
            except urllib.error.HTTPError as e:
                assert e.code == 503 and e.headers.get("Retry-After"), e
            for r in held:
                r.close()
            log("a client beyond --map-max-clients 3 got 503 with Retry-After")
            try:
                urllib.request.urlopen(urllib.request.Request(base + "/map/events?since=bogus", headers=auth), timeout=10)
                raise AssertionError("a bad cursor was accepted")
            except urllib.error.HTTPError as e:
                assert e.code == 400, e
        finally:
            if ch is not None:
                ch.terminate()
                try:
                    ch.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    ch.kill()
            srv.terminate()
            try:
                srv.wait(timeout=10)
            except subprocess.TimeoutExpired:
                srv.kill()
            err.close()
            conn.close()
    logged = (work / "serve.log").read_text()
    assert token not in logged and "token=<redacted>" in logged, "the token was logged"
    shutil.rmtree(work / "profile", ignore_errors=True)
    log(f"PASSED (work dir {work}: screenshot and serve.log)")


if __name__ == "__main__":
    main()
