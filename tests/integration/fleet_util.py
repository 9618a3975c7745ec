"""Helpers for the fleet, serial and resend integration tests, next to the
shared harness.py: an agent whose [bridge] section also has a TCP listener
and serial ports, eport-sim with any arguments, pty lists, store dumps and the
numbers in log and summary lines. Standard library only.
"""
import hashlib
import json
import os
import re
import resource
import signal
import subprocess

import harness as h


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


class FleetAgent:
    """eport-agent with a UNIX socket, optionally TCP (with keys for the
    units tcu-0000 .. tcu-1999, file self.unit_keys) and serial ports.
    Same interface as harness.Agent (start, kill9, terminate, read_log)."""

    def __init__(self, work, broker_uri, tcp=False, serial_ports=(), serial_baud=None, gateway="gw-fleet-01",
                 site="cnsha", extra="", store_extra="", name="agent", log_level=None, unit_keys=None):
        self.work = work
        self.name = name
        self.socket = work.file(f"{name}-bridge.sock")
        self.db = work.file(f"{name}-outbox.db")
        self.config = work.file(f"{name}.toml")
        self.tcp_port = h.free_port() if tcp else None
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
        self.starts += 1
        self.log = open(self.work.file(f"{self.name}-{self.starts}.log"), "w")
        self.proc = h.spawn([h.AGENT, "--config", self.config], stdout=self.log, stderr=subprocess.STDOUT,
                            preexec_fn=_more_files)
        h.wait_until(lambda: os.path.exists(self.socket) or self.proc.poll() is not None, 10, "agent socket")
        if self.proc.poll() is not None:
            raise RuntimeError(f"agent exited with {self.proc.returncode}: {self.read_log()}")
        if self.tcp_port:
            h.wait_for_port(self.tcp_port)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        h.log(f"agent SIGKILLed (pid {self.proc.pid})")

    def terminate(self, timeout=30):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def read_log(self):
        out = []
        for i in range(1, self.starts + 1):
            with open(self.work.file(f"{self.name}-{i}.log")) as f:
                out.append(f.read())
        return "\n".join(out)


def sim(args, background=False, timeout=300):
    """eport-sim with the given arguments (list of strings)."""
    cmd = [h.SIM] + [str(a) for a in args]
    if background:
        return h.spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_more_files)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, preexec_fn=_more_files)


def read_pty_list(path, expected, timeout=10):
    """Waits for eport-sim's --pty-list file and returns its paths."""
    h.wait_until(lambda: os.path.exists(path), timeout, f"pty list {path}")
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
    p = subprocess.run([h.AGENT, "store", "dump", "--config", agent.config], capture_output=True, text=True,
                       timeout=120, check=True)
    return [json.loads(line)["reading"] for line in p.stdout.splitlines() if line.strip()]
