"""Test harness of the broker-config tests: generate a site from an inventory
into a temporary directory, start a real mosquitto from the generated config
(a test copy on a free loopback port, `user root`), and paho-mqtt clients
that record what they receive. Run by /usr/bin/python3 (Debian's paho)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
BROKER_CONFIG = HERE.parent
sys.path.insert(0, str(BROKER_CONFIG / "lib"))

from eport_broker import broker as eb  # noqa: E402

SKIP = 77  # ctest SKIP_RETURN_CODE

try:
    import paho.mqtt.client as mqtt
except ImportError:  # pragma: no cover
    print("SKIP: python3-paho-mqtt is not installed for", sys.executable)
    sys.exit(SKIP)

if not shutil.which("openssl") or not any(os.access(p, os.X_OK) for p in eb.MOSQUITTO_CANDIDATES):
    print("SKIP: mosquitto or openssl not installed")
    sys.exit(SKIP)

# Negative outcomes ("not delivered") are waited for this long; positive
# ones return as soon as they happen, and TIMEOUT_S is only a hang guard: on
# a loaded 2-core CI machine a SUBACK took over 5 s, so it is generous.
QUIET_S = 1.0
TIMEOUT_S = 30.0

INVENTORY = """\
site = "{site}"
gateways = ["gw-a", "gw-b", "gw-c"]
readers = ["reader-1", "reader-2", "reader-3"]
commanders = ["cmd-1"]
monitors = ["monitor-1"]
[broker]
host = "mqtt.test.invalid"
port = 8883
[limits]
message_size_limit = 4096
[bridge]
local_readers = ["local-1"]
"""


def install_crl(out: Path) -> None:
    """What installing the site's one CRL (pki/crl.pem) as the broker's
    crlfile does, for a config generated with --conf-dir OUT/broker: a link,
    so that every `eport-pki revoke` or `crl` is at once what the broker reads."""
    link = out / "broker" / "crl.pem"
    if not link.is_symlink():
        link.symlink_to(Path("..") / "pki" / "crl.pem")


class Site:
    """A generated site: paths of the broker config and of every identity."""

    def __init__(self, workdir: Path, site: str = "s1", inventory: str | None = None):
        self.workdir = workdir
        self.site = site
        self.inv = workdir / "site.toml"
        self.inv.write_text(inventory or INVENTORY.format(site=site))
        self.out = workdir / "out"
        run([str(BROKER_CONFIG / "eport-broker"), "gen", str(self.inv), str(self.out),
             "--conf-dir", str(self.out / "broker")])
        self.conf = self.out / "broker" / "mosquitto.conf"
        self.ca = self.out / "broker" / "ca.crt"
        install_crl(self.out)


    def cert(self, cn: str) -> tuple[Path, Path]:
        for sub in ("gateways", "clients"):
            d = self.out / sub / cn
            if d.is_dir():
                return d / f"{cn}.crt", d / f"{cn}.key"
        raise KeyError(cn)

    def topic(self, gw: str, leaf: str) -> str:
        return f"eport/v1/{self.site}/{gw}/{leaf}"

    def bridge_overrides(self, gw: str, cloud_port: int) -> dict[str, str]:
        """What a test copy of gw's bridge/mosquitto.conf must move: the
        cloud broker's address, the TLS files, the passwd and acl files."""
        g = self.out / "gateways" / gw
        return {"address": f"127.0.0.1:{cloud_port}", "bridge_cafile": str(g / "ca.crt"),
                "bridge_certfile": str(g / f"{gw}.crt"), "bridge_keyfile": str(g / f"{gw}.key"),
                "password_file": str(g / "bridge" / "passwd"), "acl_file": str(g / "bridge" / "acl")}

    def bridge_login(self, gw: str, user: str) -> tuple[str, str]:
        """(username, password) of a local user of gw's bridge broker: the
        agent (user = gw) or a bridge.local_readers name."""
        b = self.out / "gateways" / gw / "bridge"
        f = b / "agent.password" if user == gw else b / "local-readers" / f"{user}.password"
        return user, f.read_text().splitlines()[0]


