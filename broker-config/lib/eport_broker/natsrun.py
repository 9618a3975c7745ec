"""Run a generated NATS cluster (OUTDIR/cluster/<node>/) on this machine, for
the tests: each node from a test copy of its nats-server.conf with every
listener moved to a free 127.0.0.1 port, the routes pointed at the other
copies, the certificate paths at the node's own output directory and the
JetStream store into a temporary directory. Nothing else of the generated
file changes, so the tests run the permissions, TLS and MQTT settings that
an operator installs. Also: the pinned-version check and the monitoring
endpoint (/healthz, /jsz, /connz)."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from .broker import free_port
from . import cluster
from .cluster import PINNED_VERSION
from .inventory import Inventory

NATS_CANDIDATES = ("/usr/sbin/nats-server", "/usr/bin/nats-server")


class NatsError(Exception):
    pass


def find_nats_server() -> str | None:
    return shutil.which("nats-server") or next((p for p in NATS_CANDIDATES if Path(p).exists()), None)


def version(exe: str) -> str:
    """'2.9.10' from `nats-server --version` ("nats-server: v2.9.10")."""
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout
    m = re.search(r"v(\d+\.\d+\.\d+\S*)", out)
    if not m:
        raise NatsError(f"cannot read a version from `{exe} --version`: {out!r}")
    return m.group(1)


def version_problem(exe: str) -> str:
    """'' if exe is the pinned version, else a message that says what to do."""
    have = version(exe)
    if have == PINNED_VERSION:
        return ""
    return (f"{exe} is nats-server {have}, but broker-config's cluster is written and tested for "
            f"{PINNED_VERSION} only (cluster.PINNED_VERSION). An upgrade must re-run the guard tests "
            f"(ctest -L nats) against the new version and then change PINNED_VERSION; see docs/cluster.md, "
            f"'Upgrading nats-server'")


class Node:
    """One node of a test copy: ports, its process, its monitoring endpoint."""

    def __init__(self, name: str, src: Path, work: Path):
        self.name, self.src, self.work = name, src, work
        self.mqtt_port, self.client_port, self.route_port, self.monitor_port = (free_port() for _ in range(4))
        self.conf = work / f"{name}.conf"
        self.log_path = work / f"{name}.log"
        self.store = work / f"{name}-store"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def mqtt_uri(self) -> str:
        return f"ssl://127.0.0.1:{self.mqtt_port}"

    def start(self) -> "Node":
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"----- start {self.starts} -----\n".encode())
        log.flush()
        self.proc = subprocess.Popen(["nice", find_nats_server(), "-c", str(self.conf)], stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.running():
            self.proc.send_signal(signal.SIGINT)  # nats-server's clean shutdown (Debian's ExecStop)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def monitor(self, path: str, timeout_s: float = 3.0):
        """JSON of http://127.0.0.1:<monitor>/<path>; None when it does not answer.
        /healthz answers 503 with a JSON body while the node is not ready."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor_port}/{path}", timeout=timeout_s) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as exc:
            try:
                return json.loads(exc.read())
            except ValueError:
                return None
        except (OSError, ValueError):
            return None

    def healthy(self) -> bool:
        h = self.monitor("healthz")
        return bool(h) and h.get("status") == "ok"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


class Cluster:
    """Test copies of every node under OUTDIR/cluster/, in a work directory."""

    def __init__(self, inv: Inventory, outdir: Path, work: Path, conf_dir: str):
        """inv: the inventory OUTDIR was generated from; conf_dir: the
        cluster_conf_dir the configs were generated with."""
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.nodes = [Node(n.name, outdir / "cluster" / n.name, work) for n in cluster.nodes(inv)]
        texts = {n.name: (n.src / "nats-server.conf").read_text() for n in self.nodes}
        route_of = {spec.host: node for spec, node in zip(cluster.nodes(inv), self.nodes)}
        for n in self.nodes:
            t = texts[n.name]
            t = t.replace(f'"{conf_dir.rstrip("/")}/', f'"{n.src}/')
            t = re.sub(r'^listen: "[^"]*"', f'listen: "127.0.0.1:{n.client_port}"', t, count=1, flags=re.M)
            t = re.sub(r'^http: "[^"]*"', f'http: "127.0.0.1:{n.monitor_port}"', t, count=1, flags=re.M)
            t = re.sub(r'(^cluster \{.*?^  listen: )"[^"]*"', rf'\g<1>"127.0.0.1:{n.route_port}"', t, count=1,
                       flags=re.M | re.S)
            t = re.sub(r'(^mqtt \{.*?^  listen: )"[^"]*"', rf'\g<1>"127.0.0.1:{n.mqtt_port}"', t, count=1,
                       flags=re.M | re.S)
            t = re.sub(r'"tls://([^:"]+):\d+"', lambda m: f'"tls://127.0.0.1:{route_of[m.group(1)].route_port}"', t)
            t = re.sub(r'^(  store_dir: )"[^"]*"', rf'\g<1>"{n.store}"', t, count=1, flags=re.M)
            t = "# Test copy written by eport_broker.natsrun\n" + t
            n.conf.write_text(t)

    def __getitem__(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def start(self) -> "Cluster":
        for n in self.nodes:
            n.start()
        return self

    def wait_ready(self, timeout_s: float, what: str = "every node healthy") -> float:
        """Hang guard, not an assertion on speed: every running node answers
        /healthz ok and the JetStream meta group has a leader. Returns the
        seconds it took; raises NatsError with the logs after timeout_s."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            exited = [n.name for n in self.nodes if n.proc is not None and n.proc.returncode not in (None, -9)
                      and not n.running()]
            if exited:
                raise NatsError(f"{what}: {', '.join(exited)} exited\n" + self.logs())
            up = [n for n in self.nodes if n.running()]
            if up and all(n.healthy() for n in up) and self.meta_leader():
                return time.monotonic() - t0
            time.sleep(0.25)
        raise NatsError(f"{what}: not within {timeout_s} s\n" + self.logs())

    def meta_leader(self) -> str:
        for n in self.nodes:
            if n.running():
                j = n.monitor("jsz") or {}
                leader = (j.get("meta_cluster") or {}).get("leader")
                if leader:
                    return leader
        return ""

    def node_of_port(self, port: int) -> Node:
        return next(n for n in self.nodes if n.mqtt_port == port)

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()

    def logs(self, tail: int = 4000) -> str:
        return "\n".join(f"----- {n.name} (end) -----\n{n.log()[-tail:]}" for n in self.nodes)

