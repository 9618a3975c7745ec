"""auth: who may read what from `eport-ingest serve` (docs/cloud.md section 15): bearer
tokens from a file of SHA-256 hashes (optionally restricted to sites), the map's one-time
token-for-cookie exchange, the TLS context (TLS 1.2 at least, optional client certificates),
the site scope of a request, and the rule that refuses a non-loopback listener without
authentication. api.py calls it; nothing here touches the database. Tokens themselves are
never stored, logged or echoed: only their hashes and names."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import socket
import ssl
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie

from .sites import site_problem

MAX_AUTHORIZATION = 1024            # characters of an Authorization header we look at
TOKEN_BYTES = 32                    # of randomness in a token made by `eport-ingest token`
TOKEN_PREFIX = "ept_"               # so that a leaked token is recognisable (secret scanners)
COOKIE = "eport_map"                # the map's cookie (Path=/map)
REALM = "eport-ingest"
TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*\Z")    # RFC 6750 b64token
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@:-]{0,63}\Z")
_HASH = re.compile(r"[0-9a-f]{64}\Z")


class Unauthorized(Exception):
    """401: `reason` is the RFC 6750 error code (or None: no credentials at all)."""

    def __init__(self, message: str, reason: str | None = "invalid_request"):
        super().__init__(message)
        self.reason = reason


class Forbidden(Exception):
    """403: authenticated, but not for that site."""


class TokensFileError(ValueError):
    pass


@dataclass(frozen=True)
class Principal:
    name: str                       # the token's name or the certificate's subject, for logs
    sites: frozenset | None = None  # None: every site


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def new_token(name: str, sites: tuple = ()) -> tuple[str, str]:
    """(a fresh random token, its line for the tokens file)."""
    if not _NAME.match(name):
        raise TokensFileError(f"{name!r} is not a token name (1..64 of A-Z a-z 0-9 _ . @ : -, not starting with "
                              "a punctuation mark)")
    for s in sites:
        if site_problem(s):
            raise TokensFileError(f"site {s!r} {site_problem(s)}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    return token, " ".join([name, token_hash(token)] + ([",".join(sites)] if sites else []))


def parse_tokens(text: str, origin: str = "tokens file") -> dict:
    """{sha256 hex: Principal} from the file's text: `name sha256hex [site1,site2]` per
    line; blank lines and lines starting with # are ignored. Raises TokensFileError naming
    the line."""
    out: dict = {}
    names: set = set()
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        where = f"{origin}:{n}"
        if len(fields) not in (2, 3):
            raise TokensFileError(f"{where}: expected `name sha256hex [site1,site2]`, got {len(fields)} fields")
        name, digest = fields[0], fields[1]
        if not _NAME.match(name):
            raise TokensFileError(f"{where}: {name!r} is not a token name")
        if not _HASH.match(digest):
            raise TokensFileError(f"{where}: the second field is not a SHA-256 in lowercase hex (64 characters); "
                                  "make a line with `eport-ingest token NAME`")
        if name in names or digest in out:
            raise TokensFileError(f"{where}: {'name ' + repr(name) if name in names else 'that hash'} "
                                  "is given twice")
        sites = None
        if len(fields) == 3:
            sites = frozenset(fields[2].split(","))
            bad = sorted(s for s in sites if site_problem(s))
            if bad:
                raise TokensFileError(f"{where}: site {bad[0]!r} {site_problem(bad[0])}")
        names.add(name)
        out[digest] = Principal(name, sites)
    return out


def load_tokens(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise TokensFileError(f"{path}: {getattr(e, 'strerror', None) or e}") from None
    return parse_tokens(text, path)


def bearer_of(header: str | None) -> str:
    """The token of an Authorization header value; Unauthorized saying what is wrong."""
    if header is None:
        raise Unauthorized("no credentials: send Authorization: Bearer <token>", None)
    if len(header) > MAX_AUTHORIZATION:
        raise Unauthorized(f"longer than {MAX_AUTHORIZATION} characters")
    if any(not (0x20 <= ord(c) <= 0x7E) for c in header):
        raise Unauthorized("has characters outside printable ASCII")
    scheme, _, token = header.strip().partition(" ")
    if not scheme:
        raise Unauthorized("empty: send Authorization: Bearer <token>")
    if scheme.lower() != "bearer":
        raise Unauthorized(f"scheme {scheme[:20]!r} is not supported: send Authorization: Bearer <token>")
    token = token.strip()
    if not TOKEN68.match(token):
        raise Unauthorized("the bearer token is empty or malformed", "invalid_token")
    return token


def cookie_of(header: str | None) -> str | None:
    """The map cookie's value in a Cookie header, or None."""
    if not header or len(header) > 8192:
        return None
    try:
        c = SimpleCookie()
        c.load(header)
    except CookieError:
        return None
    m = c.get(COOKIE)
    return m.value if m is not None else None


