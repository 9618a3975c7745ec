#!/usr/bin/python3
"""The agent configs that `eport-broker gen` writes (gateways/<id>/agent.toml
and gateways/<id>/bridge/agent.toml) pass the real `eport-agent --check-config`,
also with the inventory's agent settings ([agent.*], [gateway.<id>.*]),
and the direct one, started as is (only host and paths moved into the test),
delivers over mutual TLS to the generated cloud broker with the generated ACL.
Needs the agent built: EPORT_BIN_DIR (set by ctest) = <build>/agent; else skip."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness import SKIP, BROKER_CONFIG, INVENTORY, Client, Site, eb, main, run, wait_for
from test_generator import AGENT_SETTINGS

BIN = Path(os.environ.get("EPORT_BIN_DIR", BROKER_CONFIG.parent / "build-brk" / "agent"))
AGENT = BIN / "app" / "eport-agent"
SIM = BIN / "tools" / "eport-sim"
if not (os.access(AGENT, os.X_OK) and os.access(SIM, os.X_OK)):
    print(f"SKIP: {AGENT} or {SIM} is not built (set EPORT_BIN_DIR to <build>/agent)")
    sys.exit(SKIP)

# The keys the first generator guessed: the agent must refuse them, so a
# passing --check-config below means the keys are really the agent's.
GUESSED = """[uplink]
server_uri = "ssl://mqtt.test.invalid:8883"
[uplink.tls]
ca_file = "/etc/eport-edge/tls/ca.crt"
"""


def check_config(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(AGENT), "--check-config", str(path)], capture_output=True, text=True)


def set_key(text: str, key: str, value: str) -> str:
    """Replace `key = ...` (the first one) in generated TOML text."""
    new, n = re.subn(rf"^{key} = .*$", f'{key} = "{value}"', text, count=1, flags=re.M)
    assert n == 1, f"no '{key} =' line in the generated agent.toml"
    return new


def check_all(out: Path, t, label: str) -> None:
    files = sorted(out.glob("gateways/*/agent.toml")) + sorted(out.glob("gateways/*/bridge/agent.toml"))
    gateways = sorted(p.name for p in (out / "gateways").iterdir())
    t.check(len(files) == 2 * len(gateways), f"{label}: gen wrote agent.toml and bridge/agent.toml for each of "
            f"{len(gateways)} gateways", repr(files))
    for f in files:
        r = check_config(f)
        text = f.read_text()
        # The files --check-config opens: TLS files (direct), the password
        # file (bridge variant), the units' key file (an inventory setting).
        file_keys = [k for k in ("ca_file", "cert_file", "key_file", "password_file", "unit_keys")
                     if re.search(rf"^{k} = ", text, flags=re.M)]
        if not file_keys:
            t.check(r.returncode == 0 and "valid (config hash" in r.stdout,
                    f"{label}: eport-agent --check-config accepts {f.relative_to(out)}", r.stdout + r.stderr)
            continue
        # --check-config opens those files: here, not on a gateway, it must
        # refuse the file for exactly them (and each broker host under
        # .invalid, as the test inventory's, as a placeholder), and accept it
        # once they exist.
        lines = r.stderr.strip().splitlines()
        uri_line = re.search(r"^uri = (.*)$", text, flags=re.M).group(0)
        placeholders = len(re.findall(r"\.invalid:\d+", uri_line))
        section = {"unit_keys": "bridge"}
        t.check(r.returncode == 2 and len(lines) == len(file_keys) + placeholders and
                all(f"{section.get(k, 'mqtt')}.{k}: cannot read /" in r.stderr for k in file_keys) and
                (not placeholders or "mqtt.uri: " in r.stderr),
                f"{label}: eport-agent --check-config refuses {f.relative_to(out)} only for its missing files"
                + (" and its .invalid broker host(s)" if placeholders else ""), r.stdout + r.stderr)
        if placeholders:
            text = text.replace(uri_line, uri_line.replace(".invalid:", ".example:"))
        moved = f.parent / "agent.check.toml"
        for k in file_keys:
            path = Path(re.search(rf'^{k} = "([^"]*)"', text, flags=re.M).group(1))
            local = f.parent / ("agent.password" if k == "password_file" else path.name)
            if not local.exists():  # a gateway without issued files: stand-ins
                local = f.parent / f"standin-{path.name}"
                if k == "unit_keys":
                    local.write_text("tu-0001 " + "ab" * 32 + "\n")
                else:
                    pem = "PRIVATE KEY" if k == "key_file" else "CERTIFICATE"
                    local.write_text(f"-----BEGIN {pem}-----\nMIIB\n-----END {pem}-----\n")
            local.chmod(0o600 if k in ("key_file", "password_file", "unit_keys") else 0o644)
            text = set_key(text, k, str(local))
        moved.write_text(text)
        r = check_config(moved)
        t.check(r.returncode == 0 and "valid (config hash" in r.stdout,
                f"{label}: eport-agent --check-config accepts {f.relative_to(out)} with its files present"
                + (" (password over tcp:// to loopback)" if "password_file" in file_keys else ""),
                r.stdout + r.stderr)
        moved.unlink()


def test(workdir, t):
    # 1. Every generated file, for the test inventory and the shipped example.
    site = Site(workdir)
    check_all(site.out, t, "test inventory")
    example = workdir / "example"
    run([str(BROKER_CONFIG / "eport-broker"), "gen", str(BROKER_CONFIG / "examples" / "site.toml"), str(example)])
    check_all(example, t, "examples/site.toml")
    # Agent settings of the inventory ([agent.*], [gateway.<id>.*]): failover
    # URIs, serial ports, tcp_listen with unit keys, keep-alive, log level.
    settings = workdir / "settings"
    settings.mkdir()
    Site(settings, inventory=INVENTORY.format(site="s1") + AGENT_SETTINGS)
    check_all(settings / "out", t, "inventory with agent settings")
    guessed = workdir / "guessed.toml"
    guessed.write_text((site.out / "gateways" / "gw-a" / "agent.toml").read_text() + GUESSED)
    r = check_config(guessed)
    t.check(r.returncode == 2 and "uplink" in r.stderr and "unknown" in r.stderr,
            "eport-agent refuses the old snippet's [uplink] keys (the check above is strict)", r.stderr)

    # 2. The direct agent.toml of gw-a against the generated cloud broker.
    cloud, copy = eb.start_copy(site.conf, workdir / "cloud", stay_root=True)
    port = next(iter(copy.ports.values()))
    gw = site.out / "gateways" / "gw-a"
    text = (gw / "agent.toml").read_text()
    # What a gateway changes for this test: the broker's address (127.0.0.1 is
    # in the broker certificate's SAN, so verify_hostname stays true), and
    # files that would be under /etc, /run and /var/lib.
    text = set_key(text, "uri", f"ssl://127.0.0.1:{port}")
    for key, path in (("ca_file", gw / "ca.crt"), ("cert_file", gw / "gw-a.crt"), ("key_file", gw / "gw-a.key"),
                      ("unix_socket", workdir / "bridge.sock"), ("path", workdir / "outbox.db")):
        text = set_key(text, key, str(path))
    conf = workdir / "agent.toml"
    conf.write_text(text)
    r = check_config(conf)
    want_hash = r.stdout.rsplit("config hash ", 1)[-1].rstrip(")\n")
    t.check(r.returncode == 0, "the test copy of gw-a's agent.toml is valid", r.stderr)

    reader = Client(port, site.ca, *site.cert("reader-1"), client_id="reader-1")
    agent = None
    try:
        t.check(reader.connect(), "reader-1 connects to the generated cloud broker")
        reader.subscribe("eport/v1/+/+/data/#")
        reader.subscribe("eport/v1/+/+/status")
        log = open(workdir / "agent.log", "w")
        agent = subprocess.Popen([str(AGENT), "--config", str(conf)], stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: (workdir / "bridge.sock").exists() or agent.poll() is not None, "agent socket", 10)
        status_topic = site.topic("gw-a", "status")
        wait_for(lambda: reader.received(status_topic), "gw-a's status", 10)
        status = json.loads(reader.received(status_topic)[-1])
        t.check(status.get("state") == "online" and status.get("config_hash") == want_hash,
                "the agent's retained status reaches the cloud reader: online, with the config hash that "
                "--check-config printed", repr(status))
        sim = subprocess.run([str(SIM), "--connect", f"unix:{workdir / 'bridge.sock'}", "--units", "2", "--rate",
                              "50", "--count", "20", "--seed", "3", "--acked-log", str(workdir / "acked.jsonl"),
                              "--drain-timeout", "20"], capture_output=True, text=True, timeout=60)
        acked = [l for l in (workdir / "acked.jsonl").read_text().splitlines() if l.strip()]
        t.check(sim.returncode == 0 and len(acked) == 40, "the agent acknowledged all 40 readings of eport-sim",
                sim.stdout + sim.stderr)
        wait_for(lambda: any(tp.startswith(site.topic("gw-a", "data/")) for tp, _, _ in reader.messages),
                 "gw-a's data at the reader", 10)
        t.check(True, "gw-a's data envelopes reach the cloud reader through the generated ACL")
        t.check("u'gw-a'" in cloud.log(), "the cloud broker sees the agent as user gw-a (the certificate CN)")
        agent.send_signal(signal.SIGTERM)
        t.check(agent.wait(20) == 0, "the agent stops cleanly on SIGTERM")
        wait_for(lambda: b'"offline"' in reader.received(status_topic)[-1], "offline status", 10)
        t.check(True, "its offline status reaches the cloud reader")
    finally:
        if agent and agent.poll() is None:
            agent.kill()
            agent.wait()
        reader.close()
        cloud.stop()
        if t.failed:
            print("--- agent log ---\n" + (workdir / "agent.log").read_text()[-3000:])
            print("--- cloud broker log ---\n" + cloud.log()[-3000:])


if __name__ == "__main__":
    start = time.monotonic()
    try:
        main(test)
    finally:
        print(f"test_agent_config: {time.monotonic() - start:.1f} s")
