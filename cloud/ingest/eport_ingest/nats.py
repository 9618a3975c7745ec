"""nats: the small NATS client protocol client eport-ingest needs (Debian 12 has no NATS
client for Python): one blocking connection at a time, TLS with a client certificate
(nats-server 2.9 sends INFO in clear, then the client upgrades), CONNECT with headers,
SUB, PUB, MSG and HMSG (headers, including JetStream's status-only replies such as
"NATS/1.0 408 Request Timeout"), PING/PONG both ways, -ERR. Failover: connect() tries the
servers in turn. No threads: the caller drives reads with a deadline. Written from the
protocol description at docs.nats.io ("Client Protocol"), not copied from any client."""

from __future__ import annotations

import json
import os
import socket
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

MAX_CONTROL_LINE = 4096


class NatsError(Exception):
    """Connection lost, protocol error or -ERR from the server (the message says which)."""


@dataclass
class Msg:
    subject: str
    sid: int
    reply: str
    data: bytes
    headers: dict = field(default_factory=dict)
    status: int = 0            # from an "NATS/1.0 <code> <text>" header line; 0 if none
    description: str = ""
    oversize: int = 0          # > max_message_bytes: its size; data and headers were skipped, not kept


@dataclass
class TlsOptions:
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    verify_hostname: bool = True


def new_id() -> str:
    return os.urandom(8).hex()


def parse_headers(block: bytes) -> tuple[int, str, dict]:
    """'NATS/1.0[ code text]\\r\\nKey: value\\r\\n...\\r\\n\\r\\n' -> (code, text, {key: value})."""
    lines = block.decode("utf-8", "replace").split("\r\n")
    first = lines[0]
    if not first.startswith("NATS/1.0"):
        raise NatsError(f"header block does not start with NATS/1.0: {first[:40]!r}")
    code, text = 0, ""
    rest = first[8:].strip()
    if rest:
        code_s, _, text = rest.partition(" ")
        code = int(code_s) if code_s.isdigit() else 0
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        k, _, v = line.partition(":")
        headers[k.strip()] = v.strip()
    return code, text, headers


