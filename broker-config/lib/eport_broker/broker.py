"""Broker: run a real mosquitto from a config on a free loopback port, for
`eport-broker validate` and the tests. A config is never started as is: a
temporary copy has its listeners moved to free 127.0.0.1 ports, its
persistence and pid file moved into a temporary directory and its log sent
to a file, so validating a production config touches nothing of production.
Also: a minimal MQTT 3.1.1 CONNECT probe over TLS with the standard library."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

MOSQUITTO_CANDIDATES = ("/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto")


class BrokerError(Exception):
    pass


def find_mosquitto() -> str:
    exe = shutil.which("mosquitto") or next((p for p in MOSQUITTO_CANDIDATES if os.access(p, os.X_OK)), None)
    if not exe:
        raise BrokerError("mosquitto not found (apt-get install mosquitto)")
    return exe


_HANDED_OUT: set = set()


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago (the kernel's choice),
    never one this process was given before: the kernel may hand the same
    ephemeral port to two binds in a row once the first socket is closed, and
    a server given it twice (nats-server's MQTT and monitor ports) dies with
    "address already in use"."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


# ---------------------------------------------------------------- config model

@dataclass
class Listener:
    port: int
    address: str
    line: int                      # 1-based line number in the config
    options: dict = field(default_factory=dict)  # listener-scoped options seen after it

    @property
    def tls(self) -> bool:
        return "certfile" in self.options or "cafile" in self.options


LISTENER_OPTIONS = {
    "cafile", "capath", "certfile", "keyfile", "crlfile", "require_certificate", "use_identity_as_username",
    "use_subject_as_username", "use_username_as_clientid", "tls_version", "ciphers", "protocol", "psk_hint",
    "max_connections", "mount_point", "socket_domain", "bind_interface", "http_dir",
}


@dataclass
class Config:
    path: Path
    lines: list[str]
    options: dict        # global options: name -> list of values (last wins for mosquitto)
    listeners: list[Listener]
    bridges: list[str]   # connection names


def parse_config(path: str | Path) -> Config:
    """Enough of mosquitto.conf to validate it: global options, listeners with
    their TLS options, bridge names. include_dir is refused (not followed)."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BrokerError(f"cannot read {p}: {exc.strerror}") from None
    options: dict[str, list[str]] = {}
    listeners: list[Listener] = []
    bridges: list[str] = []
    scope = "global"
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, value = line.partition(" ")
        value = value.strip()
        if name == "include_dir":
            raise BrokerError(f"{p}:{n}: include_dir is not followed by validate; pass a self-contained config")
        if name in ("port", "bind_address"):
            raise BrokerError(f"{p}:{n}: '{name}' (the deprecated default listener) is not supported; use 'listener PORT [ADDRESS]'")
        if name == "listener":
            parts = value.split()
            if not parts or not parts[0].isdigit():
                raise BrokerError(f"{p}:{n}: listener needs a port number")
            listeners.append(Listener(int(parts[0]), parts[1] if len(parts) > 1 else "", n))
            scope = "listener"
            continue
        if name == "connection":
            bridges.append(value)
            scope = "bridge"
            continue
        if scope == "listener" and name in LISTENER_OPTIONS:
            listeners[-1].options[name] = value
        elif scope != "bridge" or name not in ("address", "addresses", "topic") and not name.startswith(("bridge_", "remote_", "local_")):
            options.setdefault(name, []).append(value)
    return Config(p, lines, options, listeners, bridges)


def drop_user(cfg: Config) -> str | None:
    """The user mosquitto will run as when started by root, or None if it stays root."""
    if os.geteuid() != 0:
        return None
    user = (cfg.options.get("user") or ["mosquitto"])[-1]
    if user == "root":
        return None
    try:
        pwd.getpwnam(user)
        return user
    except KeyError:
        return "nobody"  # mosquitto's documented fallback


# ---------------------------------------------------------------- test copy

@dataclass
class TestCopy:
    path: Path
    ports: dict[int, int]           # original listener port -> port of the copy
    workdir: Path


