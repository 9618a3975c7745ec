"""Process harness for eport-edge integration tests: starts a real mosquitto on
a free loopback port, the real eport-agent, eport-sim and eport-tail, and
gives tests the readings each side saw; and, for the fleet, serial and
resend tests, an agent with a TCP listener (and unit keys) and serial ports,
eport-sim with any arguments, pty lists, store dumps and the numbers in log
and summary lines. The one harness of tests/integration. Standard library
only, but for the JSON contract checks (contracts.py, python3-jsonschema):
every Broker started here has a watcher subscribed to every gateway's status,
health and reply topics, and main() fails a test whose agent sent one message
there that breaks its schema (schema/json/); check_json() does the same for a
message a test received itself.

Binaries come from the build tree given in EPORT_BIN_DIR (set by ctest).
"""
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import contracts

# The source tree (set by ctest) and the sample zones file the custody tests use.
SOURCE_DIR = os.environ.get("EPORT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
SAMPLE_ZONES = os.path.join(SOURCE_DIR, "docs", "zones", "shanghai-terminals.geojson")
BIN = os.environ.get("EPORT_BIN_DIR", os.path.join(os.path.dirname(__file__), "../../build/agent"))
AGENT = os.path.join(BIN, "app", "eport-agent")
SIM = os.path.join(BIN, "tools", "eport-sim")
TAIL = os.path.join(BIN, "tools", "eport-tail")
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"

# One free-port picker for every test, the broker tooling's (it never hands
# out the same port twice in a process).
sys.path.insert(0, os.path.join(SOURCE_DIR, "broker-config", "lib"))
from eport_broker.broker import free_port  # noqa: E402,F401


# Every process a test starts, so that main() can stop them whatever happens.
_PROCESSES = []


def spawn(args, **kwargs):
    p = subprocess.Popen(args, **kwargs)
    _PROCESSES.append(p)
    return p


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def wait_for_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


class Workdir:
    """A temp directory readable by the mosquitto user (it drops privileges)."""

    def __init__(self, name):
        self.path = tempfile.mkdtemp(prefix=f"eport-{name}-")
        os.chmod(self.path, 0o777)

    def file(self, name):
        return os.path.join(self.path, name)

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


class Broker:
    def __init__(self, work, persistent=False):
        self.work = work
        self.port = free_port()
        self.persistent = persistent
        self.proc = None
        self.conf = work.file("mosquitto.conf")
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true", "user root",
                 "max_queued_messages 0"]
        if persistent:
            lines += ["persistence true", f"persistence_location {work.path}/", "autosave_interval 1"]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    @property
    def uri(self):
        return f"tcp://127.0.0.1:{self.port}"

    def start(self):
        self.log = open(self.work.file("mosquitto.log"), "a")
        self.proc = spawn([MOSQUITTO, "-c", self.conf], stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(self.port)
        log(f"mosquitto up on {self.port}")
        self.watch = watch_contracts(self)

    def stop(self):
        if getattr(self, "watch", None) and self.watch.poll() is None:
            self.watch.terminate()
            self.watch.wait(timeout=10)
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


# ---- JSON contracts: status, health and reply messages against schema/json ----
_WATCHED = []  # the watchers' output files, checked by main()
CONTRACT_TOPICS = ("eport/v1/+/+/status", "eport/v1/+/+/health", "eport/v1/+/+/reply")


def watch_contracts(broker):
    """A mosquitto_sub on the broker's status, health and reply topics of every gateway, its
    "topic payload" lines in contracts-<port>-<n>.txt, checked at the end of the test (main()).
    A broker whose config the test replaced (TLS, no anonymous clients) is watched on its
    plain_port if the test gave it one, else not watched."""
    with open(broker.conf) as f:
        conf = f.read()
    port = broker.port
    if "cafile" in conf or "allow_anonymous false" in conf or "password_file" in conf:
        port = getattr(broker, "plain_port", None)
        if port is None:
            return None
    path = broker.work.file(f"contracts-{port}-{len(_WATCHED)}.txt")
    args = ["mosquitto_sub", "-p", str(port), "-q", "1", "-v"]
    for t in CONTRACT_TOPICS:
        args += ["-t", t]
    proc = spawn(args, stdout=open(path, "w"), stderr=subprocess.DEVNULL)
    _WATCHED.append(path)
    time.sleep(0.2)  # its subscription, before the test starts an agent
    return proc


def check_json(topic, payload):
    """One status, health or reply message a test received itself, checked against its schema
    (contracts.check: ContractError says what is wrong); returns it parsed."""
    return contracts.check(topic, payload)


def check_contracts():
    """Every message the watchers saw, against its schema. Returns the number checked."""
    checked, bad = 0, []
    for path in _WATCHED:
        if os.path.exists(path):
            with open(path) as f:
                n, b = contracts.check_lines(f)
            checked += n
            bad += b
    if bad:
        raise contracts.ContractError(f"{len(bad)} of {checked} status/health/reply messages break their "
                                      "schema (schema/json/):\n" + "\n".join(bad[:10]))
    return checked


def agent_template():
    """`eport-agent --config-template` parsed: {"section.key": default} for
    every key with a default (the commented-out '#key = value' lines), and
    the set of every key. The one source of the agent's defaults for the
    config writers here."""
    global _TEMPLATE
    if _TEMPLATE is None:
        import tomllib
        text = subprocess.run([AGENT, "--config-template"], capture_output=True, text=True, check=True).stdout
        defaults, keys, section = {}, set(), None
        for line in text.splitlines():
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
            elif " = " in line and not line.startswith("# "):
                leaf, value = line.lstrip("#").split(" = ", 1)
                keys.add(f"{section}.{leaf}")
                if line.startswith("#"):
                    defaults[f"{section}.{leaf}"] = tomllib.loads(f"v = {value}")["v"]
        _TEMPLATE = (defaults, keys)
    return _TEMPLATE


_TEMPLATE = None


def with_test_envelope_format(toml_text):
    """toml_text with publish.envelope_format = $EPORT_TEST_ENVELOPE_FORMAT (when that is set
    and the text does not choose a format itself), into its [publish] table if it has one."""
    fmt = os.environ.get("EPORT_TEST_ENVELOPE_FORMAT")
    if not fmt or "envelope_format" in toml_text:
        return toml_text
    line = f'envelope_format = "{fmt}"'
    return (toml_text.replace("[publish]\n", f"[publish]\n{line}\n", 1) if "[publish]\n" in toml_text
            else f"{toml_text}\n[publish]\n{line}\n")


class Agent:
    def __init__(self, work, broker_uri, gateway="gw-test-01", site="cnsha", extra="", store_extra=""):
        """extra: further TOML sections; store_extra: further keys of [store].
        EPORT_TEST_ENVELOPE_FORMAT=v1 (or v2) in the environment runs the agent with
        that publish.envelope_format (docs/schema.md; the default is v2) unless extra
        sets it."""
        extra = with_test_envelope_format(extra)
        self.work = work
        self.name = "agent"  # its logs: agent-1.log, agent-2.log, ... one per start
        self.socket = work.file("bridge.sock")
        self.db = work.file("outbox.db")
        self.config = work.file("agent.toml")
        self.tcp_port = None
        self.proc = None
        self.starts = 0
        with open(self.config, "w") as f:
            f.write(f"""[gateway]
id = "{gateway}"
site = "{site}"
[bridge]
unix_socket = "{self.socket}"
[store]
path = "{self.db}"
{store_extra}
[mqtt]
uri = "{broker_uri}"
reconnect_min_ms = 200
reconnect_max_ms = 2000
{extra}
""")

    def start(self, **spawn_args):
        self.starts += 1
        self.log = open(self.work.file(f"{self.name}-{self.starts}.log"), "w")
        self.proc = spawn([AGENT, "--config", self.config], stdout=self.log, stderr=subprocess.STDOUT, **spawn_args)
        wait_until(lambda: os.path.exists(self.socket) or self.proc.poll() is not None, 10, "agent socket")
        if self.proc.poll() is not None:
            raise RuntimeError(f"agent exited with {self.proc.returncode}: {self.read_log()}")
        if self.tcp_port:
            wait_for_port(self.tcp_port)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        log(f"agent SIGKILLed (pid {self.proc.pid})")

    def terminate(self, timeout=20):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=timeout)
        return rc

    def read_log(self):
        out = []
        for i in range(1, self.starts + 1):
            with open(self.work.file(f"{self.name}-{i}.log")) as f:
                out.append(f.read())
        return "\n".join(out)


