#!/usr/bin/python3
"""docs/operators.md walked in order on loopback, with the real programs:
inventory (section 2) -> gen (3) -> install into a broker "host" directory,
validate the installed config, start it (4) -> two agents from their
generated agent.toml (5) -> eport-tail with a reader certificate decodes
every acknowledged reading, eport-cmd with the commander certificate gets a
reply (6) -> a monitor reads $SYS (8) -> rotation of gw-quay-01, revocation
of gw-quay-02 with keyCompromise and a restart, CRL renewal (7), with
validate's exit statuses along the way. Paths under /etc, /var and the
broker's address are the only things moved (as in the other tests). Needs
the built agent and tools (EPORT_BIN_DIR, set by ctest); else skip."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness import AGENT, SIM, SKIP, BROKER_CONFIG, Client, GeneratedAgent, eb, main, run, serial, wait_for

BIN = AGENT.parent.parent
TAIL, CMD = BIN / "tools" / "eport-tail", BIN / "tools" / "eport-cmd"
if not all(os.access(p, os.X_OK) for p in (AGENT, SIM, TAIL, CMD)):
    print(f"SKIP: eport-agent, eport-sim, eport-tail or eport-cmd is not built in {BIN}")
    sys.exit(SKIP)
EPORT_BROKER = str(BROKER_CONFIG / "eport-broker")
EPORT_PKI = str(BROKER_CONFIG / "pki" / "eport-pki")

# Section 2's inventory, for loopback: the broker binds to 127.0.0.1.
INVENTORY = """\
site = "rtm-waalhaven"
gateways = ["gw-quay-01", "gw-quay-02"]
readers = ["analytics-1"]
commanders = ["cmdsvc-1"]
monitors = ["metrics-1"]

[broker]
host = "mqtt.waalhaven.example.net"
port = 8883
bind_address = "127.0.0.1"

[limits]
max_queued_messages = 20000
message_size_limit = 1048576

[agent.mqtt]
keepalive_s = 30
reconnect_max_ms = 5000

