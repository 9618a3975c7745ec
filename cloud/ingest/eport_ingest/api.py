"""api: the HTTP API an e-port's systems read (docs/cloud.md section 12), on the standard
library's http.server, and the file export behind `eport-ingest export`.
  GET /v3/events    DCSA T&T 3.0 GetEventsResponse: equipmentReference, eventTypes,
                    eventUpdatedDateTimeMin/Max, limit, cursor (Next-Page-Cursor header)
  GET /epcis/events EPCIS 2.0 EPCISQueryDocument: equipmentReference or MATCH_epc,
                    eventType, GE_eventTime, LT_eventTime, perPage, nextPageToken (Link header)
  GET /map ...      the live map (livemap.py), when the server is given one
Every route takes ?site= (only that site's readings). With an Authenticator (auth.py)
every request needs a bearer token (the map: or its cookie); over TLS (Server's tls) a
client certificate too when the context requires one. A bad parameter is an HTTP 400
whose message names it, 401/403 say what was wrong. Documents come from rows.fetch through
dcsa.to_event / epcis.to_event; the database is only read."""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import os
import re
import ssl
import sys
import tempfile
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import psycopg

from eport import dcsa, epcis

from . import auth, rows
from .sites import site_problem

DEFAULT_PAGE = 100
MAX_PAGE = 1000


class BadRequest(Exception):
    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param


def _single(params: dict, name: str) -> str | None:
    v = params.get(name)
    if v is None:
        return None
    if len(v) != 1:
        raise BadRequest(name, "given more than once")
    return v[0]


def _time(params, name):
    v = _single(params, name)
    if v is None:
        return None
    try:
        return rows.parse_rfc3339(v)
    except ValueError as e:
        raise BadRequest(name, str(e)) from None


def _limit(params, name, max_page):
    v = _single(params, name)
    if v is None:
        return min(DEFAULT_PAGE, max_page)
    if not v.isdigit() or int(v) < 1:
        raise BadRequest(name, f"{v!r} is not a whole number of 1 or more")
    # DCSA: the effective page size is the smaller of the request's limit and the producer's
    return min(int(v), max_page)


def _fingerprint(kind: str, filters: dict) -> str:
    return hashlib.sha256(json.dumps([kind, filters], sort_keys=True, default=str).encode()).hexdigest()[:16]


