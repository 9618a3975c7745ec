"""The e-port's outputs end to end (docs/cloud.md section 12): a throw-away PostgreSQL 15 +
PostGIS (eport_ingest.pgtest) gets a journey of every reading kind through
db.store_batch, the worker's own write path; `eport-ingest serve` runs on loopback;
GET /v3/events (DCSA T&T 3.0) and GET /epcis/events (EPCIS 2.0) are queried with filters
and paging (page boundaries, the last page without a cursor, a time range with inclusive
ends, an empty range, a cursor reused with other filters), and every bad parameter gets
HTTP 400 with a message naming it; `eport-ingest export` writes both formats. Then a
second site's readings: ?site= returns only that site's, a bad site is a 400; and a second
server with bearer tokens over HTTPS with client certificates (docs/cloud.md section 15):
401 without, with a wrong or a malformed token, 403 for a token's other site, 200 with a
good one, the handshake refused without a certificate of the CA, the map's token-for-cookie
exchange, no token in the log; a non-loopback --listen without authentication refused. Every
document returned or written passes the official schemas (cloud/ingest/tests/standards.py:
strict RFC 3339 and codes), and, when npm can install them, the shared Ajv validators.
Event times are the readings' own, never their arrival. Skips (77) without PostgreSQL 15,
PostGIS, psycopg, python3-jsonschema, python3-yaml or ../shared/standards."""
import datetime as _dt
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from pathlib import Path