class Connection:
    def __init__(self, servers: list[str], tls: TlsOptions | None = None, name: str = "eport-ingest",
                 connect_timeout_s: float = 5.0, max_message_bytes: int = 16 << 20):
        if not servers:
            raise ValueError("no NATS server given")
        self.servers = servers
        self.tls = tls
        self.name = name
        self.connect_timeout_s = connect_timeout_s
        # nats-server 2.9.10 does not apply max_payload to MQTT publishes (cluster.md): a
        # message of any size can arrive. Bigger than this, it is skipped while it is read.
        self.max_message_bytes = max_message_bytes
        self.sock = None
        self.buf = bytearray()
        self.server_info = {}
        self.url = ""
        self.next_server = 0
        self.sids = 0
        self.subs = {}           # sid -> subject
        self.stash = []          # messages read while waiting for something else
        self._pending_pong = False

    # -- connecting ------------------------------------------------------------------------
    def connect(self, attempts_per_server: int = 1) -> str:
        """Connects to the first server that answers, starting after the last one used.
        Returns its URL; raises NatsError naming every failure."""
        errors = []
        for _ in range(len(self.servers) * attempts_per_server):
            url = self.servers[self.next_server % len(self.servers)]
            self.next_server += 1
            try:
                self._connect_one(url)
                return url
            except (OSError, NatsError, ssl.SSLError, ValueError) as e:
                errors.append(f"{url}: {e}")
                self.close()
        raise NatsError("no NATS server reachable: " + "; ".join(errors))

    def _connect_one(self, url: str) -> None:
        u = urlparse(url if "://" in url else "nats://" + url)
        host, port = u.hostname or "127.0.0.1", u.port or 4222
        raw = socket.create_connection((host, port), timeout=self.connect_timeout_s)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.buf = raw, bytearray()
        line = self._read_line(time.monotonic() + self.connect_timeout_s)
        if not line.startswith(b"INFO "):
            raise NatsError(f"expected INFO, got {line[:60]!r}")
        self.server_info = json.loads(line[5:])
        want_tls = u.scheme in ("tls", "ssl") or self.tls is not None
        if self.server_info.get("tls_required") or want_tls:
            if self.tls is None:
                raise NatsError("the server requires TLS and no TLS options were given")
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.tls.ca_file or None)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.check_hostname = self.tls.verify_hostname
            if self.tls.cert_file:
                ctx.load_cert_chain(self.tls.cert_file, self.tls.key_file or None)
            self.sock = ctx.wrap_socket(raw, server_hostname=host)
        opts = {"verbose": False, "pedantic": False, "tls_required": bool(self.tls), "name": self.name,
                "lang": "python3-eport", "version": "0.1.0", "protocol": 1, "headers": True,
                "no_responders": True}
        self._send(b"CONNECT " + json.dumps(opts).encode() + b"\r\nPING\r\n")
        deadline = time.monotonic() + self.connect_timeout_s
        while True:
            line = self._read_line(deadline)
            if line == b"PONG":
                break
            if line.startswith(b"-ERR"):
                raise NatsError(f"server refused the connection: {line.decode(errors='replace')}")
            if line.startswith(b"INFO ") or line == b"+OK":
                continue
            if line == b"PING":
                self._send(b"PONG\r\n")
        self.url = url
        for sid, subject in self.subs.items():   # a reconnect keeps the subscriptions
            self._send(f"SUB {subject} {sid}\r\n".encode())

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None

    @property
    def connected(self) -> bool:
        return self.sock is not None

    # -- sending ---------------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        if self.sock is None:
            raise NatsError("not connected")
        try:
            self.sock.settimeout(self.connect_timeout_s)
            self.sock.sendall(data)
        except (OSError, ssl.SSLError) as e:
            self.close()
            raise NatsError(f"send to {self.url}: {e}") from e

    def subscribe(self, subject: str) -> int:
        self.sids += 1
        self.subs[self.sids] = subject
        self._send(f"SUB {subject} {self.sids}\r\n".encode())
        return self.sids

    def publish(self, subject: str, data: bytes = b"", reply: str = "") -> None:
        r = f" {reply}" if reply else ""
        self._send(f"PUB {subject}{r} {len(data)}\r\n".encode() + data + b"\r\n")

    def publish_many(self, items) -> None:
        """[(subject, data)] in one write (acknowledging a batch)."""
        out = bytearray()
        for subject, data in items:
            out += f"PUB {subject} {len(data)}\r\n".encode() + data + b"\r\n"
        if out:
            self._send(bytes(out))

    def flush(self, timeout_s: float = 5.0) -> None:
        """PING and wait for its PONG: everything sent before has reached the server."""
        self._send(b"PING\r\n")
        self._pending_pong = True
        deadline = time.monotonic() + timeout_s
        while self._pending_pong:
            m = self._next_raw(deadline)
            if m is None and time.monotonic() >= deadline:
                raise NatsError(f"no PONG from {self.url} within {timeout_s} s")
            if m is not None:
                self.stash.append(m)

    # -- receiving -------------------------------------------------------------------------
    def _fill(self, deadline: float) -> bool:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        try:
            self.sock.settimeout(left)
            chunk = self.sock.recv(1 << 16)
        except (socket.timeout, ssl.SSLWantReadError):
            return False
        except (OSError, ssl.SSLError) as e:
            self.close()
            raise NatsError(f"read from {self.url}: {e}") from e
        if not chunk:
            self.close()
            raise NatsError(f"connection to {self.url} closed by the server")
        self.buf += chunk
        return True

    def _read_line(self, deadline: float):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            if len(self.buf) > MAX_CONTROL_LINE:
                raise NatsError("control line too long")
            if self.sock is None:
                raise NatsError("not connected")
            if not self._fill(deadline):
                if time.monotonic() >= deadline:
                    raise NatsError("timeout waiting for the server")

    def _read_exact(self, n: int, deadline: float) -> bytes:
        while len(self.buf) < n:
            if not self._fill(deadline):
                if time.monotonic() >= deadline:
                    raise NatsError("timeout inside a message")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def _skip(self, n: int, deadline: float) -> None:
        while n > 0:
            if not self.buf and not self._fill(deadline):
                if time.monotonic() >= deadline:
                    raise NatsError("timeout inside a message")
                continue
            k = min(n, len(self.buf))
            del self.buf[:k]
            n -= k

    def next_msg(self, deadline: float) -> Msg | None:
        """The next MSG/HMSG before deadline (monotonic), or None. Answers PINGs."""
        if self.stash:
            return self.stash.pop(0)
        return self._next_raw(deadline)

    def _next_raw(self, deadline: float) -> Msg | None:
        while True:
            if self.sock is None:
                raise NatsError("not connected")
            if b"\r\n" not in self.buf and not self._fill(deadline):
                return None
            if b"\r\n" not in self.buf:
                if len(self.buf) > MAX_CONTROL_LINE:
                    raise NatsError("control line too long")
                continue
            line = self._read_line(deadline)
            if line.startswith(b"MSG ") or line.startswith(b"HMSG "):
                # a message started must be read to its end, even past the caller's deadline
                return self._message(line, max(deadline, time.monotonic() + self.connect_timeout_s))
            if line == b"PING":
                self._send(b"PONG\r\n")
            elif line == b"PONG":
                self._pending_pong = False
            elif line.startswith(b"-ERR"):
                text = line.decode(errors="replace")
                if "Permissions Violation" in text:
                    raise NatsError(f"{self.url}: {text}")
                self.close()
                raise NatsError(f"{self.url}: {text}")
            # +OK and INFO (cluster updates) need nothing

    def _message(self, line: bytes, deadline: float) -> Msg:
        parts = line.decode("utf-8", "replace").split()
        try:
            if parts[0] == "MSG":
                subject, sid = parts[1], int(parts[2])
                reply = parts[3] if len(parts) == 5 else ""
                size, hsize = int(parts[-1]), 0
            else:
                subject, sid = parts[1], int(parts[2])
                reply = parts[3] if len(parts) == 6 else ""
                hsize, size = int(parts[-2]), int(parts[-1])
        except (IndexError, ValueError) as e:
            raise NatsError(f"malformed {parts[0] if parts else ''} line: {line[:100]!r}") from e
        if size > self.max_message_bytes:
            self._skip(size + 2, deadline)
            return Msg(subject, sid, reply, b"", oversize=size)
        body = self._read_exact(size + 2, deadline)[:size]
        m = Msg(subject, sid, reply, body[hsize:])
        if hsize:
            m.status, m.description, m.headers = parse_headers(body[:hsize])
        return m

    def request(self, subject: str, data: bytes, inbox_sid_subject: tuple[int, str], timeout_s: float) -> Msg:
        """Publishes with a fresh reply subject under an inbox wildcard subscription the caller
        holds ((sid, 'prefix.*')) and returns the first reply; other messages seen meanwhile
        are stashed for next_msg(). Raises NatsError on timeout."""
        sid, wildcard = inbox_sid_subject
        reply = wildcard[:-1] + new_id()
        self.publish(subject, data, reply)
        deadline = time.monotonic() + timeout_s
        others = []
        try:
            while True:
                m = self._next_raw(deadline)
                if m is None:
                    raise NatsError(f"no reply to {subject} within {timeout_s} s from {self.url}")
                if m.subject == reply:
                    return m
                others.append(m)
        finally:
            self.stash.extend(others)
