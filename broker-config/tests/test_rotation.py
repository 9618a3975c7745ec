#!/usr/bin/python3
"""The certificate rotation of docs/operators.md section 7, step by step,
against a real mosquitto from the generated config: issue the new
certificate (`eport-pki client --reissue`, then gen), install it on the
gateway, restart the agent, then revoke the old one (`eport-broker revoke
--serial`, reason superseded) and reload the broker. The gateway is the real
eport-agent on its generated agent.toml when it is built (EPORT_BIN_DIR),
else a paho client that behaves like it (retained status, last will)."""

import json
import os
import signal
import time
from pathlib import Path

from harness import (AGENT, SIM, BROKER_CONFIG, Client, GeneratedAgent, Site, eb, install_gateway_tls, main, run,
                     serial, wait_for)

EPORT_BROKER = str(BROKER_CONFIG / "eport-broker")
EPORT_PKI = str(BROKER_CONFIG / "pki" / "eport-pki")


class AgentGateway(GeneratedAgent):
    """eport-agent with gw-a's generated agent.toml; TLS files read from
    tls_dir (the gateway's /etc/eport-edge/tls), broker on 127.0.0.1."""

    def __init__(self, site: Site, workdir: Path, port: int, tls_dir: Path):
        super().__init__(site.out, workdir, "gw-a", port, tls=tls_dir)

    def send(self, workdir: Path, name: str, count: int) -> int:
        """Readings eport-sim got acknowledged by the agent."""
        return len(super().send(name, count, seed=count, rate=50))


class PahoGateway:
    """Stand-in without a built agent: connects with tls_dir's certificate,
    retained status online, last will offline, clean stop publishes offline."""

    def __init__(self, site: Site, workdir: Path, port: int, tls_dir: Path):
        self.site, self.port, self.tls = site, port, tls_dir
        self.c = None

    def start(self):
        topic = self.site.topic("gw-a", "status")
        self.c = Client(self.port, self.tls / "ca.crt", self.tls / "gw-a.crt", self.tls / "gw-a.key",
                        client_id="gw-a", will=(topic, '{"state":"offline"}', 1, True))
        assert self.c.connect(), "stand-in gateway connects"
        self.c.publish(topic, '{"state":"online"}', retain=True)

    def stop(self):
        if self.c:
            self.c.publish(self.site.topic("gw-a", "status"), '{"state":"offline"}', retain=True)
            self.c.close()

    def send(self, workdir: Path, name: str, count: int) -> int:
        for i in range(count):
            self.c.publish(self.site.topic("gw-a", "data/event"), f"{name}-{i}")
        return count