class Tail:
    """eport-tail in the background, decoding every envelope it receives."""

    def __init__(self, work, broker_uri, client_id=None, name="tail", extra_args=(), timeout=10):
        """extra_args: more eport-tail options (TLS files); timeout: hang guard
        for its subscription."""
        self.out = work.file(f"{name}.jsonl")
        self.err = work.file(f"{name}.err")
        args = [TAIL, "--broker", broker_uri, *extra_args]
        if client_id:
            args += ["--client-id", client_id]
        self.proc = spawn(args, stdout=open(self.out, "w"), stderr=open(self.err, "w"))
        wait_until(lambda: "subscribed" in open(self.err).read() or self.proc.poll() is not None, timeout,
                   "eport-tail subscription")

    def readings(self):
        rows = []
        with open(self.out) as f:
            for line in f:
                if not line.endswith("\n"):
                    break  # still being written
                line = line.strip()
                if line and not line.startswith('{"error"'):
                    rows.append(json.loads(line))
        return rows

    def errors(self):
        with open(self.out) as f:
            return [line for line in f if line.startswith('{"error"')]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=10)
        return open(self.err).read()


def run_sim(agent, units, rate, count, acked_log, seed=1, timeout=120, background=False, drain_timeout=60):
    args = [SIM, "--connect", "unix:" + agent.socket, "--units", str(units), "--rate", str(rate), "--count",
            str(count), "--seed", str(seed), "--acked-log", acked_log, "--drain-timeout", str(drain_timeout)]
    if background:
        return spawn(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    return p


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def store_stats(agent):
    """`eport-agent store stats --json` of a stopped agent's store, as a dict
    (docs/store.md, "Inspection")."""
    p = subprocess.run([AGENT, "store", "stats", "--json", "--config", agent.config], capture_output=True, text=True,
                       timeout=60, check=True)
    return json.loads(p.stdout)


def key(r):
    return (r["source"], r["seq"])


# The keys the gateway adds to what a unit sent: its class count (schema 1.5).
GATEWAY_KEYS = ("class", "class_seq")


def as_sent(r):
    """A received reading without the keys the gateway adds (GATEWAY_KEYS)."""
    return {k: v for k, v in r.items() if k not in GATEWAY_KEYS}


def check_class_counts(received):
    """The gateway's class counts (docs/consuming.md, "Completeness per class") are consistent:
    every received reading has one, and per source and class they grow with seq (a count that
    does not is a restart to eport.completeness.class_completeness). Duplicates carry their
    original's (check_all_arrived compares them whole). Holes are not checked here (a test may
    evict, or subscribe late): test_class_completeness.py checks them."""
    kit = os.path.join(SOURCE_DIR, "consumers", "python")
    if kit not in sys.path:
        sys.path.insert(0, kit)
    from eport.completeness import class_completeness
    readings = [r for r in received if r.get("kind") is not None]
    unnumbered = [r for r in readings if not r.get("class_seq") or not r.get("class")]
    assert not unnumbered, f"{len(unnumbered)} readings without a class count, e.g. {unnumbered[0]}"
    for k, c in class_completeness(readings).items():
        assert not c["restarts"], f"{k}: class_seqs do not grow with seq (at seqs {c['restarts'][:10]})"


def check_all_arrived(acked, received):
    """Every acknowledged reading arrived, field by field (the gateway's class count aside,
    which check_class_counts checks). Returns the number of duplicate deliveries (allowed:
    identified by source + seq)."""
    got = {}
    dups = 0
    for r in received:
        k = key(r)
        if k in got:
            dups += 1
            assert got[k] == r, f"duplicate of {k} differs: {got[k]} vs {r}"
        got[k] = r
    missing = [key(r) for r in acked if key(r) not in got]
    assert not missing, f"{len(missing)} acknowledged readings never arrived, e.g. {missing[:5]}"
    for r in acked:
        assert as_sent(got[key(r)]) == r, f"reading {key(r)} changed on the way: sent {r}, received {got[key(r)]}"
    check_class_counts(received)
    return dups


# ---- fleets: TCP and serial units, eport-sim with any arguments ----
def _more_files():
    # A fleet needs a descriptor per unit; take what the hard limit allows.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def unit_key(unit_id, salt=""):
    """A test key for a unit (32 bytes as 64 hex digits), derived from its id."""
    return hashlib.sha256(f"eport-test-key:{salt}:{unit_id}".encode()).hexdigest()


def write_unit_keys(path, unit_ids, salt=""):
    """A bridge.unit_keys / eport-sim --unit-keys file (mode 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# test unit keys\n")
        for u in unit_ids:
            f.write(f"{u} {unit_key(u, salt)}\n")
    return path


# TCP units must authenticate (docs/firmware-bridge.md 13): a FleetAgent with
# TCP has keys for these ids, and its sims pass agent.sim_key_args().
TCP_KEY_PREFIX = "tcu"
TCP_KEY_UNITS = 2000


class FleetAgent(Agent):
    """eport-agent with a UNIX socket, optionally TCP (with keys for the
    units tcu-0000 .. tcu-1999, file self.unit_keys) and serial ports; a
    config of its own, the rest as Agent (kill9, terminate, read_log)."""

    def __init__(self, work, broker_uri, tcp=False, serial_ports=(), serial_baud=None, gateway="gw-fleet-01",
                 site="cnsha", extra="", store_extra="", name="agent", log_level=None, unit_keys=None):
        self.work = work
        self.name = name
        self.socket = work.file(f"{name}-bridge.sock")
        self.db = work.file(f"{name}-outbox.db")
        self.config = work.file(f"{name}.toml")
        self.tcp_port = free_port() if tcp else None
        self.proc = None
        self.starts = 0
        bridge = [f'unix_socket = "{self.socket}"']
        self.unit_keys = None
        if tcp:
            bridge.append(f'tcp_listen = "127.0.0.1:{self.tcp_port}"')
            self.unit_keys = unit_keys or write_unit_keys(
                work.file(f"{name}-unit-keys"), (f"{TCP_KEY_PREFIX}-{i:04d}" for i in range(TCP_KEY_UNITS)))
            bridge.append(f'unit_keys = "{self.unit_keys}"')
        if serial_ports:
            bridge.append(f'serial_ports = "{",".join(serial_ports)}"')
            if serial_baud is not None:  # else the agent's default (bridge.serial_baud)
                bridge.append(f"serial_baud = {serial_baud}")
        bridge_lines = "\n".join(bridge)
        # Keys left out take the agent's own defaults (--config-template).
        log_section = f'[log]\nlevel = "{log_level}"' if log_level is not None else ""
        with open(self.config, "w") as f:
            f.write(f"""[gateway]
id = "{gateway}"
site = "{site}"
[bridge]
{bridge_lines}
max_units = 4000
max_units_per_address = 4000
[store]
path = "{self.db}"
{store_extra}
[mqtt]
uri = "{broker_uri}"
reconnect_min_ms = 200
reconnect_max_ms = 2000
{log_section}
{extra}
""")

    @property
    def tcp_endpoint(self):
        return f"tcp:127.0.0.1:{self.tcp_port}"

    def sim_key_args(self):
        """eport-sim arguments that give its units their keys."""
        return ["--unit-keys", self.unit_keys]

    def start(self):
        super().start(preexec_fn=_more_files)

    def terminate(self, timeout=30):
        return super().terminate(timeout)


def sim(args, background=False, timeout=300):
    """eport-sim with the given arguments (list of strings)."""
    cmd = [SIM] + [str(a) for a in args]
    if background:
        return spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_more_files)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, preexec_fn=_more_files)


def read_pty_list(path, expected, timeout=10):
    """Waits for eport-sim's --pty-list file and returns its paths."""
    wait_until(lambda: os.path.exists(path), timeout, f"pty list {path}")
    with open(path) as f:
        paths = [line.strip() for line in f if line.strip()]
    assert len(paths) == expected, f"{path}: {len(paths)} ptys, expected {expected}"
    return paths


def summary(sim_stdout):
    """The key=value numbers of eport-sim's summary line."""
    line = [l for l in sim_stdout.splitlines() if l.startswith("eport-sim: units=")]
    assert line, f"no summary line in: {sim_stdout}"
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line[-1])}