[gateway.gw-quay-02.health]
interval_s = 30
"""


def test(workdir, t):
    admin = workdir / "admin"        # the administration machine's /srv/eport
    host = workdir / "broker-host"   # the broker host's /etc/mosquitto
    admin.mkdir()
    inv = admin / "site.toml"
    inv.write_text(INVENTORY)
    site = admin / "rtm-waalhaven"
    conf_dir = host / "eport"        # paths.conf_dir = /etc/mosquitto/eport

    def gen():
        return run([EPORT_BROKER, "gen", str(inv), str(site), "--conf-dir", str(conf_dir)])

    def install_broker():
        """Section 4's install lines, into the broker host directory."""
        conf_dir.mkdir(parents=True, exist_ok=True)
        b = site / "broker"
        for name in ("ca.crt", "broker.crt", "acl", "broker.key"):
            shutil.copy(b / name, conf_dir / name)
        shutil.copy(site / "pki" / "crl.pem", conf_dir / "crl.pem")
        shutil.copy(b / "mosquitto.conf", host / "mosquitto.conf")

    def validate(*args):
        return run([EPORT_BROKER, "validate", *map(str, args)], check=False)

    # 2.-3. Inventory and gen.
    g = gen()
    t.check("issued gateway certificate gw-quay-02" in g.stdout and not (site / "broker" / "crl.pem").exists(),
            "3. gen issues the certificates; the one CRL is pki/crl.pem (none in broker/)", g.stdout)
    # 4. Install, validate on the installed config, start.
    install_broker()
    cmdsvc = site / "clients" / "cmdsvc-1"
    v = validate("--as-root", "--cert", cmdsvc / "cmdsvc-1.crt", "--key", cmdsvc / "cmdsvc-1.key",
                 host / "mosquitto.conf")
    t.check(v.returncode == 0 and "client certificate CN=cmdsvc-1 accepted" in v.stdout,
            "4. validate accepts the installed config (exit 0)", v.stdout + v.stderr)
    v = validate("--pki", site / "pki")
    t.check(v.returncode == 0, "4. validate --pki on the administration machine: exit 0", v.stdout)
    broker, copy = eb.start_copy(host / "mosquitto.conf", workdir / "broker-run", stay_root=True,
                                 overrides={"sys_interval": "1"})
    port = next(iter(copy.ports.values()))
    uri = f"ssl://127.0.0.1:{port}"
    ca = site / "broker" / "ca.crt"
    gws = {gw: GeneratedAgent(site, workdir / gw, gw, port) for gw in ("gw-quay-01", "gw-quay-02")}
    tail = None
    clients = []

    def client(cn, **kw):
        c = Client(port, ca, site / "clients" / cn / f"{cn}.crt", site / "clients" / cn / f"{cn}.key",
                   client_id=cn, **kw)
        clients.append(c)
        return c

    def late_status(gw):
        c = client("cmdsvc-1")
        assert c.connect()
        c.subscribe(f"eport/v1/rtm-waalhaven/{gw}/status")
        time.sleep(0.5)  # a retained message comes with the SUBACK or not at all
        got = [json.loads(p).get("state") for p in c.received()]
        c.close()
        return got

    try:
        # 5. The agents on their generated agent.toml.
        for gw, gateway in gws.items():
            r = gateway.check()
            t.check(r.returncode == 0 and "valid (config hash" in r.stdout,
                    f"5. eport-agent --check-config accepts {gw}'s agent.toml", r.stdout + r.stderr)
        t.check("keepalive_s = 30  # [agent.mqtt]" in gws["gw-quay-01"].conf.read_text() and
                "interval_s = 30  # [gateway.gw-quay-02.health]" in gws["gw-quay-02"].conf.read_text(),
                "5. the inventory's agent settings are in the agent.toml files")
        # 6. eport-tail with the reader certificate, before the data flows.
        ra = site / "clients" / "analytics-1"
        tail = subprocess.Popen([str(TAIL), "--broker", uri, "--ca-file", str(ca), "--cert-file",
                                 str(ra / "analytics-1.crt"), "--key-file", str(ra / "analytics-1.key"),
                                 "--client-id", "analytics-1", "--topic", "eport/v1/+/+/data/#", "--idle-exit", "8"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: "as analytics-1" in broker.log(), "eport-tail connected as analytics-1", 10)
        time.sleep(0.5)  # its SUBSCRIBE follows the CONNACK at once
        for gateway in gws.values():
            gateway.start()
        wait_for(lambda: all(late_status(gw)[-1:] == ["online"] for gw in gws), "both gateways online", 20)
        t.check(True, "5. both agents connect over mutual TLS: their retained status is online")
        acked = gws["gw-quay-01"].send("walk", 50, seed=11) + gws["gw-quay-02"].send("walk", 50, seed=12)
        t.check(len(acked) == 100, "5. the agents acknowledged all 100 readings of eport-sim", str(len(acked)))
        out, err = tail.communicate(timeout=60)
        got = {(r["source"], r["seq"]) for r in map(json.loads, (l for l in out.splitlines() if l.startswith('{"source"')))}
        t.check({(r["source"], r["seq"]) for r in acked} <= got,
                "6. eport-tail with the reader certificate decoded every acknowledged reading",
                f"{len(got)} decoded; {err[-500:]}")
        c = subprocess.run([str(CMD), "--broker", uri, "--ca-file", str(ca), "--cert-file",
                            str(cmdsvc / "cmdsvc-1.crt"), "--key-file", str(cmdsvc / "cmdsvc-1.key"),
                            "--site", "rtm-waalhaven", "--gateway", "gw-quay-01", "get-config"],
                           capture_output=True, text=True, timeout=30)
        t.check(c.returncode == 0 and '"ok":true' in c.stdout,
                "6. eport-cmd with the commander certificate gets gw-quay-01's reply", c.stdout + c.stderr)
        # 8. The monitor.
        mon = client("metrics-1")
        t.check(mon.connect(), "8. the monitor connects")
        mon.subscribe("$SYS/#")
        # The retained value may predate the monitor; the next update (1 s) counts it.
        wait_for(lambda: any(int(v) >= 3 for v in mon.received("$SYS/broker/clients/connected")),
                 "$SYS/broker/clients/connected counting the agents and the monitor")
        t.check(True, "8. the monitor reads $SYS/broker/clients/connected (the agents and itself)")

        # 7. Rotation of gw-quay-01: issue, install, restart the agent, revoke the old one, reload.
        gw1 = gws["gw-quay-01"]
        old = serial(gw1.tls / "gw-quay-01.crt")
        run([EPORT_PKI, "client", str(site / "pki"), "gw-quay-01", "--reissue"])
        gen()
        gw1.install_tls()
        gw1.stop()
        gw1.start()
        wait_for(lambda: late_status("gw-quay-01")[-1:] == ["online"], "gw-quay-01 online on its new certificate", 20)
        run([EPORT_BROKER, "revoke", str(site), "gw-quay-01", "--serial", old])
        install_broker()
        broker.signal(signal.SIGHUP)
        time.sleep(0.5)
        probe = Client(port, ca, site / "pki" / "revoked" / f"gw-quay-01-{old}.crt",
                       site / "pki" / "revoked" / f"gw-quay-01-{old}.key", client_id="gw-quay-01")
        t.check(not probe.connect(), "7. rotation: the old certificate is refused after revoke and reload")
        try:
            probe.close()
        except OSError:
            pass
        t.check(late_status("gw-quay-01")[-1:] == ["online"] and len(gw1.send("rotated", 10)) == 10,
                "7. rotation: gw-quay-01 stays online and delivers on the new certificate")

        # 7. Revocation of gw-quay-02 (a stolen key): inventory, revoke, gen, install, reload, restart.
        inv.write_text(inv.read_text().replace('"gw-quay-01", "gw-quay-02"', '"gw-quay-01"')
                       .replace("[gateway.gw-quay-02.health]\ninterval_s = 30\n", ""))
        r = run([EPORT_BROKER, "revoke", str(site), "gw-quay-02", "--reason", "keyCompromise"])
        gen()
        install_broker()
        broker.signal(signal.SIGHUP)
        broker.stop()   # systemctl restart mosquitto: cuts gw-quay-02's open connection
        broker.start()
        wait_for(lambda: late_status("gw-quay-01")[-1:] == ["online"], "gw-quay-01 back after the restart", 30)
        time.sleep(1.0)  # gw-quay-02's agent retries (refused) meanwhile; its status must not come back
        t.check(late_status("gw-quay-02") == ["offline"],
                "7. the revoked gw-quay-02 is refused after the restart and its retained status says offline")
        refused = "the broker refused this gateway's certificate (certificate revoked"
        log2 = gws["gw-quay-02"].log
        try:
            wait_for(lambda: refused in log2.read_text(), "gw-quay-02's agent names the refusal", 30)
        except AssertionError:
            pass
        time.sleep(2.0)
        text = log2.read_text()
        t.check(text.count(refused) == 1 and "next attempt in 300 s (mqtt.certificate_refused_retry_s)" in text,
                "7. the revoked gateway's agent names the certificate refusal and waits 300 s before trying again",
                text[-1500:])
        lst = run([EPORT_PKI, "list", str(site / "pki")]).stdout
        t.check(re.search(r"^revoked +gw-quay-02 .* keyCompromise$", lst, re.M) and
                re.search(r"^revoked +gw-quay-01 .* superseded$", lst, re.M),
                "7. eport-pki list shows gw-quay-02 revoked (keyCompromise) and gw-quay-01's old one (superseded)", lst)

        # 7. CRL renewal: a CRL near its nextUpdate makes validate exit 3; the renewed one passes.
        run([EPORT_PKI, "crl", str(site / "pki")], env=dict(os.environ, EPORT_PKI_CRL_DAYS="20"))
        install_broker()
        v = validate("--as-root", host / "mosquitto.conf")
        t.check(v.returncode == 3 and "crlfile" in v.stdout, "7. an installed CRL 20 days from nextUpdate: "
                "validate exits 3", v.stdout)
        run([EPORT_PKI, "crl", str(site / "pki")], env=dict(os.environ, EPORT_PKI_CRL_DAYS="90"))
        install_broker()
        broker.signal(signal.SIGHUP)
        v = validate("--as-root", host / "mosquitto.conf")
        p = validate("--pki", site / "pki")
        t.check(v.returncode == 0 and p.returncode == 0, "7. after the renewal (90 days) both validates exit 0",
                v.stdout + p.stdout)
        time.sleep(0.5)
        t.check(len(gw1.send("renewed", 10)) == 10 and late_status("gw-quay-01")[-1:] == ["online"],
                "7. gw-quay-01 still delivers after the CRL renewal and reload")
    finally:
        if tail and tail.poll() is None:
            tail.kill()
            tail.wait()
        for gateway in gws.values():
            gateway.stop()
        for c in clients:
            try:
                c.close()
            except Exception:
                pass
        broker.stop()
        if t.failed:
            for gateway in gws.values():
                print(f"--- {gateway.gw} agent log ---\n" + gateway.log.read_text()[-2000:])
            print("--- broker log ---\n" + broker.log()[-3000:])


if __name__ == "__main__":
    main(test)