def encode_cursor(key: tuple, fingerprint: str) -> str:
    t, site, gw, source, seq = key
    raw = json.dumps({"k": [t.isoformat(), site, gw, source, seq], "f": fingerprint}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(name: str, text: str, fingerprint: str) -> tuple:
    try:
        raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        t, site, gw, source, seq = raw["k"]
        key = (_dt.datetime.fromisoformat(t), str(site), str(gw), str(source), int(seq))
        f = raw["f"]
    except (ValueError, KeyError, TypeError):
        raise BadRequest(name, "not a cursor this server gave out") from None
    if f != fingerprint:
        raise BadRequest(name, "given with other filters than the request that returned it")
    return key


def _check_names(params: dict, allowed: tuple, unsupported: dict) -> None:
    for name in params:
        if name in unsupported:
            raise BadRequest(name, unsupported[name])
        if name not in allowed:
            raise BadRequest(name, f"unknown query parameter (this endpoint takes {', '.join(allowed)})")


def site_param(params: dict) -> str | None:
    """The ?site= of a request (every route), or None. Raises BadRequest."""
    v = _single(params, "site")
    if v is not None and site_problem(v):
        raise BadRequest("site", f"{v!r} is not a site id: {site_problem(v)}")
    return v


DCSA_PARAMS = ("equipmentReference", "eventTypes", "eventUpdatedDateTimeMin", "eventUpdatedDateTimeMax", "limit",
               "cursor", "site")
DCSA_UNSUPPORTED = {n: "not supported: the e-port's readings carry no bookings or transport documents, "
                       "filter by equipmentReference" for n in ("carrierBookingReference", "transportDocumentReference")}


def dcsa_page(conn, params: dict, max_page: int = MAX_PAGE, sites: tuple | None = None):
    """(GetEventsResponse, next cursor or None) for the query parameters of GET /v3/events
    (parse_qs form), of `sites` only (None: every site; the caller resolved ?site=).
    Raises BadRequest."""
    _check_names(params, DCSA_PARAMS, DCSA_UNSUPPORTED)
    container = _single(params, "equipmentReference")
    types = None
    if _single(params, "eventTypes") is not None:
        types = [t.strip() for t in params["eventTypes"][0].split(",")]
        for t in types:
            if t not in dcsa.EVENT_TYPES:
                raise BadRequest("eventTypes", f"{t!r} is not a DCSA event type ({', '.join(dcsa.EVENT_TYPES)})")
    t_min, t_max = _time(params, "eventUpdatedDateTimeMin"), _time(params, "eventUpdatedDateTimeMax")
    limit = _limit(params, "limit", max_page)
    fp = _fingerprint("dcsa", {"c": container, "t": types, "min": t_min, "max": t_max, "s": sites})
    after = decode_cursor("cursor", params["cursor"][0], fp) if _single(params, "cursor") is not None else None
    kinds = rows.EXPORTED_KINDS if types is None else tuple(sorted({k for t in types for k in dcsa.KINDS_OF_TYPE[t]}))

    def mapper(row):
        ev = dcsa.to_event(row)
        return ev if ev is not None and (types is None or dcsa.event_type(ev) in types) else None
    if not kinds or (t_min and t_max and t_min > t_max):
        return {"events": []}, None
    events, nxt = rows.pages(conn, rows.Query(container, t_min, t_max, kinds, after, sites), mapper, limit)
    return {"events": events}, (encode_cursor(nxt, fp) if nxt else None)


EPCIS_PARAMS = ("equipmentReference", "MATCH_epc", "MATCH_anyEPC", "eventType", "GE_eventTime", "LT_eventTime",
                "perPage", "nextPageToken", "site")


def epcis_page(conn, params: dict, ids: epcis.Ids, max_page: int = MAX_PAGE, sites: tuple | None = None):
    """(EPCISQueryDocument, next page token or None) for GET /epcis/events. Raises BadRequest."""
    _check_names(params, EPCIS_PARAMS, {})
    container = _single(params, "equipmentReference")
    for name in ("MATCH_epc", "MATCH_anyEPC"):
        epc = _single(params, name)
        if epc is not None:
            c = ids.container_from_epc(epc)
            if c is None:
                raise BadRequest(name, f"{epc!r} is not a container EPC of this server ({ids.container('MSKU1234565')})")
            if container is not None and c != container:
                raise BadRequest(name, f"names another container than equipmentReference {container!r}")
            container = c
    types = None
    if _single(params, "eventType") is not None:
        types = [t.strip() for t in params["eventType"][0].split(",")]
        for t in types:
            if t not in ("ObjectEvent", "AggregationEvent", "TransactionEvent", "TransformationEvent",
                         "AssociationEvent"):
                raise BadRequest("eventType", f"{t!r} is not an EPCIS event type")
    t_min, t_lt = _time(params, "GE_eventTime"), _time(params, "LT_eventTime")
    limit = _limit(params, "perPage", max_page)
    fp = _fingerprint("epcis", {"c": container, "t": types, "ge": t_min, "lt": t_lt, "ids": repr(ids), "s": sites})
    token = _single(params, "nextPageToken")
    after = decode_cursor("nextPageToken", token, fp) if token is not None else None

    def mapper(row):
        ev = epcis.to_event(row, ids)
        return ev if ev is not None and (types is None or ev["type"] in types) else None
    if (t_min and t_lt and t_min >= t_lt) or (types is not None and not set(types) & set(epcis.EVENT_TYPES)):
        return epcis.query_document([]), None
    t_max = t_lt - _dt.timedelta(microseconds=1) if t_lt else None   # LT_: strictly before
    events, nxt = rows.pages(conn, rows.Query(container, t_min, t_max, rows.EXPORTED_KINDS, after, sites), mapper,
                             limit)
    return epcis.query_document(events), (encode_cursor(nxt, fp) if nxt else None)


def export(conn, fmt: str, out_path: str, container=None, time_from=None, time_to=None,
           ids: epcis.Ids = epcis.Ids(), chunk: int = 1000) -> int:
    """Writes every event of the container (or all) between the times (inclusive) to a file:
    DCSA as {"events": [...]} (the body of POST /events), EPCIS as one EPCISDocument.
    Written to a temporary file and renamed. Returns the number of events."""
    mapper = dcsa.to_event if fmt == "dcsa" else (lambda r: epcis.to_event(r, ids))
    events, after = [], None
    while True:
        page, after = rows.pages(conn, rows.Query(container, time_from, time_to, rows.EXPORTED_KINDS, after),
                                 mapper, chunk)
        events += page
        if after is None:
            break
    doc = {"events": events} if fmt == "dcsa" else epcis.document(events)
    d = os.path.dirname(os.path.abspath(out_path))
    fd, tmp = tempfile.mkstemp(prefix=".export-", dir=d)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=1, ensure_ascii=False)
            f.write("\n")
        os.replace(tmp, out_path)
    except BaseException:
        os.unlink(tmp)
        raise
    return len(events)