class Authenticator:
    """The tokens of --tokens-file (reloaded on SIGHUP), what was refused (counted), and
    the log line of each refusal."""

    def __init__(self, path: str | None):
        self.path = path
        self.lock = threading.Lock()
        self.tokens = load_tokens(path) if path else {}
        self.refused: Counter = Counter()

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def reload(self) -> None:
        """Reads the file again; a broken file keeps the tokens in use (and says so)."""
        try:
            tokens = load_tokens(self.path)
        except TokensFileError as e:
            log({"event": "tokens_reload_failed", "error": str(e), "tokens": len(self.tokens)})
            return
        with self.lock:
            self.tokens = tokens
        log({"event": "tokens_reloaded", "tokens": len(tokens)})

    def lookup(self, token: str) -> Principal | None:
        """Compares the token's hash with every stored hash in constant time (no early exit)."""
        digest = token_hash(token)
        found = None
        with self.lock:
            items = list(self.tokens.items())
        for stored, principal in items:
            if hmac.compare_digest(stored, digest):
                found = principal
        return found

    def check(self, token: str) -> Principal:
        p = self.lookup(token)
        if p is None:
            raise Unauthorized("the bearer token is not one of this server's (unknown or revoked)", "invalid_token")
        return p

    def authenticate(self, authorization: str | None, cookie: str | None = None) -> Principal:
        """The principal of a request: its Authorization header, else (on the map) its
        cookie. Raises Unauthorized."""
        if authorization is None and cookie is not None:
            if not TOKEN68.match(cookie):
                raise Unauthorized(f"the {COOKIE} cookie is malformed: open /map?token=<token> again", "invalid_token")
            try:
                return self.check(cookie)
            except Unauthorized:
                raise Unauthorized(f"the {COOKIE} cookie holds a token this server does not know: open "
                                   "/map?token=<token> again", "invalid_token") from None
        return self.check(bearer_of(authorization))

    def count(self, reason: str | None, path: str, peer: str, message: str) -> int:
        with self.lock:
            self.refused[reason or "no_credentials"] += 1
            n = sum(self.refused.values())
        log({"event": "auth_refused", "reason": reason or "no_credentials", "message": message, "path": path,
             "peer": peer, "refused": n})
        return n


def www_authenticate(reason: str | None) -> str:
    """The challenge of a 401 (RFC 6750 section 3), or with "insufficient_scope" of a 403."""
    return f'Bearer realm="{REALM}"' + (f', error="{reason}"' if reason else "")


def scope(principal: Principal | None, site: str | None):
    """The sites a request reads: None (every site), or a tuple. A restricted token without
    ?site= reads its own sites; with another site: Forbidden."""
    allowed = principal.sites if principal is not None else None
    if site is None:
        return None if allowed is None else tuple(sorted(allowed))
    if allowed is not None and site not in allowed:
        raise Forbidden(f"site: {principal.name!r} may not read site {site!r} (its sites: {', '.join(sorted(allowed))})")
    return (site,)


def map_cookie(token: str, secure: bool) -> str:
    """Set-Cookie for the map: the token itself, readable by no script (HttpOnly), sent by
    the browser only to /map on this server and never on a cross-site request."""
    return (f"{COOKIE}={token}; Path=/map; HttpOnly; SameSite=Strict" + ("; Secure" if secure else ""))


def tls_context(cert_file: str, key_file: str | None, client_ca_file: str | None) -> ssl.SSLContext:
    """The server's TLS: TLS 1.2 or later; with client_ca_file, a client certificate that
    chains to it is required at the handshake."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file or None)
    if client_ca_file:
        ctx.load_verify_locations(cafile=client_ca_file)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def certificate_name(cert: dict | None) -> str | None:
    """A verified peer certificate's URI SAN, else its CN (for logs), or None."""
    if not cert:
        return None
    for kind, value in cert.get("subjectAltName", ()):
        if kind == "URI":
            return value
    for rdn in cert.get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                return v
    return "client certificate"


def is_loopback(host: str) -> bool:
    """Whether every address the listen host stands for is a loopback one."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        addrs = {ai[4][0] for ai in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addrs) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs)


def listen_problem(host: str, tokens: bool, client_certs: bool, insecure: bool) -> str | None:
    """Why serve must not start on this address with this authentication, or None."""
    if tokens or client_certs or insecure or is_loopback(host):
        return None
    return (f"--listen {host or '*'} is not a loopback address and no authentication is configured: give "
            "--tokens-file FILE (bearer tokens; make one with `eport-ingest token NAME`) and/or --client-ca-file "
            "CA.pem with --tls-cert-file/--tls-key-file (client certificates); or --insecure-no-auth to serve "
            "anyone who can reach the port (not for production)")


def log(obj: dict) -> None:
    print(json.dumps(obj), file=sys.stderr, flush=True)