def test(workdir, t):
    real = os.access(AGENT, os.X_OK) and os.access(SIM, os.X_OK)
    print(f"  info: gateway = {'eport-agent ' + str(AGENT) if real else 'paho stand-in (eport-agent not built)'}")
    site = Site(workdir)
    pki = site.out / "pki"
    broker, copy = eb.start_copy(site.conf, workdir / "broker", stay_root=True)
    port = next(iter(copy.ports.values()))
    # The gateway's /etc/eport-edge/tls, installed as in section 5.
    tls = workdir / "gateway-tls"
    tls.mkdir()

    def install_on_gateway():
        install_gateway_tls(site.out, "gw-a", tls)

    install_on_gateway()
    gw = (AgentGateway if real else PahoGateway)(site, workdir, port, tls)
    reader = Client(port, site.ca, *site.cert("reader-1"), client_id="reader-1")
    status_topic = site.topic("gw-a", "status")

    def state():
        got = reader.received(status_topic)
        return json.loads(got[-1]).get("state") if got else None

    def data_count():
        return len([1 for tp, _, _ in reader.messages if tp.startswith(site.topic("gw-a", "data/"))])

    try:
        t.check(reader.connect(), "reader-1 connects")
        reader.subscribe(status_topic)
        reader.subscribe("eport/v1/+/+/data/#")
        gw.start()
        wait_for(lambda: state() == "online", "gw-a online with its first certificate", 15)
        old = serial(tls / "gw-a.crt")
        t.check(gw.send(workdir, "before", 10) == 10, "gw-a delivers with its first certificate")
        wait_for(lambda: data_count() > 0, "gw-a's data before the rotation", 15)

        # 1. Issue the new certificate; the old one stays valid.
        r = run([EPORT_PKI, "client", str(pki), "gw-a", "--reissue"])
        g = run([EPORT_BROKER, "gen", str(site.inv), str(site.out), "--conf-dir", str(site.out / "broker")])
        new = serial(site.out / "gateways" / "gw-a" / "gw-a.crt")
        t.check(new != old and f"--serial {old}" in r.stdout,
                "eport-pki client --reissue issues a new serial and says how to revoke the old one", r.stdout)
        t.check(f"gw-a's previous certificate (serial {old}) is still valid" in g.stderr and f"--serial {old}" in g.stderr,
                "gen copies the new certificate to gateways/gw-a/ and warns that the previous one is still valid",
                g.stderr)
        time.sleep(0.5)
        t.check(state() == "online", "the gateway stays connected with the old certificate meanwhile")

        # 2. Install it on the gateway, 3. restart the agent.
        install_on_gateway()
        gw.stop()
        wait_for(lambda: state() == "offline", "offline at the agent's clean stop", 15)
        before = data_count()
        gw.start()
        wait_for(lambda: state() == "online", "gw-a online again with the new certificate", 15)
        t.check(True, "after the restart the agent is online with the new certificate (both were valid)")

        # 4. Revoke the old one (reason superseded), reload the broker.
        r = run([EPORT_BROKER, "revoke", str(site.out), "gw-a", "--serial", old])
        t.check("reason superseded" in r.stdout and f"{pki}/crl.pem" in r.stdout,
                "eport-broker revoke --serial revokes the previous certificate as superseded and names pki/crl.pem",
                r.stdout)
        broker.signal(signal.SIGHUP)
        time.sleep(0.5)
        revoked = pki / "revoked" / f"gw-a-{old}.crt"
        probe = Client(port, site.ca, revoked, revoked.with_suffix(".key"), client_id="gw-a")
        t.check(not probe.connect(), "after the reload the old certificate is refused")
        try:
            probe.close()
        except OSError:
            pass
        time.sleep(0.5)
        t.check(state() == "online", "the agent, on the new certificate, stayed online through the reload")
        t.check(gw.send(workdir, "after", 10) == 10, "gw-a delivers after the revocation")
        wait_for(lambda: data_count() > before, "gw-a's data after the rotation", 15)
        t.check(True, "its data reaches the reader on the new certificate")

        # A broker restart cuts every connection: the agent comes back, so it
        # really uses the new, unrevoked certificate.
        reader.close()
        broker.stop()
        broker.start()
        reader = Client(port, site.ca, *site.cert("reader-1"), client_id="reader-1")
        t.check(reader.connect(), "reader-1 reconnects after the broker restart")
        reader.subscribe(status_topic)
        if real:
            wait_for(lambda: any(tp == status_topic and not retained and json.loads(p).get("state") == "online"
                                 for tp, p, retained in reader.messages), "the agent's new birth", 30)
            t.check(True, "after a broker restart the agent reconnects with the new certificate (a new birth message)")
        lst = run([EPORT_PKI, "list", str(pki)]).stdout
        rows = [l.split() for l in lst.splitlines() if " gw-a " in f" {l} "]
        t.check(sorted((r[0], r[2], r[-1]) for r in rows) == sorted([("revoked", old, "superseded"), ("valid", new, "-")]),
                "eport-pki list: gw-a's old certificate revoked (superseded), the new one valid", lst)
        g = run([EPORT_BROKER, "gen", str(site.inv), str(site.out), "--conf-dir", str(site.out / "broker")])
        t.check("previous certificate" not in g.stderr, "gen no longer warns about a previous certificate", g.stderr)
    finally:
        gw.stop()
        reader.close()
        broker.stop()
        if t.failed:
            if real:
                print("--- agent log ---\n" + gw.log.read_text()[-3000:])
            print("--- broker log ---\n" + broker.log()[-3000:])


if __name__ == "__main__":
    main(test)