_SECRET_QUERY = re.compile(r"([?&]token=)[^&\s]*")


def redact(text: str) -> str:
    """A request line as it may be logged: the map's ?token= is never written anywhere."""
    return _SECRET_QUERY.sub(r"\1<redacted>", text)


def _route(path: str) -> str:
    if path in ("/v3/events", "/events"):
        return "dcsa"
    if path == "/epcis/events":
        return "epcis"
    if path == "/map" or path.startswith("/map/"):
        return "map"
    return "other"


def error_body(route: str, status: int, message: str) -> dict:
    """An error in the form of the route: DCSA's feedbackElements, EPCIS's RFC 7807 problem,
    else {"error": message}."""
    if route == "dcsa":
        return {"feedbackElements": [{"severity": "ERROR", "message": message}]}
    if route == "epcis":
        kind = "QueryParameterException" if status == 400 else "SecurityException"
        return {"type": f"epcisException:{kind}", "title": message, "status": status}
    return {"error": message}


class _Handler(BaseHTTPRequestHandler):
    server_version = "eport-ingest"
    principal: auth.Principal | None = None

    def log_message(self, fmt, *args):   # one JSON line per request on stderr, never a token
        if self.server.quiet:
            return
        # log_request gives (requestline, code, size), log_error (code, message quoting the request)
        line = {"http": redact(self.requestline), "status": redact(str(args[1])) if len(args) > 1 else None}
        if self.principal is not None:
            line["auth"] = self.principal.name
        print(json.dumps(line), flush=True, file=sys.stderr)

    def _send(self, status, body: dict, headers=()):
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/ld+json" if "@context" in body else
                         "application/problem+json" if "title" in body else "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _route_headers(self, route):
        return [("API-Version", dcsa.API_VERSION)] if route == "dcsa" else \
            [("GS1-EPCIS-Version", "2.0")] if route == "epcis" else []

    def _authenticate(self, route, url, params) -> bool:
        """Sets self.principal, or answers 401 (or the map's cookie exchange) and returns False."""
        self.principal = None
        if isinstance(self.connection, ssl.SSLSocket):     # verified at the handshake when required
            name = auth.certificate_name(self.connection.getpeercert())
            self.principal = auth.Principal(name) if name else None
        a = self.server.auth
        if a is None or not a.enabled:
            return True
        if route == "map" and url.path in ("/map", "/map/") and params and "token" in params:
            return self._exchange(a, url, params)
        try:
            if len(self.headers.get_all("Authorization") or ()) > 1:
                raise auth.Unauthorized("given more than once")
            cookie = auth.cookie_of(self.headers.get("Cookie")) if route == "map" else None
            self.principal = a.authenticate(self.headers.get("Authorization"), cookie)
            return True
        except auth.Unauthorized as e:
            self._refuse(a, route, url, e)
            return False

    def _refuse(self, a, route, url, e: auth.Unauthorized):
        a.count(e.reason, url.path, self.client_address[0], str(e))
        self._send(HTTPStatus.UNAUTHORIZED, error_body(route, 401, f"Authorization: {e}"),
                   self._route_headers(route) + [("WWW-Authenticate", auth.www_authenticate(e.reason)),
                                                 ("Cache-Control", "no-store")])

    def _exchange(self, a, url, params) -> bool:
        """/map?token=T: a good token becomes the map's cookie and the browser is sent to the
        same URL without it (so that it is in no history, bookmark or Referer)."""
        token = params["token"][0] if len(params["token"]) == 1 else ""
        try:
            if not auth.TOKEN68.match(token):
                raise auth.Unauthorized("?token= is empty, malformed or given more than once", "invalid_token")
            self.principal = a.check(token)
        except auth.Unauthorized as e:
            self._refuse(a, "map", url, e)
            return False
        rest = urlencode([(k, v) for k, vs in params.items() if k != "token" for v in vs])
        self.send_response(HTTPStatus.SEE_OTHER)
        self.send_header("Location", "/map" + ("?" + rest if rest else ""))
        self.send_header("Set-Cookie", auth.map_cookie(token, secure=self.server.tls is not None))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def do_GET(self):   # noqa: N802 (http.server's name)
        url = urlsplit(self.path)
        try:
            params = parse_qs(url.query, keep_blank_values=True, strict_parsing=bool(url.query))
        except ValueError:
            params = None
        route = _route(url.path)
        if not self._authenticate(route, url, params):
            return
        headers = self._route_headers(route)
        if route == "other" or (route == "map" and self.server.live is None):
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no such resource {url.path} (/v3/events, /epcis/events"
                                              f"{', /map' if self.server.live is not None else ''})"})
            return
        try:
            if params is None:
                raise BadRequest("query", "not a valid query string")
            sites = auth.scope(self.principal, site_param(params))
            if route == "map":
                self.server.live.handle(self, url.path, params, sites)
                return
            with psycopg.connect(self.server.dsn, autocommit=True) as conn:
                if route == "dcsa":
                    body, nxt = dcsa_page(conn, params, self.server.max_page, sites)
                    if nxt:
                        headers.append(("Next-Page-Cursor", nxt))
                else:
                    body, nxt = epcis_page(conn, params, self.server.ids, self.server.max_page, sites)
                    if nxt:
                        q = {k: v[0] for k, v in params.items() if k != "nextPageToken"}
                        q["nextPageToken"] = nxt
                        headers.append(("Link", f'<{url.path}?{urlencode(q)}>; rel="next"'))
            self._send(HTTPStatus.OK, body, headers)
        except BadRequest as e:
            self._send(HTTPStatus.BAD_REQUEST, error_body(route, 400, str(e)), headers)
        except auth.Forbidden as e:
            self._send(HTTPStatus.FORBIDDEN, error_body(route, 403, str(e)),
                       headers + [("WWW-Authenticate", auth.www_authenticate("insufficient_scope"))])
        except psycopg.Error as e:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, {"error": f"database: {str(e).strip()[:300]}"}, headers)