def run(cmd: list[str], env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc


class Client:
    """A paho client that records connects, disconnects, messages, subacks
    and pubacks. connect() waits for the outcome; refused is a result."""

    def __init__(self, port: int, ca: Path | None, cert: Path | None = None, key: Path | None = None,
                 client_id: str = "", clean_session: bool = True, protocol=None, will: tuple | None = None,
                 login: tuple[str, str | None] | None = None):
        self.port = port
        self.c = mqtt.Client(client_id=client_id, clean_session=clean_session,
                             protocol=protocol or mqtt.MQTTv311)
        if login:
            self.c.username_pw_set(*login)
        if ca:
            self.c.tls_set(ca_certs=str(ca), certfile=str(cert) if cert else None, keyfile=str(key) if key else None)
        if will:
            self.c.will_set(*will)
        self.lock = threading.Lock()
        self.messages: list[tuple[str, bytes, bool]] = []
        self.connack: int | None = None
        self.disconnected = threading.Event()
        self.connected = threading.Event()
        self.subacks: dict[int, tuple] = {}
        self.pubacked: set[int] = set()
        self.error: Exception | None = None
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = lambda c, u, rc: self.disconnected.set()
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_publish = lambda c, u, mid: self._add(self.pubacked, mid)
        # All socket I/O on the loop thread (_loop). Without a loop_start()
        # thread, paho 1.6 writes a publish or subscribe from the caller's
        # thread while ours sits in SSL_read on the same SSL object, which
        # OpenSSL does not allow: a SUBACK then never came (CI,
        # test_acl_matrix, 2026-12-02). With a write-registration callback
        # paho only queues the packet and wakes the loop through its socket
        # pair, which loop() creates; the loop thread writes it.
        self.c.on_socket_register_write = lambda c, u, sock: None

    def _add(self, s, v):
        with self.lock:
            s.add(v)

    def _on_connect(self, c, u, flags, rc):
        self.connack = rc
        if rc == 0:
            self.connected.set()
        else:
            self.disconnected.set()

    def _on_message(self, c, u, msg):
        with self.lock:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))

    def _on_subscribe(self, c, u, mid, granted):
        with self.lock:
            self.subacks[mid] = tuple(granted)

    def connect(self, timeout_s: float = TIMEOUT_S) -> bool:
        """True if CONNACK 0 arrived; False if refused at TLS or MQTT level."""
        try:
            self.c.connect("127.0.0.1", self.port, keepalive=10)
        except (ssl.SSLError, OSError) as exc:  # TLS alert during the handshake
            self.error = exc
            return False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.connected.is_set():
                return True
            if self.disconnected.is_set():
                return False
            time.sleep(0.02)
        return False

    def _loop(self) -> None:
        # loop(), not loop_forever(): only loop() makes the wake-up socket
        # pair (see __init__). It returns an error once the connection has
        # ended (disconnect(), the broker closed it); no reconnect: a test
        # that reconnects makes a new Client. paho 1.6's loop raises when the
        # broker ends the TLS session with an alert (TLS 1.3 reports a
        # refused client certificate only after the handshake): an expected
        # "refused" outcome here, not a crash.
        try:
            while self.c.loop(timeout=1.0) == mqtt.MQTT_ERR_SUCCESS:
                pass
        except (ssl.SSLError, OSError) as exc:
            self.error = exc
        self.disconnected.set()

    def subscribe(self, topic: str, qos: int = 1) -> tuple:
        rc, mid = self.c.subscribe(topic, qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS, f"subscribe {topic}: rc {rc}"
        wait_for(lambda: mid in self.subacks, f"SUBACK for {topic}")
        return self.subacks[mid]

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> None:
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        if qos:
            wait_for(lambda: info.mid in self.pubacked, f"PUBACK for {topic}")

    def received(self, topic: str | None = None) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.messages if topic is None or t == topic]

    def close(self) -> None:
        self.c.disconnect()
        if getattr(self, "thread", None):
            self.thread.join(TIMEOUT_S)


def serial(cert: Path) -> str:
    """The serial number of a certificate, as openssl prints it (hex)."""
    return run(["openssl", "x509", "-in", str(cert), "-noout", "-serial"]).stdout.strip().split("=", 1)[1]