def bridge_stopped(agent_log):
    """Numbers of the bridge's shutdown line: {"duplicates": N, "readings received": M, ...}."""
    lines = [l for l in agent_log.splitlines() if "bridge stopped:" in l]
    assert lines, "no 'bridge stopped' line in the agent log"
    return {name: int(n) for n, name in re.findall(r"(\d+) ([a-z ]+?)(?:,|$)", lines[-1].split("bridge stopped:")[1])}


def agent_stopped(agent_log):
    """Numbers of the agent's final line: {"readings stored": N, "duplicates": M, ...}."""
    lines = [l for l in agent_log.splitlines() if "agent: stopped:" in l]
    assert lines, "no 'stopped' line in the agent log"
    return {name: int(n) for n, name in re.findall(r"(\d+) ([a-z ]+?)(?:,|$)", lines[-1].split("stopped:")[1])}


def store_dump(agent):
    """Every reading waiting in the agent's outbox (agent stopped)."""
    p = subprocess.run([AGENT, "store", "dump", "--config", agent.config], capture_output=True, text=True,
                       timeout=120, check=True)
    return [json.loads(line)["reading"] for line in p.stdout.splitlines() if line.strip()]


def main(test):
    """Runs test(work) with a fresh work dir; keeps the dir on failure."""
    work = Workdir(test.__name__)
    try:
        test(work)
        time.sleep(0.3)  # the watchers' last lines
        checked = check_contracts()
        log(f"{checked} status/health/reply messages valid against schema/json/")
    except BaseException:
        _stop_all()
        log(f"FAILED; files kept in {work.path}")
        for name in sorted(os.listdir(work.path)):
            if name.endswith((".log", ".err")):
                with open(work.file(name)) as f:
                    tail = f.read()[-3000:]
                print(f"----- {name} (end) -----\n{tail}", flush=True)
        raise
    _stop_all()
    work.cleanup()
    log("PASSED")