class Server(ThreadingHTTPServer):
    """The HTTP(S) server. With `tls` (auth.tls_context) each connection's handshake runs
    in its own thread, so a client that never finishes one holds up no one else."""
    daemon_threads = True
    handshake_timeout_s = 10.0

    def __init__(self, address, dsn: str, ids: epcis.Ids = epcis.Ids(), max_page: int = MAX_PAGE, quiet=False,
                 live=None, authenticator: auth.Authenticator | None = None, tls: ssl.SSLContext | None = None):
        super().__init__(address, _Handler)
        self.dsn, self.ids, self.max_page, self.quiet = dsn, ids, max_page, quiet
        self.live = live        # a livemap.LiveMap, or None: no /map
        self.auth = authenticator
        self.tls = tls
        self.handshake_failures = 0

    def get_request(self):
        sock, addr = super().get_request()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def finish_request(self, request, client_address):
        if self.tls is not None and not self._handshake(request, client_address):
            return
        super().finish_request(request, client_address)

    def _handshake(self, sock, client_address) -> bool:
        try:
            sock.settimeout(self.handshake_timeout_s)
            sock.do_handshake()
            sock.settimeout(None)
            return True
        except (ssl.SSLError, OSError) as e:
            self.handshake_failures += 1
            auth.log({"event": "tls_refused", "peer": client_address[0], "error": str(e)[:200],
                      "refused": self.handshake_failures})
            return False

    def start_background(self) -> threading.Thread:
        t = threading.Thread(target=self.serve_forever, name="eport-api", daemon=True)
        t.start()
        return t