def write_test_copy(cfg: Config, workdir: Path, *, stay_root: bool, overrides: dict[str, str] | None = None,
                    ports: dict[int, int] | None = None) -> TestCopy:
    """Copy cfg into workdir/mosquitto.conf with listeners on free loopback
    ports (or `ports`), persistence/pid/log inside workdir, and `overrides`
    (option -> value) replacing existing lines in place or added at the top."""
    overrides = dict(overrides or {})
    ports = dict(ports or {})
    persist = workdir / "persistence"
    persist.mkdir(parents=True, exist_ok=True)
    out: list[str] = []
    user_line_seen = False
    for raw in cfg.lines:
        line = raw.strip()
        name, _, value = line.partition(" ")
        if not line or line.startswith("#"):
            out.append(raw)
            continue
        if name == "listener":
            orig = int(value.split()[0])
            new = ports.setdefault(orig, free_port())
            out.append(f"listener {new} 127.0.0.1")
        elif name in ("pid_file", "log_dest"):
            out.append(f"# (test copy) {line}")
        elif name == "persistence_location":
            out.append(f"persistence_location {persist}/")
        elif name == "user":
            user_line_seen = True
            out.append("user root" if stay_root else raw)
        elif name in overrides:
            out.append(f"{name} {overrides.pop(name)}")
        else:
            out.append(raw)
    head = ["# Test copy written by eport_broker.broker.write_test_copy", "log_dest stderr"]
    if stay_root and not user_line_seen:
        head.append("user root")
    head += [f"{k} {v}" for k, v in overrides.items()]
    # per_listener_settings must stay the first option.
    first = next((i for i, l in enumerate(out) if l.strip().startswith("per_listener_settings")), None)
    if first is not None:
        out[first + 1:first + 1] = head
    else:
        out[0:0] = head
    path = workdir / "mosquitto.conf"
    path.write_text("\n".join(out) + "\n")
    path.chmod(0o644)
    user = None if stay_root else drop_user(cfg)
    if user:
        # Mosquitto writes persistence after dropping to `user`.
        shutil.chown(persist, user)
        os.chmod(workdir, 0o755)
    return TestCopy(path, ports, workdir)


# ---------------------------------------------------------------- process

class Mosquitto:
    """A mosquitto process started from a (test copy) config; stop() always."""

    def __init__(self, conf: Path, ports: list[int], log: Path):
        self.conf, self.ports, self.log_path = conf, ports, log
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 5.0) -> "Mosquitto":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([find_mosquitto(), "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout_s
        pending = list(self.ports)
        while pending:
            if self.proc.poll() is not None:
                raise BrokerError(f"mosquitto exited with status {self.proc.returncode} at start:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", pending[0]), timeout=0.2):
                    pending.pop(0)
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise BrokerError(f"mosquitto did not listen on 127.0.0.1:{pending[0]} within {timeout_s}s:\n{self.log()}")
                time.sleep(0.05)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.running():
            self.proc.send_signal(sig)

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, *exc):
        self.stop()


def start_copy(config: str | Path, workdir: Path | None = None, *, stay_root: bool = True,
               overrides: dict[str, str] | None = None, ports: dict[int, int] | None = None
               ) -> tuple[Mosquitto, TestCopy]:
    cfg = parse_config(config)
    if not cfg.listeners:
        raise BrokerError(f"{config}: no listener line")
    workdir = workdir or Path(tempfile.mkdtemp(prefix="eport-broker-"))
    copy = write_test_copy(cfg, workdir, stay_root=stay_root, overrides=overrides, ports=ports)
    m = Mosquitto(copy.path, list(copy.ports.values()), workdir / "mosquitto.log")
    return m.start(), copy


# ---------------------------------------------------------------- probes

def tls_context(cafile: str | Path, certfile: str | Path | None = None, keyfile: str | Path | None = None
                ) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(str(cafile))
    if certfile:
        ctx.load_cert_chain(str(certfile), str(keyfile))
    return ctx


def _connect_packet(client_id: str, keepalive_s: int = 10) -> bytes:
    cid = client_id.encode()
    var = b"\x00\x04MQTT\x04\x02" + keepalive_s.to_bytes(2, "big")
    payload = len(cid).to_bytes(2, "big") + cid
    body = var + payload
    assert len(body) < 128
    return bytes([0x10, len(body)]) + body


CONNACK_TEXT = {0: "accepted", 1: "unacceptable protocol version", 2: "identifier rejected",
                3: "server unavailable", 4: "bad user name or password", 5: "not authorized"}


def mqtt_probe(port: int, ctx: ssl.SSLContext | None, server_name: str = "127.0.0.1",
               client_id: str = "eport-validate", timeout_s: float = 3.0) -> tuple[bool, str]:
    """Open TCP (and TLS with server_name checked against the broker
    certificate), send CONNECT, read CONNACK. Returns (accepted, detail)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as raw:
            sock = ctx.wrap_socket(raw, server_hostname=server_name) if ctx else raw
            with sock:
                sock.sendall(_connect_packet(client_id))
                data = b""
                while len(data) < 4:
                    chunk = sock.recv(4 - len(data))
                    if not chunk:
                        return False, "connection closed before CONNACK"
                    data += chunk
                if data[0] != 0x20:
                    return False, f"unexpected reply 0x{data[0]:02x} instead of CONNACK"
                rc = data[3]
                return rc == 0, f"CONNACK {rc} ({CONNACK_TEXT.get(rc, 'unknown')})"
    except ssl.SSLCertVerificationError as exc:
        return False, f"broker certificate not accepted: {exc.verify_message}"
    except ssl.SSLError as exc:
        return False, f"TLS refused: {exc.reason or exc}"
    except OSError as exc:
        return False, f"connection failed: {exc.strerror or exc}"