SOURCE = os.environ.get("EPORT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
INGEST_DIR = Path(SOURCE) / "cloud" / "ingest"
INGEST = INGEST_DIR / "eport-ingest"
sys.path.insert(0, str(INGEST_DIR))
sys.path.insert(0, str(INGEST_DIR / "tests"))
from eport_ingest import pgtest  # noqa: E402
import standards  # noqa: E402

SKIP = 77
for why in (pgtest.missing(), standards.missing()):
    if why:
        print(f"SKIP: needs {why}", flush=True)
        sys.exit(SKIP)

import journey  # noqa: E402
import node_validators  # noqa: E402
from eport_ingest import db  # noqa: E402
from eport import dcsa, epcis  # noqa: E402

BREADCRUMBS = 40          # per container: enough for several pages
MAX_PAGE = 60             # the server's page limit: larger limits are lowered to it


def log(msg):
    print(f"[cloud_api] {msg}", flush=True)


def get(base, path, **params):
    """(status, headers, body as JSON) of GET path?params."""
    url = base + path + ("?" + urllib.parse.urlencode(params) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read())


def store(dsn):
    conn = db.connect(dsn)
    db.init_schema(conn)
    parts = db.Partitions()
    batch, eseq = [], 0
    for prio, r in journey.readings(BREADCRUMBS):
        eseq += 1
        batch.append(db.DataMessage(journey.SITE, journey.GW, prio, eseq, [r]))
    res = db.store_batch(conn, parts, batch)
    again = db.store_batch(conn, parts, batch[:10])       # a redelivery changes nothing
    assert (again.stored, again.duplicates) == (0, 10), again
    n = conn.execute("SELECT count(*) FROM eport.reading").fetchone()[0]
    late = conn.execute("SELECT bool_and(received_at > time + interval '1 day') FROM eport.reading "
                        "WHERE time > '2000-01-01'").fetchone()[0]
    assert late, "the journey's readings should arrive long after they were taken"
    conn.close()
    log(f"{res.stored} readings stored ({n} in eport.reading), all arriving days after their own time")
    return n


def expected(container, mapper):
    """What the API must return for a container, in the API's order (time, key)."""
    rows = sorted((journey.as_row(r) for _, r in journey.readings(BREADCRUMBS) if r.get("container") == container),
                  key=lambda r: (r.time, r.site, r.gateway, r.source, r.seq))
    return [e for e in (mapper(r) for r in rows) if e is not None]


def dcsa_all(base, **params):
    """Every page of a DCSA query: (events, page sizes); each page validated."""
    out, sizes, cursor = [], [], None
    while True:
        q = dict(params, **({"cursor": cursor} if cursor else {}))
        status, headers, body = get(base, "/v3/events", **q)
        assert status == 200, (status, body)
        assert headers.get("API-Version") == "3.0.0", headers
        errs = standards.dcsa_errors(body)
        assert errs == [], errs[:5]
        out += body["events"]
        sizes.append(len(body["events"]))
        cursor = headers.get("Next-Page-Cursor")
        if not cursor:
            return out, sizes
        assert len(sizes) < 1000, "paging does not end"


def epcis_all(base, **params):
    out, sizes, path = [], [], "/epcis/events?" + urllib.parse.urlencode(params)
    docs = []
    while path:
        status, headers, body = get(base, path)
        assert status == 200, (status, body)
        errs = standards.epcis_errors(body)
        assert errs == [], errs[:5]
        assert body["type"] == "EPCISQueryDocument"
        docs.append(body)
        evs = body["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        out += evs
        sizes.append(len(evs))
        link = headers.get("Link")
        path = re.fullmatch(r'<([^>]+)>; rel="next"', link).group(1) if link else None
    return out, sizes, docs


def check_bad(base, path, param, **params):
    status, headers, body = get(base, path, **params)
    assert status == 400, (path, params, status, body)
    text = json.dumps(body)
    assert param in text, (param, body)
    if path == "/v3/events":
        assert standards.dcsa_errors(body, root="GetEventsError") == [], body
        assert body["feedbackElements"][0]["severity"] == "ERROR"
        assert headers.get("API-Version") == "3.0.0"
    else:
        assert headers.get("Content-Type") == "application/problem+json" and body["status"] == 400, (headers, body)
    return body


def start_serve(dsn, work, name, *args):
    """(process, log file, port) of `eport-ingest serve` on a free loopback port."""
    path = work / f"{name}.log"
    err = open(path, "w")
    srv = subprocess.Popen([sys.executable, str(INGEST), "serve", "--dsn", dsn, "--listen", "127.0.0.1:0",
                            "--max-page", str(MAX_PAGE), *args], stderr=err)
    deadline = time.monotonic() + 30
    while '"listening"' not in path.read_text():
        assert srv.poll() is None and time.monotonic() < deadline, f"eport-ingest serve did not start: " \
            f"{path.read_text()}"
        time.sleep(0.05)
    port = json.loads(next(x for x in path.read_text().splitlines() if '"listening"' in x))["port"]
    return srv, err, port


def stop(srv, err):
    srv.terminate()
    try:
        srv.wait(timeout=10)
    except subprocess.TimeoutExpired:
        srv.kill()
    err.close()


def main():
    import shutil
    import tempfile
    work = Path(tempfile.mkdtemp(prefix="eport-cloud-api-"))
    with pgtest.TempPostgres() as pg:
        store(pg.dsn)
        srv, err, port = start_serve(pg.dsn, work, "serve")
        try:
            base = f"http://127.0.0.1:{port}"
            log(f"eport-ingest serve on {base}")
            saved = run(base, work)
            export_files(pg.dsn, work, saved)
            node_check(work, saved)
            store_other_site(pg.dsn)
            site_checks(base, saved)
        finally:
            stop(srv, err)
        log(f"eport-ingest serve answered {len((work / 'serve.log').read_text().splitlines()) - 1} requests")
        auth_checks(pg.dsn, work)
    refuse_open_listen()
    shutil.rmtree(work)
    log("PASSED")


def run(base, work):
    saved = {"dcsa": [], "epcis": []}
    R, D = journey.REEFER, journey.DRY
    # -- DCSA: all of a container over pages; the page boundary ---------------------------
    want = expected(R, dcsa.to_event)
    total = len(want)
    for limit in (7, total, total - 1, 1):
        got, sizes = dcsa_all(base, equipmentReference=R, limit=limit)
        assert [e["eventID"] for e in got] == [e["eventID"] for e in want], (limit, len(got), total)
        assert got == want, "the API's events are the mapping's"
        full, rest = divmod(total, limit)
        assert sizes == [limit] * full + ([rest] if rest else []), (limit, sizes)
    log(f"DCSA {R}: {total} events, identical over pages of 7, {total} (one page, no cursor), {total - 1} and 1")
    saved["dcsa"].append({"events": got})
    # times are the readings' own
    by_id = {dcsa.event_id(journey.as_row(r)): r for _, r in journey.readings(BREADCRUMBS)}
    for e in got:
        r = by_id[e["eventID"]]
        assert e["eventDateTime"] == e["eventUpdatedDateTime"] == \
            _dt.datetime.fromtimestamp(r["time_utc_ms"] / 1000, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    # every container, no filter
    every, sizes = dcsa_all(base, limit=500)
    assert len(every) == total + len(expected(D, dcsa.to_event)), len(every)
    assert sizes == [MAX_PAGE, len(every) - MAX_PAGE], f"limit 500 is lowered to --max-page {MAX_PAGE}: {sizes}"
    saved["dcsa"].append({"events": every})
    # eventTypes
    reefer, _ = dcsa_all(base, equipmentReference=R, eventTypes="REEFER")
    assert reefer and all(e["eventClassification"]["eventType"] == "REEFER" for e in reefer)
    assert len(reefer) == sum(e["eventClassification"]["eventType"] == "REEFER" for e in want)
    both, _ = dcsa_all(base, equipmentReference=R, eventTypes="IOT,REEFER", limit=5)
    assert len(both) == total
    none, sizes = dcsa_all(base, equipmentReference=R, eventTypes="EQUIPMENT")
    assert (none, sizes) == ([], [0])
    # a time range, both ends inclusive (DCSA's "at or after" / "at or before")
    lo, hi = want[3]["eventDateTime"], want[10]["eventDateTime"]
    ranged, _ = dcsa_all(base, equipmentReference=R, eventUpdatedDateTimeMin=lo, eventUpdatedDateTimeMax=hi, limit=2)
    assert ranged == [e for e in want if lo <= e["eventDateTime"] <= hi] and ranged[0]["eventDateTime"] == lo \
        and ranged[-1]["eventDateTime"] == hi, [e["eventDateTime"] for e in ranged]
    same, _ = dcsa_all(base, equipmentReference=R, eventUpdatedDateTimeMin=lo.replace("Z", "+08:00"))
    assert all(e["eventDateTime"] >= "2026-11-18T03:" for e in same) and len(same) == total, "offsets are honoured"
    # an empty range, a range with min after max, a container with nothing
    for params in ({"eventUpdatedDateTimeMin": "2030-01-01T00:00:00Z", "eventUpdatedDateTimeMax": "2030-02-01T00:00:00Z"},
                   {"eventUpdatedDateTimeMin": hi, "eventUpdatedDateTimeMax": lo},
                   {"equipmentReference": "APZU4812090"}):
            assert dcsa_all(base, **params) == ([], [0]), params
    log(f"DCSA eventTypes, an inclusive time range ({len(ranged)} events), empty ranges: as expected")
    # cursors: another query's cursor is refused
    status, headers, _ = get(base, "/v3/events", equipmentReference=R, limit=3)
    cursor = headers["Next-Page-Cursor"]
    check_bad(base, "/v3/events", "cursor", equipmentReference=D, limit=3, cursor=cursor)
    check_bad(base, "/v3/events", "cursor", equipmentReference=R, cursor="bm90IGEgY3Vyc29y")
    for param, value in (("limit", "0"), ("limit", "-1"), ("limit", "ten"), ("eventTypes", "IOT,BOGUS"),
                         ("eventUpdatedDateTimeMin", "2026-11-18"), ("eventUpdatedDateTimeMax", "2026-11-18T11:06:40"),
                         ("eventUpdatedDateTimeMin", "2026-02-30T00:00:00Z"), ("carrierBookingReference", "ABC709951"),
                         ("eventType", "IOT"), ("bogus", "1")):
        body = check_bad(base, "/v3/events", param, equipmentReference=R, **{param: value})
    status, _, body = get(base, f"/v3/events?equipmentReference={R}&equipmentReference={D}")
    assert status == 400 and "equipmentReference" in body["feedbackElements"][0]["message"], body
    log(f"DCSA: 400 naming the parameter for 13 bad requests (e.g. {body['feedbackElements'][0]['message']!r})")

    # -- EPCIS ------------------------------------------------------------------------------
    want_e = expected(D, epcis.to_event)
    got, sizes, docs = epcis_all(base, equipmentReference=D, perPage=4)
    assert [e["eventID"] for e in got] == [e["eventID"] for e in want_e], (len(got), len(want_e))
    assert got == want_e
    full, rest = divmod(len(want_e), 4)
    assert sizes == [4] * full + ([rest] if rest else []), sizes
    saved["epcis"] += docs
    got2, _, _ = epcis_all(base, MATCH_epc=epcis.Ids().container(D), perPage=500)
    assert got2 == want_e
    objects, _, _ = epcis_all(base, equipmentReference=R, eventType="AssociationEvent")
    assert [e["action"] for e in objects] == ["ADD"]
    lo, lt = want_e[2]["eventTime"], want_e[6]["eventTime"]
    ranged, _, docs = epcis_all(base, equipmentReference=D, GE_eventTime=lo, LT_eventTime=lt)
    assert ranged == [e for e in want_e if lo <= e["eventTime"] < lt], "GE_ inclusive, LT_ exclusive"
    empty, sizes, docs = epcis_all(base, GE_eventTime="2030-01-01T00:00:00Z")
    assert (empty, sizes) == ([], [0])
    saved["epcis"] += docs
    for param, value in (("perPage", "0"), ("eventType", "SensorEvent"), ("GE_eventTime", "yesterday"),
                         ("MATCH_epc", "urn:epc:id:sgtin:4012345.011111.9876"), ("nextPageToken", "xyz"),
                         ("EQ_bizStep", "arriving")):
        check_bad(base, "/epcis/events", param, **{param: value})
    status, _, _ = get(base, "/nowhere")
    assert status == 404
    log(f"EPCIS {D}: {len(want_e)} events over pages of 4, MATCH_epc, eventType, GE_/LT_eventTime, "
        f"an empty range; 400 naming the parameter for 6 bad requests")
    all_e, _, docs = epcis_all(base, perPage=500)
    saved["epcis"] += docs
    saved["epcis_total"] = len(all_e)
    saved["dcsa_total"] = len(every)
    return saved


def export_files(dsn, work, saved):
    for fmt in ("dcsa", "epcis"):
        out = work / f"export.{fmt}.json"
        p = subprocess.run([sys.executable, str(INGEST), "export", "--dsn", dsn, "--format", fmt, str(out)],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        doc = json.loads(out.read_text())
        if fmt == "dcsa":
            assert standards.dcsa_errors(doc) == [] and len(doc["events"]) == saved["dcsa_total"]
        else:
            assert standards.epcis_errors(doc) == [] and doc["type"] == "EPCISDocument"
            assert len(doc["epcisBody"]["eventList"]) == saved["epcis_total"]
        log(f"export --format {fmt}: {p.stderr.strip()}")
    out = work / "export.one.json"
    p = subprocess.run([sys.executable, str(INGEST), "export", "--dsn", dsn, "--format", "dcsa", "--equipment",
                        journey.REEFER, "--from", "2026-11-18T11:07:40Z", "--to", "2026-11-18T11:09:40Z", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    evs = json.loads(out.read_text())["events"]
    assert evs and all("2026-11-18T11:07:40.000Z" <= e["eventDateTime"] <= "2026-11-18T11:09:40.000Z" for e in evs)
    p = subprocess.run([sys.executable, str(INGEST), "export", "--dsn", dsn, "--format", "dcsa", "--from", "monday",
                        str(out)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "--from" in p.stderr, p.stderr
    saved["files"] = [work / "export.dcsa.json", work / "export.epcis.json"]


def node_check(work, saved):
    try:
        tools = node_validators.install()
    except node_validators.Unavailable as e:
        log(f"the shared Ajv validators not run ({e}); ingest.standards_node reports that skip")
        return
    paths = []
    for i, doc in enumerate(saved["epcis"]):
        paths.append(str(work / f"epcis-{i}.jsonld"))
        Path(paths[-1]).write_text(json.dumps(doc))
    paths.append(str(saved["files"][1]))
    passed, failed, out = node_validators.epcis(tools, paths)
    assert (passed, failed) == (len(paths), 0), out
    for i, doc in enumerate(saved["dcsa"] + [json.loads(saved["files"][0].read_text())]):
        verdict = node_validators.dcsa(tools, doc, str(work), f"dcsa-{i}.json")
        assert verdict == "valid", verdict
    log(f"the shared Ajv validators: {passed} EPCIS documents and {len(saved['dcsa']) + 1} DCSA responses valid")


# -- per-site scoping and authentication (docs/cloud.md section 15) -----------------------
OTHER_SITE, OTHER_GW = "nlrtm", "gw-rtm-01"


def store_other_site(dsn):
    """A second site's journey (another gateway), so that ?site= has something to leave out."""
    conn = db.connect(dsn)
    batch = [db.DataMessage(OTHER_SITE, OTHER_GW, prio, i + 1, [r]) for i, (prio, r) in enumerate(journey.readings(3))]
    res = db.store_batch(conn, db.Partitions(), batch)
    conn.close()
    log(f"{res.stored} readings of site {OTHER_SITE} stored")


def site_checks(base, saved):
    here, _ = dcsa_all(base, site=journey.SITE, limit=500)
    there, _ = dcsa_all(base, site=OTHER_SITE, limit=500)
    every, _ = dcsa_all(base, limit=500)
    assert len(here) == saved["dcsa_total"] and all(e["eventID"].startswith(f"eport:{journey.SITE}:") for e in here)
    assert there and all(e["eventID"].startswith(f"eport:{OTHER_SITE}:") for e in there), there[:1]
    assert len(every) == len(here) + len(there)
    assert dcsa_all(base, site="zzz") == ([], [0]), "an unknown site has no events"
    paged, sizes = dcsa_all(base, site=OTHER_SITE, limit=4)
    assert paged == there and len(sizes) > 1, "a site's cursor pages within the site"
    e_here, _, _ = epcis_all(base, site=journey.SITE, perPage=500)
    e_there, _, _ = epcis_all(base, site=OTHER_SITE, perPage=500)
    e_every, _, _ = epcis_all(base, perPage=500)
    assert len(e_here) == saved["epcis_total"] and e_there and len(e_every) == len(e_here) + len(e_there)
    gw = f"urn:eport:gateway:{OTHER_SITE}:"
    assert any(e.get("readPoint", {}).get("id", "").startswith(gw) for e in e_there)
    assert not any(e.get("readPoint", {}).get("id", "").startswith(gw) for e in e_here)
    for path in ("/v3/events", "/epcis/events"):
        for bad in ("cn sha", "a/b", "", "x" * 65, "cn.sha"):
            check_bad(base, path, "site", site=bad)
    status, _, body = get(base, f"/v3/events?site={journey.SITE}&site={OTHER_SITE}")
    assert status == 400 and "site" in json.dumps(body), body
    log(f"?site=: {len(here)} DCSA / {len(e_here)} EPCIS events of {journey.SITE}, {len(there)} / {len(e_there)} of "
        f"{OTHER_SITE}, together all of them; 10 bad sites and a repeated one each a 400 naming `site`")


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_pki(d: Path) -> dict:
    """A CA, the server's certificate for 127.0.0.1 and two client certificates: one of the
    CA, one self-signed (chains to nothing the server trusts). EC keys: fast to make."""
    def key(name):
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(d / f"{name}.key"))
    key("ca")
    openssl("req", "-x509", "-new", "-key", str(d / "ca.key"), "-subj", "/CN=eport test CA", "-days", "2",
            "-out", str(d / "ca.crt"))
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "subjectAltName=URI:eport://cnsha/reader/ops")):
        key(name)
        openssl("req", "-new", "-key", str(d / f"{name}.key"), "-subj", f"/CN={name}", "-out", str(d / f"{name}.csr"))
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.crt"), "-CAkey", str(d / "ca.key"),
                "-CAcreateserial", "-days", "2", "-extfile", str(d / f"{name}.ext"), "-out", str(d / f"{name}.crt"))
    key("stranger")
    openssl("req", "-x509", "-new", "-key", str(d / "stranger.key"), "-subj", "/CN=stranger", "-days", "2",
            "-out", str(d / "stranger.crt"))
    return {n: str(d / n) for n in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key",
                                     "stranger.crt", "stranger.key")}


def new_token(work, name, *args):
    """A token made by `eport-ingest token` (a real process), its line appended to tokens.txt."""
    p = subprocess.run([sys.executable, str(INGEST), "token", name, "--append", str(work / "tokens.txt"), *args],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    token = p.stdout.strip()
    assert token.startswith("ept_") and token not in (work / "tokens.txt").read_text()
    return token


class Https:
    """Requests over TLS with a client certificate (or none), headers exactly as given."""

    def __init__(self, port, pki, cert="client"):
        self.port = port
        self.ctx = ssl.create_default_context(cafile=pki["ca.crt"])
        if cert:
            self.ctx.load_cert_chain(pki[f"{cert}.crt"], pki[f"{cert}.key"])

    def get(self, path, headers=()):
        """(status, headers, JSON body or None)."""
        c = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=10)
        try:
            c.putrequest("GET", path)
            for k, v in headers:
                c.putheader(k, v)
            c.endheaders()
            r = c.getresponse()
            data = r.read()
            return r.status, dict(r.getheaders()), json.loads(data) if data else None
        finally:
            c.close()


def handshake_refused(https) -> str:
    """The error a client without an acceptable certificate gets; it must get no HTTP answer."""
    try:
        status, _, _ = https.get("/v3/events")
    except (ssl.SSLError, ConnectionError, http.client.RemoteDisconnected, socket.timeout) as e:
        return type(e).__name__
    raise AssertionError(f"answered {status} without an acceptable client certificate")


def auth_checks(dsn, work):
    t0 = time.monotonic()
    pki = make_pki(work)
    ops = new_token(work, "ops")
    rtm = new_token(work, "rtm-reader", "--sites", OTHER_SITE)
    srv, err, port = start_serve(dsn, work, "secure", "--tokens-file", str(work / "tokens.txt"),
                                 "--tls-cert-file", pki["server.crt"], "--tls-key-file", pki["server.key"],
                                 "--client-ca-file", pki["ca.crt"])
    try:
        https = Https(port, pki)
        # client certificates: refused at the handshake without one of the CA
        errs = [handshake_refused(Https(port, pki, None)), handshake_refused(Https(port, pki, "stranger"))]
        old = Https(port, pki)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            old.ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        errs.append(handshake_refused(old))
        log(f"HTTPS: no client certificate, a self-signed one and TLS 1.1 refused at the handshake ({errs})")
        # tokens
        bearer = lambda t: [("Authorization", f"Bearer {t}")]    # noqa: E731
        for path, kind in (("/v3/events", "dcsa"), ("/epcis/events", "epcis"), ("/map/state", "map")):
            status, h, body = https.get(path)
            assert status == 401 and h.get("WWW-Authenticate") == 'Bearer realm="eport-ingest"', (path, status, h)
            assert "Authorization" in json.dumps(body), body
        status, h, body = https.get("/v3/events", bearer("ept_not-a-token"))
        assert status == 401 and 'error="invalid_token"' in h["WWW-Authenticate"], (status, h)
        assert standards.dcsa_errors(body, root="GetEventsError") == [] and "not one of" in json.dumps(body), body
        status, h, body = https.get("/epcis/events", bearer("ept_not-a-token"))
        assert status == 401 and body["type"] == "epcisException:SecurityException" and body["status"] == 401, body
        status, h, body = https.get(f"/v3/events?limit=500&site={journey.SITE}", bearer(ops))
        assert status == 200 and body["events"], status
        status, _, body = https.get(f"/v3/events?site={journey.SITE}", bearer(rtm))
        assert status == 403 and "rtm-reader" in json.dumps(body) and journey.SITE in json.dumps(body), (status, body)
        status, _, body = https.get(f"/epcis/events?site={journey.SITE}", bearer(rtm))
        assert status == 403 and body["type"] == "epcisException:SecurityException", body
        status, _, body = https.get(f"/map/state?site={journey.SITE}", bearer(rtm))
        assert status == 403, status
        status, _, body = https.get("/v3/events?limit=500", bearer(rtm))   # no ?site=: its own sites
        assert status == 200 and body["events"] and all(e["eventID"].startswith(f"eport:{OTHER_SITE}:")
                                                        for e in body["events"]), status
        status, _, st = https.get("/map/state", bearer(rtm))
        assert status == 200 and {g["site"] for g in st["gateways"]} == {OTHER_SITE}, st["gateways"]
        log("tokens: none, a wrong one -> 401 (WWW-Authenticate: Bearer, DCSA / EPCIS / JSON bodies); good -> 200; "
            f"restricted to {OTHER_SITE}: {journey.SITE} -> 403, no ?site= -> its site only")
        malformed = [("empty", ""), ("Basic", "Basic b3BzOnNlY3JldA=="), ("scheme only", "Bearer"),
                     ("two tokens", f"Bearer {ops} {ops}"), ("overlong", "Bearer " + "A" * 8000),
                     ("non-ASCII (latin-1)", "Bearer t\u00f6ken"), ("non-ASCII (UTF-8 bytes)", "Bearer ".encode() +
                                                                  "токен".encode()),
                     ("control character", "Bearer a\x01b"), ("token with a space before", "  Bearer"),
                     ("Digest", 'Digest username="ops"')]
        for what, value in malformed:
            status, h, body = https.get("/v3/events", [("Authorization", value)])
            assert status == 401 and h.get("WWW-Authenticate", "").startswith("Bearer"), (what, status, body)
            assert body["feedbackElements"][0]["message"].startswith("Authorization"), (what, body)
        status, _, body = https.get("/v3/events", bearer(ops) + bearer(ops))
        assert status == 401 and "more than once" in json.dumps(body), body
        log(f"{len(malformed) + 1} malformed Authorization headers: each a 401 naming the problem, never a 500")
        # the map: the token once in the URL, exchanged for a cookie
        status, h, _ = https.get(f"/map?token={ops}&site={journey.SITE}")
        cookie = h.get("Set-Cookie", "")
        assert status == 303 and h["Location"] == f"/map?site={journey.SITE}", (status, h)
        assert all(f in cookie for f in ("HttpOnly", "SameSite=Strict", "Secure", "Path=/map")), cookie
        jar = [("Cookie", cookie.split(";")[0])]
        assert https.get(f"/map/state?site={journey.SITE}", jar)[0] == 200
        assert https.get("/v3/events", jar)[0] == 401, "the map's cookie is for /map only"
        assert https.get("/map?token=ept_wrong")[0] == 401
        assert https.get("/map/state", [("Cookie", "eport_map=ept_wrong")])[0] == 401
        log("map: /map?token= -> 303 to the URL without it, cookie HttpOnly; SameSite=Strict; Secure; Path=/map")
    finally:
        stop(srv, err)
    text = (work / "secure.log").read_text()
    for t in (ops, rtm):
        assert t not in text, "a token was logged"
    assert "token=<redacted>" in text and '"auth": "ops"' in text
    refused = [json.loads(x) for x in text.splitlines() if '"auth_refused"' in x]
    assert len(refused) == 19 and refused[-1]["refused"] == len(refused), len(refused)   # the 401s above
    assert text.count('"tls_refused"') >= 3
    log(f"serve's log: {len(refused)} refusals counted, {text.count('tls_refused')} handshakes refused, no token "
        f"in it ({time.monotonic() - t0:.1f} s)")


def refuse_open_listen():
    p = subprocess.run([sys.executable, str(INGEST), "serve", "--dsn", "dbname=none", "--listen", "0.0.0.0:0"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2, (p.returncode, p.stderr)
    for opt in ("not a loopback address", "--tokens-file", "--client-ca-file", "--insecure-no-auth"):
        assert opt in p.stderr, (opt, p.stderr)
    log(f"--listen 0.0.0.0 without authentication refused: {p.stderr.strip().splitlines()[-1][:110]}...")


if __name__ == "__main__":
    main()
