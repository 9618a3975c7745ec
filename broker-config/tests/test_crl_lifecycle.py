#!/usr/bin/python3
"""Revocation while the broker runs, and the expired-CRL trap:
- after `eport-broker revoke` and a SIGHUP (systemctl reload), new
  connections with the revoked certificate are refused, while the
  connection that was already open keeps working until a restart;
- a CRL past its nextUpdate makes mosquitto refuse EVERY client, and
  `eport-broker validate` reports it before anything starts;
- adding a gateway to the inventory, gen and a SIGHUP admit it (the ACL
  is reread on reload), with no restart."""

import os
import signal
import time

from harness import BROKER_CONFIG, Client, Site, eb, main, run

EPORT_BROKER = str(BROKER_CONFIG / "eport-broker")
EPORT_PKI = str(BROKER_CONFIG / "pki" / "eport-pki")


def test(workdir, t):
    site = Site(workdir)
    broker, copy = eb.start_copy(site.conf, workdir / "broker", stay_root=True)
    port = next(iter(copy.ports.values()))
    clients = []

    def client(cert, key, cid):
        c = Client(port, site.ca, cert, key, client_id=cid)
        clients.append(c)
        return c

    try:
        reader = client(*site.cert("reader-1"), "reader-1")
        t.check(reader.connect(), "reader connects")
        reader.subscribe("eport/v1/+/+/data/#")
        gw_b = client(*site.cert("gw-b"), "gw-b")
        t.check(gw_b.connect(), "gw-b connects before revocation")

        run([EPORT_BROKER, "revoke", str(site.out), "gw-b"])
        broker.signal(signal.SIGHUP)
        time.sleep(0.5)
        revoked = next((site.out / "pki" / "revoked").glob("gw-b-*.crt"))
        again = client(revoked, revoked.with_suffix(".key"), "gw-b-again")
        t.check(not again.connect(), "after revoke + SIGHUP a new connection with gw-b's old certificate is refused")
        gw_b.publish(site.topic("gw-b", "data/event"), "still-open")
        time.sleep(0.5)
        t.check(reader.received(site.topic("gw-b", "data/event")) == [b"still-open"] and
                not gw_b.disconnected.is_set(),
                "gw-b's connection opened before the revocation keeps working after SIGHUP")
        broker.stop()
        t.check(gw_b.disconnected.wait(5), "a broker restart ends it")
        broker.start()
        after = client(revoked, revoked.with_suffix(".key"), "gw-b")
        t.check(not after.connect(), "after the restart the revoked certificate is still refused")

        # Expired CRL: nextUpdate one second ahead, then wait past it.
        env = dict(os.environ, EPORT_PKI_CRL_SECONDS="1")
        run([EPORT_PKI, "crl", str(site.out / "pki")], env=env)
        time.sleep(2.1)
        v = run([EPORT_BROKER, "validate", "--as-root", str(site.conf)], check=False)
        t.check(v.returncode == 1 and "expired" in v.stdout and "EVERY client" in v.stdout,
                "validate fails on the expired CRL and says every client would be refused", v.stdout)
        broker.stop()
        broker.start()
        gw_a = client(*site.cert("gw-a"), "gw-a")
        t.check(not gw_a.connect(), "with an expired CRL even a valid, unrevoked gateway is refused")
        # Mosquitto only logs "certificate verify failed"; openssl names the cause.
        t.check("certificate verify failed" in broker.log().rsplit("mosquitto version", 1)[-1],
                "the broker log shows only 'certificate verify failed' for it")
        crt, _ = site.cert("gw-a")
        why = run(["openssl", "verify", "-CAfile", str(site.ca), "-crl_check", "-CRLfile",
                   str(site.out / "broker" / "crl.pem"), str(crt)], check=False)
        t.check("CRL has expired" in why.stdout + why.stderr,
                "openssl verify -crl_check names the cause: 'CRL has expired'", why.stdout + why.stderr)

        run([EPORT_PKI, "crl", str(site.out / "pki")])
        broker.signal(signal.SIGHUP)
        time.sleep(0.5)
        gw_a2 = client(*site.cert("gw-a"), "gw-a")
        t.check(gw_a2.connect(), "a fresh CRL and a SIGHUP let gateways in again")

        # Add gw-d (and drop the revoked gw-b) while the broker runs.
        site.inv.write_text(site.inv.read_text().replace('"gw-b", "gw-c"]', '"gw-c", "gw-d"]'))
        run([EPORT_BROKER, "gen", str(site.inv), str(site.out), "--conf-dir", str(site.out / "broker")])
        watcher = client(*site.cert("reader-2"), "reader-2")
        t.check(watcher.connect(), "reader-2 connects")
        watcher.subscribe("eport/v1/+/+/data/#")
        gw_d = client(*site.cert("gw-d"), "gw-d")
        t.check(gw_d.connect(), "new gateway gw-d connects (its certificate comes from the same CA)")
        gw_d.publish(site.topic("gw-d", "data/event"), "before-reload")
        broker.signal(signal.SIGHUP)
        time.sleep(0.5)
        gw_d.publish(site.topic("gw-d", "data/event"), "after-reload")
        time.sleep(0.5)
        t.check(watcher.received() == [b"after-reload"],
                "gw-d's data is denied until the SIGHUP rereads the ACL, delivered after it", repr(watcher.received()))
    finally:
        for c in clients:
            try:
                c.close()
            except Exception:
                pass
        broker.stop()
        if t.failed:
            print(broker.log()[-3000:])


if __name__ == "__main__":
    main(test)