def _stop_all():
    for p in _PROCESSES:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def cluster_agent_config(out, gateway, agent, uris, extra=""):
    """Writes agent.config from the generated gateways/<gateway>/cluster/agent.toml
    (broker-config's NATS cluster, docs/cluster.md) with only the node addresses,
    file paths and the agent's retry timing moved into the test, then `extra`."""
    text = (out / "gateways" / gateway / "cluster" / "agent.toml").read_text()
    tls = out / "gateways" / gateway
    repl = [(r'^uri = .*$', "uri = [" + ", ".join(f'"{u}"' for u in uris) + "]"),
            (r'^ca_file = .*$', f'ca_file = "{tls / "ca.crt"}"'),
            (r'^cert_file = .*$', f'cert_file = "{tls / (gateway + ".crt")}"'),
            (r'^key_file = .*$', f'key_file = "{tls / (gateway + ".key")}"'),
            (r'^path = .*$', f'path = "{agent.db}"'),
            (r'^unix_socket = .*$', f'unix_socket = "{agent.socket}"')]
    for pattern, line in repl:
        text, n = re.subn(pattern, line.replace("\\", "\\\\"), text, count=1, flags=re.M)
        assert n == 1, f"no line {pattern} in the generated cluster/agent.toml"
    text = text.replace("[mqtt]\n", "[mqtt]\nreconnect_min_ms = 200\nreconnect_max_ms = 2000\nconnect_timeout_s = 5\n", 1)
    with open(agent.config, "w") as f:
        f.write(with_test_envelope_format(text + "\n" + extra))


def complete_lines(path):
    """How many complete (newline-ended) lines a file being written holds; 0 before it exists."""
    try:
        with open(path) as f:
            return sum(1 for line in f if line.endswith("\n"))
    except FileNotFoundError:
        return 0