def install_gateway_tls(out: Path, gw: str, tls: Path) -> None:
    """Copies what gen wrote for gateway `gw` (CA, certificate, key) into its
    TLS directory `tls`, the key mode 0600, as operators.md section 5 does."""
    g = out / "gateways" / gw
    for name in ("ca.crt", f"{gw}.crt", f"{gw}.key"):
        shutil.copy(g / name, tls / name)
    os.chmod(tls / f"{gw}.key", 0o600)


EPORT_BIN = Path(os.environ.get("EPORT_BIN_DIR", BROKER_CONFIG.parent / "build" / "agent"))
AGENT = EPORT_BIN / "app" / "eport-agent"
SIM = EPORT_BIN / "tools" / "eport-sim"


class GeneratedAgent:
    """The real eport-agent of one gateway, on the agent.toml that gen wrote
    for it (out/gateways/<gw>/agent.toml) with only what a test must move:
    the broker address (127.0.0.1:port), the TLS files (read from `tls`, the
    gateway's /etc/eport-edge/tls; install_tls() copies the generated ones
    there, as operators.md section 5 does) and the socket and store paths
    (under `root`)."""

    def __init__(self, out: Path, root: Path, gw: str, port: int, tls: Path | None = None):
        self.gw, self.out, self.root = gw, out, root
        self.tls = tls or root / "etc-eport-edge-tls"
        self.tls.mkdir(parents=True, exist_ok=True)
        self.install_tls()
        text = (out / "gateways" / gw / "agent.toml").read_text()
        for key, value in (("uri", f"ssl://127.0.0.1:{port}"), ("ca_file", self.tls / "ca.crt"),
                           ("cert_file", self.tls / f"{gw}.crt"), ("key_file", self.tls / f"{gw}.key"),
                           ("unix_socket", root / "bridge.sock"), ("path", root / "outbox.db")):
            text, n = re.subn(rf"^{key} = .*$", f'{key} = "{value}"', text, count=1, flags=re.M)
            assert n == 1, key
        self.conf = root / "agent.toml"
        self.conf.write_text(text)
        self.log = root / "agent.log"
        self.proc = None

    def install_tls(self) -> None:
        install_gateway_tls(self.out, self.gw, self.tls)

    def check(self) -> subprocess.CompletedProcess:
        return subprocess.run([str(AGENT), "--check-config", str(self.conf)], capture_output=True, text=True)

    def start(self) -> None:
        self.proc = subprocess.Popen([str(AGENT), "--config", str(self.conf)], stdout=open(self.log, "a"),
                                     stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def send(self, name: str, count: int, seed: int = 1, rate: int = 100) -> list[dict]:
        """One simulated unit sends `count` readings; those the agent acknowledged."""
        acked = self.root / f"{name}.jsonl"
        subprocess.run([str(SIM), "--connect", f"unix:{self.root / 'bridge.sock'}", "--units", "1", "--rate",
                        str(rate), "--count", str(count), "--seed", str(seed), "--acked-log", str(acked),
                        "--drain-timeout", "20"], capture_output=True, text=True, timeout=60)
        return [json.loads(l) for l in acked.read_text().splitlines() if l.strip()] if acked.exists() else []


def wait_for(pred, what: str, timeout_s: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.02)


class Checks:
    """Named checks; the test fails if any failed, and prints a summary line
    ('N passed, M failed') that ctest's log and a human can read."""

    def __init__(self, name: str):
        self.name, self.passed, self.failed = name, 0, 0

    def check(self, cond: bool, what: str, detail: str = "") -> None:
        if cond:
            self.passed += 1
            print(f"  PASS {what}")
        else:
            self.failed += 1
            print(f"  FAIL {what}" + (f": {detail}" if detail else ""))

    def done(self) -> int:
        print(f"{self.name}: {self.passed} passed, {self.failed} failed")
        return 1 if self.failed else 0


def main(test) -> None:
    """Run test(workdir, checks) in a fresh temp dir; exit 0/1."""
    name = Path(sys.argv[0]).stem
    checks = Checks(name)
    workdir = Path(tempfile.mkdtemp(prefix=f"eport-{name}-"))
    ok = False
    try:
        test(workdir, checks)
        ok = True
    except Exception:
        traceback.print_exc()
        checks.failed += 1
    finally:
        if ok and checks.failed == 0 and not os.environ.get("EPORT_KEEP_TEST_DIR"):
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"(test files kept in {workdir})")
    sys.exit(checks.done())
